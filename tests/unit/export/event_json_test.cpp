#include <gtest/gtest.h>

#include <cstdio>

#include "export/alert_file.hpp"
#include "export/event_json.hpp"

namespace synwatch {
namespace {

IncidentEvent sample(EventType type) {
  IncidentEvent e;
  e.type = type;
  e.incident_id = "00112233aabbccdd";
  e.sequence = type == EventType::kEnded ? 2 : 0;
  e.event_id = e.incident_id + "-" + std::to_string(e.sequence);
  e.target = {*IpAddress::parse("2001:db8::10"), 443};
  e.kind = AttackKind::kConcentrated;
  e.time = 1'704'067'201'500'000'000LL;
  e.started_at = 1'704'067'200'000'000'000LL;
  if (type == EventType::kEnded) e.ended_at = e.time;
  e.stats.half_open = 300;
  e.stats.syn_recv = 200;
  e.stats.syn_seen = 100;
  e.stats.peak_half_open = 512;
  e.stats.syn_rate = 1234.56789;
  e.stats.distinct_sources = 2.6;
  e.stats.source_entropy = 0.123456;
  e.stats.stale = 280;
  e.stats.failed = 30;
  e.stats.baseline = 12.34567;
  e.stats.stale_after = 300 * kNanosPerMilli;
  e.stats.normal_learned = true;
  e.top_sources = {{*IpAddress::parse("198.18.0.1"), 900}};
  e.reason = "because";
  return e;
}

TEST(EventJson, CarriesTheDocumentedFields) {
  const auto j = to_json(sample(EventType::kStarted));
  EXPECT_EQ(j["version"], 2);
  EXPECT_EQ(j["event"], "started");
  EXPECT_EQ(j["incident_id"], "00112233aabbccdd");
  EXPECT_EQ(j["event_id"], "00112233aabbccdd-0");
  EXPECT_EQ(j["target"]["address"], "2001:db8::10");
  EXPECT_EQ(j["target"]["port"], 443);
  EXPECT_EQ(j["target"]["scope"], "port");
  EXPECT_EQ(j["kind"], "concentrated");
  EXPECT_EQ(j["started_at"], "2024-01-01T00:00:00.000Z");
  EXPECT_EQ(j["time"], "2024-01-01T00:00:01.500Z");
  EXPECT_FALSE(j.contains("ended_at"));
  EXPECT_EQ(j["stats"]["half_open"], 300);
  EXPECT_EQ(j["stats"]["syn_recv"], 200);
  EXPECT_EQ(j["stats"]["syn_seen"], 100);
  EXPECT_EQ(j["stats"]["peak_half_open"], 512);
  EXPECT_DOUBLE_EQ(j["stats"]["syn_rate"].get<double>(), 1234.568);
  EXPECT_EQ(j["stats"]["distinct_sources"], 3);
  EXPECT_DOUBLE_EQ(j["stats"]["source_entropy"].get<double>(), 0.123);
  EXPECT_EQ(j["stats"]["stale"], 280);
  EXPECT_EQ(j["stats"]["failed"], 30);
  EXPECT_DOUBLE_EQ(j["stats"]["baseline"].get<double>(), 12.346);
  EXPECT_EQ(j["stats"]["stale_after_ms"], 300);
  EXPECT_EQ(j["stats"]["normal_learned"], true);
  for (const char* key : {"synack_rate", "completed_rate", "bogon_share", "completion_ratio"}) {
    EXPECT_TRUE(j["stats"].contains(key)) << key;
  }
  ASSERT_EQ(j["top_sources"].size(), 1u);
  EXPECT_EQ(j["top_sources"][0]["address"], "198.18.0.1");
  EXPECT_EQ(j["top_sources"][0]["syns"], 900);
  EXPECT_EQ(j["reason"], "because");
}

TEST(EventJson, AHostTargetHasNoPort) {
  IncidentEvent e = sample(EventType::kStarted);
  e.host_scope = true;
  e.target.port = 0;
  const auto j = to_json(e);
  EXPECT_EQ(j["target"]["address"], "2001:db8::10");
  EXPECT_TRUE(j["target"]["port"].is_null());
  EXPECT_EQ(j["target"]["scope"], "host");
}

TEST(LogLine, NamesTheStaleCountAndAWholeHostByItsAddress) {
  IncidentEvent e = sample(EventType::kStarted);
  std::string line = describe_for_log(e);
  EXPECT_NE(line.find("on [2001:db8::10]:443 stale=280 baseline=12 stale_after=300ms"),
            std::string::npos)
      << line;
  e.host_scope = true;
  e.target.port = 0;
  line = describe_for_log(e);
  EXPECT_NE(line.find("on 2001:db8::10 (all ports) stale=280"), std::string::npos) << line;
}

TEST(LogLine, NamesTheTopSourcesAndForTheEndWhyAndHowLong) {
  IncidentEvent e = sample(EventType::kStarted);
  e.top_sources.clear();
  for (std::uint32_t i = 1; i <= 7; ++i) {
    e.top_sources.push_back({IpAddress::from_v4(0xc6120000u + i), 100u - i});
  }
  std::string line = describe_for_log(e);
  EXPECT_NE(line.find(" top_sources=198.18.0.1(99),198.18.0.2(98),198.18.0.3(97),198.18.0.4(96),"
                      "198.18.0.5(95) "),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find("198.18.0.6"), std::string::npos) << line;
  EXPECT_NE(line.find(" reason=\"because\""), std::string::npos) << line;
  e.type = EventType::kUpdated;
  EXPECT_EQ(describe_for_log(e).find("reason="), std::string::npos);
  e.type = EventType::kEnded;
  e.ended_at = e.started_at + 72'500'000'000;
  line = describe_for_log(e);
  EXPECT_NE(line.find(" lasted=72.5s reason=\"because\""), std::string::npos) << line;
}

TEST(EventJson, EvidencePathIsCarriedWhenThereIsOne) {
  IncidentEvent e = sample(EventType::kStarted);
  EXPECT_FALSE(to_json(e).contains("evidence"));
  EXPECT_EQ(describe_for_log(e).find("evidence="), std::string::npos);
  e.evidence_path = "/var/lib/synwatch/evidence/00112233aabbccdd.pcap";
  EXPECT_EQ(to_json(e)["evidence"]["path"], e.evidence_path);
  EXPECT_NE(describe_for_log(e).find(" evidence=" + e.evidence_path), std::string::npos);
  e.type = EventType::kUpdated;  // updates repeat figures, not where to look
  EXPECT_EQ(describe_for_log(e).find("evidence="), std::string::npos);
}

TEST(EventJson, EndedCarriesEndedAt) {
  const auto j = to_json(sample(EventType::kEnded));
  EXPECT_EQ(j["event"], "ended");
  EXPECT_EQ(j["ended_at"], "2024-01-01T00:00:01.500Z");
}

TEST(JsonLinesSink, WritesOneParsableLinePerEvent) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  JsonLinesSink sink(f);
  sink.publish(sample(EventType::kStarted));
  sink.publish(sample(EventType::kEnded));
  EXPECT_EQ(sink.written(), 2u);
  std::rewind(f);
  char line[4096];
  int lines = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["version"], kEventFormatVersion);
    ++lines;
  }
  EXPECT_EQ(lines, 2);
  EXPECT_EQ(std::fclose(f), 0);
}

}  // namespace
}  // namespace synwatch
