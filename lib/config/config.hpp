#pragma once
// The validated, immutable configuration. Built once by load_config() (config/loader.hpp);
// every stage receives the section it needs by const reference. Defaults here are the
// documented defaults of config/synwatch.yaml. Each YAML key is one entry of the table in
// config/schema.cpp; a new field needs its entry there.
// Thread safety: immutable after construction; share freely (std::shared_ptr<const Config>).

#include <cstddef>
#include <cstdint>
#include <map>
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
  std::size_t max_destinations = 1024;
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

// When a pending handshake counts as stale (see README "How detection works").
struct StaleConfig {
  // Shortest age at which a pending handshake can be judged stale, however fast its destination
  // normally completes: a spoofed flood is judged this long after its first SYN at the earliest.
  DurationNs floor = 200 * kNanosPerMilli;
  // Judgement age for a destination with no history yet: Linux's initial SYN-ACK retransmission
  // timeout (TCP_TIMEOUT_INIT, 1 s). A client that has not answered by then lost a round trip.
  DurationNs no_history = kNanosPerSecond;
  // The destination's normal: this percentile of its completed handshakes' times (SYN to final
  // ACK) over `history`.
  double percentile = 0.95;
  DurationNs history = 60 * kNanosPerSecond;

  friend bool operator==(const StaleConfig&, const StaleConfig&) = default;
};

// Each destination's normal level of stale handshakes, learned while no incident is open.
struct BaselineConfig {
  double multiple = 3;  // the stale level must exceed this many times the baseline
  DurationNs time_constant = 600 * kNanosPerSecond;  // of the exponential average

  friend bool operator==(const BaselineConfig&, const BaselineConfig&) = default;
};

struct DetectionConfig {
  DurationNs tick = kNanosPerSecond;  // evaluation and sub-window period, in packet time
  // Stale half-open connections (handshakes that went stale or failed within the window and
  // have not completed since) to one address:port. 256 is half of the 511 backlog nginx and
  // Apache request, so the alert comes before the SYN queue overflows.
  std::size_t half_open = 256;
  // The same for one address across all its ports (SYNs to random ports). Higher, because a
  // port scan fails a handshake per port too: 8192 within the 5 s window is over 1,600 failed
  // handshakes a second, above what nmap's fast timings send.
  std::size_t host_half_open = 8192;
  StaleConfig stale;
  BaselineConfig baseline;
  DurationNs hold_for = 500 * kNanosPerMilli;  // YAML key "for"
  DurationNs cooldown = 10 * kNanosPerSecond;  // clear this long before "ended"
  DurationNs update_interval = 10 * kNanosPerSecond;
  SpoofedRandomConfig spoofed;
  ConcentratedConfig concentrated;

  friend bool operator==(const DetectionConfig&, const DetectionConfig&) = default;
};

struct CaptureConfig {
  // Packet capture (the wire view). false: kernel-only mode, which needs no capture privilege.
  bool enabled = true;
  // "any" sees every interface (Linux cooked capture); name interfaces to limit it.
  std::vector<std::string> interfaces{"any"};
  // Ethernet 14 + one VLAN tag 4 + IPv6 40 + TCP with the longest options 60 = 118 bytes, plus
  // room for cooked-v2 headers and one IPv6 extension header: 160 is all the tracker ever reads.
  std::size_t snap_length = 160;
  // Kernel ring per interface and worker. At 1 Mpps of 160-byte captures (~230 bytes a slot in
  // TPACKET_V3) 64 MiB absorbs a quarter of a second of stall without dropping.
  std::size_t buffer_size = 64u << 20;
  std::string filter;  // BPF; empty = the built-in filter (SYN, SYN-ACK, RST, FIN, bare ACK)
  bool promiscuous = false;
  // Capture threads. Each opens its own socket on every interface, all joined in one
  // PACKET_FANOUT group per interface that hashes by flow, and owns a share of flow.capacity;
  // per-destination figures are merged for detection. 0 = one per CPU in the affinity mask.
  std::size_t workers = 1;

  friend bool operator==(const CaptureConfig&, const CaptureConfig&) = default;
};

// One webhook receiver (`alerts.webhooks` element). Delivery itself is export/webhook.hpp.
struct WebhookConfig {
  std::string name;  // unique; names the receiver's spool directory, logs and metrics
  std::string url;   // http:// or https://
  std::map<std::string, std::string> headers;  // extra request headers
  DurationNs timeout = 5 * kNanosPerSecond;    // whole request, connect included
  // Default: all three; format slack (a chat) only started and ended.
  std::vector<std::string> events{"started", "updated", "ended"};
  std::string format = "json";  // json, alertmanager, slack
  std::string secret_file;      // HMAC-SHA256 signing secret; empty = unsigned
  std::string ca_file;          // PEM CA bundle for https; empty = the system's
  // Attempts after the first before an event is given up. With the backoff doubling from 1 s
  // up to 5 min, 12 retries ride out about 25 minutes of receiver outage.
  std::size_t max_retries = 12;
  DurationNs backoff = kNanosPerSecond;            // first retry delay, doubled per retry
  DurationNs max_backoff = 300 * kNanosPerSecond;  // cap of the doubling
  // format alertmanager: firing alerts are sent again this often, each time with endsAt four
  // intervals ahead (Alertmanager's client contract), so an alert stays firing exactly as long
  // as its incident, whatever Alertmanager's resolve_timeout.
  DurationNs resend_interval = 60 * kNanosPerSecond;
  std::string generator_url;  // format alertmanager: the alerts' link; empty = the metrics page

  friend bool operator==(const WebhookConfig&, const WebhookConfig&) = default;
};

struct KernelConfig {
  // The kernel view: SYN_RECV sockets over sock_diag and the TcpExt SYN cookie counters (live).
  bool enabled = true;
  DurationNs interval = kNanosPerSecond;  // poll period; one poll of 10,000 sockets takes ~ms

  friend bool operator==(const KernelConfig&, const KernelConfig&) = default;
};

// Evidence captures (evidence:): per incident, a pcap of the SYNs to its target: every one for
// the first `first_packets`, then at most `per_second` a second until it ends.
struct EvidenceConfig {
  bool enabled = true;    // live mode; --read writes evidence only with --evidence-dir
  std::string directory;  // empty: <state_dir>/evidence
  std::size_t first_packets = 1000;
  std::size_t per_second = 100;
  // A 1,000-packet start and 100 a second of ~100-byte frames reach 16 MiB after 25 minutes.
  std::size_t max_incident_bytes = 16u << 20;
  std::size_t max_total_bytes = 256u << 20;  // oldest files of ended incidents go first

  friend bool operator==(const EvidenceConfig&, const EvidenceConfig&) = default;
};

// An action on incident events (actions:). Type exec runs a command with the event on stdin;
// type nftables puts the sources of concentrated incidents into nftables sets for as long as
// the incident lasts (export/nftables_action.hpp). Fields of the other type keep their defaults.
struct ActionConfig {
  std::string name;                  // unique; names it in logs and metrics
  std::string type = "exec";         // exec, nftables
  std::vector<std::string> command;  // exec: argv; command[0] is an absolute path
  // Default for exec: started and ended; for nftables: all three (an update can name new sources).
  std::vector<std::string> events{"started", "ended"};
  DurationNs timeout = 10 * kNanosPerSecond;  // exec: then its process group is killed
  std::size_t max_running = 4;                // exec: more at once are skipped (counted, logged)

  // nftables: "<family> <name>" of the table holding the sets; family ip, ip6 or inet.
  std::string table = "inet synwatch";
  // nftables: the sets (type ipv4_addr / ipv6_addr, flags timeout) sources go into; empty = that
  // family is not blocked. A table of family ip has no IPv6 set by default, ip6 no IPv4 set.
  std::string set_ipv4 = "blocked_v4";
  std::string set_ipv6 = "blocked_v6";
  // nftables: create the table, the sets and a chain that drops SYNs from them (at start and
  // reload); false: the sets already exist in the operator's ruleset, which decides what to do.
  bool create_table = true;
  // nftables: each element's timeout, so that a block never outlives a crashed daemon by long.
  // Refreshed while the incident goes on; removed at once when it ends.
  DurationNs block_for = 600 * kNanosPerSecond;
  std::size_t max_entries = 256;  // nftables: elements this action holds at once, all incidents
  // nftables: a source must have sent at least this share of the incident's stale handshakes, so
  // that a legitimate client that happens to rank among the top sources is left alone.
  double min_share = 0.05;
  std::vector<IpPrefix> allowlist;  // nftables: sources never blocked (besides the built-in ones)
  bool dry_run = false;             // nftables: log what would be done, change nothing

  friend bool operator==(const ActionConfig&, const ActionConfig&) = default;
};

struct AlertsConfig {
  std::string file;  // JSON Lines of incident events; empty = none
  std::vector<WebhookConfig> webhooks;
  // Undelivered events kept per receiver (its spool and queue). An incident sends 2 events plus
  // one per update_interval, so 10000 holds more than a day of one incident's updates.
  std::size_t spool_max_events = 10000;

  friend bool operator==(const AlertsConfig&, const AlertsConfig&) = default;
};

struct MetricsConfig {
  bool enabled = true;                  // live mode only; --read serves no metrics
  std::string listen = "0.0.0.0:9474";  // 9474: the exporter port synwatch uses, all addresses
  // Destinations exported with per-destination series; open incidents first, then the most
  // half-open. 100 destinations are ~1,500 series: safe for any Prometheus.
  std::size_t max_destinations = 100;
  std::string basic_auth_user;           // empty = no authentication
  std::string basic_auth_password_file;  // file holding the password (not inline)
  // HTTPS instead of HTTP when both are set: PEM certificate (chain) and its private key.
  std::string tls_cert_file;
  std::string tls_key_file;

  friend bool operator==(const MetricsConfig&, const MetricsConfig&) = default;
};

// The status socket `synwatchd top` reads (export/status_socket.hpp).
struct StatusConfig {
  bool enabled = true;  // live mode only
  std::string socket = "/run/synwatch/status.sock";

  friend bool operator==(const StatusConfig&, const StatusConfig&) = default;
};

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  std::string file;            // also log to this file, rotated by size; empty = no file
  std::size_t file_max_bytes = 10u << 20;
  std::size_t file_max_files = 5;

  friend bool operator==(const LogConfig&, const LogConfig&) = default;
};

struct Config {
  std::string source_file;  // where it came from, "" for built-in defaults
  // YAML key "protected". Empty: with --read every destination; live, this host's own
  // addresses (re-read every protected_refresh).
  std::vector<IpPrefix> protected_prefixes;
  DurationNs protected_refresh = 30 * kNanosPerSecond;
  std::string user = "synwatch";  // live mode started as root switches to it; it must exist
  std::string state_dir = "/var/lib/synwatch";  // webhook spool lives below it
  CaptureConfig capture;
  KernelConfig kernel;
  AlertsConfig alerts;
  std::vector<ActionConfig> actions;
  EvidenceConfig evidence;
  MetricsConfig metrics;
  StatusConfig status;
  FlowConfig flow;
  AggregationConfig aggregation;
  DetectionConfig detection;
  LogConfig log;

  friend bool operator==(const Config&, const Config&) = default;
};

}  // namespace synwatch
