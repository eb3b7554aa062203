#include "aggregate/kernel_destinations.hpp"

#include <algorithm>
#include <type_traits>

namespace synwatch {

namespace {

bool is_unspecified(const IpAddress& a) noexcept {
  static const IpAddress any6{};
  static const IpAddress any4 = IpAddress::from_v4(std::uint32_t{0});
  return a == any6 || a == any4;
}

bool is_full(const KernelListenerStats& l) noexcept {
  return l.backlog > 0 && l.syn_recv >= l.backlog;
}

DurationNs no_history_age(const StaleJudgement& judgement) noexcept {
  if (judgement.ages.empty()) return 0;
  return judgement.ages[std::min(judgement.no_history_rung, judgement.ages.size() - 1)];
}

}  // namespace

KernelDestinations::KernelDestinations(const Config& config, DurationNs interval,
                                       std::uint64_t hash_seed)
    : protected_(config.protected_prefixes),
      cookie_slots_(static_cast<std::size_t>(
          std::max<DurationNs>(1, config.aggregation.window / std::max<DurationNs>(1, interval)))),
      table_(config.aggregation, config.detection.tick, config.detection.half_open,
             hash_seed ^ 0x5bd1e995u, StaleJudgement::from(config.detection)),
      stale_after_(no_history_age(table_.judgement())) {}

bool KernelDestinations::is_protected(const IpAddress& address) const noexcept {
  if (protected_.empty()) return true;
  return std::any_of(protected_.begin(), protected_.end(),
                     [&](const IpPrefix& p) { return p.contains(address); });
}

void KernelDestinations::reconfigure(const Config& config) {
  protected_ = config.protected_prefixes;
  table_.set_half_open_threshold(config.detection.half_open, now_);
}

std::span<const std::uint16_t> KernelDestinations::begin_poll(
    std::span<const KernelSocket> syn_recv) {
  current_.assign(syn_recv.begin(), syn_recv.end());
  std::sort(current_.begin(), current_.end());
  current_.erase(std::unique(current_.begin(), current_.end()), current_.end());
  vanished_.clear();
  auto now_there = current_.begin();
  for (const HalfOpen& h : half_opens_) {
    while (now_there != current_.end() && *now_there < h.socket) ++now_there;
    if (now_there == current_.end() || !(*now_there == h.socket)) vanished_.push_back(h);
  }
  vanished_ports_.clear();
  for (const HalfOpen& h : vanished_) vanished_ports_.push_back(h.socket.local.port);
  std::sort(vanished_ports_.begin(), vanished_ports_.end());
  vanished_ports_.erase(std::unique(vanished_ports_.begin(), vanished_ports_.end()),
                        vanished_ports_.end());
  return vanished_ports_;
}

void KernelDestinations::finish_poll(std::span<const KernelSocket> completed,
                                     std::span<const KernelListener> listeners,
                                     const std::optional<TcpExtStats>& counters, TimestampNs now) {
  now_ = std::max(now, now_);
  polled_ = true;
  // Vanished first, so that the new ones' peak half-open count does not include connections
  // already gone.
  apply_vanished(completed);
  apply_current();
  count_listeners(listeners);
  apply_counters(counters);
  judge_stale();
  table_.forget_idle(now_);
  table_.settle(now_);
}

void KernelDestinations::apply_vanished(std::span<const KernelSocket> completed) {
  for (const HalfOpen& h : vanished_) {
    if (!h.counted) continue;
    if (std::binary_search(completed.begin(), completed.end(), h.socket)) {
      table_.on_completed(h.socket.local, HandshakeState::kSynRecv, h.judged_stale_at, now_);
    } else {
      table_.on_expired(h.socket.local, h.socket.remote.address, HandshakeState::kSynRecv,
                        h.judged_stale_at.has_value(), now_);
    }
  }
}

void KernelDestinations::apply_current() {
  next_half_opens_.clear();
  auto before = half_opens_.begin();
  for (const KernelSocket& s : current_) {
    while (before != half_opens_.end() && before->socket < s) ++before;  // vanished
    if (before != half_opens_.end() && before->socket == s) {
      HalfOpen kept = *before;
      kept.socket = s;  // its retransmission count moves on
      next_half_opens_.push_back(kept);
      ++before;
      continue;
    }
    HalfOpen begun{s, now_, std::nullopt, is_protected(s.local.address)};
    if (begun.counted) table_.on_answered_syn(s.local, now_);
    next_half_opens_.push_back(begun);
  }
  half_opens_.swap(next_half_opens_);
}

void KernelDestinations::judge_stale() {
  for (HalfOpen& h : half_opens_) {
    if (!h.counted || h.judged_stale_at || now_ - h.first_seen < stale_after_) continue;
    h.judged_stale_at = now_;
    table_.on_stale(h.socket.local, h.socket.remote.address, now_);
  }
}

std::size_t KernelDestinations::listener_index_for(const Endpoint& local) const noexcept {
  const auto range = std::equal_range(
      listeners_.begin(), listeners_.end(), local.port, [](const auto& a, const auto& b) {
        if constexpr (std::is_same_v<std::decay_t<decltype(a)>, KernelListenerStats>) {
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

const KernelListenerStats* KernelDestinations::listener_for(const Endpoint& local) const noexcept {
  const std::size_t index = listener_index_for(local);
  return index == kNoListener ? nullptr : &listeners_[index];
}

void KernelDestinations::count_listeners(std::span<const KernelListener> listeners) {
  listeners_.clear();
  for (const auto& l : listeners) {
    listeners_.push_back({l.local, l.v6, l.accept_queue, l.backlog, 0});
  }
  std::sort(listeners_.begin(), listeners_.end(),
            [](const auto& a, const auto& b) { return a.local < b.local; });
  std::stable_sort(listeners_.begin(), listeners_.end(),
                   [](const auto& a, const auto& b) { return a.local.port < b.local.port; });
  for (const HalfOpen& h : half_opens_) {
    if (const std::size_t l = listener_index_for(h.socket.local); l != kNoListener) {
      ++listeners_[l].syn_recv;
    }
  }
}

void KernelDestinations::apply_counters(const std::optional<TcpExtStats>& counters) {
  if (!counters) {
    attribute_cookies(0, 0);
    return;
  }
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
}

void KernelDestinations::attribute_cookies(std::uint64_t sent, std::uint64_t validated) {
  for (auto& [target, history] : cookies_) {
    history.sent_now = 0;
    history.validated_now = 0;
  }
  if (sent > 0 || validated > 0) {
    const auto full =
        static_cast<std::size_t>(std::count_if(listeners_.begin(), listeners_.end(), is_full));
    if (full == 0) {
      unattributed_ += sent;
    } else {
      // Split each listener's share over its local addresses by their SYN_RECV counts.
      std::size_t listener_index = 0;
      for (std::size_t li = 0; li < listeners_.size(); ++li) {
        const KernelListenerStats& l = listeners_[li];
        if (!is_full(l)) continue;
        const std::uint64_t share_sent = sent / full + (listener_index < sent % full ? 1 : 0);
        const std::uint64_t share_validated =
            validated / full + (listener_index < validated % full ? 1 : 0);
        ++listener_index;
        std::uint64_t given_sent = 0;
        std::uint64_t given_validated = 0;
        std::size_t seen = 0;
        // half_opens_ is sorted by local endpoint, so one destination's sockets are contiguous.
        for (std::size_t i = 0; i < half_opens_.size(); ++i) {
          const KernelSocket& s = half_opens_[i].socket;
          if (listener_index_for(s.local) != li) continue;
          ++seen;
          const bool last_of_target =
              i + 1 == half_opens_.size() || !(half_opens_[i + 1].socket.local == s.local);
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
    table_.set_stateless(it->first, stateless, h.sent_now, h.validated_now, now_);
    const bool idle =
        std::all_of(h.per_poll.begin(), h.per_poll.end(), [](auto v) { return v == 0; });
    it = idle ? cookies_.erase(it) : std::next(it);
  }
}

}  // namespace synwatch
