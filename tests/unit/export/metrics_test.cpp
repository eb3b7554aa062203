// The /metrics page drawn from figure lists declared beside their structs: every listed member
// reaches the page under its label value with its own value, and the README's metric table
// documents every label value a list declares.
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
    state_.pipeline.destinations_exported.push_back(d);

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

TEST(MetricsReadme, DocumentsEveryDeclaredLabelValue) {
  expect_documented(kDestinationEvents);
  expect_documented(kHandshakeEvents);
  expect_documented(kActionRunResults);
  expect_documented(kNftablesElementOutcomes);
}

}  // namespace
}  // namespace synwatch
