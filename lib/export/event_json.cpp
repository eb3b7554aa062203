#include "export/event_json.hpp"

#include <cerrno>

#include <cmath>

namespace synwatch {

namespace {

// Rates and ratios are estimates; three decimals keep the JSON readable without losing meaning.
double rounded(double value) {
  return std::round(value * 1000.0) / 1000.0;
}

}  // namespace

nlohmann::json to_json(const IncidentEvent& event) {
  nlohmann::json top = nlohmann::json::array();
  for (const auto& source : event.top_sources) {
    top.push_back({{"address", source.address.to_string()}, {"syns", source.syns}});
  }
  nlohmann::json j = {
      {"version", event.version},
      {"event", to_string(event.type)},
      {"incident_id", event.incident_id},
      {"event_id", event.event_id},
      {"time", format_rfc3339(event.time)},
      {"target",
       {{"address", event.target.address.to_string()},
        {"port", event.host_scope ? nlohmann::json(nullptr) : nlohmann::json(event.target.port)},
        {"scope", event.host_scope ? "host" : "port"}}},
      {"kind", to_string(event.kind)},
      {"started_at", format_rfc3339(event.started_at)},
      {"stats",
       {{"half_open", event.stats.half_open},
        {"syn_recv", event.stats.syn_recv},
        {"syn_seen", event.stats.syn_seen},
        {"peak_half_open", event.stats.peak_half_open},
        {"syn_rate", rounded(event.stats.syn_rate)},
        {"synack_rate", rounded(event.stats.synack_rate)},
        {"completed_rate", rounded(event.stats.completed_rate)},
        {"distinct_sources", std::llround(event.stats.distinct_sources)},
        {"source_entropy", rounded(event.stats.source_entropy)},
        {"bogon_share", rounded(event.stats.bogon_share)},
        {"completion_ratio", rounded(event.stats.completion_ratio)},
        {"stale", event.stats.stale},
        {"failed", event.stats.failed},
        {"baseline", rounded(event.stats.baseline)},
        {"stale_after_ms", event.stats.stale_after / kNanosPerMilli},
        {"normal_learned", event.stats.normal_learned}}},
      {"top_sources", std::move(top)},
      {"reason", event.reason},
  };
  if (event.ended_at) j["ended_at"] = format_rfc3339(*event.ended_at);
  if (event.kernel) {
    const KernelIncidentStats& k = *event.kernel;
    j["stats"]["kernel"] = {{"syn_recv", k.syn_recv},
                            {"stateless", k.stateless},
                            {"distinct_sources", std::llround(k.distinct_sources)},
                            {"source_entropy", rounded(k.source_entropy)},
                            {"syncookies_sent_rate", rounded(k.syncookies_sent_rate)},
                            {"listen_overflows_rate", rounded(k.listen_overflows_rate)},
                            {"accept_queue", k.accept_queue},
                            {"backlog", k.backlog}};
  }
  if (!event.evidence_path.empty()) j["evidence"] = {{"path", event.evidence_path}};
  return j;
}

void JsonLinesSink::publish(const IncidentEvent& event) {
  const std::string line = to_json(event).dump() + "\n";
  // A reader that went away (closed pipe, full disk) must not stop detection: the event is
  // dropped for this stream and not counted as written.
  if (std::fwrite(line.data(), 1, line.size(), stream_) == line.size() &&
      std::fflush(stream_) == 0) {
    ++written_;
  } else {
    ++failed_;
    last_error_ = errno;
    std::clearerr(stream_);
  }
}

}  // namespace synwatch
