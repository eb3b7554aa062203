#pragma once
// The live captures: the configured interfaces, each opened as one socket per capture worker
// (all of an interface's sockets joined in one PACKET_FANOUT group when there are several), closed
// when a socket fails or the interface vanishes, and reopened with exponential backoff (1 s
// doubling to 30 s). Keeps each interface's health and its capture and decode counters summed over
// every opening. Sockets are opened through an injected opener and retries scheduled by an
// injected monotonic clock, so tests need neither privileges nor real time.
//
// Thread safety: none of its own. The coordinator changes the set; a capture worker reads socket
// i of every interface (and sets its `failed`) while the coordinator does not change the set, which
// the pipeline guarantees by parking the workers.

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "capture/live_source.hpp"
#include "common/counter_members.hpp"
#include "common/monotonic_clock.hpp"
#include "config/config.hpp"
#include "decode/decoder.hpp"

namespace synwatch {

struct InterfaceHealth {
  std::string name;
  bool open = false;
  std::string last_error;  // why it is closed, if it is
  std::uint64_t reopen_attempts = 0;
  CaptureStats stats;  // summed over every time the interface was (re)opened
};

// The /metrics family of what a capture lost (export/ adds the interface's name). Declared here,
// where the interfaces' figures leave for the snapshot, so that capture/ keeps to the packet path.
// A new loss must be listed here by hand: received packets are a family of their own, so the list
// covers part of CaptureStats and no size check can catch it.
inline constexpr LabelledFigures<CaptureStats, std::uint64_t, 2> kCaptureDrops{
    .metric = "synwatch_capture_dropped_packets_total",
    .help =
        "Packets dropped before synwatch saw them: where=kernel (capture ring full) or "
        "interface (driver).",
    .kind = FigureKind::kCounter,
    .label = "where",
    .members = {{{&CaptureStats::dropped_kernel, "kernel"},
                 {&CaptureStats::dropped_interface, "interface"}}}};

class CaptureSet {
 public:
  using Opener = std::function<std::expected<std::unique_ptr<LiveSource>, CaptureOpenError>(
      const LiveCaptureOptions&)>;
  // LivePcapSource::open.
  static Opener pcap_opener();

  static constexpr std::chrono::milliseconds kFirstBackoff{1000};
  static constexpr std::chrono::milliseconds kMaxBackoff{30'000};

  // A decoder on a cache line of its own: its counters are written for every frame.
  struct alignas(64) CaptureDecoder : Decoder {
    using Decoder::Decoder;
  };
  // One socket of an interface, read by one thread (worker i reads socket i).
  struct Capture {
    std::unique_ptr<LiveSource> source;
    std::unique_ptr<CaptureDecoder> decoder;
    // Set by the reading thread when the socket failed; close_failed() then closes the interface.
    bool failed = false;
    std::string error;
  };

  CaptureSet(std::size_t sockets_per_interface, Opener opener,
             MonotonicNow monotonic_now = steady_now);

  // Replaces the interfaces by `config`'s (none in kernel-only mode), all closed and due to open.
  void build(const Config& config);
  // Opens every closed interface now, whatever its backoff; the errors of those that did not open.
  std::vector<CaptureOpenError> open_closed();
  // Opens the closed interfaces whose backoff has run out.
  void reopen_due();
  // Closes every interface one of whose sockets a reader marked failed.
  void close_failed();

  [[nodiscard]] std::size_t interface_count() const noexcept { return interfaces_.size(); }
  // Calls visit(Capture&) for socket `socket` of every open interface, unless it failed.
  template <typename Visit>
  void for_each_live(std::size_t socket, Visit&& visit) {
    for (auto& interface : interfaces_) {
      if (interface.captures.size() <= socket || interface.captures[socket].failed) continue;
      visit(interface.captures[socket]);
    }
  }

  // Every interface's health, its capture counters summed over its openings.
  [[nodiscard]] std::vector<InterfaceHealth> health();
  // Decode counters of every decoder, past openings' included.
  [[nodiscard]] DecodeStats decode_counters() const;

 private:
  struct Interface {
    LiveCaptureOptions options;
    std::vector<Capture> captures;  // empty while closed
    InterfaceHealth health;
    CaptureStats stats_base;  // totals of earlier openings
    MonotonicTime retry_at{};
    std::chrono::milliseconds backoff = kFirstBackoff;
    CaptureOpenError last_open_error;  // why the last try_open failed
  };

  bool try_open(Interface& interface);
  void close_interface(Interface& interface, const std::string& error);
  void retire_decoders(Interface& interface);

  std::size_t sockets_per_interface_;
  Opener opener_;
  MonotonicNow monotonic_now_;
  std::vector<Interface> interfaces_;
  DecodeStats decode_retired_;  // counts of decoders replaced by reopening
};

}  // namespace synwatch
