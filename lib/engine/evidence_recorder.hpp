#pragma once
// Evidence captures wired into a pipeline: an EventSink between the detector and the outputs.
// On an incident's first event it has every shard's tap watch the incident's target and tells
// the writer the incident's file; on `ended` it stops watching and closes the file. Every event
// passes on with `evidence_path` set, so outputs can say where the evidence is.
//
// Thread safety: publish() on the thread that evaluates (the taps' feeding threads are parked
// then, or it is that thread itself); counters() likewise; writer() is thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "detect/incident.hpp"
#include "engine/evidence_tap.hpp"
#include "engine/flow_shard.hpp"
#include "export/evidence_writer.hpp"

namespace synwatch {

class EvidenceRecorder final : public EventSink {
 public:
  // Frames a tap's ring holds: about 4 s of a worker's sampled share, or a whole first burst.
  static constexpr std::size_t kRingFrames = 4096;

  // One tap per shard; budgets are divided between them.
  EvidenceRecorder(const EvidenceConfig& config, std::unique_ptr<EvidenceWriter> writer,
                   EventSink& downstream, std::size_t shards, EvidenceTap::WhenFull when_full);
  EvidenceRecorder(const EvidenceRecorder&) = delete;
  EvidenceRecorder& operator=(const EvidenceRecorder&) = delete;
  // Stops the writer first: its thread drains the taps' rings, which go with this object.
  ~EvidenceRecorder() override { writer_->stop(); }

  // The shard fed alongside tap `index`; it is handed the tap while an incident is watched.
  void attach(std::size_t index, FlowShard& shard) { shards_.at(index) = &shard; }

  void publish(const IncidentEvent& event) override;

  [[nodiscard]] EvidenceWriter& writer() noexcept { return *writer_; }
  [[nodiscard]] EvidenceTapStats counters() const noexcept;
  [[nodiscard]] std::size_t memory_bytes() const noexcept;

 private:
  std::unique_ptr<EvidenceWriter> writer_;
  EventSink& downstream_;
  std::vector<std::unique_ptr<EvidenceTap>> taps_;
  std::vector<FlowShard*> shards_;
  std::map<std::string, std::uint32_t, std::less<>> watching_;  // incident id -> watch token
  std::uint32_t next_token_ = 0;
};

}  // namespace synwatch
