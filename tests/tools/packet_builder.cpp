#include "packet_builder.hpp"

#include <pcap/dlt.h>

#include <algorithm>
#include <cstring>

namespace synwatch::gen {
namespace {

constexpr std::array<std::uint8_t, 6> kServerMac{0x02, 0x53, 0x57, 0x00, 0x00, 0x0a};
constexpr std::array<std::uint8_t, 6> kRouterMac{0x00, 0x1c, 0x73, 0x5e, 0x01, 0xfe};
constexpr std::uint16_t kEthertypeIpv4 = 0x0800;
constexpr std::uint16_t kEthertypeIpv6 = 0x86dd;
constexpr std::uint16_t kEthertypeVlan = 0x8100;
constexpr std::uint16_t kEthertypeQinQ = 0x88a8;
constexpr std::uint16_t kCustomerVlan = 100;
constexpr std::uint16_t kServiceVlan = 2001;
constexpr std::uint32_t kInterfaceIndex = 2;
constexpr std::size_t kMinEthernetFrame = 60;  // without FCS, as captures show it

void put16(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

bool is_ethernet(Link link) noexcept {
  return link == Link::kEthernet || link == Link::kVlan || link == Link::kQinQ;
}

void write_link_header(Link link, Direction direction, std::uint16_t ethertype,
                       std::uint8_t* p) noexcept {
  const bool inbound = direction == Direction::kToServer;
  const auto& sender = inbound ? kRouterMac : kServerMac;
  const auto& receiver = inbound ? kServerMac : kRouterMac;
  switch (link) {
    case Link::kEthernet:
    case Link::kVlan:
    case Link::kQinQ: {
      std::memcpy(p, receiver.data(), 6);
      std::memcpy(p + 6, sender.data(), 6);
      std::uint8_t* q = p + 12;
      if (link == Link::kQinQ) {
        put16(q, kEthertypeQinQ);
        put16(q + 2, kServiceVlan);
        q += 4;
      }
      if (link != Link::kEthernet) {
        put16(q, kEthertypeVlan);
        put16(q + 2, kCustomerVlan);
        q += 4;
      }
      put16(q, ethertype);
      return;
    }
    case Link::kSll:
      // Packet type 0 = addressed to us, 4 = sent by us; the address is the sender's MAC.
      put16(p, inbound ? 0 : 4);
      put16(p + 2, 1);  // ARPHRD_ETHER
      put16(p + 4, 6);
      std::memset(p + 6, 0, 8);
      std::memcpy(p + 6, sender.data(), 6);
      put16(p + 14, ethertype);
      return;
    case Link::kSll2:
      put16(p, ethertype);
      put16(p + 2, 0);
      put32(p + 4, kInterfaceIndex);
      put16(p + 8, 1);  // ARPHRD_ETHER
      p[10] = inbound ? 0 : 4;
      p[11] = 6;
      std::memset(p + 12, 0, 8);
      std::memcpy(p + 12, sender.data(), 6);
      return;
    case Link::kRaw:
      return;
  }
}

}  // namespace

std::optional<Link> parse_link(std::string_view name) noexcept {
  for (const Link link :
       {Link::kEthernet, Link::kVlan, Link::kQinQ, Link::kSll, Link::kSll2, Link::kRaw}) {
    if (to_string(link) == name) return link;
  }
  return std::nullopt;
}

std::string_view to_string(Link link) noexcept {
  switch (link) {
    case Link::kEthernet:
      return "ethernet";
    case Link::kVlan:
      return "vlan";
    case Link::kQinQ:
      return "qinq";
    case Link::kSll:
      return "sll";
    case Link::kSll2:
      return "sll2";
    case Link::kRaw:
      return "raw";
  }
  return "?";
}

std::size_t link_header_length(Link link) noexcept {
  switch (link) {
    case Link::kEthernet:
      return 14;
    case Link::kVlan:
      return 18;
    case Link::kQinQ:
      return 22;
    case Link::kSll:
      return 16;
    case Link::kSll2:
      return 20;
    case Link::kRaw:
      return 0;
  }
  return 0;
}

int dlt_of(Link link) noexcept {
  switch (link) {
    case Link::kEthernet:
    case Link::kVlan:
    case Link::kQinQ:
      return DLT_EN10MB;
    case Link::kSll:
      return DLT_LINUX_SLL;
    case Link::kSll2:
      return DLT_LINUX_SLL2;
    case Link::kRaw:
      return DLT_RAW;
  }
  return DLT_EN10MB;
}

void TcpOptionBytes::put(std::initializer_list<std::uint8_t> values) noexcept {
  for (const std::uint8_t v : values) {
    if (length < bytes.size()) bytes[length++] = v;
  }
}
TcpOptionBytes& TcpOptionBytes::mss(std::uint16_t value) noexcept {
  put({2, 4, static_cast<std::uint8_t>(value >> 8), static_cast<std::uint8_t>(value)});
  return *this;
}
TcpOptionBytes& TcpOptionBytes::sack_permitted() noexcept {
  put({4, 2});
  return *this;
}
TcpOptionBytes& TcpOptionBytes::timestamps(std::uint32_t value, std::uint32_t echo) noexcept {
  put({8, 10, static_cast<std::uint8_t>(value >> 24), static_cast<std::uint8_t>(value >> 16),
       static_cast<std::uint8_t>(value >> 8), static_cast<std::uint8_t>(value),
       static_cast<std::uint8_t>(echo >> 24), static_cast<std::uint8_t>(echo >> 16),
       static_cast<std::uint8_t>(echo >> 8), static_cast<std::uint8_t>(echo)});
  return *this;
}
TcpOptionBytes& TcpOptionBytes::window_scale(std::uint8_t shift) noexcept {
  put({3, 3, shift});
  return *this;
}
TcpOptionBytes& TcpOptionBytes::nop() noexcept {
  put({1});
  return *this;
}
TcpOptionBytes& TcpOptionBytes::eol() noexcept {
  put({0});
  return *this;
}

std::uint32_t checksum_add(std::uint32_t sum, std::span<const std::uint8_t> data) noexcept {
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) {
    sum += static_cast<std::uint32_t>((data[i] << 8) | data[i + 1]);
  }
  if (i < data.size()) sum += static_cast<std::uint32_t>(data[i] << 8);
  return sum;
}

std::uint16_t checksum_fold(std::uint32_t sum) noexcept {
  while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

BuiltFrame build_frame(const PacketSpec& spec, Link link, std::span<std::uint8_t> out) noexcept {
  const bool v4 = spec.source.is_v4();
  const std::size_t link_length = link_header_length(link);
  const std::size_t ip_length = v4 ? 20 : 40;
  const std::size_t options_length = (spec.options.length + 3u) & ~3u;
  const std::size_t tcp_header_length = 20 + options_length;
  const std::size_t tcp_length = tcp_header_length + spec.payload_length;
  const std::size_t ip_total = ip_length + tcp_length;
  const std::size_t frame_length = link_length + ip_total;
  std::size_t wire_length = frame_length;
  if (is_ethernet(link)) {
    wire_length = std::max(wire_length, kMinEthernetFrame + (link_length - 14));
  }
  wire_length = std::min(wire_length, out.size());
  std::fill_n(out.begin(), wire_length, std::uint8_t{0});

  std::uint8_t* const frame = out.data();
  write_link_header(link, spec.direction, v4 ? kEthertypeIpv4 : kEthertypeIpv6, frame);

  std::uint8_t* const ip = frame + link_length;
  std::uint8_t* const tcp = ip + ip_length;
  std::uint32_t pseudo = 0;
  if (v4) {
    ip[0] = static_cast<std::uint8_t>(0x40 | (spec.ipv4_ihl != 0 ? (spec.ipv4_ihl & 0x0f) : 5));
    put16(ip + 2, static_cast<std::uint16_t>(ip_total));
    put16(ip + 4, spec.ip_id);
    put16(ip + 6, spec.dont_fragment ? 0x4000 : 0);
    ip[8] = spec.ttl;
    ip[9] = 6;
    std::memcpy(ip + 12, spec.source.bytes.data() + 12, 4);
    std::memcpy(ip + 16, spec.destination.bytes.data() + 12, 4);
    put16(ip + 10, checksum_fold(checksum_add(0, {ip, 20})));
    pseudo = checksum_add(0, {ip + 12, 8}) + 6 + static_cast<std::uint32_t>(tcp_length);
  } else {
    put32(ip, 0x60000000u | (spec.flow_label & 0xfffffu));
    put16(ip + 4, static_cast<std::uint16_t>(tcp_length));
    ip[6] = 6;
    ip[7] = spec.ttl;
    std::memcpy(ip + 8, spec.source.bytes.data(), 16);
    std::memcpy(ip + 24, spec.destination.bytes.data(), 16);
    pseudo = checksum_add(0, {ip + 8, 32}) + 6 + static_cast<std::uint32_t>(tcp_length);
  }

  const std::uint8_t data_offset = spec.tcp_data_offset != 0
                                       ? spec.tcp_data_offset
                                       : static_cast<std::uint8_t>(tcp_header_length / 4);
  put16(tcp, spec.source_port);
  put16(tcp + 2, spec.destination_port);
  put32(tcp + 4, spec.seq);
  put32(tcp + 8, spec.ack);
  tcp[12] = static_cast<std::uint8_t>((data_offset & 0x0f) << 4);
  tcp[13] = spec.flags;
  put16(tcp + 14, spec.window);
  std::memcpy(tcp + 20, spec.options.bytes.data(), spec.options.length);
  std::uint8_t* const payload = tcp + tcp_header_length;
  for (std::size_t i = 0; i < spec.payload_length; ++i) {
    payload[i] = static_cast<std::uint8_t>('a' + (i % 26));
  }
  put16(tcp + 16, checksum_fold(checksum_add(pseudo, {tcp, tcp_length})));

  BuiltFrame built;
  built.wire_length = static_cast<std::uint32_t>(wire_length);
  built.capture_length = spec.capture_length != 0 && spec.capture_length < wire_length
                             ? spec.capture_length
                             : built.wire_length;
  const bool ip_ok = !v4 || spec.ipv4_ihl == 0 || spec.ipv4_ihl >= 5;
  const std::size_t declared_tcp_header = std::size_t{data_offset} * 4;
  const bool tcp_ok = data_offset >= 5 && declared_tcp_header <= tcp_length;
  const std::size_t ip_header_declared =
      v4 ? std::size_t{spec.ipv4_ihl != 0 ? spec.ipv4_ihl : 5u} * 4 : ip_length;
  built.tcp_header_readable = ip_ok && tcp_ok && ip_header_declared == ip_length &&
                              built.capture_length >= link_length + ip_length + declared_tcp_header;
  return built;
}

}  // namespace synwatch::gen
