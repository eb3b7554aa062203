#pragma once
// The kernel's own table of half-open connections (its SYN_RECV request sockets, sock_diag.hpp)
// and its SYN cookie counters (tcp_stats.hpp), turned into per-destination half-open connections
// in a DestinationTable of their own, which the detector reads exactly as it reads the wire's.
// Nothing here is made to look like packets: the kernel reports connections, and they are
// counted as connections.
//
// Per poll, the set of SYN_RECV sockets is diffed against the previous poll's (both sorted by
// 4-tuple):
//   new 4-tuple      -> a half-open connection began at its local address:port, from its peer,
//                       already answered (the kernel holds it in SYN_RECV); first seen at this
//                       poll's time;
//   vanished 4-tuple -> completed if the connection now exists in a state past the handshake
//                       (ESTABLISHED .. TIME_WAIT, queried only for the ports concerned), else
//                       expired (the kernel gave up, or the peer reset).
// Nothing expires here on its own: the kernel is the authority on when a request socket goes.
//
// Stale or young, as on the wire: a half-open connection still there once it is older than its
// judgement age, counted from the poll that first saw it, is stale, and its source enters the
// destination's source figures; one that vanishes first was young. The kernel keeps no
// completion times to learn a destination's normal from, so every destination is judged at the
// no-history age (detection.stale.no_history, by default 1 s: the initial SYN-ACK timeout, when
// the kernel retransmits its SYN-ACK). A poll sees a socket only to the poll interval's
// precision, so the age is that of the first poll that saw it.
//
// SYN cookies. Once a listener's SYN queue is full (its SYN_RECV count reaches its backlog) and
// tcp_syncookies is 1, the kernel answers further SYNs with cookies and keeps no request socket:
// the SYN_RECV count stops growing exactly when the flood gets worse. The rise of SyncookiesSent
// between two polls is then attributed to the listeners whose SYN queue is full (evenly; within a
// listener, to its local addresses in proportion to their SYN_RECV counts) and added to those
// destinations as stateless half-open connections over the last aggregation.window, as unsourced
// SYNs (source figures stay those of the request sockets the kernel did keep). Cookies validated
// by returning ACKs (SyncookiesRecv) count as completed handshakes. Limits: the counters are
// namespace-wide, so with several full listeners the split is a guess; cookies sent while no
// listener looks full (tcp_syncookies=2, or a queue that drained between polls) are counted as
// unattributed and raise nothing.
//
// Only connections to `protected` destinations are counted (decided when a connection is first
// seen); the listeners' SYN_RECV counts, syn_recv_total() and the cookie attribution cover every
// request socket, as the kernel's own figures do.
// Time: the caller's clock (wall-clock nanoseconds in live mode), never going backwards.
// Memory: the DestinationTable is preallocated; the per-connection records grow to the largest
// SYN_RECV table seen (the kernel bounds it by its listeners' backlogs) and are reused.
// Thread safety: none; one thread polls and reads figures. The spans passed in are read during
// the call only.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "aggregate/destination_table.hpp"
#include "common/ip_address.hpp"
#include "common/time.hpp"
#include "config/config.hpp"
#include "kernel/sock_diag.hpp"
#include "kernel/tcp_stats.hpp"

namespace synwatch {

struct KernelListenerStats {
  Endpoint local;
  bool v6 = false;
  std::uint32_t accept_queue = 0;
  std::uint32_t backlog = 0;
  std::uint32_t syn_recv = 0;  // request sockets in this listener's SYN queue
};

class KernelDestinations {
 public:
  // `interval`: the poll period (sizes the SYN cookie window: aggregation.window / interval).
  KernelDestinations(const Config& config, DurationNs interval, std::uint64_t hash_seed = 0);

  // Phase 1 of a poll: diffs this poll's SYN_RECV sockets with the previous poll's. Returns the
  // local ports of vanished sockets, for which the caller fetches completed connections.
  std::span<const std::uint16_t> begin_poll(std::span<const KernelSocket> syn_recv);
  // Phase 2 (`completed` sorted): applies the diff at time `now` (vanished connections first,
  // then new ones), the listeners and the TcpExt counters, judges the connections that have grown
  // stale, and settles the table for the detector.
  void finish_poll(std::span<const KernelSocket> completed,
                   std::span<const KernelListener> listeners,
                   const std::optional<TcpExtStats>& counters, TimestampNs now);

  // Protected prefixes and the half-open threshold; the judgement stays as built.
  void reconfigure(const Config& config);

  [[nodiscard]] const DestinationTable& table() const noexcept { return table_; }
  [[nodiscard]] DestinationTable& table() noexcept { return table_; }
  // The listener serving `local` (an exact address before a wildcard); nullptr if none.
  [[nodiscard]] const KernelListenerStats* listener_for(const Endpoint& local) const noexcept;
  [[nodiscard]] std::span<const KernelListenerStats> listeners() const noexcept {
    return listeners_;
  }
  [[nodiscard]] bool polled() const noexcept { return polled_; }
  [[nodiscard]] TimestampNs last_poll() const noexcept { return now_; }
  // Request sockets the kernel held at the last poll, every destination's.
  [[nodiscard]] std::size_t syn_recv_total() const noexcept { return half_opens_.size(); }
  [[nodiscard]] double syncookies_sent_rate() const noexcept { return syncookies_sent_rate_; }
  [[nodiscard]] double listen_overflows_rate() const noexcept { return listen_overflows_rate_; }
  [[nodiscard]] std::uint64_t unattributed_syncookies() const noexcept { return unattributed_; }
  // The age at which a connection counts as stale (see the header comment).
  [[nodiscard]] DurationNs stale_after() const noexcept { return stale_after_; }
  // Preallocated bytes of the destination table.
  [[nodiscard]] std::size_t memory_bytes() const noexcept { return table_.memory_bytes(); }

 private:
  // One request socket the kernel holds, as this view has followed it from poll to poll.
  struct HalfOpen {
    KernelSocket socket;
    TimestampNs first_seen = 0;
    std::optional<TimestampNs> judged_stale_at;
    bool counted = false;  // its destination was protected when it was first seen
  };
  struct CookieHistory {
    std::vector<std::int64_t> per_poll;  // attributed cookies sent minus validated, per poll
    std::size_t at = 0;
    std::int64_t sum = 0;
    std::uint32_t sent_now = 0;
    std::uint32_t validated_now = 0;
  };
  static constexpr std::size_t kNoListener = SIZE_MAX;

  [[nodiscard]] bool is_protected(const IpAddress& address) const noexcept;
  void apply_vanished(std::span<const KernelSocket> completed);
  // Keeps the connections still there and starts the new ones, in 4-tuple order.
  void apply_current();
  void judge_stale();
  void count_listeners(std::span<const KernelListener> listeners);
  void apply_counters(const std::optional<TcpExtStats>& counters);
  void attribute_cookies(std::uint64_t sent, std::uint64_t validated);
  [[nodiscard]] std::size_t listener_index_for(const Endpoint& local) const noexcept;

  std::vector<IpPrefix> protected_;
  std::size_t cookie_slots_;
  DestinationTable table_;
  DurationNs stale_after_;
  TimestampNs now_ = 0;
  bool polled_ = false;

  std::vector<HalfOpen> half_opens_;  // sorted by socket; the previous poll's until finish_poll
  std::vector<HalfOpen> next_half_opens_;
  std::vector<KernelSocket> current_;  // this poll's, sorted and unique
  std::vector<HalfOpen> vanished_;
  std::vector<std::uint16_t> vanished_ports_;
  std::vector<KernelListenerStats> listeners_;  // sorted by port

  std::optional<TcpExtStats> last_counters_;
  TimestampNs last_counters_at_ = 0;
  double syncookies_sent_rate_ = 0;
  double listen_overflows_rate_ = 0;
  std::uint64_t unattributed_ = 0;
  std::unordered_map<Endpoint, CookieHistory, EndpointHash> cookies_;
};

}  // namespace synwatch
