#pragma once
// The packet-path half of evidence captures: the SYNs to the targets of open incidents are
// sampled (every one for the first `first_packets`, then the first `per_second` of each second
// of packet time) and copied into a bounded ring that an EvidenceWriter drains on its own
// thread. No allocation, no lock, no wait (live): a full ring refuses the frame and it is
// counted. A shard calls offer() only while the tap watches something (FlowShard holds no tap
// otherwise), so without open incidents the packet path pays one predictable branch.
//
// Sampling budgets are this tap's share: a live pipeline with N workers gives each tap 1/N.
// Thread safety: offer() on the feeding thread; watch()/unwatch() while it is not feeding (the
// live pipeline's workers are parked during evaluation) or on that same thread.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <thread>

#include "capture/packet_source.hpp"
#include "common/ip_address.hpp"
#include "decode/tcp_segment.hpp"
#include "export/evidence_writer.hpp"

namespace synwatch {

struct EvidenceTapStats {
  std::uint64_t copied = 0;           // frames handed to the writer
  std::uint64_t ring_full = 0;        // frames the writer had no room for yet (dropped)
  std::uint64_t watches_refused = 0;  // incidents beyond kMaxWatched at once: no evidence
};

class EvidenceTap {
 public:
  static constexpr std::size_t kMaxWatched = 32;
  // Live capture drops a frame rather than wait; a file replay waits, so that it stays
  // deterministic (nothing is lost to timing).
  enum class WhenFull : std::uint8_t { kDrop, kWait };

  EvidenceTap(std::size_t first_packets, std::size_t per_second, std::size_t ring_frames,
              WhenFull when_full)
      : first_packets_(first_packets),
        per_second_(per_second),
        when_full_(when_full),
        ring_(ring_frames) {}

  EvidenceRing& ring() noexcept { return ring_; }
  [[nodiscard]] const EvidenceTapStats& counters() const noexcept { return counters_; }
  [[nodiscard]] bool watching() const noexcept { return watched_count_ > 0; }

  // False when kMaxWatched targets are already watched (counted).
  bool watch(std::uint32_t token, const Endpoint& target, bool host_scope) noexcept {
    if (watched_count_ == kMaxWatched) {
      ++counters_.watches_refused;
      return false;
    }
    watched_[watched_count_++] = Watched{target, host_scope, token, 0, INT64_MIN, 0};
    return true;
  }
  void unwatch(std::uint32_t token) noexcept {
    for (std::size_t i = 0; i < watched_count_; ++i) {
      if (watched_[i].token == token) {
        watched_[i] = watched_[--watched_count_];
        return;
      }
    }
  }

  void offer(const PacketView& packet, const TcpSegment& segment, std::uint16_t dlt) noexcept {
    if (!segment.is_syn()) return;
    for (std::size_t i = 0; i < watched_count_; ++i) {
      Watched& w = watched_[i];
      if (w.target.address != segment.destination ||
          (!w.host_scope && w.target.port != segment.destination_port)) {
        continue;
      }
      if (!sampled(w, packet.timestamp)) return;
      copy(w.token, packet, dlt);
      return;
    }
  }

 private:
  struct Watched {
    Endpoint target;
    bool host_scope = false;
    std::uint32_t token = 0;
    std::uint64_t taken_first = 0;
    std::int64_t second = INT64_MIN;
    std::uint64_t taken_this_second = 0;
  };

  bool sampled(Watched& w, TimestampNs time) const noexcept {
    if (w.taken_first < first_packets_) {
      ++w.taken_first;
      return true;
    }
    const std::int64_t second = time / kNanosPerSecond;
    if (second != w.second) {
      w.second = second;
      w.taken_this_second = 0;
    }
    if (w.taken_this_second >= per_second_) return false;
    ++w.taken_this_second;
    return true;
  }

  void copy(std::uint32_t token, const PacketView& packet, std::uint16_t dlt) noexcept {
    EvidenceFrame* frame = ring_.claim();
    while (frame == nullptr && when_full_ == WhenFull::kWait) {
      std::this_thread::yield();
      frame = ring_.claim();
    }
    if (frame == nullptr) {
      ++counters_.ring_full;
      return;
    }
    const std::size_t length = std::min(packet.data.size(), kEvidenceSnapLength);
    frame->time = packet.timestamp;
    frame->watch = token;
    frame->wire_length = packet.wire_length;
    frame->length = static_cast<std::uint16_t>(length);
    frame->dlt = dlt;
    std::memcpy(frame->bytes.data(), packet.data.data(), length);
    ring_.commit();
    ++counters_.copied;
  }

  std::size_t first_packets_;
  std::size_t per_second_;
  WhenFull when_full_;
  std::array<Watched, kMaxWatched> watched_{};
  std::size_t watched_count_ = 0;
  EvidenceTapStats counters_;
  EvidenceRing ring_;
};

}  // namespace synwatch
