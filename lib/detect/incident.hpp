#pragma once
// Incident events: what the detector tells the outside world. One versioned object per event;
// export/event_json.hpp turns it into the JSON every output shares.
// Thread safety: plain values.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_address.hpp"
#include "common/time.hpp"

namespace synwatch {

// 2: the flood condition is over stale handshakes (stats.stale, .baseline, .stale_after_ms,
// .normal_learned), and target.scope tells a port from a whole host (target.port null).
inline constexpr int kEventFormatVersion = 2;

enum class EventType : std::uint8_t { kStarted, kUpdated, kEnded };
enum class AttackKind : std::uint8_t { kSpoofedRandom, kConcentrated, kDistributed };
// Arrays indexed by AttackKind have this many entries.
inline constexpr std::size_t kAttackKindCount = 3;

std::string_view to_string(EventType type) noexcept;   // "started", "updated", "ended"
std::string_view to_string(AttackKind kind) noexcept;  // "spoofed_random", ...
// An incident's target for people: "198.51.100.10:80", or a whole host "198.51.100.10 (all ports)".
std::string describe_target(const Endpoint& target, bool host_scope);

struct IncidentStats {
  std::uint32_t half_open = 0;
  std::uint32_t syn_recv = 0;
  std::uint32_t syn_seen = 0;
  std::uint32_t peak_half_open = 0;
  double syn_rate = 0;
  double synack_rate = 0;
  double completed_rate = 0;
  double distinct_sources = 0;
  double source_entropy = 0;
  double bogon_share = 0;
  double completion_ratio = 0;
  std::uint32_t stale = 0;      // stale half-open handshakes in the window: what is judged
  std::uint32_t failed = 0;     // of them: failed (reset, evicted, expired) before judgement
  double baseline = 0;          // the target's normal stale level
  DurationNs stale_after = 0;   // age at which its pending handshakes count as stale
  bool normal_learned = false;  // stale_after learned from its completions (else the default)
};

// The kernel's figures for an incident's target (`stats.kernel`), present when the kernel view
// runs (lib/engine/kernel_view.hpp). Rates are namespace-wide: the kernel counts them globally.
struct KernelIncidentStats {
  std::uint32_t syn_recv = 0;   // request sockets the kernel holds for the target now
  std::uint32_t stateless = 0;  // half-open answered with SYN cookies (estimate, see README)
  double distinct_sources = 0;  // of the SYN_RECV sockets that went stale or failed in the window
  double source_entropy = 0;
  double syncookies_sent_rate = 0;   // per second
  double listen_overflows_rate = 0;  // per second
  std::uint32_t accept_queue = 0;    // of the listener serving the target
  std::uint32_t backlog = 0;
};

struct TopSource {
  IpAddress address;
  std::uint64_t syns = 0;
};

struct IncidentEvent {
  int version = kEventFormatVersion;
  EventType type = EventType::kStarted;
  std::string incident_id;     // stable for the incident's lifetime
  std::string event_id;        // unique per event: incident_id + "-" + sequence number
  std::uint32_t sequence = 0;  // 0 for started, then 1, 2, ...
  Endpoint target;
  bool host_scope = false;  // the target is the whole address (SYNs spread over its ports)
  AttackKind kind = AttackKind::kSpoofedRandom;
  TimestampNs time = 0;  // packet time of the evaluation that emitted it
  TimestampNs started_at = 0;
  std::optional<TimestampNs> ended_at;
  IncidentStats stats;
  std::vector<TopSource> top_sources;
  std::string reason;
  std::optional<KernelIncidentStats> kernel;  // stats.kernel; absent without the kernel view
  // Where the incident's evidence capture is written (a pcap file that appears with its first
  // packet); empty when evidence captures are off.
  std::string evidence_path;
};

// An incident that was open when a previous run of the daemon died (state_dir): what the
// detector needs to carry it on under its own id, or to end it.
struct ResumedIncident {
  std::string incident_id;
  std::uint32_t sequence = 0;  // of its last event
  Endpoint target;
  bool host_scope = false;
  AttackKind kind = AttackKind::kSpoofedRandom;
  TimestampNs started_at = 0;
  std::uint32_t peak_half_open = 0;
};

// Receives incident events, in order, on the engine's thread. Implementations must not block
// for long (queue and hand off to another thread if delivery can stall).
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void publish(const IncidentEvent& event) = 0;
};

}  // namespace synwatch
