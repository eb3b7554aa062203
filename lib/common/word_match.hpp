#pragma once
// Compares 16 consecutive 32-bit words with one value at once: the step that the handshake
// table's bucket search and Space-Saving's fingerprint scan both take for every SYN of a flood.
// Thread safety: a pure function.

#include <cstddef>
#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace synwatch {

// Bit i set when (words[i] & mask) == pattern, for i in [0, 16). `words` needs no alignment.
inline std::uint32_t match_16_words(const std::uint32_t* words, std::uint32_t pattern,
                                    std::uint32_t mask = ~std::uint32_t{0}) noexcept {
#if defined(__SSE2__)
  const __m128i wanted = _mm_set1_epi32(static_cast<int>(pattern));
  const __m128i kept = _mm_set1_epi32(static_cast<int>(mask));
  const auto equal = [&](std::size_t i) noexcept {
    const __m128i four = _mm_loadu_si128(reinterpret_cast<const __m128i*>(words + i));
    return _mm_cmpeq_epi32(_mm_and_si128(four, kept), wanted);
  };
  // Four compares packed down to one byte mask (the -1/0 lanes survive the signed saturation),
  // so one movemask instead of four.
  const __m128i low = _mm_packs_epi32(equal(0), equal(4));
  const __m128i high = _mm_packs_epi32(equal(8), equal(12));
  return static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_packs_epi16(low, high)));
#else
  std::uint32_t matches = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    matches |= std::uint32_t{(words[i] & mask) == pattern} << i;
  }
  return matches;
#endif
}

}  // namespace synwatch
