// Several capture files read as one: order, overlap, streams, refusals, progress.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "capture/capture_sequence.hpp"
#include "capture/read_ahead_source.hpp"
#include "capture_files.hpp"

namespace synwatch {
namespace {

namespace fs = std::filesystem;
using test::Collector;
using test::drain;
using test::Record;
using test::write_pcap;

constexpr TimestampNs kBase = 1'700'000'000'000'000'000;

// A SYN from a source numbered `n`, at kBase + `at`.
Record syn_at(DurationNs at, std::uint8_t n) {
  test::TcpSpec syn;
  test::Ipv4Spec ip;
  ip.source[3] = n;
  return {kBase + at, test::ethernet(0x0800, test::ipv4(ip, test::tcp_header(syn))), 0};
}

std::vector<Record> syns_at(std::initializer_list<DurationNs> times, std::uint8_t first) {
  std::vector<Record> records;
  for (const DurationNs at : times) {
    records.push_back(syn_at(at, first++));
  }
  return records;
}

std::vector<TimestampNs> timestamps(const Collector& collector) {
  std::vector<TimestampNs> out;
  out.reserve(collector.records.size());
  for (const auto& record : collector.records) out.push_back(record.timestamp - kBase);
  return out;
}

class CaptureSequenceTest : public ::testing::Test {
 protected:
  static std::string contents_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  // Writes `bytes` into the FIFO once a reader opens it (CaptureSequence::open does).
  static std::thread feed_fifo(const std::string& fifo, const std::string& bytes) {
    return std::thread([fifo, &bytes] {
      const int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return;
      EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
      ::close(fd);
    });
  }
  std::string write(const std::string& name, const std::vector<Record>& records,
                    int dlt = DLT_EN10MB) {
    std::string path = scratch_.path(name);
    write_pcap(path, dlt, records);
    return path;
  }
  // Three consecutive pieces of one capture, each 3 packets, one second apart.
  void write_pieces() {
    first_ = write("cap.pcap", syns_at({0, kNanosPerSecond, 2 * kNanosPerSecond}, 1));
    second_ = write("cap.pcap1",
                    syns_at({3 * kNanosPerSecond, 4 * kNanosPerSecond, 5 * kNanosPerSecond}, 4));
    third_ = write("cap.pcap2",
                   syns_at({6 * kNanosPerSecond, 7 * kNanosPerSecond, 8 * kNanosPerSecond}, 7));
  }
  static std::uint64_t size_of(const std::string& path) { return fs::file_size(path); }

  test::ScratchDir scratch_;
  std::string first_, second_, third_;
};

const std::vector<TimestampNs> kAllNine = {0,
                                           kNanosPerSecond,
                                           2 * kNanosPerSecond,
                                           3 * kNanosPerSecond,
                                           4 * kNanosPerSecond,
                                           5 * kNanosPerSecond,
                                           6 * kNanosPerSecond,
                                           7 * kNanosPerSecond,
                                           8 * kNanosPerSecond};

TEST_F(CaptureSequenceTest, PiecesAreReadInTimeOrderWhateverOrderTheyAreNamedIn) {
  write_pieces();
  const std::vector<std::string> paths = {third_, first_, second_};
  for (const std::size_t batch : {std::size_t{1}, std::size_t{2}, std::size_t{4096}}) {
    SCOPED_TRACE(batch);
    auto sequence = CaptureSequence::open(paths);
    ASSERT_TRUE(sequence) << sequence.error().message;
    ASSERT_EQ((*sequence)->files().size(), 3u);
    EXPECT_EQ((*sequence)->files()[0].path, first_);
    EXPECT_EQ((*sequence)->files()[1].path, second_);
    EXPECT_EQ((*sequence)->files()[2].path, third_);
    EXPECT_EQ((*sequence)->files()[1].first_packet, kBase + 3 * kNanosPerSecond);
    EXPECT_EQ((*sequence)->name(), first_ + ", " + second_ + ", " + third_);
    Collector collector;
    EXPECT_EQ(drain(**sequence, collector, batch), DispatchStatus::kEnd);
    EXPECT_EQ(timestamps(collector), kAllNine);
    // Frames intact across the file boundaries: source addresses 1..9 in order.
    for (std::size_t i = 0; i < collector.records.size(); ++i) {
      EXPECT_EQ(collector.records[i].data[14 + 15], i + 1) << i;
    }
    const ReadProgress done = (*sequence)->progress();
    EXPECT_EQ(done.total_bytes, size_of(first_) + size_of(second_) + size_of(third_));
    EXPECT_EQ(done.bytes, done.total_bytes);
    EXPECT_EQ((*sequence)->dispatch(10, collector).status, DispatchStatus::kEnd);
  }
}

TEST_F(CaptureSequenceTest, ThroughTheReadAheadThreadTheFramesAreTheSame) {
  write_pieces();
  const std::vector<std::string> paths = {second_, third_, first_};
  auto sequence = CaptureSequence::open(paths);
  ASSERT_TRUE(sequence) << sequence.error().message;
  const std::uint64_t total = (*sequence)->progress().total_bytes;
  ReadAheadSource ahead(std::move(*sequence));
  Collector collector;
  EXPECT_EQ(drain(ahead, collector), DispatchStatus::kEnd);
  EXPECT_EQ(timestamps(collector), kAllNine);
  EXPECT_EQ(ahead.progress().bytes, total);
  EXPECT_EQ(ahead.progress().total_bytes, total);
}

TEST_F(CaptureSequenceTest, ReadIntoBlocksGivesTheSameFramesAsDispatch) {
  write_pieces();
  const std::vector<std::string> paths = {third_, first_, second_};
  for (const std::size_t block_frames : {1u, 2u, 4u, 64u}) {
    for (const std::size_t per_call : {1u, 3u, 100u}) {
      auto sequence = CaptureSequence::open(paths);
      ASSERT_TRUE(sequence) << sequence.error().message;
      Collector collector;
      EXPECT_EQ(test::drain_blocks(**sequence, collector, block_frames, per_call),
                DispatchStatus::kEnd);
      EXPECT_EQ(timestamps(collector), kAllNine) << block_frames << " " << per_call;
      for (std::size_t i = 0; i < collector.records.size(); ++i) {
        EXPECT_EQ(collector.records[i].data[14 + 15], i + 1) << i;
      }
      EXPECT_EQ((*sequence)->progress().bytes, (*sequence)->progress().total_bytes);
    }
  }
}

TEST_F(CaptureSequenceTest, ReadIntoStopsAtAnOverlapAsDispatchDoes) {
  const std::string a =
      write("a.pcap", syns_at({0, kNanosPerSecond, 5 * kNanosPerSecond, 6 * kNanosPerSecond}, 1));
  const std::string b = write("b.pcap", syns_at({2 * kNanosPerSecond, 3 * kNanosPerSecond}, 10));
  const std::vector<std::string> paths = {b, a};
  auto sequence = CaptureSequence::open(paths);
  ASSERT_TRUE(sequence) << sequence.error().message;
  FrameBlock block(64, 2 * FrameBlock::kMaxFrameBytes);
  const DispatchResult result = (*sequence)->read_into(block, 100);
  EXPECT_EQ(result.status, DispatchStatus::kError);
  EXPECT_EQ(result.packets, 2u);
  ASSERT_EQ(block.size(), 2u);  // the late frame read into the block was taken back out
  EXPECT_EQ(block.frames()[1].timestamp - block.frames()[0].timestamp, kNanosPerSecond);
  EXPECT_NE((*sequence)->error().find("'" + a + "' and '" + b + "' overlap in time"),
            std::string::npos)
      << (*sequence)->error();
  EXPECT_EQ((*sequence)->read_into(block, 10).status, DispatchStatus::kError);
  EXPECT_EQ(block.size(), 2u);
}

TEST_F(CaptureSequenceTest, OneFileIsReadAsItIsWithItsSize) {
  const std::string only = write("only.pcap", syns_at({5, 3, 4}, 1));  // out of order: kept
  const std::vector<std::string> paths = {only};
  auto sequence = CaptureSequence::open(paths);
  ASSERT_TRUE(sequence) << sequence.error().message;
  EXPECT_EQ((*sequence)->name(), only);
  EXPECT_FALSE((*sequence)->files()[0].first_packet.has_value());  // not looked at
  EXPECT_EQ((*sequence)->progress().total_bytes, size_of(only));
  EXPECT_EQ((*sequence)->progress().bytes, 0u);
  Collector collector;
  EXPECT_EQ(drain(**sequence, collector), DispatchStatus::kEnd);
  EXPECT_EQ(timestamps(collector), (std::vector<TimestampNs>{5, 3, 4}));
  EXPECT_EQ((*sequence)->progress().bytes, size_of(only));
}

TEST_F(CaptureSequenceTest, OverlappingFilesStopAtTheFirstPacketPastTheNextFilesStart) {
  const std::string a =
      write("a.pcap", syns_at({0, kNanosPerSecond, 5 * kNanosPerSecond, 6 * kNanosPerSecond}, 1));
  const std::string b = write("b.pcap", syns_at({2 * kNanosPerSecond, 3 * kNanosPerSecond}, 10));
  const std::vector<std::string> paths = {b, a};
  auto sequence = CaptureSequence::open(paths);
  ASSERT_TRUE(sequence) << sequence.error().message;
  Collector collector;
  EXPECT_EQ(drain(**sequence, collector), DispatchStatus::kError);
  // What came before the overlap was delivered, nothing after it.
  EXPECT_EQ(timestamps(collector), (std::vector<TimestampNs>{0, kNanosPerSecond}));
  const std::string error = (*sequence)->error();
  EXPECT_NE(error.find("'" + a + "' and '" + b + "' overlap in time"), std::string::npos) << error;
  EXPECT_NE(error.find("2023-11-14T22:13:25.000Z"), std::string::npos) << error;  // a's 5 s
  EXPECT_NE(error.find("mergecap"), std::string::npos) << error;
  EXPECT_EQ((*sequence)->dispatch(10, collector).status, DispatchStatus::kError);
}

TEST_F(CaptureSequenceTest, ReorderingWithinTheToleranceIsNotAnOverlap) {
  const DurationNs ms = kNanosPerMilli;
  const std::string a = write("a.pcap", syns_at({0, 1000 * ms, 1090 * ms}, 1));
  const std::string b = write("b.pcap", syns_at({1000 * ms, 1100 * ms}, 10));
  const std::vector<std::string> paths = {a, b};
  auto sequence = CaptureSequence::open(paths);
  ASSERT_TRUE(sequence) << sequence.error().message;
  Collector collector;
  EXPECT_EQ(drain(**sequence, collector), DispatchStatus::kEnd) << (*sequence)->error();
  EXPECT_EQ(timestamps(collector),
            (std::vector<TimestampNs>{0, 1000 * ms, 1090 * ms, 1000 * ms, 1100 * ms}));
  // One nanosecond beyond the tolerance is an overlap.
  const std::string c = write("c.pcap", syns_at({0, 1100 * ms + 1}, 1));
  const std::vector<std::string> overlapping = {c, b};
  auto refused = CaptureSequence::open(overlapping);
  ASSERT_TRUE(refused) << refused.error().message;
  Collector partial;
  EXPECT_EQ(drain(**refused, partial), DispatchStatus::kError);
}

TEST_F(CaptureSequenceTest, FilesWithoutPacketsComeFirstAndAddNothing) {
  write_pieces();
  const std::string empty = write("empty.pcap", {});
  const std::vector<std::string> paths = {second_, empty, first_, third_};
  auto sequence = CaptureSequence::open(paths);
  ASSERT_TRUE(sequence) << sequence.error().message;
  EXPECT_EQ((*sequence)->files()[0].path, empty);
  EXPECT_FALSE((*sequence)->files()[0].first_packet.has_value());
  Collector collector;
  EXPECT_EQ(drain(**sequence, collector), DispatchStatus::kEnd);
  EXPECT_EQ(timestamps(collector), kAllNine);
}

TEST_F(CaptureSequenceTest, GzipPiecesAndAFifoAmongThem) {
  write_pieces();
  test::gzip_file(second_, scratch_.path("cap.pcap1.gz"));
  const std::string fifo = scratch_.path("third.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string bytes = contents_of(third_);
  std::thread writer = feed_fifo(fifo, bytes);
  const std::vector<std::string> paths = {fifo, scratch_.path("cap.pcap1.gz"), first_};
  auto sequence = CaptureSequence::open(paths);
  ASSERT_TRUE(sequence) << sequence.error().message;
  EXPECT_EQ((*sequence)->files()[2].path, fifo);
  EXPECT_EQ((*sequence)->files()[2].size_bytes, 0u);
  EXPECT_EQ((*sequence)->progress().total_bytes, 0u);  // a stream's size is unknown
  Collector collector;
  EXPECT_EQ(drain(**sequence, collector), DispatchStatus::kEnd) << (*sequence)->error();
  writer.join();
  EXPECT_EQ(timestamps(collector), kAllNine);
  EXPECT_GE((*sequence)->progress().bytes, bytes.size());
}

TEST_F(CaptureSequenceTest, AFifosFirstFrameKeptAtOpenComesFirstThroughReadInto) {
  write_pieces();
  const std::string fifo = scratch_.path("second.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string bytes = contents_of(second_);
  std::thread writer = feed_fifo(fifo, bytes);
  const std::vector<std::string> paths = {third_, fifo, first_};
  auto sequence = CaptureSequence::open(paths);
  ASSERT_TRUE(sequence) << sequence.error().message;
  ReadAheadSource ahead(std::move(*sequence));
  Collector collector;
  EXPECT_EQ(drain(ahead, collector), DispatchStatus::kEnd) << ahead.error();
  writer.join();
  EXPECT_EQ(timestamps(collector), kAllNine);
}

TEST_F(CaptureSequenceTest, RefusesWhatCannotBePiecesOfOneCapture) {
  write_pieces();
  const std::string raw =
      write("raw.pcap", {{kBase, test::ipv4({}, test::tcp_header({})), 0}}, DLT_RAW);
  std::vector<std::string> paths = {first_, raw};
  auto mixed = CaptureSequence::open(paths);
  ASSERT_FALSE(mixed);
  EXPECT_EQ(mixed.error().problem, SequenceProblem::kNotOneCapture);
  EXPECT_NE(mixed.error().message.find("different link types"), std::string::npos)
      << mixed.error().message;

  paths = {first_, second_, first_};
  auto twice = CaptureSequence::open(paths);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().problem, SequenceProblem::kUsage);
  EXPECT_NE(twice.error().message.find("same file"), std::string::npos) << twice.error().message;

  const std::string link = scratch_.path("link.pcap");
  fs::create_symlink(first_, link);
  paths = {link, first_};
  auto aliased = CaptureSequence::open(paths);
  ASSERT_FALSE(aliased);
  EXPECT_EQ(aliased.error().problem, SequenceProblem::kUsage);

  paths = {"-", first_, "-"};
  auto stdin_twice = CaptureSequence::open(paths);
  ASSERT_FALSE(stdin_twice);
  EXPECT_EQ(stdin_twice.error().problem, SequenceProblem::kUsage);
  EXPECT_NE(stdin_twice.error().message.find("standard input"), std::string::npos);

  paths = {first_, scratch_.path("missing.pcap")};
  auto missing = CaptureSequence::open(paths);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().problem, SequenceProblem::kCannotOpen);
  EXPECT_NE(missing.error().message.find("missing.pcap"), std::string::npos);

  // A file cut inside its first record is damaged, not merely empty.
  const std::string cut = scratch_.path("cut.pcap");
  fs::copy_file(second_, cut);
  fs::resize_file(cut, 24 + 16 + 10);
  paths = {first_, cut};
  auto damaged = CaptureSequence::open(paths);
  ASSERT_FALSE(damaged);
  EXPECT_EQ(damaged.error().problem, SequenceProblem::kNotOneCapture);
}

TEST_F(CaptureSequenceTest, AFileRemovedAfterOpenIsAnErrorWhenItsTurnComes) {
  write_pieces();
  const std::vector<std::string> paths = {first_, second_};
  auto sequence = CaptureSequence::open(paths);
  ASSERT_TRUE(sequence) << sequence.error().message;
  fs::remove(second_);
  Collector collector;
  EXPECT_EQ(drain(**sequence, collector), DispatchStatus::kError);
  EXPECT_EQ(collector.records.size(), 3u);
  EXPECT_NE((*sequence)->error().find("cap.pcap1"), std::string::npos) << (*sequence)->error();
}

}  // namespace
}  // namespace synwatch
