#pragma once
// The monotonic clock as a value, so that what schedules by it (live time, reopening backoff) can
// be driven by simulated time in tests. Production passes steady_now.
// Thread safety: steady_now() from any thread; a MonotonicNow is as safe as what it holds.

#include <chrono>
#include <functional>

namespace synwatch {

using MonotonicTime = std::chrono::steady_clock::time_point;
using MonotonicNow = std::function<MonotonicTime()>;

inline MonotonicTime steady_now() noexcept {
  return std::chrono::steady_clock::now();
}

}  // namespace synwatch
