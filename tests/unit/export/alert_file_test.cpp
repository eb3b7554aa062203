// The alert file against real faults: a file size limit that cuts writes short (what a full
// disk does) and a FIFO whose reader stalls.
#include "export/alert_file.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../common/error_printer.hpp"
#include "temp_dir.hpp"

namespace synwatch {
namespace {

IncidentEvent make_event(EventType type, std::uint32_t sequence) {
  IncidentEvent event;
  event.type = type;
  event.incident_id = "inc";
  event.sequence = sequence;
  event.event_id = "inc-" + std::to_string(sequence);
  event.target = {*IpAddress::parse("198.51.100.10"), 80};
  event.kind = AttackKind::kSpoofedRandom;
  event.reason = "test";
  return event;
}

std::vector<std::string> lines_of(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class AlertFileTest : public ::testing::Test {
 protected:
  testing::TempDir scratch_;
  const std::filesystem::path& dir_ = scratch_.path();
};

TEST_F(AlertFileTest, AWriteCutShortIsTakenBackAndCountedSoTheFileStaysJsonLines) {
  // A full disk once left a partial line that the next event was appended to (invalid JSON),
  // and the write was counted as a success. RLIMIT_FSIZE cuts writes short the same way
  // (short write, then EFBIG), without root or a small file system; it is per process, so a
  // child does the writing and reports through its exit status.
  const auto path = dir_ / "alerts.jsonl";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    (void)std::signal(SIGXFSZ, SIG_IGN);
    auto file = AlertFile::open(path.string());
    if (!file) ::_exit(10);
    file->publish(make_event(EventType::kStarted, 0));
    const auto one_line = std::filesystem::file_size(path);
    // Room for one more line and a half.
    const rlimit limit{static_cast<rlim_t>(one_line * 5 / 2), RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(11);
    file->publish(make_event(EventType::kUpdated, 1));  // fits
    file->publish(make_event(EventType::kUpdated, 2));  // cut short: taken back
    file->publish(make_event(EventType::kUpdated, 3));  // no room at all
    const std::uint64_t failures_while_full = file->failures();
    const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &unlimited) != 0) ::_exit(12);
    file->publish(make_event(EventType::kEnded, 4));  // room again
    ::_exit(failures_while_full == 2 && file->failures() == 2 ? 0 : 13);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: open, 11/12: setrlimit, 13: failure count";
  std::vector<std::string> ids;
  for (const auto& line : lines_of(path)) {
    const auto json = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(json.is_discarded()) << "not JSON: " << line;
    ids.push_back(json.at("event_id").get<std::string>());
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"inc-0", "inc-1", "inc-4"}));
}

TEST_F(AlertFileTest, AStalledFifoReaderCostsEventsNotTheCaller) {
  // A FIFO with a reader that stopped reading once froze the main loop in write().
  const auto path = dir_ / "alerts.fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const auto no_reader = AlertFile::open(path.string());
  ASSERT_FALSE(no_reader) << "no reader: refused with the reason";
  EXPECT_EQ(no_reader.error().kind, ErrorKind::kNotFound) << "ENXIO: nobody at the other end";
  EXPECT_EQ(no_reader.error().message,
            "cannot open alert file '" + path.string() +
                "': No such device or address (a FIFO needs its reader running before synwatchd "
                "starts)");
  const int reader = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  auto file = AlertFile::open(path.string());
  ASSERT_TRUE(file) << file.error().message;
  const auto start = std::chrono::steady_clock::now();
  for (std::uint32_t i = 0; i < 2000; ++i) file->publish(make_event(EventType::kUpdated, i));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_GT(file->failures(), 0u) << "a 64 KiB pipe cannot hold 2000 events";
  EXPECT_LT(file->failures(), 2000u);
  // Whatever reached the reader is whole lines, apart from one line cut at the pipe's limit
  // which the next event after a drain closes with a newline.
  std::string received;
  char buffer[65536];
  for (ssize_t n; (n = ::read(reader, buffer, sizeof buffer)) > 0;) received.append(buffer, n);
  file->publish(make_event(EventType::kEnded, 9999));
  for (ssize_t n; (n = ::read(reader, buffer, sizeof buffer)) > 0;) received.append(buffer, n);
  ::close(reader);
  std::size_t whole = 0;
  std::size_t start_of_line = 0;
  for (std::size_t end; (end = received.find('\n', start_of_line)) != std::string::npos;
       start_of_line = end + 1) {
    const auto line = received.substr(start_of_line, end - start_of_line);
    if (!nlohmann::json::parse(line, nullptr, false).is_discarded()) ++whole;
  }
  EXPECT_GT(whole, 10u);
  EXPECT_NE(received.find("\"inc-9999\""), std::string::npos);
  EXPECT_TRUE(received.ends_with("}\n"));
  const auto last_line_start = received.rfind('\n', received.size() - 2) + 1;
  EXPECT_FALSE(
      nlohmann::json::parse(received.substr(last_line_start), nullptr, false).is_discarded());
}

}  // namespace
}  // namespace synwatch
