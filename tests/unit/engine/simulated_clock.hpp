#pragma once
// A monotonic clock that moves only when a test moves it, for what takes a MonotonicNow.

#include <chrono>

#include "common/monotonic_clock.hpp"

namespace synwatch {

struct SimulatedClock {
  MonotonicTime now{std::chrono::seconds(1000)};
  // Reads `now`; the clock must outlive what holds the reader.
  MonotonicNow reader() {
    return [this] { return now; };
  }
};

}  // namespace synwatch
