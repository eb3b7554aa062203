#pragma once
// Action hooks of type exec (`actions:`): on the incident events an action wants, its command
// runs with the event JSON on stdin and SYNWATCH_* variables in a minimal environment, as the
// daemon's user, in a process group of its own. Never on the packet path and never waited for
// by publish(): a reaper thread watches the children (pidfds), kills a process group that
// outlives `timeout`, and counts and logs each outcome (with the first line of what the command
// wrote to stderr). At most `max_running` runs of an action at once; more are skipped, counted
// and logged, so that a hung command cannot pile up processes during a long flood.
//
// Thread safety: publish() from one thread (the daemon's main loop or --read's engine thread);
// stats() and wait_idle() from any thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/counter_members.hpp"
#include "common/error.hpp"
#include "config/config.hpp"
#include "detect/incident.hpp"

namespace synwatch {

// Outcomes of one action's runs.
struct ActionRunStats {
  std::string name;
  std::uint64_t succeeded = 0;     // exited 0
  std::uint64_t failed = 0;        // exited non-zero or by a signal
  std::uint64_t timed_out = 0;     // killed after its timeout
  std::uint64_t skipped = 0;       // max_running were still running
  std::uint64_t spawn_failed = 0;  // could not be started
  std::size_t running = 0;
};

// The /metrics family of the run counts (export/ adds the action's name). A new count must be
// listed here by hand: the struct holds more than counts, so no size check can catch it.
inline constexpr LabelledFigures<ActionRunStats, std::uint64_t, 5> kActionRunResults{
    .metric = "synwatch_action_runs_total",
    .help =
        "Runs of each action (actions:) by result: succeeded, failed, timed_out (killed), "
        "skipped (max_running reached), spawn_failed.",
    .kind = FigureKind::kCounter,
    .label = "result",
    .members = {{{&ActionRunStats::succeeded, "succeeded"},
                 {&ActionRunStats::failed, "failed"},
                 {&ActionRunStats::timed_out, "timed_out"},
                 {&ActionRunStats::skipped, "skipped"},
                 {&ActionRunStats::spawn_failed, "spawn_failed"}}}};

class ActionRunner final : public EventSink {
 public:
  // Starts the reaper thread. Call after dropping privileges: commands inherit the daemon's
  // user and capabilities (none survive the exec).
  static Expected<std::unique_ptr<ActionRunner>> start(const std::vector<ActionConfig>& actions);
  ActionRunner(const ActionRunner&) = delete;
  ActionRunner& operator=(const ActionRunner&) = delete;
  ~ActionRunner() override;  // kills what still runs

  void publish(const IncidentEvent& event) override;

  // Waits until no command runs, or `limit` passed; true when none runs.
  bool wait_idle(std::chrono::milliseconds limit);
  [[nodiscard]] bool idle() const;
  [[nodiscard]] std::vector<ActionRunStats> stats() const;

  struct State;  // implementation detail, public so that the .cpp's helpers can name it

 private:
  explicit ActionRunner(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace synwatch
