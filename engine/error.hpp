// Errors: one exception type carrying context (file, layer, band, stage) and an exit code.
#pragma once

#include <stdexcept>
#include <string>

namespace fw {

// Process exit codes, documented in README.md ("Exit codes").
enum class ExitCode : int {
  kOk = 0,
  kInternal = 1,   // a bug or an unexpected failure
  kUsage = 2,      // bad command line or configuration
  kInput = 3,      // missing, unreadable or invalid input data
  kOutput = 4,     // an output could not be written
  kCancelled = 5,  // interrupted (SIGINT/SIGTERM) or cancelled
  kLocked = 6,     // another run holds the output folder's lock
  kNoData = 7,     // the inputs hold no valid pixels to work on
};

const char* exit_code_name(ExitCode code);

// Where an error happened; every field is optional.
struct ErrorContext {
  std::string file;
  std::string layer;
  int band = 0;
  std::string stage;
  std::string field;
  int line = 0;
  int column = 0;
};

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, std::string message, ErrorContext context = {});

  ExitCode code() const noexcept { return code_; }
  const ErrorContext& context() const noexcept { return context_; }
  const std::string& message() const noexcept { return message_; }

  // Returns a copy with more context; fields already set are kept.
  Error with(const ErrorContext& more) const;

 private:
  static std::string format(const std::string& message, const ErrorContext& context);
  ExitCode code_;
  std::string message_;
  ErrorContext context_;
};

// Shorthands.
[[noreturn]] void throw_input(const std::string& message, ErrorContext context = {});
[[noreturn]] void throw_usage(const std::string& message, ErrorContext context = {});
[[noreturn]] void throw_output(const std::string& message, ErrorContext context = {});
[[noreturn]] void throw_internal(const std::string& message, ErrorContext context = {});

// The last GDAL/OGR error message of this thread, or "" when there is none.
std::string last_gdal_error();

}  // namespace fw
