// Several shards fed by a symmetric flow hash (as PACKET_FANOUT_HASH does) and merged at every
// step must find the same incidents as one engine fed everything.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "capture/pcap_file_source.hpp"
#include "engine/engine.hpp"
#include "engine/sharded_engine.hpp"

namespace synwatch {
namespace {

struct Collect final : EventSink {
  std::vector<IncidentEvent> events;
  void publish(const IncidentEvent& e) override { events.push_back(e); }
};

// Feeds every TCP segment of the capture to its shard and advances after each.
struct ToShards final : PacketHandler {
  ShardedEngine* engine = nullptr;
  Decoder decoder{LinkType::kEthernet};
  TcpSegment segment;
  void on_packet(const PacketView& packet) noexcept override {
    if (!has_segment(decoder.decode(packet.data, segment))) return;
    segment.timestamp = packet.timestamp;
    engine->shard(ShardedEngine::shard_of(segment, engine->shard_count())).on_segment(segment);
    engine->advance_to(packet.timestamp);
  }
};

std::filesystem::path generate(const std::string& scenario, const std::filesystem::path& dir) {
  auto file = dir / (scenario + ".pcap");
  const std::string command =
      std::string(SYNWATCH_GEN) + " " + scenario + " --out " + file.string() + " >/dev/null";
  EXPECT_EQ(std::system(command.c_str()), 0);
  return file;
}

class ShardedOnCaptures : public ::testing::TestWithParam<std::tuple<const char*, int>> {};

TEST_P(ShardedOnCaptures, FindTheSameIncidentsAsOneEngine) {
  const auto [scenario, shards] = GetParam();
  const auto dir = std::filesystem::temp_directory_path() /
                   ("synwatch-sharded-" + std::to_string(::getpid()) + "-" + scenario);
  std::filesystem::create_directories(dir);
  const auto file = generate(scenario, dir);

  Collect single_events;
  Engine single(Config{}, LinkType::kEthernet, single_events, 7);
  {
    auto source = PcapFileSource::open(file.string());
    ASSERT_TRUE(source.has_value());
    ASSERT_EQ((*source)->link_type(), LinkType::kEthernet);
    while ((*source)->dispatch(1000, single).status == DispatchStatus::kPackets) {
    }
    single.finish();
  }
  Collect sharded_events;
  ShardedEngine sharded(Config{}, static_cast<std::size_t>(shards), sharded_events, 7);
  {
    auto source = PcapFileSource::open(file.string());
    ToShards feed;
    feed.engine = &sharded;
    while ((*source)->dispatch(1000, feed).status == DispatchStatus::kPackets) {
    }
    sharded.finish();
  }
  std::filesystem::remove_all(dir);

  // Every shard got work: the hash spreads flows.
  for (std::size_t i = 0; i < sharded.shard_count(); ++i) {
    EXPECT_GT(sharded.shard(i).counters().tcp_segments, 0u) << "shard " << i;
  }
  EXPECT_EQ(sharded.counters().tcp_segments, single.counters().tcp_segments);
  EXPECT_EQ(sharded.handshake_counters().inserted, single.handshakes().counters().inserted);
  EXPECT_EQ(sharded.handshake_counters().completed, single.handshakes().counters().completed);
  EXPECT_EQ(sharded.handshake_counters().reset, single.handshakes().counters().reset);
  // The sum over shards takes every counter (it once left judged_stale out).
  HandshakeTableStats by_hand;
  for (std::size_t i = 0; i < sharded.shard_count(); ++i) {
    const auto& c = sharded.shard(i).handshakes().counters();
    for (const auto& named : kHandshakeEvents.members) by_hand.*named.member += c.*named.member;
  }
  EXPECT_EQ(by_hand.judged_stale > 0, single.handshakes().counters().judged_stale > 0);
  for (const auto& named : kHandshakeEvents.members) {
    EXPECT_EQ(sharded.handshake_counters().*named.member, by_hand.*named.member) << named.name;
  }

  // Same incidents: type, target and kind in order, at the same times (within the precision of
  // merging after every packet, below).
  const auto& a = single_events.events;
  const auto& b = sharded_events.events;
  std::vector<std::string> a_lifecycle;
  std::vector<std::string> b_lifecycle;
  for (const auto& e : a) {
    if (e.type != EventType::kUpdated) {
      a_lifecycle.push_back(std::string(to_string(e.type)) + " " + e.target.to_string() + " " +
                            std::string(to_string(e.kind)));
    }
  }
  for (const auto& e : b) {
    if (e.type != EventType::kUpdated) {
      b_lifecycle.push_back(std::string(to_string(e.type)) + " " + e.target.to_string() + " " +
                            std::string(to_string(e.kind)));
    }
  }
  EXPECT_EQ(a_lifecycle, b_lifecycle);
  const bool flood = std::string(scenario).find("flood") != std::string::npos ||
                     std::string(scenario) == "few-sources";
  EXPECT_EQ(!a_lifecycle.empty(), flood);
  for (std::size_t i = 0, j = 0; i < a.size() && j < b.size(); ++i, ++j) {
    while (i < a.size() && a[i].type == EventType::kUpdated) ++i;
    while (j < b.size() && b[j].type == EventType::kUpdated) ++j;
    if (i >= a.size() || j >= b.size()) break;
    // One engine starts exactly `for` after the judgement that crossed the threshold; merged, the
    // crossing is seen at the packet after it. It ends on a tick, where the shards have already
    // taken the packets after that tick: the slot of the tick that left the window may be
    // overwritten by then, and the condition clear one tick earlier.
    const DurationNs allowed = a[i].type == EventType::kStarted ? kNanosPerMilli : kNanosPerSecond;
    EXPECT_NEAR(static_cast<double>(b[j].time), static_cast<double>(a[i].time),
                static_cast<double>(allowed))
        << to_string(a[i].type) << ": " << a[i].reason << " | " << b[j].reason;
    if (a[i].type == EventType::kStarted) {
      EXPECT_NEAR(b[j].stats.distinct_sources, a[i].stats.distinct_sources,
                  0.1 * a[i].stats.distinct_sources + 2);
      EXPECT_NEAR(b[j].stats.completion_ratio, a[i].stats.completion_ratio, 0.05);
    }
  }
}

TEST(ShardedEngine, BothDirectionsOfAConnectionGoToOneShard) {
  TcpSegment syn;
  syn.source = *IpAddress::parse("198.18.3.4");
  syn.destination = *IpAddress::parse("198.51.100.1");
  syn.source_port = 40000;
  syn.destination_port = 80;
  TcpSegment synack = syn;
  std::swap(synack.source, synack.destination);
  std::swap(synack.source_port, synack.destination_port);
  std::array<int, 4> per_shard{};
  for (std::uint16_t port = 1000; port < 1400; ++port) {
    syn.source_port = port;
    synack.destination_port = port;
    EXPECT_EQ(ShardedEngine::shard_of(syn, 4), ShardedEngine::shard_of(synack, 4));
    ++per_shard[ShardedEngine::shard_of(syn, 4)];
  }
  for (const int n : per_shard) EXPECT_GT(n, 50);  // 100 each if perfectly even
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ShardedOnCaptures,
                         ::testing::Combine(::testing::Values("spoofed-flood",
                                                              "spoofed-flood-synack", "few-sources",
                                                              "legit-burst", "mixed-families"),
                                            ::testing::Values(1, 2, 3)));

TEST(ShardedEngine, SplitsHandshakeCapacityAndKeepsTheSum) {
  Config config;
  config.flow.capacity = 1000;
  Collect sink;
  ShardedEngine sharded(config, 4, sink);
  EXPECT_EQ(sharded.handshake_capacity(), 1000u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(sharded.shard(i).handshakes().capacity(), 250u);
}

}  // namespace
}  // namespace synwatch
