#pragma once
// Decodes link, IP and TCP headers of one captured frame into a TcpSegment.
//
// Packet path rules: no exceptions, no allocation, no logging. Every frame that does not
// yield a TCP segment is counted by reason in DecodeCounters instead.
// Thread safety: a Decoder is used by one thread at a time; give each capture worker its own.
// Buffer ownership: decode() reads the frame only during the call and keeps no pointer to it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "decode/tcp_segment.hpp"

namespace synwatch {

enum class LinkType : std::uint8_t {
  kEthernet,   // DLT_EN10MB, with any number of 802.1Q / 802.1ad (QinQ) tags
  kLinuxSll,   // DLT_LINUX_SLL ("any" device, cooked v1)
  kLinuxSll2,  // DLT_LINUX_SLL2 (cooked v2)
  kRaw,        // DLT_RAW / LINKTYPE_RAW: IPv4 or IPv6 by the version nibble
  kNull,       // DLT_NULL / DLT_LOOP: 4-byte address family (either byte order)
  kIpv4,       // DLT_IPV4
  kIpv6,       // DLT_IPV6
};

// Maps a libpcap data link type (pcap_datalink()) to a LinkType; nullopt if unsupported.
std::optional<LinkType> link_type_from_dlt(int dlt) noexcept;
std::string_view to_string(LinkType link) noexcept;

// Why a frame produced no TCP segment (kTcp means it did).
enum class DecodeResult : std::uint8_t {
  kTcp = 0,
  kNotIp,               // link payload is ARP, LLDP, ... : not an error, just not ours
  kNotTcp,              // IP packet carrying UDP, ICMP, ...: not ours
  kLaterFragment,       // IPv4/IPv6 fragment with offset > 0: carries no TCP header
  kTruncatedLink,       // frame shorter than its link header
  kTruncatedIp,         // shorter than the IP header or its declared header length
  kBadIpVersion,        // version nibble does not match the link's ethertype / family
  kBadIpHeader,         // IPv4 IHL < 5, total length < header, ...
  kBadExtensionHeader,  // IPv6 extension header chain runs past the packet or is too long
  kTruncatedTcp,        // shorter than the TCP header or its data offset (snap length cut)
  kBadTcpHeader,        // data offset < 5
  kBadTcpOptions,       // an option's length runs past the header (segment still decoded)
  kCount,
};
std::string_view to_string(DecodeResult reason) noexcept;  // "truncated_tcp", ...

// True when `out` holds a usable segment. Callers must treat kBadTcpOptions like kTcp: the
// addresses, ports, numbers and flags are sound, only options after the bad one are missing,
// and a flood of SYNs with junk options is exactly what the detector has to see.
constexpr bool has_segment(DecodeResult result) noexcept {
  return result == DecodeResult::kTcp || result == DecodeResult::kBadTcpOptions;
}

struct DecodeCounters {
  std::uint64_t frames = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(DecodeResult::kCount)> by_result{};

  [[nodiscard]] std::uint64_t count(DecodeResult r) const noexcept {
    return by_result[static_cast<std::size_t>(r)];
  }
  // Frames that were malformed (as opposed to simply not TCP/IP).
  [[nodiscard]] std::uint64_t errors() const noexcept;
};

class Decoder {
 public:
  explicit Decoder(LinkType link) noexcept : link_(link) {}

  // Fills `out` (all fields but timestamp) and returns kTcp, or returns why not. kBadTcpOptions
  // still fills `out` with everything but the options after the bad one and is counted (see
  // has_segment()). For any other result `out` is left partly written and must be ignored.
  // A fragment of a protocol other than TCP is kNotTcp, not kLaterFragment, when the
  // protocol is known from the IPv4 header or the IPv6 fragment header.
  DecodeResult decode(std::span<const std::uint8_t> frame, TcpSegment& out) noexcept;

  [[nodiscard]] const DecodeCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] LinkType link_type() const noexcept { return link_; }

 private:
  LinkType link_;
  DecodeCounters counters_;
};

}  // namespace synwatch
