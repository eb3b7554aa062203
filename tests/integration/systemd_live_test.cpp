// The live daemon as systemd runs it, in the network-namespace test bed: the sd_notify protocol
// on a NOTIFY_SOCKET the test owns (READY, WATCHDOG, RELOADING, STOPPING, STATUS), and running as
// an unprivileged user with nothing but CAP_NET_RAW, as the unit does; without it, exit 77.
// Skips (saying why) without root or network namespaces.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <mutex>

#include "testbed.hpp"

namespace synwatch::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Notification {
  Clock::time_point at;
  pid_t sender = 0;
  std::string text;
  [[nodiscard]] bool has(const std::string& assignment) const {
    return ("\n" + text + "\n").find("\n" + assignment + "\n") != std::string::npos;
  }
  [[nodiscard]] std::string value(const std::string& name) const {
    const auto at_name = ("\n" + text).find("\n" + name + "=");
    if (at_name == std::string::npos) return "";
    const auto start = at_name + name.size() + 1;
    return text.substr(start, text.find('\n', start) - start);
  }
};

// A unix datagram socket standing in for systemd's notify socket. Records every datagram with
// its arrival time and the sender's pid (SCM_CREDENTIALS, as systemd checks NotifyAccess=main).
class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    (void)std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
    const int on = 1;
    ok_ = fd_ >= 0 && ::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0 &&
          ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    // The daemon drops to an unprivileged user before it notifies.
    fs::permissions(path, fs::perms::all);
    if (ok_) reader_ = std::thread([this] { read_loop(); });
  }
  ~NotifySocket() {
    stop_ = true;
    if (reader_.joinable()) reader_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] const fs::path& path() const { return path_; }
  std::vector<Notification> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }
  // Index of the first notification at or after `from` with the assignment, or -1.
  long find(const std::string& assignment, std::size_t from = 0) const {
    const auto all = received();
    for (std::size_t i = from; i < all.size(); ++i) {
      if (all[i].has(assignment)) return static_cast<long>(i);
    }
    return -1;
  }
  bool wait_for(const std::string& assignment, std::size_t from,
                std::chrono::milliseconds limit) const {
    return eventually(limit, [&] { return find(assignment, from) >= 0; });
  }
  std::string dump() const {
    std::string out;
    for (const auto& n : received()) {
      out += "[" + std::to_string(n.sender) + "] " + n.text + "\n---\n";
    }
    return out;
  }

 private:
  void read_loop() {
    while (!stop_) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 20) <= 0) continue;
      char data[4096];
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
      iovec iov{data, sizeof data};
      msghdr message{};
      message.msg_iov = &iov;
      message.msg_iovlen = 1;
      message.msg_control = control;
      message.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(fd_, &message, MSG_DONTWAIT);
      if (n <= 0) continue;
      Notification notification{Clock::now(), 0, std::string(data, static_cast<std::size_t>(n))};
      for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
          ucred credentials{};
          std::memcpy(&credentials, CMSG_DATA(c), sizeof credentials);
          notification.sender = credentials.pid;
        }
      }
      std::lock_guard lock(mutex_);
      received_.push_back(std::move(notification));
    }
  }

  fs::path path_;
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread reader_;
  mutable std::mutex mutex_;
  std::vector<Notification> received_;
};

class SystemdLive : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto why = TestBed::unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    bed_ = std::make_unique<TestBed>("d");
    ASSERT_TRUE(bed_->ok()) << "test bed setup failed";
    // The daemon runs as 'nobody': it must reach its config, alerts file and the socket.
    fs::permissions(dir_.path(), fs::perms::all);
    alerts_ = dir_.path() / "alerts.jsonl";
    config_ = dir_.path() / "synwatch.yaml";
    fs::create_directories(dir_.path() / "state");
    fs::permissions(dir_.path() / "state", fs::perms::all);
    std::ofstream(config_) << "capture:\n  interfaces: [swv0]\n"
                              "detection:\n  half_open: 256\n  for: 0.2s\n  cooldown: 30s\n"
                              "alerts:\n  file: "
                           << alerts_.string()
                           << "\n"
                              "metrics:\n  listen: 127.0.0.1:9474\n"
                              "state_dir: "
                           << (dir_.path() / "state").string()
                           << "\nstatus:\n  socket: " << (dir_.path() / "status.sock").string()
                           << "\n"
                              "log:\n  level: debug\nuser: nobody\n";
  }

  void start(std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"env", "-u", "JOURNAL_STREAM", "-u", "NOTIFY_SOCKET", "-u",
                               "WATCHDOG_USEC", "-u", "WATCHDOG_PID"});
    daemon_ = std::make_unique<Background>(bed_->exec_in(bed_->victim(), argv),
                                           dir_.path() / "daemon.out", dir_.path() / "daemon.err");
    ASSERT_GT(daemon_->pid(), 0);
  }
  // synwatchd as systemd would start it: with NOTIFY_SOCKET and, if given, WATCHDOG_USEC.
  void start_notified(const std::vector<std::string>& environment) {
    std::vector<std::string> argv = {"env", "NOTIFY_SOCKET=" + notify_->path().string()};
    argv.insert(argv.end(), environment.begin(), environment.end());
    for (const char* a : {SYNWATCHD, "--config"}) argv.emplace_back(a);
    argv.push_back(config_.string());
    start(argv);
  }

  void start_listener(int port) {
    // A deep backlog and syncookies off (test bed): every spoofed SYN stays half-open.
    listener_ = std::make_unique<Background>(
        bed_->exec_in(bed_->victim(),
                      {"python3", "-c",
                       "import socket,time\ns=socket.socket()\ns.bind(('198.51.100.1'," +
                           std::to_string(port) + "))\ns.listen(65535)\ntime.sleep(120)\n"}),
        dir_.path() / "listener.out", dir_.path() / "listener.err");
    ASSERT_TRUE(eventually(5s, [&] {
      return TestBed::in_out(bed_->victim(), "ss -Hltn").find(":" + std::to_string(port)) !=
             std::string::npos;
    }));
  }

  ProcessResult flood(int port, int count, int rate) {
    return run_process(
        bed_->exec_in(bed_->attacker(),
                      {SYNWATCH_FLOOD, "--target", "198.51.100.1", "--port", std::to_string(port),
                       "--count", std::to_string(count), "--rate", std::to_string(rate),
                       "--sources", "198.18.0.0/15", "--max-seconds", "10"}));
  }

  std::string log() const { return read_file(dir_.path() / "daemon.err"); }
  bool incident_started() const {
    return read_file(alerts_).find("\"event\":\"started\"") != std::string::npos;
  }

  TempDir dir_;
  std::unique_ptr<TestBed> bed_;
  fs::path alerts_;
  fs::path config_;
  std::unique_ptr<NotifySocket> notify_;
  std::unique_ptr<Background> daemon_;
  std::unique_ptr<Background> listener_;
};

TEST_F(SystemdLive, NotifyProtocolReadyWatchdogStatusReloadStop) {
  notify_ = std::make_unique<NotifySocket>(dir_.path() / "notify.sock");
  ASSERT_TRUE(notify_->ok()) << std::strerror(errno);
  start_notified({"WATCHDOG_USEC=1000000"});  // WatchdogSec=1s: WATCHDOG=1 every 0.5 s

  // READY=1 only once captures are open and privileges dropped; the daemon logs both first.
  ASSERT_TRUE(notify_->wait_for("READY=1", 0, 10s)) << notify_->dump() << log();
  const std::string log_at_ready = log();
  EXPECT_NE(log_at_ready.find("running as user 'nobody'"), std::string::npos) << log_at_ready;
  const auto ready_index = static_cast<std::size_t>(notify_->find("READY=1"));
  const auto ready = notify_->received().at(ready_index);
  EXPECT_EQ(ready_index, 0u) << "notifications before READY=1:\n" << notify_->dump();
  EXPECT_EQ(ready.sender, daemon_->pid()) << "not sent by the main process (NotifyAccess=main)";
  EXPECT_NE(ready.value("STATUS").find("swv0"), std::string::npos) << ready.text;

  // Periodic WATCHDOG=1, never more than the 1 s timeout apart.
  std::this_thread::sleep_for(3s);
  std::vector<Clock::time_point> beats;
  for (const auto& n : notify_->received()) {
    if (n.has("WATCHDOG=1")) {
      beats.push_back(n.at);
      EXPECT_EQ(n.sender, daemon_->pid());
    }
  }
  ASSERT_GE(beats.size(), 4u) << notify_->dump();
  EXPECT_LT(beats.front() - ready.at, 1s) << "first WATCHDOG=1 late";
  for (std::size_t i = 1; i < beats.size(); ++i) {
    EXPECT_LT(beats[i] - beats[i - 1], 900ms) << "watchdog gap at beat " << i;
    EXPECT_GT(beats[i] - beats[i - 1], 100ms) << "watchdog fed far more often than needed";
  }

  // STATUS= follows what happens: a flood opens an incident.
  start_listener(8080);
  const auto sent = flood(8080, 3000, 3000);
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  ASSERT_TRUE(eventually(5s, [&] { return incident_started(); })) << log();
  ASSERT_TRUE(eventually(6s, [&] {
    const auto all = notify_->received();
    return std::any_of(all.begin(), all.end(), [](const Notification& n) {
      return n.value("STATUS").find("1 open incident;") != std::string::npos;
    });
  })) << notify_->dump();

  // SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1 again.
  const std::size_t before_reload = notify_->received().size();
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(notify_->wait_for("RELOADING=1", before_reload, 5s)) << notify_->dump() << log();
  const auto reloading_index =
      static_cast<std::size_t>(notify_->find("RELOADING=1", before_reload));
  EXPECT_FALSE(notify_->received().at(reloading_index).value("MONOTONIC_USEC").empty());
  ASSERT_TRUE(notify_->wait_for("READY=1", reloading_index + 1, 5s)) << notify_->dump() << log();
  EXPECT_NE(log().find("reload complete"), std::string::npos);
  EXPECT_GT(notify_->find("READY=1", before_reload), static_cast<long>(reloading_index));

  // SIGTERM: STOPPING=1, then a clean exit.
  const std::size_t before_stop = notify_->received().size();
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(10s), 0) << log();
  EXPECT_TRUE(notify_->wait_for("STOPPING=1", before_stop, 2s)) << notify_->dump();
}

TEST_F(SystemdLive, WatchdogMeantForAnotherProcessIsNotFed) {
  // WATCHDOG_PID names the process the watchdog is for; a child that inherited it must stay
  // silent, and without WatchdogSec= nothing is sent either.
  notify_ = std::make_unique<NotifySocket>(dir_.path() / "notify.sock");
  ASSERT_TRUE(notify_->ok());
  start_notified({"WATCHDOG_USEC=1000000", "WATCHDOG_PID=1"});
  ASSERT_TRUE(notify_->wait_for("READY=1", 0, 10s)) << notify_->dump() << log();
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(notify_->find("WATCHDOG=1"), -1) << notify_->dump();
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(10s), 0) << log();
}

TEST_F(SystemdLive, UnprivilegedUserWithOnlyCapNetRawCaptures) {
  if (sh("command -v setpriv") != 0) GTEST_SKIP() << "setpriv not installed (package util-linux)";
  start_listener(8080);
  // As the unit runs it: an ordinary user, CAP_NET_RAW as its only (ambient) capability.
  start({"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         "--inh-caps=-all,+net_raw", "--ambient-caps=-all,+net_raw", "--bounding-set=-all,+net_raw",
         SYNWATCHD, "--config", config_.string()});
  ASSERT_TRUE(eventually(10s, [&] { return log().find("watching") != std::string::npos; }))
      << log();
  EXPECT_NE(log().find("running as user 'nobody'"), std::string::npos) << log();
  const auto status = read_file("/proc/" + std::to_string(daemon_->pid()) + "/status");
  EXPECT_NE(status.find("CapEff:\t0000000000002000"), std::string::npos) << "only CAP_NET_RAW:\n"
                                                                         << status;
  const auto sent = flood(8080, 3000, 3000);
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  EXPECT_TRUE(eventually(5s, [&] { return incident_started(); })) << log();
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(10s), 0) << log();
}

TEST_F(SystemdLive, WithoutCapNetRawExitsWith77NamingTheCapability) {
  if (sh("command -v setpriv") != 0) GTEST_SKIP() << "setpriv not installed (package util-linux)";
  const auto run = run_process(
      bed_->exec_in(bed_->victim(),
                    {"env", "-u", "JOURNAL_STREAM", "setpriv", "--reuid=nobody", "--regid=nogroup",
                     "--clear-groups", "--inh-caps=-all", "--ambient-caps=-all",
                     "--bounding-set=-all", SYNWATCHD, "--config", config_.string()}));
  EXPECT_EQ(run.exit_code, 77) << run.err;
  EXPECT_NE(run.err.find("CAP_NET_RAW"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace synwatch::testing
