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

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
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

MetricType type_of(FigureKind kind) {
  return kind == FigureKind::kCounter ? MetricType::Counter : MetricType::Gauge;
}

template <typename Struct, typename Value, std::size_t N>
MetricFamily family(const LabelledFigures<Struct, Value, N>& figures) {
  return family(std::string(figures.metric), std::string(figures.help), type_of(figures.kind));
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

// A whole host (an incident over its ports) has port "all".
Labels destination_labels(const Endpoint& target, bool host = false) {
  return {{"address", target.address.to_string()},
          {"port", host ? std::string("all") : std::to_string(target.port)}};
}

Labels with(Labels labels, std::string name, std::string value) {
  labels.push_back({std::move(name), std::move(value)});
  return labels;
}

double now_unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Standard process metrics from /proc/self, as the Prometheus client libraries name them.
void add_process_metrics(std::vector<MetricFamily>& out, double start_time) {
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
      auto c = family("process_cpu_seconds_total",
                      "Total user and system CPU time spent in seconds.", MetricType::Counter);
      add(c, {}, cpu);
      out.push_back(std::move(c));
      auto v = family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                      MetricType::Gauge);
      add(v, {}, std::stod(f[20]));
      out.push_back(std::move(v));
      auto r = family("process_resident_memory_bytes", "Resident memory size in bytes.",
                      MetricType::Gauge);
      add(r, {}, std::stod(f[21]) * static_cast<double>(page));
      out.push_back(std::move(r));
    }
  }
  auto s = family("process_start_time_seconds",
                  "Start time of the process since unix epoch in seconds.", MetricType::Gauge);
  add(s, {}, start_time);
  out.push_back(std::move(s));
  double open_fds = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (const dirent* entry = readdir(dir)) open_fds += entry->d_name[0] != '.';
    closedir(dir);
  }
  auto o = family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge);
  add(o, {}, open_fds);
  out.push_back(std::move(o));
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  auto m = family("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge);
  add(m, {}, static_cast<double>(limit.rlim_cur));
  out.push_back(std::move(m));
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
  std::vector<MetricFamily> out;

  auto half_open =
      family("synwatch_half_open_connections",
             "Half-open TCP connections to the destination right now, by handshake state "
             "(syn_recv: SYN-ACK sent, syn_seen: SYN seen, no answer yet).",
             MetricType::Gauge);
  auto events = family(kDestinationEvents);
  auto distinct =
      family("synwatch_distinct_sources",
             "Distinct SYN sources in the sliding window (HyperLogLog estimate, 3.25% error).",
             MetricType::Gauge);
  auto entropy =
      family("synwatch_source_entropy",
             "Normalised entropy of SYN sources in the window: 1 = every SYN from a new source.",
             MetricType::Gauge);
  auto completion = family("synwatch_completion_ratio",
                           "Completed handshakes / new SYNs in the window.", MetricType::Gauge);
  auto syn_rate =
      family("synwatch_syn_rate", "New SYNs per second over the window.", MetricType::Gauge);
  auto stale = family("synwatch_stale_half_open",
                      "Stale half-open handshakes in the window: pending past the destination's "
                      "normal handshake time, or failed, and not completed since.",
                      MetricType::Gauge);
  auto baseline = family("synwatch_stale_baseline",
                         "The destination's normal stale level, learned while no incident is open.",
                         MetricType::Gauge);
  auto attack =
      family("synwatch_attack_active",
             "1 while a SYN flood incident is open on the destination, labelled with its kind.",
             MetricType::Gauge);
  for (const auto& d : p.destinations_exported) {
    const Labels labels = destination_labels(d.target, d.host);
    add(half_open, with(labels, "state", "syn_recv"), d.syn_recv);
    add(half_open, with(labels, "state", "syn_seen"), d.syn_seen);
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

  auto started = family("synwatch_incidents_started_total", "SYN flood incidents started, by kind.",
                        MetricType::Counter);
  for (std::size_t k = 0; k < kAttackKindCount; ++k) {
    add(started, {{"kind", std::string(to_string(static_cast<AttackKind>(k)))}},
        static_cast<double>(p.incidents_started[k]));
  }
  out.push_back(std::move(started));
  auto open = family("synwatch_incidents_open", "Incidents open right now.", MetricType::Gauge);
  add(open, {}, static_cast<double>(p.open_incidents));
  out.push_back(std::move(open));

  auto packets = family("synwatch_capture_packets_total",
                        "Packets that passed the capture filter, by interface (pcap_stats).",
                        MetricType::Counter);
  auto dropped =
      family("synwatch_capture_dropped_packets_total",
             "Packets dropped before synwatch saw them: where=kernel (capture ring full) or "
             "interface (driver).",
             MetricType::Counter);
  auto up = family("synwatch_capture_interface_up", "1 while capture on the interface is open.",
                   MetricType::Gauge);
  for (const auto& i : p.interfaces) {
    add(packets, {{"interface", i.name}}, static_cast<double>(i.stats.received));
    add(dropped, {{"interface", i.name}, {"where", "kernel"}},
        static_cast<double>(i.stats.dropped_kernel));
    add(dropped, {{"interface", i.name}, {"where", "interface"}},
        static_cast<double>(i.stats.dropped_interface));
    add(up, {{"interface", i.name}}, i.open ? 1 : 0);
  }
  out.push_back(std::move(packets));
  out.push_back(std::move(dropped));
  out.push_back(std::move(up));
  auto worker_packets = family(
      "synwatch_capture_worker_packets_total",
      "Frames each capture worker handed to its share of the handshake table (capture.workers; "
      "an even spread means the flow hash balances).",
      MetricType::Counter);
  for (std::size_t w = 0; w < p.worker_packets.size(); ++w) {
    add(worker_packets, {{"worker", std::to_string(w)}}, static_cast<double>(p.worker_packets[w]));
  }
  out.push_back(std::move(worker_packets));
  auto lag =
      family("synwatch_capture_lag_seconds",
             "Wall clock minus the newest packet's timestamp: how far processing trails capture.",
             MetricType::Gauge);
  add(lag, {}, std::chrono::duration<double>(p.lag).count());
  out.push_back(std::move(lag));

  auto decode = family("synwatch_decode_errors_total", "Malformed or truncated frames, by reason.",
                       MetricType::Counter);
  for (std::size_t r = 0; r < p.decode.by_result.size(); ++r) {
    const auto reason = static_cast<DecodeResult>(r);
    if (!is_decode_error(reason)) continue;
    add(decode, {{"reason", std::string(to_string(reason))}},
        static_cast<double>(p.decode.by_result[r]));
  }
  out.push_back(std::move(decode));
  auto processed = family("synwatch_packets_processed_total", "Frames handed to the decoder.",
                          MetricType::Counter);
  add(processed, {}, static_cast<double>(p.engine.packets));
  out.push_back(std::move(processed));

  const auto gauge = [&](std::string name, std::string help, double value) {
    auto f = family(std::move(name), std::move(help), MetricType::Gauge);
    add(f, {}, value);
    out.push_back(std::move(f));
  };
  const auto counter = [&](std::string name, std::string help, double value) {
    auto f = family(std::move(name), std::move(help), MetricType::Counter);
    add(f, {}, value);
    out.push_back(std::move(f));
  };
  gauge("synwatch_handshake_table_entries", "Pending handshakes tracked.",
        static_cast<double>(p.handshake_entries));
  gauge("synwatch_handshake_table_capacity", "Handshake table capacity (flow.capacity).",
        static_cast<double>(p.handshake_capacity));
  auto handshakes = family(kHandshakeEvents);
  add(handshakes, {}, kHandshakeEvents, p.handshakes);
  out.push_back(std::move(handshakes));
  counter("synwatch_handshake_table_evictions_total",
          "Pending handshakes evicted because the table was full (oldest first).",
          static_cast<double>(p.handshakes.evicted));
  gauge("synwatch_destinations_tracked", "Destinations with per-destination state.",
        static_cast<double>(p.destinations));
  counter("synwatch_destinations_dropped_total",
          "SYNs to new destinations not tracked because every tracked one had an open incident.",
          static_cast<double>(p.destination_counters.dropped));
  gauge("synwatch_destinations_unexported",
        "Tracked destinations left out of the per-destination series by metrics.max_destinations.",
        static_cast<double>(p.destinations_unexported));

  auto outputs = family("synwatch_event_outputs_total",
                        "Incident events written to each output, by result.", MetricType::Counter);
  for (const auto& [name, counts] : s.outputs) {
    add(outputs, {{"output", name}, {"result", "success"}}, static_cast<double>(counts.success));
    add(outputs, {{"output", name}, {"result", "failure"}}, static_cast<double>(counts.failure));
  }
  out.push_back(std::move(outputs));

  if (!s.actions.empty()) {
    auto runs = family(kActionRunResults);
    auto running =
        family("synwatch_action_running", "Runs of each action going on now.", MetricType::Gauge);
    for (const auto& action : s.actions) {
      add(runs, {{"action", action.name}}, kActionRunResults, action);
      add(running, {{"action", action.name}}, static_cast<double>(action.running));
    }
    out.push_back(std::move(runs));
    out.push_back(std::move(running));
  }

  if (!s.nftables_actions.empty()) {
    auto elements = family(kNftablesElementOutcomes);
    auto skipped = family("synwatch_nftables_skipped_total",
                          "Top sources of incidents an nftables action did not block, by reason.",
                          MetricType::Counter);
    auto held = family("synwatch_nftables_held",
                       "Set elements each nftables action holds now (at most max_entries).",
                       MetricType::Gauge);
    auto events_dropped = family("synwatch_nftables_events_dropped_total",
                                 "Events an nftables action dropped because its queue was full.",
                                 MetricType::Counter);
    for (const auto& action : s.nftables_actions) {
      add(elements, {{"action", action.name}}, kNftablesElementOutcomes, action);
      for (const auto& [reason, count] : action.skipped) {
        add(skipped, {{"action", action.name}, {"reason", reason}}, static_cast<double>(count));
      }
      add(held, {{"action", action.name}}, static_cast<double>(action.held));
      add(events_dropped, {{"action", action.name}}, static_cast<double>(action.events_dropped));
    }
    out.push_back(std::move(elements));
    out.push_back(std::move(skipped));
    out.push_back(std::move(held));
    out.push_back(std::move(events_dropped));
  }

  auto memory = family("synwatch_memory_bound_bytes",
                       "What the daemon's memory is bounded by, by part (see README, Memory); "
                       "compare the sum with process_resident_memory_bytes.",
                       MetricType::Gauge);
  const MemoryBound& bound = p.memory_bound;
  for (const auto& [part, bytes] :
       {std::pair{"capture_rings", bound.capture_rings}, std::pair{"tables", bound.tables},
        std::pair{"merged", bound.merged}, std::pair{"kernel", bound.kernel},
        std::pair{"evidence", bound.evidence}, std::pair{"fixed", bound.fixed}}) {
    add(memory, {{"part", part}}, static_cast<double>(bytes));
  }
  out.push_back(std::move(memory));

  if (p.evidence.enabled) {
    const EvidenceSnapshot& e = p.evidence;
    auto evidence_packets =
        family("synwatch_evidence_packets_total",
               "Sampled SYNs of open incidents by what became of them: written to the "
               "incident's evidence capture, or dropped because the ring was full "
               "(ring_full), the incident's file or all files were at their cap "
               "(incident_cap, total_cap), of another link type than the file's "
               "(link_mismatch) or not writable (write_error).",
               MetricType::Counter);
    for (const auto& [outcome, count] :
         {std::pair{"written", e.writer.frames_written}, std::pair{"ring_full", e.taps.ring_full},
          std::pair{"incident_cap", e.writer.dropped_incident_cap},
          std::pair{"total_cap", e.writer.dropped_total_cap},
          std::pair{"link_mismatch", e.writer.dropped_link_mismatch},
          std::pair{"write_error", e.writer.dropped_write_error}}) {
      add(evidence_packets, {{"outcome", outcome}}, static_cast<double>(count));
    }
    out.push_back(std::move(evidence_packets));
    gauge("synwatch_evidence_bytes", "Bytes of evidence captures on disk (evidence.directory).",
          static_cast<double>(e.writer.bytes_on_disk));
    gauge("synwatch_evidence_files", "Evidence capture files on disk.",
          static_cast<double>(e.writer.files));
    counter("synwatch_evidence_files_removed_total",
            "Evidence files of ended incidents removed, oldest first, to stay within "
            "evidence.max_total_bytes.",
            static_cast<double>(e.writer.files_removed));
    counter("synwatch_evidence_incidents_unrecorded_total",
            "Incidents without evidence because 32 were being recorded at once.",
            static_cast<double>(e.taps.watches_refused));
  }

  if (p.kernel.enabled) {
    const KernelViewSnapshot& k = p.kernel;
    auto k_syn_recv = family("synwatch_kernel_syn_recv",
                             "SYN_RECV request sockets per local address:port, from the kernel "
                             "(NETLINK_SOCK_DIAG), as `ss -tan state syn-recv` counts them.",
                             MetricType::Gauge);
    auto k_attack = family("synwatch_kernel_attack_active",
                           "1 while the kernel view has an incident open on the destination.",
                           MetricType::Gauge);
    for (const auto& d : k.destinations) {
      add(k_syn_recv, destination_labels(d.target), d.syn_recv);
      if (d.attack) {
        add(k_attack, with(destination_labels(d.target), "kind", std::string(to_string(*d.attack))),
            1);
      }
    }
    auto k_fill = family("synwatch_kernel_accept_queue_ratio",
                         "Listener accept queue length / backlog (ss -lnt Recv-Q / Send-Q).",
                         MetricType::Gauge);
    auto k_queue = family("synwatch_kernel_syn_queue_length",
                          "Request sockets in the listener's SYN queue.", MetricType::Gauge);
    for (const auto& l : k.listeners) {
      const Labels labels = destination_labels(l.local);
      add(k_fill, labels, l.backlog == 0 ? 0.0 : static_cast<double>(l.accept_queue) / l.backlog);
      add(k_queue, labels, l.syn_recv);
    }
    for (auto* f : {&k_syn_recv, &k_attack, &k_fill, &k_queue}) out.push_back(std::move(*f));
    if (k.tcp_ext) {
      for (const auto& counter_of : kTcpExtCounterList) {
        const auto& figure = counter_of.figure;
        counter(std::string(figure.name), std::string(figure.help),
                static_cast<double>(*k.tcp_ext.*figure.member));
      }
    }
    counter("synwatch_kernel_polls_total", "Kernel view polls.", static_cast<double>(k.polls));
    counter("synwatch_kernel_poll_failures_total", "Kernel view polls that failed.",
            static_cast<double>(k.poll_failures));
    gauge("synwatch_kernel_last_poll_duration_seconds", "Duration of the last kernel view poll.",
          std::chrono::duration<double>(k.last_poll_duration).count());
    counter("synwatch_kernel_unattributed_syncookies_total",
            "SYN cookies sent while no listener's SYN queue was full (not attributed to a "
            "destination).",
            static_cast<double>(k.unattributed_syncookies));
  }

  auto delivered =
      family("synwatch_webhook_deliveries_total",
             "Events a webhook receiver acknowledged with a 2xx.", MetricType::Counter);
  auto failed =
      family("synwatch_webhook_failures_total",
             "Failed webhook delivery attempts, by reason (each is retried).", MetricType::Counter);
  auto given_up = family("synwatch_webhook_given_up_total",
                         "Events given up after the retry limit.", MetricType::Counter);
  auto spool_dropped =
      family("synwatch_webhook_dropped_total",
             "Events dropped because the receiver's spool was full.", MetricType::Counter);
  auto queued = family("synwatch_webhook_queue_depth", "Events waiting for delivery (spooled).",
                       MetricType::Gauge);
  for (const auto& r : s.webhooks.receivers) {
    add(delivered, {{"receiver", r.name}}, static_cast<double>(r.delivered));
    for (std::size_t k = 0; k < r.failures.size(); ++k) {
      add(failed,
          {{"receiver", r.name},
           {"reason", std::string(to_string(static_cast<WebhookFailure>(k)))}},
          static_cast<double>(r.failures[k]));
    }
    add(given_up, {{"receiver", r.name}}, static_cast<double>(r.given_up));
    add(spool_dropped, {{"receiver", r.name}}, static_cast<double>(r.dropped));
    add(queued, {{"receiver", r.name}}, static_cast<double>(r.queue_depth));
  }
  for (auto* f : {&delivered, &failed, &given_up, &spool_dropped, &queued}) {
    out.push_back(std::move(*f));
  }

  gauge("synwatch_config_last_reload_successful", "1 if the last configuration (re)load succeeded.",
        s.last_reload_successful ? 1 : 0);
  gauge("synwatch_config_last_reload_success_timestamp_seconds",
        "Time of the last successful configuration load, Unix seconds.",
        s.last_reload_success_time);
  auto build = family("synwatch_build_info", "synwatch version; always 1.", MetricType::Gauge);
  add(build, {{"version", version_}}, 1);
  out.push_back(std::move(build));
  add_process_metrics(out, start_time_);
  return out;
}

}  // namespace synwatch
