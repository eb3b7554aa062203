#include "build_info.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <pcap/pcap.h>
#include <spdlog/version.h>
#include <zlib.h>

#include <string>

#include "version.hpp"

namespace synwatch {

std::string version_text() {
  const std::string commit = *kGitCommit != '\0' ? kGitCommit : "unknown (not built from git)";
  const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
  // libmicrohttpd serves HTTPS (metrics.tls_*) only when built with GnuTLS.
  const bool mhd_tls = MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
  return fmt::format(
      "synwatchd {}\n"
      "commit: {}\n"
      "build: {}, {}, {}\n"
      "default configuration: {}\n"
      "libpcap: {}\n"
      "libmicrohttpd: {} ({})\n"
      "OpenSSL: {}\n"
      "libcurl: {}\n"
      "zlib: {}\n"
      "spdlog: {}.{}.{} (built with), fmt: {}.{}.{} (built with)",
      kVersion, commit, kBuildType, kCompiler, kHardening, kDefaultConfigPath, pcap_lib_version(),
      MHD_get_version(), mhd_tls ? "with TLS" : "without TLS", OpenSSL_version(OPENSSL_VERSION),
      curl != nullptr ? curl->version : "unknown", zlibVersion(), SPDLOG_VER_MAJOR,
      SPDLOG_VER_MINOR, SPDLOG_VER_PATCH, FMT_VERSION / 10000, FMT_VERSION / 100 % 100,
      FMT_VERSION % 100);
}

}  // namespace synwatch
