// The kernel's readers: sock_diag reply parsing on replies recorded in the netns test bed
// (fixtures/, written by kernel_netns_test with SYNWATCH_WRITE_KERNEL_FIXTURES), TcpExt and
// sysctl parsing, and the live poller in this namespace. What the kernel view makes of what they
// read is tested in aggregate/kernel_destinations_test and engine/kernel_view_test.
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "kernel/sock_diag.hpp"
#include "kernel/tcp_stats.hpp"

namespace synwatch {
namespace {

const std::filesystem::path kFixtures = SYNWATCH_KERNEL_FIXTURES;

std::vector<std::uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, std::string> read_expected() {
  std::map<std::string, std::string> expected;
  std::istringstream in(read_text(kFixtures / "expected.txt"));
  std::string key, value;
  while (in >> key >> value) expected[key] = value;
  return expected;
}

struct Parsed {
  DiagParseStatus status = DiagParseStatus::kMore;
  std::vector<KernelSocket> sockets;
  std::vector<KernelListener> listeners;
};

Parsed parse(std::span<const std::uint8_t> bytes) {
  Parsed p;
  DiagParser parser(p.sockets, p.listeners);
  p.status = parser.feed(bytes);
  return p;
}

// ---- sock_diag replies recorded in the test bed -----------------------------------------------

TEST(DiagParser, RecordedIpv4SynRecvDumpMatchesWhatSsCounted) {
  const auto bytes = read_bytes(kFixtures / "syn_recv_v4.bin");
  ASSERT_FALSE(bytes.empty()) << "missing fixture";
  const auto expected = read_expected();
  const Parsed p = parse(bytes);
  EXPECT_EQ(p.status, DiagParseStatus::kDone);
  std::size_t syn_recv = 0;
  for (const auto& s : p.sockets) {
    EXPECT_EQ(s.state, TCP_SYN_RECV);
    EXPECT_EQ(s.local.address.to_string(), "198.51.100.1");
    EXPECT_EQ(s.local.port, 8080);
    EXPECT_TRUE(IpPrefix::parse("198.18.0.0/15")->contains(s.remote.address))
        << s.remote.to_string();
    ++syn_recv;
  }
  EXPECT_EQ(std::to_string(syn_recv), expected.at("syn_recv_v4"));
  bool found = false;
  for (const auto& l : p.listeners) {
    if (l.local.port == 8080 && !l.v6) {
      found = true;
      EXPECT_EQ(l.local.address.to_string(), "198.51.100.1");
      EXPECT_EQ(std::to_string(l.backlog), expected.at("backlog"));
      EXPECT_EQ(std::to_string(l.accept_queue), expected.at("accept_queue_v4"));
    }
  }
  EXPECT_TRUE(found);
}

TEST(DiagParser, RecordedIpv6SynRecvDump) {
  const auto bytes = read_bytes(kFixtures / "syn_recv_v6.bin");
  ASSERT_FALSE(bytes.empty()) << "missing fixture";
  const auto expected = read_expected();
  const Parsed p = parse(bytes);
  EXPECT_EQ(p.status, DiagParseStatus::kDone);
  EXPECT_EQ(std::to_string(p.sockets.size()), expected.at("syn_recv_v6"));
  for (const auto& s : p.sockets) {
    EXPECT_FALSE(s.local.address.is_v4());
    EXPECT_EQ(s.local.address.to_string(), "2001:db8:51::1");
    EXPECT_TRUE(IpPrefix::parse("2001:db8:8000::/33")->contains(s.remote.address))
        << s.remote.to_string();
  }
  ASSERT_FALSE(p.listeners.empty());
  EXPECT_TRUE(p.listeners[0].v6);
}

TEST(DiagParser, RecordedCompletedDumpHoldsTheEstablishedConnections) {
  const auto bytes = read_bytes(kFixtures / "completed_v4.bin");
  ASSERT_FALSE(bytes.empty()) << "missing fixture";
  const auto expected = read_expected();
  const Parsed p = parse(bytes);
  EXPECT_EQ(p.status, DiagParseStatus::kDone);
  EXPECT_EQ(std::to_string(p.sockets.size()), expected.at("completed_v4"));
  for (const auto& s : p.sockets) {
    EXPECT_EQ(s.local.port, 8080) << "the kernel's port filter let another port through";
    EXPECT_NE(s.state, TCP_SYN_RECV);
  }
}

TEST(DiagParser, EveryTruncationIsMalformedOrShortNeverWrong) {
  const auto bytes = read_bytes(kFixtures / "syn_recv_v4.bin");
  ASSERT_GT(bytes.size(), 200u);
  const Parsed whole = parse(bytes);
  std::set<std::size_t> boundaries;
  for (std::size_t at = 0; at < bytes.size();) {
    boundaries.insert(at);
    nlmsghdr h{};
    std::memcpy(&h, bytes.data() + at, sizeof h);
    at += NLMSG_ALIGN(h.nlmsg_len);
  }
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    const Parsed p = parse(std::span(bytes.data(), cut));
    ASSERT_NE(p.status, DiagParseStatus::kDone) << "cut at " << cut;
    ASSERT_LE(p.sockets.size(), whole.sockets.size());
    // Whatever was parsed before the cut is exactly the start of the full result.
    for (std::size_t i = 0; i < p.sockets.size(); ++i) ASSERT_EQ(p.sockets[i], whole.sockets[i]);
    // A cut inside a message must be noticed; a cut between messages is a plain short read.
    ASSERT_EQ(p.status,
              boundaries.contains(cut) ? DiagParseStatus::kMore : DiagParseStatus::kMalformed)
        << "cut at " << cut;
  }
}

TEST(DiagParser, CorruptLengthsFamiliesAndErrorsAreReported) {
  auto bytes = read_bytes(kFixtures / "syn_recv_v4.bin");
  ASSERT_GT(bytes.size(), sizeof(nlmsghdr) + sizeof(inet_diag_msg));
  {
    auto bad = bytes;
    nlmsghdr h{};
    std::memcpy(&h, bad.data(), sizeof h);
    h.nlmsg_len = static_cast<std::uint32_t>(bad.size() + 4);  // longer than the datagram
    std::memcpy(bad.data(), &h, sizeof h);
    EXPECT_EQ(parse(bad).status, DiagParseStatus::kMalformed);
    h.nlmsg_len = 4;  // shorter than its own header
    std::memcpy(bad.data(), &h, sizeof h);
    EXPECT_EQ(parse(bad).status, DiagParseStatus::kMalformed);
    h.nlmsg_len = NLMSG_HDRLEN + 8;  // too short for inet_diag_msg
    std::memcpy(bad.data(), &h, sizeof h);
    EXPECT_EQ(parse(std::span(bad.data(), h.nlmsg_len)).status, DiagParseStatus::kMalformed);
  }
  {
    auto bad = bytes;
    bad[NLMSG_HDRLEN] = 99;  // idiag_family
    EXPECT_EQ(parse(bad).status, DiagParseStatus::kMalformed);
  }
  {
    std::vector<std::uint8_t> error(NLMSG_LENGTH(sizeof(nlmsgerr)));
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(error.size());
    h.nlmsg_type = NLMSG_ERROR;
    nlmsgerr e{};
    e.error = -EPERM;
    std::memcpy(error.data(), &h, sizeof h);
    std::memcpy(error.data() + NLMSG_HDRLEN, &e, sizeof e);
    std::vector<KernelSocket> sockets;
    std::vector<KernelListener> listeners;
    DiagParser parser(sockets, listeners);
    EXPECT_EQ(parser.feed(error), DiagParseStatus::kError);
    EXPECT_EQ(parser.error(), EPERM);
  }
  {
    // Replies to another request (an abandoned dump) are skipped.
    std::vector<KernelSocket> sockets;
    std::vector<KernelListener> listeners;
    DiagParser parser(sockets, listeners, 0x7fffffff);
    EXPECT_EQ(parser.feed(bytes), DiagParseStatus::kMore);
    EXPECT_TRUE(sockets.empty());
  }
}

TEST(LocalPortFilter, IsAChainOfPortConditionsEndingInAReject) {
  std::vector<std::uint8_t> filter;
  const std::uint16_t ports[] = {80, 443};
  build_local_port_filter(ports, filter);
  ASSERT_EQ(filter.size(), 2 * (sizeof(inet_diag_bc_op) * 2 + sizeof(inet_diag_hostcond)) + 4);
  inet_diag_bc_op first{};
  std::memcpy(&first, filter.data(), sizeof first);
  EXPECT_EQ(first.code, INET_DIAG_BC_S_COND);
  inet_diag_hostcond host{};
  std::memcpy(&host, filter.data() + sizeof first, sizeof host);
  EXPECT_EQ(host.port, 80);
  inet_diag_bc_op last{};
  std::memcpy(&last, filter.data() + filter.size() - 4, sizeof last);
  EXPECT_EQ(last.code, INET_DIAG_BC_JMP);
  EXPECT_EQ(last.no, 8) << "must jump past the end: reject";
  std::vector<std::uint16_t> many(300, 1);
  build_local_port_filter(many, filter);
  EXPECT_TRUE(filter.empty()) << "too many ports: no filter";
}

// ---- the live poller, in this process's namespace ---------------------------------------------

// A listener on 127.0.0.1 (an ephemeral port) and clients connected to it, left unaccepted so
// that they wait in its accept queue; every socket is closed when it goes.
class LoopbackListener {
 public:
  explicit LoopbackListener(int backlog) : listener_(::socket(AF_INET, SOCK_STREAM, 0)) {
    address_.sin_family = AF_INET;
    address_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address_;
    listening_ = listener_ >= 0 && ::bind(listener_, as_sockaddr(), sizeof address_) == 0 &&
                 ::listen(listener_, backlog) == 0 &&
                 ::getsockname(listener_, as_sockaddr(), &length) == 0;
  }
  ~LoopbackListener() {
    for (const int client : clients_) ::close(client);
    if (listener_ >= 0) ::close(listener_);
  }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;

  [[nodiscard]] bool listening() const noexcept { return listening_; }
  [[nodiscard]] std::uint16_t port() const noexcept { return ntohs(address_.sin_port); }
  [[nodiscard]] std::size_t clients() const noexcept { return clients_.size(); }
  // Connects one more client; false if it could not.
  bool connect_client() {
    const int client = ::socket(AF_INET, SOCK_STREAM, 0);
    if (client < 0) return false;
    clients_.push_back(client);
    return ::connect(client, as_sockaddr(), sizeof address_) == 0;
  }

 private:
  sockaddr* as_sockaddr() noexcept { return reinterpret_cast<sockaddr*>(&address_); }

  int listener_;
  sockaddr_in address_{};
  bool listening_ = false;
  std::vector<int> clients_;
};

TEST(SockDiagPoller, SeesOurOwnListenerWithItsBacklogAndAConnection) {
  LoopbackListener listener(37);
  ASSERT_TRUE(listener.listening());
  ASSERT_TRUE(listener.connect_client());
  const std::uint16_t port = listener.port();

  auto poller = SockDiagPoller::open();
  ASSERT_TRUE(poller) << poller.error().message;
  ASSERT_TRUE(poller->poll_syn_recv());
  bool found = false;
  for (const auto& l : poller->listeners()) {
    if (l.local.port == port) {
      found = true;
      EXPECT_EQ(l.backlog, 37u);
      EXPECT_EQ(l.accept_queue, 1u) << "one connection completed, not accepted";
    }
  }
  EXPECT_TRUE(found);
  const std::uint16_t ports[] = {port};
  ASSERT_TRUE(poller->poll_completed(ports));
  ASSERT_EQ(poller->completed().size(), 1u) << "the accepted-queue connection, server side only";
  EXPECT_EQ(poller->completed()[0].local.port, port);
  EXPECT_EQ(poller->completed()[0].state, TCP_ESTABLISHED);
}

// The kernel view looks pending handshakes up in completed() by binary search; the kernel dumps
// sockets in its hash order, so the poller sorts them.
TEST(SockDiagPoller, HandsOverCompletedSocketsSorted) {
  LoopbackListener listener(64);
  ASSERT_TRUE(listener.listening());
  for (int i = 0; i < 32; ++i) ASSERT_TRUE(listener.connect_client());

  auto poller = SockDiagPoller::open();
  ASSERT_TRUE(poller) << poller.error().message;
  const std::uint16_t ports[] = {listener.port()};
  ASSERT_TRUE(poller->poll_completed(ports));
  EXPECT_EQ(poller->completed().size(), listener.clients());
  EXPECT_TRUE(std::is_sorted(poller->completed().begin(), poller->completed().end()));
}

// ---- /proc/net/netstat and sysctls ------------------------------------------------------------

TEST(TcpExt, ParsesARealNetstatFile) {
  const std::string text = read_text(kFixtures / "netstat.txt");
  const auto parsed = parse_tcp_ext(text);
  ASSERT_TRUE(parsed) << parsed.error().message;
  // The fixture's values, cross-checked by name below: find each name's column by hand.
  std::istringstream in(text);
  std::string names, values;
  std::getline(in, names);
  std::getline(in, values);
  std::istringstream n(names), v(values);
  std::map<std::string, std::uint64_t> by_name;
  std::string name, value;
  n >> name;
  v >> value;
  while (n >> name && v >> value) by_name[name] = std::stoull(value);
  EXPECT_EQ(parsed->syncookies_sent, by_name.at("SyncookiesSent"));
  EXPECT_EQ(parsed->listen_overflows, by_name.at("ListenOverflows"));
  EXPECT_EQ(parsed->listen_drops, by_name.at("ListenDrops"));
  EXPECT_EQ(parsed->req_q_full_do_cookies, by_name.at("TCPReqQFullDoCookies"));
}

TEST(TcpExt, ValuesGoWithTheirNamesWhateverTheOrder) {
  const auto parsed = parse_tcp_ext(
      "IpExt: InNoRoutes\nIpExt: 3\n"
      "TcpExt: ListenDrops Foo SyncookiesSent SyncookiesRecv SyncookiesFailed ListenOverflows "
      "TCPReqQFullDrop TCPReqQFullDoCookies\n"
      "TcpExt: 7 1 100 20 3 6 5 4\n");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->syncookies_sent, 100u);
  EXPECT_EQ(parsed->syncookies_recv, 20u);
  EXPECT_EQ(parsed->syncookies_failed, 3u);
  EXPECT_EQ(parsed->listen_overflows, 6u);
  EXPECT_EQ(parsed->listen_drops, 7u);
  EXPECT_EQ(parsed->req_q_full_drop, 5u);
  EXPECT_EQ(parsed->req_q_full_do_cookies, 4u);
}

TEST(TcpExt, MalformedInputIsAnErrorNamingTheProblem) {
  const std::string names =
      "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed ListenOverflows ListenDrops "
      "TCPReqQFullDrop TCPReqQFullDoCookies\n";
  const auto error = [](std::string_view text) {
    const auto r = parse_tcp_ext(text);
    return r ? std::string("parsed") : r.error().message;
  };
  EXPECT_EQ(error(""), "no TcpExt lines");
  EXPECT_EQ(parse_tcp_ext("").error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(error("Ip: Forwarding\nIp: 1\n"), "no TcpExt lines");
  EXPECT_EQ(error(names), "TcpExt names line has no values line");
  EXPECT_EQ(error(names + "IpExt: 1 2\n"), "TcpExt names line has no values line");
  EXPECT_NE(error(names + "TcpExt: 1 2 3 4 5 6\n").find("more names than values"),
            std::string::npos);
  EXPECT_NE(error(names + "TcpExt: 1 2 3 4 5 6 7 8\n").find("more values than names"),
            std::string::npos);
  EXPECT_NE(error(names + "TcpExt: 1 2 x 4 5 6 7\n").find("'x' of SyncookiesFailed"),
            std::string::npos);
  EXPECT_NE(error(names + "TcpExt: 1 2 -3 4 5 6 7\n").find("not an unsigned integer"),
            std::string::npos);
  EXPECT_NE(error(names + "TcpExt: 1 2 99999999999999999999999 4 5 6 7\n").find("not an unsigned"),
            std::string::npos);
  EXPECT_EQ(error("TcpExt: SyncookiesSent\nTcpExt: 1\n"), "TcpExt lacks SyncookiesRecv");
  EXPECT_EQ(error(names + "TcpExt: 1 2 3 4 5 6 7"), "parsed") << "no final newline is fine";
}

TEST(TcpExt, ReaderReportsTheFileAndReadsTheRealOne) {
  TcpStatsReader missing("/nonexistent/netstat");
  const auto r = missing.read();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent/netstat"), std::string::npos);
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  TcpStatsReader real;
  EXPECT_TRUE(real.read());
}

TEST(Sysctls, ParseAndRead) {
  EXPECT_EQ(parse_sysctl_int("1\n"), 1);
  EXPECT_EQ(parse_sysctl_int("4096"), 4096);
  EXPECT_EQ(parse_sysctl_int(""), std::nullopt);
  EXPECT_EQ(parse_sysctl_int("1 2\n"), std::nullopt);
  EXPECT_EQ(parse_sysctl_int("abc\n"), std::nullopt);
  const auto real = read_tcp_sysctls();
  ASSERT_TRUE(real.syncookies);
  EXPECT_GE(*real.syncookies, 0);
  EXPECT_LE(*real.syncookies, 2);
  EXPECT_TRUE(real.somaxconn);
  EXPECT_TRUE(real.max_syn_backlog);
  EXPECT_TRUE(real.synack_retries);
  EXPECT_FALSE(read_tcp_sysctls("/nonexistent").syncookies);
}

}  // namespace
}  // namespace synwatch
