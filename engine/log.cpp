#include "engine/log.hpp"

#include <cpl_error.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>

#include "engine/error.hpp"

namespace fw::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};
std::atomic<Format> g_format{Format::kText};
std::atomic<std::FILE*> g_sink{nullptr};
std::mutex g_mutex;

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "off";
  }
  return "info";
}

std::string timestamp() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t t = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

void CPL_STDCALL gdal_handler(CPLErr err, CPLErrorNum num, const char* msg) {
  // Failures are also reported by the caller through fw::Error with CPLGetLastErrorMsg(),
  // so they are logged at debug level here to avoid saying the same thing twice.
  Level l = Level::kDebug;
  if (err == CE_Warning) l = Level::kWarn;
  if (err == CE_Fatal) l = Level::kError;
  if (static_cast<int>(l) < static_cast<int>(g_level.load())) return;
  write(l, std::string("GDAL: ") + (msg ? msg : ""), {{"cpl_errno", std::to_string(num)}});
}

}  // namespace

void set_level(Level l) {
  g_level = l;
}
Level level() {
  return g_level;
}
void set_format(Format f) {
  g_format = f;
}
Format format() {
  return g_format;
}
void set_sink(std::FILE* sink) {
  g_sink = sink;
}
void route_gdal() {
  CPLSetErrorHandler(gdal_handler);
}

Level parse_level(const std::string& n) {
  if (n == "debug") return Level::kDebug;
  if (n == "info") return Level::kInfo;
  if (n == "warn" || n == "warning") return Level::kWarn;
  if (n == "error") return Level::kError;
  if (n == "off" || n == "quiet") return Level::kOff;
  throw_usage("unknown log level '" + n + "' (expected debug, info, warn, error, off)");
}

Format parse_format(const std::string& n) {
  if (n == "text") return Format::kText;
  if (n == "json") return Format::kJson;
  throw_usage("unknown log format '" + n + "' (expected text or json)");
}

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

void write(Level l, const std::string& message, const Fields& fields) {
  if (static_cast<int>(l) < static_cast<int>(g_level.load()) || l == Level::kOff) return;
  std::string line;
  if (g_format == Format::kJson) {
    line = "{\"ts\":" + json_quote(timestamp()) + ",\"level\":" + json_quote(level_name(l)) +
           ",\"msg\":" + json_quote(message);
    for (const auto& [k, v] : fields) line += "," + json_quote(k) + ":" + json_quote(v);
    line += "}\n";
  } else {
    line = timestamp() + " " + level_name(l) + ": " + message;
    for (const auto& [k, v] : fields) line += " " + k + "=" + v;
    line += "\n";
  }
  std::FILE* sink = g_sink.load();
  if (!sink) sink = stderr;
  std::lock_guard lock(g_mutex);
  std::fputs(line.c_str(), sink);
  std::fflush(sink);
}

}  // namespace fw::log
