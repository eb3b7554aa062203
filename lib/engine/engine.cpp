#include "engine/engine.hpp"

#include <algorithm>
#include <array>

namespace synwatch {

Engine::Engine(const Config& config, LinkType link, EventSink& sink, std::uint64_t hash_seed)
    : detection_(config.detection),
      aggregation_(config.aggregation),
      flow_capacity_(config.flow.capacity),
      protected_(config.protected_prefixes),
      sink_(sink),
      decoder_(link),
      handshakes_(config.flow.capacity, config.flow.pending_timeout, hash_seed),
      destinations_(config.aggregation, config.detection.tick, config.detection.half_open,
                    hash_seed ^ 0x5bd1e995u),
      detector_(config.detection, config.aggregation.top_sources),
      drain_limit_(config.flow.pending_timeout + config.aggregation.window +
                   config.detection.cooldown + config.detection.hold_for +
                   2 * config.detection.tick) {}

bool Engine::is_protected(const IpAddress& address) const noexcept {
  if (protected_.empty()) return true;
  return std::any_of(protected_.begin(), protected_.end(),
                     [&](const IpPrefix& p) { return p.contains(address); });
}

void Engine::on_packet(const PacketView& packet) noexcept {
  on_packet(packet, decoder_);
}

void Engine::on_packet(const PacketView& packet, Decoder& decoder) noexcept {
  ++counters_.packets;
  const DecodeResult result = decoder.decode(packet.data, segment_);
  if (result != DecodeResult::kTcp && result != DecodeResult::kBadTcpOptions) {
    on_frame_without_segment(packet.timestamp);
    return;
  }
  segment_.timestamp = packet.timestamp;
  on_segment(segment_);
}

void Engine::on_frame_without_segment(TimestampNs timestamp) noexcept {
  if (started_ && timestamp > newest_) {
    newest_ = timestamp;
    if (newest_ >= std::min(next_tick_, early_deadline_)) advance_to(newest_);
  }
}

void Engine::on_packets(std::span<const PacketView> packets, Decoder& decoder) noexcept {
  // 16 segments in flight hide most of a memory latency behind the work on the others, and
  // stay on the stack (about 1.3 KiB).
  constexpr std::size_t kBatch = 16;
  std::array<TcpSegment, kBatch> segments;
  std::array<bool, kBatch> decoded{};
  while (!packets.empty()) {
    const std::size_t n = std::min(kBatch, packets.size());
    for (std::size_t i = 0; i < n; ++i) {
      decoded[i] = has_segment(decoder.decode(packets[i].data, segments[i]));
      if (decoded[i]) handshakes_.prefetch(segments[i]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      ++counters_.packets;
      if (!decoded[i]) {
        on_frame_without_segment(packets[i].timestamp);
        continue;
      }
      segments[i].timestamp = packets[i].timestamp;
      on_segment(segments[i]);
    }
    packets = packets.subspan(n);
  }
}

void Engine::on_segment(const TcpSegment& segment) noexcept {
  ++counters_.tcp_segments;
  TimestampNs now = segment.timestamp;
  if (!started_) {
    started_ = true;
    newest_ = now;
    next_tick_ = (tick_of(now, detection_.tick) + 1) * detection_.tick;
  }
  if (now < newest_) {
    ++counters_.time_regressions;
    now = newest_;
  } else {
    newest_ = now;
  }
  if (now >= std::min(next_tick_, early_deadline_)) advance_to(now);

  const bool accept = !segment.is_syn() || is_protected(segment.destination);
  if (segment.is_syn() && !accept) ++counters_.unprotected_syns;
  const FlowUpdate update = handshakes_.process(segment, accept);
  if (update.event == FlowEvent::kNone && !update.evicted) return;
  const Destination* d = destinations_.on_flow(update, now);
  if (d != nullptr && d->above_threshold_since == now && !d->pinned) {
    early_deadline_ = std::min(early_deadline_, now + detection_.hold_for);
  }
}

void Engine::advance_to(TimestampNs now) noexcept {
  if (!started_) return;
  while (next_tick_ <= now) {
    run_tick(next_tick_);
    next_tick_ += detection_.tick;
    // Nothing to hold or end: jump over quiet stretches instead of ticking through them.
    if (detector_.open_incidents() == 0 && destinations_.above_threshold() == 0 &&
        next_tick_ + detection_.tick <= now) {
      next_tick_ = tick_of(now, detection_.tick) * detection_.tick;
    }
  }
  if (early_deadline_ <= now) {
    early_deadline_ = INT64_MAX;
    ++counters_.early_evaluations;
    evaluate(now);
  }
}

void Engine::run_tick(TimestampNs at) noexcept {
  ++counters_.ticks;
  handshakes_.expire(at, [&](const Endpoint& server, const IpAddress&, HandshakeState state) {
    destinations_.on_expired(server, state, at);
  });
  destinations_.forget_idle(at);
  evaluate(at);
}

void Engine::evaluate(TimestampNs at) noexcept {
  try {
    detector_.evaluate(at, destinations_, sink_);
  } catch (...) {
    // Out of memory or a failing sink must not take capture down; it is counted and exported.
    ++counters_.evaluation_failures;
  }
}

std::vector<std::string> Engine::reconfigure(const Config& config) {
  std::vector<std::string> kept;
  if (config.flow.capacity != flow_capacity_) kept.emplace_back("flow.capacity");
  if (config.aggregation.max_destinations != aggregation_.max_destinations) {
    kept.emplace_back("aggregation.max_destinations");
  }
  if (config.aggregation.window != aggregation_.window) kept.emplace_back("aggregation.window");
  if (config.aggregation.idle_timeout != aggregation_.idle_timeout)
    kept.emplace_back("aggregation.idle_timeout");
  DetectionConfig detection = config.detection;
  if (detection.tick != detection_.tick) {
    kept.emplace_back("detection.tick");
    detection.tick = detection_.tick;
  }
  detection_ = detection;
  aggregation_.top_sources = config.aggregation.top_sources;
  protected_ = config.protected_prefixes;
  handshakes_.set_pending_timeout(config.flow.pending_timeout);
  destinations_.set_half_open_threshold(detection_.half_open, newest_);
  detector_.reconfigure(detection_, aggregation_.top_sources);
  drain_limit_ = config.flow.pending_timeout + aggregation_.window + detection_.cooldown +
                 detection_.hold_for + 2 * detection_.tick;
  return kept;
}

void Engine::finish() noexcept {
  if (!started_) return;
  const TimestampNs limit = newest_ + drain_limit_;
  while ((detector_.open_incidents() > 0 || destinations_.above_threshold() > 0) &&
         next_tick_ <= limit) {
    advance_to(next_tick_);
  }
}

}  // namespace synwatch
