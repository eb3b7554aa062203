#include "top.hpp"

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/exit_codes.hpp"
#include "export/status_socket.hpp"
#include "export/status_view.hpp"

namespace synwatch {

namespace {

constexpr std::chrono::milliseconds kReadTimeout{2000};

struct ScreenSize {
  std::size_t columns = 0;
  std::size_t rows = 0;
};

ScreenSize screen_size() {
  winsize size{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) != 0) return {};
  return {size.ws_col, size.ws_row};
}

bool write_all(std::string_view text) {
  return std::fwrite(text.data(), 1, text.size(), stdout) == text.size() &&
         std::fflush(stdout) == 0;
}

// The whole screen while it runs: the alternate screen (the shell's screen comes back on exit),
// no cursor, and keys read one at a time without echo. Restored by the destructor, so every way
// out (q, a signal, an error) leaves the terminal as it was.
class FullScreen {
 public:
  FullScreen() {
    if (::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      keys_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    (void)write_all("\x1b[?1049h\x1b[?25l");
  }
  ~FullScreen() {
    (void)write_all("\x1b[?25h\x1b[?1049l");
    if (keys_) (void)::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  FullScreen(const FullScreen&) = delete;
  FullScreen& operator=(const FullScreen&) = delete;
  [[nodiscard]] bool reads_keys() const noexcept { return keys_; }

 private:
  termios saved_{};
  bool keys_ = false;
};

struct Frame {
  nlohmann::json document;
  std::string error;  // set when this read failed
};

Frame read_frame(const std::filesystem::path& socket) {
  auto text = read_status_socket(socket, kReadTimeout);
  if (!text) return {nullptr, text.error().message};
  auto document = nlohmann::json::parse(*text, nullptr, false);
  if (document.is_discarded()) {
    return {nullptr, "the status socket at " + socket.string() + " did not answer with JSON"};
  }
  return {std::move(document), {}};
}

}  // namespace

int run_top(const TopOptions& options) {
  // A reader that goes away (`synwatchd top | head`) ends this quietly, not by SIGPIPE.
  (void)std::signal(SIGPIPE, SIG_IGN);
  Frame frame = read_frame(options.socket);
  if (!frame.error.empty()) {
    (void)std::fprintf(stderr, "synwatchd top: %s\n", frame.error.c_str());
    return exit_code::kUnavailable;
  }

  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGWINCH}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  const int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);

  const bool text = options.format == ReportFormat::kText;
  const bool interactive = text && !options.once && ::isatty(STDOUT_FILENO) == 1;
  std::optional<FullScreen> screen;
  if (interactive) screen.emplace();

  nlohmann::json previous;
  nlohmann::json current;
  std::uint64_t frames = 0;
  for (;;) {
    // The rate needs two documents of different times: the daemon writes one a second, and a
    // shorter interval reads the same one again.
    if (frame.error.empty()) {
      if (!current.is_null() && current.value("time", "") != frame.document.value("time", "")) {
        previous = std::move(current);
      }
      current = std::move(frame.document);
    }
    std::string out;
    if (!text) {
      if (frame.error.empty()) {
        out = current.dump() + "\n";
      } else {
        (void)std::fprintf(stderr, "synwatchd top: %s; trying again every %lld ms\n",
                           frame.error.c_str(), static_cast<long long>(options.interval.count()));
      }
    } else {
      const ScreenSize size = interactive ? screen_size() : ScreenSize{};
      StatusViewOptions view;
      view.width = size.columns;
      view.height = size.rows > 1 ? size.rows - 1 : 0;  // the last row stays free for the cursor
      std::vector<std::string> lines;
      if (frame.error.empty()) {
        auto rendered = render_status(current, previous.is_null() ? nullptr : &previous, view);
        if (rendered) {
          lines = std::move(*rendered);
        } else {
          frame.error = rendered.error().message;
        }
      }
      if (!frame.error.empty()) {
        lines = {"synwatchd top: " + frame.error + "; trying again every " +
                 std::to_string(options.interval.count()) + " ms"};
        if (!interactive) {
          (void)std::fprintf(stderr, "%s\n", lines.front().c_str());
          lines.clear();
        }
      }
      if (interactive) {
        out = "\x1b[H";  // home; every line clears its rest, and the screen below the last
        for (const auto& line : lines) out += line + "\x1b[K\n";
        out += "\x1b[J";
      } else if (!lines.empty()) {
        if (frames > 0) out += "\n";
        for (const auto& line : lines) out += line + "\n";
      }
    }
    if (!out.empty() && !write_all(out)) return 0;  // the reader went away
    ++frames;
    if (options.once || (options.iterations && frames >= *options.iterations)) return 0;

    // Wait for the next frame, a key (q quits) or a signal (a resize redraws at once).
    const auto next = std::chrono::steady_clock::now() + options.interval;
    bool redraw_now = false;
    while (!redraw_now) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          next - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd fds[] = {{signal_fd, POLLIN, 0},
                      {screen && screen->reads_keys() ? STDIN_FILENO : -1, POLLIN, 0}};
      (void)::poll(fds, 2, static_cast<int>(left.count()));
      if (fds[0].revents & POLLIN) {
        signalfd_siginfo info{};
        while (::read(signal_fd, &info, sizeof info) == sizeof info) {
          if (info.ssi_signo != SIGWINCH) return 0;
          redraw_now = true;
        }
      }
      if (fds[1].revents & POLLIN) {
        char key = 0;
        while (::read(STDIN_FILENO, &key, 1) == 1) {
          if (key == 'q' || key == 'Q') return 0;
          if (key == ' ') redraw_now = true;  // as in top: refresh now
        }
      }
    }
    frame = read_frame(options.socket);
  }
}

}  // namespace synwatch
