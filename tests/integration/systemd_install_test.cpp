// Installation as a service: the systemd unit (systemd-analyze verify and security), the install
// rules (DESTDIR staging and its file list), the man page against --help, the Debian package
// (cpack, dpkg-deb -c/-I) and, where allowed to change the machine, installing that package.
// Each check skips, saying why, when its tool is missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

#include "testbed.hpp"

namespace synwatch::testing {
namespace {

namespace fs = std::filesystem;

bool have(const std::string& tool) {
  return sh("command -v " + tool) == 0;
}

std::string source_file(const std::string& relative) {
  return read_file(fs::path(SYNWATCH_SOURCE_DIR) / relative);
}

// "-> Overall exposure level for synwatch.service: 1.7 OK" -> 1.7
double overall_exposure(const std::string& report) {
  std::smatch match;
  static const std::regex overall(R"(Overall exposure level for [^:]+: ([0-9]+\.[0-9]+))");
  if (!std::regex_search(report, match, overall)) return -1;
  return std::stod(match[1]);
}

// Regular files and symlinks under `root`, as paths relative to it.
std::set<std::string> files_under(const fs::path& root) {
  std::set<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_directory()) files.insert(fs::relative(entry.path(), root).string());
  }
  return files;
}

// Installs the build tree into `stage` with prefix /usr, as a package build would.
ProcessResult install_into(const fs::path& stage) {
  return run_process({"env", "DESTDIR=" + stage.string(), CMAKE_COMMAND, "--install",
                      SYNWATCH_BINARY_DIR, "--prefix", "/usr"});
}

// ---- the unit --------------------------------------------------------------------------------

TEST(SystemdUnit, SecurityExposureIsAtMostTwo) {
  if (!have("systemd-analyze")) GTEST_SKIP() << "systemd-analyze not installed (package systemd)";
  const auto report =
      run_process({"systemd-analyze", "security", "--offline=yes", "--no-pager", SYNWATCH_UNIT});
  const double exposure = overall_exposure(report.out);
  ASSERT_GE(exposure, 0) << report.out << report.err;
  std::cout << "systemd-analyze security: exposure " << exposure << "\n";
  EXPECT_LE(exposure, 2.0) << report.out;
  // systemd's own threshold check agrees (exposure is given to it in tenths).
  const auto checked = run_process({"systemd-analyze", "security", "--offline=yes",
                                    "--threshold=20", "--no-pager", SYNWATCH_UNIT});
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err;
}

TEST(SystemdUnit, KeepsWhatCaptureMetricsWebhooksAndNetlinkNeed) {
  // Hardening must not cost function: these are exactly what the daemon uses.
  const std::string unit = read_file(SYNWATCH_UNIT);
  ASSERT_FALSE(unit.empty()) << SYNWATCH_UNIT;
  for (const char* line :
       {"Type=notify\n", "WatchdogSec=", "ExecReload=/bin/sh -c 'kill -HUP $$MAINPID'\n",
        "Restart=on-failure\n", "User=synwatch\n", "AmbientCapabilities=CAP_NET_RAW\n",
        "CapabilityBoundingSet=CAP_NET_RAW\n", "NoNewPrivileges=yes\n", "ProtectSystem=strict\n",
        "StateDirectory=synwatch\n", "ConfigurationDirectory=synwatch\n",
        "LogsDirectory=synwatch\n",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET\n",
        "SystemCallFilter=@system-service\n", "MemoryDenyWriteExecute=yes\n"}) {
    EXPECT_NE(unit.find(line), std::string::npos) << "missing: " << line;
  }
  // An invalid configuration must end in "failed": RestartPreventExitStatus=78 sees only the
  // main process, so the check must not run in an ExecStartPre= (whose 78 means a restart).
  EXPECT_EQ(unit.find("\nExecStartPre="), std::string::npos);
  EXPECT_NE(unit.find("\nRestartPreventExitStatus=77 78\n"), std::string::npos);
  EXPECT_NE(unit.find("\nStartLimitBurst="), std::string::npos);
  // Reload needs nothing outside Essential packages (/bin/kill is procps).
  EXPECT_EQ(unit.find("=/bin/kill"), std::string::npos);
  // A user namespace or a private network would cut capture off from the host's interfaces.
  EXPECT_EQ(unit.find("\nPrivateUsers=yes"), std::string::npos);
  EXPECT_EQ(unit.find("\nPrivateNetwork=yes"), std::string::npos);
  // The kernel view reads net.ipv4.tcp_syncookies & co. under /proc/sys, which ProcSubset=pid
  // hides.
  EXPECT_EQ(unit.find("\nProcSubset="), std::string::npos);
  EXPECT_EQ(unit.find('@'), unit.find("@system-service")) << "unsubstituted template variable";
}

// The shipped unit grants no CAP_NET_ADMIN; the README's drop-in for the nftables action does,
// and nothing else: systemd reads it next to the unit and the exposure stays within bounds.
TEST(SystemdUnit, OnlyTheReadmesDropInGrantsCapNetAdmin) {
  if (!have("systemd-analyze")) GTEST_SKIP() << "systemd-analyze not installed (package systemd)";
  const std::string unit = read_file(SYNWATCH_UNIT);
  std::istringstream lines(unit);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("#")) {
      EXPECT_EQ(line.find("CAP_NET_ADMIN"), std::string::npos) << line;
    }
  }
  const auto shipped =
      run_process({"systemd-analyze", "security", "--offline=yes", "--no-pager", SYNWATCH_UNIT});
  EXPECT_NE(shipped.out.find("\u2713 CapabilityBoundingSet=~CAP_NET_ADMIN"), std::string::npos)
      << shipped.out;

  const std::string readme = source_file("README.md");
  const auto intro = readme.find("(`systemctl edit synwatch`, which writes");
  ASSERT_NE(intro, std::string::npos) << "the README no longer shows the drop-in";
  const auto begin = readme.find("```ini\n", intro);
  const auto end = readme.find("```\n", begin + 7);
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  const std::string drop_in = readme.substr(begin + 7, end - begin - 7);
  EXPECT_NE(drop_in.find("CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN\n"), std::string::npos);
  EXPECT_NE(drop_in.find("AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN\n"), std::string::npos);

  TempDir dir;
  fs::copy_file(SYNWATCH_UNIT, dir.path() / "synwatch.service");
  fs::create_directories(dir.path() / "synwatch.service.d");
  std::ofstream(dir.path() / "synwatch.service.d" / "override.conf") << drop_in;
  const auto with_drop_in = run_process({"systemd-analyze", "security", "--offline=yes",
                                         "--no-pager", (dir.path() / "synwatch.service").string()});
  EXPECT_NE(with_drop_in.out.find("\u2717 CapabilityBoundingSet=~CAP_NET_ADMIN"), std::string::npos)
      << with_drop_in.out << with_drop_in.err;
  // Only that: no other capability, and the family netlink needs is still allowed.
  EXPECT_NE(with_drop_in.out.find("\u2713 CapabilityBoundingSet=~CAP_SYS_ADMIN"),
            std::string::npos);
  EXPECT_NE(with_drop_in.out.find("\u2717 RestrictAddressFamilies=~AF_NETLINK"), std::string::npos);
  const double exposure = overall_exposure(with_drop_in.out);
  std::cout << "systemd-analyze security with the nftables drop-in: exposure " << exposure << "\n";
  EXPECT_GE(exposure, 0);
  EXPECT_LE(exposure, 2.0) << with_drop_in.out;
}

// ---- install rules ---------------------------------------------------------------------------

class Installed : public ::testing::Test {
 protected:
  void SetUp() override {
    stage_ = dir_.path() / "stage";
    const auto installed = install_into(stage_);
    ASSERT_EQ(installed.exit_code, 0) << installed.out << installed.err;
  }
  TempDir dir_;
  fs::path stage_;
};

TEST_F(Installed, FileList) {
  const auto files = files_under(stage_);
  const std::set<std::string> expected = {"etc/synwatch/synwatch.yaml",
                                          "usr/sbin/synwatchd",
                                          "usr/lib/systemd/system/synwatch.service",
                                          "usr/share/man/man8/synwatchd.8.gz",
                                          "usr/share/doc/synwatch/README.md",
                                          "usr/share/doc/synwatch/copyright",
                                          "usr/share/doc/synwatch/changelog.Debian.gz",
                                          "usr/share/lintian/overrides/synwatch",
                                          "usr/share/bash-completion/completions/synwatchd"};
  std::set<std::string> unexpected;
  for (const auto& file : files) {
    if (!expected.contains(file) && !file.starts_with("usr/share/synwatch/")) {
      unexpected.insert(file);
    }
  }
  for (const auto& file : expected) EXPECT_TRUE(files.contains(file)) << "not installed: " << file;
  for (const auto& file : unexpected) ADD_FAILURE() << "unexpected file installed: " << file;
  // Prometheus rules and the Grafana dashboard, when the source tree has them.
  for (const char* dir : {"prometheus", "grafana"}) {
    if (!fs::exists(fs::path(SYNWATCH_SOURCE_DIR) / "config" / dir)) continue;
    EXPECT_TRUE(std::any_of(files.begin(), files.end(),
                            [&](const std::string& f) {
                              return f.starts_with(std::string("usr/share/synwatch/") + dir + "/");
                            }))
        << dir << " files not installed under share/synwatch";
  }
  EXPECT_EQ(read_file(stage_ / "etc/synwatch/synwatch.yaml"), source_file("config/synwatch.yaml"));
  EXPECT_TRUE((fs::status(stage_ / "usr/sbin/synwatchd").permissions() & fs::perms::others_exec) !=
              fs::perms::none);
}

TEST_F(Installed, UnitNamesTheInstalledBinaryAndConfig) {
  const std::string unit = read_file(stage_ / "usr/lib/systemd/system/synwatch.service");
  EXPECT_NE(unit.find("\nExecStart=/usr/sbin/synwatchd --config /etc/synwatch/synwatch.yaml\n"),
            std::string::npos)
      << unit;
  const auto version = run_process({(stage_ / "usr/sbin/synwatchd").string(), "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_TRUE(version.out.starts_with("synwatchd ")) << version.out;
  const auto check = run_process({(stage_ / "usr/sbin/synwatchd").string(), "--check-config",
                                  "--config", (stage_ / "etc/synwatch/synwatch.yaml").string()});
  EXPECT_EQ(check.exit_code, 0) << check.err;
}

TEST_F(Installed, SystemdAnalyzeVerifyAcceptsTheInstalledUnit) {
  if (!have("systemd-analyze")) GTEST_SKIP() << "systemd-analyze not installed (package systemd)";
  // verify insists that ExecStart= exists and that Documentation=man:synwatchd(8) resolves;
  // point both at the staging area (with --root, systemd's own units would be missing).
  std::string unit = read_file(stage_ / "usr/lib/systemd/system/synwatch.service");
  const std::string binary = "/usr/sbin/synwatchd";
  for (auto at = unit.find(binary); at != std::string::npos; at = unit.find(binary, at + 1)) {
    unit.replace(at, binary.size(), (stage_ / "usr/sbin/synwatchd").string());
    at += stage_.string().size();
  }
  fs::create_directories(dir_.path() / "verify");
  std::ofstream(dir_.path() / "verify/synwatch.service") << unit;
  const auto verified =
      run_process({"env", "MANPATH=" + (stage_ / "usr/share/man").string(), "systemd-analyze",
                   "verify", (dir_.path() / "verify/synwatch.service").string()});
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  EXPECT_EQ(verified.err, "") << "warnings: " << verified.err;
}

TEST_F(Installed, ReinstallKeepsAnEditedConfig) {
  const fs::path config = stage_ / "etc/synwatch/synwatch.yaml";
  std::ofstream(config, std::ios::app) << "# edited by the admin\n";
  const std::string edited = read_file(config);
  const auto again = install_into(stage_);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(read_file(config), edited);
  EXPECT_EQ(read_file(stage_ / "etc/synwatch/synwatch.yaml.dist"),
            source_file("config/synwatch.yaml"));
}

// ---- man page --------------------------------------------------------------------------------

// The options `synwatchd ARGS --help` lists.
std::set<std::string> options_of_help(std::vector<std::string> argv) {
  argv.insert(argv.begin(), SYNWATCHD);
  argv.emplace_back("--help");
  const auto help = run_process(argv);
  EXPECT_EQ(help.exit_code, 0);
  std::set<std::string> options;
  static const std::regex option(R"((^|[ ,])(--?[A-Za-z][A-Za-z-]*))");
  std::istringstream lines(help.out);
  for (std::string line; std::getline(lines, line);) {
    // Option lines start with spaces and a dash; descriptions mentioning options come after.
    if (!line.starts_with("  -")) continue;
    const std::string names = line.substr(0, line.find("  ", 2));
    for (std::sregex_iterator it(names.begin(), names.end(), option), end; it != end; ++it) {
      options.insert((*it)[2]);
    }
  }
  return options;
}

TEST(ManPage, DocumentsEveryOptionOfHelp) {
  const std::string page = source_file("daemon/synwatchd.8");
  ASSERT_FALSE(page.empty());
  std::set<std::string> options = options_of_help({});
  ASSERT_GE(options.size(), 8u);
  const auto top = options_of_help({"top"});
  ASSERT_TRUE(top.contains("--once"));
  options.insert(top.begin(), top.end());
  EXPECT_NE(page.find(".SH TOP"), std::string::npos);
  for (const auto& name : options) {
    std::string roff;  // roff writes a literal minus as \-
    for (char c : name) roff += c == '-' ? std::string("\\-") : std::string(1, c);
    const std::regex as_option(
        "(^|[ \"])" + std::regex_replace(roff, std::regex(R"(\\)"), R"(\\)") + "([ \",]|$)",
        std::regex::multiline);
    EXPECT_TRUE(std::regex_search(page, as_option)) << name << " is not in daemon/synwatchd.8";
  }
}

TEST(ManPage, ExitStatusListsEveryExitCodeTheDaemonUses) {
  const std::string codes = source_file("lib/common/exit_codes.hpp");
  const std::string page = source_file("daemon/synwatchd.8");
  ASSERT_FALSE(codes.empty());
  std::set<int> defined;
  static const std::regex definition(R"(inline constexpr int k\w+ = (\d+);)");
  for (std::sregex_iterator it(codes.begin(), codes.end(), definition), end; it != end; ++it) {
    defined.insert(std::stoi((*it)[1]));
  }
  ASSERT_GE(defined.size(), 10u);
  const auto section = page.find(".SH EXIT STATUS");
  ASSERT_NE(section, std::string::npos);
  const std::string exit_status = page.substr(section, page.find(".SH ", section + 4) - section);
  std::set<int> documented;
  static const std::regex entry(R"(\.TP\n\.B (\d+)\n)");
  for (std::sregex_iterator it(exit_status.begin(), exit_status.end(), entry), end; it != end;
       ++it) {
    documented.insert(std::stoi((*it)[1]));
  }
  EXPECT_EQ(documented, defined);
}

TEST(ManPage, FormatsWithoutWarnings) {
  if (!have("groff")) GTEST_SKIP() << "groff not installed (package groff-base)";
  const auto lint = run_process({"groff", "-man", "-ww", "-z",
                                 (fs::path(SYNWATCH_SOURCE_DIR) / "daemon/synwatchd.8").string()});
  EXPECT_EQ(lint.exit_code, 0);
  EXPECT_EQ(lint.err, "");
}

// ---- Debian package --------------------------------------------------------------------------

class DebianPackage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!have("cpack") || !have("dpkg-deb") || !have("dpkg-shlibdeps")) return;
    package_dir = new TempDir();
    const auto built = run_process({CPACK_COMMAND, "--config",
                                    std::string(SYNWATCH_BINARY_DIR) + "/CPackConfig.cmake", "-G",
                                    "DEB", "-B", package_dir->path().string()});
    build_log = built.out + built.err;
    for (const auto& entry : fs::directory_iterator(package_dir->path())) {
      if (entry.path().extension() == ".deb") deb = entry.path();
    }
  }
  static void TearDownTestSuite() {
    delete package_dir;
    package_dir = nullptr;
  }
  void SetUp() override {
    if (!have("cpack") || !have("dpkg-deb") || !have("dpkg-shlibdeps")) {
      GTEST_SKIP() << "needs cpack, dpkg-deb and dpkg-shlibdeps (packages cmake, dpkg-dev)";
    }
    ASSERT_FALSE(deb.empty()) << "cpack -G DEB made no package:\n" << build_log;
  }
  static std::string field(const std::string& name) {
    return run_process({"dpkg-deb", "-f", deb.string(), name}).out;
  }

  static inline TempDir* package_dir = nullptr;
  static inline fs::path deb;
  static inline std::string build_log;
};

TEST_F(DebianPackage, ControlFields) {
  const auto info = run_process({"dpkg-deb", "-I", deb.string()});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(field("Package"), "synwatch\n");
  const std::string depends = field("Depends");
  // Runtime libraries come from dpkg-shlibdeps; adduser runs in the postinst.
  for (const char* dependency : {"libpcap0.8", "libsystemd0", "libcap2", "libyaml-cpp",
                                 "libnftables1", "libc6", "adduser"}) {
    EXPECT_NE(depends.find(dependency), std::string::npos)
        << "Depends lacks " << dependency << ": " << depends;
  }
  EXPECT_EQ(depends.find("-dev"), std::string::npos) << depends;
  EXPECT_EQ(field("Architecture"), sh_out("dpkg --print-architecture"));
  for (const char* member : {"conffiles", "postinst", "prerm", "postrm"}) {
    EXPECT_NE(info.out.find(member), std::string::npos)
        << "control member missing: " << member << "\n"
        << info.out;
  }
}

TEST_F(DebianPackage, FileListAndConffile) {
  const auto listing = run_process({"dpkg-deb", "-c", deb.string()});
  ASSERT_EQ(listing.exit_code, 0) << listing.err;
  for (const char* path :
       {"./usr/sbin/synwatchd", "./etc/synwatch/synwatch.yaml",
        "./usr/lib/systemd/system/synwatch.service", "./usr/share/man/man8/synwatchd.8.gz",
        "./usr/share/bash-completion/completions/synwatchd"}) {
    EXPECT_NE(listing.out.find(std::string(" ") + path + "\n"), std::string::npos) << path << "\n"
                                                                                   << listing.out;
  }
  EXPECT_EQ(listing.out.find("/usr/local"), std::string::npos) << listing.out;
  EXPECT_EQ(listing.out.find("_test"), std::string::npos) << "test programs packaged:\n"
                                                          << listing.out;
  EXPECT_NE(listing.out.find("root/root"), std::string::npos);

  TempDir control;
  ASSERT_EQ(run_process({"dpkg-deb", "-e", deb.string(), control.path().string()}).exit_code, 0);
  EXPECT_EQ(read_file(control.path() / "conffiles"), "/etc/synwatch/synwatch.yaml\n");
  const std::string postinst = read_file(control.path() / "postinst");
  EXPECT_NE(postinst.find("adduser --system"), std::string::npos);
  EXPECT_NE(postinst.find("daemon-reload"), std::string::npos);
  for (const char* script : {"postinst", "prerm", "postrm"}) {
    EXPECT_EQ(run_process({"sh", "-n", (control.path() / script).string()}).exit_code, 0) << script;
    EXPECT_TRUE((fs::status(control.path() / script).permissions() & fs::perms::owner_exec) !=
                fs::perms::none);
  }

  TempDir contents;
  ASSERT_EQ(run_process({"dpkg-deb", "-x", deb.string(), contents.path().string()}).exit_code, 0);
  const std::string unit = read_file(contents.path() / "usr/lib/systemd/system/synwatch.service");
  EXPECT_NE(unit.find("\nExecStart=/usr/sbin/synwatchd --config /etc/synwatch/synwatch.yaml\n"),
            std::string::npos);
  const auto version =
      run_process({(contents.path() / "usr/sbin/synwatchd").string(), "--version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
}

// Debian's own checker, at its strictest: no tag at all, not even informational or pedantic
// ones, unless the package overrides it with a reason (usr/share/lintian/overrides/synwatch).
TEST_F(DebianPackage, LintianFindsNothing) {
  if (!have("lintian")) GTEST_SKIP() << "lintian not installed (package lintian)";
  if (SYNWATCH_HARDENED == 0) {
    GTEST_SKIP() << "this build has no Debian hardening flags (a sanitizer build, or "
                    "SYNWATCH_DEBIAN_HARDENING=OFF): lintian's hardening tags would fire; the "
                    "RelWithDebInfo build of make test is the one checked";
  }
  const auto lint = run_process({"lintian", "-I", "--pedantic", "--no-tag-display-limit",
                                 "--fail-on", "error,warning,info,pedantic", deb.string()});
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;
  EXPECT_EQ(lint.out, "") << "lintian tags:\n" << lint.out;
}

TEST_F(DebianPackage, ChangelogCopyrightAndMaintainer) {
  const std::string maintainer = field("Maintainer");
  EXPECT_NE(maintainer.find('@'), std::string::npos) << maintainer;
  EXPECT_EQ(maintainer.find("@localhost"), std::string::npos) << maintainer;
  std::string version = field("Version");
  if (!version.empty()) version.pop_back();  // the newline
  // Not native: the packaging has its own revision, and its changelog is changelog.Debian.gz.
  EXPECT_NE(version.find('-'), std::string::npos) << version;
  TempDir contents;
  ASSERT_EQ(run_process({"dpkg-deb", "-x", deb.string(), contents.path().string()}).exit_code, 0);
  const fs::path doc = contents.path() / "usr/share/doc/synwatch";
  // The newest entry is this package's version (what lintian and apt-listchanges read).
  const auto changelog = run_process({"gzip", "-dc", (doc / "changelog.Debian.gz").string()});
  EXPECT_TRUE(changelog.out.starts_with("synwatch (" + version + ") ")) << changelog.out;
  EXPECT_TRUE(read_file(doc / "copyright")
                  .starts_with("Format: https://www.debian.org/doc/packaging-manuals/"
                               "copyright-format/1.0/\n"));
}

// The installed binary has the protections of Debian 12's dpkg-buildflags (hardening=+all): PIE,
// stack protector, fortified libc calls, read-only relocations and immediate binding. Not the
// control-flow protection (-fcf-protection) hardening-check also asks for: bookworm's
// dpkg-buildflags does not set it (its packages lack it too; trixie's does).
TEST_F(DebianPackage, BinaryIsHardened) {
  if (!have("hardening-check")) {
    GTEST_SKIP() << "hardening-check not installed (package devscripts)";
  }
  if (SYNWATCH_HARDENED == 0) {
    GTEST_SKIP() << "this build has no Debian hardening flags (a sanitizer build, or "
                    "SYNWATCH_DEBIAN_HARDENING=OFF); the RelWithDebInfo build of make test is the "
                    "one checked";
  }
  TempDir contents;
  ASSERT_EQ(run_process({"dpkg-deb", "-x", deb.string(), contents.path().string()}).exit_code, 0);
  const auto checked = run_process(
      {"hardening-check", "--nocfprotection", (contents.path() / "usr/sbin/synwatchd").string()});
  std::cout << checked.out;
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err;
  for (const char* protection :
       {"Position Independent Executable: yes", "Stack protected: yes",
        "Fortify Source functions: yes", "Read-only relocations: yes", "Immediate binding: yes"}) {
    EXPECT_NE(checked.out.find(protection), std::string::npos) << protection << "\n" << checked.out;
  }
}

// Changes the machine (a package, a system user): only as root and where asked to, as in CI.
TEST_F(DebianPackage, InstallsRunsAndPurges) {
  const char* ci = std::getenv("CI");
  const char* asked = std::getenv("SYNWATCH_TEST_INSTALL_DEB");
  if (!((ci && std::string(ci) == "true") || (asked && std::string(asked) == "1"))) {
    GTEST_SKIP()
        << "installs a package on this machine: set CI=true or SYNWATCH_TEST_INSTALL_DEB=1";
  }
  if (::geteuid() != 0) GTEST_SKIP() << "dpkg -i needs root";
  const bool was_installed =
      sh("dpkg-query -W -f='${Status}' synwatch | grep -q 'install ok installed'") == 0;
  auto installed = run_process({"dpkg", "-i", deb.string()});
  if (installed.exit_code != 0) {
    // Missing dependencies: what the README tells a user to do.
    installed =
        run_process({"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-f", "install", "-y"});
  }
  ASSERT_EQ(installed.exit_code, 0) << installed.out << installed.err;
  EXPECT_EQ(sh("getent passwd synwatch"), 0) << "postinst did not create the synwatch user";
  const auto version = run_process({"/usr/sbin/synwatchd", "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_NE(version.out.find("synwatchd"), std::string::npos);
  const auto check = run_process(
      {"/usr/sbin/synwatchd", "--check-config", "--config", "/etc/synwatch/synwatch.yaml"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_EQ(sh("dpkg -L synwatch | grep -qx /usr/lib/systemd/system/synwatch.service"), 0);
  if (fs::exists("/run/systemd/system")) {
    EXPECT_TRUE(eventually(std::chrono::seconds(20), [] {
      return sh("systemctl is-active --quiet synwatch") == 0;
    })) << sh_out("systemctl status synwatch; journalctl -u synwatch -n 50 --no-pager");
    EXPECT_EQ(sh("systemctl reload synwatch"), 0);
    EXPECT_TRUE(eventually(std::chrono::seconds(10),
                           [] { return sh("systemctl is-active --quiet synwatch") == 0; }));
  }
  if (!was_installed) {
    const auto purged = run_process({"dpkg", "--purge", "synwatch"});
    EXPECT_EQ(purged.exit_code, 0) << purged.out << purged.err;
    EXPECT_FALSE(fs::exists("/usr/sbin/synwatchd"));
    EXPECT_FALSE(fs::exists("/etc/synwatch/synwatch.yaml"));
  }
}

}  // namespace
}  // namespace synwatch::testing
