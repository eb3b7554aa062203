#include "scenarios.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <limits>
#include <cmath>
#include <set>
#include <vector>

#include "capture_writer.hpp"

namespace synwatch::gen {
namespace {

// splitmix64: tiny, fast, and defined bit for bit here, so a seed means the same stream on
// every platform and standard library (std::uniform_*_distribution are not portable).
class Random {
 public:
  explicit Random(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) noexcept { return n <= 1 ? 0 : next() % n; }
  std::int64_t between(std::int64_t low, std::int64_t high) noexcept {  // inclusive
    return low + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(high - low) + 1));
  }
  std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(next() >> 32); }
  std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(next() >> 48); }
  double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool chance(double p) noexcept { return unit() < p; }

 private:
  std::uint64_t state_;
};

constexpr DurationNs kMicro = 1'000;
constexpr DurationNs kMilli = kNanosPerMilli;
constexpr DurationNs kSecond = kNanosPerSecond;

IpPrefix prefix(std::string_view text) {
  return *IpPrefix::parse(text);
}

// Attack sources (RFC 2544 benchmarking space, never routed) and legitimate clients
// (documentation space), per family.
IpPrefix spoof_prefix(bool v4) {
  return prefix(v4 ? "198.18.0.0/15" : "2001:db8:8000::/33");
}
IpPrefix client_prefix(bool v4) {
  return prefix(v4 ? "203.0.113.0/24" : "2001:db8:1::/48");
}

IpAddress random_in(const IpPrefix& p, Random& rng) {
  IpAddress a = p.network;
  for (std::size_t bit = p.length; bit < 128; ++bit) {
    if ((rng.next() & 1) != 0) a.bytes[bit / 8] |= static_cast<std::uint8_t>(0x80u >> (bit % 8));
  }
  return a;
}

IpAddress nth_in(const IpPrefix& p, std::uint64_t n) {
  IpAddress a = p.network;
  for (int i = 15; i >= 0 && n != 0; --i, n >>= 8) {
    const unsigned sum = a.bytes[i] + static_cast<unsigned>(n & 0xff);
    a.bytes[i] = static_cast<std::uint8_t>(sum);
    if (sum > 0xff && i > 0) ++a.bytes[i - 1];
  }
  return a;
}

std::vector<IpAddress> distinct_in(const IpPrefix& p, std::size_t count, Random& rng) {
  std::vector<IpAddress> out;
  std::set<IpAddress> seen;
  while (out.size() < count) {
    const IpAddress a = random_in(p, rng);
    if (seen.insert(a).second) out.push_back(a);
  }
  return out;
}

// Distinct values of `bits` bits in a seed-dependent order: a keyed bijection (odd multiplies
// and xor-shifts modulo 2^bits) applied to a counter, so nothing repeats until all were used.
class Shuffle {
 public:
  Shuffle(unsigned bits, Random& rng)
      : mask_(bits >= 64 ? ~0ULL : (1ULL << bits) - 1),
        shift_(bits / 2 + 1),
        key_(rng.next()),
        odd1_(rng.next() | 1),
        odd2_(rng.next() | 1) {}
  std::uint64_t next() noexcept {
    std::uint64_t x = (counter_++ & mask_) ^ (key_ & mask_);
    x = (x * odd1_) & mask_;
    x ^= x >> shift_;
    x = (x * odd2_) & mask_;
    x ^= x >> shift_;
    return x;
  }

 private:
  std::uint64_t mask_;
  unsigned shift_;
  std::uint64_t key_, odd1_, odd2_;
  std::uint64_t counter_ = 0;
};

// Source addresses of a prefix, each new until the prefix is used up (IPv4 /15: 131072);
// prefixes with more than 2^32 addresses are drawn at random, where repeats are negligible.
class AddressSampler {
 public:
  AddressSampler(const IpPrefix& p, Random& rng)
      : prefix_(p), host_bits_(128u - p.length), shuffle_(std::min(host_bits_, 32u), rng) {}
  IpAddress next(Random& rng) {
    return host_bits_ <= 32 ? nth_in(prefix_, shuffle_.next()) : random_in(prefix_, rng);
  }

 private:
  IpPrefix prefix_;
  unsigned host_bits_;
  Shuffle shuffle_;
};

// Ports 1024..65535 in a shuffled order without repeats (cycle-walking past the low ports).
class PortSampler {
 public:
  explicit PortSampler(Random& rng) : shuffle_(16, rng) {}
  std::uint16_t next() noexcept {
    std::uint64_t port = 0;
    do {
      port = shuffle_.next();
    } while (port < 1024);
    return static_cast<std::uint16_t>(port);
  }

 private:
  Shuffle shuffle_;
};

// TCP stacks as they show in a SYN: real operating systems and the usual flood tools.
enum class Stack : std::uint8_t { kLinux, kWindows, kMacos, kHping3, kToolBare, kToolMss, kNmap };

struct Client {
  IpAddress address;
  Stack stack = Stack::kLinux;
  std::uint8_t ttl = 64;         // as it arrives, after the hops
  std::uint32_t ts_base = 0;     // TCP timestamp clock at the scenario start (ms ticks)
  std::uint32_t flow_label = 0;  // IPv6
};

std::uint8_t arrival_ttl(std::uint8_t initial, Random& rng) {
  return static_cast<std::uint8_t>(initial - rng.between(3, 22));
}

Client os_client(const IpAddress& address, Random& rng) {
  Client c;
  c.address = address;
  const double u = rng.unit();
  c.stack = u < 0.5 ? Stack::kLinux : u < 0.8 ? Stack::kWindows : Stack::kMacos;
  c.ttl = arrival_ttl(c.stack == Stack::kWindows ? 128 : 64, rng);
  c.ts_base = rng.u32();
  c.flow_label = rng.u32() & 0xfffff;
  return c;
}

// Flood tools randomise the fields real stacks fix; a share of floods (Mirai-style) copy
// real stacks' options to look legitimate.
Client flood_client(const IpAddress& address, Random& rng) {
  Client c;
  c.address = address;
  const double u = rng.unit();
  c.stack = u < 0.45   ? Stack::kToolBare
            : u < 0.70 ? Stack::kToolMss
            : u < 0.85 ? Stack::kLinux
                       : Stack::kWindows;
  static constexpr std::uint8_t kInitialTtls[] = {64, 128, 255};
  const bool random_ttl = c.stack == Stack::kToolBare && rng.chance(0.5);
  c.ttl = random_ttl
              ? static_cast<std::uint8_t>(rng.between(30, 255))
              : arrival_ttl(c.stack == Stack::kWindows ? 128 : kInitialTtls[rng.below(3)], rng);
  c.ts_base = rng.u32();
  return c;
}

// What a SYN offered; a Linux server's SYN-ACK mirrors it.
struct SynShape {
  bool sack = false;
  bool timestamps = false;
  bool window_scale = false;
  std::uint32_t tsval = 0;
};

struct Server {
  Endpoint endpoint;
  std::uint32_t ts_base = 0;
};

// Always aggregate-initialized in full (Random has no default constructor), so the check's
// "constructor does not initialize rng" is a false positive.
struct Context {  // NOLINT(cppcoreguidelines-pro-type-member-init)
  const GeneratorOptions& options;
  const ScenarioInfo& info;
  CaptureWriter& writer;
  Timeline& timeline;
  Random rng;
  Endpoint target;
  std::uint32_t server_ts_base = 0;
  std::optional<TimestampNs> flood_start;
  double damage_share = 0;  // truncated scenario: share of frames to damage

  [[nodiscard]] double rate() const { return options.rate.value_or(info.rate.value_or(1)); }
  [[nodiscard]] double duration() const {
    return options.duration.value_or(info.duration.value_or(1));
  }
  [[nodiscard]] std::uint64_t count() const {
    return options.count.value_or(info.count.value_or(1));
  }
  [[nodiscard]] double legit_rate() const {
    return options.legit_rate.value_or(info.legit_rate.value_or(1));
  }
  [[nodiscard]] double history() const {
    return options.history.value_or(info.history.value_or(0));
  }
  [[nodiscard]] SynReply answer() const {
    return options.answer.value_or(info.answer.value_or(SynReply::kNone));
  }
  [[nodiscard]] TimestampNs start() const { return options.start; }
  [[nodiscard]] bool v4() const { return target.address.is_v4(); }

  std::uint32_t clock_ms(std::uint32_t base, TimestampNs t) const {
    return base + static_cast<std::uint32_t>((t - start()) / kMilli);
  }
  // Time of the i-th of evenly spaced events at `per_second`, with jitter inside its slot so
  // that arrivals look natural yet never overtake the next slot.
  TimestampNs slot(std::uint64_t i, double per_second, TimestampNs from) {
    const double spacing = 1e9 / per_second;
    const auto at = [&](std::uint64_t k) {
      return from + static_cast<DurationNs>(std::floor(static_cast<double>(k) * spacing));
    };
    const TimestampNs base = at(i);
    const DurationNs width = at(i + 1) - base;
    return i == 0 || width <= 1
               ? base
               : base + static_cast<DurationNs>(rng.below(static_cast<std::uint64_t>(width)));
  }
  void emit(PacketSpec spec) {
    if (damage_share > 0) damage(spec);
    timeline.schedule(spec);
  }
  void damage(PacketSpec& spec);
};

void Context::damage(PacketSpec& spec) {
  const double u = rng.unit();
  if (u >= damage_share) return;
  const double kind = u / damage_share;
  const std::size_t headers = link_header_length(options.link) + (spec.source.is_v4() ? 20 : 40) +
                              20 + ((spec.options.length + 3u) & ~3u);
  if (kind < 0.6) {
    spec.capture_length = static_cast<std::uint32_t>(1 + rng.below(headers - 1));  // snaplen cut
  } else if (kind < 0.8 && spec.source.is_v4()) {
    spec.ipv4_ihl = static_cast<std::uint8_t>(rng.below(5));
  } else {
    spec.tcp_data_offset =
        rng.chance(0.5) ? static_cast<std::uint8_t>(rng.below(5)) : std::uint8_t{15};
  }
}

std::uint32_t random_ip_id(Random& rng) {
  return rng.u16();
}

PacketSpec make_syn(Context& c, const Client& client, std::uint16_t source_port,
                    const Endpoint& server, std::uint32_t isn, TimestampNs t, SynShape& shape) {
  Random& rng = c.rng;
  PacketSpec s;
  s.time = t;
  s.source = client.address;
  s.destination = server.address;
  s.source_port = source_port;
  s.destination_port = server.port;
  s.seq = isn;
  s.flags = tcp_flags::kSyn;
  s.ttl = client.ttl;
  s.ip_id = static_cast<std::uint16_t>(random_ip_id(rng));
  s.flow_label = client.flow_label;
  s.direction = Direction::kToServer;
  const bool v4 = server.address.is_v4();
  const std::uint16_t mss = v4 ? 1460 : 1440;
  shape = SynShape{};
  shape.tsval = c.clock_ms(client.ts_base, t);
  switch (client.stack) {
    case Stack::kLinux:
      s.options.mss(mss).sack_permitted().timestamps(shape.tsval, 0).nop().window_scale(7);
      s.window = v4 ? 64240 : 64800;
      shape = {true, true, true, shape.tsval};
      break;
    case Stack::kWindows:
      s.options.mss(mss).nop().window_scale(8).nop().nop().sack_permitted();
      s.window = 64240;
      shape = {true, false, true, 0};
      break;
    case Stack::kMacos:
      s.options.mss(mss)
          .nop()
          .window_scale(6)
          .nop()
          .nop()
          .timestamps(shape.tsval, 0)
          .sack_permitted()
          .eol()
          .eol();
      s.window = 65535;
      shape = {true, true, true, shape.tsval};
      break;
    case Stack::kHping3:
      s.window = 512;
      s.dont_fragment = false;
      break;
    case Stack::kToolBare: {
      static constexpr std::uint16_t kWindows[] = {1024, 5840, 8192, 14600, 29200, 65535};
      s.window = rng.chance(0.5) ? kWindows[rng.below(6)] : rng.u16();
      s.dont_fragment = false;
      s.flow_label = 0;
      break;
    }
    case Stack::kToolMss: {
      static constexpr std::uint16_t kMss[] = {536, 1360, 1380, 1440, 1460};
      s.options.mss(kMss[rng.below(5)]);
      s.window = rng.u16();
      s.dont_fragment = rng.chance(0.5);
      s.flow_label = 0;
      break;
    }
    case Stack::kNmap:
      s.options.mss(1460);
      s.window = 1024;
      s.dont_fragment = false;
      s.flow_label = 0;
      break;
  }
  return s;
}

// A Linux server's SYN-ACK (tcp_options_write order), `delay` after the SYN.
PacketSpec make_synack(Context& c, const PacketSpec& syn, const SynShape& shape,
                       std::uint32_t server_isn, TimestampNs t) {
  PacketSpec s;
  s.time = t;
  s.source = syn.destination;
  s.destination = syn.source;
  s.source_port = syn.destination_port;
  s.destination_port = syn.source_port;
  s.seq = server_isn;
  s.ack = syn.seq + 1;
  s.flags = tcp_flags::kSyn | tcp_flags::kAck;
  s.window = 65160;
  s.ttl = 64;
  s.flow_label = syn.flow_label;
  s.direction = Direction::kFromServer;
  const std::uint32_t tsval = c.clock_ms(c.server_ts_base, t);
  s.options.mss(syn.source.is_v4() ? 1460 : 1440);
  if (shape.sack && shape.timestamps) {
    s.options.sack_permitted().timestamps(tsval, shape.tsval);
  } else if (shape.timestamps) {
    s.options.nop().nop().timestamps(tsval, shape.tsval);
  } else if (shape.sack) {
    s.options.nop().nop().sack_permitted();
  }
  if (shape.window_scale) s.options.nop().window_scale(7);
  return s;
}

DurationNs server_delay(Random& rng) {
  return rng.between(60 * kMicro, 180 * kMicro);
}

struct ConnectionTiming {
  DurationNs server_delay = 100 * kMicro;  // packet in -> server's reply out
  DurationNs rtt = 20 * kMilli;            // server's packet out -> client's answer in
  std::uint16_t request_bytes = 0;         // 0 and 0: handshake then close, no data
  std::uint16_t response_bytes = 0;
  DurationNs hold = 100 * kMilli;  // idle time before the client closes
  bool close = true;               // false: stop after the final ACK
  // Above zero: the first SYN-ACK is lost on its way to the client, whose SYN timer sends the
  // SYN again this long after the first one.
  DurationNs syn_retry_after = 0;
};

// A complete, well-behaved connection as seen on the server's interface.
void schedule_connection(Context& c, const Client& client, std::uint16_t port,
                         const Endpoint& server, TimestampNs t0, const ConnectionTiming& timing) {
  SynShape shape;
  const std::uint32_t client_isn = c.rng.u32();
  const std::uint32_t server_isn = c.rng.u32();
  const PacketSpec syn = make_syn(c, client, port, server, client_isn, t0, shape);
  c.emit(syn);
  TimestampNs t = t0 + timing.server_delay;
  const PacketSpec synack = make_synack(c, syn, shape, server_isn, t);
  c.emit(synack);
  if (timing.syn_retry_after > 0) {
    // The same SYN (same ISN, a fresh timestamp); the server, still in SYN_RECV, answers it
    // with a SYN-ACK carrying its original ISN.
    const PacketSpec retry =
        make_syn(c, client, port, server, client_isn, t0 + timing.syn_retry_after, shape);
    c.emit(retry);
    t = retry.time + timing.server_delay;
    c.emit(make_synack(c, retry, shape, server_isn, t));
  }

  std::uint32_t client_next = client_isn + 1;
  std::uint32_t server_next = server_isn + 1;
  std::uint32_t client_ts = shape.tsval;
  std::uint32_t server_ts = c.clock_ms(c.server_ts_base, t);
  const auto segment = [&](bool from_client, TimestampNs when, std::uint8_t flags,
                           std::uint16_t payload) {
    PacketSpec s;
    s.time = when;
    s.source = from_client ? syn.source : syn.destination;
    s.destination = from_client ? syn.destination : syn.source;
    s.source_port = from_client ? syn.source_port : syn.destination_port;
    s.destination_port = from_client ? syn.destination_port : syn.source_port;
    s.seq = from_client ? client_next : server_next;
    s.ack = from_client ? server_next : client_next;
    s.flags = flags;
    s.ttl = from_client ? client.ttl : 64;
    s.ip_id = from_client ? c.rng.u16() : 0;
    s.flow_label = syn.flow_label;
    s.direction = from_client ? Direction::kToServer : Direction::kFromServer;
    s.payload_length = payload;
    if (from_client) {
      s.window = shape.window_scale ? 502 : 64240;
    } else {
      s.window = shape.window_scale ? 509 : 65160;
    }
    if (shape.timestamps) {
      if (from_client) {
        client_ts = c.clock_ms(client.ts_base, when);
        s.options.nop().nop().timestamps(client_ts, server_ts);
      } else {
        server_ts = c.clock_ms(c.server_ts_base, when);
        s.options.nop().nop().timestamps(server_ts, client_ts);
      }
    }
    (from_client ? client_next : server_next) +=
        payload + ((flags & tcp_flags::kFin) != 0 ? 1u : 0u);
    c.emit(s);
  };

  t += timing.rtt;
  segment(true, t, tcp_flags::kAck, 0);
  if (timing.request_bytes > 0) {
    t += 15 * kMicro;
    segment(true, t, tcp_flags::kPsh | tcp_flags::kAck, timing.request_bytes);
    t += timing.server_delay * 4;
    segment(false, t, tcp_flags::kPsh | tcp_flags::kAck, timing.response_bytes);
    t += timing.rtt;
    segment(true, t, tcp_flags::kAck, 0);
  }
  if (!timing.close) return;
  t += timing.hold;
  segment(true, t, tcp_flags::kFin | tcp_flags::kAck, 0);
  t += timing.server_delay;
  segment(false, t, tcp_flags::kFin | tcp_flags::kAck, 0);
  t += timing.rtt;
  segment(true, t, tcp_flags::kAck, 0);
}

std::uint16_t ephemeral_port(Random& rng) {
  return static_cast<std::uint16_t>(rng.between(32768, 60999));
}
std::uint16_t any_high_port(Random& rng) {
  return static_cast<std::uint16_t>(rng.between(1024, 65535));
}

// A web client's connection: a request, a response, a pause, then the client closes.
ConnectionTiming web_request(Random& rng, DurationNs min_rtt, DurationNs max_rtt) {
  ConnectionTiming timing;
  timing.server_delay = server_delay(rng);
  timing.rtt = rng.between(min_rtt, max_rtt);
  timing.request_bytes = static_cast<std::uint16_t>(rng.between(120, 480));
  timing.response_bytes = static_cast<std::uint16_t>(rng.between(300, 1400));
  timing.hold = rng.between(100 * kMilli, 900 * kMilli);
  return timing;
}

// Real-looking clients from documentation space connecting now and then, so that time moves
// on after an attack and a detector can see it end.
void background(Context& c, TimestampNs from, DurationNs length, DurationNs every) {
  const IpPrefix clients = client_prefix(c.v4());
  for (TimestampNs t = from + every / 2; t < from + length; t += every) {
    const TimestampNs at = t + c.rng.between(0, 50 * kMilli);
    c.timeline.release_before(at);
    const ConnectionTiming timing = web_request(c.rng, 15 * kMilli, 120 * kMilli);
    schedule_connection(c, os_client(random_in(clients, c.rng), c.rng), ephemeral_port(c.rng),
                        c.target, at, timing);
  }
}

// A client that connects again and again; like a stack's port allocator it takes the next
// ephemeral port each time, so two of its connections never share a 4-tuple.
struct RegularClient {
  Client client;
  std::uint16_t next_port = 32768;

  std::uint16_t take_port() noexcept {
    const std::uint16_t port = next_port;
    next_port = next_port >= 60999 ? 32768 : static_cast<std::uint16_t>(next_port + 1);
    return port;
  }
};

std::vector<RegularClient> regular_clients(Context& c, const IpPrefix& p, std::size_t count) {
  std::vector<RegularClient> clients;
  clients.reserve(count);
  for (const IpAddress& a : distinct_in(p, count, c.rng)) {
    clients.push_back({os_client(a, c.rng), ephemeral_port(c.rng)});
  }
  return clients;
}

enum class Answer : std::uint8_t {
  kNone,        // server silent, or a one-way mirror of the inbound direction
  kOnce,        // one SYN-ACK per SYN: Linux with SYN cookies keeps no state to retransmit
  kRetransmit,  // SYN-ACK, then again at +1 s and +3 s (Linux SYN_RECV backoff)
  kReset,       // RST-ACK, seq 0, ack = SYN's seq + 1: nothing listens on the port
};

Answer answer_for(SynReply reply) {
  switch (reply) {
    case SynReply::kNone:
      return Answer::kNone;
    case SynReply::kSynAck:
      return Answer::kOnce;
    case SynReply::kRst:
      return Answer::kReset;
  }
  return Answer::kNone;
}

void answer_syn(Context& c, const PacketSpec& syn, const SynShape& shape, Answer answer) {
  if (answer == Answer::kNone) return;
  if (answer == Answer::kReset) {
    PacketSpec reset = make_synack(c, syn, shape, 0, syn.time + server_delay(c.rng));
    reset.flags = tcp_flags::kRst | tcp_flags::kAck;
    reset.window = 0;
    reset.options = {};
    c.emit(reset);
    return;
  }
  const std::uint32_t server_isn = c.rng.u32();
  const TimestampNs first = syn.time + server_delay(c.rng);
  c.emit(make_synack(c, syn, shape, server_isn, first));
  if (answer == Answer::kRetransmit) {
    for (const DurationNs backoff : {1 * kSecond, 3 * kSecond}) {
      c.emit(
          make_synack(c, syn, shape, server_isn, first + backoff + c.rng.between(0, 2 * kMilli)));
    }
  }
}

std::uint64_t event_count(Context& c) {
  return static_cast<std::uint64_t>(std::llround(c.rate() * c.duration()));
}

void spoofed_flood(Context& c, Answer answer) {
  AddressSampler sources(spoof_prefix(c.v4()), c.rng);
  const std::uint64_t syns = event_count(c);
  for (std::uint64_t i = 0; i < syns; ++i) {
    const TimestampNs t = c.slot(i, c.rate(), c.start());
    c.timeline.release_before(t);
    if (i == 0) c.flood_start = t;
    SynShape shape;
    const Client tool = flood_client(sources.next(c.rng), c.rng);
    const PacketSpec syn = make_syn(c, tool, any_high_port(c.rng), c.target, c.rng.u32(), t, shape);
    c.emit(syn);
    answer_syn(c, syn, shape, answer);
  }
  background(c, c.start() + from_seconds(c.duration()), 30 * kSecond, 2 * kSecond);
}

// The attack's SYNs and the legitimate clients' connections are two streams of evenly spaced
// arrivals (Context::slot) merged in time order, since the timeline only takes packets at or
// after the last release.
void flood_beside_legit(Context& c) {
  constexpr TimestampNs kNever = std::numeric_limits<TimestampNs>::max();
  constexpr std::size_t kLegitClients = 250;  // nearly all of 203.0.113.0/24
  const TimestampNs attack_start = c.start() + from_seconds(c.history());
  const double legit_seconds = c.history() + c.duration() + 5;
  const std::uint64_t flood_syns = event_count(c);
  const auto legit_connections =
      static_cast<std::uint64_t>(std::llround(c.legit_rate() * legit_seconds));
  AddressSampler sources(spoof_prefix(c.v4()), c.rng);
  std::vector<RegularClient> clients = regular_clients(c, client_prefix(c.v4()), kLegitClients);

  std::uint64_t flood_sent = 0;
  std::uint64_t legit_sent = 0;
  TimestampNs next_flood = flood_syns > 0 ? c.slot(0, c.rate(), attack_start) : kNever;
  TimestampNs next_legit = legit_connections > 0 ? c.slot(0, c.legit_rate(), c.start()) : kNever;
  while (next_flood != kNever || next_legit != kNever) {
    if (next_flood <= next_legit) {
      const TimestampNs t = next_flood;
      c.timeline.release_before(t);
      if (flood_sent == 0) c.flood_start = t;
      SynShape shape;
      const Client tool = flood_client(sources.next(c.rng), c.rng);
      const PacketSpec syn =
          make_syn(c, tool, any_high_port(c.rng), c.target, c.rng.u32(), t, shape);
      c.emit(syn);
      answer_syn(c, syn, shape, Answer::kOnce);
      ++flood_sent;
      next_flood = flood_sent < flood_syns ? c.slot(flood_sent, c.rate(), attack_start) : kNever;
    } else {
      const TimestampNs t = next_legit;
      c.timeline.release_before(t);
      RegularClient& client = clients[c.rng.below(clients.size())];
      const ConnectionTiming timing = web_request(c.rng, 10 * kMilli, 80 * kMilli);
      schedule_connection(c, client.client, client.take_port(), c.target, t, timing);
      ++legit_sent;
      next_legit =
          legit_sent < legit_connections ? c.slot(legit_sent, c.legit_rate(), c.start()) : kNever;
    }
  }
  background(c, c.start() + from_seconds(legit_seconds), 30 * kSecond, 2 * kSecond);
}

// Many new clients at once (a sale, a news link): every one from its own address, slow
// networks, a few that give up after the SYN-ACK.
void flash_crowd(Context& c) {
  AddressSampler addresses(spoof_prefix(c.v4()), c.rng);
  const std::uint64_t clients = event_count(c);
  for (std::uint64_t i = 0; i < clients; ++i) {
    const TimestampNs t = c.slot(i, c.rate(), c.start());
    c.timeline.release_before(t);
    const Client client = os_client(addresses.next(c.rng), c.rng);
    const std::uint16_t port = ephemeral_port(c.rng);
    if (c.rng.chance(0.02)) {
      // The client is gone before its ACK: the server retransmits from SYN_RECV in vain.
      SynShape shape;
      const PacketSpec syn = make_syn(c, client, port, c.target, c.rng.u32(), t, shape);
      c.emit(syn);
      answer_syn(c, syn, shape, Answer::kRetransmit);
      continue;
    }
    const ConnectionTiming timing = web_request(c.rng, 200 * kMilli, 1000 * kMilli);
    schedule_connection(c, client, port, c.target, t, timing);
  }
  background(c, c.start() + from_seconds(c.duration()), 30 * kSecond, 2 * kSecond);
}

// A busy server behind a lossy path: a few SYN-ACKs never reach their client, which sends its
// SYN again after its initial 1 s retransmission timeout. Connections are short and carry no
// data, so that 100,000 of them stay a small file.
void lossy_busy(Context& c) {
  constexpr std::size_t kClients = 20000;
  std::vector<RegularClient> clients = regular_clients(c, spoof_prefix(c.v4()), kClients);
  const std::uint64_t connections = event_count(c);
  for (std::uint64_t i = 0; i < connections; ++i) {
    const TimestampNs t = c.slot(i, c.rate(), c.start());
    c.timeline.release_before(t);
    RegularClient& client = clients[c.rng.below(clients.size())];
    ConnectionTiming timing;
    timing.server_delay = server_delay(c.rng);
    timing.rtt = c.rng.between(5 * kMilli, 60 * kMilli);
    timing.hold = c.rng.between(10 * kMilli, 300 * kMilli);
    if (c.rng.chance(0.02)) timing.syn_retry_after = 1 * kSecond;
    schedule_connection(c, client.client, client.take_port(), c.target, t, timing);
  }
  background(c, c.start() + from_seconds(c.duration()), 30 * kSecond, 2 * kSecond);
}

// SYNs to random ports (1..65535, repeats allowed) of the target's address: each port gets
// few, the address gets them all. From a new spoofed source each time, or from one source.
void random_ports(Context& c, bool one_source) {
  AddressSampler spoofed(spoof_prefix(c.v4()), c.rng);
  Client single;
  single.address = *IpAddress::parse(c.v4() ? "203.0.113.77" : "2001:db8::77");
  single.stack = Stack::kHping3;
  single.ttl = arrival_ttl(64, c.rng);
  const Answer answer = answer_for(c.answer());
  const std::uint64_t syns = c.count();
  for (std::uint64_t i = 0; i < syns; ++i) {
    const TimestampNs t = c.slot(i, c.rate(), c.start());
    c.timeline.release_before(t);
    if (i == 0) c.flood_start = t;
    const Client client = one_source ? single : flood_client(spoofed.next(c.rng), c.rng);
    const Endpoint destination{c.target.address,
                               static_cast<std::uint16_t>(c.rng.between(1, 65535))};
    SynShape shape;
    const PacketSpec syn =
        make_syn(c, client, any_high_port(c.rng), destination, c.rng.u32(), t, shape);
    c.emit(syn);
    answer_syn(c, syn, shape, answer);
  }
  const auto attack = static_cast<DurationNs>(static_cast<double>(syns) * 1e9 / c.rate());
  background(c, c.start() + attack, 30 * kSecond, 2 * kSecond);
}

void few_sources(Context& c) {
  const IpPrefix sources = spoof_prefix(c.v4());
  std::array<Client, 3> hping{};
  std::vector<PortSampler> ports;
  for (std::size_t i = 0; i < hping.size(); ++i) {
    ports.emplace_back(c.rng);
    hping[i].address = nth_in(sources, i + 1);
    hping[i].stack = Stack::kHping3;
    hping[i].ttl = arrival_ttl(64, c.rng);
  }
  const std::uint64_t syns = event_count(c);
  for (std::uint64_t i = 0; i < syns; ++i) {
    const TimestampNs t = c.slot(i, c.rate(), c.start());
    c.timeline.release_before(t);
    if (i == 0) c.flood_start = t;
    const double u = c.rng.unit();
    const std::size_t which = u < 0.6 ? 0 : u < 0.8 ? 1 : 2;
    SynShape shape;
    const PacketSpec syn =
        make_syn(c, hping[which], ports[which].next(), c.target, c.rng.u32(), t, shape);
    c.emit(syn);
    answer_syn(c, syn, shape, Answer::kOnce);
  }
  background(c, c.start() + from_seconds(c.duration()), 30 * kSecond, 2 * kSecond);
}

void botnet(Context& c) {
  struct Bot {
    Client client;
    std::uint16_t next_port;
    DurationNs rtt;
  };
  std::vector<Bot> bots;
  for (const IpAddress& a : distinct_in(spoof_prefix(c.v4()), c.count(), c.rng)) {
    Client client = os_client(a, c.rng);
    if (client.stack == Stack::kMacos) client.stack = Stack::kLinux;  // IoT bots run Linux
    bots.push_back({client, ephemeral_port(c.rng), c.rng.between(20 * kMilli, 150 * kMilli)});
  }
  const std::uint64_t syns = event_count(c);
  for (std::uint64_t i = 0; i < syns; ++i) {
    const TimestampNs t = c.slot(i, c.rate(), c.start());
    c.timeline.release_before(t);
    if (i == 0) c.flood_start = t;
    Bot& bot = bots[c.rng.below(bots.size())];
    const std::uint16_t port = bot.next_port;
    bot.next_port = bot.next_port >= 60999 ? 32768 : static_cast<std::uint16_t>(bot.next_port + 1);
    if (c.rng.chance(0.03)) {
      ConnectionTiming timing;
      timing.server_delay = server_delay(c.rng);
      timing.rtt = bot.rtt;
      timing.close = false;  // connection-holding bots keep it open
      schedule_connection(c, bot.client, port, c.target, t, timing);
      continue;
    }
    SynShape shape;
    const PacketSpec syn = make_syn(c, bot.client, port, c.target, c.rng.u32(), t, shape);
    c.emit(syn);
    answer_syn(c, syn, shape, Answer::kOnce);
  }
  background(c, c.start() + from_seconds(c.duration()), 30 * kSecond, 2 * kSecond);
}

void legit_burst(Context& c) {
  const auto addresses = distinct_in(spoof_prefix(c.v4()), c.count(), c.rng);
  std::vector<std::pair<TimestampNs, std::size_t>> arrivals;
  const auto window = static_cast<std::uint64_t>(from_seconds(c.duration()));
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    arrivals.emplace_back(c.start() + (i == 0 ? 0 : static_cast<DurationNs>(c.rng.below(window))),
                          i);
  }
  std::sort(arrivals.begin(), arrivals.end());
  for (const auto& [t, index] : arrivals) {
    c.timeline.release_before(t);
    ConnectionTiming timing;
    timing.server_delay = c.rng.between(30 * kMicro, 300 * kMicro);
    timing.rtt = c.rng.between(200 * kMicro, 999 * kMicro);
    timing.hold = c.rng.between(1 * kMilli, 20 * kMilli);
    schedule_connection(c, os_client(addresses[index], c.rng), ephemeral_port(c.rng), c.target, t,
                        timing);
  }
}

void slow_legit(Context& c) {
  const auto pool = distinct_in(spoof_prefix(c.v4()), 1000, c.rng);
  std::vector<Client> clients;
  clients.reserve(pool.size());
  for (const IpAddress& a : pool) clients.push_back(os_client(a, c.rng));
  const std::uint64_t connections = event_count(c);
  for (std::uint64_t i = 0; i < connections; ++i) {
    const TimestampNs t = c.slot(i, c.rate(), c.start());
    c.timeline.release_before(t);
    ConnectionTiming timing;
    timing.server_delay = server_delay(c.rng);
    timing.rtt = c.rng.between(190 * kMilli, 210 * kMilli);
    timing.request_bytes =
        static_cast<std::uint16_t>(c.rng.between(80, 300));  // small: file < 5 MB
    timing.response_bytes = static_cast<std::uint16_t>(c.rng.between(150, 700));
    timing.hold = c.rng.between(200 * kMilli, 2 * kSecond);
    schedule_connection(c, clients[c.rng.below(clients.size())], ephemeral_port(c.rng), c.target, t,
                        timing);
  }
}

void syn_scan(Context& c) {
  std::vector<std::uint16_t> ports(c.count());
  for (std::size_t i = 0; i < ports.size(); ++i) ports[i] = static_cast<std::uint16_t>(i + 1);
  for (std::size_t i = ports.size(); i > 1; --i) {
    std::swap(ports[i - 1], ports[c.rng.below(i)]);  // nmap order
  }
  Client scanner;
  scanner.address = nth_in(client_prefix(c.v4()), 66);
  scanner.stack = Stack::kNmap;
  scanner.ttl = static_cast<std::uint8_t>(c.rng.between(37, 59));
  const std::uint16_t source_port = any_high_port(c.rng);
  const DurationNs rtt = 18 * kMilli;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    const TimestampNs t = c.slot(i, c.rate(), c.start());
    c.timeline.release_before(t);
    SynShape shape;
    const PacketSpec syn =
        make_syn(c, scanner, source_port, {c.target.address, ports[i]}, c.rng.u32(), t, shape);
    c.emit(syn);
    const TimestampNs reply_at = t + server_delay(c.rng);
    const bool open = ports[i] == 22 || ports[i] == 80 || ports[i] == 443;
    if (open) {
      const PacketSpec synack = make_synack(c, syn, shape, c.rng.u32(), reply_at);
      c.emit(synack);
      PacketSpec reset = syn;  // the scanner's kernel knows no such connection
      reset.time = reply_at + rtt;
      reset.seq = syn.seq + 1;
      reset.flags = tcp_flags::kRst;
      reset.window = 0;
      reset.options = {};
      c.emit(reset);
    } else {
      PacketSpec reset = make_synack(c, syn, shape, 0, reply_at);
      reset.seq = 0;
      reset.flags = tcp_flags::kRst | tcp_flags::kAck;
      reset.window = 0;
      reset.options = {};
      c.emit(reset);
    }
  }
}

void randdst(Context& c) {
  const IpPrefix destinations =
      c.v4() ? IpPrefix{c.target.address, 96 + 24} : IpPrefix{c.target.address, 120};
  IpPrefix masked = destinations;
  for (std::size_t bit = masked.length; bit < 128; ++bit) {
    masked.network.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  }
  const IpPrefix anywhere = c.v4() ? prefix("0.0.0.0/0") : prefix("2000::/3");
  for (std::uint64_t i = 0; i < c.count(); ++i) {
    const TimestampNs t = c.slot(i, c.rate(), c.start());
    c.timeline.release_before(t);
    IpAddress source;
    do {
      source = random_in(anywhere, c.rng);
    } while (is_bogon(source));
    const Endpoint destination{random_in(masked, c.rng),
                               static_cast<std::uint16_t>(c.rng.between(1, 65535))};
    SynShape shape;
    c.emit(make_syn(c, flood_client(source, c.rng), any_high_port(c.rng), destination, c.rng.u32(),
                    t, shape));
  }
}

void truncated(Context& c) {
  c.damage_share = 0.4;
  const IpPrefix clients = client_prefix(c.v4());
  for (std::uint64_t i = 0; !c.timeline.full(); ++i) {
    const TimestampNs t = c.slot(i, 300, c.start());
    c.timeline.release_before(t);
    ConnectionTiming timing;
    timing.server_delay = server_delay(c.rng);
    timing.rtt = c.rng.between(5 * kMilli, 60 * kMilli);
    timing.close = false;
    schedule_connection(c, os_client(random_in(clients, c.rng), c.rng), ephemeral_port(c.rng),
                        c.target, t, timing);
  }
}

void mixed_families(Context& c) {
  const Endpoint v4_target = c.v4() ? c.target : Endpoint{*IpAddress::parse("198.51.100.10"), 80};
  const Endpoint v6_target = c.v4() ? Endpoint{*IpAddress::parse("2001:db8::10"), 443} : c.target;
  for (std::uint64_t i = 0; i < c.count(); ++i) {
    const TimestampNs t = c.slot(i, c.rate(), c.start());
    c.timeline.release_before(t);
    const bool v4 = i % 2 == 0;
    ConnectionTiming timing;
    timing.server_delay = server_delay(c.rng);
    timing.rtt = c.rng.between(10 * kMilli, 80 * kMilli);
    timing.request_bytes = static_cast<std::uint16_t>(c.rng.between(100, 400));
    timing.response_bytes = static_cast<std::uint16_t>(c.rng.between(200, 1400));
    timing.hold = c.rng.between(50 * kMilli, 500 * kMilli);
    schedule_connection(c, os_client(random_in(client_prefix(v4), c.rng), c.rng),
                        ephemeral_port(c.rng), v4 ? v4_target : v6_target, t, timing);
  }
}

// A 32-bit bijection (each step is invertible), so SYN k gets a 4-tuple no other SYN has.
std::uint32_t permute(std::uint32_t x) noexcept {
  x *= 0x9e3779b1u;
  x ^= x >> 16;
  x *= 0x85ebca6bu;
  x ^= x >> 13;
  return x;
}

// Patches a pre-built template instead of building each frame: sources, ports and sequence
// numbers change, the checksums are finished from sums precomputed over the constant bytes.
class FrameTemplate {
 public:
  FrameTemplate(const PacketSpec& spec, Link link, bool patch_destination)
      : v4_(spec.source.is_v4()) {
    PacketSpec zeroed = spec;
    const std::size_t address_offset = v4_ ? 12 : 0;
    // Zero the peer address and the fields patched per frame, so the sums cover constants only.
    IpAddress& peer = patch_destination ? zeroed.destination : zeroed.source;
    std::fill(peer.bytes.begin() + static_cast<std::ptrdiff_t>(address_offset), peer.bytes.end(),
              std::uint8_t{0});
    (patch_destination ? zeroed.destination_port : zeroed.source_port) = 0;
    zeroed.seq = 0;
    zeroed.ack = 0;
    zeroed.ip_id = 0;
    built_ = build_frame(zeroed, link, bytes_);
    ip_ = link_header_length(link);
    tcp_ = ip_ + (v4_ ? 20 : 40);
    peer_address_ = ip_ + (v4_ ? (patch_destination ? 16 : 12) : (patch_destination ? 24 : 8));
    peer_port_ = tcp_ + (patch_destination ? 2 : 0);
    address_length_ = v4_ ? 4 : 16;
    bytes_[tcp_ + 16] = 0;
    bytes_[tcp_ + 17] = 0;
    if (v4_) {
      bytes_[ip_ + 10] = 0;
      bytes_[ip_ + 11] = 0;
      ip_sum_ = checksum_add(0, {bytes_.data() + ip_, 20});
    }
    // From the spec, not the frame: Ethernet padding follows the segment.
    const std::size_t tcp_length = 20 + ((spec.options.length + 3u) & ~3u) + spec.payload_length;
    tcp_sum_ = checksum_add(0, {bytes_.data() + tcp_, tcp_length}) +
               checksum_add(0, {bytes_.data() + ip_ + (v4_ ? 12 : 8), v4_ ? 8u : 32u}) + 6 +
               static_cast<std::uint32_t>(tcp_length);
  }

  std::span<const std::uint8_t> patch(const IpAddress& peer, std::uint16_t peer_port,
                                      std::uint32_t seq, std::uint32_t ack,
                                      std::uint16_t ip_id) noexcept {
    std::uint8_t* const b = bytes_.data();
    std::memcpy(b + peer_address_, peer.bytes.data() + (16 - address_length_), address_length_);
    put16(b + peer_port_, peer_port);
    put32(b + tcp_ + 4, seq);
    put32(b + tcp_ + 8, ack);
    const std::uint32_t varying = checksum_add(0, {b + peer_address_, address_length_}) +
                                  peer_port + (seq >> 16) + (seq & 0xffff) + (ack >> 16) +
                                  (ack & 0xffff);
    put16(b + tcp_ + 16, checksum_fold(tcp_sum_ + varying));
    if (v4_) {
      put16(b + ip_ + 4, ip_id);
      put16(b + ip_ + 10, checksum_fold(ip_sum_ + checksum_add(0, {b + peer_address_, 4}) + ip_id));
    }
    return {b, built_.capture_length};
  }
  [[nodiscard]] std::uint32_t wire_length() const noexcept { return built_.wire_length; }

 private:
  static void put16(std::uint8_t* p, std::uint16_t v) noexcept {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
  }
  static void put32(std::uint8_t* p, std::uint32_t v) noexcept {
    put16(p, static_cast<std::uint16_t>(v >> 16));
    put16(p + 2, static_cast<std::uint16_t>(v));
  }

  bool v4_;
  std::array<std::uint8_t, kMaxFrameLength> bytes_{};
  BuiltFrame built_;
  std::size_t ip_ = 0, tcp_ = 0, peer_address_ = 0, peer_port_ = 0, address_length_ = 4;
  std::uint32_t ip_sum_ = 0, tcp_sum_ = 0;
};

void bench_flood(Context& c) {
  const bool v4 = c.v4();
  const IpPrefix sources = spoof_prefix(v4);
  Client tool;
  tool.stack = Stack::kHping3;
  tool.address = sources.network;
  tool.ttl = 60;
  SynShape shape;
  const PacketSpec syn_spec = make_syn(c, tool, 1024, c.target, 0, c.start(), shape);
  PacketSpec synack_spec = make_synack(c, syn_spec, shape, 0, c.start());
  synack_spec.options = {};  // minimum size: no options either way
  FrameTemplate syn(syn_spec, c.options.link, false);
  FrameTemplate synack(synack_spec, c.options.link, true);

  const std::uint64_t packets = c.count();
  const double spacing = 1e9 / c.rate();
  const std::uint32_t offset = c.rng.u32();
  c.flood_start = c.start();
  std::uint64_t written = 0;
  for (std::uint32_t k = 0; written < packets; ++k) {
    const std::uint32_t tuple = permute(k + offset);
    const IpAddress source = nth_in(sources, tuple >> 15);
    const auto port = static_cast<std::uint16_t>(32768 + (tuple & 0x7fff));
    const std::uint32_t isn = c.rng.u32();
    TimestampNs t = c.start() + static_cast<DurationNs>(static_cast<double>(written) * spacing);
    c.writer.write_frame(t, syn.patch(source, port, isn, 0, c.rng.u16()), syn.wire_length(),
                         tcp_flags::kSyn, true);
    ++written;
    if (k % 2 == 0 && written < packets) {  // every other SYN is answered right away
      t = c.start() + static_cast<DurationNs>(static_cast<double>(written) * spacing);
      c.writer.write_frame(t, synack.patch(source, port, c.rng.u32(), isn + 1, 0),
                           synack.wire_length(), tcp_flags::kSyn | tcp_flags::kAck, true);
      ++written;
    }
  }
}

constexpr ScenarioInfo kScenarios[] = {
    {"spoofed-flood",
     "SYNs to the target, each from a new random source in 198.18.0.0/15 (IPv6: "
     "2001:db8:8000::/33) with "
     "random port and ISN, TTL/window/options mixed like flood tools; no SYN-ACKs (silent server "
     "or one-way "
     "mirror). Then 30 s of quiet background: a completing client from 203.0.113.0/24 every 2 s.",
     20000, "SYN/s", 3, std::nullopt, "", false},
    {"spoofed-flood-synack",
     "spoofed-flood, but the server answers every SYN with a SYN-ACK ~100 us later and retransmits "
     "it at "
     "+1 s and +3 s; the final ACK never comes.",
     4000, "SYN/s", 3, std::nullopt, "", false},
    {"few-sources",
     "hping3-style flood from 198.18.0.1 (60 %), .2 and .3 (20 % each), random source ports; "
     "answered by "
     "one SYN-ACK each (SYN cookies), never completed (the sources' RSTs are dropped). Then "
     "background.",
     5000, "SYN/s", 3, std::nullopt, "", false},
    {"botnet",
     "--count bots (real-looking Linux/Windows stacks, distinct addresses in 198.18.0.0/15) share "
     "--rate "
     "(500 x 20/s), each answered by a SYN-ACK; 3 % complete the handshake. Then background.",
     10000, "SYN/s", 2, 500, "bots", false},
    {"legit-burst",
     "--count clients from 198.18.0.0/15 connect within --duration; SYN-ACK within 1 ms, final ACK "
     "within "
     "1 ms, then a FIN exchange; every handshake completes.",
     std::nullopt, "", 1, 2000, "clients", false},
    {"slow-legit",
     "a busy server: --rate connections/s from 1000 clients with 200 ms RTT, request, response and "
     "FIN; all "
     "complete (about 60 half-open at any instant).",
     300, "connections/s", 10, std::nullopt, "", false},
    {"syn-scan",
     "nmap-style SYN scan of ports 1..--count of the target address from 203.0.113.66 (one source "
     "port); "
     "closed ports answer RST-ACK, 22/80/443 answer SYN-ACK and the scanner resets.",
     2000, "probes/s", std::nullopt, 5000, "ports", false},
    {"ipv6-flood",
     "spoofed-flood over IPv6 (target [2001:db8::10]:443, sources in 2001:db8:8000::/33).", 20000,
     "SYN/s", 2, std::nullopt, "", true},
    {"randdst",
     "--count SYNs from random public sources to random addresses of the target's /24 (IPv6: /120) "
     "and random "
     "ports: no destination gets many. The summary's target is only the anchor of that /24.",
     2000, "SYN/s", std::nullopt, 5000, "SYNs", false},
    {"truncated",
     "--count frames of handshakes (SYN, SYN-ACK, ACK) where 40 % are damaged: cut at a random "
     "length "
     "(caplen < len), IPv4 IHL < 5, or a TCP data offset < 5 or past the segment.",
     std::nullopt, "", std::nullopt, 1000, "frames", false},
    {"mixed-families",
     "--count complete connections (request, response, FIN) alternating IPv4 (198.51.100.10:80 or "
     "the IPv4 "
     "--target) and IPv6 ([2001:db8::10]:443 or the IPv6 --target).",
     20, "connections/s", std::nullopt, 200, "connections", false},
    {"bench-flood",
     "benchmark input: --count packets at --rate of minimum-size spoofed SYNs, each a new 4-tuple, "
     "every "
     "other one answered by a SYN-ACK in the next slot. Written from patched templates with "
     "checksums "
     "finished from precomputed sums (always valid; nothing is skipped).",
     14'880'000, "packets/s", std::nullopt, 10'000'000, "packets", false},
    {"flood-beside-legit",
     "spoofed-flood answered by one SYN-ACK each (SYN cookies), starting --history s into the "
     "capture, while real clients (250 addresses of 203.0.113.0/24; IPv6 2001:db8:1::/48) open "
     "--legit-rate complete connections/s to the same target from the start until 5 s after the "
     "flood: RTT 10-80 ms, request, response, FIN. Then 30 s of background.",
     500, "SYN/s", 10, std::nullopt, "", false, std::nullopt, 1550, 0},
    {"flash-crowd",
     "--rate new clients/s, each from its own address in 198.18.0.0/15 (at most 131072), RTT "
     "0.2-1.0 s, request, response, FIN; 2 % never send the final ACK and get the SYN-ACK again "
     "at +1 s and +3 s. Then 30 s of background.",
     2000, "clients/s", 20, std::nullopt, "", false},
    {"lossy-busy",
     "--rate short connections/s (handshake, FIN, no data) from 20000 clients in 198.18.0.0/15, "
     "RTT 5-60 ms; for 2 % the first SYN-ACK is lost: the client sends the same SYN again 1 s "
     "later, the "
     "server answers again and the handshake completes. Then 30 s of background.",
     5000, "connections/s", 20, std::nullopt, "", false},
    {"random-ports",
     "--count SYNs to random ports (1..65535, repeats allowed) of the target's address, each from "
     "a new spoofed source as in spoofed-flood; --answer none (dropped), rst (RST-ACK) or synack "
     "(one SYN-ACK). Then 30 s of background to the target.",
     5000, "SYN/s", std::nullopt, 20000, "SYNs", false, SynReply::kNone},
    {"random-ports-one-source",
     "random-ports, but every SYN comes from 203.0.113.77 (IPv6 2001:db8::77), hping3-style, "
     "from random source ports.",
     5000, "SYN/s", std::nullopt, 20000, "SYNs", false, SynReply::kNone},
};

}  // namespace

std::span<const ScenarioInfo> scenarios() noexcept {
  return kScenarios;
}

const ScenarioInfo* find_scenario(std::string_view name) noexcept {
  for (const ScenarioInfo& s : kScenarios) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::optional<SynReply> parse_syn_reply(std::string_view name) noexcept {
  for (const SynReply reply : {SynReply::kNone, SynReply::kSynAck, SynReply::kRst}) {
    if (to_string(reply) == name) return reply;
  }
  return std::nullopt;
}

std::string_view to_string(SynReply reply) noexcept {
  switch (reply) {
    case SynReply::kNone:
      return "none";
    case SynReply::kSynAck:
      return "synack";
    case SynReply::kRst:
      return "rst";
  }
  return "none";
}

std::string Summary::to_json() const {
  std::string json =
      "{\"scenario\":\"" + scenario + "\",\"packets\":" + std::to_string(packets) +
      ",\"syns\":" + std::to_string(syns) + ",\"synacks\":" + std::to_string(synacks) +
      ",\"first_ts\":" + std::to_string(first_ts) + ",\"last_ts\":" + std::to_string(last_ts) +
      ",\"flood_start_ts\":" + (flood_start_ts ? std::to_string(*flood_start_ts) : "null") +
      ",\"target\":\"" + target.to_string() + "\"}";
  return json;
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  std::string_view address;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    address = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    address = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  const auto ip = IpAddress::parse(address);
  if (!ip || (!text.starts_with('[') && !ip->is_v4())) return std::nullopt;
  unsigned value = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (error != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) {
    return std::nullopt;
  }
  return Endpoint{*ip, static_cast<std::uint16_t>(value)};
}

std::optional<TimestampNs> parse_epoch_seconds(std::string_view text) {
  const auto dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view fraction =
      dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (whole.empty() || fraction.size() > 9 || (dot != std::string_view::npos && fraction.empty())) {
    return std::nullopt;
  }
  std::int64_t seconds = 0;
  auto [end, error] = std::from_chars(whole.data(), whole.data() + whole.size(), seconds);
  if (error != std::errc{} || end != whole.data() + whole.size() || seconds < 0 ||
      seconds > 4'000'000'000LL) {
    return std::nullopt;
  }
  std::int64_t nanos = 0;
  for (std::size_t i = 0; i < 9; ++i) {
    const char ch = i < fraction.size() ? fraction[i] : '0';
    if (ch < '0' || ch > '9') return std::nullopt;
    nanos = nanos * 10 + (ch - '0');
  }
  return seconds * kNanosPerSecond + nanos;
}

std::expected<Summary, std::string> run_scenario(const GeneratorOptions& options) {
  const ScenarioInfo* info = find_scenario(options.scenario);
  if (info == nullptr) {
    return std::unexpected("unknown scenario '" + options.scenario + "' (see --list)");
  }
  const auto reject = [&](std::string_view option) {
    return std::unexpected(options.scenario + " does not take " + std::string(option) +
                           " (see --list)");
  };
  if (options.rate && !info->rate) return reject("--rate");
  if (options.duration && !info->duration) return reject("--duration");
  if (options.count && !info->count) return reject("--count");
  if (options.legit_rate && !info->legit_rate) return reject("--legit-rate");
  if (options.history && !info->history) return reject("--history");
  if (options.answer && !info->answer) return reject("--answer");
  if (options.legit_rate && !(std::isfinite(*options.legit_rate) && *options.legit_rate > 0 &&
                              *options.legit_rate <= 1e6)) {
    return std::unexpected("--legit-rate must be in (0, 1e6] connections per second");
  }
  if (options.history &&
      !(std::isfinite(*options.history) && *options.history >= 0 && *options.history <= 3600)) {
    return std::unexpected("--history must be in [0, 3600] seconds");
  }
  if (options.rate &&
      !(std::isfinite(*options.rate) && *options.rate > 0 && *options.rate <= 1e9)) {
    return std::unexpected("--rate must be in (0, 1e9]");
  }
  if (options.duration &&
      !(std::isfinite(*options.duration) && *options.duration > 0 && *options.duration <= 86400)) {
    return std::unexpected("--duration must be in (0, 86400] seconds");
  }
  if (options.count && *options.count == 0) return std::unexpected("--count must be at least 1");
  if (options.count && options.scenario == "syn-scan" && *options.count > 65535) {
    return std::unexpected("syn-scan: --count is a number of ports, at most 65535");
  }
  if (options.count && (options.scenario == "botnet" || options.scenario == "legit-burst") &&
      *options.count > 65536) {
    return std::unexpected(options.scenario + ": --count at most 65536 distinct sources");
  }
  if (options.count && options.scenario == "bench-flood" && *options.count > (1ULL << 32)) {
    return std::unexpected("bench-flood: --count at most 2^32 (unique 4-tuples)");
  }
  const double events = options.rate.value_or(info->rate.value_or(1)) *
                        options.duration.value_or(info->duration.value_or(1));
  if (info->rate && info->duration && events > 1e8) {
    return std::unexpected("--rate x --duration above 1e8 packets");
  }
  if (info->legit_rate) {
    const double legit = options.legit_rate.value_or(*info->legit_rate) *
                         (options.history.value_or(info->history.value_or(0)) +
                          options.duration.value_or(info->duration.value_or(1)) + 5);
    if (legit > 1e7) {
      return std::unexpected("--legit-rate x (--history + --duration + 5) above 1e7 connections");
    }
  }
  const bool ipv4_target = !options.target || options.target->address.is_v4();
  if (options.scenario == "flash-crowd" && ipv4_target && std::llround(events) > 131072) {
    return std::unexpected(
        "flash-crowd: --rate x --duration at most 131072 clients (one address each in "
        "198.18.0.0/15)");
  }

  const Endpoint default_target = info->ipv6_default_target
                                      ? Endpoint{*IpAddress::parse("2001:db8::10"), 443}
                                      : Endpoint{*IpAddress::parse("198.51.100.10"), 80};
  auto writer = CaptureWriter::open(options.out, options.link, options.duplicate);
  if (!writer) return std::unexpected(writer.error());
  const bool frame_limited = options.scenario == "truncated";
  Timeline timeline(*writer, frame_limited ? options.count.value_or(*info->count)
                                           : std::numeric_limits<std::uint64_t>::max());
  Context c{options,
            *info,
            *writer,
            timeline,
            Random(options.seed),
            options.target.value_or(default_target),
            0,
            std::nullopt};
  c.server_ts_base = c.rng.u32();

  const std::string_view name = info->name;
  if (name == "spoofed-flood" || name == "ipv6-flood") {
    spoofed_flood(c, Answer::kNone);
  } else if (name == "spoofed-flood-synack") {
    spoofed_flood(c, Answer::kRetransmit);
  } else if (name == "few-sources") {
    few_sources(c);
  } else if (name == "botnet") {
    botnet(c);
  } else if (name == "legit-burst") {
    legit_burst(c);
  } else if (name == "slow-legit") {
    slow_legit(c);
  } else if (name == "syn-scan") {
    syn_scan(c);
  } else if (name == "randdst") {
    randdst(c);
  } else if (name == "truncated") {
    truncated(c);
  } else if (name == "mixed-families") {
    mixed_families(c);
  } else if (name == "bench-flood") {
    bench_flood(c);
  } else if (name == "flood-beside-legit") {
    flood_beside_legit(c);
  } else if (name == "flash-crowd") {
    flash_crowd(c);
  } else if (name == "lossy-busy") {
    lossy_busy(c);
  } else if (name == "random-ports") {
    random_ports(c, false);
  } else if (name == "random-ports-one-source") {
    random_ports(c, true);
  }
  timeline.release_all();

  Summary summary;
  summary.scenario = options.scenario;
  const CaptureCounts& counts = writer->counts();
  summary.packets = counts.packets;
  summary.syns = counts.syns;
  summary.synacks = counts.synacks;
  summary.first_ts = counts.first_ts;
  summary.last_ts = counts.last_ts;
  summary.flood_start_ts = c.flood_start;
  summary.target = c.target;
  if (auto finished = writer->finish(); !finished) return std::unexpected(finished.error());
  return summary;
}

}  // namespace synwatch::gen
