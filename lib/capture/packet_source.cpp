#include "capture/packet_source.hpp"

#include <algorithm>

#include "capture/frame_block.hpp"

namespace synwatch {
namespace {

class AppendToBlock final : public PacketHandler {
 public:
  explicit AppendToBlock(FrameBlock& block) : block_(block) {}
  void on_packet(const PacketView& packet) noexcept override {
    if (!block_.full()) block_.append(packet);
  }

 private:
  FrameBlock& block_;
};

}  // namespace

DispatchResult PacketSource::read_into(FrameBlock& block, std::size_t max_packets) {
  // One frame per dispatch(): a frame of any length fits a block that is not full, more might not.
  AppendToBlock append(block);
  std::size_t delivered = 0;
  while (delivered < max_packets && !block.full()) {
    const DispatchResult result = dispatch(1, append);
    delivered += result.packets;
    if (result.status != DispatchStatus::kPackets) return {result.status, delivered};
  }
  return {DispatchStatus::kPackets, delivered};
}

}  // namespace synwatch
