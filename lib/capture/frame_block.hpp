#pragma once
// Frames copied once into memory the consumer owns, so that they stay valid after the call that
// read them, until the consumer clears the block. This is how a read-ahead thread lends whole
// blocks to the thread that works on them: the source copies each frame once, out of its own
// reused buffer, and nothing copies it again.
//
// Memory: fixed at construction, max_frames views and max_bytes of frame bytes; the byte arena's
// pages are touched only as frames fill them.
// Thread safety: none. One thread fills a block, then hands it over (with a happens-before edge,
// e.g. a mutex) to one thread that reads it until it is done with it.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "capture/packet_source.hpp"

namespace synwatch {

class FrameBlock {
 public:
  // libpcap's own ceiling on a frame (MAXIMUM_SNAPLEN); a longer one is cut to it, its wire
  // length kept, as if captured with that snap length.
  static constexpr std::size_t kMaxFrameBytes = std::size_t{256} * 1024;

  // max_bytes is at least kMaxFrameBytes (raised to it), so that an empty block takes any frame.
  FrameBlock(std::size_t max_frames, std::size_t max_bytes);

  // No room for one more frame of any length: the frame limit is reached, or fewer than
  // kMaxFrameBytes bytes are left. A source stops reading into a full block.
  [[nodiscard]] bool full() const noexcept {
    return count_ == max_frames_ || max_bytes_ - used_bytes_ < kMaxFrameBytes;
  }
  // Copies `frame` in; the block must not be full().
  void append(const PacketView& frame) noexcept;
  // Keeps the first `count` frames (count <= size()), giving back the bytes of the rest.
  void truncate(std::size_t count) noexcept;
  void clear() noexcept { truncate(0); }

  [[nodiscard]] std::span<const PacketView> frames() const noexcept {
    return {views_.get(), count_};
  }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::size_t used_bytes() const noexcept { return used_bytes_; }

 private:
  std::size_t max_frames_;
  std::size_t max_bytes_;
  std::unique_ptr<std::uint8_t[]> bytes_;
  std::unique_ptr<PacketView[]> views_;
  std::size_t count_ = 0;
  std::size_t used_bytes_ = 0;
};

}  // namespace synwatch
