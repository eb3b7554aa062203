#include "logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "export/alert_file.hpp"

namespace synwatch {

namespace {

constexpr const char* kIdentifier = "synwatchd";

void set_utc_pattern(spdlog::sinks::sink& sink, const std::string& pattern) {
  sink.set_formatter(std::make_unique<spdlog::pattern_formatter>(
      pattern, spdlog::pattern_time_type::utc, std::string("\n")));
}

std::string top_sources_field(const IncidentEvent& event) {
  std::string out;
  for (const auto& source : event.top_sources) {
    if (!out.empty()) out += ' ';
    out += source.address.to_string() + "=" + std::to_string(source.syns);
  }
  return out;
}

}  // namespace

Expected<Logging> make_logging(const LogConfig& config) {
  Logging logging;
  std::vector<spdlog::sink_ptr> sinks;
  std::vector<spdlog::sink_ptr> others;
  if (std::getenv("JOURNAL_STREAM") != nullptr) {
    auto journal = std::make_shared<spdlog::sinks::systemd_sink_mt>(kIdentifier);
    journal->set_pattern("%v");
    sinks.push_back(journal);
    logging.journal = true;
  } else {
    auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    set_utc_pattern(*console, "%Y-%m-%dT%H:%M:%S.%eZ synwatchd %^%l%$: %v");
    sinks.push_back(console);
    others.push_back(console);
  }
  if (!config.file.empty()) {
    // spdlog would create missing directories, as whoever runs it (root at start): a typo in
    // the path must not leave directories behind, so the directory has to exist.
    const auto directory = std::filesystem::path(config.file).parent_path();
    std::error_code error;
    if (!directory.empty() && !std::filesystem::is_directory(directory, error)) {
      return make_unexpected(ErrorKind::kNotFound, "cannot open log file '" + config.file +
                                                       "': directory '" + directory.string() +
                                                       "' does not exist");
    }
    try {
      auto file = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          config.file, config.file_max_bytes, config.file_max_files);
      set_utc_pattern(*file, "%Y-%m-%dT%H:%M:%S.%eZ %l: %v");
      sinks.push_back(file);
      others.push_back(file);
    } catch (const spdlog::spdlog_ex& e) {
      // spdlog_ex keeps errno only inside its text: kIo rather than a guess at the kind.
      return make_unexpected(ErrorKind::kIo,
                             "cannot open log file '" + config.file + "': " + e.what());
    }
  }
  const auto level = spdlog::level::from_str(config.level);
  logging.logger = std::make_shared<spdlog::logger>(kIdentifier, sinks.begin(), sinks.end());
  logging.logger->set_level(level);
  logging.logger->flush_on(spdlog::level::info);
  if (logging.journal) {
    logging.besides_journal =
        std::make_shared<spdlog::logger>(kIdentifier, others.begin(), others.end());
    logging.besides_journal->set_level(level);
    logging.besides_journal->flush_on(spdlog::level::info);
  }
  return logging;
}

void install_logging(const Logging& logging) {
  spdlog::set_default_logger(logging.logger);
}

void log_incident(const Logging& logging, const IncidentEvent& event) {
  const auto level = event.type == EventType::kUpdated ? spdlog::level::info : spdlog::level::warn;
  const std::string line = describe_for_log(event);
  if (!logging.journal) {
    logging.logger->log(level, "{}", line);
    return;
  }
  if (logging.logger->should_log(level)) {
    // The journal's own fields beside the message: one incident is then one journalctl match.
    const std::string port =
        event.host_scope ? std::string("all") : std::to_string(event.target.port);
    const int priority = level == spdlog::level::warn ? LOG_WARNING : LOG_INFO;
    (void)sd_journal_send(
        "MESSAGE=%s", line.c_str(), "PRIORITY=%d", priority, "SYSLOG_IDENTIFIER=%s", kIdentifier,
        "SYNWATCH_INCIDENT_ID=%s", event.incident_id.c_str(), "SYNWATCH_EVENT=%s",
        std::string(to_string(event.type)).c_str(), "SYNWATCH_EVENT_ID=%s", event.event_id.c_str(),
        "SYNWATCH_KIND=%s", std::string(to_string(event.kind)).c_str(),
        "SYNWATCH_TARGET_ADDRESS=%s", event.target.address.to_string().c_str(),
        "SYNWATCH_TARGET_PORT=%s", port.c_str(), "SYNWATCH_HALF_OPEN=%u", event.stats.half_open,
        "SYNWATCH_STALE=%u", event.stats.stale, "SYNWATCH_TOP_SOURCES=%s",
        top_sources_field(event).c_str(), "SYNWATCH_EVIDENCE=%s", event.evidence_path.c_str(),
        nullptr);
  }
  logging.besides_journal->log(level, "{}", line);
}

std::optional<std::string> log_rotation_problem(const LogConfig& config, const std::string& user) {
  if (config.file.empty()) return std::nullopt;
  const passwd* account = ::getpwnam(user.c_str());
  if (account == nullptr || ::geteuid() != 0) return std::nullopt;
  auto directory = std::filesystem::path(config.file).parent_path();
  if (directory.empty()) directory = ".";
  struct stat info {};
  if (::stat(directory.c_str(), &info) != 0) return std::nullopt;
  // Rotation renames files in the directory: after the privilege drop that needs write
  // permission there as `user` (root's directories refuse it).
  const bool owner_writes = info.st_uid == account->pw_uid && (info.st_mode & S_IWUSR) != 0;
  const bool group_writes = info.st_gid == account->pw_gid && (info.st_mode & S_IWGRP) != 0;
  const bool others_write = (info.st_mode & S_IWOTH) != 0;
  if (owner_writes || group_writes || others_write) return std::nullopt;
  return "log.file's directory '" + directory.string() + "' is not writable by user '" + user +
         "': rotating '" + config.file +
         "' will fail after privileges are dropped (chown the directory to that user, or use "
         "systemd's LogsDirectory=)";
}

}  // namespace synwatch
