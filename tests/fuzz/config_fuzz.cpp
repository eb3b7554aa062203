// libFuzzer target for the configuration loader: any text, as a file's content and as a --set
// override, must load or be refused with errors naming a position; never throw, crash or hang.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/loader.hpp"

// NOLINTNEXTLINE(readability-identifier-naming): libFuzzer's entry point, its name is fixed
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto loaded = synwatch::load_config_text(text, "fuzz.yaml");
  if (!loaded) {
    if (loaded.error().empty()) std::abort();  // refused without saying why
    for (const auto& error : loaded.error()) {
      if (error.message.empty()) std::abort();
    }
  }
  // The same text as the value of --set for a key of each kind.
  for (const char* key : {"detection.half_open", "detection.tick", "protected", "capture.filter",
                          "alerts.webhooks", "log.level", "capture.interfaces"}) {
    (void)synwatch::load_config_text("", "fuzz.yaml", {{key, std::string(text)}});
  }
  if (auto parsed = synwatch::parse_override(text)) {
    (void)synwatch::load_config_text("", "fuzz.yaml", {*parsed});
  }
  return 0;
}
