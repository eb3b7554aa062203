#pragma once
// Reads frames from a capture file: pcap (micro- or nanosecond), pcapng, and either of them
// gzip-compressed (detected by the 1f 8b magic, not by the file name).
//
// Timestamps are delivered in exact nanoseconds whatever the file's resolution.
// Buffer ownership: the bytes of a PacketView handed to a handler belong to the source and are
// valid only during the call that receives them; read_into() copies them into the caller's block.
// Thread safety: one thread drives a source at a time; distinct sources are independent.

#include <array>
#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>

#include "common/error.hpp"
#include "capture/packet_source.hpp"

struct pcap;  // libpcap's pcap_t, kept out of this header

namespace synwatch {

// The LinkType of an open libpcap handle (offline or live), or an error such as
// "unsupported link type 105 (IEEE802_11)" for the caller to prefix with what it opened.
Expected<LinkType> pcap_link_type(pcap* handle);

// "IEEE802_11" for 105: libpcap's name of a data link type, or "unknown".
std::string dlt_name(int dlt);

class PcapFileSource final : public PacketSource {
 public:
  // Opens the file and checks its link type. Errors name the file and the reason:
  // "cannot open capture 'x.pcap': No such file or directory",
  // "unsupported link type 105 (IEEE802_11) in 'x.pcap'".
  // `path` may be "-" (standard input), a FIFO or a pipe (/dev/stdin, <(...)): those are read
  // once, front to back, gzip or not.
  // `buffer_bytes`: how much is read from the file at a time; the default (1 MiB) keeps read(2)
  // calls rare, a small one suits a look at the first packet only.
  static constexpr std::size_t kDefaultBufferBytes = std::size_t{1} << 20;
  static Expected<std::unique_ptr<PcapFileSource>> open(
      const std::string& path, std::size_t buffer_bytes = kDefaultBufferBytes);

  ~PcapFileSource() override;
  PcapFileSource(const PcapFileSource&) = delete;
  PcapFileSource& operator=(const PcapFileSource&) = delete;

  // Delivers up to max_packets frames. kEnd once the file is exhausted; kError (with the
  // packets delivered before it in `packets`) when the file is truncated or corrupt. Both are
  // final: later calls return the same status and deliver nothing.
  DispatchResult dispatch(std::size_t max_packets, PacketHandler& handler) override;
  // As dispatch(), copying each frame once, from libpcap's buffer into the block.
  DispatchResult read_into(FrameBlock& block, std::size_t max_packets) override;
  [[nodiscard]] LinkType link_type() const override { return link_; }
  [[nodiscard]] std::string name() const override { return path_; }
  [[nodiscard]] std::string error() const override { return error_; }

  // The raw libpcap data link type (DLT_*), e.g. for reports.
  [[nodiscard]] int datalink() const noexcept { return datalink_; }
  [[nodiscard]] bool gzip_compressed() const noexcept { return gzip_; }
  // Standard input, a pipe or a FIFO: it can be read only once (opening it again would not give
  // the same bytes).
  [[nodiscard]] bool streamed() const noexcept { return streamed_; }
  // Bytes read so far (a .gz file: compressed; a stream: uncompressed, and no total). Updated
  // after each dispatch(); safe to call from another thread.
  [[nodiscard]] ReadProgress progress() const noexcept override {
    return {bytes_read_.load(std::memory_order_relaxed), total_bytes_};
  }

 private:
  PcapFileSource(pcap* handle, std::string path, LinkType link, int datalink, bool gzip);
  [[nodiscard]] std::uint64_t position() const noexcept;  // reading thread only
  // Sets the final status after pcap_next_ex returned `next_result` (not 1).
  void finish(int next_result);

  pcap* handle_;
  std::string path_;
  LinkType link_;
  int datalink_;
  bool gzip_;
  void* gzip_stream_ = nullptr;  // owned by the FILE* inside handle_; null for plain files
  bool streamed_ = false;
  std::uint64_t total_bytes_ = 0;  // 0: unknown
  std::atomic<std::uint64_t> bytes_read_{0};
  DispatchStatus final_status_ = DispatchStatus::kPackets;  // kEnd/kError once reached
  std::string error_;
  // libpcap reuses its buffer at every pcap_next_ex, so frames are copied here to be handed over
  // in batches; a frame longer than a slot is delivered on its own, uncopied.
  static constexpr std::size_t kBatchFrames = 64;
  static constexpr std::size_t kSlotBytes = 512;
  std::unique_ptr<std::uint8_t[]> batch_bytes_;
  std::array<PacketView, kBatchFrames> batch_{};
};

}  // namespace synwatch
