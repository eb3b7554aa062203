#pragma once
// Which destinations the metrics export, and their figures. A scrape returns at most
// metrics.max_destinations of them: those with an open incident first, then the most half-open;
// the choice is made on counts alone, so window statistics are computed only for the chosen few.
// Whole addresses (port 0) are exported only while an incident is open on them, besides the cap.
//
// Thread safety: pure functions over what they are given; the caller keeps the destination sets
// and the detector still while they run (the live pipeline runs them with its workers parked).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/counter_members.hpp"
#include "aggregate/destination_table.hpp"
#include "aggregate/merged_destinations.hpp"
#include "detect/detector.hpp"

namespace synwatch {

// Per-destination figures for metrics, computed off the packet path when the snapshot refreshes.
struct ExportedDestinationStats {
  Endpoint target;
  bool host = false;  // the whole address (port 0): an incident over its ports
  std::uint32_t syn_seen = 0;
  std::uint32_t syn_recv = 0;
  DestinationEventStats totals;
  double syn_rate = 0;
  double distinct_sources = 0;
  double source_entropy = 0;
  double completion_ratio = 0;
  std::uint32_t stale = 0;  // stale half-open handshakes in the window (the flood condition's)
  double baseline = 0;
  std::optional<AttackKind> attack;           // set while an incident is open on this destination
  std::vector<HeavySourceShare> top_sources;  // the few heaviest, for `synwatchd top`
};

// The /metrics family of the half-open counts (export/ adds address and port). A new state must be
// listed here by hand: the struct's other figures are families of their own, so no size check can
// catch it.
inline constexpr LabelledFigures<ExportedDestinationStats, std::uint32_t, 2> kHalfOpenStates{
    .metric = "synwatch_half_open_connections",
    .help =
        "Half-open TCP connections to the destination right now, by handshake state "
        "(syn_recv: SYN-ACK sent, syn_seen: SYN seen, no answer yet).",
    .kind = FigureKind::kGauge,
    .label = "state",
    .members = {{{&ExportedDestinationStats::syn_recv, "syn_recv"},
                 {&ExportedDestinationStats::syn_seen, "syn_seen"}}}};

// `candidates` reordered and cut to at most `cap`: open incidents (`open`) first, then by
// half-open count. Returns how many were left out. Within the cap the order is unspecified when
// nothing was left out.
std::size_t choose_exported(std::vector<const Destination*>& candidates,
                            const Detector::Incidents& open, std::size_t cap);

// The exported figures of `destination`, from its window statistics.
ExportedDestinationStats destination_metrics(const Destination& destination,
                                             const DestinationStats& stats, double baseline,
                                             std::optional<AttackKind> attack, bool host);

struct ExportedDestinations {
  std::vector<ExportedDestinationStats> metrics;  // whole addresses under incident, then the chosen
  std::size_t unexported = 0;                     // destinations left out by the cap
};

// The destinations of `ports` and `hosts` (whole addresses) to export at packet time `now`, at
// most `cap` of `ports`, with the detector's incidents and baselines.
ExportedDestinations export_destinations(const MergedDestinations& ports,
                                         const MergedDestinations& hosts, const Detector& detector,
                                         TimestampNs now, std::size_t cap);

}  // namespace synwatch
