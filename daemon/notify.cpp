#include "notify.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace synwatch {

namespace {

std::uint64_t monotonic_usec() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000u +
         static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
}

// STATUS= is one line; a newline would start a new (bogus) assignment in the datagram.
std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace

SystemdNotifier::SystemdNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  std::uint64_t usec = 0;
  // Also honours WATCHDOG_PID, so a child that inherited the environment does not feed it.
  if (enabled_ && ::sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    watchdog_timeout_ = std::chrono::microseconds(usec);
  }
}

std::optional<std::chrono::milliseconds> SystemdNotifier::watchdog_period() const noexcept {
  if (!watchdog_timeout_) return std::nullopt;
  return std::max(std::chrono::milliseconds(1),
                  std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog_timeout_ / 2));
}

void SystemdNotifier::send(const std::string& message) {
  if (!enabled_) return;
  if (const int rc = ::sd_notify(0, message.c_str()); rc < 0) {
    spdlog::debug("sd_notify failed: {}", std::strerror(-rc));
  }
}

void SystemdNotifier::ready(std::string_view status) {
  last_status_ = one_line(status);
  send("READY=1\nSTATUS=" + last_status_);
}

void SystemdNotifier::reloading() {
  send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration",
                   monotonic_usec()));
}

void SystemdNotifier::stopping() {
  send("STOPPING=1\nSTATUS=stopping");
}

void SystemdNotifier::status(std::string_view line) {
  auto text = one_line(line);
  if (text == last_status_) return;
  last_status_ = std::move(text);
  send("STATUS=" + last_status_);
}

void SystemdNotifier::watchdog() {
  if (watchdog_timeout_) send("WATCHDOG=1");
}

void SystemdNotifier::failed(std::string_view why, int exit_code) {
  send(fmt::format("STATUS=failed (exit code {}): {}", exit_code, one_line(why)));
}

std::string service_status_line(const PipelineSnapshot& snapshot) {
  std::string interfaces;
  std::uint64_t received = 0;
  std::uint64_t dropped = 0;
  for (const auto& interface : snapshot.interfaces) {
    if (!interfaces.empty()) interfaces += ", ";
    interfaces += interface.name;
    if (!interface.open) interfaces += " (down, retrying)";
    received += interface.stats.received;
    dropped += interface.stats.dropped_kernel + interface.stats.dropped_interface;
  }
  return fmt::format("watching {}; {} open incident{}; {} packets captured, {} dropped", interfaces,
                     snapshot.open_incidents, snapshot.open_incidents == 1 ? "" : "s", received,
                     dropped);
}

bool capture_thread_alive(const PipelineSnapshot& snapshot,
                          std::chrono::steady_clock::time_point now,
                          std::chrono::milliseconds limit) {
  return now - snapshot.refreshed_at <= limit;
}

}  // namespace synwatch
