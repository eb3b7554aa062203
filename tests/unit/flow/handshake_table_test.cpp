#include "flow/handshake_table.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <tuple>
#include <vector>

namespace synwatch {
namespace {

constexpr DurationNs kTimeout = 10 * kNanosPerSecond;
constexpr TimestampNs kT0 = 1'700'000'000 * kNanosPerSecond;  // ms-aligned

IpAddress v4(std::uint32_t host_order) {
  return IpAddress::from_v4(host_order);
}
IpAddress v6(const char* text) {
  return *IpAddress::parse(text);
}

struct Packet {
  Endpoint from;
  Endpoint to;
};

TcpSegment segment(const Packet& p, std::uint8_t flags, std::uint32_t seq, std::uint32_t ack,
                   TimestampNs t) {
  TcpSegment s;
  s.timestamp = t;
  s.source = p.from.address;
  s.source_port = p.from.port;
  s.destination = p.to.address;
  s.destination_port = p.to.port;
  s.flags = flags;
  s.seq = seq;
  s.ack = ack;
  return s;
}

// A client and a server and helpers that build each handshake segment between them.
struct Conversation {
  Endpoint client;
  Endpoint server;

  [[nodiscard]] TcpSegment syn(std::uint32_t seq, TimestampNs t = kT0) const {
    return segment({client, server}, tcp_flag::kSyn, seq, 0, t);
  }
  [[nodiscard]] TcpSegment syn_ack(std::uint32_t seq, std::uint32_t ack,
                                   TimestampNs t = kT0) const {
    return segment({server, client}, tcp_flag::kSyn | tcp_flag::kAck, seq, ack, t);
  }
  [[nodiscard]] TcpSegment ack(std::uint32_t seq, std::uint32_t ack, TimestampNs t = kT0) const {
    return segment({client, server}, tcp_flag::kAck, seq, ack, t);
  }
  [[nodiscard]] TcpSegment client_segment(std::uint8_t flags, std::uint32_t seq = 0,
                                          std::uint32_t ack = 0, TimestampNs t = kT0) const {
    return segment({client, server}, flags, seq, ack, t);
  }
  [[nodiscard]] TcpSegment server_segment(std::uint8_t flags, std::uint32_t seq = 0,
                                          std::uint32_t ack = 0, TimestampNs t = kT0) const {
    return segment({server, client}, flags, seq, ack, t);
  }
};

const Conversation kConversation4{{v4(0xc6336407), 51000},
                                  {v4(0x0a000001), 80}};  // 198.51.100.7 -> 10.0.0.1
// The client's (address, port) compares greater than the server's here, the opposite of
// kConversation4, so both canonical orders are exercised.
const Conversation kConversation6{{v6("2001:db8::99"), 40000}, {v6("2001:db8::1"), 443}};

void expect_describes(const FlowUpdate& u, const Conversation& c) {
  EXPECT_EQ(u.server, c.server);
  EXPECT_EQ(u.client, c.client.address);
}

void full_handshake(const Conversation& c) {
  HandshakeTable table(16, kTimeout);
  FlowUpdate u = table.process(c.syn(1000));
  EXPECT_EQ(u.event, FlowEvent::kSyn);
  EXPECT_EQ(u.previous_state, HandshakeState::kSynSeen);
  EXPECT_FALSE(u.evicted);
  expect_describes(u, c);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.count(HandshakeState::kSynSeen), 1u);

  u = table.process(c.syn_ack(5000, 1001));
  EXPECT_EQ(u.event, FlowEvent::kSynAck);
  EXPECT_EQ(u.previous_state, HandshakeState::kSynSeen);
  expect_describes(u, c);
  EXPECT_EQ(table.count(HandshakeState::kSynSeen), 0u);
  EXPECT_EQ(table.count(HandshakeState::kSynRecv), 1u);

  u = table.process(c.ack(1001, 5001));
  EXPECT_EQ(u.event, FlowEvent::kCompleted);
  EXPECT_EQ(u.previous_state, HandshakeState::kSynRecv);
  expect_describes(u, c);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.counters().inserted, 1u);
  EXPECT_EQ(table.counters().synacks, 1u);
  EXPECT_EQ(table.counters().completed, 1u);

  // Gone: the same ACK again belongs to nothing.
  EXPECT_EQ(table.process(c.ack(1001, 5001)).event, FlowEvent::kNone);
}

TEST(HandshakeTable, FullHandshakeIpv4) {
  full_handshake(kConversation4);
}
TEST(HandshakeTable, FullHandshakeIpv6) {
  full_handshake(kConversation6);
}

TEST(HandshakeTable, SynAckWithWrongAckIsAMismatchAndKeepsTheEntry) {
  HandshakeTable table(16, kTimeout);
  table.process(kConversation4.syn(1000));
  FlowUpdate u = table.process(kConversation4.syn_ack(5000, 1000));
  EXPECT_EQ(u.event, FlowEvent::kMismatch);
  EXPECT_EQ(u.previous_state, HandshakeState::kSynSeen);
  expect_describes(u, kConversation4);
  EXPECT_EQ(table.counters().mismatches, 1u);
  EXPECT_EQ(table.count(HandshakeState::kSynSeen), 1u);
  EXPECT_EQ(table.process(kConversation4.syn_ack(5000, 1001)).event, FlowEvent::kSynAck);
}

TEST(HandshakeTable, WrongFinalAckIsAMismatchThenTheRightOneCompletes) {
  HandshakeTable table(16, kTimeout);
  table.process(kConversation6.syn(0xffffffff));  // syn_seq + 1 wraps to 0
  ASSERT_EQ(table.process(kConversation6.syn_ack(0xfffffffe, 0)).event, FlowEvent::kSynAck);
  FlowUpdate u = table.process(kConversation6.ack(0, 0));
  EXPECT_EQ(u.event, FlowEvent::kMismatch);
  EXPECT_EQ(u.previous_state, HandshakeState::kSynRecv);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.counters().mismatches, 1u);
  u = table.process(kConversation6.ack(0, 0xffffffff));
  EXPECT_EQ(u.event, FlowEvent::kCompleted);
  EXPECT_EQ(table.size(), 0u);
}

TEST(HandshakeTable, RetransmittedSynIsNotCountedTwice) {
  HandshakeTable table(16, kTimeout);
  table.process(kConversation4.syn(1000));
  FlowUpdate u = table.process(kConversation4.syn(1000, kT0 + kNanosPerSecond));
  EXPECT_EQ(u.event, FlowEvent::kSynRetransmit);
  EXPECT_EQ(u.previous_state, HandshakeState::kSynSeen);
  expect_describes(u, kConversation4);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.counters().inserted, 1u);
  EXPECT_EQ(table.counters().syn_retransmits, 1u);
  // A retransmission keeps the first SYN's age.
  int expired = 0;
  table.expire(kT0 + kTimeout,
               [&](const Endpoint&, const IpAddress&, HandshakeState, bool) { ++expired; });
  EXPECT_EQ(expired, 1);
}

TEST(HandshakeTable, SynWithNewSeqRestartsTheHandshake) {
  HandshakeTable table(16, kTimeout);
  table.process(kConversation4.syn(1000));
  table.process(kConversation4.syn_ack(5000, 1001));
  FlowUpdate u = table.process(kConversation4.syn(2000, kT0 + 3 * kNanosPerSecond));
  EXPECT_EQ(u.event, FlowEvent::kSynRetransmit);
  EXPECT_EQ(u.previous_state, HandshakeState::kSynRecv);
  EXPECT_EQ(table.count(HandshakeState::kSynSeen), 1u);
  EXPECT_EQ(table.count(HandshakeState::kSynRecv), 0u);
  EXPECT_EQ(table.counters().inserted, 1u);
  // The old SYN-ACK no longer matches; the answer to the new SYN does.
  EXPECT_EQ(table.process(kConversation4.syn_ack(5000, 1001)).event, FlowEvent::kMismatch);
  EXPECT_EQ(table.process(kConversation4.syn_ack(6000, 2001)).event, FlowEvent::kSynAck);
  // The restart also restarted the age.
  int expired = 0;
  const auto count = [&](const Endpoint&, const IpAddress&, HandshakeState, bool) { ++expired; };
  table.expire(kT0 + kTimeout, count);
  EXPECT_EQ(expired, 0);
  table.expire(kT0 + 3 * kNanosPerSecond + kTimeout, count);
  EXPECT_EQ(expired, 1);
}

TEST(HandshakeTable, RetransmittedSynAckUpdatesTheExpectedFinalAck) {
  HandshakeTable table(16, kTimeout);
  table.process(kConversation6.syn(1000));
  ASSERT_EQ(table.process(kConversation6.syn_ack(5000, 1001)).event, FlowEvent::kSynAck);
  FlowUpdate u = table.process(kConversation6.syn_ack(7000, 1001));
  EXPECT_EQ(u.event, FlowEvent::kSynAckRetransmit);
  EXPECT_EQ(u.previous_state, HandshakeState::kSynRecv);
  expect_describes(u, kConversation6);
  EXPECT_EQ(table.counters().synack_retransmits, 1u);
  EXPECT_EQ(table.count(HandshakeState::kSynRecv), 1u);
  EXPECT_EQ(table.process(kConversation6.ack(1001, 5001)).event, FlowEvent::kMismatch);
  EXPECT_EQ(table.process(kConversation6.ack(1001, 7001)).event, FlowEvent::kCompleted);
}

TEST(HandshakeTable, RstFromEitherSideInEitherStateResets) {
  struct Case {
    bool from_server;
    bool after_synack;
    std::uint8_t flags;
  };
  const Case cases[] = {
      {false, false, tcp_flag::kRst},
      {true, false, tcp_flag::kRst | tcp_flag::kAck},  // a closed port answering the SYN
      {false, true, tcp_flag::kRst},
      {true, true, tcp_flag::kRst},
      {false, true, tcp_flag::kRst | tcp_flag::kAck},
  };
  for (const Case& c : cases) {
    for (const Conversation* conv : {&kConversation4, &kConversation6}) {
      SCOPED_TRACE(testing::Message() << "from_server=" << c.from_server << " after_synack="
                                      << c.after_synack << " flags=" << int{c.flags});
      HandshakeTable table(16, kTimeout);
      table.process(conv->syn(1000));
      if (c.after_synack) table.process(conv->syn_ack(5000, 1001));
      // Server RSTs to a SYN carry seq 0; client RSTs any seq: neither is checked.
      const TcpSegment rst = c.from_server ? conv->server_segment(c.flags, 0, 1001)
                                           : conv->client_segment(c.flags, 123456);
      const FlowUpdate u = table.process(rst);
      EXPECT_EQ(u.event, FlowEvent::kReset);
      EXPECT_EQ(u.previous_state,
                c.after_synack ? HandshakeState::kSynRecv : HandshakeState::kSynSeen);
      expect_describes(u, *conv);
      EXPECT_EQ(table.size(), 0u);
      EXPECT_EQ(table.count(HandshakeState::kSynSeen), 0u);
      EXPECT_EQ(table.counters().reset, 1u);
      EXPECT_EQ(table.process(rst).event, FlowEvent::kNone);
    }
  }
}

TEST(HandshakeTable, FinAndServerAcksOnAPendingEntryAreIgnored) {
  HandshakeTable table(16, kTimeout);
  table.process(kConversation4.syn(1000));
  table.process(kConversation4.syn_ack(5000, 1001));
  EXPECT_EQ(
      table.process(kConversation4.client_segment(tcp_flag::kFin | tcp_flag::kAck, 1001, 5001))
          .event,
      FlowEvent::kNone);
  EXPECT_EQ(table.process(kConversation4.server_segment(tcp_flag::kAck, 5001, 1001)).event,
            FlowEvent::kNone);
  EXPECT_EQ(table.process(kConversation4.client_segment(tcp_flag::kPsh, 1001)).event,
            FlowEvent::kNone);
  // Wrong-way SYN and SYN-ACK (simultaneous open) leave the entry alone too.
  EXPECT_EQ(table.process(kConversation4.server_segment(tcp_flag::kSyn, 9)).event,
            FlowEvent::kNone);
  EXPECT_EQ(
      table.process(kConversation4.client_segment(tcp_flag::kSyn | tcp_flag::kAck, 9, 5001)).event,
      FlowEvent::kNone);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.count(HandshakeState::kSynRecv), 1u);
  EXPECT_EQ(table.process(kConversation4.ack(1001, 5001)).event, FlowEvent::kCompleted);
}

TEST(HandshakeTable, OneWayCaptureCompletesOnTheClientsAck) {
  HandshakeTable table(16, kTimeout);
  table.process(kConversation6.syn(1000));
  EXPECT_EQ(table.process(kConversation6.server_segment(tcp_flag::kAck, 1, 1001)).event,
            FlowEvent::kNone);
  const FlowUpdate u = table.process(kConversation6.ack(1001, 424242));
  EXPECT_EQ(u.event, FlowEvent::kCompleted);
  EXPECT_EQ(u.previous_state, HandshakeState::kSynSeen);
  expect_describes(u, kConversation6);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.count(HandshakeState::kSynSeen), 0u);
}

TEST(HandshakeTable, UnsolicitedSynAckNamesTheReflector) {
  HandshakeTable table(16, kTimeout);
  for (int round = 0; round < 2; ++round) {  // empty table, then a table holding another entry
    const FlowUpdate u = table.process(kConversation4.syn_ack(5000, 1001));
    EXPECT_EQ(u.event, FlowEvent::kUnsolicitedSynAck);
    EXPECT_EQ(u.server, kConversation4.server);
    EXPECT_EQ(u.client, kConversation4.client.address);
    table.process(kConversation6.syn(1));
  }
  EXPECT_EQ(table.counters().unsolicited_synacks, 2u);
  EXPECT_EQ(table.size(), 1u);
}

TEST(HandshakeTable, UnprotectedSynsCreateNothingButKnownTuplesStillRetransmit) {
  HandshakeTable table(16, kTimeout);
  EXPECT_EQ(table.process(kConversation4.syn(1000), false).event, FlowEvent::kNone);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.counters().inserted, 0u);
  table.process(kConversation6.syn(1000));
  EXPECT_EQ(table.process(kConversation6.syn(1000), false).event, FlowEvent::kSynRetransmit);
  EXPECT_EQ(table.size(), 1u);
}

TEST(HandshakeTable, SynWithEcnFlagsIsASyn) {
  HandshakeTable table(16, kTimeout);
  const TcpSegment s =
      kConversation4.client_segment(tcp_flag::kSyn | tcp_flag::kEce | tcp_flag::kCwr, 77);
  EXPECT_EQ(table.process(s).event, FlowEvent::kSyn);
}

TEST(HandshakeTable, ConnectionToItselfDoesNotConfuseTheTable) {
  const Endpoint self{v4(0x0a000001), 80};
  const Conversation land{self, self};
  HandshakeTable table(4, kTimeout);
  EXPECT_EQ(table.process(land.syn(1000)).event, FlowEvent::kSyn);
  EXPECT_EQ(table.process(land.syn(1000)).event, FlowEvent::kSynRetransmit);
  EXPECT_EQ(table.process(land.syn_ack(1000, 1001)).event, FlowEvent::kSynAck);
  EXPECT_EQ(table.process(land.ack(1001, 1001)).event, FlowEvent::kCompleted);
  EXPECT_EQ(table.size(), 0u);
}

using Expired = std::tuple<Endpoint, IpAddress, HandshakeState>;

std::vector<Expired> expire_all(HandshakeTable& table, TimestampNs now,
                                std::vector<bool>* stale = nullptr) {
  std::vector<Expired> out;
  table.expire(now, [&](const Endpoint& server, const IpAddress& client, HandshakeState state,
                        bool was_stale) {
    out.emplace_back(server, client, state);
    if (stale != nullptr) stale->push_back(was_stale);
  });
  return out;
}

using Judged = std::pair<Endpoint, IpAddress>;

// The judgement ladder of the tests and a rung per server port, so that rungs mix in one table
// (and a rung past the ladder's end, which counts as its last).
constexpr DurationNs kJudgeAges[] = {100 * kNanosPerMilli, 300 * kNanosPerMilli,
                                     1000 * kNanosPerMilli};
unsigned rung_of_port(const Endpoint& server) {
  return server.port % 5 == 4 ? 9u : server.port % 3;
}

std::vector<Judged> judge_all(HandshakeTable& table, TimestampNs now) {
  std::vector<Judged> out;
  table.judge(now, rung_of_port,
              [&](const Endpoint& server, const IpAddress& client, HandshakeState) {
                out.emplace_back(server, client);
              });
  return out;
}

TEST(HandshakeTable, ExpiresExactlyAtTheBoundaryOldestFirst) {
  HandshakeTable table(16, kTimeout);
  table.process(kConversation4.syn(1, kT0));
  table.process(kConversation6.syn(1, kT0 + kNanosPerMilli));
  table.process(kConversation6.syn_ack(9, 2, kT0 + 2 * kNanosPerMilli));

  EXPECT_TRUE(expire_all(table, kT0 + kTimeout - 1).empty());
  EXPECT_EQ(table.size(), 2u);
  auto expired = expire_all(table, kT0 + kTimeout);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0], Expired(kConversation4.server, kConversation4.client.address,
                                HandshakeState::kSynSeen));

  EXPECT_TRUE(expire_all(table, kT0 + kNanosPerMilli + kTimeout - 1).empty());
  expired = expire_all(table, kT0 + kNanosPerMilli + kTimeout);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0], Expired(kConversation6.server, kConversation6.client.address,
                                HandshakeState::kSynRecv));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.count(HandshakeState::kSynRecv), 0u);
  EXPECT_EQ(table.counters().expired, 2u);
}

TEST(HandshakeTable, UnalignedTimestampsExpireNeverEarlyAtMostAMillisecondLate) {
  HandshakeTable table(16, kTimeout);
  const TimestampNs first = kT0 + 123'456;
  table.process(kConversation4.syn(1, first));
  EXPECT_TRUE(expire_all(table, first + kTimeout - 1).empty());
  EXPECT_EQ(expire_all(table, first + kTimeout + kNanosPerMilli).size(), 1u);
}

TEST(HandshakeTable, ZeroTimeoutExpiresImmediatelyAndLongTimeoutsAreClamped) {
  HandshakeTable table(16, 0);
  table.process(kConversation4.syn(1, kT0));
  EXPECT_TRUE(expire_all(table, kT0 - 1).empty());
  EXPECT_EQ(expire_all(table, kT0).size(), 1u);
  table.set_pending_timeout(DurationNs{400} * 24 * 3600 * kNanosPerSecond);
  EXPECT_EQ(table.pending_timeout(), HandshakeTable::kMaxPendingTimeout);
  table.set_pending_timeout(-5);
  EXPECT_EQ(table.pending_timeout(), 0);
}

TEST(HandshakeTable, EvictsTheOldestWhenFull) {
  constexpr std::size_t kCapacity = 4;
  HandshakeTable table(kCapacity, kTimeout);
  std::vector<Conversation> conversations;
  for (std::uint32_t i = 0; i < kCapacity + 2; ++i) {
    conversations.push_back({{v4(0x01000000 + i), 1024}, {v4(0x0a000001), 80}});
  }
  table.process(conversations[0].syn(1, kT0));
  table.process(conversations[0].syn_ack(9, 2, kT0));
  for (std::size_t i = 1; i < kCapacity; ++i) table.process(conversations[i].syn(1, kT0 + i));
  ASSERT_EQ(table.size(), kCapacity);

  FlowUpdate u = table.process(conversations[kCapacity].syn(1, kT0 + 100));
  EXPECT_EQ(u.event, FlowEvent::kSyn);
  expect_describes(u, conversations[kCapacity]);
  ASSERT_TRUE(u.evicted);
  EXPECT_EQ(u.evicted_state, HandshakeState::kSynRecv);
  EXPECT_EQ(u.evicted_server, conversations[0].server);
  EXPECT_EQ(u.evicted_client, conversations[0].client.address);
  EXPECT_EQ(table.size(), kCapacity);
  EXPECT_EQ(table.count(HandshakeState::kSynRecv), 0u);
  EXPECT_EQ(table.counters().evicted, 1u);
  EXPECT_EQ(table.process(conversations[0].ack(2, 10)).event, FlowEvent::kNone);

  u = table.process(conversations[kCapacity + 1].syn(1, kT0 + 200));
  ASSERT_TRUE(u.evicted);
  EXPECT_EQ(u.evicted_state, HandshakeState::kSynSeen);
  EXPECT_EQ(u.evicted_client, conversations[1].client.address);
  // A retransmission never evicts.
  EXPECT_FALSE(table.process(conversations[kCapacity + 1].syn(1, kT0 + 300)).evicted);
  for (std::size_t i = 2; i < kCapacity + 2; ++i) {
    EXPECT_EQ(table.process(conversations[i].syn_ack(9, 2)).event, FlowEvent::kSynAck) << i;
  }
}

TEST(HandshakeTable, MemoryIsBoundedAndFixed) {
  // 64 bytes per handshake; the index comes in whole 64-byte buckets, so a table of fewer than
  // 16 handshakes may take up to one bucket more.
  std::vector<std::size_t> capacities{std::size_t{1} << 16, std::size_t{1} << 20, 1'000'003};
  for (std::size_t capacity = 1; capacity <= 2000; ++capacity) capacities.push_back(capacity);
  for (const std::size_t capacity : capacities) {
    const HandshakeTable table(capacity, kTimeout);
    EXPECT_EQ(table.capacity(), capacity);
    EXPECT_LE(table.memory_bytes(), 64 * capacity + (capacity < 16 ? 64 : 0)) << capacity;
    EXPECT_GE(table.memory_bytes(), 56 * capacity + 64) << capacity;
  }

  constexpr std::size_t kCapacity = 1000;
  HandshakeTable table(kCapacity, kTimeout, 0x5eed);
  const std::size_t memory = table.memory_bytes();
  for (std::uint32_t i = 0; i < 10 * kCapacity; ++i) {
    const Conversation c{{v4(0xc0000000 + i), static_cast<std::uint16_t>(i)}, {v4(0x0a000001), 80}};
    const FlowUpdate u = table.process(c.syn(i, kT0 + i));
    ASSERT_EQ(u.event, FlowEvent::kSyn);
    ASSERT_EQ(u.evicted, i >= kCapacity);
    ASSERT_LE(table.size(), kCapacity);
    if (i % 3 == 0) table.process(c.syn_ack(1, i + 1));
  }
  EXPECT_EQ(table.size(), kCapacity);
  EXPECT_EQ(table.memory_bytes(), memory);
  EXPECT_EQ(table.counters().evicted, 9 * kCapacity);
  // Exactly the newest kCapacity survived, each still reachable.
  for (std::uint32_t i = 9 * kCapacity; i < 10 * kCapacity; ++i) {
    const Conversation c{{v4(0xc0000000 + i), static_cast<std::uint16_t>(i)}, {v4(0x0a000001), 80}};
    ASSERT_EQ(table.process(c.syn(i)).event, FlowEvent::kSynRetransmit) << i;
  }
}

TEST(HandshakeTable, TimeGoingBackwardsNeitherCrashesNorReordersExpiry) {
  HandshakeTable table(16, kTimeout);
  table.process(kConversation4.syn(1, kT0 + 5 * kNanosPerSecond));
  // Created "in the past": it queues behind the younger entry and expires with it.
  table.process(kConversation6.syn(1, kT0));
  EXPECT_EQ(table.size(), 2u);
  EXPECT_TRUE(expire_all(table, kT0 + kTimeout).empty());
  const auto expired = expire_all(table, kT0 + 5 * kNanosPerSecond + kTimeout);
  ASSERT_EQ(expired.size(), 2u);
  EXPECT_EQ(std::get<1>(expired[0]), kConversation4.client.address);
  EXPECT_EQ(std::get<1>(expired[1]), kConversation6.client.address);

  // The clamp follows the youngest *live* entry: once it is gone, a late arrival keeps its own
  // time (only bounded by the entries still queued ahead of it).
  table.process(kConversation4.syn(1, kT0));
  table.process(kConversation6.syn(1, kT0 + 5 * kNanosPerSecond));
  ASSERT_EQ(table.process(kConversation6.client_segment(tcp_flag::kRst)).event, FlowEvent::kReset);
  const Conversation late{{v4(0x01020304), 9999}, kConversation4.server};
  table.process(late.syn(1, kT0 + kNanosPerSecond));
  EXPECT_EQ(expire_all(table, kT0 + kTimeout).size(), 1u);
  EXPECT_TRUE(expire_all(table, kT0 + kNanosPerSecond + kTimeout - 1).empty());
  EXPECT_EQ(expire_all(table, kT0 + kNanosPerSecond + kTimeout).size(), 1u);

  // Wild timestamps and expiry times.
  table.process(kConversation4.syn(1, INT64_MAX));
  table.process(kConversation6.syn(1, INT64_MIN));
  table.process(kConversation6.syn_ack(1, 2, 0));
  EXPECT_TRUE(expire_all(table, INT64_MIN).empty());
  EXPECT_TRUE(expire_all(table, 0).empty());
  EXPECT_EQ(table.size(), 2u);
  table.process(kConversation6.syn(1, -1));  // retransmission at a negative time
  table.set_pending_timeout(0);
  EXPECT_EQ(expire_all(table, INT64_MAX).size(), 2u);
  EXPECT_EQ(table.size(), 0u);

  // Negative timestamps (before 1970) behave like any others.
  table.set_pending_timeout(kTimeout);
  table.process(kConversation4.syn(1, -kTimeout - kNanosPerMilli));
  EXPECT_TRUE(expire_all(table, -kNanosPerMilli - 1).empty());
  EXPECT_EQ(expire_all(table, -kNanosPerMilli).size(), 1u);
}

// Over more than 2^32 ms of packet time, with first-SYN times crossing the 32-bit wrap, every
// entry expires exactly at first SYN + timeout: not at now - 1 ns, but at now.
void run_long(DurationNs timeout, DurationNs syn_interval, TimestampNs start, DurationNs span) {
  const std::size_t capacity = static_cast<std::size_t>(timeout / syn_interval) + 2;
  HandshakeTable table(capacity, timeout, 42);
  std::deque<std::pair<TimestampNs, std::uint32_t>> pending;  // deadline, client id
  TimestampNs next_syn = start;
  std::uint32_t id = 0;
  std::size_t expired_total = 0;
  while (next_syn < start + span || !pending.empty()) {
    const bool syn_first =
        next_syn < start + span && (pending.empty() || next_syn < pending.front().first);
    if (syn_first) {
      const Conversation c{{v4(0x01000000 + id), 2000}, {v4(0x0a000001), 80}};
      ASSERT_EQ(table.process(c.syn(id, next_syn)).event, FlowEvent::kSyn);
      pending.emplace_back(next_syn + timeout, id);
      ++id;
      next_syn += syn_interval;
      continue;
    }
    const TimestampNs deadline = pending.front().first;
    ASSERT_TRUE(expire_all(table, deadline - 1).empty()) << "early at " << deadline;
    const auto expired = expire_all(table, deadline);
    ASSERT_EQ(expired.size(), 1u) << "at " << deadline;
    ASSERT_EQ(std::get<1>(expired[0]), v4(0x01000000 + pending.front().second));
    pending.pop_front();
    ++expired_total;
  }
  EXPECT_GE(id, static_cast<std::uint32_t>(span / syn_interval));
  EXPECT_EQ(expired_total, id);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.counters().expired, id);
  EXPECT_EQ(table.counters().evicted, 0u);
}

constexpr DurationNs kDay = 86'400 * kNanosPerSecond;
constexpr TimestampNs kWrap = (std::int64_t{1} << 32) * kNanosPerMilli;  // 49.7 days

TEST(HandshakeTable, ExpiryIsExactAcrossTheMillisecondWrapOverSixtyDays) {
  run_long(3600 * kNanosPerSecond, DurationNs{7} * 60 * kNanosPerSecond + 13 * kNanosPerMilli,
           kWrap - kDay, 60 * kDay);
}

TEST(HandshakeTable, ExpiryIsExactWithTheLongestTimeoutOverThreeWraps) {
  run_long(HandshakeTable::kMaxPendingTimeout, 3600 * kNanosPerSecond + 1 * kNanosPerMilli, kT0,
           3 * kWrap + kDay);
}

// Reference model: the documented semantics, written plainly over std::map.
class Model {
 public:
  Model(std::size_t capacity, DurationNs timeout) : capacity_(capacity), timeout_(timeout) {}

  FlowUpdate process(const TcpSegment& s, bool accept) {
    FlowUpdate u;
    const Endpoint from{s.source, s.source_port};
    const Endpoint to{s.destination, s.destination_port};
    const auto key = from < to ? std::pair(from, to) : std::pair(to, from);
    auto it = entries_.find(key);
    const auto report = [&](FlowEvent event) {
      u.event = event;
      u.previous_state = it->second.state;
      u.was_stale = it->second.stale;
      u.server = it->second.server;
      u.client = it->second.client.address;
    };
    const bool from_client = it != entries_.end() && from == it->second.client;
    const bool from_server = it != entries_.end() && from == it->second.server;
    if (s.has(tcp_flag::kRst)) {
      if (it != entries_.end()) {
        report(FlowEvent::kReset);
        erase(it);
      }
    } else if (s.is_syn()) {
      if (it == entries_.end()) {
        if (!accept) return u;
        if (entries_.size() == capacity_) {
          auto victim = entries_.find(age_.begin()->second);
          u.evicted = true;
          u.evicted_state = victim->second.state;
          u.evicted_server = victim->second.server;
          u.evicted_client = victim->second.client.address;
          u.evicted_stale = victim->second.stale;
          erase(victim);
        }
        it = entries_.emplace(key, Entry{from, to, s.seq, 0, HandshakeState::kSynSeen, 0, 0}).first;
        link(it, s.timestamp);
        report(FlowEvent::kSyn);
      } else if (from_client) {
        report(FlowEvent::kSynRetransmit);
        if (s.seq != it->second.syn_seq) {
          it->second.syn_seq = s.seq;
          it->second.state = HandshakeState::kSynSeen;
          it->second.rung = -1;
          it->second.stale = false;
          age_.erase(it->second.order);
          link(it, s.timestamp);
        }
      }
    } else if (s.is_syn_ack()) {
      if (it == entries_.end()) {
        u.event = FlowEvent::kUnsolicitedSynAck;
        u.server = from;
        u.client = to.address;
      } else if (from_server) {
        if (s.ack != it->second.syn_seq + 1) {
          report(FlowEvent::kMismatch);
        } else if (it->second.state == HandshakeState::kSynRecv) {
          report(FlowEvent::kSynAckRetransmit);
          it->second.synack_seq = s.seq;
        } else {
          report(FlowEvent::kSynAck);
          it->second.synack_seq = s.seq;
          it->second.state = HandshakeState::kSynRecv;
        }
      }
    } else if (from_client && s.has(tcp_flag::kAck) && !s.has(tcp_flag::kFin)) {
      if (it->second.state == HandshakeState::kSynRecv && s.ack != it->second.synack_seq + 1) {
        report(FlowEvent::kMismatch);
      } else {
        report(FlowEvent::kCompleted);
        erase(it);
      }
    }
    return u;
  }

  std::vector<Expired> expire(TimestampNs now, std::vector<bool>* stale = nullptr) {
    std::vector<Expired> out;
    while (!age_.empty()) {
      auto it = entries_.find(age_.begin()->second);
      if (it->second.first_syn_ms * kNanosPerMilli + timeout_ > now) break;
      out.emplace_back(it->second.server, it->second.client.address, it->second.state);
      if (stale != nullptr) stale->push_back(it->second.stale);
      erase(it);
    }
    return out;
  }

  // The documented judgement: at the floor age each handshake gets its server's rung (clamped
  // to the ladder); it is stale once it is as old as its rung's age. Reported rung by rung, in
  // age order within a rung, the floor's first.
  std::vector<Judged> judge(TimestampNs now) {
    std::vector<Judged> out;
    const auto rungs = static_cast<int>(std::size(kJudgeAges));
    const auto due = [&](const Entry& e, int rung) {
      return e.first_syn_ms * kNanosPerMilli + kJudgeAges[rung] <= now;
    };
    for (int rung = 0; rung < rungs; ++rung) {
      for (const auto& [order, key] : age_) {
        Entry& e = entries_.at(key);
        if (rung == 0 && e.rung < 0 && due(e, 0)) {
          e.rung = std::min(static_cast<int>(rung_of_port(e.server)), rungs - 1);
        }
        if (!e.stale && e.rung == rung && due(e, rung)) {
          e.stale = true;
          out.emplace_back(e.server, e.client.address);
        }
      }
    }
    return out;
  }
  [[nodiscard]] std::size_t stale() const {
    std::size_t n = 0;
    for (const auto& [key, e] : entries_) n += e.stale ? 1 : 0;
    return n;
  }
  // When the next handshake is due for judgement (INT64_MAX: none).
  [[nodiscard]] TimestampNs next_due() const {
    TimestampNs next = INT64_MAX;
    for (const auto& [key, e] : entries_) {
      if (e.stale) continue;
      const auto rung = static_cast<std::size_t>(std::max(e.rung, 0));
      next = std::min(next, e.first_syn_ms * kNanosPerMilli + kJudgeAges[rung]);
    }
    return next;
  }

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] std::size_t count(HandshakeState state) const {
    std::size_t n = 0;
    for (const auto& [key, e] : entries_) n += e.state == state ? 1 : 0;
    return n;
  }

 private:
  struct Entry {
    Endpoint client;
    Endpoint server;
    std::uint32_t syn_seq;
    std::uint32_t synack_seq;
    HandshakeState state;
    std::int64_t first_syn_ms;
    std::uint64_t order;
    int rung = -1;  // not yet judged at the floor
    bool stale = false;
  };
  using Map = std::map<std::pair<Endpoint, Endpoint>, Entry>;

  void link(Map::iterator it, TimestampNs t) {
    // Milliseconds rounded up, never older than the youngest entry.
    std::int64_t ms = t / kNanosPerMilli + (t % kNanosPerMilli > 0 ? 1 : 0);
    if (!age_.empty()) ms = std::max(ms, entries_.at(age_.rbegin()->second).first_syn_ms);
    it->second.first_syn_ms = ms;
    it->second.order = next_order_++;
    age_.emplace(it->second.order, it->first);
  }
  void erase(Map::iterator it) {
    age_.erase(it->second.order);
    entries_.erase(it);
  }

  std::size_t capacity_;
  DurationNs timeout_;
  Map entries_;
  std::map<std::uint64_t, std::pair<Endpoint, Endpoint>> age_;
  std::uint64_t next_order_ = 0;
};

void expect_same(const FlowUpdate& got, const FlowUpdate& want) {
  EXPECT_EQ(got.event, want.event);
  EXPECT_EQ(got.evicted, want.evicted);
  if (want.event != FlowEvent::kNone && want.event != FlowEvent::kUnsolicitedSynAck) {
    EXPECT_EQ(got.was_stale, want.was_stale);
  }
  if (want.evicted) {
    EXPECT_EQ(got.evicted_stale, want.evicted_stale);
  }
  if (want.event != FlowEvent::kNone) {
    EXPECT_EQ(got.server, want.server);
    EXPECT_EQ(got.client, want.client);
  }
  if (want.event != FlowEvent::kNone && want.event != FlowEvent::kUnsolicitedSynAck) {
    EXPECT_EQ(got.previous_state, want.previous_state);
  }
  if (want.evicted) {
    EXPECT_EQ(got.evicted_state, want.evicted_state);
    EXPECT_EQ(got.evicted_server, want.evicted_server);
    EXPECT_EQ(got.evicted_client, want.evicted_client);
  }
}

// Random segments on `tuple_count` 4-tuples through a table of `capacity` and the model side by
// side. Few tuples per slot, so that each lives through whole handshakes, yet the table fills,
// evicts and expires all the time.
// Packet time moves on by up to `step` per operation.
// `overflowing`, if given, gets the most index buckets keys were pushed past at once.
void expect_matches_model(std::size_t capacity, std::size_t tuple_count, DurationNs step,
                          std::uint64_t seed, std::size_t* most_overflowing = nullptr) {
  std::mt19937_64 rng(seed);
  HandshakeTable table(capacity, kTimeout, rng());
  table.set_judge_ages(kJudgeAges);
  Model model(capacity, kTimeout);
  std::size_t judged = 0;

  // Both families; a stray pair now and then (including an endpoint talking to itself).
  std::vector<Endpoint> endpoints;
  for (const char* address : {"198.51.100.7", "2001:db8::99", "10.0.0.1", "2001:db8::1"}) {
    for (const int port : {80, 443}) {
      endpoints.push_back({*IpAddress::parse(address), static_cast<std::uint16_t>(port)});
    }
  }
  std::vector<Packet> tuples;
  for (std::size_t i = 0; i < tuple_count; ++i) {
    Endpoint client = endpoints[i % 8];
    client.port = static_cast<std::uint16_t>(client.port + i / 8);  // i < 8: the fixed eight
    tuples.push_back({client, endpoints[(i * 3 + 2) % 8]});
  }
  const std::uint8_t flag_choices[] = {tcp_flag::kSyn,
                                       tcp_flag::kSyn,
                                       tcp_flag::kSyn,
                                       tcp_flag::kSyn | tcp_flag::kAck,
                                       tcp_flag::kSyn | tcp_flag::kAck,
                                       tcp_flag::kSyn | tcp_flag::kAck,
                                       tcp_flag::kAck,
                                       tcp_flag::kAck,
                                       tcp_flag::kRst,
                                       tcp_flag::kRst | tcp_flag::kAck,
                                       tcp_flag::kFin | tcp_flag::kAck,
                                       tcp_flag::kAck | tcp_flag::kPsh,
                                       0,
                                       tcp_flag::kSyn | tcp_flag::kEce | tcp_flag::kCwr};
  // Few sequence numbers, and acks that are mostly "some seq + 1", so that matches are common.
  const std::uint32_t numbers[] = {100, 500, 0xffffffff};

  TimestampNs now = kT0;
  std::size_t events[9] = {};
  std::size_t overflowing = 0;  // the most index buckets keys were pushed past at once
  for (int op = 0; op < 150'000; ++op) {
    SCOPED_TRACE(op);
    // Mostly forward, sometimes backwards, at ns resolution.
    now += static_cast<DurationNs>(rng() % static_cast<std::uint64_t>(step)) - step / 15;
    ASSERT_LE(table.judge_due(), model.next_due());
    if (rng() % 8 == 0) {
      const TimestampNs at =
          now + static_cast<DurationNs>(rng() % kNanosPerSecond) - kNanosPerSecond / 2;
      // Judgement before expiry at the same time, as the engine runs them.
      const auto judged_now = judge_all(table, at);
      ASSERT_EQ(judged_now, model.judge(at));
      judged += judged_now.size();
      std::vector<bool> got_stale;
      std::vector<bool> want_stale;
      const auto got = expire_all(table, at, &got_stale);
      ASSERT_EQ(got, model.expire(at, &want_stale));
      ASSERT_EQ(got_stale, want_stale);
    } else {
      Packet p = tuples[rng() % tuples.size()];
      if (rng() % 2 == 0) std::swap(p.from, p.to);
      if (rng() % 50 == 0) {
        p = {endpoints[rng() % endpoints.size()], endpoints[rng() % endpoints.size()]};
      }
      const std::uint8_t flags = flag_choices[rng() % std::size(flag_choices)];
      const std::uint32_t seq = rng() % 2 == 0 ? numbers[0] : numbers[rng() % std::size(numbers)];
      const std::uint32_t ack = numbers[rng() % std::size(numbers)] + (rng() % 4 != 0 ? 1 : 0);
      const bool accept = rng() % 10 != 0;
      const TcpSegment s = segment(p, flags, seq, ack, now);
      const FlowUpdate got = table.process(s, accept);
      const FlowUpdate want = model.process(s, accept);
      expect_same(got, want);
      ++events[static_cast<std::size_t>(want.event)];
      if (testing::Test::HasFailure()) FAIL() << "diverged";
    }
    overflowing = std::max(overflowing, table.overflowing_buckets());
    ASSERT_EQ(table.size(), model.size());
    ASSERT_EQ(table.count(HandshakeState::kSynSeen), model.count(HandshakeState::kSynSeen));
    ASSERT_EQ(table.count(HandshakeState::kSynRecv), model.count(HandshakeState::kSynRecv));
    ASSERT_EQ(table.stale(), model.stale());
  }
  EXPECT_GT(judged, 100u);
  EXPECT_EQ(table.counters().judged_stale, judged);
  // The run must have reached every kind of outcome to mean anything.
  for (std::size_t e = 0; e < std::size(events); ++e) EXPECT_GT(events[e], 100u) << "event " << e;
  // Every outcome is counted.
  const HandshakeTableStats& c = table.counters();
  EXPECT_EQ(c.inserted, events[static_cast<int>(FlowEvent::kSyn)]);
  EXPECT_EQ(c.syn_retransmits, events[static_cast<int>(FlowEvent::kSynRetransmit)]);
  EXPECT_EQ(c.synacks, events[static_cast<int>(FlowEvent::kSynAck)]);
  EXPECT_EQ(c.synack_retransmits, events[static_cast<int>(FlowEvent::kSynAckRetransmit)]);
  EXPECT_EQ(c.completed, events[static_cast<int>(FlowEvent::kCompleted)]);
  EXPECT_EQ(c.reset, events[static_cast<int>(FlowEvent::kReset)]);
  EXPECT_EQ(c.mismatches, events[static_cast<int>(FlowEvent::kMismatch)]);
  EXPECT_EQ(c.unsolicited_synacks, events[static_cast<int>(FlowEvent::kUnsolicitedSynAck)]);
  EXPECT_EQ(c.inserted, c.completed + c.reset + c.expired + c.evicted + table.size());
  EXPECT_GT(table.counters().evicted, 100u);
  EXPECT_GT(table.counters().expired, 100u);
  // Every key leaving takes itself off the overflow counts.
  expire_all(table, now + 2 * kTimeout);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.overflowing_buckets(), 0u);
  if (most_overflowing != nullptr) *most_overflowing = overflowing;
}

TEST(HandshakeTable, MatchesAReferenceModelOverRandomOperations) {
  expect_matches_model(4, 6, 300 * kNanosPerMilli, 20240501);
}

// Larger than the eviction lookahead (the next victims' slots worked out ahead), so that
// completions, resets and restarted SYNs land inside the stretch of the age list it covers.
TEST(HandshakeTable, MatchesAReferenceModelWithATableLargerThanTheEvictionLookahead) {
  expect_matches_model(40, 70, 30 * kNanosPerMilli, 20261124);
}

// A table of 40 has an index of 5 buckets, some of which overflow now and then, so searches walk
// chains of buckets and removals (evictions included) take keys off the overflow counts of the
// buckets they passed. Buckets of one or two slots, which overflow all the time, are
// BucketedIndex's own tests.
TEST(HandshakeTable, MatchesAReferenceModelWhenBucketsOverflow) {
  for (const std::uint64_t seed : {20261125, 20261126}) {
    std::size_t overflowing = 0;
    expect_matches_model(40, 70, 30 * kNanosPerMilli, seed, &overflowing);
    EXPECT_GT(overflowing, 0u) << seed;
  }
}

}  // namespace
}  // namespace synwatch
