#include "aggregate/merged_destinations.hpp"

#include <algorithm>

namespace synwatch {

MergedDestinations::MergedDestinations(std::vector<DestinationTable*> shards,
                                       std::size_t half_open_threshold)
    : shards_(std::move(shards)), threshold_(half_open_threshold) {}

std::size_t MergedDestinations::max_memory_bytes() const noexcept {
  std::size_t records = 0;
  for (const auto* shard : shards_) records += shard->capacity();
  // An unordered_map node holds the value and a next pointer (and the cached hash); buckets are
  // one pointer each, about one per element at the default load factor.
  constexpr std::size_t kNode = sizeof(std::pair<const Endpoint, Record>) + 2 * sizeof(void*);
  return records * (kNode + sizeof(void*));
}

std::size_t MergedDestinations::refresh(TimestampNs now) {
  for (auto& [target, record] : merged_) record.present = false;
  for (DestinationTable* shard : shards_) {
    shard->for_each([&](const Destination& part) {
      Record& record = merged_[part.target];
      Destination& m = record.merged;
      if (!record.present) {
        record.present = true;
        m.target = part.target;
        m.syn_seen = m.syn_recv = m.stateless = m.stale_level = 0;
        m.totals = {};
        m.first_seen = part.first_seen;
        m.last_activity = part.last_activity;
      }
      m.syn_seen += part.syn_seen;
      m.syn_recv += part.syn_recv;
      m.stateless += part.stateless;
      m.stale_level += part.stale_level;
      m.totals.add(part.totals);
      m.first_seen = std::min(m.first_seen, part.first_seen);
      m.last_activity = std::max(m.last_activity, part.last_activity);
    });
  }
  std::size_t crossed = 0;
  above_threshold_ = 0;
  for (auto it = merged_.begin(); it != merged_.end();) {
    Record& record = it->second;
    Destination& m = record.merged;
    if (!record.present) {
      // Every shard forgot it: so does the merge (an open incident on it ends, for want of it).
      it = merged_.erase(it);
      continue;
    }
    if (m.flood_level() >= threshold_) {
      ++above_threshold_;
      if (m.above_threshold_since == 0) {
        m.above_threshold_since = now == 0 ? 1 : now;
        ++crossed;
      }
    } else {
      m.above_threshold_since = 0;
    }
    ++it;
  }
  return crossed;
}

void MergedDestinations::set_half_open_threshold(std::size_t threshold, TimestampNs now) noexcept {
  threshold_ = threshold;
  above_threshold_ = 0;
  for (auto& [target, record] : merged_) {
    Destination& m = record.merged;
    if (m.flood_level() >= threshold_) {
      ++above_threshold_;
      if (m.above_threshold_since == 0) m.above_threshold_since = now == 0 ? 1 : now;
    } else {
      m.above_threshold_since = 0;
    }
  }
}

void MergedDestinations::visit_all(const std::function<void(const Destination&)>& visit) const {
  for (const auto& [target, record] : merged_) visit(record.merged);
}

const Destination* MergedDestinations::find(const Endpoint& target) const noexcept {
  const auto it = merged_.find(target);
  return it == merged_.end() ? nullptr : &it->second.merged;
}

DestinationStats MergedDestinations::stats(const Destination& destination, TimestampNs now,
                                           std::size_t top_sources) const {
  WindowAccumulator gathered;
  for (const DestinationTable* shard : shards_) {
    if (const Destination* part = shard->find(destination.target)) {
      shard->gather(*part, now, gathered);
    }
  }
  if (gathered.first_seen == INT64_MAX) gathered.first_seen = destination.first_seen;
  const DestinationTable& any = *shards_.front();
  return summarize_window(destination.target, destination.syn_seen, destination.syn_recv,
                          destination.half_open(), gathered, now, any.tick(), any.window_slots(),
                          top_sources);
}

}  // namespace synwatch
