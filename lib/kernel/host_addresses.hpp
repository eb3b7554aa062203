#pragma once
// The addresses configured on this host's interfaces (getifaddrs), as /32 and /128 prefixes:
// the default set of protected destinations in live mode, so only traffic to this server is judged.
// Thread safety: free function; safe from any thread.

#include <expected>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/ip_address.hpp"

namespace synwatch {

Expected<std::vector<IpPrefix>> host_addresses();

}  // namespace synwatch
