#include "export/nftables_action.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

// libnftables.h defines _GNU_SOURCE itself, which g++ predefines already (as 1): without this its
// different definition is a redefinition warning.
#pragma push_macro("_GNU_SOURCE")
#undef _GNU_SOURCE
#include <nftables/libnftables.h>
#pragma pop_macro("_GNU_SOURCE")

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>

#include "kernel/host_addresses.hpp"

namespace synwatch {

namespace {

using Clock = std::chrono::steady_clock;

// Far more than a flood produces (two events per incident plus one per update_interval): only a
// worker stuck in netlink lets the queue grow, and then later events are dropped, not memory.
constexpr std::size_t kMaxQueuedEvents = 4096;

// The chain of an action with create_table: one per action, so that two actions sharing a table
// never flush each other's rules. Action names are letters, digits, '.', '-' and '_', all of which
// nft takes inside an identifier; the prefix makes it start with a letter.
std::string chain_of(const ActionConfig& action) {
  return "synwatch_" + action.name;
}

std::optional<BlockSkip> special_purpose(const IpAddress& address) {
  if (address.is_v4()) {
    const std::uint32_t v4 = address.v4();
    if (v4 >> 24 == 127) return BlockSkip::kLoopback;
    if (v4 >> 16 == 0xa9fe) return BlockSkip::kLinkLocal;
    if (v4 >> 24 == 0) return BlockSkip::kUnspecified;
    if (v4 >> 28 == 0xe || v4 == 0xffffffff) return BlockSkip::kMulticast;
    return std::nullopt;
  }
  const auto& b = address.bytes;
  const bool zero_but_last = std::all_of(b.begin(), b.end() - 1, [](auto x) { return x == 0; });
  if (zero_but_last && b[15] == 1) return BlockSkip::kLoopback;
  if (zero_but_last && b[15] == 0) return BlockSkip::kUnspecified;
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return BlockSkip::kLinkLocal;
  if (b[0] == 0xff) return BlockSkip::kMulticast;
  return std::nullopt;
}

bool inside(const std::vector<IpPrefix>& prefixes, const IpAddress& address) {
  return std::ranges::any_of(prefixes,
                             [&](const IpPrefix& prefix) { return prefix.contains(address); });
}

std::string join(const std::vector<IpAddress>& addresses) {
  std::string out;
  for (const auto& address : addresses) out += (out.empty() ? "" : ", ") + address.to_string();
  return out;
}

std::string first_line(std::string_view text) {
  const auto end = text.find('\n');
  std::string line(text.substr(0, end));
  return line.empty() ? std::string("(no message from nftables)") : line;
}

// nft's time syntax: whole seconds where possible ("600s"), else milliseconds.
std::string nft_duration(DurationNs duration) {
  if (duration % kNanosPerSecond == 0) return fmt::format("{}s", duration / kNanosPerSecond);
  return fmt::format("{}ms", std::max<DurationNs>(1, duration / kNanosPerMilli));
}

// One libnftables context, used by one thread at a time (libnftables is not thread-safe).
class Nft {
 public:
  static Expected<Nft> open() {
    nft_ctx* context = nft_ctx_new(NFT_CTX_DEFAULT);
    if (context == nullptr) return make_unexpected(ErrorKind::kIo, "nft_ctx_new failed");
    if (nft_ctx_buffer_output(context) != 0 || nft_ctx_buffer_error(context) != 0) {
      nft_ctx_free(context);
      return make_unexpected(ErrorKind::kIo, "cannot buffer libnftables' output");
    }
    return Nft(context);
  }
  Nft(Nft&& other) noexcept : context_(std::exchange(other.context_, nullptr)) {}
  Nft& operator=(Nft&&) = delete;
  Nft(const Nft&) = delete;
  Nft& operator=(const Nft&) = delete;
  ~Nft() {
    if (context_ != nullptr) nft_ctx_free(context_);
  }

  // Runs `commands` (nft syntax, one per line) as one transaction: all or nothing. The error's
  // message is nftables' whole message, its kind what that message says; its output (of list
  // commands) on success.
  Expected<std::string> run(const std::string& commands, bool terse = false) {
    nft_ctx_output_set_flags(context_, terse ? static_cast<unsigned>(NFT_CTX_OUTPUT_TERSE) : 0U);
    const int rc = nft_run_cmd_from_buffer(context_, commands.c_str());
    const char* output = nft_ctx_get_output_buffer(context_);
    const char* error = nft_ctx_get_error_buffer(context_);
    if (rc != 0) {
      std::string message(error != nullptr ? error : "");
      const ErrorKind kind = kind_of_nftables_error(message);
      return make_unexpected(kind, std::move(message));
    }
    return std::string(output != nullptr ? output : "");
  }

 private:
  explicit Nft(nft_ctx* context) : context_(context) {}
  nft_ctx* context_;
};

struct Holding {
  std::set<std::string> incidents;  // open incidents whose sources include it
  Clock::time_point refreshed;      // when its timeout was last set
};

}  // namespace

ErrorKind kind_of_nftables_error(std::string_view message) {
  // Only errnos whose kind a caller acts on, or that tell the operator what to fix. EBUSY is left
  // out on purpose: it is not "already in the set", which kInUse means to the callers.
  for (const int errno_value : {EEXIST, ENOENT, EPERM, EACCES, ENOMEM, ENOSPC, EINVAL}) {
    if (message.find(std::strerror(errno_value)) != std::string_view::npos) {
      return Error::kind_of_errno(errno_value);
    }
  }
  return ErrorKind::kIo;
}

std::string_view to_string(BlockSkip reason) noexcept {
  switch (reason) {
    case BlockSkip::kNotConcentrated:
      return "not_concentrated";
    case BlockSkip::kBelowMinShare:
      return "below_min_share";
    case BlockSkip::kProtected:
      return "protected";
    case BlockSkip::kAllowlisted:
      return "allowlisted";
    case BlockSkip::kLoopback:
      return "loopback";
    case BlockSkip::kLinkLocal:
      return "link_local";
    case BlockSkip::kUnspecified:
      return "unspecified";
    case BlockSkip::kMulticast:
      return "multicast";
    case BlockSkip::kOwnAddress:
      return "own_address";
    case BlockSkip::kNoSet:
      return "no_set";
    case BlockSkip::kLimit:
      return "limit";
  }
  return "?";
}

std::vector<ActionConfig> actions_of_type(const std::vector<ActionConfig>& actions,
                                          std::string_view type) {
  std::vector<ActionConfig> out;
  for (const auto& action : actions) {
    if (action.type == type) out.push_back(action);
  }
  return out;
}

std::vector<std::string> actions_needing_net_admin(const std::vector<ActionConfig>& actions) {
  std::vector<std::string> names;
  for (const auto& action : actions) {
    if (action.type == "nftables" && !action.dry_run) names.push_back(action.name);
  }
  return names;
}

BlockChoice choose_sources_to_block(const IncidentEvent& event, const BlockRules& rules,
                                    const std::set<IpAddress>& held) {
  BlockChoice choice;
  // Each heavy source's share of what made this an incident: the stale handshakes. Without that
  // figure (it is 0 only in odd replays), of what the top sources sent.
  double judged = event.stats.stale;
  if (judged <= 0) {
    for (const auto& source : event.top_sources) judged += static_cast<double>(source.syns);
  }
  std::size_t holding = held.size();
  for (const auto& source : event.top_sources) {
    const IpAddress& address = source.address;
    auto skip = [&](BlockSkip reason) { choice.skipped.emplace_back(address, reason); };
    // The safety rules come first, so that an address that must never be blocked is reported
    // for that reason and not for a lesser one.
    if (event.kind != AttackKind::kConcentrated) {
      skip(BlockSkip::kNotConcentrated);
    } else if (const auto special = special_purpose(address)) {
      skip(*special);
    } else if (inside(rules.host_addresses, address)) {
      skip(BlockSkip::kOwnAddress);
    } else if (inside(rules.protected_prefixes, address)) {
      skip(BlockSkip::kProtected);
    } else if (inside(rules.allowlist, address)) {
      skip(BlockSkip::kAllowlisted);
    } else if (judged > 0 && static_cast<double>(source.syns) / judged < rules.min_share) {
      skip(BlockSkip::kBelowMinShare);
    } else if (address.is_v4() ? !rules.has_ipv4_set : !rules.has_ipv6_set) {
      skip(BlockSkip::kNoSet);
    } else if (held.contains(address)) {
      choice.keep.push_back(address);
    } else if (holding >= rules.max_entries) {
      skip(BlockSkip::kLimit);
    } else {
      choice.add.push_back(address);
      ++holding;
    }
  }
  return choice;
}

struct NftablesAction::State {
  ActionConfig config;
  std::vector<IpPrefix> protected_prefixes;
  std::optional<Nft> nft;  // absent with dry_run

  mutable std::mutex mutex;
  std::condition_variable wake;     // an event queued, or stop
  std::condition_variable drained;  // the queue ran empty
  std::deque<IncidentEvent> queue;
  bool busy = false;
  bool stopping = false;
  NftablesActionStats stats;
  std::thread worker;

  // Worker thread only.
  std::map<IpAddress, Holding> holdings;
  // Elements found in a set already (not this action's), by the open incidents that found them:
  // not tried, logged or counted again at every update while those incidents last.
  std::map<IpAddress, std::set<std::string>> found_present;

  [[nodiscard]] const std::string& set_for(const IpAddress& address) const {
    return address.is_v4() ? config.set_ipv4 : config.set_ipv6;
  }
  [[nodiscard]] std::string element_list(const std::vector<IpAddress>& addresses,
                                         bool with_timeout) const {
    std::string out;
    for (const auto& address : addresses) {
      out += (out.empty() ? "" : ", ") + address.to_string();
      if (with_timeout) out += " timeout " + nft_duration(config.block_for);
    }
    return "{ " + out + " }";
  }
  [[nodiscard]] std::string where(const std::string& set) const { return config.table + " " + set; }

  void count(std::uint64_t NftablesActionStats::*field, std::size_t n = 1) {
    std::lock_guard lock(mutex);
    stats.*field += n;
  }

  // Creates the table, sets and chain, or checks the operator's sets. Before the worker starts.
  Expected<void> prepare() {
    if (config.create_table) {
      std::string commands = "add table " + config.table + "\n";
      commands += "add chain " + config.table + " " + chain_of(config) +
                  " { type filter hook prerouting priority -300; policy accept; }\n";
      // Replaced, not added to, so that restarts and reloads do not stack up rules; the sets and
      // their elements stay.
      commands += "flush chain " + config.table + " " + chain_of(config) + "\n";
      for (const auto& [set, type, match] : {std::tuple{config.set_ipv4, "ipv4_addr", "ip"},
                                             std::tuple{config.set_ipv6, "ipv6_addr", "ip6"}}) {
        if (set.empty()) continue;
        commands += "add set " + where(set) + " { type " + type + "; flags timeout; }\n";
        // New connections only (SYN without ACK), before connection tracking (priority -300):
        // what a SYN flood sends; established connections from the address are left alone.
        commands += "add rule " + config.table + " " + chain_of(config) + " " + match + " saddr @" +
                    set + " tcp flags & (syn | ack) == syn counter drop\n";
      }
      if (auto done = nft->run(commands); !done) {
        return make_unexpected(done.error().kind, "cannot create nftables table " + config.table +
                                                      ": " + first_line(done.error().message));
      }
      spdlog::info("nftables action '{}': table {} with sets {} and chain {} dropping their SYNs",
                   config.name, config.table,
                   config.set_ipv4.empty()   ? config.set_ipv6
                   : config.set_ipv6.empty() ? config.set_ipv4
                                             : config.set_ipv4 + ", " + config.set_ipv6,
                   chain_of(config));
      return {};
    }
    for (const auto& [set, type] :
         {std::pair{config.set_ipv4, "ipv4_addr"}, std::pair{config.set_ipv6, "ipv6_addr"}}) {
      if (set.empty()) continue;
      auto listed = nft->run("list set " + where(set), true);
      if (!listed) {
        return make_unexpected(listed.error().kind,
                               "nftables set " + where(set) + ": " +
                                   first_line(listed.error().message) +
                                   " (create_table is false: the set must exist)");
      }
      if (listed->find(std::string("type ") + type + "\n") == std::string::npos) {
        return make_unexpected(ErrorKind::kInvalidInput,
                               "nftables set " + where(set) + " is not of type " + type);
      }
      if (listed->find("timeout") == std::string::npos) {
        return make_unexpected(ErrorKind::kInvalidInput,
                               "nftables set " + where(set) +
                                   " does not take timeouts; declare it with `flags timeout`");
      }
    }
    spdlog::info("nftables action '{}': using the existing sets of table {}", config.name,
                 config.table);
    return {};
  }

  void add(const IncidentEvent& event, const std::vector<IpAddress>& addresses) {
    std::map<std::string, std::vector<IpAddress>> by_set;
    for (const auto& address : addresses) {
      if (const auto present = found_present.find(address); present != found_present.end()) {
        present->second.insert(event.incident_id);
        continue;
      }
      by_set[set_for(address)].push_back(address);
    }
    for (const auto& [set, batch] : by_set) {
      if (config.dry_run) {
        spdlog::warn(
            "nftables action '{}' for incident {}: dry_run: would add {} to {} for {} (block_for)",
            config.name, event.incident_id, join(batch), where(set),
            nft_duration(config.block_for));
        count(&NftablesActionStats::dry_run_added, batch.size());
        hold(event.incident_id, batch);
        continue;
      }
      // `create` fails if an element exists: one the operator (or a previous run) put there is
      // left alone, and this action never removes what it did not add.
      auto created =
          nft->run("create element " + where(set) + " " + element_list(batch, true) + "\n");
      if (created) {
        spdlog::warn("nftables action '{}' for incident {} ({}): added {} to {} for {}",
                     config.name, event.incident_id,
                     describe_target(event.target, event.host_scope), join(batch), where(set),
                     nft_duration(config.block_for));
        count(&NftablesActionStats::added, batch.size());
        hold(event.incident_id, batch);
        continue;
      }
      // One at a time, to tell the present ones from real failures.
      std::vector<IpAddress> added;
      for (const auto& address : batch) {
        auto one =
            nft->run("create element " + where(set) + " " + element_list({address}, true) + "\n");
        if (one) {
          added.push_back(address);
        } else if (one.error().kind == ErrorKind::kInUse) {
          found_present[address].insert(event.incident_id);
          count(&NftablesActionStats::already_present);
          spdlog::info(
              "nftables action '{}' for incident {}: {} is in {} already (not added by "
              "this action, so left as it is)",
              config.name, event.incident_id, address.to_string(), where(set));
        } else {
          count(&NftablesActionStats::failed);
          spdlog::error("nftables action '{}' for incident {}: cannot add {} to {}: {}",
                        config.name, event.incident_id, address.to_string(), where(set),
                        first_line(one.error().message));
        }
      }
      if (!added.empty()) {
        spdlog::warn("nftables action '{}' for incident {} ({}): added {} to {} for {}",
                     config.name, event.incident_id,
                     describe_target(event.target, event.host_scope), join(added), where(set),
                     nft_duration(config.block_for));
        count(&NftablesActionStats::added, added.size());
        hold(event.incident_id, added);
      }
    }
  }

  void hold(const std::string& incident, const std::vector<IpAddress>& addresses) {
    const auto now = Clock::now();
    for (const auto& address : addresses) {
      Holding& holding = holdings[address];
      holding.incidents.insert(incident);
      holding.refreshed = now;
    }
    std::lock_guard lock(mutex);
    stats.held = holdings.size();
  }

  // Elements held for the incident (or another) stay; their timeouts are renewed once half of
  // block_for has passed, so that a flood longer than block_for stays blocked.
  void keep(const IncidentEvent& event, const std::vector<IpAddress>& addresses) {
    const auto now = Clock::now();
    const auto half = std::chrono::nanoseconds(config.block_for / 2);
    std::map<std::string, std::vector<IpAddress>> due;
    for (const auto& address : addresses) {
      Holding& holding = holdings[address];
      holding.incidents.insert(event.incident_id);
      if (now - holding.refreshed >= half) due[set_for(address)].push_back(address);
    }
    for (const auto& [set, batch] : due) {
      bool done = config.dry_run;
      if (!config.dry_run) {
        // Add (in case it timed out), delete, add with a fresh timeout: one transaction, so the
        // address is never out of the set, and it works on kernels whose `add` of an existing
        // element leaves its timeout as it was.
        const std::string elements = element_list(batch, false);
        std::string commands = "add element " + where(set) + " " + elements + "\n";
        commands += "delete element " + where(set) + " " + elements + "\n";
        commands += "add element " + where(set) + " " + element_list(batch, true) + "\n";
        auto refreshed = nft->run(commands);
        done = refreshed.has_value();
        if (!refreshed) {
          count(&NftablesActionStats::failed, batch.size());
          spdlog::error("nftables action '{}' for incident {}: cannot renew {} in {}: {}",
                        config.name, event.incident_id, join(batch), where(set),
                        first_line(refreshed.error().message));
        }
      }
      if (done) {
        spdlog::info("nftables action '{}' for incident {}: {}renewed {} in {} for {}", config.name,
                     event.incident_id, config.dry_run ? "dry_run: would have " : "", join(batch),
                     where(set), nft_duration(config.block_for));
        count(&NftablesActionStats::refreshed, batch.size());
        for (const auto& address : batch) holdings[address].refreshed = now;
      }
    }
  }

  // Takes out what only `incident` held (all of it when `incident` is empty: stopping).
  void release(const std::string& incident, const std::string& why) {
    for (auto it = found_present.begin(); it != found_present.end();) {
      it->second.erase(incident);
      it = incident.empty() || it->second.empty() ? found_present.erase(it) : std::next(it);
    }
    std::map<std::string, std::vector<IpAddress>> by_set;
    for (auto it = holdings.begin(); it != holdings.end();) {
      auto& incidents = it->second.incidents;
      if (incident.empty()) {
        incidents.clear();
      } else {
        incidents.erase(incident);
      }
      if (incidents.empty()) {
        by_set[set_for(it->first)].push_back(it->first);
        it = holdings.erase(it);
      } else {
        ++it;
      }
    }
    {
      std::lock_guard lock(mutex);
      stats.held = holdings.size();
    }
    const std::string label = incident.empty() ? std::string() : " for incident " + incident;
    for (const auto& [set, batch] : by_set) {
      if (config.dry_run) {
        spdlog::warn("nftables action '{}'{}: dry_run: would remove {} from {} ({})", config.name,
                     label, join(batch), where(set), why);
        count(&NftablesActionStats::dry_run_removed, batch.size());
        continue;
      }
      auto deleted =
          nft->run("delete element " + where(set) + " " + element_list(batch, false) + "\n");
      if (deleted) {
        spdlog::warn("nftables action '{}'{}: removed {} from {} ({})", config.name, label,
                     join(batch), where(set), why);
        count(&NftablesActionStats::removed, batch.size());
        continue;
      }
      // One at a time: an element whose timeout ran out is gone already, and that is fine.
      std::vector<IpAddress> removed;
      std::vector<IpAddress> expired;
      for (const auto& address : batch) {
        auto one =
            nft->run("delete element " + where(set) + " " + element_list({address}, false) + "\n");
        if (one) {
          removed.push_back(address);
        } else if (one.error().kind == ErrorKind::kNotFound) {
          expired.push_back(address);
        } else {
          count(&NftablesActionStats::failed);
          spdlog::error(
              "nftables action '{}'{}: cannot remove {} from {}: {}; it goes when its "
              "timeout ends",
              config.name, label, address.to_string(), where(set), first_line(one.error().message));
        }
      }
      if (!removed.empty()) {
        spdlog::warn("nftables action '{}'{}: removed {} from {} ({})", config.name, label,
                     join(removed), where(set), why);
        count(&NftablesActionStats::removed, removed.size());
      }
      if (!expired.empty()) {
        spdlog::info("nftables action '{}'{}: {} had left {} already (timeout)", config.name, label,
                     join(expired), where(set));
        count(&NftablesActionStats::expired, expired.size());
      }
    }
  }

  void handle(const IncidentEvent& event) {
    if (event.type == EventType::kEnded) {
      release(event.incident_id, "incident ended");
      return;
    }
    BlockRules rules;
    rules.protected_prefixes = protected_prefixes;
    rules.allowlist = config.allowlist;
    rules.has_ipv4_set = !config.set_ipv4.empty();
    rules.has_ipv6_set = !config.set_ipv6.empty();
    rules.min_share = config.min_share;
    rules.max_entries = config.max_entries;
    if (event.kind == AttackKind::kConcentrated) {
      // Re-read every time: an address added to this host since the last event must never be
      // blocked, and without the list nothing is safe to block.
      auto own = host_addresses();
      if (!own) {
        spdlog::error("nftables action '{}' for incident {}: {}; blocking nothing", config.name,
                      event.incident_id, own.error().message);
        count(&NftablesActionStats::failed, event.top_sources.size());
        return;
      }
      rules.host_addresses = std::move(*own);
    }
    std::set<IpAddress> held;
    for (const auto& [address, holding] : holdings) held.insert(address);
    const BlockChoice choice = choose_sources_to_block(event, rules, held);
    {
      std::lock_guard lock(mutex);
      for (const auto& [address, reason] : choice.skipped) {
        ++stats.skipped[std::string(to_string(reason))];
      }
    }
    if (event.kind != AttackKind::kConcentrated) {
      // Forged or too many sources: blocking them would only fill the set.
      if (event.type == EventType::kStarted) {
        spdlog::info(
            "nftables action '{}' for incident {}: {} flood, only concentrated incidents' sources "
            "are blocked: nothing to do",
            config.name, event.incident_id, to_string(event.kind));
      }
    } else {
      std::string skipped;
      for (const auto& [address, reason] : choice.skipped) {
        skipped += (skipped.empty() ? "" : ", ") + address.to_string() + " (" +
                   std::string(to_string(reason)) + ")";
      }
      // At the start, and at debug level on updates, which mostly repeat it.
      if (!skipped.empty()) {
        spdlog::log(event.type == EventType::kStarted ? spdlog::level::info : spdlog::level::debug,
                    "nftables action '{}' for incident {}: not blocking {}", config.name,
                    event.incident_id, skipped);
      }
    }
    add(event, choice.add);
    keep(event, choice.keep);
  }

  void run() {
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) break;  // stopping, and everything queued is done
      IncidentEvent event = std::move(queue.front());
      queue.pop_front();
      busy = true;
      lock.unlock();
      handle(event);
      lock.lock();
      busy = false;
      if (queue.empty()) drained.notify_all();
    }
    lock.unlock();
    if (!holdings.empty()) release("", "synwatchd is stopping or the action was reconfigured");
    lock.lock();
    drained.notify_all();
  }
};

NftablesAction::NftablesAction(std::unique_ptr<State> state) : state_(std::move(state)) {}

Expected<std::unique_ptr<NftablesAction>> NftablesAction::start(
    const ActionConfig& config, const std::vector<IpPrefix>& protected_prefixes) {
  auto state = std::make_unique<State>();
  state->config = config;
  state->protected_prefixes = protected_prefixes;
  state->stats.name = config.name;
  state->stats.dry_run = config.dry_run;
  for (std::size_t i = 0; i < kBlockSkipReasons; ++i) {
    state->stats.skipped[std::string(to_string(static_cast<BlockSkip>(i)))] = 0;
  }
  if (config.dry_run) {
    spdlog::info(
        "nftables action '{}': dry_run: logs what it would add to and remove from {}, "
        "changes nothing",
        config.name, config.table);
  } else {
    auto nft = Nft::open();
    if (!nft) {
      return std::unexpected(nft.error().prefixed("nftables action '" + config.name + "': "));
    }
    state->nft.emplace(std::move(*nft));
    if (auto prepared = state->prepare(); !prepared) {
      return std::unexpected(prepared.error().prefixed("nftables action '" + config.name + "': "));
    }
  }
  State* raw = state.get();
  state->worker = std::thread([raw] {
    pthread_setname_np(pthread_self(), "sw-nftables");
    raw->run();
  });
  return std::unique_ptr<NftablesAction>(new NftablesAction(std::move(state)));
}

NftablesAction::~NftablesAction() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  state_->worker.join();
}

void NftablesAction::publish(const IncidentEvent& event) {
  const auto type = to_string(event.type);
  if (std::ranges::find(state_->config.events, type) == state_->config.events.end()) return;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->queue.size() >= kMaxQueuedEvents) {
      ++state_->stats.events_dropped;
      spdlog::error("nftables action '{}': {} events queued already, {} dropped",
                    state_->config.name, kMaxQueuedEvents, event.event_id);
      return;
    }
    state_->queue.push_back(event);
  }
  state_->wake.notify_one();
}

bool NftablesAction::wait_idle(std::chrono::milliseconds limit) {
  std::unique_lock lock(state_->mutex);
  return state_->drained.wait_for(lock, limit,
                                  [&] { return state_->queue.empty() && !state_->busy; });
}

NftablesActionStats NftablesAction::stats() const {
  std::lock_guard lock(state_->mutex);
  return state_->stats;
}

const ActionConfig& NftablesAction::config() const {
  return state_->config;
}

}  // namespace synwatch
