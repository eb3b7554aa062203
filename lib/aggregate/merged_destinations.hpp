#pragma once
// The per-destination view of several DestinationTables, one per capture worker, as the detector
// needs it. The kernel's fanout sends both directions of a flow to the same worker, so workers see
// disjoint sets of handshakes: half-open, stale and window counts and baselines add up (each
// shard's stale_level must be settled first), distinct-source sketches unite
// (HyperLogLog: register-wise maximum) and heavy-hitter summaries merge (Space-Saving merge).
//
// Merged records persist from one refresh to the next: they carry what only the sum can tell
// (when it crossed the threshold). A record goes when no shard tracks its target any more.
// Thread safety: none. refresh() and the detector's evaluation must run while no shard is being
// fed (the live pipeline pauses its workers for them).

#include <cstddef>
#include <unordered_map>
#include <vector>

#include "aggregate/destination_table.hpp"

namespace synwatch {

class MergedDestinations final : public DestinationSet {
 public:
  // `shards` must outlive this object; all must share window and tick.
  MergedDestinations(std::vector<DestinationTable*> shards, std::size_t half_open_threshold);

  // Rebuilds the merged counts from the shards as of `now`. Returns how many destinations rose to
  // the threshold in this refresh (their above_threshold_since is `now`).
  std::size_t refresh(TimestampNs now);
  void set_half_open_threshold(std::size_t threshold, TimestampNs now) noexcept;

  void visit_all(const std::function<void(const Destination&)>& visit) const override;
  [[nodiscard]] DestinationStats stats(const Destination& destination, TimestampNs now,
                                       std::size_t top_sources) const override;

  // Read-only visit, for exporters.
  template <typename Visitor>
  void for_each(Visitor&& visit) const {
    for (const auto& [target, record] : merged_) visit(record.merged);
  }

  [[nodiscard]] std::size_t size() const noexcept { return merged_.size(); }
  // The most memory the merged records can take when every shard tracks different targets (the
  // sum of the shards' capacities): records, hash nodes and buckets.
  [[nodiscard]] std::size_t max_memory_bytes() const noexcept;
  [[nodiscard]] std::size_t above_threshold() const noexcept { return above_threshold_; }
  [[nodiscard]] const Destination* find(const Endpoint& target) const noexcept;

 private:
  struct Record {
    Destination merged;
    bool present = false;  // some shard tracks it (as of the last refresh)
  };

  std::vector<DestinationTable*> shards_;
  std::size_t threshold_;
  std::size_t above_threshold_ = 0;
  std::unordered_map<Endpoint, Record, EndpointHash> merged_;
};

}  // namespace synwatch
