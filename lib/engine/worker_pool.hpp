#pragma once
// The capture worker threads and their parking. Each worker runs rounds of its own work (poll its
// sockets, read them into its shard) until stopped; between rounds it checks a pause flag and, when
// asked, parks on a condition variable until resumed. pause() cuts every worker's poll short
// through its eventfd and returns only once all of them are parked, so that the caller may then
// touch what the workers read (shards, sockets, decoders) without a lock on the packet path.
// Several pauses in a row are told apart by a generation counter, so a worker resumed and paused
// again before it woke cannot stay parked through the resume.
//
// Thread safety: start(), pause(), resume() and stop() from one coordinating thread;
// pause_requested() and wake_fd() from any thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/thread_annotations.hpp"
#include "common/wake_fd.hpp"

namespace synwatch {

// The pause flag the workers read after every round sits on a cache line of its own (alignas),
// which costs padding by design.
class WorkerPool {  // NOLINT(clang-analyzer-optin.performance.Padding)
 public:
  // One round of worker `index`'s work. It should return soon after wake_fd(index) turns readable
  // and, while pause_requested(), after its current batch.
  using Round = std::function<void(std::size_t index)>;

  explicit WorkerPool(std::size_t workers);
  ~WorkerPool();  // stops
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Launches the threads, named `name_prefix` + index (for `top -H`).
  void start(Round round, const std::string& name_prefix);
  // Returns once every worker is parked. At once if the pool has not been started.
  void pause() EXCLUDES(park_mutex_);
  void resume() EXCLUDES(park_mutex_);
  // Ends and joins every worker, whether running or parked.
  void stop() EXCLUDES(park_mutex_);

  [[nodiscard]] bool pause_requested() const noexcept {
    return pause_requested_.load(std::memory_order_relaxed);
  }
  // Readable when the worker is wanted: its round polls it with its sockets.
  [[nodiscard]] const WakeFd& wake_fd(std::size_t index) const noexcept { return wake_fds_[index]; }
  // The errno of the first worker eventfd the kernel refused; 0 when every one was created.
  [[nodiscard]] int wake_fd_errno() const noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return wake_fds_.size(); }

 private:
  void run(std::size_t index) EXCLUDES(park_mutex_);
  // Counts the caller parked until the next resume() or stop().
  void park_until_resumed(MutexLock& lock) REQUIRES(park_mutex_);
  void wake_all() noexcept;

  Round round_;
  std::vector<WakeFd> wake_fds_;
  std::vector<std::thread> threads_;
  // Read by every worker after each round: on a line of its own, written only to pause.
  alignas(64) std::atomic<bool> pause_requested_{false};
  std::atomic<bool> stopping_{false};
  Mutex park_mutex_;  // also orders the pause flag's changes
  std::condition_variable_any park_cv_;
  std::size_t parked_ GUARDED_BY(park_mutex_) = 0;
  std::uint64_t generation_ GUARDED_BY(park_mutex_) = 0;
};

}  // namespace synwatch
