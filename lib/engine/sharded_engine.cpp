#include "engine/sharded_engine.hpp"

#include <algorithm>

#include "config/schema.hpp"
#include "flow/flow_key.hpp"

namespace synwatch {

namespace {

std::vector<std::unique_ptr<FlowShard>> make_shards(const Config& config, std::size_t count,
                                                    std::size_t capacity, std::size_t threshold,
                                                    std::size_t host_threshold,
                                                    std::uint64_t hash_seed) {
  std::vector<std::unique_ptr<FlowShard>> shards;
  shards.reserve(std::max<std::size_t>(1, count));
  for (std::size_t i = 0; i < std::max<std::size_t>(1, count); ++i) {
    // One seed for all: HyperLogLog sketches of different shards must hash alike to unite.
    shards.push_back(
        std::make_unique<FlowShard>(config, capacity, threshold, host_threshold, hash_seed));
  }
  return shards;
}

std::vector<DestinationTable*> tables_of(const std::vector<std::unique_ptr<FlowShard>>& shards,
                                         bool hosts) {
  std::vector<DestinationTable*> tables;
  tables.reserve(shards.size());
  for (const auto& shard : shards) {
    tables.push_back(hosts ? &shard->hosts() : &shard->destinations());
  }
  return tables;
}

}  // namespace

ShardedEngine::ShardedEngine(const Config& config, std::size_t shards, EventSink& sink,
                             std::uint64_t hash_seed)
    : running_(config),
      sink_(sink),
      shards_(make_shards(
          config, shards, share(config.flow.capacity, std::max<std::size_t>(1, shards)),
          share(config.detection.half_open, std::max<std::size_t>(1, shards)),
          share(config.detection.host_half_open, std::max<std::size_t>(1, shards)), hash_seed)),
      merged_(tables_of(shards_, false), config.detection.half_open),
      merged_hosts_(tables_of(shards_, true), config.detection.host_half_open),
      detector_(config.detection, config.aggregation.top_sources),
      drain_limit_(drain_limit(config)) {}

bool ShardedEngine::has_seen_packets() const noexcept {
  return std::any_of(shards_.begin(), shards_.end(),
                     [](const auto& s) { return s->has_seen_packets(); });
}

TimestampNs ShardedEngine::newest_packet_time() const noexcept {
  TimestampNs newest = INT64_MIN;
  for (const auto& s : shards_) {
    if (s->has_seen_packets()) newest = std::max(newest, s->newest_packet_time());
  }
  return newest == INT64_MIN ? 0 : newest;
}

void ShardedEngine::advance_to(TimestampNs now) noexcept {
  if (!started_) {
    if (!has_seen_packets()) return;
    started_ = true;
    next_tick_ = (tick_of(now, running_.detection.tick) + 1) * running_.detection.tick;
  }
  // Every tick boundary passed since the last call is evaluated at its own time, as Engine does,
  // so a cooldown or `for` ends on the tick it would end on with one worker.
  while (next_tick_ <= now) {
    const TimestampNs at = next_tick_;
    ++own_.ticks;
    if (early_deadline_ <= at) early_deadline_ = INT64_MAX;
    if (!refresh(at)) return;
    evaluate(at);
    next_tick_ += running_.detection.tick;
    // Nothing to hold or end: jump over quiet stretches instead of ticking through them.
    if (detector_.open_incidents() == 0 && merged_.above_threshold() == 0 &&
        merged_hosts_.above_threshold() == 0 && !judgement_due_by(now) &&
        next_tick_ + running_.detection.tick <= now) {
      next_tick_ = tick_of(now, running_.detection.tick) * running_.detection.tick;
    }
  }
  if (!refresh(now)) return;
  if (early_deadline_ <= now) {
    early_deadline_ = INT64_MAX;
    ++own_.early_evaluations;
    evaluate(now);
  }
}

bool ShardedEngine::judgement_due_by(TimestampNs at) const noexcept {
  return std::any_of(shards_.begin(), shards_.end(),
                     [&](const auto& s) { return s->handshakes().judge_due() <= at; });
}

bool ShardedEngine::refresh(TimestampNs at) noexcept {
  for (auto& s : shards_) {
    s->advance_to(at);
    s->settle(at);
  }
  try {
    if (merged_.refresh(at) + merged_hosts_.refresh(at) > 0) {
      early_deadline_ = std::min(early_deadline_, at + running_.detection.hold_for);
    }
    return true;
  } catch (...) {
    ++own_.evaluation_failures;  // out of memory for a merged record: try again next call
    return false;
  }
}

void ShardedEngine::evaluate(TimestampNs at) noexcept {
  try {
    detector_.evaluate(at, merged_, sink_, &merged_hosts_);
  } catch (...) {
    // Out of memory or a failing sink must not take capture down; it is counted and exported.
    ++own_.evaluation_failures;
  }
}

void ShardedEngine::finish() noexcept {
  if (!started_) return;
  const TimestampNs limit = newest_packet_time() + drain_limit_;
  while ((detector_.open_incidents() > 0 || merged_.above_threshold() > 0 ||
          merged_hosts_.above_threshold() > 0 || judgement_due_by(INT64_MAX - 1)) &&
         next_tick_ <= limit) {
    advance_to(next_tick_);
  }
}

std::size_t ShardedEngine::table_bytes() const noexcept {
  std::size_t bytes = 0;
  for (const auto& shard : shards_) bytes += shard->memory_bytes();
  return bytes;
}

std::size_t ShardedEngine::max_merged_bytes() const noexcept {
  std::size_t tracked = 0;
  for (const auto& shard : shards_) {
    tracked += shard->destinations().capacity() + shard->hosts().capacity();
  }
  // A baseline per tracked destination: an unordered_map node of about 64 bytes and a bucket.
  constexpr std::size_t kBaseline = 64 + sizeof(void*);
  return merged_.max_memory_bytes() + merged_hosts_.max_memory_bytes() + tracked * kBaseline;
}

void ShardedEngine::resume_incidents(std::span<const ResumedIncident> incidents, TimestampNs now) {
  for (const auto& incident : incidents) detector_.resume(incident, now);
}

void ShardedEngine::end_incidents(TimestampNs now, std::string_view why) {
  detector_.end_all(now, why, sink_);
}

void ShardedEngine::reconfigure(const Config& config) {
  running_ = applied_on_reload(running_, config);
  for (auto& s : shards_) {
    s->reconfigure(running_, share(running_.detection.half_open, shards_.size()),
                   share(running_.detection.host_half_open, shards_.size()));
  }
  merged_.set_half_open_threshold(running_.detection.half_open, newest_packet_time());
  merged_hosts_.set_half_open_threshold(running_.detection.host_half_open, newest_packet_time());
  detector_.reconfigure(running_.detection, running_.aggregation.top_sources);
  drain_limit_ = drain_limit(running_);
}

std::size_t ShardedEngine::shard_of(const TcpSegment& segment, std::size_t shards) noexcept {
  // A seed of its own: with the tables' seed, the keys of one shard would share the low hash bits
  // their table takes its index tags from.
  static constexpr FlowKeyHash kFanoutHash(0x66616e6f7574ULL);
  FlowKey key{};
  make_flow_key(segment, key);
  return kFanoutHash(key) % std::max<std::size_t>(1, shards);
}

void ShardedEngine::set_protected(const std::vector<IpPrefix>& prefixes) {
  for (auto& s : shards_) s->set_protected(prefixes);
}

EngineStats ShardedEngine::counters() const noexcept {
  EngineStats sum;
  for (const auto& s : shards_) {
    sum.packets += s->counters().packets;
    sum.tcp_segments += s->counters().tcp_segments;
    sum.unprotected_syns += s->counters().unprotected_syns;
    sum.time_regressions += s->counters().time_regressions;
  }
  sum.ticks = own_.ticks;
  sum.early_evaluations = own_.early_evaluations;
  sum.evaluation_failures = own_.evaluation_failures;
  return sum;
}

HandshakeTableStats ShardedEngine::handshake_counters() const noexcept {
  HandshakeTableStats sum;
  for (const auto& s : shards_) sum.add(s->handshakes().counters());
  return sum;
}

std::size_t ShardedEngine::handshake_entries() const noexcept {
  std::size_t n = 0;
  for (const auto& s : shards_) n += s->handshakes().size();
  return n;
}

std::size_t ShardedEngine::handshake_capacity() const noexcept {
  std::size_t n = 0;
  for (const auto& s : shards_) n += s->handshakes().capacity();
  return n;
}

DestinationTableStats ShardedEngine::destination_counters() const noexcept {
  DestinationTableStats sum;
  for (const auto& s : shards_) sum.add(s->destinations().counters());
  return sum;
}

}  // namespace synwatch
