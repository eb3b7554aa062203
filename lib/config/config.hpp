#pragma once
// The validated, immutable configuration. Built once by load_config() (config/loader.hpp);
// every stage receives the section it needs by const reference. Defaults here are the
// documented defaults of config/synwatch.yaml. Each YAML key is one entry of the table in
// config/schema.cpp; a new field needs its entry there.
// Thread safety: immutable after construction; share freely (std::shared_ptr<const Config>).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/ip_address.hpp"
#include "common/time.hpp"

namespace synwatch {

struct FlowConfig {
  // Pending handshakes tracked at once. 1,048,576 entries take 64 MiB; at 20,000 SYN/s a
  // 63 s timeout needs 1.26 M entries to hold every spoofed SYN, beyond which the oldest go.
  std::size_t capacity = 1 << 20;
  // Linux gives up on a SYN_RECV after tcp_synack_retries=5 SYN-ACK retransmissions with
  // exponential backoff from 1 s: 1+2+4+8+16+32 = 63 s.
  DurationNs pending_timeout = 63 * kNanosPerSecond;

  friend bool operator==(const FlowConfig&, const FlowConfig&) = default;
};

struct AggregationConfig {
  // Destinations tracked at once; SYNs to more are counted and dropped.
  std::size_t max_destinations = 4096;
  DurationNs window = 5 * kNanosPerSecond;  // sliding window for rates, sources, entropy, top-k
  std::size_t top_sources = 10;             // heavy sources reported per destination (<= 32)
  DurationNs idle_timeout = 120 * kNanosPerSecond;  // quiet destinations are forgotten after this

  friend bool operator==(const AggregationConfig&, const AggregationConfig&) = default;
};

struct SpoofedRandomConfig {
  double min_distinct_ratio = 0.8;  // distinct sources / SYNs in the window
  double min_entropy = 0.85;        // normalised source entropy

  friend bool operator==(const SpoofedRandomConfig&, const SpoofedRandomConfig&) = default;
};

struct ConcentratedConfig {
  std::size_t max_sources = 10;  // "few" sources
  double min_share = 0.5;        // share of SYNs these few sources send

  friend bool operator==(const ConcentratedConfig&, const ConcentratedConfig&) = default;
};

struct DetectionConfig {
  DurationNs tick = kNanosPerSecond;  // evaluation and sub-window period, in packet time
  // Half-open connections (syn_seen + syn_recv) to one destination. 256 is half of the
  // 511 backlog nginx and Apache request, so the alert comes before the SYN queue overflows.
  std::size_t half_open = 256;
  DurationNs hold_for = 500 * kNanosPerMilli;  // YAML key "for"
  DurationNs cooldown = 10 * kNanosPerSecond;  // clear this long before "ended"
  DurationNs update_interval = 10 * kNanosPerSecond;
  double max_completion_ratio = 0.2;  // completed / SYNs in the window; above it: legitimate
  SpoofedRandomConfig spoofed;
  ConcentratedConfig concentrated;

  friend bool operator==(const DetectionConfig&, const DetectionConfig&) = default;
};

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off

  friend bool operator==(const LogConfig&, const LogConfig&) = default;
};

struct Config {
  std::string source_file;                   // where it came from, "" for built-in defaults
  std::vector<IpPrefix> protected_prefixes;  // YAML key "protected"; empty = every destination
  FlowConfig flow;
  AggregationConfig aggregation;
  DetectionConfig detection;
  LogConfig log;

  friend bool operator==(const Config&, const Config&) = default;
};

}  // namespace synwatch
