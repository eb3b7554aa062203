#pragma once
// Least privilege for the live daemon. Once the captures are open, synwatchd keeps only
// CAP_NET_RAW (needed to reopen an interface that went away), plus CAP_NET_ADMIN when an
// nftables action that changes the firewall (dry_run false) is configured, and, when started as
// root, switches to an unprivileged user. Everything else is dropped, including from the bounding
// set, and no_new_privs is set. The user must exist: falling back to a shared account such as
// nobody would let every other daemon running as it signal, trace or read this one.

#include <optional>
#include <string>

#include "common/error.hpp"

namespace synwatch {

struct PrivilegeOutcome {
  std::string user;        // the user now running, e.g. "synwatch"
  bool switched = false;   // false when not started as root (e.g. systemd already set the user)
  bool net_admin = false;  // CAP_NET_ADMIN kept (asked for, and the process had it)
};

// Why the live daemon started as root could not switch to `user` (it does not exist), or
// nullopt; checked at start, before anything is opened.
std::optional<std::string> missing_user_problem(const std::string& user);

// True when this thread may change the firewall (CAP_NET_ADMIN in its effective set).
bool has_net_admin();

// `keep_net_admin`: keep CAP_NET_ADMIN too, if the process has it (outcome.net_admin says).
Expected<PrivilegeOutcome> drop_privileges(const std::string& user, bool keep_net_admin);

}  // namespace synwatch
