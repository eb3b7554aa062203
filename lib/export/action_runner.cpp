#include "export/action_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "export/event_json.hpp"

namespace synwatch {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kStderrKept = 4096;

struct Child {
  std::size_t action = 0;
  pid_t pid = -1;
  int pidfd = -1;
  int stderr_fd = -1;
  std::string stderr_text;
  std::string event_id;
  Clock::time_point deadline;
  bool killed = false;
  bool stopped = false;  // killed because the runner went away, not for its timeout
};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? "(nothing on stderr)" : line;
}

}  // namespace

struct ActionRunner::State {
  std::vector<ActionConfig> actions;
  mutable std::mutex mutex;
  std::condition_variable changed;  // a child ended
  std::vector<ActionRunStats> stats;
  std::vector<Child> children;
  int wake_fd = -1;  // eventfd: a new child, or stop
  bool stopping = false;
  std::thread reaper;

  void wake() const {
    const std::uint64_t one = 1;
    // An eventfd write fails only when the counter is full, and then the reaper is woken anyway.
    // Tested rather than cast to void: glibc's _FORTIFY_SOURCE marks write() warn_unused_result.
    if (::write(wake_fd, &one, sizeof one) < 0) return;
  }

  // Runs the command for `event`; false when it could not be started.
  bool spawn(std::size_t index, const IncidentEvent& event, const std::string& json) {
    const ActionConfig& action = actions[index];
    int input[2] = {-1, -1};
    int errors[2] = {-1, -1};
    if (::pipe2(input, O_CLOEXEC) != 0 || ::pipe2(errors, O_CLOEXEC | O_NONBLOCK) != 0) {
      close_fd(input[0]);
      close_fd(input[1]);
      spdlog::error("action '{}': cannot create pipes: {}", action.name, std::strerror(errno));
      return false;
    }
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_adddup2(&files, input[0], STDIN_FILENO);
    posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&files, errors[1], STDERR_FILENO);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    // A process group of its own, so that a timeout kills what the command started too; the
    // daemon's blocked signals are not the command's business.
    sigset_t none;
    sigemptyset(&none);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) sigaddset(&defaults, s);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(
        &attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    const std::string port =
        event.host_scope ? std::string("all") : std::to_string(event.target.port);
    std::string top;
    for (const auto& source : event.top_sources) {
      top += (top.empty() ? "" : " ") + source.address.to_string();
    }
    std::vector<std::string> environment = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "SYNWATCH_ACTION=" + action.name,
        "SYNWATCH_EVENT=" + std::string(to_string(event.type)),
        "SYNWATCH_INCIDENT_ID=" + event.incident_id,
        "SYNWATCH_EVENT_ID=" + event.event_id,
        "SYNWATCH_KIND=" + std::string(to_string(event.kind)),
        "SYNWATCH_TARGET_ADDRESS=" + event.target.address.to_string(),
        "SYNWATCH_TARGET_PORT=" + port,
        "SYNWATCH_HALF_OPEN=" + std::to_string(event.stats.half_open),
        "SYNWATCH_TOP_SOURCES=" + top,
        "SYNWATCH_EVIDENCE=" + event.evidence_path,
    };
    std::vector<char*> envp;
    envp.reserve(environment.size() + 1);
    for (auto& entry : environment) envp.push_back(entry.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_text = action.command;
    std::vector<char*> argv;
    argv.reserve(argv_text.size() + 1);
    for (auto& word : argv_text) argv.push_back(word.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, argv[0], &files, &attributes, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&files);
    posix_spawnattr_destroy(&attributes);
    close_fd(input[0]);
    close_fd(errors[1]);
    if (rc != 0) {
      close_fd(input[1]);
      close_fd(errors[0]);
      spdlog::error("action '{}': cannot run {}: {}", action.name, action.command.front(),
                    std::strerror(rc));
      return false;
    }
    // The event is a few KiB, well within a pipe's buffer: written at once, never waited on.
    // A command that exits without reading closes the pipe first: the write then fails with
    // EPIPE, and the SIGPIPE it raises is blocked here and taken back, not left to kill the
    // daemon.
    (void)::fcntl(input[1], F_SETFL, O_NONBLOCK);
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    sigset_t previous;
    (void)::pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous);
    const ssize_t written = ::write(input[1], json.data(), json.size());
    const bool reader_gone = written < 0 && errno == EPIPE;
    if (reader_gone) {
      const timespec now{0, 0};
      (void)::sigtimedwait(&pipe_signal, nullptr, &now);
    }
    (void)::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (written != static_cast<ssize_t>(json.size()) && !reader_gone) {
      spdlog::warn("action '{}': could not hand the whole event to the command on stdin",
                   action.name);
    }
    close_fd(input[1]);
    Child child;
    child.action = index;
    child.pid = pid;
    // Readable when the child exits (poll ignores -1: without pidfds the 1 s poll finds it).
    child.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    child.stderr_fd = errors[0];
    child.event_id = event.event_id;
    child.deadline = Clock::now() + std::chrono::nanoseconds(action.timeout);
    children.push_back(std::move(child));
    return true;
  }

  static void drain_stderr(Child& child) {
    char buffer[1024];
    while (child.stderr_fd >= 0) {
      const ssize_t n = ::read(child.stderr_fd, buffer, sizeof buffer);
      if (n == 0) close_fd(child.stderr_fd);  // closed: poll would report it for ever
      if (n <= 0) return;
      const auto room = kStderrKept - std::min(kStderrKept, child.stderr_text.size());
      child.stderr_text.append(buffer, std::min(room, static_cast<std::size_t>(n)));
    }
  }

  // Collects a child that exited; false while it still runs.
  bool reap(Child& child) {
    int status = 0;
    const pid_t done = ::waitpid(child.pid, &status, WNOHANG);
    if (done == 0) return false;
    drain_stderr(child);
    const ActionConfig& action = actions[child.action];
    ActionRunStats& counts = stats[child.action];
    --counts.running;
    if (child.killed && child.stopped) {
      ++counts.failed;
      spdlog::warn("action '{}' for {}: killed, synwatchd is stopping or reloading", action.name,
                   child.event_id);
    } else if (child.killed) {
      ++counts.timed_out;
      spdlog::error("action '{}' for {}: killed after its timeout of {:.1f} s", action.name,
                    child.event_id, to_seconds(action.timeout));
    } else if (done > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      ++counts.succeeded;
      spdlog::info("action '{}' for {}: done", action.name, child.event_id);
    } else {
      ++counts.failed;
      const std::string how =
          done > 0 && WIFEXITED(status)     ? "exit status " + std::to_string(WEXITSTATUS(status))
          : done > 0 && WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                            : std::string(std::strerror(errno));
      spdlog::error("action '{}' for {}: failed ({}): {}", action.name, child.event_id, how,
                    first_line(child.stderr_text));
    }
    close_fd(child.pidfd);
    close_fd(child.stderr_fd);
    return true;
  }

  void run() {
    std::vector<pollfd> fds;
    std::unique_lock lock(mutex);
    while (!stopping || !children.empty()) {
      fds.assign(1, pollfd{wake_fd, POLLIN, 0});
      auto next_deadline = Clock::time_point::max();
      for (const auto& child : children) {
        fds.push_back({child.pidfd, POLLIN, 0});
        fds.push_back({child.stderr_fd, POLLIN, 0});
        if (!child.killed) next_deadline = std::min(next_deadline, child.deadline);
      }
      const auto now = Clock::now();
      int timeout_ms = 1000;
      if (next_deadline != Clock::time_point::max()) {
        timeout_ms = static_cast<int>(std::clamp<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(next_deadline - now).count() + 1,
            0, 1000));
      }
      lock.unlock();
      (void)::poll(fds.data(), fds.size(), timeout_ms);
      std::uint64_t drained = 0;
      // A failed read leaves the counter set: the next poll returns at once and reads again.
      if ((fds[0].revents & POLLIN) != 0 && ::read(wake_fd, &drained, sizeof drained) < 0) {
        drained = 0;
      }
      lock.lock();
      const auto after = Clock::now();
      for (auto& child : children) {
        drain_stderr(child);
        if (!child.killed && (after >= child.deadline || stopping)) {
          // The whole group: a shell's children too.
          (void)::kill(-child.pid, SIGKILL);
          child.killed = true;
          child.stopped = after < child.deadline;
        }
      }
      const auto ended =
          std::ranges::remove_if(children, [&](Child& child) { return reap(child); });
      if (ended.begin() != ended.end()) {
        children.erase(ended.begin(), ended.end());
        changed.notify_all();
      }
    }
  }
};

ActionRunner::ActionRunner(std::unique_ptr<State> state) : state_(std::move(state)) {}

Expected<std::unique_ptr<ActionRunner>> ActionRunner::start(
    const std::vector<ActionConfig>& actions) {
  auto state = std::make_unique<State>();
  state->actions = actions;
  for (const auto& action : actions) state->stats.push_back({.name = action.name});
  state->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (state->wake_fd < 0) {
    return std::unexpected(Error::from_errno(errno, "actions: eventfd"));
  }
  State* raw = state.get();
  state->reaper = std::thread([raw] {
    pthread_setname_np(pthread_self(), "sw-actions");
    raw->run();
  });
  return std::unique_ptr<ActionRunner>(new ActionRunner(std::move(state)));
}

ActionRunner::~ActionRunner() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake();
  state_->reaper.join();
  ::close(state_->wake_fd);
}

void ActionRunner::publish(const IncidentEvent& event) {
  const std::string type(to_string(event.type));
  std::string json;
  bool spawned = false;
  std::lock_guard lock(state_->mutex);
  for (std::size_t i = 0; i < state_->actions.size(); ++i) {
    const ActionConfig& action = state_->actions[i];
    if (std::ranges::find(action.events, type) == action.events.end()) continue;
    ActionRunStats& counts = state_->stats[i];
    if (counts.running >= action.max_running) {
      ++counts.skipped;
      spdlog::warn("action '{}': skipped for {}: {} runs still going (max_running)", action.name,
                   event.event_id, counts.running);
      continue;
    }
    if (json.empty()) json = to_json(event).dump() + "\n";
    if (state_->spawn(i, event, json)) {
      ++counts.running;
      spawned = true;
    } else {
      ++counts.spawn_failed;
    }
  }
  if (spawned) state_->wake();
}

bool ActionRunner::wait_idle(std::chrono::milliseconds limit) {
  std::unique_lock lock(state_->mutex);
  return state_->changed.wait_for(lock, limit, [&] { return state_->children.empty(); });
}

bool ActionRunner::idle() const {
  std::lock_guard lock(state_->mutex);
  return state_->children.empty();
}

std::vector<ActionRunStats> ActionRunner::stats() const {
  std::lock_guard lock(state_->mutex);
  return state_->stats;
}

}  // namespace synwatch
