// Evidence captures on the packet path: the tap's sampling and bounds, then the recorder in an
// Engine over generated captures, its files read back and every frame decoded again.
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include "../decode/frame_builder.hpp"
#include "../export/temp_dir.hpp"
#include "capture/pcap_file_source.hpp"
#include "engine/engine.hpp"
#include "engine/evidence_recorder.hpp"

namespace synwatch {
namespace {

const Endpoint kTarget{*IpAddress::parse("198.51.100.7"), 80};

test::Frame syn_frame(std::uint16_t port, std::uint8_t flags = 0x02,
                      std::array<std::uint8_t, 4> destination = {198, 51, 100, 7}) {
  test::TcpSpec tcp;
  tcp.destination_port = port;
  tcp.flags = flags;
  test::Ipv4Spec ip;
  ip.source = {198, 18, 0, 9};
  ip.destination = destination;
  return test::ethernet(0x0800, test::ipv4(ip, test::tcp_header(tcp)));
}

// Offers one frame at `time` as a shard would: decoded first.
void offer(EvidenceTap& tap, const test::Frame& frame, TimestampNs time) {
  Decoder decoder(LinkType::kEthernet);
  TcpSegment segment;
  ASSERT_EQ(decoder.decode(frame, segment), DecodeResult::kTcp);
  segment.timestamp = time;
  const PacketView packet{frame, static_cast<std::uint32_t>(frame.size()), time};
  tap.offer(packet, segment, 1);
}

std::size_t drain(EvidenceTap& tap) {
  std::size_t frames = 0;
  while (tap.ring().front() != nullptr) {
    tap.ring().release();
    ++frames;
  }
  return frames;
}

TEST(EvidenceTap, TakesTheFirstPacketsThenASamplePerSecond) {
  EvidenceTap tap(5, 3, 1024, EvidenceTap::WhenFull::kDrop);
  ASSERT_TRUE(tap.watch(1, kTarget, false));
  for (int i = 0; i < 20; ++i) offer(tap, syn_frame(80), i * kNanosPerMilli);
  EXPECT_EQ(drain(tap), 5u + 3u);  // the first five, then three of second 0
  for (int i = 0; i < 20; ++i) offer(tap, syn_frame(80), kNanosPerSecond + i * kNanosPerMilli);
  EXPECT_EQ(drain(tap), 3u);
  for (int i = 0; i < 2; ++i) offer(tap, syn_frame(80), 5 * kNanosPerSecond + i);
  EXPECT_EQ(drain(tap), 2u);
  EXPECT_EQ(tap.counters().copied, 13u);
}

TEST(EvidenceTap, KeepsOnlySynsToTheTarget) {
  EvidenceTap tap(100, 100, 1024, EvidenceTap::WhenFull::kDrop);
  ASSERT_TRUE(tap.watch(1, kTarget, false));
  offer(tap, syn_frame(81), 0);                           // another port
  offer(tap, syn_frame(80, 0x12), 0);                     // SYN-ACK
  offer(tap, syn_frame(80, 0x10), 0);                     // ACK
  offer(tap, syn_frame(80, 0x02, {198, 51, 100, 8}), 0);  // another address
  EXPECT_EQ(drain(tap), 0u);
  offer(tap, syn_frame(80), 0);
  const EvidenceFrame* frame = tap.ring().front();
  ASSERT_NE(frame, nullptr);
  EXPECT_EQ(frame->watch, 1u);
  EXPECT_EQ(frame->dlt, 1);
  EXPECT_EQ(frame->length, syn_frame(80).size());
  EXPECT_TRUE(std::equal(frame->bytes.begin(), frame->bytes.begin() + frame->length,
                         syn_frame(80).begin()));
}

TEST(EvidenceTap, AHostTargetTakesEveryPortAndUnwatchStops) {
  EvidenceTap tap(100, 100, 1024, EvidenceTap::WhenFull::kDrop);
  ASSERT_TRUE(tap.watch(4, {kTarget.address, 0}, true));
  for (std::uint16_t port = 1; port <= 10; ++port) offer(tap, syn_frame(port), 0);
  EXPECT_EQ(drain(tap), 10u);
  tap.unwatch(4);
  EXPECT_FALSE(tap.watching());
  offer(tap, syn_frame(80), 0);
  EXPECT_EQ(drain(tap), 0u);
}

TEST(EvidenceTap, AFullRingDropsAndCountsLive) {
  EvidenceTap tap(100, 100, 4, EvidenceTap::WhenFull::kDrop);
  ASSERT_TRUE(tap.watch(1, kTarget, false));
  for (int i = 0; i < 10; ++i) offer(tap, syn_frame(80), i);
  EXPECT_EQ(tap.counters().copied, 4u);
  EXPECT_EQ(tap.counters().ring_full, 6u);
  EXPECT_EQ(drain(tap), 4u);
}

TEST(EvidenceTap, WatchesABoundedNumberOfTargets) {
  EvidenceTap tap(1, 1, 16, EvidenceTap::WhenFull::kDrop);
  for (std::uint32_t i = 0; i < EvidenceTap::kMaxWatched; ++i) {
    EXPECT_TRUE(tap.watch(i + 1, {kTarget.address, static_cast<std::uint16_t>(i + 1)}, false));
  }
  EXPECT_FALSE(tap.watch(99, kTarget, false));
  EXPECT_EQ(tap.counters().watches_refused, 1u);
}

struct Collect final : EventSink {
  std::vector<IncidentEvent> events;
  void publish(const IncidentEvent& e) override { events.push_back(e); }
};

struct Recorded {
  std::vector<IncidentEvent> events;
  std::filesystem::path file;
  std::vector<TcpSegment> segments;  // every frame of the file, decoded again
  std::string bytes;
  EvidenceStats stats;
};

Recorded record(const std::filesystem::path& capture, const std::filesystem::path& evidence_dir,
                const EvidenceConfig& config) {
  Recorded result;
  auto source = PcapFileSource::open(capture.string());
  EXPECT_TRUE(source.has_value());
  auto writer = EvidenceWriter::open(config, evidence_dir, {});
  EXPECT_TRUE(writer.has_value());
  Collect sink;
  EvidenceRecorder recorder(config, std::move(*writer), sink, 1, EvidenceTap::WhenFull::kWait);
  Engine engine(Config{}, (*source)->link_type(), recorder, 7);
  recorder.attach(0, engine.shard());
  recorder.writer().start();
  while ((*source)->dispatch(1000, engine).status == DispatchStatus::kPackets) {
  }
  engine.finish();
  recorder.writer().stop();
  result.events = sink.events;
  result.stats = recorder.writer().stats();
  if (result.events.empty()) return result;
  result.file = result.events.front().evidence_path;
  char error[PCAP_ERRBUF_SIZE];
  pcap_t* handle = pcap_open_offline(result.file.c_str(), error);
  EXPECT_NE(handle, nullptr) << error;
  if (handle == nullptr) return result;
  Decoder decoder(*link_type_from_dlt(pcap_datalink(handle)));
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  while (pcap_next_ex(handle, &header, &data) == 1) {
    TcpSegment segment;
    EXPECT_EQ(decoder.decode({data, header->caplen}, segment), DecodeResult::kTcp);
    result.segments.push_back(segment);
  }
  pcap_close(handle);
  std::ifstream in(result.file, std::ios::binary);
  result.bytes.assign(std::istreambuf_iterator<char>(in), {});
  return result;
}

std::filesystem::path generate(const std::filesystem::path& dir, const std::string& arguments) {
  auto file = dir / "capture.pcap";
  const std::string command =
      std::string(SYNWATCH_GEN) + " " + arguments + " --out " + file.string() + " >/dev/null";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  return file;
}

TEST(EvidenceRecorder, RecordsTheFloodsSynsToItsTargetFromTheStartToTheEnd) {
  testing::TempDir dir;
  const auto capture = generate(dir.path(), "flood-beside-legit --duration 30");
  EvidenceConfig config;
  config.first_packets = 500;
  config.per_second = 20;
  const Recorded run = record(capture, dir.path() / "evidence", config);
  ASSERT_GE(run.events.size(), 2u);
  for (const auto& event : run.events) EXPECT_EQ(event.evidence_path, run.file.string());
  const IncidentEvent& started = run.events.front();
  const IncidentEvent& ended = run.events.back();
  ASSERT_EQ(ended.type, EventType::kEnded);
  ASSERT_FALSE(run.segments.empty());
  for (const auto& segment : run.segments) {
    ASSERT_TRUE(segment.is_syn());
    ASSERT_EQ(segment.destination, started.target.address);
    ASSERT_EQ(segment.destination_port, started.target.port);
  }
  // The first 500 after the start, then 20 for each second the incident went on (the flood's
  // 30 s and its cooldown, without the flood's SYNs the seconds of the cooldown have fewer).
  const double seconds = to_seconds(*ended.ended_at - started.time);
  EXPECT_GT(run.segments.size(), 500u + 20u * static_cast<std::size_t>(30 - 5));
  EXPECT_LE(run.segments.size(), 500u + 20u * static_cast<std::size_t>(seconds + 2));
  EXPECT_EQ(run.stats.frames_written, run.segments.size());

  // A replay gives the same evidence, byte for byte.
  const Recorded again = record(capture, dir.path() / "again", config);
  EXPECT_EQ(again.bytes, run.bytes);
}

TEST(EvidenceRecorder, AFloodOnRandomPortsIsRecordedOnEveryPort) {
  testing::TempDir dir;
  const auto capture = generate(dir.path(), "random-ports --count 40000");
  const Recorded run = record(capture, dir.path() / "evidence", {});
  ASSERT_FALSE(run.events.empty());
  EXPECT_TRUE(run.events.front().host_scope);
  std::set<std::uint16_t> ports;
  for (const auto& segment : run.segments) {
    ASSERT_TRUE(segment.is_syn());
    ASSERT_EQ(segment.destination, run.events.front().target.address);
    ports.insert(segment.destination_port);
  }
  EXPECT_GT(ports.size(), 500u);
}

TEST(EvidenceRecorder, GoesAwayWithItsWriterStillRunning) {
  // A live daemon stopping destroys the recorder without stopping the writer first; the writer's
  // thread must not drain the taps' rings after they are freed (ASan caught it in CI).
  testing::TempDir dir;
  auto writer = EvidenceWriter::open({}, dir.path(), {});
  ASSERT_TRUE(writer.has_value());
  Collect sink;
  auto recorder = std::make_unique<EvidenceRecorder>(EvidenceConfig{}, std::move(*writer), sink, 2,
                                                     EvidenceTap::WhenFull::kDrop);
  recorder->writer().start();
  IncidentEvent started;
  started.incident_id = "abc";
  started.target = kTarget;
  recorder->publish(started);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the writer polls the rings now
  recorder.reset();
  EXPECT_EQ(sink.events.size(), 1u);
}

TEST(EvidenceRecorder, QuietTrafficRecordsNothing) {
  testing::TempDir dir;
  const auto capture = generate(dir.path(), "slow-legit --duration 5");
  const Recorded run = record(capture, dir.path() / "evidence", {});
  EXPECT_TRUE(run.events.empty());
  EXPECT_EQ(run.stats.files, 0u);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "evidence"));
}

}  // namespace
}  // namespace synwatch
