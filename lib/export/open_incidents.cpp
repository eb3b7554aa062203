#include "export/open_incidents.hpp"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "export/spool.hpp"

namespace synwatch {

namespace {

constexpr int kFileVersion = 1;

std::optional<AttackKind> kind_from(std::string_view name) {
  for (const auto kind :
       {AttackKind::kSpoofedRandom, AttackKind::kConcentrated, AttackKind::kDistributed}) {
    if (to_string(kind) == name) return kind;
  }
  return std::nullopt;
}

Expected<ResumedIncident> incident_from(const nlohmann::json& entry) {
  if (!entry.is_object()) {
    return make_unexpected(ErrorKind::kInvalidInput, "an entry is not an object");
  }
  auto text = [&](const char* key) -> const std::string* {
    const auto it = entry.find(key);
    return it != entry.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
  };
  auto number = [&](const char* key) -> std::optional<std::int64_t> {
    const auto it = entry.find(key);
    if (it == entry.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<std::int64_t>();
  };
  const auto* id = text("incident_id");
  const auto* address_text = text("address");
  const auto* kind_text = text("kind");
  const auto sequence = number("sequence");
  const auto port = number("port");
  const auto started_at = number("started_at_ns");
  const auto peak = number("peak_half_open");
  const auto host = entry.find("host_scope");
  if (id == nullptr || id->empty() || id->size() > 64 || address_text == nullptr ||
      kind_text == nullptr || !sequence || !port || !started_at || !peak || host == entry.end() ||
      !host->is_boolean()) {
    return make_unexpected(ErrorKind::kInvalidInput,
                           "an entry lacks a field or has one of the wrong type");
  }
  const auto address = IpAddress::parse(*address_text);
  const auto kind = kind_from(*kind_text);
  if (!address || !kind || *port < 0 || *port > 65535 || *sequence < 0 || *sequence > UINT32_MAX ||
      *peak < 0 || *peak > UINT32_MAX) {
    return make_unexpected(ErrorKind::kInvalidInput,
                           "entry '" + *id + "' has a value out of range");
  }
  ResumedIncident incident;
  incident.incident_id = *id;
  incident.sequence = static_cast<std::uint32_t>(*sequence);
  incident.target = {*address, static_cast<std::uint16_t>(*port)};
  incident.host_scope = host->get<bool>();
  incident.kind = *kind;
  incident.started_at = *started_at;
  incident.peak_half_open = static_cast<std::uint32_t>(*peak);
  return incident;
}

}  // namespace

Expected<OpenIncidentsFile> OpenIncidentsFile::open(const std::filesystem::path& state_dir,
                                                    const std::string& owner) {
  const auto directory = state_dir / "incidents";
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) {
    return std::unexpected(Error::from_error_code(error, "cannot create " + directory.string()));
  }
  if (!owner.empty() && ::geteuid() == 0) {
    if (auto owned = hand_over_tree(directory, owner); !owned) {
      return std::unexpected(owned.error());
    }
  }
  return OpenIncidentsFile(directory / "open.json");
}

std::vector<ResumedIncident> OpenIncidentsFile::load(std::vector<std::string>& problems) {
  std::vector<ResumedIncident> loaded;
  std::error_code error;
  if (!std::filesystem::exists(path_, error)) return loaded;
  std::ifstream in(path_, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  const auto document = nlohmann::json::parse(text.str(), nullptr, false);
  const auto list = document.is_object() ? document.find("incidents") : document.end();
  if (!document.is_object() || list == document.end() || !list->is_array()) {
    problems.push_back(path_.string() + " is damaged; its incidents cannot be resumed");
    return loaded;
  }
  for (const auto& entry : *list) {
    auto incident = incident_from(entry);
    if (!incident) {
      problems.push_back(path_.string() + ": " + incident.error().message);
      continue;
    }
    open_[incident->incident_id] = *incident;
    loaded.push_back(std::move(*incident));
  }
  std::ranges::sort(loaded, {}, &ResumedIncident::started_at);
  return loaded;
}

Expected<void> OpenIncidentsFile::record(const IncidentEvent& event) {
  if (event.type == EventType::kEnded) {
    if (open_.erase(event.incident_id) == 0) return {};
  } else {
    ResumedIncident& incident = open_[event.incident_id];
    incident.incident_id = event.incident_id;
    incident.sequence = event.sequence;
    incident.target = event.target;
    incident.host_scope = event.host_scope;
    incident.kind = event.kind;
    incident.started_at = event.started_at;
    incident.peak_half_open = std::max(incident.peak_half_open, event.stats.peak_half_open);
  }
  return write();
}

Expected<void> OpenIncidentsFile::write() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [id, incident] : open_) {
    list.push_back({{"incident_id", id},
                    {"sequence", incident.sequence},
                    {"address", incident.target.address.to_string()},
                    {"port", incident.target.port},
                    {"host_scope", incident.host_scope},
                    {"kind", to_string(incident.kind)},
                    {"started_at_ns", incident.started_at},
                    {"peak_half_open", incident.peak_half_open}});
  }
  const nlohmann::json document = {{"version", kFileVersion}, {"incidents", list}};
  return replace_file_durably(path_, document.dump() + "\n");
}

}  // namespace synwatch
