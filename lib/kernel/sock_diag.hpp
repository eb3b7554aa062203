#pragma once
// The kernel's own table of TCP sockets, read over NETLINK_SOCK_DIAG (inet_diag, the interface
// `ss` uses) in the caller's network namespace, IPv4 and IPv6: the SYN_RECV request sockets
// (`netstat -nap | grep SYN_RECV`), the listeners' accept queue and backlog (`ss -lnt` Recv-Q /
// Send-Q) and, on demand, the sockets whose handshake completed.
//
// The parser (DiagParser) is separate from the socket so that recorded replies can be tested.
// Memory: one receive buffer allocated at construction and the result vectors, which are cleared
// and refilled on every poll; they grow only until they hold the largest table seen.
// Thread safety: none; one poller per thread. Buffer ownership: the poller owns its buffer and
// result vectors; references returned stay valid until the next poll.

#include <compare>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/ip_address.hpp"

namespace synwatch {

// One connection the kernel tracks: local endpoint (the destination a SYN was sent to) and the
// peer (the SYN's source).
struct KernelSocket {
  Endpoint local;
  Endpoint remote;
  std::uint8_t state = 0;        // TCP_* from netinet/tcp.h (TCP_SYN_RECV = 3, TCP_LISTEN = 10)
  std::uint8_t retransmits = 0;  // SYN-ACKs retransmitted (request sockets)

  friend auto operator<=>(const KernelSocket& a, const KernelSocket& b) {
    if (auto c = a.local <=> b.local; std::is_neq(c)) return c;
    return a.remote <=> b.remote;
  }
  friend bool operator==(const KernelSocket& a, const KernelSocket& b) {
    return a.local == b.local && a.remote == b.remote;
  }
};

struct KernelListener {
  Endpoint local;   // address may be 0.0.0.0 or :: (every address)
  bool v6 = false;  // family of the socket (a wildcard :: listener may take IPv4 too)
  std::uint32_t accept_queue = 0;  // connections completed, not yet accept()ed (Recv-Q)
  std::uint32_t backlog = 0;       // listen() backlog capped by somaxconn (Send-Q)
};

enum class DiagParseStatus : std::uint8_t {
  kMore,       // messages consumed; the dump continues in the next datagram
  kDone,       // NLMSG_DONE seen
  kError,      // the kernel answered NLMSG_ERROR (error() holds errno)
  kMalformed,  // a message is truncated or inconsistent; the dump is abandoned
};

// Parses the datagrams of one inet_diag dump reply. Sockets in TCP_LISTEN go to `listeners`,
// every other state to `sockets`.
class DiagParser {
 public:
  // `sequence`: only messages answering this request count (0 = any, for recorded replies);
  // leftovers of an abandoned earlier dump are skipped.
  DiagParser(std::vector<KernelSocket>& sockets, std::vector<KernelListener>& listeners,
             std::uint32_t sequence = 0) noexcept
      : sockets_(sockets), listeners_(listeners), sequence_(sequence) {}

  DiagParseStatus feed(std::span<const std::uint8_t> datagram) noexcept;
  [[nodiscard]] int error() const noexcept { return error_; }
  // What was wrong, for kMalformed (a static string).
  [[nodiscard]] const char* problem() const noexcept { return problem_; }

 private:
  std::vector<KernelSocket>& sockets_;
  std::vector<KernelListener>& listeners_;
  std::uint32_t sequence_;
  int error_ = 0;
  const char* problem_ = "";
};

struct SockDiagStats {
  std::uint64_t polls = 0;
  std::uint64_t failures = 0;
};

class SockDiagPoller {
 public:
  // Opens the NETLINK_SOCK_DIAG socket (needs no privilege).
  static Expected<SockDiagPoller> open();
  SockDiagPoller(SockDiagPoller&& other) noexcept;
  SockDiagPoller& operator=(SockDiagPoller&&) = delete;
  SockDiagPoller(const SockDiagPoller&) = delete;
  ~SockDiagPoller();

  // One dump per family of SYN_RECV request sockets and listeners. On success, syn_recv() and
  // listeners() hold this poll's view (unordered).
  Expected<void> poll_syn_recv();
  // One dump per family of sockets whose handshake completed (ESTABLISHED through TIME_WAIT)
  // whose local port is in `ports` (filtered in the kernel); into completed(), sorted.
  Expected<void> poll_completed(std::span<const std::uint16_t> ports);

  [[nodiscard]] const std::vector<KernelSocket>& syn_recv() const noexcept { return syn_recv_; }
  [[nodiscard]] const std::vector<KernelListener>& listeners() const noexcept { return listeners_; }
  [[nodiscard]] const std::vector<KernelSocket>& completed() const noexcept { return completed_; }
  [[nodiscard]] const SockDiagStats& counters() const noexcept { return counters_; }

  // Test fixtures: every reply datagram received is also handed to `recorder` (empty = none).
  void set_recorder(
      std::function<void(int family, std::uint32_t states, std::span<const std::uint8_t> datagram)>
          recorder) {
    recorder_ = std::move(recorder);
  }

 private:
  explicit SockDiagPoller(int fd);
  Expected<void> dump(std::uint8_t family, std::uint32_t states,
                      std::span<const std::uint8_t> filter, std::vector<KernelSocket>& sockets,
                      std::vector<KernelListener>& listeners);

  int fd_ = -1;
  std::uint32_t sequence_ = 0;
  std::vector<std::uint8_t> buffer_;
  std::vector<std::uint8_t> request_;
  std::vector<std::uint8_t> request_filter_;
  std::vector<KernelSocket> syn_recv_;
  std::vector<KernelListener> listeners_;
  std::vector<KernelSocket> completed_;
  std::vector<KernelListener> ignored_listeners_;
  SockDiagStats counters_;
  std::function<void(int, std::uint32_t, std::span<const std::uint8_t>)> recorder_;
};

// inet_diag bytecode that accepts sockets whose local port is one of `ports` (at most 256 are
// used; with more, the filter is empty and everything is accepted). Exposed for tests.
void build_local_port_filter(std::span<const std::uint16_t> ports, std::vector<std::uint8_t>& out);

}  // namespace synwatch
