#include "common/error.hpp"

#include <cerrno>
#include <cstring>

namespace synwatch {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidInput:
      return "invalid input";
    case ErrorKind::kNotFound:
      return "not found";
    case ErrorKind::kPermissionDenied:
      return "permission denied";
    case ErrorKind::kInUse:
      return "in use";
    case ErrorKind::kTimedOut:
      return "timed out";
    case ErrorKind::kResourceExhausted:
      return "resource exhausted";
    case ErrorKind::kIo:
      return "i/o error";
  }
  return "unknown";
}

ErrorKind Error::kind_of_errno(int errno_value) {
  switch (errno_value) {
    case ENOENT:
    case ENOTDIR:
    case ECONNREFUSED:
    case ENODEV:
    case ENXIO:
      return ErrorKind::kNotFound;
    case EACCES:
    case EPERM:
    case EROFS:
      return ErrorKind::kPermissionDenied;
    case EADDRINUSE:
    case EEXIST:
    case EBUSY:
      return ErrorKind::kInUse;
    case ETIMEDOUT:
    case EAGAIN:
      return ErrorKind::kTimedOut;
    case ENOMEM:
    case ENOSPC:
    case EMFILE:
    case ENFILE:
    case EDQUOT:
    case EFBIG:
    case ENAMETOOLONG:
      return ErrorKind::kResourceExhausted;
    case EINVAL:
      return ErrorKind::kInvalidInput;
    default:
      return ErrorKind::kIo;
  }
}

Error Error::from_errno(int errno_value, std::string_view what) {
  std::string message(what);
  message += ": ";
  message += std::strerror(errno_value);
  return Error{kind_of_errno(errno_value), std::move(message)};
}

Error Error::from_error_code(const std::error_code& error, std::string_view what) {
  const bool is_errno =
      error.category() == std::generic_category() || error.category() == std::system_category();
  std::string message(what);
  message += ": ";
  message += error.message();
  return Error{is_errno ? kind_of_errno(error.value()) : ErrorKind::kIo, std::move(message)};
}

Error Error::prefixed(std::string_view context) const {
  std::string led(context);
  led += message;
  return Error{kind, std::move(led)};
}

}  // namespace synwatch
