#include "live.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>

#include "common/exit_codes.hpp"
#include "config/schema.hpp"
#include "engine/live_pipeline.hpp"
#include "event_queue.hpp"
#include "export/action_runner.hpp"
#include "export/alert_file.hpp"
#include "export/webhook.hpp"
#include "export/metrics.hpp"
#include "export/nftables_action.hpp"
#include "export/open_incidents.hpp"
#include "export/status_document.hpp"
#include "export/status_socket.hpp"
#include "version.hpp"
#include "kernel/host_addresses.hpp"
#include "logging.hpp"
#include "notify.hpp"
#include "privileges.hpp"

namespace synwatch {

namespace {

std::uint64_t random_seed() {
  // Unpredictable seeds keep attackers from aiming hash collisions at the tables.
  std::random_device device;
  return (std::uint64_t{device()} << 32) ^ device();
}

// Where people find this daemon's figures (Alertmanager's generatorURL): the metrics page, named
// by this host's name when it listens on every address.
std::string metrics_page_url(const Config& config) {
  if (!config.metrics.enabled) return {};
  const std::string& listen = config.metrics.listen;
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return {};
  std::string host = listen.substr(0, colon);
  if (host == "0.0.0.0" || host == "[::]" || host.empty()) {
    char name[256] = {};
    host = ::gethostname(name, sizeof name - 1) == 0 ? name : "localhost";
  }
  const char* scheme = config.metrics.tls_cert_file.empty() ? "http" : "https";
  return std::string(scheme) + "://" + host + ":" + listen.substr(colon + 1) + "/metrics";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

class Service {
 public:
  Service(const Config& config, const LiveOptions& options, Logging logging)
      : config_(std::make_shared<const Config>(config)),
        options_(options),
        logging_(std::move(logging)) {}

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
      return exit_code::kSoftware;
    }
    if (auto problem = missing_user_problem(config_->user)) {
      spdlog::critical("{}", *problem);
      notifier_.failed(*problem, exit_code::kConfig);
      return exit_code::kConfig;
    }
    if (config_->user == "nobody" && ::geteuid() == 0) {
      spdlog::warn(
          "user 'nobody' is shared with other daemons, which could then signal or trace this one; "
          "a dedicated user (synwatch) is safer");
    }
    if (auto opened = open_alert_file(*config_); opened) {
      alert_file_ = std::move(*opened);
    } else {
      spdlog::critical("{}", opened.error().message);
      return exit_code::kSoftware;
    }
    if (auto problem = log_rotation_problem(config_->log, config_->user)) {
      spdlog::error("{}", *problem);
    }
    last_reload_success_time_ = wall_seconds();

    // Before dropping privileges: secrets may be root-only, and the spool is handed to `user`.
    if (auto webhooks = make_webhooks(*config_, true); webhooks) {
      webhooks_ = std::move(*webhooks);
    } else {
      spdlog::critical("{}", webhooks.error().message);
      return exit_code::kConfig;
    }

    // Before dropping privileges: its directory may have to be made (under /run) and handed over.
    if (config_->status.enabled) {
      if (auto opened = StatusSocket::open(config_->status.socket, config_->user); opened) {
        status_ = std::move(*opened);
      } else {
        spdlog::error(
            "{}; synwatchd top cannot read this daemon (status.enabled: false turns "
            "the status socket off)",
            opened.error().message);
      }
    }

    std::vector<ResumedIncident> resumed;
    if (auto file = OpenIncidentsFile::open(config_->state_dir, config_->user); file) {
      open_incidents_.emplace(std::move(*file));
      std::vector<std::string> problems;
      resumed = open_incidents_->load(problems);
      for (const auto& problem : problems) spdlog::error("{}", problem);
    } else {
      spdlog::error("{}; incidents open at a crash cannot be carried on after it",
                    file.error().message);
    }

    // Before dropping privileges: the directory is made and handed to `user` here.
    std::unique_ptr<EvidenceWriter> evidence;
    if (config_->evidence.enabled && config_->capture.enabled) {
      const std::filesystem::path directory =
          config_->evidence.directory.empty()
              ? std::filesystem::path(config_->state_dir) / "evidence"
              : std::filesystem::path(config_->evidence.directory);
      auto opened = EvidenceWriter::open(config_->evidence, directory, config_->user);
      if (!opened) {
        spdlog::critical("{} (set evidence.enabled: false to run without evidence captures)",
                         opened.error().message);
        notifier_.failed(opened.error().message, exit_code::kCantCreate);
        return exit_code::kCantCreate;
      }
      evidence = std::move(*opened);
    }
    pipeline_ =
        std::make_unique<LivePipeline>(*config_, queue_, random_seed(), std::move(evidence));
    auto opened = pipeline_->open_interfaces();
    if (!opened) {
      spdlog::critical("{}", opened.error().message);
      notifier_.failed(opened.error().message, exit_code::kSoftware);
      return exit_code::kSoftware;
    }
    // A missing interface is retried in the background (it may appear later: a VPN, a VM's
    // tap); a missing privilege everywhere never heals by waiting, so it stops the start.
    const bool nothing_opened =
        config_->capture.enabled && opened->size() == config_->capture.interfaces.size();
    const bool no_privilege = std::ranges::all_of(*opened, [](const CaptureOpenError& error) {
      return error.kind == CaptureOpenError::Kind::kPermission;
    });
    if (nothing_opened && no_privilege) {
      spdlog::critical("{}", opened->front().message);
      notifier_.failed(opened->front().message, exit_code::kNoPermission);
      return exit_code::kNoPermission;
    }
    for (const auto& error : *opened) {
      spdlog::error("{}; retrying in the background", error.message);
    }
    if (nothing_opened) {
      spdlog::warn(
          "no interface is capturing yet{}",
          config_->kernel.enabled ? "; the kernel's SYN_RECV table is watched meanwhile" : "");
    }
    // CAP_NET_ADMIN only for an nftables action that changes the firewall; a reload cannot
    // bring it back once dropped.
    const auto firewall_actions = actions_needing_net_admin(config_->actions);
    if (auto dropped = drop_privileges(config_->user, !firewall_actions.empty()); dropped) {
      if (!firewall_actions.empty() && !dropped->net_admin) {
        const std::string problem =
            "nftables action '" + firewall_actions.front() +
            "' needs CAP_NET_ADMIN, which synwatchd does not have; under systemd add the drop-in "
            "from the README (\"Responding to an incident\"), or set dry_run: true";
        spdlog::critical("{}", problem);
        notifier_.failed(problem, exit_code::kNoPermission);
        return exit_code::kNoPermission;
      }
      spdlog::info("running as user '{}' with {}{}", dropped->user,
                   dropped->net_admin
                       ? "only CAP_NET_RAW and CAP_NET_ADMIN (for nftables action '" +
                             join(firewall_actions) + "')"
                       : std::string("only CAP_NET_RAW"),
                   dropped->switched ? "" : " (or less)");
    } else {
      spdlog::critical("cannot drop privileges: {}", dropped.error().message);
      return exit_code::kSoftware;
    }
    // After dropping privileges, so that the HTTP and delivery threads run without them:
    // capabilities, the bounding set and no_new_privs belong to each thread, and a thread
    // started earlier would keep root's.
    if (config_->metrics.enabled) {
      auto exporter = MetricsExporter::start(config_->metrics, kVersion);
      if (!exporter) {
        spdlog::critical("{}", exporter.error().message);
        return exit_code::kSoftware;
      }
      metrics_ = std::move(*exporter);
    }
    if (webhooks_) webhooks_->start();
    if (auto started = start_actions(*config_); started) {
      actions_ = std::move(*started);
    } else {
      spdlog::critical("{}", started.error().message);
      return exit_code::kSoftware;
    }
    if (auto started = start_nftables_actions(actions_of_type(config_->actions, "nftables"),
                                              config_->protected_prefixes);
        started) {
      nftables_ = std::move(*started);
    } else {
      spdlog::critical("{}", started.error().message);
      return exit_code::kSoftware;
    }
    refresh_protected();
    if (!resumed.empty()) {
      // The previous run died with these open: they go on under their ids if the flood does,
      // and end after the cooldown if it does not.
      std::string ids;
      for (const auto& incident : resumed) {
        ids += (ids.empty() ? "" : ", ") + incident.incident_id + " (" +
               describe_target(incident.target, incident.host_scope) + ")";
      }
      spdlog::warn("carrying on {} incident{} the previous run left open: {}", resumed.size(),
                   resumed.size() == 1 ? "" : "s", ids);
      pipeline_->resume_incidents(resumed);
    }
    pipeline_->start();
    // The first state before READY=1 and before the status socket answers anyone: a client never
    // sees a daemon without one.
    publish_state();
    if (status_) status_->start();
    spdlog::info(
        "synwatchd watching {} ({}); half-open threshold {} per destination; protected: {}",
        config_->capture.enabled
            ? join(config_->capture.interfaces) +
                  (pipeline_->workers() > 1
                       ? fmt::format(" with {} capture workers", pipeline_->workers())
                       : std::string()) +
                  (config_->kernel.enabled ? " and the kernel's SYN_RECV table" : "")
            : std::string(
                  "only the kernel's SYN_RECV table (kernel-only: capture.enabled is false)"),
        config_->source_file.empty() ? "built-in defaults" : config_->source_file,
        config_->detection.half_open,
        config_->protected_prefixes.empty() ? "this host's addresses" : "configured prefixes");
    if (metrics_) {
      spdlog::info("metrics at {}://{}/metrics",
                   config_->metrics.tls_cert_file.empty() ? "http" : "https",
                   config_->metrics.listen);
    } else {
      spdlog::info("metrics disabled (metrics.enabled: false)");
    }
    if (status_) spdlog::info("status for synwatchd top at {}", status_->path().string());

    const MemoryBound bound = pipeline_->memory_bound();
    auto mib = [](std::size_t bytes) { return static_cast<double>(bytes) / (1 << 20); };
    spdlog::info(
        "memory bound {:.0f} MiB: capture rings {:.0f} + tables {:.0f} + merged view {:.0f} + "
        "kernel view {:.0f} + evidence rings {:.0f} + fixed {:.0f}",
        mib(bound.total()), mib(bound.capture_rings), mib(bound.tables), mib(bound.merged),
        mib(bound.kernel), mib(bound.evidence), mib(bound.fixed));

    // Captures open, privileges dropped, capture thread running: what systemd waits for.
    notifier_.ready(service_status_line(pipeline_->snapshot()));

    int exit_code = 0;
    auto next_state_update = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    auto next_protected_refresh =
        std::chrono::steady_clock::now() + std::chrono::nanoseconds(config_->protected_refresh);
    for (;;) {
      pollfd fds[] = {{signal_fd_, POLLIN, 0}, {queue_.fd(), POLLIN, 0}};
      ::poll(fds, 2, loop_timeout_ms());
      if (fds[1].revents & POLLIN) deliver(queue_.drain());
      if (fds[0].revents & POLLIN) {
        signalfd_siginfo info{};
        while (::read(signal_fd_, &info, sizeof info) == sizeof info) {
          if (info.ssi_signo == SIGHUP) {
            notifier_.reloading();
            reload();
            notifier_.ready(service_status_line(pipeline_->snapshot()));
          } else {
            notifier_.stopping();
            spdlog::info("received {}, stopping", info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            stopping_ = true;
          }
        }
      }
      if (stopping_) break;
      report_health();
      std::erase_if(retired_actions_, [](const auto& runner) { return runner->idle(); });
      if ((metrics_ || status_) && std::chrono::steady_clock::now() >= next_state_update) {
        publish_state();
        next_state_update = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      }
      if (std::chrono::steady_clock::now() >= next_protected_refresh) {
        refresh_protected();
        next_protected_refresh =
            std::chrono::steady_clock::now() + std::chrono::nanoseconds(config_->protected_refresh);
      }
    }
    pipeline_->stop();
    // Every started gets its ended: a stop is an end (a restart during a flood starts a new
    // incident). Only a death without this (SIGKILL, a crash) leaves incidents to carry on.
    pipeline_->end_incidents("synwatchd stopped");
    deliver(queue_.drain());
    if (actions_ && !actions_->wait_idle(std::chrono::seconds(2))) {
      spdlog::warn("actions still running at stop are killed");
    }
    actions_.reset();
    retired_actions_.clear();
    // The ended events above take each incident's elements out; what is left (events an action
    // does not want) goes as each action stops.
    for (auto& action : nftables_) (void)action->wait_idle(std::chrono::seconds(2));
    nftables_.clear();
    if (webhooks_) {
      // A short grace period for events in flight; whatever is left stays spooled for the next
      // start.
      webhooks_->flush(std::chrono::seconds(2));
      webhooks_->stop();
    }
    const auto s = pipeline_->snapshot();
    std::string per_worker;
    if (s.worker_packets.size() > 1) {
      for (const auto packets : s.worker_packets) {
        per_worker += (per_worker.empty() ? " (by worker: " : ", ") + std::to_string(packets);
      }
      per_worker += ")";
    }
    spdlog::info("stopped: {} packets{}, {} handshakes completed, {} open incidents at exit",
                 s.engine.packets, per_worker, s.handshakes.completed, s.open_incidents);
    spdlog::default_logger()->flush();
    return exit_code;
  }

 private:
  static Expected<std::optional<AlertFile>> open_alert_file(const Config& config) {
    if (config.alerts.file.empty()) return std::optional<AlertFile>();
    auto file = AlertFile::open(config.alerts.file);
    if (!file) return std::unexpected(file.error());
    return std::optional<AlertFile>(std::move(*file));
  }

  void deliver(const std::deque<IncidentEvent>& events) {
    for (const auto& event : events) {
      // First, so that whoever sees the event anywhere can rely on a restart carrying it on.
      if (open_incidents_) {
        if (auto recorded = open_incidents_->record(event); !recorded) {
          spdlog::error("{}; a crash now would leave incident {} without its ended",
                        recorded.error().message, event.incident_id);
        }
      }
      log_incident(logging_, event);
      ++outputs_["log"].success;
      latest_incident_events_.follow(event);
      if (alert_file_) {
        const std::uint64_t failures = alert_file_->failures();
        alert_file_->publish(event);
        auto& counts = outputs_["alert_file"];
        if (alert_file_->failures() == failures) {
          ++counts.success;
        } else {
          ++counts.failure;
        }
      }
      if (webhooks_) webhooks_->publish(event);  // spooled and queued; never waits on the network
      if (actions_) actions_->publish(event);    // started and watched off this thread
      for (auto& action : nftables_) action->publish(event);  // queued for its own thread
    }
  }

  static Expected<std::unique_ptr<ActionRunner>> start_actions(const Config& config) {
    const auto exec = actions_of_type(config.actions, "exec");
    if (exec.empty()) return std::unique_ptr<ActionRunner>();
    return ActionRunner::start(exec);
  }

  // Starts one NftablesAction per element of `actions`, which creates or checks its table and
  // sets; the first failure stops it (those started are stopped again).
  static Expected<std::vector<std::unique_ptr<NftablesAction>>> start_nftables_actions(
      const std::vector<ActionConfig>& actions, const std::vector<IpPrefix>& protected_prefixes) {
    std::vector<std::unique_ptr<NftablesAction>> started;
    for (const auto& action : actions) {
      auto one = NftablesAction::start(action, protected_prefixes);
      if (!one) return std::unexpected(one.error());
      started.push_back(std::move(*one));
    }
    return started;
  }

  // The running nftables action with exactly these settings, or nullptr.
  std::unique_ptr<NftablesAction>* running_nftables_action(const ActionConfig& action) {
    const auto found = std::ranges::find_if(
        nftables_, [&](const auto& running) { return running && running->config() == action; });
    return found == nftables_.end() ? nullptr : &*found;
  }

  static Expected<std::unique_ptr<WebhookDispatcher>> make_webhooks(const Config& config,
                                                                    bool at_startup) {
    if (config.alerts.webhooks.empty()) return std::unique_ptr<WebhookDispatcher>();
    WebhookDispatcher::Options options;
    if (at_startup) options.spool_owner = config.user;
    options.generator_url = metrics_page_url(config);
    return WebhookDispatcher::create(config, options);
  }

  static double wall_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // Once a second: the metrics page's figures and the status socket's document, from one
  // snapshot.
  void publish_state() {
    PipelineSnapshot snapshot = pipeline_->snapshot();
    if (status_) {
      StatusInputs inputs;
      inputs.version = kVersion;
      inputs.config_file = config_->source_file;
      inputs.now = realtime_now();
      inputs.started_at = started_at_;
      inputs.half_open_threshold = config_->detection.half_open;
      inputs.open_incidents = latest_incident_events_.open();
      status_->publish(status_document(inputs, snapshot).dump() + "\n");
    }
    if (metrics_) update_metrics(std::move(snapshot));
  }

  void update_metrics(PipelineSnapshot snapshot) {
    MetricsState state;
    state.pipeline = std::move(snapshot);
    state.outputs = outputs_;
    if (webhooks_) state.webhooks = webhooks_->stats();
    if (actions_) state.actions = actions_->stats();
    for (const auto& action : nftables_) state.nftables_actions.push_back(action->stats());
    state.last_reload_successful = last_reload_ok_;
    state.last_reload_success_time = last_reload_success_time_;
    metrics_->update(std::move(state));
  }

  // The loop must come round often enough to feed the watchdog on time.
  int loop_timeout_ms() const {
    const auto period = notifier_.watchdog_period();
    return period ? static_cast<int>(std::clamp<long long>(period->count() / 2, 1, 1000)) : 1000;
  }

  // For systemd: WATCHDOG=1 every half WatchdogSec, but only while the capture thread keeps
  // refreshing its snapshot (every 250 ms), so a stuck capture loop gets the service restarted;
  // STATUS= with a one-line summary every few seconds.
  void report_health() {
    const auto now = std::chrono::steady_clock::now();
    const auto period = notifier_.watchdog_period();
    const bool watchdog_due = period && now >= next_watchdog_;
    const bool status_due = notifier_.enabled() && now >= next_status_;
    if (!watchdog_due && !status_due) return;
    const auto snapshot = pipeline_->snapshot();
    if (watchdog_due) {
      const auto limit = std::max(std::chrono::milliseconds(1000), *period);
      const bool alive = capture_thread_alive(snapshot, now, limit);
      if (alive) notifier_.watchdog();
      if (!alive && capture_alive_) {
        spdlog::error(
            "the capture thread has not reported for over {} ms; no longer feeding the systemd "
            "watchdog",
            limit.count());
      }
      capture_alive_ = alive;
      next_watchdog_ = now + *period;
    }
    if (status_due) {
      notifier_.status(service_status_line(snapshot));
      next_status_ = now + std::chrono::seconds(2);
    }
  }

  void refresh_protected() {
    if (!config_->protected_prefixes.empty()) return;
    auto addresses = host_addresses();
    if (!addresses) {
      spdlog::error("{}", addresses.error().message);
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
    spdlog::info("SIGHUP: reloading {}",
                 options_.config_path.empty() ? "built-in defaults" : options_.config_path);
    auto loaded = load_config(options_.config_path, options_.overrides);
    if (!loaded) {
      last_reload_ok_ = false;
      for (const auto& error : loaded.error()) spdlog::error("reload: {}", error.to_string());
      spdlog::error(
          "reload failed: the configuration is invalid, the running configuration is kept");
      return;
    }
    // Keys that size memory or threads, or are set up once at start, keep their running values.
    const std::vector<std::string> kept = keys_needing_restart(*config_, *loaded);
    auto config = std::make_shared<const Config>(applied_on_reload(*config_, *loaded));
    // Everything the new configuration needs is prepared before anything running is touched,
    // so a failure anywhere keeps all of the running configuration (outputs included).
    auto fail = [&](const std::string& why) {
      last_reload_ok_ = false;
      spdlog::error("reload failed: {}; the running configuration is kept", why);
    };
    std::optional<std::optional<AlertFile>> new_alert_file;
    if (config->alerts.file != config_->alerts.file) {
      auto opened = open_alert_file(*config);
      if (!opened) return fail(opened.error().message);
      new_alert_file = std::move(*opened);
    }
    std::optional<Logging> new_logging;
    if (config->log != config_->log) {
      auto made = make_logging(config->log);
      if (!made) return fail(made.error().message);
      new_logging = std::move(*made);
    }
    std::optional<std::unique_ptr<WebhookDispatcher>> new_webhooks;
    if (config->alerts.webhooks != config_->alerts.webhooks ||
        config->state_dir != config_->state_dir ||
        config->alerts.spool_max_events != config_->alerts.spool_max_events) {
      // Secrets are read and spools opened now; undelivered events carry over in the spool.
      auto made = make_webhooks(*config, false);
      if (!made) return fail(made.error().message);
      new_webhooks = std::move(*made);
    }

    std::optional<std::unique_ptr<ActionRunner>> new_actions;
    if (actions_of_type(config->actions, "exec") != actions_of_type(config_->actions, "exec")) {
      auto started = start_actions(*config);
      if (!started) return fail(started.error().message);
      new_actions = std::move(*started);
    }
    // An nftables action whose settings (and `protected`) did not change carries on with the
    // elements it holds; the others start afresh, their table and sets prepared now.
    std::optional<std::vector<std::unique_ptr<NftablesAction>>> new_nftables;
    const bool protected_changed = config->protected_prefixes != config_->protected_prefixes;
    const auto nftables_configs = actions_of_type(config->actions, "nftables");
    if (nftables_configs != actions_of_type(config_->actions, "nftables") || protected_changed) {
      std::vector<ActionConfig> to_start;
      for (const auto& action : nftables_configs) {
        if (protected_changed || running_nftables_action(action) == nullptr) {
          to_start.push_back(action);
        }
      }
      if (const auto needing = actions_needing_net_admin(to_start);
          !needing.empty() && !has_net_admin()) {
        return fail("nftables action '" + needing.front() +
                    "' needs CAP_NET_ADMIN, which synwatchd keeps only when started with such "
                    "an action; restart synwatch to apply it");
      }
      auto started = start_nftables_actions(to_start, config->protected_prefixes);
      if (!started) return fail(started.error().message);
      new_nftables = std::move(*started);
    }

    if (new_alert_file) {
      alert_file_ = std::move(*new_alert_file);
      spdlog::info("reload: alert file {}",
                   config->alerts.file.empty() ? "off" : "'" + config->alerts.file + "'");
    }
    if (new_logging) {
      logging_ = std::move(*new_logging);
      install_logging(logging_);
      spdlog::info("reload: logging to {}{}",
                   std::getenv("JOURNAL_STREAM") != nullptr ? "the journal" : "stderr",
                   config->log.file.empty() ? "" : " and '" + config->log.file + "'");
      if (auto problem = log_rotation_problem(config->log, config->user)) {
        spdlog::error("{}", *problem);
      }
    }
    if (new_actions) {
      // Runs already going finish (or time out) under the old runner.
      if (actions_) retired_actions_.push_back(std::move(actions_));
      actions_ = std::move(*new_actions);
      const std::size_t commands = actions_of_type(config->actions, "exec").size();
      spdlog::info("reload: {} exec action{}", commands, commands == 1 ? "" : "s");
    }
    if (new_nftables) {
      // In the configuration's order, carried over or started. Those left behind were changed
      // or removed: they take their elements out as they go (a changed one's replacement puts
      // an open incident's sources back at its next update).
      std::vector<std::unique_ptr<NftablesAction>> next;
      for (const auto& action : nftables_configs) {
        auto* running = protected_changed ? nullptr : running_nftables_action(action);
        if (running == nullptr) {
          running = &*std::ranges::find_if(*new_nftables, [&](const auto& started) {
            return started && started->config() == action;
          });
        }
        next.push_back(std::move(*running));
      }
      nftables_ = std::move(next);
      spdlog::info("reload: {} nftables action{}", nftables_.size(),
                   nftables_.size() == 1 ? "" : "s");
    }
    if (new_webhooks) {
      if (webhooks_) webhooks_->stop();
      webhooks_ = std::move(*new_webhooks);
      if (webhooks_) webhooks_->start();
      spdlog::info("reload: {} webhook receiver{}", config->alerts.webhooks.size(),
                   config->alerts.webhooks.size() == 1 ? "" : "s");
    }
    spdlog::set_level(spdlog::level::from_str(config->log.level));
    pipeline_->request_reconfigure(config);
    config_ = config;
    if (protected_changed) {
      last_host_addresses_.clear();
      if (config_->protected_prefixes.empty()) refresh_protected();
    }
    last_reload_ok_ = true;
    last_reload_success_time_ = wall_seconds();
    for (const auto& key : kept) {
      spdlog::warn(
          "reload: {} changed but takes effect only at restart (it sizes memory or threads, or is "
          "set up once at start); the running value is kept",
          key);
    }
    spdlog::info("reload complete: half-open threshold {}, for {:.1f} s, cooldown {:.1f} s",
                 config_->detection.half_open, to_seconds(config_->detection.hold_for),
                 to_seconds(config_->detection.cooldown));
  }

  std::shared_ptr<const Config> config_;
  LiveOptions options_;
  Logging logging_;
  EventQueue queue_;
  std::unique_ptr<LivePipeline> pipeline_;
  std::optional<AlertFile> alert_file_;
  std::optional<OpenIncidentsFile> open_incidents_;
  std::unique_ptr<WebhookDispatcher> webhooks_;
  std::unique_ptr<ActionRunner> actions_;
  std::vector<std::unique_ptr<ActionRunner>> retired_actions_;
  std::vector<std::unique_ptr<NftablesAction>> nftables_;
  std::shared_ptr<MetricsExporter> metrics_;
  std::unique_ptr<StatusSocket> status_;
  LatestIncidentEvents latest_incident_events_;
  TimestampNs started_at_ = realtime_now();
  std::map<std::string, OutputStats> outputs_;
  bool last_reload_ok_ = true;
  double last_reload_success_time_ = 0;
  std::vector<IpPrefix> last_host_addresses_;
  int signal_fd_ = -1;
  SystemdNotifier notifier_;
  std::chrono::steady_clock::time_point next_watchdog_{};
  std::chrono::steady_clock::time_point next_status_{};
  bool capture_alive_ = true;
  bool stopping_ = false;
};

}  // namespace

int run_live(const Config& config, const LiveOptions& options) {
  auto logging = make_logging(config.log);
  if (!logging) {
    spdlog::critical("{}", logging.error().message);
    return exit_code::kSoftware;
  }
  install_logging(*logging);
  Service service(config, options, std::move(*logging));
  return service.run();
}

}  // namespace synwatch
