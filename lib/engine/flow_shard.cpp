#include "engine/flow_shard.hpp"

#include <algorithm>
#include <array>

namespace synwatch {

DurationNs drain_limit(const Config& config) noexcept {
  const StaleJudgement judgement = StaleJudgement::from(config.detection);
  return config.flow.pending_timeout + judgement.ages.back() + config.aggregation.window +
         config.detection.cooldown + config.detection.hold_for + 2 * config.detection.tick;
}

namespace {

// Hosts are fewer than their ports: an eighth of the destinations' pool, within the same bound.
AggregationConfig host_aggregation(const AggregationConfig& aggregation) {
  AggregationConfig hosts = aggregation;
  hosts.max_destinations = std::max<std::size_t>(1, aggregation.max_destinations / 8);
  return hosts;
}

}  // namespace

FlowShard::FlowShard(const Config& config, std::size_t flow_capacity,
                     std::size_t half_open_threshold, std::size_t host_half_open_threshold,
                     std::uint64_t hash_seed)
    : tick_(config.detection.tick),
      protected_(config.protected_prefixes),
      handshakes_(flow_capacity, config.flow.pending_timeout, hash_seed),
      destinations_(config.aggregation, config.detection.tick, half_open_threshold,
                    hash_seed ^ 0x5bd1e995u, StaleJudgement::from(config.detection)),
      hosts_(host_aggregation(config.aggregation), config.detection.tick, host_half_open_threshold,
             hash_seed ^ 0x27d4eb2fu, StaleJudgement::from(config.detection),
             DestinationTable::Scope::kHost) {
  handshakes_.set_judge_ages(destinations_.judgement().ages);
}

bool FlowShard::is_listed_as_protected(const IpAddress& address) const noexcept {
  return std::any_of(protected_.begin(), protected_.end(),
                     [&](const IpPrefix& p) { return p.contains(address); });
}

void FlowShard::on_packet(const PacketView& packet, Decoder& decoder) noexcept {
  ++counters_.packets;
  if (!has_segment(decoder.decode(packet.data, segment_))) {
    on_frame_without_segment(packet.timestamp);
    return;
  }
  segment_.timestamp = packet.timestamp;
  if (evidence_ != nullptr) [[unlikely]] {
    evidence_->offer(packet, segment_, static_cast<std::uint16_t>(dlt_of(decoder.link_type())));
  }
  on_segment(segment_);
}

void FlowShard::on_frame_without_segment(TimestampNs timestamp) noexcept {
  if (started_ && timestamp > newest_) {
    newest_ = timestamp;
    if (newest_ >= due_ || newest_ >= handshakes_.judge_due()) advance_to(newest_);
  }
}

// Defined ahead of its callers so that it inlines into on_packets(): it runs once per packet,
// and a call with the update in memory cost as much as the shard's own part of the work.
inline void FlowShard::on_segment(const TcpSegment& segment,
                                  const HandshakeTable::Prepared& prepared,
                                  FlowUpdate& update) noexcept {
  ++counters_.tcp_segments;
  TimestampNs now = segment.timestamp;
  if (now < newest_) {
    ++counters_.time_regressions;
    now = newest_;
  } else {
    newest_ = now;
  }
  if (now >= due_ || now >= handshakes_.judge_due()) on_due(now);

  const bool accept = !segment.is_syn() || is_protected(segment.destination);
  if (segment.is_syn() && !accept) ++counters_.unprotected_syns;
  handshakes_.process(segment, prepared, accept, update);
  if (update.event == FlowEvent::kNone && !update.evicted) return;
  const Destination* port = destinations_.on_flow(update, now);
  // While the port is flooded, a host incident is ruled out (its flood is the port's), so the
  // host's sketches can go without these sources: half the sketch work of a flood.
  hosts_.on_flow(update, now, port == nullptr || port->above_threshold_since == 0);
  hear_crossings(now);
}

void FlowShard::hear_crossings(TimestampNs at) noexcept {
  const std::uint64_t crossings = destinations_.crossings() + hosts_.crossings();
  if (crossings != crossings_heard_) {
    crossings_heard_ = crossings;
    if (observer_ != nullptr) observer_->on_threshold_crossed(at);
  }
}

void FlowShard::run_judgement(TimestampNs at) noexcept {
  handshakes_.judge(
      at, [&](const Endpoint& server) noexcept { return destinations_.judge_rung(server, at); },
      [&](const Endpoint& server, const IpAddress& client, HandshakeState) noexcept {
        const Destination* port = destinations_.on_stale(server, client, at);
        hosts_.on_stale(server, client, at, port == nullptr || port->above_threshold_since == 0);
      });
  hear_crossings(at);
}

void FlowShard::on_packets(std::span<const PacketView> packets, Decoder& decoder) noexcept {
  // Frame i + kAhead is decoded and its handshake table slot prefetched while frame i is
  // applied: a steady number of cache misses in flight, each given the time of kAhead frames to
  // arrive. 16 hide most of a memory latency and stay on the stack (about 2 KiB).
  constexpr std::size_t kAhead = 16;
  // One ring of everything staged per frame: one address computation per frame, not three.
  struct Staged {
    TcpSegment segment;
    HandshakeTable::Prepared prepared;
    bool decoded = false;
  };
  std::array<Staged, kAhead> ring;
  FlowUpdate update;
  const std::size_t count = packets.size();
  const auto stage = [&](std::size_t i) noexcept {
    Staged& staged = ring[i % kAhead];
    staged.decoded = has_segment(decoder.decode(packets[i].data, staged.segment));
    if (staged.decoded) handshakes_.prepare(staged.segment, staged.prepared);
  };
  for (std::size_t i = 0; i < std::min(kAhead, count); ++i) stage(i);
  for (std::size_t i = 0; i < count; ++i) {
    Staged& staged = ring[i % kAhead];
    ++counters_.packets;
    if (staged.decoded) {
      staged.segment.timestamp = packets[i].timestamp;
      if (evidence_ != nullptr) [[unlikely]] {
        evidence_->offer(packets[i], staged.segment,
                         static_cast<std::uint16_t>(dlt_of(decoder.link_type())));
      }
      on_segment(staged.segment, staged.prepared, update);
    } else {
      on_frame_without_segment(packets[i].timestamp);
    }
    if (i + kAhead < count) stage(i + kAhead);
  }
}

void FlowShard::on_segment(const TcpSegment& segment) noexcept {
  HandshakeTable::Prepared prepared;
  handshakes_.prepare(segment, prepared);
  FlowUpdate update;
  on_segment(segment, prepared, update);
}

void FlowShard::on_due(TimestampNs now) noexcept {
  if (!started_) {
    started_ = true;
    next_tick_ = (tick_of(now, tick_) + 1) * tick_;
    // A wake-up asked for before packet time began happens when it begins.
    if (wake_at_ != INT64_MAX) wake_at_ = std::max(wake_at_, now);
  }
  advance_to(now);
}

void FlowShard::wake_at(TimestampNs at) noexcept {
  wake_at_ = std::min(wake_at_, at);
  if (started_) due_ = std::min(next_tick_, wake_at_);
}

void FlowShard::advance_to(TimestampNs now) noexcept {
  if (!started_) return;
  // Judgements, wake-ups and ticks in the order of their times, judgements first at equal
  // times: across a gap in packet time a handshake is judged stale (and its incident raised)
  // before the tick that would expire it.
  for (;;) {
    const TimestampNs judge_at = handshakes_.judge_due();
    const TimestampNs next = std::min({judge_at, wake_at_, next_tick_});
    if (next > now) break;
    if (judge_at == next) {
      run_judgement(judge_at);
    } else if (wake_at_ == next) {
      wake_at_ = INT64_MAX;
      if (observer_ != nullptr) observer_->on_wake(next);
    } else {
      run_tick(next_tick_);
      next_tick_ += tick_;
      // Nothing to hold or end: jump over quiet stretches instead of ticking through them.
      // A judgement due within the stretch may raise an incident: tick through it instead.
      const bool quiet = destinations_.above_threshold() == 0 && hosts_.above_threshold() == 0 &&
                         handshakes_.judge_due() > now &&
                         (observer_ == nullptr || observer_->may_skip_ticks());
      if (quiet && next_tick_ + tick_ <= now) next_tick_ = tick_of(now, tick_) * tick_;
    }
  }
  due_ = std::min(next_tick_, wake_at_);
}

void FlowShard::run_tick(TimestampNs at) noexcept {
  ++counters_.ticks;
  handshakes_.expire(
      at, [&](const Endpoint& server, const IpAddress& client, HandshakeState state, bool stale) {
        destinations_.on_expired(server, client, state, stale, at);
        hosts_.on_expired(server, client, state, stale, at);
      });
  destinations_.forget_idle(at);
  hosts_.forget_idle(at);
  if (observer_ != nullptr) observer_->on_tick(at);
}

void FlowShard::reconfigure(const Config& config, std::size_t half_open_threshold,
                            std::size_t host_half_open_threshold) noexcept {
  protected_ = config.protected_prefixes;
  handshakes_.set_pending_timeout(config.flow.pending_timeout);
  destinations_.set_half_open_threshold(half_open_threshold, newest_packet_time());
  hosts_.set_half_open_threshold(host_half_open_threshold, newest_packet_time());
}

}  // namespace synwatch
