#include "engine/capture_set.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <utility>

namespace synwatch {

namespace {

LiveCaptureOptions options_for(const Config& config, const std::string& interface) {
  LiveCaptureOptions o;
  o.interface = interface;
  o.snap_length = static_cast<int>(config.capture.snap_length);
  o.buffer_bytes = static_cast<int>(config.capture.buffer_size);
  o.filter = config.capture.filter;
  o.promiscuous = config.capture.promiscuous;
  return o;
}

void add_stats(CaptureStats& sum, const CaptureStats& part) {
  sum.received += part.received;
  sum.dropped_kernel += part.dropped_kernel;
  sum.dropped_interface += part.dropped_interface;
}

void add_decode(DecodeStats& sum, const DecodeStats& part) {
  sum.frames += part.frames;
  for (std::size_t i = 0; i < part.by_result.size(); ++i) sum.by_result[i] += part.by_result[i];
}

}  // namespace

CaptureSet::Opener CaptureSet::pcap_opener() {
  return [](const LiveCaptureOptions& options)
             -> std::expected<std::unique_ptr<LiveSource>, CaptureOpenError> {
    auto source = LivePcapSource::open(options);
    if (!source) return std::unexpected(std::move(source.error()));
    return std::move(*source);
  };
}

CaptureSet::CaptureSet(std::size_t sockets_per_interface, Opener opener, MonotonicNow monotonic_now)
    : sockets_per_interface_(sockets_per_interface),
      opener_(std::move(opener)),
      monotonic_now_(std::move(monotonic_now)) {}

void CaptureSet::build(const Config& config) {
  for (auto& interface : interfaces_) retire_decoders(interface);
  interfaces_.clear();
  if (!config.capture.enabled) return;  // kernel-only mode
  for (const auto& name : config.capture.interfaces) {
    Interface interface;
    interface.options = options_for(config, name);
    interface.health.name = name;
    interfaces_.push_back(std::move(interface));
  }
}

void CaptureSet::retire_decoders(Interface& interface) {
  for (auto& capture : interface.captures) {
    if (capture.decoder) add_decode(decode_retired_, capture.decoder->counters());
  }
}

bool CaptureSet::try_open(Interface& interface) {
  ++interface.health.reopen_attempts;
  std::vector<Capture> captures(sockets_per_interface_);
  std::optional<std::uint16_t> group;
  std::optional<CaptureOpenError> error;
  for (auto& capture : captures) {
    auto source = opener_(interface.options);
    if (!source) {
      error = source.error();
      break;
    }
    if (sockets_per_interface_ > 1) {
      auto joined = (*source)->join_fanout(group);
      if (!joined) {
        error = CaptureOpenError{CaptureOpenError::Kind::kOther, joined.error().message};
        break;
      }
      group = *joined;
    }
    capture.decoder = std::make_unique<CaptureDecoder>((*source)->link_type());
    capture.source = std::move(*source);
  }
  if (error) {
    interface.health.last_error = error->message;
    interface.last_open_error = std::move(*error);
    interface.retry_at = monotonic_now_() + interface.backoff;
    interface.backoff = std::min(kMaxBackoff, interface.backoff * 2);
    return false;
  }
  retire_decoders(interface);
  interface.captures = std::move(captures);
  interface.health.open = true;
  interface.health.last_error.clear();
  interface.backoff = kFirstBackoff;
  return true;
}

void CaptureSet::close_interface(Interface& interface, const std::string& error) {
  for (auto& capture : interface.captures) {
    if (auto stats = capture.source->stats()) add_stats(interface.stats_base, *stats);
  }
  retire_decoders(interface);
  interface.captures.clear();
  interface.health.open = false;
  interface.health.last_error = error;
  interface.retry_at = monotonic_now_() + interface.backoff;
  spdlog::error("{}; other interfaces keep running, retrying in {} s", error,
                static_cast<double>(interface.backoff.count()) / 1000.0);
}

std::vector<CaptureOpenError> CaptureSet::open_closed() {
  std::vector<CaptureOpenError> errors;
  for (auto& interface : interfaces_) {
    if (interface.captures.empty() && !try_open(interface)) {
      errors.push_back(interface.last_open_error);
    }
  }
  return errors;
}

void CaptureSet::reopen_due() {
  const MonotonicTime now = monotonic_now_();
  for (auto& interface : interfaces_) {
    if (interface.captures.empty() && now >= interface.retry_at && try_open(interface)) {
      spdlog::info("capture on '{}' resumed", interface.options.interface);
    }
  }
}

void CaptureSet::close_failed() {
  for (auto& interface : interfaces_) {
    for (const auto& capture : interface.captures) {
      if (capture.failed) {
        const std::string error = capture.error;  // closing destroys the capture
        close_interface(interface, error);
        break;
      }
    }
  }
}

std::vector<InterfaceHealth> CaptureSet::health() {
  std::vector<InterfaceHealth> out;
  out.reserve(interfaces_.size());
  for (auto& interface : interfaces_) {
    InterfaceHealth health = interface.health;
    health.stats = interface.stats_base;
    for (auto& capture : interface.captures) {
      if (auto stats = capture.source->stats()) add_stats(health.stats, *stats);
    }
    out.push_back(std::move(health));
  }
  return out;
}

DecodeStats CaptureSet::decode_counters() const {
  DecodeStats sum = decode_retired_;
  for (const auto& interface : interfaces_) {
    for (const auto& capture : interface.captures) {
      if (capture.decoder) add_decode(sum, capture.decoder->counters());
    }
  }
  return sum;
}

}  // namespace synwatch
