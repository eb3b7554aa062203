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

nlohmann::json alertmanager_alert(const nlohmann::json& event, std::string_view instance) {
  nlohmann::json alert = {
      {"labels",
       {{"alertname", "SynFlood"},
        {"target_address", event.at("target").at("address")},
        // A whole host has no port: "all", so the label stays a string and groups apart.
        {"target_port", is_host_target(event) ? "all" : event.at("target").at("port").dump()},
        {"kind", event.at("kind")},
        {"instance", std::string(instance)}}},
      {"annotations",
       {{"summary", summarize_event(event)},
        {"reason", event.at("reason")},
        {"figures", figures_of(event)},
        {"incident_id", event.at("incident_id")},
        {"event_id", event.at("event_id")}}},
      {"startsAt", event.at("started_at")},
  };
  // An ended event carries endsAt in the past, which resolves the alert. Without endsAt,
  // Alertmanager keeps it active for its resolve_timeout, refreshed by every updated event.
  if (event.contains("ended_at")) alert["endsAt"] = event.at("ended_at");
  return nlohmann::json::array({alert});
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
                     "): " + number(stats.at("stale")) + " stale half-open, " +
                     number(stats.at("half_open")) + " half-open, peak " +
                     number(stats.at("peak_half_open")) + ", " + number(stats.at("syn_rate")) +
                     " SYN/s from ~" + number(stats.at("distinct_sources")) + " sources";
  if (type == "ended" && event.contains("ended_at")) {
    text += ", ended at " + event.at("ended_at").get<std::string>();
  }
  return text;
}

std::string render_webhook_body(WebhookFormat format, const nlohmann::json& event,
                                std::string_view instance) {
  switch (format) {
    case WebhookFormat::kJson:
      return event.dump();
    case WebhookFormat::kAlertmanager:
      return alertmanager_alert(event, instance).dump();
    case WebhookFormat::kSlack: {
      const std::string text = summarize_event(event) + "\n" +
                               event.at("reason").get<std::string>() + "\nincident " +
                               event.at("incident_id").get<std::string>();
      return nlohmann::json{{"text", text}}.dump();
    }
  }
  return event.dump();
}

std::expected<SpooledEventHead, std::string> check_spooled_event(std::string_view json,
                                                                 WebhookFormat format,
                                                                 std::string_view instance) {
  const auto event = nlohmann::json::parse(json, nullptr, false);
  if (!event.is_object()) return std::unexpected("not a JSON object");
  const auto type = event.find("event");
  if (type == event.end() || !type->is_string()) return std::unexpected("no \"event\" string");
  SpooledEventHead head;
  head.event = type->get<std::string>();
  if (head.event != "started" && head.event != "updated" && head.event != "ended") {
    return std::unexpected("unknown event '" + head.event.substr(0, 32) + "'");
  }
  const auto id = event.find("event_id");
  if (id == event.end() || !id->is_string()) return std::unexpected("no \"event_id\" string");
  head.event_id = id->get<std::string>();
  const bool safe_id =
      !head.event_id.empty() && head.event_id.size() <= 128 &&
      std::ranges::all_of(head.event_id, [](char c) { return c > ' ' && c < 0x7f; });
  if (!safe_id) {
    return std::unexpected("event_id is empty, too long or has spaces or control characters");
  }
  if (format != WebhookFormat::kJson) {
    try {
      (void)render_webhook_body(format, event, instance);
    } catch (const nlohmann::json::exception& e) {
      return std::unexpected(std::string("cannot render it: ") + e.what());
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
