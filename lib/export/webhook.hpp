#pragma once
// Webhook delivery (alerts.webhooks): every incident event is written to each receiver's spool
// under state_dir, then POSTed by that receiver's own delivery thread with libcurl (keep-alive,
// TLS verification on, optional CA file, timeout), retried with exponential backoff and jitter
// up to max_retries, and removed from the spool once the receiver answered 2xx. Receivers are
// independent: a slow or dead one delays nobody else, and publish() never waits on the network.
//
// Guarantees: per receiver, events are sent in publish order, one at a time. Delivery is
// at-least-once: an event is sent again only if the process died between the 2xx and the
// spool update (or it was spooled and redelivered after a restart); receivers deduplicate by
// event_id (also sent as X-Synwatch-Event-Id). The spool holds at most alerts.spool_max_events
// per receiver; beyond that the oldest `updated` events are dropped first, `started`/`ended`
// last, each drop counted and logged.
//
// Thread safety: publish() from one thread at a time (the engine's or the main loop's); stats(),
// flush() and stop() from any thread. Internally one mutex guards all queues (events are rare,
// a few per incident), never held across I/O to the network. Buffer ownership: publish()
// copies the event; nothing refers to caller memory afterwards.

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "config/config.hpp"
#include "detect/incident.hpp"
#include "export/webhook_format.hpp"

namespace synwatch {

// Why a delivery attempt failed; the index into WebhookReceiverStats::failures.
enum class WebhookFailure : std::uint8_t {
  kConnect,  // could not resolve or connect
  kTimeout,  // no complete answer within `timeout`
  kTls,      // certificate or handshake rejected
  kHttp4xx,  // the receiver refused the request
  kHttp5xx,  // the receiver failed
  kOther,    // anything else libcurl reports
};
inline constexpr std::size_t kWebhookFailureKinds = 6;
std::string_view to_string(WebhookFailure failure) noexcept;  // "connect", "timeout", ...

// Counters of one receiver; a plain copy taken under the dispatcher's lock.
struct WebhookReceiverStats {
  std::string name;
  std::uint64_t delivered = 0;                                 // answered 2xx
  std::array<std::uint64_t, kWebhookFailureKinds> failures{};  // failed attempts by reason
  std::uint64_t given_up = 0;      // events dropped after max_retries failed retries
  std::uint64_t dropped = 0;       // events dropped because the spool was full
  std::uint64_t spool_errors = 0;  // events that could not be written to disk (still queued)
  std::size_t queue_depth = 0;     // events waiting, the one in flight included (= spooled)
  double last_success_unix = 0;    // wall clock of the last 2xx, 0 = never
};

struct WebhookStats {
  std::vector<WebhookReceiverStats> receivers;         // in configuration order
  [[nodiscard]] std::size_t spooled() const noexcept;  // sum of queue depths
};

class WebhookDispatcher final : public EventSink {
 public:
  struct Options {
    // Started as root: the user the daemon will switch to, who must own the spool
    // (config.user). Empty: leave ownership alone.
    std::string spool_owner;
    // The Alertmanager `instance` label; empty = this host's name.
    std::string instance;
    // Alertmanager's generatorURL for receivers without their own generator_url (the daemon
    // passes its metrics page); empty: none.
    std::string generator_url;
  };

  // Reads the secrets and creates the spool directories; sends nothing yet. Fails with a
  // message naming the receiver when a secret cannot be read or the spool cannot be created.
  static Expected<std::unique_ptr<WebhookDispatcher>> create(const Config& config,
                                                             const Options& options);

  WebhookDispatcher(const WebhookDispatcher&) = delete;
  WebhookDispatcher& operator=(const WebhookDispatcher&) = delete;
  ~WebhookDispatcher() override;  // stop()

  // Loads what earlier runs left in the spool (redelivered first, in order, once) and starts
  // one delivery thread per receiver. Call after dropping privileges: threads inherit them.
  void start();

  // Spools the event for each receiver that wants its type (fsync'd) and queues it. Never
  // waits for the network; events published before start() wait in the queue.
  void publish(const IncidentEvent& event) override;

  // Waits until every queue is empty (delivered or given up) or `timeout` passed. True when
  // nothing is left.
  bool flush(std::chrono::milliseconds timeout);

  // Stops the delivery threads, interrupting transfers and backoff waits; undelivered events
  // stay in the spool for the next start. Idempotent.
  void stop();

  [[nodiscard]] WebhookStats stats() const;
  [[nodiscard]] std::size_t receivers() const noexcept;

  struct Receiver;  // implementation detail, public so the .cpp's helpers can name it

 private:
  WebhookDispatcher() = default;
  void run_receiver(Receiver& receiver);
  [[nodiscard]] WebhookRenderContext render_context(const Receiver& receiver) const;

  mutable std::mutex mutex_;
  std::condition_variable idle_;  // signalled whenever an event leaves a queue
  std::vector<std::unique_ptr<Receiver>> receivers_;
  std::size_t spool_max_events_ = 0;
  std::string instance_;
  std::string generator_url_;
  bool started_ = false;
  bool stopping_ = false;
};

}  // namespace synwatch
