#include "capture/read_ahead_source.hpp"

#include <algorithm>
#include <span>
#include <utility>

namespace synwatch {

ReadAheadSource::ReadAheadSource(std::unique_ptr<PacketSource> source)
    : source_(std::move(source)), link_(source_->link_type()), name_(source_->name()) {
  blocks_.reserve(kBlocks);
  for (std::size_t i = 0; i < kBlocks; ++i) blocks_.emplace_back(kBlockFrames, kBlockBytes);
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
  DispatchStatus status = DispatchStatus::kEnd;
  std::string error;
  try {
    for (std::uint64_t sequence = 0; wait_for_free_block(sequence); ++sequence) {
      FrameBlock& block = blocks_[sequence % kBlocks];
      block.clear();
      DispatchResult result{DispatchStatus::kPackets, 0};
      while (!block.full() && result.status == DispatchStatus::kPackets) {
        result = source_->read_into(block, kBlockFrames);
      }
      if (!block.empty()) publish_block();
      if (result.status != DispatchStatus::kPackets) {
        // An offline source never idles; were one to, ending beats spinning.
        status =
            result.status == DispatchStatus::kError ? DispatchStatus::kError : DispatchStatus::kEnd;
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
    const auto frames = blocks_[consumed_ % kBlocks].frames();
    const std::size_t count = std::min(frames.size() - position_, max_packets - delivered);
    if (count > 0) handler.on_packets(frames.subspan(position_, count));
    position_ += count;
    delivered += count;
    if (position_ == frames.size()) {
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
