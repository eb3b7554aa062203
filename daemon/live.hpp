#pragma once
// The long-running service: live capture, signals, reload, outputs.

#include <string>
#include <vector>

#include "config/loader.hpp"

namespace synwatch {

struct LiveOptions {
  std::string config_path;
  std::vector<ConfigOverride> overrides;  // re-applied on every reload
};

// Runs until SIGTERM/SIGINT; returns the process exit code.
int run_live(const Config& config, const LiveOptions& options);

}  // namespace synwatch
