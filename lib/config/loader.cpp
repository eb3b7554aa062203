#include "config/loader.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>

#include "config/schema.hpp"

namespace synwatch {
namespace {

constexpr std::string_view kOverrideSource = "--set";
constexpr std::string_view kDurationForms =
    "seconds as a number such as 5 or 0.25, or a number with unit ms, s, m or h such as "
    "500ms, 1.5s, 2m, 1h";

struct Location {
  std::string file;
  int line = 0;  // 1-based; 0 when unknown
  int column = 0;
};

// Where values come from. A file has positions; a --set value does not have useful ones (they
// would be offsets into the shell argument), so its errors name "--set" only.
struct Source {
  std::string name;
  bool has_positions = true;

  [[nodiscard]] Location locate(const YAML::Mark& mark, const Location& fallback) const {
    if (!has_positions || mark.is_null()) return fallback;
    return {name, mark.line + 1, mark.column + 1};
  }
  [[nodiscard]] Location locate(const YAML::Mark& mark) const { return locate(mark, {name, 0, 0}); }
};

ConfigError make_error(const Location& where, std::string_view key, std::string message) {
  return {where.file, where.line, where.column, std::string(key), std::move(message)};
}

std::string join_path(std::string_view prefix, std::string_view name) {
  if (prefix.empty()) return std::string(name);
  std::string path(prefix);
  path += '.';
  path += name;
  return path;
}

std::string join(const std::vector<std::string_view>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

// True when some key lives below `path`, i.e. `path` names a section such as "detection".
bool is_section(std::string_view path) {
  return std::ranges::any_of(config_schema(), [path](const ConfigKey& key) {
    return key.path.size() > path.size() && key.path.starts_with(path) &&
           key.path[path.size()] == '.';
  });
}

// The names valid directly under `prefix` ("" = top level), sections and keys alike, in schema
// order. The views point into the schema table, which lives for the whole program.
std::vector<std::string_view> children_of(std::string_view prefix) {
  std::vector<std::string_view> names;
  for (const auto& key : config_schema()) {
    std::string_view rest = key.path;
    if (!prefix.empty()) {
      if (!(rest.size() > prefix.size() && rest.starts_with(prefix) &&
            rest[prefix.size()] == '.')) {
        continue;
      }
      rest.remove_prefix(prefix.size() + 1);
    }
    const auto name = rest.substr(0, rest.find('.'));
    if (std::ranges::find(names, name) == names.end()) names.push_back(name);
  }
  return names;
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Optimal string alignment distance (Levenshtein plus adjacent transposition, so "fro" is one edit
// from "for"), ignoring case.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t columns = b.size() + 1;
  std::vector<std::size_t> d((a.size() + 1) * columns);
  auto at = [&](std::size_t i, std::size_t j) -> std::size_t& { return d[i * columns + j]; };
  for (std::size_t i = 0; i <= a.size(); ++i) at(i, 0) = i;
  for (std::size_t j = 0; j <= b.size(); ++j) at(0, j) = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1])) {
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
      }
    }
  }
  return at(a.size(), b.size());
}

// The candidate a typo most likely meant: the nearest one within a third of the name's length
// (at least one edit), so that unrelated names get no misleading suggestion; failing that, one
// that the name abbreviates or extends ("warning" for "warn", "max_dest" for "max_destinations").
std::optional<std::string_view> closest(std::string_view name,
                                        const std::vector<std::string_view>& candidates) {
  const std::size_t allowed = std::max<std::size_t>(1, name.size() / 3);
  std::optional<std::string_view> best;
  std::size_t best_distance = allowed + 1;
  for (const auto& candidate : candidates) {
    const std::size_t distance = edit_distance(name, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (best) return best;
  constexpr std::size_t kShortestAbbreviation = 3;
  for (const auto& candidate : candidates) {
    const std::size_t common = std::min(name.size(), candidate.size());
    if (common >= kShortestAbbreviation &&
        edit_distance(name.substr(0, common), candidate.substr(0, common)) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

bool is_quoted(const YAML::Node& scalar) {
  return scalar.Tag() == "!";
}

// What the user wrote, for "got ..." in messages.
std::string describe_node(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      break;
  }
  if (is_quoted(node)) return "the string \"" + node.Scalar() + "\"";
  return node.Scalar();
}

bool all_of_chars(std::string_view text, std::string_view allowed) {
  return !text.empty() && text.find_first_not_of(allowed) == std::string_view::npos;
}

std::optional<ConfigValue> parse_mapping_list(const ConfigKey& key, const YAML::Node& node,
                                              const Location& here, const Source& source,
                                              std::vector<ConfigError>& errors);

// Parses one value of `key` by its kind and range only (parse_value adds the key's own check).
std::optional<ConfigValue> parse_typed_value(const ConfigKey& key, const YAML::Node& node,
                                             const Location& key_location, const Source& source,
                                             std::vector<ConfigError>& errors) {
  const std::string expected = "expected " + key.describe_type();
  if (node.IsNull() || !node.IsDefined()) {
    errors.push_back(make_error(key_location, key.path, "no value given; " + expected));
    return std::nullopt;
  }
  const Location here = source.locate(node.Mark(), key_location);
  auto type_error = [&](std::string_view hint = {}) -> std::optional<ConfigValue> {
    std::string message = expected;
    if (!hint.empty()) message += " (" + std::string(hint) + ")";
    errors.push_back(make_error(here, key.path, message + ", got " + describe_node(node)));
    return std::nullopt;
  };
  auto range_error = [&]() -> std::optional<ConfigValue> {
    errors.push_back(
        make_error(here, key.path, "out of range: " + expected + ", got " + node.Scalar()));
    return std::nullopt;
  };

  if (key.kind == ConfigKind::kMappingList) {
    return parse_mapping_list(key, node, here, source, errors);
  }
  if (key.kind == ConfigKind::kStringMap) {
    if (!node.IsMap()) return type_error();
    std::map<std::string, std::string> values;
    bool all_valid = true;
    for (const auto& entry : node) {
      if (!entry.first.IsScalar() || !entry.second.IsScalar()) {
        all_valid = false;
        const YAML::Node& bad = entry.first.IsScalar() ? entry.second : entry.first;
        errors.push_back(make_error(source.locate(bad.Mark(), here), key.path,
                                    "expected a string, got " + describe_node(bad)));
        continue;
      }
      values.insert_or_assign(entry.first.Scalar(), entry.second.Scalar());
    }
    if (!all_valid) return std::nullopt;
    return ConfigValue(std::move(values));
  }

  if (key.kind == ConfigKind::kPrefixList || key.kind == ConfigKind::kStringList) {
    if (!node.IsSequence()) return type_error();
    std::vector<IpPrefix> prefixes;
    std::vector<std::string> strings;
    bool all_valid = true;
    std::size_t position = 0;
    for (const auto& element : node) {
      ++position;
      const Location element_location = source.locate(element.Mark(), here);
      const std::string which = "element " + std::to_string(position) + ": ";
      const bool is_prefix_list = key.kind == ConfigKind::kPrefixList;
      std::optional<IpPrefix> prefix;
      if (element.IsScalar() && is_prefix_list) prefix = IpPrefix::parse(element.Scalar());
      if (!element.IsScalar() || (is_prefix_list && !prefix)) {
        all_valid = false;
        const std::string wanted = is_prefix_list
                                       ? "expected an IP prefix such as 10.0.0.0/8 or 2001:db8::/32"
                                       : "expected a string";
        errors.push_back(make_error(element_location, key.path,
                                    which + wanted + ", got " + describe_node(element)));
        continue;
      }
      if (is_prefix_list) {
        prefixes.push_back(*prefix);
      } else {
        strings.push_back(element.Scalar());
      }
    }
    if (!all_valid) return std::nullopt;
    if (key.kind == ConfigKind::kPrefixList) return ConfigValue(std::move(prefixes));
    return ConfigValue(std::move(strings));
  }

  if (!node.IsScalar()) return type_error();
  const std::string& text = node.Scalar();
  switch (key.kind) {
    case ConfigKind::kBool:
      // Only YAML 1.2 spellings: yes/no/on/off are YAML 1.1 and read as strings elsewhere.
      if (!is_quoted(node)) {
        if (text == "true" || text == "True" || text == "TRUE") return ConfigValue(true);
        if (text == "false" || text == "False" || text == "FALSE") return ConfigValue(false);
      }
      return type_error();
    case ConfigKind::kUnsigned: {
      if (is_quoted(node)) return type_error();
      const bool negative =
          text.starts_with('-') && all_of_chars(std::string_view(text).substr(1), "0123456789");
      if (negative) return range_error();
      if (!all_of_chars(text, "0123456789")) return type_error();
      std::uint64_t value = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc::result_out_of_range) return range_error();
      if (ec != std::errc{} || end != text.data() + text.size()) return type_error();
      if (value < std::get<std::uint64_t>(key.minimum) ||
          value > std::get<std::uint64_t>(key.maximum)) {
        return range_error();
      }
      return ConfigValue(value);
    }
    case ConfigKind::kDouble: {
      // The character check keeps out inf, nan and hex, which from_chars would accept.
      if (is_quoted(node) || !all_of_chars(text, "0123456789.-eE")) return type_error();
      double value = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc::result_out_of_range) return range_error();
      if (ec != std::errc{} || end != text.data() + text.size()) return type_error();
      if (value < std::get<double>(key.minimum) || value > std::get<double>(key.maximum)) {
        return range_error();
      }
      return ConfigValue(value);
    }
    case ConfigKind::kDuration: {
      const auto value = parse_duration(text);
      if (!value) return type_error(kDurationForms);
      if (*value < std::get<DurationNs>(key.minimum) ||
          *value > std::get<DurationNs>(key.maximum)) {
        return range_error();
      }
      return ConfigValue(*value);
    }
    case ConfigKind::kString:
      return ConfigValue(text);
    case ConfigKind::kEnum: {
      if (std::ranges::find(key.choices, std::string_view(text)) != key.choices.end()) {
        return ConfigValue(text);
      }
      std::string message = expected + ", got " + describe_node(node);
      if (const auto suggestion = closest(text, key.choices)) {
        message += "; did you mean '" + std::string(*suggestion) + "'?";
      }
      errors.push_back(make_error(here, key.path, std::move(message)));
      return std::nullopt;
    }
    case ConfigKind::kPrefixList:
    case ConfigKind::kStringList:
    case ConfigKind::kStringMap:
    case ConfigKind::kMappingList:
      break;  // handled above
  }
  return type_error();
}

// Parses one value of `key`. Problems go to `errors` with the position of the offending node
// (or `key_location` when the value is absent) and the result is nullopt.
std::optional<ConfigValue> parse_value(const ConfigKey& key, const YAML::Node& node,
                                       const Location& key_location, const Source& source,
                                       std::vector<ConfigError>& errors) {
  auto value = parse_typed_value(key, node, key_location, source, errors);
  if (!value || key.check_value == nullptr) return value;
  if (auto problem = key.check_value(*value)) {
    errors.push_back(make_error(source.locate(node.Mark(), key_location), key.path, *problem));
    return std::nullopt;
  }
  return value;
}

// A sequence of mappings: each element's fields are parsed like keys of their own kind, and every
// problem names the element and field ("alerts.webhooks[2].url") at the field's position.
std::optional<ConfigValue> parse_mapping_list(const ConfigKey& key, const YAML::Node& node,
                                              const Location& here, const Source& source,
                                              std::vector<ConfigError>& errors) {
  std::vector<std::string_view> field_names;
  field_names.reserve(key.fields.size());
  for (const auto& field : key.fields) field_names.push_back(field.path);
  const std::string expected_element = "expected a mapping with fields " + join(field_names);
  if (!node.IsSequence()) {
    errors.push_back(make_error(
        here, key.path, "expected " + key.describe_type() + ", got " + describe_node(node)));
    return std::nullopt;
  }
  // The list starts as the key's (empty) default, which gives the value its element type.
  ConfigValue list = key.read(Config{});
  bool all_valid = true;
  std::map<std::string, std::size_t, std::less<>> unique_values;  // value -> element number
  std::size_t position = 0;
  for (const auto& element : node) {
    ++position;
    const std::string element_path = std::string(key.path) + "[" + std::to_string(position) + "]";
    const Location element_location = source.locate(element.Mark(), here);
    if (!element.IsMap()) {
      errors.push_back(make_error(element_location, element_path,
                                  expected_element + ", got " + describe_node(element)));
      all_valid = false;
      continue;
    }
    ConfigRecord record;
    std::map<std::string, Location, std::less<>> value_at;
    std::set<std::string, std::less<>> given;
    bool element_valid = true;
    for (const auto& entry : element) {
      const Location where = source.locate(entry.first.Mark(), element_location);
      if (!entry.first.IsScalar()) {
        errors.push_back(make_error(where, element_path,
                                    "expected a field name, got " + describe_node(entry.first)));
        element_valid = false;
        continue;
      }
      const std::string& name = entry.first.Scalar();
      std::string path = element_path;
      path += '.';
      path += name;
      const auto field = std::ranges::find(key.fields, std::string_view(name), &ConfigKey::path);
      if (field == key.fields.end()) {
        std::string message = "unknown field";
        if (const auto suggestion = closest(name, field_names)) {
          message += ", did you mean '" + std::string(*suggestion) + "'?";
        } else {
          message += "; valid fields: " + join(field_names);
        }
        errors.push_back(make_error(where, path, std::move(message)));
        element_valid = false;
        continue;
      }
      if (!given.insert(name).second) {
        errors.push_back(make_error(where, path, "duplicate field"));
        element_valid = false;
        continue;
      }
      std::vector<ConfigError> field_errors;
      auto value = parse_value(*field, entry.second, where, source, field_errors);
      for (auto& error : field_errors) {
        error.key = path;
        errors.push_back(std::move(error));
      }
      if (!value) {
        element_valid = false;
        continue;
      }
      record.emplace(name, std::move(*value));
      value_at.emplace(name, source.locate(entry.second.Mark(), where));
    }
    for (const auto& field : key.fields) {
      if (field.required && !given.contains(field.path)) {
        errors.push_back(make_error(element_location, element_path,
                                    "missing required field '" + std::string(field.path) + "'"));
        element_valid = false;
      }
    }
    if (!key.unique_field.empty()) {
      if (const auto it = record.find(key.unique_field); it != record.end()) {
        const auto& value = std::get<std::string>(it->second);
        if (const auto [first, inserted] = unique_values.try_emplace(value, position); !inserted) {
          errors.push_back(make_error(
              value_at[std::string(key.unique_field)],
              element_path + "." + std::string(key.unique_field),
              "'" + value + "' is already used by element " + std::to_string(first->second)));
          element_valid = false;
        }
      }
    }
    if (element_valid && key.check_element != nullptr) {
      for (auto& problem : key.check_element(record)) {
        const auto at = value_at.find(problem.field);
        errors.push_back(make_error(at != value_at.end() ? at->second : element_location,
                                    element_path + "." + problem.field,
                                    std::move(problem.message)));
        element_valid = false;
      }
    }
    if (element_valid) {
      key.append_element(list, record);
    } else {
      all_valid = false;
    }
  }
  if (!all_valid) return std::nullopt;
  return list;
}

// Records where each document of a YAML stream starts and nothing else.
class DocumentStartRecorder final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;

  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& /*mark*/, YAML::anchor_t /*anchor*/) override {}
  void OnAlias(const YAML::Mark& /*mark*/, YAML::anchor_t /*anchor*/) override {}
  void OnScalar(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                const std::string& /*value*/) override {}
  void OnSequenceStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/,
                       YAML::anchor_t /*anchor*/, YAML::EmitterStyle::value /*style*/) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                  YAML::EmitterStyle::value /*style*/) override {}
  void OnMapEnd() override {}
};

// Where the first documents of `text` start: none for an empty stream, at most three. Not
// YAML::LoadAll: yaml-cpp 0.7 (Debian 12) loops forever there, allocating without bound, on a
// token no node rule takes (a stray ',' at the top level, jbeder/yaml-cpp#1040 and #1319), handing
// out the same empty document again and again. A stuck parser shows as two documents starting at
// the same place, which three starts are enough to see. Throws YAML::Exception on a syntax error.
std::vector<YAML::Mark> document_starts(const std::string& text) {
  std::istringstream stream(text);
  YAML::Parser parser(stream);
  DocumentStartRecorder recorder;
  constexpr std::size_t kEnoughToTell = 3;
  while (recorder.starts.size() < kEnoughToTell && parser.HandleNextDocument(recorder)) {
  }
  return std::move(recorder.starts);
}

// Where yaml-cpp began the same "document" twice: text it could make no node of.
std::optional<YAML::Mark> stuck_at(const std::vector<YAML::Mark>& starts) {
  for (std::size_t i = 1; i < starts.size(); ++i) {
    if (starts[i].pos == starts[i - 1].pos) return starts[i];
  }
  return std::nullopt;
}

std::string describe_character_at(const std::string& text, const YAML::Mark& mark) {
  const auto at = static_cast<std::size_t>(mark.pos);
  if (at >= text.size()) return "end of file";
  const char found = text[at];
  if (found > ' ' && found < '\x7f') return std::string("'") + found + "'";
  return "character";
}

// Accumulates one configuration from a document and overrides, collecting every problem.
// Thread safety: none; one builder per load.
class ConfigBuilder {
 public:
  void apply_read_error(ConfigError error) { errors_.push_back(std::move(error)); }

  void apply_document(std::string_view text, const std::string& file) {
    const Source source{file, true};
    const std::string owned(text);
    YAML::Node root;
    try {
      const auto starts = document_starts(owned);
      if (starts.empty()) return;  // empty file or only comments: all defaults
      if (const auto stuck = stuck_at(starts)) {
        errors_.push_back(make_error(source.locate(*stuck), "",
                                     "YAML syntax error: unexpected " +
                                         describe_character_at(owned, *stuck) +
                                         " where a value or key should start"));
        return;
      }
      if (starts.size() > 1) {
        errors_.push_back(
            make_error(source.locate(starts[1]), "",
                       "a second YAML document; the configuration must be one document"));
      }
      root = YAML::Load(owned);
    } catch (const YAML::Exception& e) {
      errors_.push_back(make_error(source.locate(e.mark), "", "YAML syntax error: " + e.msg));
      return;
    }
    if (root.IsNull()) return;
    if (!root.IsMap()) {
      errors_.push_back(make_error(source.locate(root.Mark()), "",
                                   "expected a mapping with keys " + join(children_of("")) +
                                       ", got " + describe_node(root)));
      return;
    }
    apply_mapping("", root, source);
  }

  void apply_override(const ConfigOverride& override_) {
    const Source source{std::string(kOverrideSource), false};
    const Location where{source.name, 0, 0};
    // Resolve the path first, so a misspelt key gets its suggestion even when the value is bad.
    std::string prefix;
    std::string_view rest = override_.key;
    std::string path;
    while (true) {
      const auto dot = rest.find('.');
      const auto name = rest.substr(0, dot);
      path = join_path(prefix, name);
      const bool last = dot == std::string_view::npos;
      if (find_config_key(path) != nullptr) {
        if (!last) {
          errors_.push_back(make_error(where, override_.key,
                                       "unknown key: " + path + " is a value, not a section"));
          return;
        }
        break;
      }
      if (!is_section(path)) {
        report_unknown(prefix, name, where);
        return;
      }
      if (last) break;
      prefix = path;
      rest.remove_prefix(dot + 1);
    }
    YAML::Node value;
    try {
      value = YAML::Load(override_.value);
    } catch (const YAML::Exception& e) {
      errors_.push_back(make_error(where, path, "value is not valid YAML: " + e.msg));
      invalid_.insert(path);
      return;
    }
    apply_at(path, value, where, source);
  }

  std::expected<Config, std::vector<ConfigError>> finish(const std::string& source_file) {
    for (const auto& check : config_cross_checks()) {
      const bool involves_invalid =
          invalid_.contains(check.reported_at) ||
          std::ranges::any_of(check.depends_on,
                              [&](std::string_view dep) { return invalid_.contains(dep); });
      if (involves_invalid) continue;
      const auto problem = check.check(config_);
      if (!problem) continue;
      errors_.push_back(make_error(location_of(check, source_file), check.reported_at, *problem));
    }
    if (!errors_.empty()) return std::unexpected(std::move(errors_));
    config_.source_file = source_file;
    return std::move(config_);
  }

 private:
  void apply_mapping(std::string_view prefix, const YAML::Node& mapping, const Source& source) {
    std::map<std::string, Location, std::less<>> seen;
    for (const auto& entry : mapping) {
      const Location where = source.locate(entry.first.Mark());
      if (!entry.first.IsScalar()) {
        errors_.push_back(
            make_error(where, prefix, "expected a key name, got " + describe_node(entry.first)));
        continue;
      }
      const std::string& name = entry.first.Scalar();
      const std::string path = join_path(prefix, name);
      if (const auto [first, inserted] = seen.try_emplace(name, where); !inserted) {
        std::string message = "duplicate key";
        if (first->second.line > 0) {
          message += ", first given at line " + std::to_string(first->second.line) + ", column " +
                     std::to_string(first->second.column);
        }
        errors_.push_back(make_error(where, path, std::move(message)));
        invalid_.insert(path);
        continue;
      }
      if (find_config_key(path) == nullptr && !is_section(path)) {
        report_unknown(prefix, name, where);
        continue;
      }
      apply_at(path, entry.second, where, source);
    }
  }

  // `path` is a key or a section; `key_location` is where its name was written.
  void apply_at(const std::string& path, const YAML::Node& value, const Location& key_location,
                const Source& source) {
    if (const ConfigKey* key = find_config_key(path)) {
      if (auto parsed = parse_value(*key, value, key_location, source, errors_)) {
        key->assign(config_, *parsed);
        set_at_.insert_or_assign(path, key_location);
      } else {
        invalid_.insert(path);
      }
      return;
    }
    if (value.IsNull()) return;  // "detection:" with nothing under it keeps the defaults
    if (!value.IsMap()) {
      errors_.push_back(make_error(source.locate(value.Mark(), key_location), path,
                                   "expected a section with keys " + join(children_of(path)) +
                                       ", got " + describe_node(value)));
      return;
    }
    apply_mapping(path, value, source);
  }

  void report_unknown(std::string_view prefix, std::string_view name, const Location& where) {
    // Keys earlier versions had: say what became of them rather than guess at a spelling.
    static constexpr std::pair<std::string_view, std::string_view> kRemoved[] = {
        {"detection.max_completion_ratio",
         "removed: the flood condition is now over stale handshakes, which legitimate "
         "completions no longer dilute (see detection.half_open and detection.baseline in the "
         "README's \"How detection works\"); delete this key"},
    };
    const std::string path = join_path(prefix, name);
    for (const auto& [removed, why] : kRemoved) {
      if (path == removed) {
        errors_.push_back(make_error(where, path, std::string(why)));
        return;
      }
    }
    const auto candidates = children_of(prefix);
    std::string message = "unknown key";
    if (const auto suggestion = closest(name, candidates)) {
      message += ", did you mean '" + std::string(*suggestion) + "'?";
    } else {
      message += "; valid keys ";
      message += prefix.empty() ? std::string("at the top level") : "in " + std::string(prefix);
      message += ": " + join(candidates);
    }
    errors_.push_back(make_error(where, path, std::move(message)));
  }

  // Where a cross-key problem is reported: where its key was set, else where the key it depends
  // on was set (that change is what broke the relation), else the source as a whole.
  Location location_of(const ConfigCrossCheck& check, const std::string& source_file) const {
    if (const auto it = set_at_.find(check.reported_at); it != set_at_.end()) return it->second;
    for (const auto& dep : check.depends_on) {
      if (const auto it = set_at_.find(dep); it != set_at_.end()) return it->second;
    }
    return {source_file, 0, 0};
  }

  Config config_;
  std::vector<ConfigError> errors_;
  std::map<std::string, Location, std::less<>> set_at_;  // last place each key was set
  std::set<std::string, std::less<>> invalid_;           // keys given an invalid value
};

std::expected<std::string, ConfigError> read_file(const std::string& path) {
  auto fail = [&](int error_number) {
    return std::unexpected(ConfigError{
        path, 0, 0, "", "cannot read: " + std::generic_category().message(error_number)});
  };
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (!file) return fail(errno);
  std::string text;
  char buffer[8192];
  while (true) {
    const std::size_t got = std::fread(buffer, 1, sizeof buffer, file.get());
    text.append(buffer, got);
    if (text.size() > kMaxConfigBytes) {
      // /dev/zero, a log file or a symlink gone wrong: stop before it costs memory or time.
      return std::unexpected(
          ConfigError{path, 0, 0, "",
                      "larger than " + std::to_string(kMaxConfigBytes / 1024) +
                          " KiB; a configuration is a few KiB (is this the right file?)"});
    }
    if (got < sizeof buffer) break;
  }
  if (std::ferror(file.get())) return fail(errno);
  return text;
}

std::expected<Config, std::vector<ConfigError>> build(
    const std::expected<std::string, ConfigError>& text, const std::string& source_name,
    const std::vector<ConfigOverride>& overrides) {
  ConfigBuilder builder;
  if (text) {
    builder.apply_document(*text, source_name);
  } else {
    builder.apply_read_error(text.error());
  }
  for (const auto& given : overrides) builder.apply_override(given);
  return builder.finish(source_name);
}

}  // namespace

std::string ConfigError::to_string() const {
  std::string out = file.empty() ? std::string("<config>") : file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

std::expected<ConfigOverride, ConfigError> parse_override(std::string_view text) {
  const auto equals = text.find('=');
  if (equals == std::string_view::npos || equals == 0) {
    return std::unexpected(ConfigError{
        std::string(kOverrideSource), 0, 0, "",
        "expected KEY=VALUE such as detection.half_open=512, got '" + std::string(text) + "'"});
  }
  return ConfigOverride{std::string(text.substr(0, equals)), std::string(text.substr(equals + 1))};
}

std::expected<Config, std::vector<ConfigError>> load_config(
    const std::string& path, const std::vector<ConfigOverride>& overrides) {
  if (path.empty()) return build(std::string(), "", overrides);
  return build(read_file(path), path, overrides);
}

std::expected<Config, std::vector<ConfigError>> load_config_text(
    std::string_view yaml_text, const std::string& source_name,
    const std::vector<ConfigOverride>& overrides) {
  return build(std::string(yaml_text), source_name, overrides);
}

std::expected<ConfigValue, std::vector<ConfigError>> parse_config_value(
    const ConfigKey& key, std::string_view yaml_text, const std::string& source_name) {
  const Source source{source_name, true};
  std::vector<ConfigError> errors;
  YAML::Node node;
  try {
    node = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    errors.push_back(make_error(source.locate(e.mark), key.path, "YAML syntax error: " + e.msg));
    return std::unexpected(std::move(errors));
  }
  auto value = parse_value(key, node, Location{source_name, 0, 0}, source, errors);
  if (!value) return std::unexpected(std::move(errors));
  return std::move(*value);
}

}  // namespace synwatch
