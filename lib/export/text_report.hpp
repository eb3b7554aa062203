#pragma once
// The text form of `synwatchd --read` (--format text, the default on a terminal), for a person
// rather than a program: one line per incident event as it happens, then a table with one row
// per incident, then the capture summary. The JSON Lines form (event_json.hpp) stays the
// contract for programs; the wording here may change between versions.
// Thread safety: the render functions are pure; IncidentSummaries and TextReportSink are for one
// thread (the engine's).

#include <array>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/time.hpp"
#include "detect/incident.hpp"

namespace synwatch {

enum class ReportFormat : std::uint8_t { kJson, kText };

// "json" or "text"; nullopt for anything else.
std::optional<ReportFormat> parse_report_format(std::string_view name);

// One line (without its newline) for an event: time (UTC), event, target, kind, half-open
// figures, rates, sources, the heaviest sources with their SYN counts, the reason, and the
// evidence capture when there is one. Example (one line):
// 2024-01-01 00:00:02.250 started 198.51.100.10:80 concentrated: half-open 4,800 (4,700 stale,
// peak 4,800), 5,000 SYN/s, 4,990 SYN-ACK/s, 0 completed/s, ~3 sources; top 198.18.0.1 (3,000),
// 198.18.0.2 (1,000), 198.18.0.3 (1,000); reason: 4700 stale half-open connections to ...
std::string render_event_line(const IncidentEvent& event);

// What one incident came to, over all its events.
struct IncidentSummary {
  std::string incident_id;
  std::string target;  // describe_target(): "198.51.100.10:80", "198.51.100.10 (all ports)"
  AttackKind kind = AttackKind::kSpoofedRandom;  // as of its latest event
  TimestampNs started_at = 0;
  std::optional<TimestampNs> ended_at;  // nullopt: no ended event (the capture was cut short)
  TimestampNs last_event_at = 0;
  std::uint32_t peak_half_open = 0;
  double peak_syn_rate = 0;          // SYN/s, the highest any event reported
  double peak_distinct_sources = 0;  // the most distinct sources any event's window held
  // Heaviest first: each source's largest SYN count in any one event's window. Windows of
  // successive events may overlap, so counts are not added up across events.
  std::vector<TopSource> top_sources;
  std::uint32_t events = 0;
};

// Folds events into one summary per incident, in the order the incidents started.
class IncidentSummaries {
 public:
  void add(const IncidentEvent& event);
  [[nodiscard]] const std::vector<IncidentSummary>& incidents() const noexcept {
    return incidents_;
  }

 private:
  std::vector<IncidentSummary> incidents_;
  std::unordered_map<std::string, std::size_t> by_id_;  // incident_id -> index in incidents_
};

// The incident table: a title, a header row and one aligned row per incident (target, kind,
// start, end, duration, peak half-open, peak SYN rate, distinct sources, top sources), each line
// ending in a newline; "No incidents.\n" without any. `top_sources_shown` bounds the last column.
std::string render_incident_table(std::span<const IncidentSummary> incidents,
                                  std::size_t top_sources_shown = 3);

struct CaptureFileEntry {
  std::string path;
  std::optional<TimestampNs> first_packet;  // nullopt: the file holds no packets
};

// The figures of a finished --read, for render_capture_summary.
struct CaptureSummary {
  std::vector<CaptureFileEntry> files;  // in the order they were read
  std::uint64_t packets = 0;
  std::uint64_t tcp_segments = 0;
  std::uint64_t decode_errors = 0;
  std::string decode_error_detail;  // "truncated_ip=3, bad_tcp_offset=1", or empty
  std::uint64_t handshakes_started = 0;
  std::uint64_t handshakes_completed = 0;
  std::uint64_t handshakes_reset = 0;
  std::uint64_t handshakes_expired = 0;
  std::uint64_t handshakes_evicted = 0;
  std::uint64_t handshakes_pending = 0;
  std::array<std::uint64_t, kAttackKindCount> incidents_by_kind{};  // indexed by AttackKind
  std::uint64_t incidents_ended = 0;
  std::uint64_t events = 0;
  DurationNs elapsed = 0;  // wall-clock time the analysis took
};

// The capture summary: which file(s) were read (several: said to be read as one capture, in
// time order, each with its first packet's time), packets, handshakes and incidents, with
// numbers for people. Each line ends in a newline.
std::string render_capture_summary(const CaptureSummary& summary);

// Writes render_event_line() for each event to a stdio stream, flushed so that a reader sees
// each at once, and remembers every incident for the table finish() writes at the end.
// written()/failed() count event lines as JsonLinesSink does, for the same exit status.
class TextReportSink final : public EventSink {
 public:
  explicit TextReportSink(std::FILE* stream) : stream_(stream) {}
  void publish(const IncidentEvent& event) override;
  // Writes the incident table and the capture summary after the events; false when the stream
  // did not take them (last_error() says why).
  bool finish(const CaptureSummary& capture);

  [[nodiscard]] const IncidentSummaries& summaries() const noexcept { return summaries_; }
  [[nodiscard]] std::uint64_t written() const noexcept { return written_; }
  [[nodiscard]] std::uint64_t failed() const noexcept { return failed_; }
  [[nodiscard]] int last_error() const noexcept { return last_error_; }

 private:
  bool write(std::string_view text);

  std::FILE* stream_;
  IncidentSummaries summaries_;
  std::uint64_t written_ = 0;
  std::uint64_t failed_ = 0;
  int last_error_ = 0;
};

}  // namespace synwatch
