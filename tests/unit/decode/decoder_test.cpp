#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "decode/decoder.hpp"
#include "frame_builder.hpp"

namespace synwatch {
namespace {

using test::Frame;

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86dd;

Frame syn_v4(const test::TcpSpec& tcp = {}, const test::Ipv4Spec& ip = {}) {
  return test::ipv4(ip, test::tcp_header(tcp));
}
Frame syn_v6(const test::TcpSpec& tcp = {}, const test::Ipv6Spec& ip = {}) {
  return test::ipv6(ip, test::tcp_header(tcp));
}

// Decodes a copy of exactly `frame.size()` heap bytes so that AddressSanitizer builds catch
// any read past the end.
DecodeResult decode_exact(Decoder& decoder, const Frame& frame, TcpSegment& out) {
  const auto copy = std::make_unique<std::uint8_t[]>(frame.size() + 0);
  std::copy(frame.begin(), frame.end(), copy.get());
  return decoder.decode(std::span<const std::uint8_t>(copy.get(), frame.size()), out);
}

DecodeResult decode_once(LinkType link, const Frame& frame, TcpSegment& out) {
  Decoder decoder(link);
  return decode_exact(decoder, frame, out);
}

DecodeResult decode_once(LinkType link, const Frame& frame) {
  TcpSegment out;
  return decode_once(link, frame, out);
}

// Wraps an IP packet in the given link layer.
Frame wrap(LinkType link, bool is_v6, const Frame& ip) {
  const std::uint16_t type = is_v6 ? kEtherIpv6 : kEtherIpv4;
  switch (link) {
    case LinkType::kEthernet:
      return test::ethernet(type, ip);
    case LinkType::kLinuxSll:
      return test::linux_sll(type, ip);
    case LinkType::kLinuxSll2:
      return test::linux_sll2(type, ip);
    case LinkType::kNull:
      return test::null_link(is_v6 ? 30 : 2, false, ip);
    case LinkType::kRaw:
    case LinkType::kIpv4:
    case LinkType::kIpv6:
      return ip;
  }
  return ip;
}

std::size_t link_header_size(LinkType link) {
  switch (link) {
    case LinkType::kEthernet:
      return 14;
    case LinkType::kLinuxSll:
      return 16;
    case LinkType::kLinuxSll2:
      return 20;
    case LinkType::kNull:
      return 4;
    default:
      return 0;
  }
}

constexpr LinkType kAllLinks[] = {LinkType::kEthernet, LinkType::kLinuxSll, LinkType::kLinuxSll2,
                                  LinkType::kRaw,      LinkType::kNull,     LinkType::kIpv4,
                                  LinkType::kIpv6};

bool carries_v4(LinkType link) {
  return link != LinkType::kIpv6;
}
bool carries_v6(LinkType link) {
  return link != LinkType::kIpv4;
}

TEST(Decoder, DecodesIpv4SynOnEveryLinkType) {
  test::TcpSpec tcp;
  tcp.source_port = 51234;
  tcp.destination_port = 443;
  tcp.seq = 0xdeadbeef;
  tcp.window = 29200;
  tcp.options = test::linux_syn_options();
  test::Ipv4Spec ip;
  ip.ttl = 243;
  for (const LinkType link : kAllLinks) {
    if (!carries_v4(link)) continue;
    SCOPED_TRACE(std::string(to_string(link)));
    TcpSegment out;
    ASSERT_EQ(decode_once(link, wrap(link, false, syn_v4(tcp, ip)), out), DecodeResult::kTcp);
    EXPECT_EQ(out.source.to_string(), "192.0.2.1");
    EXPECT_EQ(out.destination.to_string(), "198.51.100.7");
    EXPECT_EQ(out.source_port, 51234);
    EXPECT_EQ(out.destination_port, 443);
    EXPECT_EQ(out.seq, 0xdeadbeefu);
    EXPECT_EQ(out.ack, 0u);
    EXPECT_EQ(out.window, 29200);
    EXPECT_EQ(out.hop_limit, 243);
    EXPECT_EQ(out.payload_length, 0);
    EXPECT_TRUE(out.is_syn());
    EXPECT_TRUE(out.options.has_mss);
    EXPECT_EQ(out.options.mss, 1460);
  }
}

TEST(Decoder, DecodesIpv6SynOnEveryLinkType) {
  test::TcpSpec tcp;
  tcp.flags = 0x12;  // SYN-ACK
  tcp.ack = 0x01020304;
  tcp.payload = 5;
  test::Ipv6Spec ip;
  ip.hop_limit = 61;
  for (const LinkType link : kAllLinks) {
    if (!carries_v6(link)) continue;
    SCOPED_TRACE(std::string(to_string(link)));
    TcpSegment out;
    ASSERT_EQ(decode_once(link, wrap(link, true, syn_v6(tcp, ip)), out), DecodeResult::kTcp);
    EXPECT_EQ(out.source.to_string(), "2001:db8::1");
    EXPECT_EQ(out.destination.to_string(), "2001:db8::80");
    EXPECT_EQ(out.ack, 0x01020304u);
    EXPECT_EQ(out.hop_limit, 61);
    EXPECT_EQ(out.payload_length, 5);
    EXPECT_TRUE(out.is_syn_ack());
    EXPECT_FALSE(out.is_syn());
  }
}

TEST(Decoder, NullLinkAcceptsEitherByteOrderAndEveryIpv6Family) {
  for (const bool network_order : {false, true}) {
    EXPECT_EQ(decode_once(LinkType::kNull, test::null_link(2, network_order, syn_v4())),
              DecodeResult::kTcp);
    for (const std::uint32_t family : {10u, 24u, 28u, 30u}) {
      SCOPED_TRACE(family);
      EXPECT_EQ(decode_once(LinkType::kNull, test::null_link(family, network_order, syn_v6())),
                DecodeResult::kTcp);
    }
    EXPECT_EQ(decode_once(LinkType::kNull, test::null_link(17, network_order, syn_v4())),
              DecodeResult::kNotIp);
  }
  // The family promises IPv6 but the packet is IPv4.
  EXPECT_EQ(decode_once(LinkType::kNull, test::null_link(30, false, syn_v4())),
            DecodeResult::kBadIpVersion);
}

TEST(Decoder, SkipsVlanAndQinQTags) {
  const Frame ip = syn_v4();
  for (const auto& tags : std::vector<std::vector<std::uint16_t>>{
           {0x8100}, {0x88a8, 0x8100}, {0x9100, 0x8100}, {0x88a8, 0x88a8, 0x8100}}) {
    Frame f = test::ethernet(kEtherIpv4, ip);
    // Insert the tags after the MAC addresses, outermost first.
    Frame tag_bytes;
    for (const auto tpid : tags) {
      test::put16(tag_bytes, tpid);
      test::put16(tag_bytes, 0x0123);
    }
    f.insert(f.begin() + 12, tag_bytes.begin(), tag_bytes.end());
    TcpSegment out;
    EXPECT_EQ(decode_once(LinkType::kEthernet, f, out), DecodeResult::kTcp) << tags.size();
    EXPECT_EQ(out.destination_port, 80);
  }
  EXPECT_EQ(decode_once(LinkType::kEthernet, test::ethernet(kEtherIpv6, syn_v6(), {0x8100})),
            DecodeResult::kTcp);
  // libpcap's cooked headers keep a VLAN tag in the payload when the kernel reports one.
  Frame tagged;
  test::put16(tagged, 0x0064);
  test::put16(tagged, kEtherIpv4);
  test::append(tagged, syn_v4());
  EXPECT_EQ(decode_once(LinkType::kLinuxSll, test::linux_sll(0x8100, tagged)), DecodeResult::kTcp);
  // A tag cut short is a truncated link header.
  EXPECT_EQ(decode_once(LinkType::kEthernet, Frame(test::ethernet(0x8100, {0x00, 0x64}))),
            DecodeResult::kTruncatedLink);
}

TEST(Decoder, Ipv4OptionsAreSkippedByIhl) {
  test::Ipv4Spec ip;
  ip.options = {0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00};  // router alert, NOPs, EOL
  TcpSegment out;
  ASSERT_EQ(decode_once(LinkType::kRaw, syn_v4({}, ip), out), DecodeResult::kTcp);
  EXPECT_EQ(out.source_port, 40000);
  EXPECT_EQ(out.seq, 0x11223344u);
}

TEST(Decoder, PayloadLengthComesFromIpLengthsNotCaptureLength) {
  test::TcpSpec tcp;
  tcp.payload = 10;
  TcpSegment out;
  // Ethernet pads a 54-byte SYN to 60 bytes; the padding is not payload.
  Frame padded = test::ethernet(kEtherIpv4, syn_v4());
  padded.resize(60, 0);
  ASSERT_EQ(decode_once(LinkType::kEthernet, padded, out), DecodeResult::kTcp);
  EXPECT_EQ(out.payload_length, 0);
  // A snap length that cut the payload does not shrink it.
  Frame cut = test::ethernet(kEtherIpv4, syn_v4(tcp));
  cut.resize(cut.size() - 7);
  ASSERT_EQ(decode_once(LinkType::kEthernet, cut, out), DecodeResult::kTcp);
  EXPECT_EQ(out.payload_length, 10);
  test::Ipv6Spec ip6;
  ip6.extensions = {test::options_header(0)};
  Frame cut6 = syn_v6(tcp, ip6);
  cut6.resize(cut6.size() - 3);
  ASSERT_EQ(decode_once(LinkType::kRaw, cut6, out), DecodeResult::kTcp);
  EXPECT_EQ(out.payload_length, 10);
}

TEST(Decoder, ZeroIpLengthFromSegmentationOffloadUsesCapturedLength) {
  test::TcpSpec tcp;
  tcp.payload = 100;
  test::Ipv4Spec ip;
  ip.total_length_override = 0;
  TcpSegment out;
  ASSERT_EQ(decode_once(LinkType::kRaw, syn_v4(tcp, ip), out), DecodeResult::kTcp);
  EXPECT_EQ(out.payload_length, 100);
  test::Ipv6Spec ip6;
  ip6.payload_length_override = 0;
  ASSERT_EQ(decode_once(LinkType::kRaw, syn_v6(tcp, ip6), out), DecodeResult::kTcp);
  EXPECT_EQ(out.payload_length, 100);
}

TEST(Decoder, Ipv4Fragments) {
  test::Ipv4Spec first;
  first.flags_and_offset = 0x2000;  // MF, offset 0: the TCP header is here
  TcpSegment out;
  EXPECT_EQ(decode_once(LinkType::kRaw, syn_v4({}, first), out), DecodeResult::kTcp);
  EXPECT_EQ(out.destination_port, 80);

  test::Ipv4Spec later;
  later.flags_and_offset = 0x2000 | 185;  // offset 1480 bytes
  Decoder decoder(LinkType::kRaw);
  EXPECT_EQ(decode_exact(decoder, syn_v4({}, later), out), DecodeResult::kLaterFragment);
  later.flags_and_offset = 185;  // last fragment
  EXPECT_EQ(decode_exact(decoder, syn_v4({}, later), out), DecodeResult::kLaterFragment);
  EXPECT_EQ(decoder.counters().count(DecodeResult::kLaterFragment), 2u);
  // A later fragment of UDP is simply not ours.
  later.protocol = 17;
  EXPECT_EQ(decode_once(LinkType::kRaw, syn_v4({}, later)), DecodeResult::kNotTcp);
}

TEST(Decoder, Ipv6ExtensionHeaderChains) {
  TcpSegment out;
  test::Ipv6Spec ip;
  ip.extensions = {test::options_header(0, 1), test::fragment_header(0, true),
                   test::options_header(60, 0)};
  ASSERT_EQ(decode_once(LinkType::kRaw, syn_v6({}, ip), out), DecodeResult::kTcp);
  EXPECT_EQ(out.destination_port, 80);
  EXPECT_TRUE(out.is_syn());

  ip.extensions = {test::options_header(0), test::options_header(43, 2),
                   test::authentication_header(3), test::options_header(60)};
  EXPECT_EQ(decode_once(LinkType::kRaw, syn_v6({}, ip)), DecodeResult::kTcp);

  ip.extensions = {test::options_header(0), test::fragment_header(100, true)};
  EXPECT_EQ(decode_once(LinkType::kRaw, syn_v6({}, ip)), DecodeResult::kLaterFragment);
  ip.extensions = {test::fragment_header(100, false), test::options_header(60)};
  EXPECT_EQ(decode_once(LinkType::kRaw, syn_v6({}, ip)), DecodeResult::kLaterFragment);
  ip.extensions = {test::fragment_header(100, false)};
  ip.upper_protocol = 17;
  EXPECT_EQ(decode_once(LinkType::kRaw, syn_v6({}, ip)), DecodeResult::kNotTcp);

  for (const std::uint8_t opaque :
       {std::uint8_t{50}, std::uint8_t{59}, std::uint8_t{17}, std::uint8_t{58}}) {
    test::Ipv6Spec hidden;
    hidden.upper_protocol = opaque;
    hidden.extensions = {test::options_header(0)};
    EXPECT_EQ(decode_once(LinkType::kRaw, syn_v6({}, hidden)), DecodeResult::kNotTcp) << +opaque;
  }
}

TEST(Decoder, Ipv6ExtensionChainIsBounded) {
  test::Ipv6Spec ip;
  for (int i = 0; i < 8; ++i) ip.extensions.push_back(test::options_header(60));
  EXPECT_EQ(decode_once(LinkType::kRaw, syn_v6({}, ip)), DecodeResult::kTcp);
  ip.extensions.push_back(test::options_header(60));
  EXPECT_EQ(decode_once(LinkType::kRaw, syn_v6({}, ip)), DecodeResult::kBadExtensionHeader);

  // A header whose length runs past the packet.
  test::Ipv6Spec overlong;
  overlong.extensions = {test::options_header(0)};
  Frame f = syn_v6({}, overlong);
  f[40 + 1] = 200;
  EXPECT_EQ(decode_once(LinkType::kRaw, f), DecodeResult::kBadExtensionHeader);
  // The same, but where only the declared payload length is too short for the header.
  Frame short_declared = syn_v6({}, overlong);
  short_declared[5] = 4;
  EXPECT_EQ(decode_once(LinkType::kRaw, short_declared), DecodeResult::kBadExtensionHeader);
}

TEST(Decoder, EveryTcpOption) {
  test::TcpSpec tcp;
  tcp.options = {1,  1,  2,  4,    0x23, 0x28,  // NOP NOP MSS 9000
                 3,  3,  14,                    // window scale 14
                 4,  2,                         // SACK permitted
                 30, 6,  1,  2,    3,    4,     // unknown kind 30 (MPTCP), skipped by length
                 8,  10, 0,  0,    0,    9,    0, 0, 0, 7,  // timestamps 9 / 7
                 0,  2,  4,  0x99, 0x99};  // EOL, then garbage that must be ignored
  TcpSegment out;
  ASSERT_EQ(decode_once(LinkType::kRaw, syn_v4(tcp), out), DecodeResult::kTcp);
  EXPECT_TRUE(out.options.has_mss);
  EXPECT_EQ(out.options.mss, 9000);
  EXPECT_TRUE(out.options.has_window_scale);
  EXPECT_EQ(out.options.window_scale, 14);
  EXPECT_TRUE(out.options.sack_permitted);
  EXPECT_TRUE(out.options.has_timestamps);
  EXPECT_EQ(out.options.timestamp_value, 9u);
  EXPECT_EQ(out.options.timestamp_echo, 7u);
  EXPECT_EQ(out.options.mss, 9000);  // the MSS option after EOL did not count

  // SACK blocks (kind 5) are skipped by length too.
  tcp.options = {1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 3, 3, 2};
  ASSERT_EQ(decode_once(LinkType::kRaw, syn_v4(tcp), out), DecodeResult::kTcp);
  EXPECT_EQ(out.options.window_scale, 2);
  EXPECT_FALSE(out.options.has_mss);

  // Options from a previous segment do not leak into one without options.
  ASSERT_EQ(decode_once(LinkType::kRaw, syn_v4(), out), DecodeResult::kTcp);
  EXPECT_FALSE(out.options.has_mss);
  EXPECT_FALSE(out.options.has_timestamps);
  EXPECT_FALSE(out.options.sack_permitted);
}

TEST(Decoder, EcnSynIsStillASyn) {
  test::TcpSpec tcp;
  tcp.flags = 0xc2;  // CWR ECE SYN
  TcpSegment out;
  ASSERT_EQ(decode_once(LinkType::kEthernet, test::ethernet(kEtherIpv4, syn_v4(tcp)), out),
            DecodeResult::kTcp);
  EXPECT_TRUE(out.has(tcp_flag::kEce));
  EXPECT_TRUE(out.has(tcp_flag::kCwr));
  EXPECT_TRUE(out.is_syn());
}

TEST(Decoder, BadTcpOptionsStillFillTheSegment) {
  const std::vector<Frame> bad_options = {
      {2, 4, 0x05, 0xb4, 8, 20, 0, 0},  // timestamps length runs past the header
      {2, 4, 0x05, 0xb4, 30, 0, 0, 0},  // length 0 would loop forever
      {2, 4, 0x05, 0xb4, 30, 1, 0, 0},  // length 1 is shorter than kind + length
      {2, 4, 0x05, 0xb4, 1, 1, 1, 30},  // kind in the last byte, no room for a length
      {2, 4, 0x05, 0xb4, 2, 3, 0, 0},   // MSS with the wrong length
  };
  for (const auto& options : bad_options) {
    test::TcpSpec tcp;
    tcp.options = options;
    tcp.source_port = 1234;
    Decoder decoder(LinkType::kRaw);
    TcpSegment out;
    ASSERT_EQ(decode_exact(decoder, syn_v4(tcp), out), DecodeResult::kBadTcpOptions);
    EXPECT_TRUE(has_segment(DecodeResult::kBadTcpOptions));
    EXPECT_EQ(out.source_port, 1234);
    EXPECT_TRUE(out.is_syn());
    EXPECT_TRUE(out.options.has_mss);  // the option before the bad one
    EXPECT_EQ(out.options.mss, 1460);
    EXPECT_EQ(decoder.counters().count(DecodeResult::kBadTcpOptions), 1u);
    EXPECT_EQ(decoder.counters().errors(), 1u);
  }
}

TEST(Decoder, EveryErrorReason) {
  // Not IP at all: ARP.
  EXPECT_EQ(decode_once(LinkType::kEthernet, test::ethernet(0x0806, Frame(28, 0))),
            DecodeResult::kNotIp);
  EXPECT_EQ(decode_once(LinkType::kLinuxSll2, test::linux_sll2(0x0806, Frame(28, 0))),
            DecodeResult::kNotIp);
  // IP but UDP.
  test::Ipv4Spec udp;
  udp.protocol = 17;
  EXPECT_EQ(decode_once(LinkType::kRaw, syn_v4({}, udp)), DecodeResult::kNotTcp);
  test::Ipv6Spec udp6;
  udp6.upper_protocol = 17;
  EXPECT_EQ(decode_once(LinkType::kIpv6, syn_v6({}, udp6)), DecodeResult::kNotTcp);

  EXPECT_EQ(decode_once(LinkType::kEthernet, Frame(13, 0)), DecodeResult::kTruncatedLink);
  EXPECT_EQ(decode_once(LinkType::kLinuxSll, Frame(15, 0)), DecodeResult::kTruncatedLink);
  EXPECT_EQ(decode_once(LinkType::kLinuxSll2, Frame(19, 0)), DecodeResult::kTruncatedLink);
  EXPECT_EQ(decode_once(LinkType::kNull, Frame(3, 0)), DecodeResult::kTruncatedLink);
  EXPECT_EQ(decode_once(LinkType::kRaw, Frame{}), DecodeResult::kTruncatedIp);

  // Version nibble against the link's promise.
  EXPECT_EQ(decode_once(LinkType::kEthernet, test::ethernet(kEtherIpv4, syn_v6())),
            DecodeResult::kBadIpVersion);
  EXPECT_EQ(decode_once(LinkType::kEthernet, test::ethernet(kEtherIpv6, syn_v4())),
            DecodeResult::kBadIpVersion);
  EXPECT_EQ(decode_once(LinkType::kIpv4, syn_v6()), DecodeResult::kBadIpVersion);
  EXPECT_EQ(decode_once(LinkType::kIpv6, syn_v4()), DecodeResult::kBadIpVersion);
  Frame version5 = syn_v4();
  version5[0] = 0x55;
  EXPECT_EQ(decode_once(LinkType::kRaw, version5), DecodeResult::kBadIpVersion);

  // IHL below 5, and total length below the header.
  for (const int ihl : {0, 1, 4}) {
    test::Ipv4Spec ip;
    ip.ihl_override = ihl;
    EXPECT_EQ(decode_once(LinkType::kRaw, syn_v4({}, ip)), DecodeResult::kBadIpHeader) << ihl;
  }
  test::Ipv4Spec short_total;
  short_total.total_length_override = 19;
  EXPECT_EQ(decode_once(LinkType::kRaw, syn_v4({}, short_total)), DecodeResult::kBadIpHeader);
  // IHL larger than what was captured.
  test::Ipv4Spec long_ihl;
  long_ihl.ihl_override = 15;
  EXPECT_EQ(decode_once(LinkType::kRaw, test::ipv4(long_ihl, Frame(20, 0))),
            DecodeResult::kTruncatedIp);

  // Data offset below 5, and beyond the packet.
  for (const int words : {0, 4}) {
    test::TcpSpec tcp;
    tcp.data_offset_override = words;
    EXPECT_EQ(decode_once(LinkType::kRaw, syn_v4(tcp)), DecodeResult::kBadTcpHeader) << words;
  }
  test::TcpSpec long_offset;
  long_offset.data_offset_override = 15;
  EXPECT_EQ(decode_once(LinkType::kRaw, syn_v4(long_offset)), DecodeResult::kTruncatedTcp);
  // Total length that ends inside the TCP header: padding after it is not TCP.
  test::Ipv4Spec short_ip;
  short_ip.total_length_override = 30;
  EXPECT_EQ(decode_once(LinkType::kRaw, syn_v4({}, short_ip)), DecodeResult::kTruncatedTcp);
}

// Every prefix of a valid frame: no crash, no out-of-bounds read (ASan builds), and the
// reason names the layer where the frame ends.
TEST(Decoder, EveryPrefixOfAValidFrameGivesATruncationReason) {
  test::TcpSpec tcp;
  tcp.options = test::linux_syn_options();
  test::Ipv4Spec ip4;
  ip4.options = {1, 1, 1, 0};
  test::Ipv6Spec ip6;
  ip6.extensions = {test::options_header(0, 1)};
  const std::size_t v4_header = 24;
  const std::size_t v6_header = 40;
  const std::size_t v6_extensions = 16;
  for (const LinkType link : kAllLinks) {
    for (const bool is_v6 : {false, true}) {
      if ((is_v6 && !carries_v6(link)) || (!is_v6 && !carries_v4(link))) continue;
      SCOPED_TRACE(std::string(to_string(link)) + (is_v6 ? " v6" : " v4"));
      const Frame full = wrap(link, is_v6, is_v6 ? syn_v6(tcp, ip6) : syn_v4(tcp, ip4));
      const std::size_t l = link_header_size(link);
      Decoder decoder(link);
      TcpSegment out;
      ASSERT_EQ(decode_exact(decoder, full, out), DecodeResult::kTcp);
      for (std::size_t length = 0; length < full.size(); ++length) {
        const Frame prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(length));
        const DecodeResult result = decode_exact(decoder, prefix, out);
        DecodeResult expected = DecodeResult::kTruncatedTcp;
        if (length < l) {
          expected = DecodeResult::kTruncatedLink;
        } else if (length < l + (is_v6 ? v6_header : v4_header)) {
          expected = DecodeResult::kTruncatedIp;
        } else if (is_v6 && length < l + v6_header + v6_extensions) {
          expected = DecodeResult::kBadExtensionHeader;
        }
        EXPECT_EQ(result, expected)
            << "prefix of " << length << " bytes gave " << to_string(result);
      }
      EXPECT_EQ(decoder.counters().frames, full.size() + 1);
      EXPECT_EQ(decoder.counters().count(DecodeResult::kTcp), 1u);
      EXPECT_EQ(decoder.counters().errors(), full.size());
    }
  }
}

// Ethernet frames of the common shape take a shortcut in the decoder; the same IP packet on
// the IPv4 link type takes the general path. Every field and every result must agree, for
// frames of the shortcut's shape and for each way a frame can just miss it.
TEST(Decoder, PlainEthernetShortcutAgreesWithTheGeneralPath) {
  struct Variant {
    const char* name;
    std::size_t at;  // byte offset within the IP packet; SIZE_MAX: none
    std::vector<std::uint8_t> values;
  };
  std::vector<Variant> variants = {
      {"unchanged", SIZE_MAX, {0}},
      {"version/IHL", 0, {0x45, 0x44, 0x46, 0x4f, 0x65, 0x35, 0x05}},
      {"total length high", 2, {0x00, 0x01, 0xff}},
      {"total length low", 3, {0x00, 0x13, 0x14, 0x27, 0x28, 0x29, 0x2c, 0x30, 0xff}},
      {"fragment high", 6, {0x00, 0x20, 0x40, 0x60, 0x01, 0x1f, 0x80}},
      {"fragment low", 7, {0x00, 0x01, 0xff}},
      {"protocol", 9, {6, 17, 1, 0}},
      {"TCP data offset", 32, {0x50, 0x40, 0x00, 0x60, 0xf0, 0x5f}},
      {"TCP flags", 33, {0x02, 0x12, 0x10, 0x04, 0x14, 0x01, 0xff}},
  };
  test::TcpSpec tcp;
  tcp.source_port = 51234;
  tcp.destination_port = 443;
  tcp.seq = 0xfedcba98;
  tcp.ack = 0x01234567;
  tcp.window = 1024;
  tcp.payload = 6;
  const Frame ip = syn_v4(tcp);
  Decoder ethernet(LinkType::kEthernet);
  Decoder general(LinkType::kIpv4);
  std::size_t compared = 0;
  const auto compare = [&](const Frame& packet, const std::string& name) {
    // Cut captures and Ethernet padding after the packet too.
    for (std::size_t size = 30; size <= packet.size() + 8; ++size) {
      Frame cut = packet;
      cut.resize(size, 0);
      TcpSegment fast;
      TcpSegment slow;
      fast.hop_limit = slow.hop_limit = 7;  // untouched fields must not differ either
      const DecodeResult fast_result =
          decode_exact(ethernet, test::ethernet(kEtherIpv4, cut), fast);
      const DecodeResult slow_result = decode_exact(general, cut, slow);
      SCOPED_TRACE(name + ", " + std::to_string(size) + " bytes");
      ASSERT_EQ(fast_result, slow_result);
      ++compared;
      if (!has_segment(fast_result)) continue;
      EXPECT_EQ(fast.source, slow.source);
      EXPECT_EQ(fast.destination, slow.destination);
      EXPECT_EQ(fast.source_port, slow.source_port);
      EXPECT_EQ(fast.destination_port, slow.destination_port);
      EXPECT_EQ(fast.seq, slow.seq);
      EXPECT_EQ(fast.ack, slow.ack);
      EXPECT_EQ(fast.flags, slow.flags);
      EXPECT_EQ(fast.window, slow.window);
      EXPECT_EQ(fast.hop_limit, slow.hop_limit);
      EXPECT_EQ(fast.payload_length, slow.payload_length);
      EXPECT_EQ(fast.options.has_mss, slow.options.has_mss);
      EXPECT_EQ(fast.options.has_timestamps, slow.options.has_timestamps);
    }
  };
  for (const Variant& variant : variants) {
    for (const std::uint8_t value : variant.values) {
      Frame packet = ip;
      if (variant.at != SIZE_MAX) packet[variant.at] = value;
      compare(packet, std::string(variant.name) + " = " + std::to_string(value));
    }
  }
  // A total length of 0 (segmentation offload on the capturing host) takes the captured length.
  Frame offloaded = ip;
  offloaded[2] = 0;
  offloaded[3] = 0;
  compare(offloaded, "total length 0");
  EXPECT_GT(compared, 1000u);
  EXPECT_EQ(ethernet.counters().by_result, general.counters().by_result);
}

TEST(Decoder, CountsEveryFrameByResult) {
  Decoder decoder(LinkType::kEthernet);
  TcpSegment out;
  decode_exact(decoder, test::ethernet(kEtherIpv4, syn_v4()), out);
  decode_exact(decoder, test::ethernet(kEtherIpv4, syn_v4()), out);
  decode_exact(decoder, test::ethernet(0x0806, Frame(28, 0)), out);
  test::Ipv4Spec udp;
  udp.protocol = 17;
  decode_exact(decoder, test::ethernet(kEtherIpv4, syn_v4({}, udp)), out);
  decode_exact(decoder, Frame(5, 0), out);
  const auto& c = decoder.counters();
  EXPECT_EQ(c.frames, 5u);
  EXPECT_EQ(c.count(DecodeResult::kTcp), 2u);
  EXPECT_EQ(c.count(DecodeResult::kNotIp), 1u);
  EXPECT_EQ(c.count(DecodeResult::kNotTcp), 1u);
  EXPECT_EQ(c.count(DecodeResult::kTruncatedLink), 1u);
  EXPECT_EQ(c.errors(), 1u);
}

TEST(DecodeStats, OnlyMalformedFramesAndLaterFragmentsAreErrors) {
  std::size_t errors = 0;
  DecodeStats counters;
  for (std::size_t i = 0; i < counters.by_result.size(); ++i) {
    const auto result = static_cast<DecodeResult>(i);
    counters.by_result[i] = 1;
    if (is_decode_error(result)) ++errors;
    const bool not_ours = result == DecodeResult::kTcp || result == DecodeResult::kNotIp ||
                          result == DecodeResult::kNotTcp;
    EXPECT_EQ(is_decode_error(result), !not_ours) << to_string(result);
  }
  EXPECT_TRUE(is_decode_error(DecodeResult::kBadTcpOptions)) << "counted, though decoded";
  EXPECT_TRUE(is_decode_error(DecodeResult::kLaterFragment));
  EXPECT_EQ(counters.errors(), errors);
  EXPECT_EQ(errors, counters.by_result.size() - 3);
}

TEST(LinkType, MapsDltValues) {
  EXPECT_EQ(link_type_from_dlt(1), LinkType::kEthernet);
  EXPECT_EQ(link_type_from_dlt(0), LinkType::kNull);
  EXPECT_EQ(link_type_from_dlt(108), LinkType::kNull);
  EXPECT_EQ(link_type_from_dlt(12), LinkType::kRaw);
  EXPECT_EQ(link_type_from_dlt(14), LinkType::kRaw);
  EXPECT_EQ(link_type_from_dlt(101), LinkType::kRaw);
  EXPECT_EQ(link_type_from_dlt(113), LinkType::kLinuxSll);
  EXPECT_EQ(link_type_from_dlt(276), LinkType::kLinuxSll2);
  EXPECT_EQ(link_type_from_dlt(228), LinkType::kIpv4);
  EXPECT_EQ(link_type_from_dlt(229), LinkType::kIpv6);
  EXPECT_FALSE(link_type_from_dlt(105));  // 802.11
  EXPECT_FALSE(link_type_from_dlt(-1));
}

TEST(ToString, NamesEveryEnumerator) {
  EXPECT_EQ(to_string(LinkType::kEthernet), "ethernet");
  EXPECT_EQ(to_string(LinkType::kLinuxSll2), "linux_sll2");
  EXPECT_EQ(to_string(DecodeResult::kTruncatedTcp), "truncated_tcp");
  EXPECT_EQ(to_string(DecodeResult::kBadExtensionHeader), "bad_extension_header");
  for (const LinkType link : kAllLinks) EXPECT_NE(to_string(link), "unknown");
  std::vector<std::string_view> names;
  for (std::size_t i = 0; i < static_cast<std::size_t>(DecodeResult::kCount); ++i) {
    const auto name = to_string(static_cast<DecodeResult>(i));
    EXPECT_NE(name, "unknown") << i;
    EXPECT_EQ(std::count(names.begin(), names.end(), name), 0) << name;
    names.push_back(name);
  }
}

}  // namespace
}  // namespace synwatch
