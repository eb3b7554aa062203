// Hot-path micro-benchmarks (issue 8): ns per operation for the stages a packet goes through,
// and for the per-tick work. run.sh prints them in its table; the README quotes them.

#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "aggregate/destination_table.hpp"
#include "aggregate/hyperloglog.hpp"
#include "aggregate/space_saving.hpp"
#include "bench_frames.hpp"
#include "decode/decoder.hpp"
#include "detect/detector.hpp"
#include "flow/handshake_table.hpp"

namespace synwatch::bench {
namespace {

constexpr TimestampNs kStart = 1'704'067'200LL * kNanosPerSecond;

class NullSink final : public EventSink {
 public:
  void publish(const IncidentEvent&) override {}
};

// Random-looking addresses without a per-call allocation or library RNG.
IpAddress nth_source(std::uint32_t k) noexcept {
  std::uint32_t source = 0;
  std::uint16_t port = 0;
  flood_tuple(k, source, port);
  return IpAddress::from_v4(source);
}

void BM_DecodeSyn(benchmark::State& state) {
  const auto frame = make_frame(kSpoofBaseV4 + 7, 40000, kTargetV4, kTargetPort, 1234, 0, 0x02);
  Decoder decoder(LinkType::kEthernet);
  TcpSegment segment;
  for (auto _ : state) {
    benchmark::DoNotOptimize(decoder.decode(frame, segment));
    benchmark::DoNotOptimize(segment);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeSyn);

TcpSegment syn_segment(std::uint32_t k, TimestampNs now) noexcept {
  TcpSegment s;
  std::uint32_t source = 0;
  flood_tuple(k, source, s.source_port);
  s.source = IpAddress::from_v4(source);
  s.destination = IpAddress::from_v4(kTargetV4);
  s.destination_port = kTargetPort;
  s.seq = k * 2654435761u;
  s.flags = tcp_flag::kSyn;
  s.timestamp = now;
  return s;
}

// A table of 2^20 entries filled to `load` percent, the state a flood leaves behind.
std::unique_ptr<HandshakeTable> filled_table(std::size_t capacity, std::size_t load_percent) {
  auto table = std::make_unique<HandshakeTable>(capacity, 63 * kNanosPerSecond, 42);
  const std::size_t fill = capacity * load_percent / 100;
  for (std::uint32_t k = 0; k < fill; ++k) table->process(syn_segment(k, kStart));
  return table;
}

constexpr std::size_t kTableCapacity = std::size_t{1} << 20;

// Insert: a SYN of a new 4-tuple; paired with an RST of the oldest one so the load stays put.
// Reported per pair (two table operations, one insertion and one removal).
void BM_TableInsertRemove(benchmark::State& state) {
  const auto load = static_cast<std::size_t>(state.range(0));
  auto table = filled_table(kTableCapacity, load);
  std::uint32_t oldest = 0;
  auto next = static_cast<std::uint32_t>(kTableCapacity * load / 100);
  for (auto _ : state) {
    benchmark::DoNotOptimize(table->process(syn_segment(next++, kStart)));
    TcpSegment rst = syn_segment(oldest++, kStart);
    rst.flags = tcp_flag::kRst;
    benchmark::DoNotOptimize(table->process(rst));
  }
  if (table->size() != kTableCapacity * load / 100) state.SkipWithError("load drifted");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TableInsertRemove)->Arg(10)->Arg(50)->Arg(90);

// Lookup: a retransmitted SYN (same seq) of a random tracked tuple: found, nothing changes.
void BM_TableLookup(benchmark::State& state) {
  const auto load = static_cast<std::size_t>(state.range(0));
  auto table = filled_table(kTableCapacity, load);
  const auto fill = static_cast<std::uint32_t>(kTableCapacity * load / 100);
  std::uint32_t i = 0;
  for (auto _ : state) {
    const std::uint32_t k = (i++ * 2654435761u) % fill;
    const FlowUpdate update = table->process(syn_segment(k, kStart));
    benchmark::DoNotOptimize(update);
  }
  if (table->counters().syn_retransmits != static_cast<std::uint64_t>(state.iterations())) {
    state.SkipWithError("lookups missed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TableLookup)->Arg(10)->Arg(50)->Arg(90);

// Miss: a SYN-ACK nobody asked for (backscatter) probes to an empty slot.
void BM_TableMiss(benchmark::State& state) {
  const auto load = static_cast<std::size_t>(state.range(0));
  auto table = filled_table(kTableCapacity, load);
  std::uint32_t k = 1u << 31;
  for (auto _ : state) {
    TcpSegment s = syn_segment(k++, kStart);
    s.flags = tcp_flag::kSyn | tcp_flag::kAck;
    benchmark::DoNotOptimize(table->process(s));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TableMiss)->Arg(10)->Arg(50)->Arg(90);

void BM_HllAddAddress(benchmark::State& state) {
  SourceHll hll;
  std::uint32_t k = 0;
  for (auto _ : state) {
    hll.add_hash(SourceHll::hash_address(nth_source(k++)));
  }
  benchmark::DoNotOptimize(hll);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HllAddAddress);

// The spoofed-flood case: nearly every address new, each evicting the minimum counter.
void BM_SpaceSavingAddNew(benchmark::State& state) {
  SourceSummary summary;
  std::uint32_t k = 0;
  for (auto _ : state) summary.add(nth_source(k++));
  benchmark::DoNotOptimize(summary);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpaceSavingAddNew);

// The concentrated case: a few sources, every add a hit.
void BM_SpaceSavingAddHit(benchmark::State& state) {
  SourceSummary summary;
  std::uint32_t k = 0;
  for (auto _ : state) summary.add(nth_source(k++ & 7));
  benchmark::DoNotOptimize(summary);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpaceSavingAddHit);

// 10,000 destinations, each with SYNs from many sources in every slot of the window;
// `attacked` of them above the half-open threshold.
struct Destinations {
  Config config;
  std::unique_ptr<DestinationTable> table;
  TimestampNs now = 0;

  Destinations(std::size_t count, std::size_t attacked, std::size_t syns_per_destination) {
    config.aggregation.max_destinations = count;
    table = std::make_unique<DestinationTable>(config.aggregation, config.detection.tick,
                                               config.detection.half_open, 7);
    const std::size_t ticks =
        static_cast<std::size_t>(config.aggregation.window / config.detection.tick);
    std::uint32_t k = 0;
    for (std::size_t d = 0; d < count; ++d) {
      FlowUpdate update;
      update.event = FlowEvent::kSyn;
      update.server = Endpoint{IpAddress::from_v4(0x0a000000u + static_cast<std::uint32_t>(d)), 80};
      const std::size_t syns = d < attacked ? config.detection.half_open * 2 : syns_per_destination;
      for (std::size_t i = 0; i < syns; ++i) {
        update.client = nth_source(k++);
        const TimestampNs t = kStart + static_cast<TimestampNs>(i % ticks) * config.detection.tick;
        table->on_flow(update, t);
        // Every handshake goes stale: what the flood condition and the source figures are over.
        table->on_stale(update.server, update.client, t);
      }
    }
    now = kStart + static_cast<TimestampNs>(ticks) * config.detection.tick;
  }
};

void BM_DestinationStats(benchmark::State& state) {
  Destinations destinations(10'000, 0, 200);
  Destination* d = destinations.table->find(Endpoint{IpAddress::from_v4(0x0a000000u + 1234), 80});
  if (d == nullptr) {
    state.SkipWithError("destination missing");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(destinations.table->stats(*d, destinations.now, 10));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DestinationStats);

// One detector evaluation over 10,000 tracked destinations, `range(0)` of them under attack
// (full statistics and, once, the started event for those), with the settling of the stale
// levels that precedes it in the engine.
void BM_DetectorTick(benchmark::State& state) {
  Destinations destinations(10'000, static_cast<std::size_t>(state.range(0)), 20);
  Detector detector(destinations.config.detection, destinations.config.aggregation.top_sources);
  NullSink sink;
  TimestampNs now = destinations.now;
  destinations.table->settle(now);
  detector.evaluate(now, *destinations.table, sink);  // incidents start outside the timing
  for (auto _ : state) {
    now += kNanosPerMilli;  // stays inside the window: the same work every tick
    destinations.table->settle(now);
    detector.evaluate(now, *destinations.table, sink);
  }
  if (detector.open_incidents() != static_cast<std::size_t>(state.range(0))) {
    state.SkipWithError("unexpected incident count");
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["destinations"] = 10'000;
}
BENCHMARK(BM_DetectorTick)->Arg(0)->Arg(10)->Arg(100)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace synwatch::bench
