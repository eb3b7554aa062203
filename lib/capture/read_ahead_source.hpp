#pragma once
// Reads an offline source ahead on a thread of its own, so that reading (and decompressing) a
// capture file overlaps with the work done on its frames: on two cores `synwatchd --read` then
// costs about the larger of the two rather than their sum. The frames, their order, lengths and
// timestamps are exactly those of the wrapped source, so results stay byte-for-byte the same;
// only the thread that reads them changes.
//
// Buffer ownership: the wrapped source copies its frames once, with read_into(), into one of
// kBlocks FrameBlocks; dispatch() lends the consumer views into a block, which is refilled only
// once the consumer has moved past it (its next dispatch() call after the block's last frame).
// A PacketView handed out is therefore valid during the handler call that receives it.
// Memory: kBlocks x (kBlockBytes + kBlockFrames views), allocated once at construction; arena
// pages are touched only as frames fill them.
// Thread safety: dispatch(), error() and the accessors are for one consumer thread. The reader
// thread alone drives the wrapped source, from construction until it ends or the object is
// destroyed.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capture/frame_block.hpp"
#include "capture/packet_source.hpp"

namespace synwatch {

class ReadAheadSource final : public PacketSource {
 public:
  static constexpr std::size_t kBlocks = 4;
  static constexpr std::size_t kBlockFrames = 4096;
  static constexpr std::size_t kBlockBytes = std::size_t{1} << 20;

  // Starts the reader thread on `source`, which must be an offline source (one that never
  // returns kIdle).
  explicit ReadAheadSource(std::unique_ptr<PacketSource> source);
  ~ReadAheadSource() override;  // stops the reader between two frames and joins it
  ReadAheadSource(const ReadAheadSource&) = delete;
  ReadAheadSource& operator=(const ReadAheadSource&) = delete;

  // Delivers up to max_packets frames in the wrapped source's order, waiting for the reader when
  // it is behind. Then kPackets; once every frame is delivered, the wrapped source's final status
  // (kEnd or kError) with the frames delivered before it, on this and every later call.
  DispatchResult dispatch(std::size_t max_packets, PacketHandler& handler) override;
  [[nodiscard]] LinkType link_type() const override { return link_; }
  [[nodiscard]] std::string name() const override { return name_; }
  [[nodiscard]] std::string error() const override;
  // The wrapped source's: how far the reader thread has read, a few blocks ahead of dispatch().
  [[nodiscard]] ReadProgress progress() const noexcept override { return source_->progress(); }

 private:
  void read_all() noexcept;
  // Reader side: waits until block number `sequence` may be filled; false when stopping.
  bool wait_for_free_block(std::uint64_t sequence);
  void publish_block();  // reader: block number filled_ is complete

  std::unique_ptr<PacketSource> source_;
  LinkType link_;
  std::string name_;
  std::vector<FrameBlock> blocks_;  // kBlocks of them

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  // Blocks are filled and consumed strictly in turn: block number n lives in blocks_[n % kBlocks].
  std::uint64_t filled_ = 0;    // blocks the reader has completed
  std::uint64_t consumed_ = 0;  // blocks the consumer has finished with
  bool finished_ = false;       // the reader has published its last block
  bool stopping_ = false;
  DispatchStatus final_status_ = DispatchStatus::kEnd;
  std::string final_error_;

  // Consumer side only.
  std::size_t position_ = 0;  // next frame of block consumed_

  std::thread reader_;  // last: starts once everything above exists
};

}  // namespace synwatch
