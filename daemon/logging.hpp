#pragma once
// Sets up spdlog: stderr by default, the systemd journal when started by systemd with its
// output connected to the journal (JOURNAL_STREAM), and optionally a size-rotated file.

#include <expected>
#include <string>

#include "config/config.hpp"

namespace synwatch {

// Replaces the default logger; returns an error if the log file cannot be opened.
std::expected<void, std::string> configure_logging(const LogConfig& config);

}  // namespace synwatch
