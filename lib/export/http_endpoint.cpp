#include "export/http_endpoint.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

namespace synwatch {

namespace {

using Clock = std::chrono::steady_clock;
using Digest = std::array<unsigned char, 32>;

constexpr std::string_view kLandingPage =
    "<!DOCTYPE html>\n<html><head><title>synwatch exporter</title></head>\n"
    "<body><h1>synwatch exporter</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

std::string errno_text(int error) {
  std::array<char, 256> buffer{};
  return strerror_r(error, buffer.data(), buffer.size());  // GNU strerror_r returns the text
}

struct HostPort {
  std::string host;
  std::string port;
};

// "address:port" or "[v6 address]:port", numeric (no name lookup at start); an empty address is
// every IPv4 address.
Expected<HostPort> split_listen(const std::string& listen) {
  HostPort out;
  if (!listen.empty() && listen.front() == '[') {
    const auto close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return make_unexpected(ErrorKind::kInvalidInput, "expected [address]:port");
    }
    out.host = listen.substr(1, close - 1);
    out.port = listen.substr(close + 2);
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
      return make_unexpected(ErrorKind::kInvalidInput, "expected address:port");
    }
    out.host = listen.substr(0, colon);
    out.port = listen.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) {
      return make_unexpected(ErrorKind::kInvalidInput,
                             "an IPv6 address needs brackets: [address]:port");
    }
  }
  const bool digits =
      !out.port.empty() && out.port.size() <= 5 &&
      std::all_of(out.port.begin(), out.port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoi(out.port) > 65535) {
    return make_unexpected(ErrorKind::kInvalidInput, "bad port '" + out.port + "'");
  }
  if (out.host.empty()) out.host = "0.0.0.0";
  return out;
}

struct Listener {
  int fd = -1;
  bool ipv6 = false;
  int port = 0;
};

Expected<Listener> bind_listener(const std::string& listen) {
  const auto where = split_listen(listen);
  if (!where) return std::unexpected(where.error());
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(where->host.c_str(), where->port.c_str(), &hints, &found);
      rc != 0) {
    return make_unexpected(ErrorKind::kInvalidInput,
                           "'" + where->host + "' is not an IP address: " + gai_strerror(rc));
  }
  const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, &freeaddrinfo);
  Listener out;
  out.ipv6 = found->ai_family == AF_INET6;
  out.fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (out.fd < 0) return std::unexpected(Error::from_errno(errno, "socket"));
  const int one = 1;
  // Restarts must not wait for TIME_WAIT; "[::]" means IPv6 only, as an explicit address would.
  bool ok = setsockopt(out.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            (!out.ipv6 || setsockopt(out.fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0) &&
            bind(out.fd, found->ai_addr, found->ai_addrlen) == 0 &&
            ::listen(out.fd, SOMAXCONN) == 0;
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  ok = ok && getsockname(out.fd, reinterpret_cast<sockaddr*>(&bound), &length) == 0;
  if (!ok) {
    const int error = errno;
    close(out.fd);
    // The bare reason: the caller's message names the address already.
    return make_unexpected(Error::kind_of_errno(error), errno_text(error));
  }
  out.port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  return out;
}

Digest sha256(std::string_view text) {
  Digest out{};
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), out.data(), &length, EVP_sha256(), nullptr);
  return out;
}

// The contents of a file (at most 1 MiB) named by config key `key`; when `is_secret`, warns
// if group or others may read it.
Expected<std::string> read_config_file(const std::string& path, std::string_view key,
                                       bool is_secret) {
  const std::string what = "cannot read " + std::string(key) + " '" + path + "'";
  const auto failed = [&](int error) { return std::unexpected(Error::from_errno(error, what)); };
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return failed(errno);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int error = errno;
    close(fd);
    return failed(error);
  }
  constexpr std::size_t kMaxBytes = 1 << 20;
  std::string text;
  std::array<char, 4096> buffer{};
  ssize_t n = 0;
  while (text.size() <= kMaxBytes && (n = read(fd, buffer.data(), buffer.size())) > 0) {
    text.append(buffer.data(), static_cast<std::size_t>(n));
  }
  const int error = errno;
  close(fd);
  if (n < 0) {
    OPENSSL_cleanse(text.data(), text.size());
    return failed(error);
  }
  if (text.size() > kMaxBytes) {
    OPENSSL_cleanse(text.data(), text.size());
    return make_unexpected(ErrorKind::kResourceExhausted, what + ": larger than 1 MiB");
  }
  if (is_secret && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    spdlog::warn(
        "{} '{}' is readable by {} (mode {:04o}): make it readable by its owner only "
        "(chmod 600)",
        key, path, (st.st_mode & S_IROTH) != 0 ? "everyone" : "its group", st.st_mode & 07777);
  }
  return text;
}

// The first line of the password file.
Expected<std::string> read_password(const std::string& path) {
  auto text = read_config_file(path, "metrics.basic_auth_password_file", true);
  if (!text) return std::unexpected(text.error());
  std::string line = text->substr(0, text->find('\n'));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  OPENSSL_cleanse(text->data(), text->size());
  return line;
}

std::string address_text(const sockaddr* address) {
  std::array<char, INET6_ADDRSTRLEN> buffer{};
  if (address == nullptr) return "unknown";
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    return inet_ntop(AF_INET, &in->sin_addr, buffer.data(), buffer.size()) != nullptr
               ? buffer.data()
               : "unknown";
  }
  if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      return inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buffer.data(), buffer.size()) !=
                     nullptr
                 ? buffer.data()
                 : "unknown";
    }
    return inet_ntop(AF_INET6, &in6->sin6_addr, buffer.data(), buffer.size()) != nullptr
               ? buffer.data()
               : "unknown";
  }
  return "unknown";
}

// What failed attempts are counted against: the IPv4 address, or the IPv6 /64 (one host's
// share of a network, which it can fill with addresses).
std::string throttle_key(const sockaddr* address) {
  if (address != nullptr && address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      in6_addr prefix{};
      std::memcpy(prefix.s6_addr, in6->sin6_addr.s6_addr, 8);
      std::array<char, INET6_ADDRSTRLEN> buffer{};
      inet_ntop(AF_INET6, &prefix, buffer.data(), buffer.size());
      return std::string(buffer.data()) + "/64";
    }
  }
  return address_text(address);
}

// A token bucket of failed attempts per client. Bounded: past kMaxClients clients, the ones
// whose bucket is full again are forgotten, and clients that still find no room share one bucket.
// Server thread only.
class AuthThrottle {
 public:
  AuthThrottle(unsigned burst, Clock::duration refill)
      : burst_(burst), refill_(refill), overflow_{static_cast<double>(burst), Clock::now()} {}

  // True while the client has no attempt left: answer 429 without checking.
  bool blocked(const std::string& key, Clock::time_point now) {
    Bucket* bucket = find(key);
    if (bucket == nullptr) return false;
    refill(*bucket, now);
    return bucket->tokens < 1;
  }

  void failed(const std::string& key, Clock::time_point now) {
    Bucket* bucket = find(key);
    if (bucket == nullptr || bucket == &overflow_) {
      prune(now);
      bucket = buckets_.size() < kMaxClients
                   ? &buckets_.emplace(key, Bucket{static_cast<double>(burst_), now}).first->second
                   : &overflow_;
    }
    refill(*bucket, now);
    bucket->tokens = std::max(0.0, bucket->tokens - 1);
  }

 private:
  static constexpr std::size_t kMaxClients = 4096;
  struct Bucket {
    double tokens;
    Clock::time_point at;
  };

  Bucket* find(const std::string& key) {
    if (const auto it = buckets_.find(key); it != buckets_.end()) return &it->second;
    return buckets_.size() >= kMaxClients ? &overflow_ : nullptr;
  }

  void refill(Bucket& bucket, Clock::time_point now) const {
    const double gained = std::chrono::duration<double>(now - bucket.at) / refill_;
    bucket.tokens = std::min(static_cast<double>(burst_), bucket.tokens + gained);
    bucket.at = now;
  }

  // At most once a second: a full table is walked only that often.
  void prune(Clock::time_point now) {
    if (buckets_.size() < kMaxClients || now - last_prune_ < std::chrono::seconds(1)) return;
    last_prune_ = now;
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      refill(it->second, now);
      it = it->second.tokens >= static_cast<double>(burst_) ? buckets_.erase(it) : std::next(it);
    }
  }

  unsigned burst_;
  Clock::duration refill_;
  std::unordered_map<std::string, Bucket> buckets_;
  Bucket overflow_;
  Clock::time_point last_prune_{};
};

// Logs the first failed attempt at once, then at most one summary line per interval: a flood of
// wrong passwords costs a few log lines. Server thread only.
class AuthLog {
 public:
  explicit AuthLog(Clock::duration interval) : interval_(interval) {}

  void failed(const std::string& client, Clock::time_point now) { record(client, now, false); }
  void throttled(const std::string& client, Clock::time_point now) { record(client, now, true); }

  void flush(Clock::time_point now) {
    if (pending_ == 0 || now - last_line_ < interval_) return;
    std::string clients;
    for (const auto& [address, count] : by_client_) {
      clients += (clients.empty() ? "" : ", ") + address + " (" + std::to_string(count) + ")";
    }
    if (other_clients_ > 0) {
      clients += " and " + std::to_string(other_clients_) + " more attempts from other addresses";
    }
    spdlog::warn(
        "metrics: {} more failed basic auth attempts in the last {:.0f} s, {} of them answered 429 "
        "without checking; from {}",
        pending_, std::chrono::duration<double>(now - last_line_).count(), pending_throttled_,
        clients);
    last_line_ = now;
    pending_ = 0;
    pending_throttled_ = 0;
    other_clients_ = 0;
    by_client_.clear();
  }

 private:
  static constexpr std::size_t kMaxListed = 10;

  void record(const std::string& client, Clock::time_point now, bool throttled) {
    if (!throttled && pending_ == 0 && (!logged_ || now - last_line_ >= interval_)) {
      spdlog::warn("metrics: failed basic auth from {} (further failures: one line per {} s)",
                   client, std::chrono::duration_cast<std::chrono::seconds>(interval_).count());
      logged_ = true;
      last_line_ = now;
      return;
    }
    ++pending_;
    pending_throttled_ += throttled ? 1 : 0;
    if (by_client_.size() < kMaxListed || by_client_.contains(client)) {
      ++by_client_[client];
    } else {
      ++other_clients_;
    }
  }

  Clock::duration interval_;
  bool logged_ = false;
  Clock::time_point last_line_{};
  std::uint64_t pending_ = 0;
  std::uint64_t pending_throttled_ = 0;
  std::uint64_t other_clients_ = 0;
  std::map<std::string, std::uint64_t> by_client_;
};

struct Header {
  const char* name;
  const char* value;
};

MHD_Result answer(MHD_Connection* connection, unsigned status, std::string_view body,
                  const char* content_type, std::initializer_list<Header> headers = {}) {
  MHD_Response* response = MHD_create_response_from_buffer(
      body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  for (const auto& header : headers) MHD_add_response_header(response, header.name, header.value);
  const MHD_Result result = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return result;
}

constexpr const char* kTextPlain = "text/plain; charset=utf-8";

}  // namespace

struct HttpEndpoint::Impl {
  Impl(const HttpEndpointOptions& o, Render r)
      : options(o),
        render(std::move(r)),
        throttle(o.auth_failure_burst, o.auth_failure_refill),
        auth_log(o.auth_log_interval) {}

  ~Impl() {
    OPENSSL_cleanse(tls_key.data(), tls_key.size());
    if (thread.joinable()) {
      stopping.store(true);
      const std::uint64_t one = 1;
      if (write(wake_fd, &one, sizeof one) < 0) spdlog::debug("metrics: wake: {}", errno);
      thread.join();
    }
    if (daemon != nullptr) MHD_stop_daemon(daemon);  // closes the listening socket
    if (epoll_fd >= 0) close(epoll_fd);
    if (wake_fd >= 0) close(wake_fd);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // The server thread: MHD's epoll set and the wake-up eventfd in one epoll, MHD_run after every
  // wake-up, and every 250 ms the request deadlines and the auth log summary.
  void run() noexcept {
    auto next_sweep = Clock::now();
    while (!stopping.load()) {
      try {
        int timeout_ms = 250;
        MHD_UNSIGNED_LONG_LONG mhd_timeout = 0;
        if (MHD_get_timeout(daemon, &mhd_timeout) == MHD_YES) {
          timeout_ms = static_cast<int>(std::min<MHD_UNSIGNED_LONG_LONG>(mhd_timeout, 250));
        }
        std::array<epoll_event, 2> events{};
        epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), timeout_ms);
        if (stopping.load()) break;
        MHD_run(daemon);
        const auto now = Clock::now();
        if (now >= next_sweep) {
          next_sweep = now + std::chrono::milliseconds(250);
          shed_late(now);
          auth_log.flush(now);
        }
      } catch (const std::exception& e) {
        spdlog::error("metrics: HTTP server loop: {}", e.what());
      } catch (...) {
        spdlog::error("metrics: HTTP server loop: unknown exception");
      }
    }
  }

  // Connections whose request is past its deadline get a shutdown(): MHD then reads the end of
  // the stream and closes them itself. On the server thread, so the descriptor is still theirs.
  void shed_late(Clock::time_point now) {
    for (auto& [connection, state] : connections) {
      if (!state.shed && now - state.since > options.request_deadline) {
        state.shed = true;
        connections_shed.fetch_add(1, std::memory_order_relaxed);
        shutdown(state.fd, SHUT_RDWR);
      }
    }
  }

  static void on_connection(void* cls, MHD_Connection* connection, void** /*socket_context*/,
                            MHD_ConnectionNotificationCode code) noexcept {
    auto* self = static_cast<Impl*>(cls);
    try {
      if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const auto* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (info != nullptr) {
          self->connections[connection] = ConnectionState{info->connect_fd, Clock::now(), false};
        }
      } else {
        self->connections.erase(connection);
      }
    } catch (...) {
      // Out of memory: the connection goes without a deadline, still under MHD's timeout.
    }
  }

  // A request answered (or abandoned): the connection's next request has its own deadline.
  static void on_completed(void* cls, MHD_Connection* connection, void** /*request_context*/,
                           MHD_RequestTerminationCode /*code*/) noexcept {
    auto* self = static_cast<Impl*>(cls);
    if (const auto it = self->connections.find(connection); it != self->connections.end()) {
      it->second.since = Clock::now();
    }
  }

  static void on_mhd_log(void* /*cls*/, const char* format, va_list args) noexcept {
    std::array<char, 512> buffer{};
    if (std::vsnprintf(buffer.data(), buffer.size(), format, args) < 0) return;
    std::string_view text(buffer.data());
    while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    spdlog::debug("metrics: libmicrohttpd: {}", text);
  }

  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                               const char* method, const char* /*version*/,
                               const char* /*upload_data*/, std::size_t* upload_data_size,
                               void** request_context) noexcept {
    auto* self = static_cast<Impl*>(cls);
    // GET and HEAD are answered once the whole request is in (a body, if any, read and dropped),
    // which keeps the connection alive for the next scrape. Other methods are answered at once:
    // MHD then closes the connection instead of reading a body nobody wants.
    const std::string_view verb(method);
    const bool readable = verb == MHD_HTTP_METHOD_GET || verb == MHD_HTTP_METHOD_HEAD;
    if (*request_context == nullptr && readable) {
      *request_context = self;
      return MHD_YES;
    }
    if (*upload_data_size != 0) {
      *upload_data_size = 0;
      return MHD_YES;
    }
    self->requests.fetch_add(1, std::memory_order_relaxed);
    try {
      return self->route(connection, url, method);
    } catch (const std::exception& e) {
      self->internal_error(e.what());
    } catch (...) {
      self->internal_error("unknown exception");
    }
    try {
      return answer(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error\n",
                    kTextPlain);
    } catch (...) {
      return MHD_NO;  // closes the connection
    }
  }

  void internal_error(const char* what) {
    internal_errors.fetch_add(1, std::memory_order_relaxed);
    const auto now = Clock::now();
    if (last_error_log_ != Clock::time_point{} &&
        now - last_error_log_ < options.auth_log_interval) {
      ++errors_unlogged_;
      return;
    }
    spdlog::error("metrics: answering a request failed: {} ({} more failures since the last line)",
                  what, errors_unlogged_);
    last_error_log_ = now;
    errors_unlogged_ = 0;
  }

  MHD_Result route(MHD_Connection* connection, std::string_view path, std::string_view method) {
    if (auth) {
      const auto* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
      const sockaddr* client = info != nullptr ? info->client_addr : nullptr;
      const std::string key = throttle_key(client);
      const auto now = Clock::now();
      if (throttle.blocked(key, now)) {
        auth_throttled.fetch_add(1, std::memory_order_relaxed);
        auth_log.throttled(address_text(client), now);
        const auto retry = std::chrono::ceil<std::chrono::seconds>(options.auth_failure_refill);
        return answer(connection, MHD_HTTP_TOO_MANY_REQUESTS, "Too Many Requests\n", kTextPlain,
                      {{MHD_HTTP_HEADER_RETRY_AFTER, std::to_string(retry.count()).c_str()}});
      }
      if (!credentials_match(connection)) {
        auth_failures.fetch_add(1, std::memory_order_relaxed);
        throttle.failed(key, now);
        auth_log.failed(address_text(client), now);
        return answer(connection, MHD_HTTP_UNAUTHORIZED, "Unauthorized\n", kTextPlain,
                      {{MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"synwatch\""}});
      }
    }
    const bool is_metrics = path == "/metrics";
    if (!is_metrics && path != "/") {
      return answer(connection, MHD_HTTP_NOT_FOUND, "Not Found\n", kTextPlain);
    }
    if (method != MHD_HTTP_METHOD_GET && method != MHD_HTTP_METHOD_HEAD) {
      return answer(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed\n", kTextPlain,
                    {{MHD_HTTP_HEADER_ALLOW, "GET, HEAD"}});
    }
    if (!is_metrics) {
      return answer(connection, MHD_HTTP_OK, kLandingPage, "text/html; charset=utf-8");
    }
    const std::string page = render();
    return answer(connection, MHD_HTTP_OK, page, kMetricsContentType);
  }

  // Both digests are always compared, in constant time: neither the user's nor the password's
  // correctness, nor where they differ, shows in the time taken.
  bool credentials_match(MHD_Connection* connection) const {
    char* password = nullptr;
    char* user = MHD_basic_auth_get_username_password(connection, &password);
    bool match = false;
    if (user != nullptr && password != nullptr) {
      const Digest u = sha256(user);
      const Digest p = sha256(password);
      match = (CRYPTO_memcmp(u.data(), user_digest.data(), u.size()) |
               CRYPTO_memcmp(p.data(), password_digest.data(), p.size())) == 0;
    }
    if (password != nullptr) {
      OPENSSL_cleanse(password, std::strlen(password));
      MHD_free(password);
    }
    if (user != nullptr) MHD_free(user);
    return match;
  }

  struct ConnectionState {
    int fd = -1;
    Clock::time_point since;  // accepted, or its previous response sent
    bool shed = false;
  };

  const HttpEndpointOptions options;
  const Render render;
  bool auth = false;
  // PEM text handed to libmicrohttpd, kept for the daemon's lifetime.
  std::string tls_cert;
  std::string tls_key;
  Digest user_digest{};
  Digest password_digest{};
  MHD_Daemon* daemon = nullptr;
  int epoll_fd = -1;
  int wake_fd = -1;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::thread thread;

  // Server thread only.
  std::unordered_map<MHD_Connection*, ConnectionState> connections;
  AuthThrottle throttle;
  AuthLog auth_log;
  Clock::time_point last_error_log_{};
  std::uint64_t errors_unlogged_ = 0;

  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> auth_failures{0};
  std::atomic<std::uint64_t> auth_throttled{0};
  std::atomic<std::uint64_t> internal_errors{0};
  std::atomic<std::uint64_t> connections_shed{0};
};

HttpEndpoint::HttpEndpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpEndpoint::~HttpEndpoint() = default;

Expected<std::unique_ptr<HttpEndpoint>> HttpEndpoint::start(const HttpEndpointOptions& options,
                                                            Render render) {
  auto impl = std::make_unique<Impl>(options, std::move(render));
  if (!options.basic_auth_user.empty()) {
    auto password = read_password(options.basic_auth_password_file);
    if (!password) return std::unexpected(password.error());
    impl->auth = true;
    impl->user_digest = sha256(options.basic_auth_user);
    impl->password_digest = sha256(*password);
    OPENSSL_cleanse(password->data(), password->size());
  }
  const bool tls = !options.tls_cert_file.empty() || !options.tls_key_file.empty();
  if (tls) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      // The configuration asks for what this build cannot do.
      return make_unexpected(
          ErrorKind::kInvalidInput,
          "cannot serve metrics over HTTPS: this libmicrohttpd was built without TLS (GnuTLS)");
    }
    auto cert = read_config_file(options.tls_cert_file, "metrics.tls_cert_file", false);
    if (!cert) return std::unexpected(cert.error());
    auto key = read_config_file(options.tls_key_file, "metrics.tls_key_file", true);
    if (!key) return std::unexpected(key.error());
    impl->tls_cert = std::move(*cert);
    impl->tls_key = std::move(*key);
  }
  const std::string where = "cannot serve metrics on " + options.listen + ": ";
  const auto failed = [&](const Error& reason) { return std::unexpected(reason.prefixed(where)); };
  auto listener = bind_listener(options.listen);
  if (!listener) return failed(listener.error());
  impl->port = listener->port;

  const unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                         (listener->ipv6 ? MHD_USE_IPv6 : MHD_NO_FLAG) |
                         (tls ? MHD_USE_TLS : MHD_NO_FLAG);
  // The TLS options go in an array, so that one MHD_start_daemon call serves both cases.
  std::array<MHD_OptionItem, 3> tls_options{
      {{MHD_OPTION_END, 0, nullptr}, {MHD_OPTION_END, 0, nullptr}, {MHD_OPTION_END, 0, nullptr}}};
  if (tls) {
    tls_options[0] = {MHD_OPTION_HTTPS_MEM_KEY, 0, impl->tls_key.data()};
    tls_options[1] = {MHD_OPTION_HTTPS_MEM_CERT, 0, impl->tls_cert.data()};
  }
  // clang-format off
  // One option and its arguments a line. The logger first, so that every
  // message goes to it.
  impl->daemon = MHD_start_daemon(
      flags, 0, nullptr, nullptr, &Impl::on_request, impl.get(),
      MHD_OPTION_EXTERNAL_LOGGER, &Impl::on_mhd_log, impl.get(),
      MHD_OPTION_LISTEN_SOCKET, listener->fd,
      MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned>(options.connection_timeout.count()),
      MHD_OPTION_CONNECTION_LIMIT, options.connection_limit,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, options.per_address_connection_limit,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, options.connection_memory_limit,
      MHD_OPTION_NOTIFY_CONNECTION, &Impl::on_connection, impl.get(),
      MHD_OPTION_NOTIFY_COMPLETED, &Impl::on_completed, impl.get(),
      MHD_OPTION_ARRAY, tls_options.data(),
      MHD_OPTION_END);
  // clang-format on
  if (impl->daemon == nullptr) {
    // The listening socket is left open: whether MHD closed it on this path is not documented,
    // and closing a descriptor twice could close another thread's.
    return failed({ErrorKind::kIo,
                   tls ? "libmicrohttpd did not start (see the debug log); with TLS, check that "
                         "metrics.tls_key_file is the key of metrics.tls_cert_file"
                       : "libmicrohttpd did not start (see the debug log)"});
  }
  const auto* info = MHD_get_daemon_info(impl->daemon, MHD_DAEMON_INFO_EPOLL_FD);
  impl->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  impl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (info == nullptr || impl->epoll_fd < 0 || impl->wake_fd < 0) {
    return failed(Error::from_errno(errno, "epoll"));
  }
  for (const int fd : {info->epoll_fd, impl->wake_fd}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (epoll_ctl(impl->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
      return failed(Error::from_errno(errno, "epoll"));
    }
  }
  impl->thread = std::thread([raw = impl.get()] { raw->run(); });
  return std::unique_ptr<HttpEndpoint>(new HttpEndpoint(std::move(impl)));
}

std::vector<int> HttpEndpoint::listening_ports() const {
  return {impl_->port};
}

HttpEndpointStats HttpEndpoint::stats() const {
  HttpEndpointStats out;
  out.requests = impl_->requests.load(std::memory_order_relaxed);
  out.auth_failures = impl_->auth_failures.load(std::memory_order_relaxed);
  out.auth_throttled = impl_->auth_throttled.load(std::memory_order_relaxed);
  out.internal_errors = impl_->internal_errors.load(std::memory_order_relaxed);
  out.connections_shed = impl_->connections_shed.load(std::memory_order_relaxed);
  return out;
}

}  // namespace synwatch
