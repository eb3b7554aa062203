#pragma once
// Builds complete captured frames (link header, IPv4 or IPv6, TCP with options and payload)
// byte by byte, with correct IPv4 header and TCP checksums. The generator builds every header
// itself on purpose: it must not share code (or bugs) with the decoder it is testing.
//
// Thread safety: all functions are pure; PacketSpec and TcpOptionBytes are plain values.
// Buffer ownership: build_frame() writes into the caller's buffer and keeps no pointer to it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "common/ip_address.hpp"
#include "common/time.hpp"

namespace synwatch::gen {

enum class Link : std::uint8_t { kEthernet, kVlan, kQinQ, kSll, kSll2, kRaw };

std::optional<Link> parse_link(std::string_view name) noexcept;
std::string_view to_string(Link link) noexcept;
int dlt_of(Link link) noexcept;  // the libpcap DLT_* value the file header carries
std::size_t link_header_length(Link link) noexcept;

namespace tcp_flags {
inline constexpr std::uint8_t kFin = 0x01;
inline constexpr std::uint8_t kSyn = 0x02;
inline constexpr std::uint8_t kRst = 0x04;
inline constexpr std::uint8_t kPsh = 0x08;
inline constexpr std::uint8_t kAck = 0x10;
}  // namespace tcp_flags

// TCP options in wire order, appended one by one as a stack would write them.
struct TcpOptionBytes {
  std::array<std::uint8_t, 40> bytes{};
  std::uint8_t length = 0;

  TcpOptionBytes& mss(std::uint16_t value) noexcept;
  TcpOptionBytes& sack_permitted() noexcept;
  TcpOptionBytes& timestamps(std::uint32_t value, std::uint32_t echo) noexcept;
  TcpOptionBytes& window_scale(std::uint8_t shift) noexcept;
  TcpOptionBytes& nop() noexcept;
  TcpOptionBytes& eol() noexcept;

 private:
  void put(std::initializer_list<std::uint8_t> values) noexcept;
};

// Which way a frame travels relative to the protected server; decides MAC addresses and the
// Linux cooked header's packet type, as a capture on the server's own interface would show.
enum class Direction : std::uint8_t { kToServer, kFromServer };

// Everything needed to build one frame. Addresses must be of the same family.
struct PacketSpec {
  TimestampNs time = 0;
  IpAddress source;
  IpAddress destination;
  std::uint16_t source_port = 0;
  std::uint16_t destination_port = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t flags = 0;
  std::uint16_t window = 0;
  std::uint8_t ttl = 64;             // IPv4 TTL or IPv6 hop limit
  std::uint16_t ip_id = 0;           // IPv4 only
  bool dont_fragment = true;         // IPv4 only
  std::uint32_t flow_label = 0;      // IPv6 only, 20 bits
  TcpOptionBytes options;            // padded with EOL to a multiple of 4
  std::uint16_t payload_length = 0;  // filled with a fixed pattern
  Direction direction = Direction::kToServer;

  // Damage, for the truncated scenario. Zero means "none".
  std::uint32_t capture_length = 0;  // keep only this many bytes of the frame (snaplen cut)
  std::uint8_t ipv4_ihl = 0;         // write this IHL instead of the true one (e.g. < 5)
  std::uint8_t tcp_data_offset = 0;  // write this data offset instead of the true one
};

inline constexpr std::size_t kMaxFrameLength = 20 + 8 + 40 + 60 + 1600;

struct BuiltFrame {
  std::uint32_t wire_length = 0;     // frame length on the wire (after Ethernet padding)
  std::uint32_t capture_length = 0;  // bytes kept in the capture (<= wire_length)
  // True when the captured bytes hold a well-formed IP header and the complete TCP header as
  // its data offset declares: a decoder can read the flags. Drives the summary's SYN counts.
  bool tcp_header_readable = false;
};

// Writes the frame for `spec` on `link` into `out` (at least kMaxFrameLength bytes).
BuiltFrame build_frame(const PacketSpec& spec, Link link, std::span<std::uint8_t> out) noexcept;

// RFC 1071 one's complement sum of `data` added to `sum` (not folded, not inverted).
std::uint32_t checksum_add(std::uint32_t sum, std::span<const std::uint8_t> data) noexcept;
std::uint16_t checksum_fold(std::uint32_t sum) noexcept;  // folds and inverts

}  // namespace synwatch::gen
