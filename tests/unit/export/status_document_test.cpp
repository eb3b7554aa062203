// The status socket's document: what a running daemon says about itself, from a snapshot and the
// events it has seen.
#include "export/status_document.hpp"

#include <gtest/gtest.h>

namespace synwatch {
namespace {

constexpr TimestampNs kStart = 1'704'067'200'000'000'000;  // 2024-01-01T00:00:00Z

IncidentEvent event_of(EventType type, const std::string& id, TimestampNs started_at,
                       std::uint32_t half_open) {
  IncidentEvent event;
  event.type = type;
  event.incident_id = id;
  event.target = {*IpAddress::parse("198.51.100.10"), 80};
  event.kind = AttackKind::kSpoofedRandom;
  event.started_at = started_at;
  event.time = started_at;
  event.stats.half_open = half_open;
  event.top_sources = {{*IpAddress::parse("198.18.0.1"), 2}};
  if (type == EventType::kEnded) event.ended_at = started_at;
  return event;
}

ExportedDestinationStats destination(const char* address, std::uint16_t port,
                                     std::uint32_t syn_seen, std::uint32_t stale) {
  ExportedDestinationStats d;
  d.target = {*IpAddress::parse(address), port};
  d.syn_seen = syn_seen;
  d.stale = stale;
  d.syn_rate = 1234.56789;
  d.top_sources = {{*IpAddress::parse("198.18.0.7"), 5}};
  return d;
}

TEST(LatestIncidentEvents, KeepsTheLatestEventOfEachOpenIncidentOldestFirst) {
  LatestIncidentEvents latest;
  latest.follow(event_of(EventType::kStarted, "b", kStart + 5, 10));
  latest.follow(event_of(EventType::kStarted, "a", kStart + 9, 20));
  latest.follow(event_of(EventType::kUpdated, "b", kStart + 5, 30));
  auto open = latest.open();
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[0].incident_id, "b");
  EXPECT_EQ(open[0].stats.half_open, 30u) << "the update replaced the start";
  EXPECT_EQ(open[1].incident_id, "a");
  latest.follow(event_of(EventType::kEnded, "b", kStart + 5, 0));
  open = latest.open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].incident_id, "a");
}

TEST(StatusDocument, CarriesTheDaemonTheIncidentsAndTheBusiestDestinationsFirst) {
  PipelineSnapshot pipeline;
  pipeline.interfaces.push_back({"eth0", true, "", 0, {100, 2, 0}});
  pipeline.interfaces.push_back({"eth1", false, "no such device", 3, {}});
  pipeline.engine.packets = 5000;
  pipeline.handshake_entries = 42;
  pipeline.handshake_capacity = 1024;
  pipeline.lag = std::chrono::milliseconds(20);
  // Ranked by the snapshot with the incident's first; the document lists the most stale first.
  pipeline.destinations_exported.push_back(destination("198.51.100.10", 80, 300, 250));
  pipeline.destinations_exported.back().attack = AttackKind::kSpoofedRandom;
  pipeline.destinations_exported.push_back(destination("2001:db8::1", 443, 900, 800));
  pipeline.destinations_exported.push_back(destination("198.51.100.11", 0, 10, 0));
  pipeline.destinations_exported.back().host = true;
  pipeline.destinations_unexported = 7;

  StatusInputs inputs;
  inputs.version = "9.9.9";
  inputs.config_file = "/etc/synwatch/synwatch.yaml";
  inputs.now = kStart + 90 * kNanosPerSecond;
  inputs.started_at = kStart;
  inputs.half_open_threshold = 256;
  inputs.open_incidents = {event_of(EventType::kUpdated, "i-1", kStart + kNanosPerSecond, 250)};
  const auto doc = status_document(inputs, pipeline);

  EXPECT_EQ(doc["version"], 1);
  EXPECT_EQ(doc["synwatchd"]["version"], "9.9.9");
  EXPECT_EQ(doc["synwatchd"]["config"], "/etc/synwatch/synwatch.yaml");
  EXPECT_EQ(doc["synwatchd"]["started_at"], "2024-01-01T00:00:00.000Z");
  EXPECT_EQ(doc["time"], "2024-01-01T00:01:30.000Z");
  EXPECT_EQ(doc["half_open_threshold"], 256);
  ASSERT_EQ(doc["capture"]["interfaces"].size(), 2u);
  EXPECT_EQ(doc["capture"]["interfaces"][0]["received"], 100);
  EXPECT_EQ(doc["capture"]["interfaces"][0]["dropped"], 2);
  EXPECT_EQ(doc["capture"]["interfaces"][1]["open"], false);
  EXPECT_EQ(doc["capture"]["interfaces"][1]["error"], "no such device");
  EXPECT_EQ(doc["capture"]["packets"], 5000);
  EXPECT_DOUBLE_EQ(doc["capture"]["lag_seconds"].get<double>(), 0.02);
  EXPECT_EQ(doc["handshakes"]["tracked"], 42);
  EXPECT_EQ(doc["handshakes"]["capacity"], 1024);
  EXPECT_TRUE(doc["kernel"].is_null());

  ASSERT_EQ(doc["open_incidents"].size(), 1u);
  EXPECT_EQ(doc["open_incidents"][0]["incident_id"], "i-1");
  EXPECT_EQ(doc["open_incidents"][0]["event"], "updated") << "in the event format";

  const auto& destinations = doc["destinations"];
  ASSERT_EQ(destinations.size(), 3u);
  EXPECT_EQ(destinations[0]["address"], "2001:db8::1");
  EXPECT_EQ(destinations[0]["stale"], 800);
  EXPECT_EQ(destinations[0]["half_open"], 900);
  EXPECT_DOUBLE_EQ(destinations[0]["syn_rate"].get<double>(), 1234.568);
  EXPECT_TRUE(destinations[0]["incident"].is_null());
  EXPECT_EQ(destinations[0]["top_sources"][0]["address"], "198.18.0.7");
  EXPECT_EQ(destinations[0]["top_sources"][0]["syns"], 5);
  EXPECT_EQ(destinations[1]["address"], "198.51.100.10");
  EXPECT_EQ(destinations[1]["port"], 80);
  EXPECT_EQ(destinations[1]["scope"], "port");
  EXPECT_EQ(destinations[1]["incident"], "spoofed_random");
  EXPECT_EQ(destinations[2]["scope"], "host");
  EXPECT_TRUE(destinations[2]["port"].is_null());
  EXPECT_EQ(doc["destinations_not_shown"], 7);

  pipeline.kernel.enabled = true;
  pipeline.kernel.healthy = true;
  pipeline.kernel.syn_recv_total = 77;
  const auto with_kernel = status_document(inputs, pipeline);
  EXPECT_EQ(with_kernel["kernel"]["syn_recv"], 77);
  EXPECT_EQ(with_kernel["kernel"]["healthy"], true);
}

}  // namespace
}  // namespace synwatch
