#include "export/metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>

#include <prometheus/text_serializer.h>

#include "aggregate/destination_table.hpp"
#include "flow/handshake_table.hpp"
#include "kernel/tcp_stats.hpp"

namespace synwatch {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;
using Page = std::vector<MetricFamily>;

MetricType type_of(FigureKind kind) {
  return kind == FigureKind::kCounter ? MetricType::Counter : MetricType::Gauge;
}

MetricFamily family(const MetricSpec& spec) {
  MetricFamily f;
  f.name = std::string(spec.name);
  f.help = std::string(spec.help);
  f.type = type_of(spec.kind);
  return f;
}

template <typename Struct, typename Value, std::size_t N>
MetricFamily family(const LabelledFigures<Struct, Value, N>& figures) {
  return family(MetricSpec{figures.metric, figures.help, figures.kind});
}

void add(MetricFamily& f, Labels labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

// One sample per listed member of `values`, labelled `labels` plus the member's label value.
template <typename Struct, typename Value, std::size_t N>
void add(MetricFamily& f, const Labels& labels, const LabelledFigures<Struct, Value, N>& figures,
         const Struct& values) {
  for (const auto& figure : figures.members) {
    Labels labelled = labels;
    labelled.push_back({std::string(figures.label), std::string(figure.name)});
    add(f, std::move(labelled), static_cast<double>(values.*figure.member));
  }
}

void add_single(Page& out, const MetricSpec& spec, double value) {
  auto f = family(spec);
  add(f, {}, value);
  out.push_back(std::move(f));
}

// A whole host (an incident over its ports) has port "all".
Labels destination_labels(const Endpoint& target, bool host = false) {
  return {{"address", target.address.to_string()},
          {"port", host ? std::string("all") : std::to_string(target.port)}};
}

Labels with(Labels labels, std::string name, std::string value) {
  labels.push_back({std::move(name), std::move(value)});
  return labels;
}

double seconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double>(duration).count();
}

double now_unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

constexpr MetricSpec kDistinctSources{
    "synwatch_distinct_sources",
    "Distinct SYN sources in the sliding window (HyperLogLog estimate, 3.25% error).",
    FigureKind::kGauge};
constexpr MetricSpec kSourceEntropy{
    "synwatch_source_entropy",
    "Normalised entropy of SYN sources in the window: 1 = every SYN from a new source.",
    FigureKind::kGauge};
constexpr MetricSpec kCompletionRatio{"synwatch_completion_ratio",
                                      "Completed handshakes / new SYNs in the window.",
                                      FigureKind::kGauge};
constexpr MetricSpec kSynRate{"synwatch_syn_rate", "New SYNs per second over the window.",
                              FigureKind::kGauge};
constexpr MetricSpec kStaleHalfOpen{
    "synwatch_stale_half_open",
    "Stale half-open handshakes in the window: pending past the destination's "
    "normal handshake time, or failed, and not completed since.",
    FigureKind::kGauge};
constexpr MetricSpec kStaleBaseline{
    "synwatch_stale_baseline",
    "The destination's normal stale level, learned while no incident is open.", FigureKind::kGauge};
constexpr MetricSpec kAttackActive{
    "synwatch_attack_active",
    "1 while a SYN flood incident is open on the destination, labelled with its kind.",
    FigureKind::kGauge};

// The text format wants a family's samples together: every destination adds to each family, and
// the families go on the page after the last destination.
void add_destinations(Page& out, const std::vector<ExportedDestinationStats>& destinations) {
  auto half_open = family(kHalfOpenStates);
  auto events = family(kDestinationEvents);
  auto distinct = family(kDistinctSources);
  auto entropy = family(kSourceEntropy);
  auto completion = family(kCompletionRatio);
  auto syn_rate = family(kSynRate);
  auto stale = family(kStaleHalfOpen);
  auto baseline = family(kStaleBaseline);
  auto attack = family(kAttackActive);
  for (const auto& d : destinations) {
    const Labels labels = destination_labels(d.target, d.host);
    add(half_open, labels, kHalfOpenStates, d);
    add(events, labels, kDestinationEvents, d.totals);
    add(distinct, labels, d.distinct_sources);
    add(entropy, labels, d.source_entropy);
    add(completion, labels, d.completion_ratio);
    add(syn_rate, labels, d.syn_rate);
    add(stale, labels, d.stale);
    add(baseline, labels, d.baseline);
    if (d.attack) add(attack, with(labels, "kind", std::string(to_string(*d.attack))), 1);
  }
  for (auto* f : {&half_open, &events, &distinct, &entropy, &completion, &syn_rate, &stale,
                  &baseline, &attack}) {
    out.push_back(std::move(*f));
  }
}

constexpr MetricSpec kIncidentsStarted{"synwatch_incidents_started_total",
                                       "SYN flood incidents started, by kind.",
                                       FigureKind::kCounter};
constexpr MetricSpec kIncidentsOpen{"synwatch_incidents_open", "Incidents open right now.",
                                    FigureKind::kGauge};

void add_incidents(Page& out, const std::array<std::uint64_t, kAttackKindCount>& started_by_kind,
                   std::size_t open) {
  auto started = family(kIncidentsStarted);
  for (std::size_t k = 0; k < kAttackKindCount; ++k) {
    add(started, {{"kind", std::string(to_string(static_cast<AttackKind>(k)))}},
        static_cast<double>(started_by_kind[k]));
  }
  out.push_back(std::move(started));
  add_single(out, kIncidentsOpen, static_cast<double>(open));
}

constexpr MetricSpec kCapturePackets{
    "synwatch_capture_packets_total",
    "Packets that passed the capture filter, by interface (pcap_stats).", FigureKind::kCounter};
constexpr MetricSpec kCaptureInterfaceUp{"synwatch_capture_interface_up",
                                         "1 while capture on the interface is open.",
                                         FigureKind::kGauge};
constexpr MetricSpec kCaptureWorkerPackets{
    "synwatch_capture_worker_packets_total",
    "Frames each capture worker handed to its share of the handshake table (capture.workers; "
    "an even spread means the flow hash balances).",
    FigureKind::kCounter};
constexpr MetricSpec kCaptureLag{
    "synwatch_capture_lag_seconds",
    "Wall clock minus the newest packet's timestamp: how far processing trails capture.",
    FigureKind::kGauge};

void add_capture(Page& out, const std::vector<InterfaceHealth>& interfaces,
                 const std::vector<std::uint64_t>& worker_packets, std::chrono::nanoseconds lag) {
  auto packets = family(kCapturePackets);
  auto dropped = family(kCaptureDrops);
  auto up = family(kCaptureInterfaceUp);
  for (const auto& i : interfaces) {
    const Labels labels{{"interface", i.name}};
    add(packets, labels, static_cast<double>(i.stats.received));
    add(dropped, labels, kCaptureDrops, i.stats);
    add(up, labels, i.open ? 1 : 0);
  }
  out.push_back(std::move(packets));
  out.push_back(std::move(dropped));
  out.push_back(std::move(up));
  auto by_worker = family(kCaptureWorkerPackets);
  for (std::size_t w = 0; w < worker_packets.size(); ++w) {
    add(by_worker, {{"worker", std::to_string(w)}}, static_cast<double>(worker_packets[w]));
  }
  out.push_back(std::move(by_worker));
  add_single(out, kCaptureLag, seconds(lag));
}

constexpr MetricSpec kDecodeErrors{"synwatch_decode_errors_total",
                                   "Malformed or truncated frames, by reason.",
                                   FigureKind::kCounter};
constexpr MetricSpec kPacketsProcessed{"synwatch_packets_processed_total",
                                       "Frames handed to the decoder.", FigureKind::kCounter};

void add_decode(Page& out, const DecodeStats& decode, const EngineStats& engine) {
  auto errors = family(kDecodeErrors);
  for (std::size_t r = 0; r < decode.by_result.size(); ++r) {
    const auto reason = static_cast<DecodeResult>(r);
    if (!is_decode_error(reason)) continue;
    add(errors, {{"reason", std::string(to_string(reason))}},
        static_cast<double>(decode.by_result[r]));
  }
  out.push_back(std::move(errors));
  add_single(out, kPacketsProcessed, static_cast<double>(engine.packets));
}

constexpr MetricSpec kHandshakeTableEntries{"synwatch_handshake_table_entries",
                                            "Pending handshakes tracked.", FigureKind::kGauge};
constexpr MetricSpec kHandshakeTableCapacity{"synwatch_handshake_table_capacity",
                                             "Handshake table capacity (flow.capacity).",
                                             FigureKind::kGauge};
constexpr MetricSpec kHandshakeTableEvictions{
    "synwatch_handshake_table_evictions_total",
    "Pending handshakes evicted because the table was full (oldest first).", FigureKind::kCounter};
constexpr MetricSpec kDestinationsTracked{"synwatch_destinations_tracked",
                                          "Destinations with per-destination state.",
                                          FigureKind::kGauge};
constexpr MetricSpec kDestinationsDropped{
    "synwatch_destinations_dropped_total",
    "SYNs to new destinations not tracked because every tracked one had an open incident.",
    FigureKind::kCounter};
constexpr MetricSpec kDestinationsUnexported{
    "synwatch_destinations_unexported",
    "Tracked destinations left out of the per-destination series by metrics.max_destinations.",
    FigureKind::kGauge};

void add_tables(Page& out, const PipelineSnapshot& p) {
  add_single(out, kHandshakeTableEntries, static_cast<double>(p.handshake_entries));
  add_single(out, kHandshakeTableCapacity, static_cast<double>(p.handshake_capacity));
  auto handshakes = family(kHandshakeEvents);
  add(handshakes, {}, kHandshakeEvents, p.handshakes);
  out.push_back(std::move(handshakes));
  add_single(out, kHandshakeTableEvictions, static_cast<double>(p.handshakes.evicted));
  add_single(out, kDestinationsTracked, static_cast<double>(p.destinations));
  add_single(out, kDestinationsDropped, static_cast<double>(p.destination_counters.dropped));
  add_single(out, kDestinationsUnexported, static_cast<double>(p.destinations_unexported));
}

constexpr MetricSpec kEventOutputs{"synwatch_event_outputs_total",
                                   "Incident events written to each output, by result.",
                                   FigureKind::kCounter};

void add_outputs(Page& out, const std::map<std::string, OutputStats>& outputs) {
  auto written = family(kEventOutputs);
  for (const auto& [name, counts] : outputs) {
    add(written, {{"output", name}, {"result", "success"}}, static_cast<double>(counts.success));
    add(written, {{"output", name}, {"result", "failure"}}, static_cast<double>(counts.failure));
  }
  out.push_back(std::move(written));
}

constexpr MetricSpec kActionRunning{"synwatch_action_running", "Runs of each action going on now.",
                                    FigureKind::kGauge};

// Without actions configured the families are left off the page altogether.
void add_actions(Page& out, const std::vector<ActionRunStats>& actions) {
  if (actions.empty()) return;
  auto runs = family(kActionRunResults);
  auto running = family(kActionRunning);
  for (const auto& action : actions) {
    add(runs, {{"action", action.name}}, kActionRunResults, action);
    add(running, {{"action", action.name}}, static_cast<double>(action.running));
  }
  out.push_back(std::move(runs));
  out.push_back(std::move(running));
}

constexpr MetricSpec kNftablesSkipped{
    "synwatch_nftables_skipped_total",
    "Top sources of incidents an nftables action did not block, by reason.", FigureKind::kCounter};
constexpr MetricSpec kNftablesHeld{
    "synwatch_nftables_held", "Set elements each nftables action holds now (at most max_entries).",
    FigureKind::kGauge};
constexpr MetricSpec kNftablesEventsDropped{
    "synwatch_nftables_events_dropped_total",
    "Events an nftables action dropped because its queue was full.", FigureKind::kCounter};

void add_nftables(Page& out, const std::vector<NftablesActionStats>& actions) {
  if (actions.empty()) return;
  auto elements = family(kNftablesElementOutcomes);
  auto skipped = family(kNftablesSkipped);
  auto held = family(kNftablesHeld);
  auto events_dropped = family(kNftablesEventsDropped);
  for (const auto& action : actions) {
    const Labels labels{{"action", action.name}};
    add(elements, labels, kNftablesElementOutcomes, action);
    for (const auto& [reason, count] : action.skipped) {
      add(skipped, with(labels, "reason", reason), static_cast<double>(count));
    }
    add(held, labels, static_cast<double>(action.held));
    add(events_dropped, labels, static_cast<double>(action.events_dropped));
  }
  out.push_back(std::move(elements));
  out.push_back(std::move(skipped));
  out.push_back(std::move(held));
  out.push_back(std::move(events_dropped));
}

void add_memory(Page& out, const MemoryBound& bound) {
  auto memory = family(kMemoryBoundParts);
  add(memory, {}, kMemoryBoundParts, bound);
  out.push_back(std::move(memory));
}

constexpr MetricSpec kEvidenceBytes{"synwatch_evidence_bytes",
                                    "Bytes of evidence captures on disk (evidence.directory).",
                                    FigureKind::kGauge};
constexpr MetricSpec kEvidenceFiles{"synwatch_evidence_files", "Evidence capture files on disk.",
                                    FigureKind::kGauge};
constexpr MetricSpec kEvidenceFilesRemoved{
    "synwatch_evidence_files_removed_total",
    "Evidence files of ended incidents removed, oldest first, to stay within "
    "evidence.max_total_bytes.",
    FigureKind::kCounter};
constexpr MetricSpec kEvidenceIncidentsUnrecorded{
    "synwatch_evidence_incidents_unrecorded_total",
    "Incidents without evidence because 32 were being recorded at once.", FigureKind::kCounter};

void add_evidence(Page& out, const EvidenceSnapshot& evidence) {
  if (!evidence.enabled) return;
  auto packets = family(kEvidenceOutcomes);
  add(packets, {}, kEvidenceOutcomes, evidence.outcomes());
  out.push_back(std::move(packets));
  add_single(out, kEvidenceBytes, static_cast<double>(evidence.writer.bytes_on_disk));
  add_single(out, kEvidenceFiles, static_cast<double>(evidence.writer.files));
  add_single(out, kEvidenceFilesRemoved, static_cast<double>(evidence.writer.files_removed));
  add_single(out, kEvidenceIncidentsUnrecorded, static_cast<double>(evidence.taps.watches_refused));
}

constexpr MetricSpec kKernelSynRecv{"synwatch_kernel_syn_recv",
                                    "SYN_RECV request sockets per local address:port, from the "
                                    "kernel (NETLINK_SOCK_DIAG), as `ss -tan state syn-recv` "
                                    "counts them.",
                                    FigureKind::kGauge};
constexpr MetricSpec kKernelAttackActive{
    "synwatch_kernel_attack_active",
    "1 while the kernel view has an incident open on the destination.", FigureKind::kGauge};
constexpr MetricSpec kKernelAcceptQueueRatio{
    "synwatch_kernel_accept_queue_ratio",
    "Listener accept queue length / backlog (ss -lnt Recv-Q / Send-Q).", FigureKind::kGauge};
constexpr MetricSpec kKernelSynQueueLength{"synwatch_kernel_syn_queue_length",
                                           "Request sockets in the listener's SYN queue.",
                                           FigureKind::kGauge};
constexpr MetricSpec kKernelPolls{"synwatch_kernel_polls_total", "Kernel view polls.",
                                  FigureKind::kCounter};
constexpr MetricSpec kKernelPollFailures{"synwatch_kernel_poll_failures_total",
                                         "Kernel view polls that failed.", FigureKind::kCounter};
constexpr MetricSpec kKernelLastPollDuration{"synwatch_kernel_last_poll_duration_seconds",
                                             "Duration of the last kernel view poll.",
                                             FigureKind::kGauge};
constexpr MetricSpec kKernelUnattributedSyncookies{
    "synwatch_kernel_unattributed_syncookies_total",
    "SYN cookies sent while no listener's SYN queue was full (not attributed to a "
    "destination).",
    FigureKind::kCounter};

void add_kernel(Page& out, const KernelViewSnapshot& kernel) {
  if (!kernel.enabled) return;
  auto syn_recv = family(kKernelSynRecv);
  auto attack = family(kKernelAttackActive);
  for (const auto& d : kernel.destinations) {
    add(syn_recv, destination_labels(d.target), d.syn_recv);
    if (d.attack) {
      add(attack, with(destination_labels(d.target), "kind", std::string(to_string(*d.attack))), 1);
    }
  }
  auto accept_queue = family(kKernelAcceptQueueRatio);
  auto syn_queue = family(kKernelSynQueueLength);
  for (const auto& l : kernel.listeners) {
    const Labels labels = destination_labels(l.local);
    add(accept_queue, labels,
        l.backlog == 0 ? 0.0 : static_cast<double>(l.accept_queue) / l.backlog);
    add(syn_queue, labels, l.syn_recv);
  }
  for (auto* f : {&syn_recv, &attack, &accept_queue, &syn_queue}) out.push_back(std::move(*f));
  if (kernel.tcp_ext) {
    for (const auto& counter : kTcpExtCounterList) {
      const auto& figure = counter.figure;
      add_single(out, {figure.name, figure.help, FigureKind::kCounter},
                 static_cast<double>(*kernel.tcp_ext.*figure.member));
    }
  }
  add_single(out, kKernelPolls, static_cast<double>(kernel.polls));
  add_single(out, kKernelPollFailures, static_cast<double>(kernel.poll_failures));
  add_single(out, kKernelLastPollDuration, seconds(kernel.last_poll_duration));
  add_single(out, kKernelUnattributedSyncookies,
             static_cast<double>(kernel.unattributed_syncookies));
}

constexpr MetricSpec kWebhookDeliveries{"synwatch_webhook_deliveries_total",
                                        "Events a webhook receiver acknowledged with a 2xx.",
                                        FigureKind::kCounter};
constexpr MetricSpec kWebhookFailures{
    "synwatch_webhook_failures_total",
    "Failed webhook delivery attempts, by reason (each is retried).", FigureKind::kCounter};
constexpr MetricSpec kWebhookGivenUp{"synwatch_webhook_given_up_total",
                                     "Events given up after the retry limit.",
                                     FigureKind::kCounter};
constexpr MetricSpec kWebhookDropped{"synwatch_webhook_dropped_total",
                                     "Events dropped because the receiver's spool was full.",
                                     FigureKind::kCounter};
constexpr MetricSpec kWebhookQueueDepth{
    "synwatch_webhook_queue_depth", "Events waiting for delivery (spooled).", FigureKind::kGauge};

void add_webhooks(Page& out, const WebhookStats& webhooks) {
  auto delivered = family(kWebhookDeliveries);
  auto failed = family(kWebhookFailures);
  auto given_up = family(kWebhookGivenUp);
  auto dropped = family(kWebhookDropped);
  auto queued = family(kWebhookQueueDepth);
  for (const auto& r : webhooks.receivers) {
    const Labels labels{{"receiver", r.name}};
    add(delivered, labels, static_cast<double>(r.delivered));
    for (std::size_t k = 0; k < r.failures.size(); ++k) {
      add(failed, with(labels, "reason", std::string(to_string(static_cast<WebhookFailure>(k)))),
          static_cast<double>(r.failures[k]));
    }
    add(given_up, labels, static_cast<double>(r.given_up));
    add(dropped, labels, static_cast<double>(r.dropped));
    add(queued, labels, static_cast<double>(r.queue_depth));
  }
  for (auto* f : {&delivered, &failed, &given_up, &dropped, &queued}) out.push_back(std::move(*f));
}

constexpr MetricSpec kConfigLastReloadSuccessful{"synwatch_config_last_reload_successful",
                                                 "1 if the last configuration (re)load succeeded.",
                                                 FigureKind::kGauge};
constexpr MetricSpec kConfigLastReloadSuccessTime{
    "synwatch_config_last_reload_success_timestamp_seconds",
    "Time of the last successful configuration load, Unix seconds.", FigureKind::kGauge};
constexpr MetricSpec kBuildInfo{"synwatch_build_info", "synwatch version; always 1.",
                                FigureKind::kGauge};

void add_config_and_build(Page& out, const MetricsState& state, const std::string& version) {
  add_single(out, kConfigLastReloadSuccessful, state.last_reload_successful ? 1 : 0);
  add_single(out, kConfigLastReloadSuccessTime, state.last_reload_success_time);
  auto build = family(kBuildInfo);
  add(build, {{"version", version}}, 1);
  out.push_back(std::move(build));
}

// As the Prometheus client libraries name them.
constexpr MetricSpec kProcessCpuSeconds{"process_cpu_seconds_total",
                                        "Total user and system CPU time spent in seconds.",
                                        FigureKind::kCounter};
constexpr MetricSpec kProcessVirtualMemory{"process_virtual_memory_bytes",
                                           "Virtual memory size in bytes.", FigureKind::kGauge};
constexpr MetricSpec kProcessResidentMemory{"process_resident_memory_bytes",
                                            "Resident memory size in bytes.", FigureKind::kGauge};
constexpr MetricSpec kProcessStartTime{"process_start_time_seconds",
                                       "Start time of the process since unix epoch in seconds.",
                                       FigureKind::kGauge};
constexpr MetricSpec kProcessOpenFds{"process_open_fds", "Number of open file descriptors.",
                                     FigureKind::kGauge};
constexpr MetricSpec kProcessMaxFds{"process_max_fds", "Maximum number of open file descriptors.",
                                    FigureKind::kGauge};

// Standard process metrics, from /proc/self.
void add_process_metrics(Page& out, double start_time) {
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  std::ifstream stat("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(text.substr(close + 2));
    std::vector<std::string> f((std::istream_iterator<std::string>(fields)),
                               std::istream_iterator<std::string>());
    // Fields after the command name start at field 3 (state); utime is field 14, vsize 23, rss 24.
    if (f.size() > 21) {
      const double cpu = (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(ticks);
      add_single(out, kProcessCpuSeconds, cpu);
      add_single(out, kProcessVirtualMemory, std::stod(f[20]));
      add_single(out, kProcessResidentMemory, std::stod(f[21]) * static_cast<double>(page));
    }
  }
  add_single(out, kProcessStartTime, start_time);
  double open_fds = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (const dirent* entry = readdir(dir)) open_fds += entry->d_name[0] != '.';
    closedir(dir);
  }
  add_single(out, kProcessOpenFds, open_fds);
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  add_single(out, kProcessMaxFds, static_cast<double>(limit.rlim_cur));
}

}  // namespace

MetricsExporter::MetricsExporter(std::string version)
    : version_(std::move(version)), start_time_(now_unix_seconds()) {}

// The server thread renders from this object: stop it first.
MetricsExporter::~MetricsExporter() {
  endpoint_.reset();
}

Expected<std::shared_ptr<MetricsExporter>> MetricsExporter::start(const MetricsConfig& config,
                                                                  std::string version) {
  auto exporter = std::make_shared<MetricsExporter>(std::move(version));
  HttpEndpointOptions options;
  options.listen = config.listen;
  options.basic_auth_user = config.basic_auth_user;
  options.basic_auth_password_file = config.basic_auth_password_file;
  options.tls_cert_file = config.tls_cert_file;
  options.tls_key_file = config.tls_key_file;
  auto endpoint = HttpEndpoint::start(options, [raw = exporter.get()] { return raw->render(); });
  if (!endpoint) return std::unexpected(endpoint.error());
  exporter->endpoint_ = std::move(*endpoint);
  return exporter;
}

std::vector<int> MetricsExporter::listening_ports() const {
  return endpoint_ ? endpoint_->listening_ports() : std::vector<int>{};
}

std::string MetricsExporter::render() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, Collect());
  return out.str();
}

void MetricsExporter::update(MetricsState state) {
  std::lock_guard lock(mutex_);
  state_ = std::move(state);
}

std::vector<MetricFamily> MetricsExporter::Collect() const {
  MetricsState s;
  {
    std::lock_guard lock(mutex_);
    s = state_;
  }
  const PipelineSnapshot& p = s.pipeline;
  Page out;
  add_destinations(out, p.destinations_exported);
  add_incidents(out, p.incidents_started, p.open_incidents);
  add_capture(out, p.interfaces, p.worker_packets, p.lag);
  add_decode(out, p.decode, p.engine);
  add_tables(out, p);
  add_outputs(out, s.outputs);
  add_actions(out, s.actions);
  add_nftables(out, s.nftables_actions);
  add_memory(out, p.memory_bound);
  add_evidence(out, p.evidence);
  add_kernel(out, p.kernel);
  add_webhooks(out, s.webhooks);
  add_config_and_build(out, s, version_);
  add_process_metrics(out, start_time_);
  return out;
}

}  // namespace synwatch
