// synwatch-flood: sends a bounded spoofed SYN flood through a raw socket, for the network
// namespace test bed only. It refuses any source outside the documentation/benchmark ranges
// (198.18.0.0/15, 2001:db8::/32) and any target outside 127.0.0.0/8, 198.51.100.0/24 and
// 2001:db8::/32, and it stops after --count packets or --max-seconds, whichever comes first.
// --port-range LOW-HIGH (or --random-ports, 1024-65535) spreads the SYNs over many destination
// ports, each port once per pass in a random order, as a flood meant to exhaust per-port state.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "common/ip_address.hpp"

namespace {

std::uint16_t checksum_fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

std::uint32_t sum_bytes(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += (std::uint32_t{p[i]} << 8) | p[i + 1];
  if (n & 1) sum += std::uint32_t{p[n - 1]} << 8;
  return sum;
}

void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) {
  put16(p, static_cast<std::uint16_t>(v >> 16));
  put16(p + 2, static_cast<std::uint16_t>(v));
}

// A 24-byte SYN header with an MSS option, checksummed over the pseudo-header.
void build_tcp(std::uint8_t* tcp, const synwatch::IpAddress& src, const synwatch::IpAddress& dst,
               std::uint16_t sport, std::uint16_t dport, std::uint32_t seq) {
  std::memset(tcp, 0, 24);
  put16(tcp, sport);
  put16(tcp + 2, dport);
  put32(tcp + 4, seq);
  tcp[12] = 6 << 4;  // data offset 6 words
  tcp[13] = 0x02;    // SYN
  put16(tcp + 14, 64240);
  tcp[20] = 2;
  tcp[21] = 4;
  put16(tcp + 22, 1460);
  std::uint32_t sum = 0;
  if (src.is_v4()) {
    sum = sum_bytes(src.bytes.data() + 12, 4, sum);
    sum = sum_bytes(dst.bytes.data() + 12, 4, sum);
    sum += 6 + 24;
  } else {
    sum = sum_bytes(src.bytes.data(), 16, sum);
    sum = sum_bytes(dst.bytes.data(), 16, sum);
    sum += 24 + 6;
  }
  sum = sum_bytes(tcp, 24, sum);
  put16(tcp + 16, checksum_fold(sum));
}

int run(int argc, char** argv) {
  CLI::App app{"Bounded spoofed SYN flood for synwatch's network-namespace tests",
               "synwatch-flood"};
  std::string target_text, sources_text = "198.18.0.0/15", port_range_text;
  std::uint16_t port = 0;
  std::uint64_t count = 1000, seed = 1;
  double rate = 1000, max_seconds = 30;
  app.add_option("--target", target_text, "Victim address")->required();
  auto* port_option = app.add_option("--port", port, "Victim TCP port");
  auto* range_option =
      app.add_option("--port-range", port_range_text,
                     "LOW-HIGH: spread SYNs over these ports, each once per pass in random order");
  bool random_ports = false;
  auto* random_option =
      app.add_flag("--random-ports", random_ports, "Same as --port-range 1024-65535");
  port_option->excludes(range_option)->excludes(random_option);
  range_option->excludes(random_option);
  app.add_option("--sources", sources_text, "Prefix to draw spoofed sources from");
  app.add_option("--count", count, "SYNs to send");
  app.add_option("--rate", rate, "SYNs per second");
  app.add_option("--max-seconds", max_seconds, "Stop after this long in any case");
  app.add_option("--seed", seed, "Random seed");
  CLI11_PARSE(app, argc, argv);
  if (random_ports) port_range_text = "1024-65535";
  if (port_option->count() == 0 && port_range_text.empty()) {
    (void)std::fprintf(
        stderr, "synwatch-flood: one of --port, --port-range or --random-ports is required\n");
    return 64;
  }
  std::vector<std::uint16_t> ports{port};
  if (!port_range_text.empty()) {
    unsigned low = 0, high = 0;
    char dash = 0, rest = 0;
    if (std::sscanf(port_range_text.c_str(), "%u%c%u%c", &low, &dash, &high, &rest) != 3 ||
        dash != '-' || low == 0 || low > high || high > 65535) {
      (void)std::fprintf(stderr, "synwatch-flood: --port-range must be LOW-HIGH within 1-65535\n");
      return 64;
    }
    ports.resize(high - low + 1);
    std::iota(ports.begin(), ports.end(), static_cast<std::uint16_t>(low));
  }

  const auto target = synwatch::IpAddress::parse(target_text);
  const auto sources = synwatch::IpPrefix::parse(sources_text);
  if (!target || !sources) {
    (void)std::fprintf(stderr, "synwatch-flood: bad --target or --sources\n");
    return 64;
  }
  const auto allowed_sources = {*synwatch::IpPrefix::parse("198.18.0.0/15"),
                                *synwatch::IpPrefix::parse("2001:db8::/32")};
  const auto allowed_targets = {*synwatch::IpPrefix::parse("127.0.0.0/8"),
                                *synwatch::IpPrefix::parse("198.51.100.0/24"),
                                *synwatch::IpPrefix::parse("2001:db8::/32")};
  const auto within = [](const auto& list, const synwatch::IpPrefix& p) {
    for (const auto& a : list) {
      if (a.length <= p.length && a.contains(p.network)) return true;
    }
    return false;
  };
  if (!within(allowed_sources, *sources) ||
      !within(allowed_targets, synwatch::IpPrefix{*target, 128})) {
    (void)std::fprintf(
        stderr,
        "synwatch-flood: refusing: sources must be in 198.18.0.0/15 or 2001:db8::/32 and the "
        "target in 127.0.0.0/8, 198.51.100.0/24 or 2001:db8::/32\n");
    return 64;
  }
  const bool v4 = target->is_v4();
  if (v4 != sources->network.is_v4()) {
    (void)std::fprintf(stderr, "synwatch-flood: --target and --sources must be the same family\n");
    return 64;
  }
  const int fd = ::socket(v4 ? AF_INET : AF_INET6, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) {
    std::perror("synwatch-flood: raw socket (needs CAP_NET_RAW)");
    return 77;
  }
  std::mt19937_64 rng(seed);
  std::shuffle(ports.begin(), ports.end(), rng);
  std::uint8_t packet[64];
  sockaddr_storage to{};
  socklen_t to_length = 0;
  if (v4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&to);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, target->bytes.data() + 12, 4);
    to_length = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&to);
    sin6->sin6_family = AF_INET6;
    std::memcpy(&sin6->sin6_addr, target->bytes.data(), 16);
    to_length = sizeof(sockaddr_in6);
  }
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(max_seconds);
  std::uint64_t sent = 0, failed = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto due = start + std::chrono::duration<double>(static_cast<double>(i) / rate);
    const auto now = std::chrono::steady_clock::now();
    if (now > deadline) break;
    if (due > now) std::this_thread::sleep_until(due);
    synwatch::IpAddress src = sources->network;
    const std::uint64_t r = rng();
    for (unsigned bit = sources->length; bit < 128; ++bit) {
      if ((r >> (bit % 64)) & 1) {
        src.bytes[bit / 8] |= static_cast<std::uint8_t>(0x80u >> (bit % 8));
      }
    }
    const auto sport = static_cast<std::uint16_t>(1024 + rng() % 64000);
    const auto seq = static_cast<std::uint32_t>(rng());
    if (i > 0 && i % ports.size() == 0) std::shuffle(ports.begin(), ports.end(), rng);
    const std::uint16_t dport = ports[i % ports.size()];
    std::size_t length = 0;
    if (v4) {
      std::memset(packet, 0, 20);
      packet[0] = 0x45;
      put16(packet + 2, 44);
      put16(packet + 4, static_cast<std::uint16_t>(rng()));
      packet[8] = 64;
      packet[9] = 6;
      std::memcpy(packet + 12, src.bytes.data() + 12, 4);
      std::memcpy(packet + 16, target->bytes.data() + 12, 4);
      put16(packet + 10, checksum_fold(sum_bytes(packet, 20)));
      build_tcp(packet + 20, src, *target, sport, dport, seq);
      length = 44;
    } else {
      std::memset(packet, 0, 40);
      packet[0] = 0x60;
      put16(packet + 4, 24);
      packet[6] = 6;
      packet[7] = 64;
      std::memcpy(packet + 8, src.bytes.data(), 16);
      std::memcpy(packet + 24, target->bytes.data(), 16);
      build_tcp(packet + 40, src, *target, sport, dport, seq);
      length = 64;
    }
    if (::sendto(fd, packet, length, 0, reinterpret_cast<sockaddr*>(&to), to_length) < 0) {
      ++failed;
    } else {
      ++sent;
    }
  }
  ::close(fd);
  // The tests read this line: failing to print it is a failure.
  if (std::printf("{\"sent\":%llu,\"failed\":%llu}\n", static_cast<unsigned long long>(sent),
                  static_cast<unsigned long long>(failed)) < 0) {
    return 1;
  }
  return failed > 0 && sent == 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  // An exception escaping run() (bad_alloc, a library throwing) is reported rather than
  // aborting through std::terminate.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    (void)std::fprintf(stderr, "synwatch-flood: internal error: %s\n", e.what());
  } catch (...) {
    (void)std::fprintf(stderr, "synwatch-flood: internal error: unknown exception\n");
  }
  return 1;
}
