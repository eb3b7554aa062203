#pragma once
// The one table of configuration keys. Each entry names a dotted YAML path, its kind and range,
// a one-line doc, and how to read and write its field in Config. The loader (parsing, unknown-key
// detection with did-you-mean, --set overrides) and config_reference() are all driven by it.
// A key's default is whatever Config{} holds, so config.hpp stays the single source of defaults.
//
// Adding a key: add the field to config.hpp and one entry to the table in schema.cpp (and the
// key, with a comment, to config/synwatch.yaml; a test fails until it is there).
//
// Thread safety: the table is built once on first use (a function-local static) and is never
// modified afterwards; read it from any thread.

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/ip_address.hpp"
#include "common/time.hpp"
#include "config/config.hpp"
#include "config/loader.hpp"

namespace synwatch {

enum class ConfigKind : std::uint8_t {
  kBool,
  kUnsigned,  // decimal, range-checked
  kDouble,    // finite, range-checked
  kDuration,  // YAML number = seconds, or "500ms", "1.5s", "2m", "1h"; range-checked
  kString,
  kEnum,        // one of `choices`
  kPrefixList,  // sequence of CIDR prefixes (IpPrefix::parse)
  kStringList,  // sequence of strings
  kStringMap,   // mapping of string to string (e.g. HTTP headers)
  // Sequence of mappings, each element with the fields in `fields` (alerts.webhooks). Errors
  // name the element and field: "alerts.webhooks[2].url". Values: the key's element type.
  kMappingList,
};

// A parsed value of any kind: kUnsigned -> uint64_t, kDuration -> DurationNs, kString and kEnum ->
// std::string; the alternatives are distinct types so a value carries its kind.
using ConfigValue =
    std::variant<bool, std::uint64_t, double, DurationNs, std::string, std::vector<IpPrefix>,
                 std::vector<std::string>, std::map<std::string, std::string>,
                 std::vector<WebhookConfig>, std::vector<ActionConfig>>;

// The fields of one kMappingList element as parsed, by field name (absent = not given).
using ConfigRecord = std::map<std::string, ConfigValue, std::less<>>;

// A problem with one field of an element, found by a kMappingList key's check_element.
struct ConfigFieldProblem {
  std::string field;
  std::string message;
};

// What a reload (SIGHUP) does with a changed value.
enum class ReloadEffect : std::uint8_t {
  kApplied,    // applied at once
  kAtRestart,  // sizes memory, threads or the window, or is set up once at start: kept
};

struct ConfigKey {
  std::string_view path;  // dotted, e.g. "detection.spoofed.min_entropy"
  ReloadEffect reload = ReloadEffect::kApplied;
  ConfigKind kind = ConfigKind::kString;
  ConfigValue minimum;  // inclusive bounds; used by kUnsigned, kDouble and kDuration only
  ConfigValue maximum;
  std::vector<std::string_view> choices;                  // kEnum only
  std::string_view doc;                                   // one line, for config_reference()
  void (*assign)(Config&, const ConfigValue&) = nullptr;  // value must hold the kind's type
  ConfigValue (*read)(const Config&) = nullptr;
  // A check of the value beyond its kind and range (e.g. that a BPF filter compiles); returns
  // the problem, reported at the value's position.
  std::optional<std::string> (*check_value)(const ConfigValue&) = nullptr;

  // kMappingList only. `fields` are the element's fields (path = field name; assign/read unused);
  // a field with `required` must be given. check_element validates a parsed element beyond kinds
  // and ranges (e.g. the URL, the secret file); append_element adds it to the list value.
  std::vector<ConfigKey> fields;
  bool required = false;
  std::string_view unique_field;  // a field whose value must differ between elements
  std::vector<ConfigFieldProblem> (*check_element)(const ConfigRecord&) = nullptr;
  void (*append_element)(ConfigValue& list, const ConfigRecord&) = nullptr;

  // "an unsigned integer in [1, 32]", "one of trace, debug, ...": used in error messages.
  [[nodiscard]] std::string describe_type() const;
};

// Every key, in the order config_reference() lists them.
std::span<const ConfigKey> config_schema();

// The key with exactly this dotted path, or nullptr.
const ConfigKey* find_config_key(std::string_view path);

// A relation between keys that one range cannot express (e.g. "window is a whole multiple of
// tick"). `check` returns the problem, or nullopt when the configuration satisfies it. The problem
// is reported at `reported_at`; the check is skipped when any involved key had an invalid value.
struct ConfigCrossCheck {
  std::string_view reported_at;
  std::vector<std::string_view> depends_on;
  std::optional<std::string> (*check)(const Config&) = nullptr;
};
std::span<const ConfigCrossCheck> config_cross_checks();

// Parses one value for `key` from YAML text (a scalar, "[a, b]", or a block). Error locations are
// positions in `yaml_text`, reported in `source_name`. Checks kind and range, not cross-key rules.
std::expected<ConfigValue, std::vector<ConfigError>> parse_config_value(
    const ConfigKey& key, std::string_view yaml_text, const std::string& source_name);

// The keys whose value differs between `running` and `next` but which a reload keeps at their
// running value (ReloadEffect::kAtRestart), in schema order.
std::vector<std::string> keys_needing_restart(const Config& running, const Config& next);
// `next` with every kAtRestart key set back to its running value: what a reload runs with.
Config applied_on_reload(const Config& running, const Config& next);

// Formats a value the way it would be written in YAML ("63s", "0.85", "[10.0.0.0/8]").
std::string format_config_value(const ConfigKey& key, const ConfigValue& value);

// "500ms", "63s", "24h": the largest of h, s, ms that represents `duration` exactly.
std::string format_duration(DurationNs duration);

// Parses "500ms", "1.5s", "2m", "1h" or a bare number of seconds ("5", "0.25"). Values beyond the
// DurationNs range saturate, so that callers report them as out of range rather than malformed.
std::optional<DurationNs> parse_duration(std::string_view text);

// Every key with its accepted values, default and doc, for the README and --help.
std::string config_reference();

}  // namespace synwatch
