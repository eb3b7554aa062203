#include "export/destination_ranking.hpp"

#include <algorithm>

namespace synwatch {

namespace {
// Enough for a glance at who sends; incidents' events carry the configured number.
constexpr std::size_t kTopSources = 3;
}  // namespace

std::size_t choose_exported(std::vector<const Destination*>& candidates,
                            const Detector::Incidents& open, std::size_t cap) {
  if (candidates.size() <= cap) return 0;
  const auto rank = [&](const Destination* a, const Destination* b) {
    const bool a_open = open.contains(a->target);
    const bool b_open = open.contains(b->target);
    if (a_open != b_open) return a_open;
    return a->half_open() > b->half_open();
  };
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(cap),
                    candidates.end(), rank);
  const std::size_t left_out = candidates.size() - cap;
  candidates.resize(cap);
  return left_out;
}

ExportedDestinationStats destination_metrics(const Destination& destination,
                                             const DestinationStats& stats, double baseline,
                                             std::optional<AttackKind> attack, bool host) {
  ExportedDestinationStats m;
  m.target = destination.target;
  m.host = host;
  m.syn_seen = destination.syn_seen;
  m.syn_recv = destination.syn_recv;
  m.totals = destination.totals;
  m.syn_rate = stats.syn_rate;
  m.distinct_sources = stats.distinct_sources;
  m.source_entropy = stats.source_entropy;
  m.completion_ratio = stats.completion_ratio;
  m.stale = stats.stale;
  m.baseline = baseline;
  m.attack = attack;
  m.top_sources = stats.top_sources;
  return m;
}

ExportedDestinations export_destinations(const MergedDestinations& ports,
                                         const MergedDestinations& hosts, const Detector& detector,
                                         TimestampNs now, std::size_t cap) {
  ExportedDestinations out;
  const auto& incidents = detector.incidents();
  std::vector<const Destination*> chosen;
  ports.for_each([&](const Destination& d) { chosen.push_back(&d); });
  out.unexported = choose_exported(chosen, incidents, cap);
  for (const auto& [target, incident] : detector.host_incidents()) {
    const Destination* d = hosts.find(target);
    if (d == nullptr) continue;
    out.metrics.push_back(destination_metrics(*d, hosts.stats(*d, now, kTopSources),
                                              detector.baseline_of(target, true), incident.kind,
                                              true));
  }
  for (const Destination* d : chosen) {
    std::optional<AttackKind> attack;
    if (const auto open = incidents.find(d->target); open != incidents.end()) {
      attack = open->second.kind;
    }
    out.metrics.push_back(destination_metrics(*d, ports.stats(*d, now, kTopSources),
                                              detector.baseline_of(d->target, false), attack,
                                              false));
  }
  return out;
}

}  // namespace synwatch
