#pragma once
// Clang's thread safety analysis (-Wthread-safety): which mutex guards which field, which
// functions must hold or must not hold it. The CI's clang-tidy stage checks them; with g++ the
// macros expand to nothing. std::mutex carries no annotations in libstdc++, hence Mutex and
// MutexLock here.
//
// Thread safety: Mutex is a mutex; a MutexLock belongs to the thread that made it.

#include <mutex>

#if defined(__clang__)
#define SYNWATCH_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SYNWATCH_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) SYNWATCH_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY SYNWATCH_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) SYNWATCH_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) SYNWATCH_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) SYNWATCH_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) SYNWATCH_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) SYNWATCH_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) SYNWATCH_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) SYNWATCH_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS SYNWATCH_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace synwatch {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { mutex_.lock(); }
  void unlock() RELEASE() { mutex_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mutex_.try_lock(); }

 private:
  std::mutex mutex_;
};

// Holds `mutex` for its lifetime. Also BasicLockable, so std::condition_variable_any can wait on
// it (releasing the mutex while it waits).
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) ACQUIRE(mutex) : mutex_(mutex) { mutex_.lock(); }
  ~MutexLock() RELEASE() { mutex_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // For std::condition_variable_any only.
  void lock() ACQUIRE() { mutex_.lock(); }
  void unlock() RELEASE() { mutex_.unlock(); }

 private:
  Mutex& mutex_;
};

}  // namespace synwatch
