#include "bench_frames.hpp"

#include <array>
#include <cstring>

#include "capture/pcap_file_source.hpp"

namespace synwatch::bench {

namespace {

constexpr std::size_t kFrameLength = 54;
constexpr TimestampNs kStart = 1'704'067'200LL * kNanosPerSecond;  // 2024-01-01T00:00:00Z
constexpr double kSpacingNs = 1e9 / 14'880'000.0;

void put16(std::uint8_t* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) noexcept {
  put16(p, v >> 16);
  put16(p + 2, v);
}
std::uint16_t checksum(const std::uint8_t* p, std::size_t length, std::uint32_t sum) noexcept {
  for (std::size_t i = 0; i + 1 < length; i += 2) sum += std::uint32_t{p[i]} << 8 | p[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// Deterministic 64-bit generator for ISNs (splitmix64).
std::uint64_t next_random(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<std::uint8_t> make_frame(std::uint32_t source, std::uint16_t source_port,
                                     std::uint32_t destination, std::uint16_t destination_port,
                                     std::uint32_t seq, std::uint32_t ack, std::uint8_t flags) {
  std::vector<std::uint8_t> f(kFrameLength, 0);
  const std::array<std::uint8_t, 12> macs{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2};
  std::memcpy(f.data(), macs.data(), macs.size());
  put16(&f[12], 0x0800);
  std::uint8_t* ip = &f[14];
  ip[0] = 0x45;
  put16(ip + 2, 40);
  ip[8] = 64;
  ip[9] = 6;
  put32(ip + 12, source);
  put32(ip + 16, destination);
  put16(ip + 10, checksum(ip, 20, 0));
  std::uint8_t* tcp = &f[34];
  put16(tcp, source_port);
  put16(tcp + 2, destination_port);
  put32(tcp + 4, seq);
  put32(tcp + 8, ack);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  put16(tcp + 14, 64240);
  const std::uint32_t pseudo =
      (source >> 16) + (source & 0xffff) + (destination >> 16) + (destination & 0xffff) + 6 + 20;
  put16(tcp + 16, checksum(tcp, 20, pseudo));
  return f;
}

void flood_tuple(std::uint32_t k, std::uint32_t& source, std::uint16_t& port) noexcept {
  // Odd multiplier and xorshifts are bijections of 32 bits: every k a distinct tuple.
  std::uint32_t x = k * 0x9e3779b1u;
  x ^= x >> 15;
  x *= 0x85ebca6bu;
  x ^= x >> 13;
  source = kSpoofBaseV4 + (x >> 15);
  port = static_cast<std::uint16_t>(32768 + (x & 0x7fff));
}

FrameSet generate_flood(std::size_t count) {
  FrameSet set;
  set.bytes.resize(count * kFrameLength);
  set.packets.reserve(count);
  std::uint64_t random = 1;
  std::size_t written = 0;
  const auto append = [&](const std::vector<std::uint8_t>& frame) {
    std::uint8_t* at = set.bytes.data() + written * kFrameLength;
    std::memcpy(at, frame.data(), kFrameLength);
    set.packets.push_back(
        PacketView{std::span<const std::uint8_t>(at, kFrameLength), 60,
                   kStart + static_cast<TimestampNs>(static_cast<double>(written) * kSpacingNs)});
    ++written;
  };
  constexpr std::uint8_t kSyn = 0x02;
  constexpr std::uint8_t kSynAck = 0x12;
  // Written counts through append(); the loop stops on what the frame set holds.
  for (std::uint32_t k = 0; set.packets.size() < count; ++k) {
    std::uint32_t source = 0;
    std::uint16_t port = 0;
    flood_tuple(k, source, port);
    const auto isn = static_cast<std::uint32_t>(next_random(random));
    append(make_frame(source, port, kTargetV4, kTargetPort, isn, 0, kSyn));
    if (k % 2 == 0 && set.packets.size() < count) {
      append(make_frame(kTargetV4, kTargetPort, source, port,
                        static_cast<std::uint32_t>(next_random(random)), isn + 1, kSynAck));
    }
  }
  return set;
}

namespace {

class Collector final : public PacketHandler {
 public:
  explicit Collector(FrameSet& set) : set_(set) {}
  void on_packet(const PacketView& packet) noexcept override {
    offsets_.push_back(set_.bytes.size());
    set_.bytes.insert(set_.bytes.end(), packet.data.begin(), packet.data.end());
    set_.packets.push_back(packet);
  }
  // Points the views at the final buffer once it no longer moves.
  void settle() {
    for (std::size_t i = 0; i < set_.packets.size(); ++i) {
      set_.packets[i].data = std::span<const std::uint8_t>(set_.bytes.data() + offsets_[i],
                                                           set_.packets[i].data.size());
    }
  }

 private:
  FrameSet& set_;
  std::vector<std::size_t> offsets_;
};

}  // namespace

std::expected<FrameSet, std::string> load_capture(const std::string& path) {
  auto source = PcapFileSource::open(path);
  if (!source) return std::unexpected(source.error().message);
  FrameSet set;
  set.link = (*source)->link_type();
  Collector collector(set);
  for (;;) {
    const DispatchResult result = (*source)->dispatch(1 << 16, collector);
    if (result.status == DispatchStatus::kEnd) break;
    if (result.status == DispatchStatus::kError) return std::unexpected((*source)->error());
  }
  collector.settle();
  return set;
}

}  // namespace synwatch::bench
