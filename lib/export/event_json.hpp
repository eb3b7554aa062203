#pragma once
// The JSON form of an incident event (format version 1), shared by stdout, the alert file and
// webhooks. Field names are the public contract documented in the README.
// Thread safety: free functions; JsonLinesSink serialises writes through its own stdio stream
// and is meant for one engine thread.

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "detect/incident.hpp"

namespace synwatch {

nlohmann::json to_json(const IncidentEvent& event);

// Writes each event as one compact JSON line to a stdio stream and flushes it, so a reader
// (a pipe, a log shipper) sees every event as soon as it is published. written() counts only
// the lines the stream accepted.
class JsonLinesSink final : public EventSink {
 public:
  explicit JsonLinesSink(std::FILE* stream) : stream_(stream) {}
  void publish(const IncidentEvent& event) override;
  [[nodiscard]] std::uint64_t written() const noexcept { return written_; }
  // Events that could not be written (a full disk, a closed pipe), and the errno of the last.
  [[nodiscard]] std::uint64_t failed() const noexcept { return failed_; }
  [[nodiscard]] int last_error() const noexcept { return last_error_; }

 private:
  std::FILE* stream_;
  std::uint64_t written_ = 0;
  std::uint64_t failed_ = 0;
  int last_error_ = 0;
};

}  // namespace synwatch
