#pragma once
// Per-destination state: half-open counts by state, event counters over a sliding window of
// sub-window slots, and per-slot sketches of the sources (distinct count, heavy hitters).
//
// A destination is a local address:port that received SYNs. Destinations live in a pool
// allocated once (max_destinations x slots); nothing is allocated per packet. When the pool
// is full, the least recently active destination whose stale level is below the threshold is
// recycled; if none can be, the new destination is dropped and counted.
//
// Nothing here is written by the detector: a table is a read-only input to detection. What
// belongs to an incident (its peak, its hold, the baseline it is judged against) is the
// detector's.
//
// Window: slot i covers one tick of packet time; a slot is cleared lazily the first time it is
// written in a new tick, so there is no per-tick sweep over all destinations.
// Thread safety: none; owned by one engine.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <cmath>
#include <optional>
#include <span>
#include <vector>

#include "aggregate/hyperloglog.hpp"
#include "aggregate/space_saving.hpp"
#include "common/counter_members.hpp"
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
struct WindowStats {
  std::uint32_t syns = 0;     // new SYNs (retransmissions excluded)
  std::uint32_t synacks = 0;  // first valid SYN-ACK of a handshake
  std::uint32_t completed = 0;
  std::uint32_t resets = 0;
  std::uint32_t expired = 0;     // pending entries that timed out (either state)
  std::uint32_t unanswered = 0;  // expired without ever seeing a SYN-ACK
  std::uint32_t evicted = 0;     // pushed out of a full handshake table
  // Handshakes judged bad in this tick: gone stale (pending past the destination's judgement
  // age), or failed before it (reset, evicted, expired), less those of them that completed late.
  // The flood condition and every source figure are over these, never over all SYNs.
  std::uint32_t stale = 0;
  std::uint32_t failed = 0;          // of `stale`: failed before they could be judged
  std::uint32_t late_completed = 0;  // stale handshakes that completed after all
  std::uint32_t stale_bogon = 0;     // of `stale`: sources in reserved ranges
  // Of `stale`, those counted without their source (on_flow's `with_sources`): source figures
  // (distinct ratio, bogon share, entropy, concentration) are over the others.
  std::uint32_t unsourced_stale = 0;

  void add(const WindowStats& other) noexcept;
};

inline constexpr std::array<std::uint32_t WindowStats::*, 12> kWindowStatsMembers = {
    &WindowStats::syns,           &WindowStats::synacks,     &WindowStats::completed,
    &WindowStats::resets,         &WindowStats::expired,     &WindowStats::unanswered,
    &WindowStats::evicted,        &WindowStats::stale,       &WindowStats::failed,
    &WindowStats::late_completed, &WindowStats::stale_bogon, &WindowStats::unsourced_stale};
static_assert(every_member_listed(kWindowStatsMembers),
              "a WindowStats member is missing from kWindowStatsMembers");

// Monotonic totals since the destination was first tracked (for metrics counters).
struct DestinationEventStats {
  std::uint64_t syns = 0;
  std::uint64_t syn_retransmits = 0;
  std::uint64_t synacks = 0;
  std::uint64_t completed = 0;
  std::uint64_t resets = 0;
  std::uint64_t expired = 0;
  std::uint64_t evicted = 0;
  std::uint64_t stale = 0;  // judged stale or failed (late completions not taken back)

  void add(const DestinationEventStats& other) noexcept;
};

// The /metrics family of DestinationEventStats, per destination (export/ adds address and port).
inline constexpr LabelledFigures<DestinationEventStats, std::uint64_t, 8> kDestinationEvents{
    .metric = "synwatch_handshake_events_total",
    .help =
        "Handshake events per destination (syn: new SYNs, retransmissions excluded; stale: "
        "judged stale or failed).",
    .kind = FigureKind::kCounter,
    .label = "event",
    .members = {{{&DestinationEventStats::syns, "syn"},
                 {&DestinationEventStats::syn_retransmits, "syn_retransmit"},
                 {&DestinationEventStats::synacks, "synack"},
                 {&DestinationEventStats::completed, "completed"},
                 {&DestinationEventStats::resets, "reset"},
                 {&DestinationEventStats::expired, "expired"},
                 {&DestinationEventStats::evicted, "evicted"},
                 {&DestinationEventStats::stale, "stale"}}}};
static_assert(every_member_listed(kDestinationEvents.members),
              "a DestinationEventStats member is missing from kDestinationEvents");

// How pending handshakes are judged (config detection.stale), as the tables use it.
struct StaleJudgement {
  // The judgement ladder handed to the handshake table: ascending ages, the first the floor.
  std::vector<DurationNs> ages;
  std::size_t no_history_rung = 0;  // the rung of detection.stale.no_history
  double percentile = 0.95;
  DurationNs history_epoch = 30 * kNanosPerSecond;  // the history is two epochs

  static StaleJudgement from(const DetectionConfig& detection);
};

// Completed handshakes need this many in the history before their percentile is trusted.
inline constexpr std::uint32_t kMinCompletionsForNormal = 20;
inline constexpr std::size_t kJudgeRungsMax = 7;

struct WindowSlot {
  std::int64_t tick = INT64_MIN;  // which tick of packet time this slot holds
  WindowStats counts;
  std::uint32_t peak_half_open = 0;  // the most half-open handshakes seen during the tick
  SourceHll sources;
  SourceSummary heavy;
};

struct Destination {
  Endpoint target;  // port 0 in a host table (all ports of the address)
  std::uint32_t syn_seen = 0;
  std::uint32_t syn_recv = 0;
  TimestampNs first_seen = 0;
  TimestampNs last_activity = 0;
  // When flood_level() last rose to the table's threshold and has stayed there (0 = below): a
  // fact of the counts, kept by the table; the detector times its hold from it.
  TimestampNs above_threshold_since = 0;
  DestinationEventStats totals;
  // Half-open connections the kernel answered statelessly (SYN cookies), as the kernel view
  // estimates them; always 0 in the wire view. See set_stateless().
  std::uint32_t stateless = 0;
  // Stale handshakes counted in the window (WindowStats::stale summed), kept as they are counted
  // so that a crossing of the threshold is seen on the packet; settle() makes it exact again.
  std::uint32_t stale_level = 0;
  // The destination's normal: completed handshakes' times by judgement rung (the last bucket:
  // past every rung), for two epochs of the history. judge_rung caches the rung they give.
  std::array<std::array<std::uint32_t, kJudgeRungsMax + 1>, 2> completion_times{};
  std::array<std::int64_t, 2> completion_epoch{INT64_MIN, INT64_MIN};
  std::uint8_t judge_rung = 0;
  std::int64_t judge_rung_tick = INT64_MIN;

  [[nodiscard]] std::uint32_t half_open() const noexcept { return syn_seen + syn_recv + stateless; }
  // What the threshold applies to: stale half-open handshakes in the window, and the kernel
  // view's SYN-cookie answered ones, which never complete in its eyes.
  [[nodiscard]] std::uint32_t flood_level() const noexcept { return stale_level + stateless; }
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
  WindowStats window;          // sums over the window
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
  // Stale half-open handshakes in the window (plus the kernel view's SYN cookies): what the
  // threshold applies to. Source figures (distinct, entropy, bogon, top) are over these.
  std::uint32_t stale = 0;
  std::uint32_t sourced_stale = 0;   // of window.stale, those whose sources the sketches hold
  std::uint32_t peak_half_open = 0;  // the most half-open handshakes during the window
  double baseline = 0;               // the detector's, which fills it in (0 from the tables)
  DurationNs judge_age = 0;          // age at which its pending handshakes are judged stale
  bool learned_normal = false;       // judge_age from its completed handshakes, not the default
  std::vector<HeavySourceShare> top_sources;  // heaviest first
};

// The raw material of DestinationStats for one target: the window's slots gathered from one
// table, or from several (one per capture worker) and merged: counts summed, distinct-source
// sketches united, heavy-hitter summaries merged.
struct WindowAccumulator {
  WindowStats window;
  std::vector<const SourceHll*> sketches;
  SourceSummary heavy;
  TimestampNs first_seen = INT64_MAX;
  std::uint32_t peak_half_open = 0;  // each table's peak over the window, summed (upper bound)
  DurationNs judge_age = 0;          // the longest
  bool learned_normal = false;
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
  // Visits every destination, read-only.
  virtual void visit_all(const std::function<void(const Destination&)>& visit) const = 0;
  [[nodiscard]] virtual DestinationStats stats(const Destination& destination, TimestampNs now,
                                               std::size_t top_sources) const = 0;
};

struct DestinationTableStats {
  std::uint64_t created = 0;
  std::uint64_t recycled = 0;   // least recently active destination reused for a new one
  std::uint64_t dropped = 0;    // new destination not tracked: pool full of floods
  std::uint64_t forgotten = 0;  // removed after idle_timeout

  void add(const DestinationTableStats& other) noexcept;
};

inline constexpr std::array<std::uint64_t DestinationTableStats::*, 4>
    kDestinationTableStatsMembers = {
        &DestinationTableStats::created, &DestinationTableStats::recycled,
        &DestinationTableStats::dropped, &DestinationTableStats::forgotten};
static_assert(every_member_listed(kDestinationTableStatsMembers),
              "a DestinationTableStats member is missing from kDestinationTableStatsMembers");

class DestinationTable final : public DestinationSet {
 public:
  // `half_open_threshold` only drives above_threshold_since (the detector's hold timer), on
  // Destination::flood_level(). A host table (`hosts`) keys destinations by address alone: every
  // port of an address is one destination, with target port 0.
  enum class Scope : std::uint8_t { kPort, kHost };
  DestinationTable(const AggregationConfig& config, DurationNs tick,
                   std::size_t half_open_threshold, std::uint64_t hash_seed = 0,
                   StaleJudgement judgement = {}, Scope scope = Scope::kPort);

  // Applies one handshake table update observed at `now`. Returns the destination it touched
  // (nullptr if none), so the caller can react to threshold crossings without a second lookup.
  // `with_sources` false: stale and failed handshakes are counted without adding their sources
  // to the sketches (the caller knows nobody will ask: a host table while one of its ports is
  // flooded, see FlowShard).
  Destination* on_flow(const FlowUpdate& update, TimestampNs now,
                       bool with_sources = true) noexcept;
  // Applies one expired pending handshake (from `client`; stale if it was judged so).
  void on_expired(const Endpoint& server, const IpAddress& client, HandshakeState state,
                  bool was_stale, TimestampNs now) noexcept;
  // A pending handshake of `server` from `client` was judged stale at `now`. Returns the
  // destination (nullptr if the pool is full of floods).
  Destination* on_stale(const Endpoint& server, const IpAddress& client, TimestampNs now,
                        bool with_sources = true) noexcept;
  // For an owner that sees half-open connections come and go rather than segments (the kernel
  // view, from the server's own socket table):
  // A half-open connection to `server` began, already answered (the server holds it in
  // SYN_RECV): one SYN and its SYN-ACK. Its source counts once it is judged stale (on_stale()).
  // Returns the destination (nullptr if the pool is full of floods).
  Destination* on_answered_syn(const Endpoint& server, TimestampNs now) noexcept;
  // A half-open connection to `server`, pending in `state`, completed. `judged_stale_at`: when
  // on_stale() counted it, if it did; it leaves the stale count as a late completion. How long
  // its handshake took is unknown, so it teaches the destination's normal nothing.
  void on_completed(const Endpoint& server, HandshakeState state,
                    std::optional<TimestampNs> judged_stale_at, TimestampNs now) noexcept;
  // The judgement rung for handshakes to `server` reaching the floor at `now`: the smallest rung
  // at least the destination's normal (StaleJudgement::percentile of its completed handshakes'
  // times), or the no-history rung until it has kMinCompletionsForNormal of them.
  [[nodiscard]] unsigned judge_rung(const Endpoint& server, TimestampNs now) noexcept;
  // Makes every destination's stale_level exact as of `now` (slots that left the window) and
  // its threshold mark with it. Cost: O(tracked destinations); run once per evaluation.
  void settle(TimestampNs now) noexcept;
  [[nodiscard]] const StaleJudgement& judgement() const noexcept { return judgement_; }
  [[nodiscard]] Scope scope() const noexcept { return scope_; }
  // Kernel view: `target` now has `stateless` half-open connections answered with SYN cookies,
  // `new_syns` more such SYNs arrived (counted as unanswered SYNs in the window; their sources are
  // unknown) and `new_completed` cookies were validated by the client's ACK (completed handshakes).
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

  // Removes destinations with no half-open connections, below the threshold, idle longer than the
  // configured idle timeout. Cost: O(tracked destinations).
  void forget_idle(TimestampNs now) noexcept;

  // Visits every tracked destination.
  template <typename Visitor>
  void for_each(Visitor&& visit) {
    for (std::uint32_t i = lru_newest_; i != kNone; i = links_[i].older) visit(pool_[i]);
  }
  void visit_all(const std::function<void(const Destination&)>& visit) const override {
    for (std::uint32_t i = lru_newest_; i != kNone; i = links_[i].older) visit(pool_[i]);
  }
  Destination* find(const Endpoint& target) noexcept;
  [[nodiscard]] const Destination* find(const Endpoint& target) const noexcept {
    return const_cast<DestinationTable*>(this)->find(target);
  }

  // Changes the threshold and re-marks every destination against it (a config reload).
  void set_half_open_threshold(std::size_t threshold, TimestampNs now) noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // Destinations whose half-open count is at or above the threshold right now.
  [[nodiscard]] std::size_t above_threshold() const noexcept { return above_threshold_; }
  // How many times a destination's stale level rose to the threshold. An owner compares it after
  // on_flow() to hear of a crossing without looking at the destination.
  [[nodiscard]] std::uint64_t crossings() const noexcept { return crossings_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return pool_.size(); }
  [[nodiscard]] const DestinationTableStats& counters() const noexcept { return counters_; }
  [[nodiscard]] std::size_t memory_bytes() const noexcept;

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  struct Links {
    std::uint32_t newer = kNone;
    std::uint32_t older = kNone;
    bool in_use = false;
  };

  Destination* find_or_create(const Endpoint& target, TimestampNs now) noexcept;
  // A new destination for a target not tracked yet, recycling the least recently active one
  // below the threshold when the pool is full; nullptr (counted as dropped) when the 8 least
  // recently active are all at or above it.
  Destination* create(const Endpoint& target, TimestampNs now) noexcept;
  // find() with its check of the last destination found inlined: the packet path asks for the
  // same destination over and over during a flood. current_slot() and touch() run for nearly
  // every packet too; a call costs as much as their work.
  [[gnu::always_inline]] Destination* find_recent(const Endpoint& target) noexcept;
  Destination* find_in_index(const Endpoint& target) noexcept;  // the hash and the probe
  [[gnu::always_inline]] WindowSlot& current_slot(std::uint32_t index, TimestampNs now) noexcept;
  void increment(Destination& d, HandshakeState state) noexcept;
  void decrement(Destination& d, HandshakeState state) noexcept;
  // A handshake of `d` from `client` judged bad (stale, or `failed` before its judgement).
  void count_stale(Destination& d, const IpAddress& client, bool failed, TimestampNs now,
                   bool with_sources = true) noexcept;
  // A stale handshake of `d` completed after all: off the slot it was counted in.
  void count_late_completion(Destination& d, const FlowUpdate& update, TimestampNs now) noexcept;
  // The same for one that on_stale() counted at `judged_at`.
  void take_back_stale(Destination& d, TimestampNs judged_at, TimestampNs now) noexcept;
  void record_completion(Destination& d, DurationNs age, TimestampNs now) noexcept;
  // Sets d.stale_level and the threshold mark that goes with it.
  void set_level(Destination& d, std::uint32_t level, TimestampNs now) noexcept;
  [[nodiscard]] std::uint32_t window_stale(const Destination& d, TimestampNs now) const noexcept;
  [[nodiscard]] Endpoint key_of(const Endpoint& server) const noexcept {
    return Endpoint{server.address, static_cast<std::uint16_t>(server.port & port_mask_)};
  }
  void move_state(Destination& d, HandshakeState from, HandshakeState to) noexcept;
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
  StaleJudgement judgement_;
  Scope scope_;
  std::uint16_t port_mask_;  // 0 in a host table
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
  std::uint64_t crossings_ = 0;
  DestinationTableStats counters_;
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
