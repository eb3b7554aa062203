#include "capture/read_ahead_source.hpp"

#include <algorithm>
#include <cstring>
#include <span>
#include <utility>

namespace synwatch {

// Copies the wrapped source's frames into blocks, on the reader thread.
class ReadAheadSource::Filler final : public PacketHandler {
 public:
  explicit Filler(ReadAheadSource& owner) : owner_(owner) {}

  void on_packet(const PacketView& packet) noexcept override {
    if (stopped_) return;
    const std::size_t length = std::min(packet.data.size(), kBlockBytes);
    Block* block = &owner_.blocks_[sequence_ % kBlocks];
    if (block->frame_count == kBlockFrames || block->used_bytes + length > kBlockBytes) {
      owner_.publish_block();
      ++sequence_;
      if (!owner_.wait_for_free_block(sequence_)) {
        stopped_ = true;
        return;
      }
      block = &owner_.blocks_[sequence_ % kBlocks];
      block->frame_count = 0;
      block->used_bytes = 0;
    }
    std::uint8_t* const bytes = block->bytes.get() + block->used_bytes;
    std::memcpy(bytes, packet.data.data(), length);
    block->frames[block->frame_count++] = PacketView{std::span<const std::uint8_t>(bytes, length),
                                                     packet.wire_length, packet.timestamp};
    block->used_bytes += length;
  }

  [[nodiscard]] bool stopped() const noexcept { return stopped_; }
  [[nodiscard]] bool holds_frames() const noexcept {
    return owner_.blocks_[sequence_ % kBlocks].frame_count > 0;
  }

 private:
  ReadAheadSource& owner_;
  std::uint64_t sequence_ = 0;  // the block being filled
  bool stopped_ = false;
};

ReadAheadSource::ReadAheadSource(std::unique_ptr<PacketSource> source)
    : source_(std::move(source)), link_(source_->link_type()), name_(source_->name()) {
  for (Block& block : blocks_) {
    // For overwrite: pages of the arena stay untouched until frames are copied in.
    block.bytes = std::make_unique_for_overwrite<std::uint8_t[]>(kBlockBytes);
    block.frames = std::make_unique<PacketView[]>(kBlockFrames);
  }
  reader_ = std::thread([this] { read_all(); });
}

ReadAheadSource::~ReadAheadSource() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  reader_.join();
}

bool ReadAheadSource::wait_for_free_block(std::uint64_t sequence) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return stopping_ || sequence < consumed_ + kBlocks; });
  return !stopping_;
}

void ReadAheadSource::publish_block() {
  {
    const std::lock_guard lock(mutex_);
    ++filled_;
  }
  changed_.notify_all();
}

void ReadAheadSource::read_all() noexcept {
  Filler filler(*this);
  DispatchStatus status = DispatchStatus::kEnd;
  std::string error;
  try {
    for (;;) {
      {
        const std::lock_guard lock(mutex_);
        if (stopping_) break;
      }
      const DispatchResult result = source_->dispatch(kBlockFrames, filler);
      if (filler.stopped()) break;
      if (result.status == DispatchStatus::kEnd || result.status == DispatchStatus::kError) {
        status = result.status;
        if (status == DispatchStatus::kError) error = source_->error();
        break;
      }
    }
  } catch (const std::exception& e) {
    status = DispatchStatus::kError;
    error = "cannot read capture '" + name_ + "': " + e.what();
  }
  {
    const std::lock_guard lock(mutex_);
    if (!filler.stopped() && filler.holds_frames()) ++filled_;
    finished_ = true;
    final_status_ = status;
    final_error_ = std::move(error);
  }
  changed_.notify_all();
}

DispatchResult ReadAheadSource::dispatch(std::size_t max_packets, PacketHandler& handler) {
  std::size_t delivered = 0;
  while (delivered < max_packets) {
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return filled_ > consumed_ || finished_; });
      if (filled_ == consumed_) return {final_status_, delivered};
    }
    // Blocks below filled_ are the consumer's until it moves consumed_ past them.
    const Block& block = blocks_[consumed_ % kBlocks];
    const std::size_t count = std::min(block.frame_count - position_, max_packets - delivered);
    if (count > 0) {
      handler.on_packets(std::span<const PacketView>(block.frames.get() + position_, count));
    }
    position_ += count;
    delivered += count;
    if (position_ == block.frame_count) {
      {
        const std::lock_guard lock(mutex_);
        ++consumed_;
      }
      position_ = 0;
      changed_.notify_all();
    }
  }
  return {DispatchStatus::kPackets, delivered};
}

std::string ReadAheadSource::error() const {
  const std::lock_guard lock(mutex_);
  return final_error_;
}

}  // namespace synwatch
