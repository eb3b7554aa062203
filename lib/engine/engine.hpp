#pragma once
// The detection pipeline for one stream of frames: decode -> handshake table -> per-destination
// aggregation -> detector, driven entirely by packet time.
//
// Ticks: every `detection.tick` of packet time the engine expires stale handshakes and lets the
// detector evaluate. When a destination's half-open count crosses the threshold, one extra
// evaluation is scheduled `for` later, so detection latency does not depend on where the flood
// starts relative to the tick grid.
// Thread safety: none. One thread feeds packets and calls advance_to()/finish().

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "capture/packet_source.hpp"
#include "config/config.hpp"
#include "decode/decoder.hpp"
#include "detect/detector.hpp"
#include "engine/flow_shard.hpp"

namespace synwatch {

class Engine final : public PacketHandler, private FlowShard::Observer {
 public:
  Engine(const Config& config, LinkType link, EventSink& sink, std::uint64_t hash_seed = 0);

  void on_packet(const PacketView& packet) noexcept override;
  // Same, with the caller's decoder: live capture keeps one per interface (link types differ).
  void on_packet(const PacketView& packet, Decoder& decoder) noexcept;
  // A batch of frames, with the same result as on_packet() on each in turn, only faster: all
  // are decoded first and their handshake table slots prefetched, so that the cache misses of
  // a flood of new 4-tuples overlap instead of following one another.
  void on_packets(std::span<const PacketView> packets, Decoder& decoder) noexcept {
    shard_.on_packets(packets, decoder);
  }
  void on_packets(std::span<const PacketView> packets) noexcept override {
    on_packets(packets, decoder_);
  }
  // For callers that already hold a decoded segment (tests, other front ends).
  void on_segment(const TcpSegment& segment) noexcept { shard_.on_segment(segment); }

  // Runs every tick boundary up to `now` (packet time). Live mode calls this from a timer so
  // incidents end even when packets stop entirely.
  void advance_to(TimestampNs now) noexcept { shard_.advance_to(now); }
  // End of an offline capture: lets packet time run on, without packets, until every open
  // incident has ended (bounded by timeout + window + cooldown).
  void finish() noexcept;

  // Applies a reloaded configuration: thresholds, timeouts and protected prefixes take effect at
  // once; the handshake table, per-destination state and open incidents are kept. Keys a reload
  // keeps until restart (ReloadEffect::kAtRestart: sizes, the window, the tick) keep their
  // running values (applied_on_reload; keys_needing_restart names them).
  void reconfigure(const Config& config);
  void set_protected(std::vector<IpPrefix> prefixes) { shard_.set_protected(std::move(prefixes)); }
  [[nodiscard]] const std::vector<IpPrefix>& protected_prefixes() const noexcept {
    return shard_.protected_prefixes();
  }

  [[nodiscard]] const EngineStats& counters() const noexcept { return shard_.counters(); }
  [[nodiscard]] const DecodeStats& decode_counters() const noexcept { return decoder_.counters(); }
  [[nodiscard]] const HandshakeTable& handshakes() const noexcept { return shard_.handshakes(); }
  [[nodiscard]] const DestinationTable& destinations() const noexcept {
    return shard_.destinations();
  }
  [[nodiscard]] const Detector& detector() const noexcept { return detector_; }
  // For what rides along the packet path (EvidenceRecorder::attach).
  FlowShard& shard() noexcept { return shard_; }
  template <typename Visitor>
  void for_each_destination(Visitor&& visit) {
    shard_.destinations().for_each([&](const Destination& d) { visit(d); });
  }
  [[nodiscard]] TimestampNs newest_packet_time() const noexcept {
    return shard_.newest_packet_time();
  }
  [[nodiscard]] bool has_seen_packets() const noexcept { return shard_.has_seen_packets(); }

 private:
  void on_tick(TimestampNs at) noexcept override { evaluate(at); }
  void on_wake(TimestampNs now) noexcept override;
  void on_threshold_crossed(TimestampNs at) noexcept override;
  [[nodiscard]] bool may_skip_ticks() const noexcept override {
    return detector_.open_incidents() == 0;
  }
  void evaluate(TimestampNs at) noexcept;

  Config running_;  // as built, with reloads applied to what can change
  EventSink& sink_;
  Decoder decoder_;
  FlowShard shard_;
  Detector detector_;
  DurationNs drain_limit_;
};

}  // namespace synwatch
