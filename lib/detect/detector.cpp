#include "detect/detector.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace synwatch {

std::string_view to_string(EventType type) noexcept {
  switch (type) {
    case EventType::kStarted:
      return "started";
    case EventType::kUpdated:
      return "updated";
    case EventType::kEnded:
      return "ended";
  }
  return "unknown";
}

std::string_view to_string(AttackKind kind) noexcept {
  switch (kind) {
    case AttackKind::kSpoofedRandom:
      return "spoofed_random";
    case AttackKind::kConcentrated:
      return "concentrated";
    case AttackKind::kDistributed:
      return "distributed";
  }
  return "unknown";
}

std::string describe_target(const Endpoint& target, bool host_scope) {
  return host_scope ? target.address.to_string() + " (all ports)" : target.to_string();
}

Detector::Detector(const DetectionConfig& config, std::size_t top_sources)
    : config_(config), top_sources_(top_sources) {}

void Detector::reconfigure(const DetectionConfig& config, std::size_t top_sources) {
  config_ = config;
  top_sources_ = top_sources;
}

double Detector::heavy_share(const DestinationStats& stats) const noexcept {
  if (stats.sourced_stale == 0) return 0;
  std::uint64_t heavy = 0;
  const std::size_t n = std::min(stats.top_sources.size(), config_.concentrated.max_sources);
  for (std::size_t i = 0; i < n; ++i) heavy += stats.top_sources[i].syns;
  return std::min(1.0, static_cast<double>(heavy) / stats.sourced_stale);
}

AttackKind Detector::classify(const DestinationStats& stats) const noexcept {
  if (heavy_share(stats) >= config_.concentrated.min_share) return AttackKind::kConcentrated;
  if (stats.distinct_ratio >= config_.spoofed.min_distinct_ratio &&
      stats.source_entropy >= config_.spoofed.min_entropy) {
    return AttackKind::kSpoofedRandom;
  }
  return AttackKind::kDistributed;
}

Detector::Verdict Detector::judge(const DestinationStats& stats,
                                  const Scope& scope) const noexcept {
  Verdict v;
  v.condition = stats.stale >= scope.threshold &&
                static_cast<double>(stats.stale) > config_.baseline.multiple * stats.baseline;
  if (v.condition) v.kind = classify(stats);
  return v;
}

namespace {

std::string incident_id_for(const Endpoint& target, TimestampNs started_at) {
  std::uint8_t key[26];
  std::memcpy(key, target.address.bytes.data(), 16);
  key[16] = static_cast<std::uint8_t>(target.port >> 8);
  key[17] = static_cast<std::uint8_t>(target.port);
  std::memcpy(key + 18, &started_at, 8);
  // Derived from target and start time so that replaying a capture gives the same ids.
  return fmt::format("{:016x}", hash_bytes(key, sizeof key, 0x73796e7761746368ULL));
}

double percent(double ratio) {
  return ratio * 100.0;
}

}  // namespace

std::string Detector::start_reason(const DestinationStats& s, AttackKind kind,
                                   const Scope& scope) const {
  const std::string target = describe_target(s.target, scope.host);
  std::string reason = fmt::format(
      "{} stale half-open connections to {} reached the threshold of {} ({:.1f}x): handshakes "
      "not completed within {} ms ({}){}; the baseline is {:.1f} (max {:.0f}x); {:.1f}% of {} "
      "SYNs in the last {:.1f} s completed",
      s.stale, target, scope.threshold,
      static_cast<double>(s.stale) / static_cast<double>(scope.threshold),
      s.judge_age / kNanosPerMilli,
      s.learned_normal ? "the target's normal" : "no history yet, the initial SYN-ACK timeout",
      s.window.failed > 0 ? fmt::format(" or failed before ({})", s.window.failed) : "", s.baseline,
      config_.baseline.multiple, percent(s.completion_ratio), s.window.syns,
      to_seconds(s.window_span));
  switch (kind) {
    case AttackKind::kSpoofedRandom:
      reason += fmt::format(
          "; {:.1f}% of the stale handshakes came from distinct sources (min {:.0f}%) and their "
          "source entropy is {:.2f} (min {:.2f}): random, likely spoofed sources",
          percent(s.distinct_ratio), percent(config_.spoofed.min_distinct_ratio), s.source_entropy,
          config_.spoofed.min_entropy);
      break;
    case AttackKind::kConcentrated:
      reason += fmt::format("; the {} heaviest sources hold {:.1f}% of them (min {:.0f}%)",
                            std::min(s.top_sources.size(), config_.concentrated.max_sources),
                            percent(heavy_share(s)), percent(config_.concentrated.min_share));
      if (!s.top_sources.empty()) {
        reason += fmt::format(", heaviest {} with {}", s.top_sources.front().address.to_string(),
                              s.top_sources.front().syns);
      }
      break;
    case AttackKind::kDistributed:
      reason += fmt::format(
          "; {:.0f} distinct sources, {:.1f}% of the stale handshakes from distinct sources "
          "(below {:.0f}% for spoofed) and the {} heaviest sources hold only {:.1f}%: many real "
          "sources",
          s.distinct_sources, percent(s.distinct_ratio),
          percent(config_.spoofed.min_distinct_ratio), config_.concentrated.max_sources,
          percent(heavy_share(s)));
      break;
  }
  return reason;
}

std::string Detector::end_reason(const DestinationStats& s, const Incident& incident,
                                 TimestampNs now, const Scope& scope) const {
  std::string why;
  if (s.stale < scope.threshold) {
    why = fmt::format("stale half-open connections fell to {} (threshold {})", s.stale,
                      scope.threshold);
  } else {
    why = fmt::format("{} stale half-open connections are within {:.0f}x of the baseline {:.1f}",
                      s.stale, config_.baseline.multiple, s.baseline);
  }
  return fmt::format(
      "{} and the condition stayed clear for {:.1f} s; peak {} half-open, lasted {:.1f} s", why,
      to_seconds(now - incident.clear_since), incident.peak_half_open,
      to_seconds(now - incident.started_at));
}

void Detector::resume(const ResumedIncident& resumed, TimestampNs now) {
  Incidents& incidents = resumed.host_scope ? host_incidents_ : incidents_;
  if (incidents.contains(resumed.target)) return;
  Incident incident;
  incident.id = resumed.incident_id;
  incident.kind = resumed.kind;
  incident.started_at = resumed.started_at;
  incident.last_event_at = now;
  incident.sequence = resumed.sequence;
  incident.peak_half_open = resumed.peak_half_open;
  incident.seen = counters_.evaluations;
  incidents.emplace(resumed.target, std::move(incident));
}

void Detector::end_all(TimestampNs now, std::string_view why, EventSink& sink) {
  for (Incidents* incidents : {&incidents_, &host_incidents_}) {
    const Scope scope{incidents == &host_incidents_,
                      incidents == &host_incidents_ ? config_.host_half_open : config_.half_open};
    // In target order, so that what is published does not depend on hashing.
    std::vector<Endpoint> targets;
    targets.reserve(incidents->size());
    for (const auto& entry : *incidents) targets.push_back(entry.first);
    std::ranges::sort(targets);
    for (const auto& target : targets) {
      Incident& incident = incidents->at(target);
      ++incident.sequence;
      DestinationStats stats;
      stats.target = target;
      IncidentEvent e = make_event(EventType::kEnded, incident, stats, now, scope);
      e.reason =
          fmt::format("{}; the incident is closed unfinished after {:.1f} s, peak {} half-open",
                      why, to_seconds(now - incident.started_at), incident.peak_half_open);
      sink.publish(e);
      ++counters_.ended;
    }
    incidents->clear();
  }
}

IncidentEvent Detector::make_event(EventType type, const Incident& incident,
                                   const DestinationStats& s, TimestampNs now,
                                   const Scope& scope) const {
  IncidentEvent e;
  e.host_scope = scope.host;
  e.type = type;
  e.incident_id = incident.id;
  e.sequence = incident.sequence;
  e.event_id = fmt::format("{}-{}", incident.id, incident.sequence);
  e.target = s.target;
  e.kind = incident.kind;
  e.time = now;
  e.started_at = incident.started_at;
  if (type == EventType::kEnded) e.ended_at = now;
  e.stats.half_open = s.half_open;
  e.stats.syn_recv = s.syn_recv;
  e.stats.syn_seen = s.syn_seen;
  e.stats.peak_half_open = incident.peak_half_open;
  e.stats.syn_rate = s.syn_rate;
  e.stats.synack_rate = s.synack_rate;
  e.stats.completed_rate = s.completed_rate;
  e.stats.distinct_sources = s.distinct_sources;
  e.stats.source_entropy = s.source_entropy;
  e.stats.bogon_share = s.bogon_share;
  e.stats.completion_ratio = s.completion_ratio;
  e.stats.stale = s.stale;
  e.stats.failed = s.window.failed;
  e.stats.baseline = s.baseline;
  e.stats.stale_after = s.judge_age;
  e.stats.normal_learned = s.learned_normal;
  for (const auto& source : s.top_sources) e.top_sources.push_back({source.address, source.syns});
  return e;
}

void Detector::evaluate(TimestampNs now, const DestinationSet& destinations, EventSink& sink,
                        const DestinationSet* hosts) {
  ++counters_.evaluations;
  std::vector<PortLevel> ports;
  evaluate_set(now, destinations, sink, Scope{false, config_.half_open}, incidents_, normals_,
               ports);
  if (hosts != nullptr) {
    // Per address, its busiest port: the largest stale level, or "busy" (kBusyPort) when a port
    // is over its threshold or under an incident.
    std::sort(ports.begin(), ports.end(), [](const PortLevel& a, const PortLevel& b) {
      return a.address != b.address ? a.address < b.address : a.level > b.level;
    });
    ports.erase(
        std::unique(ports.begin(), ports.end(),
                    [](const PortLevel& a, const PortLevel& b) { return a.address == b.address; }),
        ports.end());
    evaluate_set(now, *hosts, sink, Scope{true, config_.host_half_open}, host_incidents_,
                 host_normals_, ports);
  }
}

double Detector::baseline_of(const Endpoint& target, bool host) const noexcept {
  const Normals& normals = host ? host_normals_ : normals_;
  const auto it = normals.find(target);
  return it == normals.end() ? 0 : it->second.level;
}

void Detector::learn_normal(Normal& normal, std::uint32_t level, bool frozen,
                            TimestampNs now) const noexcept {
  if (normal.at == INT64_MIN || frozen) {
    // A fresh start learns from zero; an open incident's own level is never learned (time passes
    // without decay too).
    normal.at = now;
    return;
  }
  const DurationNs elapsed = std::max<DurationNs>(0, now - normal.at);
  const double keep =
      std::exp(-to_seconds(elapsed) / std::max(1e-3, to_seconds(config_.baseline.time_constant)));
  normal.level = normal.level * keep + static_cast<double>(level) * (1 - keep);
  normal.at = now;
}

void Detector::evaluate_set(TimestampNs now, const DestinationSet& destinations, EventSink& sink,
                            const Scope& scope, Incidents& incidents, Normals& normals,
                            std::vector<PortLevel>& ports) {
  const std::uint64_t stamp = counters_.evaluations;
  std::size_t visited = 0;
  // One destination, or an incident's target no table tracks any more (`d` null: it counts zero,
  // so the incident ends after its cooldown).
  const auto decide = [&](const Endpoint& target, const Destination* d, Incidents::iterator open,
                          Normal& normal) {
    DestinationStats stats;
    stats.target = target;
    if (d != nullptr) stats = destinations.stats(*d, now, top_sources_);
    stats.baseline = normal.level;
    const Verdict verdict = judge(stats, scope);

    if (open == incidents.end()) {
      if (d == nullptr || !verdict.condition || now - d->above_threshold_since < config_.hold_for) {
        return false;
      }
      Incident incident;
      incident.started_at = now;
      incident.id = incident_id_for(target, now);
      incident.kind = verdict.kind;
      incident.last_event_at = now;
      incident.peak_half_open = stats.peak_half_open;
      incident.seen = stamp;
      ++counters_.started[static_cast<std::size_t>(incident.kind)];
      IncidentEvent e = make_event(EventType::kStarted, incident, stats, now, scope);
      e.reason = start_reason(stats, incident.kind, scope);
      sink.publish(e);
      incidents.emplace(target, std::move(incident));
      return true;
    }

    Incident& incident = open->second;
    incident.seen = stamp;
    incident.peak_half_open = std::max(incident.peak_half_open, stats.peak_half_open);
    if (verdict.condition) {
      incident.clear_since = 0;
    } else if (incident.clear_since == 0) {
      incident.clear_since = now;
    }
    if (incident.clear_since != 0 && now - incident.clear_since >= config_.cooldown) {
      ++incident.sequence;
      IncidentEvent e = make_event(EventType::kEnded, incident, stats, now, scope);
      e.reason = end_reason(stats, incident, now, scope);
      sink.publish(e);
      ++counters_.ended;
      incidents.erase(open);
      return false;
    }
    if (now - incident.last_event_at >= config_.update_interval) {
      ++incident.sequence;
      incident.last_event_at = now;
      IncidentEvent e = make_event(EventType::kUpdated, incident, stats, now, scope);
      e.reason =
          verdict.condition
              ? start_reason(stats, incident.kind, scope)
              : fmt::format("condition clear for {:.1f} s of the {:.1f} s cooldown",
                            to_seconds(now - incident.clear_since), to_seconds(config_.cooldown));
      sink.publish(e);
    }
    return true;
  };

  destinations.visit_all([&](const Destination& d) {
    ++visited;
    Normal& normal = normals[d.target];
    normal.seen = stamp;
    const auto open = incidents.find(d.target);
    const bool over = d.above_threshold_since != 0 && d.flood_level() >= scope.threshold;
    if (!scope.host && d.flood_level() > 0) {
      ports.push_back(
          {d.target.address, over || open != incidents.end() ? kBusyPort : d.flood_level()});
    }
    bool incident_open = open != incidents.end();
    bool judged = incident_open || over;
    if (scope.host && !incident_open && over) {
      // SYNs to one address that mostly hit one port are that port's flood, judged against its
      // own threshold: a host incident is for SYNs spread over the ports.
      const auto busiest = std::lower_bound(
          ports.begin(), ports.end(), d.target.address,
          [](const PortLevel& p, const IpAddress& address) { return p.address < address; });
      judged = busiest == ports.end() || busiest->address != d.target.address ||
               std::uint64_t{busiest->level} * 2 < d.flood_level();
    }
    if (judged) incident_open = decide(d.target, &d, open, normal);
    learn_normal(normal, d.flood_level(), incident_open, now);
  });

  // Incidents on targets no table tracks any more, then the normals of forgotten destinations.
  for (auto it = incidents.begin(); it != incidents.end();) {
    auto next = std::next(it);
    if (it->second.seen != stamp) {
      const Endpoint target = it->first;
      decide(target, nullptr, it, normals[target]);
    }
    it = next;
  }
  if (normals.size() > visited + incidents.size()) {
    std::erase_if(normals, [&](const auto& entry) {
      return entry.second.seen != stamp && !incidents.contains(entry.first);
    });
  }
}

}  // namespace synwatch
