#include "export/text_report.hpp"

#include <algorithm>
#include <cerrno>

#include "export/people_format.hpp"

namespace synwatch {

namespace {

// "198.18.0.1 (3,000), 198.18.0.2 (1,000)": at most `most`, and "+N more" for the rest.
std::string list_sources(std::span<const TopSource> sources, std::size_t most) {
  std::string out;
  const std::size_t shown = std::min(most, sources.size());
  for (std::size_t i = 0; i < shown; ++i) {
    if (i > 0) out += ", ";
    out += sources[i].address.to_string() + " (" +
           people_number(static_cast<double>(sources[i].syns)) + ")";
  }
  if (sources.size() > shown) out += ", +" + std::to_string(sources.size() - shown) + " more";
  return out;
}

// The end of an incident for the table: its time of day when it ended the day it started (the
// row's start already gives the date), the full time otherwise.
std::string end_column(const IncidentSummary& incident) {
  if (!incident.ended_at) return "open at end of capture";
  const std::string start = people_time(incident.started_at);
  const std::string end = people_time(*incident.ended_at);
  return start.compare(0, 10, end, 0, 10) == 0 ? end.substr(11) : end;
}

std::string duration_column(const IncidentSummary& incident) {
  if (incident.ended_at) return people_duration(*incident.ended_at - incident.started_at);
  // Cut short: it lasted at least until its last event.
  return ">= " + people_duration(incident.last_event_at - incident.started_at);
}

std::string pad(std::string_view text, std::size_t width, bool right_aligned) {
  std::string out(text);
  if (text.size() >= width) return out;
  const std::string fill(width - text.size(), ' ');
  return right_aligned ? fill + out : out + fill;
}

}  // namespace

std::optional<ReportFormat> parse_report_format(std::string_view name) {
  if (name == "json") return ReportFormat::kJson;
  if (name == "text") return ReportFormat::kText;
  return std::nullopt;
}

std::string render_event_line(const IncidentEvent& event) {
  const IncidentStats& stats = event.stats;
  std::string line = people_time(event.time) + " " + std::string(to_string(event.type));
  // Padded to the longest event name, so that the targets of successive lines line up.
  line.append(std::string_view("started").size() - to_string(event.type).size(), ' ');
  line += " " + describe_target(event.target, event.host_scope) + " " +
          std::string(to_string(event.kind));
  if (event.type == EventType::kEnded && event.ended_at) {
    line += " after " + people_duration(*event.ended_at - event.started_at);
  }
  line += ": half-open " + people_number(stats.half_open) + " (" + people_number(stats.stale) +
          " stale, peak " + people_number(stats.peak_half_open) + "), " +
          people_number(stats.syn_rate) + " SYN/s, " + people_number(stats.synack_rate) +
          " SYN-ACK/s, " + people_number(stats.completed_rate) + " completed/s, ~" +
          people_number(stats.distinct_sources) + " sources";
  if (!event.top_sources.empty()) line += "; top " + list_sources(event.top_sources, 3);
  if (!event.reason.empty()) line += "; reason: " + event.reason;
  if (!event.evidence_path.empty()) line += "; evidence " + event.evidence_path;
  return line;
}

void IncidentSummaries::add(const IncidentEvent& event) {
  auto [found, inserted] = by_id_.try_emplace(event.incident_id, incidents_.size());
  if (inserted) {
    IncidentSummary fresh;
    fresh.incident_id = event.incident_id;
    fresh.target = describe_target(event.target, event.host_scope);
    fresh.started_at = event.started_at;
    incidents_.push_back(std::move(fresh));
  }
  IncidentSummary& incident = incidents_[found->second];
  ++incident.events;
  incident.kind = event.kind;
  incident.last_event_at = std::max(incident.last_event_at, event.time);
  if (event.ended_at) incident.ended_at = event.ended_at;
  incident.peak_half_open =
      std::max({incident.peak_half_open, event.stats.peak_half_open, event.stats.half_open});
  incident.peak_syn_rate = std::max(incident.peak_syn_rate, event.stats.syn_rate);
  incident.peak_distinct_sources =
      std::max(incident.peak_distinct_sources, event.stats.distinct_sources);
  for (const TopSource& source : event.top_sources) {
    auto known = std::find_if(incident.top_sources.begin(), incident.top_sources.end(),
                              [&](const TopSource& s) { return s.address == source.address; });
    if (known == incident.top_sources.end()) {
      incident.top_sources.push_back(source);
    } else {
      known->syns = std::max(known->syns, source.syns);
    }
  }
  // Heaviest first; equal counts by address, so that the order does not depend on the events'.
  std::sort(incident.top_sources.begin(), incident.top_sources.end(),
            [](const TopSource& a, const TopSource& b) {
              if (a.syns != b.syns) return a.syns > b.syns;
              return a.address < b.address;
            });
  // The table shows a few; keeping a bounded number keeps a long incident's summary small.
  constexpr std::size_t kKept = 32;
  if (incident.top_sources.size() > kKept) incident.top_sources.resize(kKept);
}

std::string render_incident_table(std::span<const IncidentSummary> incidents,
                                  std::size_t top_sources_shown) {
  if (incidents.empty()) return "No incidents.\n";
  static constexpr std::array<TableColumn, 9> kColumns = {{{"TARGET", false},
                                                           {"KIND", false},
                                                           {"START (UTC)", false},
                                                           {"END", false},
                                                           {"DURATION", true},
                                                           {"PEAK HALF-OPEN", true},
                                                           {"PEAK SYN/s", true},
                                                           {"SOURCES", true},
                                                           {"TOP SOURCES (SYNs)", false}}};
  std::vector<std::vector<std::string>> rows;
  rows.reserve(incidents.size());
  for (const IncidentSummary& incident : incidents) {
    rows.push_back(
        {incident.target, std::string(to_string(incident.kind)), people_time(incident.started_at),
         end_column(incident), duration_column(incident),
         people_number(static_cast<double>(incident.peak_half_open)),
         people_number(incident.peak_syn_rate), "~" + people_number(incident.peak_distinct_sources),
         list_sources(incident.top_sources, top_sources_shown)});
  }
  std::string table = people_number(static_cast<double>(incidents.size())) +
                      (incidents.size() == 1 ? " incident:\n" : " incidents:\n");
  for (const auto& line : render_table(kColumns, rows)) table += line + "\n";
  return table;
}

std::string render_capture_summary(const CaptureSummary& summary) {
  const auto number = [](std::uint64_t value) { return people_number(static_cast<double>(value)); };
  std::string out;
  if (summary.files.size() == 1) {
    out += "Capture: " + summary.files.front().path + "\n";
  } else {
    out += "Capture: " + std::to_string(summary.files.size()) +
           " files read as one capture, in the time order of their first packets:\n";
    std::size_t widest = 0;
    for (const CaptureFileEntry& file : summary.files) widest = std::max(widest, file.path.size());
    for (const CaptureFileEntry& file : summary.files) {
      out += "  " + pad(file.path, widest, false) + "  " +
             (file.first_packet ? "from " + people_time(*file.first_packet)
                                : std::string("(no packets)")) +
             "\n";
    }
  }
  out += "Packets: " + number(summary.packets) + " (" + number(summary.tcp_segments) +
         " TCP segments, " + number(summary.decode_errors) + " decode errors" +
         (summary.decode_error_detail.empty() ? "" : ": " + summary.decode_error_detail) + ") in " +
         people_duration(summary.elapsed);
  if (summary.elapsed > 0) {
    out += ", " +
           people_number(static_cast<double>(summary.packets) / to_seconds(summary.elapsed)) +
           " packets/s";
  }
  out += "\n";
  out += "Handshakes: " + number(summary.handshakes_started) + " started, " +
         number(summary.handshakes_completed) + " completed, " + number(summary.handshakes_reset) +
         " reset, " + number(summary.handshakes_expired) + " expired, " +
         number(summary.handshakes_evicted) + " evicted, " + number(summary.handshakes_pending) +
         " still pending\n";
  std::uint64_t incidents = 0;
  for (const std::uint64_t count : summary.incidents_by_kind) incidents += count;
  out += "Incidents: " + number(incidents) + " (" +
         number(summary.incidents_by_kind[static_cast<std::size_t>(AttackKind::kSpoofedRandom)]) +
         " spoofed_random, " +
         number(summary.incidents_by_kind[static_cast<std::size_t>(AttackKind::kConcentrated)]) +
         " concentrated, " +
         number(summary.incidents_by_kind[static_cast<std::size_t>(AttackKind::kDistributed)]) +
         " distributed), " + number(summary.incidents_ended) + " ended, " + number(summary.events) +
         (summary.events == 1 ? " event\n" : " events\n");
  return out;
}

bool TextReportSink::write(std::string_view text) {
  if (std::fwrite(text.data(), 1, text.size(), stream_) == text.size() &&
      std::fflush(stream_) == 0) {
    return true;
  }
  last_error_ = errno;
  std::clearerr(stream_);
  return false;
}

void TextReportSink::publish(const IncidentEvent& event) {
  summaries_.add(event);
  // A reader that went away must not stop detection: the line is lost, and counted.
  if (write(render_event_line(event) + "\n")) {
    ++written_;
  } else {
    ++failed_;
  }
}

bool TextReportSink::finish(const CaptureSummary& capture) {
  // A blank line sets the table apart from the event lines above it.
  return write("\n" + render_incident_table(summaries_.incidents()) + "\n" +
               render_capture_summary(capture));
}

}  // namespace synwatch
