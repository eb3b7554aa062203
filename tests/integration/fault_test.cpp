// The fault suite: hostile and damaged input, full disks and signal storms against the real
// synwatchd. Each case says what it proves. Root-only cases (a tmpfs) skip elsewhere, saying why.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "../unit/export/webhook_test_server.hpp"
#include "background.hpp"
#include "run_process.hpp"

namespace synwatch::testing {
namespace {

using namespace std::chrono_literals;

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string gzip_bytes(std::string_view bytes) {
  uLongf size = compressBound(static_cast<uLong>(bytes.size())) + 32;
  std::string out(size, '\0');
  z_stream stream{};
  deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// Every line of `out` must be a JSON object: a damaged input may cut the analysis short, never
// an event in half.
void expect_whole_json_lines(const std::string& out) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    EXPECT_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded()) << line;
  }
}

class Fault : public ::testing::Test {
 protected:
  std::filesystem::path generate(const std::string& scenario, std::vector<std::string> extra = {}) {
    auto file = dir_.path() / (scenario + ".pcap");
    std::vector<std::string> argv = {SYNWATCH_GEN, scenario, "--out", file.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const auto r = run_process(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return file;
  }
  TempDir dir_;
};

// ---- damaged captures -------------------------------------------------------------------------

// Proves: whatever is wrong with a capture, --read ends with the documented code (65 damaged
// part-way, 66 not a capture), names the file in its message, never crashes, and prints only
// whole events (complete started ... ended pairs up to the damage).
TEST_F(Fault, EveryDamagedCaptureGetsItsExitCodeAndAMessageNamingIt) {
  const auto good = slurp(generate("spoofed-flood", {"--duration", "2"}));
  ASSERT_GT(good.size(), 100'000u);
  auto with = [&](std::size_t offset, std::string_view bytes) {
    std::string damaged = good;
    damaged.replace(offset, bytes.size(), bytes);
    return damaged;
  };
  // pcap: 24-byte file header, then 16-byte record headers (ts_sec, ts_frac, caplen, len).
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"only-magic", good.substr(0, 4)},
      {"cut-in-file-header", good.substr(0, 20)},
      {"cut-in-first-record-header", good.substr(0, 30)},
      {"cut-mid-record", good.substr(0, good.size() / 2 + 7)},
      {"bad-magic", with(0, "\x01\x02\x03\x04")},
      {"huge-caplen", with(24 + 8, std::string("\xff\xff\xff\x7f", 4))},
      {"unknown-link-type", with(20, std::string("\x39\x30\x00\x00", 4))},
      {"garbage", std::string(4096, '\xa5')},
      {"text", "this is not a capture\n"},
      {"gzip-cut", gzip_bytes(good).substr(0, 5000)},
      {"gzip-of-garbage", gzip_bytes(std::string(8192, '\x17'))},
      {"gzip-header-only", gzip_bytes(good).substr(0, 10)},
      {"pcapng-bad-block-length",
       std::string("\x0a\x0d\x0d\x0a\xff\xff\xff\x7f\x4d\x3c\x2b\x1a\x01\x00\x00\x00", 16)},
  };
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    const auto file = dir_.path() / ("damaged-" + name + ".pcap");
    spit(file, bytes);
    const auto r = run_process({SYNWATCHD, "--read", file.string()});
    EXPECT_TRUE(r.exit_code == 65 || r.exit_code == 66) << r.exit_code << "\n" << r.err;
    EXPECT_NE(r.err.find(file.string()), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
    expect_whole_json_lines(r.out);
  }
  const auto directory = run_process({SYNWATCHD, "--read", dir_.path().string()});
  EXPECT_EQ(directory.exit_code, 66) << directory.err;
  const auto missing = run_process({SYNWATCHD, "--read", (dir_.path() / "nope.pcap").string()});
  EXPECT_EQ(missing.exit_code, 66) << missing.err;
}

// ---- damaged configurations -------------------------------------------------------------------

// Proves: every damaged or hostile configuration is refused with 78 and a line per problem that
// names the file (and line:column where there is one), quickly and without a crash, including
// a file without end (/dev/zero), deep nesting and an alias bomb.
TEST_F(Fault, EveryDamagedConfigIsRefusedWith78AndItsPlace) {
  std::string deep(100'000, '[');
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char level = 'b'; level <= 'j'; ++level) {
    const char below = static_cast<char>(level - 1);
    bomb += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + below;
    bomb += "]\n";
  }
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"binary", std::string("\x00\x01\x02\xff\xfe", 5) + '\0' + "detection"},
      {"nul-in-value", std::string("detection:\n  half_open: 1") + '\0' + "2\n"},
      {"tabs", "detection:\n\thalf_open: 10\n"},
      {"unclosed", "detection: {half_open: 10\n"},
      {"deep-nesting", deep},
      {"alias-bomb-unknown", bomb},
      {"alias-bomb-in-a-list", bomb + "protected: *j\n"},
      {"wrong-types", "detection: [1, 2]\ncapture: 7\nprotected: {a: b}\n"},
      {"huge-number", "detection:\n  half_open: 99999999999999999999999999999\n"},
      {"negative", "flow:\n  capacity: -5\n"},
      {"duration-garbage", "detection:\n  tick: 5 fortnights\n"},
      {"bad-filter", "capture:\n  filter: \"tcp[999999999:4] = 1 and and\"\n"},
      {"header-injection",
       "alerts:\n  webhooks:\n    - name: a\n      url: http://127.0.0.1:9/\n      headers: "
       "{X-A: \"b\\r\\nX-B: c\"}\n"},
      {"url-with-credentials",
       "alerts:\n  webhooks:\n    - name: a\n      url: http://u:p@127.0.0.1:9/\n"},
      {"webhook-name-traversal",
       "alerts:\n  webhooks:\n    - name: ../../etc\n      url: http://127.0.0.1:9/\n"},
      {"too-large", "# " + std::string(2 << 20, 'x') + "\n"},
  };
  for (const auto& [name, text] : cases) {
    SCOPED_TRACE(name);
    const auto file = dir_.path() / (name + ".yaml");
    spit(file, text);
    const auto start = std::chrono::steady_clock::now();
    const auto r = run_process({SYNWATCHD, "--check-config", "--config", file.string()});
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
    EXPECT_EQ(r.exit_code, 78) << r.err;
    std::istringstream lines(r.err);
    std::size_t problems = 0;
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("synwatchd: configuration is invalid")) continue;
      EXPECT_TRUE(line.starts_with(file.string() + ":")) << line;
      ++problems;
    }
    EXPECT_GE(problems, 1u) << r.err;
    EXPECT_LT(problems, 100u) << "one line per problem, not per alias expansion";
  }
  const auto zero = run_process({SYNWATCHD, "--check-config", "--config", "/dev/zero"});
  EXPECT_EQ(zero.exit_code, 78) << zero.err;
  EXPECT_NE(zero.err.find("/dev/zero: larger than"), std::string::npos) << zero.err;
}

// Proves: TLS files for /metrics that could not serve (missing, not PEM, a key that is not the
// certificate's, one of the two alone) are configuration errors, exit 78, each a
// file:line:column line naming the file, before anything starts.
TEST_F(Fault, MetricsTlsFilesThatCannotServeAreRefusedWith78NamingTheFile) {
  if (std::system("command -v openssl >/dev/null") != 0) {
    GTEST_SKIP() << "needs the openssl command (package openssl)";
  }
  for (const char* name : {"a", "b"}) {
    const std::string base = (dir_.path() / name).string();
    std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=127.0.0.1 -keyout ";
    command += base + ".key -out ";
    command += base + ".crt >/dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0);
  }
  spit(dir_.path() / "garbage.crt", "not a certificate\n");
  const auto crt = [&](const std::string& name) { return (dir_.path() / name).string(); };
  struct Case {
    std::string name, cert, key, expected;
  };
  const std::vector<Case> cases = {
      {"missing-cert", "/nonexistent/m.crt", crt("a.key"),
       "metrics.tls_cert_file: cannot read TLS certificate file '/nonexistent/m.crt'"},
      {"garbage-cert", crt("garbage.crt"), crt("a.key"),
       "metrics.tls_cert_file: TLS certificate file '" + crt("garbage.crt") +
           "' holds no PEM certificate"},
      {"cert-as-key", crt("a.crt"), crt("a.crt"),
       "metrics.tls_key_file: TLS key file '" + crt("a.crt") + "' holds no unencrypted PEM"},
      {"mismatched", crt("a.crt"), crt("b.key"),
       "metrics.tls_key_file: TLS key file '" + crt("b.key") +
           "' is not the key of the certificate in '" + crt("a.crt") + "'"},
      {"key-alone", "", crt("a.key"), "metrics.tls_key_file: needs metrics.tls_cert_file"},
      // Never opened: opening a device can have effects.
      {"device", "/dev/null", crt("a.key"),
       "metrics.tls_cert_file: cannot read TLS certificate file '/dev/null': not a regular file"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto file = dir_.path() / (c.name + ".yaml");
    spit(file,
         "metrics:\n  tls_cert_file: \"" + c.cert + "\"\n  tls_key_file: \"" + c.key + "\"\n");
    const auto r = run_process({SYNWATCHD, "--check-config", "--config", file.string()});
    EXPECT_EQ(r.exit_code, 78) << r.err;
    EXPECT_TRUE(std::regex_search(r.err, std::regex("(^|\n)" + file.string() + ":[0-9]+:[0-9]+: ")))
        << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.err;
  }
  const auto good = dir_.path() / "good.yaml";
  spit(good,
       "metrics:\n  tls_cert_file: " + crt("a.crt") + "\n  tls_key_file: " + crt("a.key") + "\n");
  const auto ok = run_process({SYNWATCHD, "--check-config", "--config", good.string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// Proves: --check-config without --config checks the file the service runs with (the unit's
// --config), not the built-in defaults that need no check: whatever state this machine's
// /etc/synwatch is in, the answer names that file.
TEST_F(Fault, CheckConfigWithoutConfigChecksTheInstalledFile) {
  const auto r = run_process({SYNWATCHD, "--check-config"});
  EXPECT_NE(r.err.find("/etc/synwatch/synwatch.yaml"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("built-in defaults"), std::string::npos) << r.err;
  if (std::filesystem::exists("/etc/synwatch/synwatch.yaml")) {
    EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 78) << r.exit_code;
  } else {
    EXPECT_EQ(r.exit_code, 78) << r.err;
    EXPECT_NE(r.err.find("/etc/synwatch/synwatch.yaml: cannot read"), std::string::npos) << r.err;
  }
}

// ---- the webhook spool ------------------------------------------------------------------------

// Proves: a spool holding damaged or hostile entries (a numeric event_id crashed every start
// before) neither stops synwatchd nor gets sent; the good entries and the new events are
// delivered, and the bad files are gone afterwards.
TEST_F(Fault, HostileSpoolEntriesAreRemovedAndEverythingElseDelivered) {
  TestHttpServer receiver;
  ASSERT_TRUE(receiver.ok());
  const auto capture = generate("spoofed-flood", {"--duration", "2"});
  const auto spool = dir_.path() / "state" / "webhooks" / "r";
  std::filesystem::create_directories(spool);
  const std::vector<std::string> hostile = {
      R"({"event":"started","event_id":12345})",
      R"({"event":"started","event_id":"a\r\nX-Injected: 1"})",
      R"({"event":"started","event_id":"x","incident_id":7})",
      R"({"event":["started"],"event_id":"y"})",
      std::string(100'000, '{'),
      "",
      std::string("\x00\x01\x02", 3),
  };
  for (std::size_t i = 0; i < hostile.size(); ++i) {
    char name[32];
    (void)std::snprintf(name, sizeof name, "%020zu.json", i);
    spit(spool / name, hostile[i]);
  }
  spit(spool / "00000000000000000099.json.tmp", "{half written");
  const auto config = dir_.path() / "webhooks.yaml";
  std::ofstream(config) << "state_dir: " << (dir_.path() / "state").string()
                        << "\nalerts:\n  webhooks:\n    - name: r\n      url: " << receiver.url()
                        << "\n      format: slack\n";
  const auto r = run_process({SYNWATCHD, "--read", capture.string(), "--config", config.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("spool entry 0 removed"), std::string::npos) << r.err;
  const auto requests = receiver.requests();
  ASSERT_GE(requests.size(), 2u) << "the run's own started and ended";
  for (const auto& request : requests) {
    EXPECT_EQ(request.headers.count("x-injected"), 0u);
    EXPECT_NE(request.header("x-synwatch-event-id"), "y");
  }
  EXPECT_TRUE(std::filesystem::is_empty(spool));
}

// ---- full disks -------------------------------------------------------------------------------

// Proves: events that cannot be written (/dev/full: every write fails with ENOSPC) make --read
// fail with 74 and say how many were lost, instead of exiting 0 with nothing written.
TEST_F(Fault, ReadIntoAFullDiskSaysSoAndExits74) {
  const auto capture = generate("spoofed-flood", {"--duration", "2"});
  const auto r = run_process(
      {"sh", "-c",
       shell_quote(SYNWATCHD) + " --read " + shell_quote(capture.string()) + " >/dev/full"});
  EXPECT_EQ(r.exit_code, 74) << r.err;
  EXPECT_NE(r.err.find("events could not be written to standard output: No space left on device"),
            std::string::npos)
      << r.err;
}

// Proves: on a real small file system that fills up part-way through the output, what was
// written is whole JSON lines and the exit status says events were lost.
TEST_F(Fault, ReadIntoATmpfsThatFillsUpLeavesWholeLines) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
  const auto capture = generate("flood-beside-legit", {"--duration", "6"});
  const auto all =
      run_process({SYNWATCHD, "--read", capture.string(), "--set", "detection.update_interval=1s"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  ASSERT_GT(all.out.size(), 8192u);
  const auto mount_point = dir_.path() / "small";
  std::filesystem::create_directory(mount_point);
  // tmpfs rounds to pages: one 4 KiB page holds part of the output.
  if (::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=4k") != 0) {
    GTEST_SKIP() << "cannot mount tmpfs here: " << std::strerror(errno);
  }
  const auto out = mount_point / "events.jsonl";
  const auto r =
      run_process({"sh", "-c",
                   shell_quote(SYNWATCHD) + " --read " + shell_quote(capture.string()) +
                       " --set detection.update_interval=1s >" + shell_quote(out.string())});
  const std::string written = slurp(out);
  ::umount2(mount_point.c_str(), MNT_DETACH);
  EXPECT_EQ(r.exit_code, 74) << r.err;
  EXPECT_LT(written.size(), all.out.size());
  // stdio writes in blocks: the file is a prefix of the full output, cut at a line end or not,
  // and the loss is reported; what matters is that nothing claims success.
  EXPECT_TRUE(all.out.starts_with(written));
}

// ---- signals ----------------------------------------------------------------------------------

class FaultLive : public Fault {
 protected:
  void SetUp() override {
    std::filesystem::permissions(dir_.path(), std::filesystem::perms::all);
    config_ = dir_.path() / "synwatch.yaml";
  }
  // Kernel-only mode: no capture privilege needed, so this runs as any user.
  std::string config_text(int half_open) const {
    return "capture:\n  enabled: false\nkernel:\n  interval: 100ms\nmetrics:\n  enabled: "
           "false\nstate_dir: " +
           (dir_.path() / "state").string() +
           "\nstatus:\n  socket: " + (dir_.path() / "status.sock").string() +
           "\ndetection:\n  half_open: " + std::to_string(half_open) +
           "\nlog:\n  level: info\nuser: nobody\n";
  }
  void start() {
    daemon_ = std::make_unique<Background>(
        std::vector<std::string>{"env", "-u", "JOURNAL_STREAM", SYNWATCHD, "--config",
                                 config_.string()},
        dir_.path() / "daemon.out", dir_.path() / "daemon.err");
    ASSERT_TRUE(eventually(10s, [&] { return log().find("watching") != std::string::npos; }))
        << log();
  }
  std::string log() const { return slurp(dir_.path() / "daemon.err"); }
  std::filesystem::path config_;
  std::unique_ptr<Background> daemon_;
};

// Proves: a storm of SIGHUPs over configurations that are broken in every way (syntax, values,
// a symlink to /dev/zero, a vanished file) keeps the daemon up and responsive; it ends on the
// last good configuration and still stops within 5 s.
TEST_F(FaultLive, SighupStormOverBrokenConfigsEndsOnTheLastGoodOne) {
  spit(config_, config_text(1000));
  start();
  const std::vector<std::string> broken = {
      "detection:\n  half_open: [oops\n",
      "detection:\n  half_open: -1\n",
      "capture:\n  filter: \"tcp and and\"\n",
      std::string("\x00\xff\x00", 3),
  };
  for (int round = 0; round < 60; ++round) {
    std::filesystem::remove(config_);
    switch (round % 6) {
      case 0:
        std::filesystem::create_symlink("/dev/zero", config_);
        break;
      case 1:
        break;  // no file at all
      case 2:
        spit(config_, config_text(2000 + round));
        break;
      default:
        spit(config_, broken[static_cast<std::size_t>(round) % broken.size()]);
    }
    daemon_->signal(SIGHUP);
    std::this_thread::sleep_for(15ms);
    ASSERT_TRUE(daemon_->running()) << log();
  }
  std::filesystem::remove(config_);
  spit(config_, config_text(4321));
  daemon_->signal(SIGHUP);
  ASSERT_TRUE(eventually(10s, [&] {
    return log().find("reload complete: half-open threshold 4321") != std::string::npos;
  })) << log();
  EXPECT_NE(log().find("larger than 1024 KiB"), std::string::npos) << log();
  EXPECT_NE(log().find("invalid BPF filter"), std::string::npos) << log();
  const auto before = std::chrono::steady_clock::now();
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(5s), 0) << log();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
}

// Proves: a configured user that does not exist stops the start with 78 and the command that
// creates it, instead of falling back to a shared account (nobody).
TEST_F(FaultLive, AMissingUserIsAConfigErrorNotAFallbackToNobody) {
  if (::geteuid() != 0) GTEST_SKIP() << "the user is switched to only when started as root";
  std::string text = config_text(1000);
  text = std::regex_replace(text, std::regex("user: nobody"), "user: synwatch-no-such-user");
  spit(config_, text);
  const auto r =
      run_process({"env", "-u", "JOURNAL_STREAM", SYNWATCHD, "--config", config_.string()});
  EXPECT_EQ(r.exit_code, 78) << r.err;
  EXPECT_NE(r.err.find("user 'synwatch-no-such-user' (config key user) does not exist; create it "
                       "with `useradd --system"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace synwatch::testing
