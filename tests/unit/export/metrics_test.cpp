// The /metrics page drawn from figure lists declared beside their structs: every listed member
// reaches the page under its label value with its own value, and the README's metric table
// documents every label value a list declares. Reasons of an enum (webhook failures) likewise.
#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "aggregate/destination_table.hpp"
#include "flow/handshake_table.hpp"
#include "export/metrics.hpp"
#include "kernel/tcp_stats.hpp"

namespace synwatch {
namespace {

const prometheus::MetricFamily* find_family(const std::vector<prometheus::MetricFamily>& page,
                                            std::string_view name) {
  for (const auto& f : page) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::optional<std::string> label_of(const prometheus::ClientMetric& m, std::string_view name) {
  for (const auto& l : m.label) {
    if (l.name == name) return l.value;
  }
  return std::nullopt;
}

double value_of(const prometheus::MetricFamily& f, const prometheus::ClientMetric& m) {
  return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
}

// Each listed member gets a distinct value (its position + `offset`), so a sample under the
// wrong label value shows.
template <typename Struct, typename Value, std::size_t N>
Struct numbered(const LabelledFigures<Struct, Value, N>& figures, Struct values, Value offset) {
  Value next = offset;
  for (const auto& figure : figures.members) values.*figure.member = next++;
  return values;
}

// The family has exactly one sample per listed member carrying `with` (label, value), and that
// sample's value is the member's.
template <typename Struct, typename Value, std::size_t N>
void expect_every_member(const std::vector<prometheus::MetricFamily>& page,
                         const LabelledFigures<Struct, Value, N>& figures, const Struct& values,
                         const std::pair<std::string, std::string>& with = {}) {
  const auto* family = find_family(page, figures.metric);
  ASSERT_NE(family, nullptr) << figures.metric;
  EXPECT_EQ(family->help, figures.help);
  for (const auto& figure : figures.members) {
    int found = 0;
    for (const auto& m : family->metric) {
      if (label_of(m, figures.label) != std::string(figure.name)) continue;
      if (!with.first.empty() && label_of(m, with.first) != with.second) continue;
      ++found;
      EXPECT_EQ(value_of(*family, m), static_cast<double>(values.*figure.member))
          << figures.metric << " " << figures.label << "=" << figure.name;
    }
    EXPECT_EQ(found, 1) << figures.metric << " " << figures.label << "=" << figure.name;
  }
}

class MetricsPage : public ::testing::Test {
 protected:
  MetricsPage() {
    ExportedDestinationStats d;
    d.target = Endpoint{IpAddress::from_v4(0xC6336401U), 443};  // 198.51.100.1
    d.totals = numbered(kDestinationEvents, DestinationEventStats{}, std::uint64_t{100});
    state_.pipeline.destinations_exported.push_back(
        numbered(kHalfOpenStates, d, std::uint32_t{600}));

    for (const auto* name : {"eth0", "eth1"}) {
      InterfaceHealth interface;
      interface.name = name;
      interface.stats = numbered(kCaptureDrops, CaptureStats{},
                                 std::uint64_t{700 + 10 * state_.pipeline.interfaces.size()});
      state_.pipeline.interfaces.push_back(interface);
    }

    state_.pipeline.memory_bound = numbered(kMemoryBoundParts, MemoryBound{}, std::size_t{800});

    // Every figure of the writer and the taps differs, outcomes or not, so that an outcome drawn
    // from the wrong one shows.
    state_.pipeline.evidence.enabled = true;
    state_.pipeline.evidence.writer = {.frames_written = 901,
                                       .dropped_incident_cap = 902,
                                       .dropped_total_cap = 903,
                                       .dropped_link_mismatch = 904,
                                       .dropped_write_error = 905,
                                       .files_removed = 906,
                                       .bytes_on_disk = 907,
                                       .files = 908};
    state_.pipeline.evidence.taps = {.copied = 911, .ring_full = 912, .watches_refused = 913};

    WebhookReceiverStats receiver;
    receiver.name = "alertmanager";
    for (std::size_t k = 0; k < receiver.failures.size(); ++k) receiver.failures[k] = 1000 + k;
    state_.webhooks.receivers.push_back(receiver);

    ActionRunStats run;
    run.name = "page";
    state_.actions.push_back(numbered(kActionRunResults, run, std::uint64_t{200}));

    NftablesActionStats block;
    block.name = "block";
    state_.nftables_actions.push_back(
        numbered(kNftablesElementOutcomes, block, std::uint64_t{300}));

    state_.pipeline.handshakes =
        numbered(kHandshakeEvents, HandshakeTableStats{}, std::uint64_t{500});

    TcpExtStats tcp_ext;
    std::uint64_t next = 400;
    for (const auto& counter : kTcpExtCounterList) tcp_ext.*counter.figure.member = next++;
    state_.pipeline.kernel.enabled = true;
    state_.pipeline.kernel.tcp_ext = tcp_ext;
    exporter_.update(state_);
  }

  MetricsState state_;
  MetricsExporter exporter_{"test"};
};

TEST_F(MetricsPage, EveryDestinationEventIsExportedWithItsOwnValue) {
  expect_every_member(exporter_.Collect(), kDestinationEvents,
                      state_.pipeline.destinations_exported[0].totals, {"port", "443"});
}

TEST_F(MetricsPage, EveryHandshakeTableEventIsExportedOnce) {
  expect_every_member(exporter_.Collect(), kHandshakeEvents, state_.pipeline.handshakes);
}

TEST_F(MetricsPage, EveryActionResultAndNftablesOutcomeIsExportedPerAction) {
  const auto page = exporter_.Collect();
  expect_every_member(page, kActionRunResults, state_.actions[0], {"action", "page"});
  expect_every_member(page, kNftablesElementOutcomes, state_.nftables_actions[0],
                      {"action", "block"});
}

TEST_F(MetricsPage, EveryTcpExtCounterIsAMetricOfItsOwn) {
  const auto page = exporter_.Collect();
  for (const auto& counter : kTcpExtCounterList) {
    const auto* family = find_family(page, counter.figure.name);
    ASSERT_NE(family, nullptr) << counter.figure.name;
    EXPECT_EQ(family->type, prometheus::MetricType::Counter);
    EXPECT_EQ(family->help, counter.figure.help);
    ASSERT_EQ(family->metric.size(), 1U);
    EXPECT_EQ(family->metric[0].counter.value,
              static_cast<double>(*state_.pipeline.kernel.tcp_ext.*counter.figure.member));
  }
}

TEST_F(MetricsPage, EveryHalfOpenStateIsExportedPerDestination) {
  expect_every_member(exporter_.Collect(), kHalfOpenStates,
                      state_.pipeline.destinations_exported[0], {"port", "443"});
}

TEST_F(MetricsPage, EveryCaptureLossIsExportedPerInterface) {
  const auto page = exporter_.Collect();
  for (const auto& interface : state_.pipeline.interfaces) {
    expect_every_member(page, kCaptureDrops, interface.stats, {"interface", interface.name});
  }
}

TEST_F(MetricsPage, EveryMemoryBoundPartIsExportedAndThePartsAddUpToTheTotal) {
  const auto page = exporter_.Collect();
  const MemoryBound& bound = state_.pipeline.memory_bound;
  expect_every_member(page, kMemoryBoundParts, bound);
  const auto* family = find_family(page, kMemoryBoundParts.metric);
  ASSERT_NE(family, nullptr);
  double sum = 0;
  for (const auto& m : family->metric) sum += m.gauge.value;
  EXPECT_EQ(sum, static_cast<double>(bound.total()));
}

TEST_F(MetricsPage, EveryEvidenceOutcomeIsExportedFromItsOwnFigure) {
  const EvidenceSnapshot& evidence = state_.pipeline.evidence;
  const EvidenceOutcomeStats outcomes = evidence.outcomes();
  expect_every_member(exporter_.Collect(), kEvidenceOutcomes, outcomes);
  // The writer's and the taps' other figures are families of their own, never an outcome.
  std::set<std::uint64_t> seen{evidence.writer.files_removed, evidence.writer.bytes_on_disk,
                               evidence.writer.files, evidence.taps.copied,
                               evidence.taps.watches_refused};
  for (const auto& outcome : kEvidenceOutcomes.members) {
    EXPECT_TRUE(seen.insert(outcomes.*outcome.member).second)
        << "outcome " << outcome.name << " repeats another figure";
  }
}

TEST_F(MetricsPage, EveryWebhookFailureReasonIsExportedPerReceiver) {
  const auto page = exporter_.Collect();
  const auto* family = find_family(page, "synwatch_webhook_failures_total");
  ASSERT_NE(family, nullptr);
  const WebhookReceiverStats& receiver = state_.webhooks.receivers[0];
  for (std::size_t k = 0; k < kWebhookFailureKinds; ++k) {
    const std::string reason(to_string(static_cast<WebhookFailure>(k)));
    int found = 0;
    for (const auto& m : family->metric) {
      if (label_of(m, "receiver") != receiver.name || label_of(m, "reason") != reason) continue;
      ++found;
      EXPECT_EQ(m.counter.value, static_cast<double>(receiver.failures[k])) << reason;
    }
    EXPECT_EQ(found, 1) << reason;
  }
}

TEST_F(MetricsPage, EveryFamilyNameIsUniqueAndEveryPageParsesAsText) {
  const auto page = exporter_.Collect();
  std::set<std::string> names;
  for (const auto& f : page) EXPECT_TRUE(names.insert(f.name).second) << f.name;
  const std::string text = exporter_.render();
  EXPECT_NE(text.find("synwatch_handshake_events_total{address=\"198.51.100.1\",port=\"443\","
                      "event=\"stale\"} 107"),
            std::string::npos)
      << text.substr(0, 2000);
}

// The README's metric table row of a family names each of its label values as `value`.
std::string readme_row(std::string_view metric) {
  std::ifstream readme(SYNWATCH_README);
  std::string line;
  while (std::getline(readme, line)) {
    if (line.starts_with("| `" + std::string(metric))) return line;
  }
  return {};
}

template <typename Struct, typename Value, std::size_t N>
void expect_documented(const LabelledFigures<Struct, Value, N>& figures) {
  const std::string row = readme_row(figures.metric);
  ASSERT_FALSE(row.empty()) << figures.metric << " has no row in README.md's metric tables";
  for (const auto& figure : figures.members) {
    EXPECT_NE(row.find("`" + std::string(figure.name) + "`"), std::string::npos)
        << "README.md's row of " << figures.metric << " lacks " << figures.label << " `"
        << figure.name << "`: " << row;
  }
}

// Every family of a page with every part present (evidence, the kernel view, actions, webhooks)
// is named in README.md, in backticks, so that an operator can look up any series they see.
TEST_F(MetricsPage, EveryFamilyIsNamedInTheReadme) {
  std::ifstream readme(SYNWATCH_README);
  std::stringstream text;
  text << readme.rdbuf();
  const std::string documented = text.str();
  ASSERT_FALSE(documented.empty()) << SYNWATCH_README;
  const auto page = exporter_.Collect();
  EXPECT_GT(page.size(), 50U);  // the page really has every part
  for (const auto& family : page) {
    if (family.name.starts_with("process_")) continue;  // prometheus-cpp's standard ones
    const bool named = documented.find("`" + family.name + "`") != std::string::npos ||
                       documented.find("`" + family.name + "{") != std::string::npos;
    EXPECT_TRUE(named) << family.name << " is not named in README.md";
  }
}

TEST(MetricsReadme, DocumentsEveryDeclaredLabelValue) {
  expect_documented(kDestinationEvents);
  expect_documented(kHandshakeEvents);
  expect_documented(kActionRunResults);
  expect_documented(kNftablesElementOutcomes);
  expect_documented(kHalfOpenStates);
  expect_documented(kCaptureDrops);
  expect_documented(kMemoryBoundParts);
  expect_documented(kEvidenceOutcomes);
}

}  // namespace
}  // namespace synwatch
