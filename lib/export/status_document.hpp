#pragma once
// The document the status socket serves (status_socket.hpp) and `synwatchd top` shows: the
// running daemon's state as JSON. Format version 1; the fields are listed in the README
// ("Watching a running daemon"). Open incidents are their latest events in the event format
// (event_json.hpp), so a script reads them as it reads alerts.
// Thread safety: status_document() is pure; LatestIncidentEvents is for one thread (the daemon's
// main loop, which sees every event).

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/time.hpp"
#include "detect/incident.hpp"
#include "engine/live_pipeline.hpp"

namespace synwatch {

inline constexpr int kStatusFormatVersion = 1;

// The latest event of every incident still open: `started` and `updated` replace an incident's
// entry, `ended` removes it.
class LatestIncidentEvents {
 public:
  void follow(const IncidentEvent& event);
  // Oldest incident first.
  [[nodiscard]] std::vector<IncidentEvent> open() const;

 private:
  std::map<std::string, IncidentEvent> by_id_;
};

struct StatusInputs {
  std::string_view version;      // synwatchd's
  std::string_view config_file;  // "" for built-in defaults
  TimestampNs now = 0;           // wall clock
  TimestampNs started_at = 0;    // when this daemon started
  std::uint64_t half_open_threshold = 0;
  std::vector<IncidentEvent> open_incidents;  // LatestIncidentEvents::open()
};

nlohmann::json status_document(const StatusInputs& inputs, const PipelineSnapshot& pipeline);

}  // namespace synwatch
