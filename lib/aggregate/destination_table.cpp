#include "aggregate/destination_table.hpp"

#include <algorithm>
#include <bit>

#include "aggregate/source_entropy.hpp"
#include "common/hash.hpp"

namespace synwatch {

void WindowCounts::add(const WindowCounts& other) noexcept {
  syns += other.syns;
  synacks += other.synacks;
  completed += other.completed;
  resets += other.resets;
  expired += other.expired;
  unanswered += other.unanswered;
  evicted += other.evicted;
  bogon_syns += other.bogon_syns;
  unsourced_syns += other.unsourced_syns;
}

void DestinationTotals::add(const DestinationTotals& other) noexcept {
  syns += other.syns;
  syn_retransmits += other.syn_retransmits;
  synacks += other.synacks;
  completed += other.completed;
  resets += other.resets;
  expired += other.expired;
  evicted += other.evicted;
}

void DestinationTableCounters::add(const DestinationTableCounters& other) noexcept {
  created += other.created;
  recycled += other.recycled;
  dropped += other.dropped;
  forgotten += other.forgotten;
}

DestinationTable::DestinationTable(const AggregationConfig& config, DurationNs tick,
                                   std::size_t half_open_threshold, std::uint64_t hash_seed)
    : config_(config),
      tick_(tick),
      slots_per_destination_(
          static_cast<std::size_t>(std::max<DurationNs>(1, config.window / tick))),
      threshold_(half_open_threshold),
      hash_seed_(hash_seed),
      pool_(config.max_destinations),
      links_(config.max_destinations),
      slots_(config.max_destinations * slots_per_destination_) {
  const std::size_t buckets = std::bit_ceil(std::max<std::size_t>(2, 2 * config.max_destinations));
  buckets_.assign(buckets, kNone);
  bucket_mask_ = buckets - 1;
  free_.reserve(pool_.size());
  for (std::size_t i = pool_.size(); i-- > 0;) free_.push_back(static_cast<std::uint32_t>(i));
}

std::size_t DestinationTable::memory_bytes() const noexcept {
  return pool_.capacity() * sizeof(Destination) + links_.capacity() * sizeof(Links) +
         slots_.capacity() * sizeof(WindowSlot) + buckets_.capacity() * sizeof(std::uint32_t) +
         free_.capacity() * sizeof(std::uint32_t);
}

namespace {

// Fixed-size comparison the compiler inlines; the defaulted operator== calls memcmp.
bool same_endpoint(const Endpoint& a, const Endpoint& b) noexcept {
  std::uint64_t x[2];
  std::uint64_t y[2];
  std::memcpy(x, a.address.bytes.data(), sizeof x);
  std::memcpy(y, b.address.bytes.data(), sizeof y);
  return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | static_cast<std::uint64_t>(a.port ^ b.port)) == 0;
}

}  // namespace

std::size_t DestinationTable::bucket_of(const Endpoint& target) const noexcept {
  return hash_16_bytes(target.address.bytes.data(), target.port, hash_seed_) & bucket_mask_;
}

Destination* DestinationTable::find_in_index(const Endpoint& target) noexcept {
  for (std::size_t b = bucket_of(target);; b = (b + 1) & bucket_mask_) {
    const std::uint32_t index = buckets_[b];
    if (index == kNone) return nullptr;
    if (same_endpoint(pool_[index].target, target)) {
      last_found_ = index;
      return &pool_[index];
    }
  }
}

inline Destination* DestinationTable::find_recent(const Endpoint& target) noexcept {
  // A flood hits one destination packet after packet: checking the last one found first saves
  // the hash and the probe.
  if (last_found_ != kNone && same_endpoint(pool_[last_found_].target, target)) {
    return &pool_[last_found_];
  }
  return find_in_index(target);
}

Destination* DestinationTable::find(const Endpoint& target) noexcept {
  return find_recent(target);
}

void DestinationTable::index_insert(std::uint32_t index) noexcept {
  std::size_t b = bucket_of(pool_[index].target);
  while (buckets_[b] != kNone) b = (b + 1) & bucket_mask_;
  buckets_[b] = index;
}

void DestinationTable::index_erase(std::uint32_t index) noexcept {
  std::size_t hole = bucket_of(pool_[index].target);
  while (buckets_[hole] != index) hole = (hole + 1) & bucket_mask_;
  // Backward-shift deletion keeps probe chains intact without tombstones.
  for (std::size_t next = (hole + 1) & bucket_mask_; buckets_[next] != kNone;
       next = (next + 1) & bucket_mask_) {
    const std::size_t home = bucket_of(pool_[buckets_[next]].target);
    const bool movable = ((next - home) & bucket_mask_) >= ((next - hole) & bucket_mask_);
    if (movable) {
      buckets_[hole] = buckets_[next];
      hole = next;
    }
  }
  buckets_[hole] = kNone;
}

void DestinationTable::unlink(std::uint32_t index) noexcept {
  Links& l = links_[index];
  if (l.newer != kNone) {
    links_[l.newer].older = l.older;
  } else {
    lru_newest_ = l.older;
  }
  if (l.older != kNone) {
    links_[l.older].newer = l.newer;
  } else {
    lru_oldest_ = l.newer;
  }
  l.newer = l.older = kNone;
}

void DestinationTable::push_newest(std::uint32_t index) noexcept {
  Links& l = links_[index];
  l.newer = kNone;
  l.older = lru_newest_;
  if (lru_newest_ != kNone) links_[lru_newest_].newer = index;
  lru_newest_ = index;
  if (lru_oldest_ == kNone) lru_oldest_ = index;
}

inline void DestinationTable::touch(std::uint32_t index, TimestampNs now) noexcept {
  pool_[index].last_activity = std::max(pool_[index].last_activity, now);
  if (lru_newest_ == index) return;
  unlink(index);
  push_newest(index);
}

void DestinationTable::release(std::uint32_t index) noexcept {
  if (last_found_ == index) last_found_ = kNone;
  if (pool_[index].above_threshold_since != 0) --above_threshold_;
  index_erase(index);
  unlink(index);
  links_[index].in_use = false;
  free_.push_back(index);
  --size_;
}

Destination* DestinationTable::find_or_create(const Endpoint& target, TimestampNs now) noexcept {
  if (Destination* existing = find_recent(target)) return existing;
  return create(target, now);
}

Destination* DestinationTable::create(const Endpoint& target, TimestampNs now) noexcept {
  if (free_.empty()) {
    // Recycle the least recently active destination; pinned ones (open incidents) are
    // skipped, a bounded number of times so a pool full of incidents costs O(1) per SYN.
    std::uint32_t candidate = lru_oldest_;
    for (int tries = 0; candidate != kNone && tries < 8; ++tries) {
      if (!pool_[candidate].pinned) break;
      candidate = links_[candidate].newer;
    }
    if (candidate == kNone || pool_[candidate].pinned) {
      ++counters_.dropped;
      return nullptr;
    }
    release(candidate);
    ++counters_.recycled;
  }
  const std::uint32_t index = free_.back();
  free_.pop_back();
  pool_[index] = Destination{};
  pool_[index].target = target;
  pool_[index].first_seen = now;
  pool_[index].last_activity = now;
  for (std::size_t s = 0; s < slots_per_destination_; ++s) {
    slots_[index * slots_per_destination_ + s].tick = INT64_MIN;
  }
  links_[index].in_use = true;
  index_insert(index);
  push_newest(index);
  ++size_;
  ++counters_.created;
  return &pool_[index];
}

inline WindowSlot& DestinationTable::current_slot(std::uint32_t index, TimestampNs now) noexcept {
  if (now < slot_tick_begin_ || now >= slot_tick_end_) {
    // Two 64-bit divisions, once per tick of packet time rather than once per packet.
    slot_tick_ = tick_of(now, tick_);
    slot_position_ =
        static_cast<std::size_t>(((slot_tick_ % static_cast<std::int64_t>(slots_per_destination_)) +
                                  static_cast<std::int64_t>(slots_per_destination_)) %
                                 static_cast<std::int64_t>(slots_per_destination_));
    // Ticks at the ends of the time range are recomputed every time rather than overflow.
    const bool representable = slot_tick_ > INT64_MIN / tick_ && slot_tick_ < INT64_MAX / tick_ - 1;
    slot_tick_begin_ = representable ? slot_tick_ * tick_ : INT64_MAX;
    slot_tick_end_ = representable ? slot_tick_begin_ + tick_ : INT64_MIN;
  }
  const std::int64_t tick = slot_tick_;
  WindowSlot& slot = slots_[index * slots_per_destination_ + slot_position_];
  if (slot.tick != tick) {
    // Late packets (time going backwards across a tick) land in the current slot rather
    // than wiping a newer one.
    if (slot.tick > tick) return slot;
    slot.tick = tick;
    slot.counts = WindowCounts{};
    slot.sources.clear();
    slot.heavy.clear();
  }
  return slot;
}

void DestinationTable::increment(Destination& d, HandshakeState state, TimestampNs now) noexcept {
  if (state == HandshakeState::kSynSeen) {
    ++d.syn_seen;
  } else {
    ++d.syn_recv;
  }
  const std::uint32_t half_open = d.half_open();
  d.peak_half_open = std::max(d.peak_half_open, half_open);
  if (half_open >= threshold_ && d.above_threshold_since == 0) {
    // Packet time 0 is a valid timestamp in old captures; 1 ns later keeps "0 = below" unambiguous.
    d.above_threshold_since = now == 0 ? 1 : now;
    ++above_threshold_;
    if (!d.pinned) ++unpinned_crossings_;
  }
}

void DestinationTable::decrement(Destination& d, HandshakeState state) noexcept {
  // Counts may already be zero if the destination was recycled while its handshakes were
  // pending; never wrap around.
  std::uint32_t& count = state == HandshakeState::kSynSeen ? d.syn_seen : d.syn_recv;
  if (count > 0) --count;
  if (d.half_open() < threshold_ && d.above_threshold_since != 0) {
    d.above_threshold_since = 0;
    --above_threshold_;
  }
}

void DestinationTable::move_state(Destination& d, HandshakeState from, HandshakeState to,
                                  TimestampNs now) noexcept {
  std::uint32_t& count = from == HandshakeState::kSynSeen ? d.syn_seen : d.syn_recv;
  if (count == 0) {
    // Recycled while pending: only the new state is ours to count.
    increment(d, to, now);
    return;
  }
  // The half-open total does not change, so the threshold timer must not restart (a decrement
  // then an increment would dip below it for an instant when the count sits on the threshold).
  --count;
  ++(to == HandshakeState::kSynSeen ? d.syn_seen : d.syn_recv);
}

Destination* DestinationTable::on_flow(const FlowUpdate& update, TimestampNs now) noexcept {
  // A full handshake table under a flood: every SYN evicts the oldest handshake, nearly always
  // one of the same destination. That replacement is counted in one step with the SYN (below),
  // which also keeps the half-open count from dipping below the threshold between the two.
  const bool replaces_own = update.evicted && update.event == FlowEvent::kSyn &&
                            same_endpoint(update.evicted_server, update.server);
  if (update.evicted && !replaces_own) {
    if (Destination* d = find_recent(update.evicted_server)) {
      decrement(*d, update.evicted_state);
      ++d->totals.evicted;
      ++current_slot(index_of(*d), now).counts.evicted;
    }
  }
  switch (update.event) {
    case FlowEvent::kNone:
    case FlowEvent::kUnsolicitedSynAck:
    case FlowEvent::kMismatch:
      return nullptr;
    case FlowEvent::kSyn: {
      Destination* d = find_recent(update.server);
      // A destination created now was not tracked when the evicted handshake began (recycled).
      const bool replaced_here = replaces_own && d != nullptr;
      if (d == nullptr) d = create(update.server, now);
      if (d == nullptr) return nullptr;
      const std::uint32_t index = index_of(*d);
      WindowSlot& slot = current_slot(index, now);
      ++slot.counts.syns;
      if (is_bogon(update.client)) ++slot.counts.bogon_syns;
      slot.sources.add_hash(SourceHll::hash_address(update.client));
      slot.heavy.add(update.client);
      ++d->totals.syns;
      if (!replaced_here) {
        increment(*d, HandshakeState::kSynSeen, now);
      } else {
        ++d->totals.evicted;
        ++slot.counts.evicted;
        if (update.evicted_state == HandshakeState::kSynRecv) {
          move_state(*d, HandshakeState::kSynRecv, HandshakeState::kSynSeen, now);
        } else if (d->syn_seen == 0) {
          increment(*d, HandshakeState::kSynSeen, now);  // recycled while pending: only ours
        }
        // Otherwise one pending handshake took another's place: the counts stand.
      }
      touch(index, now);
      return d;
    }
    default:
      break;
  }
  Destination* d = find_recent(update.server);
  if (d == nullptr) return nullptr;
  const std::uint32_t index = index_of(*d);
  switch (update.event) {
    case FlowEvent::kSynRetransmit:
      ++d->totals.syn_retransmits;
      if (update.previous_state == HandshakeState::kSynRecv) {
        // A SYN with a new sequence number restarted a handshake in syn_recv.
        move_state(*d, HandshakeState::kSynRecv, HandshakeState::kSynSeen, now);
      }
      break;
    case FlowEvent::kSynAck:
      move_state(*d, HandshakeState::kSynSeen, HandshakeState::kSynRecv, now);
      ++current_slot(index, now).counts.synacks;
      ++d->totals.synacks;
      break;
    case FlowEvent::kCompleted:
      decrement(*d, update.previous_state);
      ++current_slot(index, now).counts.completed;
      ++d->totals.completed;
      break;
    case FlowEvent::kReset:
      decrement(*d, update.previous_state);
      ++current_slot(index, now).counts.resets;
      ++d->totals.resets;
      break;
    default:
      break;
  }
  touch(index, now);
  return d;
}

void DestinationTable::on_expired(const Endpoint& server, HandshakeState state,
                                  TimestampNs now) noexcept {
  Destination* d = find(server);
  if (d == nullptr) return;
  decrement(*d, state);
  WindowCounts& counts = current_slot(index_of(*d), now).counts;
  ++counts.expired;
  if (state == HandshakeState::kSynSeen) ++counts.unanswered;
  ++d->totals.expired;
}

Destination* DestinationTable::set_stateless(const Endpoint& target, std::uint32_t stateless,
                                             std::uint32_t new_syns, std::uint32_t new_completed,
                                             TimestampNs now) noexcept {
  const bool news = new_syns > 0 || new_completed > 0;
  Destination* d = stateless == 0 && !news ? find(target) : find_or_create(target, now);
  if (d == nullptr) return nullptr;
  const std::uint32_t index = index_of(*d);
  if (news) {
    WindowCounts& counts = current_slot(index, now).counts;
    counts.syns += new_syns;
    counts.unsourced_syns += new_syns;
    counts.unanswered += new_syns;
    counts.completed += new_completed;
    d->totals.syns += new_syns;
    d->totals.completed += new_completed;
    touch(index, now);
  }
  d->stateless = stateless;
  const std::uint32_t half_open = d->half_open();
  d->peak_half_open = std::max(d->peak_half_open, half_open);
  if (half_open >= threshold_ && d->above_threshold_since == 0) {
    d->above_threshold_since = now == 0 ? 1 : now;
    ++above_threshold_;
  } else if (half_open < threshold_ && d->above_threshold_since != 0) {
    d->above_threshold_since = 0;
    --above_threshold_;
  }
  return d;
}

void DestinationTable::set_half_open_threshold(std::size_t threshold, TimestampNs now) noexcept {
  threshold_ = threshold;
  above_threshold_ = 0;
  for_each([&](Destination& d) {
    if (d.half_open() >= threshold_) {
      if (d.above_threshold_since == 0) d.above_threshold_since = now == 0 ? 1 : now;
      ++above_threshold_;
    } else {
      d.above_threshold_since = 0;
    }
  });
}

void DestinationTable::forget_idle(TimestampNs now) noexcept {
  // The LRU list is ordered by last activity, so only its old end needs looking at.
  std::uint32_t index = lru_oldest_;
  while (index != kNone) {
    const std::uint32_t newer = links_[index].newer;
    const Destination& d = pool_[index];
    if (now - d.last_activity < config_.idle_timeout) break;
    if (!d.pinned && d.half_open() == 0) {
      release(index);
      ++counters_.forgotten;
    }
    index = newer;
  }
}

void DestinationTable::gather(const Destination& d, TimestampNs now,
                              WindowAccumulator& gathered) const {
  const std::uint32_t index = index_of(d);
  // The window ends at `now`: an evaluation exactly on a tick boundary covers the tick that just
  // closed, not the one that has only begun.
  const std::int64_t current_tick = tick_of(now - 1, tick_);
  const auto slots = static_cast<std::int64_t>(slots_per_destination_);
  for (std::size_t i = 0; i < slots_per_destination_; ++i) {
    const WindowSlot& slot = slots_[index * slots_per_destination_ + i];
    if (slot.tick > current_tick - slots && slot.tick <= current_tick) {
      gathered.window.add(slot.counts);
      gathered.sketches.push_back(&slot.sources);
      gathered.heavy.merge_from(slot.heavy);
    }
  }
  gathered.first_seen = std::min(gathered.first_seen, d.first_seen);
}

DestinationStats DestinationTable::stats(const Destination& d, TimestampNs now,
                                         std::size_t top_sources) const {
  WindowAccumulator gathered;
  gathered.sketches.reserve(slots_per_destination_);
  gather(d, now, gathered);
  return summarize_window(d.target, d.syn_seen, d.syn_recv, d.half_open(), gathered, now, tick_,
                          slots_per_destination_, top_sources);
}

DestinationStats summarize_window(const Endpoint& target, std::uint32_t syn_seen,
                                  std::uint32_t syn_recv, std::uint32_t half_open,
                                  const WindowAccumulator& gathered, TimestampNs now,
                                  DurationNs tick, std::size_t slots, std::size_t top_sources) {
  DestinationStats s;
  s.target = target;
  s.syn_seen = syn_seen;
  s.syn_recv = syn_recv;
  s.half_open = half_open;
  s.window = gathered.window;
  const std::int64_t current_tick = tick_of(now - 1, tick);
  // The window covers at most `slots` ticks, and never reaches back before the destination
  // was first seen, so the first second of a flood is not diluted over the whole window.
  const TimestampNs window_start =
      std::max((current_tick - static_cast<std::int64_t>(slots) + 1) * tick, gathered.first_seen);
  s.window_span = std::max<DurationNs>(now - window_start, kNanosPerMilli);
  const double span_seconds = to_seconds(s.window_span);
  s.syn_rate = s.window.syns / span_seconds;
  s.synack_rate = s.window.synacks / span_seconds;
  s.completed_rate = s.window.completed / span_seconds;
  s.reset_rate = s.window.resets / span_seconds;
  s.expired_rate = s.window.expired / span_seconds;
  s.unanswered_rate = s.window.unanswered / span_seconds;

  s.distinct_sources = estimate_union(std::span<const SourceHll* const>(gathered.sketches));
  const double syns = s.window.syns;
  const std::uint32_t sourced_syns =
      s.window.syns - std::min(s.window.syns, s.window.unsourced_syns);
  if (syns > 0) {
    s.distinct_ratio = sourced_syns > 0 ? std::min(1.0, s.distinct_sources / sourced_syns) : 0.0;
    s.bogon_share = s.window.bogon_syns / syns;
    s.completion_ratio = std::min(1.0, s.window.completed / syns);
  } else {
    s.completion_ratio = s.window.completed > 0 ? 1.0 : 0.0;
  }

  std::array<HeavySource, kHeavySourcesPerSlot> heaviest{};
  const std::size_t found = gathered.heavy.top(heaviest);
  s.source_entropy = normalized_source_entropy(std::span<const HeavySource>(heaviest.data(), found),
                                               sourced_syns, s.distinct_sources);
  for (std::size_t i = 0; i < found && s.top_sources.size() < top_sources; ++i) {
    const std::uint64_t lower_bound = heaviest[i].count - heaviest[i].error;
    if (lower_bound == 0) continue;
    s.top_sources.push_back({heaviest[i].address, lower_bound});
  }
  std::stable_sort(s.top_sources.begin(), s.top_sources.end(),
                   [](const auto& a, const auto& b) { return a.syns > b.syns; });
  return s;
}

}  // namespace synwatch
