#include <gtest/gtest.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "capture_files.hpp"
#include "capture/pcap_file_source.hpp"
#include "decode/decoder.hpp"

namespace synwatch {
namespace {

namespace fs = std::filesystem;
using test::Collector;
using test::drain;
using test::Frame;
using test::gzip_file;
using test::Record;
using test::write_pcap;

// The frames a source delivered are the written records, with their timestamps, in order.
void expect_same_frames(const Collector& collector, const std::vector<Record>& records) {
  ASSERT_EQ(collector.records.size(), records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(collector.records[i].timestamp, records[i].timestamp) << i;
    EXPECT_EQ(collector.records[i].data, records[i].data) << i;
  }
}

class PcapFileSourceTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return scratch_.path(name); }

  static std::vector<Record> sample_records() {
    test::TcpSpec syn;
    test::TcpSpec syn_ack;
    syn_ack.flags = 0x12;
    syn_ack.ack = syn.seq + 1;
    return {
        {1'700'000'000'123'456'789, test::ethernet(0x0800, test::ipv4({}, test::tcp_header(syn))),
         0},
        {1'700'000'000'123'457'001,
         test::ethernet(0x0800, test::ipv4({}, test::tcp_header(syn_ack))), 1514},
        {1'700'000'001'000'000'000, test::ethernet(0x86dd, test::ipv6({}, test::tcp_header(syn))),
         0},
    };
  }

  test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.dir();
};

TEST_F(PcapFileSourceTest, ReadsNanosecondPcapExactly) {
  const auto records = sample_records();
  write_pcap(path("a.pcap"), DLT_EN10MB, records);
  auto source = PcapFileSource::open(path("a.pcap"));
  ASSERT_TRUE(source) << source.error().message;
  EXPECT_EQ((*source)->link_type(), LinkType::kEthernet);
  EXPECT_EQ((*source)->datalink(), DLT_EN10MB);
  EXPECT_EQ((*source)->name(), path("a.pcap"));
  EXPECT_FALSE((*source)->gzip_compressed());

  Collector collector;
  DispatchResult first = (*source)->dispatch(2, collector);
  EXPECT_EQ(first.status, DispatchStatus::kPackets);
  EXPECT_EQ(first.packets, 2u);
  DispatchResult second = (*source)->dispatch(2, collector);
  EXPECT_EQ(second.status, DispatchStatus::kEnd);
  EXPECT_EQ(second.packets, 1u);
  EXPECT_EQ((*source)->dispatch(2, collector).status, DispatchStatus::kEnd);

  ASSERT_EQ(collector.records.size(), records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(collector.records[i].timestamp, records[i].timestamp) << i;
    EXPECT_EQ(collector.records[i].data, records[i].data) << i;
  }
  EXPECT_EQ(collector.records[0].wire_length, records[0].data.size());
  EXPECT_EQ(collector.records[1].wire_length, 1514u);
}

TEST_F(PcapFileSourceTest, ScalesMicrosecondTimestampsToNanoseconds) {
  write_pcap(path("micro.pcap"), DLT_EN10MB, sample_records(), /*nano=*/false);
  auto source = PcapFileSource::open(path("micro.pcap"));
  ASSERT_TRUE(source) << source.error().message;
  Collector collector;
  ASSERT_EQ(drain(**source, collector), DispatchStatus::kEnd);
  ASSERT_EQ(collector.records.size(), 3u);
  EXPECT_EQ(collector.records[0].timestamp, 1'700'000'000'123'456'000);
  EXPECT_EQ(collector.records[2].timestamp, 1'700'000'001'000'000'000);
}

TEST_F(PcapFileSourceTest, MapsEverySupportedLinkType) {
  const std::map<int, LinkType> expected = {
      {DLT_EN10MB, LinkType::kEthernet},
      {DLT_NULL, LinkType::kNull},
      {DLT_LOOP, LinkType::kNull},
      {DLT_RAW, LinkType::kRaw},
      {DLT_LINUX_SLL, LinkType::kLinuxSll},
      {276, LinkType::kLinuxSll2},
      {228, LinkType::kIpv4},
      {229, LinkType::kIpv6},
  };
  for (const auto& [dlt, link] : expected) {
    const std::string file = path("dlt" + std::to_string(dlt) + ".pcap");
    write_pcap(file, dlt, {{1, Frame(40, 0x45), 0}});
    auto source = PcapFileSource::open(file);
    ASSERT_TRUE(source) << dlt << ": " << source.error().message;
    EXPECT_EQ((*source)->link_type(), link) << dlt;
  }
}

TEST_F(PcapFileSourceTest, RejectsUnsupportedLinkTypeNamingIt) {
  write_pcap(path("wifi.pcap"), DLT_IEEE802_11, {{1, Frame(30, 0), 0}});
  auto source = PcapFileSource::open(path("wifi.pcap"));
  ASSERT_FALSE(source);
  EXPECT_EQ(source.error().message,
            "unsupported link type 105 (IEEE802_11) in '" + path("wifi.pcap") + "'");
  EXPECT_EQ(source.error().kind, ErrorKind::kInvalidInput);
}

TEST_F(PcapFileSourceTest, ReadsGzipCompressedCapture) {
  const auto records = sample_records();
  write_pcap(path("plain.pcap"), DLT_EN10MB, records);
  gzip_file(path("plain.pcap"), path("packed.pcap.gz"));
  auto source = PcapFileSource::open(path("packed.pcap.gz"));
  ASSERT_TRUE(source) << source.error().message;
  EXPECT_TRUE((*source)->gzip_compressed());
  Collector collector;
  ASSERT_EQ(drain(**source, collector, 1), DispatchStatus::kEnd) << (*source)->error();
  expect_same_frames(collector, records);
}

// Pipes cannot be rewound: the format check once rewound them and failed with "unknown file
// format" for --read /dev/stdin, <(...), FIFOs and `tcpdump -w - | synwatchd --read -`.
class PipedCapture {
 public:
  // Writes `file`'s bytes into a pipe from a thread; `read_end()` is what a reader opens.
  explicit PipedCapture(const std::string& file) {
    EXPECT_EQ(::pipe2(fds_, O_CLOEXEC), 0);
    writer_ = std::thread([this, bytes = read_bytes(file)] {
      std::size_t done = 0;
      while (done < bytes.size()) {
        const ssize_t n = ::write(fds_[1], bytes.data() + done, bytes.size() - done);
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
      }
      ::close(fds_[1]);
    });
  }
  ~PipedCapture() {
    writer_.join();
    ::close(fds_[0]);
  }
  PipedCapture(const PipedCapture&) = delete;
  PipedCapture& operator=(const PipedCapture&) = delete;
  [[nodiscard]] int read_end() const { return fds_[0]; }
  [[nodiscard]] std::string proc_path() const { return "/proc/self/fd/" + std::to_string(fds_[0]); }

 private:
  static std::string read_bytes(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  int fds_[2] = {-1, -1};
  std::thread writer_;
};

TEST_F(PcapFileSourceTest, ReadsPlainAndGzipCapturesFromAPipe) {
  const auto records = sample_records();
  write_pcap(path("plain.pcap"), DLT_EN10MB, records);
  gzip_file(path("plain.pcap"), path("packed.pcap.gz"));
  for (const auto* name : {"plain.pcap", "packed.pcap.gz"}) {
    SCOPED_TRACE(name);
    PipedCapture pipe(path(name));
    auto source = PcapFileSource::open(pipe.proc_path());
    ASSERT_TRUE(source) << source.error().message;
    EXPECT_EQ((*source)->gzip_compressed(), std::string_view(name).ends_with(".gz"));
    Collector collector;
    ASSERT_EQ(drain(**source, collector, 1), DispatchStatus::kEnd) << (*source)->error();
    expect_same_frames(collector, records);
  }
}

TEST_F(PcapFileSourceTest, DashReadsStandardInput) {
  const auto records = sample_records();
  write_pcap(path("plain.pcap"), DLT_EN10MB, records);
  PipedCapture pipe(path("plain.pcap"));
  const int saved_stdin = ::dup(STDIN_FILENO);
  ASSERT_EQ(::dup2(pipe.read_end(), STDIN_FILENO), STDIN_FILENO);
  auto source = PcapFileSource::open("-");
  ::dup2(saved_stdin, STDIN_FILENO);
  ::close(saved_stdin);
  ASSERT_TRUE(source) << source.error().message;
  Collector collector;
  ASSERT_EQ(drain(**source, collector, 2), DispatchStatus::kEnd) << (*source)->error();
  EXPECT_EQ(collector.records.size(), records.size());
}

TEST_F(PcapFileSourceTest, APipeOfSomethingElseIsNotACapture) {
  { std::ofstream(path("text")) << "hello, this is not a capture at all\n"; }
  PipedCapture pipe(path("text"));
  auto source = PcapFileSource::open(pipe.proc_path());
  ASSERT_FALSE(source);
  EXPECT_NE(source.error().message.find("cannot open capture"), std::string::npos)
      << source.error().message;
}

TEST_F(PcapFileSourceTest, TruncatedGzipIsAnError) {
  // Many incompressible-looking records so that the cut lands well inside the stream.
  std::vector<Record> records;
  std::uint32_t seed = 12345;
  for (int i = 0; i < 200; ++i) {
    Frame data(200);
    for (auto& byte : data) {
      seed = seed * 1103515245u + 12345u;
      byte = static_cast<std::uint8_t>(seed >> 24);
    }
    records.push_back({i + 1, data, 0});
  }
  write_pcap(path("big.pcap"), DLT_EN10MB, records);
  gzip_file(path("big.pcap"), path("big.pcap.gz"));
  fs::resize_file(path("big.pcap.gz"), fs::file_size(path("big.pcap.gz")) / 2);
  auto source = PcapFileSource::open(path("big.pcap.gz"));
  ASSERT_TRUE(source) << source.error().message;
  Collector collector;
  EXPECT_EQ(drain(**source, collector), DispatchStatus::kError);
  EXPECT_LT(collector.records.size(), records.size());
  EXPECT_NE((*source)->error().find(path("big.pcap.gz")), std::string::npos) << (*source)->error();
}

TEST_F(PcapFileSourceTest, FileCutMidRecordIsAnErrorNotACrash) {
  const auto records = sample_records();
  write_pcap(path("cut.pcap"), DLT_EN10MB, records);
  const auto size = fs::file_size(path("cut.pcap"));
  // Cut inside the last record's data, then inside its 16-byte record header.
  for (const std::uintmax_t cut : {size - 10, size - records.back().data.size() - 8}) {
    fs::resize_file(path("cut.pcap"), cut);
    auto source = PcapFileSource::open(path("cut.pcap"));
    ASSERT_TRUE(source) << source.error().message;
    Collector collector;
    EXPECT_EQ(drain(**source, collector), DispatchStatus::kError) << cut;
    EXPECT_EQ(collector.records.size(), 2u);
    EXPECT_NE((*source)->error().find("truncated"), std::string::npos) << (*source)->error();
    EXPECT_NE((*source)->error().find(path("cut.pcap")), std::string::npos);
    EXPECT_EQ((*source)->dispatch(10, collector).status, DispatchStatus::kError);
  }
}

TEST_F(PcapFileSourceTest, MissingFileNamesTheFile) {
  auto source = PcapFileSource::open(path("absent.pcap"));
  ASSERT_FALSE(source);
  EXPECT_EQ(source.error().message,
            "cannot open capture '" + path("absent.pcap") + "': No such file or directory");
  EXPECT_EQ(source.error().kind, ErrorKind::kNotFound);
}

TEST_F(PcapFileSourceTest, NotACaptureNamesTheFile) {
  for (const std::string& content :
       {std::string("hello, this is not a capture file\n"), std::string()}) {
    std::ofstream(path("text.pcap"), std::ios::binary | std::ios::trunc) << content;
    auto source = PcapFileSource::open(path("text.pcap"));
    ASSERT_FALSE(source);
    EXPECT_EQ(source.error().message.rfind("cannot open capture '" + path("text.pcap") + "': ", 0),
              0u)
        << source.error().message;
    EXPECT_EQ(source.error().kind, ErrorKind::kInvalidInput);
  }
  auto directory = PcapFileSource::open(dir_.string());
  ASSERT_FALSE(directory);
  EXPECT_NE(directory.error().message.find(dir_.string()), std::string::npos);
}

// A hand-written pcapng file: section header, interface with if_tsresol = 9 (ns), one
// enhanced packet block.
TEST_F(PcapFileSourceTest, ReadsPcapngWithNanosecondResolution) {
  Frame file;
  const auto le32 = [&file](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) file.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  const auto le16 = [&file](std::uint16_t v) {
    file.push_back(static_cast<std::uint8_t>(v));
    file.push_back(static_cast<std::uint8_t>(v >> 8));
  };
  // Section header block.
  le32(0x0a0d0d0a);
  le32(28);
  le32(0x1a2b3c4d);
  le16(1);
  le16(0);
  le32(0xffffffff);
  le32(0xffffffff);
  le32(28);
  // Interface description block: Ethernet, snaplen 0, if_tsresol=9, opt_endofopt.
  le32(1);
  le32(32);
  le16(1);
  le16(0);
  le32(0);
  le16(9);
  le16(1);
  file.push_back(9);
  file.push_back(0);
  file.push_back(0);
  file.push_back(0);
  le16(0);
  le16(0);
  le32(32);
  // Enhanced packet block.
  const Frame frame = sample_records()[0].data;
  const std::uint64_t ns = 1'700'000'000'987'654'321ULL;
  const std::size_t padded = (frame.size() + 3) / 4 * 4;
  const auto block_length = static_cast<std::uint32_t>(32 + padded);
  le32(6);
  le32(block_length);
  le32(0);
  le32(static_cast<std::uint32_t>(ns >> 32));
  le32(static_cast<std::uint32_t>(ns));
  le32(static_cast<std::uint32_t>(frame.size()));
  le32(static_cast<std::uint32_t>(frame.size()));
  file.insert(file.end(), frame.begin(), frame.end());
  file.insert(file.end(), padded - frame.size(), 0);
  le32(block_length);
  std::ofstream(path("one.pcapng"), std::ios::binary)
      .write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));

  auto source = PcapFileSource::open(path("one.pcapng"));
  ASSERT_TRUE(source) << source.error().message;
  EXPECT_EQ((*source)->link_type(), LinkType::kEthernet);
  Collector collector;
  ASSERT_EQ(drain(**source, collector), DispatchStatus::kEnd) << (*source)->error();
  ASSERT_EQ(collector.records.size(), 1u);
  EXPECT_EQ(collector.records[0].timestamp, static_cast<TimestampNs>(ns));
  EXPECT_EQ(collector.records[0].data, frame);
}

// ---- The public traces in ../shared/traces -------------------------------------------------

struct TraceExpectation {
  std::uint64_t syns = 0;
  std::uint64_t syn_acks = 0;
  std::uint64_t truncated_link = 0;  // genuinely cut frames in the file
};

// SYN (no ACK, no RST) and SYN-ACK counts, IPv4 and IPv6, from the traces README and checked
// with tcpdump (IPv4: tcp[tcpflags]; IPv6: ip6[53] on TCP right after the fixed header).
const std::map<std::string, TraceExpectation>& trace_expectations() {
  static const std::map<std::string, TraceExpectation> table = {
      {"flood_spoofed_stopddos.pcap", {37'841, 0}},
      {"flood_spoofed_syn_ecn_cwr_stopddos.pcapng", {9'639, 0}},
      {"notflood_synack_reflection_stopddos.pcap", {1, 6'651}},
      {"notflood_synscan_ppa.pcapng", {1'994, 12}},
      {"flood_randsrc_randdst_ppa1e_dosattack.pcap", {100, 0}},
      // Its first record holds 4 of 60 bytes (tcpdump prints "[|ether]"): a real runt.
      {"benign_p2p_unanswered_syns_gnutella_ndpi.pcap", {291, 91, 1}},
      {"benign_burst500_loopback_zeek.pcap.gz", {741, 500}},  // 500 first SYNs + 241 retries
      {"benign_browsing_ipv6_reddit_ndpi.pcap", {60, 60}},
      {"benign_browsing_burst_espn.pcapng", {25, 25}},
      {"benign_dualstack_tiny_ppa.pcapng", {2, 2}},
  };
  return table;
}

class DecodingCounter final : public PacketHandler {
 public:
  explicit DecodingCounter(LinkType link) : decoder(link) {}
  void on_packet(const PacketView& packet) noexcept override {
    ++frames;
    TcpSegment segment;
    if (!has_segment(decoder.decode(packet.data, segment))) return;
    if (segment.is_syn()) ++syns;
    if (segment.is_syn_ack()) ++syn_acks;
    if (segment.has(tcp_flag::kEce) && segment.has(tcp_flag::kCwr) && segment.is_syn()) ++ecn_syns;
  }
  Decoder decoder;
  std::uint64_t frames = 0;
  std::uint64_t syns = 0;
  std::uint64_t syn_acks = 0;
  std::uint64_t ecn_syns = 0;
};

struct TraceCount {
  DispatchStatus status = DispatchStatus::kIdle;
  std::string error;
  std::string reasons;  // "tcp=120 not_tcp=3 ", for failure messages
  std::uint64_t frames = 0;
  std::uint64_t decoded_frames = 0;
  std::uint64_t errors = 0;
  std::uint64_t truncated_link = 0;
  std::uint64_t syns = 0;
  std::uint64_t syn_acks = 0;
  std::uint64_t ecn_syns = 0;
};

TraceCount count_trace(const fs::path& file) {
  TraceCount count;
  auto source = PcapFileSource::open(file.string());
  if (!source) {
    count.error = source.error().message;
    count.status = DispatchStatus::kError;
    return count;
  }
  DecodingCounter counter((*source)->link_type());
  count.status = drain(**source, counter, 4096);
  count.error = (*source)->error();
  const DecodeStats& decoded = counter.decoder.counters();
  for (std::size_t i = 0; i < decoded.by_result.size(); ++i) {
    if (decoded.by_result[i] == 0) continue;
    count.reasons += std::string(to_string(static_cast<DecodeResult>(i))) + "=" +
                     std::to_string(decoded.by_result[i]) + " ";
  }
  count.frames = counter.frames;
  count.decoded_frames = decoded.frames;
  count.errors = decoded.errors();
  count.truncated_link = decoded.count(DecodeResult::kTruncatedLink);
  count.syns = counter.syns;
  count.syn_acks = counter.syn_acks;
  count.ecn_syns = counter.ecn_syns;
  return count;
}

class KnownTrace : public ::testing::TestWithParam<std::string> {};

TEST_P(KnownTrace, DecodesWithoutErrorsAndCountsHandshakePackets) {
  const fs::path file = fs::path(SYNWATCH_SHARED_TRACES) / GetParam();
  if (!fs::exists(file)) GTEST_SKIP() << "trace not available: " << file;
  const TraceCount count = count_trace(file);
  ASSERT_EQ(count.status, DispatchStatus::kEnd) << count.error;
  EXPECT_EQ(count.decoded_frames, count.frames);
  const TraceExpectation& expected = trace_expectations().at(GetParam());
  EXPECT_EQ(count.truncated_link, expected.truncated_link) << count.reasons;
  EXPECT_EQ(count.errors - count.truncated_link, 0u) << count.reasons;
  EXPECT_EQ(count.syns, expected.syns) << count.reasons;
  EXPECT_EQ(count.syn_acks, expected.syn_acks) << count.reasons;
  if (GetParam() == "flood_spoofed_syn_ecn_cwr_stopddos.pcapng") {
    EXPECT_EQ(count.ecn_syns, 9'639u);  // every SYN carries ECE+CWR
  }
}

std::vector<std::string> known_trace_names() {
  std::vector<std::string> names;
  for (const auto& [name, expectation] : trace_expectations()) names.push_back(name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(SharedTraces, KnownTrace, ::testing::ValuesIn(known_trace_names()),
                         [](const ::testing::TestParamInfo<std::string>& trace) {
                           return trace.param.substr(0, trace.param.find('.'));
                         });

// Traces added to the folder later, without a known count, must still read and decode
// cleanly (the known ones are checked more closely above).
TEST(SharedTraces, EveryOtherCaptureInTheFolderDecodesWithoutErrors) {
  const fs::path folder = SYNWATCH_SHARED_TRACES;
  if (!fs::is_directory(folder)) GTEST_SKIP() << "no shared traces folder at " << folder;
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".pcap") == std::string::npos) continue;
    if (trace_expectations().contains(name)) continue;
    ++files;
    const TraceCount count = count_trace(entry.path());
    EXPECT_EQ(count.status, DispatchStatus::kEnd) << name << ": " << count.error;
    EXPECT_EQ(count.errors, 0u) << name << ": " << count.reasons;
  }
  if (files == 0) GTEST_SKIP() << "no captures beyond the known ones in " << folder;
}

}  // namespace
}  // namespace synwatch
