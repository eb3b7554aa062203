// The detector on simulated packet time: hysteresis edges, classification, event contents.
#include <gtest/gtest.h>

#include <random>

#include "detect/detector.hpp"

namespace synwatch {
namespace {

constexpr TimestampNs kT0 = 1'700'000'000LL * kNanosPerSecond;
constexpr TimestampNs kMs = kNanosPerMilli;
const Endpoint kServer{*IpAddress::parse("198.51.100.10"), 80};

struct CollectingSink final : EventSink {
  std::vector<IncidentEvent> events;
  void publish(const IncidentEvent& e) override { events.push_back(e); }
};

class DetectorTest : public ::testing::Test {
 protected:
  DetectorTest() { rebuild(); }
  void rebuild() {
    table_ = std::make_unique<DestinationTable>(aggregation_, detection_.tick, detection_.half_open,
                                                0, StaleJudgement::from(detection_));
    hosts_ = std::make_unique<DestinationTable>(
        aggregation_, detection_.tick, detection_.host_half_open, 0,
        StaleJudgement::from(detection_), DestinationTable::Scope::kHost);
    detector_ = std::make_unique<Detector>(detection_, aggregation_.top_sources);
  }
  // A SYN from `source` whose handshake stays pending; `stale`: and is judged stale at once
  // (the handshake table's judgement is not part of these tests).
  void syn(TimestampNs t, IpAddress source, bool stale = true, const Endpoint& server = kServer) {
    FlowUpdate u;
    u.event = FlowEvent::kSyn;
    u.server = server;
    u.client = source;
    table_->on_flow(u, t);
    hosts_->on_flow(u, t);
    if (stale) {
      table_->on_stale(server, source, t);
      hosts_->on_stale(server, source, t);
    }
  }
  void complete(TimestampNs t, IpAddress source) {
    FlowUpdate u;
    u.event = FlowEvent::kCompleted;
    u.previous_state = HandshakeState::kSynSeen;
    u.server = kServer;
    u.client = source;
    table_->on_flow(u, t);
  }
  // `rate` SYNs per second from random sources over [from, to).
  void spoofed(TimestampNs from, TimestampNs to, int rate) {
    const TimestampNs step = kNanosPerSecond / rate;
    for (TimestampNs t = from; t < to; t += step) {
      syn(t, IpAddress::from_v4(static_cast<std::uint32_t>(rng_())));
    }
  }
  // As the engine does: stale levels made exact, then the detector, ports and hosts.
  void evaluate(TimestampNs t) {
    table_->settle(t);
    hosts_->settle(t);
    detector_->evaluate(t, *table_, sink_, hosts_.get());
  }
  std::vector<IncidentEvent> of(EventType type) const {
    std::vector<IncidentEvent> out;
    for (const auto& e : sink_.events) {
      if (e.type == type) out.push_back(e);
    }
    return out;
  }

  AggregationConfig aggregation_;
  DetectionConfig detection_;
  std::unique_ptr<DestinationTable> table_;
  std::unique_ptr<DestinationTable> hosts_;
  std::unique_ptr<Detector> detector_;
  CollectingSink sink_;
  std::mt19937 rng_{42};
};

TEST_F(DetectorTest, StartsOnlyAfterTheConditionHeldFor) {
  spoofed(kT0, kT0 + 400 * kMs, 10000);  // crosses 256 at ~25 ms
  const TimestampNs crossed = table_->find(kServer)->above_threshold_since;
  ASSERT_GT(crossed, kT0);
  evaluate(crossed + detection_.hold_for - 1);
  EXPECT_TRUE(sink_.events.empty());
  evaluate(crossed + detection_.hold_for);
  ASSERT_EQ(sink_.events.size(), 1u);
  const auto& e = sink_.events[0];
  EXPECT_EQ(e.type, EventType::kStarted);
  EXPECT_EQ(e.kind, AttackKind::kSpoofedRandom);
  EXPECT_EQ(e.target, kServer);
  EXPECT_EQ(e.started_at, crossed + detection_.hold_for);
  EXPECT_EQ(e.sequence, 0u);
  EXPECT_EQ(e.event_id, e.incident_id + "-0");
  EXPECT_EQ(e.stats.half_open, 4000u);
  EXPECT_EQ(e.stats.stale, 4000u);
  EXPECT_FALSE(e.host_scope);
  EXPECT_NE(e.reason.find("threshold of 256"), std::string::npos) << e.reason;
  EXPECT_NE(e.reason.find("distinct sources"), std::string::npos) << e.reason;
  EXPECT_EQ(detector_->incidents().count(kServer), 1u);
}

TEST_F(DetectorTest, DipBelowThresholdRestartsTheHoldTimer) {
  spoofed(kT0, kT0 + 100 * kMs, 10000);
  // The first burst's stale handshakes leave the 5 s window.
  table_->settle(kT0 + 5200 * kMs);
  ASSERT_EQ(table_->find(kServer)->above_threshold_since, 0);
  spoofed(kT0 + 5300 * kMs, kT0 + 5400 * kMs, 10000);
  evaluate(kT0 + 5600 * kMs);  // long after the first crossing, but only ~0.3 s since the second
  EXPECT_TRUE(sink_.events.empty());
}

TEST_F(DetectorTest, PendingHandshakesThatAreNotStaleAreNotAFlood) {
  // Many half-open handshakes, none judged stale yet (slow clients still within their time).
  for (int i = 0; i < 5000; ++i) {
    syn(kT0 + TimestampNs{i} * 100'000, IpAddress::from_v4(0xc6120000u + i), false);
  }
  ASSERT_EQ(table_->find(kServer)->half_open(), 5000u);
  for (int k = 1; k <= 3; ++k) evaluate(kT0 + k * kNanosPerSecond);
  EXPECT_TRUE(sink_.events.empty());
}

TEST_F(DetectorTest, TheBaselineRaisesTheBarForADestinationThatIsAlwaysALittleStale) {
  detection_.baseline.time_constant = 300 * kNanosPerSecond;
  rebuild();
  // Twenty minutes of 40 stale handshakes a second (clients that never answer): 200 in the
  // window, below the threshold of 256, and its normal.
  TimestampNs t = kT0;
  const auto run = [&](int seconds, int rate) {
    for (int second = 0; second < seconds; ++second, t += kNanosPerSecond) {
      spoofed(t, t + kNanosPerSecond, rate);
      evaluate(t + kNanosPerSecond);
    }
  };
  run(1200, 40);
  EXPECT_TRUE(sink_.events.empty());
  EXPECT_NEAR(detector_->baseline_of(kServer, false), 200, 15);
  // Twice the normal (400, above the threshold) stays quiet: within 3x the baseline.
  run(10, 80);
  EXPECT_TRUE(sink_.events.empty());
  // Four times the normal is a flood.
  run(5, 160);
  ASSERT_EQ(of(EventType::kStarted).size(), 1u);
  // The normal, raised a little by the ten seconds at twice it.
  EXPECT_GT(of(EventType::kStarted)[0].stats.baseline, 190);
  EXPECT_LT(of(EventType::kStarted)[0].stats.baseline, 240);
  EXPECT_NE(of(EventType::kStarted)[0].reason.find("the baseline is"), std::string::npos);
  // Frozen while the incident is open, however long it lasts.
  const double frozen = detector_->baseline_of(kServer, false);
  run(60, 160);
  EXPECT_DOUBLE_EQ(detector_->baseline_of(kServer, false), frozen);
  // Back to twice the normal: over the threshold, but no longer over 3x the baseline.
  run(20, 80);
  ASSERT_EQ(of(EventType::kEnded).size(), 1u);
  EXPECT_NE(of(EventType::kEnded)[0].reason.find("of the baseline"), std::string::npos)
      << of(EventType::kEnded)[0].reason;
}

TEST_F(DetectorTest, AnIncidentWhoseTargetIsNoLongerTrackedEndsAfterItsCooldown) {
  aggregation_.max_destinations = 1;
  aggregation_.idle_timeout = kNanosPerSecond;
  rebuild();
  spoofed(kT0, kT0 + kNanosPerSecond, 5000);
  evaluate(kT0 + kNanosPerSecond);
  ASSERT_EQ(of(EventType::kStarted).size(), 1u);
  // Its stale handshakes leave the window; the one slot of the pool goes to another target.
  table_->settle(kT0 + 7 * kNanosPerSecond);
  syn(kT0 + 7 * kNanosPerSecond, IpAddress::from_v4(1u), false, {kServer.address, 443});
  ASSERT_EQ(table_->find(kServer), nullptr);
  for (int s = 7; s <= 20; ++s) evaluate(kT0 + s * kNanosPerSecond);
  ASSERT_EQ(of(EventType::kEnded).size(), 1u);
  EXPECT_EQ(of(EventType::kEnded)[0].target, kServer);
  EXPECT_EQ(of(EventType::kEnded)[0].stats.stale, 0u);
  EXPECT_EQ(detector_->open_incidents(), 0u);
}

TEST_F(DetectorTest, SynsSpreadOverThePortsOfOneAddressAreAHostIncident) {
  // 20,000 stale handshakes over random ports of one address within 4 s: no port has many.
  for (int i = 0; i < 20000; ++i) {
    const Endpoint port{kServer.address, static_cast<std::uint16_t>(1 + rng_() % 65535)};
    syn(kT0 + TimestampNs{i} * 200'000, IpAddress::from_v4(static_cast<std::uint32_t>(rng_())),
        true, port);
  }
  evaluate(kT0 + 4 * kNanosPerSecond);
  ASSERT_EQ(sink_.events.size(), 1u);
  const auto& e = sink_.events[0];
  EXPECT_TRUE(e.host_scope);
  EXPECT_EQ(e.target, (Endpoint{kServer.address, 0}));
  EXPECT_EQ(e.kind, AttackKind::kSpoofedRandom);
  EXPECT_NE(e.reason.find("(all ports)"), std::string::npos) << e.reason;
  EXPECT_EQ(detector_->host_incidents().size(), 1u);
  EXPECT_EQ(detector_->incidents().size(), 0u);
}

TEST_F(DetectorTest, AFloodOnOnePortBelowItsThresholdIsNoHostIncidentEither) {
  detection_.half_open = 100000;
  detection_.host_half_open = 1000;
  rebuild();
  spoofed(kT0, kT0 + kNanosPerSecond, 5000);
  // A few stale handshakes on other ports: the flooded port still holds most of them.
  for (std::uint16_t port = 1000; port < 1100; ++port) {
    syn(kT0 + kNanosPerSecond / 2, IpAddress::from_v4(port), true, {kServer.address, port});
  }
  evaluate(kT0 + kNanosPerSecond);
  evaluate(kT0 + 2 * kNanosPerSecond);
  EXPECT_TRUE(sink_.events.empty());
}

TEST_F(DetectorTest, AFloodOnOnePortIsThatPortsIncidentNotTheHosts) {
  detection_.host_half_open = 1000;
  rebuild();
  spoofed(kT0, kT0 + kNanosPerSecond, 5000);
  evaluate(kT0 + kNanosPerSecond);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_FALSE(sink_.events[0].host_scope);
  EXPECT_EQ(detector_->host_incidents().size(), 0u);
}

TEST_F(DetectorTest, UpdatesAtTheIntervalAndEndsAfterCooldown) {
  spoofed(kT0, kT0 + 1 * kNanosPerSecond, 5000);
  evaluate(kT0 + 1 * kNanosPerSecond);
  ASSERT_EQ(of(EventType::kStarted).size(), 1u);
  // Flood goes on for 20 s: updates every 10 s.
  for (int s = 1; s < 20; ++s) {
    spoofed(kT0 + s * kNanosPerSecond, kT0 + (s + 1) * kNanosPerSecond, 5000);
    evaluate(kT0 + (s + 1) * kNanosPerSecond);
  }
  ASSERT_EQ(of(EventType::kUpdated).size(), 1u);
  EXPECT_EQ(of(EventType::kUpdated)[0].time, kT0 + 11 * kNanosPerSecond);
  // Flood stops dead at +20 s; half-open entries stay pending (server never answers) but no new
  // SYNs come. The 5 s window holds the last SYNs until +25 s; then 10 s of cooldown. Updates
  // go on at the interval meanwhile (+21 s, +31 s), saying how long the condition has been clear.
  for (int s = 21; s <= 34; ++s) evaluate(kT0 + s * kNanosPerSecond);
  EXPECT_TRUE(of(EventType::kEnded).empty());
  EXPECT_EQ(of(EventType::kUpdated).size(), 3u);
  EXPECT_NE(of(EventType::kUpdated)[2].reason.find("clear for 6.0 s"), std::string::npos)
      << of(EventType::kUpdated)[2].reason;
  evaluate(kT0 + 35 * kNanosPerSecond);
  ASSERT_EQ(of(EventType::kEnded).size(), 1u);
  const auto ended = of(EventType::kEnded)[0];
  EXPECT_EQ(ended.ended_at, kT0 + 35 * kNanosPerSecond);
  EXPECT_EQ(ended.incident_id, of(EventType::kStarted)[0].incident_id);
  EXPECT_EQ(ended.sequence, 4u);
  EXPECT_GE(ended.stats.peak_half_open, 100000u);
  EXPECT_NE(ended.reason.find("stale half-open connections fell to 0"), std::string::npos)
      << ended.reason;
  EXPECT_EQ(detector_->incidents().count(kServer), 0u);
  EXPECT_EQ(detector_->open_incidents(), 0u);
}

TEST_F(DetectorTest, ShortClearDoesNotEndTheIncident) {
  detection_.cooldown = 3 * kNanosPerSecond;
  aggregation_.window = 1 * kNanosPerSecond;
  rebuild();
  spoofed(kT0, kT0 + kNanosPerSecond, 5000);
  evaluate(kT0 + kNanosPerSecond);
  ASSERT_EQ(sink_.events.size(), 1u);
  // 2 s without SYNs (clear), then the flood resumes before the 3 s cooldown runs out.
  evaluate(kT0 + 2 * kNanosPerSecond + 1);
  evaluate(kT0 + 3 * kNanosPerSecond + 1);
  spoofed(kT0 + 3500 * kMs, kT0 + 4 * kNanosPerSecond, 5000);
  evaluate(kT0 + 4 * kNanosPerSecond);
  evaluate(kT0 + 5 * kNanosPerSecond - 1);
  EXPECT_TRUE(of(EventType::kEnded).empty());
  EXPECT_EQ(of(EventType::kStarted).size(), 1u);
}

TEST_F(DetectorTest, LegitimateBurstThatCompletesIsNotAnAttack) {
  for (int i = 0; i < 2000; ++i) {
    const TimestampNs t = kT0 + TimestampNs{i} * 250'000;
    const auto source = IpAddress::from_v4(0xc6120000u + static_cast<std::uint32_t>(i));
    syn(t, source, false);
    if (i >= 600) {
      complete(t, IpAddress::from_v4(0xc6120000u + static_cast<std::uint32_t>(i - 600)));
    }
  }
  ASSERT_GE(table_->find(kServer)->half_open(), 256u);
  for (int k = 1; k <= 5; ++k) evaluate(kT0 + k * kNanosPerSecond);
  EXPECT_TRUE(sink_.events.empty());
}

TEST_F(DetectorTest, FewSourcesAreConcentrated) {
  const auto a = *IpAddress::parse("198.18.0.1");
  const auto b = *IpAddress::parse("198.18.0.2");
  for (int i = 0; i < 5000; ++i) syn(kT0 + TimestampNs{i} * 100'000, i % 3 == 0 ? b : a);
  evaluate(kT0 + kNanosPerSecond);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].kind, AttackKind::kConcentrated);
  ASSERT_GE(sink_.events[0].top_sources.size(), 2u);
  EXPECT_EQ(sink_.events[0].top_sources[0].address, a);
  EXPECT_EQ(sink_.events[0].top_sources[1].address, b);
  const DetectorStats& counters = detector_->counters();
  EXPECT_EQ(counters.started[static_cast<int>(AttackKind::kConcentrated)], 1u);
  EXPECT_EQ(counters.total_started(), 1u);
}

TEST_F(DetectorTest, ManyRepeatingSourcesAreDistributed) {
  for (int i = 0; i < 10000; ++i) {
    syn(kT0 + TimestampNs{i} * 100'000,
        IpAddress::from_v4(0xc6120000u + static_cast<std::uint32_t>(i % 500)));
  }
  evaluate(kT0 + kNanosPerSecond);
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0].kind, AttackKind::kDistributed);
  const DetectorStats& counters = detector_->counters();
  EXPECT_EQ(counters.started[static_cast<int>(AttackKind::kDistributed)], 1u);
  EXPECT_EQ(counters.total_started(), 1u);
}

TEST_F(DetectorTest, BelowThresholdNothingHappens) {
  spoofed(kT0, kT0 + 25 * kMs, 10000);  // 250 SYNs: just below 256
  for (int k = 1; k <= 3; ++k) evaluate(kT0 + k * kNanosPerSecond);
  EXPECT_TRUE(sink_.events.empty());
}

TEST_F(DetectorTest, ReconfigureKeepsOpenIncidents) {
  spoofed(kT0, kT0 + kNanosPerSecond, 5000);
  evaluate(kT0 + kNanosPerSecond);
  ASSERT_EQ(detector_->open_incidents(), 1u);
  detection_.update_interval = 2 * kNanosPerSecond;
  detector_->reconfigure(detection_, aggregation_.top_sources);
  spoofed(kT0 + kNanosPerSecond, kT0 + 3 * kNanosPerSecond, 5000);
  evaluate(kT0 + 3 * kNanosPerSecond);
  EXPECT_EQ(detector_->open_incidents(), 1u);
  ASSERT_EQ(of(EventType::kUpdated).size(), 1u);
  EXPECT_EQ(of(EventType::kUpdated)[0].incident_id, of(EventType::kStarted)[0].incident_id);
}

TEST_F(DetectorTest, IncidentIdsAreDeterministic) {
  spoofed(kT0, kT0 + kNanosPerSecond, 5000);
  evaluate(kT0 + kNanosPerSecond);
  const std::string first = sink_.events.at(0).incident_id;
  sink_.events.clear();
  rebuild();
  rng_.seed(7);
  spoofed(kT0, kT0 + kNanosPerSecond, 5000);
  evaluate(kT0 + kNanosPerSecond);
  EXPECT_EQ(sink_.events.at(0).incident_id, first);
  EXPECT_EQ(first.size(), 16u);
}

// ---- across a restart --------------------------------------------------------------------------

ResumedIncident left_open(const Endpoint& target, std::uint32_t sequence) {
  ResumedIncident incident;
  incident.incident_id = "0123456789abcdef";
  incident.sequence = sequence;
  incident.target = target;
  incident.kind = AttackKind::kSpoofedRandom;
  incident.started_at = kT0 - 60 * kNanosPerSecond;
  incident.peak_half_open = 9000;
  return incident;
}

TEST_F(DetectorTest, AResumedIncidentGoesOnUnderItsIdWhileTheFloodDoes) {
  detector_->resume(left_open(kServer, 7), kT0);
  EXPECT_EQ(detector_->open_incidents(), 1u);
  for (int s = 0; s < 12; ++s) {
    spoofed(kT0 + s * kNanosPerSecond, kT0 + (s + 1) * kNanosPerSecond, 5000);
    evaluate(kT0 + (s + 1) * kNanosPerSecond);
  }
  EXPECT_TRUE(of(EventType::kStarted).empty()) << "no second incident for the same flood";
  ASSERT_EQ(of(EventType::kUpdated).size(), 1u);
  const auto updated = of(EventType::kUpdated)[0];
  EXPECT_EQ(updated.incident_id, "0123456789abcdef");
  EXPECT_EQ(updated.sequence, 8u);
  EXPECT_EQ(updated.event_id, "0123456789abcdef-8");
  EXPECT_EQ(updated.started_at, kT0 - 60 * kNanosPerSecond);
  EXPECT_GE(updated.stats.peak_half_open, 9000u);
}

TEST_F(DetectorTest, AResumedIncidentWithoutItsFloodEndsAfterTheCooldown) {
  detector_->resume(left_open(kServer, 3), kT0);
  detector_->resume(left_open(kServer, 99), kT0);  // already open there: ignored
  for (int s = 1; s <= 11; ++s) evaluate(kT0 + s * kNanosPerSecond);
  ASSERT_EQ(of(EventType::kEnded).size(), 1u);
  const auto ended = of(EventType::kEnded)[0];
  EXPECT_EQ(ended.incident_id, "0123456789abcdef");
  EXPECT_EQ(ended.sequence, 4u + static_cast<std::uint32_t>(of(EventType::kUpdated).size()));
  EXPECT_EQ(ended.ended_at, kT0 + 11 * kNanosPerSecond);
  EXPECT_EQ(detector_->open_incidents(), 0u);
}

TEST_F(DetectorTest, EndAllClosesEveryOpenIncidentSayingWhy) {
  spoofed(kT0, kT0 + kNanosPerSecond, 5000);
  evaluate(kT0 + kNanosPerSecond);
  ASSERT_EQ(of(EventType::kStarted).size(), 1u);
  ResumedIncident host = left_open({kServer.address, 0}, 2);
  host.host_scope = true;
  host.incident_id = "fedcba9876543210";
  detector_->resume(host, kT0 + kNanosPerSecond);
  detector_->end_all(kT0 + 2 * kNanosPerSecond, "synwatchd stopped", sink_);
  const auto ended = of(EventType::kEnded);
  ASSERT_EQ(ended.size(), 2u);
  for (const auto& e : ended) {
    EXPECT_EQ(e.ended_at, kT0 + 2 * kNanosPerSecond);
    EXPECT_TRUE(e.reason.starts_with("synwatchd stopped; the incident is closed unfinished after"))
        << e.reason;
  }
  EXPECT_EQ(ended[0].incident_id, of(EventType::kStarted)[0].incident_id);
  EXPECT_EQ(ended[0].sequence, 1u);
  EXPECT_TRUE(ended[1].host_scope);
  EXPECT_EQ(ended[1].sequence, 3u);
  EXPECT_EQ(detector_->open_incidents(), 0u);
  EXPECT_EQ(detector_->counters().ended, 2u);
}

}  // namespace
}  // namespace synwatch
