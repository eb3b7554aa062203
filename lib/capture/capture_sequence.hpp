#pragma once
// Several capture files read as one capture: the consecutive pieces that a rotating capture
// (tcpdump -C or -G, dumpcap's ring buffer) writes, handed on as one stream of frames in the
// time order of each file's first packet, whatever order they were named in.
//
// Pieces of one capture follow each other in time. Files that overlap (captures taken side by
// side, the same file twice) are not pieces of one capture: reading them one after the other
// would send time backwards for the detector, and merging them is mergecap's job, so reading
// stops with an error naming both files as soon as a file holds a packet later than the next
// file's first (kOverlapTolerance allows for the slight reordering one capture can hold). Files
// of different link types are refused at open for the same reason.
//
// Opening looks at the first packet of each file; a regular file is then closed and opened
// again when its turn comes, so only one file is open at a time however many there are. A
// stream (standard input, a pipe, a FIFO) cannot be read twice: it stays open with its first
// frame kept aside. With a single file nothing is looked at in advance: it is read as
// PcapFileSource reads it.
//
// Buffer ownership: as PcapFileSource (views valid only during the handler call; read_into()
// copies into the caller's block).
// Thread safety: one thread drives the sequence; progress() may be called from any thread.

#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "capture/packet_source.hpp"
#include "capture/pcap_file_source.hpp"
#include "common/time.hpp"

namespace synwatch {

struct SequenceFile {
  std::string path;
  std::optional<TimestampNs> first_packet;  // nullopt: no packets, or not looked at (one file)
  std::uint64_t size_bytes = 0;             // 0: unknown (a stream)
};

enum class SequenceProblem : std::uint8_t {
  kUsage,          // standard input or the same file named twice
  kCannotOpen,     // a file cannot be opened or is not a capture
  kNotOneCapture,  // different link types, or a file damaged before its first packet
};

struct SequenceError {
  SequenceProblem problem = SequenceProblem::kCannotOpen;
  std::string message;  // names the file(s) and the reason
};

class CaptureSequence final : public PacketSource {
 public:
  // Timestamps of one capture can run slightly backwards (packets from several CPUs or
  // interfaces); a file may reach this far past the next file's first packet.
  static constexpr DurationNs kOverlapTolerance = 100 * kNanosPerMilli;

  // Opens `paths` (at least one; "-" is standard input) and orders them by first packet.
  static std::expected<std::unique_ptr<CaptureSequence>, SequenceError> open(
      std::span<const std::string> paths);

  ~CaptureSequence() override;
  CaptureSequence(const CaptureSequence&) = delete;
  CaptureSequence& operator=(const CaptureSequence&) = delete;

  // Delivers up to max_packets frames, file after file. kEnd after the last file; kError when
  // a file is damaged, cannot be opened again, or overlaps the next one (error() says which):
  // both final, with the frames before them delivered.
  DispatchResult dispatch(std::size_t max_packets, PacketHandler& handler) override;
  // As dispatch(), each frame copied once, from the file's reader into the block.
  DispatchResult read_into(FrameBlock& block, std::size_t max_packets) override;
  [[nodiscard]] LinkType link_type() const override { return link_; }
  [[nodiscard]] std::string name() const override;  // the paths, in reading order
  [[nodiscard]] std::string error() const override { return error_; }
  // Bytes of all files read so far; the total only when every file's size is known.
  [[nodiscard]] ReadProgress progress() const noexcept override {
    return {bytes_read_.load(std::memory_order_relaxed), total_bytes_};
  }

  // In reading order; fixed at open.
  [[nodiscard]] const std::vector<SequenceFile>& files() const noexcept { return files_; }

 private:
  struct KeptFrame;  // the first frame of a stream, read at open
  class OrderGuard;

  // The latest a frame of the current file may be stamped, and the file that sets it.
  struct Limit {
    TimestampNs latest = 0;
    std::size_t file = 0;
  };

  explicit CaptureSequence(LinkType link);
  bool open_next();  // opens files_[next_file_]; false (final_status_ set) when it cannot
  // current_ open; false (final_status_ set) after the last file or when one cannot be opened.
  bool ensure_current();
  [[nodiscard]] Limit current_limit() const;
  void fail_overlap(const Limit& limit, TimestampNs offending);
  // After a read of current_: closes it at its end; false (final_status_ set) on its error.
  bool after_read(const DispatchResult& result);
  void publish_progress();

  LinkType link_;
  std::vector<SequenceFile> files_;
  // Per file, in reading order: a stream's open source and its first frame; null otherwise.
  std::vector<std::unique_ptr<PcapFileSource>> kept_sources_;
  std::vector<std::unique_ptr<KeptFrame>> kept_frames_;
  std::unique_ptr<PcapFileSource> current_;
  std::size_t current_file_ = 0;  // index in files_ of current_
  std::size_t next_file_ = 0;     // the next file to open
  std::uint64_t bytes_before_current_ = 0;
  std::uint64_t total_bytes_ = 0;
  std::atomic<std::uint64_t> bytes_read_{0};
  DispatchStatus final_status_ = DispatchStatus::kPackets;
  std::string error_;
};

}  // namespace synwatch
