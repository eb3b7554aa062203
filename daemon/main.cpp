// synwatchd: command line and wiring. All logic lives in lib/.
#include <CLI/CLI.hpp>
#include <sys/ioctl.h>
#include <unistd.h>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "build_info.hpp"
#include "common/exit_codes.hpp"
#include "config/loader.hpp"
#include "config/schema.hpp"
#include "live.hpp"
#include "offline.hpp"
#include "top.hpp"
#include "version.hpp"

namespace {

// The width of the terminal on `fd`; 0 when it is not one.
std::size_t terminal_columns(int fd) {
  winsize size{};
  if (::ioctl(fd, TIOCGWINSZ, &size) != 0) return 0;
  return size.ws_col;
}

// The status socket `synwatchd top` reads: as given, or as the daemon's configuration names it.
std::optional<std::string> status_socket_of(const std::string& config_path) {
  std::string path = config_path;
  if (path.empty()) {
    // The packaged daemon's configuration, when this user may read it; otherwise the default.
    if (::access(synwatch::kDefaultConfigPath, R_OK) != 0) return synwatch::StatusConfig{}.socket;
    path = synwatch::kDefaultConfigPath;
  }
  auto config = synwatch::load_config(path, {});
  if (!config) {
    for (const auto& error : config.error()) {
      (void)std::fprintf(stderr, "%s\n", error.to_string().c_str());
    }
    return std::nullopt;
  }
  return config->status.socket;
}

int run_top_command(const std::string& config_path, const std::string& socket,
                    const std::string& format_name, bool once, double interval,
                    std::uint64_t iterations) {
  synwatch::TopOptions options;
  options.once = once;
  options.interval = std::chrono::milliseconds(static_cast<long long>(interval * 1000));
  if (iterations > 0) options.iterations = iterations;
  if (!format_name.empty()) {
    const auto format = synwatch::parse_report_format(format_name);
    if (!format) {
      (void)std::fprintf(stderr, "synwatchd top: --format must be text or json, not '%s'\n",
                         format_name.c_str());
      return synwatch::exit_code::kUsage;
    }
    options.format = *format;
  }
  if (!socket.empty()) {
    options.socket = socket;
  } else {
    auto from_config = status_socket_of(config_path);
    if (!from_config) return synwatch::exit_code::kConfig;
    options.socket = *from_config;
  }
  return synwatch::run_top(options);
}

int run(int argc, char** argv) {
  CLI::App app{
      "synwatchd: detects TCP SYN floods by tracking half-open connections per "
      "destination and judging how random their sources are.",
      "synwatchd"};
  std::string config_path;
  std::vector<std::string> read_paths;
  std::string format_name;
  bool quiet = false;
  bool force_progress = false;
  std::vector<std::string> overrides;
  std::string evidence_dir;
  bool check_config = false;
  bool config_reference = false;
  app.add_option("-c,--config", config_path,
                 fmt::format("YAML configuration file (built-in defaults if omitted; "
                             "--check-config without it checks {})",
                             synwatch::kDefaultConfigPath));
  app.add_option(
      "-r,--read", read_paths,
      "Analyse a pcap/pcapng capture (optionally gzip-compressed; - or a pipe/FIFO reads a "
      "stream) as fast as it reads. Several files (--read a b, or --read a --read b) are the "
      "consecutive pieces of one capture (tcpdump -C/-G) and are read as one, in the time order "
      "of their first packets; files that overlap in time are refused");
  app.add_option("--format", format_name,
                 "With --read: json (JSON lines, the default when stdout is not a terminal) or "
                 "text (a line per event, a table of incidents and the capture summary, the "
                 "default on a terminal)");
  app.add_flag("-q,--quiet", quiet,
               "With --read: no progress line and no summary on stderr (errors only)");
  app.add_flag("--progress", force_progress,
               "With --read: draw the progress line on stderr even when it is not a terminal");
  app.add_option("--evidence-dir", evidence_dir,
                 "With --read: write each incident's evidence capture (pcap) into this directory");
  app.add_option("-s,--set", overrides,
                 "Override a config key by its dotted path, e.g. --set detection.half_open=100 "
                 "(repeatable)")
      ->take_all();
  app.add_flag("--check-config", check_config,
               fmt::format("Validate the configuration (--config, or {}) and exit (78 if invalid)",
                           synwatch::kDefaultConfigPath));
  app.add_flag("--config-reference", config_reference,
               "Print every configuration key with its type, range, default and meaning, and exit");
  CLI::App* top = app.add_subcommand(
      "top",
      "Show a running synwatchd's open incidents and busiest destinations, refreshed like top "
      "(q quits); reads its status socket (root or the synwatch group)");
  std::string top_socket;
  std::string top_format;
  bool top_once = false;
  double top_interval = 1.0;
  std::uint64_t top_iterations = 0;
  top->add_option("--socket", top_socket,
                  "The daemon's status socket (default: status.socket of --config, else of "
                  "/etc/synwatch/synwatch.yaml when readable, else /run/synwatch/status.sock)");
  top->add_option("-c,--config", config_path, "The daemon's configuration, for status.socket");
  top->add_flag("--once", top_once, "Print one snapshot and exit (for scripts)");
  top->add_option("--format", top_format,
                  "text (the view) or json (the status document, one line per refresh)");
  top->add_option("-d,--interval", top_interval, "Seconds between refreshes")
      ->check(CLI::Range(0.1, 3600.0));
  top->add_option("-n,--iterations", top_iterations, "Refreshes before exiting (0: until q)");
  app.set_version_flag(
      "-V,--version", [] { return synwatch::version_text(); },
      "Print the version, how this binary was built and its libraries' versions, "
      "and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : synwatch::exit_code::kUsage;
  }

  if (top->parsed()) {
    return run_top_command(config_path, top_socket, top_format, top_once, top_interval,
                           top_iterations);
  }
  if (!evidence_dir.empty() && read_paths.empty()) {
    (void)std::fprintf(stderr,
                       "synwatchd: --evidence-dir needs --read (live, evidence.directory sets "
                       "where evidence goes)\n");
    return synwatch::exit_code::kUsage;
  }
  if (read_paths.empty() && (!format_name.empty() || quiet || force_progress)) {
    (void)std::fprintf(stderr, "synwatchd: --format, --quiet and --progress apply to --read\n");
    return synwatch::exit_code::kUsage;
  }
  if (quiet && force_progress) {
    (void)std::fprintf(stderr, "synwatchd: --quiet and --progress exclude each other\n");
    return synwatch::exit_code::kUsage;
  }
  // A person reads a terminal; anything else (a pipe, a file) is most likely read by a program.
  std::optional<synwatch::ReportFormat> format =
      ::isatty(STDOUT_FILENO) == 1 ? synwatch::ReportFormat::kText : synwatch::ReportFormat::kJson;
  if (!format_name.empty()) format = synwatch::parse_report_format(format_name);
  if (!format) {
    (void)std::fprintf(stderr, "synwatchd: --format must be json or text, not '%s'\n",
                       format_name.c_str());
    return synwatch::exit_code::kUsage;
  }
  if (config_reference) {
    return std::fputs(synwatch::config_reference().c_str(), stdout) >= 0
               ? 0
               : synwatch::exit_code::kSoftware;
  }

  auto logger = spdlog::stderr_color_mt("synwatchd");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("synwatchd: %l: %v");

  // What a check is for is the file the service runs with: the one the unit passes, not the
  // built-in defaults (which need no checking).
  if (check_config && config_path.empty()) config_path = synwatch::kDefaultConfigPath;

  std::vector<synwatch::ConfigOverride> parsed_overrides;
  std::vector<synwatch::ConfigError> errors;
  for (const auto& text : overrides) {
    auto parsed = synwatch::parse_override(text);
    if (parsed) {
      parsed_overrides.push_back(*parsed);
    } else {
      errors.push_back(parsed.error());
    }
  }
  auto config = errors.empty()
                    ? synwatch::load_config(config_path, parsed_overrides)
                    : std::expected<synwatch::Config, std::vector<synwatch::ConfigError>>(
                          std::unexpected(errors));
  if (!config) {
    for (const auto& error : config.error()) {
      (void)std::fprintf(stderr, "%s\n", error.to_string().c_str());
    }
    (void)std::fprintf(stderr, "synwatchd: configuration is invalid (%zu problem%s)\n",
                       config.error().size(), config.error().size() == 1 ? "" : "s");
    return synwatch::exit_code::kConfig;
  }
  spdlog::set_level(spdlog::level::from_str(config->log.level));

  if (check_config) {
    (void)std::fprintf(stderr, "synwatchd: %s: configuration is valid\n",
                       config_path.empty() ? "built-in defaults" : config_path.c_str());
    return 0;
  }
  if (!read_paths.empty()) {
    synwatch::OfflineOptions options;
    options.captures = read_paths;
    options.evidence_dir = evidence_dir;
    options.format = *format;
    options.quiet = quiet;
    options.progress = !quiet && (force_progress || ::isatty(STDERR_FILENO) == 1);
    options.terminal_columns = terminal_columns(STDERR_FILENO);
    return synwatch::run_offline(*config, options);
  }

  return synwatch::run_live(*config, {config_path, parsed_overrides});
}

}  // namespace

int main(int argc, char** argv) {
  // Anything that escapes (a failed allocation, a library throwing) ends the process with a
  // message and EX_SOFTWARE rather than std::terminate's abort.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    (void)std::fprintf(stderr, "synwatchd: internal error: %s\n", e.what());
  } catch (...) {
    (void)std::fprintf(stderr, "synwatchd: internal error: unknown exception\n");
  }
  return synwatch::exit_code::kSoftware;
}
