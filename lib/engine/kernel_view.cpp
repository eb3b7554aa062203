#include "engine/kernel_view.hpp"

namespace synwatch {

namespace {

class DiscardSink final : public EventSink {
 public:
  void publish(const IncidentEvent&) override {}
};

// Adds stats.kernel to the kernel view's own events.
class FiguresSink final : public EventSink {
 public:
  FiguresSink(const KernelView& view, EventSink& next) : view_(view), next_(next) {}
  void publish(const IncidentEvent& event) override {
    IncidentEvent with = event;
    with.kernel = view_.figures_for(event.target);
    next_.publish(with);
  }

 private:
  const KernelView& view_;
  EventSink& next_;
};

}  // namespace

KernelView::KernelView(const Config& config, DurationNs interval, std::uint64_t hash_seed)
    : destinations_(config, interval, hash_seed),
      detector_(config.detection, config.aggregation.top_sources) {}

void KernelView::reconfigure(const Config& config) {
  destinations_.reconfigure(config);
  detector_.reconfigure(config.detection, config.aggregation.top_sources);
}

void KernelView::finish_poll(std::span<const KernelSocket> completed,
                             std::span<const KernelListener> listeners,
                             const std::optional<TcpExtStats>& counters, TimestampNs now,
                             EventSink& sink) {
  destinations_.finish_poll(completed, listeners, counters, now);
  FiguresSink figures(*this, sink);
  detector_.evaluate(destinations_.last_poll(), destinations_.table(), figures);
}

std::optional<KernelIncidentStats> KernelView::figures_for(const Endpoint& target) const {
  if (!destinations_.polled()) return std::nullopt;
  KernelIncidentStats k;
  k.syncookies_sent_rate = destinations_.syncookies_sent_rate();
  k.listen_overflows_rate = destinations_.listen_overflows_rate();
  if (const KernelListenerStats* l = destinations_.listener_for(target)) {
    k.accept_queue = l->accept_queue;
    k.backlog = l->backlog;
  }
  const DestinationTable& table = destinations_.table();
  if (const Destination* d = table.find(target)) {
    k.syn_recv = d->syn_recv;
    k.stateless = d->stateless;
    const DestinationStats stats = table.stats(*d, destinations_.last_poll(), 0);
    k.distinct_sources = stats.distinct_sources;
    k.source_entropy = stats.source_entropy;
  }
  return k;
}

void KernelView::fill_snapshot(KernelViewSnapshot& out, std::size_t max_destinations) const {
  const DestinationTable& table = destinations_.table();
  const TimestampNs now = destinations_.last_poll();
  out.syn_recv_total = destinations_.syn_recv_total();
  out.syncookies_sent_rate = destinations_.syncookies_sent_rate();
  out.listen_overflows_rate = destinations_.listen_overflows_rate();
  out.unattributed_syncookies = destinations_.unattributed_syncookies();
  const auto listeners = destinations_.listeners();
  out.listeners.assign(listeners.begin(), listeners.end());
  out.open_incidents = detector_.open_incidents();
  const auto& incidents = detector_.incidents();
  std::vector<const Destination*> chosen;
  table.visit_all([&](const Destination& d) { chosen.push_back(&d); });
  const auto rank = [&](const Destination* a, const Destination* b) {
    const bool a_open = incidents.contains(a->target);
    const bool b_open = incidents.contains(b->target);
    if (a_open != b_open) return a_open;
    return a->half_open() > b->half_open();
  };
  if (chosen.size() > max_destinations) {
    std::partial_sort(chosen.begin(),
                      chosen.begin() + static_cast<std::ptrdiff_t>(max_destinations), chosen.end(),
                      rank);
    out.destinations_unexported = chosen.size() - max_destinations;
    chosen.resize(max_destinations);
  }
  out.destinations.clear();
  for (const Destination* d : chosen) {
    const DestinationStats stats = table.stats(*d, now, 0);
    KernelDestinationStats f;
    f.target = d->target;
    f.syn_recv = d->syn_recv;
    f.stateless = d->stateless;
    f.distinct_sources = stats.distinct_sources;
    f.source_entropy = stats.source_entropy;
    if (const auto open = incidents.find(d->target); open != incidents.end()) {
      f.attack = open->second.kind;
    }
    out.destinations.push_back(f);
  }
}

void KernelFiguresSink::publish(const IncidentEvent& event) {
  if (view_ == nullptr || event.kernel) {
    next_.publish(event);
    return;
  }
  IncidentEvent with = event;
  with.kernel = view_->figures_for(event.target);
  next_.publish(with);
}

Expected<std::unique_ptr<KernelSource>> KernelSource::open(const Config& config,
                                                           std::uint64_t hash_seed) {
  auto poller = SockDiagPoller::open();
  if (!poller) return std::unexpected(poller.error());
  return std::unique_ptr<KernelSource>(new KernelSource(config, std::move(*poller), hash_seed));
}

KernelSource::KernelSource(const Config& config, SockDiagPoller poller, std::uint64_t hash_seed)
    : poller_(std::move(poller)),
      view_(config, config.kernel.interval, hash_seed),
      sysctls_(read_tcp_sysctls()) {}

void KernelSource::reconfigure(const Config& config) {
  view_.reconfigure(config);
  sysctls_ = read_tcp_sysctls();
}

std::optional<std::string> KernelSource::poll(TimestampNs now, EventSink& sink, bool publish) {
  const auto started = std::chrono::steady_clock::now();
  std::string error;
  if (auto polled = poller_.poll_syn_recv(); !polled) {
    error = polled.error().message;
  } else {
    const auto ports = view_.begin_poll(poller_.syn_recv());
    std::span<const KernelSocket> completed;
    if (!ports.empty()) {
      if (auto done = poller_.poll_completed(ports); done) {
        completed = poller_.completed();
      } else {
        error = done.error().message;
      }
    }
    if (auto read = netstat_.read(); read) {
      counters_ = *read;
    } else {
      counters_.reset();
      if (error.empty()) error = read.error().message;
    }
    DiscardSink discard;
    view_.finish_poll(completed, poller_.listeners(), counters_, now, publish ? sink : discard);
  }
  last_duration_ = std::chrono::steady_clock::now() - started;
  healthy_ = error.empty();
  if (error == last_error_) return std::nullopt;
  last_error_ = error;
  return error.empty() ? std::nullopt : std::optional<std::string>(error);
}

void KernelSource::fill_snapshot(KernelViewSnapshot& out, std::size_t max_destinations) const {
  out.enabled = true;
  out.healthy = healthy_;
  out.last_error = last_error_;
  out.polls = poller_.counters().polls;
  out.poll_failures = poller_.counters().failures;
  out.last_poll_duration = last_duration_;
  out.tcp_ext = counters_;
  out.sysctls = sysctls_;
  view_.fill_snapshot(out, max_destinations);
}

}  // namespace synwatch
