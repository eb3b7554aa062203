#include "kernel/tcp_stats.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace synwatch {

namespace {

// Next space-separated token of `line` from `at`; empty at the end.
std::string_view next_token(std::string_view line, std::size_t& at) {
  while (at < line.size() && line[at] == ' ') ++at;
  const std::size_t start = at;
  while (at < line.size() && line[at] != ' ') ++at;
  return line.substr(start, at - start);
}

std::string_view next_line(std::string_view text, std::size_t& at) {
  const std::size_t start = at;
  const std::size_t end = text.find('\n', at);
  at = end == std::string_view::npos ? text.size() : end + 1;
  return text.substr(start, (end == std::string_view::npos ? text.size() : end) - start);
}

Expected<void> read_whole(const std::string& path, std::string& into) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::unexpected(Error::from_errno(errno, "cannot open " + path));
  }
  into.clear();
  char chunk[4096];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return std::unexpected(Error::from_errno(error, "cannot read " + path));
    }
    if (n == 0) break;
    into.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return {};
}

}  // namespace

Expected<TcpExtStats> parse_tcp_ext(std::string_view netstat) {
  constexpr std::string_view kPrefix = "TcpExt:";
  std::size_t at = 0;
  while (at < netstat.size()) {
    const std::string_view names = next_line(netstat, at);
    if (!names.starts_with(kPrefix)) continue;
    if (at >= netstat.size()) {
      return make_unexpected(ErrorKind::kInvalidInput, "TcpExt names line has no values line");
    }
    const std::string_view values = next_line(netstat, at);
    if (!values.starts_with(kPrefix)) {
      return make_unexpected(ErrorKind::kInvalidInput, "TcpExt names line has no values line");
    }

    TcpExtStats counters;
    std::array<bool, kTcpExtCounterList.size()> found{};
    std::size_t name_at = kPrefix.size();
    std::size_t value_at = kPrefix.size();
    std::size_t column = 0;
    for (;; ++column) {
      const std::string_view name = next_token(names, name_at);
      const std::string_view value = next_token(values, value_at);
      if (name.empty() && value.empty()) break;
      if (name.empty() || value.empty()) {
        return make_unexpected(ErrorKind::kInvalidInput,
                               "TcpExt has " +
                                   std::string(name.empty() ? "more values" : "more names") +
                                   " than " + std::string(name.empty() ? "names" : "values") +
                                   " (column " + std::to_string(column + 1) + ")");
      }
      std::uint64_t number = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
      if (ec != std::errc{} || end != value.data() + value.size()) {
        return make_unexpected(ErrorKind::kInvalidInput, "TcpExt value '" + std::string(value) +
                                                             "' of " + std::string(name) +
                                                             " is not an unsigned integer");
      }
      for (std::size_t i = 0; i < kTcpExtCounterList.size(); ++i) {
        if (kTcpExtCounterList[i].netstat_name == name) {
          counters.*kTcpExtCounterList[i].figure.member = number;
          found[i] = true;
        }
      }
    }
    for (std::size_t i = 0; i < kTcpExtCounterList.size(); ++i) {
      if (!found[i]) {
        return make_unexpected(ErrorKind::kInvalidInput,
                               "TcpExt lacks " + std::string(kTcpExtCounterList[i].netstat_name));
      }
    }
    return counters;
  }
  return make_unexpected(ErrorKind::kInvalidInput, "no TcpExt lines");
}

std::optional<int> parse_sysctl_int(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  if (text.empty()) return std::nullopt;
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

TcpSysctls read_tcp_sysctls(const std::string& proc_root) {
  TcpSysctls sysctls;
  std::string text;
  // An absent sysctl (an older kernel, another namespace) is left unknown, not an error.
  const auto read = [&](const char* relative) -> std::optional<int> {
    if (!read_whole(proc_root + relative, text)) return std::nullopt;
    return parse_sysctl_int(text);
  };
  sysctls.syncookies = read("/sys/net/ipv4/tcp_syncookies");
  sysctls.max_syn_backlog = read("/sys/net/ipv4/tcp_max_syn_backlog");
  sysctls.somaxconn = read("/sys/net/core/somaxconn");
  sysctls.synack_retries = read("/sys/net/ipv4/tcp_synack_retries");
  return sysctls;
}

TcpStatsReader::TcpStatsReader(std::string netstat_path) : path_(std::move(netstat_path)) {
  text_.reserve(std::size_t{16} * 1024);
}

Expected<TcpExtStats> TcpStatsReader::read() {
  if (auto read = read_whole(path_, text_); !read) return std::unexpected(read.error());
  auto parsed = parse_tcp_ext(text_);
  if (!parsed) return std::unexpected(parsed.error().prefixed(path_ + ": "));
  return parsed;
}

}  // namespace synwatch
