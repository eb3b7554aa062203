#include "engine/engine.hpp"

#include "config/schema.hpp"

namespace synwatch {

Engine::Engine(const Config& config, LinkType link, EventSink& sink, std::uint64_t hash_seed)
    : running_(config),
      sink_(sink),
      decoder_(link),
      shard_(config, config.flow.capacity, config.detection.half_open,
             config.detection.host_half_open, hash_seed),
      detector_(config.detection, config.aggregation.top_sources),
      drain_limit_(drain_limit(config)) {
  shard_.set_observer(this);
}

void Engine::on_packet(const PacketView& packet) noexcept {
  shard_.on_packet(packet, decoder_);
}

void Engine::on_packet(const PacketView& packet, Decoder& decoder) noexcept {
  shard_.on_packet(packet, decoder);
}

void Engine::on_threshold_crossed(TimestampNs at) noexcept {
  shard_.wake_at(at + running_.detection.hold_for);
}

void Engine::on_wake(TimestampNs now) noexcept {
  ++shard_.counters().early_evaluations;
  evaluate(now);
}

void Engine::evaluate(TimestampNs at) noexcept {
  try {
    shard_.settle(at);
    detector_.evaluate(at, shard_.destinations(), sink_, &shard_.hosts());
  } catch (...) {
    // Out of memory or a failing sink must not take capture down; it is counted and exported.
    ++shard_.counters().evaluation_failures;
  }
}

void Engine::reconfigure(const Config& config) {
  running_ = applied_on_reload(running_, config);
  shard_.reconfigure(running_, running_.detection.half_open, running_.detection.host_half_open);
  detector_.reconfigure(running_.detection, running_.aggregation.top_sources);
  drain_limit_ = drain_limit(running_);
}

void Engine::finish() noexcept {
  if (!shard_.has_seen_packets()) return;
  const TimestampNs limit = shard_.newest_packet_time() + drain_limit_;
  // Pending handshakes are judged first (a burst at the very end of the file still gets its
  // verdict), then open incidents run to their end.
  while ((detector_.open_incidents() > 0 || shard_.destinations().above_threshold() > 0 ||
          shard_.hosts().above_threshold() > 0 || shard_.judgements_pending()) &&
         shard_.next_tick() <= limit) {
    shard_.advance_to(shard_.next_tick());
  }
}

}  // namespace synwatch
