// The record of open incidents that lets a restarted daemon carry them on.
#include "export/open_incidents.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../common/error_printer.hpp"
#include "temp_dir.hpp"

namespace synwatch {
namespace {

class OpenIncidentsTest : public ::testing::Test {
 protected:
  static IncidentEvent event(EventType type, const std::string& id, std::uint32_t sequence,
                             std::uint16_t port) {
    IncidentEvent e;
    e.type = type;
    e.incident_id = id;
    e.sequence = sequence;
    e.target = {*IpAddress::parse("2001:db8::10"), port};
    e.kind = AttackKind::kConcentrated;
    e.started_at = 1'700'000'000'000'000'000 + port;
    e.stats.peak_half_open = 100 * sequence;
    return e;
  }
  OpenIncidentsFile open() {
    auto file = OpenIncidentsFile::open(dir_, "");
    EXPECT_TRUE(file) << (file ? "" : file.error().message);
    return std::move(*file);
  }
  testing::TempDir scratch_;
  const std::filesystem::path& dir_ = scratch_.path();
};

TEST_F(OpenIncidentsTest, WhatIsOpenAtACrashIsLoadedByTheNextRun) {
  {
    auto file = open();
    ASSERT_TRUE(file.record(event(EventType::kStarted, "a", 0, 80)));
    ASSERT_TRUE(file.record(event(EventType::kStarted, "b", 0, 443)));
    ASSERT_TRUE(file.record(event(EventType::kUpdated, "a", 1, 80)));
    ASSERT_TRUE(file.record(event(EventType::kUpdated, "a", 2, 80)));
    ASSERT_TRUE(file.record(event(EventType::kEnded, "b", 1, 443)));
    EXPECT_EQ(file.open_count(), 1u);
  }  // the process dies here: nothing else is written
  auto next = open();
  std::vector<std::string> problems;
  const auto loaded = next.load(problems);
  EXPECT_TRUE(problems.empty());
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].incident_id, "a");
  EXPECT_EQ(loaded[0].sequence, 2u);
  EXPECT_EQ(loaded[0].target.to_string(), "[2001:db8::10]:80");
  EXPECT_EQ(loaded[0].kind, AttackKind::kConcentrated);
  EXPECT_EQ(loaded[0].started_at, 1'700'000'000'000'000'080);
  EXPECT_EQ(loaded[0].peak_half_open, 200u);
  // Loaded incidents stay recorded until they end, even if nothing else happens to them.
  ASSERT_TRUE(next.record(event(EventType::kStarted, "c", 0, 22)));
  EXPECT_EQ(next.open_count(), 2u);
  ASSERT_TRUE(next.record(event(EventType::kEnded, "a", 3, 80)));
  ASSERT_TRUE(next.record(event(EventType::kEnded, "c", 1, 22)));
  auto third = open();
  EXPECT_TRUE(third.load(problems).empty());
}

TEST_F(OpenIncidentsTest, ADamagedFileOrEntryIsReportedAndSkipped) {
  std::filesystem::create_directories(dir_ / "incidents");
  std::ofstream(dir_ / "incidents" / "open.json") << "{\"incidents\": [";
  auto file = open();
  std::vector<std::string> problems;
  EXPECT_TRUE(file.load(problems).empty());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("is damaged"), std::string::npos) << problems[0];

  std::ofstream(dir_ / "incidents" / "open.json")
      << R"({"version":1,"incidents":[)"
      << R"({"incident_id":"ok","sequence":4,"address":"198.51.100.10","port":80,)"
      << R"("host_scope":false,"kind":"spoofed_random","started_at_ns":5,"peak_half_open":9},)"
      << R"({"incident_id":"bad-port","sequence":4,"address":"198.51.100.10","port":70000,)"
      << R"("host_scope":false,"kind":"spoofed_random","started_at_ns":5,"peak_half_open":9},)"
      << R"({"incident_id":"no-kind","sequence":4,"address":"198.51.100.10","port":80,)"
      << R"("host_scope":false,"started_at_ns":5,"peak_half_open":9},)"
      << R"("not an object"]})";
  problems.clear();
  auto again = open();
  const auto loaded = again.load(problems);
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].incident_id, "ok");
  EXPECT_EQ(problems.size(), 3u);
}

TEST_F(OpenIncidentsTest, AFileThatCannotBeWrittenSaysWhy) {
  auto file = open();
  std::filesystem::remove_all(dir_ / "incidents");
  const auto recorded = file.record(event(EventType::kStarted, "a", 0, 80));
  ASSERT_FALSE(recorded);
  EXPECT_EQ(recorded.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(recorded.error().message, "cannot create " + (dir_ / "incidents").string() +
                                          "/open.json.tmp: No such file or directory");
}

TEST_F(OpenIncidentsTest, AStateDirectoryThatIsAFileIsReported) {
  std::ofstream(dir_ / "state") << "x";
  const auto file = OpenIncidentsFile::open(dir_ / "state", "");
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().kind, ErrorKind::kNotFound) << file.error().message;
  EXPECT_TRUE(file.error().message.starts_with("cannot create " + (dir_ / "state").string()))
      << file.error().message;
}

}  // namespace
}  // namespace synwatch
