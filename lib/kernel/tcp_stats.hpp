#pragma once
// The kernel's SYN-queue counters and the sysctls that shape them, in the caller's network
// namespace: /proc/net/netstat's TcpExt line (SyncookiesSent, SyncookiesRecv, SyncookiesFailed,
// ListenOverflows, ListenDrops, TCPReqQFullDrop, TCPReqQFullDoCookies) and
// net.ipv4.tcp_syncookies, net.ipv4.tcp_max_syn_backlog, net.core.somaxconn,
// net.ipv4.tcp_synack_retries. These counters are global to the namespace, not per listener.
// Thread safety: free functions and plain values; TcpStatsReader is for one thread. Buffer
// ownership: the reader owns one text buffer, reused on every read.

#include <array>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "common/counter_members.hpp"
#include "common/error.hpp"

namespace synwatch {

struct TcpExtStats {
  std::uint64_t syncookies_sent = 0;
  std::uint64_t syncookies_recv = 0;
  std::uint64_t syncookies_failed = 0;
  std::uint64_t listen_overflows = 0;
  std::uint64_t listen_drops = 0;
  std::uint64_t req_q_full_drop = 0;
  std::uint64_t req_q_full_do_cookies = 0;

  friend bool operator==(const TcpExtStats&, const TcpExtStats&) = default;
};

// Each counter once: its name on /proc/net/netstat's TcpExt line, and the metric of its own it is
// exported as (counters since boot).
struct TcpExtField {
  std::string_view netstat_name;
  NamedMember<TcpExtStats, std::uint64_t> figure;
};

inline constexpr std::array<TcpExtField, 7> kTcpExtCounterList{{
    {"SyncookiesSent",
     {&TcpExtStats::syncookies_sent, "synwatch_kernel_tcpext_syncookies_sent_total",
      "SYN cookies sent (/proc/net/netstat TcpExt, since boot)."}},
    {"SyncookiesRecv",
     {&TcpExtStats::syncookies_recv, "synwatch_kernel_tcpext_syncookies_recv_total",
      "Valid SYN cookies received (/proc/net/netstat TcpExt, since boot)."}},
    {"SyncookiesFailed",
     {&TcpExtStats::syncookies_failed, "synwatch_kernel_tcpext_syncookies_failed_total",
      "Invalid SYN cookies received (/proc/net/netstat TcpExt, since boot)."}},
    {"ListenOverflows",
     {&TcpExtStats::listen_overflows, "synwatch_kernel_tcpext_listen_overflows_total",
      "Accept queue overflows (/proc/net/netstat TcpExt, since boot)."}},
    {"ListenDrops",
     {&TcpExtStats::listen_drops, "synwatch_kernel_tcpext_listen_drops_total",
      "SYNs dropped by listeners (/proc/net/netstat TcpExt, since boot)."}},
    {"TCPReqQFullDrop",
     {&TcpExtStats::req_q_full_drop, "synwatch_kernel_tcpext_req_q_full_drop_total",
      "SYNs dropped because the SYN queue was full (/proc/net/netstat TcpExt, since boot)."}},
    {"TCPReqQFullDoCookies",
     {&TcpExtStats::req_q_full_do_cookies, "synwatch_kernel_tcpext_req_q_full_do_cookies_total",
      "SYN cookies sent because the SYN queue was full (/proc/net/netstat TcpExt, since boot)."}},
}};
static_assert(sizeof(TcpExtStats) == kTcpExtCounterList.size() * sizeof(std::uint64_t),
              "a TcpExtStats member is missing from kTcpExtCounterList");

// Parses the text of /proc/net/netstat: a "TcpExt:" line of names followed by a "TcpExt:" line
// of values. Every one of the seven counters must be present (they exist since Linux 3.x);
// other protocols' lines and unknown TcpExt names are ignored. Errors name the problem.
Expected<TcpExtStats> parse_tcp_ext(std::string_view netstat);

struct TcpSysctls {
  std::optional<int> syncookies;  // 0 off, 1 when the SYN queue is full, 2 always
  std::optional<int> max_syn_backlog;
  std::optional<int> somaxconn;
  std::optional<int> synack_retries;

  friend bool operator==(const TcpSysctls&, const TcpSysctls&) = default;
};

// Parses one sysctl file's text ("1\n"); nullopt unless it is one decimal integer.
std::optional<int> parse_sysctl_int(std::string_view text);

// Reads the sysctls from `proc_root` + "/sys/..." (absent ones stay nullopt).
TcpSysctls read_tcp_sysctls(const std::string& proc_root = "/proc");

class TcpStatsReader {
 public:
  explicit TcpStatsReader(std::string netstat_path = "/proc/net/netstat");
  Expected<TcpExtStats> read();

 private:
  std::string path_;
  std::string text_;
};

}  // namespace synwatch
