#pragma once
// Detection over several FlowShards, one per capture worker. Each worker feeds its own shard (its
// own handshake table and per-destination windows: nothing shared, no cache line written by two
// cores); the coordinator brings the shards' time up, merges their per-destination figures
// (MergedDestinations) and runs one detector on the merged view.
//
// Evaluations happen inside advance_to(): at every tick boundary passed since the last call, and
// at the first call `for` after the merged half-open count was seen at the threshold. The merged
// count is only seen at calls, so detection latency is `for` plus at most the interval between
// calls (the live pipeline calls it every 100 ms or less); Engine, with one shard, is exact to the
// packet instead.
// Memory: flow.capacity is split evenly between the shards, so the handshake memory bound does
// not depend on the number of workers; each shard has its own aggregation.max_destinations pool.
// Thread safety: none. Workers feed shard(i) from their threads; everything else here, and any
// other access to the shards, runs while no worker is feeding (the live pipeline pauses them).

#include <cstdint>
#include <memory>
#include <string>
#include <span>
#include <string_view>
#include <vector>

#include "aggregate/merged_destinations.hpp"
#include "config/config.hpp"
#include "detect/detector.hpp"
#include "engine/flow_shard.hpp"

namespace synwatch {

class ShardedEngine {
 public:
  ShardedEngine(const Config& config, std::size_t shards, EventSink& sink,
                std::uint64_t hash_seed = 0);

  [[nodiscard]] std::size_t shard_count() const noexcept { return shards_.size(); }
  // The shard a segment belongs to when something other than the kernel spreads the packets
  // (tests, benchmarks): a hash of its FlowKey, so both directions of a connection go to one
  // shard, as the kernel's PACKET_FANOUT_HASH sends them to one socket.
  [[nodiscard]] static std::size_t shard_of(const TcpSegment& segment, std::size_t shards) noexcept;
  FlowShard& shard(std::size_t index) noexcept { return *shards_[index]; }
  [[nodiscard]] const FlowShard& shard(std::size_t index) const noexcept { return *shards_[index]; }

  // Brings every shard to `now` (expiring handshakes), merges, and evaluates when due.
  void advance_to(TimestampNs now) noexcept;
  // End of an offline capture: lets time run on until every open incident has ended.
  void finish() noexcept;

  // Incidents a previous run left open, carried on under their ids (Detector::resume).
  void resume_incidents(std::span<const ResumedIncident> incidents, TimestampNs now);
  // Ends every open incident, saying `why` (Detector::end_all); published to the engine's sink.
  void end_incidents(TimestampNs now, std::string_view why);

  // As Engine::reconfigure.
  void reconfigure(const Config& config);
  void set_protected(const std::vector<IpPrefix>& prefixes);
  [[nodiscard]] const std::vector<IpPrefix>& protected_prefixes() const noexcept {
    return shards_.front()->protected_prefixes();
  }

  // The shards' preallocated tables, and the most the merged views and the detector's baselines
  // can grow to (they hold at most one record per destination some shard tracks).
  [[nodiscard]] std::size_t table_bytes() const noexcept;
  [[nodiscard]] std::size_t max_merged_bytes() const noexcept;

  // Sums over the shards; ticks and evaluations are the coordinator's.
  [[nodiscard]] EngineStats counters() const noexcept;
  [[nodiscard]] HandshakeTableStats handshake_counters() const noexcept;
  [[nodiscard]] std::size_t handshake_entries() const noexcept;
  [[nodiscard]] std::size_t handshake_capacity() const noexcept;
  [[nodiscard]] DestinationTableStats destination_counters() const noexcept;
  [[nodiscard]] const MergedDestinations& destinations() const noexcept { return merged_; }
  [[nodiscard]] const MergedDestinations& hosts() const noexcept { return merged_hosts_; }
  [[nodiscard]] const Detector& detector() const noexcept { return detector_; }
  [[nodiscard]] TimestampNs newest_packet_time() const noexcept;
  [[nodiscard]] bool has_seen_packets() const noexcept;

 private:
  static std::size_t share(std::size_t total, std::size_t shards) noexcept {
    return std::max<std::size_t>(1, (total + shards - 1) / shards);
  }
  // Brings the shards to `at` and merges; false if merging failed (counted).
  bool refresh(TimestampNs at) noexcept;
  void evaluate(TimestampNs at) noexcept;
  // Whether some shard has a handshake to judge by `at` (INT64_MAX - 1: at all).
  [[nodiscard]] bool judgement_due_by(TimestampNs at) const noexcept;

  Config running_;  // as built, with reloads applied to what can change
  EventSink& sink_;
  std::vector<std::unique_ptr<FlowShard>> shards_;
  MergedDestinations merged_;
  MergedDestinations merged_hosts_;
  Detector detector_;
  EngineStats own_;  // ticks, early evaluations and failures of the merged detection
  bool started_ = false;
  TimestampNs next_tick_ = 0;
  TimestampNs early_deadline_ = INT64_MAX;
  DurationNs drain_limit_;
};

}  // namespace synwatch
