// Live time on a simulated monotonic clock: anchored on packets, advancing while idle.
#include <gtest/gtest.h>

#include "engine/live_clock.hpp"
#include "simulated_clock.hpp"

namespace synwatch {
namespace {

constexpr TimestampNs kStart = 1'700'000'000 * kNanosPerSecond;

TEST(LiveClock, AdvancesFromTheStartWhileNoPacketHasCome) {
  SimulatedClock mono;
  LiveClock clock(mono.reader());
  clock.start(kStart);
  EXPECT_EQ(clock.read(std::nullopt).now, kStart);
  mono.now += std::chrono::milliseconds(250);
  const auto reading = clock.read(std::nullopt);
  EXPECT_EQ(reading.now, kStart + 250 * kNanosPerMilli);
  EXPECT_FALSE(reading.new_packets);
}

TEST(LiveClock, AnchorsOnAPacketAndAdvancesWithTheClockWhileIdle) {
  SimulatedClock mono;
  LiveClock clock(mono.reader());
  clock.start(kStart);
  mono.now += std::chrono::seconds(1);
  const TimestampNs packet = kStart + 5 * kNanosPerSecond;
  const auto anchored = clock.read(packet);
  EXPECT_TRUE(anchored.new_packets);
  EXPECT_EQ(anchored.now, packet);
  mono.now += std::chrono::seconds(3);
  const auto idle = clock.read(packet);
  EXPECT_FALSE(idle.new_packets);
  EXPECT_EQ(idle.now, packet + 3 * kNanosPerSecond);
}

TEST(LiveClock, ReanchorsWhenNewerPacketsCome) {
  SimulatedClock mono;
  LiveClock clock(mono.reader());
  clock.start(kStart);
  clock.read(kStart);
  mono.now += std::chrono::seconds(2);
  // The packets' own clock ran slower than the monotonic one: the packet's time wins.
  const TimestampNs newer = kStart + 3 * kNanosPerSecond;
  const auto reading = clock.read(newer);
  EXPECT_TRUE(reading.new_packets);
  EXPECT_EQ(reading.now, newer);
  mono.now += std::chrono::milliseconds(10);
  EXPECT_EQ(clock.read(newer).now, newer + 10 * kNanosPerMilli);
}

TEST(LiveClock, NeverGoesBackwards) {
  SimulatedClock mono;
  LiveClock clock(mono.reader());
  clock.start(kStart);
  clock.read(kStart);
  mono.now += std::chrono::seconds(10);
  const TimestampNs reached = clock.read(kStart).now;
  EXPECT_EQ(reached, kStart + 10 * kNanosPerSecond);
  // A packet stamped before the time already reached re-anchors, but time holds until the
  // clock has caught up with it.
  const TimestampNs late = kStart + 4 * kNanosPerSecond;
  const auto reading = clock.read(late);
  EXPECT_TRUE(reading.new_packets);
  EXPECT_EQ(reading.now, reached);
  mono.now += std::chrono::seconds(2);
  EXPECT_EQ(clock.read(late).now, reached);
  mono.now += std::chrono::seconds(7);
  EXPECT_EQ(clock.read(late).now, late + 9 * kNanosPerSecond);
}

}  // namespace
}  // namespace synwatch
