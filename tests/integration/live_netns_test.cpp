// The live daemon in a network-namespace test bed: real listener, real traffic, real capture.
// Skips (saying why) where root or network namespaces are unavailable.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/un.h>
#include <sys/socket.h>

#include <iostream>
#include <thread>
#include <optional>
#include <mutex>
#include <map>
#include <cstring>
#include <atomic>
#include <regex>
#include <set>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include "terminal.hpp"
#include "testbed.hpp"

namespace synwatch::testing {
namespace {

using namespace std::chrono_literals;

std::vector<nlohmann::json> read_events(const std::filesystem::path& path) {
  try {
    return parse_json_lines(read_file(path));
  } catch (const std::exception&) {
    return {};  // a line being written right now; the caller polls again
  }
}

std::vector<nlohmann::json> events_of(const std::vector<nlohmann::json>& events,
                                      const std::string& type) {
  std::vector<nlohmann::json> out;
  for (const auto& e : events) {
    if (e["event"] == type) out.push_back(e);
  }
  return out;
}

class LiveNetns : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto why = TestBed::unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    bed_ = std::make_unique<TestBed>(tag());
    ASSERT_TRUE(bed_->ok()) << "test bed setup failed";
    alerts_ = dir_.path() / "alerts.jsonl";
    config_ = dir_.path() / "synwatch.yaml";
    // The daemon drops to 'nobody' and must still be able to read its config on reload.
    std::filesystem::permissions(dir_.path(), std::filesystem::perms::all);
  }
  virtual std::string tag() { return "l"; }

  void write_config(const std::string& interfaces, const std::string& extra = "") {
    std::ofstream(config_) << "capture:\n  interfaces: " << interfaces
                           << "\ndetection:\n  half_open: 256\n  for: 0.5s\n  cooldown: 2s\n"
                              "  update_interval: 1s\nalerts:\n  file: "
                           << alerts_.string() << "\nlog:\n  level: debug\nuser: nobody\n"
                           << "state_dir: " << (dir_.path() / "state").string() << "\n"
                           << "status:\n  socket: " << status_socket().string() << "\n"
                           << extra;
  }

  void start_daemon() {
    daemon_ = std::make_unique<Background>(
        bed_->exec_in(bed_->victim(),
                      {"env", "-u", "JOURNAL_STREAM", SYNWATCHD, "--config", config_.string()}),
        dir_.path() / "daemon.out", dir_.path() / "daemon.err");
    ASSERT_TRUE(eventually(10s, [&] { return log().find("watching") != std::string::npos; }))
        << log();
  }

  void start_listener(int port) {
    // A listener with a deep backlog, so the kernel keeps every half-open connection; it
    // accepts and closes what completes.
    const std::string script =
        "import socket,sys\n"
        "ls=[]\n"
        "for fam,addr in ((socket.AF_INET,'198.51.100.1'),(socket.AF_INET6,'::')):\n"
        "  s=socket.socket(fam,socket.SOCK_STREAM)\n"
        "  s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        "  if fam==socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,1)\n"
        "  s.bind((addr," +
        std::to_string(port) +
        "))\n"
        "  s.listen(65535)\n"
        "  ls.append(s)\n"
        "import select\n"
        "while True:\n"
        "  r,_,_=select.select(ls,[],[],1)\n"
        "  for s in r:\n"
        "    c,_=s.accept()\n"
        "    try:\n"
        "      c.recv(4096); c.sendall(b'HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')\n"
        "    except OSError: pass\n"
        "    c.close()\n";
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

  // Real clients in the attacker namespace make `count` complete connections to port 8080.
  ProcessResult complete_connections(int count) {
    return run_process(bed_->exec_in(
        bed_->attacker(),
        {"python3", "-c",
         "import socket\n"
         "for i in range(" +
             std::to_string(count) +
             "):\n"
             "  s=socket.create_connection(('198.51.100.1',8080),timeout=5)\n"
             "  s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); s.recv(100); s.close()\n"}));
  }

  void expect_capture_to_resume_on_a_recreated_interface(const std::string& interfaces);

  // The incident's evidence capture, under state_dir, holds only SYNs to its target (tcpdump's
  // reading) and at least `at_least` of them.
  void expect_evidence(const nlohmann::json& event, const std::string& address, int port,
                       long long at_least) {
    ASSERT_TRUE(event.contains("evidence")) << event.dump();
    const std::string path = event["evidence"]["path"];
    EXPECT_EQ(std::filesystem::path(path).parent_path(), dir_.path() / "state" / "evidence");
    const auto count = [&](const std::string& filter) {
      std::vector<std::string> argv = {"tcpdump", "-nn", "-r", path};
      if (!filter.empty()) argv.push_back(filter);
      const auto r = run_process(argv);
      EXPECT_EQ(r.exit_code, 0) << r.err;
      return std::count(r.out.begin(), r.out.end(), '\n');
    };
    const long long all = count("");
    EXPECT_GE(all, at_least) << path;
    EXPECT_EQ(count("tcp[tcpflags] & (tcp-syn|tcp-ack|tcp-rst) == tcp-syn and dst host " + address +
                    " and dst port " + std::to_string(port)),
              all);
    EXPECT_NE(log().find("evidence=" + path), std::string::npos) << log();
  }

  std::string log() const { return read_file(dir_.path() / "daemon.err"); }
  std::filesystem::path status_socket() const { return dir_.path() / "status.sock"; }
  std::vector<nlohmann::json> events() const { return read_events(alerts_); }

  TempDir dir_;
  std::unique_ptr<TestBed> bed_;
  std::filesystem::path alerts_;
  std::filesystem::path config_;
  std::unique_ptr<Background> daemon_;
  std::unique_ptr<Background> listener_;
};

TEST_F(LiveNetns, SpoofedFloodStartsAgreesWithSsAndEndsWhenTheFloodStops) {
  write_config("[swv0]");
  start_listener(8080);
  start_daemon();
  const auto sent = flood("198.51.100.1", 8080, 20000, 10000);
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  ASSERT_TRUE(eventually(5s, [&] { return !events_of(events(), "started").empty(); })) << log();
  const auto started = events_of(events(), "started").at(0);
  EXPECT_EQ(started["target"]["address"], "198.51.100.1");
  EXPECT_EQ(started["target"]["port"], 8080);
  EXPECT_EQ(started["kind"], "spoofed_random") << started["reason"];

  // The kernel's count and the daemon's count of the same half-open connections.
  std::this_thread::sleep_for(500ms);
  const long kernel = bed_->syn_recv_count();
  const std::size_t seen = events().size();
  ASSERT_TRUE(eventually(4s, [&] { return events().size() > seen; })) << log();
  const auto latest = events().back();
  const long reported = latest["stats"]["half_open"];
  const long answered = latest["stats"]["syn_recv"];
  std::cout << "half-open: ss counts " << kernel << " SYN_RECV, synwatchd reports " << answered
            << " syn_recv of " << reported << " half-open\n";
  EXPECT_GT(kernel, 15000) << "the victim's kernel did not keep the half-open connections";
  // syn_recv is what ss counts: SYNs the kernel answered. A SYN the kernel dropped on a loaded
  // machine stays syn_seen on the wire, so half-open may exceed ss but never fall short of it.
  EXPECT_NEAR(static_cast<double>(answered), static_cast<double>(kernel),
              0.05 * static_cast<double>(kernel))
      << "daemon " << answered << " vs ss " << kernel;
  EXPECT_GE(static_cast<double>(reported), 0.95 * static_cast<double>(kernel));

  // The flood stopped dead: no packets at all now, yet the incident must end.
  ASSERT_TRUE(eventually(20s, [&] { return !events_of(events(), "ended").empty(); })) << log();
  EXPECT_EQ(events_of(events(), "ended").at(0)["incident_id"], started["incident_id"]);
  EXPECT_NE(log().find("spoofed_random SYN flood on 198.51.100.1:8080"), std::string::npos)
      << log();
  // About half a second of the flood is left after the start: the first 1,000 SYNs at least.
  expect_evidence(events_of(events(), "ended").at(0), "198.51.100.1", 8080, 1000);
}

// `synwatchd top` against the daemon under a flood: the status socket's permissions, one snapshot
// for scripts (JSON and text), and the full-screen view on a real pseudo-terminal, redrawn until
// q is typed.
TEST_F(LiveNetns, TopShowsTheFloodWhileItRuns) {
  write_config("[swv0]");
  start_listener(8080);
  start_daemon();
  const std::string socket = status_socket().string();
  EXPECT_NE(log().find("status for synwatchd top at " + socket), std::string::npos) << log();

  // Root and the daemon's group only: it runs as nobody here.
  struct stat file {};
  ASSERT_EQ(::lstat(socket.c_str(), &file), 0);
  EXPECT_EQ(file.st_mode & 0777, 0660u);
  const passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  EXPECT_EQ(file.st_uid, nobody->pw_uid);
  EXPECT_EQ(file.st_gid, nobody->pw_gid);
  // Someone outside the group is refused, a member is served. Only where that uid may run the
  // binary at all (a checkout under a closed home directory is not reachable for it).
  const std::vector<std::string> stranger = {"setpriv", "--reuid=64999", "--regid=64999"};
  const auto as_stranger = [&](const std::string& groups, std::vector<std::string> argv) {
    argv.insert(argv.begin(), groups);
    argv.insert(argv.begin(), stranger.begin(), stranger.end());
    return run_process(argv);
  };
  if (as_stranger("--clear-groups", {SYNWATCHD, "--version"}).exit_code != 0) {
    std::cout << "not checked: uid 64999 cannot run " << SYNWATCHD << "\n";
  } else {
    const auto refused =
        as_stranger("--clear-groups", {SYNWATCHD, "top", "--once", "--socket", socket});
    EXPECT_EQ(refused.exit_code, 69) << refused.out << refused.err;
    EXPECT_NE(refused.err.find("member of the daemon's group"), std::string::npos) << refused.err;
    const auto member = as_stranger("--groups=" + std::to_string(nobody->pw_gid),
                                    {SYNWATCHD, "top", "--once", "--socket", socket});
    EXPECT_EQ(member.exit_code, 0) << member.err;
  }

  ASSERT_TRUE(eventually(5s, [&] {
    const auto quiet = run_process({SYNWATCHD, "top", "--once", "--socket", socket});
    return quiet.out.find("No open incidents.") != std::string::npos;
  }));

  ProcessResult sent;
  // Ten seconds: long enough for every step below on a slow (sanitised) build.
  std::thread flooding([&] { sent = flood("198.51.100.1", 8080, 100000, 10000); });
  ASSERT_TRUE(eventually(5s, [&] { return !events_of(events(), "started").empty(); })) << log();
  const std::string incident = events_of(events(), "started").at(0)["incident_id"];

  // One snapshot, JSON: the incident, and its destination at the top with the figures top shows.
  nlohmann::json snapshot;
  ASSERT_TRUE(eventually(3s, [&] {
    const auto once =
        run_process({SYNWATCHD, "top", "--once", "--format", "json", "--socket", socket});
    if (once.exit_code != 0) return false;
    snapshot = nlohmann::json::parse(once.out, nullptr, false);
    return !snapshot.is_discarded() && !snapshot["open_incidents"].empty();
  })) << snapshot.dump();
  EXPECT_EQ(snapshot["version"], 1);
  EXPECT_EQ(snapshot["open_incidents"][0]["incident_id"], incident);
  EXPECT_EQ(snapshot["open_incidents"][0]["kind"], "spoofed_random");
  const auto& busiest = snapshot["destinations"].at(0);
  EXPECT_EQ(busiest["address"], "198.51.100.1");
  EXPECT_EQ(busiest["port"], 8080);
  EXPECT_EQ(busiest["incident"], "spoofed_random");
  EXPECT_GE(busiest["stale"].get<long>(), 256);
  EXPECT_GT(busiest["syn_rate"].get<double>(), 1000);
  EXPECT_FALSE(busiest["top_sources"].empty());
  EXPECT_EQ(snapshot["capture"]["interfaces"][0]["name"], "swv0");

  // The same as text, for a person reading a pipe.
  const auto text = run_process({SYNWATCHD, "top", "--once", "--socket", socket});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("1 OPEN INCIDENT"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("198.51.100.1:8080  spoofed_random"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("\x1b["), std::string::npos) << "no escape codes into a pipe";
  std::cout << "synwatchd top --once under the flood:\n" << text.out;

  // Full screen on a terminal: drawn in the alternate screen, redrawn every interval, q quits
  // and gives the shell its screen back.
  const auto count = [](const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = haystack.find(needle); at != std::string::npos;
         at = haystack.find(needle, at + 1)) {
      ++n;
    }
    return n;
  };
  const auto view = run_in_terminal(
      {SYNWATCHD, "top", "--socket", socket, "--interval", "0.3"}, 30, 160,
      [&, typed = false](const std::string& output) mutable {
        // Quit once it has redrawn with a packet rate (two of the daemon's once-a-second reads).
        // Typed once: a terminal echoes what is typed after top has restored its settings.
        const bool seen = count(output, "198.51.100.1:8080") >= 6 &&
                          output.find("packets (") != std::string::npos;
        if (!seen || typed) return std::string();
        typed = true;
        return std::string("q");
      },
      10s);
  EXPECT_EQ(view.exit_code, 0) << view.output;
  EXPECT_EQ(view.output.find("\x1b[?1049h"), 0u) << "the alternate screen first";
  EXPECT_NE(view.output.rfind("\x1b[?1049l"), std::string::npos) << "and left at the end";
  EXPECT_GE(count(view.output, "\x1b[H"), 3u) << "redrawn";
  EXPECT_NE(view.output.find("spoofed_random"), std::string::npos) << view.output;
  EXPECT_NE(view.output.find("packets ("), std::string::npos) << "a packet rate from two reads";
  // Cut to the terminal: no line wider than its 160 columns.
  std::string widest;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i <= view.output.size(); ++i) {
    if (i == view.output.size() || view.output[i] == '\n') {
      std::string line = view.output.substr(line_start, i - line_start);
      line = std::regex_replace(line, std::regex("\x1b\\[[?0-9;]*[a-zA-Z]|\r"), "");
      if (line.size() > widest.size()) widest = line;
      line_start = i + 1;
    }
  }
  EXPECT_LE(widest.size(), 160u) << widest;

  flooding.join();
  EXPECT_EQ(sent.exit_code, 0) << sent.err;
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(10s), 0) << log();
  EXPECT_FALSE(std::filesystem::exists(status_socket())) << "removed at stop";
}

TEST_F(LiveNetns, TwoWorkersSplitTheFlowsAndStillCountExactly) {
  write_config("[swv0]\n  workers: 2");
  start_listener(8080);
  start_daemon();
  EXPECT_NE(log().find("with 2 capture workers"), std::string::npos) << log();
  // Completed connections first: if the two directions of a connection reached different
  // workers, their SYNs would stay half-open on one worker and raise an incident.
  const auto client = complete_connections(400);
  ASSERT_EQ(client.exit_code, 0) << client.err;
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(events().empty()) << read_file(alerts_);

  const auto sent = flood("198.51.100.1", 8080, 20000, 10000);
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  ASSERT_TRUE(eventually(5s, [&] { return !events_of(events(), "started").empty(); })) << log();
  const auto started = events_of(events(), "started").at(0);
  EXPECT_EQ(started["kind"], "spoofed_random") << started["reason"];
  std::this_thread::sleep_for(500ms);
  const long kernel = bed_->syn_recv_count();
  const std::size_t seen = events().size();
  ASSERT_TRUE(eventually(4s, [&] { return events().size() > seen; })) << log();
  const long reported = events().back()["stats"]["half_open"];
  const long answered = events().back()["stats"]["syn_recv"];
  std::cout << "two workers: ss counts " << kernel << " SYN_RECV, synwatchd reports " << answered
            << " syn_recv of " << reported << " half-open\n";
  EXPECT_GT(kernel, 15000);
  // syn_recv is what ss counts: SYNs the kernel answered. A SYN the kernel dropped under load
  // stays syn_seen on the wire, so half-open may exceed ss but never fall short of it.
  EXPECT_NEAR(static_cast<double>(answered), static_cast<double>(kernel),
              0.05 * static_cast<double>(kernel));
  EXPECT_GE(static_cast<double>(reported), 0.95 * static_cast<double>(kernel));
  // The distinct-source estimate is the union of both workers' sketches, not one half.
  EXPECT_GT(events().back()["stats"]["distinct_sources"].get<double>(),
            0.8 * static_cast<double>(kernel));
  ASSERT_TRUE(eventually(20s, [&] { return !events_of(events(), "ended").empty(); })) << log();
  // Each worker's tap takes its half of the first 1,000, from its own share of the flood.
  expect_evidence(events_of(events(), "ended").at(0), "198.51.100.1", 8080, 1000);

  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(5s), 0) << log();
  // Both workers carried a fair share of the flows.
  const std::regex by_worker(R"(by worker: (\d+), (\d+)\))");
  std::smatch match;
  const std::string text = log();
  ASSERT_TRUE(std::regex_search(text, match, by_worker)) << text;
  const double first = std::stod(match[1]);
  const double second = std::stod(match[2]);
  std::cout << "packets by worker: " << first << ", " << second << "\n";
  EXPECT_GT(first, 0.3 * (first + second));
  EXPECT_GT(second, 0.3 * (first + second));
}

TEST_F(LiveNetns, Ipv6SpoofedFlood) {
  write_config("[swv0]");
  start_listener(8443);
  start_daemon();
  const auto sent = flood("2001:db8:51::1", 8443, 5000, 5000, "2001:db8:8000::/33");
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  ASSERT_TRUE(eventually(5s, [&] { return !events_of(events(), "started").empty(); })) << log();
  const auto started = events_of(events(), "started").at(0);
  EXPECT_EQ(started["target"]["address"], "2001:db8:51::1");
  EXPECT_EQ(started["kind"], "spoofed_random");
}

TEST_F(LiveNetns, OneSourceHping3FloodIsConcentrated) {
  if (sh("command -v hping3") != 0) GTEST_SKIP() << "hping3 not installed";
  if (sh("command -v nft") != 0) GTEST_SKIP() << "nft not installed";
  write_config("[swv0]");
  start_listener(8080);
  start_daemon();
  // Like a real attacker, drop our own kernel's RSTs to the victim's SYN-ACKs; otherwise every
  // handshake is reset and nothing stays half-open.
  ASSERT_EQ(TestBed::in(bed_->attacker(), "nft add table inet swtest"), 0);
  ASSERT_EQ(TestBed::in(bed_->attacker(),
                        "nft add chain inet swtest out '{ type filter hook output priority 0; }'"),
            0);
  ASSERT_EQ(TestBed::in(bed_->attacker(), "nft add rule inet swtest out tcp flags rst drop"), 0);
  TestBed::in(bed_->attacker(), "timeout 20 hping3 -q -S -p 8080 -i u200 -c 3000 198.51.100.1");
  ASSERT_TRUE(eventually(5s, [&] { return !events_of(events(), "started").empty(); })) << log();
  const auto started = events_of(events(), "started").at(0);
  EXPECT_EQ(started["kind"], "concentrated") << started["reason"];
  ASSERT_FALSE(started["top_sources"].empty());
  EXPECT_EQ(started["top_sources"][0]["address"], "198.51.100.2");
}

TEST_F(LiveNetns, BenignCompletedConnectionsRaiseNothing) {
  write_config("[swv0]");
  start_listener(8080);
  start_daemon();
  const auto client = complete_connections(400);
  ASSERT_EQ(client.exit_code, 0) << client.err;
  std::this_thread::sleep_for(3s);
  EXPECT_TRUE(events().empty()) << read_file(alerts_);
  EXPECT_EQ(log().find("SYN flood"), std::string::npos) << log();
  ASSERT_TRUE(daemon_->running());
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(5s), 0) << log();
}

// A second veth pair that disappears while the daemon captures on it and comes back; `interfaces`
// is the capture section's interfaces value (and any further capture keys).
void LiveNetns::expect_capture_to_resume_on_a_recreated_interface(const std::string& interfaces) {
  ASSERT_EQ(sh("ip link add swx0 netns " + bed_->victim() + " type veth peer name swy0 netns " +
               bed_->attacker()),
            0);
  const auto configure_second_pair = [&] {
    TestBed::in(bed_->victim(), "ip -6 addr add 2001:db8:52::1/64 dev swx0 nodad");
    TestBed::in(bed_->victim(), "ip link set swx0 up");
    TestBed::in(bed_->attacker(), "ip -6 addr add 2001:db8:52::2/64 dev swy0 nodad");
    TestBed::in(bed_->attacker(), "ip link set swy0 up");
    TestBed::in(bed_->victim(), "ip -6 route replace 2001:db8:4000::/34 via 2001:db8:52::2");
  };
  configure_second_pair();
  write_config(interfaces);
  start_listener(8080);
  start_daemon();
  TestBed::in(bed_->victim(), "ip link del swx0");
  ASSERT_TRUE(eventually(5s, [&] {
    return log().find("swx0") != std::string::npos && log().find("retrying") != std::string::npos;
  })) << log();
  ASSERT_TRUE(daemon_->running());
  ASSERT_EQ(sh("ip link add swx0 netns " + bed_->victim() + " type veth peer name swy0 netns " +
               bed_->attacker()),
            0);
  configure_second_pair();
  ASSERT_TRUE(eventually(40s, [&] {
    return log().find("capture on 'swx0' resumed") != std::string::npos;
  })) << log();
  // Traffic over the re-created interface is seen again.
  const auto sent = flood("2001:db8:52::1", 8080, 3000, 5000, "2001:db8:4000::/34");
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  ASSERT_TRUE(eventually(5s, [&] {
    for (const auto& e : events_of(events(), "started")) {
      if (e["target"]["address"] == "2001:db8:52::1") return true;
    }
    return false;
  })) << log();
}

TEST_F(LiveNetns, InterfaceRemovedAndRecreatedResumesCapture) {
  expect_capture_to_resume_on_a_recreated_interface("[swv0, swx0]");
}

// With two workers the interface has two sockets in one fanout group, both re-created.
TEST_F(LiveNetns, InterfaceRemovedAndRecreatedResumesCaptureWithTwoWorkers) {
  expect_capture_to_resume_on_a_recreated_interface("[swv0, swx0]\n  workers: 2");
}

TEST_F(LiveNetns, ReloadAppliesAValidConfigAndKeepsTheOldOneOnABrokenFile) {
  write_config("[swv0]", "");
  // Start blind: a threshold no test flood reaches.
  std::string text = read_file(config_);
  std::ofstream(config_) << std::regex_replace(text, std::regex("half_open: 256"),
                                               "half_open: 1000000");
  start_listener(8080);
  start_daemon();
  ASSERT_EQ(flood("198.51.100.1", 8080, 2000, 10000).exit_code, 0);
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(events_of(events(), "started").empty());

  // A broken file: logged with its location, the old config keeps running.
  std::ofstream(config_) << "detection:\n  half_open: [oops\n";
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(eventually(5s, [&] { return log().find("reload failed") != std::string::npos; }))
      << log();
  EXPECT_NE(log().find(config_.filename().string() + ":"), std::string::npos) << log();
  ASSERT_TRUE(daemon_->running());

  // A valid change takes effect without a restart.
  write_config("[swv0]", "");
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(eventually(5s, [&] {
    return log().find("reload complete: half-open threshold 256") != std::string::npos;
  })) << log();
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(flood("198.51.100.1", 8080, 3000, 10000).exit_code, 0);
  ASSERT_TRUE(eventually(5s, [&] { return !events_of(events(), "started").empty(); })) << log();

  const auto before = std::chrono::steady_clock::now();
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(5s), 0) << log();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
}

TEST_F(LiveNetns, MissingInterfaceDoesNotStopTheDaemon) {
  write_config("[swv0, nosuchif0]");
  start_listener(8080);
  start_daemon();
  EXPECT_NE(log().find("nosuchif0"), std::string::npos) << log();
  ASSERT_EQ(flood("198.51.100.1", 8080, 3000, 10000).exit_code, 0);
  ASSERT_TRUE(eventually(5s, [&] { return !events_of(events(), "started").empty(); })) << log();
  EXPECT_TRUE(daemon_->running());
}

// Reload rolls back nothing because it changes nothing until all of the new configuration is
// ready. A failed reload once closed the alert file for good (the rollback reopen ran without
// privileges and failed silently).
TEST_F(LiveNetns, AReloadThatFailsOnAnOutputKeepsEveryOutputRunning) {
  const auto root_only = dir_.path() / "root-only";
  std::filesystem::create_directory(root_only);
  std::filesystem::permissions(root_only, std::filesystem::perms::owner_all);
  write_config("[swv0]");
  const std::string good = read_file(config_);
  start_listener(8080);
  start_daemon();

  // 1: the new alert file cannot be opened by the unprivileged daemon.
  std::ofstream(config_) << std::regex_replace(good, std::regex("file: .*alerts.jsonl"),
                                               "file: " + (root_only / "a.jsonl").string());
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(eventually(5s, [&] { return log().find("reload failed") != std::string::npos; }))
      << log();
  // 2: the alert file could change, but a webhook's spool cannot be created.
  std::string second = std::regex_replace(good, std::regex("file: .*alerts.jsonl"),
                                          "file: " + (dir_.path() / "other.jsonl").string());
  second = std::regex_replace(
      second, std::regex("alerts:\n"),
      "alerts:\n  webhooks:\n    - name: hook\n      url: http://127.0.0.1:9/\n");
  second = std::regex_replace(second, std::regex("state_dir: [^\n]*"),
                              "state_dir: " + root_only.string() + "/state");
  std::ofstream(config_) << second;
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(eventually(5s, [&] {
    const auto text = log();
    return text.find("reload failed") != text.rfind("reload failed");
  })) << log();
  EXPECT_NE(log().find("webhook 'hook'"), std::string::npos) << log();

  ASSERT_EQ(flood("198.51.100.1", 8080, 3000, 10000).exit_code, 0);
  ASSERT_TRUE(eventually(5s, [&] { return !events_of(events(), "started").empty(); }))
      << "the running alert file was lost\n"
      << log();
  EXPECT_TRUE(read_file(dir_.path() / "other.jsonl").empty());
  EXPECT_TRUE(daemon_->running());
}

// A filter that cannot compile was accepted, said "reload complete", closed the interfaces and
// left the detector blind; at start it exited 70.
TEST_F(LiveNetns, ABrokenCaptureFilterIsAConfigErrorAtStartAndOnReload) {
  write_config("[swv0]", "");
  const std::string good = read_file(config_);
  std::ofstream(config_) << std::regex_replace(good, std::regex("capture:\n"),
                                               "capture:\n  filter: \"tcp and nonsense[\"\n");
  const auto check = run_process(
      bed_->exec_in(bed_->victim(), {SYNWATCHD, "--check-config", "--config", config_.string()}));
  EXPECT_EQ(check.exit_code, 78) << check.err;
  EXPECT_NE(check.err.find(config_.string() + ":2:11: capture.filter: invalid BPF filter"),
            std::string::npos)
      << check.err;

  std::ofstream(config_) << good;
  start_listener(8080);
  start_daemon();
  std::ofstream(config_) << std::regex_replace(good, std::regex("capture:\n"),
                                               "capture:\n  filter: \"tcp and nonsense[\"\n");
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(eventually(5s, [&] { return log().find("reload failed") != std::string::npos; }))
      << log();
  EXPECT_NE(log().find("capture.filter: invalid BPF filter"), std::string::npos) << log();
  ASSERT_EQ(flood("198.51.100.1", 8080, 3000, 10000).exit_code, 0);
  ASSERT_TRUE(eventually(5s, [&] { return !events_of(events(), "started").empty(); })) << log();
}

// A log.file set on reload was silently ignored.
TEST_F(LiveNetns, ALogFileSetOnReloadTakesEffect) {
  write_config("[swv0]");
  start_daemon();
  const auto log_file = dir_.path() / "synwatch.log";
  write_config("[swv0]", "");
  std::string text = read_file(config_);
  std::ofstream(config_) << std::regex_replace(text, std::regex("log:\n"),
                                               "log:\n  file: " + log_file.string() + "\n");
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(eventually(5s, [&] {
    return read_file(log_file).find("reload complete") != std::string::npos;
  })) << log();
  EXPECT_NE(log().find("reload: logging to stderr and '" + log_file.string() + "'"),
            std::string::npos)
      << log();
}

// With every configured interface missing the daemon exited 70; it now waits for them (the
// kernel view meanwhile) and starts capturing when one appears.
TEST_F(LiveNetns, OnlyInterfaceMissingKeepsTheDaemonWaitingForIt) {
  write_config("[swq0]");
  start_listener(8080);
  start_daemon();
  EXPECT_NE(log().find("no interface is capturing yet"), std::string::npos) << log();
  std::this_thread::sleep_for(1500ms);
  ASSERT_TRUE(daemon_->running()) << log();
  ASSERT_EQ(TestBed::in(bed_->victim(), "ip link set swv0 name swq0"), 0);
  ASSERT_TRUE(eventually(10s, [&] {
    return log().find("capture on 'swq0' resumed") != std::string::npos;
  })) << log();
  ASSERT_EQ(flood("198.51.100.1", 8080, 3000, 10000).exit_code, 0);
  ASSERT_TRUE(eventually(5s, [&] { return !events_of(events(), "started").empty(); })) << log();
}

// Capabilities, the bounding set and no_new_privs belong to each thread: the metrics threads
// once started before the drop and kept root's full bounding set.
TEST_F(LiveNetns, EveryThreadRunsUnprivilegedWithOnlyCapNetRaw) {
  write_config("[swv0]\n  workers: 2", "metrics:\n  listen: 127.0.0.1:0\n");
  std::string text = read_file(config_);
  std::ofstream(config_) << std::regex_replace(
      text, std::regex("alerts:\n"),
      "alerts:\n  webhooks:\n    - name: hook\n      url: http://127.0.0.1:9/\n");
  start_daemon();
  const auto tasks = std::filesystem::path("/proc") / std::to_string(daemon_->pid()) / "task";
  std::size_t threads = 0;
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    const std::string status = read_file(task.path() / "status");
    const std::string name = read_file(task.path() / "comm");
    auto field = [&](const std::string& key) {
      std::smatch match;
      const std::regex pattern(key + ":\\s*([^\n]*)");
      return std::regex_search(status, match, pattern) ? match[1].str() : std::string("?");
    };
    SCOPED_TRACE("thread " + task.path().filename().string() + " " + name);
    EXPECT_EQ(field("CapEff"), "0000000000002000");
    EXPECT_EQ(field("CapPrm"), "0000000000002000");
    EXPECT_EQ(field("CapInh"), "0000000000000000");
    EXPECT_EQ(field("CapBnd"), "0000000000002000");
    EXPECT_EQ(field("CapAmb"), "0000000000000000");
    EXPECT_EQ(field("NoNewPrivs"), "1");
    EXPECT_EQ(field("Uid").substr(0, 5), "65534");
    ++threads;
  }
  // Main, coordinator, two workers, the webhook's delivery thread and the HTTP server's.
  EXPECT_GE(threads, 6u);
}

// Every started gets its ended: a daemon killed mid-flood (no chance to end anything) carries
// its open incident on when it starts again, under the same id and event sequence, and a
// stopped daemon ends what is open with the reason.
TEST_F(LiveNetns, AKilledDaemonCarriesItsIncidentOnAndAStoppedOneEndsIt) {
  write_config("[swv0]");
  start_listener(8080);
  start_daemon();
  Background flooding(
      bed_->exec_in(bed_->attacker(), {SYNWATCH_FLOOD, "--target", "198.51.100.1", "--port", "8080",
                                       "--count", "140000", "--rate", "10000", "--sources",
                                       "198.18.0.0/15", "--max-seconds", "20"}),
      dir_.path() / "flood.out");
  ASSERT_TRUE(eventually(8s, [&] { return !events_of(events(), "started").empty(); })) << log();
  const std::string id = events_of(events(), "started")[0]["incident_id"];
  daemon_->signal(SIGKILL);
  EXPECT_NE(daemon_->wait_exit(5s), 0);

  start_daemon();
  EXPECT_NE(log().find("carrying on 1 incident the previous run left open: " + id),
            std::string::npos)
      << log();
  ASSERT_TRUE(eventually(6s, [&] {
    const auto updated = events_of(events(), "updated");
    if (updated.empty() || updated.back()["incident_id"] != id) return false;
    const std::string event_id = updated.back()["event_id"];
    return std::stoi(event_id.substr(event_id.rfind('-') + 1)) >= 2;
  })) << log();
  ASSERT_TRUE(flooding.running()) << "the flood must outlast the restart for this test";
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(5s), 0) << log();

  const auto all = events();
  EXPECT_EQ(events_of(all, "started").size(), 1u) << "the flood went on: no new incident";
  const auto ended = events_of(all, "ended");
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]["incident_id"], id);
  EXPECT_TRUE(ended[0]["reason"].get<std::string>().starts_with("synwatchd stopped"))
      << ended[0]["reason"];
  std::set<std::string> event_ids;
  for (const auto& e : all) {
    EXPECT_TRUE(event_ids.insert(e["event_id"].get<std::string>()).second)
        << "event id used twice: " << e.dump();
  }
  // Nothing is left to carry on after a clean stop.
  EXPECT_EQ(read_file(dir_.path() / "state" / "incidents" / "open.json").find(id),
            std::string::npos);
}

// The memory bound the daemon logs (and exports) holds under a flood that fills the handshake
// table, with two workers and the kernel view: the peak resident set stays below it.
TEST_F(LiveNetns, PeakMemoryUnderAFloodStaysWithinTheLoggedBound) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer's shadow memory and quarantine are not the daemon's own";
#endif
  write_config("[swv0]\n  workers: 2");
  start_listener(8080);
  start_daemon();
  std::smatch match;
  const std::string text = log();
  ASSERT_TRUE(std::regex_search(text, match, std::regex("memory bound ([0-9]+) MiB"))) << text;
  const long bound_mib = std::stol(match[1].str());
  const auto result = flood("198.51.100.1", 8080, 1'500'000, 500'000);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::this_thread::sleep_for(1s);
  const std::string status =
      read_file(std::filesystem::path("/proc") / std::to_string(daemon_->pid()) / "status");
  ASSERT_TRUE(std::regex_search(status, match, std::regex("VmHWM:\\s*([0-9]+) kB"))) << status;
  const long peak_mib = std::stol(match[1].str()) / 1024;
  std::cout << "peak resident " << peak_mib << " MiB, bound " << bound_mib << " MiB\n";
  EXPECT_LE(peak_mib, bound_mib);
  EXPECT_FALSE(events_of(events(), "started").empty()) << log();
}

// A stand-in for journald: the datagram socket libsystemd writes to, parsed as journald does
// (KEY=VALUE lines, or KEY, a 64-bit length and the value for binary-safe fields).
class JournalSocket {
 public:
  explicit JournalSocket(const std::filesystem::path& directory) : path_(directory / "socket") {
    std::filesystem::create_directories(directory);
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof address.sun_path - 1);
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    // The daemon writes as its unprivileged user.
    std::filesystem::permissions(path_, std::filesystem::perms::all);
    std::filesystem::permissions(
        directory, std::filesystem::perms::owner_all | std::filesystem::perms::group_exec |
                       std::filesystem::perms::others_exec | std::filesystem::perms::group_read |
                       std::filesystem::perms::others_read);
    reader_ = std::thread([this] { read_loop(); });
  }
  ~JournalSocket() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    reader_.join();
    ::close(fd_);
  }
  JournalSocket(const JournalSocket&) = delete;
  JournalSocket& operator=(const JournalSocket&) = delete;
  [[nodiscard]] bool ok() const { return ok_; }
  using Entry = std::map<std::string, std::string>;
  std::vector<Entry> entries() const {
    std::lock_guard lock(mutex_);
    return entries_;
  }

 private:
  void read_loop() {
    std::vector<char> buffer(1 << 20);
    while (!stopping_) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (n <= 0) continue;
      Entry entry;
      std::string_view rest(buffer.data(), static_cast<std::size_t>(n));
      while (!rest.empty()) {
        const auto end = rest.find('\n');
        const std::string_view line = rest.substr(0, end);
        if (const auto equals = line.find('='); equals != std::string_view::npos) {
          entry[std::string(line.substr(0, equals))] = std::string(line.substr(equals + 1));
          rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
        } else if (end != std::string_view::npos && rest.size() >= end + 9) {
          std::uint64_t length = 0;
          std::memcpy(&length, rest.data() + end + 1, 8);
          entry[std::string(line)] = std::string(rest.substr(end + 9, length));
          rest.remove_prefix(std::min(rest.size(), end + 9 + length + 1));
        } else {
          break;
        }
      }
      std::lock_guard lock(mutex_);
      entries_.push_back(std::move(entry));
    }
  }
  std::filesystem::path path_;
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stopping_{false};
  std::thread reader_;
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
};

// Under systemd every incident line carries journal fields, so that
// `journalctl -u synwatch SYNWATCH_INCIDENT_ID=...` finds one incident.
TEST_F(LiveNetns, IncidentLinesCarryJournalFields) {
  const auto journal_dir = dir_.path() / "journal";
  JournalSocket journal(journal_dir);
  ASSERT_TRUE(journal.ok());
  std::filesystem::create_directories("/run/systemd/journal");  // the bind mount's target
  write_config("[swv0]");
  start_listener(8080);
  // The daemon alone sees the stand-in, in a mount namespace of its own.
  daemon_ = std::make_unique<Background>(
      bed_->exec_in(bed_->victim(), {"unshare", "--mount", "--propagation", "private", "sh", "-c",
                                     "mount --bind " + journal_dir.string() +
                                         " /run/systemd/journal && exec env JOURNAL_STREAM=8:1 " +
                                         SYNWATCHD + " --config " + config_.string()}),
      dir_.path() / "daemon.out", dir_.path() / "daemon.err");
  const auto find = [&](const std::string& key, const std::string& value) {
    for (const auto& entry : journal.entries()) {
      if (const auto it = entry.find(key);
          it != entry.end() && it->second.find(value) != std::string::npos) {
        return std::optional<JournalSocket::Entry>(entry);
      }
    }
    return std::optional<JournalSocket::Entry>();
  };
  ASSERT_TRUE(eventually(10s, [&] { return find("MESSAGE", "watching").has_value(); }))
      << log() << journal.entries().size() << " journal entries";
  ASSERT_EQ(flood("198.51.100.1", 8080, 3000, 10000).exit_code, 0);
  ASSERT_TRUE(eventually(8s, [&] { return find("SYNWATCH_EVENT", "started").has_value(); }))
      << log();
  const auto started = *find("SYNWATCH_EVENT", "started");
  const auto events = events_of(read_events(alerts_), "started");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(started.at("SYNWATCH_INCIDENT_ID"), events[0]["incident_id"].get<std::string>());
  EXPECT_EQ(started.at("SYNWATCH_EVENT_ID"), events[0]["event_id"].get<std::string>());
  EXPECT_EQ(started.at("SYNWATCH_KIND"), "spoofed_random");
  EXPECT_EQ(started.at("SYNWATCH_TARGET_ADDRESS"), "198.51.100.1");
  EXPECT_EQ(started.at("SYNWATCH_TARGET_PORT"), "8080");
  EXPECT_GT(std::stoi(started.at("SYNWATCH_HALF_OPEN")), 256);
  EXPECT_FALSE(started.at("SYNWATCH_TOP_SOURCES").empty());
  EXPECT_EQ(started.at("SYNWATCH_EVIDENCE"), events[0]["evidence"]["path"].get<std::string>());
  EXPECT_EQ(started.at("PRIORITY"), "4");
  EXPECT_EQ(started.at("SYSLOG_IDENTIFIER"), "synwatchd");
  EXPECT_NE(started.at("MESSAGE").find("top_sources="), std::string::npos);
}

}  // namespace
}  // namespace synwatch::testing
