#include "logging.hpp"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace synwatch {

std::expected<std::shared_ptr<spdlog::logger>, std::string> make_logger(const LogConfig& config) {
  std::vector<spdlog::sink_ptr> sinks;
  if (std::getenv("JOURNAL_STREAM") != nullptr) {
    auto journal = std::make_shared<spdlog::sinks::systemd_sink_mt>("synwatchd");
    journal->set_pattern("%v");
    sinks.push_back(journal);
  } else {
    auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    console->set_pattern("%Y-%m-%dT%H:%M:%S.%e synwatchd %^%l%$: %v");
    sinks.push_back(console);
  }
  if (!config.file.empty()) {
    // spdlog would create missing directories, as whoever runs it (root at start): a typo in
    // the path must not leave directories behind, so the directory has to exist.
    const auto directory = std::filesystem::path(config.file).parent_path();
    std::error_code error;
    if (!directory.empty() && !std::filesystem::is_directory(directory, error)) {
      return std::unexpected("cannot open log file '" + config.file + "': directory '" +
                             directory.string() + "' does not exist");
    }
    try {
      auto file = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          config.file, config.file_max_bytes, config.file_max_files);
      file->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l: %v");
      sinks.push_back(file);
    } catch (const spdlog::spdlog_ex& e) {
      return std::unexpected("cannot open log file '" + config.file + "': " + e.what());
    }
  }
  auto logger = std::make_shared<spdlog::logger>("synwatchd", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::from_str(config.level));
  logger->flush_on(spdlog::level::info);
  return logger;
}

std::expected<void, std::string> configure_logging(const LogConfig& config) {
  auto logger = make_logger(config);
  if (!logger) return std::unexpected(logger.error());
  spdlog::set_default_logger(std::move(*logger));
  return {};
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
