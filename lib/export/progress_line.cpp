#include "export/progress_line.hpp"

#include <time.h>

#include <algorithm>

#include "export/people_format.hpp"

namespace synwatch {

TimestampNs monotonic_now() noexcept {
  timespec now{};
  (void)::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<TimestampNs>(now.tv_sec) * kNanosPerSecond + now.tv_nsec;
}

std::string render_progress(const ProgressStats& figures) {
  std::string line = people_bytes(figures.bytes);
  const bool size_known = figures.total_bytes > 0;
  if (size_known) {
    const double share =
        static_cast<double>(figures.bytes) / static_cast<double>(figures.total_bytes);
    line += " of " + people_bytes(figures.total_bytes) + " (" +
            people_number(100 * std::min(share, 1.0)) + " %)";
  }
  line += ", " + people_number(static_cast<double>(figures.packets)) + " packets";
  if (figures.elapsed <= 0) return line;
  const double seconds = to_seconds(figures.elapsed);
  line += ", " + people_number(static_cast<double>(figures.packets) / seconds) + " packets/s";
  if (size_known && figures.bytes > 0 && figures.bytes <= figures.total_bytes) {
    const double bytes_per_second = static_cast<double>(figures.bytes) / seconds;
    const double left = static_cast<double>(figures.total_bytes - figures.bytes) / bytes_per_second;
    line += ", " + people_duration(from_seconds(left)) + " left";
  }
  return line;
}

ProgressLine::ProgressLine(std::FILE* terminal, const Options& options)
    : terminal_(terminal), options_(options), started_(options.clock()) {}

bool ProgressLine::clock_says_due() noexcept {
  const TimestampNs now = options_.clock();
  // The first check draws at once, so that even a short read shows where it is.
  return draws_ == 0 || now - last_draw_ >= options_.min_interval;
}

void ProgressLine::draw(ProgressStats figures) {
  const TimestampNs now = options_.clock();
  figures.elapsed = now - started_;
  std::string text = render_progress(figures);
  // A line longer than the terminal wraps, and \r would then redraw only its last row.
  if (options_.columns > 1 && text.size() >= options_.columns) text.resize(options_.columns - 1);
  // \r back to the start of the line, the new text, then erase what a longer old one left.
  const std::string line = "\r" + text + "\033[K";
  (void)std::fwrite(line.data(), 1, line.size(), terminal_);
  (void)std::fflush(terminal_);
  last_draw_ = now;
  ++draws_;
  shown_ = true;
}

void ProgressLine::clear() {
  if (!shown_) return;
  (void)std::fputs("\r\033[K", terminal_);
  (void)std::fflush(terminal_);
  shown_ = false;
}

}  // namespace synwatch
