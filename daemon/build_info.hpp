#pragma once
// What `synwatchd --version` prints: the version, how this binary was built, and the versions
// of the libraries it runs with (asked at run time where the library can say, so a library
// upgraded after the build shows its own version).

#include <string>

namespace synwatch {

std::string version_text();

}  // namespace synwatch
