#pragma once
// The Prometheus /metrics endpoint: prometheus-cpp's metric model and text format, served by
// HttpEndpoint (libmicrohttpd, one event-driven thread; see http_endpoint.hpp for its limits).
//
// Every family's name, help and type is declared once: a struct's list of figures beside the
// struct in its module (counter_members.hpp), any other family as a MetricSpec in metrics.cpp
// beside the function that fills it; Collect() calls those functions in page order. Values come
// from a snapshot the main loop hands over once a second, never from the packet path: a scrape
// reads the last snapshot under a mutex that only the main loop also takes, so scraping cannot
// slow capture. Series exist only for what the snapshot holds, so destinations that went quiet
// vanish from the page on their own.
// Thread safety: update() from one thread (the main loop), Collect() and render() from any thread,
// in practice the endpoint's server thread; start() and the destructor from the owner's thread.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include "common/error.hpp"
#include "config/config.hpp"
#include "engine/live_pipeline.hpp"
#include "export/http_endpoint.hpp"
#include "export/action_runner.hpp"
#include "export/nftables_action.hpp"
#include "export/webhook.hpp"

namespace synwatch {

struct OutputStats {
  std::uint64_t success = 0;
  std::uint64_t failure = 0;
};

struct MetricsState {
  PipelineSnapshot pipeline;
  std::map<std::string, OutputStats> outputs;  // "log", "alert_file", webhook names
  WebhookStats webhooks;
  std::vector<ActionRunStats> actions;
  std::vector<NftablesActionStats> nftables_actions;
  bool last_reload_successful = true;
  double last_reload_success_time = 0;  // Unix seconds
};

class MetricsExporter final : public prometheus::Collectable {
 public:
  // Binds the listen address and starts serving. Errors name the address (or the password file)
  // and the reason.
  static Expected<std::shared_ptr<MetricsExporter>> start(const MetricsConfig& config,
                                                          std::string version);
  ~MetricsExporter() override;

  void update(MetricsState state);
  std::vector<prometheus::MetricFamily> Collect() const override;
  // The page: Collect() in the Prometheus text format (version 0.0.4).
  [[nodiscard]] std::string render() const;
  [[nodiscard]] std::vector<int> listening_ports() const;

  explicit MetricsExporter(std::string version);  // use start(); public for make_shared and tests

 private:
  std::string version_;
  double start_time_;
  mutable std::mutex mutex_;
  MetricsState state_;
  std::unique_ptr<HttpEndpoint> endpoint_;  // last: stopped before the state it renders goes
};

}  // namespace synwatch
