#pragma once
// The incidents open right now, kept in `state_dir/incidents/open.json`, so that a daemon that
// died without ending them (SIGKILL, a crash, power loss) carries them on when it starts again
// (Detector::resume): every `started` gets its `ended`, and a flood still running keeps its
// incident id. The file is replaced durably (temporary file, fsync, rename) after every event;
// events are rare (a few per incident per minute), so this costs nothing on the packet path.
// Thread safety: none; the daemon's main loop.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "detect/incident.hpp"

namespace synwatch {

class OpenIncidentsFile {
 public:
  // Creates `state_dir/incidents` if needed; started as root, hands it to `owner` (empty: leave
  // ownership alone) so that the daemon can still write it after the privilege drop.
  static Expected<OpenIncidentsFile> open(const std::filesystem::path& state_dir,
                                          const std::string& owner);

  // What the previous run left open, oldest first. A damaged file or entry is reported in
  // `problems` and skipped (the file is then rewritten at the next event).
  std::vector<ResumedIncident> load(std::vector<std::string>& problems);

  // Follows one event: `started` and `updated` record the incident, `ended` forgets it; then the
  // file is replaced. An error says why the file could not be written (the event itself is not
  // affected).
  Expected<void> record(const IncidentEvent& event);

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::size_t open_count() const noexcept { return open_.size(); }

 private:
  explicit OpenIncidentsFile(std::filesystem::path path) : path_(std::move(path)) {}
  Expected<void> write() const;

  std::filesystem::path path_;
  std::map<std::string, ResumedIncident> open_;  // by incident id
};

}  // namespace synwatch
