#pragma once
// Runs a program to completion and captures its exit code, stdout and stderr: the tests drive the
// real synwatchd and synwatch-gen binaries exactly as a user would.

#include <sys/wait.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../unit/export/temp_dir.hpp"

namespace synwatch::testing {

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Safe to call from several threads at once (a test floods on one while it looks on another).
inline ProcessResult run_process(const std::vector<std::string>& argv) {
  static std::atomic<int> counter = 0;
  const auto err_path =
      std::filesystem::temp_directory_path() /
      ("synwatch-test-stderr-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::string command;
  for (const auto& a : argv) command += shell_quote(a) + " ";
  command += "2>" + shell_quote(err_path.string());
  ProcessResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 65536> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.out.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream err(err_path);
  std::stringstream ss;
  ss << err.rdbuf();
  result.err = ss.str();
  std::filesystem::remove(err_path);
  return result;
}

// Parses JSON Lines; a line that is not JSON fails the calling test through the exception.
inline std::vector<nlohmann::json> parse_json_lines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

// "2024-01-01T00:00:01.250Z" -> nanoseconds since the epoch (millisecond precision).
inline long long parse_rfc3339_ns(const std::string& text) {
  std::tm tm{};
  int millis = 0;
  (void)std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<long long>(::timegm(&tm)) * 1'000'000'000LL + millis * 1'000'000LL;
}

}  // namespace synwatch::testing
