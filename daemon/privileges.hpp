#pragma once
// Least privilege for the live daemon. Once the captures are open, synwatchd keeps only
// CAP_NET_RAW (needed to reopen an interface that went away) and, when started as root, switches
// to an unprivileged user. Everything else is dropped, including from the bounding set, and
// no_new_privs is set.

#include <expected>
#include <string>

namespace synwatch {

struct PrivilegeOutcome {
  std::string user;       // the user now running, e.g. "synwatch" or "nobody"
  bool switched = false;  // false when not started as root (e.g. systemd already set the user)
};

// `preferred_user` is tried first, then "nobody".
std::expected<PrivilegeOutcome, std::string> drop_privileges(const std::string& preferred_user);

}  // namespace synwatch
