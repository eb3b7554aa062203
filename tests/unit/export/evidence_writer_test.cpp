// Evidence captures on disk: the SPSC ring, then the writer's files read back with libpcap
// (what tcpdump uses), its caps per incident and in total, and what earlier runs left.
#include "export/evidence_writer.hpp"

#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "../common/error_printer.hpp"
#include "temp_dir.hpp"

namespace synwatch {
namespace {

TEST(SpscRing, RefusesWhenFullAndKeepsOrder) {
  SpscRing<int> ring(3);  // rounded up to 4
  EXPECT_EQ(ring.capacity(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(ring.try_push(i));
  EXPECT_FALSE(ring.try_push(99));
  for (int i = 0; i < 4; ++i) {
    const int* front = ring.front();
    ASSERT_NE(front, nullptr);
    EXPECT_EQ(*front, i);
    ring.release();
  }
  EXPECT_EQ(ring.front(), nullptr);
  EXPECT_TRUE(ring.try_push(5));
}

TEST(SpscRing, TwoThreadsPassEveryRecordInOrder) {
  SpscRing<std::uint64_t> ring(64);
  constexpr std::uint64_t kCount = 200'000;
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < kCount;) {
      if (ring.try_push(i)) ++i;
    }
  });
  std::uint64_t expected = 0;
  while (expected < kCount) {
    if (const std::uint64_t* value = ring.front()) {
      ASSERT_EQ(*value, expected);
      ring.release();
      ++expected;
    }
  }
  producer.join();
  EXPECT_EQ(ring.front(), nullptr);
}

struct ReadBack {
  int dlt = -1;
  int precision = -1;
  std::vector<TimestampNs> times;
  std::vector<std::vector<std::uint8_t>> frames;
  std::vector<std::uint32_t> wire_lengths;
};

ReadBack read_back(const std::filesystem::path& path) {
  ReadBack result;
  char error[PCAP_ERRBUF_SIZE];
  pcap_t* handle =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, error);
  if (handle == nullptr) {
    ADD_FAILURE() << path << ": " << error;
    return result;
  }
  result.dlt = pcap_datalink(handle);
  result.precision = pcap_get_tstamp_precision(handle);
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  while (pcap_next_ex(handle, &header, &data) == 1) {
    result.times.push_back(header->ts.tv_sec * kNanosPerSecond + header->ts.tv_usec);
    result.frames.emplace_back(data, data + header->caplen);
    result.wire_lengths.push_back(header->len);
  }
  pcap_close(handle);
  return result;
}

class EvidenceWriterTest : public ::testing::Test {
 protected:
  static EvidenceFrame frame(std::uint32_t watch, TimestampNs time, std::uint8_t fill,
                             std::uint16_t length = 60, std::uint16_t dlt = 1) {
    EvidenceFrame f{};
    f.time = time;
    f.watch = watch;
    f.wire_length = length + 4u;
    f.length = length;
    f.dlt = dlt;
    f.bytes.fill(fill);
    return f;
  }
  std::unique_ptr<EvidenceWriter> open(const EvidenceConfig& config) {
    auto writer = EvidenceWriter::open(config, dir_.path() / "evidence", {});
    EXPECT_TRUE(writer.has_value()) << writer.error().message;
    (*writer)->attach(ring_);
    (*writer)->start();
    return std::move(*writer);
  }
  void push(const EvidenceFrame& f) { ASSERT_TRUE(ring_.try_push(f)); }

  testing::TempDir dir_;
  EvidenceRing ring_{1024};
};

TEST_F(EvidenceWriterTest, WritesEachIncidentsFramesToItsOwnPcapFile) {
  auto writer = open({});
  writer->begin(1, "aaaa");
  writer->begin(2, "bbbb");
  push(frame(1, 1'700'000'000'123'456'789, 0x11));
  push(frame(2, 1'700'000'000'200'000'000, 0x22, 80));
  push(frame(1, 1'700'000'001'000'000'001, 0x12));
  writer->end(1);
  writer->flush();
  const auto a = read_back(writer->path_of("aaaa"));
  EXPECT_EQ(a.dlt, 1);
  EXPECT_EQ(a.precision, PCAP_TSTAMP_PRECISION_NANO);
  ASSERT_EQ(a.frames.size(), 2u);
  EXPECT_EQ(a.times[0], 1'700'000'000'123'456'789);
  EXPECT_EQ(a.times[1], 1'700'000'001'000'000'001);
  EXPECT_EQ(a.frames[0], std::vector<std::uint8_t>(60, 0x11));
  EXPECT_EQ(a.wire_lengths[0], 64u);
  const auto b = read_back(writer->path_of("bbbb"));
  ASSERT_EQ(b.frames.size(), 1u);
  EXPECT_EQ(b.frames[0].size(), 80u);
  EXPECT_EQ(writer->stats().frames_written, 3u);
  EXPECT_EQ(writer->stats().files, 2u);
  EXPECT_EQ(std::filesystem::status(writer->path_of("aaaa")).permissions() &
                std::filesystem::perms::others_read,
            std::filesystem::perms::none);
}

TEST_F(EvidenceWriterTest, FramesPushedBeforeTheEndAreStillWritten) {
  auto writer = open({});
  writer->begin(7, "late");
  for (int i = 0; i < 500; ++i) push(frame(7, i * kNanosPerMilli, 1));
  writer->end(7);  // queued behind the frames: they go to the file before it closes
  writer->flush();
  EXPECT_EQ(read_back(writer->path_of("late")).frames.size(), 500u);
}

TEST_F(EvidenceWriterTest, KeepsOneIncidentWithinItsCap) {
  EvidenceConfig config;
  config.max_incident_bytes = 4096;
  auto writer = open(config);
  writer->begin(1, "capped");
  for (int i = 0; i < 200; ++i) push(frame(1, i, 1));  // 76 bytes a record on disk
  writer->end(1);
  writer->flush();
  const auto size = std::filesystem::file_size(writer->path_of("capped"));
  EXPECT_LE(size, 4096u);
  EXPECT_GT(size, 4096u - 76u);
  EXPECT_EQ(read_back(writer->path_of("capped")).frames.size(), (size - 24) / 76);
  EXPECT_EQ(writer->stats().dropped_incident_cap, 200u - (size - 24) / 76);
}

TEST_F(EvidenceWriterTest, RemovesTheOldestEndedFilesToStayWithinTheTotal) {
  EvidenceConfig config;
  config.max_incident_bytes = 4096;
  config.max_total_bytes = 10'000;
  // A file an earlier run left, older than anything written now.
  std::filesystem::create_directories(dir_.path() / "evidence");
  std::ofstream(dir_.path() / "evidence" / "earlier.pcap") << std::string(3000, 'x');
  std::filesystem::last_write_time(
      dir_.path() / "evidence" / "earlier.pcap",
      std::filesystem::file_time_type::clock::now() - std::chrono::hours(1));
  auto writer = open(config);
  EXPECT_EQ(writer->stats().bytes_on_disk, 3000u);
  for (std::uint32_t incident = 1; incident <= 4; ++incident) {
    writer->begin(incident, "incident" + std::to_string(incident));
    for (int i = 0; i < 60; ++i) push(frame(incident, i, 1));  // 24 + 60 * 76 > 4096: capped
    writer->end(incident);
    writer->flush();
    std::uintmax_t total = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path() / "evidence")) {
      total += entry.file_size();
    }
    EXPECT_LE(total, 10'000u) << "after incident " << incident;
    EXPECT_EQ(writer->stats().bytes_on_disk, total);
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "evidence" / "earlier.pcap"));
  EXPECT_FALSE(std::filesystem::exists(writer->path_of("incident1")));
  EXPECT_TRUE(std::filesystem::exists(writer->path_of("incident4")));
  EXPECT_TRUE(std::filesystem::exists(writer->path_of("incident3")));
  EXPECT_EQ(writer->stats().files_removed, 3u);  // earlier, incident1, incident2
}

TEST_F(EvidenceWriterTest, AnIncidentCarriedOnAfterARestartAppendsToItsFile) {
  {
    auto writer = open({});
    writer->begin(1, "resumed");
    push(frame(1, 10, 1));
    writer->flush();
    writer->stop();  // the daemon died with the incident open
  }
  auto writer = open({});
  EXPECT_EQ(writer->stats().files, 1u);
  writer->begin(1, "resumed");
  push(frame(1, 20, 2));
  writer->end(1);
  writer->flush();
  const auto back = read_back(writer->path_of("resumed"));
  ASSERT_EQ(back.frames.size(), 2u);
  EXPECT_EQ(back.times[1], 20);
}

TEST_F(EvidenceWriterTest, CountsFramesOfAnotherLinkTypeThanTheFile) {
  auto writer = open({});
  writer->begin(1, "mixed");
  push(frame(1, 1, 1, 60, 1));
  push(frame(1, 2, 1, 60, 276));
  writer->end(1);
  writer->flush();
  EXPECT_EQ(read_back(writer->path_of("mixed")).frames.size(), 1u);
  EXPECT_EQ(writer->stats().dropped_link_mismatch, 1u);
}

TEST_F(EvidenceWriterTest, NamesFilesSafelyWhateverTheIncidentId) {
  auto writer = open({});
  EXPECT_EQ(writer->path_of("../../etc/passwd").filename(), "______etc_passwd.pcap");
  EXPECT_EQ(writer->path_of("../../etc/passwd").parent_path(), writer->directory());
  EXPECT_TRUE(writer->directory().is_absolute());
}

TEST(EvidenceWriter, ReportsADirectoryItCannotCreate) {
  testing::TempDir dir;
  std::ofstream(dir.path() / "file") << "x";
  auto writer = EvidenceWriter::open({}, dir.path() / "file" / "evidence", {});
  ASSERT_FALSE(writer.has_value());
  EXPECT_NE(writer.error().message.find("cannot create evidence directory"), std::string::npos)
      << writer.error().message;
  EXPECT_EQ(writer.error().kind, ErrorKind::kNotFound) << "ENOTDIR: no directory by that path";
}

}  // namespace
}  // namespace synwatch
