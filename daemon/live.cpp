#include "live.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <chrono>
#include <memory>
#include <optional>
#include <random>

#include "engine/live_pipeline.hpp"
#include "event_queue.hpp"
#include "export/alert_file.hpp"
#include "kernel/host_addresses.hpp"
#include "logging.hpp"
#include "privileges.hpp"

namespace synwatch {

namespace {

constexpr int kExitNoPermission = 77;  // sysexits EX_NOPERM
constexpr int kExitSoftware = 70;      // sysexits EX_SOFTWARE

std::uint64_t random_seed() {
  // Unpredictable seeds keep attackers from aiming hash collisions at the tables.
  std::random_device device;
  return (std::uint64_t{device()} << 32) ^ device();
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

class Service {
 public:
  Service(const Config& config, const LiveOptions& options)
      : config_(std::make_shared<const Config>(config)), options_(options) {}

  int run() {
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
    // Blocked before any thread starts, so every thread inherits the mask and only the
    // signalfd sees them: no work ever happens in a signal handler.
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal_fd_ = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd_ < 0) {
      spdlog::critical("signalfd: {}", std::strerror(errno));
      return kExitSoftware;
    }
    if (auto opened = open_outputs(*config_); !opened) {
      spdlog::critical("{}", opened.error());
      return kExitSoftware;
    }

    pipeline_ = std::make_unique<LivePipeline>(*config_, queue_, random_seed());
    auto opened = pipeline_->open_interfaces();
    if (!opened) {
      spdlog::critical("{}", opened.error());
      return opened.error().find("CAP_NET_RAW") != std::string::npos ? kExitNoPermission : kExitSoftware;
    }
    for (const auto& error : *opened) spdlog::error("{}; retrying in the background", error);
    if (auto dropped = drop_privileges(config_->user); dropped) {
      spdlog::info("running as user '{}' with only CAP_NET_RAW{}", dropped->user,
                   dropped->switched ? "" : " (or less)");
    } else {
      spdlog::critical("cannot drop privileges: {}", dropped.error());
      return kExitSoftware;
    }
    refresh_protected();
    pipeline_->start();
    spdlog::info("synwatchd watching {} ({}); half-open threshold {} per destination; protected: {}",
                 join(config_->capture.interfaces),
                 config_->source_file.empty() ? "built-in defaults" : config_->source_file,
                 config_->detection.half_open,
                 config_->protected_prefixes.empty() ? "this host's addresses" : "configured prefixes");

    int exit_code = 0;
    auto next_protected_refresh = std::chrono::steady_clock::now() + std::chrono::nanoseconds(config_->protected_refresh);
    for (;;) {
      pollfd fds[] = {{signal_fd_, POLLIN, 0}, {queue_.fd(), POLLIN, 0}};
      ::poll(fds, 2, 1000);
      if (fds[1].revents & POLLIN) deliver(queue_.drain());
      if (fds[0].revents & POLLIN) {
        signalfd_siginfo info{};
        while (::read(signal_fd_, &info, sizeof info) == sizeof info) {
          if (info.ssi_signo == SIGHUP) {
            reload();
          } else {
            spdlog::info("received {}, stopping", info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            stopping_ = true;
          }
        }
      }
      if (stopping_) break;
      if (std::chrono::steady_clock::now() >= next_protected_refresh) {
        refresh_protected();
        next_protected_refresh = std::chrono::steady_clock::now() + std::chrono::nanoseconds(config_->protected_refresh);
      }
    }
    pipeline_->stop();
    deliver(queue_.drain());
    const auto s = pipeline_->snapshot();
    spdlog::info("stopped: {} packets, {} handshakes completed, {} open incidents at exit",
                 s.engine.packets, s.handshakes.completed, s.open_incidents);
    spdlog::default_logger()->flush();
    return exit_code;
  }

 private:
  std::expected<void, std::string> open_outputs(const Config& config) {
    alert_file_.reset();
    if (!config.alerts.file.empty()) {
      auto file = AlertFile::open(config.alerts.file);
      if (!file) return std::unexpected(file.error());
      alert_file_.emplace(std::move(*file));
    }
    return {};
  }

  void deliver(std::deque<IncidentEvent> events) {
    for (const auto& event : events) {
      if (event.type == EventType::kUpdated) {
        spdlog::info("{}", describe_for_log(event));
      } else {
        spdlog::warn("{}", describe_for_log(event));
      }
      if (alert_file_) alert_file_->publish(event);
    }
  }

  void refresh_protected() {
    if (!config_->protected_prefixes.empty()) return;
    auto addresses = host_addresses();
    if (!addresses) {
      spdlog::error("{}", addresses.error());
      return;
    }
    if (*addresses != last_host_addresses_) {
      std::vector<std::string> shown;
      for (const auto& a : *addresses) shown.push_back(a.network.to_string());
      spdlog::info("protecting this host's addresses: {}", join(shown));
      last_host_addresses_ = *addresses;
      pipeline_->request_protected(*addresses);
    }
  }

  void reload() {
    spdlog::info("SIGHUP: reloading {}", options_.config_path.empty() ? "built-in defaults" : options_.config_path);
    auto loaded = load_config(options_.config_path, options_.overrides);
    if (!loaded) {
      for (const auto& error : loaded.error()) spdlog::error("reload: {}", error.to_string());
      spdlog::error("reload failed: the configuration is invalid, the running configuration is kept");
      return;
    }
    auto config = std::make_shared<const Config>(std::move(*loaded));
    if (config->alerts.file != config_->alerts.file) {
      if (auto opened = open_outputs(*config); !opened) {
        spdlog::error("reload failed: {}; the running configuration is kept", opened.error());
        open_outputs(*config_);
        return;
      }
    }
    if (config->user != config_->user) {
      spdlog::warn("reload: user changed but privileges were already dropped; takes effect at restart");
    }
    spdlog::set_level(spdlog::level::from_str(config->log.level));
    pipeline_->request_reconfigure(config);
    const bool protected_changed = config->protected_prefixes != config_->protected_prefixes;
    config_ = config;
    if (protected_changed) {
      last_host_addresses_.clear();
      if (config_->protected_prefixes.empty()) refresh_protected();
    }
    spdlog::info("reload complete: half-open threshold {}, for {:.1f} s, cooldown {:.1f} s",
                 config_->detection.half_open, to_seconds(config_->detection.hold_for),
                 to_seconds(config_->detection.cooldown));
  }

  std::shared_ptr<const Config> config_;
  LiveOptions options_;
  EventQueue queue_;
  std::unique_ptr<LivePipeline> pipeline_;
  std::optional<AlertFile> alert_file_;
  std::vector<IpPrefix> last_host_addresses_;
  int signal_fd_ = -1;
  bool stopping_ = false;
};

}  // namespace

int run_live(const Config& config, const LiveOptions& options) {
  if (auto logging = configure_logging(config.log); !logging) {
    spdlog::critical("{}", logging.error());
    return kExitSoftware;
  }
  Service service(config, options);
  return service.run();
}

}  // namespace synwatch
