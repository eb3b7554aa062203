#pragma once
// Capture files for the capture tests: written with libpcap itself (or gzip), read back through a
// PacketSource into plain records.

#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "../decode/frame_builder.hpp"
#include "capture/frame_block.hpp"
#include "capture/packet_source.hpp"

namespace synwatch::test {

// A fresh directory under the system's temporary directory, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "synwatch-capture-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }
  [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
};

struct Record {
  TimestampNs timestamp = 0;
  Frame data;
  std::uint32_t wire_length = 0;
};

class Collector final : public PacketHandler {
 public:
  void on_packet(const PacketView& packet) noexcept override {
    records.push_back(
        {packet.timestamp, Frame(packet.data.begin(), packet.data.end()), packet.wire_length});
  }
  std::vector<Record> records;
};

// Reads a source to its end (or error), at most `batch` frames per dispatch.
inline DispatchStatus drain(PacketSource& source, PacketHandler& handler, std::size_t batch = 64) {
  for (int calls = 0; calls < 1'000'000; ++calls) {
    const DispatchResult result = source.dispatch(batch, handler);
    if (result.status == DispatchStatus::kEnd || result.status == DispatchStatus::kError) {
      return result.status;
    }
  }
  return DispatchStatus::kIdle;
}

// Writes records with libpcap itself, at nano- or microsecond precision.
// Reads a source to its end (or error) with read_into(), `per_call` frames at most per call into
// blocks of `block_frames` frames (and `block_bytes` bytes), handing each full block to `handler`.
inline DispatchStatus drain_blocks(PacketSource& source, PacketHandler& handler,
                                   std::size_t block_frames = 64, std::size_t per_call = 64,
                                   std::size_t block_bytes = 2 * FrameBlock::kMaxFrameBytes) {
  FrameBlock block(block_frames, block_bytes);
  for (int calls = 0; calls < 1'000'000; ++calls) {
    const std::size_t before = block.size();
    const DispatchResult result = source.read_into(block, per_call);
    if (block.size() - before != result.packets) return DispatchStatus::kIdle;  // miscounted
    const bool last =
        result.status == DispatchStatus::kEnd || result.status == DispatchStatus::kError;
    if (block.full() || last) {
      handler.on_packets(block.frames());
      block.clear();
    }
    if (last) return result.status;
  }
  return DispatchStatus::kIdle;
}

inline void write_pcap(const std::string& file, int dlt, const std::vector<Record>& records,
                       bool nano = true) {
  pcap_t* dead = pcap_open_dead_with_tstamp_precision(
      dlt, 65535, nano ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO);
  ASSERT_NE(dead, nullptr);
  pcap_dumper_t* dumper = pcap_dump_open(dead, file.c_str());
  ASSERT_NE(dumper, nullptr) << pcap_geterr(dead);
  for (const auto& r : records) {
    pcap_pkthdr header{};
    header.ts.tv_sec = r.timestamp / kNanosPerSecond;
    const auto fraction = r.timestamp % kNanosPerSecond;
    header.ts.tv_usec = nano ? fraction : fraction / 1000;
    header.caplen = static_cast<bpf_u_int32>(r.data.size());
    header.len = r.wire_length != 0 ? r.wire_length : header.caplen;
    pcap_dump(reinterpret_cast<u_char*>(dumper), &header, r.data.data());
  }
  pcap_dump_close(dumper);
  pcap_close(dead);
}

inline void gzip_file(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gzFile out = gzopen(to.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(out), Z_OK);
}

}  // namespace synwatch::test
