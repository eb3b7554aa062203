// Engine throughput on the issue 8 flood, from packets already in memory: decode, handshake
// table, per-destination aggregation and detector ticks on one core. Target: >= 14.88 Mpps.
//
// Input: SYNWATCH_BENCH_FLOOD=FILE replays that capture (run.sh passes the synwatch-gen
// bench-flood file, so this and `synwatchd --read` see the same packets); otherwise the same
// flood is generated in memory, SYNWATCH_BENCH_PACKETS packets (default 10,000,000).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <string>
#include <thread>

#include "bench_frames.hpp"
#include "config/config.hpp"
#include "engine/engine.hpp"
#include "engine/sharded_engine.hpp"

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
        (void)std::fprintf(stderr, "engine_bench: %s\n", loaded.error().c_str());
        std::exit(66);
      }
      return std::move(*loaded);
    }
    std::size_t count = 10'000'000;
    if (const char* text = std::getenv("SYNWATCH_BENCH_PACKETS")) {
      count = std::strtoull(text, nullptr, 10);
    }
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
      started = engine->detector().counters().total_started();
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
  // Incidents of every kind. The bench flood is classed "distributed", not "spoofed_random": its
  // sources are the 131,072 addresses of 198.18.0.0/15 (the only range the tests may spoof), so
  // within one window millions of SYNs come from comparatively few distinct sources.
  state.counters["incidents"] = static_cast<double>(started);
  state.counters["evicted"] = static_cast<double>(evicted);
  state.counters["events"] = static_cast<double>(sink.events);
}
BENCHMARK(BM_EngineFlood)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The frames each of `workers` capture workers would get: PACKET_FANOUT_HASH sends both
// directions of a flow to one socket; ShardedEngine::shard_of is an equally symmetric hash.
// On huge pages like FrameSet::packets: with 4 KiB pages the walk through hundreds of MB of
// views misses the TLB, which made one worker measure well below BM_EngineFlood.
std::vector<HugePageVector<PacketView>> split_by_flow(const FrameSet& frames, std::size_t workers) {
  std::vector<HugePageVector<PacketView>> shares(workers);
  // Untouched capacity costs address space only.
  for (auto& share : shares) share.reserve(frames.packets.size());
  Decoder decoder(frames.link);
  TcpSegment s;
  for (const PacketView& packet : frames.packets) {
    const bool tcp = has_segment(decoder.decode(packet.data, s));
    shares[tcp ? ShardedEngine::shard_of(s, workers) : 0].push_back(packet);
  }
  return shares;
}

// The same flood through `capture.workers` shards, each fed by its own thread as the live
// workers are (the kernel's fanout does the split, so splitting is not timed), then one merge
// and evaluation by the coordinator. Shows how the engine scales with cores: nothing is shared
// between the feeding threads.
void BM_ShardedEngineFlood(benchmark::State& state) {
  const FrameSet& frames = flood();
  const auto workers = static_cast<std::size_t>(state.range(0));
  const auto shares = split_by_flow(frames, workers);
  const Config config;
  CountingSink sink;
  std::uint64_t started = 0;
  double busiest_cpu = 0;  // summed over iterations: the busiest feeding thread's CPU seconds
  for (auto _ : state) {
    state.PauseTiming();
    {
      auto engine = std::make_unique<ShardedEngine>(config, workers, sink, 0x9e3779b97f4a7c15ULL);
      std::vector<Decoder> decoders(workers, Decoder(frames.link));
      state.ResumeTiming();
      std::vector<std::thread> threads;
      std::vector<double> thread_cpu(workers, 0.0);
      for (std::size_t w = 0; w < workers; ++w) {
        threads.emplace_back([&, w] {
          engine->shard(w).on_packets(shares[w], decoders[w]);
          thread_cpu[w] = thread_cpu_seconds();
        });
      }
      for (auto& thread : threads) thread.join();
      busiest_cpu += *std::max_element(thread_cpu.begin(), thread_cpu.end());
      engine->advance_to(frames.packets.back().timestamp);
      state.PauseTiming();
      if (engine->counters().packets != frames.packets.size()) state.SkipWithError("packets lost");
      started = engine->detector().counters().total_started();
      engine.reset();
    }
    state.ResumeTiming();
  }
  const auto packets = static_cast<std::int64_t>(frames.packets.size());
  state.SetItemsProcessed(state.iterations() * packets);
  state.counters["packets"] = static_cast<double>(packets);
  state.counters["workers"] = static_cast<double>(workers);
  // Wall time suffers when other jobs share the cores; the busiest thread's own CPU time does
  // not, and it is what bounds the rate once every worker has a core to itself.
  state.counters["Mpps_busiest_thread_cpu"] =
      static_cast<double>(packets) * static_cast<double>(state.iterations()) / busiest_cpu / 1e6;
  state.counters["incidents"] = static_cast<double>(started);
}
BENCHMARK(BM_ShardedEngineFlood)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();

}  // namespace
}  // namespace synwatch::bench
