#pragma once
// Fast keyed hashing of fixed-size keys on the packet path. Not a cryptographic hash: whoever
// knows the seed can build colliding keys (as with any hash this fast), so tables keyed by
// attacker-chosen addresses take a secret seed where they can.
// Thread safety: pure functions.

#include <cstdint>
#include <cstring>

namespace synwatch {

// 64 x 64 -> 128-bit multiply folded to 64 bits (the mixing step of wyhash).
inline std::uint64_t fold_multiply(std::uint64_t a, std::uint64_t b) noexcept {
  __extension__ using Uint128 = unsigned __int128;
  const Uint128 product = static_cast<Uint128>(a) * b;
  return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
}

// A 16-byte key (an address) plus a 64-bit extra word (a port, or 0) and a seed, in two
// dependent multiplies (wyhash's mixing, with its constants).
inline std::uint64_t hash_16_bytes(const std::uint8_t* bytes, std::uint64_t extra,
                                   std::uint64_t seed) noexcept {
  std::uint64_t high;
  std::uint64_t low;
  std::memcpy(&high, bytes, 8);
  std::memcpy(&low, bytes + 8, 8);
  const std::uint64_t mixed =
      fold_multiply(high ^ seed ^ 0xa0761d6478bd642fULL, low ^ extra ^ 0xe7037ed1a0b428dbULL);
  return fold_multiply(mixed ^ 0x8ebc6af09c88c6e3ULL, seed ^ 0x589965cc75374cc3ULL);
}

}  // namespace synwatch
