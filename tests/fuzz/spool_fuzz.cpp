// libFuzzer target for the webhook spool reader: whatever a spool file holds (damaged, cut, or
// written by someone else) is read back by Spool::load and checked by check_spooled_event for
// every format; nothing may throw or crash, what passes the check must render and carry a
// header-safe event id, and what does not is kInvalidInput with a reason.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "export/spool.hpp"
#include "export/webhook_format.hpp"

namespace {

const std::filesystem::path& spool_directory() {
  static const std::filesystem::path directory = [] {
    std::string name =
        (std::filesystem::temp_directory_path() / "synwatch-spool-fuzz-XXXXXX").string();
    if (::mkdtemp(name.data()) == nullptr) std::abort();
    return std::filesystem::path(name);
  }();
  return directory;
}

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): libFuzzer's entry point, its name is fixed
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spool = synwatch::Spool::open(spool_directory());
  if (!spool) std::abort();
  { std::ofstream(spool_directory() / "00000000000000000001.json", std::ios::binary) << text; }
  std::vector<std::string> problems;
  auto events = spool->load(problems);
  spool->remove(1);
  for (const auto& event : events) {
    for (const auto format :
         {synwatch::WebhookFormat::kJson, synwatch::WebhookFormat::kAlertmanager,
          synwatch::WebhookFormat::kSlack}) {
      synwatch::WebhookRenderContext context;
      context.instance = "fuzz-host";
      const auto head = synwatch::check_spooled_event(event.json, format, context);
      if (!head) {
        // A refusal says why, and a damaged file is the document's fault, never the disk's.
        if (head.error().message.empty() ||
            head.error().kind != synwatch::ErrorKind::kInvalidInput) {
          std::abort();
        }
        continue;
      }
      for (const char c : head->event_id) {
        if (c <= ' ' || c >= 0x7f) std::abort();
      }
      if (format != synwatch::WebhookFormat::kJson) {
        (void)synwatch::render_webhook_body(format, nlohmann::json::parse(event.json), context);
      }
    }
  }
  return 0;
}
