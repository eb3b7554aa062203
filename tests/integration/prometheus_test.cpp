// The shipped Prometheus rules and Grafana dashboard, and the live /metrics endpoint, checked by
// the real Prometheus tools: promtool (check rules, test rules, check metrics) and a Prometheus
// server scraping synwatchd during floods in the network-namespace test bed. Tests skip, saying
// why, without promtool/prometheus or without root and network namespaces.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <regex>
#include <set>

#include "testbed.hpp"

namespace synwatch::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path kSource = SYNWATCH_SOURCE_DIR;
const fs::path kRulesDir = kSource / "config" / "prometheus";
const fs::path kDashboard = kSource / "config" / "grafana" / "synwatch-dashboard.json";

// Every family of the metric contract (README "Prometheus"); rules and dashboard may use no other.
const std::set<std::string> kContractFamilies = {
    "synwatch_half_open_connections",
    "synwatch_handshake_events_total",
    "synwatch_distinct_sources",
    "synwatch_source_entropy",
    "synwatch_completion_ratio",
    "synwatch_syn_rate",
    "synwatch_stale_half_open",
    "synwatch_stale_baseline",
    "synwatch_attack_active",
    "synwatch_incidents_started_total",
    "synwatch_incidents_open",
    "synwatch_capture_packets_total",
    "synwatch_capture_dropped_packets_total",
    "synwatch_capture_interface_up",
    "synwatch_capture_worker_packets_total",
    "synwatch_capture_lag_seconds",
    "synwatch_decode_errors_total",
    "synwatch_packets_processed_total",
    "synwatch_handshake_table_entries",
    "synwatch_handshake_table_capacity",
    "synwatch_handshake_table_evictions_total",
    "synwatch_destinations_tracked",
    "synwatch_destinations_dropped_total",
    "synwatch_destinations_unexported",
    "synwatch_event_outputs_total",
    "synwatch_config_last_reload_successful",
    "synwatch_config_last_reload_success_timestamp_seconds",
    "synwatch_build_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds"};
const std::set<std::string> kPerDestinationFamilies = {
    "synwatch_half_open_connections", "synwatch_handshake_events_total",
    "synwatch_distinct_sources",      "synwatch_source_entropy",
    "synwatch_completion_ratio",      "synwatch_syn_rate",
    "synwatch_stale_half_open",       "synwatch_stale_baseline",
    "synwatch_attack_active"};

bool have(const std::string& tool) {
  return sh("command -v " + tool) == 0;
}

std::vector<fs::path> files_in(const fs::path& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name.size() > suffix.size() && name.ends_with(suffix)) {
      out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> rule_files() {
  std::vector<fs::path> out;
  for (const auto& f : files_in(kRulesDir, ".yml")) {
    if (!f.filename().string().ends_with(".test.yml")) out.push_back(f);
  }
  return out;
}
std::vector<fs::path> rule_test_files() {
  return files_in(kRulesDir / "tests", ".test.yml");
}

// Metric names (not recording rules, which contain ':') used in a PromQL expression.
std::set<std::string> metric_names_in(const std::string& expr) {
  static const std::regex name(R"((?:^|[^a-zA-Z0-9_:])((?:synwatch|process)_[a-z_]+)\b)");
  std::set<std::string> out;
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name); it != std::sregex_iterator();
       ++it) {
    out.insert((*it)[1].str());
  }
  return out;
}

// --- Offline: rules, rule unit tests, dashboard ---------------------------------------------

class PromtoolRules : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("promtool")) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  }
};

TEST_F(PromtoolRules, CheckRulesAcceptsEveryRulesFile) {
  const auto files = rule_files();
  ASSERT_GE(files.size(), 2u) << "expected alerting and fleet rules in " << kRulesDir;
  for (const auto& file : files) {
    const auto r = run_process({"promtool", "check", "rules", file.string()});
    EXPECT_EQ(r.exit_code, 0) << file << "\n" << r.out << r.err;
  }
}

TEST_F(PromtoolRules, RuleUnitTestsPass) {
  const auto tests = rule_test_files();
  ASSERT_FALSE(tests.empty());
  for (const auto& file : tests) {
    // promtool resolves rule_files relative to the working directory.
    const auto r =
        run_process({"/bin/sh", "-c",
                     "cd " + shell_quote(file.parent_path().string()) + " && promtool test rules " +
                         shell_quote(file.filename().string())});
    EXPECT_EQ(r.exit_code, 0) << file << "\n" << r.out << r.err;
  }
}

// The unit tests above must be able to fail: the same flood series with an expectation of silence
// makes promtool fail.
TEST_F(PromtoolRules, RuleUnitTestsDetectAWrongExpectation) {
  TempDir dir;
  std::ofstream(dir.path() / "wrong.test.yml")
      << "rule_files: [" << (kRulesDir / "synwatch-alerts.yml").string() << "]\n"
      << "evaluation_interval: 1m\n"
         "tests:\n"
         "  - interval: 1m\n"
         "    input_series:\n"
         "      - series: "
         "'synwatch_attack_active{instance=\"a\",job=\"synwatch\",address=\"198.51.100.1\","
         "port=\"80\",kind=\"spoofed_random\"}'\n"
         "        values: '1x5'\n"
         "    alert_rule_test:\n"
         "      - {eval_time: 2m, alertname: SynFloodActive, exp_alerts: []}\n";
  const auto r =
      run_process({"promtool", "test", "rules", (dir.path() / "wrong.test.yml").string()});
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("alertname: SynFloodActive"), std::string::npos) << r.out << r.err;
}

struct RuleInventory {
  std::map<std::string, YAML::Node> alerts;  // name -> rule
  std::set<std::string> records;
};

RuleInventory load_rules() {
  RuleInventory inv;
  for (const auto& file : rule_files()) {
    for (const auto& group : YAML::LoadFile(file.string())["groups"]) {
      for (const auto& rule : group["rules"]) {
        if (rule["alert"]) inv.alerts.emplace(rule["alert"].as<std::string>(), YAML::Node(rule));
        if (rule["record"]) inv.records.insert(rule["record"].as<std::string>());
      }
    }
  }
  return inv;
}

TEST(PrometheusRules, EveryAlertHasSeverityAndRunbookAnnotations) {
  const auto inv = load_rules();
  for (const std::string name :
       {"SynFloodActive", "HalfOpenHigh", "CaptureDropping", "SynwatchDown", "SynwatchAbsent",
        "ConfigReloadFailed", "SynFloodDistributedAcrossServers"}) {
    EXPECT_TRUE(inv.alerts.contains(name)) << name << " is not shipped";
  }
  EXPECT_TRUE(inv.records.contains("synwatch:half_open:sum_by_port"));
  for (const auto& [name, rule] : inv.alerts) {
    const auto severity = rule["labels"]["severity"].as<std::string>("");
    EXPECT_TRUE(severity == "critical" || severity == "warning")
        << name << ": severity '" << severity << "'";
    for (const std::string key : {"summary", "description", "runbook"}) {
      EXPECT_FALSE(rule["annotations"][key].as<std::string>("").empty())
          << name << " lacks " << key;
    }
  }
  const auto flood = inv.alerts.at("SynFloodActive");
  EXPECT_EQ(flood["expr"].as<std::string>(), "synwatch_attack_active == 1");
  const auto runbook = flood["annotations"]["runbook"].as<std::string>();
  for (const std::string step : {"ss -tan state syn-recv", "tcp_syncookies", "upstream"}) {
    EXPECT_NE(runbook.find(step), std::string::npos) << "SynFloodActive runbook lacks " << step;
  }
}

// Every alert has a unit test where it fires and one where it must stay silent; every recording
// rule's value is checked by a promql_expr_test.
TEST(PrometheusRules, EveryAlertAndRecordingRuleIsUnitTested) {
  const auto inv = load_rules();
  std::set<std::string> fires, silent, checked_exprs;
  for (const auto& file : rule_test_files()) {
    for (const auto& test : YAML::LoadFile(file.string())["tests"]) {
      for (const auto& t : test["alert_rule_test"]) {
        const auto name = t["alertname"].as<std::string>();
        (t["exp_alerts"] && t["exp_alerts"].size() > 0 ? fires : silent).insert(name);
      }
      for (const auto& t : test["promql_expr_test"]) {
        checked_exprs.insert(t["expr"].as<std::string>());
      }
    }
  }
  for (const auto& [name, rule] : inv.alerts) {
    EXPECT_TRUE(fires.contains(name)) << name << " has no unit test where it fires";
    EXPECT_TRUE(silent.contains(name)) << name << " has no unit test where it stays silent";
  }
  for (const auto& record : inv.records) {
    const bool tested =
        std::any_of(checked_exprs.begin(), checked_exprs.end(),
                    [&](const std::string& e) { return e.find(record) != std::string::npos; });
    EXPECT_TRUE(tested) << record << " has no promql_expr_test";
  }
}

TEST(PrometheusRules, RulesUseOnlyContractMetrics) {
  for (const auto& file : rule_files()) {
    for (const auto& group : YAML::LoadFile(file.string())["groups"]) {
      for (const auto& rule : group["rules"]) {
        for (const auto& name : metric_names_in(rule["expr"].as<std::string>())) {
          EXPECT_TRUE(kContractFamilies.contains(name))
              << file.filename() << ": unknown metric " << name;
        }
      }
    }
  }
}

nlohmann::json load_dashboard() {
  return nlohmann::json::parse(read_file(kDashboard));
}

// (panel title, expr) for every query in the dashboard, annotations included.
std::vector<std::pair<std::string, std::string>> dashboard_queries(const nlohmann::json& dash) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& panel : dash["panels"]) {
    for (const auto& target : panel.value("targets", nlohmann::json::array())) {
      out.emplace_back(panel["title"], target.value("expr", ""));
    }
  }
  for (const auto& a : dash["annotations"]["list"]) {
    if (a.contains("expr")) {
      out.emplace_back("annotation " + a["name"].get<std::string>(), a["expr"]);
    }
  }
  return out;
}

TEST(GrafanaDashboard, IsValidAndShowsDestinationsIncidentsAndCaptureHealth) {
  const auto dash = load_dashboard();
  EXPECT_EQ(dash["uid"], "synwatch");
  std::set<int> ids;
  std::set<std::string> used;
  std::map<std::string, std::string> type_of_metric;  // metric -> a panel type showing it
  for (const auto& panel : dash["panels"]) {
    EXPECT_TRUE(ids.insert(panel["id"].get<int>()).second) << "duplicate panel id " << panel["id"];
    const auto& grid = panel["gridPos"];
    EXPECT_LE(grid["x"].get<int>() + grid["w"].get<int>(), 24) << panel["title"];
    if (panel["type"] == "row") continue;
    ASSERT_FALSE(panel.value("targets", nlohmann::json::array()).empty()) << panel["title"];
    EXPECT_EQ(panel["datasource"]["uid"], "${datasource}") << panel["title"];
    for (const auto& target : panel["targets"]) {
      const std::string expr = target.value("expr", "");
      EXPECT_FALSE(expr.empty()) << panel["title"];
      for (const auto& name : metric_names_in(expr)) {
        used.insert(name);
        type_of_metric.emplace(name, panel["type"]);
      }
    }
  }
  for (const auto& name : used) {
    EXPECT_TRUE(kContractFamilies.contains(name)) << "unknown metric " << name;
  }
  for (const std::string name :
       {"synwatch_half_open_connections", "synwatch_attack_active",
        "synwatch_capture_packets_total", "synwatch_capture_dropped_packets_total",
        "synwatch_capture_lag_seconds", "synwatch_decode_errors_total",
        "synwatch_handshake_table_entries", "synwatch_handshake_table_capacity"}) {
    EXPECT_TRUE(used.contains(name)) << "the dashboard does not show " << name;
  }
  EXPECT_EQ(type_of_metric["synwatch_attack_active"], "state-timeline") << "incident timeline";
  std::set<std::string> variables;
  for (const auto& v : dash["templating"]["list"]) variables.insert(v["name"]);
  EXPECT_EQ(variables, (std::set<std::string>{"datasource", "job", "instance"}));
}

// --- Live: synwatchd in the test bed, scraped by promtool and by a real Prometheus ------------

// One HTTP GET with libcurl; sockets are created in the calling thread's network namespace.
struct HttpResult {
  long status = 0;
  std::string body;
  std::string error;
};

HttpResult http_get(const std::string& url, long timeout_ms = 5000) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  HttpResult result;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION,
      +[](char* data, std::size_t size, std::size_t n, void* out) -> std::size_t {
        static_cast<std::string*>(out)->append(data, size * n);
        return size * n;
      });
  const CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  } else {
    result.error = curl_easy_strerror(code);
  }
  curl_easy_cleanup(curl);
  return result;
}

std::string url_encode(const std::string& text) {
  CURL* curl = curl_easy_init();
  char* escaped = curl_easy_escape(curl, text.c_str(), static_cast<int>(text.size()));
  std::string out = escaped;
  curl_free(escaped);
  curl_easy_cleanup(curl);
  return out;
}

// Runs `work` on a thread that joined the named network namespace (the test process itself stays
// in the root namespace, where the test bed is managed).
template <typename Work>
auto in_netns(const std::string& ns, Work&& work) {
  std::invoke_result_t<Work> result{};
  std::thread thread([&] {
    const int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
      if (fd >= 0) ::close(fd);
      return;  // result stays empty: callers assert on it
    }
    ::close(fd);
    result = work();
  });
  thread.join();
  return result;
}

// A loopback port free right now in the namespace: bind port 0, read it back, release it.
int free_port(const std::string& ns) {
  return in_netns(ns, [] {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof addr;
    int port = 0;
    if (::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(s);
    return port;
  });
}

// One sample of the text exposition format.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

std::vector<Sample> parse_exposition(const std::string& page) {
  std::vector<Sample> out;
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    std::size_t i = line.find_first_of("{ ");
    s.name = line.substr(0, i);
    if (i != std::string::npos && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const std::size_t eq = line.find('=', i);
        const std::string key = line.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2;  // past ="
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) ++j;
          value += line[j];
        }
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;
    }
    s.value = std::stod(line.substr(line.find_first_not_of(' ', i)));
    out.push_back(std::move(s));
  }
  return out;
}

double sum_of(const std::vector<Sample>& samples, const std::string& name,
              const std::map<std::string, std::string>& match = {}) {
  double total = 0;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool ok = true;
    for (const auto& [k, v] : match) ok = ok && s.labels.contains(k) && s.labels.at(k) == v;
    if (ok) total += s.value;
  }
  return total;
}

bool has_series(const std::vector<Sample>& samples, const std::string& name,
                const std::map<std::string, std::string>& match) {
  return std::any_of(samples.begin(), samples.end(), [&](const Sample& s) {
    if (s.name != name) return false;
    for (const auto& [k, v] : match) {
      if (!s.labels.contains(k) || s.labels.at(k) != v) return false;
    }
    return true;
  });
}

// Destinations (address:port) with any per-destination series on the page.
std::set<std::string> exported_destinations(const std::vector<Sample>& samples) {
  std::set<std::string> out;
  for (const auto& s : samples) {
    if (kPerDestinationFamilies.contains(s.name)) {
      out.insert(s.labels.at("address") + ":" + s.labels.at("port"));
    }
  }
  return out;
}

class PrometheusLive : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto why = TestBed::unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    bed_ = std::make_unique<TestBed>("p");
    ASSERT_TRUE(bed_->ok()) << "test bed setup failed";
    std::filesystem::permissions(dir_.path(), std::filesystem::perms::all);
    metrics_port_ = free_port(bed_->victim());
    ASSERT_GT(metrics_port_, 0);
  }

  // HTTPS with basic auth on /metrics: a certificate for 127.0.0.1 made by openssl, a password
  // file, both readable by the user the daemon drops to (it reads them after dropping).
  void make_secure_endpoint() {
    const std::string key = (dir_.path() / "metrics.key").string();
    const std::string cert = (dir_.path() / "metrics.crt").string();
    const std::string password = (dir_.path() / "metrics.password").string();
    std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout ";
    command += key + " -out ";
    command += cert + " >/dev/null 2>&1";
    ASSERT_EQ(sh(command), 0) << "openssl req failed";
    std::ofstream(password) << "s3cret\n";
    ASSERT_EQ(sh("chown nobody " + key + " " + password + " && chmod 600 " + key + " " + password),
              0);
    secure_metrics_ = "\n  tls_cert_file: " + cert + "\n  tls_key_file: " + key +
                      "\n  basic_auth_user: prometheus\n  basic_auth_password_file: " + password;
  }

  void start_daemon(int max_destinations = 100) {
    const auto config = dir_.path() / "synwatch.yaml";
    std::ofstream(config)
        << "capture:\n  interfaces: [swv0]\n"
           "detection:\n  half_open: 256\n  for: 0.5s\n  cooldown: 2s\n  update_interval: 1s\n"
           "metrics:\n  listen: 127.0.0.1:"
        << metrics_port_ << "\n  max_destinations: " << max_destinations << secure_metrics_
        << "\nstate_dir: " << (dir_.path() / "state").string()
        << "\nstatus:\n  socket: " << (dir_.path() / "status.sock").string()
        << "\nlog:\n  level: info\nuser: nobody\n";
    daemon_ = std::make_unique<Background>(
        bed_->exec_in(bed_->victim(),
                      {"env", "-u", "JOURNAL_STREAM", SYNWATCHD, "--config", config.string()}),
        dir_.path() / "daemon.out", dir_.path() / "daemon.err");
    ASSERT_TRUE(eventually(10s, [&] { return log().find("watching") != std::string::npos; }))
        << log();
    if (!secure_metrics_.empty()) return;  // the plain scrape() below would fail
    ASSERT_TRUE(eventually(5s, [&] { return scrape().status == 200; })) << log();
  }

  void start_listener(int port) {
    // A deep backlog, so the victim's kernel keeps the half-open connections and answers with
    // SYN-ACKs (state syn_recv).
    std::ofstream(dir_.path() / "listener.py")
        << "import socket,select\n"
           "s=socket.socket()\n"
           "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
           "s.bind(('198.51.100.1',"
        << port
        << "))\n"
           "s.listen(65535)\n"
           "while True:\n"
           "  r,_,_=select.select([s],[],[],1)\n"
           "  if r:\n"
           "    c,_=s.accept(); c.close()\n";
    listener_ = std::make_unique<Background>(
        bed_->exec_in(bed_->victim(), {"python3", (dir_.path() / "listener.py").string()}),
        dir_.path() / "listener.out", dir_.path() / "listener.err");
    ASSERT_TRUE(eventually(5s, [&] {
      return TestBed::in_out(bed_->victim(), "ss -Hltn").find(":" + std::to_string(port)) !=
             std::string::npos;
    }));
  }

  std::vector<std::string> flood_argv(const std::vector<std::string>& ports, int count,
                                      int rate) const {
    std::vector<std::string> argv = {SYNWATCH_FLOOD,
                                     "--target",
                                     "198.51.100.1",
                                     "--count",
                                     std::to_string(count),
                                     "--rate",
                                     std::to_string(rate),
                                     "--sources",
                                     "198.18.0.0/15",
                                     "--max-seconds",
                                     "20"};
    argv.insert(argv.end(), ports.begin(), ports.end());
    return bed_->exec_in(bed_->attacker(), argv);
  }
  ProcessResult flood(const std::vector<std::string>& ports, int count, int rate) const {
    return run_process(flood_argv(ports, count, rate));
  }

  HttpResult scrape() const {
    const std::string url = "http://127.0.0.1:" + std::to_string(metrics_port_) + "/metrics";
    return in_netns(bed_->victim(), [&] { return http_get(url); });
  }
  std::vector<Sample> scrape_samples() const {
    const auto r = scrape();
    return r.status == 200 ? parse_exposition(r.body) : std::vector<Sample>{};
  }

  // A Prometheus server in the victim namespace scraping synwatchd every second and evaluating
  // the shipped rules.
  void start_prometheus() {
    prometheus_port_ = free_port(bed_->victim());
    ASSERT_GT(prometheus_port_, 0);
    const auto config = dir_.path() / "prometheus.yml";
    std::ofstream out(config);
    out << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: "
           "1s\nrule_files:\n";
    for (const auto& f : rule_files()) out << "  - " << f.string() << "\n";
    out << "scrape_configs:\n  - job_name: synwatch\n    static_configs:\n"
           "      - targets: ['127.0.0.1:"
        << metrics_port_ << "']\n";
    if (!secure_metrics_.empty()) {
      out << "    scheme: https\n    tls_config:\n      ca_file: "
          << (dir_.path() / "metrics.crt").string()
          << "\n    basic_auth:\n      username: prometheus\n      password_file: "
          << (dir_.path() / "metrics.password").string() << "\n";
    }
    out.close();
    const auto check = run_process({"promtool", "check", "config", config.string()});
    ASSERT_EQ(check.exit_code, 0) << check.out << check.err;
    fs::create_directories(dir_.path() / "tsdb");
    prometheus_ = std::make_unique<Background>(
        bed_->exec_in(bed_->victim(),
                      {"prometheus", "--config.file=" + config.string(),
                       "--storage.tsdb.path=" + (dir_.path() / "tsdb").string(),
                       "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_),
                       "--log.level=warn"}),
        dir_.path() / "prometheus.out", dir_.path() / "prometheus.err");
    ASSERT_TRUE(eventually(20s, [&] { return prometheus_get("/-/ready").status == 200; }))
        << read_file(dir_.path() / "prometheus.err");
    ASSERT_TRUE(eventually(15s, [&] { return query_value("up{job=\"synwatch\"}") == 1; }))
        << read_file(dir_.path() / "prometheus.err");
  }

  HttpResult prometheus_get(const std::string& path) const {
    const std::string url = "http://127.0.0.1:" + std::to_string(prometheus_port_) + path;
    return in_netns(bed_->victim(), [&] { return http_get(url); });
  }
  // An instant query through the HTTP API; the "data" object, or null on any error.
  nlohmann::json query(const std::string& promql) const {
    const auto r = prometheus_get("/api/v1/query?query=" + url_encode(promql));
    if (r.status != 200) return nullptr;
    const auto body = nlohmann::json::parse(r.body, nullptr, false);
    return !body.is_discarded() && body.value("status", "") == "success" ? body["data"] : nullptr;
  }
  // The single value of a vector result, or NaN when empty or failed.
  double query_value(const std::string& promql) const {
    const auto data = query(promql);
    if (data.is_null() || data["result"].size() != 1) return std::nan("");
    return std::stod(data["result"][0]["value"][1].get<std::string>());
  }

  std::string log() const { return read_file(dir_.path() / "daemon.err"); }

  TempDir dir_;
  std::unique_ptr<TestBed> bed_;
  int metrics_port_ = 0;
  int prometheus_port_ = 0;
  std::string secure_metrics_;  // the metrics.* lines for HTTPS and basic auth, when set
  std::unique_ptr<Background> daemon_;
  std::unique_ptr<Background> listener_;
  std::unique_ptr<Background> prometheus_;
};

TEST_F(PrometheusLive, MetricsPagePassesPromtoolCheckMetricsDuringAFlood) {
  if (!have("promtool")) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  start_listener(8080);
  start_daemon();
  ASSERT_EQ(flood({"--port", "8080"}, 20000, 10000).exit_code, 0);
  ASSERT_TRUE(eventually(5s, [&] {
    return has_series(scrape_samples(), "synwatch_attack_active",
                      {{"address", "198.51.100.1"}, {"port", "8080"}});
  })) << log();
  const auto page = scrape();
  ASSERT_EQ(page.status, 200);
  std::ofstream(dir_.path() / "page.txt") << page.body;
  const auto check =
      run_process({"/bin/sh", "-c",
                   "promtool check metrics < " + shell_quote((dir_.path() / "page.txt").string())});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_EQ(check.out + check.err, "") << "promtool lint findings";

  // Every family is synwatch's own, or one of the standard process_* families every exporter
  // shares (CPU, memory, descriptors, start time): no library's metrics without the prefix
  // (prometheus-cpp's exposer_*, say: the page is rendered from synwatch's registry only).
  std::istringstream type_lines(page.body);
  for (std::string line; std::getline(type_lines, line);) {
    if (line.starts_with("# TYPE ")) {
      EXPECT_TRUE(line.starts_with("# TYPE synwatch_") || line.starts_with("# TYPE process_"))
          << line;
    }
  }
  // The page carries the whole contract, with HELP text.
  for (const auto& family : kContractFamilies) {
    EXPECT_NE(page.body.find("# TYPE " + family + " "), std::string::npos) << family << " missing";
    EXPECT_NE(page.body.find("# HELP " + family + " "), std::string::npos)
        << family << " has no HELP";
  }
  const auto samples = parse_exposition(page.body);
  EXPECT_GT(sum_of(samples, "synwatch_half_open_connections",
                   {{"address", "198.51.100.1"}, {"port", "8080"}}),
            10000);
  EXPECT_GT(sum_of(samples, "synwatch_capture_packets_total", {{"interface", "swv0"}}), 20000);
  EXPECT_EQ(sum_of(samples, "synwatch_capture_interface_up", {{"interface", "swv0"}}), 1);
  EXPECT_EQ(sum_of(samples, "synwatch_incidents_started_total", {{"kind", "spoofed_random"}}), 1);
}

TEST_F(PrometheusLive,
       PrometheusSeesHalfOpenAndAttackActiveRiseAndTheShippedRulesAndDashboardWork) {
  if (!have("prometheus") || !have("promtool")) {
    GTEST_SKIP() << "prometheus not installed (Debian package prometheus)";
  }
  start_listener(8080);
  start_daemon();
  start_prometheus();
  const std::string target = R"({job="synwatch",address="198.51.100.1",port="8080"})";
  const std::string half_open = "sum(synwatch_half_open_connections" + target + ")";
  const std::string attack = "synwatch_attack_active" + target;

  // Quiet before the flood: nothing half-open, no incident.
  std::this_thread::sleep_for(2s);
  const double before = query_value(half_open);
  EXPECT_TRUE(std::isnan(before) || before < 10) << before;
  EXPECT_TRUE(query(attack)["result"].empty());

  const auto flood =
      std::make_unique<Background>(flood_argv({"--port", "8080"}, 30000, 10000),
                                   dir_.path() / "flood.out", dir_.path() / "flood.err");
  ASSERT_TRUE(eventually(15s, [&] { return query_value(half_open) > 10000; }))
      << query(half_open).dump() << "\n"
      << log();
  ASSERT_TRUE(eventually(10s, [&] { return query_value(attack + " == 1") == 1; }))
      << query(attack).dump();
  const auto incident = query(attack)["result"];
  ASSERT_EQ(incident.size(), 1u) << incident.dump();
  EXPECT_EQ(incident[0]["metric"]["kind"], "spoofed_random");
  // Only the flooded destination is attacked.
  EXPECT_EQ(query_value("count(synwatch_attack_active)"), 1);

  // The shipped SynFloodActive alert fires for that target, with its runbook.
  ASSERT_TRUE(eventually(10s, [&] {
    const auto alerts = query("ALERTS{alertname=\"SynFloodActive\",alertstate=\"firing\"}");
    return !alerts.is_null() && alerts["result"].size() == 1 &&
           alerts["result"][0]["metric"]["address"] == "198.51.100.1" &&
           alerts["result"][0]["metric"]["port"] == "8080";
  })) << prometheus_get("/api/v1/alerts").body;
  const auto alerts = nlohmann::json::parse(prometheus_get("/api/v1/alerts").body);
  for (const auto& alert : alerts["data"]["alerts"]) {
    if (alert["labels"]["alertname"] != "SynFloodActive") continue;
    EXPECT_NE(alert["annotations"]["description"].get<std::string>().find("half-open connections"),
              std::string::npos)
        << alert.dump();
    EXPECT_NE(alert["annotations"]["runbook"].get<std::string>().find("198.51.100.1:8080"),
              std::string::npos);
  }
  // Recording rules run on their own schedule: the fleet sum follows within a few evaluations.
  const std::string fleet = R"(synwatch:half_open:sum_by_port{job="synwatch",port="8080"})";
  EXPECT_TRUE(eventually(10s, [&] { return query_value(fleet) > 10000; }))
      << query(fleet).dump() << "\n"
      << prometheus_get("/api/v1/rules").body << "\n"
      << read_file(dir_.path() / "prometheus.err");

  // Every dashboard query is valid PromQL against the real data, and the main panels have data.
  const std::set<std::string> must_have_data = {"Half-open per destination",
                                                "Incident timeline",
                                                "Captured packets",
                                                "Dropped packets",
                                                "Capture lag",
                                                "Handshake table fill",
                                                "Half-open per port across the fleet"};
  for (const auto& [title, expr] : dashboard_queries(load_dashboard())) {
    std::string promql = expr;
    for (const auto& [var, value] :
         {std::pair{"$job", ".*"}, std::pair{"$instance", ".*"},
          std::pair{"$__rate_interval", "5s"}, std::pair{"$__range", "1m"}}) {
      for (std::size_t at; (at = promql.find(var)) != std::string::npos;) {
        promql.replace(at, std::strlen(var), value);
      }
    }
    const auto data = query(promql);
    EXPECT_FALSE(data.is_null())
        << title << ": " << promql << "\n"
        << prometheus_get("/api/v1/query?query=" + url_encode(promql)).body;
    if (must_have_data.contains(title) && !data.is_null()) {
      EXPECT_FALSE(data["result"].empty()) << title << ": no data for " << promql;
    }
  }
  EXPECT_NE(flood->wait_exit(20s), -1);
}

// The endpoint as exporters offer it: HTTPS and basic auth at once, scraped by a real Prometheus
// that trusts the certificate and sends the password; plain HTTP and a missing password get
// nothing.
TEST_F(PrometheusLive, PrometheusScrapesOverHttpsWithBasicAuth) {
  if (!have("prometheus") || !have("promtool")) {
    GTEST_SKIP() << "prometheus not installed (Debian package prometheus)";
  }
  if (!have("openssl") || !have("curl")) GTEST_SKIP() << "needs openssl and curl";
  make_secure_endpoint();
  start_daemon();
  EXPECT_NE(log().find("metrics at https://127.0.0.1:"), std::string::npos) << log();
  start_prometheus();  // waits for up == 1
  EXPECT_TRUE(eventually(10s, [&] {
    return query_value("synwatch_config_last_reload_successful{job=\"synwatch\"}") == 1;
  }));
  const std::string port = std::to_string(metrics_port_);
  const std::string ca = (dir_.path() / "metrics.crt").string();
  const auto status = [&](const std::string& options, const std::string& url) {
    return TestBed::in_out(bed_->victim(), "curl -s -o /dev/null -w '%{http_code}' --max-time 5 " +
                                               options + " " + url);
  };
  EXPECT_EQ(status("--cacert " + ca + " --user prometheus:s3cret",
                   "https://127.0.0.1:" + port + "/metrics"),
            "200");
  EXPECT_EQ(status("--cacert " + ca, "https://127.0.0.1:" + port + "/metrics"), "401");
  EXPECT_EQ(status("", "http://127.0.0.1:" + port + "/metrics"), "000");
}

TEST_F(PrometheusLive, FloodToTenThousandPortsLeavesAtMostMaxDestinationsSeries) {
  constexpr std::size_t kMaxDestinations = 50;
  start_listener(8080);
  start_daemon(kMaxDestinations);
  // A real flood on 8080 first: its incident must stay exported whatever else arrives.
  ASSERT_EQ(flood({"--port", "8080"}, 5000, 10000).exit_code, 0);
  ASSERT_TRUE(eventually(5s, [&] {
    return has_series(scrape_samples(), "synwatch_attack_active",
                      {{"address", "198.51.100.1"}, {"port", "8080"}});
  })) << log();

  // 10,000 ports in random order while scraping: no page ever holds more than the cap.
  std::atomic<bool> done = false;
  std::size_t most = 0, pages = 0;
  std::thread scraper([&] {
    while (!done) {
      const auto samples = scrape_samples();
      if (!samples.empty()) {
        most = std::max(most, exported_destinations(samples).size());
        ++pages;
      }
      std::this_thread::sleep_for(200ms);
    }
  });
  const auto sent = flood({"--port-range", "20000-29999"}, 10000, 10000);
  std::this_thread::sleep_for(2500ms);  // more than one metrics update after the last SYN
  done = true;
  scraper.join();
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  EXPECT_NE(sent.out.find("\"sent\":10000"), std::string::npos) << sent.out;

  const auto samples = scrape_samples();
  const auto exported = exported_destinations(samples);
  EXPECT_LE(exported.size(), kMaxDestinations);
  EXPECT_LE(most, kMaxDestinations) << "over " << pages << " pages";
  EXPECT_GT(pages, 3u);
  EXPECT_TRUE(exported.contains("198.51.100.1:8080"))
      << "the attacked destination must stay exported";
  EXPECT_TRUE(has_series(samples, "synwatch_attack_active",
                         {{"address", "198.51.100.1"}, {"port", "8080"}}));
  const double tracked = sum_of(samples, "synwatch_destinations_tracked");
  const double unexported = sum_of(samples, "synwatch_destinations_unexported");
  std::cout << "destinations: tracked " << tracked << ", exported " << exported.size()
            << ", unexported " << unexported << "\n";
  EXPECT_GT(tracked, static_cast<double>(kMaxDestinations))
      << "the port flood did not reach the daemon";
  EXPECT_EQ(unexported, tracked - static_cast<double>(exported.size()));
  // The page stays small: 10,000 destinations would be well over 100,000 lines.
  EXPECT_LT(samples.size(), 20 * kMaxDestinations + 200);
}

TEST_F(PrometheusLive, TwoHundredConcurrentScrapesDuringAFloodAllSucceedWithoutCaptureDrops) {
  start_listener(8080);
  start_daemon();
  const auto before = scrape_samples();
  const double packets_before = sum_of(before, "synwatch_capture_packets_total");

  constexpr int kClients = 8;
  constexpr int kPerClient = 25;
  auto flood = std::make_unique<Background>(flood_argv({"--port", "8080"}, 100000, 20000),
                                            dir_.path() / "flood.out", dir_.path() / "flood.err");
  // Scrape once the daemon is busy with the flood.
  ASSERT_TRUE(eventually(5s, [&] {
    return sum_of(scrape_samples(), "synwatch_capture_packets_total") > packets_before + 5000;
  })) << log();

  std::atomic<int> ok = 0;
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  clients.reserve(kClients);
  const std::string url = "http://127.0.0.1:" + std::to_string(metrics_port_) + "/metrics";
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      in_netns(bed_->victim(), [&] {
        for (int i = 0; i < kPerClient; ++i) {
          const auto r = http_get(url);
          if (r.status == 200 && r.body.find("synwatch_build_info") != std::string::npos) {
            ++ok;
          } else {
            std::lock_guard lock(failures_mutex);
            failures.push_back(std::to_string(r.status) + " " + r.error);
          }
        }
        return 0;
      });
    });
  }
  for (auto& t : clients) t.join();
  const bool flood_still_running = flood->running();
  EXPECT_EQ(ok.load(), kClients * kPerClient) << (failures.empty() ? "" : failures.front());
  EXPECT_TRUE(flood_still_running) << "the scrapes ended after the flood; they did not overlap it";

  ASSERT_EQ(flood->wait_exit(30s), 0) << read_file(dir_.path() / "flood.err");
  const auto sent = read_file(dir_.path() / "flood.out");
  std::this_thread::sleep_for(2500ms);
  const auto after = scrape_samples();
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(sum_of(after, "synwatch_capture_dropped_packets_total"), 0)
      << "kernel " << sum_of(after, "synwatch_capture_dropped_packets_total", {{"where", "kernel"}})
      << ", interface "
      << sum_of(after, "synwatch_capture_dropped_packets_total", {{"where", "interface"}});
  // Every SYN was captured and counted (plus the victim's SYN-ACKs).
  EXPECT_NE(sent.find("\"sent\":100000"), std::string::npos) << sent;
  EXPECT_GE(sum_of(after, "synwatch_capture_packets_total") - packets_before, 100000);
  // Random sources and ports repeat a 4-tuple about once per 100,000 SYNs; a repeat is a
  // retransmission to the tracker and is not counted again.
  EXPECT_GE(sum_of(after, "synwatch_handshake_events_total", {{"port", "8080"}, {"event", "syn"}}),
            99990);
}

}  // namespace
}  // namespace synwatch::testing
