#include "kernel/sock_diag.hpp"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace synwatch {

namespace {

// A dump's datagrams are at most 32 KiB (the kernel's netlink dump skb); 64 KiB never truncates.
constexpr std::size_t kReceiveBuffer = std::size_t{64} * 1024;
constexpr std::size_t kMaxFilterPorts = 256;

constexpr std::uint32_t state_bit(int state) {
  return std::uint32_t{1} << state;
}
constexpr std::uint32_t kSynRecvStates = state_bit(TCP_SYN_RECV) | state_bit(TCP_LISTEN);
// Every state a connection reaches only after its handshake completed.
constexpr std::uint32_t kCompletedStates = state_bit(TCP_ESTABLISHED) | state_bit(TCP_FIN_WAIT1) |
                                           state_bit(TCP_FIN_WAIT2) | state_bit(TCP_TIME_WAIT) |
                                           state_bit(TCP_CLOSE_WAIT) | state_bit(TCP_LAST_ACK) |
                                           state_bit(TCP_CLOSING);

std::uint16_t port_of(__be16 network_order) {
  const auto* b = reinterpret_cast<const std::uint8_t*>(&network_order);
  return static_cast<std::uint16_t>((b[0] << 8) | b[1]);
}

IpAddress address_of(std::uint8_t family, const __be32 words[4]) {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(words);
  return family == AF_INET ? IpAddress::from_v4(bytes) : IpAddress::from_v6(bytes);
}

}  // namespace

DiagParseStatus DiagParser::feed(std::span<const std::uint8_t> datagram) noexcept {
  std::size_t offset = 0;
  while (offset < datagram.size()) {
    const std::size_t left = datagram.size() - offset;
    if (left < sizeof(nlmsghdr)) {
      problem_ = "truncated netlink header";
      return DiagParseStatus::kMalformed;
    }
    nlmsghdr header{};
    std::memcpy(&header, datagram.data() + offset, sizeof header);
    if (header.nlmsg_len < sizeof(nlmsghdr) || header.nlmsg_len > left) {
      problem_ = "netlink message length out of bounds";
      return DiagParseStatus::kMalformed;
    }
    const std::uint8_t* payload = datagram.data() + offset + NLMSG_HDRLEN;
    const std::size_t payload_length = header.nlmsg_len - NLMSG_HDRLEN;
    offset += std::min<std::size_t>(NLMSG_ALIGN(header.nlmsg_len), left);
    if (sequence_ != 0 && header.nlmsg_seq != sequence_) continue;

    if (header.nlmsg_type == NLMSG_DONE) return DiagParseStatus::kDone;
    if (header.nlmsg_type == NLMSG_ERROR) {
      if (payload_length < sizeof(nlmsgerr)) {
        problem_ = "truncated netlink error";
        return DiagParseStatus::kMalformed;
      }
      nlmsgerr error{};
      std::memcpy(&error, payload, sizeof error);
      error_ = -error.error;
      return DiagParseStatus::kError;
    }
    if (header.nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;  // NLMSG_NOOP and the like
    if (payload_length < sizeof(inet_diag_msg)) {
      problem_ = "truncated inet_diag message";
      return DiagParseStatus::kMalformed;
    }
    inet_diag_msg message{};
    std::memcpy(&message, payload, sizeof message);
    if (message.idiag_family != AF_INET && message.idiag_family != AF_INET6) {
      problem_ = "inet_diag message of an unknown address family";
      return DiagParseStatus::kMalformed;
    }
    const Endpoint local{address_of(message.idiag_family, message.id.idiag_src),
                         port_of(message.id.idiag_sport)};
    if (message.idiag_state == TCP_LISTEN) {
      listeners_.push_back(
          {local, message.idiag_family == AF_INET6, message.idiag_rqueue, message.idiag_wqueue});
      continue;
    }
    KernelSocket socket;
    socket.local = local;
    socket.remote = {address_of(message.idiag_family, message.id.idiag_dst),
                     port_of(message.id.idiag_dport)};
    socket.state = message.idiag_state;
    socket.retransmits = message.idiag_retrans;
    sockets_.push_back(socket);
  }
  return DiagParseStatus::kMore;
}

void build_local_port_filter(std::span<const std::uint16_t> ports, std::vector<std::uint8_t>& out) {
  out.clear();
  if (ports.empty() || ports.size() > kMaxFilterPorts) return;
  // Per port: S_COND (op + hostcond) whose "yes" lands on a JMP to the end (accept) and whose
  // "no" skips that JMP to the next port; after the last port a JMP past the end rejects. The
  // kernel's audit walks the "yes" chain, so every op is reachable that way.
  constexpr std::size_t kCond = sizeof(inet_diag_bc_op) + sizeof(inet_diag_hostcond);
  constexpr std::size_t kJump = sizeof(inet_diag_bc_op);
  const std::size_t total = ports.size() * (kCond + kJump) + kJump;
  out.resize(total);
  std::size_t at = 0;
  for (const std::uint16_t port : ports) {
    inet_diag_bc_op cond{};
    cond.code = INET_DIAG_BC_S_COND;
    cond.yes = static_cast<unsigned char>(kCond);
    cond.no = static_cast<unsigned short>(kCond + kJump);
    inet_diag_hostcond host{};
    host.family = AF_UNSPEC;
    host.prefix_len = 0;
    host.port = port;
    std::memcpy(out.data() + at, &cond, sizeof cond);
    std::memcpy(out.data() + at + sizeof cond, &host, sizeof host);
    at += kCond;
    inet_diag_bc_op accept{};
    accept.code = INET_DIAG_BC_JMP;
    accept.yes = static_cast<unsigned char>(kJump);
    accept.no = static_cast<unsigned short>(total - at);
    std::memcpy(out.data() + at, &accept, sizeof accept);
    at += kJump;
  }
  inet_diag_bc_op reject{};
  reject.code = INET_DIAG_BC_JMP;
  reject.yes = static_cast<unsigned char>(kJump);
  reject.no = static_cast<unsigned short>(2 * kJump);
  std::memcpy(out.data() + at, &reject, sizeof reject);
}

Expected<SockDiagPoller> SockDiagPoller::open() {
  const int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    return std::unexpected(Error::from_errno(errno, "cannot open a NETLINK_SOCK_DIAG socket"));
  }
  return SockDiagPoller(fd);
}

SockDiagPoller::SockDiagPoller(int fd) : fd_(fd), buffer_(kReceiveBuffer) {}

SockDiagPoller::SockDiagPoller(SockDiagPoller&& other) noexcept
    : fd_(other.fd_),
      sequence_(other.sequence_),
      buffer_(std::move(other.buffer_)),
      request_(std::move(other.request_)),
      request_filter_(std::move(other.request_filter_)),
      syn_recv_(std::move(other.syn_recv_)),
      listeners_(std::move(other.listeners_)),
      completed_(std::move(other.completed_)),
      ignored_listeners_(std::move(other.ignored_listeners_)),
      counters_(other.counters_),
      recorder_(std::move(other.recorder_)) {
  other.fd_ = -1;
}

SockDiagPoller::~SockDiagPoller() {
  if (fd_ >= 0) ::close(fd_);
}

Expected<void> SockDiagPoller::dump(std::uint8_t family, std::uint32_t states,
                                    std::span<const std::uint8_t> filter,
                                    std::vector<KernelSocket>& sockets,
                                    std::vector<KernelListener>& listeners) {
  if (++sequence_ == 0) ++sequence_;
  const std::size_t attribute = filter.empty() ? 0 : RTA_LENGTH(filter.size());
  const std::size_t length = NLMSG_LENGTH(sizeof(inet_diag_req_v2)) + RTA_ALIGN(attribute);
  request_.assign(length, 0);
  nlmsghdr header{};
  header.nlmsg_len = static_cast<std::uint32_t>(length);
  header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  header.nlmsg_seq = sequence_;
  inet_diag_req_v2 request{};
  request.sdiag_family = family;
  request.sdiag_protocol = IPPROTO_TCP;
  request.idiag_states = states;
  std::memcpy(request_.data(), &header, sizeof header);
  std::memcpy(request_.data() + NLMSG_HDRLEN, &request, sizeof request);
  if (!filter.empty()) {
    rtattr rta{};
    rta.rta_len = static_cast<unsigned short>(attribute);
    rta.rta_type = INET_DIAG_REQ_BYTECODE;
    std::uint8_t* at = request_.data() + NLMSG_LENGTH(sizeof(inet_diag_req_v2));
    std::memcpy(at, &rta, sizeof rta);
    std::memcpy(at + RTA_LENGTH(0), filter.data(), filter.size());
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_, request_.data(), request_.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) < 0) {
    return std::unexpected(Error::from_errno(errno, "sock_diag request failed"));
  }
  DiagParser parser(sockets, listeners, sequence_);
  for (;;) {
    const ssize_t n = ::recv(fd_, buffer_.data(), buffer_.size(), MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(Error::from_errno(errno, "sock_diag receive failed"));
    }
    if (static_cast<std::size_t>(n) > buffer_.size()) {
      return make_unexpected(ErrorKind::kResourceExhausted,
                             "sock_diag reply larger than the receive buffer");
    }
    const std::span<const std::uint8_t> datagram(buffer_.data(), static_cast<std::size_t>(n));
    if (recorder_) recorder_(family, states, datagram);
    switch (parser.feed(datagram)) {
      case DiagParseStatus::kMore:
        continue;
      case DiagParseStatus::kDone:
        return {};
      case DiagParseStatus::kError:
        return std::unexpected(Error::from_errno(parser.error(), "sock_diag dump refused"));
      case DiagParseStatus::kMalformed:
        return make_unexpected(ErrorKind::kInvalidInput,
                               std::string("sock_diag reply malformed: ") + parser.problem());
    }
  }
}

Expected<void> SockDiagPoller::poll_syn_recv() {
  ++counters_.polls;
  syn_recv_.clear();
  listeners_.clear();
  for (const std::uint8_t family : {std::uint8_t{AF_INET}, std::uint8_t{AF_INET6}}) {
    if (auto done = dump(family, kSynRecvStates, {}, syn_recv_, listeners_); !done) {
      ++counters_.failures;
      return done;
    }
  }
  return {};
}

Expected<void> SockDiagPoller::poll_completed(std::span<const std::uint16_t> ports) {
  completed_.clear();
  std::vector<std::uint8_t>& filter = request_filter_;
  build_local_port_filter(ports, filter);
  for (const std::uint8_t family : {std::uint8_t{AF_INET}, std::uint8_t{AF_INET6}}) {
    ignored_listeners_.clear();
    if (auto done = dump(family, kCompletedStates, filter, completed_, ignored_listeners_); !done) {
      ++counters_.failures;
      return done;
    }
  }
  // The kernel view looks each pending handshake up in this list by binary search.
  std::sort(completed_.begin(), completed_.end());
  return {};
}

}  // namespace synwatch
