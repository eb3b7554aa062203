#include "engine/engine.hpp"

namespace synwatch {

Engine::Engine(const Config& config, LinkType link, EventSink& sink, std::uint64_t hash_seed)
    : detection_(config.detection),
      aggregation_(config.aggregation),
      flow_capacity_(config.flow.capacity),
      sink_(sink),
      decoder_(link),
      shard_(config, config.flow.capacity, config.detection.half_open, hash_seed),
      detector_(config.detection, config.aggregation.top_sources),
      drain_limit_(config.flow.pending_timeout + config.aggregation.window +
                   config.detection.cooldown + config.detection.hold_for +
                   2 * config.detection.tick) {
  shard_.set_observer(this);
}

void Engine::on_packet(const PacketView& packet) noexcept {
  shard_.on_packet(packet, decoder_);
}

void Engine::on_packet(const PacketView& packet, Decoder& decoder) noexcept {
  shard_.on_packet(packet, decoder);
}

void Engine::on_threshold_crossed(TimestampNs at) noexcept {
  shard_.wake_at(at + detection_.hold_for);
}

void Engine::on_wake(TimestampNs now) noexcept {
  ++shard_.counters().early_evaluations;
  evaluate(now);
}

void Engine::evaluate(TimestampNs at) noexcept {
  try {
    detector_.evaluate(at, shard_.destinations(), sink_);
  } catch (...) {
    // Out of memory or a failing sink must not take capture down; it is counted and exported.
    ++shard_.counters().evaluation_failures;
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
  shard_.reconfigure(config, detection_.half_open);
  detector_.reconfigure(detection_, aggregation_.top_sources);
  drain_limit_ = config.flow.pending_timeout + aggregation_.window + detection_.cooldown +
                 detection_.hold_for + 2 * detection_.tick;
  return kept;
}

void Engine::finish() noexcept {
  if (!shard_.has_seen_packets()) return;
  const TimestampNs limit = shard_.newest_packet_time() + drain_limit_;
  while ((detector_.open_incidents() > 0 || shard_.destinations().above_threshold() > 0) &&
         shard_.next_tick() <= limit) {
    shard_.advance_to(shard_.next_tick());
  }
}

}  // namespace synwatch
