#pragma once
// Writes generated frames to a pcap file (nanosecond timestamps) through libpcap and keeps
// the counts the generator's JSON summary reports. A Timeline in front of it lets a scenario
// schedule answers and retransmissions in the future while the file stays in time order.
//
// Thread safety: none; one writer and one timeline per generator run.
// Files: the capture is written to "<path>.tmp" and renamed to <path> by finish(), so a
// failed run never leaves a half-written file under the requested name.

#include <pcap/pcap.h>

#include <cstdint>
#include <cstdio>
#include <expected>
#include <limits>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <vector>

#include "common/time.hpp"
#include "packet_builder.hpp"

namespace synwatch::gen {

struct CaptureCounts {
  std::uint64_t packets = 0;
  std::uint64_t syns = 0;     // readable frames with SYN set and ACK, RST clear
  std::uint64_t synacks = 0;  // readable frames with SYN and ACK set, RST clear
  TimestampNs first_ts = 0;
  TimestampNs last_ts = 0;

  void count(TimestampNs time, std::uint8_t flags, bool tcp_header_readable) noexcept;
};

class CaptureWriter {
 public:
  // With `duplicate`, every frame is written twice, back to back with the same timestamp, as a
  // span port that sees both sides of a link delivers it; both copies are counted.
  static std::expected<CaptureWriter, std::string> open(const std::string& path, Link link,
                                                        bool duplicate = false);
  CaptureWriter(CaptureWriter&& other) noexcept;
  CaptureWriter& operator=(CaptureWriter&&) = delete;
  CaptureWriter(const CaptureWriter&) = delete;
  CaptureWriter& operator=(const CaptureWriter&) = delete;
  ~CaptureWriter();

  // Builds the frame for `spec` and appends it. Times must not decrease (the Timeline sees
  // to that); a decreasing time is recorded and reported by finish().
  void write(const PacketSpec& spec) noexcept;
  // Appends an already built frame (the benchmark scenario patches templates itself) and
  // counts it with its TCP `flags`.
  void write_frame(TimestampNs time, std::span<const std::uint8_t> captured,
                   std::uint32_t wire_length, std::uint8_t flags,
                   bool tcp_header_readable) noexcept;
  // Flushes, closes and renames the file into place.
  std::expected<void, std::string> finish();

  [[nodiscard]] Link link() const noexcept { return link_; }
  [[nodiscard]] CaptureCounts& counts() noexcept { return counts_; }
  [[nodiscard]] const CaptureCounts& counts() const noexcept { return counts_; }

 private:
  CaptureWriter(pcap_t* dead, pcap_dumper_t* dumper, std::string path, Link link, bool duplicate);
  void close() noexcept;

  pcap_t* dead_ = nullptr;
  pcap_dumper_t* dumper_ = nullptr;
  std::string path_;
  Link link_;
  bool duplicate_ = false;
  CaptureCounts counts_;
  bool out_of_order_ = false;
  std::vector<std::uint8_t> frame_;
};

// Orders scheduled packets by time (ties by scheduling order, so output is deterministic)
// and writes them once the scenario promises not to schedule anything earlier.
class Timeline {
 public:
  explicit Timeline(CaptureWriter& writer,
                    std::uint64_t max_packets = std::numeric_limits<std::uint64_t>::max())
      : writer_(writer), max_packets_(max_packets) {}

  // `spec.time` must be >= the last release_before() bound.
  void schedule(const PacketSpec& spec);
  // Writes every queued packet earlier than `time`.
  void release_before(TimestampNs time);
  void release_all();
  // True once max_packets have been written; scenarios stop scheduling then.
  [[nodiscard]] bool full() const noexcept { return written_ >= max_packets_; }

 private:
  struct Entry {
    PacketSpec spec;
    std::uint64_t order = 0;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const noexcept {
      return a.spec.time != b.spec.time ? a.spec.time > b.spec.time : a.order > b.order;
    }
  };
  void write_next();

  CaptureWriter& writer_;
  std::uint64_t max_packets_;
  std::uint64_t written_ = 0;
  std::uint64_t next_order_ = 0;
  std::priority_queue<Entry, std::vector<Entry>, Later> queue_;
};

}  // namespace synwatch::gen
