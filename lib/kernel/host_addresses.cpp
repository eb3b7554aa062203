#include "kernel/host_addresses.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace synwatch {

Expected<std::vector<IpPrefix>> host_addresses() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    return std::unexpected(Error::from_errno(errno, "cannot list the host's addresses"));
  }
  std::vector<IpPrefix> prefixes;
  for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    IpPrefix prefix;
    if (entry->ifa_addr->sa_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
      prefix.network = IpAddress::from_v4(reinterpret_cast<const std::uint8_t*>(&in->sin_addr));
    } else if (entry->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr);
      prefix.network = IpAddress::from_v6(in6->sin6_addr.s6_addr);
    } else {
      continue;
    }
    prefix.length = 128;
    if (std::find(prefixes.begin(), prefixes.end(), prefix) == prefixes.end()) {
      prefixes.push_back(prefix);
    }
  }
  freeifaddrs(list);
  std::sort(prefixes.begin(), prefixes.end(),
            [](const IpPrefix& a, const IpPrefix& b) { return a.network < b.network; });
  return prefixes;
}

}  // namespace synwatch
