#pragma once
// Builds test frames byte by byte: TCP over IPv4/IPv6 inside every supported link layer.
// Shared by the decoder unit test and the fuzz seed generator (tests/fuzz/), so it depends
// on nothing but the standard library. Not for production code: it allocates freely.
// Thread safety: free functions on values.

#include <array>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

namespace synwatch::test {

using Frame = std::vector<std::uint8_t>;

inline void put16(Frame& f, std::uint16_t v) {
  f.push_back(static_cast<std::uint8_t>(v >> 8));
  f.push_back(static_cast<std::uint8_t>(v));
}
inline void put32(Frame& f, std::uint32_t v) {
  put16(f, static_cast<std::uint16_t>(v >> 16));
  put16(f, static_cast<std::uint16_t>(v));
}
inline void append(Frame& f, const Frame& tail) {
  f.insert(f.end(), tail.begin(), tail.end());
}

struct TcpSpec {
  std::uint16_t source_port = 40000;
  std::uint16_t destination_port = 80;
  std::uint32_t seq = 0x11223344;
  std::uint32_t ack = 0;
  std::uint8_t flags = 0x02;  // SYN
  std::uint16_t window = 64240;
  Frame options;            // raw option bytes; padded with EOL to a multiple of 4
  std::size_t payload = 0;  // payload bytes (0xab)
  int data_offset_override = -1;
};

inline Frame tcp_header(const TcpSpec& s) {
  Frame options = s.options;
  while (options.size() % 4 != 0) options.push_back(0);
  Frame f;
  put16(f, s.source_port);
  put16(f, s.destination_port);
  put32(f, s.seq);
  put32(f, s.ack);
  const int words = s.data_offset_override >= 0 ? s.data_offset_override
                                                : static_cast<int>(5 + options.size() / 4);
  f.push_back(static_cast<std::uint8_t>(words << 4));
  f.push_back(s.flags);
  put16(f, s.window);
  put16(f, 0);  // checksum: not verified by the decoder
  put16(f, 0);  // urgent pointer
  append(f, options);
  f.insert(f.end(), s.payload, 0xab);
  return f;
}

// Typical Linux SYN options: MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
inline Frame linux_syn_options() {
  return {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 1, 3, 3, 7};
}

struct Ipv4Spec {
  std::array<std::uint8_t, 4> source{192, 0, 2, 1};
  std::array<std::uint8_t, 4> destination{198, 51, 100, 7};
  std::uint8_t ttl = 64;
  std::uint8_t protocol = 6;
  std::uint16_t flags_and_offset = 0x4000;  // DF
  Frame options;                            // padded with zeros to a multiple of 4
  int ihl_override = -1;
  int total_length_override = -1;
};

inline Frame ipv4(const Ipv4Spec& s, const Frame& payload) {
  Frame options = s.options;
  while (options.size() % 4 != 0) options.push_back(0);
  const std::size_t header = 20 + options.size();
  const int ihl = s.ihl_override >= 0 ? s.ihl_override : static_cast<int>(header / 4);
  const int total = s.total_length_override >= 0 ? s.total_length_override
                                                 : static_cast<int>(header + payload.size());
  Frame f;
  f.push_back(static_cast<std::uint8_t>(0x40 | (ihl & 0x0f)));
  f.push_back(0);
  put16(f, static_cast<std::uint16_t>(total));
  put16(f, 0x1234);  // identification
  put16(f, s.flags_and_offset);
  f.push_back(s.ttl);
  f.push_back(s.protocol);
  put16(f, 0);  // checksum
  f.insert(f.end(), s.source.begin(), s.source.end());
  f.insert(f.end(), s.destination.begin(), s.destination.end());
  append(f, options);
  append(f, payload);
  return f;
}

inline std::array<std::uint8_t, 16> v6(std::initializer_list<std::uint16_t> groups) {
  std::array<std::uint8_t, 16> a{};
  std::size_t i = 0;
  for (const auto g : groups) {
    a[i++] = static_cast<std::uint8_t>(g >> 8);
    a[i++] = static_cast<std::uint8_t>(g);
  }
  return a;
}

// One IPv6 extension header: its type and its full bytes (next-header byte is filled in).
struct ExtensionHeader {
  std::uint8_t type = 0;
  Frame bytes;
};

// Hop-by-hop / routing / destination options with `units` extra 8-byte units of PadN.
inline ExtensionHeader options_header(std::uint8_t type, std::uint8_t units = 0) {
  Frame b(8 + 8 * std::size_t{units}, 0);
  b[1] = units;
  b[2] = 1;  // PadN option covering the rest
  b[3] = static_cast<std::uint8_t>(b.size() - 4);
  return {type, b};
}
inline ExtensionHeader fragment_header(std::uint16_t offset_units, bool more) {
  Frame b(8, 0);
  const auto field = static_cast<std::uint16_t>((offset_units << 3) | (more ? 1 : 0));
  b[2] = static_cast<std::uint8_t>(field >> 8);
  b[3] = static_cast<std::uint8_t>(field);
  b[7] = 0x42;  // identification
  return {44, b};
}
// Authentication header with `words` 4-byte words of ICV beyond the 12-byte fixed part.
inline ExtensionHeader authentication_header(std::uint8_t icv_words) {
  Frame b(12 + 4 * std::size_t{icv_words}, 0);
  b[1] = static_cast<std::uint8_t>(b.size() / 4 - 2);
  return {51, b};
}

struct Ipv6Spec {
  std::array<std::uint8_t, 16> source = v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1});
  std::array<std::uint8_t, 16> destination = v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x80});
  std::uint8_t hop_limit = 57;
  std::uint8_t upper_protocol = 6;
  std::vector<ExtensionHeader> extensions;
  int payload_length_override = -1;
};

inline Frame ipv6(const Ipv6Spec& s, const Frame& payload) {
  Frame chain;
  for (std::size_t i = 0; i < s.extensions.size(); ++i) {
    Frame b = s.extensions[i].bytes;
    b[0] = i + 1 < s.extensions.size() ? s.extensions[i + 1].type : s.upper_protocol;
    append(chain, b);
  }
  append(chain, payload);
  Frame f;
  put32(f, 0x60000000);
  put16(f, static_cast<std::uint16_t>(s.payload_length_override >= 0
                                          ? s.payload_length_override
                                          : static_cast<int>(chain.size())));
  f.push_back(s.extensions.empty() ? s.upper_protocol : s.extensions.front().type);
  f.push_back(s.hop_limit);
  f.insert(f.end(), s.source.begin(), s.source.end());
  f.insert(f.end(), s.destination.begin(), s.destination.end());
  append(f, chain);
  return f;
}

// Ethernet II with the given VLAN tag protocol identifiers (outermost first).
inline Frame ethernet(std::uint16_t type, const Frame& payload,
                      std::initializer_list<std::uint16_t> tags = {}) {
  Frame f = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02};
  for (const auto tpid : tags) {
    put16(f, tpid);
    put16(f, 0x0064);  // PCP 0, VLAN 100
  }
  put16(f, type);
  append(f, payload);
  return f;
}

inline Frame linux_sll(std::uint16_t protocol, const Frame& payload) {
  Frame f;
  put16(f, 0);  // packet type: to us
  put16(f, 1);  // ARPHRD_ETHER
  put16(f, 6);  // address length
  for (int i = 0; i < 8; ++i) f.push_back(static_cast<std::uint8_t>(i));
  put16(f, protocol);
  append(f, payload);
  return f;
}

inline Frame linux_sll2(std::uint16_t protocol, const Frame& payload) {
  Frame f;
  put16(f, protocol);
  put16(f, 0);     // reserved
  put32(f, 2);     // interface index
  put16(f, 1);     // ARPHRD_ETHER
  f.push_back(0);  // packet type
  f.push_back(6);  // address length
  for (int i = 0; i < 8; ++i) f.push_back(static_cast<std::uint8_t>(i));
  append(f, payload);
  return f;
}

inline Frame null_link(std::uint32_t family, bool network_order, const Frame& payload) {
  Frame f;
  if (network_order) {
    put32(f, family);
  } else {
    for (int i = 0; i < 4; ++i) f.push_back(static_cast<std::uint8_t>(family >> (8 * i)));
  }
  append(f, payload);
  return f;
}

}  // namespace synwatch::test
