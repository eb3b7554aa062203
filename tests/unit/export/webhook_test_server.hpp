#pragma once
// A tiny real HTTP/1.1 server for webhook tests: listens on 127.0.0.1 (port 0 = any free port),
// keeps connections alive, reads Content-Length bodies, records every request and answers with
// the status the test's handler returns (the handler may sleep to play a slow receiver).
// Thread safety: one thread per connection; requests() and wait_for() from the test thread.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace synwatch::testing {

struct HttpRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  int status = 0;  // what the server answered
  std::chrono::steady_clock::time_point received;
  [[nodiscard]] std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class TestHttpServer {
 public:
  using Handler = std::function<int(const HttpRequest&)>;

  explicit TestHttpServer(Handler handler = {}, std::uint16_t port = 0)
      : handler_(handler ? std::move(handler) : [](const HttpRequest&) { return 200; }) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 64) != 0) {
      ::close(listener_);
      listener_ = -1;
      return;
    }
    socklen_t length = sizeof address;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~TestHttpServer() { stop(); }
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  [[nodiscard]] bool ok() const { return listener_ >= 0; }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  // The body of every answer from now on ("ok" until set).
  void set_response_body(std::string body) {
    std::lock_guard lock(mutex_);
    response_body_ = std::move(body);
  }
  // Bytes of answer bodies the kernel took from this server (what a client could have read).
  [[nodiscard]] std::size_t body_bytes_sent() const { return body_bytes_sent_; }

  std::vector<HttpRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  // Requests answered 2xx, in arrival order.
  std::vector<HttpRequest> accepted() const {
    std::vector<HttpRequest> out;
    for (auto& r : requests()) {
      if (r.status >= 200 && r.status < 300) out.push_back(r);
    }
    return out;
  }
  // Waits until at least `count` requests were answered 2xx.
  bool wait_for_accepted(std::size_t count, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] {
      return static_cast<std::size_t>(std::ranges::count_if(requests_, [](const HttpRequest& r) {
               return r.status >= 200 && r.status < 300;
             })) >= count;
    });
  }
  bool wait_for_requests(std::size_t count, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= count; });
  }

  void stop() {
    if (stopping_.exchange(true)) return;
    if (listener_ >= 0) ::shutdown(listener_, SHUT_RDWR);
    if (acceptor_.joinable()) acceptor_.join();
    {
      std::lock_guard lock(mutex_);
      for (int fd : connections_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : workers_) t.join();
    if (listener_ >= 0) ::close(listener_);
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      pollfd pfd{listener_, POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard lock(mutex_);
      connections_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    std::string buffer;
    char chunk[65536];
    while (!stopping_) {
      const auto header_end = buffer.find("\r\n\r\n");
      if (header_end == std::string::npos) {
        const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        buffer.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      HttpRequest request;
      const std::string head = buffer.substr(0, header_end);
      std::size_t line_end = head.find("\r\n");
      const std::string request_line = head.substr(0, line_end);
      request.method = request_line.substr(0, request_line.find(' '));
      const auto target_start = request_line.find(' ') + 1;
      request.target =
          request_line.substr(target_start, request_line.find(' ', target_start) - target_start);
      while (line_end != std::string::npos && line_end < head.size()) {
        const auto next = head.find("\r\n", line_end + 2);
        const std::string line = head.substr(
            line_end + 2, next == std::string::npos ? std::string::npos : next - line_end - 2);
        const auto colon = line.find(':');
        if (colon != std::string::npos) {
          std::string name = line.substr(0, colon);
          std::ranges::transform(name, name.begin(), [](unsigned char c) {
            return static_cast<char>(std::tolower(c));
          });
          std::string value = line.substr(colon + 1);
          value.erase(0, value.find_first_not_of(' '));
          request.headers[name] = value;
        }
        line_end = next;
      }
      const std::size_t length = request.headers.contains("content-length")
                                     ? std::stoul(request.headers["content-length"])
                                     : 0;
      while (buffer.size() < header_end + 4 + length) {
        const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) return finish(fd);
        buffer.append(chunk, static_cast<std::size_t>(n));
      }
      request.body = buffer.substr(header_end + 4, length);
      buffer.erase(0, header_end + 4 + length);
      request.received = std::chrono::steady_clock::now();
      request.status = handler_(request);
      std::string body;
      {
        std::lock_guard lock(mutex_);
        body = response_body_;
      }
      const std::string reply = "HTTP/1.1 " + std::to_string(request.status) +
                                " X\r\nContent-Length: " + std::to_string(body.size()) +
                                "\r\nConnection: keep-alive\r\n\r\n";
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(request);
      }
      changed_.notify_all();
      if (::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) break;
      if (!send_body(fd, body)) break;
    }
    finish(fd);
  }
  bool send_body(int fd, std::string_view body) {
    while (!body.empty()) {
      const ssize_t n =
          ::send(fd, body.data(), std::min<std::size_t>(body.size(), 65536), MSG_NOSIGNAL);
      if (n <= 0) return false;
      body_bytes_sent_ += static_cast<std::size_t>(n);
      body.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  void finish(int fd) {
    std::lock_guard lock(mutex_);
    std::erase(connections_, fd);
    ::close(fd);
  }

  Handler handler_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<HttpRequest> requests_;
  std::string response_body_ = "ok";
  std::atomic<std::size_t> body_bytes_sent_{0};
  std::vector<int> connections_;
  std::vector<std::thread> workers_;
};

// A port with nothing listening: bound and released, so a later bind to it usually succeeds.
inline std::uint16_t unused_port() {
  TestHttpServer probe;
  const auto port = probe.port();
  probe.stop();
  return port;
}

}  // namespace synwatch::testing
