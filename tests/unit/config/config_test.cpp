#include "config/config.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/loader.hpp"
#include "config/schema.hpp"

namespace synwatch {
namespace {

using Lines = std::vector<std::string>;

Lines to_lines(const std::vector<ConfigError>& errors) {
  Lines lines;
  for (const auto& error : errors) lines.push_back(error.to_string());
  return lines;
}

// The error lines of loading `yaml` as "test.yaml"; empty when it loads.
Lines errors_of(std::string_view yaml, const std::vector<ConfigOverride>& overrides = {}) {
  const auto result = load_config_text(yaml, "test.yaml", overrides);
  return result ? Lines{} : to_lines(result.error());
}

Config load_ok(std::string_view yaml, const std::vector<ConfigOverride>& overrides = {}) {
  auto result = load_config_text(yaml, "test.yaml", overrides);
  EXPECT_TRUE(result) << (result ? "" : result.error().front().to_string());
  return result ? *result : Config{};
}

ConfigKey synthetic_key(std::string_view path, ConfigKind kind) {
  ConfigKey key;
  key.path = path;
  key.kind = kind;
  return key;
}

Lines value_errors(const ConfigKey& key, std::string_view yaml) {
  const auto result = parse_config_value(key, yaml, "v.yaml");
  return result ? Lines{} : to_lines(result.error());
}

const std::string kHalfOpenType = "expected an unsigned integer in [1, 100000000]";
const std::string kPrefixElement = "expected an IP prefix such as 10.0.0.0/8 or 2001:db8::/32";
const std::string kDurationForms =
    "(seconds as a number such as 5 or 0.25, or a number with unit ms, s, m or h such as 500ms, "
    "1.5s, 2m, 1h)";

// ---- defaults and the shipped file ------------------------------------------------------------

TEST(ConfigDefaults, NoFileGivesBuiltInDefaults) {
  const auto config = load_config("");
  ASSERT_TRUE(config) << to_lines(config.error()).front();
  EXPECT_EQ(*config, Config{});
  EXPECT_EQ(config->source_file, "");
  EXPECT_EQ(config->flow.pending_timeout, 63 * kNanosPerSecond);
  EXPECT_EQ(config->detection.half_open, 256u);
}

TEST(ConfigDefaults, EmptyOrCommentOnlyDocumentMeansDefaults) {
  for (const std::string_view text : {"", "\n", "# nothing here\n", "---\n", "~\n"}) {
    const auto config = load_config_text(text, "empty.yaml");
    ASSERT_TRUE(config) << "text: '" << text << "'";
    Config expected;
    expected.source_file = "empty.yaml";
    EXPECT_EQ(*config, expected);
  }
}

TEST(ConfigDefaults, EmptySectionKeepsDefaults) {
  const auto config = load_ok("detection:\nlog:\n");
  EXPECT_EQ(config.detection, DetectionConfig{});
}

TEST(ShippedConfig, LoadsToExactlyTheBuiltInDefaults) {
  const auto config = load_config(SYNWATCH_SHIPPED_CONFIG);
  ASSERT_TRUE(config) << to_lines(config.error()).front();
  EXPECT_EQ(config->source_file, SYNWATCH_SHIPPED_CONFIG);
  const Config defaults;
  for (const auto& key : config_schema()) {
    EXPECT_EQ(format_config_value(key, key.read(*config)),
              format_config_value(key, key.read(defaults)))
        << key.path;
  }
  Config without_name = *config;
  without_name.source_file.clear();
  EXPECT_EQ(without_name, defaults);
}

TEST(ShippedConfig, SetsEveryKeyWithACommentAbove) {
  const YAML::Node root = YAML::LoadFile(SYNWATCH_SHIPPED_CONFIG);
  std::ifstream in(SYNWATCH_SHIPPED_CONFIG);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);

  for (const auto& key : config_schema()) {
    // Walk the dotted path; yaml-cpp's operator[] on a const node does not insert.
    std::vector<YAML::Node> path_nodes{root};
    std::string_view rest = key.path;
    YAML::Mark key_mark;  // not a YAML::Node: assigning to a Node overwrites the node it refers to
    bool found = true;
    while (found) {
      const auto dot = rest.find('.');
      const std::string name(rest.substr(0, dot));
      const YAML::Node parent = path_nodes.back();  // a handle; push_back below may reallocate
      found = false;
      for (const auto& entry : parent) {
        if (entry.first.Scalar() == name) {
          key_mark = entry.first.Mark();
          path_nodes.push_back(entry.second);
          found = true;
        }
      }
      if (dot == std::string_view::npos) break;
      rest.remove_prefix(dot + 1);
    }
    ASSERT_TRUE(found) << "config/synwatch.yaml lacks " << key.path;
    const auto line_index = static_cast<std::size_t>(key_mark.line);
    ASSERT_GT(line_index, 0u) << key.path;
    const std::string& above = lines[line_index - 1];
    EXPECT_NE(above.find('#'), std::string::npos)
        << key.path << " has no comment on the line above it: '" << above << "'";
  }
}

TEST(ConfigReference, ListsEveryKeyWithItsDefaultTypeAndDoc) {
  const std::string reference = config_reference();
  const Config defaults;
  for (const auto& key : config_schema()) {
    const std::string entry =
        std::string(key.path) + " = " + format_config_value(key, key.read(defaults));
    EXPECT_NE(reference.find(entry + "\n"), std::string::npos) << entry;
    EXPECT_NE(reference.find(key.describe_type()), std::string::npos) << key.path;
    EXPECT_NE(reference.find(key.doc), std::string::npos) << key.path;
  }
  EXPECT_NE(reference.find("detection.half_open = 256\n"), std::string::npos);
  EXPECT_NE(reference.find("flow.pending_timeout = 63s\n"), std::string::npos);
  EXPECT_NE(reference.find("log.level = info\n"), std::string::npos);
}

// ---- the schema table itself ------------------------------------------------------------------

// A value of `key` that differs from `current` (the range end farther from it, another choice...).
ConfigValue other_value(const ConfigKey& key, const ConfigValue& current) {
  switch (key.kind) {
    case ConfigKind::kBool:
      return !std::get<bool>(current);
    case ConfigKind::kUnsigned:
    case ConfigKind::kDouble:
    case ConfigKind::kDuration:
      return current == key.maximum ? key.minimum : key.maximum;
    case ConfigKind::kString:
      return std::get<std::string>(current) + "x";
    case ConfigKind::kEnum:
      return std::string(std::get<std::string>(current) == key.choices.front()
                             ? key.choices.back()
                             : key.choices.front());
    case ConfigKind::kPrefixList:
      return std::vector<IpPrefix>{*IpPrefix::parse("192.0.2.0/24")};
    case ConfigKind::kStringList:
      return std::vector<std::string>{"x"};
    case ConfigKind::kStringMap:
      return std::map<std::string, std::string>{{"x", "y"}};
    case ConfigKind::kMappingList: {
      if (std::holds_alternative<std::vector<ActionConfig>>(current)) {
        ActionConfig action;
        action.name = "x";
        action.command = {"/bin/true"};
        return std::vector<ActionConfig>{action};
      }
      WebhookConfig webhook;
      webhook.name = "x";
      webhook.url = "http://127.0.0.1/";
      return std::vector<WebhookConfig>{webhook};
    }
  }
  return current;
}

TEST(ConfigSchema, EveryKeyIsUniqueDocumentedAndWritesItsOwnField) {
  const Config defaults;
  std::set<std::string_view> paths;
  for (const auto& key : config_schema()) {
    EXPECT_TRUE(paths.insert(key.path).second) << "duplicate " << key.path;
    EXPECT_FALSE(key.doc.empty()) << key.path;
    ASSERT_NE(key.assign, nullptr) << key.path;
    ASSERT_NE(key.read, nullptr) << key.path;
    EXPECT_EQ(find_config_key(key.path), &key);

    Config changed;
    const ConfigValue value = other_value(key, key.read(defaults));
    key.assign(changed, value);
    EXPECT_EQ(key.read(changed), value) << key.path << " does not read back what it wrote";
    EXPECT_NE(changed, defaults) << key.path << " writes no field that Config compares";
    for (const auto& other : config_schema()) {
      if (&other == &key) continue;
      EXPECT_EQ(other.read(changed), other.read(defaults))
          << "writing " << key.path << " changed " << other.path;
    }
    // Both range ends must fit the field (a narrow field would truncate the maximum).
    if (key.kind == ConfigKind::kUnsigned || key.kind == ConfigKind::kDouble ||
        key.kind == ConfigKind::kDuration) {
      for (const auto& bound : {key.minimum, key.maximum}) {
        Config bounded;
        key.assign(bounded, bound);
        EXPECT_EQ(key.read(bounded), bound) << key.path;
      }
    }
  }
  EXPECT_EQ(find_config_key("detection"), nullptr);
  EXPECT_EQ(find_config_key("detection.hold_for"), nullptr);
  EXPECT_NE(find_config_key("detection.for"), nullptr);
}

// ---- kinds --------------------------------------------------------------------------------------

TEST(ConfigBool, AcceptsTrueAndFalseOnly) {
  const auto key = synthetic_key("test.flag", ConfigKind::kBool);
  EXPECT_EQ(parse_config_value(key, "true", "v.yaml").value(), ConfigValue(true));
  EXPECT_EQ(parse_config_value(key, "False", "v.yaml").value(), ConfigValue(false));
  EXPECT_EQ(value_errors(key, "yes"),
            Lines{"v.yaml:1:1: test.flag: expected a boolean (true or false), got yes"});
  EXPECT_EQ(
      value_errors(key, "\n  \"true\""),
      Lines{"v.yaml:2:3: test.flag: expected a boolean (true or false), got the string \"true\""});
  EXPECT_EQ(value_errors(key, "[true]"),
            Lines{"v.yaml:1:1: test.flag: expected a boolean (true or false), got a list"});
}

TEST(ConfigString, AcceptsAnyScalar) {
  const auto key = synthetic_key("test.name", ConfigKind::kString);
  EXPECT_EQ(parse_config_value(key, "eth0", "v.yaml").value(), ConfigValue(std::string("eth0")));
  EXPECT_EQ(parse_config_value(key, "'42'", "v.yaml").value(), ConfigValue(std::string("42")));
  EXPECT_EQ(value_errors(key, "{a: 1}"),
            Lines{"v.yaml:1:1: test.name: expected a string, got a mapping"});
  EXPECT_EQ(value_errors(key, "~"), Lines{"v.yaml: test.name: no value given; expected a string"});
}

TEST(ConfigStringList, NamesTheBadElementAtItsOwnPosition) {
  const auto key = synthetic_key("test.names", ConfigKind::kStringList);
  EXPECT_EQ(parse_config_value(key, "[a, 'b c']", "v.yaml").value(),
            ConfigValue(std::vector<std::string>{"a", "b c"}));
  EXPECT_EQ(parse_config_value(key, "[]", "v.yaml").value(),
            ConfigValue(std::vector<std::string>{}));
  EXPECT_EQ(value_errors(key, "a"),
            Lines{"v.yaml:1:1: test.names: expected a list of strings, got a"});
  EXPECT_EQ(value_errors(key, "- a\n- [b]\n- c\n- {d: 1}\n"),
            (Lines{"v.yaml:2:3: test.names: element 2: expected a string, got a list",
                   "v.yaml:4:3: test.names: element 4: expected a string, got a mapping"}));
}

TEST(ConfigUnsigned, TypeErrorsNameTheTypeAndWhatWasGiven) {
  EXPECT_EQ(errors_of("detection:\n  half_open: many\n"),
            Lines{"test.yaml:2:14: detection.half_open: " + kHalfOpenType + ", got many"});
  EXPECT_EQ(errors_of("detection:\n  half_open: 1.5\n"),
            Lines{"test.yaml:2:14: detection.half_open: " + kHalfOpenType + ", got 1.5"});
  EXPECT_EQ(
      errors_of("detection:\n  half_open: \"256\"\n"),
      Lines{"test.yaml:2:14: detection.half_open: " + kHalfOpenType + ", got the string \"256\""});
  EXPECT_EQ(errors_of("detection:\n  half_open: [256]\n"),
            Lines{"test.yaml:2:14: detection.half_open: " + kHalfOpenType + ", got a list"});
  EXPECT_EQ(errors_of("detection:\n  half_open:\n"),
            Lines{"test.yaml:2:3: detection.half_open: no value given; " + kHalfOpenType});
}

TEST(ConfigUnsigned, RangeErrorsNameTheRangeAndWhatWasGiven) {
  for (const std::string given : {"0", "-3", "100000001", "99999999999999999999999"}) {
    std::string expected = "test.yaml:2:14: detection.half_open: out of range: " + kHalfOpenType;
    expected += ", got ";
    expected += given;
    EXPECT_EQ(errors_of("detection:\n  half_open: " + given + "\n"), Lines{expected});
  }
  EXPECT_EQ(load_ok("detection:\n  half_open: 100000000\n").detection.half_open, 100'000'000u);
  EXPECT_EQ(load_ok("detection:\n  half_open: 1\n").detection.half_open, 1u);
  EXPECT_EQ(load_ok("flow:\n  capacity: 268435456\n").flow.capacity, 268'435'456u);
  EXPECT_EQ(errors_of("flow:\n  capacity: 268435457\n"),
            Lines{"test.yaml:2:13: flow.capacity: out of range: expected an unsigned integer in "
                  "[1, 268435456], got 268435457"});
}

TEST(ConfigDouble, TypeAndRangeErrors) {
  const auto ratio = [](const std::string& value) {
    return "detection:\n  spoofed:\n    min_distinct_ratio: " + value + "\n";
  };
  EXPECT_DOUBLE_EQ(load_ok(ratio("0.25")).detection.spoofed.min_distinct_ratio, 0.25);
  EXPECT_DOUBLE_EQ(load_ok(ratio("1")).detection.spoofed.min_distinct_ratio, 1.0);
  EXPECT_DOUBLE_EQ(load_ok(ratio("0")).detection.spoofed.min_distinct_ratio, 0.0);
  const std::string where = "test.yaml:3:25: detection.spoofed.min_distinct_ratio: ";
  EXPECT_EQ(errors_of(ratio("high")), Lines{where + "expected a number in [0, 1], got high"});
  EXPECT_EQ(errors_of(ratio(".inf")), Lines{where + "expected a number in [0, 1], got .inf"});
  EXPECT_EQ(errors_of(ratio("1.5")),
            Lines{where + "out of range: expected a number in [0, 1], got 1.5"});
  EXPECT_EQ(errors_of(ratio("-0.1")),
            Lines{where + "out of range: expected a number in [0, 1], got -0.1"});
}

TEST(ConfigStale, TheRemovedCompletionRatioSaysWhatBecameOfIt) {
  const auto errors = errors_of("detection:\n  max_completion_ratio: 0.2\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("test.yaml:2:3: detection.max_completion_ratio: removed: ", 0), 0u)
      << errors[0];
  EXPECT_NE(errors[0].find("delete this key"), std::string::npos) << errors[0];
}

TEST(ConfigStale, JudgementKeysAndTheirCrossCheck) {
  const Config c = load_ok(
      "detection:\n  host_half_open: 5000\n  stale:\n    floor: 100ms\n    no_history: 2s\n"
      "    percentile: 0.99\n    history: 5m\n  baseline:\n    multiple: 4\n"
      "    time_constant: 1h\n");
  EXPECT_EQ(c.detection.host_half_open, 5000u);
  EXPECT_EQ(c.detection.stale.floor, 100 * kNanosPerMilli);
  EXPECT_EQ(c.detection.stale.no_history, 2 * kNanosPerSecond);
  EXPECT_DOUBLE_EQ(c.detection.stale.percentile, 0.99);
  EXPECT_EQ(c.detection.stale.history, 300 * kNanosPerSecond);
  EXPECT_DOUBLE_EQ(c.detection.baseline.multiple, 4.0);
  EXPECT_EQ(c.detection.baseline.time_constant, 3600 * kNanosPerSecond);
  EXPECT_EQ(errors_of("detection:\n  stale:\n    floor: 500ms\n    no_history: 300ms\n"),
            Lines{"test.yaml:4:5: detection.stale.no_history: must be at least "
                  "detection.stale.floor (500ms), got 300ms"});
  EXPECT_EQ(errors_of("detection:\n  stale:\n    floor: 10ms\n"),
            Lines{"test.yaml:3:12: detection.stale.floor: out of range: expected a duration in "
                  "[50ms, 3s], got 10ms"});
}

TEST(ConfigDuration, AcceptsNumbersOfSecondsAndUnits) {
  auto cooldown = [](std::string_view text) {
    return load_ok("detection:\n  cooldown: " + std::string(text) + "\n").detection.cooldown;
  };
  EXPECT_EQ(cooldown("500ms"), 500 * kNanosPerMilli);
  EXPECT_EQ(cooldown("1.5s"), 1'500 * kNanosPerMilli);
  EXPECT_EQ(cooldown("2m"), 120 * kNanosPerSecond);
  EXPECT_EQ(cooldown("1h"), 3'600 * kNanosPerSecond);
  EXPECT_EQ(cooldown("5"), 5 * kNanosPerSecond);
  EXPECT_EQ(cooldown("0.25"), 250 * kNanosPerMilli);
  EXPECT_EQ(cooldown("\"2s\""), 2 * kNanosPerSecond);
  EXPECT_EQ(cooldown("0"), 0);
  EXPECT_EQ(cooldown("24h"), 86'400 * kNanosPerSecond);

  EXPECT_EQ(parse_duration("1e3ms"), kNanosPerSecond);
  EXPECT_EQ(parse_duration("-1s"), -kNanosPerSecond);
  EXPECT_EQ(parse_duration("1e30h"), std::numeric_limits<DurationNs>::max());
  for (const std::string_view bad :
       {"", "ms", "5 s", "5sec", "2d", "inf", "nan", "0x10s", "1_000ms"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
  EXPECT_EQ(format_duration(63 * kNanosPerSecond), "63s");
  EXPECT_EQ(format_duration(500 * kNanosPerMilli), "500ms");
  EXPECT_EQ(format_duration(86'400 * kNanosPerSecond), "24h");
  EXPECT_EQ(format_duration(1'500 * kNanosPerMilli), "1500ms");
  EXPECT_EQ(format_duration(1'234'567), "0.001234567s");
}

TEST(ConfigDuration, ErrorsShowTheAcceptedFormsAndTheRange) {
  EXPECT_EQ(errors_of("detection:\n  cooldown: 2d\n"),
            Lines{"test.yaml:2:13: detection.cooldown: expected a duration in [0s, 24h] " +
                  kDurationForms + ", got 2d"});
  EXPECT_EQ(
      errors_of("detection:\n  cooldown: {seconds: 5}\n"),
      Lines{"test.yaml:2:13: detection.cooldown: expected a duration in [0s, 24h], got a mapping"});
  EXPECT_EQ(errors_of("detection:\n  tick: 90s\n"),
            Lines{"test.yaml:2:9: detection.tick: out of range: expected a duration in [10ms, "
                  "60s], got 90s"});
  EXPECT_EQ(errors_of("detection:\n  tick: 5ms\n"),
            Lines{"test.yaml:2:9: detection.tick: out of range: expected a duration in [10ms, "
                  "60s], got 5ms"});
  EXPECT_EQ(errors_of("detection:\n  cooldown: -1s\n"),
            Lines{"test.yaml:2:13: detection.cooldown: out of range: expected a duration in [0s, "
                  "24h], got -1s"});
  EXPECT_EQ(errors_of("flow:\n  pending_timeout: 1e30h\n"),
            Lines{"test.yaml:2:20: flow.pending_timeout: out of range: expected a duration in [1s, "
                  "24h], got 1e30h"});
}

TEST(ConfigEnum, ListsTheChoicesAndSuggestsTheNearest) {
  EXPECT_EQ(load_ok("log:\n  level: debug\n").log.level, "debug");
  const std::string choices = "expected one of trace, debug, info, warn, error, critical, off";
  EXPECT_EQ(errors_of("log:\n  level: verbose\n"),
            Lines{"test.yaml:2:10: log.level: " + choices + ", got verbose"});
  EXPECT_EQ(errors_of("log:\n  level: warning\n"),
            Lines{"test.yaml:2:10: log.level: " + choices + ", got warning; did you mean 'warn'?"});
}

TEST(ConfigPrefixList, ParsesBothFamilies) {
  const auto config = load_ok("protected: [192.0.2.0/24, 2001:db8::/32, 198.51.100.7]\n");
  ASSERT_EQ(config.protected_prefixes.size(), 3u);
  EXPECT_EQ(config.protected_prefixes[0], *IpPrefix::parse("192.0.2.0/24"));
  EXPECT_EQ(config.protected_prefixes[1], *IpPrefix::parse("2001:db8::/32"));
  EXPECT_EQ(config.protected_prefixes[2].to_string(), "198.51.100.7/32");
}

TEST(ConfigPrefixList, NamesEachBadElementAtItsOwnPosition) {
  EXPECT_EQ(
      errors_of("protected:\n  - 10.0.0.0/8\n  - 10.0.0.0/33\n  - 2001:db8::/32\n  - {a: 1}\n"),
      (Lines{"test.yaml:3:5: protected: element 2: " + kPrefixElement + ", got 10.0.0.0/33",
             "test.yaml:5:5: protected: element 4: " + kPrefixElement + ", got a mapping"}));
  EXPECT_EQ(errors_of("protected: [192.0.2.0/24, 300.1.1.1/8]\n"),
            Lines{"test.yaml:1:27: protected: element 2: " + kPrefixElement + ", got 300.1.1.1/8"});
  EXPECT_EQ(errors_of("protected: 10.0.0.0/8\n"),
            Lines{"test.yaml:1:12: protected: expected a list of IP prefixes, e.g. [10.0.0.0/8, "
                  "2001:db8::/32], got 10.0.0.0/8"});
}

// ---- structure ----------------------------------------------------------------------------------

// The top-level names in schema order, as the loader lists them ("protected, user, capture, ...").
std::string top_level_keys() {
  std::vector<std::string> names;
  for (const auto& key : config_schema()) {
    const std::string first(key.path.substr(0, key.path.find('.')));
    if (std::find(names.begin(), names.end(), first) == names.end()) names.push_back(first);
  }
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

TEST(ConfigUnknownKey, TopLevelSuggestsTheNearestSection) {
  EXPECT_EQ(errors_of("detecton:\n  half_open: 5\n"),
            Lines{"test.yaml:1:1: detecton: unknown key, did you mean 'detection'?"});
  EXPECT_EQ(errors_of("Protected: []\n"),
            Lines{"test.yaml:1:1: Protected: unknown key, did you mean 'protected'?"});
  EXPECT_EQ(
      errors_of("zebra: 1\n"),
      Lines{"test.yaml:1:1: zebra: unknown key; valid keys at the top level: " + top_level_keys()});
  EXPECT_NE(top_level_keys().find("protected, "), std::string::npos);
}

TEST(ConfigUnknownKey, NestedSuggestsAmongTheKeysOfItsSection) {
  EXPECT_EQ(errors_of("detection:\n  half_opn: 5\n"),
            Lines{"test.yaml:2:3: detection.half_opn: unknown key, did you mean 'half_open'?"});
  EXPECT_EQ(errors_of("detection:\n  fro: 1s\n"),
            Lines{"test.yaml:2:3: detection.fro: unknown key, did you mean 'for'?"});
  EXPECT_EQ(errors_of("detection:\n  spoofed:\n    min_entropi: 0.9\n"),
            Lines{"test.yaml:3:5: detection.spoofed.min_entropi: unknown key, did you mean "
                  "'min_entropy'?"});
  // "capacity" is a key, but of flow, not of detection: no suggestion from another section.
  EXPECT_EQ(errors_of("detection:\n  capacity: 5\n"),
            Lines{"test.yaml:2:3: detection.capacity: unknown key; valid keys in detection: tick, "
                  "half_open, for, cooldown, update_interval, host_half_open, stale, baseline, "
                  "spoofed, concentrated"});
}

TEST(ConfigStructure, SectionsMustBeMappingsAndKeysUnique) {
  EXPECT_EQ(errors_of("log: 5\n"), Lines{"test.yaml:1:6: log: expected a section with keys level, "
                                         "file, file_max_bytes, file_max_files, got 5"});
  EXPECT_EQ(errors_of("log:\n  level: info\n  level: debug\n"),
            Lines{"test.yaml:3:3: log.level: duplicate key, first given at line 2, column 3"});
  EXPECT_EQ(errors_of("- a\n- b\n"), Lines{"test.yaml:1:1: expected a mapping with keys " +
                                           top_level_keys() + ", got a list"});
  EXPECT_EQ(errors_of("log:\n  level: info\n---\nlog:\n  level: debug\n"),
            Lines{"test.yaml:3:1: a second YAML document; the configuration must be one document"});
}

// yaml-cpp 0.7's LoadAll never returns on these (it allocates until the process is killed), so
// each must be refused by position, and promptly: a regression hangs here until ctest's timeout.
TEST(ConfigStructure, TextNoNodeCanStartWithIsASyntaxErrorNotAnEndlessLoad) {
  EXPECT_EQ(errors_of(","), Lines{"test.yaml:1:1: YAML syntax error: unexpected ',' where a value "
                                  "or key should start"});
  EXPECT_EQ(errors_of(",]\n"), Lines{"test.yaml:1:1: YAML syntax error: unexpected ',' where a "
                                     "value or key should start"});
  EXPECT_EQ(errors_of("!a ,\n"), Lines{"test.yaml:1:4: YAML syntax error: unexpected ',' where a "
                                       "value or key should start"});
  EXPECT_EQ(errors_of("log:\n  level: info\n,\n"),
            Lines{"test.yaml:3:1: YAML syntax error: end of map not found"});
  EXPECT_EQ(errors_of("- a\n,\n"),
            Lines{"test.yaml:2:1: YAML syntax error: unexpected ',' where a value or key should "
                  "start"});
  // The 16 bytes the config fuzzer found.
  EXPECT_EQ(errors_of(std::string("\x2c\xfd\xff\xff\xff\xff\xff\x24\x7f"
                                  "etec.]\n",
                                  16)),
            Lines{"test.yaml:1:1: YAML syntax error: unexpected ',' where a value or key should "
                  "start"});
}

TEST(ConfigErrors, AllProblemsAreCollectedInDocumentOrder) {
  const std::string yaml =
      "flow:\n"
      "  capacity: 0\n"
      "  pending_timout: 63s\n"
      "detection:\n"
      "  half_open: lots\n"
      "  spoofed:\n"
      "    min_entropy: 2\n"
      "log:\n"
      "  level: loud\n";
  EXPECT_EQ(
      errors_of(yaml, {{"detection.tick", "0"}}),
      // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): one message split over two lines.
      (Lines{"test.yaml:2:13: flow.capacity: out of range: expected an unsigned integer in [1, "
             "268435456], got 0",
             "test.yaml:3:3: flow.pending_timout: unknown key, did you mean 'pending_timeout'?",
             "test.yaml:5:14: detection.half_open: " + kHalfOpenType + ", got lots",
             "test.yaml:7:18: detection.spoofed.min_entropy: out of range: expected a number in "
             "[0, 1], got 2",
             "test.yaml:9:10: log.level: expected one of trace, debug, info, warn, error, "
             "critical, off, got loud",
             "--set: detection.tick: out of range: expected a duration in [10ms, 60s], got 0"}));
}

TEST(ConfigErrors, YamlSyntaxErrorIsOneErrorWithTheParserPosition) {
  EXPECT_EQ(errors_of("log:\n  level: info\ndetection:\n  half_open: [1,\n"),
            Lines{"test.yaml:5:1: YAML syntax error: end of sequence flow not found"});
  EXPECT_EQ(errors_of("log:\n  level: [info, debug}\n"),
            Lines{"test.yaml:2:22: YAML syntax error: illegal flow end"});
  EXPECT_EQ(errors_of("detection:\n  half_open: 5\n\tfor: 1s\n"),
            Lines{"test.yaml:3:1: YAML syntax error: illegal tab when looking for indentation"});
}

TEST(ConfigErrors, FormatsWithoutPositionOrKeyWhenUnknown) {
  EXPECT_EQ((ConfigError{"a.yaml", 3, 7, "log.level", "bad"}).to_string(),
            "a.yaml:3:7: log.level: bad");
  EXPECT_EQ((ConfigError{"--set", 0, 0, "log.level", "bad"}).to_string(), "--set: log.level: bad");
  EXPECT_EQ((ConfigError{"a.yaml", 0, 0, "", "cannot read"}).to_string(), "a.yaml: cannot read");
}

// ---- files
// ---------------------------------------------------------------------------------------

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("synwatch_config_test_" +
                  std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(directory_);
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }
  std::filesystem::path directory_;
};

TEST_F(ConfigFile, LoadsAFileAndNamesItInErrors) {
  const auto path = (directory_ / "synwatch.yaml").string();
  std::ofstream(path) << "detection:\n  half_open: 512\n  tick: 0\n";
  const auto result = load_config(path);
  ASSERT_FALSE(result);
  EXPECT_EQ(to_lines(result.error()),
            Lines{path +
                  ":3:9: detection.tick: out of range: expected a duration in [10ms, 60s], got 0"});
  std::ofstream(path) << "detection:\n  half_open: 512\n";
  const auto config = load_config(path);
  ASSERT_TRUE(config);
  EXPECT_EQ(config->detection.half_open, 512u);
  EXPECT_EQ(config->source_file, path);
}

TEST_F(ConfigFile, MissingFileOrDirectoryIsAnErrorWithTheReason) {
  const auto missing = (directory_ / "absent.yaml").string();
  const auto result = load_config(missing, {{"detection.half_opn", "5"}});
  ASSERT_FALSE(result);
  EXPECT_EQ(to_lines(result.error()),
            (Lines{missing + ": cannot read: No such file or directory",
                   "--set: detection.half_opn: unknown key, did you mean 'half_open'?"}));
  const auto directory = load_config(directory_.string());
  ASSERT_FALSE(directory);
  EXPECT_EQ(to_lines(directory.error()),
            Lines{directory_.string() + ": cannot read: Is a directory"});
}

// ---- --set
// ---------------------------------------------------------------------------------------

TEST(ConfigOverride, ParsesKeyEqualsValue) {
  const auto parsed = parse_override("detection.half_open=512");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->key, "detection.half_open");
  EXPECT_EQ(parsed->value, "512");
  const auto with_equals = parse_override("a=b=c");
  ASSERT_TRUE(with_equals);
  EXPECT_EQ(with_equals->key, "a");
  EXPECT_EQ(with_equals->value, "b=c");
  const auto missing = parse_override("half_open");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().to_string(),
            "--set: expected KEY=VALUE such as detection.half_open=512, got 'half_open'");
  EXPECT_FALSE(parse_override("=5"));
}

TEST(ConfigOverride, SetsNestedKeysSectionsAndListsAfterTheFile) {
  const auto config = load_ok("detection:\n  half_open: 100\n",
                              {{"detection.half_open", "300"},
                               {"detection.spoofed", "{min_entropy: 0.9, min_distinct_ratio: 0.7}"},
                               {"protected", "[10.0.0.0/8, 2001:db8::/32]"},
                               {"log.level", "debug"},
                               {"log.level", "warn"}});
  EXPECT_EQ(config.detection.half_open, 300u);
  EXPECT_DOUBLE_EQ(config.detection.spoofed.min_entropy, 0.9);
  EXPECT_DOUBLE_EQ(config.detection.spoofed.min_distinct_ratio, 0.7);
  ASSERT_EQ(config.protected_prefixes.size(), 2u);
  EXPECT_EQ(config.protected_prefixes[1], *IpPrefix::parse("2001:db8::/32"));
  EXPECT_EQ(config.log.level, "warn");

  const auto no_file = load_config("", {{"flow.capacity", "1024"}});
  ASSERT_TRUE(no_file);
  EXPECT_EQ(no_file->flow.capacity, 1024u);
}

TEST(ConfigOverride, UnknownKeysAreErrorsWithSuggestions) {
  EXPECT_EQ(errors_of("", {{"detection.half_opn", "5"}}),
            Lines{"--set: detection.half_opn: unknown key, did you mean 'half_open'?"});
  EXPECT_EQ(errors_of("", {{"detecton.half_open", "5"}}),
            Lines{"--set: detecton: unknown key, did you mean 'detection'?"});
  EXPECT_EQ(errors_of("", {{"detection.half_open.x", "5"}}),
            Lines{"--set: detection.half_open.x: unknown key: detection.half_open is a value, not "
                  "a section"});
  EXPECT_EQ(
      errors_of("", {{"detection.spoofed", "{min_entropi: 0.9}"}}),
      Lines{"--set: detection.spoofed.min_entropi: unknown key, did you mean 'min_entropy'?"});
}

TEST(ConfigOverride, BadValuesAreValidatedLikeTheFile) {
  EXPECT_EQ(errors_of("", {{"detection.half_open", "0"}}),
            Lines{"--set: detection.half_open: out of range: " + kHalfOpenType + ", got 0"});
  EXPECT_EQ(errors_of("", {{"protected", "[10.0.0.0/8, bogus]"}}),
            Lines{"--set: protected: element 2: " + kPrefixElement + ", got bogus"});
  EXPECT_EQ(
      errors_of("", {{"log.level", ""}}),
      Lines{"--set: log.level: no value given; expected one of trace, debug, info, warn, error, "
            "critical, off"});
  const auto invalid_yaml = errors_of("", {{"protected", "[10.0.0.0/8"}});
  ASSERT_EQ(invalid_yaml.size(), 1u);
  EXPECT_TRUE(invalid_yaml[0].starts_with("--set: protected: value is not valid YAML: "))
      << invalid_yaml[0];
}

// ---- cross-key checks
// ----------------------------------------------------------------------------

TEST(ConfigCrossKey, WindowMustBeAWholeNumberOfAtMostSixtyTicks) {
  EXPECT_EQ(errors_of("detection:\n  tick: 1s\naggregation:\n  window: 1500ms\n"),
            Lines{"test.yaml:4:3: aggregation.window: must be a whole multiple of detection.tick "
                  "(1s), got 1500ms"});
  EXPECT_EQ(
      errors_of("detection:\n  tick: 2s\n  update_interval: 10s\naggregation:\n  window: 1s\n"),
      Lines{"test.yaml:5:3: aggregation.window: must be at least detection.tick (2s), got 1s"});
  // The window was left at its default; the tick is what broke it, so that is where it points.
  EXPECT_EQ(
      errors_of("detection:\n  tick: 10ms\n"),
      Lines{"test.yaml:2:3: aggregation.window: must be at most 60 ticks of detection.tick (10ms), "
            "i.e. 600ms, got 5s (500 ticks)"});
  EXPECT_EQ(
      errors_of("", {{"detection.tick", "3s"}}),
      Lines{"--set: aggregation.window: must be a whole multiple of detection.tick (3s), got 5s"});
  const auto config = load_ok("detection:\n  tick: 500ms\naggregation:\n  window: 30s\n");
  EXPECT_EQ(config.aggregation.window, 30 * kNanosPerSecond);
  EXPECT_EQ(config.detection.tick, 500 * kNanosPerMilli);
}

TEST(ConfigCrossKey, UpdateIntervalAndConcentratedSources) {
  EXPECT_EQ(
      errors_of("detection:\n  tick: 20s\n  update_interval: 10s\naggregation:\n  window: 20s\n"),
      Lines{"test.yaml:3:3: detection.update_interval: must be at least detection.tick (20s), got "
            "10s"});
  EXPECT_EQ(errors_of("detection:\n  concentrated:\n    max_sources: 20\n"),
            Lines{"test.yaml:3:5: detection.concentrated.max_sources: must be at most "
                  "aggregation.top_sources (10), got 20"});
  EXPECT_EQ(
      load_ok("detection:\n  concentrated:\n    max_sources: 20\naggregation:\n  top_sources: 20\n")
          .detection.concentrated.max_sources,
      20u);
}

TEST(ConfigCrossKey, EvidenceIncidentCapWithinTheTotal) {
  EXPECT_EQ(errors_of("evidence:\n  max_total_bytes: 1048576\n  max_incident_bytes: 2097152\n"),
            Lines{"test.yaml:3:3: evidence.max_incident_bytes: must be at most "
                  "evidence.max_total_bytes (1048576), got 2097152"});
  const auto config = load_ok("evidence:\n  directory: /srv/evidence\n  per_second: 0\n");
  EXPECT_EQ(config.evidence.directory, "/srv/evidence");
  EXPECT_EQ(config.evidence.per_second, 0u);
  EXPECT_EQ(config.evidence.first_packets, 1000u);
}

TEST(ConfigCrossKey, SkippedWhenAnInvolvedKeyIsInvalid) {
  // A rejected tick keeps its default internally; checking the window against it would only add
  // a confusing second error.
  EXPECT_EQ(errors_of("detection:\n  tick: soon\naggregation:\n  window: 1500ms\n"),
            Lines{"test.yaml:2:9: detection.tick: expected a duration in [10ms, 60s] " +
                  kDurationForms + ", got soon"});
}

// ---- values that pass their type but cannot work ----------------------------------------------

TEST(ConfigCaptureFilter, AFilterThatDoesNotCompileIsAConfigErrorAtItsPosition) {
  // Accepted before, it passed --check-config and then closed every interface at start or
  // reload: a blind detector.
  EXPECT_EQ(
      errors_of("capture:\n  filter: \"tcp and nonsense[\"\n"),
      Lines{
          "test.yaml:2:11: capture.filter: invalid BPF filter: syntax error in filter expression"});
  EXPECT_EQ(errors_of("", {{"capture.filter", "tcp port 99999999"}}).size(), 1u);
  EXPECT_EQ(load_ok("capture:\n  filter: \"tcp port 80 or tcp port 443\"\n").capture.filter,
            "tcp port 80 or tcp port 443");
  EXPECT_EQ(load_ok("capture:\n  filter: \"\"\n").capture.filter, "");
}

TEST(ConfigCaptureFilter, AFilterTooComplexForTheOptimiserOrTheKernelIsRefusedQuickly) {
  // 130 portranges: 12,000 instructions that libpcap's optimiser takes seconds over (300 took a
  // minute; the fuzzer found such filters); refused before optimising.
  std::string many;
  for (int i = 0; i < 130; ++i) {
    many +=
        (i == 0 ? "" : " or ") + ("portrange " + std::to_string(i) + "-" + std::to_string(i + 5));
  }
  const auto started = std::chrono::steady_clock::now();
  const auto errors = errors_of("", {{"capture.filter", many}});
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("BPF filter too complex: 12184 instructions before optimising"),
            std::string::npos)
      << errors[0];
  EXPECT_NE(errors_of("", {{"capture.filter",
                            "tcp or " + std::string(5000, '(') + "tcp" + std::string(5000, ')')}})
                .front()
                .find("BPF filter too long: 10010 characters, at most 4096"),
            std::string::npos);
  // 60 portranges optimise to well within the kernel's 4,096 instructions.
  std::string some;
  for (int i = 0; i < 60; ++i) {
    some +=
        (i == 0 ? "" : " or ") + ("portrange " + std::to_string(i) + "-" + std::to_string(i + 5));
  }
  EXPECT_EQ(load_ok("", {{"capture.filter", some}}).capture.filter, some);
}

TEST(ConfigWebhookHeaders, ControlCharactersAndBadNamesAreRefused) {
  // A CR or LF in a header value would end the header line early and inject another one.
  const std::string head =
      "alerts:\n  webhooks:\n    - name: chat\n      url: http://127.0.0.1:9/\n      headers:\n";
  const Lines injected = errors_of(head + "        X-Token: \"abc\\r\\nX-Injected: 1\"\n");
  ASSERT_EQ(injected.size(), 1u);
  EXPECT_NE(injected[0].find("alerts.webhooks[1].headers"), std::string::npos) << injected[0];
  EXPECT_NE(injected[0].find("control character"), std::string::npos) << injected[0];
  const Lines bad_name = errors_of(head + "        \"X Token\": abc\n");
  ASSERT_EQ(bad_name.size(), 1u);
  EXPECT_NE(bad_name[0].find("HTTP token"), std::string::npos) << bad_name[0];
  EXPECT_EQ(load_ok(head + "        Authorization: \"Bearer a.b-c\\tq\"\n")
                .alerts.webhooks.at(0)
                .headers.at("Authorization"),
            "Bearer a.b-c\tq");
}

TEST(ConfigFileSize, AFileBeyondTheSizeLimitIsRefusedUnread) {
  // /dev/zero once grew the reader to gigabytes (and a SIGHUP left the daemon deaf to SIGTERM).
  const auto zero = load_config("/dev/zero");
  ASSERT_FALSE(zero);
  EXPECT_EQ(to_lines(zero.error()),
            Lines{"/dev/zero: larger than 1024 KiB; a configuration is a few KiB (is this the "
                  "right file?)"});
  const auto path = std::filesystem::temp_directory_path() / "synwatch_config_size_test.yaml";
  {
    std::ofstream out(path);
    out << "# " << std::string(kMaxConfigBytes, 'x') << "\n";
  }
  EXPECT_FALSE(load_config(path.string()));
  {
    std::ofstream out(path);
    out << "# " << std::string(kMaxConfigBytes - 100, 'x') << "\ndetection:\n  half_open: 77\n";
  }
  const auto just_under = load_config(path.string());
  ASSERT_TRUE(just_under);
  EXPECT_EQ(just_under->detection.half_open, 77u);
  std::filesystem::remove(path);
}

TEST(ConfigActions, TheProgramMustBeAnAbsolutePathThatRuns) {
  const std::string head = "actions:\n  - name: page\n    command: ";
  const Lines relative = errors_of(head + "[page-oncall, --now]\n");
  ASSERT_EQ(relative.size(), 1u);
  EXPECT_NE(relative[0].find("actions[1].command: the program must be an absolute path"),
            std::string::npos)
      << relative[0];
  const Lines missing = errors_of(head + "[/nonexistent/page]\n");
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_NE(missing[0].find("cannot run '/nonexistent/page'"), std::string::npos) << missing[0];
  EXPECT_EQ(errors_of(head + "[]\n").size(), 1u);
  EXPECT_EQ(errors_of(head + "[/bin/true]\n    events: [begun]\n").size(), 1u);
  const auto config = load_ok(head + "[/bin/echo, hi]\n    timeout: 2s\n");
  ASSERT_EQ(config.actions.size(), 1u);
  EXPECT_EQ(config.actions[0].command, (std::vector<std::string>{"/bin/echo", "hi"}));
  EXPECT_EQ(config.actions[0].events, (std::vector<std::string>{"started", "ended"}));
  EXPECT_EQ(config.actions[0].timeout, 2 * kNanosPerSecond);
  EXPECT_EQ(config.actions[0].max_running, 4u);
}

TEST(ConfigActions, NftablesDefaultsAndFieldsReadAsWritten) {
  const auto defaults = load_ok("actions:\n  - name: block\n    type: nftables\n");
  ASSERT_EQ(defaults.actions.size(), 1u);
  const ActionConfig& action = defaults.actions[0];
  EXPECT_EQ(action.type, "nftables");
  EXPECT_EQ(action.events, (std::vector<std::string>{"started", "updated", "ended"}));
  EXPECT_EQ(action.table, "inet synwatch");
  EXPECT_EQ(action.set_ipv4, "blocked_v4");
  EXPECT_EQ(action.set_ipv6, "blocked_v6");
  EXPECT_TRUE(action.create_table);
  EXPECT_EQ(action.block_for, 600 * kNanosPerSecond);
  EXPECT_EQ(action.max_entries, 256u);
  EXPECT_DOUBLE_EQ(action.min_share, 0.05);
  EXPECT_TRUE(action.allowlist.empty());
  EXPECT_FALSE(action.dry_run);
  EXPECT_TRUE(action.command.empty());

  const auto given = load_ok(
      "actions:\n  - name: block\n    type: nftables\n    table: ip filter\n"
      "    set_ipv4: syn_flooders\n    create_table: false\n    block_for: 2m\n"
      "    max_entries: 16\n    min_share: 0.2\n    allowlist: [203.0.113.0/24, 2001:db8:1::/48]\n"
      "    dry_run: true\n    events: [started, ended]\n");
  const ActionConfig& custom = given.actions.at(0);
  EXPECT_EQ(custom.table, "ip filter");
  EXPECT_EQ(custom.set_ipv4, "syn_flooders");
  EXPECT_EQ(custom.set_ipv6, "") << "a table of family ip has no IPv6 set unless one is named";
  EXPECT_FALSE(custom.create_table);
  EXPECT_EQ(custom.block_for, 120 * kNanosPerSecond);
  EXPECT_EQ(custom.max_entries, 16u);
  EXPECT_DOUBLE_EQ(custom.min_share, 0.2);
  ASSERT_EQ(custom.allowlist.size(), 2u);
  EXPECT_EQ(custom.allowlist[1].to_string(), "2001:db8:1::/48");
  EXPECT_TRUE(custom.dry_run);
  EXPECT_EQ(custom.events, (std::vector<std::string>{"started", "ended"}));
  EXPECT_EQ(load_ok("actions:\n  - name: b\n    type: nftables\n    table: ip6 f\n")
                .actions.at(0)
                .set_ipv4,
            "");
}

TEST(ConfigActions, NftablesMistakesAreReportedAtTheirPosition) {
  const std::string head = "actions:\n  - name: block\n    type: nftables\n";
  EXPECT_EQ(errors_of(head + "    command: [/bin/true]\n"),
            Lines{"test.yaml:4:14: actions[1].command: only for type exec actions; this one is "
                  "type nftables"});
  EXPECT_EQ(errors_of("actions:\n  - name: page\n    command: [/bin/true]\n    dry_run: true\n"),
            Lines{"test.yaml:4:14: actions[1].dry_run: only for type nftables actions; this one "
                  "is type exec"});
  EXPECT_EQ(errors_of("actions:\n  - name: page\n"),
            Lines{"test.yaml:2:5: actions[1].command: missing: type exec needs the command to "
                  "run"});
  const Lines table = errors_of(head + "    table: synwatch\n");
  ASSERT_EQ(table.size(), 1u);
  EXPECT_TRUE(
      table[0].starts_with("test.yaml:4:12: actions[1].table: expected '<family> <name>' "
                           "with family ip, ip6 or inet"))
      << table[0];
  EXPECT_EQ(errors_of(head + "    table: bridge synwatch\n").size(), 1u);
  EXPECT_EQ(errors_of(head + "    table: inet syn;watch\n").size(), 1u);
  // A name that would end the nft command and start another is refused.
  const Lines injected =
      errors_of(head + "    set_ipv4: \"x }; flush ruleset; add set inet a b {\"\n");
  ASSERT_EQ(injected.size(), 1u);
  EXPECT_TRUE(injected[0].starts_with("test.yaml:4:15: actions[1].set_ipv4: expected a set name"))
      << injected[0];
  EXPECT_EQ(errors_of(head + "    table: ip filter\n    set_ipv6: v6\n"),
            Lines{"test.yaml:5:15: actions[1].set_ipv6: a table of family ip cannot hold this "
                  "set; use family inet or leave set_ipv6 out"});
  EXPECT_EQ(errors_of(head + "    set_ipv4: \"\"\n    set_ipv6: \"\"\n"),
            Lines{"test.yaml:2:5: actions[1].table: no set to put sources in: set_ipv4 and "
                  "set_ipv6 are empty"});
  EXPECT_EQ(errors_of(head + "    set_ipv4: flooders\n    set_ipv6: flooders\n"),
            Lines{"test.yaml:5:15: actions[1].set_ipv6: must differ from set_ipv4 ('flooders')"});
  EXPECT_EQ(errors_of(head + "    set_ipv4: blocked_v6\n"),
            Lines{"test.yaml:4:15: actions[1].set_ipv4: must differ from set_ipv6 "
                  "('blocked_v6')"});
  EXPECT_TRUE(errors_of(head + "    table: ip filter\n    set_ipv4: blocked_v6\n").empty());
  EXPECT_EQ(errors_of(head + "    block_for: 1s\n"),
            Lines{"test.yaml:4:16: actions[1].block_for: out of range: expected a duration in "
                  "[10s, 168h], got 1s"});
  EXPECT_EQ(errors_of(head + "    max_entries: 0\n").size(), 1u);
  EXPECT_EQ(errors_of(head + "    min_share: 1.5\n").size(), 1u);
  EXPECT_EQ(errors_of(head + "    allowlist: [not-a-prefix]\n").size(), 1u);
  EXPECT_EQ(errors_of(head + "    events: [begun]\n").size(), 1u);
  EXPECT_EQ(errors_of(head + "    type: firewall\n").size(), 1u);
  const Lines typo = errors_of(head + "    block_fro: 1m\n");
  ASSERT_EQ(typo.size(), 1u);
  EXPECT_NE(typo[0].find("did you mean 'block_for'?"), std::string::npos) << typo[0];
}

}  // namespace
}  // namespace synwatch

namespace synwatch {
namespace {

// What a reload keeps until restart is one attribute of each key: these are the keys that size
// memory, threads or the window, or are set up once at start. A key added to the list (or
// dropped from it) shows here.
TEST(ConfigReload, KeysKeptUntilRestartAreThoseThatSizeOrAreSetUpAtStart) {
  std::set<std::string> at_restart;
  for (const auto& key : config_schema()) {
    if (key.reload == ReloadEffect::kAtRestart) at_restart.emplace(key.path);
  }
  const std::set<std::string> expected = {
      "user",
      "capture.workers",
      "evidence.enabled",
      "evidence.directory",
      "evidence.first_packets",
      "evidence.per_second",
      "evidence.max_incident_bytes",
      "evidence.max_total_bytes",
      "flow.capacity",
      "aggregation.max_destinations",
      "aggregation.window",
      "aggregation.idle_timeout",
      "detection.tick",
      "detection.stale.floor",
      "detection.stale.no_history",
      "detection.stale.percentile",
      "detection.stale.history",
      "metrics.enabled",
      "metrics.listen",
      "metrics.max_destinations",
      "metrics.basic_auth_user",
      "metrics.basic_auth_password_file",
      "metrics.tls_cert_file",
      "metrics.tls_key_file",
      "status.enabled",
      "status.socket",
  };
  EXPECT_EQ(at_restart, expected);
  // The reference says so for each of them, and only for them.
  const std::string reference = config_reference();
  std::size_t marked = 0;
  for (auto at = reference.find("Takes effect at restart."); at != std::string::npos;
       at = reference.find("Takes effect at restart.", at + 1)) {
    ++marked;
  }
  EXPECT_EQ(marked, expected.size());
}

TEST(ConfigReload, AReloadKeepsRestartKeysAndAppliesTheRest) {
  Config running;
  Config next;
  next.flow.capacity = running.flow.capacity * 2;
  next.aggregation.window = running.aggregation.window * 2;
  next.aggregation.top_sources = running.aggregation.top_sources + 1;  // applied
  next.detection.half_open = running.detection.half_open + 100;        // applied
  next.detection.stale.floor = running.detection.stale.floor + kNanosPerMilli;
  next.metrics.listen = "127.0.0.1:1";
  next.user = "someone-else";
  next.alerts.file = "/tmp/alerts.jsonl";  // applied

  EXPECT_EQ(keys_needing_restart(running, next),
            (std::vector<std::string>{"user", "flow.capacity", "aggregation.window",
                                      "detection.stale.floor", "metrics.listen"}));
  const Config applied = applied_on_reload(running, next);
  EXPECT_EQ(applied.flow.capacity, running.flow.capacity);
  EXPECT_EQ(applied.aggregation.window, running.aggregation.window);
  EXPECT_EQ(applied.detection.stale, running.detection.stale);
  EXPECT_EQ(applied.metrics, running.metrics);
  EXPECT_EQ(applied.user, running.user);
  EXPECT_EQ(applied.aggregation.top_sources, next.aggregation.top_sources);
  EXPECT_EQ(applied.detection.half_open, next.detection.half_open);
  EXPECT_EQ(applied.alerts.file, next.alerts.file);
  // Applied once, nothing is left to restart for; the same file again changes nothing.
  EXPECT_TRUE(keys_needing_restart(running, applied).empty());
  EXPECT_EQ(keys_needing_restart(applied, next).size(), 5u) << "said again at every reload";
  EXPECT_TRUE(keys_needing_restart(running, running).empty());
}

}  // namespace
}  // namespace synwatch
