// The /metrics HTTP server against real sockets on 127.0.0.1: routes, status codes, HEAD, basic
// auth and its throttle, the password-file warning, HTTPS (curl against a certificate openssl
// makes here), and slow or idle clients that must not starve scrapes.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../common/error_printer.hpp"
#include "export/http_endpoint.hpp"

namespace synwatch {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kPage = "# TYPE synwatch_test gauge\nsynwatch_test 1\n";

// A socket connected to 127.0.0.1:port, -1 on failure.
int connect_to(int port, std::chrono::milliseconds receive_timeout = 3000ms) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{};
  timeout.tv_sec = receive_timeout.count() / 1000;
  timeout.tv_usec = (receive_timeout.count() % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

struct Reply {
  int status = 0;                              // 0: no answer (closed, or timed out)
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  [[nodiscard]] std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

Reply parse(const std::string& text) {
  Reply reply;
  const auto end = text.find("\r\n\r\n");
  if (end == std::string::npos || text.size() < 12 || text.rfind("HTTP/1.", 0) != 0) return reply;
  reply.status = std::stoi(text.substr(9, 3));
  std::istringstream lines(text.substr(0, end));
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    reply.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  reply.body = text.substr(end + 4);
  return reply;
}

std::string read_to_end(int fd) {
  std::string text;
  std::array<char, 8192> buffer{};
  ssize_t n = 0;
  while ((n = recv(fd, buffer.data(), buffer.size(), 0)) > 0) {
    text.append(buffer.data(), static_cast<std::size_t>(n));
  }
  return text;
}

Reply request(int port, const std::string& method, const std::string& path,
              const std::string& extra_headers = "") {
  const int fd = connect_to(port);
  if (fd < 0) return {};
  send_all(fd, method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                   extra_headers + "\r\n");
  Reply reply = parse(read_to_end(fd));
  close(fd);
  return reply;
}

std::string base64(const std::string& in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63],
                       kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

std::string basic(const std::string& user, const std::string& password) {
  return "Authorization: Basic " + base64(user + ":" + password) + "\r\n";
}

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "synwatch-http-XXXXXX").string();
    path_ = ::mkdtemp(templ.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string file(const std::string& name, const std::string& text,
                                 mode_t mode) const {
    const auto path = path_ / name;
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    return path.string();
  }
  [[nodiscard]] std::string file_path(const std::string& name) const {
    return (path_ / name).string();
  }

 private:
  std::filesystem::path path_;
};

// Captures what spdlog logs while it lives.
class LogCapture {
 public:
  LogCapture()
      : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(text_)),
        previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::string text() {
    sink_->flush();
    return text_.str();
  }
  std::size_t count(const std::string& needle) {
    const std::string all = text();
    std::size_t n = 0;
    for (auto at = all.find(needle); at != std::string::npos; at = all.find(needle, at + 1)) ++n;
    return n;
  }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

std::unique_ptr<HttpEndpoint> start(
    HttpEndpointOptions options, HttpEndpoint::Render render = [] { return kPage; }) {
  if (options.listen.empty()) options.listen = "127.0.0.1:0";
  auto endpoint = HttpEndpoint::start(options, std::move(render));
  if (!endpoint) ADD_FAILURE() << endpoint.error().message;
  return endpoint ? std::move(*endpoint) : nullptr;
}

int port_of(const HttpEndpoint& endpoint) {
  const auto ports = endpoint.listening_ports();
  return ports.empty() ? 0 : ports.front();
}

TEST(HttpEndpoint, ServesMetricsWithThePrometheusContentType) {
  const auto endpoint = start({});
  ASSERT_TRUE(endpoint);
  const int port = port_of(*endpoint);
  ASSERT_GT(port, 0);
  const Reply reply = request(port, "GET", "/metrics");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(reply.body, kPage);
}

TEST(HttpEndpoint, HeadHasTheHeadersOfGetAndNoBody) {
  const auto endpoint = start({});
  ASSERT_TRUE(endpoint);
  const Reply reply = request(port_of(*endpoint), "HEAD", "/metrics");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(reply.header("content-length"), std::to_string(std::string(kPage).size()));
  EXPECT_EQ(reply.body, "");
}

TEST(HttpEndpoint, LandingPageLinksToMetrics) {
  const auto endpoint = start({});
  ASSERT_TRUE(endpoint);
  const Reply reply = request(port_of(*endpoint), "GET", "/");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(reply.body.find("<a href=\"/metrics\">"), std::string::npos) << reply.body;
  EXPECT_EQ(request(port_of(*endpoint), "HEAD", "/").status, 200);
}

TEST(HttpEndpoint, OtherPathsAre404) {
  const auto endpoint = start({});
  ASSERT_TRUE(endpoint);
  for (const char* path : {"/METRICS", "/metrics/", "/metrics/x", "/metricsx", "/favicon.ico",
                           "//metrics", "/index.html"}) {
    const Reply reply = request(port_of(*endpoint), "GET", path);
    EXPECT_EQ(reply.status, 404) << path;
    EXPECT_EQ(reply.body.find("synwatch_test"), std::string::npos) << path;
  }
  // The query string is not part of the path.
  EXPECT_EQ(request(port_of(*endpoint), "GET", "/metrics?x=1").status, 200);
}

TEST(HttpEndpoint, OtherMethodsAre405WithAllow) {
  const auto endpoint = start({});
  ASSERT_TRUE(endpoint);
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"}) {
    for (const char* path : {"/metrics", "/"}) {
      const Reply reply = request(port_of(*endpoint), method, path, "Content-Length: 3\r\n\r\nabc");
      EXPECT_EQ(reply.status, 405) << method << " " << path;
      EXPECT_EQ(reply.header("allow"), "GET, HEAD") << method << " " << path;
    }
  }
  EXPECT_EQ(request(port_of(*endpoint), "POST", "/nowhere").status, 404);
}

TEST(HttpEndpoint, KeepAliveServesSeveralRequestsOnOneConnection) {
  const auto endpoint = start({});
  ASSERT_TRUE(endpoint);
  const int fd = connect_to(port_of(*endpoint));
  ASSERT_GE(fd, 0);
  const std::string get = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_TRUE(
      send_all(fd, get + get + "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const std::string all = read_to_end(fd);
  close(fd);
  std::size_t answers = 0;
  for (auto at = all.find("HTTP/1.1 200"); at != std::string::npos;
       at = all.find("HTTP/1.1 200", at + 1)) {
    ++answers;
  }
  EXPECT_EQ(answers, 3u) << all;
}

TEST(HttpEndpoint, RenderThatThrowsIs500AndCounted) {
  std::atomic<bool> fail{true};
  const auto endpoint = start({}, [&] {
    if (fail.load()) throw std::runtime_error("boom");
    return std::string(kPage);
  });
  ASSERT_TRUE(endpoint);
  EXPECT_EQ(request(port_of(*endpoint), "GET", "/metrics").status, 500);
  EXPECT_EQ(endpoint->stats().internal_errors, 1u);
  fail.store(false);
  EXPECT_EQ(request(port_of(*endpoint), "GET", "/metrics").status, 200);
}

TEST(HttpEndpoint, BindErrorsNameTheAddress) {
  const auto first = start({});
  ASSERT_TRUE(first);
  const std::string taken = "127.0.0.1:" + std::to_string(port_of(*first));
  HttpEndpointOptions options;
  options.listen = taken;
  auto again = HttpEndpoint::start(options, [] { return std::string(); });
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("cannot serve metrics on " + taken), std::string::npos)
      << again.error().message;
  EXPECT_NE(again.error().message.find("in use"), std::string::npos) << again.error().message;
  EXPECT_EQ(again.error().kind, ErrorKind::kInUse);
  for (const char* bad : {"127.0.0.1", "127.0.0.1:99999", "::1:80", "[::1:80", "localhost:80"}) {
    options.listen = bad;
    auto endpoint = HttpEndpoint::start(options, [] { return std::string(); });
    ASSERT_FALSE(endpoint) << bad;
    EXPECT_NE(endpoint.error().message.find(bad), std::string::npos) << endpoint.error().message;
    EXPECT_EQ(endpoint.error().kind, ErrorKind::kInvalidInput) << bad;
  }
}

TEST(HttpEndpoint, ListensOnIpv6Loopback) {
  HttpEndpointOptions options;
  options.listen = "[::1]:0";
  auto endpoint = HttpEndpoint::start(options, [] { return std::string(kPage); });
  if (!endpoint) GTEST_SKIP() << "no IPv6 loopback: " << endpoint.error().message;
  const int port = (*endpoint)->listening_ports().front();
  EXPECT_GT(port, 0);
  const int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_port = htons(static_cast<std::uint16_t>(port));
  address.sin6_addr = in6addr_loopback;
  ASSERT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
  send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(parse(read_to_end(fd)).status, 200);
  close(fd);
}

class HttpEndpointAuth : public ::testing::Test {
 protected:
  HttpEndpointOptions options(mode_t mode = 0600) {
    HttpEndpointOptions o;
    o.basic_auth_user = "prometheus";
    o.basic_auth_password_file = dir_.file("password", "s3cret\n", mode);
    return o;
  }
  TempDir dir_;
};

TEST_F(HttpEndpointAuth, RightCredentialsOnlyAnd401CarriesTheRealm) {
  auto o = options();
  o.auth_failure_burst = 100;
  const auto endpoint = start(o);
  ASSERT_TRUE(endpoint);
  const int port = port_of(*endpoint);
  const Reply none = request(port, "GET", "/metrics");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.header("www-authenticate"), "Basic realm=\"synwatch\"");
  EXPECT_EQ(none.body.find("synwatch_test"), std::string::npos);
  EXPECT_EQ(request(port, "GET", "/metrics", basic("prometheus", "wrong")).status, 401);
  EXPECT_EQ(request(port, "GET", "/metrics", basic("prometheus", "s3cret2")).status, 401);
  EXPECT_EQ(request(port, "GET", "/metrics", basic("prometheus", "s3cre")).status, 401);
  EXPECT_EQ(request(port, "GET", "/metrics", basic("other", "s3cret")).status, 401);
  EXPECT_EQ(request(port, "GET", "/metrics", "Authorization: Bearer s3cret\r\n").status, 401);
  const Reply right = request(port, "GET", "/metrics", basic("prometheus", "s3cret"));
  EXPECT_EQ(right.status, 200);
  EXPECT_EQ(right.body, kPage);
  EXPECT_EQ(request(port, "GET", "/nowhere", basic("prometheus", "s3cret")).status, 404);
  EXPECT_EQ(endpoint->stats().auth_failures, 6u);
}

TEST_F(HttpEndpointAuth, FailuresAreThrottledWith429WithoutChecking) {
  auto o = options();
  o.auth_failure_burst = 3;
  o.auth_failure_refill = 1000ms;
  const auto endpoint = start(o);
  ASSERT_TRUE(endpoint);
  const int port = port_of(*endpoint);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(request(port, "GET", "/metrics", basic("prometheus", "guess")).status, 401);
  }
  // The bucket is empty: even the right password is not checked.
  const Reply throttled = request(port, "GET", "/metrics", basic("prometheus", "s3cret"));
  EXPECT_EQ(throttled.status, 429);
  EXPECT_EQ(throttled.header("retry-after"), "1");
  EXPECT_EQ(request(port, "GET", "/metrics", basic("prometheus", "guess")).status, 429);
  std::this_thread::sleep_for(1100ms);  // one attempt back
  EXPECT_EQ(request(port, "GET", "/metrics", basic("prometheus", "s3cret")).status, 200);
  EXPECT_EQ(endpoint->stats().auth_failures, 3u);
  EXPECT_EQ(endpoint->stats().auth_throttled, 2u);
}

TEST_F(HttpEndpointAuth, AFloodOfWrongPasswordsIsSlowedAndLoggedInAFewLines) {
  LogCapture log;
  auto o = options();
  o.auth_log_interval = 500ms;
  const auto endpoint = start(o);
  ASSERT_TRUE(endpoint);
  const int port = port_of(*endpoint);
  std::map<int, int> statuses;
  const auto started = Clock::now();
  for (int i = 0; i < 1000; ++i) {
    ++statuses[request(port, "GET", "/metrics", basic("prometheus", std::to_string(i))).status];
  }
  const auto elapsed = Clock::now() - started;
  // 5 attempts at once, then about one a second: the rest answered 429 unchecked.
  const double seconds = std::chrono::duration<double>(elapsed).count();
  EXPECT_LE(statuses[401], 5 + static_cast<int>(seconds) + 1) << seconds;
  EXPECT_EQ(statuses[401] + statuses[429], 1000);
  std::this_thread::sleep_for(800ms);  // the summary line after the interval
  EXPECT_EQ(log.count("failed basic auth from 127.0.0.1"), 1u) << log.text();
  const std::size_t summaries = log.count("more failed basic auth attempts");
  EXPECT_GE(summaries, 1u) << log.text();
  EXPECT_LE(summaries, 1 + static_cast<std::size_t>(seconds / 0.5) + 1) << log.text();
  EXPECT_NE(log.text().find("127.0.0.1 ("), std::string::npos) << log.text();
}

TEST_F(HttpEndpointAuth, WarnsWhenOthersOrTheGroupMayReadThePasswordFile) {
  {
    LogCapture log;
    ASSERT_TRUE(start(options(0600)));
    EXPECT_EQ(log.count("readable by"), 0u) << log.text();
  }
  {
    LogCapture log;
    ASSERT_TRUE(start(options(0640)));
    EXPECT_EQ(log.count("is readable by its group (mode 0640)"), 1u) << log.text();
  }
  {
    LogCapture log;
    ASSERT_TRUE(start(options(0644)));
    EXPECT_EQ(log.count("is readable by everyone (mode 0644)"), 1u) << log.text();
  }
}

TEST_F(HttpEndpointAuth, UnreadablePasswordFileIsAnError) {
  auto o = options();
  o.basic_auth_password_file = "/nonexistent/synwatch-password";
  auto endpoint = HttpEndpoint::start(o, [] { return std::string(); });
  ASSERT_FALSE(endpoint);
  EXPECT_NE(endpoint.error().message.find("'/nonexistent/synwatch-password'"), std::string::npos)
      << endpoint.error().message;
  EXPECT_EQ(endpoint.error().kind, ErrorKind::kNotFound);
}

TEST_F(HttpEndpointAuth, APasswordFileOverOneMebibyteIsRefusedAsTooLarge) {
  auto o = options();
  o.basic_auth_password_file = dir_.file("huge", std::string((1u << 20) + 1, 'x'), 0600);
  auto endpoint = HttpEndpoint::start(o, [] { return std::string(); });
  ASSERT_FALSE(endpoint);
  EXPECT_EQ(endpoint.error().kind, ErrorKind::kResourceExhausted);
  EXPECT_EQ(endpoint.error().message, "cannot read metrics.basic_auth_password_file '" +
                                          o.basic_auth_password_file + "': larger than 1 MiB");
}

// HTTPS with a self-signed certificate made here by the openssl command, checked with the real
// curl command (which verifies the certificate against it and the name 127.0.0.1).
class HttpEndpointTls : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v openssl >/dev/null && command -v curl >/dev/null") != 0) {
      GTEST_SKIP() << "needs the openssl and curl commands (packages openssl, curl)";
    }
    if (!make_certificate("server")) GTEST_FAIL() << "openssl req failed";
  }

  // server.crt / server.key for CN and subjectAltName IP:127.0.0.1, valid a day.
  bool make_certificate(const std::string& name) const {
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
        path(name + ".key") + " -out " + path(name + ".crt") + " >/dev/null 2>&1";
    return std::system(command.c_str()) == 0 && ::chmod(path(name + ".key").c_str(), 0600) == 0;
  }

  [[nodiscard]] std::string path(const std::string& name) const { return dir_.file_path(name); }

  HttpEndpointOptions options() const {
    HttpEndpointOptions o;
    o.listen = "127.0.0.1:0";
    o.tls_cert_file = path("server.crt");
    o.tls_key_file = path("server.key");
    return o;
  }

  // curl's exit code, and what it printed: the body, then the status and content type.
  std::pair<int, std::string> curl(const std::string& url, const std::string& extra = "") const {
    const std::string output = path("curl.out");
    const std::string command = "curl --silent --show-error --max-time 10 --cacert " +
                                path("server.crt") + " " + extra +
                                " --write-out '\\n%{http_code} %{content_type}' --output - '" +
                                url + "' >" + output + " 2>&1";
    const int status = std::system(command.c_str());
    std::ifstream in(output);
    std::stringstream text;
    text << in.rdbuf();
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str()};
  }

  TempDir dir_;
};

TEST_F(HttpEndpointTls, ServesMetricsAndTheLandingPageOverHttpsOnly) {
  const auto endpoint = start(options());
  ASSERT_TRUE(endpoint);
  const std::string base = "https://127.0.0.1:" + std::to_string(port_of(*endpoint));
  const auto [code, out] = curl(base + "/metrics");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find(kPage), std::string::npos) << out;
  EXPECT_NE(out.find("\n200 text/plain; version=0.0.4; charset=utf-8"), std::string::npos) << out;
  const auto [landing_code, landing] = curl(base + "/");
  EXPECT_EQ(landing_code, 0) << landing;
  EXPECT_NE(landing.find("href=\"/metrics\""), std::string::npos) << landing;
  // Plain HTTP on the HTTPS port gets no HTTP answer.
  EXPECT_EQ(request(port_of(*endpoint), "GET", "/metrics").status, 0);
}

TEST_F(HttpEndpointTls, CombinesWithBasicAuth) {
  auto o = options();
  o.basic_auth_user = "prometheus";
  o.basic_auth_password_file = dir_.file("password", "s3cret\n", 0600);
  const auto endpoint = start(o);
  ASSERT_TRUE(endpoint);
  const std::string url = "https://127.0.0.1:" + std::to_string(port_of(*endpoint)) + "/metrics";
  EXPECT_NE(curl(url).second.find("\n401 "), std::string::npos);
  const auto [code, out] = curl(url, "--user prometheus:s3cret");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("\n200 "), std::string::npos) << out;
}

TEST_F(HttpEndpointTls, AClientThatDoesNotTrustTheCertificateIsRefused) {
  ASSERT_TRUE(make_certificate("other"));
  const auto endpoint = start(options());
  ASSERT_TRUE(endpoint);
  const std::string url = "https://127.0.0.1:" + std::to_string(port_of(*endpoint)) + "/metrics";
  // curl exit 60: the peer's certificate cannot be verified with the given CA.
  const auto [code, out] = curl(url, "--cacert " + path("other.crt"));
  EXPECT_EQ(code, 60) << out;
}

TEST_F(HttpEndpointTls, MissingOrMismatchedFilesAreErrorsNamingThem) {
  auto missing = options();
  missing.tls_key_file = "/nonexistent/synwatch.key";
  auto endpoint = HttpEndpoint::start(missing, [] { return std::string(); });
  ASSERT_FALSE(endpoint);
  EXPECT_NE(endpoint.error().message.find("metrics.tls_key_file '/nonexistent/synwatch.key'"),
            std::string::npos)
      << endpoint.error().message;
  EXPECT_EQ(endpoint.error().kind, ErrorKind::kNotFound);

  ASSERT_TRUE(make_certificate("other"));
  auto mismatched = options();
  mismatched.tls_key_file = path("other.key");
  endpoint = HttpEndpoint::start(mismatched, [] { return std::string(); });
  ASSERT_FALSE(endpoint);
  EXPECT_NE(
      endpoint.error().message.find("metrics.tls_key_file is the key of metrics.tls_cert_file"),
      std::string::npos)
      << endpoint.error().message;
}

TEST_F(HttpEndpointTls, WarnsWhenOthersMayReadTheKey) {
  ASSERT_EQ(::chmod(path("server.key").c_str(), 0644), 0);
  LogCapture log;
  ASSERT_TRUE(start(options()));
  EXPECT_EQ(log.count("metrics.tls_key_file '" + path("server.key") +
                      "' is readable by everyone (mode 0644)"),
            1u)
      << log.text();
}

TEST(HttpEndpointLimits, IdleConnectionIsClosedAfterTheTimeout) {
  HttpEndpointOptions options;
  options.connection_timeout = 1s;
  const auto endpoint = start(options);
  ASSERT_TRUE(endpoint);
  const int fd = connect_to(port_of(*endpoint), 5000ms);
  ASSERT_GE(fd, 0);
  const auto started = Clock::now();
  std::array<char, 16> buffer{};
  const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);  // blocks until closed
  const auto waited = Clock::now() - started;
  close(fd);
  EXPECT_EQ(n, 0);
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 3s);
}

TEST(HttpEndpointLimits, ClientTricklingAHeaderIsShedAtTheRequestDeadline) {
  HttpEndpointOptions options;
  options.connection_timeout = 2s;
  options.request_deadline = 1s;
  const auto endpoint = start(options);
  ASSERT_TRUE(endpoint);
  const int fd = connect_to(port_of(*endpoint), 200ms);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n"));
  const auto started = Clock::now();
  bool closed = false;
  while (!closed && Clock::now() - started < 5s) {
    // A byte every 200 ms: never idle long enough for the inactivity timeout.
    closed = !send_all(fd, "X");
    std::array<char, 16> buffer{};
    const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n > 0) ADD_FAILURE() << "answered: " << std::string(buffer.data(), n);
    closed = closed || n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }
  const auto waited = Clock::now() - started;
  close(fd);
  EXPECT_TRUE(closed);
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 2500ms);
  EXPECT_EQ(endpoint->stats().connections_shed, 1u);
}

TEST(HttpEndpointLimits, OneAddressGetsAtMostItsShareOfConnections) {
  HttpEndpointOptions options;
  options.per_address_connection_limit = 4;
  const auto endpoint = start(options);
  ASSERT_TRUE(endpoint);
  const int port = port_of(*endpoint);
  std::vector<int> held(4);
  for (int& fd : held) fd = connect_to(port);
  std::this_thread::sleep_for(100ms);  // all four accepted
  // The fifth is accepted by the kernel and closed by the server without an answer.
  EXPECT_EQ(request(port, "GET", "/metrics").status, 0);
  close(held.back());
  held.pop_back();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(request(port, "GET", "/metrics").status, 200);
  for (const int fd : held) close(fd);
}

// 500 clients trickling a request header and 50 that send nothing, against the default limits:
// ten scrapes in a row each answered within a second.
TEST(HttpEndpointLimits, SlowAndIdleClientsDoNotStarveScrapes) {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < 2048) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, 4096);
    setrlimit(RLIMIT_NOFILE, &files);
  }
  if (files.rlim_cur < 1200) GTEST_SKIP() << "needs 1200 file descriptors";

  const auto endpoint = start({});
  ASSERT_TRUE(endpoint);
  const int port = port_of(*endpoint);
  std::vector<int> slow;
  std::vector<int> idle;
  for (int i = 0; i < 500; ++i) {
    const int fd = connect_to(port);
    ASSERT_GE(fd, 0) << i;
    ASSERT_TRUE(send_all(fd, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")) << i;
    slow.push_back(fd);
  }
  for (int i = 0; i < 50; ++i) {
    const int fd = connect_to(port);
    ASSERT_GE(fd, 0) << i;
    idle.push_back(fd);
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    while (!stop.load()) {
      for (const int fd : slow) send(fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      std::this_thread::sleep_for(100ms);
    }
  });
  std::this_thread::sleep_for(300ms);
  for (int scrape = 0; scrape < 10; ++scrape) {
    const auto started = Clock::now();
    const Reply reply = request(port, "GET", "/metrics");
    const auto took = Clock::now() - started;
    EXPECT_EQ(reply.status, 200) << "scrape " << scrape;
    EXPECT_EQ(reply.body, kPage) << "scrape " << scrape;
    EXPECT_LT(took, 1s) << "scrape " << scrape << " took "
                        << std::chrono::duration<double>(took).count() << " s";
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(endpoint->stats().connections_shed, 0u);  // all 550 were held the whole time
  stop.store(true);
  trickle.join();
  for (const int fd : slow) close(fd);
  for (const int fd : idle) close(fd);
}

}  // namespace
}  // namespace synwatch
