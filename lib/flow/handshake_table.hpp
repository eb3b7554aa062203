#pragma once
// Tracks TCP three-way handshakes by 4-tuple in fixed, preallocated memory. The handshake rules
// live here; finding a handshake's entry by its FlowKey is a BucketedIndex's job.
//
//   SYN            -> entry created in state kSynSeen  (client asked; no answer seen yet)
//   SYN-ACK        -> kSynRecv when ack == SYN.seq + 1 (the server's SYN_RECV, as netstat shows)
//   final ACK      -> completed (entry removed) when ack == SYN-ACK.seq + 1
//   RST (either way), expiry after `pending_timeout`, or eviction when full -> entry removed
//
// A retransmitted SYN (same 4-tuple, same seq) is reported as kSynRetransmit and does not
// create a second entry. Both directions of a connection map to one entry (the key is the
// 4-tuple in canonical order), so one lookup serves any packet.
//
// Choices where TCP leaves room (all deliberate, all tested):
// - SYN from the client with a *different* seq on a pending tuple: the client reused the port
//   for a new attempt. The entry restarts (new seq, new first-SYN time, back to kSynSeen, moved
//   to the young end of the age list) and the update is kSynRetransmit with previous_state
//   telling what was overwritten. It is counted in syn_retransmits, never as a second insert.
// - SYN or SYN-ACK travelling the wrong way (server -> client SYN, client -> server SYN-ACK:
//   simultaneous open) and ACKs from the server side: kNone, entry untouched.
// - ACK (no SYN/RST/FIN) from the client on a kSynSeen entry: kCompleted. A client does not
//   ACK before it has a SYN-ACK, so we missed it (one-way capture, loss); the ack number cannot
//   be checked then.
// - Any RST whose tuple matches resets the entry, whatever its seq/ack (a server's RST to a
//   SYN carries seq 0; a client's may carry anything).
// - FIN on a pending entry: kNone.
// - kUnsolicitedSynAck still fills `server` (the SYN-ACK's source endpoint) and `client` (its
//   destination address): the victim of a reflection attack is that destination.
// - A connection from an endpoint to itself (LAND) has no direction: its segments count as
//   coming from either side.
//
// Time: segment.timestamp is "now". First-SYN times are kept as wrapping milliseconds, rounded
// up, so an entry expires at the first `now` >= first SYN + pending_timeout (exact for
// millisecond-aligned timestamps, never early, at most 1 ms late otherwise). pending_timeout is
// clamped to [0, kMaxPendingTimeout]. Timestamps may step backwards (several interfaces,
// reordering): a new entry never gets a time older than the youngest entry, so the age list
// stays sorted and expiry stays O(expired). Ages are recovered modulo 2^32 ms (49.7 days), so
// expire() must run at least once per ~48 days of packet time (the engine runs it every tick).
//
// Judgement (stale handshakes): a pending handshake that has not completed by the age its
// destination normally completes within is *stale*. The table knows nothing of destinations;
// the owner gives it a ladder of judgement ages (set_judge_ages: ascending, rung 0 the floor) and,
// in judge(), maps each handshake reaching the floor to the rung of its destination. One cursor
// per rung walks the age list, so each handshake is looked at when it reaches the floor and when
// it reaches its own rung's age: O(handshakes that turn stale) per call, never a scan. A cursor
// with no handshake of its rung waiting jumps to the floor cursor instead of walking. A stale
// handshake stays in the table (it may still complete: a retransmitted SYN-ACK); updates say
// whether the handshake they end was stale (`was_stale`, `evicted_stale`) and how old it was.
//
// Memory: exactly `capacity` entries are allocated up front; nothing is allocated per packet.
// When the table is full, a new SYN evicts the oldest pending entry (reported in the update).
// 56-byte entries plus their BucketedIndex (8 bytes per entry): 64 bytes per tracked handshake
// (tables of fewer than 16 may take one index bucket more).
// Thread safety: none; one table per capture worker.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/counter_members.hpp"
#include "common/ip_address.hpp"
#include "common/huge_pages.hpp"
#include "common/time.hpp"
#include "decode/tcp_segment.hpp"
#include "flow/bucketed_index.hpp"
#include "flow/flow_key.hpp"

namespace synwatch {

enum class HandshakeState : std::uint8_t { kSynSeen = 1, kSynRecv = 2 };

enum class FlowEvent : std::uint8_t {
  kNone,               // segment belongs to no tracked handshake and started none
  kSyn,                // new SYN: entry created in kSynSeen
  kSynRetransmit,      // SYN for an existing pending entry
  kSynAck,             // valid SYN-ACK: kSynSeen -> kSynRecv
  kSynAckRetransmit,   // SYN-ACK for an entry already in kSynRecv
  kCompleted,          // valid final ACK: handshake complete, entry removed
  kReset,              // RST for a pending entry, entry removed
  kMismatch,           // SYN-ACK or ACK whose ack number does not match: counted, entry kept
  kUnsolicitedSynAck,  // SYN-ACK with no pending SYN (reflection backscatter, or one-way capture)
};

// What one segment did to the table. `server`/`client`/`previous_state`/`was_stale`/`age` are set
// for every event other than kNone and kUnsolicitedSynAck. If inserting a new SYN evicted an
// entry, `evicted` is true and the evicted_* fields describe it.
struct FlowUpdate {
  FlowEvent event = FlowEvent::kNone;
  HandshakeState previous_state = HandshakeState::kSynSeen;  // state before this segment
  bool was_stale = false;  // judged stale before this segment (see judge())
  std::uint8_t rung = 0;   // judgement rung it was given at the floor (0 if not reached)
  DurationNs age = 0;      // time since the handshake's first SYN, at this segment
  Endpoint server;         // the side that received the SYN (address:port being connected to)
  IpAddress client;        // the side that sent the SYN
  bool evicted = false;
  bool evicted_stale = false;
  HandshakeState evicted_state = HandshakeState::kSynSeen;
  Endpoint evicted_server;
  IpAddress evicted_client;
};

struct HandshakeTableStats {
  std::uint64_t inserted = 0;
  std::uint64_t completed = 0;
  std::uint64_t reset = 0;
  std::uint64_t expired = 0;
  std::uint64_t evicted = 0;
  std::uint64_t syn_retransmits = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t unsolicited_synacks = 0;
  std::uint64_t synacks = 0;             // kSynAck
  std::uint64_t synack_retransmits = 0;  // kSynAckRetransmit
  std::uint64_t judged_stale = 0;        // handshakes that reached their judgement age pending

  void add(const HandshakeTableStats& other) noexcept;
};

// The /metrics family of the handshake table's counts (summed over capture workers).
inline constexpr LabelledFigures<HandshakeTableStats, std::uint64_t, 11> kHandshakeEvents{
    .metric = "synwatch_handshakes_total",
    .help =
        "What happened in the handshake table, over all destinations: inserted (new SYN), "
        "synack, completed, reset, expired, evicted (table full), syn_retransmit, "
        "synack_retransmit, mismatch (an ack number that did not match), unsolicited_synack "
        "(a SYN-ACK without its SYN: backscatter of a flood forging this host's addresses, "
        "or a capture that sees one direction), judged_stale (pending past the judgement "
        "age).",
    .kind = FigureKind::kCounter,
    .label = "event",
    .members = {{{&HandshakeTableStats::inserted, "inserted"},
                 {&HandshakeTableStats::completed, "completed"},
                 {&HandshakeTableStats::reset, "reset"},
                 {&HandshakeTableStats::expired, "expired"},
                 {&HandshakeTableStats::evicted, "evicted"},
                 {&HandshakeTableStats::syn_retransmits, "syn_retransmit"},
                 {&HandshakeTableStats::mismatches, "mismatch"},
                 {&HandshakeTableStats::unsolicited_synacks, "unsolicited_synack"},
                 {&HandshakeTableStats::synacks, "synack"},
                 {&HandshakeTableStats::synack_retransmits, "synack_retransmit"},
                 {&HandshakeTableStats::judged_stale, "judged_stale"}}}};
static_assert(every_member_listed(kHandshakeEvents.members),
              "a HandshakeTableStats member is missing from kHandshakeEvents");

inline void HandshakeTableStats::add(const HandshakeTableStats& other) noexcept {
  add_members(*this, other, kHandshakeEvents.members);
}

class HandshakeTable {
 public:
  static constexpr std::size_t kMaxCapacity = std::size_t{1} << 28;
  static constexpr DurationNs kMaxPendingTimeout = 86'400 * kNanosPerSecond;  // 1 day

  // capacity: maximum tracked pending handshakes (>= 1, <= 2^28; clamped into that range).
  // pending_timeout: a pending entry older than this (from its first SYN) expires.
  HandshakeTable(std::size_t capacity, DurationNs pending_timeout, std::uint64_t hash_seed = 0);
  ~HandshakeTable();
  HandshakeTable(const HandshakeTable&) = delete;
  HandshakeTable& operator=(const HandshakeTable&) = delete;

  class Prepared;

  // Applies one segment observed at segment.timestamp. `accept_new_syn` is false when the
  // SYN's destination is not one the operator protects: then no entry is created (kNone).
  FlowUpdate process(const TcpSegment& segment, bool accept_new_syn = true) noexcept;

  // process() in two steps, for a caller holding a batch of segments. prepare() does the part
  // that reads no table state (the canonical key and its hash) and starts loading the index
  // slot the key will probe; preparing a few segments ahead of processing them overlaps their
  // cache misses instead of paying them one after another. A Prepared belongs to the segment
  // and the table it was made from. Written in place: callers keep a ring of them, and a
  // returned one would be copied into it.
  void prepare(const TcpSegment& segment, Prepared& out) const noexcept;
  FlowUpdate process(const TcpSegment& segment, const Prepared& prepared,
                     bool accept_new_syn = true) noexcept;
  // The same into `update`, for a caller that keeps one FlowUpdate for segment after segment:
  // `event` and `evicted` are always written, every other field only when they say it means
  // something (see FlowUpdate), so the rest may still hold an earlier segment's values. Saves
  // clearing a 90-byte struct per packet.
  void process(const TcpSegment& segment, const Prepared& prepared, bool accept_new_syn,
               FlowUpdate& update) noexcept;

  // Removes every pending entry whose first SYN is older than now - pending_timeout and calls
  // on_expired(server, client, state, was_stale) for each, oldest first. Cost: O(expired).
  template <typename OnExpired>
  void expire(TimestampNs now, OnExpired&& on_expired) noexcept;

  // The judgement ladder: ascending ages, at most kMaxJudgeRungs; empty (the default) judges
  // nothing. Handshakes already given a rung keep it (a rung past the new ladder's end counts as
  // its last).
  static constexpr std::size_t kMaxJudgeRungs = 7;
  void set_judge_ages(std::span<const DurationNs> ages) noexcept;
  [[nodiscard]] std::span<const DurationNs> judge_ages() const noexcept {
    return {judge_ages_.data(), judge_rungs_};
  }
  // Judges every handshake due by `now`, oldest first: at the floor age, rung_of(server) (an
  // unsigned rung, clamped to the ladder) is asked once per handshake; rung 0 is stale at once,
  // others when they reach their rung's age. on_stale(server, client, state) is called for each
  // handshake judged stale. Call it whenever packet time reaches judge_due(), and before
  // expire() for the same time, so that a handshake is judged before it can expire.
  template <typename RungOf, typename OnStale>
  void judge(TimestampNs now, RungOf&& rung_of, OnStale&& on_stale) noexcept;
  // Packet time from which judge() has work (never later than the real next judgement; it may
  // be earlier, then judge() finds nothing due and moves it on). INT64_MAX when nothing waits.
  [[nodiscard]] TimestampNs judge_due() const noexcept { return judge_due_; }
  // Pending handshakes judged stale right now.
  [[nodiscard]] std::size_t stale() const noexcept { return stale_; }

  [[nodiscard]] std::size_t size() const noexcept { return index_.size(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] DurationNs pending_timeout() const noexcept { return pending_timeout_; }
  void set_pending_timeout(DurationNs timeout) noexcept {
    pending_timeout_ = timeout < 0                    ? 0
                       : timeout > kMaxPendingTimeout ? kMaxPendingTimeout
                                                      : timeout;
  }
  [[nodiscard]] const HandshakeTableStats& counters() const noexcept { return counters_; }
  // Bytes of preallocated memory (entries plus index), for the memory bound.
  [[nodiscard]] std::size_t memory_bytes() const noexcept;
  // Index buckets with keys stored past them (BucketedIndex::overflowing_buckets): for tests
  // and diagnostics, O(buckets). 0 whenever the table is empty.
  [[nodiscard]] std::size_t overflowing_buckets() const noexcept {
    return index_.overflowing_buckets();
  }

  // Pending entries by state, maintained incrementally.
  [[nodiscard]] std::size_t count(HandshakeState state) const noexcept {
    return state == HandshakeState::kSynSeen ? syn_seen_ : size() - syn_seen_;
  }

  struct Entry;  // defined in handshake_table.cpp; layout documented there

 private:
  using Index = BucketedIndex<>;

 public:
  class Prepared {
   private:
    friend class HandshakeTable;
    FlowKey key_{};
    Index::Token token_{};
    SourceEnd source_end_ = SourceEnd::kBoth;
  };

 private:
  // What a segment can do to a handshake, decided by its flags in this order: an RST resets
  // whatever else it carries.
  enum class SegmentKind : std::uint8_t { kRst, kSyn, kSynAck, kAck, kOther };
  [[nodiscard]] static SegmentKind kind_of(const TcpSegment& segment) noexcept;

  // The pending handshake a segment belongs to, as the segment found it.
  struct Tracked {
    std::uint32_t entry;
    std::size_t slot;      // in index_
    HandshakeState state;  // before this segment
    bool from_client;
    bool from_server;
  };
  [[nodiscard]] Tracked tracked(std::size_t slot, const Prepared& prepared) const noexcept;

  // The transitions, one per segment kind; process() picks one.
  void on_new_syn(const TcpSegment& segment, const Prepared& prepared, FlowUpdate& update) noexcept;
  void on_unsolicited_synack(const TcpSegment& segment, FlowUpdate& update) noexcept;
  void on_rst(const TcpSegment& segment, const Prepared& prepared, const Tracked& handshake,
              FlowUpdate& update) noexcept;
  void on_repeated_syn(const TcpSegment& segment, const Tracked& handshake,
                       FlowUpdate& update) noexcept;
  void on_synack(const TcpSegment& segment, const Tracked& handshake, FlowUpdate& update) noexcept;
  void on_final_ack(const TcpSegment& segment, const Prepared& prepared, const Tracked& handshake,
                    FlowUpdate& update) noexcept;
  // Fills `update` for an event on a tracked handshake, as it was before this segment.
  void report(FlowEvent event, const TcpSegment& segment, const Tracked& handshake,
              FlowUpdate& update) const noexcept;
  void evict_oldest(FlowUpdate& update) noexcept;

  // Pops the oldest entry if it expired by `now`; false when none did.
  bool pop_expired(TimestampNs now, Endpoint& server, IpAddress& client, HandshakeState& state,
                   bool& was_stale) noexcept;

  // One step of judge(): the entry under rung `rung`'s cursor if it is due by `now`; kNoEntry
  // when the cursor has nothing due. Moves the cursor past it.
  static constexpr std::uint32_t kNoEntry = UINT32_MAX;
  std::uint32_t next_due(std::size_t rung, TimestampNs now) noexcept;
  // At the floor: gives the entry its rung (true: stale at once). Past it: whether it is stale
  // now. Both mark it and count it.
  bool assign_rung(std::uint32_t entry, unsigned rung) noexcept;
  bool due_at_rung(std::uint32_t entry, std::size_t rung) noexcept;
  void describe_judged(std::uint32_t entry, Endpoint& server, IpAddress& client,
                       HandshakeState& state) const noexcept;
  void recompute_judge_due() noexcept;
  // Takes a handshake that leaves the table (or starts over) off the judgement counts.
  void forget_judgement(const Entry& e) noexcept;
  [[nodiscard]] std::int64_t first_syn_ms(std::uint32_t entry) const noexcept;

  void key_and_token(const TcpSegment& segment, Prepared& out) const noexcept;
  // The home bucket of an entry's key in index_, and the slot holding the entry.
  struct Located {
    std::size_t slot;
    std::size_t home;
  };
  [[nodiscard]] Located locate_oldest() const noexcept;
  void remove(std::uint32_t entry, const Located& where) noexcept;
  [[gnu::always_inline]] std::uint32_t insert(const Prepared& prepared, TimestampNs now) noexcept;
  void prefetch_next_victims() noexcept;
  void remember_victim_home(std::uint32_t entry) noexcept;
  void link_newest(std::uint32_t entry, TimestampNs now) noexcept;
  void unlink(std::uint32_t entry) noexcept;
  void describe(std::uint32_t entry, Endpoint& server, IpAddress& client) const noexcept;

  std::size_t capacity_;
  DurationNs pending_timeout_;
  FlowKeyHash hash_;  // keyed by the table's seed: secret when the seed is
  std::size_t syn_seen_ = 0;
  HandshakeTableStats counters_;
  // Anonymous mapping advised to use transparent huge pages: the table is probed at random, and
  // with 4 KiB pages nearly every probe also missed the TLB. Pages are zero and untouched until
  // first used.
  std::unique_ptr<Entry[], HugePageDeleter> entries_;
  // Entry numbers by key (the key is the first member of the entry).
  Index index_;
  std::uint32_t free_head_;       // free list through Entry's next field
  std::uint32_t never_used_ = 0;  // entries [never_used_, capacity_) were never handed out
  std::uint32_t oldest_;          // age list (by first SYN), doubly linked
  std::uint32_t newest_;
  // The next victims' home buckets, worked out ahead by prefetch_next_victims(): entries from
  // oldest_ along the age list up to lookahead_ (lookahead_count_ steps after oldest_).
  static constexpr std::uint32_t kVictimLookahead = 8;
  static constexpr std::uint32_t kVictimHomes = 16;  // > kVictimLookahead, indexed by entry
  struct VictimHome {
    std::uint32_t entry;  // kNil when unused
    std::uint32_t home;
  };
  std::array<VictimHome, kVictimHomes> victim_homes_{};
  std::uint32_t lookahead_;
  std::uint32_t lookahead_count_ = 0;
  std::int64_t newest_ms_ = 0;  // full first-SYN time (ms) of newest_; entries keep low 32 bits
  // Judgement: one cursor per rung of the ladder, each the next entry it has to look at
  // (kNil: it has looked at every entry; the next one inserted becomes its entry). Entries
  // before the floor cursor (rung 0) all have a rung; a later rung's cursor is never past it.
  std::array<DurationNs, kMaxJudgeRungs> judge_ages_{};
  std::size_t judge_rungs_ = 0;
  std::array<std::uint32_t, kMaxJudgeRungs> judge_cursor_{};
  std::array<std::size_t, kMaxJudgeRungs> waiting_at_rung_{};  // given the rung, not yet stale
  std::uint32_t caught_up_cursors_ = 0;                        // bit k: judge_cursor_[k] is kNil
  TimestampNs judge_due_ = INT64_MAX;
  std::size_t stale_ = 0;
  // ceil_ms() of new SYNs' times, kept for the millisecond the last one fell in: a flood brings
  // thousands of SYNs per millisecond, and each would otherwise pay a division.
  class CeilMillisecond {
   public:
    std::int64_t of(TimestampNs now) noexcept;

   private:
    std::int64_t ms_ = 0;
    TimestampNs after_ = 0;   // ms_ is ceil_ms() of the times in (after_, until_]
    TimestampNs until_ = -1;  // empty until the first SYN
  };
  CeilMillisecond syn_millisecond_;
};

template <typename OnExpired>
void HandshakeTable::expire(TimestampNs now, OnExpired&& on_expired) noexcept {
  Endpoint server;
  IpAddress client;
  HandshakeState state{};
  bool was_stale = false;
  while (pop_expired(now, server, client, state, was_stale)) {
    on_expired(server, client, state, was_stale);
  }
}

template <typename RungOf, typename OnStale>
void HandshakeTable::judge(TimestampNs now, RungOf&& rung_of, OnStale&& on_stale) noexcept {
  if (judge_rungs_ == 0 || now < judge_due_) return;
  Endpoint server;
  IpAddress client;
  HandshakeState state{};
  // The floor first: a handshake given a later rung in this call may be due at it already (a
  // gap in packet time), and its cursor comes after.
  for (std::uint32_t entry = next_due(0, now); entry != kNoEntry; entry = next_due(0, now)) {
    describe_judged(entry, server, client, state);
    if (assign_rung(entry, static_cast<unsigned>(rung_of(static_cast<const Endpoint&>(server))))) {
      on_stale(static_cast<const Endpoint&>(server), static_cast<const IpAddress&>(client), state);
    }
  }
  for (std::size_t rung = 1; rung < judge_rungs_; ++rung) {
    if (waiting_at_rung_[rung] == 0) {
      // Nothing of this rung waits: everything before the floor cursor is of other rungs.
      judge_cursor_[rung] = judge_cursor_[0];
      caught_up_cursors_ = (caught_up_cursors_ & ~(1u << rung)) |
                           (((caught_up_cursors_ & 1u) != 0 ? 1u : 0u) << rung);
      continue;
    }
    for (std::uint32_t entry = next_due(rung, now); entry != kNoEntry;
         entry = next_due(rung, now)) {
      if (!due_at_rung(entry, rung)) continue;
      describe_judged(entry, server, client, state);
      on_stale(static_cast<const Endpoint&>(server), static_cast<const IpAddress&>(client), state);
    }
  }
  recompute_judge_due();
}

}  // namespace synwatch
