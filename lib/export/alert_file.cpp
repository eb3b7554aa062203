#include "export/alert_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "export/event_json.hpp"

namespace synwatch {

Expected<AlertFile> AlertFile::open(const std::string& path) {
  // Non-blocking: a FIFO whose reader stalls must fail a write, not freeze the main loop (and
  // with it signals, metrics and the watchdog). Regular files ignore the flag.
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0640);
  if (fd < 0) {
    const int error = errno;
    Error failed = Error::from_errno(error, fmt::format("cannot open alert file '{}'", path));
    if (error == ENXIO) {
      failed.message += " (a FIFO needs its reader running before synwatchd starts)";
    }
    return std::unexpected(std::move(failed));
  }
  struct stat info {};
  const bool regular = ::fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
  return AlertFile(fd, path, regular);
}

AlertFile::AlertFile(AlertFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      failures_(other.failures_),
      regular_(other.regular_),
      torn_(other.torn_) {}

AlertFile& AlertFile::operator=(AlertFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    failures_ = other.failures_;
    regular_ = other.regular_;
    torn_ = other.torn_;
  }
  return *this;
}

AlertFile::~AlertFile() {
  if (fd_ >= 0) ::close(fd_);
}

void AlertFile::publish(const IncidentEvent& event) {
  std::string line = to_json(event).dump() + "\n";
  // A line cut short earlier (and not taken back) ends here, so this one starts on its own.
  if (torn_) line.insert(line.begin(), '\n');
  const off_t size_before = regular_ ? ::lseek(fd_, 0, SEEK_END) : -1;
  std::size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      ++failures_;
      // Take back a partial line (a full disk, a file size limit) so the file stays JSON Lines.
      if (written > 0) {
        torn_ = !(size_before >= 0 && ::ftruncate(fd_, size_before) == 0);
      }
      spdlog::error("cannot write incident {} event {} to alert file '{}': {}", event.incident_id,
                    event.event_id, path_,
                    error == EAGAIN ? "the reader is not keeping up" : std::strerror(error));
      return;
    }
    written += static_cast<std::size_t>(n);
  }
  torn_ = false;
  if (event.type != EventType::kUpdated && regular_ && ::fsync(fd_) != 0) {
    ++failures_;
    spdlog::error("cannot fsync alert file '{}': {}", path_, std::strerror(errno));
  }
}

std::string describe_for_log(const IncidentEvent& e) {
  const std::string target = describe_target(e.target, e.host_scope);
  std::string line = fmt::format(
      "incident {} {}: {} SYN flood on {} stale={} baseline={:.0f} stale_after={}ms "
      "half_open={} (syn_recv={} syn_seen={} peak={}) syn_rate={:.0f}/s distinct_sources={:.0f} "
      "entropy={:.2f} completion={:.2f}",
      e.incident_id, to_string(e.type), to_string(e.kind), target, e.stats.stale, e.stats.baseline,
      e.stats.stale_after / kNanosPerMilli, e.stats.half_open, e.stats.syn_recv, e.stats.syn_seen,
      e.stats.peak_half_open, e.stats.syn_rate, e.stats.distinct_sources, e.stats.source_entropy,
      e.stats.completion_ratio);
  if (!e.top_sources.empty()) {
    line += " top_sources=";
    const std::size_t shown = std::min<std::size_t>(e.top_sources.size(), kTopSourcesInLog);
    for (std::size_t i = 0; i < shown; ++i) {
      line += fmt::format("{}{}({})", i == 0 ? "" : ",", e.top_sources[i].address.to_string(),
                          e.top_sources[i].syns);
    }
  }
  if (e.type == EventType::kEnded && e.ended_at) {
    line += fmt::format(" lasted={:.1f}s", to_seconds(*e.ended_at - e.started_at));
  }
  if (e.type != EventType::kUpdated) line += " reason=\"" + e.reason + "\"";
  if (!e.evidence_path.empty() && e.type != EventType::kUpdated) {
    line += " evidence=" + e.evidence_path;
  }
  return line;
}

}  // namespace synwatch
