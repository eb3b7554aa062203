// Opening, closing and reopening live captures, on fake sockets and a simulated monotonic clock:
// no privileges, no network.
#include <gtest/gtest.h>

#include <deque>
#include <memory>

#include "engine/capture_set.hpp"
#include "simulated_clock.hpp"

namespace synwatch {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A socket that reads nothing; its counters are the test's to set.
class FakeSource final : public LiveSource {
 public:
  explicit FakeSource(CaptureStats stats, std::uint16_t* joined_group)
      : stats_(stats), joined_group_(joined_group) {}
  DispatchResult dispatch(std::size_t, PacketHandler&) override { return {}; }
  [[nodiscard]] LinkType link_type() const override { return LinkType::kEthernet; }
  [[nodiscard]] std::string name() const override { return "fake0"; }
  [[nodiscard]] std::string error() const override { return {}; }
  [[nodiscard]] int selectable_fd() const noexcept override { return -1; }
  Expected<std::uint16_t> join_fanout(std::optional<std::uint16_t> group) override {
    *joined_group_ = group.value_or(7);
    return *joined_group_;
  }
  Expected<CaptureStats> stats() override { return stats_; }

 private:
  CaptureStats stats_;
  std::uint16_t* joined_group_;
};

// Opens sockets or fails as told, one outcome per call; succeeds once told nothing more.
struct FakeOpener {
  std::deque<std::optional<CaptureOpenError>> outcomes;
  CaptureStats stats_of_next{};
  std::size_t calls = 0;
  std::uint16_t joined_group = 0;

  void fail_next(CaptureOpenError::Kind kind, std::string message) {
    outcomes.emplace_back(CaptureOpenError{kind, std::move(message)});
  }
  CaptureSet::Opener opener() {
    return [this](const LiveCaptureOptions&)
               -> std::expected<std::unique_ptr<LiveSource>, CaptureOpenError> {
      ++calls;
      if (!outcomes.empty()) {
        auto outcome = std::move(outcomes.front());
        outcomes.pop_front();
        if (outcome) return std::unexpected(std::move(*outcome));
      }
      return std::make_unique<FakeSource>(stats_of_next, &joined_group);
    };
  }
};

Config one_interface() {
  Config config;
  config.capture.interfaces = {"eth9"};
  return config;
}

std::size_t live_sockets(CaptureSet& set, std::size_t socket) {
  std::size_t n = 0;
  set.for_each_live(socket, [&](CaptureSet::Capture&) { ++n; });
  return n;
}

TEST(CaptureSet, FirstOpenFailureIsRecordedInHealthAndReturned) {
  FakeOpener opener;
  SimulatedClock mono;
  CaptureSet set(1, opener.opener(), mono.reader());
  set.build(one_interface());
  opener.fail_next(CaptureOpenError::Kind::kNoInterface, "no interface 'eth9'");
  const auto errors = set.open_closed();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].kind, CaptureOpenError::Kind::kNoInterface);
  const auto health = set.health();
  ASSERT_EQ(health.size(), 1u);
  EXPECT_EQ(health[0].name, "eth9");
  EXPECT_FALSE(health[0].open);
  EXPECT_EQ(health[0].last_error, "no interface 'eth9'");
  EXPECT_EQ(health[0].reopen_attempts, 1u);
  EXPECT_EQ(live_sockets(set, 0), 0u);
}

TEST(CaptureSet, RetriesNotBeforeTheBackoffWhichDoublesToTheCap) {
  FakeOpener opener;
  SimulatedClock mono;
  CaptureSet set(1, opener.opener(), mono.reader());
  set.build(one_interface());
  for (int i = 0; i < 10; ++i) opener.fail_next(CaptureOpenError::Kind::kNoInterface, "gone");
  set.open_closed();
  ASSERT_EQ(opener.calls, 1u);
  const std::vector<milliseconds> expected = {
      milliseconds(1000),  milliseconds(2000),  milliseconds(4000),  milliseconds(8000),
      milliseconds(16000), milliseconds(30000), milliseconds(30000), milliseconds(30000)};
  for (const auto backoff : expected) {
    const std::size_t calls = opener.calls;
    mono.now += backoff - milliseconds(1);
    set.reopen_due();
    EXPECT_EQ(opener.calls, calls) << "retried before " << backoff.count() << " ms";
    mono.now += milliseconds(1);
    set.reopen_due();
    EXPECT_EQ(opener.calls, calls + 1) << "not retried after " << backoff.count() << " ms";
  }
  EXPECT_EQ(set.health()[0].reopen_attempts, 1u + expected.size());
}

TEST(CaptureSet, SuccessResetsTheBackoff) {
  FakeOpener opener;
  SimulatedClock mono;
  CaptureSet set(1, opener.opener(), mono.reader());
  set.build(one_interface());
  for (int i = 0; i < 3; ++i) opener.fail_next(CaptureOpenError::Kind::kOther, "busy");
  set.open_closed();
  mono.now += seconds(1);
  set.reopen_due();
  mono.now += seconds(2);
  set.reopen_due();
  mono.now += seconds(4);
  set.reopen_due();  // succeeds
  ASSERT_TRUE(set.health()[0].open);
  EXPECT_TRUE(set.health()[0].last_error.empty());
  // Failing once more, the interface is retried after the first backoff again.
  set.for_each_live(0, [](CaptureSet::Capture& c) {
    c.failed = true;
    c.error = "read failed";
  });
  set.close_failed();
  const std::size_t calls = opener.calls;
  mono.now += milliseconds(999);
  set.reopen_due();
  EXPECT_EQ(opener.calls, calls);
  mono.now += milliseconds(1);
  set.reopen_due();
  EXPECT_EQ(opener.calls, calls + 1);
  EXPECT_TRUE(set.health()[0].open);
}

TEST(CaptureSet, AFailedCaptureClosesItsInterfaceWhichIsRetried) {
  FakeOpener opener;
  SimulatedClock mono;
  Config config;
  config.capture.interfaces = {"eth8", "eth9"};
  CaptureSet set(2, opener.opener(), mono.reader());
  set.build(config);
  EXPECT_TRUE(set.open_closed().empty());
  EXPECT_EQ(opener.joined_group, 7u);  // the second socket joined the first's fanout group
  EXPECT_EQ(live_sockets(set, 0), 2u);
  EXPECT_EQ(live_sockets(set, 1), 2u);
  // Worker 1 finds eth9's socket failed.
  std::size_t seen = 0;
  set.for_each_live(1, [&](CaptureSet::Capture& c) {
    if (++seen == 2) {
      c.failed = true;
      c.error = "capture on 'eth9' failed: the interface went away";
    }
  });
  EXPECT_EQ(live_sockets(set, 1), 1u);  // a failed socket is not read again
  set.close_failed();
  auto health = set.health();
  EXPECT_TRUE(health[0].open);
  EXPECT_FALSE(health[1].open);
  EXPECT_EQ(health[1].last_error, "capture on 'eth9' failed: the interface went away");
  EXPECT_EQ(live_sockets(set, 0), 1u);
  opener.fail_next(CaptureOpenError::Kind::kNoInterface, "no interface 'eth9'");
  mono.now += seconds(1);
  set.reopen_due();
  EXPECT_FALSE(set.health()[1].open);
  mono.now += seconds(2);
  set.reopen_due();
  health = set.health();
  EXPECT_TRUE(health[1].open);
  EXPECT_EQ(health[1].reopen_attempts, 3u);
  EXPECT_EQ(live_sockets(set, 1), 2u);
}

TEST(CaptureSet, StatsAreSummedOverReopenings) {
  FakeOpener opener;
  SimulatedClock mono;
  CaptureSet set(2, opener.opener(), mono.reader());
  set.build(one_interface());
  opener.stats_of_next = {.received = 100, .dropped_kernel = 3, .dropped_interface = 1};
  set.open_closed();
  EXPECT_EQ(set.health()[0].stats.received, 200u);  // both sockets
  set.for_each_live(0, [](CaptureSet::Capture& c) { c.failed = true; });
  set.close_failed();
  EXPECT_EQ(set.health()[0].stats.received, 200u);
  EXPECT_EQ(set.health()[0].stats.dropped_kernel, 6u);
  opener.stats_of_next = {.received = 10, .dropped_kernel = 0, .dropped_interface = 2};
  mono.now += seconds(1);
  set.reopen_due();
  const auto stats = set.health()[0].stats;
  EXPECT_EQ(stats.received, 220u);
  EXPECT_EQ(stats.dropped_kernel, 6u);
  EXPECT_EQ(stats.dropped_interface, 6u);
}

TEST(CaptureSet, KernelOnlyModeHasNoInterfaces) {
  FakeOpener opener;
  Config config = one_interface();
  config.capture.enabled = false;
  CaptureSet set(1, opener.opener());
  set.build(config);
  EXPECT_EQ(set.interface_count(), 0u);
  EXPECT_TRUE(set.open_closed().empty());
  EXPECT_EQ(opener.calls, 0u);
}

}  // namespace
}  // namespace synwatch
