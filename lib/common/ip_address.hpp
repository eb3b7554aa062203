#pragma once
// Value types for addresses and endpoints, shared by every pipeline stage.
// Thread safety: plain values; safe to copy between threads.

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace synwatch {

// An IPv4 or IPv6 address. IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) so that both
// families share one fixed-size key and comparisons need no branch on the family.
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};

  // The first 12 bytes of every IPv4 address (::ffff:0:0/96).
  static constexpr std::array<std::uint8_t, 12> kV4MappedPrefix{0, 0, 0, 0, 0,    0,
                                                                0, 0, 0, 0, 0xff, 0xff};

  static IpAddress from_v4(const std::uint8_t* network_order_4_bytes) noexcept {
    IpAddress a;
    a.assign_v4(network_order_4_bytes);
    return a;
  }
  static IpAddress from_v4(std::uint32_t host_order) noexcept {
    const std::uint8_t b[4] = {
        static_cast<std::uint8_t>(host_order >> 24), static_cast<std::uint8_t>(host_order >> 16),
        static_cast<std::uint8_t>(host_order >> 8), static_cast<std::uint8_t>(host_order)};
    return from_v4(b);
  }
  // from_v4() in place: the decoder fills a segment's addresses for every packet, and a
  // temporary to copy from cost as much again.
  void assign_v4(const std::uint8_t* network_order_4_bytes) noexcept {
    std::memcpy(bytes.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size());
    std::memcpy(bytes.data() + 12, network_order_4_bytes, 4);
  }
  static IpAddress from_v6(const std::uint8_t* network_order_16_bytes) noexcept {
    IpAddress a;
    std::memcpy(a.bytes.data(), network_order_16_bytes, 16);
    return a;
  }
  // Parses dotted IPv4 or RFC 4291 IPv6 text; nullopt when it is neither.
  static std::optional<IpAddress> parse(std::string_view text);

  [[nodiscard]] bool is_v4() const noexcept {
    return std::memcmp(bytes.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size()) == 0;
  }
  // Host-order IPv4 value; only meaningful when is_v4().
  [[nodiscard]] std::uint32_t v4() const noexcept {
    return (std::uint32_t{bytes[12]} << 24) | (std::uint32_t{bytes[13]} << 16) |
           (std::uint32_t{bytes[14]} << 8) | std::uint32_t{bytes[15]};
  }
  [[nodiscard]] std::string to_string() const;

  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// A transport endpoint: address and TCP port (host order).
struct Endpoint {
  IpAddress address;
  std::uint16_t port = 0;

  [[nodiscard]] std::string to_string() const;  // "10.0.0.1:80" or "[2001:db8::1]:80"
  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// A CIDR prefix such as 10.0.0.0/8 or 2001:db8::/32. IPv4 prefixes are stored with
// the mapped prefix length (+96) so that matching is one routine for both families.
struct IpPrefix {
  IpAddress network;
  std::uint8_t length = 0;  // 0..128 in the mapped space

  static std::optional<IpPrefix> parse(std::string_view text);
  [[nodiscard]] bool contains(const IpAddress& address) const noexcept;
  [[nodiscard]] std::string to_string() const;
  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

// True for sources that cannot originate legitimate Internet traffic: RFC 6890 special
// purpose ranges (0/8, 10/8, 127/8, 100.64/10, 169.254/16, 172.16/12, 192.168/16, 224/4,
// 240/4) and their IPv6 counterparts (::/128, ::1, fc00::/7, fe80::/10, ff00::/8).
// Asked for every SYN. Inline for what a spoofed flood brings most: an IPv4 address whose first
// octet begins no reserved range; the rest is decided out of line.
bool is_bogon_in_general(const IpAddress& address) noexcept;
inline bool is_bogon(const IpAddress& address) noexcept {
  // Bit o set: no reserved IPv4 range starts with octet o (so not 0, 10, 100, 127, 169, 172,
  // 192, 224-255). Checked against the full test in the tests, at every octet.
  static constexpr std::array<std::uint64_t, 4> kNeverReservedFirstOctet = [] {
    std::array<std::uint64_t, 4> bits{};
    for (unsigned octet = 1; octet < 224; ++octet) {
      if (octet == 10 || octet == 100 || octet == 127 || octet == 169 || octet == 172 ||
          octet == 192) {
        continue;
      }
      bits[octet / 64] |= std::uint64_t{1} << (octet % 64);
    }
    return bits;
  }();
  if (address.is_v4()) {
    const std::uint8_t octet = address.bytes[12];
    if ((kNeverReservedFirstOctet[octet / 64] >> (octet % 64) & 1) != 0) return false;
  }
  return is_bogon_in_general(address);
}

// A fast, well-mixed 64-bit hash of a byte range (not cryptographic; seeded so that a
// table can choose a secret seed against adversarial collisions).
std::uint64_t hash_bytes(const void* data, std::size_t length, std::uint64_t seed) noexcept;

}  // namespace synwatch
