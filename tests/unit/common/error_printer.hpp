#pragma once
// GoogleTest prints an ErrorKind as raw bytes ("1-byte object <03>") unless told its name: a
// failed kind assertion then reads "in use" vs "not found".

#include <ostream>

#include "common/error.hpp"

namespace synwatch {

inline void PrintTo(ErrorKind kind, std::ostream* out) {
  *out << to_string(kind);
}

inline void PrintTo(const Error& error, std::ostream* out) {
  *out << to_string(error.kind) << ": " << error.message;
}

}  // namespace synwatch
