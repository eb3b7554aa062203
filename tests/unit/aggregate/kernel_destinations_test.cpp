// KernelDestinations: the kernel's SYN_RECV sockets, poll after poll, as per-destination
// half-open connections (first-seen times, stale or young, completed or expired) and the SYN
// cookie counters attributed to full listeners.
#include <netinet/tcp.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "aggregate/kernel_destinations.hpp"

namespace synwatch {
namespace {

constexpr TimestampNs kT0 = 1'700'000'000 * kNanosPerSecond;
constexpr DurationNs kHalfSecond = kNanosPerSecond / 2;
const Endpoint kServer{*IpAddress::parse("198.51.100.1"), 8080};
const Endpoint kOtherAddress{*IpAddress::parse("198.51.100.2"), 8080};
const Endpoint kOtherPort{*IpAddress::parse("198.51.100.1"), 9090};

KernelSocket request(const Endpoint& local, std::uint32_t peer) {
  KernelSocket s;
  s.local = local;
  s.remote = {IpAddress::from_v4(0xc6120000u + peer), static_cast<std::uint16_t>(1024 + peer)};
  s.state = TCP_SYN_RECV;
  return s;
}

std::vector<KernelSocket> requests(const Endpoint& local, std::uint32_t first,
                                   std::uint32_t count) {
  std::vector<KernelSocket> out;
  for (std::uint32_t i = 0; i < count; ++i) out.push_back(request(local, first + i));
  return out;
}

std::vector<KernelSocket> joined(std::vector<KernelSocket> a, const std::vector<KernelSocket>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void poll(KernelDestinations& view, const std::vector<KernelSocket>& syn_recv, TimestampNs now,
          std::vector<KernelSocket> completed = {},
          const std::vector<KernelListener>& listeners = {},
          const std::optional<TcpExtStats>& counters = std::nullopt) {
  view.begin_poll(syn_recv);
  std::sort(completed.begin(), completed.end());
  view.finish_poll(completed, listeners, counters, now);
}

const Destination& destination(const KernelDestinations& view, const Endpoint& target) {
  const Destination* d = view.table().find(target);
  EXPECT_NE(d, nullptr) << target.to_string();
  static const Destination untracked;
  return d == nullptr ? untracked : *d;
}

// ---- stale or young, from the time each 4-tuple was first seen ---------------------------------

TEST(KernelDestinations, ANewSocketIsAnAnsweredHalfOpenConnectionYoungUntilTheNoHistoryAge) {
  KernelDestinations view(Config{}, kNanosPerSecond);
  EXPECT_EQ(view.stale_after(), kNanosPerSecond) << "detection.stale.no_history";
  const auto sockets = requests(kServer, 0, 10);
  poll(view, sockets, kT0);
  const Destination& d = destination(view, kServer);
  EXPECT_EQ(d.syn_recv, 10u);
  EXPECT_EQ(d.syn_seen, 0u);
  EXPECT_EQ(d.totals.syns, 10u);
  EXPECT_EQ(d.totals.synacks, 10u) << "the kernel answered each: it holds them in SYN_RECV";
  EXPECT_EQ(d.stale_level, 0u);
  poll(view, sockets, kT0 + kHalfSecond);
  EXPECT_EQ(d.stale_level, 0u) << "half a second old: young";
  poll(view, sockets, kT0 + kNanosPerSecond);
  EXPECT_EQ(d.stale_level, 10u) << "1 s old: stale";
  EXPECT_EQ(d.syn_recv, 10u) << "still there: still half-open";
  EXPECT_EQ(d.totals.syns, 10u) << "a socket seen again is no new SYN";
  const DestinationStats stats = view.table().stats(d, kT0 + 2 * kNanosPerSecond, 3);
  EXPECT_EQ(stats.window.stale, 10u);
  EXPECT_EQ(stats.sourced_stale, 10u) << "stale kernel sockets carry their sources";
  EXPECT_NEAR(stats.distinct_sources, 10.0, 1.0);
}

TEST(KernelDestinations, EachSocketIsJudgedFromThePollThatFirstSawIt) {
  KernelDestinations view(Config{}, kNanosPerSecond);
  const auto early = requests(kServer, 0, 10);
  const auto later = requests(kServer, 100, 5);
  poll(view, early, kT0);
  poll(view, joined(early, later), kT0 + kHalfSecond);
  const Destination& d = destination(view, kServer);
  EXPECT_EQ(d.syn_recv, 15u);
  poll(view, joined(early, later), kT0 + kNanosPerSecond);
  EXPECT_EQ(d.stale_level, 10u) << "only the early ones are 1 s old";
  poll(view, joined(early, later), kT0 + 3 * kHalfSecond);
  EXPECT_EQ(d.stale_level, 15u);
  EXPECT_EQ(d.totals.stale, 15u) << "each judged once";
}

TEST(KernelDestinations, TheJudgementAgeIsDetectionStaleNoHistory) {
  Config config;
  config.detection.stale.no_history = 3 * kNanosPerSecond;
  KernelDestinations view(config, kNanosPerSecond);
  EXPECT_EQ(view.stale_after(), 3 * kNanosPerSecond);
  const auto sockets = requests(kServer, 0, 4);
  for (int second = 0; second < 3; ++second) poll(view, sockets, kT0 + second * kNanosPerSecond);
  EXPECT_EQ(destination(view, kServer).stale_level, 0u) << "2 s old: young";
  poll(view, sockets, kT0 + 3 * kNanosPerSecond);
  EXPECT_EQ(destination(view, kServer).stale_level, 4u);
}

TEST(KernelDestinations, ASocketThatVanishesAndComesBackIsANewHalfOpenConnection) {
  KernelDestinations view(Config{}, kNanosPerSecond);
  const auto socket = requests(kServer, 0, 1);
  poll(view, socket, kT0);
  poll(view, {}, kT0 + kHalfSecond);
  poll(view, socket, kT0 + kNanosPerSecond);
  const Destination& d = destination(view, kServer);
  EXPECT_EQ(d.totals.syns, 2u);
  EXPECT_EQ(d.totals.expired, 1u);
  poll(view, socket, kT0 + 3 * kHalfSecond);
  EXPECT_EQ(d.totals.stale, 1u) << "the failed first one only: the second is half a second old";
}

// ---- vanished: completed or expired ------------------------------------------------------------

TEST(KernelDestinations, VanishedSocketsCompleteWhenEstablishedElseExpire) {
  KernelDestinations view(Config{}, kNanosPerSecond);
  const auto sockets = requests(kServer, 0, 30);
  poll(view, sockets, kT0);
  std::vector<KernelSocket> established(sockets.begin(), sockets.begin() + 20);
  for (auto& s : established) s.state = TCP_ESTABLISHED;
  const auto ports = view.begin_poll({});
  ASSERT_EQ(ports.size(), 1u) << "the ports to ask the kernel about";
  EXPECT_EQ(ports[0], kServer.port);
  std::sort(established.begin(), established.end());
  view.finish_poll(established, {}, std::nullopt, kT0 + kHalfSecond);
  const Destination& d = destination(view, kServer);
  EXPECT_EQ(d.half_open(), 0u);
  EXPECT_EQ(d.totals.completed, 20u);
  EXPECT_EQ(d.totals.expired, 10u);
  const DestinationStats stats = view.table().stats(d, kT0 + kNanosPerSecond, 3);
  EXPECT_EQ(stats.window.completed, 20u);
  EXPECT_EQ(stats.window.expired, 10u);
  EXPECT_EQ(stats.window.unanswered, 0u) << "the kernel had answered them";
  EXPECT_EQ(stats.window.stale, 10u) << "young ones that expired failed";
  EXPECT_EQ(stats.window.failed, 10u);
}

TEST(KernelDestinations, AStaleConnectionThatCompletesLeavesTheStaleCount) {
  KernelDestinations view(Config{}, kNanosPerSecond);
  const auto sockets = requests(kServer, 0, 6);
  poll(view, sockets, kT0);
  poll(view, sockets, kT0 + kNanosPerSecond);
  const Destination& d = destination(view, kServer);
  ASSERT_EQ(d.stale_level, 6u);
  // Four complete late (a retransmitted SYN-ACK answered), two are given up on.
  std::vector<KernelSocket> established(sockets.begin(), sockets.begin() + 4);
  poll(view, {}, kT0 + 3 * kHalfSecond, established);
  EXPECT_EQ(d.totals.completed, 4u);
  EXPECT_EQ(d.totals.expired, 2u);
  EXPECT_EQ(d.stale_level, 2u) << "late completions are taken back; expiry counts no second time";
  const DestinationStats stats = view.table().stats(d, kT0 + 2 * kNanosPerSecond, 3);
  EXPECT_EQ(stats.window.late_completed, 4u);
  EXPECT_EQ(stats.window.failed, 0u) << "judged stale before they went";
}

TEST(KernelDestinations, OnlyProtectedDestinationsAreCountedButTheKernelsFiguresCoverAll) {
  Config config;
  config.protected_prefixes = {*IpPrefix::parse("198.51.100.2/32")};
  KernelDestinations view(config, kNanosPerSecond);
  const std::vector<KernelListener> wildcard{
      {{IpAddress::from_v4(std::uint32_t{0}), 8080}, false, 0, 1024}};
  const auto sockets = joined(requests(kServer, 0, 5), requests(kOtherAddress, 0, 3));
  poll(view, sockets, kT0, {}, wildcard);
  poll(view, sockets, kT0 + kNanosPerSecond, {}, wildcard);
  EXPECT_EQ(view.table().find(kServer), nullptr) << "not protected";
  EXPECT_EQ(destination(view, kOtherAddress).stale_level, 3u);
  EXPECT_EQ(view.syn_recv_total(), 8u);
  ASSERT_EQ(view.listeners().size(), 1u);
  EXPECT_EQ(view.listeners()[0].syn_recv, 8u);
  // Protection is decided when a connection is first seen: one counted stays counted.
  Config widened = config;
  widened.protected_prefixes.clear();
  view.reconfigure(widened);
  poll(view, requests(kOtherAddress, 0, 3), kT0 + 3 * kHalfSecond, {}, wildcard);
  EXPECT_EQ(view.table().find(kServer), nullptr) << "vanished unprotected: nothing to undo";
  EXPECT_EQ(destination(view, kOtherAddress).syn_recv, 3u);
}

TEST(KernelDestinations, WildcardListenerServesEveryLocalAddressExactOneFirst) {
  KernelDestinations view(Config{}, kNanosPerSecond);
  const std::vector<KernelListener> listeners{
      {{IpAddress::from_v4(std::uint32_t{0}), 8080}, false, 1, 64},
      {kOtherAddress, false, 2, 32},
      {{IpAddress{}, 9090}, true, 3, 16}};
  const auto sockets = joined(joined(requests(kServer, 0, 5), requests(kOtherAddress, 0, 3)),
                              requests(kOtherPort, 0, 2));
  poll(view, sockets, kT0, {}, listeners);
  const KernelListenerStats* any = view.listener_for(kServer);
  ASSERT_NE(any, nullptr);
  EXPECT_EQ(any->backlog, 64u);
  EXPECT_EQ(any->syn_recv, 5u);
  const KernelListenerStats* exact = view.listener_for(kOtherAddress);
  ASSERT_NE(exact, nullptr);
  EXPECT_EQ(exact->backlog, 32u);
  EXPECT_EQ(exact->syn_recv, 3u);
  const KernelListenerStats* v6_any = view.listener_for(kOtherPort);
  ASSERT_NE(v6_any, nullptr) << "a wildcard :: listener takes IPv4 too";
  EXPECT_EQ(v6_any->syn_recv, 2u);
  EXPECT_EQ(view.listener_for({kServer.address, 7}), nullptr);
}

// ---- SYN cookies -------------------------------------------------------------------------------

TEST(KernelDestinations, CookiesGoToFullListenersEvenlyAndToTheirAddressesBySynRecv) {
  KernelDestinations view(Config{}, kNanosPerSecond);
  // Port 8080 on every address is full (30 of 30: 20 to one address, 10 to another); port 9090
  // is full too; a third listener has room and gets none.
  const Endpoint roomy{kServer.address, 7070};
  const std::vector<KernelListener> listeners{
      {{IpAddress::from_v4(std::uint32_t{0}), 8080}, false, 0, 30},
      {kOtherPort, false, 0, 4},
      {roomy, false, 0, 100}};
  const auto sockets =
      joined(joined(joined(requests(kServer, 0, 20), requests(kOtherAddress, 0, 10)),
                    requests(kOtherPort, 0, 4)),
             requests(roomy, 0, 5));
  TcpExtStats counters;
  poll(view, sockets, kT0, {}, listeners, counters);
  counters.syncookies_sent += 6000;
  poll(view, sockets, kT0 + kNanosPerSecond, {}, listeners, counters);
  EXPECT_EQ(destination(view, kServer).stateless, 2000u);
  EXPECT_EQ(destination(view, kOtherAddress).stateless, 1000u);
  EXPECT_EQ(destination(view, kOtherPort).stateless, 3000u);
  EXPECT_EQ(destination(view, roomy).stateless, 0u);
  EXPECT_EQ(view.unattributed_syncookies(), 0u);
  EXPECT_NEAR(view.syncookies_sent_rate(), 6000.0, 1e-6);
  const Destination& d = destination(view, kOtherPort);
  EXPECT_EQ(d.half_open(), 3004u) << "4 request sockets and 3000 answered statelessly";
  EXPECT_GE(d.flood_level(), 3000u) << "cookies count toward the threshold at once";
  const DestinationStats stats = view.table().stats(d, kT0 + 2 * kNanosPerSecond, 3);
  EXPECT_EQ(stats.window.syns, 3004u) << "cookie SYNs are SYNs, without a source";
  EXPECT_EQ(stats.window.unanswered, 3000u);
}

TEST(KernelDestinations, ValidatedCookiesAreCompletedHandshakes) {
  KernelDestinations view(Config{}, kNanosPerSecond);
  const std::vector<KernelListener> listeners{{kServer, false, 0, 8}};
  const auto sockets = requests(kServer, 0, 8);
  TcpExtStats counters;
  poll(view, sockets, kT0, {}, listeners, counters);
  counters.syncookies_sent += 500;
  counters.syncookies_recv += 500;
  poll(view, sockets, kT0 + kNanosPerSecond, {}, listeners, counters);
  const Destination& d = destination(view, kServer);
  EXPECT_EQ(d.stateless, 0u) << "every cookie came back";
  EXPECT_EQ(d.totals.completed, 500u);
}

TEST(KernelDestinations, CookiesLeaveAfterTheAggregationWindow) {
  KernelDestinations view(Config{}, kNanosPerSecond);  // window 5 s, a poll a second: 5 polls
  const std::vector<KernelListener> listeners{{kServer, false, 0, 8}};
  const auto sockets = requests(kServer, 0, 8);
  TcpExtStats counters;
  poll(view, sockets, kT0, {}, listeners, counters);
  counters.syncookies_sent += 1000;
  poll(view, sockets, kT0 + kNanosPerSecond, {}, listeners, counters);
  const Destination& d = destination(view, kServer);
  for (int second = 2; second <= 5; ++second) {
    poll(view, sockets, kT0 + second * kNanosPerSecond, {}, listeners, counters);
    EXPECT_EQ(d.stateless, 1000u) << second;
  }
  poll(view, sockets, kT0 + 6 * kNanosPerSecond, {}, listeners, counters);
  EXPECT_EQ(d.stateless, 0u);
}

TEST(KernelDestinations, CookiesWithNoFullListenerAreUnattributed) {
  KernelDestinations view(Config{}, kNanosPerSecond);
  const std::vector<KernelListener> listeners{{kServer, false, 0, 4096}};
  const auto sockets = requests(kServer, 0, 10);
  TcpExtStats counters;
  for (int second = 0; second < 4; ++second) {
    poll(view, sockets, kT0 + second * kNanosPerSecond, {}, listeners, counters);
    counters.syncookies_sent += 1000;
  }
  EXPECT_EQ(view.unattributed_syncookies(), 3000u);
  EXPECT_EQ(destination(view, kServer).stateless, 0u);
}

}  // namespace
}  // namespace synwatch
