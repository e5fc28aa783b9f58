// Progress reporting and cooperative cancellation.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>

namespace fw {

// Called with the fraction done (0..1) and a short label. Must be cheap and thread-safe.
using ProgressFn = std::function<void(double fraction, const std::string& label)>;

// A flag that long work polls; setting it makes the work stop with ExitCode::kCancelled.
class CancelToken {
 public:
  void cancel() { flag_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return flag_.load(std::memory_order_relaxed); }
  // Throws fw::Error (cancelled) when cancelled.
  void check() const;

 private:
  std::atomic<bool> flag_{false};
};

// The process-wide token that SIGINT and SIGTERM set (see install_signal_handlers).
CancelToken& process_cancel_token();
void install_signal_handlers();

// A progress sink for people and logs: a redrawn bar on a terminal, otherwise a log line at
// most every `log_every` seconds and at every 10 % step.
class ProgressReporter {
 public:
  explicit ProgressReporter(bool terminal, double log_every_s = 10.0);
  ~ProgressReporter();
  ProgressFn fn();
  void finish();

 private:
  void update(double f, const std::string& label);
  bool terminal_;
  double log_every_s_;
  std::mutex mu_;
  std::string label_;
  int last_percent_ = -1;
  int last_logged_decile_ = -1;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_log_;
};

// True when stderr is a terminal (progress bars) and not disabled by FW_NO_PROGRESS.
bool stderr_is_terminal();

}  // namespace fw
