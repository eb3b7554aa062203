#pragma once
// Per-destination state: half-open counts by state, event counters over a sliding window of
// sub-window slots, and per-slot sketches of the sources (distinct count, heavy hitters).
//
// A destination is a local address:port that received SYNs. Destinations live in a pool
// allocated once (max_destinations x slots); nothing is allocated per packet. When the pool
// is full, the least recently active destination that is not pinned by an open incident is
// recycled; if none can be, the new destination is dropped and counted.
//
// Window: slot i covers one tick of packet time; a slot is cleared lazily the first time it is
// written in a new tick, so there is no per-tick sweep over all destinations.
// Thread safety: none; owned by one engine.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "aggregate/hyperloglog.hpp"
#include "aggregate/space_saving.hpp"
#include "common/ip_address.hpp"
#include "common/time.hpp"
#include "config/config.hpp"
#include "flow/handshake_table.hpp"

namespace synwatch {

struct EndpointHash {
  std::size_t operator()(const Endpoint& e) const noexcept {
    return hash_bytes(e.address.bytes.data(), 16, e.port);
  }
};

inline constexpr std::size_t kHeavySourcesPerSlot = 16;
using SourceSummary = SpaceSaving<kHeavySourcesPerSlot>;

// Counts of handshake events in one slot (one tick).
struct WindowCounts {
  std::uint32_t syns = 0;     // new SYNs (retransmissions excluded)
  std::uint32_t synacks = 0;  // first valid SYN-ACK of a handshake
  std::uint32_t completed = 0;
  std::uint32_t resets = 0;
  std::uint32_t expired = 0;     // pending entries that timed out (either state)
  std::uint32_t unanswered = 0;  // expired without ever seeing a SYN-ACK
  std::uint32_t evicted = 0;     // pushed out of a full handshake table
  std::uint32_t bogon_syns = 0;  // SYNs from reserved source ranges
  // Of `syns`, those whose source is unknown: the kernel view's SYN cookies (the kernel kept no
  // request socket). Source figures (distinct ratio, entropy) are over the other SYNs.
  std::uint32_t unsourced_syns = 0;

  void add(const WindowCounts& other) noexcept;
};

// Monotonic totals since the destination was first tracked (for metrics counters).
struct DestinationTotals {
  std::uint64_t syns = 0;
  std::uint64_t syn_retransmits = 0;
  std::uint64_t synacks = 0;
  std::uint64_t completed = 0;
  std::uint64_t resets = 0;
  std::uint64_t expired = 0;
  std::uint64_t evicted = 0;

  void add(const DestinationTotals& other) noexcept;
};

struct WindowSlot {
  std::int64_t tick = INT64_MIN;  // which tick of packet time this slot holds
  WindowCounts counts;
  SourceHll sources;
  SourceSummary heavy;
};

struct Destination {
  Endpoint target;
  std::uint32_t syn_seen = 0;
  std::uint32_t syn_recv = 0;
  std::uint32_t peak_half_open = 0;  // since the last take_peak()
  TimestampNs first_seen = 0;
  TimestampNs last_activity = 0;
  // When half-open last rose to the detection threshold and has stayed there (0 = below).
  TimestampNs above_threshold_since = 0;
  bool pinned = false;  // an incident is open: never recycle
  DestinationTotals totals;
  // Half-open connections the kernel answered statelessly (SYN cookies), as the kernel view
  // estimates them; always 0 in the wire view. See set_stateless().
  std::uint32_t stateless = 0;

  [[nodiscard]] std::uint32_t half_open() const noexcept { return syn_seen + syn_recv + stateless; }
};

// Figures over the sliding window, computed at evaluation time (not per packet).
struct HeavySourceShare {
  IpAddress address;
  std::uint64_t syns = 0;  // guaranteed lower bound of this source's SYNs in the window
};

struct DestinationStats {
  Endpoint target;
  std::uint32_t syn_seen = 0;
  std::uint32_t syn_recv = 0;
  std::uint32_t half_open = 0;
  DurationNs window_span = 0;  // packet time the window actually covers
  WindowCounts window;         // sums over the window
  double syn_rate = 0;         // per second
  double synack_rate = 0;
  double completed_rate = 0;
  double reset_rate = 0;
  double expired_rate = 0;
  double unanswered_rate = 0;
  double distinct_sources = 0;  // HyperLogLog estimate
  double distinct_ratio = 0;    // distinct sources / SYNs (1 = every SYN from a new source)
  double source_entropy = 0;    // normalised to [0, 1]
  double bogon_share = 0;       // share of SYNs from reserved ranges
  double completion_ratio = 0;  // completed / SYNs, capped at 1
  std::vector<HeavySourceShare> top_sources;  // heaviest first
};

// The raw material of DestinationStats for one target: the window's slots gathered from one
// table, or from several (one per capture worker) and merged: counts summed, distinct-source
// sketches united, heavy-hitter summaries merged.
struct WindowAccumulator {
  WindowCounts window;
  std::vector<const SourceHll*> sketches;
  SourceSummary heavy;
  TimestampNs first_seen = INT64_MAX;
};

// Turns gathered windows into figures. `half_open` etc. are the (summed) current counts;
// `slots` and `tick` describe the window the accumulator covers.
DestinationStats summarize_window(const Endpoint& target, std::uint32_t syn_seen,
                                  std::uint32_t syn_recv, std::uint32_t half_open,
                                  const WindowAccumulator& gathered, TimestampNs now,
                                  DurationNs tick, std::size_t slots, std::size_t top_sources);

// What the detector reads and marks: one DestinationTable, or the merge of several.
class DestinationSet {
 public:
  DestinationSet() = default;
  DestinationSet(const DestinationSet&) = default;
  DestinationSet& operator=(const DestinationSet&) = default;
  virtual ~DestinationSet() = default;
  // Visits every destination; the visitor may update peak_half_open and pinned.
  virtual void visit_all(const std::function<void(Destination&)>& visit) = 0;
  [[nodiscard]] virtual DestinationStats stats(const Destination& destination, TimestampNs now,
                                               std::size_t top_sources) const = 0;
};

struct DestinationTableCounters {
  std::uint64_t created = 0;
  std::uint64_t recycled = 0;   // least recently active destination reused for a new one
  std::uint64_t dropped = 0;    // new destination not tracked: pool full of pinned ones
  std::uint64_t forgotten = 0;  // removed after idle_timeout

  void add(const DestinationTableCounters& other) noexcept;
};

class DestinationTable final : public DestinationSet {
 public:
  // `half_open_threshold` only drives above_threshold_since (the detector's hold timer).
  DestinationTable(const AggregationConfig& config, DurationNs tick,
                   std::size_t half_open_threshold, std::uint64_t hash_seed = 0);

  // Applies one handshake table update observed at `now`. Returns the destination it touched
  // (nullptr if none), so the caller can react to threshold crossings without a second lookup.
  Destination* on_flow(const FlowUpdate& update, TimestampNs now) noexcept;
  // Applies one expired pending handshake.
  void on_expired(const Endpoint& server, HandshakeState state, TimestampNs now) noexcept;
  // Kernel view: `target` now has `stateless` half-open connections answered with SYN cookies,
  // `new_syns` more such SYNs arrived (counted as unsourced, unanswered SYNs in the window) and
  // `new_completed` cookies were validated by the client's ACK (completed handshakes).
  // Creates the destination if needed; returns it (nullptr if the pool is full).
  Destination* set_stateless(const Endpoint& target, std::uint32_t stateless,
                             std::uint32_t new_syns, std::uint32_t new_completed,
                             TimestampNs now) noexcept;

  [[nodiscard]] DestinationStats stats(const Destination& destination, TimestampNs now,
                                       std::size_t top_sources) const override;
  // Adds this table's window for `destination` (one of its own) to `gathered`.
  void gather(const Destination& destination, TimestampNs now, WindowAccumulator& gathered) const;
  [[nodiscard]] std::size_t window_slots() const noexcept { return slots_per_destination_; }
  [[nodiscard]] DurationNs tick() const noexcept { return tick_; }

  // Removes destinations with no half-open connections, not pinned, idle longer than the
  // configured idle timeout. Cost: O(tracked destinations).
  void forget_idle(TimestampNs now) noexcept;

  // Visits every tracked destination.
  template <typename Visitor>
  void for_each(Visitor&& visit) {
    for (std::uint32_t i = lru_newest_; i != kNone; i = links_[i].older) visit(pool_[i]);
  }
  void visit_all(const std::function<void(Destination&)>& visit) override { for_each(visit); }
  Destination* find(const Endpoint& target) noexcept;
  [[nodiscard]] const Destination* find(const Endpoint& target) const noexcept {
    return const_cast<DestinationTable*>(this)->find(target);
  }

  // Changes the threshold and re-marks every destination against it (a config reload).
  void set_half_open_threshold(std::size_t threshold, TimestampNs now) noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // Destinations whose half-open count is at or above the threshold right now.
  [[nodiscard]] std::size_t above_threshold() const noexcept { return above_threshold_; }
  // How many times a handshake (on_flow) raised a destination not pinned by an open incident to
  // the threshold. An owner compares it after on_flow() to hear of a crossing without looking
  // at the destination.
  [[nodiscard]] std::uint64_t unpinned_crossings() const noexcept { return unpinned_crossings_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return pool_.size(); }
  [[nodiscard]] const DestinationTableCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] std::size_t memory_bytes() const noexcept;

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  struct Links {
    std::uint32_t newer = kNone;
    std::uint32_t older = kNone;
    bool in_use = false;
  };

  Destination* find_or_create(const Endpoint& target, TimestampNs now) noexcept;
  // A new destination for a target not tracked yet, recycling the least recently active
  // unpinned one when the pool is full; nullptr (counted as dropped) when the 8 least recently
  // active are all pinned.
  Destination* create(const Endpoint& target, TimestampNs now) noexcept;
  // find() with its check of the last destination found inlined: the packet path asks for the
  // same destination over and over during a flood. current_slot() and touch() run for nearly
  // every packet too; a call costs as much as their work.
  [[gnu::always_inline]] Destination* find_recent(const Endpoint& target) noexcept;
  Destination* find_in_index(const Endpoint& target) noexcept;  // the hash and the probe
  [[gnu::always_inline]] WindowSlot& current_slot(std::uint32_t index, TimestampNs now) noexcept;
  void increment(Destination& d, HandshakeState state, TimestampNs now) noexcept;
  void decrement(Destination& d, HandshakeState state) noexcept;
  void move_state(Destination& d, HandshakeState from, HandshakeState to, TimestampNs now) noexcept;
  [[gnu::always_inline]] void touch(std::uint32_t index, TimestampNs now) noexcept;
  void unlink(std::uint32_t index) noexcept;
  void push_newest(std::uint32_t index) noexcept;
  void index_insert(std::uint32_t index) noexcept;
  void index_erase(std::uint32_t index) noexcept;
  void release(std::uint32_t index) noexcept;
  [[nodiscard]] std::size_t bucket_of(const Endpoint& target) const noexcept;
  [[nodiscard]] std::uint32_t index_of(const Destination& d) const noexcept {
    return static_cast<std::uint32_t>(&d - pool_.data());
  }

  AggregationConfig config_;
  DurationNs tick_;
  std::size_t slots_per_destination_;
  std::size_t threshold_;
  std::uint64_t hash_seed_;
  std::vector<Destination> pool_;
  std::vector<Links> links_;
  std::vector<WindowSlot> slots_;       // pool_.size() * slots_per_destination_
  std::vector<std::uint32_t> buckets_;  // open addressing: pool index or kNone
  std::size_t bucket_mask_ = 0;
  std::vector<std::uint32_t> free_;  // free pool indices (stack)
  std::uint32_t lru_newest_ = kNone;
  std::uint32_t lru_oldest_ = kNone;
  std::size_t size_ = 0;
  std::size_t above_threshold_ = 0;
  std::uint64_t unpinned_crossings_ = 0;
  DestinationTableCounters counters_;
  std::uint32_t last_found_ = kNone;  // pool index find() returned last, if still in use
  // The tick of packet time current_slot() computed last, valid for times in [begin, end).
  std::int64_t slot_tick_ = 0;
  std::size_t slot_position_ = 0;
  TimestampNs slot_tick_begin_ = INT64_MAX;
  TimestampNs slot_tick_end_ = INT64_MIN;
};

// Floor division of packet time into ticks (packet times may precede 1970).
constexpr std::int64_t tick_of(TimestampNs t, DurationNs tick) noexcept {
  return t >= 0 ? t / tick : -((-t + tick - 1) / tick);
}

}  // namespace synwatch
