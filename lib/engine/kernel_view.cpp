#include "kernel/kernel_view.hpp"

#include <netinet/tcp.h>

#include <algorithm>

namespace synwatch {

namespace {

// Synthetic sequence numbers: any pair works as long as the SYN-ACK acknowledges the SYN and the
// final ACK the SYN-ACK; deriving them from the 4-tuple keeps them stable across polls.
std::uint32_t syn_seq_of(const KernelSocket& s) noexcept {
  std::uint8_t key[36];
  std::memcpy(key, s.local.address.bytes.data(), 16);
  std::memcpy(key + 16, s.remote.address.bytes.data(), 16);
  key[32] = static_cast<std::uint8_t>(s.local.port >> 8);
  key[33] = static_cast<std::uint8_t>(s.local.port);
  key[34] = static_cast<std::uint8_t>(s.remote.port >> 8);
  key[35] = static_cast<std::uint8_t>(s.remote.port);
  return static_cast<std::uint32_t>(hash_bytes(key, sizeof key, 0x6b65726e656cULL));
}
constexpr std::uint32_t kSynAckOffset = 0x9e3779b9u;

bool is_unspecified(const IpAddress& a) noexcept {
  static const IpAddress any6{};
  static const IpAddress any4 = IpAddress::from_v4(std::uint32_t{0});
  return a == any6 || a == any4;
}

class DiscardSink final : public EventSink {
 public:
  void publish(const IncidentEvent&) override {}
};

// Adds stats.kernel to the kernel view's own events.
class FiguresSink final : public EventSink {
 public:
  FiguresSink(KernelView& view, EventSink& next) : view_(view), next_(next) {}
  void publish(const IncidentEvent& event) override {
    IncidentEvent with = event;
    with.kernel = view_.figures_for(event.target);
    next_.publish(with);
  }

 private:
  KernelView& view_;
  EventSink& next_;
};

}  // namespace

KernelView::KernelView(const Config& config, DurationNs interval, std::uint64_t hash_seed)
    : protected_(config.protected_prefixes),
      cookie_slots_(static_cast<std::size_t>(
          std::max<DurationNs>(1, config.aggregation.window / std::max<DurationNs>(1, interval)))),
      handshakes_(config.flow.capacity, HandshakeTable::kMaxPendingTimeout, hash_seed),
      destinations_(config.aggregation, config.detection.tick, config.detection.half_open,
                    hash_seed ^ 0x5bd1e995u, StaleJudgement::from(config.detection)),
      detector_(config.detection, config.aggregation.top_sources) {
  handshakes_.set_judge_ages(destinations_.judgement().ages);
}

bool KernelView::is_protected(const IpAddress& address) const noexcept {
  if (protected_.empty()) return true;
  return std::any_of(protected_.begin(), protected_.end(),
                     [&](const IpPrefix& p) { return p.contains(address); });
}

void KernelView::reconfigure(const Config& config) {
  protected_ = config.protected_prefixes;
  DetectionConfig detection = config.detection;
  destinations_.set_half_open_threshold(detection.half_open, now_);
  detector_.reconfigure(detection, config.aggregation.top_sources);
}

std::span<const std::uint16_t> KernelView::begin_poll(std::span<const KernelSocket> syn_recv) {
  current_.assign(syn_recv.begin(), syn_recv.end());
  std::sort(current_.begin(), current_.end());
  current_.erase(std::unique(current_.begin(), current_.end()), current_.end());
  added_.clear();
  vanished_.clear();
  std::set_difference(current_.begin(), current_.end(), previous_.begin(), previous_.end(),
                      std::back_inserter(added_));
  std::set_difference(previous_.begin(), previous_.end(), current_.begin(), current_.end(),
                      std::back_inserter(vanished_));
  vanished_ports_.clear();
  for (const auto& s : vanished_) vanished_ports_.push_back(s.local.port);
  std::sort(vanished_ports_.begin(), vanished_ports_.end());
  vanished_ports_.erase(std::unique(vanished_ports_.begin(), vanished_ports_.end()),
                        vanished_ports_.end());
  return vanished_ports_;
}

void KernelView::feed(const TcpSegment& segment, bool as_expiry) {
  const bool accept = !segment.is_syn() || is_protected(segment.destination);
  const FlowUpdate update = handshakes_.process(segment, accept);
  if (as_expiry && update.event == FlowEvent::kReset) {
    destinations_.on_expired(update.server, update.client, update.previous_state, update.was_stale,
                             now_);
    return;
  }
  if (update.event == FlowEvent::kNone && !update.evicted) return;
  destinations_.on_flow(update, now_);
}

std::size_t KernelView::listener_for(const Endpoint& local) const noexcept {
  const auto range = std::equal_range(
      listeners_.begin(), listeners_.end(), local.port, [](const auto& a, const auto& b) {
        if constexpr (std::is_same_v<std::decay_t<decltype(a)>, KernelListenerFigures>) {
          return a.local.port < b;
        } else {
          return a < b.local.port;
        }
      });
  std::size_t wildcard = kNoListener;
  for (auto it = range.first; it != range.second; ++it) {
    const auto index = static_cast<std::size_t>(it - listeners_.begin());
    if (it->local.address == local.address) return index;
    // A wildcard IPv4 listener takes IPv4 only; a wildcard IPv6 one may take both (the kernel
    // reports the IPv4 requests it accepts as AF_INET sockets, which map here too).
    if (is_unspecified(it->local.address) && (it->v6 || local.address.is_v4())) {
      if (wildcard == kNoListener || (!it->v6 && local.address.is_v4())) wildcard = index;
    }
  }
  return wildcard;
}

void KernelView::finish_poll(std::span<const KernelSocket> completed,
                             std::span<const KernelListener> listeners,
                             const std::optional<TcpExtCounters>& counters, TimestampNs now,
                             EventSink& sink) {
  now_ = std::max(now, now_);
  polled_ = true;

  // Vanished first: it frees table capacity for the new ones.
  for (const KernelSocket& s : vanished_) {
    const bool done = std::binary_search(completed.begin(), completed.end(), s);
    segment_ = TcpSegment{};
    segment_.timestamp = now_;
    segment_.source = s.remote.address;
    segment_.source_port = s.remote.port;
    segment_.destination = s.local.address;
    segment_.destination_port = s.local.port;
    if (done) {
      segment_.flags = tcp_flag::kAck;
      segment_.seq = syn_seq_of(s) + 1;
      segment_.ack = syn_seq_of(s) + kSynAckOffset + 1;
    } else {
      segment_.flags = tcp_flag::kRst;
      segment_.seq = syn_seq_of(s) + 1;
    }
    feed(segment_, !done);
  }
  for (const KernelSocket& s : added_) {
    segment_ = TcpSegment{};
    segment_.timestamp = now_;
    segment_.source = s.remote.address;
    segment_.source_port = s.remote.port;
    segment_.destination = s.local.address;
    segment_.destination_port = s.local.port;
    segment_.flags = tcp_flag::kSyn;
    segment_.seq = syn_seq_of(s);
    feed(segment_, false);
    std::swap(segment_.source, segment_.destination);
    std::swap(segment_.source_port, segment_.destination_port);
    segment_.flags = tcp_flag::kSyn | tcp_flag::kAck;
    segment_.seq = syn_seq_of(s) + kSynAckOffset;
    segment_.ack = syn_seq_of(s) + 1;
    feed(segment_, false);
  }
  previous_.swap(current_);

  listeners_.clear();
  for (const auto& l : listeners) {
    listeners_.push_back({l.local, l.v6, l.accept_queue, l.backlog, 0});
  }
  std::sort(listeners_.begin(), listeners_.end(),
            [](const auto& a, const auto& b) { return a.local < b.local; });
  std::stable_sort(listeners_.begin(), listeners_.end(),
                   [](const auto& a, const auto& b) { return a.local.port < b.local.port; });
  for (const KernelSocket& s : previous_) {
    if (const std::size_t l = listener_for(s.local); l != kNoListener) ++listeners_[l].syn_recv;
  }

  if (counters) {
    if (last_counters_ && now_ > last_counters_at_) {
      const double seconds = to_seconds(now_ - last_counters_at_);
      const auto delta = [](std::uint64_t now_value, std::uint64_t before) {
        return now_value >= before ? now_value - before : 0;  // a reset namespace counts anew
      };
      const std::uint64_t sent = delta(counters->syncookies_sent, last_counters_->syncookies_sent);
      const std::uint64_t validated =
          delta(counters->syncookies_recv, last_counters_->syncookies_recv);
      syncookies_sent_rate_ = static_cast<double>(sent) / seconds;
      listen_overflows_rate_ =
          static_cast<double>(delta(counters->listen_overflows, last_counters_->listen_overflows)) /
          seconds;
      attribute_cookies(sent, validated);
    } else {
      attribute_cookies(0, 0);
    }
    last_counters_ = counters;
    last_counters_at_ = now_;
  } else {
    attribute_cookies(0, 0);
  }

  // A request socket is stale once it is older than the initial SYN-ACK timeout, which is also
  // when the kernel retransmits its SYN-ACK: the kernel keeps no completion times to learn a
  // normal from, and a poll sees a socket only to the poll interval's precision.
  const unsigned no_history = static_cast<unsigned>(destinations_.judgement().no_history_rung);
  handshakes_.judge(
      now_, [&](const Endpoint&) noexcept { return no_history; },
      [&](const Endpoint& server, const IpAddress& client, HandshakeState) noexcept {
        destinations_.on_stale(server, client, now_);
      });
  destinations_.forget_idle(now_);
  destinations_.settle(now_);
  FiguresSink figures(*this, sink);
  detector_.evaluate(now_, destinations_, figures);
}

void KernelView::attribute_cookies(std::uint64_t sent, std::uint64_t validated) {
  for (auto& [target, history] : cookies_) {
    history.sent_now = 0;
    history.validated_now = 0;
  }
  if (sent > 0 || validated > 0) {
    std::size_t full = 0;
    for (const auto& l : listeners_) full += l.backlog > 0 && l.syn_recv >= l.backlog;
    if (full == 0) {
      unattributed_ += sent;
    } else {
      // Split each listener's share over its local addresses by their SYN_RECV counts.
      std::size_t listener_index = 0;
      for (std::size_t li = 0; li < listeners_.size(); ++li) {
        const KernelListenerFigures& l = listeners_[li];
        if (!(l.backlog > 0 && l.syn_recv >= l.backlog)) continue;
        const std::uint64_t share_sent = sent / full + (listener_index < sent % full ? 1 : 0);
        const std::uint64_t share_validated =
            validated / full + (listener_index < validated % full ? 1 : 0);
        ++listener_index;
        std::uint64_t given_sent = 0;
        std::uint64_t given_validated = 0;
        std::size_t seen = 0;
        // previous_ is sorted by local endpoint, so one destination's sockets are contiguous.
        for (std::size_t i = 0; i < previous_.size(); ++i) {
          const KernelSocket& s = previous_[i];
          if (listener_for(s.local) != li) continue;
          ++seen;
          const bool last_of_target =
              i + 1 == previous_.size() || !(previous_[i + 1].local == s.local);
          if (!last_of_target) continue;
          const std::uint64_t cumulative_sent = share_sent * seen / l.syn_recv;
          const std::uint64_t cumulative_validated = share_validated * seen / l.syn_recv;
          CookieHistory& h = cookies_[s.local];
          h.sent_now += static_cast<std::uint32_t>(cumulative_sent - given_sent);
          h.validated_now += static_cast<std::uint32_t>(cumulative_validated - given_validated);
          given_sent = cumulative_sent;
          given_validated = cumulative_validated;
        }
      }
    }
  }
  for (auto it = cookies_.begin(); it != cookies_.end();) {
    CookieHistory& h = it->second;
    if (h.per_poll.size() != cookie_slots_) h.per_poll.assign(cookie_slots_, 0);
    h.at = (h.at + 1) % cookie_slots_;
    h.sum -= h.per_poll[h.at];
    h.per_poll[h.at] = static_cast<std::int64_t>(h.sent_now) - h.validated_now;
    h.sum += h.per_poll[h.at];
    const auto stateless =
        static_cast<std::uint32_t>(std::clamp<std::int64_t>(h.sum, 0, UINT32_MAX));
    destinations_.set_stateless(it->first, stateless, h.sent_now, h.validated_now, now_);
    const bool idle =
        std::all_of(h.per_poll.begin(), h.per_poll.end(), [](auto v) { return v == 0; });
    it = idle ? cookies_.erase(it) : std::next(it);
  }
}

std::optional<KernelIncidentStats> KernelView::figures_for(const Endpoint& target) {
  if (!polled_) return std::nullopt;
  KernelIncidentStats k;
  k.syncookies_sent_rate = syncookies_sent_rate_;
  k.listen_overflows_rate = listen_overflows_rate_;
  if (const std::size_t l = listener_for(target); l != kNoListener) {
    k.accept_queue = listeners_[l].accept_queue;
    k.backlog = listeners_[l].backlog;
  }
  if (Destination* d = destinations_.find(target)) {
    k.syn_recv = d->syn_recv;
    k.stateless = d->stateless;
    const DestinationStats stats = destinations_.stats(*d, now_, 0);
    k.distinct_sources = stats.distinct_sources;
    k.source_entropy = stats.source_entropy;
  }
  return k;
}

void KernelView::fill_snapshot(KernelViewSnapshot& out, std::size_t max_destinations) {
  out.syn_recv_total = previous_.size();
  out.syncookies_sent_rate = syncookies_sent_rate_;
  out.listen_overflows_rate = listen_overflows_rate_;
  out.unattributed_syncookies = unattributed_;
  out.listeners = listeners_;
  out.open_incidents = detector_.open_incidents();
  const auto& incidents = detector_.incidents();
  std::vector<Destination*> chosen;
  destinations_.for_each([&](Destination& d) { chosen.push_back(&d); });
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
  for (Destination* d : chosen) {
    const DestinationStats stats = destinations_.stats(*d, now_, 0);
    KernelDestinationFigures f;
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

std::expected<std::unique_ptr<KernelSource>, std::string> KernelSource::open(
    const Config& config, std::uint64_t hash_seed) {
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
    error = polled.error();
  } else {
    const auto ports = view_.begin_poll(poller_.syn_recv());
    std::span<const KernelSocket> completed;
    if (!ports.empty()) {
      if (auto done = poller_.poll_completed(ports); done) {
        auto& sorted = const_cast<std::vector<KernelSocket>&>(poller_.completed());
        std::sort(sorted.begin(), sorted.end());
        completed = sorted;
      } else {
        error = done.error();
      }
    }
    if (auto read = netstat_.read(); read) {
      counters_ = *read;
    } else {
      counters_.reset();
      if (error.empty()) error = read.error();
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

void KernelSource::fill_snapshot(KernelViewSnapshot& out, std::size_t max_destinations) {
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
