// End to end on public captures nobody on this project made (../shared/traces, see its README):
// each file gets the verdict a good detector gives. Skips when the folder is absent.
#include <gtest/gtest.h>

#include <regex>

#include "run_process.hpp"

namespace synwatch::testing {
namespace {

std::filesystem::path trace(const std::string& name) {
  return std::filesystem::path(SYNWATCH_SHARED_TRACES) / name;
}

struct Analysis {
  ProcessResult process;
  std::vector<nlohmann::json> events;
};

Analysis analyse(const std::string& name) {
  Analysis a;
  a.process = run_process({SYNWATCHD, "--read", trace(name).string()});
  a.events = parse_json_lines(a.process.out);
  return a;
}

long long summary_figure(const std::string& err, const std::string& label) {
  std::smatch m;
  if (!std::regex_search(err, m, std::regex("(\\d+) " + label))) return -1;
  return std::stoll(m[1]);
}

class Traces : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(trace(GetParam()))) {
      GTEST_SKIP() << "public capture " << trace(GetParam())
                   << " not present (../shared/traces absent)";
    }
  }
};

using SpoofedFloodTraces = Traces;
TEST_P(SpoofedFloodTraces, ReportSpoofedRandomFloodOnTheVictim) {
  const auto a = analyse(GetParam());
  ASSERT_EQ(a.process.exit_code, 0) << a.process.err;
  ASSERT_FALSE(a.events.empty()) << a.process.err;
  const auto& started = a.events.front();
  EXPECT_EQ(started["event"], "started");
  EXPECT_EQ(started["target"]["address"], "10.10.10.10");
  EXPECT_EQ(started["target"]["port"], GetParam().find("ecn") != std::string::npos ? 30120 : 25565);
  EXPECT_EQ(started["kind"], "spoofed_random") << started["reason"];
  EXPECT_EQ(a.events.back()["event"], "ended");
  EXPECT_EQ(a.events.back()["incident_id"], started["incident_id"]);
  int started_count = 0;
  for (const auto& e : a.events) started_count += e["event"] == "started";
  EXPECT_EQ(started_count, 1);
  EXPECT_EQ(summary_figure(a.process.err, "decode errors"), 0) << a.process.err;
}
INSTANTIATE_TEST_SUITE_P(Public, SpoofedFloodTraces,
                         ::testing::Values("flood_spoofed_stopddos.pcap",
                                           "flood_spoofed_syn_ecn_cwr_stopddos.pcapng"));

using BenignTraces = Traces;
TEST_P(BenignTraces, RaiseNothing) {
  const auto a = analyse(GetParam());
  ASSERT_EQ(a.process.exit_code, 0) << a.process.err;
  EXPECT_TRUE(a.events.empty()) << a.process.out;
  EXPECT_EQ(summary_figure(a.process.err, "started \\("), 0) << a.process.err;
}
INSTANTIATE_TEST_SUITE_P(Public, BenignTraces,
                         ::testing::Values("notflood_synack_reflection_stopddos.pcap",
                                           "benign_burst500_loopback_zeek.pcap.gz",
                                           "benign_browsing_ipv6_reddit_ndpi.pcap",
                                           "benign_browsing_burst_espn.pcapng",
                                           "benign_dualstack_tiny_ppa.pcapng",
                                           "notflood_synscan_ppa.pcapng",
                                           "flood_randsrc_randdst_ppa1e_dosattack.pcap",
                                           "benign_p2p_unanswered_syns_gnutella_ndpi.pcap"));

TEST(TracesDetail, Ipv6HandshakesAreTracked) {
  if (!std::filesystem::exists(trace("benign_browsing_ipv6_reddit_ndpi.pcap"))) {
    GTEST_SKIP() << "no traces";
  }
  const auto a = analyse("benign_browsing_ipv6_reddit_ndpi.pcap");
  // 60 handshakes: 59 complete, one is answered and then reset by the client (port 36972).
  EXPECT_EQ(summary_figure(a.process.err, "started,"), 60) << a.process.err;
  EXPECT_EQ(summary_figure(a.process.err, "completed"), 59) << a.process.err;
  EXPECT_EQ(summary_figure(a.process.err, "reset"), 1) << a.process.err;
}

TEST(TracesDetail, DualStackTracksBothFamilies) {
  if (!std::filesystem::exists(trace("benign_dualstack_tiny_ppa.pcapng"))) {
    GTEST_SKIP() << "no traces";
  }
  const auto a = analyse("benign_dualstack_tiny_ppa.pcapng");
  EXPECT_EQ(summary_figure(a.process.err, "completed"), 2) << a.process.err;
}

TEST(TracesDetail, LoopbackBurstCompletesEveryHandshake) {
  if (!std::filesystem::exists(trace("benign_burst500_loopback_zeek.pcap.gz"))) {
    GTEST_SKIP() << "no traces";
  }
  const auto a = analyse("benign_burst500_loopback_zeek.pcap.gz");
  EXPECT_EQ(summary_figure(a.process.err, "completed"), 500) << a.process.err;
}

// The capture holds the victim's inbound side only and no history: its handshakes are judged at
// the initial SYN-ACK timeout (1 s), then held for `for` (0.5 s).
TEST(TracesDetail, StopDdosFloodStartsWithinOnePointSixSecondsOfItsFirstSyn) {
  if (!std::filesystem::exists(trace("flood_spoofed_stopddos.pcap"))) GTEST_SKIP() << "no traces";
  const auto a = analyse("flood_spoofed_stopddos.pcap");
  ASSERT_FALSE(a.events.empty());
  // The capture starts with the flood; its first packet time is the flood's first SYN.
  const auto first = run_process({"tcpdump", "-nr", trace("flood_spoofed_stopddos.pcap").string(),
                                  "-c", "1", "--time-stamp-precision=nano", "-tt"});
  if (first.exit_code != 0) GTEST_SKIP() << "tcpdump unavailable: " << first.err;
  const long long first_ns =
      std::llround(std::stod(first.out.substr(0, first.out.find(' '))) * 1e9);
  const long long latency = parse_rfc3339_ns(a.events.front()["time"]) - first_ns;
  EXPECT_LE(latency, 1'600'000'000LL);
  EXPECT_GE(latency, 0);
}

}  // namespace
}  // namespace synwatch::testing
