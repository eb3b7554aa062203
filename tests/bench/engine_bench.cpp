// Engine throughput on the issue 8 flood, from packets already in memory: decode, handshake
// table, per-destination aggregation and detector ticks on one core. Target: >= 14.88 Mpps.
//
// Input: SYNWATCH_BENCH_FLOOD=FILE replays that capture (run.sh passes the synwatch-gen
// bench-flood file, so this and `synwatchd --read` see the same packets); otherwise the same
// flood is generated in memory, SYNWATCH_BENCH_PACKETS packets (default 10,000,000).

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench_frames.hpp"
#include "config/config.hpp"
#include "engine/engine.hpp"

namespace synwatch::bench {
namespace {

class CountingSink final : public EventSink {
 public:
  void publish(const IncidentEvent&) override { ++events; }
  std::uint64_t events = 0;
};

const FrameSet& flood() {
  static const FrameSet set = [] {
    if (const char* path = std::getenv("SYNWATCH_BENCH_FLOOD"); path != nullptr && *path != 0) {
      auto loaded = load_capture(path);
      if (!loaded) {
        std::fprintf(stderr, "engine_bench: %s\n", loaded.error().c_str());
        std::exit(66);
      }
      return std::move(*loaded);
    }
    std::size_t count = 10'000'000;
    if (const char* text = std::getenv("SYNWATCH_BENCH_PACKETS"))
      count = std::strtoull(text, nullptr, 10);
    return generate_flood(count);
  }();
  return set;
}

void BM_EngineFlood(benchmark::State& state) {
  const FrameSet& frames = flood();
  const Config config;  // shipped defaults: 2^20 handshakes, every destination protected
  CountingSink sink;
  std::uint64_t started = 0;
  std::uint64_t evicted = 0;
  for (auto _ : state) {
    state.PauseTiming();
    {
      auto engine = std::make_unique<Engine>(config, frames.link, sink, 0x9e3779b97f4a7c15ULL);
      state.ResumeTiming();
      engine->on_packets(frames.packets);
      state.PauseTiming();
      if (engine->counters().packets != frames.packets.size()) state.SkipWithError("packets lost");
      started = engine->detector().counters().started[0];
      evicted = engine->handshakes().counters().evicted;
      engine.reset();  // freeing the table is not part of the packet path
    }
    state.ResumeTiming();
  }
  const auto packets = static_cast<std::int64_t>(frames.packets.size());
  state.SetItemsProcessed(state.iterations() * packets);
  state.counters["packets"] = static_cast<double>(packets);
  state.counters["Mpps"] = benchmark::Counter(static_cast<double>(packets) / 1e6,
                                              benchmark::Counter::kIsIterationInvariantRate);
  state.counters["spoofed_incidents"] = static_cast<double>(started);
  state.counters["evicted"] = static_cast<double>(evicted);
  state.counters["events"] = static_cast<double>(sink.events);
}
BENCHMARK(BM_EngineFlood)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

}  // namespace
}  // namespace synwatch::bench
