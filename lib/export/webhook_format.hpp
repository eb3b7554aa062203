#pragma once
// Webhook request bodies and signatures. Bodies are rendered from the event's JSON object (the
// one export/event_json.hpp produces and the spool stores), so an event redelivered from the
// spool after a restart is sent exactly as it would have been.
// Thread safety: free functions without shared state.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/time.hpp"
#include "export/people_format.hpp"  // people_number, people_duration: used by the bodies

namespace synwatch {

enum class WebhookFormat : std::uint8_t { kJson, kAlertmanager, kSlack };

// "json", "alertmanager", "slack"; nullopt for anything else.
std::optional<WebhookFormat> parse_webhook_format(std::string_view name);

// What a body needs beyond the event.
struct WebhookRenderContext {
  std::string_view instance;       // this host's name: Alertmanager's `instance` label, Slack
  std::string_view generator_url;  // Alertmanager's generatorURL; empty: none
  TimestampNs now = 0;             // wall clock of the send, for a firing alert's endsAt
  DurationNs resend_interval = 60 * kNanosPerSecond;  // a firing alert's endsAt: 4 of these on
};

// The request body for `event` (an event_json object) in `format`: json the event itself;
// alertmanager an array of one alert (labels of the shipped SynFloodActive rule: alertname,
// address, port, kind, severity, instance); slack a Block Kit message.
std::string render_webhook_body(WebhookFormat format, const nlohmann::json& event,
                                const WebhookRenderContext& context);

// Several firing alerts in one Alertmanager body: the periodic re-send of what is open.
std::string render_alertmanager_alerts(const std::vector<nlohmann::json>& events,
                                       const WebhookRenderContext& context);

// What delivery needs to know of a spooled event, checked: the file may be damaged or written
// by someone else.
struct SpooledEventHead {
  std::string event;     // "started", "updated" or "ended"
  std::string event_id;  // printable ASCII without spaces, at most 128 bytes (it is a header)
};

// Checks a spooled event's JSON text for delivery in `format`: an object with the event type
// and a safe event_id, from which `format`'s body renders. Never throws; every failure is
// kInvalidInput.
Expected<SpooledEventHead> check_spooled_event(std::string_view json, WebhookFormat format,
                                               const WebhookRenderContext& context);

// A one-line human summary of an event, used by the slack format and Alertmanager's summary.
std::string summarize_event(const nlohmann::json& event);

// The URL actually posted to: for alertmanager, a URL without a path gets /api/v2/alerts.
std::string effective_webhook_url(WebhookFormat format, const std::string& url);

// Lowercase hex HMAC-SHA256 of "<timestamp>.<body>" keyed with `secret`: the value after
// "sha256=" in X-Synwatch-Signature. Signing the timestamp with the body lets a receiver reject
// replayed requests by their X-Synwatch-Timestamp.
std::string webhook_signature(std::string_view secret, std::int64_t timestamp,
                              std::string_view body);

}  // namespace synwatch
