#pragma once
// Action hooks of type nftables (`actions:`): the sources of a concentrated incident go into a
// named nftables set, each element with a timeout (`block_for`), for as long as the incident
// lasts, and come out again when it ends. Spoofed and distributed incidents add nothing: their
// sources are forged or too many to block.
//
// Two parts, kept apart so that the decision can be tested without a firewall:
// - choose_sources_to_block(): pure; which of an event's top sources may be blocked, and why
//   the others may not (never a protected destination, an allowlisted or special-purpose address
//   such as loopback, link-local, multicast or unspecified, nor one of this host's own addresses;
//   at most `max_entries` held at once).
// - NftablesAction: an EventSink that queues events and does the nftables work (libnftables) on
//   a thread of its own, so publish() never waits on netlink. It remembers which incident holds
//   which element, refreshes the timeouts of held elements on `updated`, removes an incident's
//   elements on `ended` (unless another open incident holds them too), and lifts whatever it
//   still holds when it is destroyed (stop, or a reload that changed or removed the action).
//   A crash leaves elements behind only until their timeout.
//
// Needs CAP_NET_ADMIN unless dry_run (the daemon keeps it only then; daemon/privileges.hpp).
//
// Thread safety: publish() from one thread (the daemon's main loop or --read's engine thread);
// stats() and wait_idle() from any thread; start() and the destructor from the owner's thread.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/counter_members.hpp"
#include "common/error.hpp"
#include "common/ip_address.hpp"
#include "config/config.hpp"
#include "detect/incident.hpp"

namespace synwatch {

// Why a top source was not blocked.
enum class BlockSkip : std::uint8_t {
  kNotConcentrated,  // the incident is spoofed_random or distributed
  kBelowMinShare,    // sent less than min_share of the incident's stale handshakes
  kProtected,        // inside `protected`: a destination this daemon watches over
  kAllowlisted,      // inside the action's allowlist
  kLoopback,         // 127.0.0.0/8, ::1
  kLinkLocal,        // 169.254.0.0/16, fe80::/10
  kUnspecified,      // 0.0.0.0/8, ::
  kMulticast,        // 224.0.0.0/4, 255.255.255.255, ff00::/8
  kOwnAddress,       // one of this host's addresses
  kNoSet,            // no set for its family (set_ipv4 or set_ipv6 empty)
  kLimit,            // max_entries elements are held already
};
inline constexpr std::size_t kBlockSkipReasons = 11;
std::string_view to_string(BlockSkip reason) noexcept;  // "not_concentrated", "protected", ...

// What choose_sources_to_block() needs to know besides the event.
struct BlockRules {
  std::vector<IpPrefix> protected_prefixes;  // the configuration's `protected`
  std::vector<IpPrefix> allowlist;           // the action's
  std::vector<IpPrefix> host_addresses;      // this host's own, re-read before each decision
  bool has_ipv4_set = true;
  bool has_ipv6_set = true;
  double min_share = 0;
  std::size_t max_entries = 0;
};

struct BlockChoice {
  std::vector<IpAddress> add;   // new elements, heaviest first
  std::vector<IpAddress> keep;  // already held by this action (for this or another incident)
  std::vector<std::pair<IpAddress, BlockSkip>> skipped;
};

// Decides which of `event`'s top sources to block; `held` are the elements this action holds
// now (they count against max_entries). Pure: no I/O, no clock.
BlockChoice choose_sources_to_block(const IncidentEvent& event, const BlockRules& rules,
                                    const std::set<IpAddress>& held);

// The actions of one type ("exec", "nftables"), in their order.
std::vector<ActionConfig> actions_of_type(const std::vector<ActionConfig>& actions,
                                          std::string_view type);
// The nftables actions that change the firewall (dry_run false): what CAP_NET_ADMIN is kept for.
std::vector<std::string> actions_needing_net_admin(const std::vector<ActionConfig>& actions);

// Outcomes of one nftables action, per element.
struct NftablesActionStats {
  std::string name;
  bool dry_run = false;
  std::uint64_t added = 0;            // put into a set
  std::uint64_t refreshed = 0;        // timeout renewed while its incident went on
  std::uint64_t removed = 0;          // taken out when its incident ended (or at stop)
  std::uint64_t expired = 0;          // already gone when it was to be removed (its timeout)
  std::uint64_t already_present = 0;  // in the set already, not put there by this action: kept
  std::uint64_t failed = 0;           // nftables refused (logged with its message)
  std::uint64_t dry_run_added = 0;    // dry_run: would have been added
  std::uint64_t dry_run_removed = 0;  // dry_run: would have been removed
  std::uint64_t events_dropped = 0;   // the queue was full (the worker stuck in netlink)
  std::map<std::string, std::uint64_t> skipped;  // by to_string(BlockSkip)
  std::size_t held = 0;                          // elements held now
};

// The /metrics family of the set elements' outcomes (export/ adds the action's name). A new
// outcome must be listed here by hand: the struct holds more than outcomes, so no size check
// can catch it.
inline constexpr LabelledFigures<NftablesActionStats, std::uint64_t, 8> kNftablesElementOutcomes{
    .metric = "synwatch_nftables_elements_total",
    .help =
        "Set elements of each nftables action by outcome: added, refreshed (timeout "
        "renewed), removed (incident ended), expired (gone by its timeout before removal), "
        "already_present (not this action's: left alone), failed, dry_run_added, "
        "dry_run_removed.",
    .kind = FigureKind::kCounter,
    .label = "outcome",
    .members = {{{&NftablesActionStats::added, "added"},
                 {&NftablesActionStats::refreshed, "refreshed"},
                 {&NftablesActionStats::removed, "removed"},
                 {&NftablesActionStats::expired, "expired"},
                 {&NftablesActionStats::already_present, "already_present"},
                 {&NftablesActionStats::failed, "failed"},
                 {&NftablesActionStats::dry_run_added, "dry_run_added"},
                 {&NftablesActionStats::dry_run_removed, "dry_run_removed"}}}};

// The kind of a failed nftables command, from libnftables' message: it reports the kernel's
// errno in strerror's words ("Error: Could not process rule: File exists"), so its text is read
// here, once, and callers branch on the kind. An element already in a set is kInUse, a missing
// element, set or table kNotFound; a message naming no known errno is kIo.
ErrorKind kind_of_nftables_error(std::string_view message);

class NftablesAction final : public EventSink {
 public:
  // Prepares the nftables side (unless dry_run): with create_table, creates the table, its sets
  // and the chain that drops SYNs from them, keeping elements already there; without, checks
  // that the sets exist and take timeouts. Then starts the worker thread. Call after dropping
  // privileges, with CAP_NET_ADMIN kept. `protected_prefixes` is the configuration's `protected`.
  static Expected<std::unique_ptr<NftablesAction>> start(
      const ActionConfig& config, const std::vector<IpPrefix>& protected_prefixes);
  NftablesAction(const NftablesAction&) = delete;
  NftablesAction& operator=(const NftablesAction&) = delete;
  // Works through what is queued, then removes every element still held, then stops.
  ~NftablesAction() override;

  void publish(const IncidentEvent& event) override;

  // Waits until every queued event is handled, or `limit` passed; true when none is left.
  bool wait_idle(std::chrono::milliseconds limit);
  [[nodiscard]] NftablesActionStats stats() const;
  [[nodiscard]] const ActionConfig& config() const;

  struct State;  // implementation detail, public so that the .cpp's helpers can name it

 private:
  explicit NftablesAction(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace synwatch
