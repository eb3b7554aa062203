#include "decode/decoder.hpp"

#include <algorithm>
#include <cstring>

// Every read below is preceded by a length check against the bytes actually captured (or,
// where smaller, the length the IP header declares), so no input can make the decoder read
// outside `frame`. Offsets are std::size_t and compared before they are dereferenced.

namespace synwatch {
namespace {

using Bytes = const std::uint8_t*;

using decode_detail::be16;
using decode_detail::be32;

inline std::uint32_t load_le32(Bytes p) noexcept {
  return (std::uint32_t{p[3]} << 24) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[1]} << 8) |
         std::uint32_t{p[0]};
}

namespace ethertype {
inline constexpr std::uint16_t kIpv4 = 0x0800;
inline constexpr std::uint16_t kIpv6 = 0x86dd;
inline constexpr std::uint16_t kVlan = 0x8100;        // 802.1Q
inline constexpr std::uint16_t kQinQ = 0x88a8;        // 802.1ad
inline constexpr std::uint16_t kQinQLegacy = 0x9100;  // pre-standard QinQ
}  // namespace ethertype

namespace ip_proto {
inline constexpr std::uint8_t kHopByHop = 0;
inline constexpr std::uint8_t kTcp = 6;
inline constexpr std::uint8_t kRouting = 43;
inline constexpr std::uint8_t kFragment = 44;
inline constexpr std::uint8_t kAuthentication = 51;
inline constexpr std::uint8_t kDestinationOptions = 60;
inline constexpr std::uint8_t kMobility = 135;
inline constexpr std::uint8_t kHip = 139;
inline constexpr std::uint8_t kShim6 = 140;
}  // namespace ip_proto

// RFC 8200 bounds nothing, but real stacks send at most a handful; a longer chain is either
// an attack on parsers or garbage, and the bound keeps the per-packet cost fixed.
inline constexpr int kMaxExtensionHeaders = 8;

inline constexpr std::size_t kEthernetHeader = 14;
inline constexpr std::size_t kVlanTag = 4;
inline constexpr std::size_t kSllHeader = 16;
inline constexpr std::size_t kSll2Header = 20;
inline constexpr std::size_t kNullHeader = 4;
inline constexpr std::size_t kIpv4MinHeader = 20;
inline constexpr std::size_t kIpv6Header = 40;
inline constexpr std::size_t kTcpMinHeader = 20;

// Extension headers whose length is (byte 1 + 1) * 8 (RFC 7045's list minus AH and ESP).
inline bool is_generic_extension(std::uint8_t next_header) noexcept {
  switch (next_header) {
    case ip_proto::kHopByHop:
    case ip_proto::kRouting:
    case ip_proto::kDestinationOptions:
    case ip_proto::kMobility:
    case ip_proto::kHip:
    case ip_proto::kShim6:
      return true;
    default:
      return false;
  }
}

// Parses TCP options in [begin, end); stops at the first malformed option.
inline DecodeResult decode_tcp_options(Bytes data, std::size_t begin, std::size_t end,
                                       TcpOptions& options) noexcept {
  std::size_t at = begin;
  while (at < end) {
    const std::uint8_t kind = data[at];
    if (kind == 0) break;  // end of option list
    if (kind == 1) {       // no-operation padding
      ++at;
      continue;
    }
    if (at + 1 >= end) return DecodeResult::kBadTcpOptions;
    const std::size_t length = data[at + 1];
    if (length < 2 || at + length > end) return DecodeResult::kBadTcpOptions;
    const Bytes value = data + at + 2;
    switch (kind) {
      case 2:  // maximum segment size
        if (length != 4) return DecodeResult::kBadTcpOptions;
        options.mss = be16(value);
        options.has_mss = true;
        break;
      case 3:  // window scale
        if (length != 3) return DecodeResult::kBadTcpOptions;
        options.window_scale = value[0];
        options.has_window_scale = true;
        break;
      case 4:  // SACK permitted
        if (length != 2) return DecodeResult::kBadTcpOptions;
        options.sack_permitted = true;
        break;
      case 8:  // timestamps
        if (length != 10) return DecodeResult::kBadTcpOptions;
        options.timestamp_value = be32(value);
        options.timestamp_echo = be32(value + 4);
        options.has_timestamps = true;
        break;
      default:  // SACK blocks, MD5, TFO, MPTCP, ...: not needed, skipped by length
        break;
    }
    at += length;
  }
  return DecodeResult::kTcp;
}

// Decodes the TCP header at `offset`. `available_end` bounds reads (captured bytes within
// the IP packet); `declared_end` is where the IP length fields say the packet ends.
inline DecodeResult decode_tcp(Bytes data, std::size_t offset, std::size_t available_end,
                               std::size_t declared_end, TcpSegment& out) noexcept {
  if (available_end < offset || available_end - offset < kTcpMinHeader) {
    return DecodeResult::kTruncatedTcp;
  }
  const Bytes tcp = data + offset;
  const std::size_t header_length = std::size_t{static_cast<std::uint8_t>(tcp[12] >> 4)} * 4;
  if (header_length < kTcpMinHeader) return DecodeResult::kBadTcpHeader;
  if (available_end - offset < header_length) return DecodeResult::kTruncatedTcp;

  decode_detail::read_tcp_fixed_fields(tcp, out);
  const std::size_t payload_begin = offset + header_length;
  const std::size_t payload =
      declared_end > payload_begin ? declared_end - payload_begin : std::size_t{0};
  out.payload_length = static_cast<std::uint16_t>(std::min<std::size_t>(payload, 0xffff));
  out.options = TcpOptions{};
  if (header_length == kTcpMinHeader) return DecodeResult::kTcp;
  return decode_tcp_options(data, offset + kTcpMinHeader, payload_begin, out.options);
}

inline DecodeResult decode_ipv4(Bytes data, std::size_t offset, std::size_t size,
                                TcpSegment& out) noexcept {
  if (size < offset || size - offset < kIpv4MinHeader) return DecodeResult::kTruncatedIp;
  const Bytes ip = data + offset;
  if ((ip[0] >> 4) != 4) return DecodeResult::kBadIpVersion;
  const std::size_t header_length = std::size_t{static_cast<std::uint8_t>(ip[0] & 0x0f)} * 4;
  if (header_length < kIpv4MinHeader) return DecodeResult::kBadIpHeader;
  if (size - offset < header_length) return DecodeResult::kTruncatedIp;

  std::size_t total_length = be16(ip + 2);
  // A total length of 0 is what TCP segmentation offload leaves in captures taken on the
  // sending host; as Wireshark does, take the captured length then.
  if (total_length == 0) total_length = size - offset;
  if (total_length < header_length) return DecodeResult::kBadIpHeader;

  out.hop_limit = ip[8];
  out.source.assign_v4(ip + 12);
  out.destination.assign_v4(ip + 16);
  if (ip[9] != ip_proto::kTcp) return DecodeResult::kNotTcp;
  const std::uint16_t fragment_offset = be16(ip + 6) & 0x1fff;
  if (fragment_offset != 0) return DecodeResult::kLaterFragment;

  // Reads stop at the declared end so that Ethernet padding is never taken for TCP bytes,
  // and at the captured end when the snap length cut the packet.
  const std::size_t declared_end = offset + total_length;
  return decode_tcp(data, offset + header_length, std::min(declared_end, size), declared_end, out);
}

inline DecodeResult decode_ipv6(Bytes data, std::size_t offset, std::size_t size,
                                TcpSegment& out) noexcept {
  if (size < offset || size - offset < kIpv6Header) return DecodeResult::kTruncatedIp;
  const Bytes ip = data + offset;
  if ((ip[0] >> 4) != 6) return DecodeResult::kBadIpVersion;
  std::size_t payload_length = be16(ip + 4);
  // 0 means a jumbogram (RFC 2675) or an offloaded segment: the capture is all there is.
  if (payload_length == 0) payload_length = size - offset - kIpv6Header;
  const std::size_t declared_end = offset + kIpv6Header + payload_length;
  const std::size_t end = std::min(declared_end, size);

  out.hop_limit = ip[7];
  out.source = IpAddress::from_v6(ip + 8);
  out.destination = IpAddress::from_v6(ip + 24);

  std::uint8_t next_header = ip[6];
  std::size_t at = offset + kIpv6Header;
  for (int headers = 0; headers <= kMaxExtensionHeaders; ++headers) {
    if (next_header == ip_proto::kTcp) return decode_tcp(data, at, end, declared_end, out);
    if (headers == kMaxExtensionHeaders) break;
    if (is_generic_extension(next_header) || next_header == ip_proto::kAuthentication) {
      if (end < at || end - at < 8) return DecodeResult::kBadExtensionHeader;
      const std::size_t length = next_header == ip_proto::kAuthentication
                                     ? (std::size_t{data[at + 1]} + 2) * 4  // RFC 4302
                                     : (std::size_t{data[at + 1]} + 1) * 8;
      if (end - at < length) return DecodeResult::kBadExtensionHeader;
      next_header = data[at];
      at += length;
    } else if (next_header == ip_proto::kFragment) {
      if (end < at || end - at < 8) return DecodeResult::kBadExtensionHeader;
      next_header = data[at];
      const std::uint16_t fragment_offset = be16(data + at + 2) >> 3;
      at += 8;
      if (fragment_offset != 0) {
        // The fragment header names the first header of the fragmentable part; if that is
        // neither TCP nor another extension header, the packet is certainly not TCP.
        const bool maybe_tcp = next_header == ip_proto::kTcp || is_generic_extension(next_header) ||
                               next_header == ip_proto::kAuthentication ||
                               next_header == ip_proto::kFragment;
        return maybe_tcp ? DecodeResult::kLaterFragment : DecodeResult::kNotTcp;
      }
    } else {
      // ESP (50) hides what follows, 59 says nothing follows; UDP, ICMPv6, ... are not ours.
      return DecodeResult::kNotTcp;
    }
  }
  return DecodeResult::kBadExtensionHeader;
}

// Dispatches on the ethertype found at `offset - 2`, after skipping any VLAN tags.
inline DecodeResult decode_ethertype(Bytes data, std::size_t offset, std::size_t size,
                                     std::uint16_t type, TcpSegment& out) noexcept {
  while (type == ethertype::kVlan || type == ethertype::kQinQ || type == ethertype::kQinQLegacy) {
    if (size - offset < kVlanTag) return DecodeResult::kTruncatedLink;
    type = be16(data + offset + 2);
    offset += kVlanTag;
  }
  if (type == ethertype::kIpv4) return decode_ipv4(data, offset, size, out);
  if (type == ethertype::kIpv6) return decode_ipv6(data, offset, size, out);
  return DecodeResult::kNotIp;
}

inline DecodeResult decode_by_version(Bytes data, std::size_t offset, std::size_t size,
                                      TcpSegment& out) noexcept {
  if (size <= offset) return DecodeResult::kTruncatedIp;
  switch (data[offset] >> 4) {
    case 4:
      return decode_ipv4(data, offset, size, out);
    case 6:
      return decode_ipv6(data, offset, size, out);
    default:
      return DecodeResult::kBadIpVersion;
  }
}

inline DecodeResult decode_null(Bytes data, std::size_t size, TcpSegment& out) noexcept {
  if (size < kNullHeader) return DecodeResult::kTruncatedLink;
  // DLT_NULL stores the family in the writer's byte order, DLT_LOOP in network order.
  // Families are small, so whichever reading is below 256 is the right one.
  const std::uint32_t little = load_le32(data);
  const std::uint32_t family = little < 256 ? little : be32(data);
  switch (family) {
    case 2:  // AF_INET everywhere
      return decode_ipv4(data, kNullHeader, size, out);
    case 10:  // AF_INET6: Linux
    case 24:  // NetBSD, OpenBSD, BSD/OS
    case 28:  // FreeBSD, DragonFly
    case 30:  // Darwin
      return decode_ipv6(data, kNullHeader, size, out);
    default:
      return DecodeResult::kNotIp;
  }
}

inline DecodeResult decode_frame(LinkType link, std::span<const std::uint8_t> frame,
                                 TcpSegment& out) noexcept {
  const Bytes data = frame.data();
  const std::size_t size = frame.size();
  switch (link) {
    case LinkType::kEthernet:
      if (size < kEthernetHeader) return DecodeResult::kTruncatedLink;
      return decode_ethertype(data, kEthernetHeader, size, be16(data + 12), out);
    case LinkType::kLinuxSll:
      if (size < kSllHeader) return DecodeResult::kTruncatedLink;
      return decode_ethertype(data, kSllHeader, size, be16(data + 14), out);
    case LinkType::kLinuxSll2:
      if (size < kSll2Header) return DecodeResult::kTruncatedLink;
      return decode_ethertype(data, kSll2Header, size, be16(data), out);
    case LinkType::kRaw:
      return decode_by_version(data, 0, size, out);
    case LinkType::kNull:
      return decode_null(data, size, out);
    case LinkType::kIpv4:
      return decode_ipv4(data, 0, size, out);
    case LinkType::kIpv6:
      return decode_ipv6(data, 0, size, out);
  }
  return DecodeResult::kNotIp;
}

}  // namespace

int dlt_of(LinkType link) noexcept {
  switch (link) {
    case LinkType::kEthernet:
      return 1;
    case LinkType::kLinuxSll:
      return 113;
    case LinkType::kLinuxSll2:
      return 276;
    case LinkType::kRaw:
      return 12;  // libpcap writes it to files as LINKTYPE_RAW (101)
    case LinkType::kNull:
      return 0;
    case LinkType::kIpv4:
      return 228;
    case LinkType::kIpv6:
      return 229;
  }
  return 1;
}

std::optional<LinkType> link_type_from_dlt(int dlt) noexcept {
  switch (dlt) {
    case 0:    // DLT_NULL
    case 108:  // DLT_LOOP
      return LinkType::kNull;
    case 1:  // DLT_EN10MB
      return LinkType::kEthernet;
    case 12:   // DLT_RAW on most systems
    case 14:   // DLT_RAW on OpenBSD
    case 101:  // LINKTYPE_RAW, as stored in files
      return LinkType::kRaw;
    case 113:
      return LinkType::kLinuxSll;
    case 276:
      return LinkType::kLinuxSll2;
    case 228:
      return LinkType::kIpv4;
    case 229:
      return LinkType::kIpv6;
    default:
      return std::nullopt;
  }
}

std::string_view to_string(LinkType link) noexcept {
  switch (link) {
    case LinkType::kEthernet:
      return "ethernet";
    case LinkType::kLinuxSll:
      return "linux_sll";
    case LinkType::kLinuxSll2:
      return "linux_sll2";
    case LinkType::kRaw:
      return "raw";
    case LinkType::kNull:
      return "null";
    case LinkType::kIpv4:
      return "ipv4";
    case LinkType::kIpv6:
      return "ipv6";
  }
  return "unknown";
}

std::string_view to_string(DecodeResult reason) noexcept {
  switch (reason) {
    case DecodeResult::kTcp:
      return "tcp";
    case DecodeResult::kNotIp:
      return "not_ip";
    case DecodeResult::kNotTcp:
      return "not_tcp";
    case DecodeResult::kLaterFragment:
      return "later_fragment";
    case DecodeResult::kTruncatedLink:
      return "truncated_link";
    case DecodeResult::kTruncatedIp:
      return "truncated_ip";
    case DecodeResult::kBadIpVersion:
      return "bad_ip_version";
    case DecodeResult::kBadIpHeader:
      return "bad_ip_header";
    case DecodeResult::kBadExtensionHeader:
      return "bad_extension_header";
    case DecodeResult::kTruncatedTcp:
      return "truncated_tcp";
    case DecodeResult::kBadTcpHeader:
      return "bad_tcp_header";
    case DecodeResult::kBadTcpOptions:
      return "bad_tcp_options";
    case DecodeResult::kCount:
      break;
  }
  return "unknown";
}

std::uint64_t DecodeStats::errors() const noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < by_result.size(); ++i) {
    if (is_decode_error(static_cast<DecodeResult>(i))) total += by_result[i];
  }
  return total;
}

DecodeResult Decoder::decode_in_general(std::span<const std::uint8_t> frame,
                                        TcpSegment& out) noexcept {
  const DecodeResult result = decode_frame(link_, frame, out);
  ++counters_.frames;
  ++counters_.by_result[static_cast<std::size_t>(result)];
  return result;
}

}  // namespace synwatch
