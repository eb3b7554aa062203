#include "offline.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "common/exit_codes.hpp"
#include "capture/capture_sequence.hpp"
#include "capture/read_ahead_source.hpp"
#include "engine/engine.hpp"
#include "engine/evidence_recorder.hpp"
#include "export/action_runner.hpp"
#include "export/event_json.hpp"
#include "export/nftables_action.hpp"
#include "export/progress_line.hpp"
#include "export/text_report.hpp"
#include "export/webhook.hpp"

namespace synwatch {

namespace {

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

// "truncated_ip=3, bad_tcp_offset=1": the decode errors by reason; empty without any.
std::string decode_error_detail(const DecodeStats& decode) {
  std::string detail;
  for (std::size_t i = 0; i < decode.by_result.size(); ++i) {
    const auto reason = static_cast<DecodeResult>(i);
    if (!is_decode_error(reason) || decode.by_result[i] == 0) continue;
    detail +=
        fmt::format("{}{}={}", detail.empty() ? "" : ", ", to_string(reason), decode.by_result[i]);
  }
  return detail;
}

// What the summary calls the input: the file, or the pieces read as one capture.
std::string describe_input(const std::vector<SequenceFile>& files) {
  if (files.size() == 1) return files.front().path;
  std::string paths;
  for (const SequenceFile& file : files) paths += (paths.empty() ? "" : ", ") + file.path;
  return fmt::format("{} files read as one capture, in time order ({})", files.size(), paths);
}

void print_summary(const std::string& input, const Engine& engine, std::uint64_t events) {
  const DecodeStats& decode = engine.decode_counters();
  const HandshakeTableStats& flows = engine.handshakes().counters();
  const DetectorStats& detector = engine.detector().counters();
  const std::string detail = decode_error_detail(decode);
  fmt::print(
      stderr,
      "synwatchd: {}: {} packets, {} TCP segments, {} decode errors{}\n"
      "synwatchd: handshakes: {} started, {} completed, {} reset, {} expired, {} evicted, "
      "{} still pending\n"
      "synwatchd: incidents: {} started ({} spoofed_random, {} concentrated, {} distributed), "
      "{} ended, {} events\n",
      input, engine.counters().packets, engine.counters().tcp_segments, decode.errors(),
      detail.empty() ? std::string() : " (" + detail + ")", flows.inserted, flows.completed,
      flows.reset, flows.expired, flows.evicted, engine.handshakes().size(),
      detector.total_started(), detector.started[0], detector.started[1], detector.started[2],
      detector.ended, events);
}

CaptureSummary capture_summary(const std::vector<SequenceFile>& files, const Engine& engine,
                               std::uint64_t events, DurationNs elapsed) {
  CaptureSummary summary;
  for (const SequenceFile& file : files) summary.files.push_back({file.path, file.first_packet});
  summary.packets = engine.counters().packets;
  summary.tcp_segments = engine.counters().tcp_segments;
  summary.decode_errors = engine.decode_counters().errors();
  summary.decode_error_detail = decode_error_detail(engine.decode_counters());
  const HandshakeTableStats& flows = engine.handshakes().counters();
  summary.handshakes_started = flows.inserted;
  summary.handshakes_completed = flows.completed;
  summary.handshakes_reset = flows.reset;
  summary.handshakes_expired = flows.expired;
  summary.handshakes_evicted = flows.evicted;
  summary.handshakes_pending = engine.handshakes().size();
  const DetectorStats& detector = engine.detector().counters();
  summary.incidents_by_kind = detector.started;
  summary.incidents_ended = detector.ended;
  summary.events = events;
  summary.elapsed = elapsed;
  return summary;
}

// Standard output in either format: the events, and for text the report after them.
class StdoutReport {
 public:
  explicit StdoutReport(ReportFormat format) : format_(format) {}
  EventSink& sink() {
    return format_ == ReportFormat::kText ? static_cast<EventSink&>(text_) : json_;
  }
  [[nodiscard]] std::uint64_t written() const {
    return format_ == ReportFormat::kText ? text_.written() : json_.written();
  }
  [[nodiscard]] std::uint64_t failed() const {
    return (format_ == ReportFormat::kText ? text_.failed() : json_.failed()) +
           (finish_failed_ ? 1 : 0);
  }
  [[nodiscard]] int last_error() const {
    return format_ == ReportFormat::kText ? text_.last_error() : json_.last_error();
  }
  // Text: the incident table and the capture summary after the events.
  void finish(const CaptureSummary& capture) {
    if (format_ == ReportFormat::kText) finish_failed_ = !text_.finish(capture);
  }

 private:
  ReportFormat format_;
  JsonLinesSink json_{stdout};
  TextReportSink text_{stdout};
  bool finish_failed_ = false;
};

// Erases the progress line before an event reaches standard output, which is usually the same
// terminal: the event would otherwise be printed after the half-drawn line.
class ProgressClearingSink final : public EventSink {
 public:
  ProgressClearingSink(EventSink& next, ProgressLine* progress)
      : next_(next), progress_(progress) {}
  void publish(const IncidentEvent& event) override {
    if (progress_ != nullptr) progress_->clear();
    next_.publish(event);
  }

 private:
  EventSink& next_;
  ProgressLine* progress_;
};

}  // namespace

int run_offline(const Config& config, const OfflineOptions& options) {
  const TimestampNs read_began = monotonic_now();
  auto opened = CaptureSequence::open(options.captures);
  if (!opened) {
    spdlog::error("{}", opened.error().message);
    switch (opened.error().problem) {
      case SequenceProblem::kUsage:
        return exit_code::kUsage;
      case SequenceProblem::kNotOneCapture:
        return exit_code::kDataError;
      case SequenceProblem::kCannotOpen:
        break;
    }
    return exit_code::kNoInput;
  }
  const std::vector<SequenceFile> files = (*opened)->files();
  // Reading the file overlaps with the engine's work; the frames and results are the same.
  auto source = std::make_unique<ReadAheadSource>(std::move(*opened));
  std::optional<ProgressLine> progress;
  if (options.progress && !options.quiet) {
    ProgressLine::Options progress_options;
    progress_options.columns = options.terminal_columns;
    progress.emplace(stderr, progress_options);
  }
  StdoutReport report(options.format);
  ProgressClearingSink sink(report.sink(), progress ? &*progress : nullptr);
  std::unique_ptr<WebhookDispatcher> webhooks;
  if (!config.alerts.webhooks.empty()) {
    auto created = WebhookDispatcher::create(config, {});
    if (!created) {
      spdlog::error("{}", created.error().message);
      return exit_code::kCantCreate;
    }
    webhooks = std::move(*created);
    webhooks->start();  // first redelivers what an earlier run left in the spool
  }
  const auto exec_actions = actions_of_type(config.actions, "exec");
  std::unique_ptr<ActionRunner> actions;
  if (!exec_actions.empty()) {
    auto started = ActionRunner::start(exec_actions);
    if (!started) {
      spdlog::error("{}", started.error().message);
      return exit_code::kSoftware;
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
      spdlog::error("{}", started.error().message);
      return exit_code::kSoftware;
    }
    nftables.push_back(std::move(*started));
  }
  std::vector<EventSink*> outputs{webhooks.get(), actions.get()};
  for (const auto& action : nftables) outputs.push_back(action.get());
  FanOutSink fan_out(sink, std::move(outputs));
  std::unique_ptr<EvidenceRecorder> evidence;
  if (!options.evidence_dir.empty()) {
    auto writer = EvidenceWriter::open(config.evidence, options.evidence_dir, {});
    if (!writer) {
      spdlog::error("{}", writer.error().message);
      return exit_code::kCantCreate;
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
  int status = 0;
  for (;;) {
    const DispatchResult result = source->dispatch(4096, engine);
    if (result.status == DispatchStatus::kEnd) break;
    if (result.status == DispatchStatus::kError) {
      if (progress) progress->clear();
      spdlog::error("{}", source->error());
      status = exit_code::kDataError;
      break;
    }
    if (progress && progress->due()) {
      const ReadProgress read = source->progress();
      progress->draw({read.bytes, read.total_bytes, engine.counters().packets, 0});
    }
  }
  if (progress) progress->clear();
  engine.finish();
  if (options.format == ReportFormat::kText) {
    report.finish(capture_summary(files, engine, report.written(), monotonic_now() - read_began));
  } else if (!options.quiet) {
    print_summary(describe_input(files), engine, report.written());
  }
  if (evidence) {
    evidence->writer().stop();
    const EvidenceStats written = evidence->writer().stats();
    const std::uint64_t dropped = written.dropped_incident_cap + written.dropped_total_cap +
                                  written.dropped_link_mismatch + written.dropped_write_error;
    if (!options.quiet) {
      fmt::print(stderr, "synwatchd: evidence: {} packets written to {} ({} files, {} bytes){}\n",
                 written.frames_written, options.evidence_dir, written.files, written.bytes_on_disk,
                 dropped == 0 ? std::string()
                              : fmt::format(", {} left out by the caps or errors", dropped));
    }
  }
  if (report.failed() > 0) {
    // The events are the result: losing some is a failure whatever else went well.
    spdlog::error("{} of {} events could not be written to standard output: {}", report.failed(),
                  report.failed() + report.written(), std::strerror(report.last_error()));
    status = exit_code::kIoError;
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
    if (!options.quiet || lost > 0) {
      fmt::print(stderr, "synwatchd: webhooks: {} delivered, {} given up or dropped\n", delivered,
                 lost);
    }
    if (lost > 0 && status == 0) status = exit_code::kTempFail;
  }
  return status;
}

}  // namespace synwatch
