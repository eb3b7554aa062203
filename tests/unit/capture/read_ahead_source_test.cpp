#include "capture/read_ahead_source.hpp"

#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "capture/pcap_file_source.hpp"
#include "capture_files.hpp"

namespace synwatch {
namespace {

namespace fs = std::filesystem;
using test::Collector;
using test::Frame;
using test::Record;

// Frames of many sizes with distinct contents, timestamps and wire lengths.
std::vector<Record> varied_records(std::size_t count, std::size_t largest) {
  std::vector<Record> records;
  std::uint32_t state = 7;
  for (std::size_t i = 0; i < count; ++i) {
    state = state * 1103515245u + 12345u;
    const std::size_t size = 14 + (state >> 8) % (largest - 13);
    Frame data(size);
    for (std::size_t b = 0; b < size; ++b) data[b] = static_cast<std::uint8_t>(i * 31 + b);
    records.push_back({1'700'000'000'000'000'000 + static_cast<TimestampNs>(i) * 1'001,
                       std::move(data), static_cast<std::uint32_t>(size + i % 3)});
  }
  return records;
}

std::unique_ptr<ReadAheadSource> read_ahead(const std::string& path) {
  auto opened = PcapFileSource::open(path);
  EXPECT_TRUE(opened) << opened.error().message;
  if (!opened) return nullptr;
  return std::make_unique<ReadAheadSource>(std::move(*opened));
}

void expect_same_records(const std::vector<Record>& got, const std::vector<Record>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].timestamp, want[i].timestamp) << "frame " << i;
    ASSERT_EQ(got[i].wire_length, want[i].wire_length) << "frame " << i;
    ASSERT_EQ(got[i].data, want[i].data) << "frame " << i;
  }
}

TEST(ReadAheadSource, DeliversExactlyTheFramesOfTheFileInOrderWhateverTheBatchSize) {
  const test::ScratchDir scratch;
  // Several blocks' worth, so that blocks are refilled while others are being delivered.
  const auto records = varied_records(3 * ReadAheadSource::kBlockFrames + 123, 300);
  test::write_pcap(scratch.path("a.pcap"), DLT_EN10MB, records);
  for (const std::size_t batch : {std::size_t{1}, std::size_t{7}, std::size_t{5000}}) {
    SCOPED_TRACE(batch);
    auto source = read_ahead(scratch.path("a.pcap"));
    ASSERT_NE(source, nullptr);
    EXPECT_EQ(source->link_type(), LinkType::kEthernet);
    EXPECT_EQ(source->name(), scratch.path("a.pcap"));
    Collector collector;
    ASSERT_EQ(test::drain(*source, collector, batch), DispatchStatus::kEnd) << source->error();
    expect_same_records(collector.records, records);
    // The end is final.
    const DispatchResult again = source->dispatch(10, collector);
    EXPECT_EQ(again.status, DispatchStatus::kEnd);
    EXPECT_EQ(again.packets, 0u);
  }
}

TEST(ReadAheadSource, NeverDeliversMoreThanAskedFor) {
  const test::ScratchDir scratch;
  const auto records = varied_records(ReadAheadSource::kBlockFrames + 10, 100);
  test::write_pcap(scratch.path("a.pcap"), DLT_EN10MB, records);
  auto source = read_ahead(scratch.path("a.pcap"));
  ASSERT_NE(source, nullptr);
  Collector collector;
  std::size_t total = 0;
  for (;;) {
    const DispatchResult result = source->dispatch(1000, collector);
    EXPECT_LE(result.packets, 1000u);
    total += result.packets;
    EXPECT_EQ(collector.records.size(), total);
    if (result.status != DispatchStatus::kPackets) break;
    EXPECT_EQ(result.packets, 1000u);  // an offline source only falls short at the end
  }
  EXPECT_EQ(total, records.size());
}

TEST(ReadAheadSource, BlocksFillByBytesAsWellAsByFrames) {
  const test::ScratchDir scratch;
  // 60 KB frames: a block's arena holds 17 of them, far below its frame limit.
  const auto records = varied_records(100, 60'000);
  test::write_pcap(scratch.path("big.pcap"), DLT_EN10MB, records);
  auto source = read_ahead(scratch.path("big.pcap"));
  ASSERT_NE(source, nullptr);
  Collector collector;
  ASSERT_EQ(test::drain(*source, collector, 4096), DispatchStatus::kEnd) << source->error();
  expect_same_records(collector.records, records);
}

TEST(ReadAheadSource, EmptyCaptureEndsAtOnce) {
  const test::ScratchDir scratch;
  test::write_pcap(scratch.path("empty.pcap"), DLT_EN10MB, {});
  auto source = read_ahead(scratch.path("empty.pcap"));
  ASSERT_NE(source, nullptr);
  Collector collector;
  const DispatchResult result = source->dispatch(100, collector);
  EXPECT_EQ(result.status, DispatchStatus::kEnd);
  EXPECT_EQ(result.packets, 0u);
}

TEST(ReadAheadSource, CutFileDeliversWhatCameBeforeThenTheWrappedSourcesError) {
  const test::ScratchDir scratch;
  const auto records = varied_records(2 * ReadAheadSource::kBlockFrames + 50, 200);
  test::write_pcap(scratch.path("cut.pcap"), DLT_EN10MB, records);
  fs::resize_file(scratch.path("cut.pcap"), fs::file_size(scratch.path("cut.pcap")) - 10);
  auto source = read_ahead(scratch.path("cut.pcap"));
  ASSERT_NE(source, nullptr);
  Collector collector;
  ASSERT_EQ(test::drain(*source, collector, 999), DispatchStatus::kError);
  ASSERT_EQ(collector.records.size(), records.size() - 1);
  expect_same_records(collector.records, std::vector<Record>(records.begin(), records.end() - 1));
  EXPECT_NE(source->error().find("truncated"), std::string::npos) << source->error();
  EXPECT_NE(source->error().find(scratch.path("cut.pcap")), std::string::npos);
  EXPECT_EQ(source->dispatch(10, collector).status, DispatchStatus::kError);
}

TEST(ReadAheadSource, StopsPromptlyWhenDroppedHalfWayThroughALongFile) {
  const test::ScratchDir scratch;
  // Far more than the blocks hold: the reader is left waiting for a free block.
  const auto records = varied_records(20 * ReadAheadSource::kBlockFrames, 80);
  test::write_pcap(scratch.path("long.pcap"), DLT_EN10MB, records);
  auto source = read_ahead(scratch.path("long.pcap"));
  ASSERT_NE(source, nullptr);
  Collector collector;
  ASSERT_EQ(source->dispatch(10, collector).packets, 10u);
  const auto start = std::chrono::steady_clock::now();
  source.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace synwatch
