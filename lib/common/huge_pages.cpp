#include "common/huge_pages.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <new>

namespace synwatch {

namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

std::size_t mapped_bytes(std::size_t bytes) noexcept {
  return (std::max<std::size_t>(bytes, 1) + kHugePage - 1) / kHugePage * kHugePage;
}

}  // namespace

void* map_huge_pages(std::size_t bytes) {
  const std::size_t size = mapped_bytes(bytes);
  void* raw =
      mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  // Trim to a 2 MiB aligned range so every page of it can be a huge page. Pointer arithmetic
  // on the mapping (not integer-to-pointer casts) keeps the pointer's provenance.
  char* const base = static_cast<char*>(raw);
  const std::size_t lead =
      (kHugePage - reinterpret_cast<std::uintptr_t>(raw) % kHugePage) % kHugePage;
  char* const aligned = base + lead;
  if (lead > 0) munmap(base, lead);
  const std::size_t tail = kHugePage - lead;  // never 0: lead < kHugePage
  munmap(aligned + size, tail);
  madvise(aligned, size, MADV_HUGEPAGE);
  return aligned;
}

void unmap_huge_pages(void* memory, std::size_t bytes) noexcept {
  if (memory != nullptr) munmap(memory, mapped_bytes(bytes));
}

}  // namespace synwatch
