#pragma once
// The kernel's view of half-open connections, judged by the same detector as the wire's: each
// poll's SYN_RECV request sockets and TcpExt counters (lib/kernel) become per-destination
// half-open connections (aggregate/kernel_destinations.hpp: the diffing, stale judgement and SYN
// cookie attribution), over which the view's own Detector runs, so the seed's condition (many
// SYN_RECV from random sources) is judged on the kernel's table with its own distinct-source and
// entropy measures.
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
#include <vector>

#include "common/error.hpp"
#include "aggregate/destination_table.hpp"
#include "aggregate/kernel_destinations.hpp"
#include "config/config.hpp"
#include "detect/detector.hpp"
#include "detect/incident.hpp"
#include "kernel/sock_diag.hpp"
#include "kernel/tcp_stats.hpp"

namespace synwatch {

struct KernelDestinationStats {
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
  std::optional<TcpExtStats> tcp_ext;  // monotonic since boot: export as *_total counters
  TcpSysctls sysctls;
  double syncookies_sent_rate = 0;
  double listen_overflows_rate = 0;
  std::uint64_t unattributed_syncookies = 0;
  std::vector<KernelListenerStats> listeners;
  // At most the requested number: open incidents first, then by SYN_RECV count.
  std::vector<KernelDestinationStats> destinations;
  std::size_t destinations_unexported = 0;
  std::size_t open_incidents = 0;
};

class KernelView {
 public:
  // `interval`: the poll period (sizes the SYN cookie window: aggregation.window / interval).
  KernelView(const Config& config, DurationNs interval, std::uint64_t hash_seed = 0);

  // Phase 1 of a poll: see KernelDestinations::begin_poll. Returns the local ports of vanished
  // sockets, for which the caller fetches completed connections.
  std::span<const std::uint16_t> begin_poll(std::span<const KernelSocket> syn_recv) {
    return destinations_.begin_poll(syn_recv);
  }
  // Phase 2 (`completed` sorted): applies the poll at time `now`, then lets the detector
  // evaluate; its events go to `sink` with stats.kernel filled in.
  void finish_poll(std::span<const KernelSocket> completed,
                   std::span<const KernelListener> listeners,
                   const std::optional<TcpExtStats>& counters, TimestampNs now, EventSink& sink);

  // stats.kernel for `target` (nullopt before the first poll).
  [[nodiscard]] std::optional<KernelIncidentStats> figures_for(const Endpoint& target) const;
  void fill_snapshot(KernelViewSnapshot& out, std::size_t max_destinations) const;

  void reconfigure(const Config& config);

  [[nodiscard]] const Detector& detector() const noexcept { return detector_; }
  // For carrying on or ending incidents across a restart (same thread as the polls).
  [[nodiscard]] Detector& detector() noexcept { return detector_; }
  [[nodiscard]] const DestinationTable& destinations() const noexcept {
    return destinations_.table();
  }
  // Preallocated bytes of its tables.
  [[nodiscard]] std::size_t memory_bytes() const noexcept { return destinations_.memory_bytes(); }
  [[nodiscard]] std::size_t syn_recv_total() const noexcept {
    return destinations_.syn_recv_total();
  }
  [[nodiscard]] std::uint64_t unattributed_syncookies() const noexcept {
    return destinations_.unattributed_syncookies();
  }

 private:
  KernelDestinations destinations_;
  Detector detector_;
};

// Forwards events, adding stats.kernel from the attached KernelView (the wire view's events when
// both views run). Same thread as the view.
class KernelFiguresSink final : public EventSink {
 public:
  explicit KernelFiguresSink(EventSink& next) noexcept : next_(next) {}
  void attach(const KernelView* view) noexcept { view_ = view; }
  void publish(const IncidentEvent& event) override;

 private:
  EventSink& next_;
  const KernelView* view_ = nullptr;
};

// The live kernel source: sock_diag poller, TcpExt reader and KernelView together, polled by the
// owner's thread every kernel.interval. Same threading rules as KernelView.
class KernelSource {
 public:
  static Expected<std::unique_ptr<KernelSource>> open(const Config& config,
                                                      std::uint64_t hash_seed);
  // One poll at `now`. `publish`: false when the wire view raises the incidents and the kernel
  // view only supplies figures. Errors are kept for the snapshot and returned once per change.
  std::optional<std::string> poll(TimestampNs now, EventSink& sink, bool publish);
  void reconfigure(const Config& config);  // re-reads the sysctls too
  [[nodiscard]] KernelView& view() noexcept { return view_; }
  [[nodiscard]] SockDiagPoller& poller() noexcept { return poller_; }
  [[nodiscard]] const TcpSysctls& sysctls() const noexcept { return sysctls_; }
  void fill_snapshot(KernelViewSnapshot& out, std::size_t max_destinations) const;

 private:
  KernelSource(const Config& config, SockDiagPoller poller, std::uint64_t hash_seed);

  SockDiagPoller poller_;
  TcpStatsReader netstat_;
  KernelView view_;
  TcpSysctls sysctls_;
  std::optional<TcpExtStats> counters_;
  std::string last_error_;
  bool healthy_ = false;
  std::chrono::nanoseconds last_duration_{0};
};

}  // namespace synwatch
