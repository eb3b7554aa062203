#include "capture/frame_block.hpp"

#include <algorithm>
#include <cstring>

namespace synwatch {

FrameBlock::FrameBlock(std::size_t max_frames, std::size_t max_bytes)
    : max_frames_(std::max<std::size_t>(max_frames, 1)),
      max_bytes_(std::max(max_bytes, kMaxFrameBytes)),
      bytes_(std::make_unique_for_overwrite<std::uint8_t[]>(max_bytes_)),
      views_(std::make_unique<PacketView[]>(max_frames_)) {}

void FrameBlock::append(const PacketView& frame) noexcept {
  const std::size_t length = std::min(frame.data.size(), kMaxFrameBytes);
  std::uint8_t* const destination = bytes_.get() + used_bytes_;
  std::memcpy(destination, frame.data.data(), length);
  views_[count_++] = PacketView{std::span<const std::uint8_t>(destination, length),
                                frame.wire_length, frame.timestamp};
  used_bytes_ += length;
}

void FrameBlock::truncate(std::size_t count) noexcept {
  if (count >= count_) return;
  count_ = count;
  used_bytes_ = count == 0 ? 0 : static_cast<std::size_t>(views_[count].data.data() - bytes_.get());
}

}  // namespace synwatch
