#pragma once
// Live time. The engine runs on packet timestamps; while no packets come, its time is advanced by
// the monotonic clock from the newest packet (the anchor), so that ticks keep running and incidents
// end even when packets stop dead. The monotonic clock is injected so tests can simulate it.
//
// Thread safety: none; one thread (the pipeline's) owns it.

#include <cstdint>
#include <optional>

#include "common/monotonic_clock.hpp"
#include "common/time.hpp"

namespace synwatch {

class LiveClock {
 public:
  explicit LiveClock(MonotonicNow monotonic_now = steady_now);

  // Anchors packet time `start` (the wall clock, before any packet) to the monotonic clock's now.
  void start(TimestampNs start);

  struct Reading {
    TimestampNs now = 0;       // engine time; never less than an earlier reading's
    bool new_packets = false;  // the newest packet time changed since the last reading
  };
  // `newest_packet`: the engine's newest packet time, nullopt before its first packet. A newest
  // packet time not seen before becomes the anchor.
  Reading read(std::optional<TimestampNs> newest_packet);

 private:
  MonotonicNow monotonic_now_;
  TimestampNs anchor_packet_time_ = 0;
  MonotonicTime anchor_monotonic_{};
  TimestampNs anchored_newest_ = 0;  // the newest packet time the anchor was set from
  TimestampNs last_now_ = INT64_MIN;
};

}  // namespace synwatch
