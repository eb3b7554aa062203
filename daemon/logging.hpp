#pragma once
// Sets up spdlog: stderr by default, the systemd journal when started by systemd with its
// output connected to the journal (JOURNAL_STREAM), and optionally a size-rotated file.
// Timestamps are UTC in RFC 3339 ("2024-01-01T00:00:01.513Z"), the clock of the events.
// Incident lines go to the journal with structured fields (SYNWATCH_INCIDENT_ID, ...), so that
// `journalctl -u synwatch SYNWATCH_INCIDENT_ID=...` finds one incident.

#include <spdlog/logger.h>

#include <memory>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "config/config.hpp"
#include "detect/incident.hpp"

namespace synwatch {

struct Logging {
  std::shared_ptr<spdlog::logger> logger;  // every sink; becomes the default logger
  // The sinks other than the journal (stderr or the log file), for lines that go to the journal
  // on their own, with fields; null when there is no journal.
  std::shared_ptr<spdlog::logger> besides_journal;
  bool journal = false;
};

// The loggers for `config`; an error if the log file cannot be opened (or its directory is
// missing: it is never created).
Expected<Logging> make_logging(const LogConfig& config);

// Makes `logging.logger` the default logger.
void install_logging(const Logging& logging);

// One incident event's line (warning for started and ended, info for updated), with journal
// fields when logging to the journal.
void log_incident(const Logging& logging, const IncidentEvent& event);

// Why size rotation of log.file will fail once running as `user` (when started as root), or
// nullopt.
std::optional<std::string> log_rotation_problem(const LogConfig& config, const std::string& user);

}  // namespace synwatch
