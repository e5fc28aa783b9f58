#include "engine/progress.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "engine/error.hpp"
#include "engine/log.hpp"

namespace fw {

void CancelToken::check() const {
  if (cancelled()) throw Error(ExitCode::kCancelled, "cancelled");
}

CancelToken& process_cancel_token() {
  static CancelToken token;
  return token;
}

namespace {
extern "C" void on_signal(int) {
  process_cancel_token().cancel();
}
}  // namespace

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stderr_is_terminal() {
  return isatty(STDERR_FILENO) && !std::getenv("FW_NO_PROGRESS");
}

ProgressReporter::ProgressReporter(bool terminal, double log_every_s)
    : terminal_(terminal), log_every_s_(log_every_s), last_log_(std::chrono::steady_clock::now()) {}

ProgressReporter::~ProgressReporter() {
  finish();
}

ProgressFn ProgressReporter::fn() {
  return [this](double f, const std::string& label) { update(f, label); };
}

void ProgressReporter::update(double f, const std::string& label) {
  std::lock_guard lock(mu_);
  const int percent = static_cast<int>(f * 100.0 + 1e-9);
  if (label != label_) {
    if (terminal_ && drawn_) std::fputc('\n', stderr);
    label_ = label;
    last_percent_ = -1;
    last_logged_decile_ = -1;
    drawn_ = false;
  }
  if (percent == last_percent_) return;
  last_percent_ = percent;
  if (terminal_) {
    const int width = 30, filled = percent * width / 100;
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.append(static_cast<std::size_t>(width - filled), '.');
    std::fprintf(stderr, "\r%-24s [%s] %3d%%", label.c_str(), bar.c_str(), percent);
    std::fflush(stderr);
    drawn_ = true;
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  const int decile = percent / 10;
  const double since = std::chrono::duration<double>(now - last_log_).count();
  if (decile != last_logged_decile_ || since >= log_every_s_) {
    last_logged_decile_ = decile;
    last_log_ = now;
    log::info("progress", {{"task", label}, {"percent", std::to_string(percent)}});
  }
}

void ProgressReporter::finish() {
  std::lock_guard lock(mu_);
  if (terminal_ && drawn_) std::fputc('\n', stderr);
  drawn_ = false;
}

}  // namespace fw
