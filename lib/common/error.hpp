#pragma once
// The error of an operation outside the packet path: a kind that callers branch on (never on the
// message's words) and a message for people, naming what failed and where.
// Thread safety: a value type.

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <system_error>

namespace synwatch {

enum class ErrorKind : std::uint8_t {
  kInvalidInput,       // the content is malformed: a file, a document, an argument
  kNotFound,           // a path, interface or peer does not exist (ENOENT, ECONNREFUSED)
  kPermissionDenied,   // the process may not (EACCES, EPERM, a missing capability)
  kInUse,              // another owner holds it (EADDRINUSE, another daemon's socket)
  kTimedOut,           // a peer did not answer in time
  kResourceExhausted,  // memory, descriptors, disk space, a size limit
  kIo,                 // a read, write or system call failed otherwise
};

// A stable lower-case name, for logs and tests.
std::string_view to_string(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::kIo;
  std::string message;

  // `what` names the operation and its object ("bind /run/synwatch/status.sock"); the message
  // is `what: strerror(errno_value)` and the kind follows errno_value.
  static Error from_errno(int errno_value, std::string_view what);
  static ErrorKind kind_of_errno(int errno_value);
  // As from_errno, for the std::error_code of std::filesystem: `what: error.message()`; the kind
  // follows the errno value when the code is one (generic or system category), else kIo.
  static Error from_error_code(const std::error_code& error, std::string_view what);

  // The same kind, the message led by `context` ("webhook 'ops': "): a caller adds where the
  // failure happened without losing what it was.
  [[nodiscard]] Error prefixed(std::string_view context) const;

  bool operator==(const Error&) const = default;
};

template <class T>
using Expected = std::expected<T, Error>;

inline std::unexpected<Error> make_unexpected(ErrorKind kind, std::string message) {
  return std::unexpected(Error{kind, std::move(message)});
}

}  // namespace synwatch
