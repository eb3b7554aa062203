// Which destinations the metrics export and the figures they carry.
#include <gtest/gtest.h>

#include <algorithm>

#include "export/destination_ranking.hpp"

namespace synwatch {
namespace {

constexpr TimestampNs kNow = 1'700'000'000 * kNanosPerSecond;

Endpoint endpoint(const char* address, std::uint16_t port) {
  return {*IpAddress::parse(address), port};
}

Destination destination(const char* address, std::uint16_t port, std::uint32_t half_open) {
  Destination d;
  d.target = endpoint(address, port);
  d.syn_seen = half_open;
  return d;
}

std::vector<Endpoint> targets(const std::vector<const Destination*>& chosen) {
  std::vector<Endpoint> out;
  out.reserve(chosen.size());
  for (const auto* d : chosen) out.push_back(d->target);
  return out;
}

TEST(ChooseExported, KeepsEveryoneUnderTheCap) {
  const auto a = destination("192.0.2.1", 80, 5);
  const auto b = destination("192.0.2.2", 80, 9);
  std::vector<const Destination*> candidates = {&a, &b};
  EXPECT_EQ(choose_exported(candidates, {}, 2), 0u);
  EXPECT_EQ(candidates.size(), 2u);
}

TEST(ChooseExported, OpenIncidentsFirstThenByHalfOpenCountCapped) {
  const auto quiet = destination("192.0.2.1", 80, 1);
  const auto busy = destination("192.0.2.2", 80, 50);
  const auto busier = destination("192.0.2.3", 443, 70);
  const auto attacked = destination("192.0.2.4", 22, 3);
  std::vector<const Destination*> candidates = {&quiet, &busy, &attacked, &busier};
  Detector::Incidents open;
  open[attacked.target] = {};
  EXPECT_EQ(choose_exported(candidates, open, 3), 1u);
  EXPECT_EQ(targets(candidates),
            (std::vector<Endpoint>{attacked.target, busier.target, busy.target}));
}

TEST(ChooseExported, ACapOfZeroExportsNone) {
  const auto a = destination("192.0.2.1", 80, 5);
  std::vector<const Destination*> candidates = {&a};
  EXPECT_EQ(choose_exported(candidates, {}, 0), 1u);
  EXPECT_TRUE(candidates.empty());
}

TEST(ExportedDestinationStats, TakesCountsFromTheDestinationAndRatesFromItsWindow) {
  auto d = destination("198.51.100.7", 8080, 12);
  d.syn_recv = 4;
  d.totals.syns = 1000;
  DestinationStats stats;
  stats.syn_rate = 250.5;
  stats.distinct_sources = 900;
  stats.source_entropy = 9.5;
  stats.completion_ratio = 0.25;
  stats.stale = 11;
  stats.top_sources = {{*IpAddress::parse("203.0.113.9"), 77}};
  const auto m = destination_metrics(d, stats, 1.5, AttackKind::kSpoofedRandom, false);
  EXPECT_EQ(m.target, d.target);
  EXPECT_FALSE(m.host);
  EXPECT_EQ(m.syn_seen, 12u);
  EXPECT_EQ(m.syn_recv, 4u);
  EXPECT_EQ(m.totals.syns, 1000u);
  EXPECT_DOUBLE_EQ(m.syn_rate, 250.5);
  EXPECT_DOUBLE_EQ(m.distinct_sources, 900);
  EXPECT_DOUBLE_EQ(m.source_entropy, 9.5);
  EXPECT_DOUBLE_EQ(m.completion_ratio, 0.25);
  EXPECT_EQ(m.stale, 11u);
  EXPECT_DOUBLE_EQ(m.baseline, 1.5);
  EXPECT_EQ(m.attack, AttackKind::kSpoofedRandom);
  ASSERT_EQ(m.top_sources.size(), 1u);
  EXPECT_EQ(m.top_sources[0].syns, 77u);
}

TEST(ExportDestinations, CapsTheMergedDestinationsByHalfOpenCount) {
  AggregationConfig aggregation;
  DestinationTable ports_table(aggregation, kNanosPerSecond, 1000);
  DestinationTable hosts_table(aggregation, kNanosPerSecond, 1000, 0, {},
                               DestinationTable::Scope::kHost);
  const std::vector<std::pair<Endpoint, int>> answered = {{endpoint("192.0.2.1", 80), 2},
                                                          {endpoint("192.0.2.2", 80), 7},
                                                          {endpoint("192.0.2.3", 80), 4}};
  for (const auto& [target, count] : answered) {
    for (int i = 0; i < count; ++i) ports_table.on_answered_syn(target, kNow);
  }
  MergedDestinations ports({&ports_table}, 1000);
  MergedDestinations hosts({&hosts_table}, 1000);
  ports.refresh(kNow);
  hosts.refresh(kNow);
  const Detector detector(DetectionConfig{}, 3);
  const auto exported = export_destinations(ports, hosts, detector, kNow, 2);
  EXPECT_EQ(exported.unexported, 1u);
  ASSERT_EQ(exported.metrics.size(), 2u);
  EXPECT_EQ(exported.metrics[0].target, endpoint("192.0.2.2", 80));
  EXPECT_EQ(exported.metrics[0].syn_recv, 7u);
  EXPECT_EQ(exported.metrics[1].target, endpoint("192.0.2.3", 80));
  EXPECT_FALSE(exported.metrics[0].attack.has_value());
  EXPECT_FALSE(exported.metrics[0].host);
}

}  // namespace
}  // namespace synwatch
