#pragma once
// Decodes link, IP and TCP headers of one captured frame into a TcpSegment.
//
// Packet path rules: no exceptions, no allocation, no logging. Every frame that does not
// yield a TCP segment is counted by reason in DecodeStats instead.
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
// The data link type to write a frame of `link` into a pcap file with (DLT_NULL for kNull).
int dlt_of(LinkType link) noexcept;
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

// True for the results counted as decode errors (malformed or cut short, and fragments past the
// first, which carry no TCP header); a frame that is simply not TCP/IP is no error.
constexpr bool is_decode_error(DecodeResult result) noexcept {
  return result != DecodeResult::kTcp && result != DecodeResult::kNotIp &&
         result != DecodeResult::kNotTcp && result != DecodeResult::kCount;
}

struct DecodeStats {
  std::uint64_t frames = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(DecodeResult::kCount)> by_result{};

  [[nodiscard]] std::uint64_t count(DecodeResult r) const noexcept {
    return by_result[static_cast<std::size_t>(r)];
  }
  // Frames that were malformed (as opposed to simply not TCP/IP).
  [[nodiscard]] std::uint64_t errors() const noexcept;
};

namespace decode_detail {
// Big-endian loads; the caller has checked the bytes are there.
inline std::uint16_t be16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((std::uint16_t{p[0]} << 8) | std::uint16_t{p[1]});
}
inline std::uint32_t be32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}
// Ports, numbers, flags and window from the 20 bytes every TCP header starts with.
inline void read_tcp_fixed_fields(const std::uint8_t* tcp, TcpSegment& out) noexcept {
  out.source_port = be16(tcp);
  out.destination_port = be16(tcp + 2);
  out.seq = be32(tcp + 4);
  out.ack = be32(tcp + 8);
  out.flags = tcp[13];
  out.window = be16(tcp + 14);
}
}  // namespace decode_detail

class Decoder {
 public:
  explicit Decoder(LinkType link) noexcept : link_(link) {}

  // Fills `out` (all fields but timestamp) and returns kTcp, or returns why not. kBadTcpOptions
  // still fills `out` with everything but the options after the bad one and is counted (see
  // has_segment()). For any other result `out` is left partly written and must be ignored.
  // A fragment of a protocol other than TCP is kNotTcp, not kLaterFragment, when the
  // protocol is known from the IPv4 header or the IPv6 fragment header.
  // Inline: the frame nearly every packet of a flood is takes a shortcut without a call.
  DecodeResult decode(std::span<const std::uint8_t> frame, TcpSegment& out) noexcept {
    if (link_ == LinkType::kEthernet && decode_plain_ethernet_ipv4_tcp(frame, out)) {
      ++counters_.frames;
      ++counters_.by_result[static_cast<std::size_t>(DecodeResult::kTcp)];
      return DecodeResult::kTcp;
    }
    return decode_in_general(frame, out);
  }

  [[nodiscard]] const DecodeStats& counters() const noexcept { return counters_; }
  [[nodiscard]] LinkType link_type() const noexcept { return link_; }

 private:
  // The frame nearly every packet of a flood is: Ethernet, no VLAN tag, IPv4 without options,
  // not a fragment, TCP without options, a nonzero IP total length covering both headers.
  // Decoded in one straight run, with the result the general path gives for it; false (and
  // `out` untouched) for anything else, which then takes the general path.
  static bool decode_plain_ethernet_ipv4_tcp(std::span<const std::uint8_t> frame,
                                             TcpSegment& out) noexcept;
  DecodeResult decode_in_general(std::span<const std::uint8_t> frame, TcpSegment& out) noexcept;

  LinkType link_;
  DecodeStats counters_;
};

inline bool Decoder::decode_plain_ethernet_ipv4_tcp(std::span<const std::uint8_t> frame,
                                                    TcpSegment& out) noexcept {
  constexpr std::size_t kIp = 14;
  constexpr std::size_t kTcp = kIp + 20;
  constexpr std::size_t kHeaders = 40;  // IPv4 and TCP, no options
  const std::uint8_t* const data = frame.data();
  const std::size_t size = frame.size();
  if (size < kTcp + 20) return false;
  using decode_detail::be16;
  const std::uint8_t* const ip = data + kIp;
  const std::uint8_t* const tcp = data + kTcp;
  // 0 (a segmentation-offloaded capture) fails the length test below and takes the general
  // path; any other value fits a 16-bit payload length once the headers are taken off.
  const std::size_t total_length = be16(ip + 2);
  constexpr std::uint16_t kEthertypeIpv4 = 0x0800;
  constexpr std::uint8_t kProtocolTcp = 6;
  const bool plain = be16(data + 12) == kEthertypeIpv4 && ip[0] == 0x45 && ip[9] == kProtocolTcp &&
                     (be16(ip + 6) & 0x1fff) == 0 && (tcp[12] >> 4) == 5 &&
                     total_length >= kHeaders;
  if (!plain) return false;
  out.hop_limit = ip[8];
  out.source.assign_v4(ip + 12);
  out.destination.assign_v4(ip + 16);
  decode_detail::read_tcp_fixed_fields(tcp, out);
  out.payload_length = static_cast<std::uint16_t>(total_length - kHeaders);
  out.options = TcpOptions{};
  return true;
}

}  // namespace synwatch
