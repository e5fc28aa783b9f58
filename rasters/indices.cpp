#include "rasters/indices.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>

#include "engine/error.hpp"
#include "engine/log.hpp"
#include "engine/raster_io.hpp"
#include "rasters/cog.hpp"

namespace fw::rasters {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kFloatNodata = -9999.0f;
constexpr int16_t kInt16Nodata = -32768;

// Applies f over n pixels; non-finite results become NaN (never Inf).
template <class F>
void apply(std::size_t n, float* out, F f) {
  for (std::size_t i = 0; i < n; ++i) {
    const float v = f(i);
    out[i] = std::isfinite(v) ? v : kNaN;
  }
}

// (a - b) / (a + b), NaN for a zero denominator.
inline float nd(float a, float b) {
  const float d = a + b;
  return d != 0.0f ? (a - b) / d : kNaN;
}

}  // namespace

const std::vector<IndexInfo>& all_indices() {
  using R = Role;
  static const std::vector<IndexInfo> v = {
      {IndexId::kNdvi, "ndvi", "(NIR - Red) / (NIR + Red)", {R::kNir, R::kRed}},
      {IndexId::kEvi,
       "evi",
       "2.5 (NIR - Red) / (NIR + 6 Red - 7.5 Blue + 1)",
       {R::kNir, R::kRed, R::kBlue}},
      {IndexId::kSavi, "savi", "1.5 (NIR - Red) / (NIR + Red + 0.5)", {R::kNir, R::kRed}},
      {IndexId::kMsavi2,
       "msavi2",
       "(2 NIR + 1 - sqrt((2 NIR + 1)^2 - 8 (NIR - Red))) / 2",
       {R::kNir, R::kRed}},
      {IndexId::kNdwi, "ndwi", "(Green - NIR) / (Green + NIR)", {R::kGreen, R::kNir}},
      {IndexId::kMndwi, "mndwi", "(Green - SWIR1) / (Green + SWIR1)", {R::kGreen, R::kSwir1}},
      {IndexId::kNdbi, "ndbi", "(SWIR1 - NIR) / (SWIR1 + NIR)", {R::kSwir1, R::kNir}},
      {IndexId::kBsi,
       "bsi",
       "((SWIR1 + Red) - (NIR + Blue)) / ((SWIR1 + Red) + (NIR + Blue))",
       {R::kSwir1, R::kRed, R::kNir, R::kBlue}},
      {IndexId::kNbr, "nbr", "(NIR - SWIR2) / (NIR + SWIR2)", {R::kNir, R::kSwir2}},
  };
  return v;
}

const IndexInfo& index_info(IndexId id) {
  return all_indices()[static_cast<std::size_t>(id)];
}

IndexId parse_index(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& i : all_indices()) {
    if (n == i.name) return i.id;
  }
  std::string known;
  for (const auto& i : all_indices()) known += (known.empty() ? "" : ", ") + std::string(i.name);
  throw_usage("unknown index '" + name + "' (known: " + known + ")");
}

std::vector<IndexId> parse_index_list(const std::string& text) {
  std::vector<IndexId> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = text.find(',', pos);
    const std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!item.empty()) {
      const IndexId id = parse_index(item);
      if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (out.empty()) throw_usage("no index given (for example --index ndvi,ndbi)");
  return out;
}

void compute_index(IndexId id, const RoleSpans& b, std::size_t n, float* out) {
  const float* B = b[static_cast<std::size_t>(Role::kBlue)];
  const float* G = b[static_cast<std::size_t>(Role::kGreen)];
  const float* R = b[static_cast<std::size_t>(Role::kRed)];
  const float* N = b[static_cast<std::size_t>(Role::kNir)];
  const float* S1 = b[static_cast<std::size_t>(Role::kSwir1)];
  const float* S2 = b[static_cast<std::size_t>(Role::kSwir2)];
  switch (id) {
    case IndexId::kNdvi:
      apply(n, out, [&](std::size_t i) { return nd(N[i], R[i]); });
      break;
    case IndexId::kEvi:
      apply(n, out, [&](std::size_t i) {
        const float d = N[i] + 6.0f * R[i] - 7.5f * B[i] + 1.0f;
        return d != 0.0f ? 2.5f * (N[i] - R[i]) / d : kNaN;
      });
      break;
    case IndexId::kSavi:
      apply(n, out, [&](std::size_t i) {
        const float d = N[i] + R[i] + 0.5f;
        return d != 0.0f ? 1.5f * (N[i] - R[i]) / d : kNaN;
      });
      break;
    case IndexId::kMsavi2:
      apply(n, out, [&](std::size_t i) {
        const float a = 2.0f * N[i] + 1.0f;
        const float disc = a * a - 8.0f * (N[i] - R[i]);
        return disc >= 0.0f ? 0.5f * (a - std::sqrt(disc)) : kNaN;
      });
      break;
    case IndexId::kNdwi:
      apply(n, out, [&](std::size_t i) { return nd(G[i], N[i]); });
      break;
    case IndexId::kMndwi:
      apply(n, out, [&](std::size_t i) { return nd(G[i], S1[i]); });
      break;
    case IndexId::kNdbi:
      apply(n, out, [&](std::size_t i) { return nd(S1[i], N[i]); });
      break;
    case IndexId::kBsi:
      apply(n, out, [&](std::size_t i) { return nd(S1[i] + R[i], N[i] + B[i]); });
      break;
    case IndexId::kNbr:
      apply(n, out, [&](std::size_t i) { return nd(N[i], S2[i]); });
      break;
    case IndexId::kCount:
      break;
  }
}

IndexRunResult compute_indices(const Imagery& im, const Grid& analysis, const IndexJob& job,
                               const SchedulerOptions& so) {
  if (job.indices.empty()) throw_usage("no index to compute");
  // The roles needed by any index, each read once.
  std::array<bool, kRoleCount> need{};
  for (IndexId id : job.indices) {
    for (Role r : index_info(id).needs) {
      im.band(r, std::string(index_info(id).name));  // a clear error when missing
      need[static_cast<std::size_t>(r)] = true;
    }
  }
  std::vector<Role> roles;
  std::array<std::unique_ptr<BandReader>, kRoleCount> readers;
  for (int r = 0; r < kRoleCount; ++r) {
    if (!need[static_cast<std::size_t>(r)]) continue;
    roles.push_back(static_cast<Role>(r));
    readers[static_cast<std::size_t>(r)] = std::make_unique<BandReader>(
        im.band(static_cast<Role>(r)), analysis, Resampling::kBilinear);
  }
  MaskReader mask(im.options().mask, analysis);
  // Windows aligned to the first band's blocks when it is read directly.
  int bw = CogWriter::kTile, bh = CogWriter::kTile;
  const BandInfo& first = im.band(roles.front());
  if (!readers[static_cast<std::size_t>(roles.front())]->warped() && analysis.same_as(first.grid)) {
    DatasetPtr ds = open_raster(first.file);
    ds->GetRasterBand(first.band)->GetBlockSize(&bw, &bh);
  }
  std::vector<std::unique_ptr<CogWriter>> writers;
  IndexRunResult result;
  for (IndexId id : job.indices) {
    CogOptions co;
    co.type = job.int16 ? GDT_Int16 : GDT_Float32;
    co.nodata = job.int16 ? kInt16Nodata : kFloatNodata;
    co.scale = job.int16 ? 1e-4 : 1.0;
    co.compress = job.compress;
    co.level = job.level;
    co.descriptions = {index_info(id).name};
    co.metadata = {{"INDEX", index_info(id).name},
                   {"FORMULA", index_info(id).formula},
                   {"SENSOR", im.sensor().id},
                   {"SOURCE", im.files_text()}};
    const std::string path = job.out_dir + "/" + job.prefix + index_info(id).name + ".tif";
    writers.push_back(std::make_unique<CogWriter>(path, analysis, 1, co));
    result.files.push_back(path);
  }
  const std::size_t ni = job.indices.size();
  const double bytes_per_px = 4.0 * static_cast<double>(roles.size()) + 1 + 4.0 * ni + 8;
  SchedulerOptions sopt = so;
  if (sopt.label.empty() || sopt.label == "working") sopt.label = "indices " + im.options().label;
  BlockScheduler sched(sopt);
  // Per window: one encoded chunk per index, and the valid pixels.
  using Out = ChunksWith<int64_t>;
  // Windows aligned to both the input blocks and the output tiles.
  auto align = [](int block, int64_t size) -> int {
    if (block >= size) return static_cast<int>(size);
    return std::lcm(block, CogWriter::kTile);
  };
  double consume_s = 0;
  const WindowPlan plan =
      sched.plan(analysis.width(), analysis.height(), align(bw, analysis.width()),
                 align(bh, analysis.height()), bytes_per_px);
  sched.run<Out>(
      plan,
      [&](const Window& w, std::size_t) {
        const std::size_t n = static_cast<std::size_t>(w.pixels());
        std::unique_ptr<float[]> bands(new float[n * roles.size()]);  // filled by the reads
        RoleSpans spans{};
        for (std::size_t k = 0; k < roles.size(); ++k) {
          float* p = bands.get() + k * n;
          readers[static_cast<std::size_t>(roles[k])]->read_reflectance(w, p);
          spans[static_cast<std::size_t>(roles[k])] = p;
        }
        std::vector<uint8_t> valid(n, 1);
        mask.apply(w, valid.data());
        Out o;
        for (std::size_t i = 0; i < n; ++i) {
          bool ok = valid[i];
          for (std::size_t k = 0; k < roles.size() && ok; ++k) ok = !std::isnan(bands[k * n + i]);
          valid[i] = ok;
          o.summary += ok;
        }
        std::unique_ptr<float[]> values(new float[n]);
        std::vector<int16_t> packed(job.int16 ? n : 0);
        for (std::size_t j = 0; j < ni; ++j) {
          float* out = values.get();
          compute_index(job.indices[j], spans, n, out);
          for (std::size_t i = 0; i < n; ++i) {
            if (!valid[i] || std::isnan(out[i])) out[i] = kFloatNodata;
          }
          if (job.int16) {
            for (std::size_t i = 0; i < n; ++i) {
              const float v = values[i];
              packed[i] = v == kFloatNodata ? kInt16Nodata
                                            : static_cast<int16_t>(std::clamp(
                                                  std::lround(v * 10000.0f), -32767L, 32767L));
            }
            o.chunks.push_back(writers[j]->encode(1, w, packed.data()));
          } else {
            o.chunks.push_back(writers[j]->encode(1, w, values.get()));
          }
        }
        return o;
      },
      [&](const Window&, std::size_t, Out& o) {
        const auto t0 = std::chrono::steady_clock::now();
        for (std::size_t j = 0; j < ni; ++j) writers[j]->add(o.chunks[j]);
        consume_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        result.valid += o.summary;
      });
  log::debug("index pass", {{"consume_s", std::to_string(consume_s)}});
  result.total = analysis.width() * analysis.height();
  if (result.valid == 0) {
    throw Error(
        ExitCode::kNoData,
        "no valid pixel: every pixel of " + im.options().label + " is masked, nodata or saturated",
        {.file = im.files_text()});
  }
  for (auto& w : writers) w->commit();
  return result;
}

}  // namespace fw::rasters
