// `synwatchd top`'s view of the status document: exact lines for a known state, the packet rate
// between two documents, cutting to the terminal, and documents it cannot read.
#include "export/status_view.hpp"

#include <gtest/gtest.h>

#include "../common/error_printer.hpp"
#include "export/status_document.hpp"

namespace synwatch {
namespace {

constexpr TimestampNs kStart = 1'704'067'200'000'000'000;  // 2024-01-01T00:00:00Z

ExportedDestinationStats destination(const char* address, std::uint16_t port, std::uint32_t stale) {
  ExportedDestinationStats d;
  d.target = {*IpAddress::parse(address), port};
  d.syn_seen = stale + 10;
  d.syn_recv = 5;
  d.stale = stale;
  d.syn_rate = 12400;
  d.completion_ratio = 0.25;
  d.distinct_sources = 9000;
  d.source_entropy = 0.98;
  d.top_sources = {{*IpAddress::parse("198.18.0.1"), 3},
                   {*IpAddress::parse("198.18.0.2"), 2},
                   {*IpAddress::parse("198.18.0.3"), 1}};
  return d;
}

struct Documents {
  PipelineSnapshot pipeline;
  StatusInputs inputs;

  Documents() {
    pipeline.interfaces.push_back({"eth0", true, "", 0, {}});
    pipeline.engine.packets = 1'000'000;
    pipeline.handshake_entries = 4200;
    pipeline.handshake_capacity = 1'048'576;
    pipeline.lag = std::chrono::milliseconds(10);
    for (std::uint16_t port = 1; port <= 5; ++port) {
      pipeline.destinations_exported.push_back(destination("198.51.100.20", port, 100 - port));
    }
    pipeline.destinations_exported.insert(pipeline.destinations_exported.begin(),
                                          destination("198.51.100.10", 80, 4700));
    pipeline.destinations_exported.front().attack = AttackKind::kSpoofedRandom;
    inputs.version = "1.2.3";
    inputs.now = kStart + (2 * 3600 + 5 * 60) * kNanosPerSecond;
    inputs.started_at = kStart;
    inputs.half_open_threshold = 256;
    IncidentEvent event;
    event.type = EventType::kUpdated;
    event.incident_id = "i-1";
    event.target = {*IpAddress::parse("198.51.100.10"), 80};
    event.kind = AttackKind::kSpoofedRandom;
    event.started_at = inputs.now - 80 * kNanosPerSecond;
    event.time = inputs.now;
    event.stats.half_open = 4815;
    event.stats.stale = 4700;
    event.stats.syn_rate = 12400;
    event.stats.distinct_sources = 9000;
    event.top_sources = {{*IpAddress::parse("198.18.0.9"), 4}};
    inputs.open_incidents.push_back(event);
  }
  [[nodiscard]] nlohmann::json document() const { return status_document(inputs, pipeline); }
};

TEST(StatusView, DrawsTheHeaderTheIncidentsAndTheDestinations) {
  Documents d;
  auto lines = render_status(d.document(), nullptr, {});
  ASSERT_TRUE(lines) << lines.error().message;
  // Long lines are added up, not written as adjacent literals: a missing comma would look the same.
  const std::vector<std::string> expected = {
      "synwatchd 1.2.3 - up 2 h 5 min - eth0 - 1,000,000 packets - lag 0.0 s - 02:05:00 UTC",
      "threshold 256 stale half-open per destination - handshakes tracked 4,200 of 1,048,576",
      "",
      "1 OPEN INCIDENT",
      std::string("TARGET            KIND                   FOR  HALF-OPEN  STALE   SYN/s  ") +
          "SOURCES  TOP SOURCES (SYNs)",
      std::string("198.51.100.10:80  spoofed_random  1 min 20 s      4,715  4,700  12,400   ") +
          "~9,000  198.18.0.9 (4)",
      "",
      "DESTINATIONS, most stale half-open first",
      std::string("TARGET            HALF-OPEN  STALE   SYN/s  DONE  SOURCES  RANDOM  INCIDENT  ") +
          "      TOP SOURCES (SYNs)",
  };

  ASSERT_GE(lines->size(), expected.size() + 6);
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ((*lines)[i], expected[i]) << i;
  EXPECT_EQ((*lines)[expected.size()],
            std::string("198.51.100.10:80      4,715  4,700  12,400   25%   ~9,000     98%  ") +
                "spoofed_random  198.18.0.1 (3), 198.18.0.2 (2), 198.18.0.3 (1)");
  EXPECT_EQ((*lines)[expected.size() + 1].substr(0, 18), "198.51.100.20:1   ");
  EXPECT_EQ(lines->size(), expected.size() + 6);
}

TEST(StatusView, AnIncidentShowsThisSecondsFiguresAndItsEventsWhenItsDestinationIsNotListed) {
  Documents d;
  auto lines = render_status(d.document(), nullptr, {});
  ASSERT_TRUE(lines) << lines.error().message;
  EXPECT_NE((*lines)[5].find("4,715"), std::string::npos) << "the destination's, this second";
  d.pipeline.destinations_exported.erase(d.pipeline.destinations_exported.begin());
  lines = render_status(d.document(), nullptr, {});
  ASSERT_TRUE(lines) << lines.error().message;
  EXPECT_NE((*lines)[5].find("4,815"), std::string::npos) << "the latest event's";
}

TEST(StatusView, ThePacketRateComesFromThePreviousDocument) {
  Documents d;
  const auto before = d.document();
  d.inputs.now += 2 * kNanosPerSecond;
  d.pipeline.engine.packets += 50'000;
  auto lines = render_status(d.document(), &before, {});
  ASSERT_TRUE(lines) << lines.error().message;
  EXPECT_NE((*lines)[0].find("1,050,000 packets (25,000/s)"), std::string::npos) << (*lines)[0];
}

TEST(StatusView, FitsTheTerminal) {
  Documents d;
  StatusViewOptions options;
  options.width = 40;
  options.height = 12;
  auto lines = render_status(d.document(), nullptr, options);
  ASSERT_TRUE(lines) << lines.error().message;
  EXPECT_LE(lines->size(), 12u);
  for (const auto& line : *lines) EXPECT_LE(line.size(), 40u) << line;
  // Rows that did not fit are counted in the title.
  EXPECT_EQ((*lines)[7], "DESTINATIONS, most stale half-open first");
  d.pipeline.destinations_unexported = 10;
  options.width = 0;
  lines = render_status(d.document(), nullptr, options);
  ASSERT_TRUE(lines) << lines.error().message;
  EXPECT_EQ((*lines)[7], "DESTINATIONS, most stale half-open first (13 more)");
  EXPECT_EQ(lines->size(), 12u);
}

TEST(StatusView, SaysWhenNothingIsGoingOn) {
  Documents d;
  d.inputs.open_incidents.clear();
  d.pipeline.destinations_exported.clear();
  auto lines = render_status(d.document(), nullptr, {});
  ASSERT_TRUE(lines) << lines.error().message;
  ASSERT_EQ(lines->size(), 7u);
  EXPECT_EQ((*lines)[3], "No open incidents.");
  EXPECT_EQ((*lines)[5], "DESTINATIONS, most stale half-open first");
  EXPECT_EQ((*lines)[6], "No destination has half-open connections.");
}

TEST(StatusView, ADocumentItCannotReadIsAnErrorNotACrash) {
  auto other_version = render_status(nlohmann::json{{"version", 2}}, nullptr, {});
  ASSERT_FALSE(other_version);
  EXPECT_EQ(other_version.error().kind, ErrorKind::kInvalidInput);
  EXPECT_NE(other_version.error().message.find("unknown version 2"), std::string::npos);
  Documents d;
  auto document = d.document();
  document["capture"].erase("packets");
  auto missing = render_status(document, nullptr, {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kInvalidInput);
  EXPECT_NE(missing.error().message.find("not understood"), std::string::npos)
      << missing.error().message;
  EXPECT_FALSE(render_status(nlohmann::json::array(), nullptr, {}));
  document = d.document();
  document["open_incidents"][0]["target"]["port"] = "eighty";
  EXPECT_FALSE(render_status(document, nullptr, {}));
}

}  // namespace
}  // namespace synwatch
