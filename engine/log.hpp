// Logging: readable lines by default, JSON lines for servers. Thread-safe.
// GDAL (and PROJ through GDAL) and GEOS messages are routed here instead of raw stderr.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace fw::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };
enum class Format { kText, kJson };

using Fields = std::vector<std::pair<std::string, std::string>>;

void set_level(Level level);
Level level();
void set_format(Format format);
Format format();
// Where lines go (default stderr). Not owned.
void set_sink(std::FILE* sink);
// Installs the GDAL/CPL error handler that routes GDAL's messages into this log.
void route_gdal();

Level parse_level(const std::string& name);  // throws fw::Error (usage) on unknown names
Format parse_format(const std::string& name);

void write(Level level, const std::string& message, const Fields& fields = {});
inline void debug(const std::string& m, const Fields& f = {}) {
  write(Level::kDebug, m, f);
}
inline void info(const std::string& m, const Fields& f = {}) {
  write(Level::kInfo, m, f);
}
inline void warn(const std::string& m, const Fields& f = {}) {
  write(Level::kWarn, m, f);
}
inline void error(const std::string& m, const Fields& f = {}) {
  write(Level::kError, m, f);
}

// Serialises a string as a JSON string literal (with quotes).
std::string json_quote(const std::string& s);

}  // namespace fw::log
