#include "privileges.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace synwatch {

namespace {

// Leaves exactly CAP_NET_RAW, and CAP_NET_ADMIN when asked for, in the permitted and effective
// sets (those of them the process has); true when CAP_NET_ADMIN was kept.
Expected<bool> keep_only(bool keep_net_admin) {
  cap_t caps = cap_get_proc();
  if (caps == nullptr) return std::unexpected(Error::from_errno(errno, "cannot read capabilities"));
  cap_flag_value_t has_raw = CAP_CLEAR;
  cap_flag_value_t has_admin = CAP_CLEAR;
  cap_get_flag(caps, CAP_NET_RAW, CAP_PERMITTED, &has_raw);
  cap_get_flag(caps, CAP_NET_ADMIN, CAP_PERMITTED, &has_admin);
  cap_clear(caps);
  const bool admin = keep_net_admin && has_admin == CAP_SET;
  for (const auto& [cap, keep] :
       {std::pair{CAP_NET_RAW, has_raw == CAP_SET}, std::pair{CAP_NET_ADMIN, admin}}) {
    if (!keep) continue;
    const cap_value_t value[] = {cap};
    cap_set_flag(caps, CAP_PERMITTED, 1, value, CAP_SET);
    cap_set_flag(caps, CAP_EFFECTIVE, 1, value, CAP_SET);
  }
  const int rc = cap_set_proc(caps);
  const int set_error = errno;
  cap_free(caps);
  if (rc != 0) return std::unexpected(Error::from_errno(set_error, "cannot drop capabilities"));
  return admin;
}

}  // namespace

bool has_net_admin() {
  cap_t caps = cap_get_proc();
  if (caps == nullptr) return false;
  cap_flag_value_t admin = CAP_CLEAR;
  cap_get_flag(caps, CAP_NET_ADMIN, CAP_EFFECTIVE, &admin);
  cap_free(caps);
  return admin == CAP_SET;
}

std::optional<std::string> missing_user_problem(const std::string& user) {
  if (::geteuid() != 0 || ::getpwnam(user.c_str()) != nullptr) return std::nullopt;
  return "user '" + user + "' (config key user) does not exist; create it with `useradd --system " +
         "--user-group --no-create-home --shell /usr/sbin/nologin " + user +
         "` (the package does) or name an existing unprivileged user";
}

Expected<PrivilegeOutcome> drop_privileges(const std::string& user, bool keep_net_admin) {
  PrivilegeOutcome outcome;
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam(user.c_str());
    if (pw == nullptr) {
      return make_unexpected(ErrorKind::kNotFound, "user '" + user + "' does not exist");
    }
    outcome.user = pw->pw_name;
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;
    // Shrink the bounding set while we still hold CAP_SETPCAP.
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
      if (cap != CAP_NET_RAW && !(keep_net_admin && cap == CAP_NET_ADMIN)) {
        ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
      }
    }
    if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
      return std::unexpected(Error::from_errno(errno, "prctl(PR_SET_KEEPCAPS)"));
    }
    if (::setgroups(0, nullptr) != 0) return std::unexpected(Error::from_errno(errno, "setgroups"));
    if (::setresgid(gid, gid, gid) != 0) {
      return std::unexpected(Error::from_errno(errno, "setresgid"));
    }
    if (::setresuid(uid, uid, uid) != 0) {
      return std::unexpected(Error::from_errno(errno, "setresuid"));
    }
    ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    outcome.switched = true;
  } else {
    const passwd* pw = ::getpwuid(::geteuid());
    outcome.user = pw != nullptr ? pw->pw_name : std::to_string(::geteuid());
  }
  auto kept = keep_only(keep_net_admin);
  if (!kept) return std::unexpected(kept.error());
  outcome.net_admin = *kept;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return std::unexpected(Error::from_errno(errno, "prctl(PR_SET_NO_NEW_PRIVS)"));
  }
  return outcome;
}

}  // namespace synwatch
