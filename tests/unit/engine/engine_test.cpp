// The engine over real generated captures: batched and per-frame delivery must agree exactly.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "capture/pcap_file_source.hpp"
#include "engine/engine.hpp"
#include "decode/tcp_segment.hpp"
#include "export/event_json.hpp"

namespace synwatch {
namespace {

struct Collect final : EventSink {
  std::vector<std::string> lines;
  void publish(const IncidentEvent& e) override { lines.push_back(to_json(e).dump()); }
};

// Hands frames over one at a time, bypassing the engine's batch path.
struct OneByOne final : PacketHandler {
  Engine* engine = nullptr;
  void on_packet(const PacketView& packet) noexcept override { engine->on_packet(packet); }
};

struct Analysis {
  std::vector<std::string> events;
  EngineStats counters;
  HandshakeTableStats flows;
};

Analysis analyse(const std::filesystem::path& file, bool batched) {
  auto source = PcapFileSource::open(file.string());
  EXPECT_TRUE(source.has_value());
  Collect sink;
  Engine engine(Config{}, (*source)->link_type(), sink, 7);
  OneByOne single;
  single.engine = &engine;
  PacketHandler& handler = batched ? static_cast<PacketHandler&>(engine) : single;
  while ((*source)->dispatch(1000, handler).status == DispatchStatus::kPackets) {
  }
  engine.finish();
  return {sink.lines, engine.counters(), engine.handshakes().counters()};
}

class EngineOnCaptures : public ::testing::TestWithParam<const char*> {};

TEST_P(EngineOnCaptures, BatchedAndPerFrameDeliveryAgree) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("synwatch-engine-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / (std::string(GetParam()) + ".pcap");
  const std::string command =
      std::string(SYNWATCH_GEN) + " " + GetParam() + " --out " + file.string() + " >/dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0);
  const Analysis batched = analyse(file, true);
  const Analysis single = analyse(file, false);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(batched.events, single.events);
  EXPECT_EQ(batched.counters.packets, single.counters.packets);
  EXPECT_EQ(batched.counters.tcp_segments, single.counters.tcp_segments);
  EXPECT_EQ(batched.counters.ticks, single.counters.ticks);
  EXPECT_EQ(batched.flows.inserted, single.flows.inserted);
  EXPECT_EQ(batched.flows.completed, single.flows.completed);
  EXPECT_EQ(batched.flows.expired, single.flows.expired);
  EXPECT_GT(batched.counters.packets, 0u);
  if (std::string(GetParam()).find("flood") != std::string::npos ||
      std::string(GetParam()) == "few-sources") {
    EXPECT_FALSE(batched.events.empty());
  }
}

// A burst of spoofed SYNs to one destination, `count` of them over `length` from `start`.
void burst(Engine& engine, TimestampNs start, DurationNs length, int count) {
  for (int i = 0; i < count; ++i) {
    TcpSegment s;
    s.timestamp = start + length * i / count;
    s.source = IpAddress::from_v4(0xc6120000u + static_cast<std::uint32_t>(i));
    s.destination = IpAddress::from_v4(0xc6336402u);
    s.source_port = static_cast<std::uint16_t>(1024 + i % 60000);
    s.destination_port = 80;
    s.seq = static_cast<std::uint32_t>(i);
    s.flags = tcp_flag::kSyn;
    engine.on_segment(s);
  }
}

std::vector<nlohmann::json> parsed(const Collect& sink) {
  std::vector<nlohmann::json> events;
  events.reserve(sink.lines.size());
  for (const auto& line : sink.lines) events.push_back(nlohmann::json::parse(line));
  return events;
}

constexpr TimestampNs kStart = 1'704'067'200LL * kNanosPerSecond;

TEST(Engine, ACaptureEndingBeforeItsHandshakesCouldBeJudgedStillGetsItsVerdict) {
  // 0.2 s of 3,000 SYNs, then the file ends: nothing could be judged before its end.
  Collect sink;
  Engine engine(Config{}, LinkType::kEthernet, sink, 7);
  burst(engine, kStart, 200 * kNanosPerMilli, 3000);
  EXPECT_TRUE(sink.lines.empty());
  engine.finish();
  const auto events = parsed(sink);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.front()["event"], "started");
  EXPECT_EQ(events.front()["kind"], "spoofed_random");
  EXPECT_EQ(events.front()["stats"]["stale"], 3000);
  EXPECT_EQ(events.back()["event"], "ended");
}

TEST(Engine, AGapOfHoursRaisesTheIncidentBeforeItsHandshakesExpire) {
  Collect sink;
  Engine engine(Config{}, LinkType::kEthernet, sink, 7);
  burst(engine, kStart, 200 * kNanosPerMilli, 3000);
  // The next capture, concatenated: a packet five hours later.
  burst(engine, kStart + TimestampNs{5} * 3600 * kNanosPerSecond, kNanosPerMilli, 1);
  const auto events = parsed(sink);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0]["event"], "started");
  // The 256th SYN came at 17 ms: judged stale 1 s later (no history), held for 0.5 s. Counted
  // once: stale, not failed again when they expired.
  EXPECT_EQ(events[0]["time"], "2024-01-01T00:00:01.517Z");
  EXPECT_EQ(events[0]["stats"]["stale"], 3000);
  EXPECT_EQ(events.back()["event"], "ended");
  EXPECT_EQ(engine.handshakes().counters().expired, 3000u);
}

INSTANTIATE_TEST_SUITE_P(Scenarios, EngineOnCaptures,
                         ::testing::Values("spoofed-flood", "spoofed-flood-synack", "few-sources",
                                           "legit-burst", "syn-scan", "truncated",
                                           "mixed-families"));

}  // namespace
}  // namespace synwatch
