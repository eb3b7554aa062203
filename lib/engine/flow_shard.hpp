#pragma once
// The flow state of one stream of frames: decode -> handshake table -> per-destination
// aggregation, with handshake expiry run on ticks of the stream's own packet time. A shard decides
// nothing: an Engine runs the detector over one shard; a ShardedEngine merges several, one per
// capture worker.
//
// Time: packet timestamps only. A frame older than the newest seen is applied at the newest time
// (reordering between interfaces) and counted. advance_to() moves time on without packets.
// Thread safety: none. One thread feeds a shard; anyone else may touch it only while that thread
// is not feeding it (the live pipeline pauses its workers for that).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "aggregate/destination_table.hpp"
#include "capture/packet_source.hpp"
#include "config/config.hpp"
#include "decode/decoder.hpp"
#include "engine/evidence_tap.hpp"
#include "flow/handshake_table.hpp"

namespace synwatch {

struct EngineStats {
  std::uint64_t packets = 0;
  std::uint64_t tcp_segments = 0;
  std::uint64_t unprotected_syns = 0;  // SYNs to destinations outside `protected`
  std::uint64_t ticks = 0;
  std::uint64_t early_evaluations = 0;
  std::uint64_t time_regressions = 0;  // packets older than the newest seen (reordering)
  std::uint64_t evaluation_failures = 0;
};

// How long an offline capture's packet time may run on after its last packet, so that every open
// incident can end: expiry, window, cooldown and hold, plus two ticks.
DurationNs drain_limit(const Config& config) noexcept;

// Aligned to a cache line so that two workers' shards, allocated side by side, never share one.
class alignas(64) FlowShard {
 public:
  // What the owner hears, on the feeding thread, as packet time passes.
  class Observer {
   public:
    virtual ~Observer() = default;
    // The shard has expired handshakes and forgotten idle destinations at tick boundary `at`.
    virtual void on_tick(TimestampNs at) noexcept = 0;
    // Packet time reached the time set with wake_at(); called before the frame at `now` applies.
    virtual void on_wake(TimestampNs now) noexcept = 0;
    // A destination's half-open count rose to the shard's threshold at `at` (packet time).
    virtual void on_threshold_crossed(TimestampNs at) noexcept = 0;
    // Whether ticks may be jumped over through a quiet stretch: nothing is held or open.
    [[nodiscard]] virtual bool may_skip_ticks() const noexcept = 0;
  };

  // `flow_capacity` and the thresholds are this shard's share; the rest comes from config.
  FlowShard(const Config& config, std::size_t flow_capacity, std::size_t half_open_threshold,
            std::size_t host_half_open_threshold, std::uint64_t hash_seed);

  void set_observer(Observer* observer) noexcept { observer_ = observer; }
  // The tap SYNs are offered to; nullptr (the default) while it watches nothing, so that the
  // packet path pays one predictable branch without open incidents.
  void set_evidence_tap(EvidenceTap* tap) noexcept { evidence_ = tap; }

  void on_packet(const PacketView& packet, Decoder& decoder) noexcept;
  // A batch of frames, with the same result as on_packet() on each in turn, only faster: each
  // frame is decoded and its handshake table slot prefetched some frames before it is applied,
  // so that the cache misses of a flood of new 4-tuples overlap instead of following one another.
  void on_packets(std::span<const PacketView> packets, Decoder& decoder) noexcept;
  void on_segment(const TcpSegment& segment) noexcept;

  // Runs every tick boundary up to `now`, then the wake-up if it is due.
  void advance_to(TimestampNs now) noexcept;
  // Asks for Observer::on_wake once packet time reaches `at` (the earliest request wins).
  void wake_at(TimestampNs at) noexcept;

  // Reload: thresholds, timeouts, judgement and protected prefixes; sizes stay.
  void reconfigure(const Config& config, std::size_t half_open_threshold,
                   std::size_t host_half_open_threshold) noexcept;
  // Makes both tables' stale levels exact as of `now` (before an evaluation).
  void settle(TimestampNs now) noexcept {
    destinations_.settle(now);
    hosts_.settle(now);
  }
  void set_protected(std::vector<IpPrefix> prefixes) { protected_ = std::move(prefixes); }
  [[nodiscard]] const std::vector<IpPrefix>& protected_prefixes() const noexcept {
    return protected_;
  }

  [[nodiscard]] const EngineStats& counters() const noexcept { return counters_; }
  EngineStats& counters() noexcept { return counters_; }
  [[nodiscard]] const HandshakeTable& handshakes() const noexcept { return handshakes_; }
  // Preallocated bytes of its tables (handshakes, destinations, hosts): all it ever holds.
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return handshakes_.memory_bytes() + destinations_.memory_bytes() + hosts_.memory_bytes();
  }
  [[nodiscard]] const DestinationTable& destinations() const noexcept { return destinations_; }
  DestinationTable& destinations() noexcept { return destinations_; }
  // Per address across all its ports (target port 0): SYNs to random ports.
  [[nodiscard]] const DestinationTable& hosts() const noexcept { return hosts_; }
  DestinationTable& hosts() noexcept { return hosts_; }
  // Whether some handshake still waits for its judgement (an offline drain runs until none does).
  [[nodiscard]] bool judgements_pending() const noexcept {
    return handshakes_.judge_due() != INT64_MAX;
  }
  // 0 until the first segment.
  [[nodiscard]] TimestampNs newest_packet_time() const noexcept { return started_ ? newest_ : 0; }
  [[nodiscard]] bool has_seen_packets() const noexcept { return started_; }
  [[nodiscard]] TimestampNs next_tick() const noexcept { return next_tick_; }

 private:
  // `update` is scratch space the caller keeps (see HandshakeTable::process).
  [[gnu::always_inline]] void on_segment(const TcpSegment& segment,
                                         const HandshakeTable::Prepared& prepared,
                                         FlowUpdate& update) noexcept;
  // Asked for every SYN; no list (the default) protects every destination.
  [[nodiscard]] bool is_protected(const IpAddress& address) const noexcept {
    return protected_.empty() || is_listed_as_protected(address);
  }
  [[nodiscard]] bool is_listed_as_protected(const IpAddress& address) const noexcept;
  // A frame without a TCP segment still moves packet time on, so ticks keep their pace.
  void on_frame_without_segment(TimestampNs timestamp) noexcept;
  void run_tick(TimestampNs at) noexcept;
  // Judges the handshakes due at `at` (HandshakeTable::judge) into both tables.
  void run_judgement(TimestampNs at) noexcept;
  void hear_crossings(TimestampNs at) noexcept;
  // Starts the clock on the first segment, then advance_to(now).
  [[gnu::noinline]] void on_due(TimestampNs now) noexcept;

  DurationNs tick_;
  std::vector<IpPrefix> protected_;
  HandshakeTable handshakes_;
  DestinationTable destinations_;
  DestinationTable hosts_;
  Observer* observer_ = nullptr;
  EvidenceTap* evidence_ = nullptr;
  EngineStats counters_;
  TcpSegment segment_;
  bool started_ = false;
  TimestampNs newest_ = INT64_MIN;  // INT64_MIN until the first segment: never a regression
  TimestampNs next_tick_ = 0;
  TimestampNs wake_at_ = INT64_MAX;
  // What each segment compares its time with: min(next_tick_, wake_at_) once started, and
  // INT64_MIN before, so that the first segment starts the clock. One test instead of three.
  TimestampNs due_ = INT64_MIN;
  // DestinationTable::crossings() of both tables, summed, as last passed on.
  std::uint64_t crossings_heard_ = 0;
};

}  // namespace synwatch
