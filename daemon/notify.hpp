#pragma once
// The systemd service manager protocol (sd_notify(3)) for Type=notify units: READY=1,
// RELOADING=1, STOPPING=1, STATUS= and the watchdog keep-alive WATCHDOG=1. Outside systemd
// (NOTIFY_SOCKET unset) every call is a cheap no-op, so the daemon calls them unconditionally.
//
// Thread safety: not thread-safe; the daemon's main thread owns the notifier. No buffers are
// retained: each call formats one datagram and sends it at once.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "engine/live_pipeline.hpp"

namespace synwatch {

class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID from the environment once.
  SystemdNotifier();

  [[nodiscard]] bool enabled() const noexcept { return enabled_; }
  // WatchdogSec= of the unit as passed in WATCHDOG_USEC, if the watchdog is on for this process.
  [[nodiscard]] std::optional<std::chrono::microseconds> watchdog_timeout() const noexcept {
    return watchdog_timeout_;
  }
  // How often to send WATCHDOG=1: half the timeout, so one late loop turn is not fatal.
  [[nodiscard]] std::optional<std::chrono::milliseconds> watchdog_period() const noexcept;

  void ready(std::string_view status);
  void reloading();  // RELOADING=1 with MONOTONIC_USEC, as systemd 253+ expects for notify-reload
  void stopping();
  void status(std::string_view line);
  void watchdog();
  // Startup failed: tells systemd why (STATUS=) before the process exits with `exit_code`.
  void failed(std::string_view why, int exit_code);

 private:
  void send(const std::string& message);

  bool enabled_ = false;
  std::optional<std::chrono::microseconds> watchdog_timeout_;
  std::string last_status_;
};

// The one-line STATUS= summary: interfaces with their state, open incidents, packets, drops.
std::string service_status_line(const PipelineSnapshot& snapshot);

// The capture thread refreshes the snapshot every 250 ms; if the latest refresh is older than
// `limit`, the thread is stuck (or dead) and the watchdog must not be fed.
bool capture_thread_alive(const PipelineSnapshot& snapshot,
                          std::chrono::steady_clock::time_point now,
                          std::chrono::milliseconds limit);

}  // namespace synwatch
