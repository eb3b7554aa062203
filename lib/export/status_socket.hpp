#pragma once
// The status socket: a Unix stream socket on which the live daemon hands each client that
// connects its latest state as one JSON document, then closes the connection. `synwatchd top`
// reads it once a second; scripts can read it with `socat - UNIX-CONNECT:PATH` or `nc -U PATH`.
//
// Who may read it is what may connect to the socket file: it is created mode 0660, owned by the
// daemon's user and group, in a directory made 0750 if it was missing; so root and members of the
// daemon's group (synwatch) read it, nobody else. The socket is bound under a temporary name,
// given its mode and owner, and renamed into place, so it never exists with wider permissions.
//
// Serving runs on a thread of its own, one client after another: the document is at most a few
// hundred KiB and the socket's buffer normally takes it whole, so a client that connects and
// never reads costs at most client_deadline before the next one is served. Publishing never
// waits on a client: it swaps a pointer under a mutex no client holds while writing.
//
// Thread safety: open() and the destructor from the owner's thread; start() once, from the
// owner's thread (after the privilege drop: the thread keeps the privileges it starts with);
// publish() and stats() from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/error.hpp"

namespace synwatch {

struct StatusSocketStats {
  std::uint64_t served = 0;  // documents written whole
  std::uint64_t failed = 0;  // clients gone or too slow before the document was written
};

class StatusSocket {
 public:
  static constexpr std::chrono::milliseconds kClientDeadline{1000};

  // Binds `path`. A socket file left by a daemon that is gone is replaced; one that a running
  // daemon answers on is refused, as is a path that is not a socket. `owner`: the user whose
  // user and group get the directory (when this call made it) and the socket, applied only when
  // running as root; empty: leave ownership alone. Errors name the path and the reason; a live
  // daemon on the socket is kInUse.
  static Expected<std::unique_ptr<StatusSocket>> open(const std::filesystem::path& path,
                                                      const std::string& owner);
  ~StatusSocket();  // stops serving and removes the socket file
  StatusSocket(const StatusSocket&) = delete;
  StatusSocket& operator=(const StatusSocket&) = delete;

  void start();
  // The document every client from now on receives (until the next publish).
  void publish(std::string document);
  [[nodiscard]] StatusSocketStats stats() const;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  StatusSocket(std::filesystem::path path, int listen_fd, int wake_fd);
  void serve();
  // Writes `document` to `client` within kClientDeadline; false if it could not.
  static bool write_document(int client, const std::string& document);

  std::filesystem::path path_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  mutable std::mutex mutex_;  // guards document_ only
  std::shared_ptr<const std::string> document_;
  std::atomic<std::uint64_t> served_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::thread thread_;
};

// Connects to the status socket at `path` and reads the document whole (at most max_bytes)
// within `timeout`. Errors say what failed and, for the usual causes, what to do: no daemon
// listening is kNotFound, no permission to connect kPermissionDenied.
Expected<std::string> read_status_socket(const std::filesystem::path& path,
                                         std::chrono::milliseconds timeout,
                                         std::size_t max_bytes = 16u << 20);

}  // namespace synwatch
