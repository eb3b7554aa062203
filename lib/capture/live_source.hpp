#pragma once
// A live capture on one network interface through libpcap (TPACKET_V3 memory-mapped ring on
// Linux). Non-blocking: the caller polls selectable_fd() and calls dispatch() when it is readable.
//
// Buffer ownership: as for every PacketSource, a PacketView points into libpcap's ring and is valid
// only during the on_packet call.
// Thread safety: one thread drives a source; stats() is called from that same thread.

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>

#include <pcap/pcap.h>

#include "common/error.hpp"
#include "capture/packet_source.hpp"

namespace synwatch {

struct LiveCaptureOptions {
  std::string interface = "any";
  int snap_length = 160;
  int buffer_bytes = 64 << 20;
  int poll_timeout_ms = 100;  // how long the kernel may hold a partly filled block
  std::string filter;         // BPF; empty = default_capture_filter()
  bool promiscuous = false;
};

// Passes only what the handshake tracker needs: SYN, SYN-ACK, RST, FIN and payload-free ACKs,
// for IPv4 and for IPv6 (TCP directly after the fixed header; IPv6 with extension headers is
// passed whole so the decoder can walk it).
std::string default_capture_filter();

struct CaptureStats {
  std::uint64_t received = 0;           // ps_recv: packets that passed the filter
  std::uint64_t dropped_kernel = 0;     // ps_drop: no room in the ring
  std::uint64_t dropped_interface = 0;  // ps_ifdrop: dropped by the interface/driver
};

// Why a capture could not be opened: callers branch on `kind` (a missing privilege is fatal to
// a daemon, a missing interface is retried); `message` names the interface and says what to do.
struct CaptureOpenError {
  enum class Kind : std::uint8_t {
    kPermission,   // CAP_NET_RAW missing
    kNoInterface,  // no such interface (yet), or it is down
    kOther,
  };
  Kind kind = Kind::kOther;
  std::string message;
};

// What live detection needs of one capture socket beyond reading it: LivePcapSource is the real
// one; tests of what opens and reopens captures stand in their own.
class LiveSource : public PacketSource {
 public:
  [[nodiscard]] virtual int selectable_fd() const noexcept = 0;
  // Joins this socket to a PACKET_FANOUT group with flow hashing, so that the kernel spreads the
  // interface's packets over the group's sockets and sends both directions of a connection to the
  // same one (the hash is symmetric). Without `group`, creates a new group with an id the kernel
  // chooses (unique in the network namespace, so no other process's group is joined by accident).
  // Returns the group id for the other sockets to join.
  virtual Expected<std::uint16_t> join_fanout(std::optional<std::uint16_t> group) = 0;
  // Totals since the socket opened.
  virtual Expected<CaptureStats> stats() = 0;
};

class LivePcapSource final : public LiveSource {
 public:
  // Opens and activates the capture.
  static std::expected<std::unique_ptr<LivePcapSource>, CaptureOpenError> open(
      const LiveCaptureOptions& options);
  ~LivePcapSource() override;
  LivePcapSource(const LivePcapSource&) = delete;
  LivePcapSource& operator=(const LivePcapSource&) = delete;

  DispatchResult dispatch(std::size_t max_packets, PacketHandler& handler) override;
  [[nodiscard]] LinkType link_type() const override { return link_; }
  [[nodiscard]] std::string name() const override { return options_.interface; }
  [[nodiscard]] std::string error() const override { return error_; }

  [[nodiscard]] int selectable_fd() const noexcept override;
  Expected<std::uint16_t> join_fanout(std::optional<std::uint16_t> group) override;
  // pcap_stats counters are 32-bit and wrap; this widens them to 64-bit monotonic totals.
  Expected<CaptureStats> stats() override;
  [[nodiscard]] const LiveCaptureOptions& options() const noexcept { return options_; }

 private:
  LivePcapSource(pcap_t* handle, LinkType link, LiveCaptureOptions options);
  static void on_pcap_packet(u_char* user, const pcap_pkthdr* header, const u_char* bytes);

  pcap_t* handle_;
  LinkType link_;
  LiveCaptureOptions options_;
  std::string error_;
  PacketHandler* handler_ = nullptr;
  bool nanosecond_timestamps_ = false;
  CaptureStats totals_;
  pcap_stat last_{};
};

}  // namespace synwatch
