// The Debian package under a real systemd: a minimal Debian 12 tree (mmdebstrap, cached between
// runs) booted with systemd as PID 1 of a systemd-nspawn container, the freshly built .deb
// installed in it, and the service driven the way an admin would: reload, a broken reload, a
// broken start, a stuck process, the sandbox, stop and purge. Runs where asked to (CI=true, or
// SYNWATCH_TEST_NSPAWN=1), as root, and skips, saying why, where nspawn cannot boot.
//
// The tree is minbase (Essential packages and apt) plus systemd, dbus and the package's
// dependencies, so a dependency the package forgets to declare (procps for /bin/kill, say)
// shows as a failure here. --system-call-filter=bpf lets the container's systemd use seccomp
// and BPF, without which it silently skips DevicePolicy= and IPAddressDeny=; with
// --private-network the container has only its own loopback.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "testbed.hpp"

namespace synwatch::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool have(const std::string& tool) {
  return sh("command -v " + tool) == 0;
}

bool env_is(const char* name, const char* value) {
  const char* set = std::getenv(name);
  return set != nullptr && std::string(set) == value;
}

// Where the bootable tree is kept between runs: SYNWATCH_NSPAWN_CACHE, or /var/cache.
fs::path cache_dir() {
  const char* set = std::getenv("SYNWATCH_NSPAWN_CACHE");
  return set != nullptr && *set != '\0' ? fs::path(set) : fs::path("/var/cache/synwatch-tests");
}

// "libc6 (>= 2.34), libpcap0.8 (>= 1.5.1), adduser" -> "libc6,libpcap0.8,adduser"
std::string package_names(const std::string& depends) {
  std::string names;
  std::istringstream items(depends);
  for (std::string item; std::getline(items, item, ',');) {
    std::string name = item.substr(item.find_first_not_of(' '));
    name = name.substr(0, name.find_first_of(" (|\n"));
    if (!name.empty()) names += (names.empty() ? "" : ",") + name;
  }
  return names;
}

// The container: booted in the background; commands run in all its namespaces with nsenter.
class Container {
 public:
  Container(const fs::path& tree, const fs::path& deb_dir, const fs::path& log)
      : nspawn_({"env", "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1", "systemd-nspawn", "-D", tree.string(),
                 "--ephemeral", "--boot", "--register=no", "--keep-unit", "--private-network",
                 "--system-call-filter=bpf", "--bind-ro=" + deb_dir.string() + ":/deb",
                 "--console=read-only"},
                log) {}
  // Powers the container off; systemd-nspawn then deletes its --ephemeral copy of the tree.
  // SIGTERM asks systemd-nspawn for the same when the container's systemd cannot be reached;
  // only a SIGKILL leaves the copy behind.
  ~Container() {
    if (pid1_ > 0) run("systemctl poweroff --no-block");
    if (pid1_ <= 0 || nspawn_.wait_exit(30s) < 0) nspawn_.signal(SIGTERM);
    if (nspawn_.wait_exit(30s) < 0) nspawn_.kill();
  }
  Container(const Container&) = delete;
  Container& operator=(const Container&) = delete;

  // Waits for the container's systemd to finish booting; false if it never does. Until its
  // manager is up, systemctl in the container fails at once (no bus): asked again until then.
  bool boot(std::chrono::seconds limit) {
    return eventually(limit, [&] {
      if (!nspawn_.running()) return false;
      if (pid1_ <= 0) pid1_ = init_pid();
      if (pid1_ <= 0) return false;
      state_ = run("timeout 10 systemctl is-system-running --wait").out;
      return state_ == "running\n" || state_ == "degraded\n";
    });
  }
  [[nodiscard]] const std::string& state() const { return state_; }

  // A shell command inside the container.
  ProcessResult run(const std::string& command) const {
    return run_process({"nsenter", "-t", std::to_string(pid1_), "-a", "/bin/sh", "-c", command});
  }
  std::string out(const std::string& command) const { return run(command).out; }
  // A command of this machine in the container's network namespace only (curl, say, which the
  // minimal tree lacks).
  ProcessResult in_network(const std::vector<std::string>& argv) const {
    std::vector<std::string> full = {"nsenter", "-t", std::to_string(pid1_), "-n"};
    full.insert(full.end(), argv.begin(), argv.end());
    return run_process(full);
  }
  [[nodiscard]] std::string log() const { return nspawn_.output() + nspawn_.errors(); }

 private:
  // The container's PID 1: the process below systemd-nspawn that runs systemd.
  pid_t init_pid() const {
    const std::string children =
        sh_out("pgrep -P " + std::to_string(nspawn_.pid()) + " -x systemd");
    if (!children.empty()) return std::stoi(children);
    // systemd-nspawn runs as the child of `env`, which exec()s it: same pid.
    return -1;
  }

  Background nspawn_;
  pid_t pid1_ = -1;
  std::string state_;
};

class SystemdNspawn : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!env_is("CI", "true") && !env_is("SYNWATCH_TEST_NSPAWN", "1")) {
      GTEST_SKIP() << "boots a container (minutes, a cached tree in " << cache_dir()
                   << "): set CI=true or SYNWATCH_TEST_NSPAWN=1";
    }
    if (SYNWATCH_SANITIZED != 0) {
      GTEST_SKIP() << "a sanitizer build: its package needs the sanitizer runtime, which the "
                      "minimal tree lacks; the RelWithDebInfo build of make test is the one booted";
    }
    if (::geteuid() != 0) GTEST_SKIP() << "systemd-nspawn needs root";
    for (const auto& [tool, package] :
         {std::pair{"systemd-nspawn", "systemd-container"}, std::pair{"mmdebstrap", "mmdebstrap"},
          std::pair{"nsenter", "util-linux"}, std::pair{"curl", "curl"},
          std::pair{"dpkg-deb", "dpkg"}, std::pair{"cpack", "cmake"}}) {
      if (!have(tool)) {
        GTEST_SKIP() << tool << " not installed (package " << package << "; make deps installs it)";
      }
    }
  }

  // Builds the package into deb_dir_; returns its path.
  fs::path build_package() {
    const auto built = run_process({CPACK_COMMAND, "--config",
                                    std::string(SYNWATCH_BINARY_DIR) + "/CPackConfig.cmake", "-G",
                                    "DEB", "-B", deb_dir_.path().string()});
    for (const auto& entry : fs::directory_iterator(deb_dir_.path())) {
      if (entry.path().extension() == ".deb") {
        fs::rename(entry.path(), deb_dir_.path() / "synwatch.deb");
        return deb_dir_.path() / "synwatch.deb";
      }
    }
    ADD_FAILURE() << "cpack made no package:\n" << built.out << built.err;
    return {};
  }

  // The cached tree for exactly these packages, made once with mmdebstrap from this machine's
  // apt sources (CI reaches only Debian's mirror). Named by the package list, so a new
  // dependency makes a new tree; a half-made tree never takes the final name.
  fs::path tree_for(const std::string& packages) {
    const std::string key = std::to_string(std::hash<std::string>{}(packages));
    fs::path tree = cache_dir() / ("bookworm-minbase-" + key);
    if (fs::exists(tree / "usr/lib/systemd/systemd")) return tree;
    fs::create_directories(cache_dir());
    const fs::path partial = cache_dir() / ("partial-" + key);
    fs::remove_all(partial);
    std::string sources = "/etc/apt/sources.list.d/debian.sources";
    if (!fs::exists(sources)) sources = "/etc/apt/sources.list";
    const auto made =
        run_process({"mmdebstrap", "--quiet", "--variant=minbase",
                     "--include=systemd,dbus," + packages, "bookworm", partial.string(), sources});
    if (made.exit_code != 0) {
      ADD_FAILURE() << "mmdebstrap failed:\n" << made.out << made.err;
      return {};
    }
    fs::rename(partial, tree);
    return tree;
  }

  TempDir deb_dir_;
  TempDir work_;
};

// The value of a systemd property of synwatch.service in the container.
std::string property(const Container& c, const std::string& name) {
  std::string value = c.out("systemctl show -P " + name + " synwatch.service");
  while (!value.empty() && value.back() == '\n') value.pop_back();
  return value;
}

// One sample of the container's /metrics, or -1.
double metric(const Container& c, const std::string& name) {
  const auto page =
      c.in_network({"curl", "-s", "--max-time", "5", "http://127.0.0.1:9474/metrics"});
  std::smatch match;
  const std::regex line("(^|\n)" + name + " ([0-9.e+-]+)\n");
  if (!std::regex_search(page.out, match, line)) return -1;
  return std::stod(match[2]);
}

TEST_F(SystemdNspawn, PackageUnderARealSystemd) {
  const fs::path deb = build_package();
  ASSERT_FALSE(deb.empty());
  const std::string depends = run_process({"dpkg-deb", "-f", deb.string(), "Depends"}).out;
  const auto started = std::chrono::steady_clock::now();
  const fs::path tree = tree_for(package_names(depends));
  ASSERT_FALSE(tree.empty());
  std::cout << "tree " << tree << " ready after "
            << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                started)
                   .count()
            << " s\n";

  Container c(tree, deb_dir_.path(), work_.path() / "nspawn.log");
  if (!c.boot(90s)) {
    GTEST_SKIP() << "systemd-nspawn cannot boot a container here (its systemd says '" << c.state()
                 << "'):\n"
                 << c.log();
  }
  ASSERT_NE(c.run("test -e /bin/kill").exit_code, 0)
      << "the tree is not minimal: it has procps's /bin/kill, which the unit must not need";

  // Install: postinst creates the user, enables and starts the service.
  const auto installed = c.run("dpkg -i /deb/synwatch.deb");
  ASSERT_EQ(installed.exit_code, 0) << installed.out << installed.err;
  ASSERT_TRUE(eventually(30s, [&] { return property(c, "ActiveState") == "active"; }))
      << c.out("systemctl status synwatch; journalctl -u synwatch --no-pager -n 50");
  EXPECT_EQ(property(c, "UnitFileState"), "enabled");
  EXPECT_TRUE(
      eventually(10s, [&] { return metric(c, "synwatch_config_last_reload_successful") == 1; }));

  {
    SCOPED_TRACE("the sandbox holds");
    const std::string pid = property(c, "MainPID");
    const std::string status = c.out("cat /proc/" + pid + "/status");
    const std::string uid = c.out("id -u synwatch");
    ASSERT_FALSE(uid.empty());
    EXPECT_TRUE(
        std::regex_search(status, std::regex("\nUid:\t" + uid.substr(0, uid.size() - 1) + "\t")))
        << status;
    // CAP_NET_RAW is capability 13: only that bit.
    EXPECT_NE(status.find("\nCapEff:\t0000000000002000\n"), std::string::npos) << status;
    EXPECT_NE(status.find("\nNoNewPrivs:\t1\n"), std::string::npos) << status;
    EXPECT_NE(status.find("\nSeccomp:\t2\n"), std::string::npos) << status;
    // The root of its mount namespace is read-only: even root there cannot write.
    const auto write = c.run("nsenter -t " + pid + " -m touch /usr/synwatch-was-here");
    EXPECT_NE(write.exit_code, 0);
    EXPECT_NE(write.err.find("Read-only file system"), std::string::npos) << write.err;
  }

  {
    SCOPED_TRACE("synwatchd top reads the service's status socket in its RuntimeDirectory");
    EXPECT_EQ(c.out("stat -c '%a %U %G' /run/synwatch /run/synwatch/status.sock"),
              "750 synwatch synwatch\n660 synwatch synwatch\n");
    const auto top = c.run("synwatchd top --once --format json");
    EXPECT_EQ(top.exit_code, 0) << top.err;
    EXPECT_NE(top.out.find("\"open_incidents\":[]"), std::string::npos) << top.out;
    EXPECT_NE(top.out.find("\"config\":\"/etc/synwatch/synwatch.yaml\""), std::string::npos)
        << top.out;
  }

  {
    SCOPED_TRACE("reload applies a changed threshold");
    const double before = metric(c, "synwatch_config_last_reload_success_timestamp_seconds");
    ASSERT_EQ(c.run("sed -i 's/^  half_open: 256$/  half_open: 300/' /etc/synwatch/synwatch.yaml")
                  .exit_code,
              0);
    ASSERT_NE(c.out("grep -c '^  half_open: 300$' /etc/synwatch/synwatch.yaml"), "0\n");
    std::this_thread::sleep_for(1100ms);  // the success timestamp has whole seconds
    const auto reload = c.run("systemctl reload synwatch");
    EXPECT_EQ(reload.exit_code, 0) << reload.err;
    EXPECT_TRUE(eventually(10s, [&] {
      return c.out("journalctl -u synwatch --no-pager -o cat")
                 .find("reload complete: half-open threshold 300") != std::string::npos;
    })) << c.out("journalctl -u synwatch --no-pager -n 30");
    EXPECT_TRUE(eventually(10s, [&] {
      return metric(c, "synwatch_config_last_reload_success_timestamp_seconds") > before;
    }));
    EXPECT_EQ(metric(c, "synwatch_config_last_reload_successful"), 1);
  }

  const std::string running_pid = property(c, "MainPID");
  {
    SCOPED_TRACE("a broken config on reload keeps the running one");
    c.run("cp /etc/synwatch/synwatch.yaml /root/good.yaml");
    c.run("printf 'detection:\\n  half_open: lots\\n' > /etc/synwatch/synwatch.yaml");
    const auto reload = c.run("systemctl reload synwatch");
    EXPECT_NE(reload.exit_code, 0) << "reload of an invalid file must fail";
    EXPECT_EQ(property(c, "ActiveState"), "active");
    EXPECT_EQ(property(c, "MainPID"), running_pid);
    EXPECT_NE(c.out("journalctl -u synwatch --no-pager -o cat")
                  .find("/etc/synwatch/synwatch.yaml:2:14: detection.half_open:"),
              std::string::npos)
        << c.out("journalctl -u synwatch --no-pager -n 30");
    EXPECT_EQ(metric(c, "synwatch_config_last_reload_successful"), 1)
        << "the daemon was not even signalled";
  }

  {
    SCOPED_TRACE("a broken config at start ends in failed, without a restart loop");
    // Another mistake than the reload's, so that its line in the journal is the start's own.
    c.run("printf 'detection:\\n  tick: 5 fortnights\\n' > /etc/synwatch/synwatch.yaml");
    const auto restart = c.run("systemctl restart synwatch");
    EXPECT_NE(restart.exit_code, 0);
    EXPECT_TRUE(eventually(10s, [&] { return property(c, "ActiveState") == "failed"; }))
        << property(c, "ActiveState");
    std::this_thread::sleep_for(7s);  // longer than RestartSec=5s: a restart would show by now
    EXPECT_EQ(property(c, "ActiveState"), "failed");
    EXPECT_EQ(property(c, "NRestarts"), "0");
    EXPECT_EQ(property(c, "ExecMainStatus"), "78");
    EXPECT_NE(c.out("journalctl -u synwatch --no-pager -o cat")
                  .find("/etc/synwatch/synwatch.yaml:2:9: detection.tick:"),
              std::string::npos)
        << c.out("journalctl -u synwatch --no-pager -n 30");
    c.run("cp /root/good.yaml /etc/synwatch/synwatch.yaml");
    EXPECT_EQ(c.run("systemctl reset-failed synwatch && systemctl start synwatch").exit_code, 0);
    EXPECT_TRUE(eventually(20s, [&] { return property(c, "ActiveState") == "active"; }));
  }

  {
    SCOPED_TRACE("the watchdog restarts a stopped process");
    const std::string stuck = property(c, "MainPID");
    ASSERT_EQ(c.run("kill -STOP " + stuck).exit_code, 0);
    const auto stopped_at = std::chrono::steady_clock::now();
    // WatchdogSec=30s, then RestartSec=5s.
    EXPECT_TRUE(eventually(60s, [&] {
      const std::string now = property(c, "MainPID");
      return property(c, "ActiveState") == "active" && now != stuck && now != "0";
    })) << c.out("systemctl status synwatch; journalctl -u synwatch --no-pager -n 20");
    std::cout << "watchdog restart after "
              << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                  stopped_at)
                     .count()
              << " s\n";
    EXPECT_EQ(property(c, "NRestarts"), "1");
    EXPECT_NE(c.out("journalctl -u synwatch --no-pager -o cat").find("Watchdog timeout"),
              std::string::npos);
  }

  {
    SCOPED_TRACE("stop is quick and clean");
    const auto begin = std::chrono::steady_clock::now();
    EXPECT_EQ(c.run("systemctl stop synwatch").exit_code, 0);
    EXPECT_LT(std::chrono::steady_clock::now() - begin, 5s);
    EXPECT_EQ(property(c, "ActiveState"), "inactive");
    EXPECT_EQ(property(c, "Result"), "success");
  }

  {
    SCOPED_TRACE("purge removes what it should and keeps the user");
    const auto purged = c.run("dpkg --purge synwatch");
    EXPECT_EQ(purged.exit_code, 0) << purged.out << purged.err;
    for (const char* path : {"/usr/sbin/synwatchd", "/etc/synwatch", "/var/lib/synwatch",
                             "/var/log/synwatch", "/usr/lib/systemd/system/synwatch.service",
                             "/etc/systemd/system/multi-user.target.wants/synwatch.service"}) {
      EXPECT_NE(c.run(std::string("test -e ") + path).exit_code, 0) << path << " left behind";
    }
    EXPECT_EQ(c.run("getent passwd synwatch").exit_code, 0) << "the user is kept (Debian practice)";
    EXPECT_NE(property(c, "LoadState"), "loaded");
  }
  std::cout << "container test took "
            << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                started)
                   .count()
            << " s\n";
}

}  // namespace
}  // namespace synwatch::testing
