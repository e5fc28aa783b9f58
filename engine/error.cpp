#include "engine/error.hpp"

#include <cpl_error.h>

namespace fw {

const char* exit_code_name(ExitCode code) {
  switch (code) {
    case ExitCode::kOk:
      return "ok";
    case ExitCode::kInternal:
      return "internal";
    case ExitCode::kUsage:
      return "usage";
    case ExitCode::kInput:
      return "input";
    case ExitCode::kOutput:
      return "output";
    case ExitCode::kCancelled:
      return "cancelled";
    case ExitCode::kLocked:
      return "locked";
    case ExitCode::kNoData:
      return "no_data";
  }
  return "unknown";
}

Error::Error(ExitCode code, std::string message, ErrorContext context)
    : std::runtime_error(format(message, context)),
      code_(code),
      message_(std::move(message)),
      context_(std::move(context)) {}

std::string Error::format(const std::string& message, const ErrorContext& c) {
  std::string prefix;
  if (!c.file.empty()) {
    prefix += c.file;
    if (c.line > 0) {
      prefix += ":" + std::to_string(c.line);
      if (c.column > 0) prefix += ":" + std::to_string(c.column);
    }
  }
  auto add = [&prefix](const std::string& what) {
    if (!prefix.empty()) prefix += ", ";
    prefix += what;
  };
  if (!c.layer.empty()) add("layer '" + c.layer + "'");
  if (c.band > 0) add("band " + std::to_string(c.band));
  if (!c.field.empty()) add("field '" + c.field + "'");
  std::string out;
  if (!c.stage.empty()) out += "[" + c.stage + "] ";
  if (!prefix.empty()) out += prefix + ": ";
  return out + message;
}

Error Error::with(const ErrorContext& more) const {
  ErrorContext c = context_;
  if (c.file.empty()) c.file = more.file;
  if (c.layer.empty()) c.layer = more.layer;
  if (c.band == 0) c.band = more.band;
  if (c.stage.empty()) c.stage = more.stage;
  if (c.field.empty()) c.field = more.field;
  if (c.line == 0) {
    c.line = more.line;
    c.column = more.column;
  }
  return Error(code_, message_, c);
}

void throw_input(const std::string& message, ErrorContext context) {
  throw Error(ExitCode::kInput, message, std::move(context));
}
void throw_usage(const std::string& message, ErrorContext context) {
  throw Error(ExitCode::kUsage, message, std::move(context));
}
void throw_output(const std::string& message, ErrorContext context) {
  throw Error(ExitCode::kOutput, message, std::move(context));
}
void throw_internal(const std::string& message, ErrorContext context) {
  throw Error(ExitCode::kInternal, message, std::move(context));
}

std::string last_gdal_error() {
  if (CPLGetLastErrorType() == CE_None) return {};
  const char* msg = CPLGetLastErrorMsg();
  return msg ? std::string(msg) : std::string();
}

}  // namespace fw
