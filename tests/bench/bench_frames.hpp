#pragma once
// Benchmark input held in memory: the issue 8 flood (every SYN a new 4-tuple from
// 198.18.0.0/15 to 198.51.100.10:80, every other SYN answered by a SYN-ACK in the next slot,
// minimum-size Ethernet/IPv4/TCP frames, packet times at 14.88 Mpps), generated here with the
// same shape as `synwatch-gen bench-flood`, or loaded from a capture file.
// Buffer ownership: a FrameSet owns its bytes; its PacketViews point into them and stay valid
// for the FrameSet's lifetime. Thread safety: none needed; built once, then read only.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <vector>

#include "capture/packet_source.hpp"
#include "common/huge_pages.hpp"
#include "common/ip_address.hpp"
#include "decode/decoder.hpp"

namespace synwatch::bench {

inline constexpr std::uint32_t kTargetV4 = 0xc633640a;  // 198.51.100.10
inline constexpr std::uint16_t kTargetPort = 80;
inline constexpr std::uint32_t kSpoofBaseV4 = 0xc6120000;  // 198.18.0.0/15

// Frames on transparent huge pages where the kernel gives them (best effort), the way a capture
// ring's frames sit in few large pages: with 4 KiB pages the gigabyte of frames costs a TLB
// miss, and a restart of the hardware prefetcher, every 75 frames, and how much that cost
// varied from process to process.

template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  explicit HugePageAllocator(const HugePageAllocator<U>& /*other*/) noexcept {}
  T* allocate(std::size_t count) { return static_cast<T*>(map_huge_pages(count * sizeof(T))); }
  void deallocate(T* memory, std::size_t count) noexcept {
    unmap_huge_pages(memory, count * sizeof(T));
  }
  friend bool operator==(const HugePageAllocator&, const HugePageAllocator&) = default;
};

template <typename T>
using HugePageVector = std::vector<T, HugePageAllocator<T>>;

struct FrameSet {
  LinkType link = LinkType::kEthernet;
  HugePageVector<std::uint8_t> bytes;
  HugePageVector<PacketView> packets;
};

// A minimum-size Ethernet/IPv4/TCP frame (54 bytes) with valid IPv4 and TCP checksums.
std::vector<std::uint8_t> make_frame(std::uint32_t source, std::uint16_t source_port,
                                     std::uint32_t destination, std::uint16_t destination_port,
                                     std::uint32_t seq, std::uint32_t ack, std::uint8_t flags);

// The k-th spoofed client of the flood (a bijection of k, so tuples never repeat).
void flood_tuple(std::uint32_t k, std::uint32_t& source, std::uint16_t& port) noexcept;

// `count` packets of the flood, generated in memory.
FrameSet generate_flood(std::size_t count);
// Every frame of a pcap/pcapng file (gzip too), copied into memory.
std::expected<FrameSet, std::string> load_capture(const std::string& path);

}  // namespace synwatch::bench
