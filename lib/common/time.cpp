#include "common/time.hpp"

#include <cstdint>
#include <cstdio>
#include <ctime>

namespace synwatch {

TimestampNs realtime_now() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<TimestampNs>(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

std::string format_rfc3339(TimestampNs t) {
  // Floor division so that pre-1970 timestamps (seen in some public captures) still format.
  std::int64_t seconds = t / kNanosPerSecond;
  std::int64_t nanos = t % kNanosPerSecond;
  if (nanos < 0) {
    nanos += kNanosPerSecond;
    --seconds;
  }
  const auto as_time = static_cast<std::time_t>(seconds);
  std::tm utc{};
  gmtime_r(&as_time, &utc);
  char buffer[64];
  // The format has a fixed width that fits the buffer, so truncation is impossible.
  (void)std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                      utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                      utc.tm_sec, static_cast<int>(nanos / kNanosPerMilli));
  return buffer;
}

namespace {

// Reads exactly `width` ASCII digits; sscanf would also take signs, spaces and short fields.
std::optional<int> fixed_digits(std::string_view& rest, std::size_t width) {
  if (rest.size() < width) return std::nullopt;
  int value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    const char c = rest[i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  rest.remove_prefix(width);
  return value;
}

bool take(std::string_view& rest, char expected) {
  if (rest.empty() || rest.front() != expected) return false;
  rest.remove_prefix(1);
  return true;
}

}  // namespace

std::optional<TimestampNs> parse_rfc3339(std::string_view text) {
  std::string_view rest = text;
  const auto year = fixed_digits(rest, 4);
  if (!year || !take(rest, '-')) return std::nullopt;
  const auto month = fixed_digits(rest, 2);
  if (!month || !take(rest, '-')) return std::nullopt;
  const auto day = fixed_digits(rest, 2);
  if (!day || !take(rest, 'T')) return std::nullopt;
  const auto hour = fixed_digits(rest, 2);
  if (!hour || !take(rest, ':')) return std::nullopt;
  const auto minute = fixed_digits(rest, 2);
  if (!minute || !take(rest, ':')) return std::nullopt;
  const auto second = fixed_digits(rest, 2);
  if (!second) return std::nullopt;
  if (*month < 1 || *month > 12 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 ||
      *second > 60) {
    return std::nullopt;
  }
  std::int64_t millis = 0;
  if (take(rest, '.')) {
    int digits = 0;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      if (digits < 3) millis = millis * 10 + (rest.front() - '0');
      ++digits;
      rest.remove_prefix(1);
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 3; ++digits) millis *= 10;
  }
  if (rest != "Z") return std::nullopt;
  std::tm utc{};
  utc.tm_year = *year - 1900;
  utc.tm_mon = *month - 1;
  utc.tm_mday = *day;
  utc.tm_hour = *hour;
  utc.tm_min = *minute;
  utc.tm_sec = *second;
  const std::int64_t seconds = ::timegm(&utc);
  // Nanoseconds in 64 bits reach 1677..2262; a year outside that is not a time we wrote.
  constexpr std::int64_t kLimit = INT64_MAX / kNanosPerSecond - 1;
  if (seconds > kLimit || seconds < -kLimit) return std::nullopt;
  return seconds * kNanosPerSecond + millis * kNanosPerMilli;
}

}  // namespace synwatch
