#include "flow/handshake_table.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <type_traits>

#include "common/huge_pages.hpp"

namespace synwatch {

namespace {

// Link value meaning "no entry". Entry numbers are < kMaxCapacity = 2^28 < kNil, and kNil
// fits the 29 link bits of Entry::next_and_flags and Entry::prev_and_rung.
constexpr std::uint32_t kNil = (1u << 29) - 1;
constexpr std::uint32_t kLinkMask = kNil;
constexpr std::uint32_t kStaleBit = 1u << 29;
constexpr std::uint32_t kSynRecvBit = 1u << 30;
constexpr std::uint32_t kClientIsHighBit = 1u << 31;
constexpr unsigned kRungShift = 29;  // prev_and_rung: judgement rung + 1, 0 = not given one yet

// Integer division of signed nanoseconds into milliseconds, rounding up / down. Written with
// / and % (truncating) so that no input, not even INT64_MIN, can overflow.
constexpr std::int64_t ceil_ms(TimestampNs t) noexcept {
  return t / kNanosPerMilli + (t % kNanosPerMilli > 0 ? 1 : 0);
}
constexpr std::int64_t floor_ms(TimestampNs t) noexcept {
  return t / kNanosPerMilli - (t % kNanosPerMilli < 0 ? 1 : 0);
}

void prefetch_lines(const void* address, std::size_t bytes) noexcept {
  // An entry may straddle two cache lines.
  __builtin_prefetch(address);
  __builtin_prefetch(static_cast<const char*>(address) + bytes - 1);
}

}  // namespace

// One pending handshake, 56 bytes:
//   bytes  0..15  key.low_address    IPv4 stored IPv4-mapped
//   bytes 16..31  key.high_address
//   bytes 32..33  key.low_port       host order
//   bytes 34..35  key.high_port
//   bytes 36..39  syn_seq            seq of the (latest) SYN from the client
//   bytes 40..43  synack_seq         seq of the latest SYN-ACK; meaningful in kSynRecv only
//   bytes 44..47  first_syn_ms       low 32 bits of the first-SYN time in ms (see newest_ms_)
//   bytes 48..51  prev_and_rung      bits 0..28: prev (age list, towards the oldest; kNil at
//                                    the end), bits 29..31: judgement rung + 1 (0: none yet)
//   bytes 52..55  next_and_flags     bits 0..28: next (towards the newest, or the free list),
//                                    bit 29: judged stale, bit 30: state is kSynRecv,
//                                    bit 31: client is the high side
// With the index's 8 bytes per entry: 64 bytes per tracked handshake.
struct HandshakeTable::Entry {
  FlowKey key;
  std::uint32_t syn_seq;
  std::uint32_t synack_seq;
  std::uint32_t first_syn_ms;
  std::uint32_t prev_and_rung;
  std::uint32_t next_and_flags;

  [[nodiscard]] std::uint32_t next() const noexcept { return next_and_flags & kLinkMask; }
  void set_next(std::uint32_t next) noexcept {
    next_and_flags = (next_and_flags & ~kLinkMask) | next;
  }
  [[nodiscard]] std::uint32_t prev() const noexcept { return prev_and_rung & kLinkMask; }
  void set_prev(std::uint32_t prev) noexcept {
    prev_and_rung = (prev_and_rung & ~kLinkMask) | prev;
  }
  // 0: not yet judged at the floor; else the rung + 1.
  [[nodiscard]] unsigned rung_plus_one() const noexcept { return prev_and_rung >> kRungShift; }
  void set_rung(unsigned rung) noexcept {
    prev_and_rung = (prev_and_rung & kLinkMask) | ((rung + 1) << kRungShift);
  }
  [[nodiscard]] bool stale() const noexcept { return (next_and_flags & kStaleBit) != 0; }
  [[nodiscard]] HandshakeState state() const noexcept {
    return (next_and_flags & kSynRecvBit) != 0 ? HandshakeState::kSynRecv
                                               : HandshakeState::kSynSeen;
  }
  void set_state(HandshakeState state) noexcept {
    next_and_flags = state == HandshakeState::kSynRecv ? next_and_flags | kSynRecvBit
                                                       : next_and_flags & ~kSynRecvBit;
  }
  [[nodiscard]] bool client_is_high() const noexcept {
    return (next_and_flags & kClientIsHighBit) != 0;
  }
};
static_assert(sizeof(HandshakeTable::Entry) == 56);
static_assert(std::is_trivially_default_constructible_v<HandshakeTable::Entry>);
static_assert(std::is_trivially_copyable_v<HandshakeTable::Entry>);

HandshakeTable::HandshakeTable(std::size_t capacity, DurationNs pending_timeout,
                               std::uint64_t hash_seed)
    : capacity_(std::clamp<std::size_t>(capacity, 1, kMaxCapacity)),
      pending_timeout_(0),
      hash_(hash_seed),
      // Pages are touched only as entries are first used.
      entries_(static_cast<Entry*>(map_huge_pages(capacity_ * sizeof(Entry))),
               HugePageDeleter{capacity_ * sizeof(Entry)}),
      index_(capacity_),
      free_head_(kNil),
      oldest_(kNil),
      newest_(kNil),
      lookahead_(kNil) {
  static_assert(kMaxCapacity <= Index::kMaxCapacity && kMaxCapacity < kNil);
  set_pending_timeout(pending_timeout);
  victim_homes_.fill(VictimHome{kNil, 0});
}

HandshakeTable::~HandshakeTable() = default;

std::size_t HandshakeTable::memory_bytes() const noexcept {
  return capacity_ * sizeof(Entry) + index_.memory_bytes();
}

HandshakeTable::Located HandshakeTable::locate_oldest() const noexcept {
  const std::uint32_t entry = oldest_;
  const VictimHome& cached = victim_homes_[entry % kVictimHomes];
  const std::size_t home =
      cached.entry == entry ? cached.home : index_.token(hash_(entries_[entry].key)).home;
  return Located{index_.slot_of(entry, home), home};
}

std::int64_t HandshakeTable::CeilMillisecond::of(TimestampNs now) noexcept {
  if (now <= after_ || now > until_) {
    ms_ = ceil_ms(now);
    after_ = now;
    until_ = now;
    // Capped so that a time within 1 ms of INT64_MAX still expires by INT64_MAX.
    if (ms_ > INT64_MIN / kNanosPerMilli + 1 && ms_ < INT64_MAX / kNanosPerMilli) {
      after_ = (ms_ - 1) * kNanosPerMilli;
      until_ = ms_ * kNanosPerMilli;
    }
  }
  return ms_;
}

void HandshakeTable::link_newest(std::uint32_t entry, TimestampNs now) noexcept {
  // Never older than the youngest entry, so that the age list stays sorted by time even when
  // timestamps step backwards.
  std::int64_t ms = std::min(syn_millisecond_.of(now), INT64_MAX / kNanosPerMilli);
  if (newest_ != kNil) ms = std::max(ms, newest_ms_);
  newest_ms_ = ms;
  Entry& e = entries_[entry];
  e.first_syn_ms = static_cast<std::uint32_t>(ms);
  e.prev_and_rung = newest_;  // no rung: it is judged afresh
  e.set_next(kNil);
  if (newest_ == kNil) {
    oldest_ = entry;
  } else {
    entries_[newest_].set_next(entry);
  }
  newest_ = entry;
  if (caught_up_cursors_ != 0) [[unlikely]] {
    // Cursors that had looked at every entry look at this one next.
    for (std::uint32_t bits = caught_up_cursors_; bits != 0; bits &= bits - 1) {
      judge_cursor_[static_cast<std::size_t>(std::countr_zero(bits))] = entry;
    }
    if ((caught_up_cursors_ & 1u) != 0) {
      const std::int64_t due_ms = std::min(ms, (INT64_MAX - judge_ages_[0]) / kNanosPerMilli);
      judge_due_ = std::min(judge_due_, due_ms * kNanosPerMilli + judge_ages_[0]);
    }
    caught_up_cursors_ = 0;
  }
}

void HandshakeTable::unlink(std::uint32_t entry) noexcept {
  // Leaving the stretch of the age list the victim lookahead covers (removed, or moved to the
  // young end by a restarted SYN).
  if (entry == lookahead_) {
    lookahead_ = kNil;
    lookahead_count_ = 0;
  } else if (entry == oldest_ && lookahead_count_ > 0) {
    --lookahead_count_;
  }
  const Entry& e = entries_[entry];
  const std::uint32_t prev = e.prev();
  const std::uint32_t next = e.next();
  for (std::size_t rung = 0; rung < judge_rungs_; ++rung) {
    if (judge_cursor_[rung] == entry) {
      judge_cursor_[rung] = next;
      if (next == kNil) caught_up_cursors_ |= 1u << rung;
    }
  }
  if (prev == kNil) {
    oldest_ = next;
  } else {
    entries_[prev].set_next(next);
  }
  if (next == kNil) {
    newest_ = prev;
    if (prev != kNil) {
      // Full time of the new youngest: its stored low bits are at most 2^32 ms behind.
      newest_ms_ -= static_cast<std::uint32_t>(static_cast<std::uint32_t>(newest_ms_) -
                                               entries_[prev].first_syn_ms);
    }
  } else {
    entries_[next].set_prev(prev);
  }
}

inline std::uint32_t HandshakeTable::insert(const Prepared& prepared, TimestampNs now) noexcept {
  std::uint32_t entry;
  if (free_head_ != kNil) {
    entry = free_head_;
    free_head_ = entries_[entry].next();
  } else {
    entry = never_used_++;
  }
  Entry& e = entries_[entry];
  e.key = prepared.key_;
  e.next_and_flags = 0;
  index_.insert(prepared.token_, entry);  // never refused: a full table evicted first
  link_newest(entry, now);
  ++syn_seen_;
  return entry;
}

void HandshakeTable::remove(std::uint32_t entry, const Located& where) noexcept {
  // The entry's number may come back with another key: forget what was worked out ahead for it.
  if (VictimHome& cached = victim_homes_[entry % kVictimHomes]; cached.entry == entry) {
    cached.entry = kNil;
  }
  index_.erase(where.slot, where.home);
  unlink(entry);
  Entry& e = entries_[entry];
  forget_judgement(e);
  if (e.state() == HandshakeState::kSynSeen) --syn_seen_;
  e.next_and_flags = free_head_;  // also clears the flags
  free_head_ = entry;
}

void HandshakeTable::describe(std::uint32_t entry, Endpoint& server,
                              IpAddress& client) const noexcept {
  const Entry& e = entries_[entry];
  if (e.client_is_high()) {
    server = Endpoint{IpAddress{e.key.low_address}, e.key.low_port};
    client = IpAddress{e.key.high_address};
  } else {
    server = Endpoint{IpAddress{e.key.high_address}, e.key.high_port};
    client = IpAddress{e.key.low_address};
  }
}

void HandshakeTable::key_and_token(const TcpSegment& segment, Prepared& out) const noexcept {
  out.source_end_ = make_flow_key(segment, out.key_);
  out.token_ = index_.token(hash_(out.key_));
}

void HandshakeTable::prepare(const TcpSegment& segment, Prepared& out) const noexcept {
  key_and_token(segment, out);
  index_.prefetch(out.token_);
}

FlowUpdate HandshakeTable::process(const TcpSegment& segment, bool accept_new_syn) noexcept {
  // No prefetch: the slot is read at once, and a prefetch just before the load only delays it.
  Prepared prepared;
  key_and_token(segment, prepared);
  return process(segment, prepared, accept_new_syn);
}

FlowUpdate HandshakeTable::process(const TcpSegment& segment, const Prepared& prepared,
                                   bool accept_new_syn) noexcept {
  FlowUpdate update;
  process(segment, prepared, accept_new_syn, update);
  return update;
}

// Flattened: the transitions and the removal, insertion and age-list steps they take are the
// rest of the per-packet work, and their calls (register saves, arguments through memory) cost
// as much as some of them.
[[gnu::flatten]] void HandshakeTable::process(const TcpSegment& segment, const Prepared& prepared,
                                              bool accept_new_syn, FlowUpdate& update) noexcept {
  update.event = FlowEvent::kNone;
  update.evicted = false;
  const SegmentKind kind = kind_of(segment);
  const std::size_t slot = index_.find(prepared.token_, [&](std::uint32_t entry) noexcept {
    return same_flow(entries_[entry].key, prepared.key_);
  });
  if (slot == Index::kNoSlot) {
    if (kind == SegmentKind::kSyn && accept_new_syn) {
      on_new_syn(segment, prepared, update);
    } else if (kind == SegmentKind::kSynAck) {
      on_unsolicited_synack(segment, update);
    }
    return;
  }
  const Tracked handshake = tracked(slot, prepared);
  switch (kind) {
    case SegmentKind::kRst:
      on_rst(segment, prepared, handshake, update);
      return;
    case SegmentKind::kSyn:
      if (handshake.from_client) on_repeated_syn(segment, handshake, update);
      return;
    case SegmentKind::kSynAck:
      if (handshake.from_server) on_synack(segment, handshake, update);
      return;
    case SegmentKind::kAck:
      if (handshake.from_client) on_final_ack(segment, prepared, handshake, update);
      return;
    case SegmentKind::kOther:  // FIN, or no ACK
      return;
  }
}

HandshakeTable::SegmentKind HandshakeTable::kind_of(const TcpSegment& segment) noexcept {
  if (segment.has(tcp_flag::kRst)) return SegmentKind::kRst;
  if (segment.is_syn()) return SegmentKind::kSyn;
  if (segment.is_syn_ack()) return SegmentKind::kSynAck;
  if (segment.has(tcp_flag::kAck) && !segment.has(tcp_flag::kFin)) return SegmentKind::kAck;
  return SegmentKind::kOther;
}

HandshakeTable::Tracked HandshakeTable::tracked(std::size_t slot,
                                                const Prepared& prepared) const noexcept {
  const std::uint32_t entry = index_.value_at(slot);
  const Entry& e = entries_[entry];
  const bool source_is_client = (prepared.source_end_ == SourceEnd::kHigh) == e.client_is_high();
  // A connection to itself has no direction: its segments count as coming from either side.
  const bool both = prepared.source_end_ == SourceEnd::kBoth;
  return Tracked{entry, slot, e.state(), both || source_is_client, both || !source_is_client};
}

void HandshakeTable::on_new_syn(const TcpSegment& segment, const Prepared& prepared,
                                FlowUpdate& update) noexcept {
  if (size() == capacity_) evict_oldest(update);
  const std::uint32_t entry = insert(prepared, segment.timestamp);
  Entry& e = entries_[entry];
  e.syn_seq = segment.seq;
  if (prepared.source_end_ == SourceEnd::kHigh) e.next_and_flags |= kClientIsHighBit;
  ++counters_.inserted;
  update.event = FlowEvent::kSyn;
  update.previous_state = HandshakeState::kSynSeen;
  update.server = Endpoint{segment.destination, segment.destination_port};
  update.client = segment.source;
}

void HandshakeTable::evict_oldest(FlowUpdate& update) noexcept {
  const std::uint32_t victim = oldest_;
  update.evicted = true;
  update.evicted_state = entries_[victim].state();
  update.evicted_stale = entries_[victim].stale();
  describe(victim, update.evicted_server, update.evicted_client);
  remove(victim, locate_oldest());
  ++counters_.evicted;
  prefetch_next_victims();
}

void HandshakeTable::on_unsolicited_synack(const TcpSegment& segment, FlowUpdate& update) noexcept {
  ++counters_.unsolicited_synacks;
  update.event = FlowEvent::kUnsolicitedSynAck;
  update.server = Endpoint{segment.source, segment.source_port};
  update.client = segment.destination;
}

void HandshakeTable::on_rst(const TcpSegment& segment, const Prepared& prepared,
                            const Tracked& handshake, FlowUpdate& update) noexcept {
  report(FlowEvent::kReset, segment, handshake, update);
  remove(handshake.entry, Located{handshake.slot, prepared.token_.home});
  ++counters_.reset;
}

void HandshakeTable::on_repeated_syn(const TcpSegment& segment, const Tracked& handshake,
                                     FlowUpdate& update) noexcept {
  report(FlowEvent::kSynRetransmit, segment, handshake, update);
  ++counters_.syn_retransmits;
  Entry& e = entries_[handshake.entry];
  if (segment.seq == e.syn_seq) return;
  // Port reuse: a new attempt replaces the old one, with its own age and judgement.
  e.syn_seq = segment.seq;
  if (handshake.state == HandshakeState::kSynRecv) {
    e.set_state(HandshakeState::kSynSeen);
    ++syn_seen_;
  }
  forget_judgement(e);
  e.next_and_flags &= ~kStaleBit;
  unlink(handshake.entry);
  link_newest(handshake.entry, segment.timestamp);
}

void HandshakeTable::on_synack(const TcpSegment& segment, const Tracked& handshake,
                               FlowUpdate& update) noexcept {
  Entry& e = entries_[handshake.entry];
  if (segment.ack != e.syn_seq + 1) {
    report(FlowEvent::kMismatch, segment, handshake, update);
    ++counters_.mismatches;
  } else if (handshake.state == HandshakeState::kSynRecv) {
    report(FlowEvent::kSynAckRetransmit, segment, handshake, update);
    ++counters_.synack_retransmits;
    e.synack_seq = segment.seq;
  } else {
    report(FlowEvent::kSynAck, segment, handshake, update);
    ++counters_.synacks;
    e.synack_seq = segment.seq;
    e.set_state(HandshakeState::kSynRecv);
    --syn_seen_;
  }
}

void HandshakeTable::on_final_ack(const TcpSegment& segment, const Prepared& prepared,
                                  const Tracked& handshake, FlowUpdate& update) noexcept {
  if (handshake.state == HandshakeState::kSynRecv &&
      segment.ack != entries_[handshake.entry].synack_seq + 1) {
    report(FlowEvent::kMismatch, segment, handshake, update);
    ++counters_.mismatches;
    return;
  }
  // In kSynSeen the SYN-ACK went unseen; the client's ACK proves there was one.
  report(FlowEvent::kCompleted, segment, handshake, update);
  remove(handshake.entry, Located{handshake.slot, prepared.token_.home});
  ++counters_.completed;
}

void HandshakeTable::report(FlowEvent event, const TcpSegment& segment, const Tracked& handshake,
                            FlowUpdate& update) const noexcept {
  const Entry& e = entries_[handshake.entry];
  update.event = event;
  update.previous_state = handshake.state;
  update.was_stale = e.stale();
  const unsigned rung = e.rung_plus_one();
  update.rung = static_cast<std::uint8_t>(rung == 0 ? 0 : rung - 1);
  update.age =
      std::max<DurationNs>(0, segment.timestamp - first_syn_ms(handshake.entry) * kNanosPerMilli);
  describe(handshake.entry, update.server, update.client);
}

void HandshakeTable::prefetch_next_victims() noexcept {
  // Under a flood every new SYN evicts the oldest entry, and removing it needs its index slot:
  // a cache miss at a place known long before. Work out the home buckets of the next
  // kVictimLookahead victims along the age list and start loading them, so that each has
  // arrived by the time it is evicted.
  if (oldest_ == kNil) return;
  if (lookahead_ == kNil) {
    lookahead_ = oldest_;
    lookahead_count_ = 0;
    remember_victim_home(oldest_);
  }
  while (lookahead_count_ < kVictimLookahead) {
    const std::uint32_t next = entries_[lookahead_].next();
    if (next == kNil) break;
    lookahead_ = next;
    ++lookahead_count_;
    remember_victim_home(next);
  }
}

void HandshakeTable::remember_victim_home(std::uint32_t entry) noexcept {
  const Entry& e = entries_[entry];
  const Index::Token token = index_.token(hash_(e.key));
  victim_homes_[entry % kVictimHomes] = VictimHome{entry, static_cast<std::uint32_t>(token.home)};
  index_.prefetch(token);
  // The walk reads the following entry next time.
  if (const std::uint32_t after = e.next(); after != kNil) {
    prefetch_lines(&entries_[after], sizeof(Entry));
  }
}

std::int64_t HandshakeTable::first_syn_ms(std::uint32_t entry) const noexcept {
  // Every live entry is at most 2^32 ms older than the youngest (see the header), so its full
  // time is recovered from the difference of the low 32 bits.
  return newest_ms_ - static_cast<std::uint32_t>(static_cast<std::uint32_t>(newest_ms_) -
                                                 entries_[entry].first_syn_ms);
}

namespace {

// The last whole millisecond a handshake may have started in to be `age` old at `now`, computed
// without overflow.
std::int64_t started_by_ms(TimestampNs now, DurationNs age) noexcept {
  return floor_ms(now < INT64_MIN + age ? INT64_MIN : now - age);
}

}  // namespace

bool HandshakeTable::pop_expired(TimestampNs now, Endpoint& server, IpAddress& client,
                                 HandshakeState& state, bool& was_stale) noexcept {
  if (oldest_ == kNil) return false;
  const Entry& e = entries_[oldest_];
  if (first_syn_ms(oldest_) > started_by_ms(now, pending_timeout_)) return false;
  const std::uint32_t entry = oldest_;
  state = e.state();
  was_stale = e.stale();
  describe(entry, server, client);
  remove(entry, locate_oldest());
  ++counters_.expired;
  prefetch_next_victims();
  return true;
}

void HandshakeTable::forget_judgement(const Entry& e) noexcept {
  if (e.stale()) {
    --stale_;
  } else if (const unsigned rung = e.rung_plus_one(); rung != 0 && judge_rungs_ > 0) {
    --waiting_at_rung_[std::min<std::size_t>(rung - 1, judge_rungs_ - 1)];
  }
}

void HandshakeTable::set_judge_ages(std::span<const DurationNs> ages) noexcept {
  const std::size_t before = judge_rungs_;
  const std::size_t rungs = std::min(ages.size(), kMaxJudgeRungs);
  // Handshakes waiting at rungs the new ladder lacks wait at its last rung.
  for (std::size_t rung = rungs; rung < before && rungs > 0; ++rung) {
    waiting_at_rung_[rungs - 1] += waiting_at_rung_[rung];
    waiting_at_rung_[rung] = 0;
  }
  for (std::size_t rung = 0; rung < rungs; ++rung) {
    judge_ages_[rung] = std::max<DurationNs>(0, ages[rung]);
    if (rung >= before) {
      // A new cursor starts where the floor cursor is (every entry before it has its rung), or,
      // with no ladder before, at the oldest entry.
      judge_cursor_[rung] = before > 0 ? judge_cursor_[0] : oldest_;
      const bool caught_up = judge_cursor_[rung] == kNil;
      caught_up_cursors_ = (caught_up_cursors_ & ~(1u << rung)) | (caught_up ? 1u << rung : 0u);
      waiting_at_rung_[rung] = 0;
    }
  }
  caught_up_cursors_ &= (1u << rungs) - 1;
  if (rungs == 0) {
    // No judging: the waiting handshakes keep their marks but nobody walks for them.
    waiting_at_rung_.fill(0);
  }
  judge_rungs_ = rungs;
  recompute_judge_due();
}

std::uint32_t HandshakeTable::next_due(std::size_t rung, TimestampNs now) noexcept {
  const std::uint32_t entry = judge_cursor_[rung];
  if (entry == kNil || first_syn_ms(entry) > started_by_ms(now, judge_ages_[rung])) {
    return kNoEntry;
  }
  const std::uint32_t next = entries_[entry].next();
  judge_cursor_[rung] = next;
  if (next == kNil) caught_up_cursors_ |= 1u << rung;
  return entry;
}

bool HandshakeTable::assign_rung(std::uint32_t entry, unsigned rung) noexcept {
  Entry& e = entries_[entry];
  const auto last = static_cast<unsigned>(judge_rungs_ - 1);
  const unsigned given = std::min(rung, last);
  if (given == 0) {
    e.set_rung(0);
    e.next_and_flags |= kStaleBit;
    ++stale_;
    ++counters_.judged_stale;
    return true;
  }
  e.set_rung(given);
  ++waiting_at_rung_[given];
  return false;
}

bool HandshakeTable::due_at_rung(std::uint32_t entry, std::size_t rung) noexcept {
  Entry& e = entries_[entry];
  const unsigned given = e.rung_plus_one();
  if (e.stale() || given == 0) return false;
  const std::size_t waiting = std::min<std::size_t>(given - 1, judge_rungs_ - 1);
  if (waiting > rung) return false;
  --waiting_at_rung_[waiting];
  e.next_and_flags |= kStaleBit;
  ++stale_;
  ++counters_.judged_stale;
  return true;
}

void HandshakeTable::describe_judged(std::uint32_t entry, Endpoint& server, IpAddress& client,
                                     HandshakeState& state) const noexcept {
  describe(entry, server, client);
  state = entries_[entry].state();
}

void HandshakeTable::recompute_judge_due() noexcept {
  TimestampNs due = INT64_MAX;
  for (std::size_t rung = 0; rung < judge_rungs_; ++rung) {
    const std::uint32_t entry = judge_cursor_[rung];
    if (entry == kNil || (rung > 0 && waiting_at_rung_[rung] == 0)) continue;
    const std::int64_t ms =
        std::min(first_syn_ms(entry), (INT64_MAX - judge_ages_[rung]) / kNanosPerMilli);
    due = std::min(due, ms * kNanosPerMilli + judge_ages_[rung]);
  }
  judge_due_ = due;
}

}  // namespace synwatch
