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
// address new) costs one 32-bit fingerprint scan over K words (SSE2, four at a time), a scan
// of the counters (kept in ascending order) past those equal to the smallest, and one swap;
// never a full key comparison on a fingerprint miss.
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
      const std::size_t position = positions_[found];
      raise(position, counts_[position] + weight);
      return;
    }
    if (size_ < K) {
      const auto slot = static_cast<std::uint8_t>(size_);
      keys_[slot] = address;
      fingerprints_[slot] = print;
      errors_[slot] = 0;
      insert_position(slot, weight);
      return;
    }
    // The smallest counter sits at position 0.
    const std::uint8_t slot = order_[0];
    keys_[slot] = address;
    fingerprints_[slot] = print;
    errors_[slot] = counts_[0];
    const std::uint64_t count = counts_[0] + weight;
    raise(0, count);
  }

  void clear() noexcept {
    size_ = 0;
    min_run_ = 0;
    total_ = 0;
  }

  // Total weight added (including merged summaries' totals).
  [[nodiscard]] std::uint64_t total() const noexcept { return total_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  // Upper bound of the true count of any untracked address (0 while not full).
  [[nodiscard]] std::uint64_t min_count() const noexcept { return size_ < K ? 0 : counts_[0]; }

  // Writes min(size(), out.size()) counters, highest count first (ties: smaller error first,
  // then by address, so the order is deterministic). Returns how many were written.
  std::size_t top(std::span<HeavySource> out) const noexcept {
    std::array<HeavySource, K> sorted{};
    for (std::size_t i = 0; i < size_; ++i) sorted[i] = {keys_[i], count_of(i), errors_[i]};
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
      candidates[count] = {keys_[i], count_of(i) + (shared ? other.count_of(j) : pad_other),
                           errors_[i] + (shared ? other.errors_[j] : pad_other)};
      prints[count++] = fingerprints_[i];
    }
    for (std::size_t j = 0; j < other.size_; ++j) {
      if (find(other.keys_[j], other.fingerprints_[j]) != kNotFound) continue;
      candidates[count] = {other.keys_[j], other.count_of(j) + pad_this,
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
    size_ = 0;
    for (std::size_t i = 0; i < kept; ++i) {
      keys_[i] = candidates[i].address;
      errors_[i] = candidates[i].error;
      fingerprints_[i] = prints[i];
      insert_position(static_cast<std::uint8_t>(i), candidates[i].count);
    }
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
#if defined(__SSE2__)
    if constexpr (K % 16 == 0) {
      // Sixteen words per step: four compares packed down to one byte mask (the -1/0 lanes
      // survive the signed saturation), one movemask instead of four.
      const __m128i wanted = _mm_set1_epi32(static_cast<int>(print));
      const auto equal = [&](std::size_t i) noexcept {
        return _mm_cmpeq_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(&fingerprints_[i])),
                               wanted);
      };
      for (std::size_t i = 0; i < K; i += 16) {
        const __m128i low = _mm_packs_epi32(equal(i), equal(i + 4));
        const __m128i high = _mm_packs_epi32(equal(i + 8), equal(i + 12));
        const int mask = _mm_movemask_epi8(_mm_packs_epi16(low, high));
        matches |= static_cast<std::uint64_t>(static_cast<unsigned>(mask)) << i;
      }
      return matches;
    } else if constexpr (K % 4 == 0) {
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

  [[nodiscard]] std::uint64_t count_of(std::size_t slot) const noexcept {
    return counts_[positions_[slot]];
  }

  void place(std::size_t position, std::uint8_t slot, std::uint64_t count) noexcept {
    order_[position] = slot;
    counts_[position] = count;
    positions_[slot] = static_cast<std::uint8_t>(position);
  }

  // The counter at `position` grew to `count`: counters after it that are now smaller move
  // one place towards the front. A unit add (every add on the packet path) passes only
  // counters equal to its old count, so one swap does it. The scan is linear: K is small, its
  // loads are independent and its branch predictable, where a branch-free binary search is a
  // chain of dependent loads (measured slower, 17 against 8 ns per new address at K = 16).
  //
  // Under a flood of new addresses every add raises the smallest counter by one, and the
  // counters equal to it are most of the K: min_run_ remembers how many there are, so that the
  // scan starts at the run's end. Known or not (0), it never needs a scan of its own: a raise
  // from inside the run shortens it by one, and a unit raise of the smallest counter that had to
  // scan has just measured it.
  void raise(std::size_t position, std::uint64_t count) noexcept {
    const std::uint8_t slot = order_[position];
    const std::uint64_t old_count = counts_[position];
    std::size_t last = position;
    const bool run_known = min_run_ != 0;
    if (position < min_run_) last = min_run_ - 1;  // all equal to old_count, below `count`
    while (last + 1 < size_ && counts_[last + 1] < count) ++last;
    if (run_known) {
      if (position < min_run_) --min_run_;
    } else if (old_count == counts_[0] && count == old_count + 1) {
      // Every counter passed held old_count, the smallest: they now fill positions [0, last).
      min_run_ = static_cast<std::uint8_t>(last);
    }
    if (counts_[last] == counts_[position]) {
      place(position, order_[last], counts_[last]);
    } else {
      for (std::size_t p = position; p < last; ++p) place(p, order_[p + 1], counts_[p + 1]);
    }
    place(last, slot, count);
  }

  // A new counter `slot` with `count` joins the size_ live ones.
  void insert_position(std::uint8_t slot, std::uint64_t count) noexcept {
    min_run_ = 0;
    std::size_t position = size_++;
    for (; position > 0 && counts_[position - 1] > count; --position) {
      place(position, order_[position - 1], counts_[position - 1]);
    }
    place(position, slot, count);
  }

  // Slots [0, size_) are live and hold the per-address fields; positions [0, size_) hold the
  // counters in ascending order of count (order_: the slot at each position, counts_: its
  // count) and positions_ is the inverse of order_. Position 0 is the minimum.
  std::array<std::uint32_t, K> fingerprints_{};
  std::array<IpAddress, K> keys_{};
  std::array<std::uint64_t, K> errors_{};
  std::array<std::uint64_t, K> counts_{};
  std::array<std::uint8_t, K> order_{};
  std::array<std::uint8_t, K> positions_{};
  std::uint32_t size_ = 0;
  // Positions [0, min_run_) hold the smallest count and min_run_ holds it; 0 when not known.
  std::uint8_t min_run_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace synwatch
