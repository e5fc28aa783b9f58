#include "engine/shard.hpp"

#include <algorithm>
#include <charconv>

#include "engine/error.hpp"

namespace fw {
namespace {

bool parse_int(const std::string& s, int& out) {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  const auto r = std::from_chars(s.data(), end, out);
  return r.ec == std::errc() && r.ptr == end;
}

}  // namespace

ShardSpec ShardSpec::parse(const std::string& text) {
  const auto slash = text.find('/');
  ShardSpec s;
  if (slash == std::string::npos || !parse_int(text.substr(0, slash), s.index) ||
      !parse_int(text.substr(slash + 1), s.count)) {
    throw_usage("--shard '" + text + "': expected i/N, shard i (0-based) of N shards, e.g. 0/4");
  }
  if (s.count < 1) throw_usage("--shard '" + text + "': the shard count N must be at least 1");
  if (s.index < 0 || s.index >= s.count) {
    throw_usage("--shard '" + text + "': the shard index must be in 0.." +
                std::to_string(s.count - 1) + " (0-based)");
  }
  return s;
}

std::string ShardSpec::text() const {
  return std::to_string(index) + "/" + std::to_string(count);
}

std::vector<ShardRange> assign_shards(const std::vector<int64_t>& weights, int count) {
  if (count < 1) throw_internal("assign_shards: the shard count must be at least 1");
  const std::size_t n = weights.size();
  const auto shards = static_cast<std::size_t>(count);
  std::vector<long double> prefix(n + 1, 0);
  bool any = false;
  for (const int64_t w : weights) {
    if (w < 0) throw_internal("assign_shards: negative window weight");
    any = any || w > 0;
  }
  for (std::size_t i = 0; i < n; ++i)
    prefix[i + 1] = prefix[i] + static_cast<long double>(any ? weights[i] : 1);
  const long double total = prefix[n];
  std::vector<ShardRange> out(shards);
  std::size_t begin = 0;
  for (std::size_t k = 0; k < shards; ++k) {
    std::size_t end = n;
    if (k + 1 < shards) {
      // The first boundary whose running total reaches (k + 1) / count of the total ...
      const long double target = total * static_cast<long double>(k + 1) / count;
      end = static_cast<std::size_t>(std::lower_bound(prefix.begin(), prefix.end(), target) -
                                     prefix.begin());
      // ... kept where every shard so far and every shard to come can have a window.
      const std::size_t lo = std::min(n, k + 1);
      const std::size_t hi = n >= shards ? n - (shards - k - 1) : n;
      end = std::clamp(end, std::max(lo, begin), std::max(hi, begin));
    }
    out[k] = {begin, end};
    begin = end;
  }
  return out;
}

}  // namespace fw
