#include "aggregate/destination_table.hpp"

#include <algorithm>
#include <bit>

#include "aggregate/source_entropy.hpp"
#include "common/hash.hpp"

namespace synwatch {

void WindowStats::add(const WindowStats& other) noexcept {
  add_members(*this, other, kWindowStatsMembers);
}

void DestinationEventStats::add(const DestinationEventStats& other) noexcept {
  add_members(*this, other, kDestinationEvents.members);
}

StaleJudgement StaleJudgement::from(const DetectionConfig& detection) {
  // The ages a destination's normal is rounded up to: fine steps where round trips usually lie,
  // up to 3 s, the initial SYN-ACK timeout of older kernels (RFC 1122).
  static constexpr DurationNs kLadder[] = {
      50 * kNanosPerMilli,  100 * kNanosPerMilli, 200 * kNanosPerMilli,
      300 * kNanosPerMilli, 500 * kNanosPerMilli, 750 * kNanosPerMilli,
      kNanosPerSecond,      2 * kNanosPerSecond,  3 * kNanosPerSecond};
  const StaleConfig& stale = detection.stale;
  StaleJudgement j;
  j.ages.push_back(stale.floor);
  for (const DurationNs age : kLadder) {
    if (age > stale.floor) j.ages.push_back(age);
  }
  if (stale.no_history > stale.floor) j.ages.push_back(stale.no_history);
  std::sort(j.ages.begin(), j.ages.end());
  j.ages.erase(std::unique(j.ages.begin(), j.ages.end()), j.ages.end());
  // At most kJudgeRungsMax rungs: keep the floor and the no-history age, drop the longest others.
  while (j.ages.size() > kJudgeRungsMax) {
    auto last = std::prev(j.ages.end());
    if (*last == stale.no_history) --last;
    j.ages.erase(last);
  }
  j.no_history_rung = static_cast<std::size_t>(
      std::find(j.ages.begin(), j.ages.end(), std::max(stale.no_history, stale.floor)) -
      j.ages.begin());
  j.percentile = stale.percentile;
  j.history_epoch = std::max<DurationNs>(1, stale.history / 2);
  return j;
}

void DestinationTableStats::add(const DestinationTableStats& other) noexcept {
  add_members(*this, other, kDestinationTableStatsMembers);
}

DestinationTable::DestinationTable(const AggregationConfig& config, DurationNs tick,
                                   std::size_t half_open_threshold, std::uint64_t hash_seed,
                                   StaleJudgement judgement, Scope scope)
    : config_(config),
      judgement_(std::move(judgement)),
      scope_(scope),
      port_mask_(scope == Scope::kHost ? 0 : 0xffff),
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
  return find_recent(key_of(target));
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
  const Endpoint key = key_of(target);
  if (Destination* existing = find_recent(key)) return existing;
  return create(key, now);
}

Destination* DestinationTable::create(const Endpoint& target, TimestampNs now) noexcept {
  if (free_.empty()) {
    // Recycle the least recently active destination; those at or above the threshold (floods)
    // are skipped, a bounded number of times so a pool full of floods costs O(1) per SYN.
    std::uint32_t candidate = lru_oldest_;
    for (int tries = 0; candidate != kNone && tries < 8; ++tries) {
      if (pool_[candidate].above_threshold_since == 0) break;
      candidate = links_[candidate].newer;
    }
    if (candidate == kNone || pool_[candidate].above_threshold_since != 0) {
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
    if (slot.tick != INT64_MIN) {
      // Leaving the window: its stale handshakes leave the level.
      Destination& d = pool_[index];
      d.stale_level -= std::min(d.stale_level, slot.counts.stale);
    }
    slot.tick = tick;
    slot.counts = WindowStats{};
    slot.peak_half_open = 0;
    slot.sources.clear();
    slot.heavy.clear();
  }
  return slot;
}

void DestinationTable::increment(Destination& d, HandshakeState state) noexcept {
  if (state == HandshakeState::kSynSeen) {
    ++d.syn_seen;
  } else {
    ++d.syn_recv;
  }
}

void DestinationTable::decrement(Destination& d, HandshakeState state) noexcept {
  // Counts may already be zero if the destination was recycled while its handshakes were
  // pending; never wrap around.
  std::uint32_t& count = state == HandshakeState::kSynSeen ? d.syn_seen : d.syn_recv;
  if (count > 0) --count;
}

void DestinationTable::move_state(Destination& d, HandshakeState from, HandshakeState to) noexcept {
  std::uint32_t& count = from == HandshakeState::kSynSeen ? d.syn_seen : d.syn_recv;
  if (count == 0) {
    // Recycled while pending: only the new state is ours to count.
    increment(d, to);
    return;
  }
  --count;
  ++(to == HandshakeState::kSynSeen ? d.syn_seen : d.syn_recv);
}

void DestinationTable::set_level(Destination& d, std::uint32_t level, TimestampNs now) noexcept {
  d.stale_level = level;
  const std::uint32_t flood_level = d.flood_level();
  if (flood_level >= threshold_ && d.above_threshold_since == 0) {
    // Packet time 0 is a valid timestamp in old captures; 1 ns later keeps "0 = below" unambiguous.
    d.above_threshold_since = now == 0 ? 1 : now;
    ++above_threshold_;
    ++crossings_;
  } else if (flood_level < threshold_ && d.above_threshold_since != 0) {
    d.above_threshold_since = 0;
    --above_threshold_;
  }
}

void DestinationTable::count_stale(Destination& d, const IpAddress& client, bool failed,
                                   TimestampNs now, bool with_sources) noexcept {
  WindowSlot& slot = current_slot(index_of(d), now);
  ++slot.counts.stale;
  if (failed) ++slot.counts.failed;
  if (with_sources) {
    if (is_bogon(client)) ++slot.counts.stale_bogon;
    slot.sources.add_hash(SourceHll::hash_address(client));
    slot.heavy.add(client);
  } else {
    ++slot.counts.unsourced_stale;
  }
  ++d.totals.stale;
  set_level(d, d.stale_level + 1, now);
}

void DestinationTable::count_late_completion(Destination& d, const FlowUpdate& update,
                                             TimestampNs now) noexcept {
  if (judgement_.ages.empty()) return;
  // It was counted in the tick it went stale, which its rung's age after its first SYN tells.
  const DurationNs rung_age =
      judgement_.ages[std::min<std::size_t>(update.rung, judgement_.ages.size() - 1)];
  take_back_stale(d, now - update.age + rung_age, now);
}

void DestinationTable::take_back_stale(Destination& d, TimestampNs judged_at,
                                       TimestampNs now) noexcept {
  const std::uint32_t index = index_of(d);
  ++current_slot(index, now).counts.late_completed;
  const std::int64_t judged_tick = tick_of(judged_at, tick_);
  const auto slots = static_cast<std::int64_t>(slots_per_destination_);
  WindowSlot& slot = slots_[index * slots_per_destination_ +
                            static_cast<std::size_t>(((judged_tick % slots) + slots) % slots)];
  if (slot.tick != judged_tick || slot.counts.stale == 0) return;  // left the window already
  --slot.counts.stale;
  set_level(d, d.stale_level - std::min<std::uint32_t>(d.stale_level, 1), now);
}

void DestinationTable::record_completion(Destination& d, DurationNs age, TimestampNs now) noexcept {
  const auto& ages = judgement_.ages;
  if (ages.empty()) return;
  const std::int64_t epoch = tick_of(now, judgement_.history_epoch);
  auto& times = d.completion_times[static_cast<std::size_t>(epoch & 1)];
  std::int64_t& times_epoch = d.completion_epoch[static_cast<std::size_t>(epoch & 1)];
  if (times_epoch != epoch) {
    if (times_epoch > epoch) return;  // late packet from an epoch already overwritten
    times.fill(0);
    times_epoch = epoch;
  }
  const auto bucket =
      static_cast<std::size_t>(std::lower_bound(ages.begin(), ages.end(), age) - ages.begin());
  ++times[bucket];
  d.judge_rung_tick = INT64_MIN;
}

namespace {

struct Normal {
  std::size_t rung;
  bool learned;
};

Normal normal_of(const Destination& d, const StaleJudgement& judgement, TimestampNs now) noexcept {
  const std::int64_t epoch = tick_of(now, judgement.history_epoch);
  std::array<std::uint64_t, kJudgeRungsMax + 1> times{};
  std::uint64_t total = 0;
  for (std::size_t e = 0; e < 2; ++e) {
    if (d.completion_epoch[e] != epoch && d.completion_epoch[e] != epoch - 1) continue;
    for (std::size_t b = 0; b < times.size(); ++b) {
      times[b] += d.completion_times[e][b];
      total += d.completion_times[e][b];
    }
  }
  if (total < kMinCompletionsForNormal) return {judgement.no_history_rung, false};
  const double wanted = judgement.percentile * static_cast<double>(total);
  std::uint64_t below = 0;
  std::size_t bucket = 0;
  for (; bucket + 1 < times.size(); ++bucket) {
    below += times[bucket];
    if (static_cast<double>(below) >= wanted) break;
  }
  return {std::min(bucket, judgement.ages.size() - 1), true};
}

}  // namespace

unsigned DestinationTable::judge_rung(const Endpoint& server, TimestampNs now) noexcept {
  if (judgement_.ages.empty()) return 0;
  Destination* d = find_recent(key_of(server));
  if (d == nullptr) return static_cast<unsigned>(judgement_.no_history_rung);
  const std::int64_t tick = tick_of(now, tick_);
  if (d->judge_rung_tick != tick) {
    d->judge_rung = static_cast<std::uint8_t>(normal_of(*d, judgement_, now).rung);
    d->judge_rung_tick = tick;
  }
  return d->judge_rung;
}

std::uint32_t DestinationTable::window_stale(const Destination& d, TimestampNs now) const noexcept {
  const std::uint32_t index = index_of(d);
  // The window gather() sees (ending with the tick that closed at `now` when `now` is on a tick
  // boundary), and the tick that begins at `now` too: what has been counted by now stays in the
  // running level, so that the next increment crosses the threshold when it should.
  const std::int64_t newest = tick_of(now, tick_);
  const std::int64_t oldest =
      tick_of(now - 1, tick_) - static_cast<std::int64_t>(slots_per_destination_) + 1;
  std::uint32_t stale = 0;
  for (std::size_t i = 0; i < slots_per_destination_; ++i) {
    const WindowSlot& slot = slots_[index * slots_per_destination_ + i];
    if (slot.tick >= oldest && slot.tick <= newest) stale += slot.counts.stale;
  }
  return stale;
}

void DestinationTable::settle(TimestampNs now) noexcept {
  const std::int64_t current_tick = tick_of(now - 1, tick_);
  const auto slots = static_cast<std::int64_t>(slots_per_destination_);
  for_each([&](Destination& d) {
    const std::uint32_t index = index_of(d);
    for (std::size_t i = 0; i < slots_per_destination_; ++i) {
      WindowSlot& slot = slots_[index * slots_per_destination_ + i];
      if (slot.tick != INT64_MIN && slot.tick <= current_tick - slots) {
        // Out of the window and of the level: current_slot() must not take it off again.
        slot.tick = INT64_MIN;
      }
    }
    set_level(d, window_stale(d, now), now);
  });
}

Destination* DestinationTable::on_flow(const FlowUpdate& update, TimestampNs now,
                                       bool with_sources) noexcept {
  const Endpoint server = key_of(update.server);
  // A full handshake table under a flood: every SYN evicts the oldest handshake, nearly always
  // one of the same destination. That replacement is counted in one step with the SYN (below).
  const bool replaces_own = update.evicted && update.event == FlowEvent::kSyn &&
                            same_endpoint(key_of(update.evicted_server), server);
  if (update.evicted && !replaces_own) {
    if (Destination* d = find_recent(key_of(update.evicted_server))) {
      decrement(*d, update.evicted_state);
      ++d->totals.evicted;
      ++current_slot(index_of(*d), now).counts.evicted;
      // Pushed out before it could be judged: a failed handshake.
      if (!update.evicted_stale) count_stale(*d, update.evicted_client, true, now, with_sources);
    }
  }
  switch (update.event) {
    case FlowEvent::kNone:
    case FlowEvent::kUnsolicitedSynAck:
    case FlowEvent::kMismatch:
      return nullptr;
    case FlowEvent::kSyn: {
      Destination* d = find_recent(server);
      // A destination created now was not tracked when the evicted handshake began (recycled).
      const bool replaced_here = replaces_own && d != nullptr;
      if (d == nullptr) d = create(server, now);
      if (d == nullptr) return nullptr;
      const std::uint32_t index = index_of(*d);
      WindowSlot& slot = current_slot(index, now);
      ++slot.counts.syns;
      ++d->totals.syns;
      if (!replaced_here) {
        increment(*d, HandshakeState::kSynSeen);
      } else {
        ++d->totals.evicted;
        ++slot.counts.evicted;
        if (update.evicted_state == HandshakeState::kSynRecv) {
          move_state(*d, HandshakeState::kSynRecv, HandshakeState::kSynSeen);
        } else if (d->syn_seen == 0) {
          increment(*d, HandshakeState::kSynSeen);  // recycled while pending: only ours
        }
        // Otherwise one pending handshake took another's place: the counts stand.
        if (!update.evicted_stale) {
          count_stale(*d, update.evicted_client, true, now, with_sources);
        }
      }
      slot.peak_half_open = std::max(slot.peak_half_open, d->half_open());
      touch(index, now);
      return d;
    }
    default:
      break;
  }
  Destination* d = find_recent(server);
  if (d == nullptr) return nullptr;
  const std::uint32_t index = index_of(*d);
  switch (update.event) {
    case FlowEvent::kSynRetransmit:
      ++d->totals.syn_retransmits;
      if (update.previous_state == HandshakeState::kSynRecv) {
        // A SYN with a new sequence number restarted a handshake in syn_recv.
        move_state(*d, HandshakeState::kSynRecv, HandshakeState::kSynSeen);
      }
      // A restarted stale handshake is a new attempt: the old one leaves the stale count.
      if (update.was_stale) count_late_completion(*d, update, now);
      break;
    case FlowEvent::kSynAck:
      move_state(*d, HandshakeState::kSynSeen, HandshakeState::kSynRecv);
      ++current_slot(index, now).counts.synacks;
      ++d->totals.synacks;
      break;
    case FlowEvent::kCompleted:
      decrement(*d, update.previous_state);
      ++current_slot(index, now).counts.completed;
      ++d->totals.completed;
      record_completion(*d, update.age, now);
      if (update.was_stale) count_late_completion(*d, update, now);
      break;
    case FlowEvent::kReset:
      decrement(*d, update.previous_state);
      ++current_slot(index, now).counts.resets;
      ++d->totals.resets;
      // Refused (a closed port answers RST) or aborted before it could be judged: failed.
      if (!update.was_stale) count_stale(*d, update.client, true, now, with_sources);
      break;
    default:
      break;
  }
  touch(index, now);
  return d;
}

void DestinationTable::on_expired(const Endpoint& server, const IpAddress& client,
                                  HandshakeState state, bool was_stale, TimestampNs now) noexcept {
  Destination* d = find(server);
  if (d == nullptr) return;
  decrement(*d, state);
  WindowStats& counts = current_slot(index_of(*d), now).counts;
  ++counts.expired;
  if (state == HandshakeState::kSynSeen) ++counts.unanswered;
  ++d->totals.expired;
  if (!was_stale) count_stale(*d, client, true, now);
}

Destination* DestinationTable::on_stale(const Endpoint& server, const IpAddress& client,
                                        TimestampNs now, bool with_sources) noexcept {
  Destination* d = find_or_create(server, now);
  if (d == nullptr) return nullptr;
  count_stale(*d, client, false, now, with_sources);
  touch(index_of(*d), now);
  return d;
}

Destination* DestinationTable::on_answered_syn(const Endpoint& server, TimestampNs now) noexcept {
  Destination* d = find_or_create(server, now);
  if (d == nullptr) return nullptr;
  const std::uint32_t index = index_of(*d);
  WindowSlot& slot = current_slot(index, now);
  ++slot.counts.syns;
  ++slot.counts.synacks;
  ++d->totals.syns;
  ++d->totals.synacks;
  increment(*d, HandshakeState::kSynRecv);
  slot.peak_half_open = std::max(slot.peak_half_open, d->half_open());
  touch(index, now);
  return d;
}

void DestinationTable::on_completed(const Endpoint& server, HandshakeState state,
                                    std::optional<TimestampNs> judged_stale_at,
                                    TimestampNs now) noexcept {
  Destination* d = find(server);
  if (d == nullptr) return;
  const std::uint32_t index = index_of(*d);
  decrement(*d, state);
  ++current_slot(index, now).counts.completed;
  ++d->totals.completed;
  if (judged_stale_at) take_back_stale(*d, *judged_stale_at, now);
  touch(index, now);
}

Destination* DestinationTable::set_stateless(const Endpoint& target, std::uint32_t stateless,
                                             std::uint32_t new_syns, std::uint32_t new_completed,
                                             TimestampNs now) noexcept {
  const bool news = new_syns > 0 || new_completed > 0;
  Destination* d = stateless == 0 && !news ? find(target) : find_or_create(target, now);
  if (d == nullptr) return nullptr;
  const std::uint32_t index = index_of(*d);
  if (news) {
    WindowStats& counts = current_slot(index, now).counts;
    counts.syns += new_syns;
    counts.unanswered += new_syns;
    counts.completed += new_completed;
    d->totals.syns += new_syns;
    d->totals.completed += new_completed;
    touch(index, now);
  }
  d->stateless = stateless;
  WindowSlot& slot = current_slot(index, now);
  slot.peak_half_open = std::max(slot.peak_half_open, d->half_open());
  set_level(*d, d->stale_level, now);
  return d;
}

void DestinationTable::set_half_open_threshold(std::size_t threshold, TimestampNs now) noexcept {
  threshold_ = threshold;
  above_threshold_ = 0;
  for_each([&](Destination& d) {
    if (d.flood_level() >= threshold_) {
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
    if (d.above_threshold_since == 0 && d.half_open() == 0) {
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
  std::uint32_t peak = d.half_open();
  for (std::size_t i = 0; i < slots_per_destination_; ++i) {
    const WindowSlot& slot = slots_[index * slots_per_destination_ + i];
    if (slot.tick > current_tick - slots && slot.tick <= current_tick) {
      gathered.window.add(slot.counts);
      gathered.sketches.push_back(&slot.sources);
      gathered.heavy.merge_from(slot.heavy);
      peak = std::max(peak, slot.peak_half_open);
    }
  }
  gathered.first_seen = std::min(gathered.first_seen, d.first_seen);
  gathered.peak_half_open += peak;
  if (!judgement_.ages.empty()) {
    const Normal normal = normal_of(d, judgement_, now);
    gathered.judge_age = std::max(gathered.judge_age, judgement_.ages[normal.rung]);
    gathered.learned_normal = gathered.learned_normal || normal.learned;
  }
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

  // The kernel view's SYN-cookie answered handshakes have no source and never complete.
  const std::uint32_t stateless = half_open - std::min(half_open, syn_seen + syn_recv);
  s.stale = s.window.stale + stateless;
  s.peak_half_open = std::max(gathered.peak_half_open, half_open);
  s.judge_age = gathered.judge_age;
  s.learned_normal = gathered.learned_normal;
  s.distinct_sources = estimate_union(std::span<const SourceHll* const>(gathered.sketches));
  const double syns = s.window.syns;
  // Source figures are over the handshakes judged bad, so that legitimate handshakes beside a
  // flood neither dilute nor skew them.
  const std::uint32_t judged = s.window.stale - std::min(s.window.stale, s.window.unsourced_stale);
  s.sourced_stale = judged;
  if (judged > 0) {
    s.distinct_ratio = std::min(1.0, s.distinct_sources / judged);
    s.bogon_share = std::min(1.0, static_cast<double>(s.window.stale_bogon) / judged);
  }
  if (syns > 0) {
    s.completion_ratio = std::min(1.0, s.window.completed / syns);
  } else {
    s.completion_ratio = s.window.completed > 0 ? 1.0 : 0.0;
  }

  std::array<HeavySource, kHeavySourcesPerSlot> heaviest{};
  const std::size_t found = gathered.heavy.top(heaviest);
  s.source_entropy = normalized_source_entropy(std::span<const HeavySource>(heaviest.data(), found),
                                               judged, s.distinct_sources);
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
