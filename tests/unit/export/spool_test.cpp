// The webhook spool on a real directory: order, durability of complete entries, crash leftovers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../common/error_printer.hpp"
#include "export/spool.hpp"

namespace synwatch {
namespace {

class SpoolTest : public ::testing::Test {
 protected:
  SpoolTest() {
    std::string templ = (std::filesystem::temp_directory_path() / "synwatch-spool-XXXXXX").string();
    root_ = ::mkdtemp(templ.data());
  }
  ~SpoolTest() override { std::filesystem::remove_all(root_); }
  std::filesystem::path root_;
};

TEST_F(SpoolTest, LoadsWhatWasAppendedInSequenceOrderAcrossReopen) {
  auto spool = Spool::open(root_ / "a" / "b");
  ASSERT_TRUE(spool) << spool.error().message;
  for (std::uint64_t s : {5, 1, 12, 100}) {
    ASSERT_TRUE(spool->append(s, "{\"n\":" + std::to_string(s) + "}"));
  }
  spool->remove(12);
  spool->remove(999);  // absent: no error
  auto reopened = Spool::open(root_ / "a" / "b");
  std::vector<std::string> problems;
  const auto events = reopened->load(problems);
  EXPECT_TRUE(problems.empty());
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].sequence, 1u);
  EXPECT_EQ(events[0].json, "{\"n\":1}");
  EXPECT_EQ(events[1].sequence, 5u);
  EXPECT_EQ(events[2].sequence, 100u);
}

TEST_F(SpoolTest, InterruptedWritesAndForeignFilesAreIgnored) {
  auto spool = Spool::open(root_);
  ASSERT_TRUE(spool);
  ASSERT_TRUE(spool->append(1, "{}"));
  std::ofstream(root_ / "00000000000000000002.json.tmp") << "{\"half";
  std::ofstream(root_ / "README") << "not an event";
  std::ofstream(root_ / "00000000000000000003.json") << "";
  std::vector<std::string> problems;
  const auto events = spool->load(problems);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].sequence, 1u);
  EXPECT_FALSE(std::filesystem::exists(root_ / "00000000000000000002.json.tmp"));
  EXPECT_EQ(problems.size(), 1u);  // the empty entry
}

TEST_F(SpoolTest, UnwritableDirectoryIsReported) {
  if (::geteuid() == 0) GTEST_SKIP() << "root may write anywhere";
  std::filesystem::create_directories(root_ / "ro");
  std::filesystem::permissions(
      root_ / "ro", std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  const auto spool = Spool::open(root_ / "ro");
  ASSERT_FALSE(spool);
  EXPECT_EQ(spool.error().kind, ErrorKind::kPermissionDenied) << spool.error().message;
}

TEST_F(SpoolTest, FileUnderPathIsReported) {
  std::ofstream(root_ / "file") << "x";
  const auto spool = Spool::open(root_ / "file" / "sub");
  ASSERT_FALSE(spool);
  EXPECT_NE(spool.error().message.find("cannot create spool directory"), std::string::npos);
  // ENOTDIR: no directory by that path.
  EXPECT_EQ(spool.error().kind, ErrorKind::kNotFound) << spool.error().message;
}

TEST_F(SpoolTest, AppendingToAVanishedDirectorySaysWhatIsMissing) {
  auto spool = Spool::open(root_ / "gone");
  ASSERT_TRUE(spool) << spool.error().message;
  std::filesystem::remove_all(root_ / "gone");
  const auto appended = spool->append(1, "{}");
  ASSERT_FALSE(appended);
  EXPECT_EQ(appended.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(appended.error().message, "cannot create " + (root_ / "gone").string() +
                                          "/00000000000000000001.json.tmp: No such file or "
                                          "directory");
}

TEST_F(SpoolTest, HandingOverToAMissingUserIsNotFound) {
  const auto handed = hand_over_tree(root_, "synwatch-no-such-user");
  ASSERT_FALSE(handed);
  EXPECT_EQ(handed.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(handed.error().message, "user 'synwatch-no-such-user' does not exist");
}

}  // namespace
}  // namespace synwatch
