#pragma once
// An index from 64-bit key hashes to small numbers (values 0 .. capacity - 1), for a container
// that keeps its keys itself: the index stores no keys, only values and a few hash bits of each,
// and asks the container whether the value under a matching tag holds the key. Modelled on folly
// F14 (buckets of one cache line, tags compared a bucket at a time, overflow counts instead of
// tombstones) and DPDK's rte_hash_hash + rte_hash_lookup_with_hash: a caller turns a key's hash
// into a Token once, may prefetch with it well ahead, then finds, inserts and erases with it.
//
// Layout: open addressing over buckets of 16 32-bit words (one cache line), of which the first
// SlotsPerBucket are slots and the last is the bucket's state. A key's home bucket is picked by
// multiply-shift (no power-of-two rounding, which would cost up to 8 bytes per value); it lives
// in the first bucket from there with a free slot. A slot is 0 when empty, else the value + 1 and
// above it a tag of hash bits, so a search compares the tags of a whole bucket at once and asks
// about only the values whose tag matches. The state word: bit i set when slot i is taken, and
// from bit kOverflowShift up the number of keys stored past this bucket whose path led through it
// (saturating: a saturated count stays, so searches go on one bucket further than they need to,
// never less). A search ends at the first bucket nothing overflowed from; erasing a key clears
// its slot and takes it off the counts on its path, without moving any other key.
//
// Memory: fixed by the capacity alone, allocated up front (zeroed huge pages, touched as first
// used), nothing per operation. About 1.9 slots per value (load about 0.53 when full), at least
// one more slot than values so that an insertion always finds one: 8 bytes per value with full
// 15-slot buckets. Fewer slots per bucket take more buckets for the same slots; they exist so
// that tests can make buckets overflow often.
// Thread safety: none. Const members may run concurrently with each other, never with a writer.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/huge_pages.hpp"
#include "common/word_match.hpp"

namespace synwatch {

template <unsigned SlotsPerBucket = 15>
class BucketedIndex {
 public:
  static constexpr unsigned kBucketWords = 16;
  static constexpr unsigned kSlots = SlotsPerBucket;
  static_assert(kSlots >= 1 && kSlots < kBucketWords);
  // Values + 1 must leave at least 3 bits of the slot for the tag.
  static constexpr std::size_t kMaxCapacity = std::size_t{1} << 28;
  static constexpr std::size_t kNoSlot = SIZE_MAX;

  // What a key's hash decides, worked out once per key: where its search starts and the tag its
  // slot carries. Belongs to the index it was made by.
  struct Token {
    std::size_t home;   // bucket
    std::uint32_t tag;  // already shifted into place above the value bits
  };

  // Values in [0, capacity); capacity is clamped to [1, kMaxCapacity]. Throws std::bad_alloc
  // when the memory cannot be mapped.
  explicit BucketedIndex(std::size_t capacity)
      : capacity_(std::clamp<std::size_t>(capacity, 1, kMaxCapacity)),
        bucket_count_(buckets_for(capacity_)),
        value_bits_(static_cast<unsigned>(std::bit_width(capacity_))),
        value_mask_((std::uint32_t{1} << value_bits_) - 1),
        words_(static_cast<std::uint32_t*>(map_huge_pages(bytes_for(bucket_count_))),
               HugePageDeleter{bytes_for(bucket_count_)}) {}

  [[nodiscard]] Token token(std::uint64_t hash) const noexcept {
    // Multiply-shift maps the top 32 hash bits onto [0, bucket_count_) without a division; the
    // tag comes from the low bits, independent of the home bucket.
    return Token{static_cast<std::size_t>(((hash >> 32) * bucket_count_) >> 32),
                 static_cast<std::uint32_t>(hash << value_bits_)};
  }

  // Starts loading the bucket a search for the token reads first.
  void prefetch(const Token& token) const noexcept {
    __builtin_prefetch(&words_[token.home * kBucketWords]);
  }

  // The slot of the value whose key this is, or kNoSlot: is_key(value) answers whether `value`
  // (one whose tag matches) holds the key searched for. Inlined: it runs once per packet, and a
  // call would cost as much as the search.
  template <typename IsKey>
  [[nodiscard, gnu::always_inline]] inline std::size_t find(const Token& token,
                                                            IsKey&& is_key) const noexcept {
    for (std::size_t bucket = token.home;; bucket = next(bucket)) {
      const std::uint32_t* words = &words_[bucket * kBucketWords];
      const std::uint32_t state = words[kStateWord];
      for (std::uint32_t candidates =
               match_16_words(words, token.tag, ~value_mask_) & state & kSlotBits;
           candidates != 0; candidates &= candidates - 1) {
        const auto i = static_cast<std::size_t>(std::countr_zero(candidates));
        if (is_key((words[i] & value_mask_) - 1)) return bucket * kBucketWords + i;
      }
      // Nothing was pushed past this bucket: the key is nowhere further.
      if (state < kOverflowOne) return kNoSlot;
    }
  }

  [[nodiscard]] std::uint32_t value_at(std::size_t slot) const noexcept {
    return (words_[slot] & value_mask_) - 1;
  }

  // Stores `value` for the token's key in the first free slot from its home bucket, and returns
  // that slot; kNoSlot (nothing stored) when the index already holds `capacity` values. The key
  // must not be in the index already, nor the value.
  [[gnu::always_inline]] inline std::size_t insert(const Token& token,
                                                   std::uint32_t value) noexcept {
    if (size_ == capacity_) [[unlikely]] {
      return kNoSlot;
    }
    const std::size_t slot = first_free(token.home);
    words_[slot] = (value + 1) | token.tag;
    words_[slot | kStateWord] |= std::uint32_t{1} << (slot % kBucketWords);
    if (slot / kBucketWords != token.home) count_overflow(token.home, slot, kOverflowOne);
    ++size_;
    return slot;
  }

  // Empties `slot`; `home` is Token::home of the key stored there.
  void erase(std::size_t slot, std::size_t home) noexcept {
    words_[slot] = 0;
    words_[slot | kStateWord] &= ~(std::uint32_t{1} << (slot % kBucketWords));
    if (slot / kBucketWords != home) count_overflow(home, slot, ~kOverflowOne + 1);  // minus one
    --size_;
  }

  // The slot holding `value`, whose key's Token::home is `home`. The value must be in the index.
  [[nodiscard]] std::size_t slot_of(std::uint32_t value, std::size_t home) const noexcept {
    for (std::size_t bucket = home;; bucket = next(bucket)) {
      const std::uint32_t* words = &words_[bucket * kBucketWords];
      const std::uint32_t at =
          match_16_words(words, value + 1, value_mask_) & words[kStateWord] & kSlotBits;
      if (at != 0) return bucket * kBucketWords + static_cast<std::size_t>(std::countr_zero(at));
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t memory_bytes() const noexcept { return bytes_for(bucket_count_); }
  [[nodiscard]] std::size_t bucket_count() const noexcept { return bucket_count_; }

  // For tests and diagnostics, O(buckets): buckets with keys stored past them, which searches
  // walk through (0 whenever the index is empty).
  [[nodiscard]] std::size_t overflowing_buckets() const noexcept {
    std::size_t overflowing = 0;
    for (std::size_t bucket = 0; bucket < bucket_count_; ++bucket) {
      if (words_[bucket * kBucketWords + kStateWord] >= kOverflowOne) ++overflowing;
    }
    return overflowing;
  }
  // For tests and diagnostics: the buckets a search for the token reads, however it ends.
  [[nodiscard]] std::size_t probe_length(const Token& token) const noexcept {
    std::size_t length = 1;
    for (std::size_t bucket = token.home;
         words_[bucket * kBucketWords + kStateWord] >= kOverflowOne; bucket = next(bucket)) {
      ++length;
    }
    return length;
  }

 private:
  static constexpr unsigned kStateWord = kBucketWords - 1;
  static constexpr std::uint32_t kSlotBits = (std::uint32_t{1} << kSlots) - 1;
  static constexpr unsigned kOverflowShift = 15;
  static constexpr std::uint32_t kOverflowOne = std::uint32_t{1} << kOverflowShift;
  static constexpr std::uint32_t kOverflowSaturated = ~std::uint32_t{0} >> kOverflowShift;
  static_assert(kSlots <= kOverflowShift);

  // At least one slot more than the capacity, otherwise capacity / 8 buckets of 15 slots (8
  // bytes of index per value), or as many more as fewer slots per bucket need for as many slots.
  static std::size_t buckets_for(std::size_t capacity) noexcept {
    return std::max(capacity / kSlots + 1, capacity / 8 * 15 / kSlots);
  }
  static std::size_t bytes_for(std::size_t buckets) noexcept {
    return buckets * kBucketWords * sizeof(std::uint32_t);
  }

  [[nodiscard]] std::size_t next(std::size_t bucket) const noexcept {
    return bucket + 1 == bucket_count_ ? 0 : bucket + 1;
  }

  // There are more slots than values, so some bucket has one.
  [[nodiscard]] std::size_t first_free(std::size_t bucket) const noexcept {
    for (;; bucket = next(bucket)) {
      const std::uint32_t empty = ~words_[bucket * kBucketWords + kStateWord] & kSlotBits;
      if (empty != 0) {
        return bucket * kBucketWords + static_cast<std::size_t>(std::countr_zero(empty));
      }
    }
  }

  // Adds `step` (one, or minus one) to the overflow count of every bucket from `home` up to,
  // not including, the bucket of `slot`: the buckets a key stored there was pushed past.
  void count_overflow(std::size_t home, std::size_t slot, std::uint32_t step) noexcept {
    const std::size_t last = slot / kBucketWords;
    for (std::size_t bucket = home; bucket != last; bucket = next(bucket)) {
      std::uint32_t& state = words_[bucket * kBucketWords + kStateWord];
      if ((state >> kOverflowShift) != kOverflowSaturated) state += step;
    }
  }

  std::size_t capacity_;
  std::size_t bucket_count_;
  unsigned value_bits_;
  std::uint32_t value_mask_;
  std::size_t size_ = 0;
  // 2 MiB aligned, so every bucket is one cache line.
  std::unique_ptr<std::uint32_t[], HugePageDeleter> words_;
};

}  // namespace synwatch
