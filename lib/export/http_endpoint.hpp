#pragma once
// The small HTTP/1.1 server behind the Prometheus /metrics page (libmicrohttpd, event-driven).
//
// One thread of its own runs libmicrohttpd in its epoll mode: every connection, slow or idle, is
// only a socket in one epoll set, so clients that send nothing, or a header a byte at a time,
// hold no worker and cannot starve scrapes. Each connection is bounded:
// - inactivity: closed after connection_timeout without a byte either way (MHD's own timeout);
// - time: each request must be read and answered within request_deadline of the connection
//   becoming ready for it (accepted, or the previous response sent). MHD's timeout alone would
//   keep a client that trickles a byte now and then; the deadline sheds it;
// - memory: connection_memory_limit for the request line, headers and response headers;
// and at most connection_limit connections are open at once (more wait in the listen backlog),
// at most per_address_connection_limit of them from one address (more are closed at once), so
// that one address cannot fill them all.
//
// With tls_cert_file and tls_key_file it speaks HTTPS only (TLS 1.2 and later, GnuTLS's default
// priorities): a plain HTTP request then fails its handshake.
//
// Routes: GET and HEAD on exactly /metrics (the render function's page, Prometheus text format)
// and / (a landing page linking to /metrics); any other path 404; another method on those two
// 405 with Allow. With basic auth configured every request needs it (constant-time comparison).
// Failed attempts are throttled per client (IPv4 address, IPv6 /64): a bucket of
// auth_failure_burst failures refilled at one per auth_failure_refill; while it is empty the
// client is answered 429 without its credentials being checked. The first failure is logged,
// then at most one summary line per auth_log_interval with the count and client addresses.
//
// Thread safety: start() and the destructor from the owner's thread. render is called on the
// server's thread and must be safe against whatever the owner does meanwhile. listening_ports()
// and stats() from any thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace synwatch {

struct HttpEndpointOptions {
  std::string listen;  // "address:port" or "[v6 address]:port", numeric; port 0: any free port
  std::string basic_auth_user;           // empty = no authentication
  std::string basic_auth_password_file;  // its first line is the password
  // HTTPS (libmicrohttpd with GnuTLS) when both are set: PEM certificate chain and private key.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::chrono::seconds connection_timeout{5};
  std::chrono::seconds request_deadline{10};
  unsigned connection_limit = 1024;
  unsigned per_address_connection_limit = 768;
  std::size_t connection_memory_limit = 16384;
  unsigned auth_failure_burst = 5;
  std::chrono::milliseconds auth_failure_refill{1000};
  std::chrono::milliseconds auth_log_interval{60'000};
};

struct HttpEndpointStats {
  std::uint64_t requests = 0;          // requests answered, any status
  std::uint64_t auth_failures = 0;     // 401 for missing or wrong credentials
  std::uint64_t auth_throttled = 0;    // 429 without checking
  std::uint64_t internal_errors = 0;   // 500: rendering or answering threw
  std::uint64_t connections_shed = 0;  // closed for missing request_deadline
};

class HttpEndpoint {
 public:
  using Render = std::function<std::string()>;
  static constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

  // Binds, reads the password file and the TLS key (warning when group or others may read them)
  // and certificate, and starts the server thread. Errors name the address or file and the
  // reason.
  static Expected<std::unique_ptr<HttpEndpoint>> start(const HttpEndpointOptions& options,
                                                       Render render);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  [[nodiscard]] std::vector<int> listening_ports() const;
  [[nodiscard]] HttpEndpointStats stats() const;

 private:
  struct Impl;
  explicit HttpEndpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace synwatch
