#include "export/status_document.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "export/event_json.hpp"

namespace synwatch {

namespace {

double rounded(double value) {
  return std::round(value * 1000.0) / 1000.0;
}

nlohmann::json destination_json(const ExportedDestinationStats& d) {
  nlohmann::json top = nlohmann::json::array();
  for (const auto& source : d.top_sources) {
    top.push_back({{"address", source.address.to_string()}, {"syns", source.syns}});
  }
  return {{"address", d.target.address.to_string()},
          {"port", d.host ? nlohmann::json(nullptr) : nlohmann::json(d.target.port)},
          {"scope", d.host ? "host" : "port"},
          {"half_open", d.syn_seen + d.syn_recv},
          {"syn_seen", d.syn_seen},
          {"syn_recv", d.syn_recv},
          {"stale", d.stale},
          {"syn_rate", rounded(d.syn_rate)},
          {"completion_ratio", rounded(d.completion_ratio)},
          {"distinct_sources", rounded(d.distinct_sources)},
          {"source_entropy", rounded(d.source_entropy)},
          {"baseline", rounded(d.baseline)},
          {"incident", d.attack ? nlohmann::json(to_string(*d.attack)) : nlohmann::json(nullptr)},
          {"top_sources", std::move(top)}};
}

}  // namespace

void LatestIncidentEvents::follow(const IncidentEvent& event) {
  if (event.type == EventType::kEnded) {
    by_id_.erase(event.incident_id);
  } else {
    by_id_.insert_or_assign(event.incident_id, event);
  }
}

std::vector<IncidentEvent> LatestIncidentEvents::open() const {
  std::vector<IncidentEvent> events;
  events.reserve(by_id_.size());
  for (const auto& [id, event] : by_id_) events.push_back(event);
  std::ranges::stable_sort(events, {}, &IncidentEvent::started_at);
  return events;
}

nlohmann::json status_document(const StatusInputs& inputs, const PipelineSnapshot& pipeline) {
  nlohmann::json interfaces = nlohmann::json::array();
  for (const auto& interface : pipeline.interfaces) {
    interfaces.push_back({{"name", interface.name},
                          {"open", interface.open},
                          {"error", interface.last_error},
                          {"received", interface.stats.received},
                          {"dropped", interface.stats.dropped_kernel}});
  }
  nlohmann::json incidents = nlohmann::json::array();
  for (const auto& event : inputs.open_incidents) incidents.push_back(to_json(event));
  // Busiest first: what an operator scans for. The snapshot ranks open incidents first only to
  // choose which to keep.
  std::vector<const ExportedDestinationStats*> ranked;
  ranked.reserve(pipeline.destinations_exported.size());
  for (const auto& d : pipeline.destinations_exported) ranked.push_back(&d);
  std::ranges::stable_sort(
      ranked, [](const ExportedDestinationStats* a, const ExportedDestinationStats* b) {
        if (a->stale != b->stale) return a->stale > b->stale;
        return a->syn_seen + a->syn_recv > b->syn_seen + b->syn_recv;
      });
  nlohmann::json destinations = nlohmann::json::array();
  for (const auto* d : ranked) destinations.push_back(destination_json(*d));

  nlohmann::json document = {
      {"version", kStatusFormatVersion},
      {"synwatchd",
       {{"version", inputs.version},
        {"config", inputs.config_file},
        {"started_at", format_rfc3339(inputs.started_at)}}},
      {"time", format_rfc3339(inputs.now)},
      {"half_open_threshold", inputs.half_open_threshold},
      {"capture",
       {{"interfaces", std::move(interfaces)},
        {"packets", pipeline.engine.packets},
        {"lag_seconds", rounded(std::chrono::duration<double>(pipeline.lag).count())}}},
      {"handshakes",
       {{"tracked", pipeline.handshake_entries}, {"capacity", pipeline.handshake_capacity}}},
      {"open_incidents", std::move(incidents)},
      {"destinations", std::move(destinations)},
      {"destinations_not_shown", pipeline.destinations_unexported},
  };
  if (pipeline.kernel.enabled) {
    document["kernel"] = {{"healthy", pipeline.kernel.healthy},
                          {"syn_recv", pipeline.kernel.syn_recv_total},
                          {"syncookies_sent_rate", rounded(pipeline.kernel.syncookies_sent_rate)}};
  } else {
    document["kernel"] = nullptr;
  }
  return document;
}

}  // namespace synwatch
