#include "engine/worker_pool.hpp"

#include <pthread.h>

#include <utility>

namespace synwatch {

WorkerPool::WorkerPool(std::size_t workers) : wake_fds_(workers) {}

WorkerPool::~WorkerPool() {
  stop();
}

void WorkerPool::start(Round round, const std::string& name_prefix) {
  round_ = std::move(round);
  for (std::size_t i = 0; i < wake_fds_.size(); ++i) {
    threads_.emplace_back([this, i, name = name_prefix + std::to_string(i)] {
      pthread_setname_np(pthread_self(), name.c_str());
      run(i);
    });
  }
}

int WorkerPool::wake_fd_errno() const noexcept {
  for (const WakeFd& wake : wake_fds_) {
    if (wake.creation_errno() != 0) return wake.creation_errno();
  }
  return 0;
}

void WorkerPool::wake_all() noexcept {
  for (const WakeFd& wake : wake_fds_) wake.signal();
}

void WorkerPool::pause() {
  if (threads_.empty()) return;
  {
    MutexLock lock(park_mutex_);
    pause_requested_.store(true, std::memory_order_release);
  }
  wake_all();
  MutexLock lock(park_mutex_);
  while (parked_ != threads_.size()) park_cv_.wait(lock);
}

void WorkerPool::resume() {
  if (threads_.empty()) return;
  {
    MutexLock lock(park_mutex_);
    pause_requested_.store(false, std::memory_order_release);
    ++generation_;
  }
  park_cv_.notify_all();
}

void WorkerPool::stop() {
  if (threads_.empty()) return;
  {
    MutexLock lock(park_mutex_);
    stopping_.store(true);
    pause_requested_.store(false, std::memory_order_release);
    ++generation_;
  }
  park_cv_.notify_all();
  wake_all();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
}

void WorkerPool::park_until_resumed(MutexLock& lock) {
  ++parked_;
  park_cv_.notify_all();
  const std::uint64_t generation = generation_;
  while (generation_ == generation) park_cv_.wait(lock);
  --parked_;
}

void WorkerPool::run(std::size_t index) {
  for (;;) {
    if (pause_requested_.load(std::memory_order_acquire)) {
      MutexLock lock(park_mutex_);
      park_until_resumed(lock);
      continue;
    }
    if (stopping_.load()) return;
    round_(index);
  }
}

}  // namespace synwatch
