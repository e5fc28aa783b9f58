#include "rasters/imagery.hpp"

#include <gdalwarper.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/error.hpp"
#include "engine/log.hpp"
#include "engine/raster_io.hpp"

namespace fw::rasters {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

bool is_s2_name(const std::string& n) {
  static const char* names[] = {"B1", "B2",  "B3", "B4",  "B5",  "B6", "B7",
                                "B8", "B8A", "B9", "B10", "B11", "B12"};
  return std::find(std::begin(names), std::end(names), n) != std::end(names);
}

std::string detect_sensor(const std::vector<BandInfo>& bands, GDALDataset& first) {
  bool s2 = false;
  for (const auto& b : bands) {
    if (b.name.rfind("SR_", 0) == 0) return "landsat89";
    s2 |= is_s2_name(b.name);
  }
  for (const char* key :
       {"SENSOR", "SPACECRAFT_NAME", "PRODUCT_TYPE", "DATATAKE_1_SPACECRAFT_NAME"}) {
    const char* v = first.GetMetadataItem(key);
    if (v && (std::strstr(v, "Sentinel-2") || std::strstr(v, "S2MSI"))) s2 = true;
  }
  return s2 ? "sentinel2" : "generic";
}

// Sentinel-2 BOA_ADD_OFFSET (DN) from the file's metadata: explicit, else from the baseline.
std::optional<double> s2_boa_offset(GDALDataset& ds, int band) {
  for (GDALMajorObject* o : {static_cast<GDALMajorObject*>(ds.GetRasterBand(band)),
                             static_cast<GDALMajorObject*>(&ds)}) {
    if (const char* v = o->GetMetadataItem("BOA_ADD_OFFSET")) return std::atof(v);
  }
  if (const char* pb = ds.GetMetadataItem("PROCESSING_BASELINE")) {
    return std::atof(pb) >= 4.0 ? -1000.0 : 0.0;
  }
  return std::nullopt;
}

bool is_integer(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

MaskType parse_mask_type(const std::string& n) {
  if (n == "scl") return MaskType::kScl;
  if (n == "qa_pixel" || n == "qa") return MaskType::kQaPixel;
  if (n == "binary") return MaskType::kBinary;
  if (n == "none" || n.empty()) return MaskType::kNone;
  throw_usage("unknown mask type '" + n + "' (expected scl, qa_pixel or binary)");
}

const char* mask_type_name(MaskType t) {
  switch (t) {
    case MaskType::kScl:
      return "scl";
    case MaskType::kQaPixel:
      return "qa_pixel";
    case MaskType::kBinary:
      return "binary";
    case MaskType::kNone:
      return "none";
  }
  return "none";
}

Imagery Imagery::open(const ImageryOptions& options) {
  Imagery im;
  im.options_ = options;
  im.role_band_.fill(-1);
  if (options.files.empty()) throw_usage("no input files for " + options.label);
  std::vector<DatasetPtr> datasets;
  for (const auto& file : options.files) {
    DatasetPtr ds = open_raster(file);
    if (ds->GetRasterCount() < 1) throw_input("the raster has no bands", {.file = file});
    const Grid grid = Grid::of(*ds, file);
    const std::string from_name = ds->GetRasterCount() == 1 ? band_name_from_filename(file) : "";
    for (int b = 1; b <= ds->GetRasterCount(); ++b) {
      GDALRasterBand* band = ds->GetRasterBand(b);
      BandInfo info;
      info.file = file;
      info.band = b;
      info.stack_index = static_cast<int>(im.bands_.size()) + 1;
      info.grid = grid;
      info.type = band->GetRasterDataType();
      info.description = band->GetDescription();
      info.name = normalize_band_name(info.description);
      if (info.name.empty()) info.name = from_name;
      im.bands_.push_back(info);
    }
    datasets.push_back(std::move(ds));
  }
  const std::string sensor_id =
      options.sensor == "auto" ? detect_sensor(im.bands_, *datasets.front()) : options.sensor;
  im.sensor_ = &sensor_preset(sensor_id);
  const SensorPreset& preset = *im.sensor_;

  // Names from the preset's order when the input carries none and has the preset's band count.
  const bool any_name = std::any_of(im.bands_.begin(), im.bands_.end(),
                                    [](const BandInfo& b) { return !b.name.empty(); });
  if (!any_name && im.bands_.size() == preset.band_order.size()) {
    for (std::size_t i = 0; i < im.bands_.size(); ++i) im.bands_[i].name = preset.band_order[i];
  }
  // The band map: role=band or name=band, band = 1-based stack index or a band name.
  auto find_band = [&](const std::string& value, const std::string& entry) -> int {
    if (is_integer(value)) {
      const int idx = std::stoi(value);
      if (idx < 1 || idx > static_cast<int>(im.bands_.size())) {
        throw_input("band map entry '" + entry + "' names band " + value + " but " +
                    im.files_text() + " " + (im.bands_.size() == 1 ? "has" : "have") + " " +
                    std::to_string(im.bands_.size()) + " band(s): " + im.describe_bands());
      }
      return idx - 1;
    }
    const std::string want = normalize_band_name(value);
    for (std::size_t i = 0; i < im.bands_.size(); ++i) {
      if ((!want.empty() && im.bands_[i].name == want) || im.bands_[i].description == value) {
        return static_cast<int>(i);
      }
    }
    throw_input("band map entry '" + entry + "': no band named '" + value + "' in " +
                im.files_text() + "; it has: " + im.describe_bands());
  };
  for (const auto& [key, value] : parse_band_map(options.band_map)) {
    const std::string entry = key + "=" + value;
    const int idx = find_band(value, entry);
    if (const auto role = parse_role(key)) {
      im.role_band_[static_cast<std::size_t>(*role)] = idx;
    } else if (const std::string name = normalize_band_name(key); !name.empty()) {
      im.bands_[static_cast<std::size_t>(idx)].name = name;
    } else {
      throw_usage("band map entry '" + entry + "': unknown role or band name '" + key +
                  "' (roles: blue, green, red, nir, swir1, swir2, thermal)");
    }
  }
  for (int r = 0; r < kRoleCount; ++r) {
    if (im.role_band_[static_cast<std::size_t>(r)] >= 0) continue;
    const std::string& want = preset.roles[static_cast<std::size_t>(r)];
    if (want.empty()) continue;
    for (std::size_t i = 0; i < im.bands_.size(); ++i) {
      if (im.bands_[i].name == want) {
        im.role_band_[static_cast<std::size_t>(r)] = static_cast<int>(i);
        break;
      }
    }
  }
  // Reflectance scaling and nodata, per band.
  if (preset.gain_from_user && !options.scale) {
    log::warn(options.label + ": " + preset.title +
              " needs the scene's calibration gain and offset (--scale, --offset); without them "
              "indices are computed from digital numbers");
  }
  for (BandInfo& b : im.bands_) {
    GDALDataset& ds = *datasets[static_cast<std::size_t>(
        std::find(options.files.begin(), options.files.end(), b.file) - options.files.begin())];
    GDALRasterBand* band = ds.GetRasterBand(b.band);
    int has_scale = 0, has_offset = 0;
    const double fscale = band->GetScale(&has_scale), foffset = band->GetOffset(&has_offset);
    const bool file_scaling = (has_scale && fscale != 1.0) || (has_offset && foffset != 0.0);
    if (options.scale || options.offset) {
      b.scale = options.scale.value_or(1.0);
      b.offset = options.offset.value_or(0.0);
    } else if (file_scaling) {
      b.scale = has_scale ? fscale : 1.0;
      b.offset = has_offset ? foffset : 0.0;
    } else {
      b.scale = preset.scale;
      b.offset = preset.offset;
      if (preset.id == "sentinel2") {
        const double boa =
            options.boa_offset ? *options.boa_offset : s2_boa_offset(ds, b.band).value_or(0.0);
        b.offset = boa * preset.scale;
      }
    }
    int has_nodata = 0;
    const double fnodata = band->GetNoDataValue(&has_nodata);
    if (options.nodata) {
      b.nodata = options.nodata;
    } else if (has_nodata) {
      b.nodata = fnodata;
    } else {
      b.nodata = preset.nodata;
    }
    if (b.type == GDT_UInt16) b.saturated = preset.saturated;
  }
  // The native grid: the finest band among those with a role (else the first band).
  int finest = -1;
  for (int r = 0; r < kRoleCount; ++r) {
    const int i = im.role_band_[static_cast<std::size_t>(r)];
    if (i >= 0 && (finest < 0 || im.bands_[static_cast<std::size_t>(i)].grid.dx() <
                                     im.bands_[static_cast<std::size_t>(finest)].grid.dx())) {
      finest = i;
    }
  }
  im.grid_ = im.bands_[static_cast<std::size_t>(std::max(0, finest))].grid;
  if (im.grid_.crs().empty()) {
    throw_input("the raster has no coordinate reference system",
                {.file = im.bands_[static_cast<std::size_t>(std::max(0, finest))].file});
  }
  return im;
}

const BandInfo& Imagery::band(Role r, const std::string& needed_by) const {
  const int i = role_band_[static_cast<std::size_t>(r)];
  if (i < 0) {
    throw_input((needed_by.empty() ? std::string("the ") + role_name(r) + " band is needed"
                                   : needed_by + " needs the " + role_name(r) + " band") +
                ", which " + options_.label + " (" + files_text() + ", sensor " + sensor_->id +
                ") does not have; its bands: " + describe_bands() + ". Name it with --bands " +
                role_name(r) + "=N");
  }
  return bands_[static_cast<std::size_t>(i)];
}

std::string Imagery::describe_bands() const {
  std::string out;
  for (std::size_t i = 0; i < bands_.size(); ++i) {
    const BandInfo& b = bands_[i];
    out += (i ? ", " : "") + std::string("band ") + std::to_string(b.stack_index);
    if (!b.name.empty())
      out += " '" + b.name + "'";
    else if (!b.description.empty())
      out += " \"" + b.description + "\"";
    for (int r = 0; r < kRoleCount; ++r) {
      if (role_band_[static_cast<std::size_t>(r)] == static_cast<int>(i)) {
        out += std::string(" (") + role_name(static_cast<Role>(r)) + ")";
      }
    }
  }
  return out;
}

std::string Imagery::files_text() const {
  std::string out;
  for (std::size_t i = 0; i < options_.files.size(); ++i) {
    if (i == 3) return out + " and " + std::to_string(options_.files.size() - 3) + " more";
    out += (i ? ", " : "") + options_.files[i];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

namespace {

// A warped VRT (as XML) of one band of `file` on the analysis grid.
// The value a warped band holds where nothing maps: the band's nodata, else a value the type
// cannot otherwise carry meaningfully (its extreme), NaN for floats.
double warp_fill(const BandInfo& band) {
  if (band.nodata) return *band.nodata;
  switch (band.type) {
    case GDT_Byte:
      return 255;
    case GDT_UInt16:
      return 65535;
    case GDT_Int16:
      return -32768;
    case GDT_UInt32:
      return 4294967295.0;
    case GDT_Int32:
      return -2147483648.0;
    default:
      return std::numeric_limits<double>::quiet_NaN();
  }
}

std::string warped_vrt_xml(const BandInfo& band, const Grid& analysis, Resampling rs) {
  DatasetPtr src = open_raster(band.file);
  GDALWarpOptions* wo = GDALCreateWarpOptions();
  wo->hSrcDS = GDALDataset::ToHandle(src.get());
  wo->nBandCount = 1;
  wo->panSrcBands = static_cast<int*>(CPLMalloc(sizeof(int)));
  wo->panSrcBands[0] = band.band;
  wo->panDstBands = static_cast<int*>(CPLMalloc(sizeof(int)));
  wo->panDstBands[0] = 1;
  wo->eResampleAlg = rs == Resampling::kNearest    ? GRA_NearestNeighbour
                     : rs == Resampling::kBilinear ? GRA_Bilinear
                                                   : GRA_Average;
  wo->eWorkingDataType = rs == Resampling::kNearest ? band.type : GDT_Float32;
  const double nodata = warp_fill(band);
  if (band.nodata) {
    wo->padfSrcNoDataReal = static_cast<double*>(CPLMalloc(sizeof(double)));
    wo->padfSrcNoDataReal[0] = nodata;
  }
  wo->padfDstNoDataReal = static_cast<double*>(CPLMalloc(sizeof(double)));
  wo->padfDstNoDataReal[0] = nodata;
  wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "INIT_DEST", "NO_DATA");
  const std::string src_wkt = band.grid.crs().wkt(), dst_wkt = analysis.crs().wkt();
  double sgt[6], dgt[6];
  std::copy(band.grid.transform().c.begin(), band.grid.transform().c.end(), sgt);
  std::copy(analysis.transform().c.begin(), analysis.transform().c.end(), dgt);
  wo->pTransformerArg =
      GDALCreateGenImgProjTransformer3(src_wkt.c_str(), sgt, dst_wkt.c_str(), dgt);
  if (!wo->pTransformerArg) {
    GDALDestroyWarpOptions(wo);
    throw_input("cannot transform to the analysis grid: " + last_gdal_error(), {.file = band.file});
  }
  wo->pfnTransformer = GDALGenImgProjTransform;
  GDALDatasetH vrt = GDALCreateWarpedVRT(wo->hSrcDS, static_cast<int>(analysis.width()),
                                         static_cast<int>(analysis.height()), dgt, wo);
  GDALDestroyWarpOptions(wo);
  if (!vrt)
    throw_input("cannot warp to the analysis grid: " + last_gdal_error(), {.file = band.file});
  GDALSetProjection(vrt, dst_wkt.c_str());
  if (band.nodata || rs != Resampling::kNearest)
    GDALSetRasterNoDataValue(GDALGetRasterBand(vrt, 1), nodata);
  char** md = GDALGetMetadata(vrt, "xml:VRT");
  std::string xml = md && md[0] ? md[0] : "";
  GDALClose(vrt);
  if (xml.empty()) throw_internal("could not serialise the warped VRT", {.file = band.file});
  return xml;
}

}  // namespace

BandInfo external_band(const std::string& file, int band_no, const Grid& analysis,
                       const std::string& what) {
  DatasetPtr ds = open_raster(file);
  const int count = ds->GetRasterCount();
  if (band_no < 1 || band_no > count) {
    throw_input(what + " band " + std::to_string(band_no) + " does not exist (the raster has " +
                    std::to_string(count) + " band" + (count == 1 ? "" : "s") + ")",
                {.file = file});
  }
  GDALRasterBand* band = ds->GetRasterBand(band_no);
  BandInfo b;
  b.file = file;
  b.band = band_no;
  b.stack_index = 1;
  b.grid = Grid::of(*ds, file);
  b.type = band->GetRasterDataType();
  b.description = band->GetDescription();
  int has_scale = 0, has_offset = 0, has_nodata = 0;
  const double scale = band->GetScale(&has_scale), offset = band->GetOffset(&has_offset);
  b.scale = has_scale ? scale : 1.0;
  b.offset = has_offset ? offset : 0.0;
  const double nodata = band->GetNoDataValue(&has_nodata);
  if (has_nodata) b.nodata = nodata;
  if (b.grid.crs().empty()) {
    throw_input("the " + what + " has no coordinate reference system", {.file = file});
  }
  Extent e;
  try {
    e = transform_extent(b.grid.extent(), b.grid.crs(), analysis.crs());
  } catch (const Error& err) {
    throw err.with({.file = file});
  }
  if (!e.intersects(analysis.extent())) {
    throw_input("the " + what + " does not overlap the analysis grid (" + analysis.describe() + ")",
                {.file = file});
  }
  return b;
}

BandReader::BandReader(const BandInfo& band, const Grid& analysis, Resampling rs) : band_(band) {
  std::string source = band.file;
  src_band_ = band.band;
  if (analysis.same_as(band.grid)) {
    mode_ = Mode::kDirect;
  } else if (analysis.compatible_with(band.grid)) {
    mode_ = Mode::kOffset;
    analysis.offset_of(band.grid, dcol_, drow_);
  } else if (rs == Resampling::kNearest && analysis.crs().same_as(band.grid.crs()) &&
             band.grid.transform().north_up() && analysis.transform().north_up()) {
    // A coarser grid whose pixels are an exact multiple of ours, on the same lattice (a 20 m
    // SCL under 10 m bands): nearest neighbour is a replication, no warper needed.
    const double f = band.grid.dx() / analysis.dx();
    const double fy = band.grid.dy() / analysis.dy();
    double col, row;
    analysis.transform().world_to_pixel(band.grid.transform().c[0], band.grid.transform().c[3], col,
                                        row);
    const bool integer = std::abs(f - std::round(f)) < 1e-9 && std::abs(fy - f) < 1e-9 && f >= 2 &&
                         std::abs(col - std::round(col)) < 1e-6 &&
                         std::abs(row - std::round(row)) < 1e-6;
    if (integer) {
      mode_ = Mode::kReplicate;
      factor_ = static_cast<int>(std::lround(f));
      dcol_ = std::llround(col), drow_ = std::llround(row);
    } else {
      mode_ = Mode::kWarp;
      source = warped_vrt_xml(band, analysis, rs);
      src_band_ = 1;
      band_.nodata = warp_fill(band);
    }
  } else {
    mode_ = Mode::kWarp;
    source = warped_vrt_xml(band, analysis, rs);
    band_.nodata = warp_fill(band);
    src_band_ = 1;
  }
  pool_ = std::make_unique<DatasetPool>(source);
}

void BandReader::read_raw(const Window& win, GDALDataType type, void* out, double fill) {
  try {
    if (mode_ == Mode::kReplicate) {
      // Source pixels covering the window, read once, then replicated factor x factor.
      auto fdiv = [](int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
      const int64_t f = factor_;
      const int64_t sx0 = fdiv(win.x - dcol_, f), sy0 = fdiv(win.y - drow_, f);
      const int64_t sx1 = fdiv(win.x_end() - 1 - dcol_, f), sy1 = fdiv(win.y_end() - 1 - drow_, f);
      const Window src{sx0, sy0, sx1 - sx0 + 1, sy1 - sy0 + 1};
      const int ts = GDALGetDataTypeSizeBytes(type);
      std::vector<unsigned char> coarse(static_cast<std::size_t>(src.pixels() * ts));
      pool_->read(src_band_, src, type, coarse.data(), fill);
      auto* dst = static_cast<unsigned char*>(out);
      const std::size_t row_bytes = static_cast<std::size_t>(win.w * ts);
      int64_t prev_sr = -1;
      for (int64_t r = 0; r < win.h; ++r) {
        const int64_t sr = fdiv(win.y + r - drow_, f) - sy0;
        unsigned char* drow = dst + r * win.w * ts;
        if (sr == prev_sr) {
          std::memcpy(drow, drow - row_bytes, row_bytes);  // same source row as the one above
          continue;
        }
        prev_sr = sr;
        const unsigned char* srow = coarse.data() + sr * src.w * ts;
        int64_t c = 0;
        while (c < win.w) {
          const int64_t sc = fdiv(win.x + c - dcol_, f);
          const int64_t run = std::min(win.w - c, (sc + 1) * f + dcol_ - (win.x + c));
          const unsigned char* v = srow + (sc - sx0) * ts;
          for (int64_t k = 0; k < run; ++k)
            std::memcpy(drow + (c + k) * ts, v, static_cast<std::size_t>(ts));
          c += run;
        }
      }
      return;
    }
    Window src = win;
    if (mode_ == Mode::kOffset) src.x -= dcol_, src.y -= drow_;
    pool_->read(src_band_, src, type, out, fill);
  } catch (const Error& e) {
    throw e.with({.file = band_.file, .band = band_.band});
  }
}

void BandReader::read_reflectance(const Window& win, float* out) {
  read_raw(win, GDT_Float32, out, std::numeric_limits<double>::quiet_NaN());
  const std::size_t n = static_cast<std::size_t>(win.pixels());
  const float scale = static_cast<float>(band_.scale), offset = static_cast<float>(band_.offset);
  const float nodata = band_.nodata ? static_cast<float>(*band_.nodata) : kNaN;
  const float sat = band_.saturated ? static_cast<float>(*band_.saturated) : kNaN;
  for (std::size_t i = 0; i < n; ++i) {
    const float v = out[i];
    out[i] = (v == nodata || v == sat) ? kNaN : v * scale + offset;  // NaN stays NaN
  }
}

// ---------------------------------------------------------------------------------------------

ValidSamples sample_valid(const std::vector<const Imagery*>& dates, const Grid& grid,
                          int64_t max_side) {
  ValidSamples out;
  const int64_t side = std::max(grid.width(), grid.height());
  out.factor = std::max<int64_t>(1, (side + max_side - 1) / std::max<int64_t>(1, max_side));
  const auto f = static_cast<double>(out.factor);
  GeoTransform gt = grid.transform();
  for (int k : {1, 2, 4, 5}) gt.c[static_cast<std::size_t>(k)] *= f;
  out.coarse = Grid(gt, (grid.width() + out.factor - 1) / out.factor,
                    (grid.height() + out.factor - 1) / out.factor, grid.crs());
  out.valid.assign(static_cast<std::size_t>(out.coarse.width() * out.coarse.height()), 1);
  for (const Imagery* d : dates) {
    MaskOptions m = d->options().mask;
    m.buffer = 0;  // a buffer of coarse cells would be factor times too wide
    MaskReader(m, out.coarse).apply(out.coarse.full_window(), out.valid.data());
  }
  return out;
}

int64_t ValidSamples::valid_pixels(const Window& w) const {
  if (w.w <= 0 || w.h <= 0) return 0;
  int64_t n = 0;
  const int64_t cy0 = w.y / factor, cy1 = (w.y + w.h - 1) / factor;
  const int64_t cx0 = w.x / factor, cx1 = (w.x + w.w - 1) / factor;
  for (int64_t cy = std::max<int64_t>(0, cy0); cy <= std::min(cy1, coarse.height() - 1); ++cy) {
    const int64_t rows = std::min(w.y + w.h, (cy + 1) * factor) - std::max(w.y, cy * factor);
    for (int64_t cx = std::max<int64_t>(0, cx0); cx <= std::min(cx1, coarse.width() - 1); ++cx) {
      if (!valid[static_cast<std::size_t>(cy * coarse.width() + cx)]) continue;
      n += rows * (std::min(w.x + w.w, (cx + 1) * factor) - std::max(w.x, cx * factor));
    }
  }
  return n;
}

MaskReader::MaskReader(const MaskOptions& options, const Grid& analysis)
    : options_(options), width_(analysis.width()), height_(analysis.height()) {
  if (options_.type == MaskType::kNone || options_.file.empty()) return;
  if (options_.buffer < 0 || options_.buffer > 100) {
    throw_usage("mask buffer must be 0 to 100 pixels", {.file = options_.file});
  }
  DatasetPtr ds = open_raster(options_.file);
  if (options_.band < 1 || options_.band > ds->GetRasterCount()) {
    throw_input("mask band " + std::to_string(options_.band) + " does not exist",
                {.file = options_.file});
  }
  BandInfo b;
  b.file = options_.file;
  b.band = options_.band;
  b.grid = Grid::of(*ds, options_.file);
  b.type = ds->GetRasterBand(options_.band)->GetRasterDataType();
  if (b.grid.crs().empty())
    throw_input("the mask raster has no coordinate reference system", {.file = b.file});
  if (!b.grid.extent().intersects(
          transform_extent(analysis.extent(), analysis.crs(), b.grid.crs()))) {
    throw_input("the mask does not overlap the imagery", {.file = b.file});
  }
  reader_ = std::make_unique<BandReader>(b, analysis, Resampling::kNearest);
}

void MaskReader::apply(const Window& win, uint8_t* valid) {
  if (!reader_) return;
  const int n = options_.buffer;
  const Window big{win.x - n, win.y - n, win.w + 2 * n, win.h + 2 * n};
  std::vector<uint16_t> raw(static_cast<std::size_t>(big.pixels()));
  // Outside the mask raster: invalid (SCL 0 = no data; QA fill bit; binary 0).
  reader_->read_raw(big, GDT_UInt16, raw.data(), options_.type == MaskType::kQaPixel ? 1.0 : 0.0);
  std::vector<uint8_t> bad(raw.size()), cloud(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const uint16_t v = raw[i];
    switch (options_.type) {
      case MaskType::kScl:
        // 0 no data, 1 saturated/defective, 3 cloud shadow, 8/9 cloud, 10 thin cirrus, 11 snow.
        cloud[i] = v == 3 || v == 8 || v == 9 || v == 10;
        bad[i] = cloud[i] || v == 0 || v == 1 || (options_.snow_invalid && v == 11);
        break;
      case MaskType::kQaPixel:
        // Bits: 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow.
        cloud[i] = (v & 0b11110) != 0;
        bad[i] = cloud[i] || (v & 1) || (options_.snow_invalid && (v & 0b100000));
        break;
      default:
        bad[i] = cloud[i] = v == 0;
    }
  }
  if (n > 0) {
    // Square dilation of the cloud and shadow pixels by n, separable: rows then columns.
    std::vector<uint8_t> tmp(cloud.size());
    const int64_t W = big.w, H = big.h;
    for (int64_t r = 0; r < H; ++r) {
      for (int64_t c = 0; c < W; ++c) {
        uint8_t m = 0;
        for (int64_t k = std::max<int64_t>(0, c - n); k <= std::min(W - 1, c + n) && !m; ++k)
          m = cloud[static_cast<std::size_t>(r * W + k)];
        tmp[static_cast<std::size_t>(r * W + c)] = m;
      }
    }
    for (int64_t r = 0; r < H; ++r) {
      for (int64_t c = 0; c < W; ++c) {
        uint8_t m = 0;
        for (int64_t k = std::max<int64_t>(0, r - n); k <= std::min(H - 1, r + n) && !m; ++k)
          m = tmp[static_cast<std::size_t>(k * W + c)];
        if (m) bad[static_cast<std::size_t>(r * W + c)] = 1;
      }
    }
  }
  for (int64_t r = 0; r < win.h; ++r) {
    const uint8_t* src = bad.data() + (r + n) * big.w + n;
    uint8_t* dst = valid + r * win.w;
    for (int64_t c = 0; c < win.w; ++c) dst[c] &= static_cast<uint8_t>(!src[c]);
  }
}

// ---------------------------------------------------------------------------------------------

Grid analysis_grid(const std::vector<const Imagery*>& dates, const GridSpec& spec) {
  if (dates.empty()) throw_internal("analysis_grid of no dates");
  const Grid& ref = dates.front()->grid();
  Grid g = ref;
  if (!spec.crs.empty() || spec.resolution > 0 || spec.extent) {
    const Crs crs = spec.crs.empty() ? ref.crs() : Crs::from_user_input(spec.crs);
    Extent e = spec.extent ? *spec.extent : transform_extent(ref.extent(), ref.crs(), crs);
    double res = spec.resolution;
    if (res <= 0) {
      if (crs.same_as(ref.crs())) {
        res = ref.dx();
      } else {
        // Keep about the same number of pixels across the first date's extent.
        res = e.width() / static_cast<double>(ref.width());
      }
    }
    // Target-aligned pixels: snap the extent outward to multiples of the resolution.
    e = {std::floor(e.xmin / res) * res, std::floor(e.ymin / res) * res,
         std::ceil(e.xmax / res) * res, std::ceil(e.ymax / res) * res};
    g = Grid(GeoTransform::north_up(e.xmin, e.ymax, res, res),
             static_cast<int64_t>(std::llround(e.width() / res)),
             static_cast<int64_t>(std::llround(e.height() / res)), crs);
  }
  for (const Imagery* d : dates) {
    const Extent e = transform_extent(d->grid().extent(), d->grid().crs(), g.crs());
    if (!e.intersects(g.extent())) {
      throw_input(d->options().label + " (" + d->files_text() +
                  ") does not overlap the analysis grid (" + g.describe() + ")");
    }
  }
  return g;
}

}  // namespace fw::rasters
