#pragma once
// Sets up spdlog: stderr by default, the systemd journal when started by systemd with its
// output connected to the journal (JOURNAL_STREAM), and optionally a size-rotated file.

#include <spdlog/logger.h>

#include <expected>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"

namespace synwatch {

// A logger for `config`; an error if the log file cannot be opened (or its directory is
// missing: it is never created).
std::expected<std::shared_ptr<spdlog::logger>, std::string> make_logger(const LogConfig& config);

// Replaces the default logger with make_logger(config).
std::expected<void, std::string> configure_logging(const LogConfig& config);

// Why size rotation of log.file will fail once running as `user` (when started as root), or
// nullopt.
std::optional<std::string> log_rotation_problem(const LogConfig& config, const std::string& user);

}  // namespace synwatch
