// End to end: the verdicts synwatchd --read gives on generated captures where the attack hides
// among legitimate load (or legitimate load looks like an attack): floods beside real clients,
// flash crowds, lossy paths, SYNs spread over every port of a host, duplicated frames.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "generated_capture.hpp"

namespace synwatch::testing {
namespace {

constexpr long long kNanosPerSecond = 1'000'000'000LL;
constexpr long long kNanosPerMilli = 1'000'000LL;

// What synwatchd printed for one generated capture, and the generator's summary of it.
// NOLINTNEXTLINE(bugprone-exception-escape): false positive, as for Generated.
struct Verdict {
  nlohmann::json summary;
  std::vector<nlohmann::json> events;
  std::string err;
};

class DetectionE2E : public GeneratedCaptureTest {
 protected:
  Verdict judge(const std::string& scenario, std::vector<std::string> options = {}) {
    const Generated g = generate(scenario, std::move(options));
    const ProcessResult r = analyse(g.file);
    EXPECT_EQ(r.exit_code, 0) << scenario << ": " << r.err;
    return {g.summary, parse_json_lines(r.out), r.err};
  }
};

// The single incident a scenario must raise: started once, against `address` and `port`
// (nullopt: the whole host, JSON null), of `kind`; every incident also ends. Returns the
// started event, or nothing after reporting why.
std::optional<nlohmann::json> expect_one_incident(const std::vector<nlohmann::json>& events,
                                                  const std::string& address,
                                                  std::optional<int> port,
                                                  const std::string& kind) {
  std::vector<nlohmann::json> started;
  for (const auto& e : events) {
    if (e.at("event") == "started") started.push_back(e);
  }
  if (started.size() != 1) {
    ADD_FAILURE() << started.size() << " incidents started, expected 1; events:\n"
                  << nlohmann::json(events).dump(1);
    return std::nullopt;
  }
  const nlohmann::json& e = started.front();
  EXPECT_EQ(e["target"]["address"], address) << e.dump();
  if (port) {
    EXPECT_EQ(e["target"]["port"], *port) << e.dump();
  } else {
    EXPECT_TRUE(e["target"].contains("port") && e["target"]["port"].is_null()) << e.dump();
    EXPECT_EQ(e["target"]["scope"], "host") << e.dump();
  }
  EXPECT_EQ(e["kind"], kind) << e.dump();
  return e;
}

// From the flood's first SYN (the generator's flood_start_ts) to the started event's time.
long long detection_latency(const nlohmann::json& started, const nlohmann::json& summary) {
  return parse_rfc3339_ns(started.at("time")) - summary.at("flood_start_ts").get<long long>();
}

// The kind and target of every started incident, in order: what a duplicated capture must not
// change.
std::vector<std::string> kinds_and_targets(const std::vector<nlohmann::json>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    if (e.at("event") == "started") out.push_back(e["kind"].dump() + " " + e["target"].dump());
  }
  return out;
}

// --- A flood among legitimate clients ---

struct Mix {
  const char* flood_rate;  // spoofed SYN/s, each answered by one SYN-ACK
  const char* legit_rate;  // complete connections/s to the same target
};

void PrintTo(const Mix& mix, std::ostream* out) {
  *out << mix.flood_rate << " flood SYN/s beside " << mix.legit_rate << " connections/s";
}

class FloodBesideLegit : public DetectionE2E, public ::testing::WithParamInterface<Mix> {};

TEST_P(FloodBesideLegit, IsOneSpoofedRandomIncidentOnTheTargetThatEnds) {
  const Mix mix = GetParam();
  const Verdict v =
      judge("flood-beside-legit", {"--rate", mix.flood_rate, "--legit-rate", mix.legit_rate});
  expect_lifecycle(v.events);
  EXPECT_TRUE(expect_one_incident(v.events, "198.51.100.10", 80, "spoofed_random")) << v.err;
}

// Flood : legitimate SYNs of 1:4, 1:1 and 4:1.
INSTANTIATE_TEST_SUITE_P(Ratios, FloodBesideLegit,
                         ::testing::Values(Mix{"400", "1600"}, Mix{"1000", "1000"},
                                           Mix{"2000", "500"}),
                         [](const auto& param_info) {
                           return std::string("flood_") + param_info.param.flood_rate + "_legit_" +
                                  param_info.param.legit_rate;
                         });

TEST_F(DetectionE2E, FloodAfterLegitimateHistoryStartsWithinOneSecondOfItsFirstSyn) {
  const Verdict v = judge("flood-beside-legit", {"--history", "3.5", "--legit-rate", "800",
                                                 "--rate", "10000", "--duration", "5"});
  expect_lifecycle(v.events);
  const auto started = expect_one_incident(v.events, "198.51.100.10", 80, "spoofed_random");
  ASSERT_TRUE(started) << v.err;
  const long long latency = detection_latency(*started, v.summary);
  EXPECT_GE(latency, -kNanosPerMilli) << "before the flood; event times are in whole ms";
  EXPECT_LE(latency, kNanosPerSecond) << "started " << (*started)["time"];
}

TEST_F(DetectionE2E, SpoofedFloodAtTenThousandPerSecondStartsWithinOnePointSixSeconds) {
  const Verdict v = judge("spoofed-flood", {"--rate", "10000"});
  expect_lifecycle(v.events);
  const auto started = expect_one_incident(v.events, "198.51.100.10", 80, "spoofed_random");
  ASSERT_TRUE(started) << v.err;
  const long long latency = detection_latency(*started, v.summary);
  EXPECT_GE(latency, -kNanosPerMilli);
  EXPECT_LE(latency, 1600 * kNanosPerMilli) << "started " << (*started)["time"];
}

// --- Legitimate load that must not raise anything ---

TEST_F(DetectionE2E, FlashCrowdOfSlowNewClientsRaisesNothing) {
  const Verdict v = judge("flash-crowd");
  EXPECT_TRUE(v.events.empty()) << nlohmann::json(v.events).dump(1);
}

TEST_F(DetectionE2E, BusyServerLosingSomeSynAcksRaisesNothing) {
  const Verdict v = judge("lossy-busy");
  EXPECT_TRUE(v.events.empty()) << nlohmann::json(v.events).dump(1);
}

TEST_F(DetectionE2E, SynScanRaisesNothing) {
  const Verdict v = judge("syn-scan");
  EXPECT_TRUE(v.events.empty()) << nlohmann::json(v.events).dump(1);
}

// --- SYNs spread over every port of one host ---

class RandomPorts : public DetectionE2E, public ::testing::WithParamInterface<const char*> {};

TEST_P(RandomPorts, SpoofedSourcesAreOneSpoofedRandomIncidentOnTheHost) {
  const Verdict v = judge("random-ports", {"--answer", GetParam()});
  expect_lifecycle(v.events);
  EXPECT_TRUE(expect_one_incident(v.events, "198.51.100.10", std::nullopt, "spoofed_random"))
      << v.err;
}

TEST_P(RandomPorts, OneSourceIsOneConcentratedIncidentOnTheHostNamingIt) {
  const Verdict v = judge("random-ports-one-source", {"--answer", GetParam()});
  expect_lifecycle(v.events);
  const auto started = expect_one_incident(v.events, "198.51.100.10", std::nullopt, "concentrated");
  ASSERT_TRUE(started) << v.err;
  ASSERT_FALSE((*started)["top_sources"].empty()) << started->dump();
  EXPECT_EQ((*started)["top_sources"][0]["address"], "203.0.113.77");
}

// Dropped by a firewall, or reset by the host's closed ports.
INSTANTIATE_TEST_SUITE_P(Answers, RandomPorts, ::testing::Values("none", "rst"),
                         [](const auto& param_info) { return std::string(param_info.param); });

// --- Every frame twice (a span port that sees both sides) ---

TEST_F(DetectionE2E, DuplicatedSpoofedFloodGivesTheSameVerdictAndStaleCount) {
  const Verdict once = judge("spoofed-flood");
  const Verdict twice = judge("spoofed-flood", {"--duplicate"});
  EXPECT_EQ(twice.summary["packets"], 2 * once.summary["packets"].get<long long>());
  const auto kinds = kinds_and_targets(once.events);
  ASSERT_FALSE(kinds.empty()) << once.err;
  EXPECT_EQ(kinds_and_targets(twice.events), kinds) << twice.err;
  const auto started_once = of_type(once.events, "started");
  const auto started_twice = of_type(twice.events, "started");
  ASSERT_FALSE(started_once.empty());
  ASSERT_FALSE(started_twice.empty());
  const nlohmann::json& stale_once = started_once[0]["stats"]["stale"];
  const nlohmann::json& stale_twice = started_twice[0]["stats"]["stale"];
  ASSERT_TRUE(stale_once.is_number()) << started_once[0].dump();
  ASSERT_TRUE(stale_twice.is_number()) << started_twice[0].dump();
  EXPECT_LE(std::abs(stale_twice.get<double>() - stale_once.get<double>()),
            0.02 * std::abs(stale_once.get<double>()))
      << "stale " << stale_once << " once, " << stale_twice << " with every frame twice";
}

TEST_F(DetectionE2E, DuplicatedFloodBesideLegitGivesTheSameVerdict) {
  const std::vector<std::string> one_to_one = {"--rate", "1000", "--legit-rate", "1000"};
  const Verdict once = judge("flood-beside-legit", one_to_one);
  std::vector<std::string> duplicated = one_to_one;
  duplicated.emplace_back("--duplicate");
  const Verdict twice = judge("flood-beside-legit", duplicated);
  const auto kinds = kinds_and_targets(once.events);
  ASSERT_FALSE(kinds.empty()) << once.err;
  EXPECT_EQ(kinds_and_targets(twice.events), kinds) << twice.err;
  expect_lifecycle(twice.events);
}

}  // namespace
}  // namespace synwatch::testing
