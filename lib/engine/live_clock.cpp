#include "engine/live_clock.hpp"

#include <algorithm>
#include <utility>

namespace synwatch {

LiveClock::LiveClock(MonotonicNow monotonic_now) : monotonic_now_(std::move(monotonic_now)) {}

void LiveClock::start(TimestampNs start) {
  anchor_packet_time_ = start;
  anchor_monotonic_ = monotonic_now_();
}

LiveClock::Reading LiveClock::read(std::optional<TimestampNs> newest_packet) {
  const MonotonicTime now_monotonic = monotonic_now_();
  Reading reading;
  if (newest_packet && *newest_packet != anchored_newest_) {
    anchored_newest_ = *newest_packet;
    anchor_packet_time_ = anchored_newest_;
    anchor_monotonic_ = now_monotonic;
    reading.new_packets = true;
  }
  const TimestampNs anchored =
      anchor_packet_time_ +
      std::chrono::duration_cast<std::chrono::nanoseconds>(now_monotonic - anchor_monotonic_)
          .count();
  // Packets stamped behind the time already reached re-anchor without taking the engine back.
  last_now_ = std::max(last_now_, anchored);
  reading.now = last_now_;
  return reading;
}

}  // namespace synwatch
