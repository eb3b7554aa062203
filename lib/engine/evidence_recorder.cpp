#include "engine/evidence_recorder.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace synwatch {

EvidenceRecorder::EvidenceRecorder(const EvidenceConfig& config,
                                   std::unique_ptr<EvidenceWriter> writer, EventSink& downstream,
                                   std::size_t shards, EvidenceTap::WhenFull when_full)
    : writer_(std::move(writer)), downstream_(downstream), shards_(shards, nullptr) {
  const auto share = [&](std::size_t total) { return (total + shards - 1) / shards; };
  for (std::size_t i = 0; i < shards; ++i) {
    taps_.push_back(std::make_unique<EvidenceTap>(
        share(config.first_packets), share(config.per_second), kRingFrames, when_full));
    writer_->attach(taps_.back()->ring());
  }
}

void EvidenceRecorder::publish(const IncidentEvent& event) {
  IncidentEvent stamped = event;
  stamped.evidence_path = writer_->path_of(event.incident_id).string();
  const auto watched = watching_.find(event.incident_id);
  if (event.type != EventType::kEnded && watched == watching_.end()) {
    const std::uint32_t token = ++next_token_;
    writer_->begin(token, event.incident_id);
    bool refused = false;
    for (std::size_t i = 0; i < taps_.size(); ++i) {
      refused = !taps_[i]->watch(token, event.target, event.host_scope) || refused;
      if (shards_[i] != nullptr && taps_[i]->watching()) {
        shards_[i]->set_evidence_tap(taps_[i].get());
      }
    }
    if (refused) {
      spdlog::warn("evidence: {} incidents are recorded at once already; incident {} has none",
                   EvidenceTap::kMaxWatched, event.incident_id);
    }
    watching_.emplace(event.incident_id, token);
  } else if (event.type == EventType::kEnded && watched != watching_.end()) {
    for (std::size_t i = 0; i < taps_.size(); ++i) {
      taps_[i]->unwatch(watched->second);
      if (shards_[i] != nullptr && !taps_[i]->watching()) shards_[i]->set_evidence_tap(nullptr);
    }
    writer_->end(watched->second);
    watching_.erase(watched);
  }
  downstream_.publish(stamped);
}

EvidenceTapStats EvidenceRecorder::counters() const noexcept {
  EvidenceTapStats sum;
  for (const auto& tap : taps_) {
    sum.copied += tap->counters().copied;
    sum.ring_full += tap->counters().ring_full;
    // Every tap watches the same incidents: one refusal is one per tap.
    sum.watches_refused = std::max(sum.watches_refused, tap->counters().watches_refused);
  }
  return sum;
}

std::size_t EvidenceRecorder::memory_bytes() const noexcept {
  std::size_t bytes = 0;
  for (const auto& tap : taps_) bytes += tap->ring().memory_bytes() + sizeof(EvidenceTap);
  return bytes;
}

}  // namespace synwatch
