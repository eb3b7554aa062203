#pragma once
// The kernel's view of half-open connections, fed to the same per-destination machinery as the
// wire: each poll's set of SYN_RECV request sockets (sock_diag.hpp) becomes FlowUpdates for the
// view's own HandshakeTable -> DestinationTable -> Detector, so the seed's condition (many
// SYN_RECV from random sources) is judged on the kernel's table with its own distinct-source and
// entropy measures.
//
// Per poll, the set is diffed against the previous poll's (both sorted):
//   new 4-tuple       -> a SYN then a valid SYN-ACK (the kernel holds it in SYN_RECV);
//   vanished 4-tuple  -> the final ACK (completed) if the connection now exists in a state past
//                        the handshake (ESTABLISHED .. TIME_WAIT, queried only for the ports
//                        concerned), else an expiry (the kernel gave up, or the peer reset).
// The view's table never expires entries on its own: the kernel is the authority on when a
// request socket goes.
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
// Time: the caller's clock (wall-clock nanoseconds in live mode); the detector is evaluated on
// every poll, so an incident starts at the first poll at least detection.for after the crossing.
// Thread safety: none; one thread polls and reads figures. Buffer ownership: the view owns its
// tables and reused vectors; the spans passed in are read during the call only.

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "aggregate/destination_table.hpp"
#include "config/config.hpp"
#include "detect/detector.hpp"
#include "detect/incident.hpp"
#include "flow/handshake_table.hpp"
#include "kernel/sock_diag.hpp"
#include "kernel/tcp_stats.hpp"

namespace synwatch {

struct KernelListenerFigures {
  Endpoint local;
  bool v6 = false;
  std::uint32_t accept_queue = 0;
  std::uint32_t backlog = 0;
  std::uint32_t syn_recv = 0;  // request sockets in this listener's SYN queue
};

struct KernelDestinationFigures {
  Endpoint target;
  std::uint32_t syn_recv = 0;
  std::uint32_t stateless = 0;
  double distinct_sources = 0;
  double source_entropy = 0;
  std::optional<AttackKind> attack;  // while the kernel view has an incident open here
};

// Plain figures for metrics and status, copied out by the polling thread.
struct KernelViewSnapshot {
  bool enabled = false;
  bool healthy = false;  // the last poll succeeded
  std::string last_error;
  std::uint64_t polls = 0;
  std::uint64_t poll_failures = 0;
  std::chrono::nanoseconds last_poll_duration{0};
  std::size_t syn_recv_total = 0;
  std::optional<TcpExtCounters> tcp_ext;  // monotonic since boot: export as *_total counters
  TcpSysctls sysctls;
  double syncookies_sent_rate = 0;
  double listen_overflows_rate = 0;
  std::uint64_t unattributed_syncookies = 0;
  std::vector<KernelListenerFigures> listeners;
  // At most the requested number: open incidents first, then by SYN_RECV count.
  std::vector<KernelDestinationFigures> destinations;
  std::size_t destinations_unexported = 0;
  std::size_t open_incidents = 0;
};

class KernelView {
 public:
  // `interval`: the poll period (sizes the SYN cookie window: aggregation.window / interval).
  KernelView(const Config& config, DurationNs interval, std::uint64_t hash_seed = 0);

  // Phase 1 of a poll: diffs this poll's SYN_RECV sockets with the previous poll's. Returns the
  // local ports of vanished sockets, for which the caller fetches completed connections.
  std::span<const std::uint16_t> begin_poll(std::span<const KernelSocket> syn_recv);
  // Phase 2 (`completed` sorted): applies the diff, the listeners and the TcpExt counters at time
  // `now`, then lets the detector evaluate; its events go to `sink` with stats.kernel filled in.
  void finish_poll(std::span<const KernelSocket> completed,
                   std::span<const KernelListener> listeners,
                   const std::optional<TcpExtCounters>& counters, TimestampNs now, EventSink& sink);

  // stats.kernel for `target` (nullopt before the first poll).
  [[nodiscard]] std::optional<KernelIncidentStats> figures_for(const Endpoint& target);
  void fill_snapshot(KernelViewSnapshot& out, std::size_t max_destinations);

  void reconfigure(const Config& config);

  [[nodiscard]] const Detector& detector() const noexcept { return detector_; }
  // For carrying on or ending incidents across a restart (same thread as the polls).
  [[nodiscard]] Detector& detector() noexcept { return detector_; }
  [[nodiscard]] const DestinationTable& destinations() const noexcept { return destinations_; }
  // Preallocated bytes of its tables.
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    return handshakes_.memory_bytes() + destinations_.memory_bytes();
  }
  [[nodiscard]] std::size_t syn_recv_total() const noexcept { return previous_.size(); }
  [[nodiscard]] std::uint64_t unattributed_syncookies() const noexcept { return unattributed_; }

 private:
  struct CookieHistory {
    std::vector<std::int64_t> per_poll;  // attributed cookies sent minus validated, per poll
    std::size_t at = 0;
    std::int64_t sum = 0;
    std::uint32_t sent_now = 0;
    std::uint32_t validated_now = 0;
  };

  [[nodiscard]] bool is_protected(const IpAddress& address) const noexcept;
  void feed(const TcpSegment& segment, bool as_expiry);
  void attribute_cookies(std::uint64_t sent, std::uint64_t validated);
  static constexpr std::size_t kNoListener = SIZE_MAX;
  // Index into listeners_ of the listener serving `local` (exact address before wildcard).
  [[nodiscard]] std::size_t listener_for(const Endpoint& local) const noexcept;

  std::vector<IpPrefix> protected_;
  std::size_t cookie_slots_;
  HandshakeTable handshakes_;
  DestinationTable destinations_;
  Detector detector_;
  TimestampNs now_ = 0;
  bool polled_ = false;

  std::vector<KernelSocket> previous_;
  std::vector<KernelSocket> current_;
  std::vector<KernelSocket> added_;
  std::vector<KernelSocket> vanished_;
  std::vector<std::uint16_t> vanished_ports_;
  std::vector<KernelListenerFigures> listeners_;  // sorted by port
  TcpSegment segment_;

  std::optional<TcpExtCounters> last_counters_;
  TimestampNs last_counters_at_ = 0;
  double syncookies_sent_rate_ = 0;
  double listen_overflows_rate_ = 0;
  std::uint64_t unattributed_ = 0;
  std::unordered_map<Endpoint, CookieHistory, EndpointHash> cookies_;
};

// Forwards events, adding stats.kernel from the attached KernelView (the wire view's events when
// both views run). Same thread as the view.
class KernelFiguresSink final : public EventSink {
 public:
  explicit KernelFiguresSink(EventSink& next) noexcept : next_(next) {}
  void attach(KernelView* view) noexcept { view_ = view; }
  void publish(const IncidentEvent& event) override;

 private:
  EventSink& next_;
  KernelView* view_ = nullptr;
};

// The live kernel source: sock_diag poller, TcpExt reader and KernelView together, polled by the
// owner's thread every kernel.interval. Same threading rules as KernelView.
class KernelSource {
 public:
  static std::expected<std::unique_ptr<KernelSource>, std::string> open(const Config& config,
                                                                        std::uint64_t hash_seed);
  // One poll at `now`. `publish`: false when the wire view raises the incidents and the kernel
  // view only supplies figures. Errors are kept for the snapshot and returned once per change.
  std::optional<std::string> poll(TimestampNs now, EventSink& sink, bool publish);
  void reconfigure(const Config& config);  // re-reads the sysctls too
  [[nodiscard]] KernelView& view() noexcept { return view_; }
  [[nodiscard]] SockDiagPoller& poller() noexcept { return poller_; }
  [[nodiscard]] const TcpSysctls& sysctls() const noexcept { return sysctls_; }
  void fill_snapshot(KernelViewSnapshot& out, std::size_t max_destinations);

 private:
  KernelSource(const Config& config, SockDiagPoller poller, std::uint64_t hash_seed);

  SockDiagPoller poller_;
  TcpStatsReader netstat_;
  KernelView view_;
  TcpSysctls sysctls_;
  std::optional<TcpExtCounters> counters_;
  std::string last_error_;
  bool healthy_ = false;
  std::chrono::nanoseconds last_duration_{0};
};

}  // namespace synwatch
