#pragma once
// The generator's scenarios: what traffic each one writes and its defaults. Every scenario is
// a pure function of GeneratorOptions: same options (seed included) -> byte-identical file.
//
// Thread safety: run_scenario() shares no state; independent runs may proceed in parallel.

#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/ip_address.hpp"
#include "common/time.hpp"
#include "packet_builder.hpp"

namespace synwatch::gen {

// 2024-01-01T00:00:00Z: packet times start here unless --start says otherwise.
inline constexpr TimestampNs kDefaultStart = 1'704'067'200LL * kNanosPerSecond;

struct GeneratorOptions {
  std::string scenario;
  std::string out;
  std::uint64_t seed = 1;
  std::optional<double> rate;      // packets or connections per second (see ScenarioInfo)
  std::optional<double> duration;  // seconds
  std::optional<std::uint64_t> count;
  std::optional<Endpoint> target;
  Link link = Link::kEthernet;
  TimestampNs start = kDefaultStart;
};

struct ScenarioInfo {
  std::string_view name;
  std::string_view description;
  // Defaults; an absent default means the scenario rejects that option.
  std::optional<double> rate;
  std::string_view rate_unit;
  std::optional<double> duration;
  std::optional<std::uint64_t> count;
  std::string_view count_unit;
  bool ipv6_default_target = false;
};

std::span<const ScenarioInfo> scenarios() noexcept;
const ScenarioInfo* find_scenario(std::string_view name) noexcept;

// One line of JSON: {"scenario":...,"packets":...,...,"target":"addr:port"}.
struct Summary {
  std::string scenario;
  std::uint64_t packets = 0;
  std::uint64_t syns = 0;
  std::uint64_t synacks = 0;
  TimestampNs first_ts = 0;
  TimestampNs last_ts = 0;
  std::optional<TimestampNs> flood_start_ts;  // null for scenarios without a flood
  Endpoint target;

  [[nodiscard]] std::string to_json() const;
};

// Validates the options against the scenario, writes the capture and returns its summary.
std::expected<Summary, std::string> run_scenario(const GeneratorOptions& options);

// "198.51.100.10:80" or "[2001:db8::10]:443".
std::optional<Endpoint> parse_endpoint(std::string_view text);
// "1704067200" or "1704067200.330" (up to 9 decimals) -> nanoseconds.
std::optional<TimestampNs> parse_epoch_seconds(std::string_view text);

}  // namespace synwatch::gen
