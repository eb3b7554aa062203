#pragma once
// The on-disk spool of one webhook receiver: one file per undelivered event, named by a
// per-receiver sequence number so that a directory listing gives the delivery order back after
// a crash. A file is written to a temporary name, fsync'd, renamed into place and the directory
// fsync'd, so after a crash each event is either wholly present or absent.
// Thread safety: none; WebhookDispatcher serialises access per receiver. Buffer ownership: the
// spool copies what it is given and returns owned strings.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace synwatch {

// Gives `root` and everything under it to `user` (and the user's group), so that the daemon can
// still write there after switching to that user.
Expected<void> hand_over_tree(const std::filesystem::path& root, const std::string& user);

// Replaces `path` with `content` so that after a crash it holds either the old or the new
// content: a temporary file (path + ".tmp") is written and fsync'd, renamed over `path`, and the
// directory fsync'd.
Expected<void> replace_file_durably(const std::filesystem::path& path, std::string_view content);

struct SpooledEvent {
  std::uint64_t sequence = 0;
  std::string json;  // the event_json object, compact
};

class Spool {
 public:
  // Creates `directory` (and parents) if needed.
  static Expected<Spool> open(std::filesystem::path directory);

  // Every complete spooled event, oldest first. Leftover temporary files (a crash mid-write)
  // are removed; unreadable entries are skipped and reported in `problems`.
  std::vector<SpooledEvent> load(std::vector<std::string>& problems);

  // Writes one event durably (fsync of file and directory) before returning.
  Expected<void> append(std::uint64_t sequence, std::string_view json);

  // Forgets a delivered or dropped event. Missing files are not an error.
  void remove(std::uint64_t sequence);

  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }

 private:
  explicit Spool(std::filesystem::path directory) : directory_(std::move(directory)) {}
  [[nodiscard]] std::filesystem::path path_of(std::uint64_t sequence) const;

  std::filesystem::path directory_;
};

}  // namespace synwatch
