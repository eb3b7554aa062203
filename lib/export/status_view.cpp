#include "export/status_view.hpp"

#include <algorithm>
#include <array>

#include "common/time.hpp"
#include "export/people_format.hpp"

namespace synwatch {

namespace {

using Json = nlohmann::json;

std::string number(const Json& value) {
  return value.is_number() ? people_number(value.get<double>()) : "-";
}

std::string ratio_percent(const Json& value) {
  return value.is_number() ? people_number(value.get<double>() * 100.0) + "%" : "-";
}

std::string target_of(const Json& entry) {
  const std::string address = entry.at("address").get<std::string>();
  if (entry.value("scope", "port") == "host" || entry.at("port").is_null()) {
    return address + " (all ports)";
  }
  const std::string port = std::to_string(entry.at("port").get<unsigned>());
  return address.find(':') != std::string::npos ? "[" + address + "]:" + port
                                                : address + ":" + port;
}

std::string sources_of(const Json& top, std::size_t most) {
  std::string out;
  std::size_t shown = 0;
  for (const auto& source : top) {
    if (shown == most) {
      out += ", +" + std::to_string(top.size() - shown) + " more";
      break;
    }
    if (shown++ > 0) out += ", ";
    out += source.at("address").get<std::string>() + " (" + number(source.at("syns")) + ")";
  }
  return out.empty() ? "-" : out;
}

TimestampNs time_of(const Json& text) {
  return text.is_string() ? parse_rfc3339(text.get<std::string>()).value_or(0) : 0;
}

std::string header_line(const Json& document, const Json* previous) {
  const Json& daemon = document.at("synwatchd");
  const TimestampNs now = time_of(document.at("time"));
  std::string line = "synwatchd " + daemon.value("version", std::string("?")) + " - up " +
                     people_duration(now - time_of(daemon.at("started_at")));
  const Json& capture = document.at("capture");
  std::string interfaces;
  for (const auto& interface : capture.at("interfaces")) {
    interfaces += (interfaces.empty() ? "" : ", ") + interface.at("name").get<std::string>() +
                  (interface.at("open").get<bool>() ? "" : " (closed)");
  }
  line += " - " + (interfaces.empty() ? std::string("no capture") : interfaces);
  const auto packets = capture.at("packets").get<double>();
  line += " - " + people_number(packets) + " packets";
  if (previous != nullptr) {
    const TimestampNs before = time_of(previous->at("time"));
    const double seconds = static_cast<double>(now - before) / kNanosPerSecond;
    const double packets_before = previous->at("capture").at("packets").get<double>();
    if (seconds > 0 && packets >= packets_before) {
      line += " (" + people_number((packets - packets_before) / seconds) + "/s)";
    }
  }
  line +=
      " - lag " +
      people_duration(static_cast<DurationNs>(capture.value("lag_seconds", 0.0) * kNanosPerSecond));
  return line + " - " + people_time(now).substr(11, 8) + " UTC";
}

std::string detail_line(const Json& document) {
  std::string line = "threshold " + number(document.at("half_open_threshold")) +
                     " stale half-open per destination";
  const Json& handshakes = document.at("handshakes");
  line += " - handshakes tracked " + number(handshakes.at("tracked")) + " of " +
          number(handshakes.at("capacity"));
  const Json& kernel = document.value("kernel", Json());
  if (kernel.is_object()) {
    line += " - kernel SYN_RECV " + number(kernel.at("syn_recv")) + ", SYN cookies " +
            number(kernel.at("syncookies_sent_rate")) + "/s" +
            (kernel.at("healthy").get<bool>() ? "" : " (kernel view failing)");
  }
  return line;
}

void add_incidents(const Json& document, const StatusViewOptions& options,
                   std::vector<std::string>& lines) {
  const Json& incidents = document.at("open_incidents");
  if (incidents.empty()) {
    lines.emplace_back("No open incidents.");
    return;
  }
  static constexpr std::array<TableColumn, 8> kColumns = {{{"TARGET", false},
                                                           {"KIND", false},
                                                           {"FOR", true},
                                                           {"HALF-OPEN", true},
                                                           {"STALE", true},
                                                           {"SYN/s", true},
                                                           {"SOURCES", true},
                                                           {"TOP SOURCES (SYNs)", false}}};
  const TimestampNs now = time_of(document.at("time"));
  std::vector<std::vector<std::string>> rows;
  for (const auto& incident : incidents) {
    // The figures of this second when its destination is listed; the latest event's (up to
    // detection.update_interval old) otherwise.
    const std::string target = target_of(incident.at("target"));
    const Json* live = nullptr;
    for (const auto& d : document.at("destinations")) {
      if (target_of(d) == target) {
        live = &d;
        break;
      }
    }
    const Json& figures = live != nullptr ? *live : incident.at("stats");
    rows.push_back({target, incident.at("kind").get<std::string>(),
                    people_duration(now - time_of(incident.at("started_at"))),
                    number(figures.at("half_open")), number(figures.at("stale")),
                    number(figures.at("syn_rate")), "~" + number(figures.at("distinct_sources")),
                    sources_of(incident.at("top_sources"), options.top_sources)});
  }
  lines.push_back(people_number(static_cast<double>(incidents.size())) + " OPEN INCIDENT" +
                  (incidents.size() == 1 ? "" : "S"));
  for (auto& line : render_table(kColumns, rows)) lines.push_back(std::move(line));
}

void add_destinations(const Json& document, const StatusViewOptions& options,
                      std::vector<std::string>& lines) {
  const Json& destinations = document.at("destinations");
  const auto not_shown = document.value("destinations_not_shown", std::size_t{0});
  // What is left of the screen after the title and the column header; at least a few rows.
  constexpr std::size_t kTitles = 2;
  constexpr std::size_t kFewest = 3;
  std::size_t room = destinations.size();
  if (options.height > 0) {
    const std::size_t used = lines.size() + kTitles;
    room = std::min(room, options.height > used + kFewest ? options.height - used : kFewest);
  }
  const std::size_t hidden = destinations.size() - room + not_shown;
  lines.push_back(
      "DESTINATIONS, most stale half-open first" +
      (hidden > 0 ? " (" + people_number(static_cast<double>(hidden)) + " more)" : std::string()));
  if (destinations.empty()) {
    lines.emplace_back("No destination has half-open connections.");
    return;
  }
  static constexpr std::array<TableColumn, 9> kColumns = {{{"TARGET", false},
                                                           {"HALF-OPEN", true},
                                                           {"STALE", true},
                                                           {"SYN/s", true},
                                                           {"DONE", true},
                                                           {"SOURCES", true},
                                                           {"RANDOM", true},
                                                           {"INCIDENT", false},
                                                           {"TOP SOURCES (SYNs)", false}}};
  std::vector<std::vector<std::string>> rows;
  for (std::size_t i = 0; i < room; ++i) {
    const Json& d = destinations[i];
    const Json& incident = d.at("incident");
    rows.push_back({target_of(d), number(d.at("half_open")), number(d.at("stale")),
                    number(d.at("syn_rate")), ratio_percent(d.at("completion_ratio")),
                    "~" + number(d.at("distinct_sources")), ratio_percent(d.at("source_entropy")),
                    incident.is_string() ? incident.get<std::string>() : "-",
                    sources_of(d.at("top_sources"), options.top_sources)});
  }
  for (auto& line : render_table(kColumns, rows)) lines.push_back(std::move(line));
}

}  // namespace

Expected<std::vector<std::string>> render_status(const nlohmann::json& document,
                                                 const nlohmann::json* previous,
                                                 const StatusViewOptions& options) {
  std::vector<std::string> lines;
  try {
    if (document.value("version", 0) != 1) {
      return make_unexpected(ErrorKind::kInvalidInput,
                             "status document of an unknown version " +
                                 document.value("version", Json(nullptr)).dump() +
                                 " (synwatchd and this synwatchd top differ)");
    }
    lines.push_back(header_line(document, previous));
    lines.push_back(detail_line(document));
    lines.emplace_back();
    add_incidents(document, options, lines);
    lines.emplace_back();
    add_destinations(document, options, lines);
  } catch (const Json::exception& e) {
    return make_unexpected(ErrorKind::kInvalidInput,
                           std::string("status document not understood: ") + e.what());
  }
  if (options.width > 0) {
    for (auto& line : lines) {
      if (line.size() > options.width) line.resize(options.width);
    }
  }
  if (options.height > 0 && lines.size() > options.height) lines.resize(options.height);
  return lines;
}

}  // namespace synwatch
