#include "flow/handshake_table.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <type_traits>

#include "common/hash.hpp"
#include "common/huge_pages.hpp"
#include "common/word_match.hpp"

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

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

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
// With the index's 8 bytes per entry (see index_): 64 bytes per tracked handshake.
struct HandshakeTable::Entry {
  static_assert(sizeof(Key) == 36);
  static_assert(std::has_unique_object_representations_v<Key>);

  Key key;
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

namespace {

// Fixed-size comparison the compiler inlines (a memcmp call of 36 bytes was 3 % of the flood).
bool keys_equal(const void* a, const void* b) noexcept {
  std::uint64_t x[4];
  std::uint64_t y[4];
  std::uint32_t x_ports;
  std::uint32_t y_ports;
  std::memcpy(x, a, sizeof x);
  std::memcpy(y, b, sizeof y);
  std::memcpy(&x_ports, static_cast<const char*>(a) + 32, sizeof x_ports);
  std::memcpy(&y_ports, static_cast<const char*>(b) + 32, sizeof y_ports);
  return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x_ports ^ y_ports)) == 0;
}

}  // namespace

void HandshakeTable::Unmap::operator()(void* memory) const noexcept {
  unmap_huge_pages(memory, bytes);
}
static_assert(std::is_trivially_default_constructible_v<HandshakeTable::Entry>);
static_assert(std::is_trivially_copyable_v<HandshakeTable::Entry>);

namespace {

// Buckets for `capacity` entries in buckets of `slots` usable slots: at least one slot more than
// the capacity (a search for a new key always finds a free slot, even in a full table), and
// otherwise capacity / 8 buckets of 15 slots (load about 0.53, 8 bytes of index per entry),
// or as many more as fewer slots per bucket need for the same number of slots.
std::size_t buckets_for(std::size_t capacity, unsigned slots) noexcept {
  const std::size_t enough = capacity / slots + 1;
  const std::size_t same_slots =
      capacity / 8 * HandshakeTable::kBucketSlots / slots;  // capacity / 8 at full buckets
  return std::max(enough, same_slots);
}

}  // namespace

HandshakeTable::HandshakeTable(std::size_t capacity, DurationNs pending_timeout,
                               std::uint64_t hash_seed, unsigned bucket_slots)
    : capacity_(std::clamp<std::size_t>(capacity, 1, kMaxCapacity)),
      pending_timeout_(0),
      hash_seed_(hash_seed),
      hash_keys_(),
      // Pages are touched only as entries are first used.
      entries_(static_cast<Entry*>(map_huge_pages(capacity_ * sizeof(Entry))),
               Unmap{capacity_ * sizeof(Entry)}),
      bucket_count_(buckets_for(capacity_, std::clamp(bucket_slots, 1u, kBucketSlots))),
      free_head_(kNil),
      oldest_(kNil),
      newest_(kNil),
      lookahead_(kNil) {
  static_assert(kBucketSlots < kBucketWords && kBucketSlots <= kOverflowShift);
  const std::size_t index_bytes = bucket_count_ * kBucketWords * sizeof(std::uint32_t);
  // 2 MiB aligned, so every bucket is one cache line.
  index_ = std::unique_ptr<std::uint32_t[], Unmap>(
      static_cast<std::uint32_t*>(map_huge_pages(index_bytes)), Unmap{index_bytes});
  slot_bits_ = (std::uint32_t{1} << std::clamp(bucket_slots, 1u, kBucketSlots)) - 1;
  set_pending_timeout(pending_timeout);
  victim_homes_.fill(VictimHome{kNil, 0});
  // Entry numbers + 1 go up to capacity_ <= 2^28, leaving at least 3 bits for the tag.
  entry_bits_ = static_cast<unsigned>(std::bit_width(capacity_));
  entry_mask_ = (std::uint32_t{1} << entry_bits_) - 1;
  tag_mask_ = ~entry_mask_;
  std::uint64_t state = hash_seed_;
  for (std::uint64_t& key : hash_keys_) key = splitmix64(state);
}

HandshakeTable::~HandshakeTable() = default;

std::size_t HandshakeTable::memory_bytes() const noexcept {
  return capacity_ * sizeof(Entry) + bucket_count_ * kBucketWords * sizeof(std::uint32_t);
}

std::size_t HandshakeTable::overflowing_buckets() const noexcept {
  std::size_t overflowing = 0;
  for (std::size_t bucket = 0; bucket < bucket_count_; ++bucket) {
    if (index_[bucket * kBucketWords + kStateWord] >= kOverflowOne) ++overflowing;
  }
  return overflowing;
}

HandshakeTable::Probe HandshakeTable::probe_of(const Key& key) const noexcept {
  std::uint64_t words[4];
  std::uint32_t ports;
  std::memcpy(words, &key, sizeof(words));
  std::memcpy(&ports, &key.low_port, sizeof(ports));
  std::uint64_t hash;
  if ((words[0] | words[2]) == 0) {
    // Both addresses in ::/64, which in practice means IPv4 (stored IPv4-mapped: every packet
    // of an IPv4 flood). Their low words hold the IPv4 addresses in the high halves and the
    // same constant (bytes 00 00 ff ff) in the low halves, so one word made of both still
    // tells every IPv4 key apart, and a single keyed multiply of it and the ports covers the
    // key. (Other pairs of ::/64 addresses, such as ::1 with itself, take this path too; two
    // such pairs can share a hash only when their addresses differ, which costs a longer
    // probe, never a wrong answer.)
    const std::uint64_t addresses = words[1] ^ std::rotl(words[3], 32);
    hash = fold_multiply(addresses ^ hash_keys_[0], ports ^ hash_keys_[1]);
  } else {
    // A specialised form of hash_bytes for the 36-byte key: three independent multiplies
    // instead of five chained rounds, keyed by secrets derived from the seed.
    const std::uint64_t low = fold_multiply(words[0] ^ hash_keys_[0], words[1] ^ hash_keys_[1]);
    const std::uint64_t high = fold_multiply(words[2] ^ hash_keys_[2], words[3] ^ hash_keys_[3]);
    hash = fold_multiply(low ^ ports ^ hash_keys_[4], high ^ hash_keys_[5]);
  }
  // Multiply-shift maps the top 32 hash bits onto [0, bucket_count_) without a division; the
  // tag comes from the low bits, independent of the home bucket.
  const auto home = static_cast<std::size_t>(((hash >> 32) * bucket_count_) >> 32);
  const auto tag = static_cast<std::uint32_t>(hash << entry_bits_);
  return Probe{home, tag};
}

inline HandshakeTable::Search HandshakeTable::search(const Key& key,
                                                     const Probe& probe) const noexcept {
  std::size_t bucket = probe.home;
  std::size_t free = kNoSlot;
  for (;;) {
    const std::uint32_t* words = &index_[bucket * kBucketWords];
    const std::uint32_t state = words[kStateWord];
    for (std::uint32_t candidates =
             match_16_words(words, probe.tag, tag_mask_) & state & slot_bits_;
         candidates != 0; candidates &= candidates - 1) {
      const auto i = static_cast<std::size_t>(std::countr_zero(candidates));
      if (keys_equal(&entries_[(words[i] & entry_mask_) - 1].key, &key)) {
        return Search{bucket * kBucketWords + i, kNoSlot};
      }
    }
    const std::uint32_t empty = ~state & slot_bits_;
    if (free == kNoSlot && empty != 0) {
      free = bucket * kBucketWords + static_cast<std::size_t>(std::countr_zero(empty));
    }
    // Nothing was pushed past this bucket: the key is nowhere further.
    if (state < kOverflowOne) return Search{kNoSlot, free};
    bucket = bucket + 1 == bucket_count_ ? 0 : bucket + 1;
  }
}

std::size_t HandshakeTable::buckets_from(std::size_t home, std::size_t slot) const noexcept {
  const std::size_t bucket = slot / kBucketWords;
  return bucket >= home ? bucket - home : bucket + bucket_count_ - home;
}

std::size_t HandshakeTable::first_free(std::size_t bucket) const noexcept {
  // There are more slots than entries, so some bucket has one.
  for (;;) {
    const std::uint32_t empty = ~index_[bucket * kBucketWords + kStateWord] & slot_bits_;
    if (empty != 0) {
      return bucket * kBucketWords + static_cast<std::size_t>(std::countr_zero(empty));
    }
    bucket = bucket + 1 == bucket_count_ ? 0 : bucket + 1;
  }
}

HandshakeTable::Located HandshakeTable::locate_oldest() const noexcept {
  const std::uint32_t entry = oldest_;
  const VictimHome& cached = victim_homes_[entry % kVictimHomes];
  const std::size_t home = cached.entry == entry ? cached.home : probe_of(entries_[entry].key).home;
  for (std::size_t bucket = home;; bucket = bucket + 1 == bucket_count_ ? 0 : bucket + 1) {
    const std::uint32_t* words = &index_[bucket * kBucketWords];
    const std::uint32_t at =
        match_16_words(words, entry + 1, entry_mask_) & words[kStateWord] & slot_bits_;
    if (at != 0) {
      return Located{bucket * kBucketWords + static_cast<std::size_t>(std::countr_zero(at)), home};
    }
  }
}

void HandshakeTable::count_overflow(std::size_t home, std::size_t slot,
                                    std::uint32_t step) noexcept {
  const std::size_t last = slot / kBucketWords;
  for (std::size_t bucket = home; bucket != last;
       bucket = bucket + 1 == bucket_count_ ? 0 : bucket + 1) {
    std::uint32_t& state = index_[bucket * kBucketWords + kStateWord];
    if ((state >> kOverflowShift) != kOverflowSaturated) state += step;
  }
}

void HandshakeTable::link_newest(std::uint32_t entry, TimestampNs now) noexcept {
  // Never older than the youngest entry, so that the age list stays sorted by time even when
  // timestamps step backwards.
  // Capped so that a time within 1 ms of INT64_MAX still expires by INT64_MAX.
  if (now <= ms_of_now_.after || now > ms_of_now_.until) {
    // A division per new SYN otherwise; a flood brings thousands per millisecond.
    const std::int64_t rounded = ceil_ms(now);
    ms_of_now_ = {rounded, now, now};
    if (rounded > INT64_MIN / kNanosPerMilli + 1 && rounded < INT64_MAX / kNanosPerMilli) {
      ms_of_now_.after = (rounded - 1) * kNanosPerMilli;
      ms_of_now_.until = rounded * kNanosPerMilli;
    }
  }
  std::int64_t ms = std::min(ms_of_now_.ms, INT64_MAX / kNanosPerMilli);
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

inline std::uint32_t HandshakeTable::insert(const Key& key, std::size_t slot, const Probe& probe,
                                            TimestampNs now) noexcept {
  std::uint32_t entry;
  if (free_head_ != kNil) {
    entry = free_head_;
    free_head_ = entries_[entry].next();
  } else {
    entry = never_used_++;
  }
  Entry& e = entries_[entry];
  e.key = key;
  e.next_and_flags = 0;
  index_[slot] = (entry + 1) | probe.tag;
  index_[slot | kStateWord] |= std::uint32_t{1} << (slot % kBucketWords);
  if (slot / kBucketWords != probe.home) count_overflow(probe.home, slot, kOverflowOne);
  link_newest(entry, now);
  ++size_;
  ++syn_seen_;
  return entry;
}

void HandshakeTable::remove(std::uint32_t entry, const Located& where) noexcept {
  // The entry's number may come back with another key: forget what was worked out ahead for it.
  if (VictimHome& cached = victim_homes_[entry % kVictimHomes]; cached.entry == entry) {
    cached.entry = kNil;
  }
  index_[where.slot] = 0;
  index_[where.slot | kStateWord] &= ~(std::uint32_t{1} << (where.slot % kBucketWords));
  if (where.slot / kBucketWords != where.home) {
    count_overflow(where.home, where.slot, ~kOverflowOne + 1);  // minus one
  }
  unlink(entry);
  Entry& e = entries_[entry];
  forget_judgement(e);
  if (e.state() == HandshakeState::kSynSeen) --syn_seen_;
  --size_;
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

void HandshakeTable::make_key(const TcpSegment& segment, Key& key, int& order) noexcept {
  // Addresses compare as big-endian numbers (the order memcmp gives), without a library call.
  std::uint64_t source[2];
  std::uint64_t destination[2];
  std::memcpy(source, segment.source.bytes.data(), 16);
  std::memcpy(destination, segment.destination.bytes.data(), 16);
  // Equality needs no byte swap: only the first differing word is swapped and ordered (for
  // IPv4 the first words are both zero, so that is the second).
  const auto less = [](std::uint64_t a, std::uint64_t b) noexcept {
    return __builtin_bswap64(a) < __builtin_bswap64(b);
  };
  if (source[0] != destination[0]) {
    order = less(source[0], destination[0]) ? -1 : 1;
  } else if (source[1] != destination[1]) {
    order = less(source[1], destination[1]) ? -1 : 1;
  } else {
    order = segment.source_port < segment.destination_port   ? -1
            : segment.source_port > segment.destination_port ? 1
                                                             : 0;
  }
  // Written in place: a returned key is built on the stack and then copied (36 bytes a packet).
  if (order > 0) {
    key.low_address = segment.destination.bytes;
    key.high_address = segment.source.bytes;
    key.low_port = segment.destination_port;
    key.high_port = segment.source_port;
  } else {
    key.low_address = segment.source.bytes;
    key.high_address = segment.destination.bytes;
    key.low_port = segment.source_port;
    key.high_port = segment.destination_port;
  }
}

void HandshakeTable::key_and_probe(const TcpSegment& segment, Prepared& out) const noexcept {
  make_key(segment, out.key_, out.order_);
  out.probe_ = probe_of(out.key_);
}

void HandshakeTable::prepare(const TcpSegment& segment, Prepared& out) const noexcept {
  key_and_probe(segment, out);
  __builtin_prefetch(&index_[out.probe_.home * kBucketWords]);
}

FlowUpdate HandshakeTable::process(const TcpSegment& segment, bool accept_new_syn) noexcept {
  // No prefetch: the slot is read at once, and a prefetch just before the load only delays it.
  Prepared prepared;
  key_and_probe(segment, prepared);
  return process(segment, prepared, accept_new_syn);
}

FlowUpdate HandshakeTable::process(const TcpSegment& segment, const Prepared& prepared,
                                   bool accept_new_syn) noexcept {
  FlowUpdate update;
  process(segment, prepared, accept_new_syn, update);
  return update;
}

// Flattened: the removal, insertion and age-list steps it calls are the rest of the per-packet
// work, and their calls (register saves, arguments through memory) cost as much as some of them.
[[gnu::flatten]] void HandshakeTable::process(const TcpSegment& segment, const Prepared& prepared,
                                              bool accept_new_syn, FlowUpdate& update) noexcept {
  update.event = FlowEvent::kNone;
  update.evicted = false;
  const bool is_syn = segment.is_syn();
  const Key& key = prepared.key_;
  const int order = prepared.order_;
  const bool source_is_high = order > 0;
  const Probe& probe = prepared.probe_;
  const Search found = search(key, probe);

  if (found.found == kNoSlot) {
    if (is_syn) {
      if (!accept_new_syn) return;
      std::size_t insert_at = found.free;
      if (size_ == capacity_) {
        const std::uint32_t victim = oldest_;
        update.evicted = true;
        update.evicted_state = entries_[victim].state();
        update.evicted_stale = entries_[victim].stale();
        describe(victim, update.evicted_server, update.evicted_client);
        const Located where = locate_oldest();
        remove(victim, where);
        ++counters_.evicted;
        // The slot it left may now be the nearest free one on the key's path.
        if (insert_at != kNoSlot &&
            buckets_from(probe.home, where.slot) < buckets_from(probe.home, insert_at)) {
          insert_at = where.slot;
        }
        prefetch_next_victims();
      }
      if (insert_at == kNoSlot) insert_at = first_free(probe.home);
      const std::uint32_t entry = insert(key, insert_at, probe, segment.timestamp);
      Entry& e = entries_[entry];
      e.syn_seq = segment.seq;
      if (source_is_high) e.next_and_flags |= kClientIsHighBit;
      ++counters_.inserted;
      update.event = FlowEvent::kSyn;
      update.previous_state = HandshakeState::kSynSeen;
      update.server = Endpoint{segment.destination, segment.destination_port};
      update.client = segment.source;
    } else if (segment.is_syn_ack()) {
      ++counters_.unsolicited_synacks;
      update.event = FlowEvent::kUnsolicitedSynAck;
      update.server = Endpoint{segment.source, segment.source_port};
      update.client = segment.destination;
    }
    return;
  }

  const std::size_t slot = found.found;
  const std::uint32_t entry = (index_[slot] & entry_mask_) - 1;
  Entry& e = entries_[entry];
  const HandshakeState state = e.state();
  // A connection to itself (same address and port: a LAND attack) has no direction; then a
  // segment counts as coming from either side.
  const bool from_client = order == 0 || source_is_high == e.client_is_high();
  const bool from_server = order == 0 || source_is_high != e.client_is_high();
  const auto report = [&](FlowEvent event) noexcept {
    update.event = event;
    update.previous_state = state;
    update.was_stale = e.stale();
    const unsigned rung = e.rung_plus_one();
    update.rung = static_cast<std::uint8_t>(rung == 0 ? 0 : rung - 1);
    update.age = std::max<DurationNs>(0, segment.timestamp - first_syn_ms(entry) * kNanosPerMilli);
    describe(entry, update.server, update.client);
  };

  if (segment.has(tcp_flag::kRst)) {
    report(FlowEvent::kReset);
    remove(entry, Located{slot, probe.home});
    ++counters_.reset;
  } else if (is_syn) {
    if (!from_client) return;
    report(FlowEvent::kSynRetransmit);
    ++counters_.syn_retransmits;
    if (segment.seq != e.syn_seq) {
      // Port reuse: a new attempt replaces the old one, with its own age and judgement.
      e.syn_seq = segment.seq;
      if (state == HandshakeState::kSynRecv) {
        e.set_state(HandshakeState::kSynSeen);
        ++syn_seen_;
      }
      forget_judgement(e);
      e.next_and_flags &= ~kStaleBit;
      unlink(entry);
      link_newest(entry, segment.timestamp);
    }
  } else if (segment.is_syn_ack()) {
    if (!from_server) return;
    if (segment.ack != e.syn_seq + 1) {
      report(FlowEvent::kMismatch);
      ++counters_.mismatches;
    } else if (state == HandshakeState::kSynRecv) {
      report(FlowEvent::kSynAckRetransmit);
      ++counters_.synack_retransmits;
      e.synack_seq = segment.seq;
    } else {
      report(FlowEvent::kSynAck);
      ++counters_.synacks;
      e.synack_seq = segment.seq;
      e.set_state(HandshakeState::kSynRecv);
      --syn_seen_;
    }
  } else if (segment.has(tcp_flag::kFin) || !segment.has(tcp_flag::kAck) || !from_client) {
    return;
  } else if (state == HandshakeState::kSynRecv && segment.ack != e.synack_seq + 1) {
    report(FlowEvent::kMismatch);
    ++counters_.mismatches;
  } else {
    // In kSynSeen the SYN-ACK went unseen; the client's ACK proves there was one.
    report(FlowEvent::kCompleted);
    remove(entry, Located{slot, probe.home});
    ++counters_.completed;
  }
  return;
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
  const auto home = static_cast<std::uint32_t>(probe_of(e.key).home);
  victim_homes_[entry % kVictimHomes] = VictimHome{entry, home};
  __builtin_prefetch(&index_[home * kBucketWords]);
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
