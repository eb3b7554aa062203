#include "engine/live_pipeline.hpp"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

namespace synwatch {

namespace {

constexpr std::size_t kBatch = 1024;
constexpr int kRoundsPerWakeup = 64;
// How often the coordinator of several workers merges and evaluates when nothing hints sooner:
// often while packets flow or an incident is open, rarely when idle (each pass wakes every worker).
constexpr auto kCoordinatorPeriodBusy = std::chrono::milliseconds(50);
constexpr auto kCoordinatorPeriodIdle = std::chrono::milliseconds(250);

bool same_capture(const Config& a, const Config& b) {
  return a.capture.interfaces == b.capture.interfaces && a.capture.filter == b.capture.filter &&
         a.capture.snap_length == b.capture.snap_length &&
         a.capture.buffer_size == b.capture.buffer_size &&
         a.capture.promiscuous == b.capture.promiscuous;
}

}  // namespace

// A capture thread with its own shard. Its observer only raises a hint: the merged count decides.
struct LivePipeline::Worker final : FlowShard::Observer {
  LivePipeline* pipeline = nullptr;
  std::size_t index = 0;
  // The worker thread's poll set, kept between rounds.
  std::vector<pollfd> fds;
  std::vector<CaptureSet::Capture*> polled;

  void on_tick(TimestampNs) noexcept override {}
  void on_wake(TimestampNs) noexcept override {}
  void on_threshold_crossed(TimestampNs) noexcept override {
    if (!pipeline->crossing_hint_.exchange(true)) pipeline->wake();
  }
  [[nodiscard]] bool may_skip_ticks() const noexcept override { return true; }
};

std::size_t LivePipeline::resolve_workers(const Config& config) {
  if (!config.capture.enabled) return 1;
  if (config.capture.workers > 0) return config.capture.workers;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    return std::max(1, CPU_COUNT(&set));
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

LivePipeline::LivePipeline(const Config& config, EventSink& sink, std::uint64_t hash_seed,
                           std::unique_ptr<EvidenceWriter> evidence)
    : config_(std::make_shared<const Config>(config)),
      sink_(sink),
      figures_sink_(sink),
      worker_count_(resolve_workers(config)),
      evidence_(evidence ? std::make_unique<EvidenceRecorder>(config.evidence, std::move(evidence),
                                                              figures_sink_, worker_count_,
                                                              EvidenceTap::WhenFull::kDrop)
                         : nullptr),
      engine_(config, worker_count_,
              evidence_ ? static_cast<EventSink&>(*evidence_) : figures_sink_, hash_seed),
      pool_(worker_count_),
      captures_(worker_count_, CaptureSet::pcap_opener()) {
  if (evidence_) {
    for (std::size_t i = 0; i < worker_count_; ++i) evidence_->attach(i, engine_.shard(i));
  }
  if (config.kernel.enabled) {
    if (auto kernel = KernelSource::open(config, hash_seed ^ 0x6b65726e656cULL)) {
      kernel_ = std::move(*kernel);
      figures_sink_.attach(&kernel_->view());
    } else {
      spdlog::error("kernel view unavailable: {}", kernel.error().message);
    }
  }
  {
    // With one worker the pipeline thread captures itself; the Worker is then only the observer.
    for (std::size_t i = 0; i < worker_count_; ++i) {
      auto worker = std::make_unique<Worker>();
      worker->pipeline = this;
      worker->index = i;
      engine_.shard(i).set_observer(worker.get());
      workers_.push_back(std::move(worker));
    }
  }
  captures_.build(config);
}

LivePipeline::~LivePipeline() {
  stop();
}

Expected<std::vector<CaptureOpenError>> LivePipeline::open_interfaces() {
  // Without its eventfds a stop, a reload or a parked worker would wait out a poll timeout
  // each time: refuse to start rather than run slow to respond.
  for (const int error : {wake_.creation_errno(), pool_.wake_fd_errno()}) {
    if (error != 0) {
      return std::unexpected(
          Error::from_errno(error, "cannot create the capture threads' eventfd"));
    }
  }
  if (!config_->capture.enabled && !kernel_) {
    return make_unexpected(ErrorKind::kNotFound,
                           "capture.enabled is false and the kernel view is unavailable");
  }
  return captures_.open_closed();
}

void LivePipeline::start() {
  if (evidence_) evidence_->writer().start();
  clock_.start(realtime_now());
  refresh_snapshot();
  // Named for `top -H` and the benchmarks' per-thread CPU figures.
  if (worker_count_ > 1) {
    pool_.start([this](std::size_t index) { run_worker_round(index); }, "sw-worker-");
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), worker_count_ > 1 ? "sw-coordinator" : "sw-capture");
    run();
  });
}

void LivePipeline::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  wake();
  thread_.join();
}

void LivePipeline::resume_incidents(const std::vector<ResumedIncident>& incidents) {
  if (config_->capture.enabled) {
    engine_.resume_incidents(incidents, realtime_now());
  } else if (kernel_) {
    for (const auto& incident : incidents) {
      kernel_->view().detector().resume(incident, realtime_now());
    }
  }
}

void LivePipeline::end_incidents(std::string_view why) {
  if (config_->capture.enabled) {
    engine_.end_incidents(realtime_now(), why);
  } else if (kernel_) {
    kernel_->view().detector().end_all(realtime_now(), why, sink_);
  }
}

void LivePipeline::wake() noexcept {
  wake_.signal();
}

void LivePipeline::request_reconfigure(std::shared_ptr<const Config> config) {
  {
    MutexLock lock(mailbox_mutex_);
    pending_config_ = std::move(config);
  }
  wake();
}

void LivePipeline::request_protected(std::vector<IpPrefix> prefixes) {
  {
    MutexLock lock(mailbox_mutex_);
    pending_protected_ = std::move(prefixes);
  }
  wake();
}

MemoryBound LivePipeline::memory_bound() const {
  MemoryBound bound;
  if (config_->capture.enabled) {
    bound.capture_rings =
        std::size_t{config_->capture.buffer_size} * captures_.interface_count() * worker_count_;
  }
  bound.tables = engine_.table_bytes();
  bound.merged = engine_.max_merged_bytes();
  if (kernel_) bound.kernel = kernel_->view().memory_bytes();
  if (evidence_) bound.evidence = evidence_->memory_bytes();
  return bound;
}

PipelineSnapshot LivePipeline::snapshot() const {
  MutexLock lock(snapshot_mutex_);
  return snapshot_;
}

void LivePipeline::apply_pending() {
  std::shared_ptr<const Config> config;
  std::optional<std::vector<IpPrefix>> protected_prefixes;
  {
    MutexLock lock(mailbox_mutex_);
    config = std::move(pending_config_);
    pending_config_.reset();
    protected_prefixes = std::move(pending_protected_);
    pending_protected_.reset();
  }
  const bool reconfigured = config != nullptr;
  if (config) {
    // The keys a reload keeps until restart are the caller's to report (keys_needing_restart).
    engine_.reconfigure(*config);
    if (kernel_) kernel_->reconfigure(*config);
    if (!same_capture(*config_, *config)) {
      spdlog::info("reload: capture settings changed, reopening interfaces");
      captures_.build(*config);
      for (const auto& error : captures_.open_closed()) spdlog::error("{}", error.message);
    }
    config_ = std::move(config);
  }
  if (protected_prefixes) {
    host_protected_ = std::move(*protected_prefixes);
    if (config_->protected_prefixes.empty()) engine_.set_protected(host_protected_);
  } else if (reconfigured && config_->protected_prefixes.empty()) {
    // The reloaded config still protects "this host": keep the host's addresses, not "all".
    engine_.set_protected(host_protected_);
  }
}

void LivePipeline::refresh_snapshot() {
  PipelineSnapshot s;
  s.decode = captures_.decode_counters();
  s.memory_bound = memory_bound();
  if (evidence_) {
    s.evidence.enabled = true;
    s.evidence.taps = evidence_->counters();
    s.evidence.writer = evidence_->writer().stats();
  }
  s.interfaces = captures_.health();
  for (std::size_t i = 0; i < engine_.shard_count(); ++i) {
    s.worker_packets.push_back(engine_.shard(i).counters().packets);
  }
  s.engine = engine_.counters();
  s.handshakes = engine_.handshake_counters();
  s.handshake_entries = engine_.handshake_entries();
  s.handshake_capacity = engine_.handshake_capacity();
  s.destinations = engine_.destinations().size();
  s.destination_counters = engine_.destination_counters();
  s.open_incidents = engine_.detector().open_incidents();
  s.incidents_started = engine_.detector().counters().started;
  auto exported =
      export_destinations(engine_.destinations(), engine_.hosts(), engine_.detector(),
                          engine_.newest_packet_time(), config_->metrics.max_destinations);
  s.destinations_exported = std::move(exported.metrics);
  s.destinations_unexported = exported.unexported;
  if (engine_.has_seen_packets()) {
    s.lag = std::chrono::nanoseconds(
        std::max<TimestampNs>(0, realtime_now() - engine_.newest_packet_time()));
  }
  for (const auto& p : engine_.protected_prefixes()) s.protected_prefixes.push_back(p.to_string());
  if (kernel_) kernel_->fill_snapshot(s.kernel, config_->metrics.max_destinations);
  s.refreshed_at = std::chrono::steady_clock::now();
  MutexLock lock(snapshot_mutex_);
  snapshot_ = std::move(s);
}

bool LivePipeline::read_captures(std::size_t worker_index, const std::vector<pollfd>& fds,
                                 const std::vector<CaptureSet::Capture*>& polled) {
  struct Feed final : PacketHandler {
    FlowShard* shard = nullptr;
    Decoder* decoder = nullptr;
    void on_packet(const PacketView& packet) noexcept override {
      shard->on_packet(packet, *decoder);
    }
  } feed;
  feed.shard = &engine_.shard(worker_index);
  bool got_packets = false;
  for (std::size_t i = 0; i < polled.size(); ++i) {
    CaptureSet::Capture& capture = *polled[i];
    if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      // A vanished interface shows up here; dispatch() gives libpcap's reason.
      struct Ignore final : PacketHandler {
        void on_packet(const PacketView&) noexcept override {}
      } ignore;
      const auto result = capture.source->dispatch(1, ignore);
      capture.failed = true;
      capture.error =
          result.status == DispatchStatus::kError
              ? capture.source->error()
              : "capture on '" + capture.source->name() + "' failed: the interface went away";
      continue;
    }
    if (!(fds[i].revents & POLLIN)) continue;
    feed.decoder = capture.decoder.get();
    for (int rounds = 0; rounds < kRoundsPerWakeup; ++rounds) {
      const auto result = capture.source->dispatch(kBatch, feed);
      if (result.status == DispatchStatus::kError) {
        capture.failed = true;
        capture.error = capture.source->error();
        break;
      }
      if (result.status != DispatchStatus::kPackets) break;
      got_packets = true;
      // A waiting coordinator must not wait for a whole burst.
      if (pool_.pause_requested()) break;
    }
  }
  return got_packets;
}

void LivePipeline::collect_polled(std::size_t worker_index, int wake_fd, std::vector<pollfd>& fds,
                                  std::vector<CaptureSet::Capture*>& polled) {
  fds.clear();
  polled.clear();
  captures_.for_each_live(worker_index, [&](CaptureSet::Capture& capture) {
    fds.push_back({capture.source->selectable_fd(), POLLIN, 0});
    polled.push_back(&capture);
  });
  fds.push_back({wake_fd, POLLIN, 0});
}

void LivePipeline::run_worker_round(std::size_t index) {
  Worker& self = *workers_[index];
  const WakeFd& wake = pool_.wake_fd(index);
  // captures_ changes only while this worker is parked, so the pointers hold until then.
  collect_polled(index, wake.fd(), self.fds, self.polled);
  // The coordinator's eventfd cuts this short; the timeout is only a backstop.
  ::poll(self.fds.data(), self.fds.size(), 1000);
  if (self.fds.back().revents & POLLIN) wake.drain();
  read_captures(index, self.fds, self.polled);
}

void LivePipeline::run() {
  std::vector<pollfd> fds;
  std::vector<CaptureSet::Capture*> polled;
  auto next_snapshot = std::chrono::steady_clock::now();
  auto next_advance = next_snapshot;
  const bool coordinator_only = worker_count_ > 1;
  bool busy = false;  // packets since the last pass, or something over the threshold
  while (!stopping_.load()) {
    if (coordinator_only) {
      fds.assign({{wake_.fd(), POLLIN, 0}});
    } else {
      collect_polled(0, wake_.fd(), fds, polled);
    }
    const auto tick_ms = std::max<long long>(10, config_->detection.tick / kNanosPerMilli / 4);
    const long long timeout_ms =
        coordinator_only ? (busy ? kCoordinatorPeriodBusy : kCoordinatorPeriodIdle).count()
                         : std::min<long long>(tick_ms, 100);
    ::poll(fds.data(), fds.size(), static_cast<int>(timeout_ms));
    if (fds.back().revents & POLLIN) wake_.drain();
    if (!coordinator_only) read_captures(0, fds, polled);

    const auto woke = std::chrono::steady_clock::now();
    // One worker calls here after every batch; merging that often would cost more than it tells.
    if (!coordinator_only && woke < next_advance && !crossing_hint_.load() &&
        !(fds.back().revents & POLLIN)) {
      continue;
    }
    next_advance = woke + std::chrono::milliseconds(10);
    pool_.pause();
    crossing_hint_.store(false);
    captures_.close_failed();
    apply_pending();
    captures_.reopen_due();
    const auto after = std::chrono::steady_clock::now();
    const auto live = clock_.read(
        engine_.has_seen_packets() ? std::optional(engine_.newest_packet_time()) : std::nullopt);
    engine_.advance_to(live.now);
    busy = live.new_packets || engine_.detector().open_incidents() > 0 ||
           engine_.destinations().above_threshold() > 0;
    const bool snapshot_due = after >= next_snapshot;
    if (snapshot_due) {
      refresh_snapshot();
      next_snapshot = after + std::chrono::milliseconds(250);
    }
    pool_.resume();

    if (kernel_ && after >= next_kernel_poll_) {
      // Kernel-only mode publishes the kernel view's incidents; with capture, the wire view
      // raises them and the kernel view adds stats.kernel.
      if (auto error = kernel_->poll(realtime_now(), sink_, !config_->capture.enabled)) {
        spdlog::error("kernel view: {}", *error);
      }
      next_kernel_poll_ = after + std::chrono::nanoseconds(config_->kernel.interval);
    }
  }
  pool_.pause();
  refresh_snapshot();
  pool_.stop();
}

}  // namespace synwatch
