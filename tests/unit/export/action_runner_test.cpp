// Action hooks run real commands (/bin/sh) as children: input, environment, timeouts, bounds.
#include "export/action_runner.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "temp_dir.hpp"

namespace synwatch {
namespace {

using namespace std::chrono_literals;

class ActionRunnerTest : public ::testing::Test {
 protected:
  static IncidentEvent event(EventType type, std::uint32_t sequence = 0) {
    IncidentEvent e;
    e.type = type;
    e.incident_id = "inc";
    e.sequence = sequence;
    e.event_id = "inc-" + std::to_string(sequence);
    e.target = {*IpAddress::parse("198.51.100.10"), 443};
    e.kind = AttackKind::kConcentrated;
    e.stats.half_open = 777;
    e.top_sources = {{*IpAddress::parse("198.18.0.1"), 50}, {*IpAddress::parse("198.18.0.2"), 9}};
    e.reason = "test";
    e.evidence_path = "/var/lib/synwatch/evidence/inc.pcap";
    return e;
  }
  ActionConfig shell(const std::string& name, const std::string& script) const {
    ActionConfig action;
    action.name = name;
    action.command = {"/bin/sh", "-c", script};
    action.timeout = 5 * kNanosPerSecond;
    return action;
  }
  std::string read(const std::string& name) const {
    std::ifstream in(dir_ / name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  testing::TempDir scratch_;
  const std::filesystem::path& dir_ = scratch_.path();
};

TEST_F(ActionRunnerTest, TheCommandGetsTheEventOnStdinAndItsFiguresInTheEnvironment) {
  const auto out = (dir_ / "out").string();
  auto runner = ActionRunner::start({shell(
      "record", "cat > " + out + ".json; env | grep '^SYNWATCH_' | sort > " + out + ".env")});
  ASSERT_TRUE(runner) << runner.error().message;
  (*runner)->publish(event(EventType::kStarted));
  ASSERT_TRUE((*runner)->wait_idle(5s));
  const auto json = nlohmann::json::parse(read("out.json"));
  EXPECT_EQ(json["event_id"], "inc-0");
  EXPECT_EQ(json["kind"], "concentrated");
  EXPECT_EQ(
      read("out.env"),
      "SYNWATCH_ACTION=record\nSYNWATCH_EVENT=started\nSYNWATCH_EVENT_ID=inc-0\n"
      "SYNWATCH_EVIDENCE=/var/lib/synwatch/evidence/"
      "inc.pcap\nSYNWATCH_HALF_OPEN=777\nSYNWATCH_INCIDENT_ID=inc\nSYNWATCH_KIND=concentrated\n"
      "SYNWATCH_TARGET_ADDRESS=198.51.100.10\nSYNWATCH_TARGET_PORT=443\n"
      "SYNWATCH_TOP_SOURCES=198.18.0.1 198.18.0.2\n");
  const auto stats = (*runner)->stats();
  EXPECT_EQ(stats[0].succeeded, 1u);
  EXPECT_EQ(stats[0].running, 0u);
}

TEST_F(ActionRunnerTest, OnlyTheWantedEventsRunIt) {
  auto action = shell("count", "echo x >> " + (dir_ / "runs").string());
  action.events = {"ended"};
  auto runner = ActionRunner::start({action});
  ASSERT_TRUE(runner);
  (*runner)->publish(event(EventType::kStarted));
  (*runner)->publish(event(EventType::kUpdated, 1));
  (*runner)->publish(event(EventType::kEnded, 2));
  ASSERT_TRUE((*runner)->wait_idle(5s));
  EXPECT_EQ(read("runs"), "x\n");
}

TEST_F(ActionRunnerTest, ACommandThatExitsWithoutReadingItsInputIsNoHarm) {
  // Its stdin is closed before the event is written: the write fails with EPIPE, and the
  // SIGPIPE that comes with it must not end the process that runs the actions.
  auto action = shell("quick", "exit 0");
  action.max_running = 64;
  auto runner = ActionRunner::start({action});
  ASSERT_TRUE(runner);
  for (std::uint32_t i = 0; i < 300; ++i) {
    (*runner)->publish(event(EventType::kStarted, i));
    if (i % 32 == 31) std::this_thread::sleep_for(20ms);  // let some exit before their write
  }
  ASSERT_TRUE((*runner)->wait_idle(10s));
  const auto stats = (*runner)->stats();
  EXPECT_EQ(stats[0].succeeded + stats[0].skipped, 300u);
}

TEST_F(ActionRunnerTest, AHungCommandAndWhatItStartedAreKilledAtItsTimeout) {
  const auto pid_file = (dir_ / "grandchild").string();
  auto action = shell("hang", "sleep 60 & echo $! > " + pid_file + "; sleep 60");
  action.timeout = 300 * kNanosPerMilli;
  auto runner = ActionRunner::start({action});
  ASSERT_TRUE(runner);
  const auto start = std::chrono::steady_clock::now();
  (*runner)->publish(event(EventType::kStarted));
  ASSERT_TRUE((*runner)->wait_idle(5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ((*runner)->stats()[0].timed_out, 1u);
  // The background sleep was in the same process group: gone too.
  // (Its parent died first, so it may linger as a zombie until init reaps it: not running.)
  const std::string stat_path =
      "/proc/" + read("grandchild").substr(0, read("grandchild").find('\n')) + "/stat";
  const auto running = [&] {
    std::ifstream in(stat_path);
    std::string stat;
    std::getline(in, stat);
    const auto state = stat.find(") ");
    return state != std::string::npos && stat[state + 2] != 'Z' && stat[state + 2] != 'X';
  };
  for (int i = 0; i < 50 && running(); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(running()) << "the command's own child survived";
}

TEST_F(ActionRunnerTest, RunsBeyondMaxRunningAreSkippedAndCounted) {
  auto action = shell("slow", "sleep 0.5");
  action.max_running = 2;
  auto runner = ActionRunner::start({action});
  ASSERT_TRUE(runner);
  for (std::uint32_t i = 0; i < 5; ++i) (*runner)->publish(event(EventType::kStarted, i));
  EXPECT_EQ((*runner)->stats()[0].running, 2u);
  ASSERT_TRUE((*runner)->wait_idle(5s));
  const auto stats = (*runner)->stats();
  EXPECT_EQ(stats[0].succeeded, 2u);
  EXPECT_EQ(stats[0].skipped, 3u);
}

TEST_F(ActionRunnerTest, FailuresAreCountedAndAProgramThatCannotRunToo) {
  ActionConfig missing;
  missing.name = "missing";
  missing.command = {(dir_ / "no-such-program").string()};
  auto runner =
      ActionRunner::start({shell("fails", "echo 'no route to pager' >&2; exit 3"), missing});
  ASSERT_TRUE(runner);
  (*runner)->publish(event(EventType::kStarted));
  ASSERT_TRUE((*runner)->wait_idle(5s));
  const auto stats = (*runner)->stats();
  EXPECT_EQ(stats[0].failed, 1u);
  EXPECT_EQ(stats[1].spawn_failed, 1u);
}

TEST_F(ActionRunnerTest, DestroyingTheRunnerKillsWhatStillRuns) {
  auto action = shell("long", "sleep 60");
  action.timeout = 3600 * kNanosPerSecond;
  const auto start = std::chrono::steady_clock::now();
  {
    auto runner = ActionRunner::start({action});
    ASSERT_TRUE(runner);
    (*runner)->publish(event(EventType::kStarted));
    EXPECT_FALSE((*runner)->idle());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace synwatch
