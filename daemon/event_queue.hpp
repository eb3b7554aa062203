#pragma once
// Hands incident events from the capture thread to the main loop. publish() only takes a short
// lock and signals an eventfd (events are rare: a few per incident, never per packet), so the
// capture thread never waits on logging, files or the network.
// Thread safety: publish() from any thread; drain() and fd() from the main loop.

#include <sys/eventfd.h>
#include <unistd.h>

#include <deque>
#include <mutex>

#include "detect/incident.hpp"

namespace synwatch {

class EventQueue final : public EventSink {
 public:
  EventQueue() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~EventQueue() override { ::close(fd_); }
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  void publish(const IncidentEvent& event) override {
    {
      std::lock_guard lock(mutex_);
      events_.push_back(event);
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(fd_, &one, sizeof one);
  }

  std::deque<IncidentEvent> drain() {
    std::uint64_t count = 0;
    [[maybe_unused]] const auto n = ::read(fd_, &count, sizeof count);
    std::lock_guard lock(mutex_);
    return std::exchange(events_, {});
  }

  [[nodiscard]] int fd() const noexcept { return fd_; }

 private:
  int fd_;
  std::mutex mutex_;
  std::deque<IncidentEvent> events_;
};

}  // namespace synwatch
