#include "export/spool.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

namespace synwatch {

namespace {

constexpr std::string_view kSuffix = ".json";
constexpr std::string_view kTemporarySuffix = ".tmp";

// Writes everything or reports why not; retries short writes and EINTR.
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

bool fsync_directory(const std::filesystem::path& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

Expected<void> hand_over_tree(const std::filesystem::path& root, const std::string& user) {
  const passwd* account = ::getpwnam(user.c_str());
  if (account == nullptr) {
    return make_unexpected(ErrorKind::kNotFound, "user '" + user + "' does not exist");
  }
  const uid_t uid = account->pw_uid;
  const gid_t gid = account->pw_gid;
  auto change = [&](const std::filesystem::path& path) -> Expected<void> {
    if (::lchown(path.c_str(), uid, gid) != 0) {
      return std::unexpected(Error::from_errno(errno, "cannot chown " + path.string()));
    }
    return {};
  };
  if (auto changed = change(root); !changed) return changed;
  std::error_code error;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root, error)) {
    if (auto changed = change(entry.path()); !changed) return changed;
  }
  return {};
}

Expected<Spool> Spool::open(std::filesystem::path directory) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) {
    return std::unexpected(
        Error::from_error_code(error, "cannot create spool directory " + directory.string()));
  }
  if (::access(directory.c_str(), W_OK | X_OK) != 0) {
    return std::unexpected(
        Error::from_errno(errno, "spool directory " + directory.string() + " is not writable"));
  }
  return Spool(std::move(directory));
}

std::filesystem::path Spool::path_of(std::uint64_t sequence) const {
  // Zero-padded so that names sort like the numbers they hold. At most 20 digits: always fits.
  char name[32];
  (void)std::snprintf(name, sizeof name, "%020llu", static_cast<unsigned long long>(sequence));
  return directory_ / (std::string(name) + std::string(kSuffix));
}

std::vector<SpooledEvent> Spool::load(std::vector<std::string>& problems) {
  std::vector<SpooledEvent> events;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory_, error)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(kTemporarySuffix)) {
      std::filesystem::remove(entry.path(), error);  // a write the crash interrupted
      continue;
    }
    if (!name.ends_with(kSuffix)) continue;
    std::uint64_t sequence = 0;
    const std::string_view digits(name.data(), name.size() - kSuffix.size());
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), sequence);
    if (ec != std::errc{} || end != digits.data() + digits.size()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      problems.push_back("cannot read " + entry.path().string());
      continue;
    }
    std::string json = text.str();
    while (!json.empty() && (json.back() == '\n' || json.back() == '\r')) json.pop_back();
    if (json.empty()) {
      problems.push_back("empty spool file " + entry.path().string() + " removed");
      std::filesystem::remove(entry.path(), error);
      continue;
    }
    events.push_back({sequence, std::move(json)});
  }
  if (error) problems.push_back("cannot list " + directory_.string() + ": " + error.message());
  std::ranges::sort(events, {}, &SpooledEvent::sequence);
  return events;
}

Expected<void> replace_file_durably(const std::filesystem::path& path, std::string_view content) {
  auto temporary = path;
  temporary += kTemporarySuffix;
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return std::unexpected(Error::from_errno(errno, "cannot create " + temporary.string()));
  }
  const bool written = write_all(fd, content) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!written) {
    ::unlink(temporary.c_str());
    return std::unexpected(Error::from_errno(saved, "cannot write " + temporary.string()));
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int rename_error = errno;
    ::unlink(temporary.c_str());
    return std::unexpected(Error::from_errno(rename_error, "cannot rename to " + path.string()));
  }
  const auto directory =
      path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  if (!fsync_directory(directory)) {
    return std::unexpected(Error::from_errno(errno, "cannot fsync " + directory.string()));
  }
  return {};
}

Expected<void> Spool::append(std::uint64_t sequence, std::string_view json) {
  std::string line(json);
  line += '\n';
  return replace_file_durably(path_of(sequence), line);
}

void Spool::remove(std::uint64_t sequence) {
  // No directory fsync: if the removal is lost in a crash, the event is delivered again, which
  // at-least-once delivery allows.
  ::unlink(path_of(sequence).c_str());
}

}  // namespace synwatch
