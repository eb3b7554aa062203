#include "detect/detector.hpp"

#include <fmt/format.h>

#include <algorithm>

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

Detector::Detector(const DetectionConfig& config, std::size_t top_sources)
    : config_(config), top_sources_(top_sources) {}

void Detector::reconfigure(const DetectionConfig& config, std::size_t top_sources) {
  config_ = config;
  top_sources_ = top_sources;
}

double Detector::heavy_share(const DestinationStats& stats) const noexcept {
  if (stats.window.syns == 0) return 0;
  std::uint64_t heavy = 0;
  const std::size_t n = std::min(stats.top_sources.size(), config_.concentrated.max_sources);
  for (std::size_t i = 0; i < n; ++i) heavy += stats.top_sources[i].syns;
  return std::min(1.0, static_cast<double>(heavy) / stats.window.syns);
}

AttackKind Detector::classify(const DestinationStats& stats) const noexcept {
  if (heavy_share(stats) >= config_.concentrated.min_share) return AttackKind::kConcentrated;
  if (stats.distinct_ratio >= config_.spoofed.min_distinct_ratio &&
      stats.source_entropy >= config_.spoofed.min_entropy) {
    return AttackKind::kSpoofedRandom;
  }
  return AttackKind::kDistributed;
}

Detector::Verdict Detector::judge(const DestinationStats& stats) const noexcept {
  Verdict v;
  v.condition = stats.half_open >= config_.half_open && stats.window.syns > 0 &&
                stats.completion_ratio <= config_.max_completion_ratio;
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

std::string Detector::start_reason(const DestinationStats& s, AttackKind kind) const {
  std::string reason = fmt::format(
      "{} half-open connections to {} reached the threshold of {} ({:.1f}x) with {:.1f}% of "
      "{} SYNs in the last {:.1f} s completing (max {:.0f}%)",
      s.half_open, s.target.to_string(), config_.half_open,
      static_cast<double>(s.half_open) / static_cast<double>(config_.half_open),
      percent(s.completion_ratio), s.window.syns, to_seconds(s.window_span),
      percent(config_.max_completion_ratio));
  switch (kind) {
    case AttackKind::kSpoofedRandom:
      reason += fmt::format(
          "; {:.1f}% of SYNs came from distinct sources (min {:.0f}%) and source entropy is {:.2f} "
          "(min {:.2f}): random, likely spoofed sources",
          percent(s.distinct_ratio), percent(config_.spoofed.min_distinct_ratio), s.source_entropy,
          config_.spoofed.min_entropy);
      break;
    case AttackKind::kConcentrated:
      reason += fmt::format("; the {} heaviest sources sent {:.1f}% of SYNs (min {:.0f}%)",
                            std::min(s.top_sources.size(), config_.concentrated.max_sources),
                            percent(heavy_share(s)), percent(config_.concentrated.min_share));
      if (!s.top_sources.empty()) {
        reason +=
            fmt::format(", heaviest {} with {} SYNs", s.top_sources.front().address.to_string(),
                        s.top_sources.front().syns);
      }
      break;
    case AttackKind::kDistributed:
      reason += fmt::format(
          "; {:.0f} distinct sources, {:.1f}% of SYNs from distinct sources (below {:.0f}% for "
          "spoofed) and the {} heaviest sources sent only {:.1f}% of SYNs: many real sources",
          s.distinct_sources, percent(s.distinct_ratio),
          percent(config_.spoofed.min_distinct_ratio), config_.concentrated.max_sources,
          percent(heavy_share(s)));
      break;
  }
  return reason;
}

std::string Detector::end_reason(const DestinationStats& s, const Incident& incident,
                                 TimestampNs now) const {
  std::string why;
  if (s.half_open < config_.half_open) {
    why = fmt::format("half-open connections fell to {} (threshold {})", s.half_open,
                      config_.half_open);
  } else if (s.window.syns == 0) {
    why = fmt::format("no new SYNs arrived in the last {:.1f} s", to_seconds(s.window_span));
  } else {
    why = fmt::format("{:.1f}% of handshakes now complete (max {:.0f}%)",
                      percent(s.completion_ratio), percent(config_.max_completion_ratio));
  }
  return fmt::format(
      "{} and the condition stayed clear for {:.1f} s; peak {} half-open, lasted {:.1f} s", why,
      to_seconds(now - incident.clear_since), incident.peak_half_open,
      to_seconds(now - incident.started_at));
}

IncidentEvent Detector::make_event(EventType type, const Incident& incident,
                                   const DestinationStats& s, TimestampNs now) const {
  IncidentEvent e;
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
  for (const auto& source : s.top_sources) e.top_sources.push_back({source.address, source.syns});
  return e;
}

void Detector::evaluate(TimestampNs now, DestinationSet& destinations, EventSink& sink) {
  ++counters_.evaluations;
  destinations.visit_all([&](Destination& d) {
    const auto open = incidents_.find(d.target);
    const bool over = d.above_threshold_since != 0 && d.half_open() >= config_.half_open;
    if (open == incidents_.end() && !over) return;

    const DestinationStats stats = destinations.stats(d, now, top_sources_);
    const Verdict verdict = judge(stats);
    const std::uint32_t peak = std::max(d.peak_half_open, d.half_open());
    d.peak_half_open = d.half_open();

    if (open == incidents_.end()) {
      if (!verdict.condition || now - d.above_threshold_since < config_.hold_for) return;
      Incident incident;
      incident.started_at = now;
      incident.id = incident_id_for(d.target, now);
      incident.kind = verdict.kind;
      incident.last_event_at = now;
      incident.peak_half_open = peak;
      d.pinned = true;
      ++counters_.started[static_cast<int>(incident.kind)];
      IncidentEvent e = make_event(EventType::kStarted, incident, stats, now);
      e.reason = start_reason(stats, incident.kind);
      sink.publish(e);
      incidents_.emplace(d.target, std::move(incident));
      return;
    }

    Incident& incident = open->second;
    incident.peak_half_open = std::max(incident.peak_half_open, peak);
    if (verdict.condition) {
      incident.clear_since = 0;
    } else if (incident.clear_since == 0) {
      incident.clear_since = now;
    }
    if (incident.clear_since != 0 && now - incident.clear_since >= config_.cooldown) {
      ++incident.sequence;
      IncidentEvent e = make_event(EventType::kEnded, incident, stats, now);
      e.reason = end_reason(stats, incident, now);
      sink.publish(e);
      ++counters_.ended;
      d.pinned = false;
      incidents_.erase(open);
      return;
    }
    if (now - incident.last_event_at >= config_.update_interval) {
      ++incident.sequence;
      incident.last_event_at = now;
      IncidentEvent e = make_event(EventType::kUpdated, incident, stats, now);
      e.reason =
          verdict.condition
              ? start_reason(stats, incident.kind)
              : fmt::format("condition clear for {:.1f} s of the {:.1f} s cooldown",
                            to_seconds(now - incident.clear_since), to_seconds(config_.cooldown));
      sink.publish(e);
    }
  });
}

}  // namespace synwatch
