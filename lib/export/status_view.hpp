#pragma once
// What `synwatchd top` draws from the status document (status_document.hpp): a header with the
// daemon's health, the open incidents, then the destinations with the most stale half-open
// connections, like top's process list. Lines are cut to the terminal's width and the
// destinations to its height. The wording may change between versions; scripts read the JSON.
// Thread safety: a pure function.

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace synwatch {

struct StatusViewOptions {
  std::size_t width = 0;   // columns; 0: lines are not cut
  std::size_t height = 0;  // lines; 0: every destination is shown
  std::size_t top_sources = 3;
};

// `previous`: the document read before this one, for the packet rate; nullptr for none. An
// error (kInvalidInput) names what the document lacked (a daemon of another version).
Expected<std::vector<std::string>> render_status(const nlohmann::json& document,
                                                 const nlohmann::json* previous,
                                                 const StatusViewOptions& options);

}  // namespace synwatch
