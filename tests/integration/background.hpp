#pragma once
// Helpers of the integration tests that start real processes: a background process with its
// output in files, and polling for a condition with a time limit.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace synwatch::testing {

// A background process (posix_spawn) with stdout and stderr in files; SIGKILLed on destruction
// if still running. Not thread-safe: one test thread owns it.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::filesystem::path& out,
             const std::filesystem::path& err)
      : out_(out), err_(err) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  // Standard error goes to `out` with ".err" appended.
  Background(const std::vector<std::string>& argv, const std::filesystem::path& out)
      : Background(argv, out, out.string() + ".err") {}
  ~Background() { kill(); }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  // Never kill(-1, ...) when the spawn failed: that signals every process we may signal.
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  [[nodiscard]] bool running() {
    if (pid_ <= 0 || exited_) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return !exited_;
  }
  // Waits up to `limit` for exit; returns the exit code or -1 on timeout.
  int wait_exit(std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (running() && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return exited_ ? exit_code_ : -1;
  }
  // SIGKILL, no chance to clean up; then reaps the process.
  void kill() {
    if (pid_ <= 0 || exited_) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    exited_ = true;
    exit_code_ = 128 + SIGKILL;
  }
  [[nodiscard]] std::string output() const { return contents(out_); }
  [[nodiscard]] std::string errors() const { return contents(err_); }

 private:
  static std::string contents(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::filesystem::path out_;
  std::filesystem::path err_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

// Polls `predicate` every 50 ms until true or `limit` passes.
template <typename Predicate>
bool eventually(std::chrono::milliseconds limit, Predicate&& predicate) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return predicate();
}

}  // namespace synwatch::testing
