#pragma once
// Large arrays read at random (the handshake table) or streamed (benchmark frames) on
// transparent huge pages: with 4 KiB pages nearly every random access also misses the TLB.
// Thread safety: plain functions; the memory belongs to the caller.

#include <cstddef>

namespace synwatch {

// Zeroed anonymous memory of at least `bytes`, aligned to 2 MiB and advised to use transparent
// huge pages (best effort: without THP it is ordinary lazily zeroed memory). Pages are touched
// only as they are first used. Throws std::bad_alloc when the mapping fails (not on the packet
// path: tables are sized once).
void* map_huge_pages(std::size_t bytes);
// Releases what map_huge_pages(bytes) returned, given the same `bytes`; nullptr is ignored.
void unmap_huge_pages(void* memory, std::size_t bytes) noexcept;

// Owns what map_huge_pages(bytes) returned: std::unique_ptr<T[], HugePageDeleter>.
struct HugePageDeleter {
  std::size_t bytes;
  void operator()(void* memory) const noexcept { unmap_huge_pages(memory, bytes); }
};

}  // namespace synwatch
