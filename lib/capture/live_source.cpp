#include "capture/live_source.hpp"

#include <linux/if_packet.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace synwatch {

std::string default_capture_filter() {
  // IPv4: any of SYN/RST/FIN, or an ACK whose IP total length minus both headers is zero.
  // IPv6: the same with TCP right after the 40-byte header (next header 6), where the TCP flags
  // are ip6[53] and the data offset ip6[52]; packets with extension headers pass whole.
  return "(tcp and ip and (tcp[tcpflags] & (tcp-syn|tcp-rst|tcp-fin) != 0 or "
         "ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) == 0)) or "
         "(ip6 and ip6[6] == 6 and (ip6[53] & 0x07 != 0 or "
         "ip6[4:2] - ((ip6[52] & 0xf0) >> 2) == 0)) or "
         "(ip6 and ip6[6] != 6 and ip6[6] != 17 and ip6[6] != 58)";
}

namespace {

CaptureOpenError describe_open_failure(const std::string& interface, int status, pcap_t* handle) {
  using Kind = CaptureOpenError::Kind;
  std::string detail = handle != nullptr ? pcap_geterr(handle) : "";
  if (status == PCAP_ERROR_PERM_DENIED) {
    return {Kind::kPermission,
            "cannot capture on '" + interface + "': permission denied (" + detail +
                "); synwatchd needs the CAP_NET_RAW capability (run as root, or grant it with "
                "AmbientCapabilities=CAP_NET_RAW / setcap cap_net_raw+ep)"};
  }
  if (status == PCAP_ERROR_NO_SUCH_DEVICE) {
    return {Kind::kNoInterface,
            "cannot capture on '" + interface + "': no such interface (" + detail + ")"};
  }
  if (status == PCAP_ERROR_IFACE_NOT_UP) {
    return {Kind::kNoInterface, "cannot capture on '" + interface + "': interface is down"};
  }
  return {Kind::kOther, "cannot capture on '" + interface + "': " +
                            (detail.empty() ? std::string(pcap_statustostr(status)) : detail)};
}

std::unexpected<CaptureOpenError> other_failure(std::string message) {
  return std::unexpected(CaptureOpenError{CaptureOpenError::Kind::kOther, std::move(message)});
}

}  // namespace

std::expected<std::unique_ptr<LivePcapSource>, CaptureOpenError> LivePcapSource::open(
    const LiveCaptureOptions& options) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* handle = pcap_create(options.interface.c_str(), errbuf);
  if (handle == nullptr) {
    return other_failure("cannot capture on '" + options.interface + "': " + errbuf);
  }
  pcap_set_snaplen(handle, options.snap_length);
  pcap_set_promisc(handle, options.promiscuous ? 1 : 0);
  pcap_set_timeout(handle, options.poll_timeout_ms);
  pcap_set_buffer_size(handle, options.buffer_bytes);
  const bool nano = pcap_set_tstamp_precision(handle, PCAP_TSTAMP_PRECISION_NANO) == 0;
  const int status = pcap_activate(handle);
  if (status < 0) {
    auto failure = describe_open_failure(options.interface, status, handle);
    pcap_close(handle);
    return std::unexpected(std::move(failure));
  }
  const auto link = link_type_from_dlt(pcap_datalink(handle));
  if (!link) {
    std::string message = "cannot capture on '" + options.interface + "': unsupported link type " +
                          std::to_string(pcap_datalink(handle));
    pcap_close(handle);
    return other_failure(std::move(message));
  }
  const std::string filter = options.filter.empty() ? default_capture_filter() : options.filter;
  bpf_program program{};
  if (pcap_compile(handle, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    std::string message =
        "invalid capture filter for '" + options.interface + "': " + pcap_geterr(handle);
    pcap_close(handle);
    return other_failure(std::move(message));
  }
  const int set = pcap_setfilter(handle, &program);
  pcap_freecode(&program);
  if (set != 0) {
    std::string message =
        "cannot set capture filter on '" + options.interface + "': " + pcap_geterr(handle);
    pcap_close(handle);
    return other_failure(std::move(message));
  }
  if (pcap_setnonblock(handle, 1, errbuf) != 0) {
    pcap_close(handle);
    return other_failure("cannot capture on '" + options.interface + "': " + errbuf);
  }
  auto source = std::unique_ptr<LivePcapSource>(new LivePcapSource(handle, *link, options));
  source->nanosecond_timestamps_ = nano;
  return source;
}

LivePcapSource::LivePcapSource(pcap_t* handle, LinkType link, LiveCaptureOptions options)
    : handle_(handle), link_(link), options_(std::move(options)) {}

LivePcapSource::~LivePcapSource() {
  pcap_close(handle_);
}

int LivePcapSource::selectable_fd() const noexcept {
  return pcap_get_selectable_fd(handle_);
}

Expected<std::uint16_t> LivePcapSource::join_fanout(std::optional<std::uint16_t> group) {
  const int fd = pcap_fileno(handle_);
  std::uint32_t argument = static_cast<std::uint32_t>(PACKET_FANOUT_HASH) << 16;
  if (group) {
    argument |= *group;
  } else {
    argument |= static_cast<std::uint32_t>(PACKET_FANOUT_FLAG_UNIQUEID) << 16;
  }
  if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &argument, sizeof argument) != 0) {
    const int error = errno;
    Error failure = Error::from_errno(
        error, "cannot spread capture on '" + options_.interface + "' over workers (PACKET_FANOUT" +
                   (group ? " group " + std::to_string(*group) : std::string()) + ")");
    if (error == EINVAL) failure.message += "; set capture.workers: 1 if the kernel lacks fanout";
    return std::unexpected(std::move(failure));
  }
  if (group) return *group;
  std::uint32_t assigned = 0;
  socklen_t length = sizeof assigned;
  if (getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &assigned, &length) != 0) {
    return std::unexpected(
        Error::from_errno(errno, "cannot read the fanout group of '" + options_.interface + "'"));
  }
  return static_cast<std::uint16_t>(assigned & 0xffffu);
}

void LivePcapSource::on_pcap_packet(u_char* user, const pcap_pkthdr* header, const u_char* bytes) {
  auto* self = reinterpret_cast<LivePcapSource*>(user);
  PacketView view;
  view.data = {bytes, header->caplen};
  view.wire_length = header->len;
  const std::int64_t fraction =
      self->nanosecond_timestamps_ ? header->ts.tv_usec : header->ts.tv_usec * 1000LL;
  view.timestamp = static_cast<TimestampNs>(header->ts.tv_sec) * kNanosPerSecond + fraction;
  self->handler_->on_packet(view);
}

DispatchResult LivePcapSource::dispatch(std::size_t max_packets, PacketHandler& handler) {
  handler_ = &handler;
  const int n = pcap_dispatch(handle_, static_cast<int>(max_packets),
                              &LivePcapSource::on_pcap_packet, reinterpret_cast<u_char*>(this));
  handler_ = nullptr;
  if (n < 0) {
    error_ = "capture on '" + options_.interface + "' failed: " + pcap_geterr(handle_);
    return {DispatchStatus::kError, 0};
  }
  if (n == 0) return {DispatchStatus::kIdle, 0};
  return {DispatchStatus::kPackets, static_cast<std::size_t>(n)};
}

Expected<CaptureStats> LivePcapSource::stats() {
  pcap_stat now{};
  if (pcap_stats(handle_, &now) != 0) {
    return make_unexpected(ErrorKind::kIo, "cannot read capture statistics of '" +
                                               options_.interface + "': " + pcap_geterr(handle_));
  }
  // Unsigned 32-bit differences stay correct across one wrap between calls.
  totals_.received += static_cast<std::uint32_t>(now.ps_recv - last_.ps_recv);
  totals_.dropped_kernel += static_cast<std::uint32_t>(now.ps_drop - last_.ps_drop);
  totals_.dropped_interface += static_cast<std::uint32_t>(now.ps_ifdrop - last_.ps_ifdrop);
  last_ = now;
  return totals_;
}

}  // namespace synwatch
