#pragma once
// Appends incident events as JSON Lines to `alerts.file`: the same objects `--read` prints.
// `started` and `ended` are fsync'd before publish() returns, so a crash cannot lose the record
// of an incident beginning or ending; `updated` lines are left to the page cache. A write that
// fails part-way (a full disk) is taken back, so the file stays whole lines; a FIFO is written
// without blocking, so a stalled reader costs events (counted as failures), never the daemon.
// Thread safety: none; used by the daemon's main loop only.

#include <string>

#include "common/error.hpp"
#include "detect/incident.hpp"

namespace synwatch {

class AlertFile final : public EventSink {
 public:
  static Expected<AlertFile> open(const std::string& path);
  AlertFile(AlertFile&& other) noexcept;
  AlertFile& operator=(AlertFile&& other) noexcept;
  AlertFile(const AlertFile&) = delete;
  AlertFile& operator=(const AlertFile&) = delete;
  ~AlertFile() override;

  void publish(const IncidentEvent& event) override;
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::uint64_t failures() const noexcept { return failures_; }

 private:
  AlertFile(int fd, std::string path, bool regular)
      : fd_(fd), path_(std::move(path)), regular_(regular) {}
  int fd_ = -1;
  std::string path_;
  std::uint64_t failures_ = 0;
  bool regular_ = true;  // a regular file: partial lines can be truncated away, fsync works
  bool torn_ = false;    // the last line is incomplete in the file (could not be taken back)
};

// How many top sources a log line names (with their SYN counts).
inline constexpr std::size_t kTopSourcesInLog = 5;

// One human log line per event: target, kind, the key figures, the top sources; started and
// ended also the reason, ended how long it lasted.
std::string describe_for_log(const IncidentEvent& event);

}  // namespace synwatch
