#pragma once
// A fixture for end-to-end tests on generated captures: synwatch-gen writes a scenario, the real
// `synwatchd --read` analyses it, and the helpers check the events it printed. The including
// test defines SYNWATCH_GEN and SYNWATCHD (tests/integration/CMakeLists.txt does).

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "run_process.hpp"

namespace synwatch::testing {

// NOLINTNEXTLINE(bugprone-exception-escape): false positive; both members move without throwing.
struct Generated {
  std::filesystem::path file;
  nlohmann::json summary;  // synwatch-gen's one-line JSON summary
};

// The event format synwatchd writes (lib/detect/incident.hpp: kEventFormatVersion); format 2
// added the host scope (port null) and the stale figures.
inline constexpr int kEventFormatVersion = 2;

class GeneratedCaptureTest : public ::testing::Test {
 protected:
  Generated generate(const std::string& scenario, std::vector<std::string> extra = {}) {
    Generated g;
    g.file = dir_.path() / (scenario + std::to_string(files_++) + ".pcap");
    std::vector<std::string> argv = {SYNWATCH_GEN, scenario, "--out", g.file.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const auto r = run_process(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    g.summary = nlohmann::json::parse(r.out);
    return g;
  }
  static ProcessResult analyse(const std::filesystem::path& file,
                               std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {SYNWATCHD, "--read", file.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv);
  }
  // Every incident must be started, then (optionally updated), then ended, in that order.
  static void expect_lifecycle(const std::vector<nlohmann::json>& events) {
    std::map<std::string, std::string> last;
    for (const auto& e : events) {
      const std::string id = e.at("incident_id");
      const std::string type = e.at("event");
      if (type == "started") {
        EXPECT_FALSE(last.contains(id)) << "started twice: " << e.dump();
      } else {
        ASSERT_TRUE(last.contains(id)) << type << " before started: " << e.dump();
        EXPECT_NE(last[id], "ended") << "event after ended: " << e.dump();
      }
      EXPECT_EQ(e.at("version"), kEventFormatVersion);
      last[id] = type;
    }
    for (const auto& [id, type] : last) EXPECT_EQ(type, "ended") << id << " never ended";
  }
  static std::vector<nlohmann::json> of_type(const std::vector<nlohmann::json>& events,
                                             const std::string& type) {
    std::vector<nlohmann::json> out;
    for (const auto& e : events) {
      if (e.at("event") == type) out.push_back(e);
    }
    return out;
  }

  TempDir dir_;
  int files_ = 0;
};

}  // namespace synwatch::testing
