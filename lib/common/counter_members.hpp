#pragma once
// Structs of figures list their members once, as constexpr arrays, so that whatever walks them
// (sums over capture workers, merges of windows, the /metrics page) cannot miss one:
// every_member_listed() compares the struct's size with the list's, and a static_assert beside
// each list of a struct that holds only figures turns a member added to the struct but not to
// its list into a compile error. (A list over part of a struct, such as an action's outcome
// counts beside its name, cannot be checked so.)
//
// A list is either bare member pointers (figures that are only summed) or named members, which
// also say how the figure is exported: a LabelledFigures is one metric family whose members are
// told apart by one label (DestinationEventStats' `event`); a member with a help text of its own is
// a metric of its own (TcpExt's counters). The names live beside the struct, in its module, so a
// new figure is declared in one place; export/ only walks the lists.
//
// A family that is no struct's list (a gauge per destination, a count per enum value, a figure
// export/ computes) is a MetricSpec, declared once beside the code that fills it.
// Thread safety: constant data and pure functions.

#include <array>
#include <cstddef>
#include <string_view>

namespace synwatch {

// How a figure behaves over time; export/ maps it to the metric type.
enum class FigureKind : unsigned char { kCounter, kGauge };

struct MetricSpec {
  std::string_view name;
  std::string_view help;
  FigureKind kind = FigureKind::kCounter;
};

template <typename Struct, typename Value>
struct NamedMember {
  Value Struct::*member;
  std::string_view name;       // the label value, or the metric name for a metric of its own
  std::string_view help = {};  // a metric of its own: its help text
};

template <typename Struct, typename Value, std::size_t N>
struct LabelledFigures {
  std::string_view metric;  // the family's name
  std::string_view help;
  FigureKind kind = FigureKind::kCounter;
  std::string_view label;  // the label telling the members apart
  std::array<NamedMember<Struct, Value>, N> members;
};

template <typename Struct, typename Value, std::size_t N>
consteval bool every_member_listed(const std::array<Value Struct::*, N>& /*members*/) {
  return sizeof(Struct) == N * sizeof(Value);
}

template <typename Struct, typename Value, std::size_t N>
consteval bool every_member_listed(const std::array<NamedMember<Struct, Value>, N>& /*members*/) {
  return sizeof(Struct) == N * sizeof(Value);
}

// sum.m += other.m for every listed member m.
template <typename Struct, typename Value, std::size_t N>
constexpr void add_members(Struct& sum, const Struct& other,
                           const std::array<Value Struct::*, N>& members) noexcept {
  for (const auto member : members) sum.*member += other.*member;
}

template <typename Struct, typename Value, std::size_t N>
constexpr void add_members(Struct& sum, const Struct& other,
                           const std::array<NamedMember<Struct, Value>, N>& members) noexcept {
  for (const auto& named : members) sum.*named.member += other.*named.member;
}

}  // namespace synwatch
