#pragma once
// Decides, on ticks of packet time, which destinations are under a SYN flood and of which kind,
// and turns that into an incident lifecycle: started -> updated ... -> ended.
//
// Condition for one destination (all must hold at an evaluation):
//   its stale half-open handshakes in the window (DestinationStats::stale: gone stale past the
//   destination's judgement age, or failed, and not completed since) >= detection.half_open
//   (detection.host_half_open for a whole address), and have been since `for` ago (timed in
//   packet time from the moment the count crossed the threshold), and exceed
//   detection.baseline.multiple times the destination's baseline.
// Kind, decided when the incident starts, from the sources of those stale handshakes:
//   concentrated    the heaviest `concentrated.max_sources` sources hold >= min_share of them;
//   spoofed_random  distinct sources / stale >= spoofed.min_distinct_ratio and normalised source
//                   entropy >= spoofed.min_entropy;
//   distributed     otherwise: many real sources that do not complete.
// The baseline, the hold and the peak are the detector's: it reads the destinations and writes
// nothing back (Normal below; the hold is timed from the table's record of the crossing).
// A whole address (the host table) is judged only while none of its ports is over its own
// threshold or under an incident, or holds half of the address's stale handshakes: a flood to
// one port is that port's incident, not the host's.
// An incident ends once the condition has been false for `cooldown`.
// Thread safety: none; driven by the engine's thread.

#include <array>
#include <cstdint>
#include <numeric>
#include <unordered_map>
#include <vector>

#include "aggregate/destination_table.hpp"
#include "config/config.hpp"
#include "detect/incident.hpp"

namespace synwatch {

struct DetectorStats {
  std::uint64_t evaluations = 0;
  std::array<std::uint64_t, kAttackKindCount> started{};  // by AttackKind
  std::uint64_t ended = 0;

  [[nodiscard]] std::uint64_t total_started() const noexcept {
    return std::accumulate(started.begin(), started.end(), std::uint64_t{0});
  }
};

class Detector {
 public:
  explicit Detector(const DetectionConfig& config, std::size_t top_sources);

  // Evaluates every tracked destination (address:port) and, if given, every tracked address
  // (`hosts`, targets with port 0) at packet time `now` and publishes events to `sink`.
  // Cost: O(tracked destinations) cheap checks plus full statistics only for destinations over
  // the threshold or with an open incident.
  void evaluate(TimestampNs now, const DestinationSet& destinations, EventSink& sink,
                const DestinationSet* hosts = nullptr);

  // Applies new thresholds; open incidents keep their id, kind and start time.
  void reconfigure(const DetectionConfig& config, std::size_t top_sources);

  // Takes on an incident a previous run left open (it died without ending it). The incident
  // goes on under its id and event sequence while its condition holds, and ends like any other
  // once the condition has been clear for `cooldown` (at once if its target is gone). Ignored
  // when an incident is already open on the target.
  void resume(const ResumedIncident& incident, TimestampNs now);

  // Ends every open incident now (the daemon is stopping), saying `why` in the reason. The
  // events carry the incident's peak and duration; current figures are not evaluated.
  void end_all(TimestampNs now, std::string_view why, EventSink& sink);

  [[nodiscard]] std::size_t open_incidents() const noexcept {
    return incidents_.size() + host_incidents_.size();
  }
  [[nodiscard]] const DetectorStats& counters() const noexcept { return counters_; }

  struct Incident {
    std::string id;
    AttackKind kind = AttackKind::kSpoofedRandom;
    TimestampNs started_at = 0;
    TimestampNs last_event_at = 0;
    TimestampNs clear_since = 0;  // 0 = condition still holds
    std::uint32_t sequence = 0;
    std::uint32_t peak_half_open = 0;
    std::uint64_t seen = 0;  // the last evaluation that found its target
  };
  using Incidents = std::unordered_map<Endpoint, Incident, EndpointHash>;
  // Open incidents by target, for status lines and metrics: per address:port, and per whole
  // address (target port 0).
  [[nodiscard]] const Incidents& incidents() const noexcept { return incidents_; }
  [[nodiscard]] const Incidents& host_incidents() const noexcept { return host_incidents_; }
  // The target's baseline (its normal stale level), 0 for a target not seen.
  [[nodiscard]] double baseline_of(const Endpoint& target, bool host) const noexcept;

 private:
  struct Verdict {
    bool condition = false;
    AttackKind kind = AttackKind::kSpoofedRandom;
  };
  struct Scope {
    bool host = false;
    std::size_t threshold = 0;
  };
  struct PortLevel {
    IpAddress address;
    std::uint32_t level = 0;  // stale level of one of its ports, or kBusyPort
  };
  static constexpr std::uint32_t kBusyPort = UINT32_MAX;
  // A destination's normal stale level: an exponential average (time constant
  // detection.baseline.time_constant) of its stale level at each evaluation, frozen while an
  // incident is open on it. Kept while the destination is tracked.
  struct Normal {
    double level = 0;
    TimestampNs at = INT64_MIN;  // of the last sample; INT64_MIN: never seen
    std::uint64_t seen = 0;      // the last evaluation that found it
  };
  using Normals = std::unordered_map<Endpoint, Normal, EndpointHash>;
  void learn_normal(Normal& normal, std::uint32_t level, bool frozen,
                    TimestampNs now) const noexcept;
  // Port scope: evaluates and notes each port's level in `ports`. Host scope: reads `ports`
  // (sorted by address, the busiest port of each first and only) to leave port floods alone.
  void evaluate_set(TimestampNs now, const DestinationSet& destinations, EventSink& sink,
                    const Scope& scope, Incidents& incidents, Normals& normals,
                    std::vector<PortLevel>& ports);
  [[nodiscard]] Verdict judge(const DestinationStats& stats, const Scope& scope) const noexcept;
  [[nodiscard]] AttackKind classify(const DestinationStats& stats) const noexcept;
  [[nodiscard]] double heavy_share(const DestinationStats& stats) const noexcept;
  [[nodiscard]] std::string start_reason(const DestinationStats& stats, AttackKind kind,
                                         const Scope& scope) const;
  [[nodiscard]] std::string end_reason(const DestinationStats& stats, const Incident& incident,
                                       TimestampNs now, const Scope& scope) const;
  IncidentEvent make_event(EventType type, const Incident& incident, const DestinationStats& stats,
                           TimestampNs now, const Scope& scope) const;

  DetectionConfig config_;
  std::size_t top_sources_;
  Incidents incidents_;
  Incidents host_incidents_;
  Normals normals_;
  Normals host_normals_;
  DetectorStats counters_;
};

}  // namespace synwatch
