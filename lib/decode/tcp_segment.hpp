#pragma once
// The decoder's output: the fields of one TCP segment that the handshake tracker needs.
// A plain value, filled in place by the decoder so that no allocation happens per packet.
// Thread safety: a plain value, none of its own.

#include <cstdint>

#include "common/ip_address.hpp"
#include "common/time.hpp"

namespace synwatch {

namespace tcp_flag {
inline constexpr std::uint8_t kFin = 0x01;
inline constexpr std::uint8_t kSyn = 0x02;
inline constexpr std::uint8_t kRst = 0x04;
inline constexpr std::uint8_t kPsh = 0x08;
inline constexpr std::uint8_t kAck = 0x10;
inline constexpr std::uint8_t kUrg = 0x20;
inline constexpr std::uint8_t kEce = 0x40;
inline constexpr std::uint8_t kCwr = 0x80;
}  // namespace tcp_flag

struct TcpOptions {
  std::uint16_t mss = 0;
  std::uint8_t window_scale = 0;
  bool has_mss = false;
  bool has_window_scale = false;
  bool sack_permitted = false;
  bool has_timestamps = false;
  std::uint32_t timestamp_value = 0;
  std::uint32_t timestamp_echo = 0;
};

struct TcpSegment {
  TimestampNs timestamp = 0;
  IpAddress source;
  IpAddress destination;
  std::uint16_t source_port = 0;       // host order
  std::uint16_t destination_port = 0;  // host order
  std::uint32_t seq = 0;               // host order
  std::uint32_t ack = 0;               // host order
  std::uint16_t window = 0;
  std::uint16_t payload_length = 0;  // TCP payload bytes per the IP length fields
  std::uint8_t flags = 0;            // tcp_flag bits
  std::uint8_t hop_limit = 0;        // IPv4 TTL or IPv6 hop limit
  TcpOptions options;

  [[nodiscard]] bool has(std::uint8_t flag) const noexcept { return (flags & flag) != 0; }
  // A connection request: SYN without ACK (ECE/CWR may ride along, RFC 3168).
  [[nodiscard]] bool is_syn() const noexcept {
    return (flags & (tcp_flag::kSyn | tcp_flag::kAck | tcp_flag::kRst)) == tcp_flag::kSyn;
  }
  [[nodiscard]] bool is_syn_ack() const noexcept {
    return (flags & (tcp_flag::kSyn | tcp_flag::kAck | tcp_flag::kRst)) ==
           (tcp_flag::kSyn | tcp_flag::kAck);
  }
};

}  // namespace synwatch
