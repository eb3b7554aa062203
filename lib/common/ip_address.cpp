#include "common/ip_address.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace synwatch {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buffer[INET6_ADDRSTRLEN] = {};
  text.copy(buffer, text.size());
  std::uint8_t raw[16];
  if (inet_pton(AF_INET, buffer, raw) == 1) return from_v4(raw);
  if (inet_pton(AF_INET6, buffer, raw) == 1) return from_v6(raw);
  return std::nullopt;
}

std::string IpAddress::to_string() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    inet_ntop(AF_INET, bytes.data() + 12, buffer, sizeof buffer);
  } else {
    inet_ntop(AF_INET6, bytes.data(), buffer, sizeof buffer);
  }
  return buffer;
}

std::string Endpoint::to_string() const {
  // Appended piece by piece: g++ 12 at -O3 warns (-Wrestrict, GCC bug 105329) on chains of
  // operator+ that start from a literal.
  std::string text;
  if (!address.is_v4()) text += '[';
  text += address.to_string();
  text += address.is_v4() ? ":" : "]:";
  text += std::to_string(port);
  return text;
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
  const auto slash = text.find('/');
  const auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  const unsigned max_length = address->is_v4() ? 32 : 128;
  unsigned length = max_length;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (ec != std::errc{} || end != digits.data() + digits.size() || digits.empty() ||
        length > max_length) {
      return std::nullopt;
    }
  }
  IpPrefix prefix;
  prefix.length = static_cast<std::uint8_t>(address->is_v4() ? length + 96 : length);
  prefix.network = *address;
  // Clear host bits so that "10.1.2.3/8" means 10.0.0.0/8.
  for (unsigned bit = prefix.length; bit < 128; ++bit) {
    prefix.network.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  }
  return prefix;
}

bool IpPrefix::contains(const IpAddress& address) const noexcept {
  const unsigned full_bytes = length / 8;
  if (std::memcmp(network.bytes.data(), address.bytes.data(), full_bytes) != 0) return false;
  const unsigned rest = length % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff00u >> rest);
  return (network.bytes[full_bytes] & mask) == (address.bytes[full_bytes] & mask);
}

std::string IpPrefix::to_string() const {
  const unsigned shown = network.is_v4() && length >= 96 ? length - 96u : length;
  std::string text = network.to_string();
  text += '/';
  text += std::to_string(shown);
  return text;
}

bool is_bogon_in_general(const IpAddress& address) noexcept {
  if (address.is_v4()) {
    // Decided by the first octet alone except for the four octets whose reserved ranges are
    // narrower than a /8.
    const std::uint32_t a = address.v4();
    switch (a >> 24) {
      case 0:    // 0.0.0.0/8 "this network"
      case 10:   // 10.0.0.0/8 private
      case 127:  // 127.0.0.0/8 loopback
        return true;
      case 100:
        return (a >> 22) == (0x64400000u >> 22);  // 100.64.0.0/10 shared (CGN)
      case 169:
        return (a >> 16) == 0xa9feu;  // 169.254.0.0/16 link local
      case 172:
        return (a >> 20) == (0xac100000u >> 20);  // 172.16.0.0/12 private
      case 192:
        return (a >> 16) == 0xc0a8u;  // 192.168.0.0/16 private
      default:
        return (a >> 24) >= 224;  // 224.0.0.0/4 multicast, 240.0.0.0/4 reserved
    }
  }
  const auto& b = address.bytes;
  bool all_zero_but_last = true;
  for (int i = 0; i < 15; ++i) all_zero_but_last = all_zero_but_last && b[i] == 0;
  if (all_zero_but_last && (b[15] == 0 || b[15] == 1)) return true;  // :: and ::1
  if ((b[0] & 0xfe) == 0xfc) return true;                            // fc00::/7 unique local
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return true;            // fe80::/10 link local
  return b[0] == 0xff;                                               // ff00::/8 multicast
}

std::uint64_t hash_bytes(const void* data, std::size_t length, std::uint64_t seed) noexcept {
  // 64-bit multiply-xorshift over 8-byte words (the finaliser is splitmix64's).
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::uint64_t h = seed ^ (length * 0x9e3779b97f4a7c15ULL);
  const auto mix = [](std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
  };
  while (length >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    h = mix(h ^ word) + 0x9e3779b97f4a7c15ULL;
    p += 8;
    length -= 8;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, p, length);
  return mix(h ^ tail ^ (std::uint64_t{length} << 56));
}

}  // namespace synwatch
