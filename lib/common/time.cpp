#include "common/time.hpp"

#include <ctime>
#include <cstdio>

namespace synwatch {

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

}  // namespace synwatch
