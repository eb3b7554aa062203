// The engine over real generated captures: batched and per-frame delivery must agree exactly.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "capture/pcap_file_source.hpp"
#include "engine/engine.hpp"
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
  EngineCounters counters;
  HandshakeTableCounters flows;
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

INSTANTIATE_TEST_SUITE_P(Scenarios, EngineOnCaptures,
                         ::testing::Values("spoofed-flood", "spoofed-flood-synack", "few-sources",
                                           "legit-burst", "syn-scan", "truncated",
                                           "mixed-families"));

}  // namespace
}  // namespace synwatch
