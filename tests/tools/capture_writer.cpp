#include "capture_writer.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

namespace synwatch::gen {
namespace {

constexpr int kSnapLength = 65535;
constexpr std::size_t kFileBuffer = 4 << 20;  // few large writes: bench-flood is ~760 MB

}  // namespace

void CaptureCounts::count(TimestampNs time, std::uint8_t flags, bool tcp_header_readable) noexcept {
  if (packets == 0) first_ts = time;
  last_ts = time;
  ++packets;
  if (!tcp_header_readable) return;
  const std::uint8_t handshake = flags & (tcp_flags::kSyn | tcp_flags::kAck | tcp_flags::kRst);
  if (handshake == tcp_flags::kSyn) ++syns;
  if (handshake == (tcp_flags::kSyn | tcp_flags::kAck)) ++synacks;
}

std::expected<CaptureWriter, std::string> CaptureWriter::open(const std::string& path, Link link,
                                                              bool duplicate) {
  pcap_t* dead =
      pcap_open_dead_with_tstamp_precision(dlt_of(link), kSnapLength, PCAP_TSTAMP_PRECISION_NANO);
  if (dead == nullptr) return std::unexpected("pcap_open_dead failed");
  const std::string temporary = path + ".tmp";
  FILE* file = std::fopen(temporary.c_str(), "wb");
  if (file == nullptr) {
    pcap_close(dead);
    return std::unexpected(temporary + ": " + std::strerror(errno));
  }
  // The buffer must be set before the first write, i.e. before libpcap writes the file header.
  // A failure only costs speed: stdio keeps its default buffer.
  (void)std::setvbuf(file, nullptr, _IOFBF, kFileBuffer);
  pcap_dumper_t* dumper = pcap_dump_fopen(dead, file);
  if (dumper == nullptr) {
    std::string error = pcap_geterr(dead);
    (void)std::fclose(file);  // already failing; the file is removed below
    pcap_close(dead);
    std::filesystem::remove(temporary);
    return std::unexpected(temporary + ": " + error);
  }
  return CaptureWriter(dead, dumper, path, link, duplicate);
}

CaptureWriter::CaptureWriter(pcap_t* dead, pcap_dumper_t* dumper, std::string path, Link link,
                             bool duplicate)
    : dead_(dead),
      dumper_(dumper),
      path_(std::move(path)),
      link_(link),
      duplicate_(duplicate),
      frame_(kMaxFrameLength) {}

CaptureWriter::CaptureWriter(CaptureWriter&& other) noexcept
    : dead_(std::exchange(other.dead_, nullptr)),
      dumper_(std::exchange(other.dumper_, nullptr)),
      path_(std::move(other.path_)),
      link_(other.link_),
      duplicate_(other.duplicate_),
      counts_(other.counts_),
      out_of_order_(other.out_of_order_),
      frame_(std::move(other.frame_)) {}

CaptureWriter::~CaptureWriter() {
  const bool unfinished = dumper_ != nullptr;
  close();
  if (unfinished) {
    std::error_code ignored;
    std::filesystem::remove(path_ + ".tmp", ignored);
  }
}

void CaptureWriter::close() noexcept {
  if (dumper_ != nullptr) pcap_dump_close(dumper_);
  if (dead_ != nullptr) pcap_close(dead_);
  dumper_ = nullptr;
  dead_ = nullptr;
}

void CaptureWriter::write(const PacketSpec& spec) noexcept {
  const BuiltFrame built = build_frame(spec, link_, frame_);
  write_frame(spec.time, {frame_.data(), built.capture_length}, built.wire_length, spec.flags,
              built.tcp_header_readable);
}

void CaptureWriter::write_frame(TimestampNs time, std::span<const std::uint8_t> captured,
                                std::uint32_t wire_length, std::uint8_t flags,
                                bool tcp_header_readable) noexcept {
  if (counts_.packets > 0 && time < counts_.last_ts) out_of_order_ = true;
  pcap_pkthdr header{};
  // With nanosecond precision libpcap stores tv_usec as nanoseconds.
  header.ts.tv_sec = static_cast<time_t>(time / kNanosPerSecond);
  header.ts.tv_usec = static_cast<suseconds_t>(time % kNanosPerSecond);
  header.caplen = static_cast<bpf_u_int32>(captured.size());
  header.len = wire_length;
  for (int copy = 0; copy < (duplicate_ ? 2 : 1); ++copy) {
    pcap_dump(reinterpret_cast<u_char*>(dumper_), &header, captured.data());
    counts_.count(time, flags, tcp_header_readable);
  }
}

std::expected<void, std::string> CaptureWriter::finish() {
  if (out_of_order_) return std::unexpected("internal error: timestamps decreased");
  FILE* file = pcap_dump_file(dumper_);
  const bool failed = pcap_dump_flush(dumper_) != 0 || std::ferror(file) != 0;
  close();
  const std::string temporary = path_ + ".tmp";
  std::error_code error;
  if (failed) {
    std::filesystem::remove(temporary, error);
    return std::unexpected(temporary + ": write failed");
  }
  std::filesystem::rename(temporary, path_, error);
  if (error) return std::unexpected(path_ + ": " + error.message());
  return {};
}

void Timeline::schedule(const PacketSpec& spec) {
  queue_.push(Entry{spec, next_order_++});
}

void Timeline::write_next() {
  if (written_ < max_packets_) {
    writer_.write(queue_.top().spec);
    ++written_;
  }
  queue_.pop();
}

void Timeline::release_before(TimestampNs time) {
  while (!queue_.empty() && queue_.top().spec.time < time) write_next();
}

void Timeline::release_all() {
  while (!queue_.empty()) write_next();
}

}  // namespace synwatch::gen
