#include "engine/live_pipeline.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>

namespace synwatch {

namespace {

constexpr std::size_t kBatch = 1024;
constexpr auto kMaxBackoff = std::chrono::milliseconds(30'000);

TimestampNs realtime_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<TimestampNs>(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

LiveCaptureOptions options_for(const Config& config, const std::string& interface) {
  LiveCaptureOptions o;
  o.interface = interface;
  o.snap_length = static_cast<int>(config.capture.snap_length);
  o.buffer_bytes = static_cast<int>(config.capture.buffer_size);
  o.filter = config.capture.filter;
  o.promiscuous = config.capture.promiscuous;
  return o;
}

bool same_capture(const Config& a, const Config& b) {
  return a.capture.interfaces == b.capture.interfaces && a.capture.filter == b.capture.filter &&
         a.capture.snap_length == b.capture.snap_length &&
         a.capture.buffer_size == b.capture.buffer_size &&
         a.capture.promiscuous == b.capture.promiscuous;
}

}  // namespace

LivePipeline::LivePipeline(const Config& config, EventSink& sink, std::uint64_t hash_seed)
    : config_(std::make_shared<const Config>(config)),
      sink_(sink),
      figures_sink_(sink),
      engine_(config, LinkType::kEthernet, figures_sink_, hash_seed) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (config.kernel.enabled) {
    if (auto kernel = KernelSource::open(config, hash_seed ^ 0x6b65726e656cULL)) {
      kernel_ = std::move(*kernel);
      figures_sink_.attach(&kernel_->view());
    } else {
      spdlog::error("kernel view unavailable: {}", kernel.error());
    }
  }
  build_interfaces(config);
}

LivePipeline::~LivePipeline() {
  stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void LivePipeline::retire_decoder(Interface& interface) {
  if (!interface.decoder) return;
  const DecodeCounters& c = interface.decoder->counters();
  decode_retired_.frames += c.frames;
  for (std::size_t i = 0; i < c.by_result.size(); ++i)
    decode_retired_.by_result[i] += c.by_result[i];
  interface.decoder.reset();
}

void LivePipeline::build_interfaces(const Config& config) {
  for (auto& interface : interfaces_) retire_decoder(interface);
  interfaces_.clear();
  if (!config.capture.enabled) return;  // kernel-only mode
  for (const auto& name : config.capture.interfaces) {
    Interface interface;
    interface.options = options_for(config, name);
    interface.health.name = name;
    interfaces_.push_back(std::move(interface));
  }
}

bool LivePipeline::try_open(Interface& interface) {
  ++interface.health.reopen_attempts;
  auto source = LivePcapSource::open(interface.options);
  if (!source) {
    interface.health.last_error = source.error();
    interface.retry_at = std::chrono::steady_clock::now() + interface.backoff;
    interface.backoff = std::min(kMaxBackoff, interface.backoff * 2);
    return false;
  }
  retire_decoder(interface);
  interface.decoder = std::make_unique<Decoder>((*source)->link_type());
  interface.source = std::move(*source);
  interface.health.open = true;
  interface.health.last_error.clear();
  interface.backoff = std::chrono::milliseconds(1000);
  return true;
}

void LivePipeline::close_with_error(Interface& interface, const std::string& error) {
  if (auto stats = interface.source->stats()) {
    interface.stats_base.received += stats->received;
    interface.stats_base.dropped_kernel += stats->dropped_kernel;
    interface.stats_base.dropped_interface += stats->dropped_interface;
  }
  interface.source.reset();
  interface.health.open = false;
  interface.health.last_error = error;
  interface.retry_at = std::chrono::steady_clock::now() + interface.backoff;
  spdlog::error("{}; other interfaces keep running, retrying in {} s", error,
                static_cast<double>(interface.backoff.count()) / 1000.0);
}

std::expected<std::vector<std::string>, std::string> LivePipeline::open_interfaces() {
  if (!config_->capture.enabled) {
    if (!kernel_)
      return std::unexpected("capture.enabled is false and the kernel view is unavailable");
    return std::vector<std::string>{};
  }
  std::vector<std::string> errors;
  bool any = false;
  for (auto& interface : interfaces_) {
    if (interface.source || try_open(interface)) {
      any = true;
    } else {
      errors.push_back(interface.health.last_error);
    }
  }
  if (!any) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "; ") + e;
    return std::unexpected(all);
  }
  return errors;
}

void LivePipeline::start() {
  anchor_packet_time_ = realtime_now();
  anchor_monotonic_ = std::chrono::steady_clock::now();
  refresh_snapshot();
  thread_ = std::thread([this] { run(); });
}

void LivePipeline::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  wake();
  thread_.join();
}

void LivePipeline::wake() noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
}

void LivePipeline::request_reconfigure(std::shared_ptr<const Config> config) {
  {
    std::lock_guard lock(mailbox_mutex_);
    pending_config_ = std::move(config);
  }
  wake();
}

void LivePipeline::request_protected(std::vector<IpPrefix> prefixes) {
  {
    std::lock_guard lock(mailbox_mutex_);
    pending_protected_ = std::move(prefixes);
  }
  wake();
}

PipelineSnapshot LivePipeline::snapshot() const {
  std::lock_guard lock(snapshot_mutex_);
  return snapshot_;
}

void LivePipeline::apply_pending() {
  std::shared_ptr<const Config> config;
  std::optional<std::vector<IpPrefix>> protected_prefixes;
  {
    std::lock_guard lock(mailbox_mutex_);
    config = std::move(pending_config_);
    pending_config_.reset();
    protected_prefixes = std::move(pending_protected_);
    pending_protected_.reset();
  }
  const bool reconfigured = config != nullptr;
  if (config) {
    const auto kept = engine_.reconfigure(*config);
    if (kernel_) kernel_->reconfigure(*config);
    for (const auto& key : kept) {
      spdlog::warn(
          "reload: {} changed but takes effect only at restart (it sizes memory or the "
          "window); the running value is kept",
          key);
    }
    if (!same_capture(*config_, *config)) {
      spdlog::info("reload: capture settings changed, reopening interfaces");
      build_interfaces(*config);
      for (auto& interface : interfaces_) {
        if (!try_open(interface)) spdlog::error("{}", interface.health.last_error);
      }
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
  for (auto& interface : interfaces_) {
    InterfaceHealth health = interface.health;
    health.stats = interface.stats_base;
    if (interface.source) {
      if (auto stats = interface.source->stats()) {
        health.stats.received += stats->received;
        health.stats.dropped_kernel += stats->dropped_kernel;
        health.stats.dropped_interface += stats->dropped_interface;
      }
    }
    s.interfaces.push_back(std::move(health));
  }
  s.engine = engine_.counters();
  s.decode = decode_retired_;
  for (const auto& interface : interfaces_) {
    if (!interface.decoder) continue;
    s.decode.frames += interface.decoder->counters().frames;
    for (std::size_t i = 0; i < s.decode.by_result.size(); ++i) {
      s.decode.by_result[i] += interface.decoder->counters().by_result[i];
    }
  }
  s.handshakes = engine_.handshakes().counters();
  s.handshake_entries = engine_.handshakes().size();
  s.handshake_capacity = engine_.handshakes().capacity();
  s.destinations = engine_.destinations().size();
  s.destination_counters = engine_.destinations().counters();
  s.open_incidents = engine_.detector().open_incidents();
  for (int k = 0; k < 3; ++k) s.incidents_started[k] = engine_.detector().counters().started[k];
  collect_destination_metrics(s);
  if (engine_.has_seen_packets()) {
    s.lag = std::chrono::nanoseconds(
        std::max<TimestampNs>(0, realtime_now() - engine_.newest_packet_time()));
  }
  for (const auto& p : engine_.protected_prefixes()) s.protected_prefixes.push_back(p.to_string());
  if (kernel_) kernel_->fill_snapshot(s.kernel, config_->metrics.max_destinations);
  s.refreshed_at = std::chrono::steady_clock::now();
  std::lock_guard lock(snapshot_mutex_);
  snapshot_ = std::move(s);
}

void LivePipeline::collect_destination_metrics(PipelineSnapshot& s) {
  // Choose cheaply (counts only), then compute window statistics for the chosen few: the cap
  // bounds both the work here and the number of series a scrape returns.
  const auto& incidents = engine_.detector().incidents();
  std::vector<const Destination*> chosen;
  engine_.for_each_destination([&](const Destination& d) { chosen.push_back(&d); });
  const std::size_t cap = config_->metrics.max_destinations;
  const auto rank = [&](const Destination* a, const Destination* b) {
    const bool a_open = incidents.contains(a->target);
    const bool b_open = incidents.contains(b->target);
    if (a_open != b_open) return a_open;
    return a->half_open() > b->half_open();
  };
  if (chosen.size() > cap) {
    std::partial_sort(chosen.begin(), chosen.begin() + static_cast<std::ptrdiff_t>(cap),
                      chosen.end(), rank);
    s.destinations_unexported = chosen.size() - cap;
    chosen.resize(cap);
  }
  const TimestampNs now = engine_.newest_packet_time();
  for (const Destination* d : chosen) {
    const DestinationStats stats = engine_.destinations().stats(*d, now, 0);
    DestinationMetrics m;
    m.target = d->target;
    m.syn_seen = d->syn_seen;
    m.syn_recv = d->syn_recv;
    m.totals = d->totals;
    m.syn_rate = stats.syn_rate;
    m.distinct_sources = stats.distinct_sources;
    m.source_entropy = stats.source_entropy;
    m.completion_ratio = stats.completion_ratio;
    if (const auto open = incidents.find(d->target); open != incidents.end())
      m.attack = open->second.kind;
    s.destinations_exported.push_back(m);
  }
}

void LivePipeline::run() {
  std::vector<pollfd> fds;
  std::vector<Interface*> polled;
  auto next_snapshot = std::chrono::steady_clock::now();
  // Decoders persist across reopenings only through the snapshot sums; keep per-interface
  // decode counters by folding them in before a decoder is replaced.
  while (!stopping_.load()) {
    apply_pending();
    const auto now_mono = std::chrono::steady_clock::now();
    fds.clear();
    polled.clear();
    for (auto& interface : interfaces_) {
      if (!interface.source && now_mono >= interface.retry_at) {
        if (try_open(interface)) {
          spdlog::info("capture on '{}' resumed", interface.options.interface);
        }
      }
      if (interface.source) {
        fds.push_back({interface.source->selectable_fd(), POLLIN, 0});
        polled.push_back(&interface);
      }
    }
    fds.push_back({wake_fd_, POLLIN, 0});
    const auto tick_ms = std::max<long long>(10, config_->detection.tick / kNanosPerMilli / 4);
    ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(tick_ms, 100)));

    bool got_packets = false;
    for (std::size_t i = 0; i < polled.size(); ++i) {
      Interface& interface = *polled[i];
      if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
        // A vanished interface shows up here; dispatch() gives libpcap's reason.
        struct Ignore final : PacketHandler {
          void on_packet(const PacketView&) noexcept override {}
        } ignore;
        const auto result = interface.source->dispatch(1, ignore);
        close_with_error(interface, result.status == DispatchStatus::kError
                                        ? interface.source->error()
                                        : "capture on '" + interface.options.interface +
                                              "' failed: the interface went away");
        continue;
      }
      if (!(fds[i].revents & POLLIN)) continue;
      struct Feed final : PacketHandler {
        Engine* engine;
        Decoder* decoder;
        void on_packet(const PacketView& packet) noexcept override {
          engine->on_packet(packet, *decoder);
        }
      } feed;
      feed.engine = &engine_;
      feed.decoder = interface.decoder.get();
      for (int rounds = 0; rounds < 64; ++rounds) {
        const auto result = interface.source->dispatch(kBatch, feed);
        if (result.status == DispatchStatus::kError) {
          close_with_error(interface, interface.source->error());
          break;
        }
        if (result.status != DispatchStatus::kPackets) break;
        got_packets = true;
      }
    }
    if (fds.back().revents & POLLIN) {
      std::uint64_t drained = 0;
      [[maybe_unused]] const auto n = ::read(wake_fd_, &drained, sizeof drained);
    }
    const auto after = std::chrono::steady_clock::now();
    if (got_packets && engine_.has_seen_packets()) {
      anchor_packet_time_ = engine_.newest_packet_time();
      anchor_monotonic_ = after;
    }
    const TimestampNs live_now =
        anchor_packet_time_ +
        std::chrono::duration_cast<std::chrono::nanoseconds>(after - anchor_monotonic_).count();
    engine_.advance_to(live_now);
    if (kernel_ && after >= next_kernel_poll_) {
      // Kernel-only mode publishes the kernel view's incidents; with capture, the wire view
      // raises them and the kernel view adds stats.kernel.
      if (auto error = kernel_->poll(realtime_now(), sink_, !config_->capture.enabled)) {
        spdlog::error("kernel view: {}", *error);
      }
      next_kernel_poll_ = after + std::chrono::nanoseconds(config_->kernel.interval);
    }
    if (after >= next_snapshot) {
      refresh_snapshot();
      next_snapshot = after + std::chrono::milliseconds(250);
    }
  }
  refresh_snapshot();
}

}  // namespace synwatch
