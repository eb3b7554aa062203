#include "export/status_socket.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

namespace synwatch {

namespace {

std::optional<sockaddr_un> socket_address(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string& text = path.native();
  if (text.empty() || text.size() >= sizeof address.sun_path) return std::nullopt;
  std::memcpy(address.sun_path, text.c_str(), text.size() + 1);
  return address;
}

// Whether something accepts connections on the socket at `address` right now.
bool someone_listens(const sockaddr_un& address) {
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  const bool listening =
      ::connect(probe, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(probe);
  return listening;
}

struct Owner {
  uid_t uid;
  gid_t gid;
};

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  [[nodiscard]] int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace

Expected<std::unique_ptr<StatusSocket>> StatusSocket::open(const std::filesystem::path& path,
                                                           const std::string& owner) {
  const std::string where = "status socket " + path.string();
  const auto address = socket_address(path);
  if (!address) {
    return make_unexpected(ErrorKind::kInvalidInput, where + ": path too long for a Unix socket");
  }
  std::optional<Owner> hand_to;
  if (!owner.empty() && ::geteuid() == 0) {
    const passwd* account = ::getpwnam(owner.c_str());
    if (account == nullptr) {
      return make_unexpected(ErrorKind::kNotFound, where + ": user '" + owner + "' does not exist");
    }
    hand_to = Owner{account->pw_uid, account->pw_gid};
  }

  const std::filesystem::path directory = path.parent_path();
  std::error_code error;
  if (!std::filesystem::exists(directory, error)) {
    std::filesystem::create_directories(directory, error);
    if (error) {
      return std::unexpected(
          Error::from_error_code(error, where + ": cannot create " + directory.string()));
    }
    ::chmod(directory.c_str(), 0750);
    if (hand_to && ::chown(directory.c_str(), hand_to->uid, hand_to->gid) != 0) {
      return std::unexpected(
          Error::from_errno(errno, where + ": cannot chown " + directory.string()));
    }
  }

  struct stat existing {};
  if (::lstat(path.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      return make_unexpected(
          ErrorKind::kInUse,
          where + ": exists and is not a socket; remove it or set status.socket");
    }
    if (someone_listens(*address)) {
      return make_unexpected(ErrorKind::kInUse,
                             where + ": another process (a synwatchd still running?) serves on it");
    }
    // Left by a daemon that died without removing it.
    ::unlink(path.c_str());
  }

  FileDescriptor listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (listener.get() < 0) return std::unexpected(Error::from_errno(errno, where + ": socket"));
  const std::filesystem::path staging =
      directory / ("." + path.filename().string() + "." + std::to_string(::getpid()));
  const auto staging_address = socket_address(staging);
  if (!staging_address) {
    return make_unexpected(ErrorKind::kInvalidInput, where + ": path too long for a Unix socket");
  }
  ::unlink(staging.c_str());
  if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&*staging_address),
             sizeof *staging_address) != 0) {
    return std::unexpected(Error::from_errno(errno, where + ": bind"));
  }
  const auto fail = [&](const std::string& what) {
    const int saved = errno;
    ::unlink(staging.c_str());
    return std::unexpected(Error::from_errno(saved, where + ": " + what));
  };
  if (::chmod(staging.c_str(), 0660) != 0) return fail("chmod");
  if (hand_to && ::chown(staging.c_str(), hand_to->uid, hand_to->gid) != 0) return fail("chown");
  if (::listen(listener.get(), 16) != 0) return fail("listen");
  if (::rename(staging.c_str(), path.c_str()) != 0) return fail("rename into place");

  const int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    const int saved = errno;
    ::unlink(path.c_str());
    return std::unexpected(Error::from_errno(saved, where + ": eventfd"));
  }
  return std::unique_ptr<StatusSocket>(new StatusSocket(path, listener.release(), wake));
}

StatusSocket::StatusSocket(std::filesystem::path path, int listen_fd, int wake_fd)
    : path_(std::move(path)),
      listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      document_(std::make_shared<const std::string>("{}\n")) {}

StatusSocket::~StatusSocket() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  ::close(listen_fd_);
  ::close(wake_fd_);
  ::unlink(path_.c_str());
}

void StatusSocket::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { serve(); });
}

void StatusSocket::publish(std::string document) {
  auto next = std::make_shared<const std::string>(std::move(document));
  std::lock_guard lock(mutex_);
  document_ = std::move(next);
}

StatusSocketStats StatusSocket::stats() const {
  return {served_.load(std::memory_order_relaxed), failed_.load(std::memory_order_relaxed)};
}

void StatusSocket::serve() {
  for (;;) {
    pollfd fds[] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    for (;;) {
      const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (client < 0) break;  // EAGAIN: served everyone waiting
      std::shared_ptr<const std::string> document;
      {
        std::lock_guard lock(mutex_);
        document = document_;
      }
      if (write_document(client, *document)) {
        served_.fetch_add(1, std::memory_order_relaxed);
      } else {
        failed_.fetch_add(1, std::memory_order_relaxed);
      }
      ::close(client);
    }
  }
}

bool StatusSocket::write_document(int client, const std::string& document) {
  const auto deadline = std::chrono::steady_clock::now() + kClientDeadline;
  std::size_t written = 0;
  while (written < document.size()) {
    const ssize_t n =
        ::send(client, document.data() + written, document.size() - written, MSG_NOSIGNAL);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd writable{client, POLLOUT, 0};
    (void)::poll(&writable, 1, static_cast<int>(left.count()));
  }
  return true;
}

Expected<std::string> read_status_socket(const std::filesystem::path& path,
                                         std::chrono::milliseconds timeout, std::size_t max_bytes) {
  const std::string where = "cannot read synwatchd's status at " + path.string();
  const auto address = socket_address(path);
  if (!address) {
    return make_unexpected(ErrorKind::kInvalidInput, where + ": path too long for a Unix socket");
  }
  FileDescriptor fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return std::unexpected(Error::from_errno(errno, where + ": socket"));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*address), sizeof *address) != 0 &&
      errno != EINPROGRESS && errno != EAGAIN) {
    const int error = errno;
    Error failed = Error::from_errno(error, where);
    if (error == ENOENT || error == ECONNREFUSED) {
      failed.message += " (is synwatchd running, with status.enabled, on this socket?)";
    } else if (error == EACCES || error == EPERM) {
      failed.message += " (run as root or as a member of the daemon's group, synwatch)";
    }
    return std::unexpected(std::move(failed));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string document;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, 0);
    if (n == 0) return document;
    if (n > 0) {
      document.append(buffer, static_cast<std::size_t>(n));
      if (document.size() > max_bytes) {
        return make_unexpected(
            ErrorKind::kResourceExhausted,
            where + ": the document is larger than " + std::to_string(max_bytes) + " bytes");
      }
      continue;
    }
    if (errno != EAGAIN && errno != EINTR) return std::unexpected(Error::from_errno(errno, where));
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return make_unexpected(ErrorKind::kTimedOut, where + ": no answer within " +
                                                       std::to_string(timeout.count()) + " ms");
    }
    pollfd readable{fd.get(), POLLIN, 0};
    (void)::poll(&readable, 1, static_cast<int>(left.count()));
  }
}

}  // namespace synwatch
