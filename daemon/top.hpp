#pragma once
// `synwatchd top`: a running daemon's open incidents and busiest destinations, read from its
// status socket (export/status_socket.hpp) and redrawn every interval, like top(1). On a terminal
// it takes the whole screen (the alternate screen, restored on exit; q or Ctrl-C quits);
// otherwise, or with --once, it prints frames one after another (batch mode, like top -b).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>

#include "export/text_report.hpp"

namespace synwatch {

struct TopOptions {
  std::filesystem::path socket;
  bool once = false;                          // one frame, then exit
  ReportFormat format = ReportFormat::kText;  // kJson: the document itself, one line per frame
  std::chrono::milliseconds interval{1000};
  std::optional<std::uint64_t> iterations;  // frames before exiting; nullopt: until stopped
};

// Returns the exit code: 0, or 69 (EX_UNAVAILABLE) when the first read of the status socket
// fails (no daemon, no permission); later failures are shown and retried.
int run_top(const TopOptions& options);

}  // namespace synwatch
