#pragma once
// The 4-tuple of a TCP connection in canonical order, and its keyed hash: the one definition of
// "the same connection" that everything keyed by connection shares (the handshake table's index,
// the split of segments between workers), so that both directions of a connection always meet.
// Thread safety: plain values and pure functions; a FlowKeyHash is immutable once built.

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/hash.hpp"
#include "decode/tcp_segment.hpp"

namespace synwatch {

// The (address, port) that compares smaller is "low", so both directions of a connection build
// the same key. No padding, so that it can be hashed and compared as bytes. Plain byte arrays
// rather than IpAddress keep it trivially constructible: the handshake table embeds it in entries
// whose pages must stay untouched until first used.
struct FlowKey {
  std::array<std::uint8_t, 16> low_address;
  std::array<std::uint8_t, 16> high_address;
  std::uint16_t low_port;
  std::uint16_t high_port;
};
static_assert(sizeof(FlowKey) == 36);
static_assert(std::has_unique_object_representations_v<FlowKey>);
static_assert(std::is_trivially_default_constructible_v<FlowKey>);

// Which end of its key a segment's source is. kBoth: a connection from an endpoint to itself
// (same address and port, a LAND attack), which has no direction.
enum class SourceEnd : std::int8_t { kLow = -1, kBoth = 0, kHigh = 1 };

// The canonical key of a segment, into `key` (in place: a returned key is built on the stack and
// then copied, 36 bytes a packet).
inline SourceEnd make_flow_key(const TcpSegment& segment, FlowKey& key) noexcept {
  // Addresses compare as big-endian numbers (the order memcmp gives), without a library call.
  std::uint64_t source[2];
  std::uint64_t destination[2];
  std::memcpy(source, segment.source.bytes.data(), 16);
  std::memcpy(destination, segment.destination.bytes.data(), 16);
  // Equality needs no byte swap: only the first differing word is swapped and ordered (for
  // IPv4 the first words are both zero, so that is the second).
  const auto less = [](std::uint64_t a, std::uint64_t b) noexcept {
    return __builtin_bswap64(a) < __builtin_bswap64(b);
  };
  SourceEnd source_end;
  if (source[0] != destination[0]) {
    source_end = less(source[0], destination[0]) ? SourceEnd::kLow : SourceEnd::kHigh;
  } else if (source[1] != destination[1]) {
    source_end = less(source[1], destination[1]) ? SourceEnd::kLow : SourceEnd::kHigh;
  } else {
    source_end = segment.source_port < segment.destination_port   ? SourceEnd::kLow
                 : segment.source_port > segment.destination_port ? SourceEnd::kHigh
                                                                  : SourceEnd::kBoth;
  }
  if (source_end == SourceEnd::kHigh) {
    key.low_address = segment.destination.bytes;
    key.high_address = segment.source.bytes;
    key.low_port = segment.destination_port;
    key.high_port = segment.source_port;
  } else {
    key.low_address = segment.source.bytes;
    key.high_address = segment.destination.bytes;
    key.low_port = segment.source_port;
    key.high_port = segment.destination_port;
  }
  return source_end;
}

// A fixed-size comparison the compiler inlines: a memcmp call costs more than the compare.
inline bool same_flow(const FlowKey& a, const FlowKey& b) noexcept {
  std::uint64_t x[4];
  std::uint64_t y[4];
  std::uint32_t x_ports;
  std::uint32_t y_ports;
  std::memcpy(x, &a, sizeof x);
  std::memcpy(y, &b, sizeof y);
  std::memcpy(&x_ports, &a.low_port, sizeof x_ports);
  std::memcpy(&y_ports, &b.low_port, sizeof y_ports);
  return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x_ports ^ y_ports)) == 0;
}

// A keyed hash of FlowKeys. Attackers choose the 4-tuples of a flood, so a table keyed by them
// takes a secret seed where it can; structures that must not correlate (a shard and the table
// inside it) take different seeds.
class FlowKeyHash {
 public:
  explicit constexpr FlowKeyHash(std::uint64_t seed) noexcept : secrets_() {
    std::uint64_t state = seed;
    for (std::uint64_t& secret : secrets_) secret = splitmix64(state);
  }

  [[nodiscard]] std::uint64_t operator()(const FlowKey& key) const noexcept {
    std::uint64_t words[4];
    std::uint32_t ports;
    std::memcpy(words, &key, sizeof(words));
    std::memcpy(&ports, &key.low_port, sizeof(ports));
    if ((words[0] | words[2]) == 0) {
      // Both addresses in ::/64, which in practice means IPv4 (stored IPv4-mapped: every packet
      // of an IPv4 flood). Their low words hold the IPv4 addresses in the high halves and the
      // same constant (bytes 00 00 ff ff) in the low halves, so one word made of both still
      // tells every IPv4 key apart, and a single keyed multiply of it and the ports covers the
      // key. (Other pairs of ::/64 addresses, such as ::1 with itself, take this path too; two
      // such pairs can share a hash only when their addresses differ, which costs a longer
      // probe, never a wrong answer.)
      const std::uint64_t addresses = words[1] ^ std::rotl(words[3], 32);
      return fold_multiply(addresses ^ secrets_[0], ports ^ secrets_[1]);
    }
    // Three independent multiplies rather than hash_bytes' five chained rounds.
    const std::uint64_t low = fold_multiply(words[0] ^ secrets_[0], words[1] ^ secrets_[1]);
    const std::uint64_t high = fold_multiply(words[2] ^ secrets_[2], words[3] ^ secrets_[3]);
    return fold_multiply(low ^ ports ^ secrets_[4], high ^ secrets_[5]);
  }

 private:
  static constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  std::array<std::uint64_t, 6> secrets_;
};

}  // namespace synwatch
