#pragma once
// Packet time. Everything in the engine runs on packet timestamps (nanoseconds since the
// Unix epoch), never on the wall clock, so that a capture replays deterministically.
// Thread safety: plain values and pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace synwatch {

using TimestampNs = std::int64_t;
using DurationNs = std::int64_t;

inline constexpr DurationNs kNanosPerMilli = 1'000'000;
inline constexpr DurationNs kNanosPerSecond = 1'000'000'000;

constexpr double to_seconds(DurationNs d) noexcept {
  return static_cast<double>(d) / 1e9;
}
constexpr DurationNs from_seconds(double s) noexcept {
  return static_cast<DurationNs>(s * 1e9);
}

// RFC 3339 in UTC with millisecond precision: "2024-05-01T12:00:00.123Z".
// The wall clock (CLOCK_REALTIME) as a TimestampNs: for live mode only, where packet time is
// anchored to it; replays never read it.
TimestampNs realtime_now() noexcept;

std::string format_rfc3339(TimestampNs t);
// The inverse for what format_rfc3339 writes ("...Z", milliseconds optional); nullopt otherwise.
std::optional<TimestampNs> parse_rfc3339(std::string_view text);

}  // namespace synwatch
