#include "export/webhook.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <ctime>
#include <deque>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "export/event_json.hpp"
#include "export/spool.hpp"
#include "export/webhook_format.hpp"

namespace synwatch {

namespace {

// An event waiting for one receiver.
struct Pending {
  std::uint64_t sequence = 0;
  EventType type = EventType::kStarted;
  std::string json;  // the event_json object, compact: the spool file's content
  std::string event_id;
  std::string event;           // "started", "updated", "ended"
  std::uint32_t attempts = 0;  // failed attempts so far
  bool in_flight = false;      // being sent right now: never dropped
  bool spooled = false;        // a spool file exists for it
};

struct AttemptResult {
  bool ok = false;
  WebhookFailure failure = WebhookFailure::kOther;
  std::string detail;
};

void global_curl_init() {
  // curl_global_init is not safe to run concurrently with other curl calls; do it once, before
  // any delivery thread exists.
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  (void)initialised;
}

Expected<std::string> read_secret(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::unexpected(Error::from_errno(errno, "cannot read secret file '" + path + "'"));
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string secret = text.str();
  // Editors and `echo` add a trailing newline that is not part of the secret.
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' ||
                             secret.back() == ' ' || secret.back() == '\t')) {
    secret.pop_back();
  }
  if (secret.empty()) {
    return make_unexpected(ErrorKind::kInvalidInput, "secret file '" + path + "' is empty");
  }
  return secret;
}

std::optional<EventType> event_type_of(std::string_view name) {
  if (name == "started") return EventType::kStarted;
  if (name == "updated") return EventType::kUpdated;
  if (name == "ended") return EventType::kEnded;
  return std::nullopt;
}

std::uint64_t next_sequence_in(const std::filesystem::path& directory) {
  std::uint64_t next = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    const std::string name = entry.path().filename().string();
    if (!name.ends_with(".json")) continue;
    const std::uint64_t sequence = std::strtoull(name.c_str(), nullptr, 10);
    next = std::max(next, sequence + 1);
  }
  return next;
}

WebhookFailure classify(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
      return WebhookFailure::kConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return WebhookFailure::kTimeout;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_ENGINE_INITFAILED:
      return WebhookFailure::kTls;
    default:
      return WebhookFailure::kOther;
  }
}

// What a receiver answers is read only for its status: a body beyond this ends the transfer
// (a hostile or broken receiver answering gigabytes costs nothing but this much).
constexpr std::size_t kMaxResponseBody = std::size_t{64} * 1024;

struct ResponseBody {
  std::size_t bytes = 0;
  bool truncated = false;
};

std::size_t discard_body(char*, std::size_t size, std::size_t count, void* state) {
  auto& body = *static_cast<ResponseBody*>(state);
  body.bytes += size * count;
  if (body.bytes > kMaxResponseBody) {
    body.truncated = true;
    return 0;  // CURLE_WRITE_ERROR: the status line and headers were read already
  }
  return size * count;
}

int abort_if_stopping(void* flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(flag)->load(std::memory_order_relaxed) ? 1 : 0;
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

}  // namespace

struct WebhookDispatcher::Receiver {
  explicit Receiver(Spool opened) : spool(std::move(opened)) {}

  WebhookConfig config;
  WebhookFormat format = WebhookFormat::kJson;
  std::string url;
  std::string secret;
  std::array<bool, 3> wants{};  // by EventType
  Spool spool;
  std::deque<Pending> queue;
  std::uint64_t next_sequence = 0;
  std::uint64_t first_own_sequence = 0;  // spool entries below it are from earlier runs
  bool failing = false;  // the last attempt failed: the next success is logged as recovery
  // format alertmanager: the latest event of every incident still open, by incident id, sent
  // again every resend_interval (whichever events the receiver wants).
  std::map<std::string, std::string> firing;
  std::chrono::steady_clock::time_point next_refresh{};
  std::condition_variable wake;
  std::atomic<bool> abort{false};
  WebhookReceiverStats stats;
  std::thread thread;
};

std::string_view to_string(WebhookFailure failure) noexcept {
  switch (failure) {
    case WebhookFailure::kConnect:
      return "connect";
    case WebhookFailure::kTimeout:
      return "timeout";
    case WebhookFailure::kTls:
      return "tls";
    case WebhookFailure::kHttp4xx:
      return "http_4xx";
    case WebhookFailure::kHttp5xx:
      return "http_5xx";
    case WebhookFailure::kOther:
      return "other";
  }
  return "other";
}

std::size_t WebhookStats::spooled() const noexcept {
  std::size_t total = 0;
  for (const auto& receiver : receivers) total += receiver.queue_depth;
  return total;
}

Expected<std::unique_ptr<WebhookDispatcher>> WebhookDispatcher::create(const Config& config,
                                                                       const Options& options) {
  global_curl_init();
  std::unique_ptr<WebhookDispatcher> dispatcher(new WebhookDispatcher());
  dispatcher->spool_max_events_ = std::max<std::size_t>(1, config.alerts.spool_max_events);
  dispatcher->instance_ = options.instance.empty() ? host_name() : options.instance;
  dispatcher->generator_url_ = options.generator_url;
  const std::filesystem::path spool_root = std::filesystem::path(config.state_dir) / "webhooks";
  for (const auto& webhook : config.alerts.webhooks) {
    const std::string who = "webhook '" + webhook.name + "': ";
    const auto format = parse_webhook_format(webhook.format);
    if (!format) {
      return make_unexpected(ErrorKind::kInvalidInput,
                             who + "unknown format '" + webhook.format + "'");
    }
    std::string secret;
    if (!webhook.secret_file.empty()) {
      auto read = read_secret(webhook.secret_file);
      if (!read) return std::unexpected(read.error().prefixed(who));
      secret = std::move(*read);
    }
    auto spool = Spool::open(spool_root / webhook.name);
    if (!spool) return std::unexpected(spool.error().prefixed(who));
    auto receiver = std::make_unique<Receiver>(std::move(*spool));
    receiver->config = webhook;
    receiver->format = *format;
    receiver->url = effective_webhook_url(*format, webhook.url);
    receiver->secret = std::move(secret);
    for (const auto& name : webhook.events) {
      if (const auto type = event_type_of(name)) {
        receiver->wants[static_cast<std::size_t>(*type)] = true;
      }
    }
    receiver->next_sequence = next_sequence_in(receiver->spool.directory());
    receiver->first_own_sequence = receiver->next_sequence;
    receiver->stats.name = webhook.name;
    dispatcher->receivers_.push_back(std::move(receiver));
  }
  if (!options.spool_owner.empty() && ::geteuid() == 0 && !dispatcher->receivers_.empty()) {
    if (auto owned = hand_over_tree(spool_root, options.spool_owner); !owned) {
      return std::unexpected(owned.error().prefixed("webhook spool: "));
    }
  }
  return dispatcher;
}

WebhookDispatcher::~WebhookDispatcher() {
  stop();
}

std::size_t WebhookDispatcher::receivers() const noexcept {
  return receivers_.size();
}

namespace {

// A spooled entry as a queued event, or why it cannot be one (check_spooled_event).
Expected<Pending> pending_from_spool(SpooledEvent& entry, WebhookFormat format,
                                     const WebhookRenderContext& context) {
  auto head = check_spooled_event(entry.json, format, context);
  if (!head) return std::unexpected(head.error());
  Pending pending;
  pending.sequence = entry.sequence;
  pending.type = *event_type_of(head->event);
  pending.event = std::move(head->event);
  pending.event_id = std::move(head->event_id);
  pending.json = std::move(entry.json);
  pending.spooled = true;
  return pending;
}

// Makes room for one more event in a full queue: the oldest `updated` goes first, then the
// oldest of any type, never the one in flight. Returns false when nothing can go.
template <typename Drop>
bool make_room(std::deque<Pending>& queue, std::size_t limit, Drop&& drop) {
  while (queue.size() >= limit) {
    auto victim = std::ranges::find_if(
        queue, [](const Pending& p) { return !p.in_flight && p.type == EventType::kUpdated; });
    if (victim == queue.end()) {
      victim = std::ranges::find_if(queue, [](const Pending& p) { return !p.in_flight; });
    }
    if (victim == queue.end()) return false;
    drop(*victim);
    queue.erase(victim);
  }
  return true;
}

}  // namespace

void WebhookDispatcher::start() {
  std::unique_lock lock(mutex_);
  if (started_ || stopping_) return;
  started_ = true;
  for (auto& receiver_ptr : receivers_) {
    Receiver& receiver = *receiver_ptr;
    std::vector<std::string> problems;
    auto spooled = receiver.spool.load(problems);
    for (const auto& problem : problems) {
      spdlog::error("webhook '{}': spool: {}", receiver.config.name, problem);
    }
    std::deque<Pending> loaded;
    for (auto& entry : spooled) {
      // Only what was spooled before this dispatcher existed: its own events are queued already.
      if (entry.sequence >= receiver.first_own_sequence) continue;
      auto pending = pending_from_spool(entry, receiver.format, render_context(receiver));
      if (!pending) {
        spdlog::error("webhook '{}': spool entry {} removed: {}", receiver.config.name,
                      entry.sequence, pending.error().message);
        receiver.spool.remove(entry.sequence);
        continue;
      }
      loaded.push_back(std::move(*pending));
    }
    if (!loaded.empty()) {
      spdlog::info("webhook '{}': redelivering {} spooled event{}", receiver.config.name,
                   loaded.size(), loaded.size() == 1 ? "" : "s");
    }
    receiver.queue.insert(receiver.queue.begin(), std::make_move_iterator(loaded.begin()),
                          std::make_move_iterator(loaded.end()));
    // A smaller spool_max_events than the last run: trim the same way a full spool drops.
    while (receiver.queue.size() > spool_max_events_) {
      make_room(receiver.queue, receiver.queue.size(), [&](const Pending& victim) {
        ++receiver.stats.dropped;
        spdlog::warn("webhook '{}': spool full ({} events), dropped {} event {}",
                     receiver.config.name, spool_max_events_, victim.event, victim.event_id);
        if (victim.spooled) receiver.spool.remove(victim.sequence);
      });
    }
  }
  for (auto& receiver_ptr : receivers_) {
    Receiver* receiver = receiver_ptr.get();
    receiver->thread = std::thread([this, receiver] { run_receiver(*receiver); });
  }
}

void WebhookDispatcher::publish(const IncidentEvent& event) {
  if (receivers_.empty()) return;
  const std::string json = to_json(event).dump();
  const std::string_view type_name = to_string(event.type);
  for (auto& receiver_ptr : receivers_) {
    Receiver& receiver = *receiver_ptr;
    if (receiver.format == WebhookFormat::kAlertmanager) {
      std::lock_guard lock(mutex_);
      if (event.type == EventType::kEnded) {
        receiver.firing.erase(event.incident_id);
      } else {
        if (receiver.firing.empty()) {
          receiver.next_refresh = std::chrono::steady_clock::now() +
                                  std::chrono::nanoseconds(receiver.config.resend_interval);
        }
        receiver.firing[event.incident_id] = json;
      }
    }
    if (!receiver.wants[static_cast<std::size_t>(event.type)]) continue;
    Pending pending;
    pending.type = event.type;
    pending.json = json;
    pending.event_id = event.event_id;
    pending.event = std::string(type_name);
    {
      std::lock_guard lock(mutex_);
      pending.sequence = receiver.next_sequence++;
    }
    // Only this thread appends, so the file can be written without the lock: delivery threads
    // are never held up by the disk.
    if (auto written = receiver.spool.append(pending.sequence, json); written) {
      pending.spooled = true;
    } else {
      spdlog::error("webhook '{}': {}; event {} is kept in memory only", receiver.config.name,
                    written.error().message, event.event_id);
    }
    std::lock_guard lock(mutex_);
    if (!pending.spooled) ++receiver.stats.spool_errors;
    const bool room = make_room(receiver.queue, spool_max_events_, [&](const Pending& victim) {
      ++receiver.stats.dropped;
      spdlog::warn("webhook '{}': spool full ({} events), dropped {} event {}",
                   receiver.config.name, spool_max_events_, victim.event, victim.event_id);
      if (victim.spooled) receiver.spool.remove(victim.sequence);
    });
    if (!room) {
      ++receiver.stats.dropped;
      spdlog::warn("webhook '{}': spool full ({} events), dropped {} event {}",
                   receiver.config.name, spool_max_events_, pending.event, pending.event_id);
      if (pending.spooled) receiver.spool.remove(pending.sequence);
      continue;
    }
    receiver.queue.push_back(std::move(pending));
    receiver.wake.notify_one();
  }
}

bool WebhookDispatcher::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  const auto all_empty = [&] {
    return std::ranges::all_of(receivers_, [](const auto& r) { return r->queue.empty(); });
  };
  if (!started_) return all_empty();
  return idle_.wait_for(lock, timeout, all_empty);
}

void WebhookDispatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& receiver : receivers_) {
      receiver->abort = true;
      receiver->wake.notify_all();
    }
  }
  for (auto& receiver : receivers_) {
    if (receiver->thread.joinable()) receiver->thread.join();
  }
  idle_.notify_all();
}

WebhookRenderContext WebhookDispatcher::render_context(const Receiver& receiver) const {
  WebhookRenderContext context;
  context.instance = instance_;
  context.generator_url =
      receiver.config.generator_url.empty() ? generator_url_ : receiver.config.generator_url;
  context.now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  context.resend_interval = receiver.config.resend_interval;
  return context;
}

WebhookStats WebhookDispatcher::stats() const {
  std::lock_guard lock(mutex_);
  WebhookStats stats;
  for (const auto& receiver : receivers_) {
    stats.receivers.push_back(receiver->stats);
    stats.receivers.back().queue_depth = receiver->queue.size();
  }
  return stats;
}

namespace {

struct CurlSlist {
  curl_slist* list = nullptr;
  ~CurlSlist() { curl_slist_free_all(list); }
  void add(const std::string& line) {
    if (auto* appended = curl_slist_append(list, line.c_str())) list = appended;
  }
};

}  // namespace

void WebhookDispatcher::run_receiver(Receiver& receiver) {
  // One easy handle per receiver for its lifetime: libcurl keeps the connection open between
  // requests (HTTP keep-alive, TLS session reuse).
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  std::mt19937_64 random(std::random_device{}());
  const WebhookConfig& config = receiver.config;

  // One POST of `body`; `event_id` empty for the periodic re-send of firing alerts.
  auto post = [&](const std::string& body, std::string_view event,
                  std::string_view event_id) -> AttemptResult {
    if (!curl) return {false, WebhookFailure::kOther, "curl_easy_init failed"};
    CurlSlist headers;
    headers.add("Content-Type: application/json");
    headers.add("Expect:");  // no 100-continue round trip
    headers.add("X-Synwatch-Event: " + std::string(event));
    if (!event_id.empty()) headers.add("X-Synwatch-Event-Id: " + std::string(event_id));
    if (!receiver.secret.empty()) {
      const std::int64_t now = std::time(nullptr);
      headers.add("X-Synwatch-Timestamp: " + std::to_string(now));
      headers.add("X-Synwatch-Signature: sha256=" + webhook_signature(receiver.secret, now, body));
    }
    for (const auto& [name, value] : config.headers) {
      headers.add(fmt::format("{}: {}", name, value));
    }

    CURL* handle = curl.get();
    const long timeout_ms =
        static_cast<long>(std::max<DurationNs>(1, config.timeout / kNanosPerMilli));
    curl_easy_setopt(handle, CURLOPT_URL, receiver.url.c_str());
    curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(handle, CURLOPT_POST, 1L);
    curl_easy_setopt(handle, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.list);
    curl_easy_setopt(handle, CURLOPT_USERAGENT, "synwatch");
    curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(handle, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!config.ca_file.empty()) curl_easy_setopt(handle, CURLOPT_CAINFO, config.ca_file.c_str());
    curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
    ResponseBody response_body;
    curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &discard_body);
    curl_easy_setopt(handle, CURLOPT_WRITEDATA, &response_body);
    curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, &abort_if_stopping);
    curl_easy_setopt(handle, CURLOPT_XFERINFODATA, &receiver.abort);
    const CURLcode code = curl_easy_perform(handle);
    const bool body_cut = code == CURLE_WRITE_ERROR && response_body.truncated;
    if (code != CURLE_OK && !body_cut) return {false, classify(code), curl_easy_strerror(code)};
    long status = 0;
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) return {true, WebhookFailure::kOther, {}};
    const WebhookFailure failure = status >= 500   ? WebhookFailure::kHttp5xx
                                   : status >= 400 ? WebhookFailure::kHttp4xx
                                                   : WebhookFailure::kOther;
    return {false, failure, "HTTP " + std::to_string(status)};
  };

  auto attempt = [&](const Pending& pending) -> AttemptResult {
    std::string body = pending.json;
    if (receiver.format != WebhookFormat::kJson) {
      // Checked when spooled or loaded; a throw here would end the delivery thread.
      try {
        body = render_webhook_body(receiver.format, nlohmann::json::parse(pending.json),
                                   render_context(receiver));
      } catch (const nlohmann::json::exception& e) {
        return {false, WebhookFailure::kOther, std::string("cannot render the event: ") + e.what()};
      }
    }
    return post(body, pending.event, pending.event_id);
  };

  // Alertmanager forgets an alert whose endsAt passed: what is firing is sent again, all in one
  // request, every resend_interval while nothing else is queued. Not spooled: after a crash the
  // resumed incidents' next events carry them.
  const auto refresh_due = [&] {
    return receiver.format == WebhookFormat::kAlertmanager && !receiver.firing.empty() &&
           receiver.queue.empty() && std::chrono::steady_clock::now() >= receiver.next_refresh;
  };
  auto refresh = [&](std::unique_lock<std::mutex>& held) {
    std::vector<nlohmann::json> firing;
    firing.reserve(receiver.firing.size());
    for (const auto& [id, json] : receiver.firing) {
      firing.push_back(nlohmann::json::parse(json, nullptr, false));
    }
    receiver.next_refresh =
        std::chrono::steady_clock::now() + std::chrono::nanoseconds(config.resend_interval);
    held.unlock();
    AttemptResult result;
    try {
      result = post(render_alertmanager_alerts(firing, render_context(receiver)), "refresh", "");
    } catch (const nlohmann::json::exception& e) {
      result = {false, WebhookFailure::kOther, std::string("cannot render: ") + e.what()};
    }
    held.lock();
    if (result.ok || stopping_) return;
    ++receiver.stats.failures[static_cast<std::size_t>(result.failure)];
    spdlog::warn("webhook '{}': re-sending {} firing alert{} failed ({}: {}); next try in {:.0f} s",
                 config.name, firing.size(), firing.size() == 1 ? "" : "s",
                 to_string(result.failure), result.detail, to_seconds(config.resend_interval));
  };

  std::unique_lock lock(mutex_);
  for (;;) {
    const auto ready = [&] { return stopping_ || !receiver.queue.empty(); };
    if (receiver.format == WebhookFormat::kAlertmanager && !receiver.firing.empty()) {
      receiver.wake.wait_until(lock, receiver.next_refresh, ready);
    } else {
      receiver.wake.wait(lock, ready);
    }
    if (stopping_) break;
    if (refresh_due()) {
      refresh(lock);
      continue;
    }
    if (receiver.queue.empty()) continue;
    receiver.queue.front().in_flight = true;
    const Pending pending = receiver.queue.front();
    lock.unlock();
    const AttemptResult result = attempt(pending);
    lock.lock();
    // Still the front: drops skip the entry in flight, and only this thread pops.
    Pending& head = receiver.queue.front();
    head.in_flight = false;
    if (result.ok) {
      ++receiver.stats.delivered;
      receiver.stats.last_success_unix =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      if (receiver.failing) {
        spdlog::info("webhook '{}': delivering again after {} failed attempt{}", config.name,
                     head.attempts, head.attempts == 1 ? "" : "s");
        receiver.failing = false;
      }
      if (head.spooled) receiver.spool.remove(head.sequence);
      receiver.queue.pop_front();
      idle_.notify_all();
      continue;
    }
    if (stopping_) break;  // interrupted by stop(): the event stays spooled for the next start
    ++receiver.stats.failures[static_cast<std::size_t>(result.failure)];
    receiver.failing = true;
    ++head.attempts;
    if (head.attempts > config.max_retries) {
      ++receiver.stats.given_up;
      spdlog::error("webhook '{}': gave up on {} event {} after {} attempts (last: {})",
                    config.name, head.event, head.event_id, head.attempts, result.detail);
      if (head.spooled) receiver.spool.remove(head.sequence);
      receiver.queue.pop_front();
      idle_.notify_all();
      continue;
    }
    // Exponential backoff with jitter in [50 %, 100 %], so that receivers coming back are not
    // hit by every sender at the same instant.
    const double doubling =
        std::ldexp(1.0, static_cast<int>(std::min<std::uint32_t>(head.attempts - 1, 62)));
    const double capped = std::min(static_cast<double>(config.backoff) * doubling,
                                   static_cast<double>(config.max_backoff));
    const double jittered = capped * std::uniform_real_distribution<double>(0.5, 1.0)(random);
    const auto delay = std::chrono::nanoseconds(static_cast<std::int64_t>(jittered));
    spdlog::warn("webhook '{}': {} event {} attempt {} failed ({}: {}); retrying in {:.1f} s",
                 config.name, head.event, head.event_id, head.attempts, to_string(result.failure),
                 result.detail, std::chrono::duration<double>(delay).count());
    receiver.wake.wait_for(lock, delay, [&] { return stopping_; });
  }
}

}  // namespace synwatch
