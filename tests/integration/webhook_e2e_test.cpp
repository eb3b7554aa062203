// Webhooks end to end: the real synwatchd --read on generated captures posting to real receivers
// on 127.0.0.1 (an in-test HTTP server, a Python TLS server, a real Alertmanager).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>
#include <mutex>
#include <cstring>
#include <condition_variable>

#include "../unit/export/webhook_test_server.hpp"
#include "background.hpp"
#include "run_process.hpp"

namespace synwatch::testing {
namespace {

using namespace std::chrono_literals;

bool have_program(const std::string& name) {
  return run_process({"sh", "-c", "command -v " + shell_quote(name) + " >/dev/null"}).exit_code ==
         0;
}

std::size_t files_in(const std::filesystem::path& directory) {
  std::error_code error;
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    if (entry.path().extension() == ".json") ++n;
  }
  return n;
}

class WebhookE2E : public ::testing::Test {
 protected:
  std::filesystem::path generate(const std::string& scenario) {
    auto file = dir_.path() / (scenario + ".pcap");
    const auto r = run_process({SYNWATCH_GEN, scenario, "--out", file.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return file;
  }
  std::filesystem::path write_config(const std::string& name, const std::string& webhooks_yaml) {
    auto path = dir_.path() / name;
    std::ofstream(path) << "state_dir: " << (dir_.path() / "state").string() << "\n"
                        << "alerts:\n  webhooks:\n"
                        << webhooks_yaml;
    return path;
  }
  std::filesystem::path write_secret(const std::string& name, const std::string& secret,
                                     mode_t mode) {
    auto path = dir_.path() / name;
    std::ofstream(path) << secret << "\n";
    ::chmod(path.c_str(), mode);
    return path;
  }
  static ProcessResult read_with(const std::filesystem::path& capture,
                                 const std::filesystem::path& config) {
    return run_process({SYNWATCHD, "--read", capture.string(), "--config", config.string()});
  }
  // The signature the way a receiver in any language computes it: openssl on the command line.
  std::string openssl_hmac(const std::string& secret, const std::string& timestamp,
                           const std::string& body) {
    const auto message = dir_.path() / "message";
    std::ofstream(message, std::ios::binary) << timestamp << "." << body;
    const auto r =
        run_process({"openssl", "dgst", "-sha256", "-hmac", secret, "-r", message.string()});
    return r.out.substr(0, r.out.find(' '));
  }

  TempDir dir_;
};

std::vector<std::string> ids_of(const std::vector<HttpRequest>& requests) {
  std::vector<std::string> ids;
  ids.reserve(requests.size());
  for (const auto& r : requests) ids.push_back(nlohmann::json::parse(r.body).at("event_id"));
  return ids;
}

TEST_F(WebhookE2E, ReadPostsEveryEventSignedAndUnchangedBeforeExiting) {
  if (!have_program("openssl")) GTEST_SKIP() << "openssl command not installed";
  TestHttpServer server;
  ASSERT_TRUE(server.ok());
  const auto secret = write_secret("secret", "e2e-secret", 0600);
  const auto config =
      write_config("c.yaml", "    - name: hook\n      url: " + server.url("/synwatch") +
                                 "\n      secret_file: " + secret.string() + "\n");
  const auto r = read_with(generate("spoofed-flood"), config);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = parse_json_lines(r.out);
  ASSERT_EQ(lines.size(), 3u);
  const auto requests = server.requests();  // --read waited for delivery: all there already
  ASSERT_EQ(requests.size(), lines.size()) << r.err;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(nlohmann::json::parse(requests[i].body), lines[i]);
    const std::string timestamp = requests[i].header("x-synwatch-timestamp");
    EXPECT_LE(std::llabs(std::stoll(timestamp) - static_cast<long long>(std::time(nullptr))), 60);
    EXPECT_EQ(requests[i].header("x-synwatch-signature"),
              "sha256=" + openssl_hmac("e2e-secret", timestamp, requests[i].body));
  }
  EXPECT_NE(r.err.find("webhooks: 3 delivered, 0 given up or dropped"), std::string::npos) << r.err;
}

TEST_F(WebhookE2E, SpooledEventsSurviveSigkillWhileTheReceiverIsDown) {
  const auto flood = generate("spoofed-flood");
  const auto quiet = generate("legit-burst");
  const auto expected = parse_json_lines(run_process({SYNWATCHD, "--read", flood.string()}).out);
  ASSERT_EQ(expected.size(), 3u);
  const std::uint16_t port = unused_port();
  const auto config = write_config(
      "c.yaml", "    - name: down\n      url: http://127.0.0.1:" + std::to_string(port) +
                    "/\n      backoff: 100ms\n      max_backoff: 200ms\n      max_retries: 1000\n");
  const auto spool = dir_.path() / "state" / "webhooks" / "down";
  {
    Background daemon({SYNWATCHD, "--read", flood.string(), "--config", config.string()},
                      dir_.path() / "first.out");
    ASSERT_TRUE(eventually(30s, [&] { return files_in(spool) == 3; })) << daemon.errors();
    EXPECT_TRUE(daemon.running()) << "--read must wait for delivery";
    daemon.kill();  // SIGKILL: no chance to clean up
  }
  TestHttpServer server({}, port);
  ASSERT_TRUE(server.ok()) << "port " << port << " was taken meanwhile";
  const auto r = read_with(quiet, config);  // no incident of its own: only the spool is sent
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> want;
  want.reserve(expected.size());
  for (const auto& e : expected) want.push_back(e.at("event_id"));
  EXPECT_EQ(ids_of(server.accepted()), want);
  EXPECT_EQ(files_in(spool), 0u);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(nlohmann::json::parse(server.accepted()[i].body), expected[i]);
  }
}

// Feeds a pcap file into a pipe: the records before `split_after` (seconds after the first
// record), then waits until released, then the rest; so that a --read lasts as long as a test
// needs in wall-clock time.
class PausedCapture {
 public:
  PausedCapture(const std::filesystem::path& file, double split_after) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    const auto u32 = [&](std::size_t at) {
      std::uint32_t v = 0;
      std::memcpy(&v, bytes.data() + at, 4);
      return v;
    };
    const bool nanos = u32(0) == 0xa1b23c4d;
    std::size_t at = 24;
    double first = -1;
    while (at + 16 <= bytes.size()) {
      const double t = u32(at) + u32(at + 4) / (nanos ? 1e9 : 1e6);
      if (first < 0) first = t;
      if (t - first >= split_after) break;
      at += 16 + u32(at + 8);
    }
    if (::pipe2(fds_, O_CLOEXEC) != 0) return;
    writer_ = std::thread([this, bytes, at] {
      write_all(std::string_view(bytes).substr(0, at));
      std::unique_lock lock(mutex_);
      released_cv_.wait(lock, [&] { return released_; });
      lock.unlock();
      write_all(std::string_view(bytes).substr(at));
      ::close(fds_[1]);
    });
  }
  ~PausedCapture() {
    release();
    if (writer_.joinable()) writer_.join();
    ::close(fds_[0]);
  }
  PausedCapture(const PausedCapture&) = delete;
  PausedCapture& operator=(const PausedCapture&) = delete;
  // Another process opens the pipe through this one's descriptor (the fds are close-on-exec).
  [[nodiscard]] std::string path() const {
    return "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(fds_[0]);
  }
  [[nodiscard]] int read_end() const { return fds_[0]; }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    released_cv_.notify_all();
  }

 private:
  void write_all(std::string_view data) const {
    while (!data.empty()) {
      const ssize_t n = ::write(fds_[1], data.data(), data.size());
      if (n <= 0) return;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  int fds_[2] = {-1, -1};
  std::thread writer_;
  std::mutex mutex_;
  std::condition_variable released_cv_;
  bool released_ = false;
};

// The alert stays firing through a flood that outlasts Alertmanager's resolve_timeout (the
// re-sends keep endsAt ahead), resolves when the incident ends, and the README's routing and
// inhibit examples apply to it (same alert name and labels as the shipped Prometheus rule).
TEST_F(WebhookE2E, AlertmanagerKeepsTheAlertFiringThroughTheFloodAndResolvesItAtTheEnd) {
  if (!have_program("prometheus-alertmanager") || !have_program("python3")) {
    GTEST_SKIP() << "prometheus-alertmanager or python3 not installed";
  }
  const auto am_config = dir_.path() / "alertmanager.yml";
  std::ofstream(am_config)
      << "global:\n  resolve_timeout: 2s\n"
         "route:\n  receiver: blackhole\n  routes:\n"
         "    - matchers: [alertname=\"SynFloodActive\", severity=\"critical\"]\n"
         "      receiver: pager\n"
         "receivers:\n  - name: blackhole\n  - name: pager\n"
         "inhibit_rules:\n"
         "  - source_matchers: [alertname=\"SynFloodActive\"]\n"
         "    target_matchers: [alertname=\"HalfOpenHigh\"]\n"
         "    equal: [instance, address, port]\n";
  const std::uint16_t port = unused_port();
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  Background alertmanager(
      {"prometheus-alertmanager", "--config.file=" + am_config.string(),
       "--storage.path=" + (dir_.path() / "am-data").string(),
       "--web.listen-address=127.0.0.1:" + std::to_string(port), "--cluster.listen-address="},
      dir_.path() / "am.out");
  const auto http = [&](const std::string& path, const std::string& post_body = "") {
    return run_process({"python3", "-c",
                        "import sys,urllib.request\n"
                        "data=sys.argv[2].encode() if sys.argv[2] else None\n"
                        "r=urllib.request.Request(sys.argv[1],data=data,headers={'Content-Type':'"
                        "application/json'})\n"
                        "print(urllib.request.urlopen(r,timeout=5).read().decode())",
                        base + path, post_body});
  };
  ASSERT_TRUE(eventually(20s, [&] { return http("/-/ready").exit_code == 0; }))
      << alertmanager.errors();
  const auto alerts_named = [&](const std::string& name) {
    const auto r = http("/api/v2/alerts");
    nlohmann::json found = nlohmann::json::array();
    if (r.exit_code != 0) return found;
    for (const auto& alert : nlohmann::json::parse(r.out)) {
      if (alert["labels"].value("alertname", "") == name) found.push_back(alert);
    }
    return found;
  };
  const auto firing = [&] {
    const auto alerts = alerts_named("SynFloodActive");
    return alerts.size() == 1 && alerts[0]["status"]["state"] == "active";
  };

  const auto flood = generate("spoofed-flood");
  const auto config = write_config("am.yaml", "    - name: am\n      url: " + base +
                                                  "\n      format: alertmanager\n"
                                                  "      resend_interval: 1s\n");
  PausedCapture capture(flood, 2.5);  // the flood has begun, the incident has started
  Background reader({SYNWATCHD, "--read", capture.path(), "--config", config.string()},
                    dir_.path() / "read.out");
  ASSERT_TRUE(eventually(10s, firing)) << alerts_named("SynFloodActive").dump() << reader.errors();
  const auto alert = alerts_named("SynFloodActive")[0];
  EXPECT_EQ(alert["labels"]["address"], "198.51.100.10");
  EXPECT_EQ(alert["labels"]["port"], "80");
  EXPECT_EQ(alert["labels"]["kind"], "spoofed_random");
  EXPECT_EQ(alert["labels"]["severity"], "critical");
  const std::string instance = alert["labels"].value("instance", "");
  EXPECT_FALSE(instance.empty());
  EXPECT_EQ(alert["receivers"][0]["name"], "pager") << alert.dump();
  EXPECT_FALSE(alert["annotations"].value("description", "").empty());
  EXPECT_FALSE(alert["annotations"].value("top_sources", "").empty());

  // The shipped Prometheus rule HalfOpenHigh for the same destination is inhibited by it.
  const nlohmann::json half_open_high = nlohmann::json::array({{{"labels",
                                                                 {{"alertname", "HalfOpenHigh"},
                                                                  {"severity", "warning"},
                                                                  {"instance", instance},
                                                                  {"address", "198.51.100.10"},
                                                                  {"port", "80"}}}}});
  ASSERT_EQ(http("/api/v2/alerts", half_open_high.dump()).exit_code, 0);
  EXPECT_TRUE(eventually(5s, [&] {
    const auto inhibited = alerts_named("HalfOpenHigh");
    return inhibited.size() == 1 && inhibited[0]["status"]["state"] == "suppressed";
  })) << alerts_named("HalfOpenHigh").dump();

  // Three times resolve_timeout, and past the 4 s endsAt of a single send: still firing.
  for (int second = 0; second < 6; ++second) {
    std::this_thread::sleep_for(1s);
    ASSERT_TRUE(firing()) << "resolved while the flood goes on, after " << second + 1 << " s\n"
                          << alerts_named("SynFloodActive").dump();
  }
  capture.release();
  EXPECT_EQ(reader.wait_exit(30s), 0) << reader.errors();
  EXPECT_TRUE(eventually(10s,
                         [&] {
                           const auto alerts = alerts_named("SynFloodActive");
                           return alerts.empty() || alerts[0]["status"]["state"] != "active";
                         }))
      << "still active after ended: " << alerts_named("SynFloodActive").dump();
}

TEST_F(WebhookE2E, HttpsWithSelfSignedCertificateIsRefusedByDefaultAndAcceptedWithCaFile) {
  if (!have_program("openssl") || !have_program("python3")) {
    GTEST_SKIP() << "openssl or python3 not installed";
  }
  const auto key = dir_.path() / "key.pem";
  const auto cert = dir_.path() / "cert.pem";
  const auto made =
      run_process({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                   key.string(), "-out", cert.string(), "-days", "1", "-subj", "/CN=127.0.0.1",
                   "-addext", "subjectAltName=IP:127.0.0.1"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const auto script = dir_.path() / "tls_server.py";
  const auto received = dir_.path() / "received";
  std::ofstream(script) << R"(import http.server, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[3], "ab") as f:
            f.write(body + b"\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
)";
  Background tls({"python3", script.string(), cert.string(), key.string(), received.string()},
                 dir_.path() / "tls.out");
  ASSERT_TRUE(eventually(10s, [&] { return tls.output().find('\n') != std::string::npos; }))
      << tls.errors();
  const std::string url = "https://127.0.0.1:" + std::to_string(std::stoi(tls.output()));
  const auto flood = generate("spoofed-flood");
  const auto lines = [&] {
    return parse_json_lines(std::filesystem::exists(received) ? [&] {
                             std::ifstream in(received);
                             std::stringstream s;
                             s << in.rdbuf();
                             return s.str();
                           }() : std::string());
  };

  const auto refused =
      write_config("refused.yaml", "    - name: tls-default\n      url: " + url +
                                       "/\n      max_retries: 1\n      backoff: 10ms\n");
  auto r = read_with(flood, refused);
  EXPECT_EQ(r.exit_code, 75) << r.err;  // EX_TEMPFAIL: events given up
  EXPECT_NE(r.err.find("tls"), std::string::npos) << r.err;
  EXPECT_TRUE(lines().empty());

  const auto trusted =
      write_config("trusted.yaml", "    - name: tls-ca\n      url: " + url +
                                       "/\n      ca_file: " + cert.string() + "\n");
  r = read_with(flood, trusted);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(lines().size(), 3u);
  EXPECT_EQ(lines()[0].at("event"), "started");
}

TEST_F(WebhookE2E, BadSecretFilesAndUrlsAreReportedAtCheckConfigAndAtStart) {
  const auto loose = write_secret("loose.secret", "x", 0644);
  const auto config = write_config(
      "bad.yaml", "    - name: missing\n      url: http://127.0.0.1:1/\n      secret_file: " +
                      (dir_.path() / "absent.secret").string() +
                      "\n    - name: loose\n      url: http://127.0.0.1:1/\n      secret_file: " +
                      loose.string() + "\n    - name: typo\n      url: htps://example.com/\n");
  const std::string file = config.string();
  const auto check = run_process({SYNWATCHD, "--check-config", "--config", file});
  EXPECT_EQ(check.exit_code, 78);
  EXPECT_NE(check.err.find(file + ":6:20: alerts.webhooks[1].secret_file: cannot use secret file"),
            std::string::npos)
      << check.err;
  EXPECT_NE(check.err.find("No such file or directory"), std::string::npos) << check.err;
  EXPECT_NE(
      check.err.find(file + ":9:20: alerts.webhooks[2].secret_file: secret file '" +
                     loose.string() + "' is readable or writable by group or others (mode 0644)"),
      std::string::npos)
      << check.err;
  EXPECT_NE(
      check.err.find(file + ":11:12: alerts.webhooks[3].url: malformed URL 'htps://example.com/'"),
      std::string::npos)
      << check.err;
  EXPECT_NE(check.err.find("(3 problems)"), std::string::npos) << check.err;

  const auto start = read_with(generate("legit-burst"), config);
  EXPECT_EQ(start.exit_code, 78);
  EXPECT_EQ(start.err, check.err);

  ::chmod(loose.c_str(), 0600);
  const auto fixed = write_config(
      "fixed.yaml", "    - name: loose\n      url: http://127.0.0.1:1/\n      secret_file: " +
                        loose.string() + "\n");
  EXPECT_EQ(run_process({SYNWATCHD, "--check-config", "--config", fixed.string()}).exit_code, 0);
}

}  // namespace
}  // namespace synwatch::testing
