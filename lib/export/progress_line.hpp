#pragma once
// The progress line of `synwatchd --read` on a terminal: bytes and packets read, packets/s, and
// with a known size the share read and the time left, redrawn in place on one line.
// Reading the clock costs little, but a read runs at millions of packets/s, so the line looks at
// it only every few batches of packets and redraws at most a few times a second: the figure the
// README gives (progress on against off) shows it costs nothing measurable.
// Thread safety: one thread (the one reading the capture).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "common/time.hpp"

namespace synwatch {

struct ProgressStats {
  std::uint64_t bytes = 0;        // of the capture file(s) read so far
  std::uint64_t total_bytes = 0;  // 0: unknown (standard input, a pipe)
  std::uint64_t packets = 0;
  DurationNs elapsed = 0;  // wall-clock time since reading began
};

// "12.3 MiB of 1.2 GiB (1 %), 1,234,567 packets, 2,345,678 packets/s, 48 s left", or without a
// known size "12.3 MiB, 1,234,567 packets, 2,345,678 packets/s". Rates and the time left appear
// once there is elapsed time (and bytes read) to derive them from.
std::string render_progress(const ProgressStats& figures);

// CLOCK_MONOTONIC in nanoseconds: the progress line's clock unless a test gives another.
TimestampNs monotonic_now() noexcept;

class ProgressLine {
 public:
  struct Options {
    // The clock is read on every this-many-th call of due().
    std::size_t batches_per_clock_check = 8;
    DurationNs min_interval = 250 * kNanosPerMilli;  // between two redraws
    std::size_t columns = 0;  // terminal width: longer lines are cut to fit; 0: never cut
    // Monotonic nanoseconds; replaceable so that tests control time.
    TimestampNs (*clock)() = &monotonic_now;
  };
  ProgressLine(std::FILE* terminal, const Options& options);

  // Called once per batch of packets: true when the line should be redrawn now (the first clock
  // check, then once min_interval has passed since the last draw).
  [[nodiscard]] bool due() noexcept {
    if (++batches_ < options_.batches_per_clock_check) return false;
    batches_ = 0;
    return clock_says_due();
  }
  // Redraws the line with `figures` (elapsed is filled in here).
  void draw(ProgressStats figures);
  // Erases the line if one is shown, before other output goes to the same terminal and at the end.
  void clear();
  [[nodiscard]] std::uint64_t draws() const noexcept { return draws_; }

 private:
  bool clock_says_due() noexcept;

  std::FILE* terminal_;
  Options options_;
  TimestampNs started_;
  TimestampNs last_draw_ = 0;
  std::size_t batches_ = 0;
  std::uint64_t draws_ = 0;
  bool shown_ = false;
};

}  // namespace synwatch
