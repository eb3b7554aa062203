// End to end: generated captures through the real synwatchd --read, asserting the events.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>

#include "generated_capture.hpp"

namespace synwatch::testing {
namespace {

class OfflineE2E : public GeneratedCaptureTest {};

void expect_single_flood(const std::vector<nlohmann::json>& events, const std::string& address,
                         int port, const std::string& kind) {
  std::vector<nlohmann::json> started;
  for (const auto& e : events) {
    if (e.at("event") == "started") started.push_back(e);
  }
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0]["target"]["address"], address);
  EXPECT_EQ(started[0]["target"]["port"], port);
  EXPECT_EQ(started[0]["kind"], kind) << started[0]["reason"];
  EXPECT_FALSE(started[0]["reason"].get<std::string>().empty());
  ASSERT_EQ(events.back()["event"], "ended");
  EXPECT_TRUE(events.back().contains("ended_at"));
}

// A destination with no history: its handshakes are judged at the initial SYN-ACK timeout (1 s),
// then held for `for` (0.5 s).
TEST_F(OfflineE2E, SpoofedFloodWithoutSynAcksIsSpoofedRandomAndStartsWithinOnePointSixSeconds) {
  const auto g = generate("spoofed-flood");
  const auto r = analyse(g.file);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto events = parse_json_lines(r.out);
  expect_lifecycle(events);
  expect_single_flood(events, "198.51.100.10", 80, "spoofed_random");
  const auto started = of_type(events, "started").at(0);
  const long long latency =
      parse_rfc3339_ns(started["time"]) - g.summary["flood_start_ts"].get<long long>();
  EXPECT_GE(latency, 0);
  EXPECT_LE(latency, 1'600'000'000LL) << "started " << started["time"];
  EXPECT_GT(started["stats"]["half_open"].get<int>(), 256);
  EXPECT_GT(started["stats"]["stale"].get<int>(), 256);
  EXPECT_EQ(started["stats"]["stale_after_ms"], 1000);
  EXPECT_EQ(started["stats"]["normal_learned"], false);
  EXPECT_EQ(started["stats"]["syn_recv"], 0);
  EXPECT_GT(started["stats"]["source_entropy"].get<double>(), 0.85);
  EXPECT_NEAR(started["stats"]["syn_rate"].get<double>(), 20000, 2000);
  EXPECT_GT(started["stats"]["distinct_sources"].get<double>(),
            0.8 * started["stats"]["stale"].get<double>());
  EXPECT_LT(started["stats"]["completion_ratio"].get<double>(), 0.01);
  EXPECT_NE(r.err.find("incidents: 1 started (1 spoofed_random"), std::string::npos) << r.err;
}

TEST_F(OfflineE2E, LatencyHoldsWhateverTheFloodsPhaseAgainstTheTickGrid) {
  // The flood may start anywhere within a tick; detection must not wait for the grid.
  for (const char* start : {"1704067200.000", "1704067200.330", "1704067200.990"}) {
    const auto g = generate("spoofed-flood", {"--start", start, "--duration", "2"});
    const auto r = analyse(g.file);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto started = of_type(parse_json_lines(r.out), "started");
    ASSERT_EQ(started.size(), 1u) << start;
    const long long latency =
        parse_rfc3339_ns(started[0]["time"]) - g.summary["flood_start_ts"].get<long long>();
    EXPECT_LE(latency, 1'600'000'000LL) << start;
  }
}

TEST_F(OfflineE2E, SpoofedFloodAnsweredBySynAcksCountsSynRecv) {
  const auto g = generate("spoofed-flood-synack");
  const auto r = analyse(g.file);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto events = parse_json_lines(r.out);
  expect_lifecycle(events);
  expect_single_flood(events, "198.51.100.10", 80, "spoofed_random");
  const auto started = of_type(events, "started").at(0);
  EXPECT_GT(started["stats"]["syn_recv"].get<int>(), 256);
  EXPECT_GT(started["stats"]["synack_rate"].get<double>(), 1000);
}

TEST_F(OfflineE2E, FloodFromFewSourcesIsConcentratedWithTheHeaviestFirst) {
  const auto g = generate("few-sources");
  const auto r = analyse(g.file);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto events = parse_json_lines(r.out);
  expect_lifecycle(events);
  expect_single_flood(events, "198.51.100.10", 80, "concentrated");
  const auto started = of_type(events, "started").at(0);
  ASSERT_GE(started["top_sources"].size(), 3u);
  EXPECT_EQ(started["top_sources"][0]["address"], "198.18.0.1");
  std::set<std::string> top3;
  for (int i = 0; i < 3; ++i) top3.insert(started["top_sources"][i]["address"]);
  EXPECT_EQ(top3, (std::set<std::string>{"198.18.0.1", "198.18.0.2", "198.18.0.3"}));
}

TEST_F(OfflineE2E, BotnetOfRealSourcesIsDistributed) {
  const auto g = generate("botnet");
  const auto r = analyse(g.file);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto events = parse_json_lines(r.out);
  expect_lifecycle(events);
  expect_single_flood(events, "198.51.100.10", 80, "distributed");
}

TEST_F(OfflineE2E, Ipv6SpoofedFlood) {
  const auto g = generate("ipv6-flood");
  const auto r = analyse(g.file);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto events = parse_json_lines(r.out);
  expect_lifecycle(events);
  expect_single_flood(events, "2001:db8::10", 443, "spoofed_random");
}

TEST_F(OfflineE2E, EveryLinkTypeSeesTheSameFlood) {
  for (const char* link : {"vlan", "qinq", "sll", "sll2", "raw"}) {
    const auto g = generate("spoofed-flood", {"--link", link, "--duration", "2"});
    const auto r = analyse(g.file);
    ASSERT_EQ(r.exit_code, 0) << link << ": " << r.err;
    const auto events = parse_json_lines(r.out);
    expect_lifecycle(events);
    expect_single_flood(events, "198.51.100.10", 80, "spoofed_random");
  }
}

TEST_F(OfflineE2E, BenignTrafficRaisesNothing) {
  for (const char* scenario :
       {"legit-burst", "slow-legit", "syn-scan", "randdst", "mixed-families"}) {
    const auto g = generate(scenario);
    const auto r = analyse(g.file);
    ASSERT_EQ(r.exit_code, 0) << scenario << ": " << r.err;
    EXPECT_EQ(r.out, "") << scenario;
    EXPECT_NE(r.err.find("incidents: 0 started"), std::string::npos) << scenario << ": " << r.err;
  }
}

TEST_F(OfflineE2E, LegitBurstCompletesEveryHandshake) {
  const auto g = generate("legit-burst");
  const auto r = analyse(g.file);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("2000 started, 2000 completed"), std::string::npos) << r.err;
}

TEST_F(OfflineE2E, TruncatedAndMalformedFramesAreCountedNotFatal) {
  const auto g = generate("truncated");
  const auto r = analyse(g.file);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find(" 0 decode errors"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("decode errors ("), std::string::npos) << r.err;
}

TEST_F(OfflineE2E, ThresholdOverrideBySetChangesTheVerdict) {
  const auto g = generate("spoofed-flood", {"--duration", "1"});
  ASSERT_FALSE(of_type(parse_json_lines(analyse(g.file).out), "started").empty());
  // A threshold above the flood's 20,000 stale handshakes shows --set reaches the detector.
  const auto r = analyse(g.file, {"--set", "detection.half_open=1000000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(of_type(parse_json_lines(r.out), "started").empty()) << r.out;
}

TEST_F(OfflineE2E, ProtectedPrefixesLimitWhatIsJudged) {
  const auto g = generate("spoofed-flood", {"--duration", "2"});
  const auto elsewhere = analyse(g.file, {"--set", "protected=[192.0.2.0/24]"});
  ASSERT_EQ(elsewhere.exit_code, 0) << elsewhere.err;
  EXPECT_EQ(elsewhere.out, "");
  const auto ours = analyse(g.file, {"--set", "protected=[198.51.100.0/24]"});
  EXPECT_FALSE(of_type(parse_json_lines(ours.out), "started").empty());
}

TEST_F(OfflineE2E, ReplayIsDeterministic) {
  const auto g = generate("few-sources");
  const auto a = analyse(g.file);
  const auto b = analyse(g.file);
  EXPECT_EQ(a.out, b.out);
  EXPECT_FALSE(a.out.empty());
}

TEST_F(OfflineE2E, MissingCaptureIsAClearError) {
  const auto r = analyse(dir_.path() / "nope.pcap");
  EXPECT_EQ(r.exit_code, 66);
  EXPECT_NE(r.err.find("nope.pcap"), std::string::npos) << r.err;
}

TEST_F(OfflineE2E, BadConfigExits78WithLocation) {
  const auto path = dir_.path() / "bad.yaml";
  std::ofstream(path) << "detection:\n  half_open: -5\n  tick: 1s\n";
  const auto r = run_process({SYNWATCHD, "--check-config", "--config", path.string()});
  EXPECT_EQ(r.exit_code, 78);
  EXPECT_NE(r.err.find("bad.yaml:2:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("detection.half_open"), std::string::npos) << r.err;
  const auto ok = run_process({SYNWATCHD, "--check-config", "--config",
                               std::string(SYNWATCH_SOURCE_DIR) + "/config/synwatch.yaml"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST_F(OfflineE2E, ReadmeListsTheCurrentConfigReference) {
  const auto r = run_process({SYNWATCHD, "--config-reference"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("detection.half_open = 256"), std::string::npos) << r.out;
  std::ifstream in(std::string(SYNWATCH_SOURCE_DIR) + "/README.md");
  const std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(readme.find(r.out), std::string::npos)
      << "README.md's configuration reference is out of date; paste `synwatchd --config-reference`";
}

TEST_F(OfflineE2E, VersionAndHelp) {
  const auto v = run_process({SYNWATCHD, "--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_TRUE(v.out.starts_with("synwatchd ")) << v.out;
  // What a bug report needs: the commit, how it was built, and the libraries it runs with, each
  // asked at run time where the library can say (libpcap answers with its own words).
  for (const char* line : {"\ncommit: ", "\nbuild: ", "\ndefault configuration: /etc/synwatch/",
                           "\nlibpcap: libpcap version ",
                           "\nlibmicrohttpd: ", "\nOpenSSL: ", "\nlibcurl: ", "\nzlib: "}) {
    EXPECT_NE(v.out.find(line), std::string::npos) << line << " missing from:\n" << v.out;
  }
  // "build: RelWithDebInfo, GNU 12.2.0, Debian hardening flags (dpkg-buildflags)"
  EXPECT_TRUE(std::regex_search(v.out, std::regex("\nbuild: [A-Za-z]+, (GNU|Clang) [0-9.]+, ")))
      << v.out;
  const auto h = run_process({SYNWATCHD, "--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("--read"), std::string::npos);
  EXPECT_NE(h.out.find("--check-config"), std::string::npos);
}

// `tcpdump -w - | synwatchd --read -`, `--read /dev/stdin`, `<(zcat x.pcap.gz)` and FIFOs were
// refused ("unknown file format", exit 66): the format check rewound a stream that cannot be.
TEST_F(OfflineE2E, PipesStdinAndFifosReadLikeTheFile) {
  const auto g = generate("spoofed-flood", {"--duration", "2"});
  const auto from_file = analyse(g.file);
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  ASSERT_FALSE(from_file.out.empty());
  const std::string file = shell_quote(g.file.string());
  const std::string daemon = shell_quote(SYNWATCHD);
  const auto fifo = dir_.path() / "capture.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string fifo_path = shell_quote(fifo.string());
  std::vector<std::string> pipelines;
  for (const char* reader : {" --read -", " --read /dev/stdin"}) {
    pipelines.push_back(
        std::string("cat ").append(file).append(" | ").append(daemon).append(reader));
  }
  pipelines.push_back(
      std::string("gzip -c ").append(file).append(" | ").append(daemon).append(" --read -"));
  pipelines.push_back(std::string("(cat ")
                          .append(file)
                          .append(" > ")
                          .append(fifo_path)
                          .append(" &) ; ")
                          .append(daemon)
                          .append(" --read ")
                          .append(fifo_path));
  for (const std::string& pipeline : pipelines) {
    SCOPED_TRACE(pipeline);
    const auto r = run_process({"sh", "-c", pipeline});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, from_file.out);
  }
}

// Action hooks run in --read too, and --read waits for them before it exits.
TEST_F(OfflineE2E, ActionsRunOnTheEventsTheyWant) {
  const auto g = generate("spoofed-flood", {"--duration", "2"});
  const auto record = dir_.path() / "actions.jsonl";
  const auto config = dir_.path() / "actions.yaml";
  std::ofstream(config)
      << "actions:\n  - name: record\n    command: [/bin/sh, -c, 'sleep 0.2; cat >> "
      << record.string() << "']\n";
  const auto r = analyse(g.file, {"--config", config.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(record);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const auto recorded = parse_json_lines(text);
  ASSERT_EQ(recorded.size(), 2u) << text;
  std::multiset<std::string> types;
  for (const auto& e : recorded) types.insert(e.at("event").get<std::string>());
  EXPECT_EQ(types, (std::multiset<std::string>{"started", "ended"}));
}

// The lines tcpdump prints for `file`, with an optional filter; -1 when tcpdump fails.
long long tcpdump_lines(const std::string& file, const std::string& filter = {}) {
  std::vector<std::string> argv = {"tcpdump", "-nn", "-r", file};
  if (!filter.empty()) argv.push_back(filter);
  const auto r = run_process(argv);
  if (r.exit_code != 0) return -1;
  return std::count(r.out.begin(), r.out.end(), '\n');
}

TEST_F(OfflineE2E, EvidenceCaptureOpensInTcpdumpAndHoldsTheFloodsSyns) {
  if (run_process({"tcpdump", "--version"}).exit_code != 0) {
    GTEST_SKIP() << "tcpdump is not installed (make deps installs it)";
  }
  const auto g = generate("flood-beside-legit", {"--duration", "20", "--link", "sll2"});
  const auto evidence = dir_.path() / "evidence";
  const auto r = analyse(g.file, {"--evidence-dir", evidence.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto events = parse_json_lines(r.out);
  expect_lifecycle(events);
  ASSERT_FALSE(events.empty());
  const std::string path = events.front().at("evidence").at("path");
  for (const auto& e : events) EXPECT_EQ(e.at("evidence").at("path"), path);
  EXPECT_EQ(std::filesystem::path(path).parent_path(), std::filesystem::absolute(evidence));
  const long long all = tcpdump_lines(path);
  const long long syns_to_target = tcpdump_lines(
      path,
      "tcp[tcpflags] & (tcp-syn|tcp-ack|tcp-rst) == tcp-syn and dst host 198.51.100.10 and "
      "dst port 80");
  // Every SYN of the first 1,000 after the start, then 100 for each second until the end.
  EXPECT_GT(all, 1000 + 100 * 15) << r.err;
  EXPECT_EQ(syns_to_target, all);
  EXPECT_NE(r.err.find("evidence: " + std::to_string(all) + " packets written"), std::string::npos)
      << r.err;
}

TEST_F(OfflineE2E, EvidenceCapsHoldUnderLongFloods) {
  // Two five-minute floods on two targets, read one after the other into one directory: each
  // file stays within its cap, and the second pushes the first out to keep the total.
  const auto evidence = dir_.path() / "evidence";
  const std::vector<std::string> caps = {"--evidence-dir", evidence.string(),
                                         "--set",          "evidence.max_incident_bytes=65536",
                                         "--set",          "evidence.max_total_bytes=100000"};
  std::vector<std::string> paths;
  for (const char* target : {"198.51.100.10:80", "198.51.100.20:443"}) {
    const auto g =
        generate("spoofed-flood", {"--rate", "2000", "--duration", "300", "--target", target});
    const auto r = analyse(g.file, caps);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto events = parse_json_lines(r.out);
    ASSERT_FALSE(events.empty());
    paths.push_back(events.front().at("evidence").at("path"));
    EXPECT_LE(std::filesystem::file_size(paths.back()), 65536u);
    EXPECT_GT(std::filesystem::file_size(paths.back()), 60000u);
    EXPECT_NE(r.err.find("left out by the caps"), std::string::npos) << r.err;
    std::uintmax_t total = 0;
    for (const auto& entry : std::filesystem::directory_iterator(evidence)) {
      total += entry.file_size();
    }
    EXPECT_LE(total, 100000u);
  }
  EXPECT_FALSE(std::filesystem::exists(paths[0]));
  EXPECT_TRUE(std::filesystem::exists(paths[1]));
}

TEST_F(OfflineE2E, EvidenceDirWithoutReadIsAUsageError) {
  const auto r = run_process({SYNWATCHD, "--evidence-dir", dir_.path().string()});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("--evidence-dir needs --read"), std::string::npos) << r.err;
}

// --read never changes the firewall: a capture's sources are not this host's attackers now. Its
// nftables actions say what they would do, with no privilege needed.
TEST_F(OfflineE2E, NftablesActionsOnlySayWhatTheyWouldDo) {
  const auto g = generate("few-sources");
  const auto config = dir_.path() / "nftables.yaml";
  std::ofstream(config) << "actions:\n  - name: block\n    type: nftables\n"
                           "    allowlist: [198.18.0.3/32]\n";
  const auto r = analyse(g.file, {"--config", config.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("--read: nftables action 'block' runs as dry_run"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("dry_run: would add 198.18.0.1, 198.18.0.2 to inet synwatch blocked_v4 "
                       "for 600s (block_for)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("not blocking 198.18.0.3 (allowlisted)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dry_run: would remove 198.18.0.1, 198.18.0.2 from inet synwatch "
                       "blocked_v4 (incident ended)"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace synwatch::testing
