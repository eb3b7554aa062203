// The capture workers' parking on real threads: pause() waits for every worker, resume() lets them
// run, stop() ends them running or parked.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>

#include "config/config.hpp"
#include "engine/live_pipeline.hpp"
#include "engine/worker_pool.hpp"

namespace synwatch {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kWorkers = 3;

// Rounds that block in poll() on the wake-up eventfd, as a worker waiting for packets does, and
// record whether they are running.
struct Rounds {
  WorkerPool& pool;
  std::array<std::atomic<std::uint64_t>, kWorkers> done{};
  std::array<std::atomic<bool>, kWorkers> inside{};

  WorkerPool::Round round() {
    return [this](std::size_t index) {
      inside[index].store(true);
      pollfd fd{pool.wake_fd(index).fd(), POLLIN, 0};
      ::poll(&fd, 1, 10'000);
      if (fd.revents & POLLIN) pool.wake_fd(index).drain();
      done[index].fetch_add(1);
      inside[index].store(false);
    };
  }
  [[nodiscard]] bool any_inside() const {
    for (const auto& flag : inside) {
      if (flag.load()) return true;
    }
    return false;
  }
  [[nodiscard]] std::uint64_t total() const {
    std::uint64_t sum = 0;
    for (const auto& count : done) sum += count.load();
    return sum;
  }
  // Waits (up to 10 s) until every worker has finished a round after this call.
  [[nodiscard]] bool every_worker_ran() const {
    std::array<std::uint64_t, kWorkers> before{};
    for (std::size_t i = 0; i < kWorkers; ++i) before[i] = done[i].load();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (std::size_t i = 0; i < kWorkers; ++i) {
      while (done[i].load() == before[i]) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        pool.wake_fd(i).signal();
        std::this_thread::sleep_for(1ms);
      }
    }
    return true;
  }
};

TEST(WorkerPool, PauseReturnsOnlyOnceEveryWorkerIsParked) {
  WorkerPool pool(kWorkers);
  Rounds rounds{pool};
  pool.start(rounds.round(), "test-worker-");
  ASSERT_TRUE(rounds.every_worker_ran());
  const auto asked = std::chrono::steady_clock::now();
  pool.pause();
  // The workers were blocked in a 10 s poll: the eventfd cut it short.
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 5s);
  EXPECT_TRUE(pool.pause_requested());
  EXPECT_FALSE(rounds.any_inside());
  const std::uint64_t parked_at = rounds.total();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rounds.total(), parked_at);
  EXPECT_FALSE(rounds.any_inside());
  pool.resume();
  pool.stop();
}

TEST(WorkerPool, ResumeLetsThemRunAgain) {
  WorkerPool pool(kWorkers);
  Rounds rounds{pool};
  pool.start(rounds.round(), "test-worker-");
  pool.pause();
  pool.resume();
  EXPECT_FALSE(pool.pause_requested());
  EXPECT_TRUE(rounds.every_worker_ran());
  pool.stop();
}

TEST(WorkerPool, ManyPausesInARowEachWaitForEveryWorker) {
  WorkerPool pool(kWorkers);
  Rounds rounds{pool};
  pool.start(rounds.round(), "test-worker-");
  for (int i = 0; i < 500; ++i) {
    pool.pause();
    ASSERT_FALSE(rounds.any_inside()) << "pause " << i;
    pool.resume();
  }
  EXPECT_TRUE(rounds.every_worker_ran());
  pool.stop();
}

TEST(WorkerPool, StopsWhileParked) {
  WorkerPool pool(kWorkers);
  Rounds rounds{pool};
  pool.start(rounds.round(), "test-worker-");
  pool.pause();
  const std::uint64_t parked_at = rounds.total();
  pool.stop();  // joins: a worker left parked would hang the test
  EXPECT_EQ(rounds.total(), parked_at);
}

TEST(WorkerPool, StopsWhileRunning) {
  WorkerPool pool(kWorkers);
  Rounds rounds{pool};
  pool.start(rounds.round(), "test-worker-");
  ASSERT_TRUE(rounds.every_worker_ran());
  const auto asked = std::chrono::steady_clock::now();
  pool.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 5s);
  EXPECT_FALSE(rounds.any_inside());
}

TEST(WorkerPool, NotStartedPausesAtOnce) {
  WorkerPool pool(1);
  pool.pause();
  EXPECT_FALSE(pool.pause_requested());
  pool.resume();
  pool.stop();
}

#if defined(__x86_64__)
constexpr std::uint32_t kSeccompArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t kSeccompArch = AUDIT_ARCH_AARCH64;
#else
constexpr std::uint32_t kSeccompArch = 0;  // not known here: refuse_eventfds() says it cannot
#endif

// Makes the kernel refuse every eventfd of this process with `error`, as it does once the
// process is out of descriptors, without taking the other descriptors away: a lowered
// RLIMIT_NOFILE would also stop the sanitizers' runtime, which checks memory through a pipe, and
// UBSan then reports the checks it could not make as errors. A seccomp filter, so only in a child.
bool refuse_eventfds(int error) {
  if (kSeccompArch == 0) return false;
  const auto errno_return = SECCOMP_RET_ERRNO | (static_cast<std::uint32_t>(error) & 0xffffU);
  // Another architecture's system call numbers mean other calls: allow those untouched.
  std::array<sock_filter, 7> program{{
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kSeccompArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_eventfd2, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, errno_return),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  }};
  const sock_fprog filter{.len = static_cast<unsigned short>(program.size()),
                          .filter = program.data()};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter) == 0;
}

// Exits 0 if, with the kernel refusing eventfds, the pool says EMFILE and the live pipeline
// refuses to start, saying why: without its eventfds every stop, reload and parked worker would
// wait out a poll timeout.
[[noreturn]] void start_pipeline_without_eventfds() {
  if (!refuse_eventfds(EMFILE)) ::_exit(2);
  if (WorkerPool(kWorkers).wake_fd_errno() != EMFILE) ::_exit(3);
  struct : EventSink {
    void publish(const IncidentEvent& /*event*/) override {}
  } sink;
  Config config;
  config.kernel.enabled = false;
  config.capture.workers = kWorkers;
  LivePipeline pipeline(config, sink, 1);
  const auto opened = pipeline.open_interfaces();
  if (opened) ::_exit(4);
  if (opened.error().kind != ErrorKind::kResourceExhausted) ::_exit(5);
  ::_exit(opened.error().message.find("eventfd") != std::string::npos ? 0 : 6);
}

TEST(WorkerPool, ARefusedEventfdStopsTheLivePipelineFromStarting) {
  EXPECT_EQ(WorkerPool(kWorkers).wake_fd_errno(), 0);
  // In a child: a seccomp filter cannot be taken off again.
  EXPECT_EXIT(start_pipeline_without_eventfds(), testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace synwatch
