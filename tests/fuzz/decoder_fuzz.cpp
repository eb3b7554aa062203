// libFuzzer target for Decoder::decode. The first input byte selects the LinkType, the rest
// is the frame. The decoder must never read out of bounds (ASan), never hit undefined
// behaviour (UBSan), and keep its counters consistent.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>

#include "decode/decoder.hpp"

namespace {

constexpr int kLinkTypes = 7;

synwatch::LinkType link_for(std::uint8_t selector) {
  return static_cast<synwatch::LinkType>(selector % kLinkTypes);
}

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): libFuzzer's entry point, its name is fixed
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const synwatch::LinkType link = link_for(data[0]);
  // A heap copy of exactly the frame, so that a read one byte past its end is caught.
  const std::size_t frame_size = size - 1;
  auto frame = std::make_unique<std::uint8_t[]>(frame_size);
  for (std::size_t i = 0; i < frame_size; ++i) frame[i] = data[i + 1];

  synwatch::Decoder decoder(link);
  synwatch::TcpSegment segment;
  const auto result =
      decoder.decode(std::span<const std::uint8_t>(frame.get(), frame_size), segment);

  const auto& counters = decoder.counters();
  std::uint64_t total = 0;
  for (const auto n : counters.by_result) total += n;
  if (counters.frames != 1 || total != 1 || counters.count(result) != 1) std::abort();
  if (result >= synwatch::DecodeResult::kCount) std::abort();
  if (synwatch::to_string(result) == "unknown") std::abort();
  // The smallest frame that can carry an MSS option is raw IPv4: 20 + 20 + 4 bytes.
  if (synwatch::has_segment(result) && segment.options.has_mss && frame_size < 44) std::abort();
  return 0;
}
