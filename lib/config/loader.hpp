#pragma once
// Parses YAML into a validated Config. All problems are collected, not just the first, and each
// names where it is: "file:line:column: dotted.key: what is wrong".
// Thread safety: free functions with no shared state.

#include <cstddef>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace synwatch {

// A configuration file larger than this is refused unread.
inline constexpr std::size_t kMaxConfigBytes = std::size_t{1} << 20;

struct ConfigError {
  std::string file;     // the config file, "--set" for overrides, "" for unnamed text
  int line = 0;         // 1-based; 0 when unknown
  int column = 0;       // 1-based; 0 when unknown
  std::string key;      // dotted path, e.g. "detection.half_open"
  std::string message;  // e.g. "unknown key, did you mean 'half_open'?"

  [[nodiscard]] std::string to_string() const;  // "file:line:col: key: message"
};

struct ConfigOverride {
  std::string key;    // dotted path
  std::string value;  // YAML scalar or flow sequence text, e.g. "100", "[10.0.0.0/8]"
};

// Parses an override in KEY=VALUE form (as given to --set).
std::expected<ConfigOverride, ConfigError> parse_override(std::string_view text);

// Loads `path` (or the built-in defaults when path is empty), applies overrides in order, and
// validates. Returns every error found.
std::expected<Config, std::vector<ConfigError>> load_config(
    const std::string& path, const std::vector<ConfigOverride>& overrides = {});

// Same, from YAML text; `source_name` is used in error locations.
std::expected<Config, std::vector<ConfigError>> load_config_text(
    std::string_view yaml_text, const std::string& source_name,
    const std::vector<ConfigOverride>& overrides = {});

}  // namespace synwatch
