#include "offline.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "capture/pcap_file_source.hpp"
#include "capture/read_ahead_source.hpp"
#include "engine/engine.hpp"
#include "engine/evidence_recorder.hpp"
#include "export/action_runner.hpp"
#include "export/event_json.hpp"
#include "export/nftables_action.hpp"
#include "export/webhook.hpp"

namespace synwatch {

namespace {

constexpr int kExitDataError = 65;   // sysexits EX_DATAERR
constexpr int kExitNoInput = 66;     // sysexits EX_NOINPUT
constexpr int kExitTempFail = 75;    // sysexits EX_TEMPFAIL: webhook events left undelivered
constexpr int kExitIoError = 74;     // sysexits EX_IOERR: events could not be written out
constexpr int kExitCantCreate = 73;  // sysexits EX_CANTCREAT: webhook spool or secret unusable
constexpr int kExitSoftware = 70;    // sysexits EX_SOFTWARE

// stdout and the webhooks both see every event, in order.
// Every event to stdout, then to whichever of the other outputs are configured.
class FanOutSink final : public EventSink {
 public:
  FanOutSink(EventSink& first, std::vector<EventSink*> others)
      : first_(first), others_(std::move(others)) {}
  void publish(const IncidentEvent& event) override {
    first_.publish(event);
    for (auto* other : others_) {
      if (other != nullptr) other->publish(event);
    }
  }

 private:
  EventSink& first_;
  std::vector<EventSink*> others_;
};

void print_summary(const std::string& path, const Engine& engine, std::uint64_t events) {
  const DecodeCounters& decode = engine.decode_counters();
  const HandshakeTableCounters& flows = engine.handshakes().counters();
  const DetectorCounters& detector = engine.detector().counters();
  std::string errors;
  for (std::size_t i = 0; i < decode.by_result.size(); ++i) {
    const auto reason = static_cast<DecodeResult>(i);
    if (reason == DecodeResult::kTcp || reason == DecodeResult::kNotIp ||
        reason == DecodeResult::kNotTcp || decode.by_result[i] == 0) {
      continue;
    }
    errors += fmt::format("{}{}={}", errors.empty() ? " (" : ", ", to_string(reason),
                          decode.by_result[i]);
  }
  if (!errors.empty()) errors += ")";
  fmt::print(
      stderr,
      "synwatchd: {}: {} packets, {} TCP segments, {} decode errors{}\n"
      "synwatchd: handshakes: {} started, {} completed, {} reset, {} expired, {} evicted, "
      "{} still pending\n"
      "synwatchd: incidents: {} started ({} spoofed_random, {} concentrated, {} distributed), "
      "{} ended, {} events\n",
      path, engine.counters().packets, engine.counters().tcp_segments, decode.errors(), errors,
      flows.inserted, flows.completed, flows.reset, flows.expired, flows.evicted,
      engine.handshakes().size(), detector.total_started(), detector.started[0],
      detector.started[1], detector.started[2], detector.ended, events);
}

}  // namespace

int run_offline(const Config& config, const std::string& capture_path,
                const std::string& evidence_dir) {
  auto opened = PcapFileSource::open(capture_path);
  if (!opened) {
    spdlog::error("{}", opened.error());
    return kExitNoInput;
  }
  // Reading the file overlaps with the engine's work; the frames and results are the same.
  auto source = std::make_unique<ReadAheadSource>(std::move(*opened));
  JsonLinesSink sink(stdout);
  std::unique_ptr<WebhookDispatcher> webhooks;
  if (!config.alerts.webhooks.empty()) {
    auto created = WebhookDispatcher::create(config, {});
    if (!created) {
      spdlog::error("{}", created.error());
      return kExitCantCreate;
    }
    webhooks = std::move(*created);
    webhooks->start();  // first redelivers what an earlier run left in the spool
  }
  const auto exec_actions = actions_of_type(config.actions, "exec");
  std::unique_ptr<ActionRunner> actions;
  if (!exec_actions.empty()) {
    auto started = ActionRunner::start(exec_actions);
    if (!started) {
      spdlog::error("{}", started.error());
      return kExitSoftware;
    }
    actions = std::move(*started);
  }
  // A capture's sources are not this host's attackers now: --read never changes the firewall,
  // its nftables actions only log what they would do.
  std::vector<std::unique_ptr<NftablesAction>> nftables;
  for (auto action : actions_of_type(config.actions, "nftables")) {
    if (!action.dry_run) {
      spdlog::info("--read: nftables action '{}' runs as dry_run", action.name);
      action.dry_run = true;
    }
    auto started = NftablesAction::start(action, config.protected_prefixes);
    if (!started) {
      spdlog::error("{}", started.error());
      return kExitSoftware;
    }
    nftables.push_back(std::move(*started));
  }
  std::vector<EventSink*> outputs{webhooks.get(), actions.get()};
  for (const auto& action : nftables) outputs.push_back(action.get());
  FanOutSink fan_out(sink, std::move(outputs));
  std::unique_ptr<EvidenceRecorder> evidence;
  if (!evidence_dir.empty()) {
    auto writer = EvidenceWriter::open(config.evidence, evidence_dir, {});
    if (!writer) {
      spdlog::error("{}", writer.error());
      return kExitCantCreate;
    }
    // A replay waits for the writer rather than drop a frame: the same file gives the same
    // evidence every time.
    evidence = std::make_unique<EvidenceRecorder>(config.evidence, std::move(*writer), fan_out, 1,
                                                  EvidenceTap::WhenFull::kWait);
  }
  EventSink& engine_sink = evidence ? static_cast<EventSink&>(*evidence) : fan_out;
  // A fixed seed keeps offline runs byte-for-byte reproducible; the table is bounded anyway.
  Engine engine(config, source->link_type(), engine_sink, 0x9e3779b97f4a7c15ULL);
  if (evidence) {
    evidence->attach(0, engine.shard());
    evidence->writer().start();
  }
  int exit_code = 0;
  for (;;) {
    const DispatchResult result = source->dispatch(4096, engine);
    if (result.status == DispatchStatus::kEnd) break;
    if (result.status == DispatchStatus::kError) {
      spdlog::error("{}", source->error());
      exit_code = kExitDataError;
      break;
    }
  }
  engine.finish();
  print_summary(capture_path, engine, sink.written());
  if (evidence) {
    evidence->writer().stop();
    const EvidenceStats written = evidence->writer().stats();
    const std::uint64_t dropped = written.dropped_incident_cap + written.dropped_total_cap +
                                  written.dropped_link_mismatch + written.dropped_write_error;
    fmt::print(
        stderr, "synwatchd: evidence: {} packets written to {} ({} files, {} bytes){}\n",
        written.frames_written, evidence_dir, written.files, written.bytes_on_disk,
        dropped == 0 ? std::string() : fmt::format(", {} left out by the caps or errors", dropped));
  }
  if (sink.failed() > 0) {
    // The events are the result: losing some is a failure whatever else went well.
    spdlog::error("{} of {} events could not be written to standard output: {}", sink.failed(),
                  sink.failed() + sink.written(), std::strerror(sink.last_error()));
    exit_code = kExitIoError;
  }
  if (actions) {
    // Bounded by the actions' timeouts: a command that outlives its own is killed.
    DurationNs longest = 0;
    for (const auto& action : exec_actions) longest = std::max(longest, action.timeout);
    (void)actions->wait_idle(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::nanoseconds(longest) + std::chrono::seconds(1)));
  }
  for (auto& action : nftables) (void)action->wait_idle(std::chrono::seconds(5));
  nftables.clear();
  if (webhooks) {
    // Bounded by each receiver's retry limit: an event is delivered or given up eventually.
    webhooks->flush(std::chrono::hours(24 * 365));
    webhooks->stop();
    std::uint64_t delivered = 0;
    std::uint64_t lost = 0;
    for (const auto& receiver : webhooks->stats().receivers) {
      delivered += receiver.delivered;
      lost += receiver.given_up + receiver.dropped;
    }
    fmt::print(stderr, "synwatchd: webhooks: {} delivered, {} given up or dropped\n", delivered,
               lost);
    if (lost > 0 && exit_code == 0) exit_code = kExitTempFail;
  }
  return exit_code;
}

}  // namespace synwatch
