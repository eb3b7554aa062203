#include <gtest/gtest.h>

#include "aggregate/destination_table.hpp"

namespace synwatch {
namespace {

constexpr TimestampNs kT0 = 1'700'000'000LL * kNanosPerSecond;
const Endpoint kServer{*IpAddress::parse("198.51.100.10"), 80};

FlowUpdate syn_from(IpAddress client, Endpoint server = kServer) {
  FlowUpdate u;
  u.event = FlowEvent::kSyn;
  u.server = server;
  u.client = client;
  return u;
}

FlowUpdate event(FlowEvent e, HandshakeState previous, IpAddress client,
                 Endpoint server = kServer) {
  FlowUpdate u = syn_from(client, server);
  u.event = e;
  u.previous_state = previous;
  return u;
}

AggregationConfig small_config() {
  AggregationConfig c;
  c.max_destinations = 4;
  c.window = 5 * kNanosPerSecond;
  c.idle_timeout = 10 * kNanosPerSecond;
  return c;
}

TEST(DestinationTable, CountsHalfOpenByStateThroughTheLifecycle) {
  DestinationTable table(small_config(), kNanosPerSecond, 3);
  const auto a = IpAddress::from_v4(0xc6120001u);
  const auto b = IpAddress::from_v4(0xc6120002u);
  table.on_flow(syn_from(a), kT0);
  const Destination* d = table.on_flow(syn_from(b), kT0);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->syn_seen, 2u);
  table.on_flow(event(FlowEvent::kSynAck, HandshakeState::kSynSeen, a), kT0);
  EXPECT_EQ(d->syn_seen, 1u);
  EXPECT_EQ(d->syn_recv, 1u);
  table.on_flow(event(FlowEvent::kCompleted, HandshakeState::kSynRecv, a), kT0);
  EXPECT_EQ(d->syn_recv, 0u);
  table.on_flow(event(FlowEvent::kReset, HandshakeState::kSynSeen, b), kT0);
  EXPECT_EQ(d->half_open(), 0u);
  // Decrements never wrap below zero (e.g. after a destination was recycled).
  table.on_flow(event(FlowEvent::kReset, HandshakeState::kSynSeen, b), kT0);
  EXPECT_EQ(d->half_open(), 0u);
  EXPECT_EQ(d->totals.syns, 2u);
  EXPECT_EQ(d->totals.completed, 1u);
  EXPECT_EQ(d->totals.resets, 2u);
}

TEST(DestinationTable, ThresholdCrossingOfTheStaleCountIsTimedAndCleared) {
  DestinationTable table(small_config(), kNanosPerSecond, 2);
  // Pending handshakes alone do not count: only stale ones do.
  for (std::uint32_t i = 1; i <= 5; ++i) table.on_flow(syn_from(IpAddress::from_v4(i)), kT0);
  const Destination* d = table.find(kServer);
  EXPECT_EQ(d->half_open(), 5u);
  EXPECT_EQ(d->above_threshold_since, 0);
  table.on_stale(kServer, IpAddress::from_v4(1u), kT0 + 1);
  EXPECT_EQ(d->above_threshold_since, 0);
  table.on_stale(kServer, IpAddress::from_v4(2u), kT0 + 5);
  EXPECT_EQ(d->above_threshold_since, kT0 + 5);
  EXPECT_EQ(table.above_threshold(), 1u);
  table.on_stale(kServer, IpAddress::from_v4(3u), kT0 + 9);
  EXPECT_EQ(d->above_threshold_since, kT0 + 5);
  // The stale handshakes leave the level with their slot, once the window has passed it.
  table.settle(kT0 + 5 * kNanosPerSecond);
  EXPECT_EQ(d->stale_level, 3u);
  table.settle(kT0 + 5 * kNanosPerSecond + 1);
  EXPECT_EQ(d->stale_level, 0u);
  EXPECT_EQ(d->above_threshold_since, 0);
  EXPECT_EQ(table.above_threshold(), 0u);
  EXPECT_EQ(table.crossings(), 1u);  // once, at kT0 + 5
  EXPECT_EQ(d->half_open(), 5u);     // still pending: the handshake table decides that
}

TEST(DestinationTable, CrossingsAreCountedOncePerRise) {
  DestinationTable table(small_config(), kNanosPerSecond, 2);
  table.on_stale(kServer, IpAddress::from_v4(1u), kT0);
  table.on_stale(kServer, IpAddress::from_v4(2u), kT0 + 1);
  table.on_stale(kServer, IpAddress::from_v4(3u), kT0 + 2);
  EXPECT_EQ(table.crossings(), 1u);
  // Below and up again: a second rise.
  const TimestampNs later = kT0 + 6 * kNanosPerSecond;
  table.settle(later);
  EXPECT_EQ(table.find(kServer)->above_threshold_since, 0);
  table.on_stale(kServer, IpAddress::from_v4(4u), later);
  table.on_stale(kServer, IpAddress::from_v4(5u), later);
  EXPECT_EQ(table.crossings(), 2u);
  EXPECT_EQ(table.find(kServer)->above_threshold_since, later);
}

TEST(DestinationTable, SourceFiguresAreOverStaleHandshakesOnly) {
  DestinationTable table(small_config(), kNanosPerSecond, 1000);
  // 2 seconds: 1000 legitimate connections per second from 50 clients, all completing, beside
  // 250 stale handshakes per second from distinct spoofed sources, 10 % of them bogons.
  for (int i = 0; i < 2000; ++i) {
    const TimestampNs t = kT0 + i * (kNanosPerSecond / 1000);
    const auto client = IpAddress::from_v4(0xcb007100u + static_cast<std::uint32_t>(i % 50));
    table.on_flow(syn_from(client), t);
    FlowUpdate done = event(FlowEvent::kCompleted, HandshakeState::kSynSeen, client);
    done.age = 20 * kNanosPerMilli;
    table.on_flow(done, t);
    if (i % 4 == 0) {
      const auto spoofed = i % 40 == 0
                               ? IpAddress::from_v4(0x0a000000u + static_cast<std::uint32_t>(i))
                               : IpAddress::from_v4(0xc6120000u + static_cast<std::uint32_t>(i));
      table.on_flow(syn_from(spoofed), t);
      table.on_stale(kServer, spoofed, t);
    }
  }
  const Destination* d = table.find(kServer);
  ASSERT_NE(d, nullptr);
  const auto s = table.stats(*d, kT0 + 2 * kNanosPerSecond, 5);
  EXPECT_EQ(s.window.syns, 2500u);
  EXPECT_EQ(s.stale, 500u);
  EXPECT_NEAR(s.syn_rate, 1250, 5);
  EXPECT_NEAR(s.completed_rate, 1000, 5);
  // The 50 legitimate clients neither dilute nor skew what is judged: every stale handshake
  // came from a source of its own.
  EXPECT_NEAR(s.distinct_sources, 500, 500 * 0.1);
  EXPECT_GT(s.distinct_ratio, 0.9);
  EXPECT_NEAR(s.bogon_share, 0.1, 0.001);
  EXPECT_GT(s.source_entropy, 0.9);
  EXPECT_NEAR(s.completion_ratio, 0.8, 0.001);
  EXPECT_EQ(s.half_open, 500u);
}

TEST(DestinationTable, FailedHandshakesCountAsStaleAndLateCompletionsLeave) {
  StaleJudgement judgement = StaleJudgement::from(DetectionConfig{});
  DestinationTable table(small_config(), kNanosPerSecond, 1000, 0, judgement);
  const auto a = IpAddress::from_v4(0xc6120001u);
  const auto b = IpAddress::from_v4(0xc6120002u);
  const auto c = IpAddress::from_v4(0xc6120003u);
  table.on_flow(syn_from(a), kT0);
  table.on_flow(syn_from(b), kT0);
  table.on_flow(syn_from(c), kT0);
  // Refused (RST) before judgement, and expired unjudged: failed.
  table.on_flow(event(FlowEvent::kReset, HandshakeState::kSynSeen, a), kT0 + kNanosPerMilli);
  table.on_expired(kServer, b, HandshakeState::kSynSeen, false, kT0 + 2 * kNanosPerMilli);
  // c goes stale at the no-history age (1 s) and completes late, at 1.2 s.
  const TimestampNs judged = kT0 + judgement.ages[judgement.no_history_rung];
  table.on_stale(kServer, c, judged);
  const Destination* d = table.find(kServer);
  EXPECT_EQ(d->stale_level, 3u);
  auto s = table.stats(*d, judged + 1, 5);
  EXPECT_EQ(s.stale, 3u);
  EXPECT_EQ(s.window.failed, 2u);
  FlowUpdate late = event(FlowEvent::kCompleted, HandshakeState::kSynRecv, c);
  late.was_stale = true;
  late.rung = static_cast<std::uint8_t>(judgement.no_history_rung);
  late.age = 1200 * kNanosPerMilli;
  table.on_flow(late, kT0 + late.age);
  EXPECT_EQ(d->stale_level, 2u);
  s = table.stats(*d, kT0 + late.age, 5);
  EXPECT_EQ(s.stale, 2u);
  EXPECT_EQ(s.window.late_completed, 1u);
  // Judged stale a second time is not possible; already stale, a reset changes nothing.
  FlowUpdate stale_reset = event(FlowEvent::kReset, HandshakeState::kSynSeen, a);
  stale_reset.was_stale = true;
  table.on_flow(syn_from(a), kT0 + late.age);
  table.on_flow(stale_reset, kT0 + late.age);
  EXPECT_EQ(d->stale_level, 2u);
}

TEST(DestinationTable, AnsweredSynsCompleteOrGoStaleWithoutSegments) {
  StaleJudgement judgement = StaleJudgement::from(DetectionConfig{});
  DestinationTable table(small_config(), kNanosPerSecond, 1000, 0, judgement);
  const auto a = IpAddress::from_v4(0xc6120001u);
  const auto b = IpAddress::from_v4(0xc6120002u);
  const Destination* d = table.on_answered_syn(kServer, kT0);
  ASSERT_NE(d, nullptr);
  table.on_answered_syn(kServer, kT0);
  table.on_answered_syn(kServer, kT0);
  EXPECT_EQ(d->syn_recv, 3u);
  EXPECT_EQ(d->syn_seen, 0u);
  EXPECT_EQ(d->totals.syns, 3u);
  EXPECT_EQ(d->totals.synacks, 3u);
  // One completes young; two go stale, of which one completes late.
  table.on_completed(kServer, HandshakeState::kSynRecv, std::nullopt, kT0 + 100 * kNanosPerMilli);
  const TimestampNs judged = kT0 + kNanosPerSecond;
  table.on_stale(kServer, a, judged);
  table.on_stale(kServer, b, judged);
  EXPECT_EQ(d->stale_level, 2u);
  table.on_completed(kServer, HandshakeState::kSynRecv, judged, judged + kNanosPerSecond);
  EXPECT_EQ(d->stale_level, 1u) << "a late completion leaves the tick it was counted in";
  EXPECT_EQ(d->syn_recv, 1u);
  EXPECT_EQ(d->totals.completed, 2u);
  const auto s = table.stats(*d, judged + 2 * kNanosPerSecond, 5);
  EXPECT_EQ(s.window.completed, 2u);
  EXPECT_EQ(s.window.late_completed, 1u);
  EXPECT_EQ(s.stale, 1u);
  for (std::uint32_t i = 0; i < 2 * kMinCompletionsForNormal; ++i) {
    table.on_answered_syn(kServer, judged + 2 * kNanosPerSecond);
    table.on_completed(kServer, HandshakeState::kSynRecv, std::nullopt,
                       judged + 2 * kNanosPerSecond);
  }
  const auto after = table.stats(*d, judged + 3 * kNanosPerSecond, 5);
  EXPECT_FALSE(after.learned_normal)
      << "completions of unknown duration teach the destination's normal nothing";
  EXPECT_EQ(after.judge_age, judgement.ages[judgement.no_history_rung]);
}

TEST(DestinationTable, LearnsEachDestinationsNormalHandshakeTime) {
  const StaleJudgement judgement = StaleJudgement::from(DetectionConfig{});
  ASSERT_EQ(judgement.ages.front(), 200 * kNanosPerMilli);
  ASSERT_EQ(judgement.ages[judgement.no_history_rung], kNanosPerSecond);
  DestinationTable table(small_config(), kNanosPerSecond, 1000, 0, judgement);
  const Endpoint fast{kServer.address, 80};
  const Endpoint far{kServer.address, 443};
  // Unknown, then known without history: the initial SYN-ACK timeout.
  EXPECT_EQ(table.judge_rung(fast, kT0), judgement.no_history_rung);
  const auto complete = [&](const Endpoint& server, DurationNs age, TimestampNs at) {
    const auto client = IpAddress::from_v4(0xcb007100u);
    table.on_flow(syn_from(client, server), at - age);
    FlowUpdate done = event(FlowEvent::kCompleted, HandshakeState::kSynRecv, client, server);
    done.age = age;
    table.on_flow(done, at);
  };
  for (int i = 0; i < static_cast<int>(kMinCompletionsForNormal) - 1; ++i) {
    complete(fast, 3 * kNanosPerMilli, kT0 + i * kNanosPerMilli);
  }
  EXPECT_EQ(table.judge_rung(fast, kT0 + 2 * kNanosPerSecond), judgement.no_history_rung);
  complete(fast, 3 * kNanosPerMilli, kT0 + 3 * kNanosPerSecond);
  EXPECT_EQ(table.judge_rung(fast, kT0 + 3 * kNanosPerSecond), 0u);  // the floor
  // Far-away clients: 95 % within 600 ms, the rest after a lost SYN-ACK (1.3 s).
  for (int i = 0; i < 100; ++i) {
    complete(far, i < 95 ? 600 * kNanosPerMilli : 1300 * kNanosPerMilli,
             kT0 + TimestampNs{i} * 10 * kNanosPerMilli);
  }
  const auto rung = table.judge_rung(far, kT0 + 3 * kNanosPerSecond);
  EXPECT_EQ(judgement.ages[rung], 750 * kNanosPerMilli);
  const auto s = table.stats(*table.find(far), kT0 + 3 * kNanosPerSecond, 5);
  EXPECT_TRUE(s.learned_normal);
  EXPECT_EQ(s.judge_age, 750 * kNanosPerMilli);
  // The history is two epochs of half of detection.stale.history (60 s): after them, nothing.
  EXPECT_EQ(table.judge_rung(far, kT0 + 95 * kNanosPerSecond), judgement.no_history_rung);
}

TEST(DestinationTable, SourcesCanBeLeftOutOfTheSketchesButNotOutOfTheCount) {
  DestinationTable hosts(small_config(), kNanosPerSecond, 1000, 0, {},
                         DestinationTable::Scope::kHost);
  for (std::uint32_t i = 0; i < 100; ++i) {
    hosts.on_stale(kServer, IpAddress::from_v4(i), kT0, i % 2 == 0);
  }
  const auto s = hosts.stats(*hosts.find(kServer), kT0 + 1, 5);
  EXPECT_EQ(s.stale, 100u);
  EXPECT_EQ(s.sourced_stale, 50u);
  EXPECT_NEAR(s.distinct_sources, 50, 5);
  // The figures are over the handshakes whose sources were kept: these all look new.
  EXPECT_GT(s.distinct_ratio, 0.9);
  EXPECT_GT(s.source_entropy, 0.9);
}

TEST(DestinationTable, PeakHalfOpenIsTheMostPendingDuringTheWindow) {
  DestinationTable table(small_config(), kNanosPerSecond, 1000);
  for (std::uint32_t i = 0; i < 10; ++i) table.on_flow(syn_from(IpAddress::from_v4(i)), kT0);
  for (std::uint32_t i = 0; i < 8; ++i) {
    table.on_flow(event(FlowEvent::kCompleted, HandshakeState::kSynSeen, IpAddress::from_v4(i)),
                  kT0 + kNanosPerSecond);
  }
  const Destination* d = table.find(kServer);
  EXPECT_EQ(d->half_open(), 2u);
  EXPECT_EQ(table.stats(*d, kT0 + 2 * kNanosPerSecond, 5).peak_half_open, 10u);
  // Once the tick of the peak has left the window, it is what is pending now.
  EXPECT_EQ(table.stats(*d, kT0 + 7 * kNanosPerSecond, 5).peak_half_open, 2u);
}

TEST(DestinationTable, AHostTableJoinsEveryPortOfAnAddress) {
  DestinationTable hosts(small_config(), kNanosPerSecond, 100, 0, {},
                         DestinationTable::Scope::kHost);
  for (std::uint16_t port = 1; port <= 300; ++port) {
    const Endpoint server{kServer.address, port};
    hosts.on_flow(syn_from(IpAddress::from_v4(port), server), kT0);
    hosts.on_stale(server, IpAddress::from_v4(port), kT0 + kNanosPerSecond / 2);
  }
  EXPECT_EQ(hosts.size(), 1u);
  const Destination* d = hosts.find({kServer.address, 12345});
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->target, (Endpoint{kServer.address, 0}));
  EXPECT_EQ(d->syn_seen, 300u);
  EXPECT_EQ(d->stale_level, 300u);
  EXPECT_GT(d->above_threshold_since, 0);
  EXPECT_EQ(hosts.scope(), DestinationTable::Scope::kHost);
}

TEST(DestinationTable, SlotsOlderThanTheWindowDropOut) {
  DestinationTable table(small_config(), kNanosPerSecond, 1000);
  for (int i = 0; i < 100; ++i) {
    table.on_flow(syn_from(IpAddress::from_v4(static_cast<std::uint32_t>(i))), kT0);
  }
  const Destination* d = table.find(kServer);
  // The 5 s window evaluated at +5 s is [+0 s, +5 s): it still holds the SYNs of +0 s.
  EXPECT_EQ(table.stats(*d, kT0 + 5 * kNanosPerSecond, 5).window.syns, 100u);
  EXPECT_EQ(table.stats(*d, kT0 + 5 * kNanosPerSecond + 1, 5).window.syns, 0u);
  // A slot reused for a new tick is cleared first.
  table.on_flow(syn_from(IpAddress::from_v4(7777u)), kT0 + 5 * kNanosPerSecond);
  EXPECT_EQ(table.stats(*d, kT0 + 5 * kNanosPerSecond + 1, 5).window.syns, 1u);
}

TEST(DestinationTable, ConcentratedSourcesAreTopFirst) {
  DestinationTable table(small_config(), kNanosPerSecond, 1000);
  const auto heavy = *IpAddress::parse("198.18.0.1");
  for (int i = 0; i < 3000; ++i) {
    const auto source =
        i % 3 == 0 ? IpAddress::from_v4(0xc6130000u + static_cast<std::uint32_t>(i)) : heavy;
    table.on_flow(syn_from(source), kT0 + TimestampNs{i} * 1000);
    table.on_stale(kServer, source, kT0 + TimestampNs{i} * 1000);
  }
  const auto s = table.stats(*table.find(kServer), kT0 + kNanosPerSecond / 2, 3);
  ASSERT_FALSE(s.top_sources.empty());
  EXPECT_EQ(s.top_sources[0].address, heavy);
  EXPECT_GE(s.top_sources[0].syns, 1900u);
  EXPECT_LE(s.top_sources[0].syns, 2000u);
  EXPECT_LE(s.top_sources.size(), 3u);
  EXPECT_LT(s.source_entropy, 0.8);
}

TEST(DestinationTable, PoolIsBoundedRecyclesIdleAndNeverAFlood) {
  DestinationTable table(small_config(), kNanosPerSecond, 1);
  for (std::uint16_t port = 1; port <= 4; ++port) {
    table.on_flow(syn_from(IpAddress::from_v4(1u), {kServer.address, port}), kT0 + port);
  }
  EXPECT_EQ(table.size(), 4u);
  // Port 1 goes stale: at its threshold, a flood, never recycled.
  table.on_stale({kServer.address, 1}, IpAddress::from_v4(1u), kT0 + 5);
  // Port 5 recycles the least recently active destination below the threshold: port 2.
  table.on_flow(syn_from(IpAddress::from_v4(1u), {kServer.address, 5}), kT0 + 10);
  EXPECT_EQ(table.size(), 4u);
  EXPECT_NE(table.find({kServer.address, 1}), nullptr);
  EXPECT_EQ(table.find({kServer.address, 2}), nullptr);
  EXPECT_EQ(table.counters().recycled, 1u);
  for (std::uint16_t port = 3; port <= 5; ++port) {
    table.on_stale({kServer.address, port}, IpAddress::from_v4(1u), kT0 + 10);
  }
  EXPECT_EQ(table.on_flow(syn_from(IpAddress::from_v4(1u), {kServer.address, 6}), kT0 + 11),
            nullptr);
  EXPECT_EQ(table.counters().dropped, 1u);
  const std::size_t memory = table.memory_bytes();
  for (std::uint16_t port = 100; port < 1100; ++port) {
    table.on_flow(syn_from(IpAddress::from_v4(1u), {kServer.address, port}), kT0 + 20);
  }
  EXPECT_EQ(table.size(), 4u);
  EXPECT_EQ(table.memory_bytes(), memory);
}

TEST(DestinationTable, ForgetsIdleDestinationsWithoutHalfOpen) {
  DestinationTable table(small_config(), kNanosPerSecond, 1000);
  table.on_flow(syn_from(IpAddress::from_v4(1u), {kServer.address, 1}), kT0);
  table.on_flow(syn_from(IpAddress::from_v4(1u), {kServer.address, 2}), kT0);
  table.on_flow(event(FlowEvent::kCompleted, HandshakeState::kSynSeen, IpAddress::from_v4(1u),
                      {kServer.address, 1}),
                kT0);
  table.forget_idle(kT0 + 9 * kNanosPerSecond);
  EXPECT_EQ(table.size(), 2u);
  table.forget_idle(kT0 + 10 * kNanosPerSecond);
  EXPECT_EQ(table.size(), 1u);  // port 2 still has a half-open connection
  EXPECT_NE(table.find({kServer.address, 2}), nullptr);
}

TEST(DestinationTable, EvictionFromTheHandshakeTableDecrementsTheEvictedDestination) {
  DestinationTable table(small_config(), kNanosPerSecond, 1000);
  const Endpoint other{kServer.address, 443};
  table.on_flow(syn_from(IpAddress::from_v4(1u), other), kT0);
  FlowUpdate u = syn_from(IpAddress::from_v4(2u));
  u.evicted = true;
  u.evicted_server = other;
  u.evicted_state = HandshakeState::kSynSeen;
  table.on_flow(u, kT0 + 1);
  EXPECT_EQ(table.find(other)->half_open(), 0u);
  EXPECT_EQ(table.find(other)->totals.evicted, 1u);
  EXPECT_EQ(table.find(kServer)->half_open(), 1u);
  // Pushed out before its judgement: a failed handshake of its destination.
  EXPECT_EQ(table.find(other)->stale_level, 1u);
  EXPECT_EQ(table.stats(*table.find(other), kT0 + 1, 5).window.failed, 1u);
  // Already judged stale: counted once, when it went stale.
  table.on_flow(syn_from(IpAddress::from_v4(3u), other), kT0 + 2);
  u.client = IpAddress::from_v4(4u);
  u.evicted_stale = true;
  table.on_flow(u, kT0 + 3);
  EXPECT_EQ(table.find(other)->stale_level, 1u);
}

}  // namespace
}  // namespace synwatch

namespace synwatch {
namespace {

// A table with threshold 2 whose destination kServer reached it at kT0 + 10 with stale
// handshakes from `a` and `b`, both still in syn_seen.
class OnTheThreshold : public ::testing::Test {
 protected:
  void SetUp() override {
    table.on_flow(syn_from(a), kT0);
    table.on_flow(syn_from(b), kT0 + 10);
    table.on_stale(kServer, a, kT0);
    table.on_stale(kServer, b, kT0 + 10);
    d = table.find(kServer);
    ASSERT_EQ(d->above_threshold_since, kT0 + 10);
  }
  DestinationTable table{small_config(), kNanosPerSecond, 2};
  IpAddress a = IpAddress::from_v4(0xc6120001u);
  IpAddress b = IpAddress::from_v4(0xc6120002u);
  const Destination* d = nullptr;
};

// A new SYN to kServer that evicted a handshake of kServer in `state`.
FlowUpdate syn_replacing(std::uint32_t client, HandshakeState state) {
  FlowUpdate u = syn_from(IpAddress::from_v4(client));
  u.evicted = true;
  u.evicted_server = kServer;
  u.evicted_state = state;
  u.evicted_stale = true;  // judged already: the eviction changes no stale count
  return u;
}

TEST_F(OnTheThreshold, ASynEvictingAHandshakeOfItsOwnDestinationReplacesIt) {
  // A full handshake table under a flood: each SYN evicts the oldest handshake, of the same
  // destination. Half-open stays on the threshold and its timer keeps its start.
  table.on_flow(event(FlowEvent::kSynAck, HandshakeState::kSynSeen, a), kT0 + 15);
  ASSERT_EQ(d->syn_recv, 1u);

  d = table.on_flow(syn_replacing(0xc6120003u, HandshakeState::kSynSeen), kT0 + 20);  // b's
  EXPECT_EQ(d->syn_seen, 1u);
  EXPECT_EQ(d->syn_recv, 1u);
  EXPECT_EQ(d->above_threshold_since, kT0 + 10);

  d = table.on_flow(syn_replacing(0xc6120004u, HandshakeState::kSynRecv), kT0 + 30);  // a's
  EXPECT_EQ(d->syn_seen, 2u);
  EXPECT_EQ(d->syn_recv, 0u);
  EXPECT_EQ(d->above_threshold_since, kT0 + 10);
  EXPECT_EQ(table.above_threshold(), 1u);
  EXPECT_EQ(d->totals.syns, 4u);
  EXPECT_EQ(d->totals.evicted, 2u);
  const auto stats = table.stats(*d, kT0 + 30, 5);
  EXPECT_EQ(stats.peak_half_open, 2u);
  EXPECT_EQ(stats.window.evicted, 2u);
  EXPECT_EQ(stats.window.syns, 4u);
  EXPECT_EQ(stats.half_open, 2u);
}

TEST(DestinationTable, ASynEvictingItsOwnDestinationsHandshakeAfterARecycleCountsOnlyItself) {
  // The destination was recycled (counts lost) while its handshakes stayed pending: the
  // evicted one is no longer counted anywhere, the new SYN is.
  DestinationTable table(small_config(), kNanosPerSecond, 1000);
  FlowUpdate u = syn_replacing(5u, HandshakeState::kSynRecv);
  const Destination* d = table.on_flow(u, kT0);  // created now
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->syn_seen, 1u);
  EXPECT_EQ(d->syn_recv, 0u);
  EXPECT_EQ(d->totals.evicted, 0u);
  // Tracked, but its counts were lost: the replaced handshake is not subtracted below zero.
  u.client = IpAddress::from_v4(6u);
  u.evicted_state = HandshakeState::kSynRecv;
  d = table.on_flow(u, kT0 + 1);
  EXPECT_EQ(d->syn_seen, 2u);
  EXPECT_EQ(d->syn_recv, 0u);
  EXPECT_EQ(d->totals.evicted, 1u);
}

TEST_F(OnTheThreshold, ASynAckDoesNotRestartTheHoldTimer) {
  // Half-open stays at 2 (one moves from syn_seen to syn_recv): the timer keeps its start.
  d = table.on_flow(event(FlowEvent::kSynAck, HandshakeState::kSynSeen, a), kT0 + 20);
  EXPECT_EQ(d->half_open(), 2u);
  EXPECT_EQ(d->syn_recv, 1u);
  EXPECT_EQ(d->above_threshold_since, kT0 + 10);
  EXPECT_EQ(table.above_threshold(), 1u);
}

}  // namespace
}  // namespace synwatch
