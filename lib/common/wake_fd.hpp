#pragma once
// An eventfd one thread signals to cut another thread's poll() short. Non-blocking: signal()
// never waits, and drain() after a poll resets it.
// Thread safety: signal() from any thread; drain() by the thread that polls it.

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

namespace synwatch {

class WakeFd {
 public:
  // fd() is -1 if the kernel refused an eventfd (out of descriptors), and creation_errno() says
  // why; signal() and drain() are then no-ops and poll() ignores it, so waits would end by their
  // timeouts only. Owners check creation_errno() before they rely on it.
  WakeFd() noexcept
      : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)), creation_errno_(fd_ < 0 ? errno : 0) {}
  ~WakeFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  WakeFd(WakeFd&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), creation_errno_(other.creation_errno_) {}
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;
  WakeFd& operator=(WakeFd&&) = delete;

  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] int creation_errno() const noexcept { return creation_errno_; }  // 0: created
  void signal() const noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(fd_, &one, sizeof one);
  }
  void drain() const noexcept {
    std::uint64_t count = 0;
    [[maybe_unused]] const auto n = ::read(fd_, &count, sizeof count);
  }

 private:
  int fd_;
  int creation_errno_;
};

}  // namespace synwatch
