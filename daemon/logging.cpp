#include "logging.hpp"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <vector>

namespace synwatch {

std::expected<void, std::string> configure_logging(const LogConfig& config) {
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
  spdlog::set_default_logger(logger);
  return {};
}

}  // namespace synwatch
