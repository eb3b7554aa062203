// The kernel view: polls of the kernel's SYN_RECV sockets and TcpExt counters, through
// KernelDestinations, judged by the shared detector; the figures it adds to events and snapshots.
#include <netinet/tcp.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "engine/kernel_view.hpp"

namespace synwatch {
namespace {

struct Collect final : EventSink {
  std::vector<IncidentEvent> events;
  void publish(const IncidentEvent& e) override { events.push_back(e); }
};

const Endpoint kServer{*IpAddress::parse("198.51.100.1"), 8080};

std::vector<KernelSocket> random_syn_recv(std::size_t count, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<KernelSocket> out;
  for (std::size_t i = 0; i < count; ++i) {
    KernelSocket s;
    s.local = kServer;
    s.remote = {IpAddress::from_v4(0xc6120000u | (rng() & 0x1ffff)),
                static_cast<std::uint16_t>(1024 + rng() % 60000)};
    s.state = TCP_SYN_RECV;
    out.push_back(s);
  }
  return out;
}

constexpr TimestampNs kT0 = 1'700'000'000 * kNanosPerSecond;

void poll(KernelView& view, std::span<const KernelSocket> syn_recv,
          std::span<const KernelListener> listeners, const std::optional<TcpExtStats>& counters,
          TimestampNs now, EventSink& sink, std::vector<KernelSocket> completed = {}) {
  view.begin_poll(syn_recv);
  std::sort(completed.begin(), completed.end());
  view.finish_poll(completed, listeners, counters, now, sink);
}

TEST(KernelView, ManySynRecvFromRandomSourcesIsSpoofedRandom) {
  Config config;
  KernelView view(config, kNanosPerSecond);
  Collect sink;
  const std::vector<KernelListener> listeners{{kServer, false, 0, 4096}};
  std::vector<KernelSocket> table;
  for (int second = 0; second < 4; ++second) {
    const auto more = random_syn_recv(200, static_cast<std::uint32_t>(second));
    table.insert(table.end(), more.begin(), more.end());
    poll(view, table, listeners, TcpExtStats{}, kT0 + second * kNanosPerSecond, sink);
  }
  ASSERT_EQ(sink.events.size(), 1u);
  const auto& e = sink.events[0];
  EXPECT_EQ(e.type, EventType::kStarted);
  EXPECT_EQ(e.kind, AttackKind::kSpoofedRandom) << e.reason;
  EXPECT_EQ(e.target, kServer);
  // A request socket is stale once it is 1 s old (the initial SYN-ACK timeout): 200 stale at
  // the second poll, 400 at the third (crossed 256), held for `for` by the fourth: started there.
  EXPECT_EQ(e.stats.syn_recv, 800u);
  EXPECT_EQ(e.stats.stale, 400u);  // the window ends with the tick this poll closed
  EXPECT_EQ(e.time, kT0 + 3 * kNanosPerSecond);
  ASSERT_TRUE(e.kernel);
  EXPECT_EQ(e.kernel->syn_recv, 800u);
  EXPECT_EQ(e.kernel->backlog, 4096u);
  EXPECT_GT(e.kernel->source_entropy, 0.9);
  EXPECT_EQ(view.syn_recv_total(), 800u);
}

TEST(KernelView, VanishedSocketsCompleteWhenEstablishedElseExpire) {
  Config config;
  KernelView view(config, kNanosPerSecond);
  Collect sink;
  const std::vector<KernelListener> listeners{{kServer, false, 0, 4096}};
  const auto table = random_syn_recv(300, 7);
  poll(view, table, listeners, std::nullopt, kT0, sink);
  EXPECT_EQ(view.destinations().size(), 1u);
  // 200 of them complete (now ESTABLISHED), 100 go away unanswered.
  std::vector<KernelSocket> established(table.begin(), table.begin() + 200);
  for (auto& s : established) s.state = TCP_ESTABLISHED;
  const auto ports = view.begin_poll({});
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_EQ(ports[0], 8080);
  std::sort(established.begin(), established.end());
  view.finish_poll(established, listeners, std::nullopt, kT0 + kNanosPerSecond, sink);
  Destination* d = const_cast<DestinationTable&>(view.destinations()).find(kServer);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->half_open(), 0u);
  EXPECT_EQ(d->totals.completed, 200u);
  EXPECT_EQ(d->totals.expired, 100u);
  EXPECT_TRUE(sink.events.empty()) << "a burst that completes is no flood";
}

TEST(KernelView, SynCookiesOnAFullListenerStillRaiseAnIncident) {
  Config config;
  KernelView view(config, kNanosPerSecond);
  Collect sink;
  // A listener with backlog 128 whose SYN queue is full: the kernel's table cannot pass 128,
  // below the threshold of 256, so only the cookie counters can tell.
  const std::vector<KernelListener> listeners{{kServer, false, 0, 128}};
  const auto table = random_syn_recv(128, 3);
  TcpExtStats counters;
  for (int second = 0; second < 4; ++second) {
    poll(view, table, listeners, counters, kT0 + second * kNanosPerSecond, sink);
    counters.syncookies_sent += 5000;
  }
  ASSERT_FALSE(sink.events.empty());
  const auto& e = sink.events[0];
  EXPECT_EQ(e.target, kServer);
  ASSERT_TRUE(e.kernel);
  EXPECT_EQ(e.kernel->syn_recv, 128u);
  EXPECT_GE(e.kernel->stateless, 5000u);
  EXPECT_NEAR(e.kernel->syncookies_sent_rate, 5000.0, 1.0);
  EXPECT_EQ(e.kind, AttackKind::kSpoofedRandom)
      << "the sources of the requests the kernel kept are random: " << e.reason;
  EXPECT_EQ(view.unattributed_syncookies(), 0u);
}

TEST(KernelView, CookiesWithNoFullListenerAreUnattributedAndRaiseNothing) {
  Config config;
  KernelView view(config, kNanosPerSecond);
  Collect sink;
  const std::vector<KernelListener> listeners{{kServer, false, 0, 4096}};
  const auto table = random_syn_recv(10, 3);
  TcpExtStats counters;
  for (int second = 0; second < 4; ++second) {
    poll(view, table, listeners, counters, kT0 + second * kNanosPerSecond, sink);
    counters.syncookies_sent += 1000;
  }
  EXPECT_TRUE(sink.events.empty());
  EXPECT_EQ(view.unattributed_syncookies(), 3000u);
}

TEST(KernelView, ValidatedCookiesCountAsCompletedSoABurstIsNoFlood) {
  Config config;
  KernelView view(config, kNanosPerSecond);
  Collect sink;
  const std::vector<KernelListener> listeners{{kServer, false, 0, 128}};
  const auto table = random_syn_recv(128, 3);
  TcpExtStats counters;
  for (int second = 0; second < 4; ++second) {
    poll(view, table, listeners, counters, kT0 + second * kNanosPerSecond, sink);
    counters.syncookies_sent += 1000;
    counters.syncookies_recv += 1000;  // every cookie came back: real clients
  }
  EXPECT_TRUE(sink.events.empty());
}

TEST(KernelView, WildcardListenerServesEveryLocalAddressAndFiguresFollowIt) {
  Config config;
  KernelView view(config, kNanosPerSecond);
  Collect sink;
  const Endpoint wildcard{IpAddress::from_v4(std::uint32_t{0}), 8080};
  const std::vector<KernelListener> listeners{{wildcard, false, 3, 64}};
  const auto table = random_syn_recv(64, 5);
  poll(view, table, listeners, TcpExtStats{}, kT0, sink);
  const auto figures = view.figures_for(kServer);
  ASSERT_TRUE(figures);
  EXPECT_EQ(figures->backlog, 64u);
  EXPECT_EQ(figures->accept_queue, 3u);
  EXPECT_EQ(figures->syn_recv, 64u);
  KernelViewSnapshot snapshot;
  view.fill_snapshot(snapshot, 10);
  ASSERT_EQ(snapshot.listeners.size(), 1u);
  EXPECT_EQ(snapshot.listeners[0].syn_recv, 64u);
  ASSERT_EQ(snapshot.destinations.size(), 1u);
  EXPECT_EQ(snapshot.destinations[0].syn_recv, 64u);
}

TEST(KernelFiguresSink, AddsKernelFiguresToWireEvents) {
  Config config;
  KernelView view(config, kNanosPerSecond);
  Collect collected;
  KernelFiguresSink sink(collected);
  IncidentEvent wire;
  wire.target = kServer;
  sink.publish(wire);
  ASSERT_EQ(collected.events.size(), 1u);
  EXPECT_FALSE(collected.events[0].kernel) << "no view attached";
  sink.attach(&view);
  poll(view, random_syn_recv(50, 1), std::vector<KernelListener>{{kServer, false, 0, 511}},
       std::nullopt, kT0, collected);
  sink.publish(wire);
  ASSERT_EQ(collected.events.size(), 2u);
  ASSERT_TRUE(collected.events[1].kernel);
  EXPECT_EQ(collected.events[1].kernel->syn_recv, 50u);
  EXPECT_EQ(collected.events[1].kernel->backlog, 511u);
}

}  // namespace
}  // namespace synwatch
