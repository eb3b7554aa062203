// The kernel view in the network-namespace test bed: a real listener, real spoofed SYNs, the
// victim kernel's own SYN_RECV table and SYN cookie counters. Skips (saying why) without root or
// network namespaces.
//
// SYNWATCH_WRITE_KERNEL_FIXTURES=<dir> makes RecordFixtures write the raw sock_diag replies that
// tests/unit/kernel/fixtures/ holds (run it once, copy the files, commit them).
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <iostream>

#include "engine/kernel_view.hpp"
#include "kernel/tcp_stats.hpp"
#include "testbed.hpp"

namespace synwatch::testing {
namespace {

using namespace std::chrono_literals;

std::vector<nlohmann::json> read_events(const std::filesystem::path& path) {
  try {
    return parse_json_lines(read_file(path));
  } catch (const std::exception&) {
    return {};
  }
}

// Runs `f` on this thread inside network namespace `ns` (sockets opened there stay there).
template <typename F>
auto in_namespace(const std::string& ns, F&& f) {
  const int home = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const int target = ::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(target, 0) << ns;
  EXPECT_EQ(::setns(target, CLONE_NEWNET), 0);
  auto result = f();
  EXPECT_EQ(::setns(home, CLONE_NEWNET), 0);
  ::close(target);
  ::close(home);
  return result;
}

class KernelNetns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto why = TestBed::unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    bed_ = std::make_unique<TestBed>("k");
    ASSERT_TRUE(bed_->ok()) << "test bed setup failed";
    std::filesystem::permissions(dir_.path(), std::filesystem::perms::all);
  }

  void sysctl(const std::string& assignment) {
    ASSERT_EQ(TestBed::in(bed_->victim(), "sysctl -qw " + assignment), 0) << assignment;
  }

  // A listener that never accepts: its SYN queue and accept queue are the kernel's alone.
  void start_listener(int port, int backlog) {
    const std::string script =
        "import socket,time\n"
        "ls=[]\n"
        "for fam,addr in ((socket.AF_INET,'198.51.100.1'),(socket.AF_INET6,'2001:db8:51::1')):\n"
        "  s=socket.socket(fam,socket.SOCK_STREAM)\n"
        "  s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        "  s.bind((addr," +
        std::to_string(port) +
        "))\n"
        "  s.listen(" +
        std::to_string(backlog) +
        ")\n"
        "  ls.append(s)\n"
        "time.sleep(3600)\n";
    std::ofstream(dir_.path() / "listener.py") << script;
    listener_ = std::make_unique<Background>(
        bed_->exec_in(bed_->victim(), {"python3", (dir_.path() / "listener.py").string()}),
        dir_.path() / "listener.out", dir_.path() / "listener.err");
    ASSERT_TRUE(eventually(5s, [&] { return bed_->victim_listens_on(port); }));
  }

  ProcessResult flood(const std::string& target, int port, int count, int rate,
                      const std::string& sources = "198.18.0.0/15") {
    return bed_->flood(SYNWATCH_FLOOD, target, port, count, rate, sources);
  }

  // A daemon in the victim namespace. Kernel-only runs as 'nobody' from the start, with no
  // capabilities at all: it must need no capture privilege.
  std::unique_ptr<Background> start_daemon(const std::string& name, bool capture) {
    const auto config = dir_.path() / (name + ".yaml");
    std::ofstream(config) << "capture:\n  enabled: " << (capture ? "true" : "false")
                          << "\n  interfaces: [swv0]\n"
                             "kernel:\n  enabled: true\n  interval: 500ms\n"
                             "detection:\n  half_open: 256\n  for: 0.5s\n  cooldown: 2s\n"
                             "  update_interval: 1s\n"
                             "metrics:\n  enabled: false\n"
                             "alerts:\n  file: "
                          << (dir_.path() / (name + ".jsonl")).string()
                          << "\nstate_dir: " << (dir_.path() / "state").string()
                          << "\nstatus:\n  socket: " << (dir_.path() / "status.sock").string()
                          << "\nlog:\n  level: debug\nuser: nobody\n";
    std::vector<std::string> argv{"env", "-u", "JOURNAL_STREAM"};
    if (!capture) {
      for (const char* a : {"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            "--inh-caps=-all", "--bounding-set=-all"}) {
        argv.emplace_back(a);
      }
    }
    argv.insert(argv.end(), {SYNWATCHD, "--config", config.string()});
    auto daemon =
        std::make_unique<Background>(bed_->exec_in(bed_->victim(), argv),
                                     dir_.path() / (name + ".out"), dir_.path() / (name + ".err"));
    EXPECT_TRUE(eventually(10s, [&] { return log(name).find("watching") != std::string::npos; }))
        << log(name);
    return daemon;
  }

  std::string log(const std::string& name) const {
    return read_file(dir_.path() / (name + ".err"));
  }
  std::vector<nlohmann::json> started(const std::string& name) const {
    std::vector<nlohmann::json> out;
    for (const auto& e : read_events(dir_.path() / (name + ".jsonl"))) {
      if (e["event"] == "started") out.push_back(e);
    }
    return out;
  }

  TcpExtStats victim_counters() {
    const auto parsed = parse_tcp_ext(TestBed::in_out(bed_->victim(), "cat /proc/net/netstat"));
    EXPECT_TRUE(parsed) << parsed.error().message;
    return parsed.value_or(TcpExtStats{});
  }

  std::unique_ptr<SockDiagPoller> victim_poller() {
    auto poller = in_namespace(bed_->victim(), [] { return SockDiagPoller::open(); });
    EXPECT_TRUE(poller) << poller.error().message;
    return poller ? std::make_unique<SockDiagPoller>(std::move(*poller)) : nullptr;
  }

  TempDir dir_;
  std::unique_ptr<TestBed> bed_;
  std::unique_ptr<Background> listener_;
};

TEST_F(KernelNetns,
       NoCookiesSmallBacklogSynRecvAgreesWithSsAndKernelOnlyDaemonRaisesSpoofedRandom) {
  sysctl("net.ipv4.tcp_syncookies=0");
  start_listener(8080, 1024);
  auto daemon = start_daemon("kernelonly", false);
  ASSERT_TRUE(daemon->running()) << log("kernelonly");
  ASSERT_EQ(flood("198.51.100.1", 8080, 3000, 3000).exit_code, 0);

  const long ss = bed_->syn_recv_count();
  auto poller = victim_poller();
  ASSERT_NE(poller, nullptr);
  ASSERT_TRUE(poller->poll_syn_recv());
  const auto kernel_view = static_cast<long>(poller->syn_recv().size());
  std::cout << "SYN_RECV: ss counts " << ss << ", the kernel view " << kernel_view << "\n";
  EXPECT_GT(ss, 500) << "the victim kernel did not keep half-open connections";
  EXPECT_LE(ss, 1024 + 1) << "the backlog bounds the SYN queue";
  EXPECT_NEAR(static_cast<double>(kernel_view), static_cast<double>(ss),
              0.02 * static_cast<double>(ss) + 2);

  ASSERT_TRUE(eventually(8s, [&] { return !started("kernelonly").empty(); })) << log("kernelonly");
  const auto e = started("kernelonly").at(0);
  EXPECT_EQ(e["target"]["address"], "198.51.100.1");
  EXPECT_EQ(e["target"]["port"], 8080);
  EXPECT_EQ(e["kind"], "spoofed_random") << e["reason"];
  ASSERT_TRUE(e["stats"].contains("kernel")) << e.dump();
  EXPECT_GT(e["stats"]["kernel"]["syn_recv"].get<long>(), 256);
  EXPECT_EQ(e["stats"]["kernel"]["backlog"], 1024);
  EXPECT_NE(log("kernelonly").find("kernel-only"), std::string::npos) << log("kernelonly");
  EXPECT_NE(log("kernelonly").find("running as user 'nobody'"), std::string::npos)
      << log("kernelonly");
}

TEST_F(KernelNetns, WithCookiesCountersRiseAndBothViewsStillRaiseAnIncident) {
  sysctl("net.ipv4.tcp_syncookies=1");
  // Backlog 128 < threshold 256: the kernel's SYN_RECV count alone can never reach it.
  start_listener(8080, 128);
  auto kernel_only = start_daemon("kernelonly", false);
  auto wire = start_daemon("wire", true);
  const TcpExtStats before = victim_counters();
  ASSERT_EQ(flood("198.51.100.1", 8080, 8000, 4000).exit_code, 0);
  const TcpExtStats after = victim_counters();
  std::cout << "SyncookiesSent " << before.syncookies_sent << " -> " << after.syncookies_sent
            << ", TCPReqQFullDoCookies " << before.req_q_full_do_cookies << " -> "
            << after.req_q_full_do_cookies << "\n";
  EXPECT_GT(after.syncookies_sent, before.syncookies_sent + 5000);
  EXPECT_GT(after.req_q_full_do_cookies, before.req_q_full_do_cookies);
  EXPECT_LE(bed_->syn_recv_count(), 129) << "the SYN queue stops at the backlog";

  ASSERT_TRUE(eventually(8s, [&] { return !started("wire").empty(); })) << log("wire");
  const auto w = started("wire").at(0);
  EXPECT_EQ(w["kind"], "spoofed_random") << w["reason"];
  ASSERT_TRUE(w["stats"].contains("kernel")) << w.dump();
  EXPECT_LE(w["stats"]["kernel"]["syn_recv"].get<long>(), 129);
  EXPECT_EQ(w["stats"]["kernel"]["backlog"], 128);

  ASSERT_TRUE(eventually(8s, [&] { return !started("kernelonly").empty(); })) << log("kernelonly");
  const auto k = started("kernelonly").at(0);
  EXPECT_EQ(k["target"]["address"], "198.51.100.1");
  ASSERT_TRUE(k["stats"].contains("kernel")) << k.dump();
  EXPECT_GT(k["stats"]["kernel"]["stateless"].get<long>(), 256) << k.dump();
  EXPECT_GT(k["stats"]["kernel"]["syncookies_sent_rate"].get<double>(), 0.0) << k.dump();
  std::cout << "kernel-only incident from cookie counters: " << k["kind"] << ": " << k["reason"]
            << "\n";
}

TEST_F(KernelNetns, PollOf10000SynRecvSockets) {
  sysctl("net.ipv4.tcp_syncookies=0");
  start_listener(8080, 65535);
  ASSERT_EQ(flood("198.51.100.1", 8080, 11000, 20000).exit_code, 0);
  auto poller = victim_poller();
  ASSERT_NE(poller, nullptr);
  Config config;
  KernelView view(config, kNanosPerSecond);
  struct Null final : EventSink {
    void publish(const IncidentEvent&) override {}
  } sink;
  ASSERT_TRUE(poller->poll_syn_recv());  // warm: buffers sized
  ASSERT_GE(poller->syn_recv().size(), 10000u) << "the victim kernel holds too few";
  constexpr int kRounds = 20;
  std::chrono::nanoseconds dump{0}, whole{0};
  for (int i = 0; i < kRounds; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(poller->poll_syn_recv());
    const auto t1 = std::chrono::steady_clock::now();
    view.begin_poll(poller->syn_recv());
    view.finish_poll({}, poller->listeners(), std::nullopt, i * kNanosPerSecond + 1, sink);
    const auto t2 = std::chrono::steady_clock::now();
    dump += t1 - t0;
    whole += t2 - t0;
  }
  const double dump_ms = std::chrono::duration<double, std::milli>(dump).count() / kRounds;
  const double whole_ms = std::chrono::duration<double, std::milli>(whole).count() / kRounds;
  std::cout << "one poll of " << poller->syn_recv().size() << " SYN_RECV sockets: sock_diag dump "
            << dump_ms << " ms, dump + diff + detector " << whole_ms << " ms (mean of " << kRounds
            << ")\n";
  EXPECT_LT(whole_ms, 500.0) << "a poll must take well under the 1 s interval";
}

TEST_F(KernelNetns, RecordFixtures) {
  const char* out = std::getenv("SYNWATCH_WRITE_KERNEL_FIXTURES");
  if (out == nullptr) GTEST_SKIP() << "set SYNWATCH_WRITE_KERNEL_FIXTURES=<dir> to record fixtures";
  const std::filesystem::path dir(out);
  std::filesystem::create_directories(dir);
  sysctl("net.ipv4.tcp_syncookies=0");
  start_listener(8080, 512);
  ASSERT_EQ(flood("198.51.100.1", 8080, 40, 1000).exit_code, 0);
  ASSERT_EQ(flood("2001:db8:51::1", 8080, 20, 1000, "2001:db8:8000::/33").exit_code, 0);
  // Three completed connections, left in the accept queue.
  const auto clients = run_process(
      bed_->exec_in(bed_->attacker(),
                    {"python3", "-c",
                     "import socket,time\n"
                     "c=[socket.create_connection(('198.51.100.1',8080)) for i in range(3)]\n"}));
  ASSERT_EQ(clients.exit_code, 0) << clients.err;
  std::this_thread::sleep_for(200ms);

  auto poller = victim_poller();
  ASSERT_NE(poller, nullptr);
  std::map<std::string, std::string> files;
  poller->set_recorder(
      [&](int family, std::uint32_t states, std::span<const std::uint8_t> datagram) {
        const std::string name = std::string(states & (1u << 10) ? "syn_recv" : "completed") +
                                 (family == AF_INET ? "_v4" : "_v6");
        files[name].append(reinterpret_cast<const char*>(datagram.data()), datagram.size());
      });
  ASSERT_TRUE(poller->poll_syn_recv());
  std::size_t v4 = 0, v6 = 0;
  for (const auto& s : poller->syn_recv()) (s.local.address.is_v4() ? v4 : v6)++;
  std::uint32_t backlog = 0, accept_queue = 0;
  for (const auto& l : poller->listeners()) {
    if (!l.v6) {
      backlog = l.backlog;
      accept_queue = l.accept_queue;
    }
  }
  const std::uint16_t ports[] = {8080};
  ASSERT_TRUE(poller->poll_completed(ports));
  std::size_t completed_v4 = 0;
  for (const auto& s : poller->completed()) completed_v4 += s.local.address.is_v4();
  for (const auto& [name, bytes] : files) {
    std::ofstream(dir / (name + ".bin"), std::ios::binary) << bytes;
  }
  std::ofstream(dir / "expected.txt")
      << "syn_recv_v4 " << v4 << "\nsyn_recv_v6 " << v6 << "\nbacklog " << backlog
      << "\naccept_queue_v4 " << accept_queue << "\ncompleted_v4 " << completed_v4
      << "\nss_syn_recv " << bed_->syn_recv_count() << "\n";
  EXPECT_EQ(static_cast<long>(v4 + v6), bed_->syn_recv_count());
}

}  // namespace
}  // namespace synwatch::testing
