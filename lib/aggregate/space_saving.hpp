#pragma once
// Space-Saving heavy-hitter summary (Metwally, Agrawal, El Abbadi 2005) over source addresses.
//
// K counters, each an (address, count, error) triple. A tracked address adds its weight to its
// counter; an untracked one takes over the counter with the smallest count m and starts at
// count m + weight, error m. Invariants, for a stream of total weight N:
//   - every tracked address:   count - error <= true count <= count
//   - every error, and the true count of every untracked address, is <= min_count() <= N / K
// hence every address with a true count above N / K is tracked.
//
// merge_from() (the merge of Cafaro et al.'s parallel Space Saving): counters of equal
// addresses are added; an address tracked on one side only gets the other side's min_count()
// added to both its count and its error (its true count there is at most that; 0 when that side
// is not full, because then it has never evicted). The K largest combined counters are kept.
// The invariants above still hold with N = N_this + N_other (the kept counts sum to at most
// N, and every combined count is at least min_this + min_other), so the error of every
// counter stays <= (N_this + N_other) / K however many summaries are merged in sequence.
//
// Packet path: add() is noexcept and allocation free. The common flood case (nearly every
// address new) costs one 32-bit fingerprint scan over K words (SSE2), never a full key
// comparison on a fingerprint miss, and takes over a counter from a bit mask of the counters
// holding the smallest count; the mask is rebuilt by a scan of the K counts only when the last
// of them has grown (in a flood, once per K new addresses).
// Layout: fixed std::arrays only; trivially copyable, and the all-zero byte pattern is the empty
// summary, so summaries live in preallocated pools and clear() is O(1).
// Thread safety: none; a summary is a plain value owned by one thread at a time.

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/ip_address.hpp"
#include "common/word_match.hpp"

namespace synwatch {

struct HeavySource {
  IpAddress address;
  std::uint64_t count = 0;  // never below the true count
  std::uint64_t error = 0;  // the most by which count may exceed the true count

  // Guaranteed lower bound of the true count.
  [[nodiscard]] std::uint64_t guaranteed_count() const noexcept { return count - error; }
  friend bool operator==(const HeavySource&, const HeavySource&) = default;
};

template <std::size_t K>
class SpaceSaving {
  static_assert(K >= 1 && K <= 64, "SpaceSaving supports 1..64 counters");

 public:
  static constexpr std::size_t kCapacity = K;

  void add(const IpAddress& address, std::uint32_t weight = 1) noexcept {
    if (weight == 0) return;
    total_ += weight;
    const std::uint32_t print = fingerprint(address);
    const std::size_t found = find(address, print);
    if (found != kNotFound) {
      counts_[found] += weight;
      if (size_ == K) grew_from_smallest(found);
      return;
    }
    if (size_ < K) {
      set(size_++, address, print, 0, weight);
      if (size_ == K) find_smallest();
      return;
    }
    // Any counter with the smallest count may be taken over.
    const auto slot = static_cast<std::size_t>(std::countr_zero(smallest_));
    const std::uint64_t error = counts_[slot];
    set(slot, address, print, error, error + weight);
    grew_from_smallest(slot);
  }

  void clear() noexcept {
    size_ = 0;
    smallest_ = 0;
    total_ = 0;
  }

  // Total weight added (including merged summaries' totals).
  [[nodiscard]] std::uint64_t total() const noexcept { return total_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  // Upper bound of the true count of any untracked address (0 while not full).
  [[nodiscard]] std::uint64_t min_count() const noexcept {
    return size_ < K ? 0 : counts_[static_cast<std::size_t>(std::countr_zero(smallest_))];
  }

  // Writes min(size(), out.size()) counters, highest count first (ties: smaller error first,
  // then by address, so the order is deterministic). Returns how many were written.
  std::size_t top(std::span<HeavySource> out) const noexcept {
    std::array<HeavySource, K> sorted{};
    for (std::size_t i = 0; i < size_; ++i) sorted[i] = {keys_[i], counts_[i], errors_[i]};
    const std::size_t written = std::min<std::size_t>(size_, out.size());
    std::partial_sort(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(written),
                      sorted.begin() + size_, ranks_higher);
    std::copy_n(sorted.begin(), written, out.begin());
    return written;
  }

  void merge_from(const SpaceSaving& other) noexcept {
    // Combined candidates are built completely before this summary is rewritten, so merging a
    // summary into itself is well defined (it doubles every counter).
    std::array<HeavySource, 2 * K> candidates{};
    std::array<std::uint32_t, 2 * K> prints{};
    std::size_t count = 0;
    const std::uint64_t pad_this = min_count();
    const std::uint64_t pad_other = other.min_count();
    for (std::size_t i = 0; i < size_; ++i) {
      const std::size_t j = other.find(keys_[i], fingerprints_[i]);
      const bool shared = j != kNotFound;
      candidates[count] = {keys_[i], counts_[i] + (shared ? other.counts_[j] : pad_other),
                           errors_[i] + (shared ? other.errors_[j] : pad_other)};
      prints[count++] = fingerprints_[i];
    }
    for (std::size_t j = 0; j < other.size_; ++j) {
      if (find(other.keys_[j], other.fingerprints_[j]) != kNotFound) continue;
      candidates[count] = {other.keys_[j], other.counts_[j] + pad_this,
                           other.errors_[j] + pad_this};
      prints[count++] = other.fingerprints_[j];
    }
    const std::size_t kept = std::min(count, K);
    if (count > K) {
      // Sort an index permutation so fingerprints travel with their candidates.
      std::array<std::uint8_t, 2 * K> order{};
      for (std::size_t i = 0; i < count; ++i) order[i] = static_cast<std::uint8_t>(i);
      std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(kept),
                        order.begin() + static_cast<std::ptrdiff_t>(count),
                        [&candidates](std::uint8_t a, std::uint8_t b) {
                          return ranks_higher(candidates[a], candidates[b]);
                        });
      std::array<HeavySource, 2 * K> kept_candidates{};
      std::array<std::uint32_t, 2 * K> kept_prints{};
      for (std::size_t i = 0; i < kept; ++i) {
        kept_candidates[i] = candidates[order[i]];
        kept_prints[i] = prints[order[i]];
      }
      candidates = kept_candidates;
      prints = kept_prints;
    }
    total_ += other.total_;
    for (std::size_t i = 0; i < kept; ++i) {
      set(i, candidates[i].address, prints[i], candidates[i].error, candidates[i].count);
    }
    size_ = static_cast<std::uint32_t>(kept);
    smallest_ = 0;
    if (size_ == K) find_smallest();
  }

  // Cheap 32-bit mix of the whole address. Only a filter before the full comparison, so it
  // needs spread, not strength; it depends on the address alone so merged summaries agree.
  // For IPv4-mapped addresses it is a bijection of the 32 address bits: they never collide.
  static std::uint32_t fingerprint(const IpAddress& address) noexcept {
    std::uint64_t high;
    std::uint64_t low;
    std::memcpy(&high, address.bytes.data(), 8);
    std::memcpy(&low, address.bytes.data() + 8, 8);
    const std::uint64_t mixed = (low ^ (high * 0x9e3779b97f4a7c15ULL)) * 0xbf58476d1ce4e5b9ULL;
    return static_cast<std::uint32_t>(mixed >> 32);
  }

 private:
  static constexpr std::size_t kNotFound = K;

  static bool ranks_higher(const HeavySource& a, const HeavySource& b) noexcept {
    if (a.count != b.count) return a.count > b.count;
    if (a.error != b.error) return a.error < b.error;
    return a.address < b.address;
  }

  [[nodiscard]] std::size_t find(const IpAddress& address, std::uint32_t print) const noexcept {
    std::uint64_t matches = fingerprint_matches(print);
    if (size_ < K) matches &= (std::uint64_t{1} << size_) - 1;  // K <= 64, so size_ < 64
    while (matches != 0) {
      const auto i = static_cast<std::size_t>(std::countr_zero(matches));
      if (keys_[i] == address) return i;
      matches &= matches - 1;
    }
    return kNotFound;
  }

  // Bit i set when fingerprints_[i] == print, over all K words (slots past size_ included).
  [[nodiscard]] std::uint64_t fingerprint_matches(std::uint32_t print) const noexcept {
    std::uint64_t matches = 0;
    if constexpr (K % 16 == 0) {
      for (std::size_t i = 0; i < K; i += 16) {
        matches |= std::uint64_t{match_16_words(&fingerprints_[i], print)} << i;
      }
      return matches;
    }
#if defined(__SSE2__)
    if constexpr (K % 4 == 0) {
      // Every SYN of a flood comes from a new source and scans all K words: four at a time,
      // the scan is a few instructions instead of a few per word.
      const __m128i wanted = _mm_set1_epi32(static_cast<int>(print));
      for (std::size_t i = 0; i < K; i += 4) {
        const __m128i words = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&fingerprints_[i]));
        const int equal = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(words, wanted)));
        matches |= static_cast<std::uint64_t>(static_cast<unsigned>(equal)) << i;
      }
      return matches;
    }
#endif
    for (std::size_t i = 0; i < K; ++i) {
      matches |= std::uint64_t{fingerprints_[i] == print} << i;
    }
    return matches;
  }

  void set(std::size_t slot, const IpAddress& address, std::uint32_t print, std::uint64_t error,
           std::uint64_t count) noexcept {
    keys_[slot] = address;
    fingerprints_[slot] = print;
    errors_[slot] = error;
    counts_[slot] = count;
  }

  // Counter `slot` of a full summary grew: it no longer holds the smallest count. Once none
  // does, the smallest is whatever is smallest now.
  void grew_from_smallest(std::size_t slot) noexcept {
    smallest_ &= ~(std::uint64_t{1} << slot);
    if (smallest_ == 0) find_smallest();
  }

  // Rebuilds smallest_ from the counts of a full summary.
  void find_smallest() noexcept {
    const std::uint64_t least = *std::min_element(counts_.begin(), counts_.end());
    std::uint64_t mask = 0;
    for (std::size_t i = 0; i < K; ++i) mask |= std::uint64_t{counts_[i] == least} << i;
    smallest_ = mask;
  }

  // Slots [0, size_) are live. When the summary is full, bit i of smallest_ is set iff counter
  // i holds the smallest count (never 0 then); otherwise smallest_ is unused.
  std::array<std::uint32_t, K> fingerprints_{};
  std::array<IpAddress, K> keys_{};
  std::array<std::uint64_t, K> errors_{};
  std::array<std::uint64_t, K> counts_{};
  std::uint64_t smallest_ = 0;
  std::uint32_t size_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace synwatch
