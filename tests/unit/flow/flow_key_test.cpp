#include "flow/flow_key.hpp"

#include <gtest/gtest.h>

#include <utility>

namespace synwatch {
namespace {

TcpSegment between(const char* source, std::uint16_t source_port, const char* destination,
                   std::uint16_t destination_port) {
  TcpSegment s;
  s.source = *IpAddress::parse(source);
  s.source_port = source_port;
  s.destination = *IpAddress::parse(destination);
  s.destination_port = destination_port;
  return s;
}

TcpSegment reversed(TcpSegment s) {
  std::swap(s.source, s.destination);
  std::swap(s.source_port, s.destination_port);
  return s;
}

TEST(FlowKey, BothDirectionsGiveOneKeyAndHash) {
  const FlowKeyHash hash(42);
  for (const TcpSegment& s :
       {between("198.18.3.4", 40000, "198.51.100.1", 80),
        between("2001:db8::2", 1, "2001:db8::1", 2), between("10.0.0.1", 443, "10.0.0.1", 80),
        between("::ffff:0:1", 5, "::1", 5)}) {
    FlowKey forward{};
    FlowKey backward{};
    const SourceEnd forward_end = make_flow_key(s, forward);
    const SourceEnd backward_end = make_flow_key(reversed(s), backward);
    EXPECT_TRUE(same_flow(forward, backward));
    EXPECT_EQ(hash(forward), hash(backward));
    EXPECT_NE(forward_end, SourceEnd::kBoth);
    EXPECT_NE(forward_end, backward_end);
    // Low is the smaller endpoint: addresses compared as big-endian numbers, then ports.
    const Endpoint low{IpAddress{forward.low_address}, forward.low_port};
    const Endpoint high{IpAddress{forward.high_address}, forward.high_port};
    EXPECT_LT(low, high);
  }
}

TEST(FlowKey, AnEndpointTalkingToItselfHasNoDirection) {
  FlowKey key{};
  EXPECT_EQ(make_flow_key(between("192.0.2.1", 80, "192.0.2.1", 80), key), SourceEnd::kBoth);
}

TEST(FlowKey, OtherTuplesAndOtherSeedsHashApart) {
  FlowKey a{};
  FlowKey b{};
  make_flow_key(between("198.18.3.4", 40000, "198.51.100.1", 80), a);
  make_flow_key(between("198.18.3.4", 40001, "198.51.100.1", 80), b);
  EXPECT_FALSE(same_flow(a, b));
  EXPECT_NE(FlowKeyHash(1)(a), FlowKeyHash(1)(b));
  EXPECT_NE(FlowKeyHash(1)(a), FlowKeyHash(2)(a));
  make_flow_key(between("2001:db8::3", 40000, "2001:db8::1", 80), b);
  EXPECT_NE(FlowKeyHash(1)(a), FlowKeyHash(1)(b));
}

}  // namespace
}  // namespace synwatch
