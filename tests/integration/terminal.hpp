#pragma once
// Runs a program on a pseudo-terminal of a given size, as a person at a terminal would: the
// tests of full-screen output (`synwatchd top`) read what it draws and type keys at it.

#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <string>
#include <vector>

namespace synwatch::testing {

struct TerminalRun {
  std::string output;  // everything drawn, escape sequences included
  int exit_code = -1;  // 128 + signal when killed
};

// Starts `argv` on a terminal of `rows` x `columns` and reads what it draws. `type(output)` is
// called whenever more arrived and returns keys to type (empty: none yet). The program gets
// `limit` to exit on its own, then is killed (exit_code 128 + 9).
inline TerminalRun run_in_terminal(const std::vector<std::string>& argv, unsigned short rows,
                                   unsigned short columns,
                                   const std::function<std::string(const std::string&)>& type,
                                   std::chrono::milliseconds limit) {
  TerminalRun run;
  winsize size{};
  size.ws_row = rows;
  size.ws_col = columns;
  int terminal = -1;
  const pid_t child = ::forkpty(&terminal, nullptr, nullptr, &size);
  if (child < 0) return run;
  if (child == 0) {
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(child, SIGKILL);
      break;
    }
    pollfd readable{terminal, POLLIN, 0};
    if (::poll(&readable, 1, static_cast<int>(std::min<long long>(left.count(), 100))) <= 0) {
      continue;
    }
    char buffer[4096];
    const ssize_t n = ::read(terminal, buffer, sizeof buffer);
    if (n <= 0) break;  // EIO: the program exited and the terminal closed
    run.output.append(buffer, static_cast<std::size_t>(n));
    const std::string keys = type(run.output);
    if (!keys.empty()) (void)!::write(terminal, keys.data(), keys.size());
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(terminal);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

}  // namespace synwatch::testing
