#pragma once
// Structs of counters list their members once, as a constexpr array of member pointers, so that
// whatever walks them (sums over capture workers, merges of windows) cannot miss one:
// every_member_listed() compares the struct's size with the list's, and a static_assert beside
// each list turns a counter added to the struct but not to its list into a compile error.
// Thread safety: pure functions.

#include <array>
#include <cstddef>

namespace synwatch {

template <typename Struct, typename Value, std::size_t N>
consteval bool every_member_listed(const std::array<Value Struct::*, N>& /*members*/) {
  return sizeof(Struct) == N * sizeof(Value);
}

// sum.m += other.m for every listed member m.
template <typename Struct, typename Value, std::size_t N>
constexpr void add_members(Struct& sum, const Struct& other,
                           const std::array<Value Struct::*, N>& members) noexcept {
  for (const auto member : members) sum.*member += other.*member;
}

}  // namespace synwatch
