// Tests of synwatch-gen: runs the real binary, reads its captures back with libpcap and checks
// them with a parser written here, independent of both the generator and lib/decode.
#include <fcntl.h>
#include <pcap/pcap.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/ip_address.hpp"

extern char** environ;

namespace synwatch {
namespace {

constexpr std::int64_t kStart = 1'704'067'200LL * 1'000'000'000LL;
constexpr std::int64_t kSecond = 1'000'000'000LL;
constexpr std::int64_t kMilli = 1'000'000LL;

const std::vector<std::string> kScenarios = {"spoofed-flood",
                                             "spoofed-flood-synack",
                                             "few-sources",
                                             "botnet",
                                             "legit-burst",
                                             "slow-legit",
                                             "syn-scan",
                                             "ipv6-flood",
                                             "randdst",
                                             "truncated",
                                             "mixed-families",
                                             "bench-flood",
                                             "flash-crowd",
                                             "lossy-busy",
                                             "flood-beside-legit",
                                             "random-ports",
                                             "random-ports-one-source"};
const std::vector<std::string> kLinks = {"ethernet", "vlan", "qinq", "sll", "sll2", "raw"};

struct RunResult {
  int exit_code = -1;
  std::string out;
};

// Runs the generator directly (no shell); stderr passes through to the test log.
RunResult run_gen(std::vector<std::string> args) {
  args.insert(args.begin(), SYNWATCH_GEN);
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return {};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  RunResult result;
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    return result;
  }
  std::array<char, 4096> buffer{};
  ssize_t n = 0;
  while ((n = ::read(pipe_fds[0], buffer.data(), buffer.size())) > 0) {
    result.out.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "synwatch-gen-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Frame {
  std::int64_t ts = 0;
  std::uint32_t wire_length = 0;
  std::vector<std::uint8_t> data;
};

struct Capture {
  int dlt = -1;
  bool nanosecond_magic = false;
  std::vector<Frame> frames;
};

Capture read_capture(const std::filesystem::path& path) {
  Capture capture;
  const std::string head = file_bytes(path).substr(0, 4);
  capture.nanosecond_magic =
      head == std::string("\x4d\x3c\xb2\xa1", 4) || head == std::string("\xa1\xb2\x3c\x4d", 4);
  char error[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, error);
  if (p == nullptr) {
    ADD_FAILURE() << path << ": " << error;
    return capture;
  }
  capture.dlt = pcap_datalink(p);
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  int rc = 0;
  while ((rc = pcap_next_ex(p, &header, &data)) == 1) {
    Frame f;
    f.ts = static_cast<std::int64_t>(header->ts.tv_sec) * kSecond + header->ts.tv_usec;
    f.wire_length = header->len;
    f.data.assign(data, data + header->caplen);
    capture.frames.push_back(std::move(f));
  }
  EXPECT_EQ(rc, PCAP_ERROR_BREAK) << pcap_geterr(p);
  pcap_close(p);
  return capture;
}

std::uint16_t be16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}

std::uint16_t internet_checksum(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += be16(p + i);
  if (n % 2 != 0) sum += std::uint32_t{p[n - 1]} << 8;
  while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// One frame as this test understands it.
struct Parsed {
  int vlan_tags = 0;
  bool full = false;          // caplen == len
  bool ip_ok = false;         // well-formed IP header captured
  bool tcp_readable = false;  // complete TCP header (per data offset) captured
  bool ipv4_checksum_ok = false;
  bool tcp_checksum_ok = false;
  bool malformed_ihl = false;
  bool bad_data_offset = false;
  bool v4 = true;
  IpAddress source, destination;
  std::uint16_t source_port = 0, destination_port = 0;
  std::uint32_t seq = 0, ack = 0;
  std::uint8_t flags = 0;
  std::size_t payload = 0;

  [[nodiscard]] bool syn() const { return tcp_readable && (flags & 0x16) == 0x02; }
  [[nodiscard]] bool synack() const { return tcp_readable && (flags & 0x16) == 0x12; }
  [[nodiscard]] bool rst() const { return tcp_readable && (flags & 0x04) != 0; }
  [[nodiscard]] bool fin() const { return tcp_readable && (flags & 0x01) != 0; }
  [[nodiscard]] bool pure_ack() const { return tcp_readable && (flags & 0x17) == 0x10; }
};

Parsed parse(const Frame& frame, int dlt) {
  Parsed r;
  const std::uint8_t* d = frame.data.data();
  const std::size_t n = frame.data.size();
  r.full = n == frame.wire_length;
  std::size_t offset = 0;
  std::uint16_t ethertype = 0;
  if (dlt == DLT_EN10MB) {
    if (n < 14) return r;
    ethertype = be16(d + 12);
    offset = 14;
    while ((ethertype == 0x8100 || ethertype == 0x88a8) && n >= offset + 4) {
      ++r.vlan_tags;
      ethertype = be16(d + offset + 2);
      offset += 4;
    }
  } else if (dlt == DLT_LINUX_SLL) {
    if (n < 16) return r;
    ethertype = be16(d + 14);
    offset = 16;
  } else if (dlt == DLT_LINUX_SLL2) {
    if (n < 20) return r;
    ethertype = be16(d);
    offset = 20;
  } else if (dlt == DLT_RAW) {
    if (n < 1) return r;
    ethertype = (d[0] >> 4) == 4 ? 0x0800 : 0x86dd;
  } else {
    return r;
  }
  const std::uint8_t* ip = d + offset;
  std::size_t ip_header = 0;
  std::size_t segment = 0;
  std::uint32_t pseudo = 0;
  if (ethertype == 0x0800) {
    if (n < offset + 20 || (ip[0] >> 4) != 4) return r;
    ip_header = std::size_t{ip[0] & 0x0fu} * 4;
    if (ip_header < 20) {
      r.malformed_ihl = true;
      return r;
    }
    if (n < offset + ip_header || ip[9] != 6) return r;
    r.ipv4_checksum_ok = internet_checksum(ip, ip_header) == 0;
    segment = be16(ip + 2) - ip_header;
    r.source = IpAddress::from_v4(ip + 12);
    r.destination = IpAddress::from_v4(ip + 16);
    for (int i = 12; i < 20; i += 2) pseudo += be16(ip + i);
  } else if (ethertype == 0x86dd) {
    if (n < offset + 40 || (ip[0] >> 4) != 6 || ip[6] != 6) return r;
    r.v4 = false;
    ip_header = 40;
    segment = be16(ip + 4);
    r.source = IpAddress::from_v6(ip + 8);
    r.destination = IpAddress::from_v6(ip + 24);
    for (int i = 8; i < 40; i += 2) pseudo += be16(ip + i);
  } else {
    return r;
  }
  r.ip_ok = true;
  const std::uint8_t* tcp = ip + ip_header;
  const std::size_t tcp_offset = offset + ip_header;
  if (n < tcp_offset + 20) return r;
  const std::size_t data_offset = static_cast<std::size_t>(tcp[12] >> 4) * 4;
  if (data_offset < 20 || data_offset > segment) {
    r.bad_data_offset = true;
    return r;
  }
  if (n < tcp_offset + data_offset) return r;
  r.tcp_readable = true;
  r.source_port = be16(tcp);
  r.destination_port = be16(tcp + 2);
  r.seq = be32(tcp + 4);
  r.ack = be32(tcp + 8);
  r.flags = tcp[13];
  r.payload = segment - data_offset;
  if (n >= tcp_offset + segment) {
    r.tcp_checksum_ok =
        internet_checksum(tcp, segment, pseudo + 6 + static_cast<std::uint32_t>(segment)) == 0;
  }
  return r;
}

std::string endpoint_text(const IpAddress& a, std::uint16_t port) {
  return Endpoint{a, port}.to_string();
}

// clang-tidy 16 reports the implicit constructor as throwing: nlohmann::json's noexcept default
// constructor delegates to one whose throws are unreachable for a null value.
struct Generated {  // NOLINT(bugprone-exception-escape)
  nlohmann::json summary;
  Capture capture;
  std::vector<Parsed> parsed;
  std::filesystem::path file;
};

// Follows handshakes by 4-tuple the way a passive observer would.
struct Handshake {
  std::int64_t syn_ts = 0, synack_ts = 0, ack_ts = -1;  // first SYN and first SYN-ACK
  std::int64_t last_syn_ts = 0, last_synack_ts = 0;
  std::uint32_t syn_seq = 0, synack_seq = 0;
  int syns = 0;
  int synacks = 0;
  bool seq_changed = false;  // a later SYN or SYN-ACK of the tuple had another sequence number
  bool completed = false;
  bool fin_from_client = false, fin_from_server = false;
  IpAddress client;
  std::uint16_t server_port = 0;
};

std::string tuple_key(const IpAddress& a, std::uint16_t ap, const IpAddress& b, std::uint16_t bp) {
  return endpoint_text(a, ap) + ">" + endpoint_text(b, bp);
}

std::map<std::string, Handshake> track(const Generated& g) {
  std::map<std::string, Handshake> flows;
  for (std::size_t i = 0; i < g.parsed.size(); ++i) {
    const Parsed& p = g.parsed[i];
    const std::int64_t ts = g.capture.frames[i].ts;
    if (!p.tcp_readable) continue;
    const std::string forward =
        tuple_key(p.source, p.source_port, p.destination, p.destination_port);
    const std::string reverse =
        tuple_key(p.destination, p.destination_port, p.source, p.source_port);
    if (p.syn()) {
      Handshake& h = flows[forward];
      if (h.syns++ == 0) {
        h.syn_ts = ts;
        h.syn_seq = p.seq;
      }
      h.seq_changed = h.seq_changed || p.seq != h.syn_seq;
      h.last_syn_ts = ts;
      h.client = p.source;
      h.server_port = p.destination_port;
    } else if (p.synack()) {
      auto it = flows.find(reverse);
      if (it == flows.end()) continue;
      Handshake& h = it->second;
      if (h.synacks++ == 0) {
        h.synack_ts = ts;
        h.synack_seq = p.seq;
      }
      h.seq_changed = h.seq_changed || p.seq != h.synack_seq;
      h.last_synack_ts = ts;
    } else if (auto it = flows.find(forward); it != flows.end()) {  // client to server
      Handshake& h = it->second;
      if (!h.completed && h.synacks > 0 && (p.flags & 0x10) != 0 && !p.rst() &&
          p.ack == h.synack_seq + 1) {
        h.completed = true;
        h.ack_ts = ts;
      }
      h.fin_from_client = h.fin_from_client || p.fin();
    } else if (auto back = flows.find(reverse); back != flows.end()) {
      back->second.fin_from_server = back->second.fin_from_server || p.fin();
    }
  }
  return flows;
}

class GenTest : public ::testing::Test {
 protected:
  Generated generate(const std::string& scenario, std::vector<std::string> extra = {}) {
    Generated g;
    g.file = dir_.path() / (scenario + "-" + std::to_string(files_++) + ".pcap");
    std::vector<std::string> args = {scenario, "--out", g.file.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    const RunResult r = run_gen(args);
    EXPECT_EQ(r.exit_code, 0) << scenario;
    if (r.exit_code != 0) return g;
    g.summary = nlohmann::json::parse(r.out);
    g.capture = read_capture(g.file);
    for (const Frame& f : g.capture.frames) g.parsed.push_back(parse(f, g.capture.dlt));
    return g;
  }
  TempDir dir_;
  int files_ = 0;
};

// Scenarios whose defaults are large run smaller where every link type and seed is checked.
std::vector<std::string> small_options(const std::string& scenario) {
  if (scenario == "bench-flood") return {"--count", "30000"};
  if (scenario == "flood-beside-legit") {
    return {"--rate", "500", "--legit-rate", "300", "--duration", "2", "--history", "1"};
  }
  if (scenario == "flash-crowd") return {"--rate", "1000", "--duration", "2"};
  if (scenario == "lossy-busy") return {"--rate", "2000", "--duration", "2"};
  if (scenario == "random-ports" || scenario == "random-ports-one-source") {
    return {"--count", "5000", "--answer", "synack"};
  }
  return {};
}

// Every scenario on every link type: the structural promises of the generator.
class EveryScenarioAndLink
    : public GenTest,
      public ::testing::WithParamInterface<std::tuple<std::string, std::string>> {};

TEST_P(EveryScenarioAndLink, CaptureMatchesSummaryAndIsWellFormed) {
  const auto& [scenario, link] = GetParam();
  auto options = small_options(scenario);
  options.insert(options.end(), {"--link", link});
  const Generated g = generate(scenario, options);
  ASSERT_FALSE(g.capture.frames.empty());

  const std::map<std::string, int> expected_dlt = {{"ethernet", DLT_EN10MB}, {"vlan", DLT_EN10MB},
                                                   {"qinq", DLT_EN10MB},     {"sll", DLT_LINUX_SLL},
                                                   {"sll2", DLT_LINUX_SLL2}, {"raw", DLT_RAW}};
  EXPECT_EQ(g.capture.dlt, expected_dlt.at(link));
  EXPECT_TRUE(g.capture.nanosecond_magic);
  EXPECT_EQ(g.summary["scenario"], scenario);
  EXPECT_EQ(g.summary["packets"].get<std::size_t>(), g.capture.frames.size());
  EXPECT_EQ(g.summary["first_ts"].get<std::int64_t>(), g.capture.frames.front().ts);
  EXPECT_EQ(g.summary["last_ts"].get<std::int64_t>(), g.capture.frames.back().ts);
  EXPECT_EQ(g.capture.frames.front().ts, kStart);

  const int tags = link == "vlan" ? 1 : link == "qinq" ? 2 : 0;
  std::size_t syns = 0, synacks = 0, checked_ipv4 = 0, checked_tcp = 0;
  std::map<std::string, std::uint32_t> syn_seq;
  std::size_t synacks_matched = 0;
  for (std::size_t i = 0; i < g.parsed.size(); ++i) {
    const Parsed& p = g.parsed[i];
    const Frame& f = g.capture.frames[i];
    if (i > 0) {
      ASSERT_GE(f.ts, g.capture.frames[i - 1].ts) << "frame " << i;
    }
    ASSERT_LE(f.data.size(), f.wire_length);
    if (p.ip_ok) {
      EXPECT_EQ(p.vlan_tags, tags) << "frame " << i;
    }
    if (scenario != "truncated") {
      ASSERT_TRUE(p.full && p.tcp_readable) << "frame " << i;
    }
    if (p.full && p.ip_ok && p.v4) {
      EXPECT_TRUE(p.ipv4_checksum_ok) << "frame " << i;
      ++checked_ipv4;
    }
    if (p.full && p.tcp_readable) {
      EXPECT_TRUE(p.tcp_checksum_ok) << "frame " << i;
      ++checked_tcp;
    }
    if (p.syn()) {
      ++syns;
      syn_seq[tuple_key(p.source, p.source_port, p.destination, p.destination_port)] = p.seq;
    }
    if (p.synack()) {
      ++synacks;
      const auto it =
          syn_seq.find(tuple_key(p.destination, p.destination_port, p.source, p.source_port));
      if (it != syn_seq.end()) {
        EXPECT_EQ(p.ack, it->second + 1) << "frame " << i;
        ++synacks_matched;
      }
    }
  }
  EXPECT_EQ(g.summary["syns"].get<std::size_t>(), syns);
  EXPECT_EQ(g.summary["synacks"].get<std::size_t>(), synacks);
  EXPECT_GT(checked_tcp, 0u);
  if (scenario != "ipv6-flood") {
    EXPECT_GT(checked_ipv4, 0u);
  }
  // Every SYN-ACK answers a SYN in the capture (the truncated scenario may have damaged it).
  if (scenario != "truncated") {
    EXPECT_EQ(synacks_matched, synacks);
  }
  if (link == "ethernet" && scenario != "bench-flood") {
    EXPECT_LT(std::filesystem::file_size(g.file), 5'000'000u) << "defaults must stay small";
  }
}

INSTANTIATE_TEST_SUITE_P(Gen, EveryScenarioAndLink,
                         ::testing::Combine(::testing::ValuesIn(kScenarios),
                                            ::testing::ValuesIn(kLinks)),
                         [](const auto& param_info) {
                           std::string name =
                               std::get<0>(param_info.param) + "_" + std::get<1>(param_info.param);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

class Determinism : public GenTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(Determinism, SameSeedSameBytesOtherSeedOtherBytes) {
  const std::string scenario = GetParam();
  auto options = small_options(scenario);
  const auto with_seed = [&](const char* seed) {
    auto o = options;
    o.insert(o.end(), {"--seed", seed});
    return o;
  };
  const Generated a = generate(scenario, with_seed("7"));
  const Generated b = generate(scenario, with_seed("7"));
  const Generated c = generate(scenario, with_seed("8"));
  const std::string bytes_a = file_bytes(a.file);
  ASSERT_FALSE(bytes_a.empty());
  EXPECT_TRUE(bytes_a == file_bytes(b.file));
  EXPECT_EQ(a.summary, b.summary);
  EXPECT_FALSE(bytes_a == file_bytes(c.file));
}

INSTANTIATE_TEST_SUITE_P(Gen, Determinism, ::testing::ValuesIn(kScenarios),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

bool in_prefix(const IpAddress& a, const char* prefix) {
  return IpPrefix::parse(prefix)->contains(a);
}

TEST_F(GenTest, SpoofedFloodIsRandomSilentAndFollowedByQuietBackground) {
  const Generated g = generate("spoofed-flood");
  const auto target = *IpAddress::parse("198.51.100.10");
  EXPECT_EQ(g.summary["target"], "198.51.100.10:80");
  EXPECT_EQ(g.summary["flood_start_ts"].get<std::int64_t>(), kStart);
  std::set<IpAddress> flood_sources;
  std::size_t flood_syns = 0, background_syns = 0, synacks_to_flood = 0;
  std::set<std::uint8_t> ttls;
  std::set<std::uint16_t> windows;
  for (std::size_t i = 0; i < g.parsed.size(); ++i) {
    const Parsed& p = g.parsed[i];
    if (p.syn()) {
      EXPECT_EQ(p.destination, target);
      EXPECT_EQ(p.destination_port, 80);
      if (in_prefix(p.source, "198.18.0.0/15")) {
        ++flood_syns;
        flood_sources.insert(p.source);
        EXPECT_LT(g.capture.frames[i].ts, kStart + 3 * kSecond);
        ttls.insert(g.capture.frames[i].data[14 + 8]);
        windows.insert(be16(g.capture.frames[i].data.data() + 14 + 20 + 14));
      } else {
        EXPECT_TRUE(in_prefix(p.source, "203.0.113.0/24")) << p.source.to_string();
        EXPECT_GE(g.capture.frames[i].ts, kStart + 3 * kSecond);
        ++background_syns;
      }
    }
    if (p.synack() && in_prefix(p.destination, "198.18.0.0/15")) ++synacks_to_flood;
  }
  EXPECT_EQ(flood_syns, 60000u);  // 20000/s for 3 s
  EXPECT_EQ(synacks_to_flood, 0u);
  EXPECT_GT(flood_sources.size(), 0.95 * 60000);  // a new source (nearly) every time
  EXPECT_GT(ttls.size(), 50u);
  EXPECT_GT(windows.size(), 1000u);
  EXPECT_EQ(background_syns, 15u);  // one every 2 s for 30 s
  for (const auto& [key, h] : track(g)) {
    if (in_prefix(h.client, "203.0.113.0/24")) {
      EXPECT_TRUE(h.completed && h.fin_from_client) << key;
    }
  }
  EXPECT_GE(g.summary["last_ts"].get<std::int64_t>(), kStart + 30 * kSecond);
}

TEST_F(GenTest, SynAckVariantAnswersEverySynAndRetransmitsLikeLinux) {
  const Generated g = generate("spoofed-flood-synack", {"--duration", "1"});
  std::size_t flood = 0;
  for (const auto& [key, h] : track(g)) {
    if (!in_prefix(h.client, "198.18.0.0/15")) continue;
    ++flood;
    EXPECT_EQ(h.synacks, 3) << key;
    EXPECT_FALSE(h.completed) << key;
    EXPECT_GT(h.synack_ts - h.syn_ts, 0);
    EXPECT_LT(h.synack_ts - h.syn_ts, kMilli);
  }
  EXPECT_EQ(flood, 4000u);
}

TEST_F(GenTest, FewSourcesSendSixtyTwentyTwentyAndNeverComplete) {
  const Generated g = generate("few-sources");
  std::map<std::string, std::size_t> by_source;
  std::size_t total = 0;
  for (const Parsed& p : g.parsed) {
    if (p.syn() && in_prefix(p.source, "198.18.0.0/15")) {
      ++by_source[p.source.to_string()];
      ++total;
    }
  }
  ASSERT_EQ(by_source.size(), 3u);
  EXPECT_NEAR(static_cast<double>(by_source["198.18.0.1"]) / static_cast<double>(total), 0.6, 0.03);
  EXPECT_NEAR(static_cast<double>(by_source["198.18.0.2"]) / static_cast<double>(total), 0.2, 0.03);
  EXPECT_NEAR(static_cast<double>(by_source["198.18.0.3"]) / static_cast<double>(total), 0.2, 0.03);
  for (const auto& [key, h] : track(g)) {
    if (in_prefix(h.client, "198.18.0.0/15")) {
      EXPECT_EQ(h.synacks, 1) << key;
      EXPECT_FALSE(h.completed) << key;
    }
  }
}

TEST_F(GenTest, BotnetHasFiveHundredSourcesAtTwentyPerSecondRarelyCompleting) {
  const Generated g = generate("botnet");
  std::map<IpAddress, std::size_t> per_source;
  std::size_t handshakes = 0, completed = 0;
  for (const auto& [key, h] : track(g)) {
    if (!in_prefix(h.client, "198.18.0.0/15")) continue;
    ++per_source[h.client];
    ++handshakes;
    completed += h.completed ? 1 : 0;
    EXPECT_EQ(h.synacks, 1);
  }
  EXPECT_EQ(per_source.size(), 500u);
  EXPECT_EQ(handshakes, 20000u);
  const double completion = static_cast<double>(completed) / static_cast<double>(handshakes);
  EXPECT_GT(completion, 0.0);
  EXPECT_LT(completion, 0.05);
  for (const auto& [source, syns] : per_source) {
    EXPECT_LT(syns, 100u) << source.to_string();  // ~40 in 2 s
  }
}

TEST_F(GenTest, LegitBurstCompletesEveryHandshakeWithinOneMillisecondSteps) {
  const Generated g = generate("legit-burst");
  const auto flows = track(g);
  ASSERT_EQ(flows.size(), 2000u);
  for (const auto& [key, h] : flows) {
    EXPECT_TRUE(in_prefix(h.client, "198.18.0.0/15"));
    EXPECT_LT(h.syn_ts, kStart + kSecond);
    EXPECT_LT(h.synack_ts - h.syn_ts, kMilli);
    ASSERT_TRUE(h.completed) << key;
    EXPECT_LT(h.ack_ts - h.synack_ts, kMilli);
    EXPECT_TRUE(h.fin_from_client && h.fin_from_server) << key;
  }
}

TEST_F(GenTest, SlowLegitKeepsAboutSixtyHalfOpenAndCompletesAll) {
  const Generated g = generate("slow-legit");
  const auto flows = track(g);
  ASSERT_EQ(flows.size(), 3000u);
  std::vector<std::pair<std::int64_t, int>> deltas;
  for (const auto& [key, h] : flows) {
    ASSERT_TRUE(h.completed) << key;
    EXPECT_NEAR(static_cast<double>(h.ack_ts - h.synack_ts), 200.0 * kMilli, 15.0 * kMilli);
    deltas.emplace_back(h.syn_ts, +1);
    deltas.emplace_back(h.ack_ts, -1);
  }
  std::sort(deltas.begin(), deltas.end());
  int open = 0, peak = 0;
  for (const auto& [ts, d] : deltas) peak = std::max(peak, open += d);
  EXPECT_GT(peak, 45);
  EXPECT_LT(peak, 90);
}

TEST_F(GenTest, SynScanProbesEveryPortOnceWithNmapStyleAnswers) {
  const Generated g = generate("syn-scan");
  std::set<std::uint16_t> probed;
  std::set<IpAddress> scanners;
  std::size_t rst_acks = 0, scanner_rsts = 0;
  std::set<std::uint16_t> open;
  for (const Parsed& p : g.parsed) {
    if (p.syn()) {
      EXPECT_TRUE(probed.insert(p.destination_port).second) << p.destination_port;
      scanners.insert(p.source);
    } else if (p.synack()) {
      open.insert(p.source_port);
    } else if (p.rst() && (p.flags & 0x10) != 0) {
      ++rst_acks;
    } else if (p.rst()) {
      ++scanner_rsts;
    }
  }
  EXPECT_EQ(probed.size(), 5000u);
  EXPECT_EQ(*probed.begin(), 1);
  EXPECT_EQ(*probed.rbegin(), 5000);
  EXPECT_EQ(scanners.size(), 1u);
  EXPECT_EQ(open, (std::set<std::uint16_t>{22, 80, 443}));
  EXPECT_EQ(rst_acks, 4997u);
  EXPECT_EQ(scanner_rsts, 3u);
  EXPECT_NEAR(static_cast<double>(g.capture.frames.back().ts - kStart), 2.5 * kSecond,
              0.1 * kSecond);
}

TEST_F(GenTest, Ipv6FloodTargetsTheDocumentedAddress) {
  const Generated g = generate("ipv6-flood");
  EXPECT_EQ(g.summary["target"], "[2001:db8::10]:443");
  const auto target = *IpAddress::parse("2001:db8::10");
  std::size_t flood = 0;
  for (const Parsed& p : g.parsed) {
    ASSERT_FALSE(p.v4);
    if (!p.syn()) continue;
    EXPECT_EQ(p.destination, target);
    EXPECT_EQ(p.destination_port, 443);
    flood += in_prefix(p.source, "2001:db8:8000::/33") ? 1 : 0;
  }
  EXPECT_EQ(flood, 40000u);
}

TEST_F(GenTest, AnyScenarioTakesAnIpv6Target) {
  const Generated g = generate("few-sources", {"--target", "[2001:db8::53]:53", "--duration", "1"});
  EXPECT_EQ(g.summary["target"], "[2001:db8::53]:53");
  std::set<IpAddress> sources;
  for (const Parsed& p : g.parsed) {
    ASSERT_FALSE(p.v4);
    if (p.syn() && in_prefix(p.source, "2001:db8:8000::/33")) sources.insert(p.source);
  }
  EXPECT_EQ(sources.size(), 3u);
}

TEST_F(GenTest, RanddstSpreadsOverTheSlash24SoNoDestinationGetsMany) {
  const Generated g = generate("randdst");
  std::map<std::string, std::size_t> per_destination;
  std::set<IpAddress> sources;
  for (const Parsed& p : g.parsed) {
    ASSERT_TRUE(p.syn());
    EXPECT_TRUE(in_prefix(p.destination, "198.51.100.0/24"));
    EXPECT_FALSE(is_bogon(p.source));
    sources.insert(p.source);
    ++per_destination[endpoint_text(p.destination, p.destination_port)];
  }
  EXPECT_EQ(g.parsed.size(), 5000u);
  EXPECT_GT(sources.size(), 4900u);
  std::size_t busiest = 0;
  for (const auto& [d, n] : per_destination) busiest = std::max(busiest, n);
  EXPECT_LT(busiest, 5u);
}

TEST_F(GenTest, TruncatedMixesEveryKindOfDamageWithValidFrames) {
  const Generated g = generate("truncated");
  ASSERT_EQ(g.parsed.size(), 1000u);
  std::size_t cut = 0, bad_ihl = 0, bad_offset = 0, intact = 0;
  for (const Parsed& p : g.parsed) {
    cut += p.full ? 0 : 1;
    bad_ihl += p.malformed_ihl ? 1 : 0;
    bad_offset += p.bad_data_offset ? 1 : 0;
    intact += p.full && p.tcp_readable ? 1 : 0;
  }
  EXPECT_GT(cut, 150u);
  EXPECT_GT(bad_ihl, 20u);
  EXPECT_GT(bad_offset, 20u);
  EXPECT_GT(intact, 500u);
}

TEST_F(GenTest, MixedFamiliesInterleavesCompleteIpv4AndIpv6Handshakes) {
  const Generated g = generate("mixed-families");
  std::size_t v4 = 0, v6 = 0;
  for (const auto& [key, h] : track(g)) {
    EXPECT_TRUE(h.completed && h.fin_from_client && h.fin_from_server) << key;
    (h.client.is_v4() ? v4 : v6) += 1;
  }
  EXPECT_EQ(v4, 100u);
  EXPECT_EQ(v6, 100u);
  EXPECT_FALSE(g.parsed[0].v4 == g.parsed.back().v4 &&
               g.parsed[0].v4 == g.parsed[g.parsed.size() / 2].v4);
}

TEST_F(GenTest, BenchFloodHasUniqueTuplesHalfAnsweredAtLineRate) {
  const Generated g = generate("bench-flood", {"--count", "30000", "--link", "ethernet"});
  ASSERT_EQ(g.parsed.size(), 30000u);
  std::set<std::string> tuples;
  std::size_t syns = 0;
  for (std::size_t i = 0; i < g.parsed.size(); ++i) {
    EXPECT_EQ(g.capture.frames[i].wire_length, 60u);  // minimum-size Ethernet frames
    if (g.parsed[i].syn()) {
      ++syns;
      EXPECT_TRUE(tuples.insert(endpoint_text(g.parsed[i].source, g.parsed[i].source_port)).second);
    }
  }
  EXPECT_EQ(syns, 20000u);
  EXPECT_EQ(g.summary["synacks"], 10000);
  // 14.88 Mpps: 30000 packets in about 2 ms.
  EXPECT_NEAR(static_cast<double>(g.capture.frames.back().ts - kStart), 30000 / 14.88e6 * 1e9,
              1000);
}

TEST_F(GenTest, StartTakesFractionalEpochSeconds) {
  const Generated g = generate("spoofed-flood", {"--start", "1704067200.330", "--duration", "0.5"});
  EXPECT_EQ(g.summary["first_ts"].get<std::int64_t>(), kStart + 330 * kMilli);
  EXPECT_EQ(g.summary["flood_start_ts"].get<std::int64_t>(), kStart + 330 * kMilli);
  EXPECT_EQ(g.capture.frames.front().ts, kStart + 330 * kMilli);
}

TEST_F(GenTest, RateAndDurationScaleTheFlood) {
  const Generated g = generate("spoofed-flood", {"--rate", "1000", "--duration", "2"});
  EXPECT_EQ(g.summary["syns"].get<std::size_t>(), 2000u + 15u);
}

TEST_F(GenTest, DuplicateWritesEveryFrameTwiceBackToBackWithItsTimestamp) {
  const std::vector<std::vector<std::string>> runs = {
      {"spoofed-flood", "--duration", "0.5"},
      {"spoofed-flood-synack", "--duration", "0.5", "--link", "sll2"},
      {"bench-flood", "--count", "3000"},
      {"truncated"},
      {"flood-beside-legit", "--rate", "200", "--legit-rate", "100", "--duration", "1"},
      {"random-ports", "--count", "1000", "--answer", "rst", "--target", "[2001:db8::10]:443"}};
  for (const auto& run : runs) {
    const std::string& scenario = run.front();
    const std::vector<std::string> options(run.begin() + 1, run.end());
    std::vector<std::string> duplicated = options;
    duplicated.emplace_back("--duplicate");
    const Generated once = generate(scenario, options);
    const Generated twice = generate(scenario, duplicated);
    ASSERT_FALSE(once.capture.frames.empty()) << scenario;
    ASSERT_EQ(twice.capture.frames.size(), 2 * once.capture.frames.size()) << scenario;
    for (std::size_t i = 0; i < once.capture.frames.size(); ++i) {
      const Frame& original = once.capture.frames[i];
      for (const Frame* copy : {&twice.capture.frames[2 * i], &twice.capture.frames[2 * i + 1]}) {
        ASSERT_EQ(copy->ts, original.ts) << scenario << " frame " << i;
        ASSERT_EQ(copy->wire_length, original.wire_length) << scenario << " frame " << i;
        ASSERT_TRUE(copy->data == original.data) << scenario << " frame " << i;
      }
    }
    EXPECT_GT(once.summary["syns"].get<std::uint64_t>(), 0u) << scenario;
    for (const char* counted : {"packets", "syns", "synacks"}) {
      EXPECT_EQ(twice.summary[counted].get<std::uint64_t>(),
                2 * once.summary[counted].get<std::uint64_t>())
          << scenario << " " << counted;
    }
    for (const char* same : {"scenario", "first_ts", "last_ts", "flood_start_ts", "target"}) {
      EXPECT_EQ(twice.summary[same], once.summary[same]) << scenario << " " << same;
    }
  }
}

TEST_F(GenTest, FloodBesideLegitRunsTheFloodAfterTheHistoryWhileRealClientsComplete) {
  const Generated g = generate("flood-beside-legit", {"--rate", "1000", "--legit-rate", "400",
                                                      "--duration", "3", "--history", "2"});
  const std::int64_t attack_start = kStart + 2 * kSecond;
  const std::int64_t legit_end = kStart + 10 * kSecond;  // history + duration + 5 s
  EXPECT_EQ(g.summary["flood_start_ts"].get<std::int64_t>(), attack_start);
  EXPECT_EQ(g.summary["target"], "198.51.100.10:80");
  std::set<IpAddress> flood_sources, legit_clients;
  std::size_t flood = 0, legit = 0, legit_before_attack = 0, background = 0;
  std::int64_t first_flood_syn = 0;
  for (const auto& [key, h] : track(g)) {
    EXPECT_EQ(h.syns, 1) << key;
    EXPECT_EQ(h.server_port, 80) << key;
    if (in_prefix(h.client, "198.18.0.0/15")) {
      ++flood;
      flood_sources.insert(h.client);
      first_flood_syn = first_flood_syn == 0 ? h.syn_ts : std::min(first_flood_syn, h.syn_ts);
      EXPECT_GE(h.syn_ts, attack_start) << key;
      EXPECT_LT(h.syn_ts, attack_start + 3 * kSecond) << key;
      EXPECT_EQ(h.synacks, 1) << key;  // SYN cookies: one SYN-ACK, never retransmitted
      EXPECT_LT(h.synack_ts - h.syn_ts, kMilli) << key;
      EXPECT_FALSE(h.completed) << key;
      continue;
    }
    ASSERT_TRUE(in_prefix(h.client, "203.0.113.0/24")) << key;
    EXPECT_TRUE(h.completed && h.fin_from_client && h.fin_from_server) << key;
    if (h.syn_ts >= legit_end) {
      ++background;
      continue;
    }
    ++legit;
    legit_clients.insert(h.client);
    legit_before_attack += h.syn_ts < attack_start ? 1 : 0;
    EXPECT_GE(h.ack_ts - h.synack_ts, 10 * kMilli) << key;
    EXPECT_LE(h.ack_ts - h.synack_ts, 80 * kMilli) << key;
  }
  EXPECT_EQ(flood, 3000u);
  EXPECT_EQ(flood_sources.size(), 3000u);
  EXPECT_EQ(first_flood_syn, attack_start);
  EXPECT_EQ(legit, 4000u);  // 400/s for 10 s
  EXPECT_EQ(legit_before_attack, 800u);
  EXPECT_GT(legit_clients.size(), 200u);
  EXPECT_EQ(background, 15u);
  EXPECT_GE(g.summary["last_ts"].get<std::int64_t>(), legit_end + 28 * kSecond);
}

TEST_F(GenTest, HistoryShiftsTheFloodStartAndAnIpv6TargetMakesItIpv6) {
  const Generated g =
      generate("flood-beside-legit", {"--history", "3.5", "--duration", "1", "--legit-rate", "200",
                                      "--target", "[2001:db8::10]:443"});
  const std::int64_t attack_start = kStart + 3500 * kMilli;
  EXPECT_EQ(g.summary["flood_start_ts"].get<std::int64_t>(), attack_start);
  EXPECT_EQ(g.summary["first_ts"].get<std::int64_t>(), kStart);
  std::size_t flood = 0, legit = 0;
  for (std::size_t i = 0; i < g.parsed.size(); ++i) {
    const Parsed& p = g.parsed[i];
    ASSERT_FALSE(p.v4);
    if (!p.syn()) continue;
    if (in_prefix(p.source, "2001:db8:8000::/33")) {
      ++flood;
      EXPECT_GE(g.capture.frames[i].ts, attack_start);
    } else {
      EXPECT_TRUE(in_prefix(p.source, "2001:db8:1::/48")) << p.source.to_string();
      ++legit;
    }
  }
  EXPECT_EQ(flood, 500u);
  EXPECT_EQ(legit, 1900u + 15u);  // 200/s for 3.5 + 1 + 5 s, then background
}

TEST_F(GenTest, FlashCrowdComesFromDistinctSlowClientsAndTwoPercentNeverComplete) {
  const Generated g = generate("flash-crowd", {"--duration", "5"});
  EXPECT_TRUE(g.summary["flood_start_ts"].is_null());
  std::set<IpAddress> clients;
  std::size_t crowd = 0, incomplete = 0;
  for (const auto& [key, h] : track(g)) {
    if (!in_prefix(h.client, "198.18.0.0/15")) continue;
    ++crowd;
    clients.insert(h.client);
    EXPECT_EQ(h.syns, 1) << key;
    EXPECT_LT(h.syn_ts, kStart + 5 * kSecond) << key;
    EXPECT_GT(h.synack_ts - h.syn_ts, 0) << key;
    EXPECT_LT(h.synack_ts - h.syn_ts, kMilli) << key;
    if (!h.completed) {
      ++incomplete;
      EXPECT_EQ(h.synacks, 3) << key;  // again at +1 s and +3 s
      EXPECT_NEAR(static_cast<double>(h.last_synack_ts - h.synack_ts), 3.0 * kSecond, 3.0 * kMilli)
          << key;
      EXPECT_FALSE(h.seq_changed) << key;
      continue;
    }
    EXPECT_EQ(h.synacks, 1) << key;
    EXPECT_GE(h.ack_ts - h.synack_ts, 200 * kMilli) << key;
    EXPECT_LE(h.ack_ts - h.synack_ts, 1000 * kMilli) << key;
    EXPECT_TRUE(h.fin_from_client && h.fin_from_server) << key;
  }
  EXPECT_EQ(crowd, 10000u);
  EXPECT_EQ(clients.size(), crowd);  // every client its own address
  EXPECT_NEAR(static_cast<double>(incomplete) / static_cast<double>(crowd), 0.02, 0.005);
  EXPECT_GE(g.summary["last_ts"].get<std::int64_t>(), kStart + 33 * kSecond);
}

TEST_F(GenTest, LossyBusyRetransmitsTwoPercentOfSynsOneSecondLaterAndCompletesAll) {
  const Generated g = generate("lossy-busy", {"--duration", "4"});
  std::set<IpAddress> clients;
  std::size_t connections = 0, retried = 0;
  for (const auto& [key, h] : track(g)) {
    if (!in_prefix(h.client, "198.18.0.0/15")) continue;
    ++connections;
    clients.insert(h.client);
    ASSERT_TRUE(h.completed) << key;
    EXPECT_FALSE(h.seq_changed) << key;  // the same SYN again, the same SYN-ACK again
    EXPECT_EQ(h.synacks, h.syns) << key;
    if (h.syns == 1) {
      EXPECT_GE(h.ack_ts - h.synack_ts, 5 * kMilli) << key;
      EXPECT_LE(h.ack_ts - h.synack_ts, 60 * kMilli) << key;
      continue;
    }
    ASSERT_EQ(h.syns, 2) << key;
    ++retried;
    EXPECT_EQ(h.last_syn_ts - h.syn_ts, kSecond) << key;
    EXPECT_LT(h.synack_ts - h.syn_ts, kMilli) << key;
    EXPECT_GT(h.last_synack_ts, h.last_syn_ts) << key;
    EXPECT_LT(h.last_synack_ts - h.last_syn_ts, kMilli) << key;
    EXPECT_GE(h.ack_ts - h.last_synack_ts, 5 * kMilli) << key;
    EXPECT_LE(h.ack_ts - h.last_synack_ts, 60 * kMilli) << key;
  }
  EXPECT_EQ(connections, 20000u);  // 5000/s for 4 s, no 4-tuple used twice
  EXPECT_LE(clients.size(), 20000u);
  EXPECT_GT(clients.size(), 12000u);
  EXPECT_NEAR(static_cast<double>(retried) / static_cast<double>(connections), 0.02, 0.005);
}

// The attack phase of random-ports and random-ports-one-source: 20000 SYNs at 5000/s.
struct PortSweep {
  std::size_t syns = 0, synacks = 0, resets = 0, answered_correctly = 0;
  std::set<IpAddress> sources;
  std::set<std::uint16_t> source_ports, destination_ports;
  std::set<IpAddress> destinations;
};

PortSweep port_sweep(const Generated& g) {
  PortSweep sweep;
  // 4 s of SYNs, their answers within a millisecond; background starts 1 s after the last SYN.
  const std::int64_t attack_end = kStart + 4500 * kMilli;
  std::map<std::string, std::uint32_t> syn_seq;
  for (std::size_t i = 0; i < g.parsed.size(); ++i) {
    const Parsed& p = g.parsed[i];
    if (g.capture.frames[i].ts >= attack_end) break;
    if (p.syn()) {
      ++sweep.syns;
      sweep.sources.insert(p.source);
      sweep.source_ports.insert(p.source_port);
      sweep.destination_ports.insert(p.destination_port);
      sweep.destinations.insert(p.destination);
      syn_seq[tuple_key(p.source, p.source_port, p.destination, p.destination_port)] = p.seq;
      continue;
    }
    const auto it =
        syn_seq.find(tuple_key(p.destination, p.destination_port, p.source, p.source_port));
    const bool answers = it != syn_seq.end() && p.ack == it->second + 1;
    if (p.synack()) {
      ++sweep.synacks;
      sweep.answered_correctly += answers ? 1 : 0;
    } else if (p.rst() && (p.flags & 0x10) != 0) {
      ++sweep.resets;
      sweep.answered_correctly += answers && p.seq == 0 ? 1 : 0;
    }
  }
  return sweep;
}

TEST_F(GenTest, RandomPortsSpreadsSpoofedSynsOverEveryPortOfOneAddress) {
  for (const char* answer : {"none", "rst", "synack"}) {
    const Generated g = generate("random-ports", {"--answer", answer});
    EXPECT_EQ(g.summary["flood_start_ts"].get<std::int64_t>(), kStart) << answer;
    const PortSweep sweep = port_sweep(g);
    EXPECT_EQ(sweep.syns, 20000u) << answer;
    EXPECT_EQ(sweep.destinations, (std::set<IpAddress>{*IpAddress::parse("198.51.100.10")}));
    EXPECT_EQ(sweep.sources.size(), 20000u) << answer;
    for (const IpAddress& source : sweep.sources) {
      ASSERT_TRUE(in_prefix(source, "198.18.0.0/15")) << source.to_string();
    }
    // 20000 uniform draws from 65535 ports hit about 17150 distinct ones, low and high alike.
    EXPECT_GT(sweep.destination_ports.size(), 16500u) << answer;
    EXPECT_LT(*sweep.destination_ports.begin(), 100) << answer;
    EXPECT_GT(*sweep.destination_ports.rbegin(), 65435) << answer;
    const std::string expected = answer;
    EXPECT_EQ(sweep.resets, expected == "rst" ? 20000u : 0u) << answer;
    EXPECT_EQ(sweep.synacks, expected == "synack" ? 20000u : 0u) << answer;
    EXPECT_EQ(sweep.answered_correctly, expected == "none" ? 0u : 20000u) << answer;
  }
}

TEST_F(GenTest, RandomPortsOneSourceSendsEverySynFromOneAddress) {
  const Generated v4 = generate("random-ports-one-source");
  const PortSweep sweep = port_sweep(v4);
  EXPECT_EQ(sweep.syns, 20000u);
  EXPECT_EQ(sweep.sources, (std::set<IpAddress>{*IpAddress::parse("203.0.113.77")}));
  EXPECT_GT(sweep.source_ports.size(), 10000u);
  EXPECT_GT(sweep.destination_ports.size(), 16500u);
  EXPECT_EQ(sweep.synacks + sweep.resets, 0u);

  const Generated v6 =
      generate("random-ports-one-source", {"--answer", "rst", "--target", "[2001:db8::10]:443"});
  const PortSweep sweep6 = port_sweep(v6);
  EXPECT_EQ(sweep6.syns, 20000u);
  EXPECT_EQ(sweep6.sources, (std::set<IpAddress>{*IpAddress::parse("2001:db8::77")}));
  EXPECT_EQ(sweep6.destinations, (std::set<IpAddress>{*IpAddress::parse("2001:db8::10")}));
  EXPECT_EQ(sweep6.answered_correctly, 20000u);
  EXPECT_EQ(v6.summary["target"], "[2001:db8::10]:443");
}

TEST(GenCli, ListDescribesEveryScenario) {
  const RunResult r = run_gen({"--list"});
  ASSERT_EQ(r.exit_code, 0);
  for (const auto& s : kScenarios) EXPECT_NE(r.out.find("  " + s + "  "), std::string::npos) << s;
}

TEST(GenCli, RejectsBadInputWithoutWritingAFile) {
  TempDir dir;
  const std::string out = (dir.path() / "x.pcap").string();
  EXPECT_EQ(run_gen({"no-such-scenario", "--out", out}).exit_code, 2);
  EXPECT_EQ(run_gen({"spoofed-flood", "--out", out, "--count", "5"}).exit_code, 2);
  EXPECT_EQ(run_gen({"spoofed-flood", "--out", out, "--target", "198.51.100.10"}).exit_code, 2);
  EXPECT_EQ(run_gen({"spoofed-flood", "--out", out, "--rate", "0"}).exit_code, 2);
  EXPECT_EQ(run_gen({"spoofed-flood", "--out", out, "--start", "yesterday"}).exit_code, 2);
  EXPECT_NE(run_gen({"spoofed-flood", "--out", out, "--link", "token-ring"}).exit_code, 0);
  EXPECT_NE(run_gen({"spoofed-flood"}).exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(GenCli, ListShowsTheNewOptionsAndTheirDefaults) {
  const RunResult r = run_gen({"--list"});
  ASSERT_EQ(r.exit_code, 0);
  for (const char* shown : {"[--legit-rate 1550 connections/s]", "[--history 0 s]",
                            "[--answer none: none|synack|rst]", "--duplicate"}) {
    EXPECT_NE(r.out.find(shown), std::string::npos) << shown;
  }
}

TEST(GenCli, RejectsNewOptionsWhereTheyDoNotApplyOrAreOutOfRange) {
  TempDir dir;
  const std::string out = (dir.path() / "x.pcap").string();
  const std::vector<std::vector<std::string>> rejected = {
      {"spoofed-flood", "--legit-rate", "100"},
      {"spoofed-flood", "--history", "1"},
      {"spoofed-flood", "--answer", "rst"},
      {"flood-beside-legit", "--answer", "none"},
      {"flood-beside-legit", "--count", "5"},
      {"random-ports", "--history", "1"},
      {"random-ports", "--duration", "1"},
      {"random-ports-one-source", "--legit-rate", "10"},
      {"flash-crowd", "--answer", "synack"},
      {"flood-beside-legit", "--legit-rate", "0"},
      {"flood-beside-legit", "--history", "-1"},
      {"flood-beside-legit", "--history", "nan"},
      {"flash-crowd", "--rate", "10000", "--duration", "20"},  // 200000 > 131072 addresses
  };
  for (auto args : rejected) {
    const std::string what = args[0] + " " + args[1] + " " + args[2];
    args.insert(args.begin() + 1, {"--out", out});
    EXPECT_EQ(run_gen(args).exit_code, 2) << what;
  }
  EXPECT_NE(run_gen({"random-ports", "--out", out, "--answer", "maybe"}).exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  EXPECT_EQ(run_gen({"flood-beside-legit", "--out", out, "--history", "0", "--duration", "0.1",
                     "--legit-rate", "10"})
                .exit_code,
            0);
}

}  // namespace
}  // namespace synwatch
