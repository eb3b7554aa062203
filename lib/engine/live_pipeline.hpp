#pragma once
// Live detection: captures on one or more interfaces into a ShardedEngine, one shard per capture
// worker (capture.workers).
//
// One worker: the pipeline thread polls every interface's ring plus a wake-up eventfd and feeds
// the single shard itself. Several: each worker thread owns one socket per interface, all of an
// interface's sockets joined in one PACKET_FANOUT group hashed by flow, and feeds its own shard;
// the pipeline thread coordinates. Either way the pipeline thread, between batches, advances the
// engine by a monotonic clock anchored on the newest packet (so incidents end even when packets
// stop dead), merges and evaluates, applies reloaded configuration, and reopens interfaces that
// failed or vanished, with backoff.
//
// Workers and the coordinator share no lock on the packet path: the coordinator touches shards,
// sockets and decoders only while every worker is parked (WorkerPool::pause(): a flag the workers
// check between batches, an eventfd to cut their poll short, a condition variable to park on).
// It pauses them every 50 ms while packets flow or an incident is open (every 250 ms when idle),
// and at once when a worker sees a destination rise past its share of the threshold; a pause
// lasts as long as the merge and evaluation (microseconds to a few ms).
//
// The parts it wires together: CaptureSet (the interfaces' sockets, reopening with backoff),
// WorkerPool (the worker threads and their parking), LiveClock (live time from the packets and the
// monotonic clock) and export_destinations (which destinations the snapshot's metrics carry).
//
// Threads: start() launches the pipeline thread (and the workers); request_*(), snapshot() and
// stop() may be called from any other thread. Events reach the EventSink on the pipeline thread:
// the sink must only queue them (see daemon's EventQueue), never block on I/O.

#include <array>
#include <atomic>
#include <chrono>
#include <expected>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>

#include "common/counter_members.hpp"
#include "common/error.hpp"
#include "common/wake_fd.hpp"
#include "common/thread_annotations.hpp"
#include "capture/live_source.hpp"
#include "config/config.hpp"
#include "engine/capture_set.hpp"
#include "engine/evidence_recorder.hpp"
#include "engine/kernel_view.hpp"
#include "engine/live_clock.hpp"
#include "engine/sharded_engine.hpp"
#include "engine/worker_pool.hpp"
#include "export/destination_ranking.hpp"

namespace synwatch {

// What the live daemon's memory is bounded by, part by part (all but `fixed` computed from the
// configuration as built; `fixed` is an allowance for the rest, checked by a live test).
struct MemoryBound {
  std::size_t capture_rings = 0;  // capture.buffer_size per interface and capture worker
  std::size_t tables = 0;         // every worker's handshake and destination tables, preallocated
  std::size_t merged = 0;         // the merged views and baselines at their largest
  std::size_t kernel = 0;         // the kernel view's tables
  std::size_t evidence = 0;       // the evidence taps' rings
  // Code and libraries, thread stacks, the heap of events, outputs and metrics: allowance.
  std::size_t fixed = std::size_t{48} << 20;

  [[nodiscard]] std::size_t total() const noexcept;
};

// The /metrics family of the parts; total() sums the same list, so the page adds up to it.
inline constexpr LabelledFigures<MemoryBound, std::size_t, 6> kMemoryBoundParts{
    .metric = "synwatch_memory_bound_bytes",
    .help =
        "What the daemon's memory is bounded by, by part (see README, Memory); "
        "compare the sum with process_resident_memory_bytes.",
    .kind = FigureKind::kGauge,
    .label = "part",
    .members = {{{&MemoryBound::capture_rings, "capture_rings"},
                 {&MemoryBound::tables, "tables"},
                 {&MemoryBound::merged, "merged"},
                 {&MemoryBound::kernel, "kernel"},
                 {&MemoryBound::evidence, "evidence"},
                 {&MemoryBound::fixed, "fixed"}}}};
static_assert(every_member_listed(kMemoryBoundParts.members),
              "a MemoryBound member is missing from kMemoryBoundParts");

inline std::size_t MemoryBound::total() const noexcept {
  std::size_t sum = 0;
  for (const auto& part : kMemoryBoundParts.members) sum += this->*part.member;
  return sum;
}

// What became of the sampled SYNs of open incidents, gathered in one struct because two parts
// count them: a tap the frames its ring had no room for, the writer all the rest. A new outcome
// counted by either must be added here and in EvidenceSnapshot::outcomes(): the size check below
// covers this struct, not theirs.
struct EvidenceOutcomeStats {
  std::uint64_t written = 0;
  std::uint64_t ring_full = 0;
  std::uint64_t incident_cap = 0;
  std::uint64_t total_cap = 0;
  std::uint64_t link_mismatch = 0;
  std::uint64_t write_error = 0;
};

inline constexpr LabelledFigures<EvidenceOutcomeStats, std::uint64_t, 6> kEvidenceOutcomes{
    .metric = "synwatch_evidence_packets_total",
    .help =
        "Sampled SYNs of open incidents by what became of them: written to the "
        "incident's evidence capture, or dropped because the ring was full "
        "(ring_full), the incident's file or all files were at their cap "
        "(incident_cap, total_cap), of another link type than the file's "
        "(link_mismatch) or not writable (write_error).",
    .kind = FigureKind::kCounter,
    .label = "outcome",
    .members = {{{&EvidenceOutcomeStats::written, "written"},
                 {&EvidenceOutcomeStats::ring_full, "ring_full"},
                 {&EvidenceOutcomeStats::incident_cap, "incident_cap"},
                 {&EvidenceOutcomeStats::total_cap, "total_cap"},
                 {&EvidenceOutcomeStats::link_mismatch, "link_mismatch"},
                 {&EvidenceOutcomeStats::write_error, "write_error"}}}};
static_assert(every_member_listed(kEvidenceOutcomes.members),
              "an EvidenceOutcomeStats member is missing from kEvidenceOutcomes");

// Evidence captures (engine/evidence_recorder.hpp); enabled = false when they are off.
struct EvidenceSnapshot {
  bool enabled = false;
  EvidenceTapStats taps;
  EvidenceStats writer;

  [[nodiscard]] EvidenceOutcomeStats outcomes() const noexcept {
    return {.written = writer.frames_written,
            .ring_full = taps.ring_full,
            .incident_cap = writer.dropped_incident_cap,
            .total_cap = writer.dropped_total_cap,
            .link_mismatch = writer.dropped_link_mismatch,
            .write_error = writer.dropped_write_error};
  }
};

// A consistent copy of the pipeline's figures, refreshed by the capture thread every 250 ms.
struct PipelineSnapshot {
  std::vector<InterfaceHealth> interfaces;
  // Frames each capture worker handed to its shard (one entry per worker).
  std::vector<std::uint64_t> worker_packets;
  EngineStats engine;
  DecodeStats decode;
  HandshakeTableStats handshakes;
  std::size_t handshake_entries = 0;
  std::size_t handshake_capacity = 0;
  std::size_t destinations = 0;
  DestinationTableStats destination_counters;
  std::size_t open_incidents = 0;
  std::array<std::uint64_t, kAttackKindCount> incidents_started{};  // by AttackKind
  // At most metrics.max_destinations: open incidents first, then by half-open count.
  std::vector<ExportedDestinationStats> destinations_exported;
  std::size_t destinations_unexported = 0;
  std::chrono::nanoseconds lag{0};  // wall clock minus newest packet time at the last batch
  // When the capture thread took this snapshot: the daemon feeds systemd's watchdog only while
  // this keeps advancing, so a stuck capture loop gets the service restarted.
  std::chrono::steady_clock::time_point refreshed_at{};
  std::vector<std::string> protected_prefixes;
  KernelViewSnapshot kernel;  // enabled = false when kernel.enabled is off or it failed to open
  EvidenceSnapshot evidence;
  MemoryBound memory_bound;
};

// The fields the workers read on every batch sit on cache lines of their own (alignas), which
// costs padding by design.
class LivePipeline {  // NOLINT(clang-analyzer-optin.performance.Padding)
 public:
  // `evidence`: the writer of evidence captures (opened before privileges are dropped, started
  // with the pipeline); nullptr for none.
  LivePipeline(const Config& config, EventSink& sink, std::uint64_t hash_seed,
               std::unique_ptr<EvidenceWriter> evidence = nullptr);
  ~LivePipeline();
  LivePipeline(const LivePipeline&) = delete;
  LivePipeline& operator=(const LivePipeline&) = delete;

  // Opens every configured interface once, synchronously, so the caller can report failures
  // (and drop privileges afterwards). Returns the errors of the interfaces that did not open;
  // those are retried in the background once started (the caller decides whether a missing
  // privilege everywhere is fatal). Fails in kernel-only mode without a kernel view, and when
  // the kernel refused the capture threads' eventfds (out of descriptors).
  Expected<std::vector<CaptureOpenError>> open_interfaces();
  void start();
  void stop();  // joins the capture thread; flushes nothing itself

  // Before start(): incidents a previous run left open, carried on under their ids by the view
  // that raises incidents (the wire view, or the kernel view in kernel-only mode).
  void resume_incidents(const std::vector<ResumedIncident>& incidents);
  // After stop(): ends every open incident, publishing `ended` with `why` to the sink.
  void end_incidents(std::string_view why);

  // Hands a new configuration to the capture thread; applied between two batches. Returns at
  // once. If the interfaces, filter, snap length or buffer changed, the captures are reopened.
  void request_reconfigure(std::shared_ptr<const Config> config) EXCLUDES(mailbox_mutex_);
  void request_protected(std::vector<IpPrefix> prefixes) EXCLUDES(mailbox_mutex_);

  [[nodiscard]] PipelineSnapshot snapshot() const EXCLUDES(snapshot_mutex_);
  // Before start(), or from the capture thread.
  [[nodiscard]] MemoryBound memory_bound() const;
  [[nodiscard]] std::size_t workers() const noexcept { return worker_count_; }

  // capture.workers resolved: 0 means one per CPU in this process's affinity mask.
  static std::size_t resolve_workers(const Config& config);

 private:
  struct Worker;

  void run();
  void run_worker_round(std::size_t index);
  // Reads every readable socket of `worker_index` into its shard; false if none had packets.
  bool read_captures(std::size_t worker_index, const std::vector<pollfd>& fds,
                     const std::vector<CaptureSet::Capture*>& polled);
  // The sockets `worker_index` reads (fds and polled in step), then its wake-up eventfd.
  void collect_polled(std::size_t worker_index, int wake_fd, std::vector<pollfd>& fds,
                      std::vector<CaptureSet::Capture*>& polled);
  void apply_pending() EXCLUDES(mailbox_mutex_);
  void refresh_snapshot() EXCLUDES(snapshot_mutex_);
  void wake() noexcept;

  std::shared_ptr<const Config> config_;
  EventSink& sink_;
  KernelFiguresSink figures_sink_;  // the wire view's events, with stats.kernel added
  std::size_t worker_count_;
  // Between the detector and figures_sink_ when evidence captures are on; before engine_,
  // which publishes to it.
  std::unique_ptr<EvidenceRecorder> evidence_;
  ShardedEngine engine_;
  // One per shard: its observer and, with several workers, its thread's buffers.
  std::vector<std::unique_ptr<Worker>> workers_;
  WorkerPool pool_;                                     // threads only with several workers
  alignas(64) std::atomic<bool> crossing_hint_{false};  // a worker saw a destination pass its share
  std::unique_ptr<KernelSource> kernel_;                // capture thread only once started
  std::chrono::steady_clock::time_point next_kernel_poll_{};
  CaptureSet captures_;  // changed only by the coordinator, with workers parked
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  WakeFd wake_;

  mutable Mutex mailbox_mutex_;
  std::shared_ptr<const Config> pending_config_ GUARDED_BY(mailbox_mutex_);
  std::optional<std::vector<IpPrefix>> pending_protected_ GUARDED_BY(mailbox_mutex_);
  std::vector<IpPrefix> host_protected_;  // capture thread only

  mutable Mutex snapshot_mutex_;
  PipelineSnapshot snapshot_ GUARDED_BY(snapshot_mutex_);

  LiveClock clock_;  // capture thread only once started
};

}  // namespace synwatch
