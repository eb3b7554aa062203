// FlowShard's clock: packet time starts with the first segment, ticks run at their boundaries,
// wake-ups fire once when packet time reaches them, and frames older than the newest are applied
// at the newest time and counted.
#include <gtest/gtest.h>

#include <vector>

#include "engine/flow_shard.hpp"

namespace synwatch {
namespace {

constexpr TimestampNs kSecond = kNanosPerSecond;
constexpr TimestampNs kMilli = kNanosPerMilli;

struct Recorder final : FlowShard::Observer {
  std::vector<TimestampNs> ticks;
  std::vector<TimestampNs> wakes;
  std::vector<TimestampNs> crossings;
  void on_tick(TimestampNs at) noexcept override { ticks.push_back(at); }
  void on_wake(TimestampNs now) noexcept override { wakes.push_back(now); }
  void on_threshold_crossed(TimestampNs at) noexcept override { crossings.push_back(at); }
  [[nodiscard]] bool may_skip_ticks() const noexcept override { return true; }
};

TcpSegment syn_at(TimestampNs at, std::uint16_t source_port = 40000) {
  TcpSegment s;
  s.timestamp = at;
  s.source = IpAddress::from_v4(0xc6120001u);       // 198.18.0.1
  s.destination = IpAddress::from_v4(0xc6336402u);  // 198.51.100.2
  s.source_port = source_port;
  s.destination_port = 80;
  s.seq = 1000;
  s.flags = tcp_flag::kSyn;
  return s;
}

class FlowShardClock : public ::testing::Test {
 protected:
  FlowShardClock() : shard_(Config{}, 1024, 100, 100, 1) { shard_.set_observer(&recorder_); }
  // Segments just before `due`, at it and after it: exactly one wake-up, at `due`.
  void expect_one_wake_at(TimestampNs due) {
    shard_.on_segment(syn_at(due - 1, 40001));
    EXPECT_TRUE(recorder_.wakes.empty());
    shard_.on_segment(syn_at(due, 40002));
    EXPECT_EQ(recorder_.wakes, std::vector<TimestampNs>{due});
    shard_.on_segment(syn_at(due + 100 * kMilli, 40003));
    EXPECT_EQ(recorder_.wakes.size(), 1u);
  }

  FlowShard shard_;
  Recorder recorder_;
};

TEST_F(FlowShardClock, StartsWithTheFirstSegmentEvenBeforeTimeZero) {
  EXPECT_FALSE(shard_.has_seen_packets());
  EXPECT_EQ(shard_.newest_packet_time(), 0);
  const TimestampNs start = -5 * kSecond + 300 * kMilli;
  shard_.on_segment(syn_at(start));
  EXPECT_TRUE(shard_.has_seen_packets());
  EXPECT_EQ(shard_.newest_packet_time(), start);
  EXPECT_EQ(shard_.counters().time_regressions, 0u);
  EXPECT_EQ(shard_.next_tick(), -4 * kSecond);
  EXPECT_TRUE(recorder_.ticks.empty());

  shard_.on_segment(syn_at(-4 * kSecond - 1, 40001));
  EXPECT_TRUE(recorder_.ticks.empty());
  shard_.on_segment(syn_at(-4 * kSecond, 40002));
  EXPECT_EQ(recorder_.ticks, std::vector<TimestampNs>{-4 * kSecond});
  EXPECT_EQ(shard_.next_tick(), -3 * kSecond);
}

TEST_F(FlowShardClock, OlderSegmentsApplyAtTheNewestTimeAndAreCounted) {
  shard_.on_segment(syn_at(10 * kSecond));
  shard_.on_segment(syn_at(9 * kSecond, 40001));
  EXPECT_EQ(shard_.counters().time_regressions, 1u);
  EXPECT_EQ(shard_.newest_packet_time(), 10 * kSecond);
  EXPECT_EQ(shard_.handshakes().size(), 2u);
}

TEST_F(FlowShardClock, WakeUpAskedBeforeTheFirstSegmentFiresOnceWhenTimeReachesIt) {
  shard_.wake_at(20 * kSecond + 100 * kMilli);
  shard_.on_segment(syn_at(20 * kSecond));
  expect_one_wake_at(20 * kSecond + 100 * kMilli);
}

TEST_F(FlowShardClock, AWakeUpBeforeTheFirstSegmentFiresWithIt) {
  shard_.wake_at(kSecond);
  shard_.on_segment(syn_at(30 * kSecond));
  EXPECT_EQ(recorder_.wakes, std::vector<TimestampNs>{30 * kSecond});
}

TEST_F(FlowShardClock, WakeUpAskedAfterTheStartFiresAtItsTimeAndTheEarliestRequestWins) {
  shard_.on_segment(syn_at(40 * kSecond));
  shard_.wake_at(40 * kSecond + 80 * kMilli);
  shard_.wake_at(40 * kSecond + 50 * kMilli);
  expect_one_wake_at(40 * kSecond + 50 * kMilli);
}

TEST_F(FlowShardClock, FramesWithoutASegmentMoveTimeOnlyOnceStarted) {
  const std::vector<std::uint8_t> not_ip(60, 0);  // ethertype 0
  Decoder decoder(LinkType::kEthernet);
  shard_.wake_at(kSecond);
  shard_.on_packet(PacketView{not_ip, 60, 50 * kSecond}, decoder);
  EXPECT_FALSE(shard_.has_seen_packets());
  EXPECT_TRUE(recorder_.wakes.empty());

  shard_.on_segment(syn_at(50 * kSecond + 500 * kMilli));
  EXPECT_EQ(recorder_.wakes.size(), 1u);
  shard_.wake_at(52 * kSecond);
  shard_.on_packet(PacketView{not_ip, 60, 52 * kSecond + 1}, decoder);
  EXPECT_EQ(recorder_.ticks, (std::vector<TimestampNs>{51 * kSecond, 52 * kSecond}));
  EXPECT_EQ(recorder_.wakes.size(), 2u);
  EXPECT_EQ(shard_.newest_packet_time(), 52 * kSecond + 1);
}

TEST(FlowShard, TellsItsObserverOnceWhenADestinationsStaleCountRisesToTheThreshold) {
  FlowShard shard(Config{}, 1024, 3, 1000, 1);
  Recorder recorder;
  shard.set_observer(&recorder);
  shard.on_segment(syn_at(0, 40000));  // packet time 0 is a valid time too
  shard.on_segment(syn_at(0, 40001));
  shard.on_segment(syn_at(0, 40002));
  shard.on_segment(syn_at(0, 40003));
  // Pending, not yet stale: no history, so they are judged at 1 s (the initial SYN-ACK timeout).
  shard.on_segment(syn_at(kSecond - 1, 40004));
  EXPECT_TRUE(recorder.crossings.empty());
  EXPECT_EQ(shard.handshakes().stale(), 0u);
  shard.on_segment(syn_at(kSecond + 5 * kMilli, 40005));
  EXPECT_EQ(recorder.crossings, std::vector<TimestampNs>{kSecond});
  EXPECT_EQ(shard.handshakes().stale(), 4u);
  shard.on_segment(syn_at(2 * kSecond + 5 * kMilli, 40006));
  EXPECT_EQ(recorder.crossings.size(), 1u);
  EXPECT_EQ(shard.handshakes().stale(), 6u);
}

TEST(FlowShard, AGapInPacketTimeJudgesHandshakesBeforeTheyExpire) {
  FlowShard shard(Config{}, 1024, 3, 1000, 1);
  Recorder recorder;
  shard.set_observer(&recorder);
  for (std::uint16_t port = 40000; port < 40010; ++port) shard.on_segment(syn_at(kSecond, port));
  // The next packet comes three hours later (concatenated captures): the ten SYNs went stale
  // (at 2 s) long before they expired (at 64 s), and the threshold crossing is told at its time.
  shard.on_segment(syn_at(TimestampNs{3} * 3600 * kSecond, 50000));
  EXPECT_EQ(recorder.crossings, std::vector<TimestampNs>{2 * kSecond});
  EXPECT_EQ(shard.handshakes().counters().judged_stale, 10u);
  EXPECT_EQ(shard.handshakes().counters().expired, 10u);
  EXPECT_LT(recorder.crossings.front(), recorder.ticks.back());
}

}  // namespace
}  // namespace synwatch
