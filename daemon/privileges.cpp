#include "privileges.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace synwatch {

namespace {

std::string errno_text() {
  return std::strerror(errno);
}

// Leaves exactly CAP_NET_RAW in the permitted and effective sets (if the process has it).
std::expected<void, std::string> keep_only_net_raw() {
  cap_t caps = cap_get_proc();
  if (caps == nullptr) return std::unexpected("cannot read capabilities: " + errno_text());
  cap_flag_value_t has_raw = CAP_CLEAR;
  cap_get_flag(caps, CAP_NET_RAW, CAP_PERMITTED, &has_raw);
  cap_clear(caps);
  if (has_raw == CAP_SET) {
    const cap_value_t raw[] = {CAP_NET_RAW};
    cap_set_flag(caps, CAP_PERMITTED, 1, raw, CAP_SET);
    cap_set_flag(caps, CAP_EFFECTIVE, 1, raw, CAP_SET);
  }
  const int rc = cap_set_proc(caps);
  cap_free(caps);
  if (rc != 0) return std::unexpected("cannot drop capabilities: " + errno_text());
  return {};
}

}  // namespace

std::optional<std::string> missing_user_problem(const std::string& user) {
  if (::geteuid() != 0 || ::getpwnam(user.c_str()) != nullptr) return std::nullopt;
  return "user '" + user + "' (config key user) does not exist; create it with `useradd --system " +
         "--user-group --no-create-home --shell /usr/sbin/nologin " + user +
         "` (the package does) or name an existing unprivileged user";
}

std::expected<PrivilegeOutcome, std::string> drop_privileges(const std::string& user) {
  PrivilegeOutcome outcome;
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam(user.c_str());
    if (pw == nullptr) return std::unexpected("user '" + user + "' does not exist");
    outcome.user = pw->pw_name;
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;
    // Shrink the bounding set while we still hold CAP_SETPCAP.
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
      if (cap != CAP_NET_RAW) ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    }
    if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
      return std::unexpected("prctl(PR_SET_KEEPCAPS): " + errno_text());
    }
    if (::setgroups(0, nullptr) != 0) return std::unexpected("setgroups: " + errno_text());
    if (::setresgid(gid, gid, gid) != 0) return std::unexpected("setresgid: " + errno_text());
    if (::setresuid(uid, uid, uid) != 0) return std::unexpected("setresuid: " + errno_text());
    ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    outcome.switched = true;
  } else {
    const passwd* pw = ::getpwuid(::geteuid());
    outcome.user = pw != nullptr ? pw->pw_name : std::to_string(::geteuid());
  }
  if (auto kept = keep_only_net_raw(); !kept) return std::unexpected(kept.error());
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return std::unexpected("prctl(PR_SET_NO_NEW_PRIVS): " + errno_text());
  }
  return outcome;
}

}  // namespace synwatch
