#pragma once
// The addresses configured on this host's interfaces (getifaddrs), as /32 and /128 prefixes:
// the default set of protected destinations in live mode, so only traffic to this server is judged.
// Thread safety: free function; safe from any thread.

#include <expected>
#include <string>
#include <vector>

#include "common/ip_address.hpp"

namespace synwatch {

std::expected<std::vector<IpPrefix>, std::string> host_addresses();

}  // namespace synwatch
