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

// How the server answers the attack's SYNs, for the scenarios that take --answer.
enum class SynReply : std::uint8_t {
  kNone,    // unanswered: a firewall drops SYNs to closed ports
  kSynAck,  // one SYN-ACK per SYN (SYN cookies keep no state to retransmit)
  kRst,     // RST-ACK (seq 0, ack = SYN's seq + 1): nothing listens on the port
};

std::optional<SynReply> parse_syn_reply(std::string_view name) noexcept;
std::string_view to_string(SynReply reply) noexcept;

struct GeneratorOptions {
  std::string scenario;
  std::string out;
  std::uint64_t seed = 1;
  std::optional<double> rate;      // packets or connections per second (see ScenarioInfo)
  std::optional<double> duration;  // seconds
  std::optional<std::uint64_t> count;
  std::optional<double> legit_rate;  // legitimate connections per second beside the attack
  std::optional<double> history;     // seconds of legitimate load alone before the attack
  std::optional<SynReply> answer;
  // Every frame written twice, back to back with the same timestamp (a span port that copies
  // both directions of a link it also sees directly). Counts in the summary are frames written.
  bool duplicate = false;
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
  std::optional<SynReply> answer = std::nullopt;
  std::optional<double> legit_rate = std::nullopt;  // connections/s
  std::optional<double> history = std::nullopt;     // seconds
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
