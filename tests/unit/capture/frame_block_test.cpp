// FrameBlock, and sources lending frames through read_into(): frames copied once into a block the
// consumer owns, valid until it clears the block.

#include "capture/frame_block.hpp"

#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <numeric>
#include <string>
#include <vector>

#include "capture/pcap_file_source.hpp"
#include "capture_files.hpp"

namespace synwatch {
namespace {

using test::Collector;
using test::Frame;
using test::Record;

Frame frame_of(std::size_t size, std::uint8_t seed) {
  Frame data(size);
  std::iota(data.begin(), data.end(), seed);
  return data;
}

PacketView view_of(const Frame& data, TimestampNs timestamp) {
  return {std::span<const std::uint8_t>(data), static_cast<std::uint32_t>(data.size() + 4),
          timestamp};
}

std::vector<Record> records_of(std::size_t count, std::size_t size) {
  std::vector<Record> records;
  for (std::size_t i = 0; i < count; ++i) {
    records.push_back({1'700'000'000'000'000'000 + static_cast<TimestampNs>(i) * 1'000,
                       frame_of(size, static_cast<std::uint8_t>(i)),
                       static_cast<std::uint32_t>(size + 2)});
  }
  return records;
}

void expect_frame(const PacketView& got, const Record& want) {
  EXPECT_EQ(got.timestamp, want.timestamp);
  EXPECT_EQ(got.wire_length, want.wire_length);
  EXPECT_EQ(Frame(got.data.begin(), got.data.end()), want.data);
}

TEST(FrameBlock, HoldsCopiesThatOutliveTheirSource) {
  FrameBlock block(4, FrameBlock::kMaxFrameBytes);
  EXPECT_TRUE(block.empty());
  {
    const Frame first = frame_of(60, 1);
    const Frame second = frame_of(1500, 2);
    block.append(view_of(first, 10));
    block.append(view_of(second, 20));
  }  // the originals are gone: the block has its own bytes
  ASSERT_EQ(block.size(), 2u);
  EXPECT_EQ(Frame(block.frames()[0].data.begin(), block.frames()[0].data.end()), frame_of(60, 1));
  EXPECT_EQ(block.frames()[1].data.size(), 1500u);
  EXPECT_EQ(block.frames()[1].data[0], 2);
  EXPECT_EQ(block.frames()[1].wire_length, 1504u);
  EXPECT_EQ(block.frames()[1].timestamp, 20);
  EXPECT_EQ(block.used_bytes(), 1560u);
}

TEST(FrameBlock, IsFullAtItsFrameLimitOrWhenALargestFrameMightNotFit) {
  FrameBlock by_frames(3, 4 * FrameBlock::kMaxFrameBytes);
  const Frame small = frame_of(60, 0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(by_frames.full());
    by_frames.append(view_of(small, i));
  }
  EXPECT_TRUE(by_frames.full());

  // Bytes: full once fewer than kMaxFrameBytes remain, whatever the next frame's size.
  FrameBlock by_bytes(1000, FrameBlock::kMaxFrameBytes + 1000);
  const Frame big = frame_of(600, 0);
  by_bytes.append(view_of(big, 0));
  EXPECT_FALSE(by_bytes.full());  // 400 bytes of headroom spent, 400 + kMaxFrameBytes left
  by_bytes.append(view_of(big, 1));
  EXPECT_TRUE(by_bytes.full());
  EXPECT_EQ(by_bytes.size(), 2u);
}

TEST(FrameBlock, AFrameLongerThanTheLargestIsCutWithItsWireLengthKept) {
  FrameBlock block(2, 0);  // raised to kMaxFrameBytes: an empty block takes any frame
  const Frame huge = frame_of(FrameBlock::kMaxFrameBytes + 100, 7);
  ASSERT_FALSE(block.full());
  block.append(view_of(huge, 5));
  ASSERT_EQ(block.size(), 1u);
  EXPECT_EQ(block.frames()[0].data.size(), FrameBlock::kMaxFrameBytes);
  EXPECT_EQ(block.frames()[0].wire_length, FrameBlock::kMaxFrameBytes + 104);
  EXPECT_EQ(block.frames()[0].data.back(), huge[FrameBlock::kMaxFrameBytes - 1]);
}

TEST(FrameBlock, TruncateGivesBackTheBytesOfTheFramesItDrops) {
  FrameBlock block(8, FrameBlock::kMaxFrameBytes);
  for (std::uint8_t i = 0; i < 5; ++i) block.append(view_of(frame_of(100, i), i));
  block.truncate(2);
  EXPECT_EQ(block.size(), 2u);
  EXPECT_EQ(block.used_bytes(), 200u);
  block.append(view_of(frame_of(10, 9), 9));
  EXPECT_EQ(block.frames()[2].data[0], 9);
  EXPECT_EQ(block.frames()[1].data[0], 1);  // untouched by the append after the cut
  block.truncate(7);                        // beyond the size: nothing changes
  EXPECT_EQ(block.size(), 3u);
  block.clear();
  EXPECT_TRUE(block.empty());
  EXPECT_EQ(block.used_bytes(), 0u);
}

TEST(PcapFileSourceReadInto, LendsFramesThatStayValidWhileTheSourceReadsOn) {
  const test::ScratchDir scratch;
  const auto records = records_of(50, 90);
  test::write_pcap(scratch.path("a.pcap"), DLT_EN10MB, records);
  auto source = PcapFileSource::open(scratch.path("a.pcap"));
  ASSERT_TRUE(source) << source.error().message;
  FrameBlock first(20, 2 * FrameBlock::kMaxFrameBytes);
  FrameBlock second(100, 2 * FrameBlock::kMaxFrameBytes);
  const DispatchResult filled = (*source)->read_into(first, 1000);
  EXPECT_EQ(filled.status, DispatchStatus::kPackets);
  EXPECT_EQ(filled.packets, 20u);  // stopped by the full block, not by max_packets
  EXPECT_TRUE(first.full());
  // libpcap reuses its buffer for every frame: the first block must not see the later reads.
  const DispatchResult rest = (*source)->read_into(second, 1000);
  EXPECT_EQ(rest.status, DispatchStatus::kEnd);
  EXPECT_EQ(rest.packets, 30u);
  for (std::size_t i = 0; i < 20; ++i) expect_frame(first.frames()[i], records[i]);
  for (std::size_t i = 0; i < 30; ++i) expect_frame(second.frames()[i], records[20 + i]);
  EXPECT_EQ((*source)->read_into(second, 10).status, DispatchStatus::kEnd);  // final
  EXPECT_EQ((*source)->progress().bytes, std::filesystem::file_size(scratch.path("a.pcap")));
}

TEST(PcapFileSourceReadInto, HonoursMaxPacketsAndReportsACutFileAfterItsGoodFrames) {
  const test::ScratchDir scratch;
  const auto records = records_of(10, 200);
  test::write_pcap(scratch.path("cut.pcap"), DLT_EN10MB, records);
  std::filesystem::resize_file(scratch.path("cut.pcap"),
                               std::filesystem::file_size(scratch.path("cut.pcap")) - 10);
  auto source = PcapFileSource::open(scratch.path("cut.pcap"));
  ASSERT_TRUE(source) << source.error().message;
  FrameBlock block(64, 2 * FrameBlock::kMaxFrameBytes);
  EXPECT_EQ((*source)->read_into(block, 4).packets, 4u);
  const DispatchResult rest = (*source)->read_into(block, 100);
  EXPECT_EQ(rest.status, DispatchStatus::kError);
  EXPECT_EQ(rest.packets, 5u);
  ASSERT_EQ(block.size(), 9u);
  for (std::size_t i = 0; i < 9; ++i) expect_frame(block.frames()[i], records[i]);
  EXPECT_NE((*source)->error().find("truncated"), std::string::npos) << (*source)->error();
}

TEST(PacketSourceReadInto, TheDefaultThroughDispatchGivesTheSameFrames) {
  const test::ScratchDir scratch;
  const auto records = records_of(30, 70);
  test::write_pcap(scratch.path("a.pcap"), DLT_EN10MB, records);
  auto source = PcapFileSource::open(scratch.path("a.pcap"));
  ASSERT_TRUE(source) << source.error().message;
  FrameBlock block(25, 2 * FrameBlock::kMaxFrameBytes);
  PacketSource& generic = **source;
  const DispatchResult first = generic.PacketSource::read_into(block, 100);
  EXPECT_EQ(first.status, DispatchStatus::kPackets);
  EXPECT_EQ(first.packets, 25u);
  for (std::size_t i = 0; i < 25; ++i) expect_frame(block.frames()[i], records[i]);
  block.clear();
  const DispatchResult rest = generic.PacketSource::read_into(block, 100);
  EXPECT_EQ(rest.packets, 5u);
  EXPECT_EQ(rest.status, DispatchStatus::kEnd);
  EXPECT_EQ(generic.PacketSource::read_into(block, 100).packets, 0u);
  for (std::size_t i = 0; i < 5; ++i) expect_frame(block.frames()[i], records[25 + i]);
}

}  // namespace
}  // namespace synwatch
