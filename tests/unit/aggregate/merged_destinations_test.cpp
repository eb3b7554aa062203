// Merging per-worker tables: counts add, sources unite, heavy hitters merge, pins reach shards.
#include <gtest/gtest.h>

#include "aggregate/merged_destinations.hpp"

namespace synwatch {
namespace {

constexpr TimestampNs kT0 = 1'700'000'000LL * kNanosPerSecond;
const Endpoint kServer{*IpAddress::parse("198.51.100.10"), 80};
const Endpoint kOther{*IpAddress::parse("198.51.100.11"), 443};

FlowUpdate update(FlowEvent e, IpAddress client, Endpoint server = kServer,
                  HandshakeState previous = HandshakeState::kSynSeen) {
  FlowUpdate u;
  u.event = e;
  u.server = server;
  u.client = client;
  u.previous_state = previous;
  return u;
}

AggregationConfig config() {
  AggregationConfig c;
  c.max_destinations = 8;
  c.window = 5 * kNanosPerSecond;
  c.idle_timeout = 10 * kNanosPerSecond;
  return c;
}

IpAddress spoofed(std::uint32_t i) {
  return IpAddress::from_v4(0xc6120000u + i);  // 198.18.0.0/15
}

TEST(MergedDestinations, CountsAddAcrossShardsAndTheStaleLevelCrossesTheThresholdOnce) {
  const StaleJudgement judgement = StaleJudgement::from(DetectionConfig{});
  DestinationTable a(config(), kNanosPerSecond, 3, 0, judgement);
  DestinationTable b(config(), kNanosPerSecond, 3, 0, judgement);
  MergedDestinations merged({&a, &b}, 5);
  for (std::uint32_t i = 0; i < 3; ++i) {
    a.on_flow(update(FlowEvent::kSyn, spoofed(i)), kT0);
    a.on_stale(kServer, spoofed(i), kT0);
  }
  b.on_flow(update(FlowEvent::kSyn, spoofed(100)), kT0);
  b.on_stale(kServer, spoofed(100), kT0);
  EXPECT_EQ(merged.refresh(kT0), 0u);
  const Destination* d = merged.find(kServer);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->half_open(), 4u);
  EXPECT_EQ(d->stale_level, 4u);
  EXPECT_EQ(d->above_threshold_since, 0);

  b.on_flow(update(FlowEvent::kSyn, spoofed(101)), kT0 + 10);
  b.on_flow(update(FlowEvent::kSynAck, spoofed(101)), kT0 + 20);
  b.on_stale(kServer, spoofed(101), kT0 + 20);
  EXPECT_EQ(merged.refresh(kT0 + 30), 1u);
  d = merged.find(kServer);
  EXPECT_EQ(d->half_open(), 5u);
  EXPECT_EQ(d->syn_recv, 1u);
  EXPECT_EQ(d->syn_seen, 4u);
  EXPECT_EQ(d->totals.syns, 5u);
  EXPECT_EQ(d->above_threshold_since, kT0 + 30);
  EXPECT_EQ(merged.above_threshold(), 1u);
  // Still above: the crossing time stays, nothing new crossed.
  EXPECT_EQ(merged.refresh(kT0 + 40), 0u);
  EXPECT_EQ(merged.find(kServer)->above_threshold_since, kT0 + 30);

  // A stale handshake completes late: the merged level falls below the threshold.
  FlowUpdate late = update(FlowEvent::kCompleted, spoofed(0));
  late.was_stale = true;
  late.age = 50;
  a.on_flow(late, kT0 + 50);
  merged.refresh(kT0 + 60);
  EXPECT_EQ(merged.find(kServer)->half_open(), 4u);
  EXPECT_EQ(merged.find(kServer)->stale_level, 4u);
  EXPECT_EQ(merged.find(kServer)->above_threshold_since, 0);
  EXPECT_EQ(merged.stats(*merged.find(kServer), kT0 + 60, 4).peak_half_open, 5u);
}

TEST(MergedDestinations, WindowStatisticsEqualThoseOfOneTableFedEverything) {
  DestinationTable a(config(), kNanosPerSecond, 1000);
  DestinationTable b(config(), kNanosPerSecond, 1000);
  DestinationTable whole(config(), kNanosPerSecond, 1000);
  MergedDestinations merged({&a, &b}, 1000);
  // 3000 distinct spoofed sources split by parity, one heavy source (600 SYNs) seen by both;
  // every handshake goes stale.
  const auto feed = [](DestinationTable& table, IpAddress source, TimestampNs t) {
    table.on_flow(update(FlowEvent::kSyn, source), t);
    table.on_stale(kServer, source, t);
  };
  for (std::uint32_t i = 0; i < 3000; ++i) {
    const TimestampNs t = kT0 + static_cast<TimestampNs>(i) * kNanosPerMilli;
    feed(i % 2 == 0 ? a : b, spoofed(i), t);
    feed(whole, spoofed(i), t);
    if (i % 5 == 0) {
      const IpAddress heavy = *IpAddress::parse("198.19.0.1");
      feed(i % 10 == 0 ? a : b, heavy, t);
      feed(whole, heavy, t);
    }
  }
  const TimestampNs now = kT0 + 3 * kNanosPerSecond;
  merged.refresh(now);
  const DestinationStats m = merged.stats(*merged.find(kServer), now, 4);
  const DestinationStats w = whole.stats(*whole.find(kServer), now, 4);
  EXPECT_EQ(m.half_open, w.half_open);
  EXPECT_EQ(m.window.syns, w.window.syns);
  EXPECT_EQ(m.window.syns, 3600u);
  EXPECT_EQ(m.stale, w.stale);
  EXPECT_EQ(m.stale, 3600u);
  EXPECT_EQ(m.window_span, w.window_span);
  // Register-wise maximum of the halves is exactly the sketch of the whole.
  EXPECT_DOUBLE_EQ(m.distinct_sources, w.distinct_sources);
  EXPECT_NEAR(m.distinct_sources, 3001.0, 3001.0 * 0.1);
  ASSERT_FALSE(m.top_sources.empty());
  EXPECT_EQ(m.top_sources.front().address, *IpAddress::parse("198.19.0.1"));
  EXPECT_NEAR(static_cast<double>(m.top_sources.front().syns), 600.0, 600.0 * 0.35);
  EXPECT_NEAR(m.source_entropy, w.source_entropy, 0.05);
}

TEST(MergedDestinations, ATargetEveryShardForgotIsForgottenByTheMergeToo) {
  AggregationConfig c = config();
  c.idle_timeout = kNanosPerSecond;
  DestinationTable a(c, kNanosPerSecond, 1);
  DestinationTable b(c, kNanosPerSecond, 1);
  MergedDestinations merged({&a, &b}, 1);
  a.on_flow(update(FlowEvent::kSyn, spoofed(1)), kT0);
  b.on_flow(update(FlowEvent::kSyn, spoofed(3), kOther), kT0);
  merged.refresh(kT0);
  EXPECT_EQ(merged.size(), 2u);
  // The merge keeps nothing of its own: the detector, not the shards, holds incidents, and ends
  // one whose target is gone (detector_test).
  a.on_flow(update(FlowEvent::kCompleted, spoofed(1)), kT0 + 1);
  a.forget_idle(kT0 + 5 * kNanosPerSecond);
  merged.refresh(kT0 + 5 * kNanosPerSecond);
  EXPECT_EQ(merged.size(), 1u);
  EXPECT_EQ(merged.find(kServer), nullptr);
  EXPECT_NE(merged.find(kOther), nullptr);
}

}  // namespace
}  // namespace synwatch
