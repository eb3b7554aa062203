#include "export/webhook_format.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>

namespace synwatch {

namespace {

std::string number(const nlohmann::json& value) {
  if (value.is_number_integer() || value.is_number_unsigned()) return value.dump();
  if (value.is_number_float()) {
    const double v = value.get<double>();
    char text[32];
    const int length = std::snprintf(text, sizeof text, v == std::floor(v) ? "%.0f" : "%.3g", v);
    // Whole numbers too large for the buffer (%.0f of 1e300) keep nlohmann's own spelling.
    if (length < 0 || static_cast<std::size_t>(length) >= sizeof text) return value.dump();
    return text;
  }
  return value.is_string() ? value.get<std::string>() : value.dump();
}

bool is_host_target(const nlohmann::json& event) {
  return event.at("target").at("port").is_null();
}

// "198.51.100.10:80", "[2001:db8::10]:443", or for a whole host "198.51.100.10 (all ports)".
std::string target_of(const nlohmann::json& event) {
  const std::string address = event.at("target").at("address").get<std::string>();
  if (is_host_target(event)) return address + " (all ports)";
  const std::string port = event.at("target").at("port").dump();
  return address.contains(':') ? "[" + address + "]:" + port : address + ":" + port;
}

std::string figures_of(const nlohmann::json& event) {
  const auto& stats = event.at("stats");
  return "stale=" + number(stats.at("stale")) + " baseline=" + number(stats.at("baseline")) +
         " stale_after_ms=" + number(stats.at("stale_after_ms")) +
         " half_open=" + number(stats.at("half_open")) +
         " peak_half_open=" + number(stats.at("peak_half_open")) +
         " syn_rate=" + number(stats.at("syn_rate")) +
         " distinct_sources=" + number(stats.at("distinct_sources")) +
         " source_entropy=" + number(stats.at("source_entropy")) +
         " completion_ratio=" + number(stats.at("completion_ratio"));
}

// "198.18.0.1 (3,120 SYNs), 198.18.0.2 (2,050 SYNs)", at most `most` of them; "" without any.
std::string top_sources_of(const nlohmann::json& event, std::size_t most) {
  std::string out;
  const auto found = event.find("top_sources");
  if (found == event.end() || !found->is_array()) return out;
  std::size_t listed = 0;
  for (const auto& source : *found) {
    if (listed++ == most) break;
    if (!out.empty()) out += ", ";
    out += source.at("address").get<std::string>() + " (" +
           people_number(source.at("syns").get<double>()) + " SYNs)";
  }
  return out;
}

TimestampNs parse_time(const nlohmann::json& value) {
  return value.is_string() ? parse_rfc3339(value.get<std::string>()).value_or(0) : 0;
}

// The evidence capture's path on the daemon's host; empty without one.
std::string evidence_of(const nlohmann::json& event) {
  const auto found = event.find("evidence");
  if (found == event.end() || !found->is_object()) return {};
  const auto path = found->find("path");
  return path != found->end() && path->is_string() ? path->get<std::string>() : std::string();
}

nlohmann::json alertmanager_alert(const nlohmann::json& event,
                                  const WebhookRenderContext& context) {
  const std::string top = top_sources_of(event, 5);
  nlohmann::json alert = {
      // The label set of the shipped Prometheus rule SynFloodActive, so that routes, inhibit
      // rules and silences written for one apply to the other.
      {"labels",
       {{"alertname", "SynFloodActive"},
        {"address", event.at("target").at("address")},
        // A whole host has no port: "all", so the label stays a string and groups apart.
        {"port", is_host_target(event) ? "all" : event.at("target").at("port").dump()},
        {"kind", event.at("kind")},
        {"severity", "critical"},
        {"instance", std::string(context.instance)}}},
      {"annotations",
       {{"summary", summarize_event(event)},
        {"description", event.at("reason").get<std::string>() + "\n" + figures_of(event)},
        {"top_sources", top.empty() ? "none recorded" : top},
        {"incident_id", event.at("incident_id")},
        {"event_id", event.at("event_id")}}},
      {"startsAt", event.at("started_at")},
  };
  if (const std::string evidence = evidence_of(event); !evidence.empty()) {
    alert["annotations"]["evidence"] = evidence;
  }
  if (!context.generator_url.empty()) alert["generatorURL"] = std::string(context.generator_url);
  if (event.contains("ended_at")) {
    alert["endsAt"] = event.at("ended_at");  // in the past: resolves the alert
  } else {
    // Firing until told otherwise: the dispatcher sends it again every resend_interval, and if
    // that stops (the daemon died for good) Alertmanager resolves it four intervals later.
    alert["endsAt"] = format_rfc3339(context.now + 4 * context.resend_interval);
  }
  return alert;
}

// Block Kit in a coloured attachment (the colour bar needs one): a header, the figures as
// fields, the reason and ids as context; `text` is the notification's plain fallback.
nlohmann::json slack_message(const nlohmann::json& event, std::string_view instance) {
  const std::string type = event.at("event").get<std::string>();
  const auto& stats = event.at("stats");
  const std::string target = target_of(event);
  std::string header = (type == "started"   ? "SYN flood on "
                        : type == "updated" ? "SYN flood still on "
                                            : "SYN flood ended on ") +
                       target;
  if (type == "ended") {
    const TimestampNs lasted =
        parse_time(event.value("ended_at", nlohmann::json())) - parse_time(event.at("started_at"));
    header += " after " + people_duration(lasted);
  }
  auto field = [](std::string_view title, const std::string& value) {
    return nlohmann::json{{"type", "mrkdwn"}, {"text", "*" + std::string(title) + "*\n" + value}};
  };
  nlohmann::json fields = nlohmann::json::array(
      {field("Target", target), field("Kind", event.at("kind").get<std::string>()),
       field("Half-open", people_number(stats.at("half_open").get<double>()) + " (" +
                              people_number(stats.at("stale").get<double>()) + " stale, peak " +
                              people_number(stats.at("peak_half_open").get<double>()) + ")"),
       field("SYN rate", people_number(stats.at("syn_rate").get<double>()) + " SYN/s"),
       field("Distinct sources", "~" + people_number(stats.at("distinct_sources").get<double>()))});
  if (const std::string top = top_sources_of(event, 5); !top.empty()) {
    fields.push_back(field("Top sources", top));
  }
  if (const std::string evidence = evidence_of(event); !evidence.empty()) {
    fields.push_back(field("Evidence", "`" + std::string(instance) + ":" + evidence + "`"));
  }
  std::string context = event.at("reason").get<std::string>();
  if (context.size() > 2800) context.resize(2800);  // Slack's limit for a text is 3000
  context +=
      " · incident " + event.at("incident_id").get<std::string>() + " on " + std::string(instance);
  const char* colour = type == "started" ? "#d0021b" : type == "updated" ? "#f5a623" : "#2eb886";
  return {
      {"text", summarize_event(event)},
      {"attachments",
       nlohmann::json::array(
           {{{"color", colour},
             {"blocks", nlohmann::json::array(
                            {{{"type", "header"},
                              {"text", {{"type", "plain_text"}, {"text", header.substr(0, 150)}}}},
                             {{"type", "section"}, {"fields", fields}},
                             {{"type", "context"},
                              {"elements", nlohmann::json::array(
                                               {{{"type", "mrkdwn"}, {"text", context}}})}}})}}})},
  };
}

}  // namespace

std::optional<WebhookFormat> parse_webhook_format(std::string_view name) {
  if (name == "json") return WebhookFormat::kJson;
  if (name == "alertmanager") return WebhookFormat::kAlertmanager;
  if (name == "slack") return WebhookFormat::kSlack;
  return std::nullopt;
}

std::string summarize_event(const nlohmann::json& event) {
  const std::string type = event.at("event").get<std::string>();
  const std::string what = type == "started"   ? "SYN flood started"
                           : type == "updated" ? "SYN flood ongoing"
                                               : "SYN flood ended";
  const auto& stats = event.at("stats");
  std::string text = what + " on " + target_of(event) + " (" + event.at("kind").get<std::string>() +
                     "): " + people_number(stats.at("stale").get<double>()) + " stale half-open, " +
                     people_number(stats.at("half_open").get<double>()) + " half-open, peak " +
                     people_number(stats.at("peak_half_open").get<double>()) + ", " +
                     people_number(stats.at("syn_rate").get<double>()) + " SYN/s from ~" +
                     people_number(stats.at("distinct_sources").get<double>()) + " sources";
  if (type == "ended" && event.contains("ended_at")) {
    text += ", ended at " + event.at("ended_at").get<std::string>();
  }
  return text;
}

std::string render_webhook_body(WebhookFormat format, const nlohmann::json& event,
                                const WebhookRenderContext& context) {
  switch (format) {
    case WebhookFormat::kJson:
      return event.dump();
    case WebhookFormat::kAlertmanager:
      return nlohmann::json::array({alertmanager_alert(event, context)}).dump();
    case WebhookFormat::kSlack:
      return slack_message(event, context.instance).dump();
  }
  return event.dump();
}

std::string render_alertmanager_alerts(const std::vector<nlohmann::json>& events,
                                       const WebhookRenderContext& context) {
  nlohmann::json alerts = nlohmann::json::array();
  for (const auto& event : events) alerts.push_back(alertmanager_alert(event, context));
  return alerts.dump();
}

Expected<SpooledEventHead> check_spooled_event(std::string_view json, WebhookFormat format,
                                               const WebhookRenderContext& context) {
  const auto event = nlohmann::json::parse(json, nullptr, false);
  if (!event.is_object()) return make_unexpected(ErrorKind::kInvalidInput, "not a JSON object");
  const auto type = event.find("event");
  if (type == event.end() || !type->is_string()) {
    return make_unexpected(ErrorKind::kInvalidInput, "no \"event\" string");
  }
  SpooledEventHead head;
  head.event = type->get<std::string>();
  if (head.event != "started" && head.event != "updated" && head.event != "ended") {
    return make_unexpected(ErrorKind::kInvalidInput,
                           "unknown event '" + head.event.substr(0, 32) + "'");
  }
  const auto id = event.find("event_id");
  if (id == event.end() || !id->is_string()) {
    return make_unexpected(ErrorKind::kInvalidInput, "no \"event_id\" string");
  }
  head.event_id = id->get<std::string>();
  const bool safe_id =
      !head.event_id.empty() && head.event_id.size() <= 128 &&
      std::ranges::all_of(head.event_id, [](char c) { return c > ' ' && c < 0x7f; });
  if (!safe_id) {
    return make_unexpected(ErrorKind::kInvalidInput,
                           "event_id is empty, too long or has spaces or control characters");
  }
  if (format != WebhookFormat::kJson) {
    try {
      (void)render_webhook_body(format, event, context);
    } catch (const nlohmann::json::exception& e) {
      return make_unexpected(ErrorKind::kInvalidInput,
                             std::string("cannot render it: ") + e.what());
    }
  }
  return head;
}

std::string effective_webhook_url(WebhookFormat format, const std::string& url) {
  if (format != WebhookFormat::kAlertmanager) return url;
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  const auto path_start = url.find_first_of("/?#", scheme_end + 3);
  if (path_start == std::string::npos) return url + "/api/v2/alerts";
  if (url.compare(path_start, std::string::npos, "/") == 0) return url + "api/v2/alerts";
  return url;
}

std::string webhook_signature(std::string_view secret, std::int64_t timestamp,
                              std::string_view body) {
  const std::string message = std::to_string(timestamp) + "." + std::string(body);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest.data(),
       &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(std::size_t{length} * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

}  // namespace synwatch
