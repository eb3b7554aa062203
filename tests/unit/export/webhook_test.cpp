// Webhook bodies, signatures and the dispatcher against real HTTP servers on 127.0.0.1.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "export/event_json.hpp"
#include "export/webhook.hpp"
#include "export/webhook_format.hpp"
#include "config/loader.hpp"
#include "../common/error_printer.hpp"
#include "temp_dir.hpp"
#include "webhook_test_server.hpp"

namespace synwatch {
namespace {

using namespace std::chrono_literals;
using testing::HttpRequest;
using testing::TestHttpServer;

using testing::TempDir;

IncidentEvent make_event(EventType type, std::uint32_t sequence,
                         const std::string& incident = "abc") {
  IncidentEvent event;
  event.type = type;
  event.incident_id = incident;
  event.sequence = sequence;
  event.event_id = incident + "-" + std::to_string(sequence);
  event.target = {*IpAddress::parse("198.51.100.10"), 80};
  event.kind = AttackKind::kSpoofedRandom;
  event.started_at = 1'704'067'200'000'000'000;  // 2024-01-01T00:00:00Z
  event.time = event.started_at + sequence * kNanosPerSecond;
  event.stats.half_open = 1000 + sequence;
  event.stats.peak_half_open = 2000;
  event.stats.syn_rate = 20000;
  event.stats.distinct_sources = 9000;
  event.reason = "test reason " + std::to_string(sequence);
  event.top_sources = {{*IpAddress::parse("198.18.0.7"), 1234},
                       {*IpAddress::parse("198.18.0.9"), 5}};
  if (type == EventType::kEnded) event.ended_at = event.time;
  return event;
}

WebhookConfig receiver(const std::string& name, const std::string& url) {
  WebhookConfig webhook;
  webhook.name = name;
  webhook.url = url;
  webhook.timeout = 2 * kNanosPerSecond;
  webhook.backoff = 20 * kNanosPerMilli;
  webhook.max_backoff = 100 * kNanosPerMilli;
  webhook.max_retries = 1000;
  return webhook;
}

Config config_with(const TempDir& dir, std::vector<WebhookConfig> webhooks) {
  Config config;
  config.state_dir = dir.path().string();
  config.alerts.webhooks = std::move(webhooks);
  return config;
}

std::unique_ptr<WebhookDispatcher> make_dispatcher(const Config& config) {
  auto created = WebhookDispatcher::create(
      config, {.spool_owner = "", .instance = "test-host", .generator_url = ""});
  EXPECT_TRUE(created) << (created ? "" : created.error().message);
  return created ? std::move(*created) : nullptr;
}

std::vector<std::string> event_ids(const std::vector<HttpRequest>& requests) {
  std::vector<std::string> ids;
  ids.reserve(requests.size());
  for (const auto& r : requests) ids.push_back(nlohmann::json::parse(r.body).at("event_id"));
  return ids;
}

// ---- formats and signature -----------------------------------------------------------------

TEST(WebhookSignature, MatchesOpenSslCommandLine) {
  // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
  EXPECT_EQ(webhook_signature("secret", 1700000000, R"({"a":1})"),
            "49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686");
  EXPECT_NE(webhook_signature("secret", 1700000001, R"({"a":1})"),
            webhook_signature("secret", 1700000000, R"({"a":1})"));
}

WebhookRenderContext context_at(TimestampNs now) {
  WebhookRenderContext context;
  context.instance = "host1";
  context.generator_url = "http://host1:9474/metrics";
  context.now = now;
  context.resend_interval = 60 * kNanosPerSecond;
  return context;
}

TEST(WebhookFormat, JsonIsTheEventObjectUnchanged) {
  const auto event = make_event(EventType::kStarted, 0);
  EXPECT_EQ(render_webhook_body(WebhookFormat::kJson, to_json(event), context_at(0)),
            to_json(event).dump());
}

TEST(WebhookFormat, AlertmanagerSharesTheRulesLabelsAndFiresUntilEndsAt) {
  const TimestampNs sent = 1'800'000'000 * kNanosPerSecond;
  const auto started = nlohmann::json::parse(render_webhook_body(
      WebhookFormat::kAlertmanager, to_json(make_event(EventType::kStarted, 0)), context_at(sent)));
  ASSERT_TRUE(started.is_array());
  ASSERT_EQ(started.size(), 1u);
  const auto& alert = started[0];
  // The label set of the shipped Prometheus rule SynFloodActive (config/prometheus).
  EXPECT_EQ(alert["labels"], (nlohmann::json{{"alertname", "SynFloodActive"},
                                             {"address", "198.51.100.10"},
                                             {"port", "80"},
                                             {"kind", "spoofed_random"},
                                             {"severity", "critical"},
                                             {"instance", "host1"}}));
  EXPECT_EQ(alert["startsAt"], "2024-01-01T00:00:00.000Z");
  // Firing: endsAt four resend intervals after the send, so that Alertmanager keeps it while
  // the re-sends come and resolves it if they stop.
  EXPECT_EQ(alert["endsAt"], format_rfc3339(sent + 240 * kNanosPerSecond));
  EXPECT_EQ(alert["generatorURL"], "http://host1:9474/metrics");
  const std::string summary = alert["annotations"]["summary"];
  EXPECT_NE(summary.find("198.51.100.10:80"), std::string::npos) << summary;
  EXPECT_NE(summary.find("20,000 SYN/s from ~9,000 sources"), std::string::npos) << summary;
  EXPECT_NE(alert["annotations"]["description"].get<std::string>().find("test reason 0"),
            std::string::npos);
  EXPECT_NE(alert["annotations"]["description"].get<std::string>().find("half_open=1000"),
            std::string::npos);
  EXPECT_EQ(alert["annotations"]["top_sources"], "198.18.0.7 (1,234 SYNs), 198.18.0.9 (5 SYNs)");

  const auto ended = nlohmann::json::parse(render_webhook_body(
      WebhookFormat::kAlertmanager, to_json(make_event(EventType::kEnded, 3)), context_at(sent)));
  EXPECT_EQ(ended[0]["endsAt"], "2024-01-01T00:00:03.000Z");
  EXPECT_EQ(ended[0]["labels"], alert["labels"]);

  const auto both = nlohmann::json::parse(
      render_alertmanager_alerts({to_json(make_event(EventType::kUpdated, 1)),
                                  to_json(make_event(EventType::kUpdated, 1, "x"))},
                                 context_at(sent)));
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[1]["annotations"]["incident_id"], "x");
}

TEST(WebhookFormat, SlackIsABlockKitMessageWithNumbersForPeople) {
  const auto body = nlohmann::json::parse(render_webhook_body(
      WebhookFormat::kSlack, to_json(make_event(EventType::kStarted, 0)), context_at(0)));
  const std::string text = body.at("text");
  EXPECT_NE(text.find("SYN flood started on 198.51.100.10:80 (spoofed_random)"), std::string::npos)
      << text;
  const auto& attachment = body.at("attachments").at(0);
  EXPECT_EQ(attachment.at("color"), "#d0021b");
  const auto& blocks = attachment.at("blocks");
  EXPECT_EQ(blocks.at(0).at("type"), "header");
  EXPECT_EQ(blocks.at(0).at("text").at("text"), "SYN flood on 198.51.100.10:80");
  const std::string fields = blocks.at(1).at("fields").dump();
  for (const char* expected :
       {"*Target*\\n198.51.100.10:80", "*Kind*\\nspoofed_random",
        "*Half-open*\\n1,000 (0 stale, peak 2,000)", "*SYN rate*\\n20,000 SYN/s",
        "*Distinct sources*\\n~9,000", "198.18.0.7 (1,234 SYNs)"}) {
    EXPECT_NE(fields.find(expected), std::string::npos) << expected << " in " << fields;
  }
  EXPECT_NE(blocks.at(2).dump().find("test reason 0"), std::string::npos);

  const auto ended = nlohmann::json::parse(render_webhook_body(
      WebhookFormat::kSlack, to_json(make_event(EventType::kEnded, 75)), context_at(0)));
  EXPECT_EQ(ended["attachments"][0]["color"], "#2eb886");
  EXPECT_EQ(ended["attachments"][0]["blocks"][0]["text"]["text"],
            "SYN flood ended on 198.51.100.10:80 after 1 min 15 s");
}

TEST(WebhookFormat, AlertmanagerAndSlackSayWhereTheEvidenceIs) {
  auto event = to_json(make_event(EventType::kStarted, 0));
  const auto without = nlohmann::json::parse(
      render_webhook_body(WebhookFormat::kAlertmanager, event, context_at(0)));
  EXPECT_FALSE(without[0]["annotations"].contains("evidence"));
  event["evidence"] = {{"path", "/var/lib/synwatch/evidence/x.pcap"}};
  const auto alert = nlohmann::json::parse(
      render_webhook_body(WebhookFormat::kAlertmanager, event, context_at(0)));
  EXPECT_EQ(alert[0]["annotations"]["evidence"], "/var/lib/synwatch/evidence/x.pcap");
  const auto slack =
      nlohmann::json::parse(render_webhook_body(WebhookFormat::kSlack, event, context_at(0)));
  const std::string fields = slack["attachments"][0]["blocks"][1]["fields"].dump();
  EXPECT_NE(fields.find("*Evidence*\\n`host1:/var/lib/synwatch/evidence/x.pcap`"),
            std::string::npos)
      << fields;
}

TEST(WebhookFormat, NumbersAndDurationsForPeople) {
  EXPECT_EQ(people_number(0), "0");
  EXPECT_EQ(people_number(999), "999");
  EXPECT_EQ(people_number(1800), "1,800");
  EXPECT_EQ(people_number(1234567.4), "1,234,567");
  EXPECT_EQ(people_number(-12400), "-12,400");
  EXPECT_EQ(people_duration(1'200'000'000), "1.2 s");
  EXPECT_EQ(people_duration(42 * kNanosPerSecond), "42 s");
  EXPECT_EQ(people_duration(200 * kNanosPerSecond), "3 min 20 s");
  EXPECT_EQ(people_duration(7500 * kNanosPerSecond), "2 h 5 min");
}

TEST(WebhookFormat, ASpooledEventIsCheckedBeforeDeliveryAndADamagedOneIsInvalidInput) {
  const auto good = check_spooled_event(R"({"event":"started","event_id":"e-1"})",
                                        WebhookFormat::kJson, context_at(0));
  ASSERT_TRUE(good) << good.error().message;
  EXPECT_EQ(good->event, "started");
  EXPECT_EQ(good->event_id, "e-1");
  const std::pair<std::string, std::string> damaged[] = {
      {"not json", "not a JSON object"},
      {R"(["started"])", "not a JSON object"},
      {R"({"event_id":"e-1"})", "no \"event\" string"},
      {R"({"event":"begun","event_id":"e-1"})", "unknown event 'begun'"},
      {R"({"event":"started"})", "no \"event_id\" string"},
      {R"({"event":"started","event_id":"a b"})",
       "event_id is empty, too long or has spaces or control characters"},
  };
  for (const auto& [json, message] : damaged) {
    const auto checked = check_spooled_event(json, WebhookFormat::kJson, context_at(0));
    ASSERT_FALSE(checked) << json;
    EXPECT_EQ(checked.error().kind, ErrorKind::kInvalidInput) << json;
    EXPECT_EQ(checked.error().message, message) << json;
  }
  // Valid for json, but the alertmanager body cannot be made from it.
  const auto unrenderable =
      check_spooled_event(R"({"event":"started","event_id":"e-1","address":5})",
                          WebhookFormat::kAlertmanager, context_at(0));
  ASSERT_FALSE(unrenderable);
  EXPECT_EQ(unrenderable.error().kind, ErrorKind::kInvalidInput);
  EXPECT_TRUE(unrenderable.error().message.starts_with("cannot render it: "))
      << unrenderable.error().message;
}

TEST(WebhookConfigDefaults, ChatReceiversGetStartedAndEndedOnly) {
  const auto config = load_config_text(
      "alerts:\n  webhooks:\n    - name: chat\n      url: http://127.0.0.1:9/\n      format: "
      "slack\n    - name: all\n      url: http://127.0.0.1:9/\n      format: slack\n      "
      "events: [started, updated, ended]\n",
      "t.yaml");
  ASSERT_TRUE(config) << config.error().front().to_string();
  EXPECT_EQ(config->alerts.webhooks[0].events, (std::vector<std::string>{"started", "ended"}));
  EXPECT_EQ(config->alerts.webhooks[1].events.size(), 3u);
}

TEST(WebhookFormat, AlertmanagerUrlGetsTheApiPathWhenItHasNone) {
  EXPECT_EQ(effective_webhook_url(WebhookFormat::kAlertmanager, "http://am:9093"),
            "http://am:9093/api/v2/alerts");
  EXPECT_EQ(effective_webhook_url(WebhookFormat::kAlertmanager, "http://am:9093/"),
            "http://am:9093/api/v2/alerts");
  EXPECT_EQ(effective_webhook_url(WebhookFormat::kAlertmanager, "http://am/x/api/v2/alerts"),
            "http://am/x/api/v2/alerts");
  EXPECT_EQ(effective_webhook_url(WebhookFormat::kJson, "http://h"), "http://h");
}

// ---- dispatcher ------------------------------------------------------------------------------

TEST(WebhookDispatcher, PostsSignedBodyWithTimestampAndHeaders) {
  TempDir dir;
  TestHttpServer server;
  ASSERT_TRUE(server.ok());
  const auto secret_path = dir.path() / "secret";
  std::ofstream(secret_path) << "s3cret\n";
  ::chmod(secret_path.c_str(), 0600);
  auto webhook = receiver("signed", server.url("/hook"));
  webhook.secret_file = secret_path.string();
  webhook.headers = {{"Authorization", "Bearer token"}};
  webhook.events = {"started", "ended"};
  auto dispatcher = make_dispatcher(config_with(dir, {webhook}));
  ASSERT_NE(dispatcher, nullptr);
  dispatcher->start();
  const auto started = make_event(EventType::kStarted, 0);
  dispatcher->publish(started);
  dispatcher->publish(make_event(EventType::kUpdated, 1));  // not wanted by this receiver
  dispatcher->publish(make_event(EventType::kEnded, 2));
  ASSERT_TRUE(dispatcher->flush(10s));

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  const auto& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/hook");
  EXPECT_EQ(r.body, to_json(started).dump());
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("authorization"), "Bearer token");
  EXPECT_EQ(r.header("x-synwatch-event-id"), "abc-0");
  const long long timestamp = std::stoll(r.header("x-synwatch-timestamp"));
  EXPECT_LE(std::llabs(timestamp - static_cast<long long>(std::time(nullptr))), 60);
  EXPECT_EQ(r.header("x-synwatch-signature"),
            "sha256=" + webhook_signature("s3cret", timestamp, r.body));
  EXPECT_NE(r.header("x-synwatch-signature"),
            "sha256=" + webhook_signature("other", timestamp, r.body));
  EXPECT_EQ(event_ids(requests), (std::vector<std::string>{"abc-0", "abc-2"}));

  const auto stats = dispatcher->stats();
  ASSERT_EQ(stats.receivers.size(), 1u);
  EXPECT_EQ(stats.receivers[0].delivered, 2u);
  EXPECT_EQ(stats.spooled(), 0u);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "webhooks" / "signed"));
}

TEST(WebhookDispatcher, DownThen500sThenRecoveringDeliversEveryEventInOrderOnce) {
  TempDir dir;
  const std::uint16_t port = testing::unused_port();
  auto dispatcher = make_dispatcher(
      config_with(dir, {receiver("flaky", "http://127.0.0.1:" + std::to_string(port) + "/")}));
  ASSERT_NE(dispatcher, nullptr);
  dispatcher->start();
  std::vector<std::string> expected;
  for (std::uint32_t i = 0; i < 6; ++i) {
    const auto type = i == 0   ? EventType::kStarted
                      : i == 5 ? EventType::kEnded
                               : EventType::kUpdated;
    dispatcher->publish(make_event(type, i));
    expected.push_back("abc-" + std::to_string(i));
  }
  // Down: connection refused, retried with backoff.
  for (int i = 0; i < 200 && dispatcher->stats().receivers[0].failures[0] < 3; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_GE(dispatcher->stats().receivers[0].failures[static_cast<int>(WebhookFailure::kConnect)],
            3u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path() / "webhooks" / "flaky"),
                          std::filesystem::directory_iterator()),
            6);

  // Up, but failing: every third request succeeds until 8 failures, then all succeed.
  std::atomic<int> calls{0};
  TestHttpServer server(
      [&](const HttpRequest&) {
        const int n = calls++;
        return n < 12 && n % 3 != 2 ? 500 : 200;
      },
      port);
  ASSERT_TRUE(server.ok()) << "port " << port << " was taken meanwhile";
  ASSERT_TRUE(dispatcher->flush(20s));

  EXPECT_EQ(event_ids(server.accepted()), expected);
  std::vector<std::string> deduped;
  std::set<std::string> seen;
  for (const auto& id : event_ids(server.requests())) {
    if (seen.insert(id).second) deduped.push_back(id);
  }
  EXPECT_EQ(deduped, expected);
  const auto stats = dispatcher->stats().receivers[0];
  EXPECT_EQ(stats.delivered, 6u);
  EXPECT_EQ(stats.failures[static_cast<int>(WebhookFailure::kHttp5xx)], 8u);
  EXPECT_EQ(stats.given_up, 0u);
}

TEST(WebhookDispatcher, SpooledEventsAreRedeliveredByTheNextDispatcherInOrder) {
  TempDir dir;
  const std::uint16_t port = testing::unused_port();
  const auto url = "http://127.0.0.1:" + std::to_string(port) + "/";
  {
    auto first = make_dispatcher(config_with(dir, {receiver("r", url)}));
    first->start();
    for (std::uint32_t i = 0; i < 3; ++i) {
      first->publish(make_event(i == 0 ? EventType::kStarted : EventType::kUpdated, i));
    }
    EXPECT_FALSE(first->flush(100ms));
    first->stop();
  }
  TestHttpServer server({}, port);
  ASSERT_TRUE(server.ok());
  auto second = make_dispatcher(config_with(dir, {receiver("r", url)}));
  second->publish(make_event(EventType::kEnded, 3));  // published before start: after the spool
  second->start();
  ASSERT_TRUE(second->flush(10s));
  EXPECT_EQ(event_ids(server.requests()),
            (std::vector<std::string>{"abc-0", "abc-1", "abc-2", "abc-3"}));
}

TEST(WebhookDispatcher, DamagedOrHostileSpoolEntriesAreRemovedAndTheRestDelivered) {
  // A numeric event_id once threw at every start (exit 70, file kept: the daemon never started
  // again); a CR/LF in an id would become a header line of its own.
  TempDir dir;
  TestHttpServer server;
  ASSERT_TRUE(server.ok());
  auto json_receiver = receiver("r", server.url());
  auto slack_receiver = receiver("s", server.url());
  slack_receiver.format = "slack";
  const auto good = to_json(make_event(EventType::kStarted, 7)).dump();
  const std::vector<std::string> entries = {
      R"({"event":"started","event_id":12345})",
      R"({"event":"started"})",
      R"({"event":"begun","event_id":"x-1"})",
      R"({"event":"started","event_id":"x-1\r\nX-Injected: yes"})",
      R"({"event":"started","event_id":"x-2"})",  // too little for a Slack message
      "[1,2,3]",
      "{not json",
      good,
  };
  for (const char* name : {"r", "s"}) {
    const auto spool = dir.path() / "webhooks" / name;
    std::filesystem::create_directories(spool);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      char file[32];
      (void)std::snprintf(file, sizeof file, "%020zu.json", i);
      std::ofstream(spool / file) << entries[i] << "\n";
    }
  }
  auto dispatcher = make_dispatcher(config_with(dir, {json_receiver, slack_receiver}));
  dispatcher->start();
  ASSERT_TRUE(dispatcher->flush(10s));
  const auto requests = server.requests();
  // The JSON receiver gets the well-formed x-2 and the good event; Slack only the good one.
  std::multiset<std::string> ids;
  for (const auto& request : requests) {
    ids.insert(request.headers.at("x-synwatch-event-id"));
    EXPECT_EQ(request.headers.count("x-injected"), 0u);
  }
  EXPECT_EQ(ids, (std::multiset<std::string>{"abc-7", "abc-7", "x-2"}));
  for (const char* name : {"r", "s"}) {
    EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "webhooks" / name)) << name;
  }
}

TEST(WebhookDispatcher, AHugeResponseBodyIsNotReadInFull) {
  TempDir dir;
  TestHttpServer server([](const HttpRequest&) { return 200; });
  ASSERT_TRUE(server.ok());
  server.set_response_body(std::string(std::size_t{64} << 20, 'x'));
  auto dispatcher = make_dispatcher(config_with(dir, {receiver("r", server.url())}));
  dispatcher->start();
  dispatcher->publish(make_event(EventType::kStarted, 0));
  ASSERT_TRUE(dispatcher->flush(10s));
  const auto stats = dispatcher->stats().receivers[0];
  EXPECT_EQ(stats.delivered, 1u);
  EXPECT_LT(server.body_bytes_sent(), std::size_t{24} << 20);  // socket buffers at most
}

TEST(WebhookDispatcher, FullSpoolDropsOldestUpdatedFirstAndCountsDrops) {
  TempDir dir;
  const std::uint16_t port = testing::unused_port();
  auto config = config_with(dir, {receiver("r", "http://127.0.0.1:" + std::to_string(port) + "/")});
  config.alerts.spool_max_events = 3;
  auto dispatcher = make_dispatcher(config);
  // Not started: nothing is in flight, so the policy alone decides.
  dispatcher->publish(make_event(EventType::kStarted, 0));
  dispatcher->publish(make_event(EventType::kUpdated, 1));
  dispatcher->publish(make_event(EventType::kUpdated, 2));
  dispatcher->publish(make_event(EventType::kUpdated, 3));         // drops abc-1
  dispatcher->publish(make_event(EventType::kEnded, 4));           // drops abc-2
  dispatcher->publish(make_event(EventType::kStarted, 0, "def"));  // drops abc-3
  dispatcher->publish(make_event(EventType::kEnded, 1, "def"));    // drops abc-0 (oldest)
  EXPECT_EQ(dispatcher->stats().receivers[0].dropped, 4u);
  EXPECT_EQ(dispatcher->stats().receivers[0].queue_depth, 3u);
  TestHttpServer server({}, port);
  ASSERT_TRUE(server.ok());
  dispatcher->start();
  ASSERT_TRUE(dispatcher->flush(10s));
  EXPECT_EQ(event_ids(server.requests()), (std::vector<std::string>{"abc-4", "def-0", "def-1"}));
}

TEST(WebhookDispatcher, AlertmanagerReceiversGetFiringAlertsAgainUntilTheyEnd) {
  TempDir dir;
  TestHttpServer server;
  ASSERT_TRUE(server.ok());
  auto webhook = receiver("am", server.url());
  webhook.format = "alertmanager";
  webhook.events = {"started", "ended"};  // the re-sends carry the open incidents anyway
  webhook.resend_interval = 200 * kNanosPerMilli;
  auto dispatcher = make_dispatcher(config_with(dir, {webhook}));
  dispatcher->start();
  dispatcher->publish(make_event(EventType::kStarted, 0));
  dispatcher->publish(make_event(EventType::kUpdated, 1));  // not wanted, but the latest state
  ASSERT_TRUE(server.wait_for_requests(4, 5s));
  const auto requests = server.requests();
  EXPECT_EQ(requests[0].header("x-synwatch-event"), "started");
  const auto now = std::chrono::system_clock::now();
  for (std::size_t i = 1; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i].header("x-synwatch-event"), "refresh");
    EXPECT_EQ(requests[i].header("x-synwatch-event-id"), "");
    const auto alerts = nlohmann::json::parse(requests[i].body);
    ASSERT_EQ(alerts.size(), 1u);
    EXPECT_EQ(alerts[0]["annotations"]["event_id"], "abc-1") << "the latest event's figures";
    const auto ends = parse_rfc3339(alerts[0]["endsAt"].get<std::string>());
    ASSERT_TRUE(ends);
    EXPECT_GT(*ends,
              std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count());
  }
  dispatcher->publish(make_event(EventType::kEnded, 2));
  ASSERT_TRUE(dispatcher->flush(5s));
  const std::size_t after_end = server.requests().size();
  EXPECT_EQ(server.requests().back().header("x-synwatch-event"), "ended");
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(server.requests().size(), after_end) << "nothing firing: no more re-sends";
}

TEST(WebhookDispatcher, GivesUpAfterMaxRetries) {
  TempDir dir;
  TestHttpServer server([](const HttpRequest&) { return 400; });
  auto webhook = receiver("r", server.url());
  webhook.max_retries = 2;
  auto dispatcher = make_dispatcher(config_with(dir, {webhook}));
  dispatcher->start();
  dispatcher->publish(make_event(EventType::kStarted, 0));
  ASSERT_TRUE(dispatcher->flush(10s));
  EXPECT_EQ(server.requests().size(), 3u);
  const auto stats = dispatcher->stats().receivers[0];
  EXPECT_EQ(stats.given_up, 1u);
  EXPECT_EQ(stats.failures[static_cast<int>(WebhookFailure::kHttp4xx)], 3u);
}

TEST(WebhookDispatcher, SlowReceiverDelaysNeitherPublishNorOtherReceivers) {
  TempDir dir;
  TestHttpServer slow([](const HttpRequest&) {
    std::this_thread::sleep_for(1500ms);
    return 200;
  });
  TestHttpServer fast;
  auto slow_hook = receiver("slow", slow.url());
  slow_hook.timeout = 300 * kNanosPerMilli;
  slow_hook.max_retries = 1;
  auto dispatcher = make_dispatcher(config_with(dir, {slow_hook, receiver("fast", fast.url())}));
  dispatcher->start();
  const auto begin = std::chrono::steady_clock::now();
  for (std::uint32_t i = 0; i < 5; ++i) {
    dispatcher->publish(make_event(i == 0 ? EventType::kStarted : EventType::kUpdated, i));
  }
  const auto published = std::chrono::steady_clock::now() - begin;
  EXPECT_LT(published, 250ms) << "publish() waited";
  ASSERT_TRUE(fast.wait_for_accepted(5, 5s));
  const auto fast_done = fast.requests().back().received - begin;
  EXPECT_LT(fast_done, 250ms) << "the fast receiver waited for the slow one";
  dispatcher->flush(10s);
  const auto stats = dispatcher->stats();
  EXPECT_GE(stats.receivers[0].failures[static_cast<int>(WebhookFailure::kTimeout)], 1u);
  EXPECT_EQ(stats.receivers[1].delivered, 5u);
  EXPECT_EQ(stats.receivers[1].failures, (std::array<std::uint64_t, kWebhookFailureKinds>{}));
}

TEST(WebhookDispatcher, UnreadableSecretFailsCreate) {
  TempDir dir;
  auto webhook = receiver("r", "http://127.0.0.1:1/");
  webhook.secret_file = (dir.path() / "missing").string();
  const auto created = WebhookDispatcher::create(config_with(dir, {webhook}), {});
  ASSERT_FALSE(created);
  EXPECT_NE(created.error().message.find("webhook 'r'"), std::string::npos)
      << created.error().message;
  EXPECT_EQ(created.error().kind, ErrorKind::kNotFound) << "the secret file's ENOENT";
}

TEST(WebhookDispatcher, AnEmptySecretOrAnUnknownFormatIsInvalidInput) {
  TempDir dir;
  const auto secret = dir.path() / "secret";
  std::ofstream(secret) << "\n";
  auto webhook = receiver("r", "http://127.0.0.1:1/");
  webhook.secret_file = secret.string();
  const auto empty_secret = WebhookDispatcher::create(config_with(dir, {webhook}), {});
  ASSERT_FALSE(empty_secret);
  EXPECT_EQ(empty_secret.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(empty_secret.error().message,
            "webhook 'r': secret file '" + secret.string() + "' is empty");

  webhook.secret_file.clear();
  webhook.format = "carrier-pigeon";
  const auto unknown = WebhookDispatcher::create(config_with(dir, {webhook}), {});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(unknown.error().message, "webhook 'r': unknown format 'carrier-pigeon'");
}

}  // namespace
}  // namespace synwatch
