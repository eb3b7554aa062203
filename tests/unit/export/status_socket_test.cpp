// The status socket on real Unix sockets: what clients read, who may connect, a socket left
// behind by a dead daemon, one still served by a live one, and a client that never reads.
#include "export/status_socket.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

#include "../common/error_printer.hpp"
#include "temp_dir.hpp"

namespace synwatch {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

sockaddr_un address_of(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string& text = path.native();
  EXPECT_LT(text.size(), sizeof address.sun_path);
  std::memcpy(address.sun_path, text.c_str(), std::min(text.size() + 1, sizeof address.sun_path));
  return address;
}

std::string read_or_error(const std::filesystem::path& path) {
  auto document = read_status_socket(path, 2000ms);
  return document ? *document : "error: " + document.error().message;
}

TEST(StatusSocket, ServesTheLatestDocumentToEveryClient) {
  TempDir dir;
  const auto path = dir.path() / "status.sock";
  auto socket = StatusSocket::open(path, "");
  ASSERT_TRUE(socket) << socket.error().message;
  (*socket)->start();
  (*socket)->publish("{\"a\":1}\n");
  EXPECT_EQ(read_or_error(path), "{\"a\":1}\n");
  EXPECT_EQ(read_or_error(path), "{\"a\":1}\n");
  (*socket)->publish("{\"a\":2}\n");
  EXPECT_EQ(read_or_error(path), "{\"a\":2}\n");
  EXPECT_EQ((*socket)->stats().served, 3u);
  EXPECT_EQ((*socket)->stats().failed, 0u);
}

TEST(StatusSocket, OnlyOwnerAndGroupMayConnectAndTheFileGoesWithIt) {
  TempDir dir;
  const auto path = dir.path() / "run" / "synwatch" / "status.sock";
  {
    auto socket = StatusSocket::open(path, "");
    ASSERT_TRUE(socket) << socket.error().message;
    struct stat file {};
    ASSERT_EQ(::lstat(path.c_str(), &file), 0);
    EXPECT_TRUE(S_ISSOCK(file.st_mode));
    EXPECT_EQ(file.st_mode & 0777, 0660u);
    struct stat directory {};
    ASSERT_EQ(::stat(path.parent_path().c_str(), &directory), 0);
    EXPECT_EQ(directory.st_mode & 0777, 0750u) << "a directory it made itself";
    // Nothing else is left beside it (the temporary name it was bound under).
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(path.parent_path()),
                            std::filesystem::directory_iterator()),
              1);
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << "removed when the daemon stops";
}

TEST(StatusSocket, HandsTheSocketToTheDaemonUserWhenStartedAsRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to hand the socket to another user";
  TempDir dir;
  const auto path = dir.path() / "sub" / "status.sock";
  auto socket = StatusSocket::open(path, "nobody");
  ASSERT_TRUE(socket) << socket.error().message;
  struct stat file {};
  ASSERT_EQ(::lstat(path.c_str(), &file), 0);
  struct stat directory {};
  ASSERT_EQ(::stat(path.parent_path().c_str(), &directory), 0);
  EXPECT_NE(file.st_uid, 0u);
  EXPECT_EQ(file.st_uid, directory.st_uid);
  EXPECT_EQ(file.st_gid, directory.st_gid);
  const auto no_user = StatusSocket::open(dir.path() / "other.sock", "synwatch-no-such-user");
  ASSERT_FALSE(no_user);
  EXPECT_EQ(no_user.error().kind, ErrorKind::kNotFound) << no_user.error().message;
}

TEST(StatusSocket, ReplacesASocketLeftByADeadDaemon) {
  TempDir dir;
  const auto path = dir.path() / "status.sock";
  {
    // Bound and closed without unlinking: what a killed daemon leaves.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    const sockaddr_un address = address_of(path);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
    ::close(fd);
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  auto socket = StatusSocket::open(path, "");
  ASSERT_TRUE(socket) << socket.error().message;
  (*socket)->start();
  (*socket)->publish("{}\n");
  EXPECT_EQ(read_or_error(path), "{}\n");
}

TEST(StatusSocket, RefusesAPathAnotherDaemonServesOrThatIsNoSocket) {
  TempDir dir;
  const auto path = dir.path() / "status.sock";
  auto first = StatusSocket::open(path, "");
  ASSERT_TRUE(first) << first.error().message;
  auto second = StatusSocket::open(path, "");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().kind, ErrorKind::kInUse);
  EXPECT_NE(second.error().message.find("another process"), std::string::npos)
      << second.error().message;
  EXPECT_NE(second.error().message.find(path.string()), std::string::npos)
      << second.error().message;
  // The first one still serves.
  (*first)->start();
  (*first)->publish("{}\n");
  EXPECT_EQ(read_or_error(path), "{}\n");

  const auto file = dir.path() / "not-a-socket";
  std::ofstream(file) << "data";
  auto refused = StatusSocket::open(file, "");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::kInUse) << "the path is another file's";
  EXPECT_NE(refused.error().message.find("not a socket"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(std::filesystem::is_regular_file(file)) << "never removed";
}

TEST(StatusSocket, AClientThatNeverReadsHoldsOthersUpOnlyUntilItsDeadline) {
  TempDir dir;
  const auto path = dir.path() / "status.sock";
  auto socket = StatusSocket::open(path, "");
  ASSERT_TRUE(socket) << socket.error().message;
  (*socket)->start();
  // Far more than a socket buffer takes, so writing to the idle client blocks.
  const std::string big(8u << 20, 'x');
  (*socket)->publish(big);

  const int idle = ::socket(AF_UNIX, SOCK_STREAM, 0);
  const sockaddr_un address = address_of(path);
  ASSERT_EQ(::connect(idle, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
  const auto start = std::chrono::steady_clock::now();
  auto document = read_status_socket(path, 5000ms, 16u << 20);
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(idle);
  ASSERT_TRUE(document) << document.error().message;
  EXPECT_EQ(document->size(), big.size());
  EXPECT_LT(took, StatusSocket::kClientDeadline + 2s);
  EXPECT_EQ((*socket)->stats().failed, 1u);
  EXPECT_EQ((*socket)->stats().served, 1u);
}

TEST(StatusSocket, ReadingSaysWhatIsWrong) {
  TempDir dir;
  auto missing = read_status_socket(dir.path() / "none.sock", 500ms);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(missing.error().message.find("is synwatchd running"), std::string::npos)
      << missing.error().message;

  const auto path = dir.path() / "status.sock";
  auto socket = StatusSocket::open(path, "");
  ASSERT_TRUE(socket) << socket.error().message;
  (*socket)->start();
  (*socket)->publish(std::string(4096, 'x'));
  auto too_big = read_status_socket(path, 2000ms, 1024);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().kind, ErrorKind::kResourceExhausted);
  EXPECT_NE(too_big.error().message.find("larger than 1024 bytes"), std::string::npos)
      << too_big.error().message;
}

TEST(StatusSocket, ANotStartedSocketAnswersNothingButTheClientGivesUp) {
  TempDir dir;
  const auto path = dir.path() / "status.sock";
  auto socket = StatusSocket::open(path, "");
  ASSERT_TRUE(socket) << socket.error().message;
  // Connections queue in the backlog; nobody answers: the reader's timeout, not a hang.
  auto document = read_status_socket(path, 300ms);
  ASSERT_FALSE(document);
  EXPECT_EQ(document.error().kind, ErrorKind::kTimedOut);
  EXPECT_NE(document.error().message.find("no answer within 300 ms"), std::string::npos)
      << document.error().message;
}

TEST(StatusSocket, ReadingASocketNobodyServesIsNotFound) {
  TempDir dir;
  const auto path = dir.path() / "status.sock";
  {
    // Bound and closed: a dead daemon's socket, where connect is refused.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    const sockaddr_un address = address_of(path);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
    ::close(fd);
  }
  auto refused = read_status_socket(path, 500ms);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::kNotFound) << refused.error().message;
  EXPECT_NE(refused.error().message.find("is synwatchd running"), std::string::npos)
      << refused.error().message;
}

// The kind read_status_socket reports for `path` when run as a user that may not connect: root
// may connect to anything, so as root the read runs in a child switched to nobody.
std::optional<ErrorKind> kind_when_not_allowed(const std::filesystem::path& path) {
  if (::geteuid() != 0) {
    auto document = read_status_socket(path, 500ms);
    return document ? std::nullopt : std::optional(document.error().kind);
  }
  const pid_t child = ::fork();
  if (child == 0) {
    constexpr uid_t kNobody = 65534;
    if (::setresgid(kNobody, kNobody, kNobody) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0) {
      ::_exit(1);
    }
    auto document = read_status_socket(path, 500ms);
    ::_exit(document ? 2 : 10 + static_cast<int>(document.error().kind));
  }
  int status = 0;
  if (child < 0 || ::waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
      WEXITSTATUS(status) < 10) {
    ADD_FAILURE() << "the unprivileged reader failed: status " << status;
    return std::nullopt;
  }
  return static_cast<ErrorKind>(WEXITSTATUS(status) - 10);
}

TEST(StatusSocket, ReadingWithoutPermissionIsPermissionDenied) {
  TempDir dir;
  const auto path = dir.path() / "status.sock";
  auto socket = StatusSocket::open(path, "");
  ASSERT_TRUE(socket) << socket.error().message;
  // Neither the owner (when not root) nor anyone else may connect.
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  EXPECT_EQ(kind_when_not_allowed(path), ErrorKind::kPermissionDenied);
}

}  // namespace
}  // namespace synwatch
