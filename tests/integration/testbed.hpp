#pragma once
// A two-host test bed in network namespaces the test creates and deletes again:
//   victim   <name>-v  veth "swv0"  198.51.100.1/24  2001:db8:51::1/64
//   attacker <name>-a  veth "swa0"  198.51.100.2/24  2001:db8:51::2/64
// The victim routes the spoofed range 198.18.0.0/15 (and 2001:db8:8000::/33) back through the
// attacker's veth address, forwarding off, so Linux accepts spoofed SYNs; there is no default
// route and nothing leaves the namespaces. Needs root and `ip netns`; available() says why not.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "background.hpp"
#include "run_process.hpp"

extern char** environ;

namespace synwatch::testing {

inline int sh(const std::string& command) {
  const int status = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string sh_out(const std::string& command) {
  const auto r = run_process({"/bin/sh", "-c", command});
  return r.out;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TestBed {
 public:
  static std::string unavailable_reason() {
    if (::geteuid() != 0) return "needs root to create network namespaces";
    if (sh("command -v ip") != 0) return "needs iproute2 (ip)";
    const std::string probe = "swprobe" + std::to_string(::getpid());
    if (sh("ip netns add " + probe) != 0) return "cannot create network namespaces here";
    sh("ip netns del " + probe);
    return "";
  }

  explicit TestBed(const std::string& tag)
      : victim_("swv" + tag + std::to_string(::getpid() % 100000)),
        attacker_("swa" + tag + std::to_string(::getpid() % 100000)) {
    teardown();
    ok_ = sh("ip netns add " + victim_) == 0 && sh("ip netns add " + attacker_) == 0 &&
          sh("ip link add swv0 netns " + victim_ + " type veth peer name swa0 netns " +
             attacker_) == 0;
    for (const auto& [ns, dev, v4, v6] :
         {std::tuple{victim_, "swv0", "198.51.100.1/24", "2001:db8:51::1/64"},
          std::tuple{attacker_, "swa0", "198.51.100.2/24", "2001:db8:51::2/64"}}) {
      ok_ = ok_ && in(ns, std::string("ip addr add ") + v4 + " dev " + dev) == 0 &&
            in(ns, std::string("ip -6 addr add ") + v6 + " dev " + dev + " nodad") == 0 &&
            in(ns, std::string("ip link set ") + dev + " up") == 0 &&
            in(ns, "ip link set lo up") == 0;
    }
    ok_ = ok_ && in(victim_, "ip route add 198.18.0.0/15 via 198.51.100.2") == 0 &&
          in(victim_, "ip -6 route add 2001:db8:8000::/33 via 2001:db8:51::2") == 0;
    // Half-open connections must stay in the kernel's table for the comparison with ss.
    in(victim_, "sysctl -qw net.ipv4.tcp_syncookies=0");
    in(victim_, "sysctl -qw net.ipv4.tcp_max_syn_backlog=65536");
    in(victim_, "sysctl -qw net.core.somaxconn=65535");
    in(victim_, "sysctl -qw net.ipv4.ip_forward=0");
    in(attacker_, "sysctl -qw net.ipv4.ip_forward=0");
  }
  ~TestBed() { teardown(); }
  TestBed(const TestBed&) = delete;
  TestBed& operator=(const TestBed&) = delete;

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] const std::string& victim() const { return victim_; }
  [[nodiscard]] const std::string& attacker() const { return attacker_; }
  static int in(const std::string& ns, const std::string& command) {
    return sh("ip netns exec " + ns + " " + command);
  }
  static std::string in_out(const std::string& ns, const std::string& command) {
    return sh_out("ip netns exec " + ns + " " + command);
  }
  std::vector<std::string> exec_in(const std::string& ns, std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {"ip", "netns", "exec", ns});
    return argv;
  }
  // A bounded spoofed flood from the attacker namespace, sent by synwatch-flood at `tool`.
  [[nodiscard]] ProcessResult flood(const std::string& tool, const std::string& target, int port,
                                    int count, int rate,
                                    const std::string& sources = "198.18.0.0/15") const {
    return run_process(exec_in(
        attacker_,
        {tool, "--target", target, "--port", std::to_string(port), "--count", std::to_string(count),
         "--rate", std::to_string(rate), "--sources", sources, "--max-seconds", "20"}));
  }
  // True once something listens on TCP `port` in the victim namespace.
  [[nodiscard]] bool victim_listens_on(int port) const {
    return in_out(victim_, "ss -Hltn").find(":" + std::to_string(port) + " ") != std::string::npos;
  }
  // Half-open connections the victim's kernel holds (ss, as an admin would count them).
  [[nodiscard]] long syn_recv_count() const {
    const std::string out = in_out(victim_, "ss -Htan state syn-recv");
    return static_cast<long>(std::count(out.begin(), out.end(), '\n'));
  }

 private:
  void teardown() {
    sh("ip netns del " + victim_);
    sh("ip netns del " + attacker_);
  }
  std::string victim_;
  std::string attacker_;
  bool ok_ = false;
};

}  // namespace synwatch::testing
