#pragma once
// A bounded ring of trivially copyable records between exactly one producer thread and one
// consumer thread, without locks: the producer never waits (a full ring refuses the record and
// the caller counts it), the consumer polls. Capacity is a power of two fixed at construction;
// the storage is allocated once, there.
// Thread safety: try_push() from one thread, try_pop()/size() from one other thread; the
// producer and consumer may change only with both quiescent (ordered by some other sync).

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>

namespace synwatch {

// The two sides' indices sit on cache lines of their own (alignas), which costs padding by design.
template <typename Record>
class SpscRing {  // NOLINT(clang-analyzer-optin.performance.Padding)
  static_assert(std::is_trivially_copyable_v<Record>);

 public:
  // `capacity` is rounded up to a power of two (at least 2).
  explicit SpscRing(std::size_t capacity)
      : mask_(std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity) - 1),
        slots_(std::make_unique<Record[]>(mask_ + 1)) {}

  [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }
  [[nodiscard]] std::size_t memory_bytes() const noexcept { return capacity() * sizeof(Record); }

  // The slot the next record would go to, or nullptr when the ring is full. The producer fills
  // it in place (no copy of a whole record from the stack) and then calls commit().
  [[nodiscard]] Record* claim() noexcept {
    const std::uint64_t head = head_.load(std::memory_order_relaxed);
    if (head - cached_tail_ > mask_) {
      cached_tail_ = tail_.load(std::memory_order_acquire);
      if (head - cached_tail_ > mask_) return nullptr;
    }
    return &slots_[head & mask_];
  }
  void commit() noexcept {
    head_.store(head_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  bool try_push(const Record& record) noexcept {
    Record* slot = claim();
    if (slot == nullptr) return false;
    *slot = record;
    commit();
    return true;
  }

  // Consumer: the oldest record, or nullptr when empty; valid until release().
  [[nodiscard]] const Record* front() noexcept {
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail == cached_head_) {
      cached_head_ = head_.load(std::memory_order_acquire);
      if (tail == cached_head_) return nullptr;
    }
    return &slots_[tail & mask_];
  }
  void release() noexcept {
    tail_.store(tail_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

 private:
  const std::size_t mask_;
  std::unique_ptr<Record[]> slots_;
  // Each side's index and its cached copy of the other side's on lines of their own: the
  // producer's writes never invalidate the consumer's line and back.
  alignas(64) std::atomic<std::uint64_t> head_{0};
  std::uint64_t cached_tail_ = 0;
  alignas(64) std::atomic<std::uint64_t> tail_{0};
  std::uint64_t cached_head_ = 0;
};

}  // namespace synwatch
