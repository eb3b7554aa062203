#include "offline.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <random>

#include "capture/pcap_file_source.hpp"
#include "engine/engine.hpp"
#include "export/event_json.hpp"

namespace synwatch {

namespace {

constexpr int kExitDataError = 65;  // sysexits EX_DATAERR
constexpr int kExitNoInput = 66;    // sysexits EX_NOINPUT

void print_summary(const std::string& path, const Engine& engine, std::uint64_t events) {
  const DecodeCounters& decode = engine.decode_counters();
  const HandshakeTableCounters& flows = engine.handshakes().counters();
  const DetectorCounters& detector = engine.detector().counters();
  std::string errors;
  for (std::size_t i = 0; i < decode.by_result.size(); ++i) {
    const auto reason = static_cast<DecodeResult>(i);
    if (reason == DecodeResult::kTcp || reason == DecodeResult::kNotIp ||
        reason == DecodeResult::kNotTcp || decode.by_result[i] == 0) {
      continue;
    }
    errors += fmt::format("{}{}={}", errors.empty() ? " (" : ", ", to_string(reason), decode.by_result[i]);
  }
  if (!errors.empty()) errors += ")";
  fmt::print(stderr,
             "synwatchd: {}: {} packets, {} TCP segments, {} decode errors{}\n"
             "synwatchd: handshakes: {} started, {} completed, {} reset, {} expired, {} evicted, "
             "{} still pending\n"
             "synwatchd: incidents: {} started ({} spoofed_random, {} concentrated, {} distributed), "
             "{} ended, {} events\n",
             path, engine.counters().packets, engine.counters().tcp_segments, decode.errors(), errors,
             flows.inserted, flows.completed, flows.reset, flows.expired, flows.evicted,
             engine.handshakes().size(),
             detector.started[0] + detector.started[1] + detector.started[2], detector.started[0],
             detector.started[1], detector.started[2], detector.ended, events);
}

}  // namespace

int run_offline(const Config& config, const std::string& capture_path) {
  auto source = PcapFileSource::open(capture_path);
  if (!source) {
    spdlog::error("{}", source.error());
    return kExitNoInput;
  }
  JsonLinesSink sink(stdout);
  // A fixed seed keeps offline runs byte-for-byte reproducible; the table is bounded anyway.
  Engine engine(config, (*source)->link_type(), sink, 0x9e3779b97f4a7c15ULL);
  int exit_code = 0;
  for (;;) {
    const DispatchResult result = (*source)->dispatch(4096, engine);
    if (result.status == DispatchStatus::kEnd) break;
    if (result.status == DispatchStatus::kError) {
      spdlog::error("{}", (*source)->error());
      exit_code = kExitDataError;
      break;
    }
  }
  engine.finish();
  print_summary(capture_path, engine, sink.written());
  return exit_code;
}

}  // namespace synwatch
