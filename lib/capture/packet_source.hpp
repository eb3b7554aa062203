#pragma once
// A source of captured frames: a pcap file (or several in sequence), or a live interface. A
// packet source knows nothing of TCP; it hands raw frames with their capture timestamps to a
// handler.
//
// Buffer ownership: the bytes a PacketView handed to a PacketHandler points to belong to the
// source and are valid only for the duration of the call that receives them. read_into() instead
// copies frames into a FrameBlock (frame_block.hpp) the consumer owns and releases.
// Thread safety: a source is driven by one thread at a time.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/time.hpp"
#include "decode/decoder.hpp"

namespace synwatch {

struct PacketView {
  std::span<const std::uint8_t> data;  // captured bytes (may be shorter than wire_length)
  std::uint32_t wire_length = 0;       // original length on the wire
  TimestampNs timestamp = 0;
};

class PacketHandler {
 public:
  virtual ~PacketHandler() = default;
  // Called once per frame, on the thread that called dispatch(); must not throw.
  virtual void on_packet(const PacketView& packet) noexcept = 0;
  // A batch of frames, in order; each view is valid only during this call. Handlers that can
  // overlap work across frames (prefetching) override it; the default hands them over one by one.
  virtual void on_packets(std::span<const PacketView> packets) noexcept {
    for (const PacketView& packet : packets) on_packet(packet);
  }
};

enum class DispatchStatus : std::uint8_t {
  kPackets,  // delivered one or more packets; call again
  kIdle,     // live source: nothing arrived within the poll timeout
  kEnd,      // offline source: end of file reached
  kError,    // read error; error() says what
};

struct DispatchResult {
  DispatchStatus status = DispatchStatus::kIdle;
  std::size_t packets = 0;
};

// How far an offline source has read, for a progress display.
struct ReadProgress {
  std::uint64_t bytes = 0;        // of the file(s) as stored (a .gz: compressed bytes)
  std::uint64_t total_bytes = 0;  // their size; 0 when unknown (standard input, a pipe)
};

class FrameBlock;

class PacketSource {
 public:
  virtual ~PacketSource() = default;
  // Delivers up to max_packets frames to handler, then returns.
  virtual DispatchResult dispatch(std::size_t max_packets, PacketHandler& handler) = 0;
  // Appends up to max_packets frames to `block`, stopping early once it is full(); the frames
  // then belong to the block's owner until it clears it. Statuses as dispatch(). Offline sources
  // copy each frame once, from their own buffer; this default goes through dispatch() a frame at
  // a time, which suits any source but costs a call per frame.
  virtual DispatchResult read_into(FrameBlock& block, std::size_t max_packets);
  [[nodiscard]] virtual LinkType link_type() const = 0;
  [[nodiscard]] virtual std::string name() const = 0;   // file path or interface name
  [[nodiscard]] virtual std::string error() const = 0;  // last error after kError
  // Offline sources: how far reading has come. Unlike the rest of the interface, callable from
  // any thread while another drives the source (a progress display beside a read-ahead thread);
  // the figure may lag by a batch. Live sources have none.
  [[nodiscard]] virtual ReadProgress progress() const noexcept { return {}; }
};

}  // namespace synwatch
