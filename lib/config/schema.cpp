#include "config/schema.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <system_error>
#include <cmath>
#include <concepts>
#include <limits>
#include <type_traits>

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <memory>
#include <span>
#include <utility>

namespace synwatch {
namespace {

constexpr DurationNs kMinute = 60 * kNanosPerSecond;
constexpr DurationNs kHour = 60 * kMinute;
constexpr DurationNs kDay = 24 * kHour;
constexpr DurationNs kMilli = kNanosPerMilli;
constexpr DurationNs kSecond = kNanosPerSecond;

// The aggregator keeps one sub-window per tick in a fixed ring; 60 slots bound its memory per
// destination while still allowing a one-minute window at a one-second tick.
constexpr DurationNs kMaxTicksPerWindow = 60;

// Builds the read/assign pair from an accessor lambda such as
// `[](auto& c) -> auto& { return c.flow.capacity; }`. The lambda is captureless, so it is
// default-constructible and the pair can be plain function pointers.
template <typename Stored, typename Field>
ConfigKey make_key(std::string_view path, ConfigKind kind, Field, std::string_view doc) {
  ConfigKey key;
  key.path = path;
  key.kind = kind;
  key.doc = doc;
  key.assign = [](Config& config, const ConfigValue& value) {
    auto& field = Field{}(config);
    field = static_cast<std::remove_cvref_t<decltype(field)>>(std::get<Stored>(value));
  };
  key.read = [](const Config& config) -> ConfigValue { return Stored(Field{}(config)); };
  return key;
}

// Marks a key that a reload keeps at its running value until the next start.
ConfigKey at_restart(ConfigKey key) {
  key.reload = ReloadEffect::kAtRestart;
  return key;
}

template <typename Field>
using FieldType = std::remove_cvref_t<std::invoke_result_t<Field, Config&>>;

template <typename Field>
ConfigKey bool_key(std::string_view path, Field field, std::string_view doc) {
  static_assert(std::same_as<FieldType<Field>, bool>);
  return make_key<bool>(path, ConfigKind::kBool, field, doc);
}

template <typename Field>
ConfigKey unsigned_key(std::string_view path, std::uint64_t minimum, std::uint64_t maximum,
                       Field field, std::string_view doc) {
  using T = FieldType<Field>;
  static_assert(std::unsigned_integral<T> && !std::same_as<T, bool>);
  auto key = make_key<std::uint64_t>(path, ConfigKind::kUnsigned, field, doc);
  key.minimum = minimum;
  key.maximum = std::min<std::uint64_t>(maximum, std::numeric_limits<T>::max());
  return key;
}

template <typename Field>
ConfigKey double_key(std::string_view path, double minimum, double maximum, Field field,
                     std::string_view doc) {
  static_assert(std::same_as<FieldType<Field>, double>);
  auto key = make_key<double>(path, ConfigKind::kDouble, field, doc);
  key.minimum = minimum;
  key.maximum = maximum;
  return key;
}

template <typename Field>
ConfigKey duration_key(std::string_view path, DurationNs minimum, DurationNs maximum, Field field,
                       std::string_view doc) {
  static_assert(std::same_as<FieldType<Field>, DurationNs>);
  auto key = make_key<DurationNs>(path, ConfigKind::kDuration, field, doc);
  key.minimum = minimum;
  key.maximum = maximum;
  return key;
}

template <typename Field>
ConfigKey string_key(std::string_view path, Field field, std::string_view doc) {
  static_assert(std::same_as<FieldType<Field>, std::string>);
  return make_key<std::string>(path, ConfigKind::kString, field, doc);
}

ConfigKey with_check(ConfigKey key, std::optional<std::string> (*check)(const ConfigValue&)) {
  key.check_value = check;
  return key;
}

template <typename Field>
ConfigKey enum_key(std::string_view path, const std::vector<std::string_view>& choices, Field field,
                   std::string_view doc) {
  static_assert(std::same_as<FieldType<Field>, std::string>);
  auto key = make_key<std::string>(path, ConfigKind::kEnum, field, doc);
  key.choices = choices;
  return key;
}

template <typename Field>
ConfigKey prefix_list_key(std::string_view path, Field field, std::string_view doc) {
  static_assert(std::same_as<FieldType<Field>, std::vector<IpPrefix>>);
  return make_key<std::vector<IpPrefix>>(path, ConfigKind::kPrefixList, field, doc);
}

template <typename Field>
ConfigKey string_list_key(std::string_view path, Field field, std::string_view doc) {
  static_assert(std::same_as<FieldType<Field>, std::vector<std::string>>);
  return make_key<std::vector<std::string>>(path, ConfigKind::kStringList, field, doc);
}

// ---- alerts.webhooks: fields, element checks ---------------------------------------------------

ConfigKey webhook_field(std::string_view name, ConfigKind kind, std::string_view doc,
                        bool required = false) {
  ConfigKey field;
  field.path = name;
  field.kind = kind;
  field.doc = doc;
  field.required = required;
  return field;
}

// Why `url` is not a usable http(s) URL, or nullopt. Deliberately strict: a typo here would only
// show up as failed deliveries during the first attack.
std::optional<std::string> url_problem(std::string_view url) {
  std::string lowered(url.substr(0, 8));
  for (auto& c : lowered) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  std::string_view rest;
  if (lowered.starts_with("http://")) {
    rest = url.substr(7);
  } else if (lowered.starts_with("https://")) {
    rest = url.substr(8);
  } else {
    return "malformed URL '" + std::string(url) + "': must start with http:// or https://";
  }
  for (const char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return "malformed URL '" + std::string(url) + "': contains a space or control character";
    }
  }
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.contains('@')) {
    return "malformed URL '" + std::string(url) +
           "': credentials in the URL are not supported; use headers (Authorization)";
  }
  std::string_view host = authority;
  std::string_view port;
  if (host.starts_with('[')) {
    const auto close = host.find(']');
    if (close == std::string_view::npos || close == 1) {
      return "malformed URL '" + std::string(url) + "': unterminated or empty [IPv6] host";
    }
    port = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!port.empty() && !port.starts_with(':')) {
      return "malformed URL '" + std::string(url) + "': unexpected text after the [IPv6] host";
    }
    if (!port.empty()) port.remove_prefix(1);
  } else if (const auto colon = host.find(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
    if (port.empty()) return "malformed URL '" + std::string(url) + "': empty port";
  }
  if (host.empty()) return "malformed URL '" + std::string(url) + "': no host";
  const bool host_ok = std::ranges::all_of(host, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_' || c == ':';
  });
  if (!host_ok) return "malformed URL '" + std::string(url) + "': invalid host name";
  if (!port.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) {
      return "malformed URL '" + std::string(url) + "': port must be 1 .. 65535";
    }
  }
  return std::nullopt;
}

// Compiled for Ethernet, the link type of nearly every capture interface, so that a filter that
// cannot work is refused by --check-config and by a reload instead of closing the interfaces.
std::optional<std::string> capture_filter_problem(const ConfigValue& value) {
  const auto& filter = std::get<std::string>(value);
  if (filter.empty()) return std::nullopt;
  constexpr std::size_t kMaxCharacters = 4096;  // libpcap's parser is slow on pages of text too
  if (filter.size() > kMaxCharacters) {
    return "BPF filter too long: " + std::to_string(filter.size()) + " characters, at most " +
           std::to_string(kMaxCharacters);
  }
  const std::unique_ptr<pcap_t, void (*)(pcap_t*)> dead(pcap_open_dead(DLT_EN10MB, 65535),
                                                        &pcap_close);
  if (!dead) return "cannot check the filter: pcap_open_dead failed";
  // libpcap's optimiser takes time and memory far beyond linear in the program's size (a filter
  // of 300 portranges: 28,000 instructions, a minute of CPU), and it runs at every start and
  // reload. So the unoptimised program is bounded first; 8,192 instructions optimise in about a
  // second and cover any filter the kernel could take (it loads at most 4,096 after optimising).
  constexpr unsigned kMaxUnoptimised = 8192;
  constexpr unsigned kKernelMax = 4096;  // BPF_MAXINSNS
  bpf_program program{};
  if (pcap_compile(dead.get(), &program, filter.c_str(), 0, PCAP_NETMASK_UNKNOWN) != 0) {
    return "invalid BPF filter: " + std::string(pcap_geterr(dead.get()));
  }
  const unsigned unoptimised = program.bf_len;
  pcap_freecode(&program);
  if (unoptimised > kMaxUnoptimised) {
    return "BPF filter too complex: " + std::to_string(unoptimised) +
           " instructions before optimising, at most " + std::to_string(kMaxUnoptimised) +
           "; simplify it (e.g. one portrange instead of many)";
  }
  if (pcap_compile(dead.get(), &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    return "invalid BPF filter: " + std::string(pcap_geterr(dead.get()));
  }
  const unsigned optimised = program.bf_len;
  pcap_freecode(&program);
  if (optimised > kKernelMax) {
    return "BPF filter too long: " + std::to_string(optimised) +
           " instructions, the kernel takes " + "at most " + std::to_string(kKernelMax);
  }
  return std::nullopt;
}

// A Unix socket's path must fit sockaddr_un (107 bytes and the terminating NUL) and, being
// reached from other processes, must not depend on the daemon's working directory.
std::optional<std::string> socket_path_problem(const ConfigValue& value) {
  const auto& path = std::get<std::string>(value);
  constexpr std::size_t kMaxBytes = sizeof(sockaddr_un::sun_path) - 1;
  if (path.empty() || path.front() != '/') {
    return "must be an absolute path, not '" + path + "'";
  }
  if (path.size() > kMaxBytes) {
    return "socket path too long: " + std::to_string(path.size()) + " bytes, at most " +
           std::to_string(kMaxBytes) + " (a limit of Unix sockets)";
  }
  return std::nullopt;
}

// A receiver's or action's name becomes a directory under state_dir, a log word and a metrics
// label: letters, digits, '.', '-' and '_' only, and not "." or "..".
std::optional<std::string> name_problem(std::string_view name) {
  const bool safe =
      !name.empty() && name != "." && name != ".." && std::ranges::all_of(name, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '-' || c == '_';
      });
  if (safe) return std::nullopt;
  return "expected letters, digits, '.', '-' or '_', got '" + std::string(name) + "'";
}

// A header line is "name: value\r\n": a CR or LF in either would end it early and let the rest
// become a header (or body) of its own.
std::optional<std::string> header_problem(std::string_view name, std::string_view value) {
  const bool name_ok = !name.empty() && std::ranges::all_of(name, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").contains(c);
  });
  if (!name_ok) {
    return "header name '" + std::string(name) +
           "' must be letters, digits and !#$%&'*+-.^_`|~ (an HTTP token)";
  }
  const bool value_ok = std::ranges::all_of(value, [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte == '\t' || (byte >= ' ' && byte != 0x7f);
  });
  if (!value_ok) {
    return "header '" + std::string(name) + "' has a control character (CR, LF, ...) in its value";
  }
  return std::nullopt;
}

// A secret must exist, be a regular file and be private to its owner: a signing key others can
// read lets them forge alerts.
std::optional<std::string> secret_file_problem(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return "cannot use secret file '" + path + "': " + std::generic_category().message(errno);
  }
  if (!S_ISREG(info.st_mode)) return "secret file '" + path + "' is not a regular file";
  if ((info.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) != 0) {
    char mode[8];
    (void)std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
    return "secret file '" + path + "' is readable or writable by group or others (mode " + mode +
           "); chmod 600 it";
  }
  return std::nullopt;
}

// The whole of a PEM file, or why it cannot be read. Regular files only (a FIFO would block the
// load), and bounded: a certificate chain is a few KiB.
std::expected<std::string, std::string> read_pem_file(const std::string& path) {
  constexpr std::size_t kMaxPemBytes = 1 << 20;
  // Looked at before it is opened: opening some devices has effects (a watchdog device starts
  // counting down), and a configuration may name anything.
  struct stat before {};
  if (::stat(path.c_str(), &before) != 0) {
    return std::unexpected(std::generic_category().message(errno));
  }
  if (!S_ISREG(before.st_mode)) return std::unexpected("not a regular file");
  struct Descriptor {
    explicit Descriptor(int opened) : fd(opened) {}
    int fd;
    Descriptor(const Descriptor&) = delete;
    Descriptor& operator=(const Descriptor&) = delete;
    ~Descriptor() {
      if (fd >= 0) ::close(fd);
    }
  };
  const Descriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  const int fd = file.fd;
  if (fd < 0) return std::unexpected(std::generic_category().message(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0) return std::unexpected(std::generic_category().message(errno));
  if (!S_ISREG(info.st_mode)) return std::unexpected("not a regular file");
  if (static_cast<std::size_t>(info.st_size) > kMaxPemBytes) {
    return std::unexpected("larger than 1 MiB");
  }
  std::string text(static_cast<std::size_t>(info.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(std::generic_category().message(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return text;
}

// OpenSSL's reason for the last failure, or `fallback` when it recorded none.
std::string openssl_reason(std::string_view fallback) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return std::string(fallback);
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : std::string(fallback);
}

using UniqueX509 = std::unique_ptr<X509, decltype(&X509_free)>;
using UniqueKey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

std::expected<UniqueX509, std::string> load_certificate(const std::string& path) {
  const auto text = read_pem_file(path);
  if (!text) {
    return std::unexpected("cannot read TLS certificate file '" + path + "': " + text.error());
  }
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(text->data(), static_cast<int>(text->size())), &BIO_free);
  UniqueX509 certificate(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr,
                         &X509_free);
  if (!certificate) {
    return std::unexpected("TLS certificate file '" + path + "' holds no PEM certificate (" +
                           openssl_reason("no BEGIN CERTIFICATE block") + ")");
  }
  return certificate;
}

std::expected<UniqueKey, std::string> load_private_key(const std::string& path) {
  auto text = read_pem_file(path);
  if (!text) return std::unexpected("cannot read TLS key file '" + path + "': " + text.error());
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(text->data(), static_cast<int>(text->size())), &BIO_free);
  // No password callback: an encrypted key cannot be used by a daemon that starts unattended.
  UniqueKey key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>("")) : nullptr,
      &EVP_PKEY_free);
  OPENSSL_cleanse(text->data(), text->size());
  if (!key) {
    return std::unexpected("TLS key file '" + path + "' holds no unencrypted PEM private key (" +
                           openssl_reason("no BEGIN PRIVATE KEY block") + ")");
  }
  return key;
}

std::optional<std::string> tls_cert_file_problem(const ConfigValue& value) {
  const auto& path = std::get<std::string>(value);
  if (path.empty()) return std::nullopt;
  const auto certificate = load_certificate(path);
  return certificate ? std::nullopt : std::optional(certificate.error());
}

std::optional<std::string> tls_key_file_problem(const ConfigValue& value) {
  const auto& path = std::get<std::string>(value);
  if (path.empty()) return std::nullopt;
  const auto key = load_private_key(path);
  return key ? std::nullopt : std::optional(key.error());
}

// Both files or neither, and the key must be the certificate's: a mismatch would only show as
// failed handshakes once Prometheus scrapes.
std::optional<std::string> check_tls_key_against_cert(const Config& config) {
  const auto& cert_path = config.metrics.tls_cert_file;
  const auto& key_path = config.metrics.tls_key_file;
  if (cert_path.empty() && key_path.empty()) return std::nullopt;
  if (cert_path.empty()) return "needs metrics.tls_cert_file as well (HTTPS needs both)";
  if (key_path.empty()) return "must be set with metrics.tls_cert_file (HTTPS needs both)";
  const auto certificate = load_certificate(cert_path);
  const auto key = load_private_key(key_path);
  if (!certificate) return certificate.error();
  if (!key) return key.error();
  if (X509_check_private_key(certificate->get(), key->get()) != 1) {
    ERR_clear_error();
    return "TLS key file '" + key_path + "' is not the key of the certificate in '" + cert_path +
           "'";
  }
  return std::nullopt;
}

std::vector<ConfigFieldProblem> check_webhook(const ConfigRecord& record) {
  std::vector<ConfigFieldProblem> problems;
  auto text = [&](std::string_view field) -> const std::string* {
    const auto it = record.find(field);
    return it == record.end() ? nullptr : &std::get<std::string>(it->second);
  };
  if (const auto* name = text("name")) {
    if (auto problem = name_problem(*name)) problems.push_back({"name", std::move(*problem)});
  }
  if (const auto* url = text("url")) {
    if (auto problem = url_problem(*url)) problems.push_back({"url", std::move(*problem)});
  }
  if (const auto* link = text("generator_url"); link != nullptr && !link->empty()) {
    if (auto problem = url_problem(*link)) {
      problems.push_back({"generator_url", std::move(*problem)});
    }
  }
  if (const auto* secret = text("secret_file"); secret != nullptr && !secret->empty()) {
    if (auto problem = secret_file_problem(*secret)) {
      problems.push_back({"secret_file", std::move(*problem)});
    }
  }
  if (const auto* ca = text("ca_file"); ca != nullptr && !ca->empty()) {
    struct stat info {};
    if (::stat(ca->c_str(), &info) != 0) {
      problems.push_back({"ca_file", "cannot use CA file '" + *ca +
                                         "': " + std::generic_category().message(errno)});
    }
  }
  if (const auto it = record.find("headers"); it != record.end()) {
    for (const auto& [name, value] : std::get<std::map<std::string, std::string>>(it->second)) {
      if (auto problem = header_problem(name, value)) {
        problems.push_back({"headers", std::move(*problem)});
      }
    }
  }
  if (const auto it = record.find("events"); it != record.end()) {
    const auto& events = std::get<std::vector<std::string>>(it->second);
    for (const auto& event : events) {
      if (event != "started" && event != "updated" && event != "ended") {
        problems.push_back(
            {"events", "expected a list of started, updated, ended, got '" + event + "'"});
      }
    }
  }
  const auto backoff = record.find("backoff");
  const auto max_backoff = record.find("max_backoff");
  const WebhookConfig defaults;
  const DurationNs first =
      backoff != record.end() ? std::get<DurationNs>(backoff->second) : defaults.backoff;
  const DurationNs cap = max_backoff != record.end() ? std::get<DurationNs>(max_backoff->second)
                                                     : defaults.max_backoff;
  if (cap < first) {
    problems.push_back({max_backoff != record.end() ? "max_backoff" : "backoff",
                        "max_backoff (" + format_duration(cap) + ") must be at least backoff (" +
                            format_duration(first) + ")"});
  }
  return problems;
}

void append_webhook(ConfigValue& list, const ConfigRecord& record) {
  WebhookConfig webhook;
  for (const auto& [field, value] : record) {
    if (field == "name") {
      webhook.name = std::get<std::string>(value);
    } else if (field == "url") {
      webhook.url = std::get<std::string>(value);
    } else if (field == "headers") {
      webhook.headers = std::get<std::map<std::string, std::string>>(value);
    } else if (field == "timeout") {
      webhook.timeout = std::get<DurationNs>(value);
    } else if (field == "events") {
      webhook.events = std::get<std::vector<std::string>>(value);
    } else if (field == "format") {
      webhook.format = std::get<std::string>(value);
    } else if (field == "secret_file") {
      webhook.secret_file = std::get<std::string>(value);
    } else if (field == "ca_file") {
      webhook.ca_file = std::get<std::string>(value);
    } else if (field == "max_retries") {
      webhook.max_retries = static_cast<std::size_t>(std::get<std::uint64_t>(value));
    } else if (field == "backoff") {
      webhook.backoff = std::get<DurationNs>(value);
    } else if (field == "max_backoff") {
      webhook.max_backoff = std::get<DurationNs>(value);
    } else if (field == "resend_interval") {
      webhook.resend_interval = std::get<DurationNs>(value);
    } else if (field == "generator_url") {
      webhook.generator_url = std::get<std::string>(value);
    }
  }
  // A chat channel wants to hear that a flood began and ended, not every update.
  if (webhook.format == "slack" && !record.contains("events")) {
    webhook.events = {"started", "ended"};
  }
  std::get<std::vector<WebhookConfig>>(list).push_back(std::move(webhook));
}

ConfigKey webhooks_key() {
  auto key = make_key<std::vector<WebhookConfig>>(
      "alerts.webhooks", ConfigKind::kMappingList,
      [](auto& c) -> auto& { return c.alerts.webhooks; },
      "Webhook receivers: name, url, headers, timeout, events (default all; slack: started, "
      "ended), format (json, alertmanager, slack), secret_file, ca_file, max_retries, backoff, "
      "max_backoff, resend_interval, generator_url.");
  key.unique_field = "name";
  key.check_element = check_webhook;
  key.append_element = append_webhook;
  auto duration = [](std::string_view name, DurationNs minimum, DurationNs maximum,
                     std::string_view doc) {
    ConfigKey field = webhook_field(name, ConfigKind::kDuration, doc);
    field.minimum = minimum;
    field.maximum = maximum;
    return field;
  };
  ConfigKey format = webhook_field("format", ConfigKind::kEnum, "Body format.");
  format.choices = {"json", "alertmanager", "slack"};
  ConfigKey retries =
      webhook_field("max_retries", ConfigKind::kUnsigned, "Retries before giving up.");
  retries.minimum = std::uint64_t{0};
  retries.maximum = std::uint64_t{1000};
  key.fields = {
      webhook_field("name", ConfigKind::kString, "Unique receiver name.", true),
      webhook_field("url", ConfigKind::kString, "http:// or https:// URL.", true),
      webhook_field("headers", ConfigKind::kStringMap, "Extra request headers."),
      duration("timeout", 10 * kMilli, 10 * kMinute, "Request timeout."),
      webhook_field("events", ConfigKind::kStringList, "Events sent: started, updated, ended."),
      format,
      webhook_field("secret_file", ConfigKind::kString, "File with the HMAC signing secret."),
      webhook_field("ca_file", ConfigKind::kString, "PEM CA bundle for https."),
      retries,
      duration("backoff", 10 * kMilli, kHour, "First retry delay, doubled per retry."),
      duration("max_backoff", 10 * kMilli, kDay, "Longest retry delay."),
      duration("resend_interval", kSecond, kHour,
               "alertmanager: re-send firing alerts this often (endsAt 4 intervals ahead)."),
      webhook_field("generator_url", ConfigKind::kString,
                    "alertmanager: the alerts' generatorURL; empty: this host's metrics page."),
  };
  return key;
}

// nftables names are written into nft commands: only what nft's own scanner takes as an
// identifier (letters, digits, '_', '-', '.', starting with a letter or '_'), so that a name can
// never end the command early and start another.
bool is_nft_identifier(std::string_view name) {
  constexpr std::size_t kLongest = 64;
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  return !name.empty() && name.size() <= kLongest &&
         (letter(name.front()) || name.front() == '_') && std::ranges::all_of(name, [&](char c) {
           return letter(c) || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
         });
}

// The family of a valid `table` value ("inet synwatch" -> "inet"), or nullopt.
std::optional<std::string_view> nft_table_family(std::string_view table) {
  const auto space = table.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::string_view family = table.substr(0, space);
  if (family != "ip" && family != "ip6" && family != "inet") return std::nullopt;
  if (!is_nft_identifier(table.substr(space + 1))) return std::nullopt;
  return family;
}

constexpr std::string_view kExecOnlyFields[] = {"command", "timeout", "max_running"};
constexpr std::string_view kNftablesOnlyFields[] = {"table",        "set_ipv4",  "set_ipv6",
                                                    "create_table", "block_for", "max_entries",
                                                    "min_share",    "allowlist", "dry_run"};

std::vector<ConfigFieldProblem> check_action(const ConfigRecord& record) {
  std::vector<ConfigFieldProblem> problems;
  auto text = [&](std::string_view field) -> const std::string* {
    const auto it = record.find(field);
    return it == record.end() ? nullptr : &std::get<std::string>(it->second);
  };
  if (const auto* name = text("name")) {
    if (auto problem = name_problem(*name)) problems.push_back({"name", std::move(*problem)});
  }
  const std::string* given_type = text("type");
  const std::string type = given_type != nullptr ? *given_type : ActionConfig{}.type;
  // A field of the other type would be silently ignored: most likely a mistake in `type`.
  const auto& foreign = type == "exec" ? std::span<const std::string_view>(kNftablesOnlyFields)
                                       : std::span<const std::string_view>(kExecOnlyFields);
  for (const auto field : foreign) {
    if (record.contains(field)) {
      problems.push_back({std::string(field), std::string("only for type ") +
                                                  (type == "exec" ? "nftables" : "exec") +
                                                  " actions; this one is type " + type});
    }
  }
  if (type == "exec") {
    if (const auto it = record.find("command"); it == record.end()) {
      problems.push_back({"command", "missing: type exec needs the command to run"});
    } else {
      const auto& command = std::get<std::vector<std::string>>(it->second);
      if (command.empty()) {
        problems.push_back(
            {"command", "expected the program and its arguments, got an empty list"});
      } else if (!command.front().starts_with('/')) {
        problems.push_back({"command",
                            "the program must be an absolute path (no PATH lookup), "
                            "got '" +
                                command.front() + "'"});
      } else if (::access(command.front().c_str(), X_OK) != 0) {
        problems.push_back({"command", "cannot run '" + command.front() +
                                           "': " + std::generic_category().message(errno)});
      }
    }
  } else {
    const ActionConfig defaults;
    const std::string* given_table = text("table");
    const std::string table = given_table != nullptr ? *given_table : defaults.table;
    const auto family = nft_table_family(table);
    if (!family) {
      problems.push_back({"table",
                          "expected '<family> <name>' with family ip, ip6 or inet and a name of "
                          "letters, digits, '_', '-' or '.', such as 'inet synwatch', got '" +
                              table + "'"});
    }
    bool any_set = false;
    for (const auto& [field, wrong_family] :
         {std::pair{"set_ipv4", "ip6"}, std::pair{"set_ipv6", "ip"}}) {
      const std::string* given = text(field);
      if (given != nullptr && !given->empty() && !is_nft_identifier(*given)) {
        problems.push_back({field,
                            "expected a set name of letters, digits, '_', '-' or '.' "
                            "(starting with a letter or '_'), or empty, got '" +
                                *given + "'"});
      }
      if (given != nullptr && !given->empty() && family == wrong_family) {
        problems.push_back({field, "a table of family " + std::string(*family) +
                                       " cannot hold this set; use family inet or leave " + field +
                                       " out"});
      }
      const bool family_has_it = family && family != wrong_family;
      any_set = any_set || (given != nullptr ? !given->empty() : family_has_it);
    }
    const std::string* ipv4 = text("set_ipv4");
    const std::string* ipv6 = text("set_ipv6");
    if (ipv6 != nullptr && !ipv6->empty() &&
        *ipv6 == (ipv4 != nullptr ? *ipv4 : defaults.set_ipv4)) {
      // One set cannot hold both address types.
      problems.push_back({"set_ipv6", "must differ from set_ipv4 ('" + *ipv6 + "')"});
    } else if (ipv4 != nullptr && !ipv4->empty() && ipv6 == nullptr && *ipv4 == defaults.set_ipv6 &&
               family != "ip") {
      problems.push_back({"set_ipv4", "must differ from set_ipv6 ('" + *ipv4 + "')"});
    }
    if (family && !any_set) {
      problems.push_back({"table", "no set to put sources in: set_ipv4 and set_ipv6 are empty"});
    }
  }
  if (const auto it = record.find("events"); it != record.end()) {
    for (const auto& event : std::get<std::vector<std::string>>(it->second)) {
      if (event != "started" && event != "updated" && event != "ended") {
        problems.push_back(
            {"events", "expected a list of started, updated, ended, got '" + event + "'"});
      }
    }
  }
  return problems;
}

void append_action(ConfigValue& list, const ConfigRecord& record) {
  ActionConfig action;
  for (const auto& [field, value] : record) {
    if (field == "name") {
      action.name = std::get<std::string>(value);
    } else if (field == "type") {
      action.type = std::get<std::string>(value);
    } else if (field == "command") {
      action.command = std::get<std::vector<std::string>>(value);
    } else if (field == "events") {
      action.events = std::get<std::vector<std::string>>(value);
    } else if (field == "timeout") {
      action.timeout = std::get<DurationNs>(value);
    } else if (field == "max_running") {
      action.max_running = static_cast<std::size_t>(std::get<std::uint64_t>(value));
    } else if (field == "table") {
      action.table = std::get<std::string>(value);
    } else if (field == "set_ipv4") {
      action.set_ipv4 = std::get<std::string>(value);
    } else if (field == "set_ipv6") {
      action.set_ipv6 = std::get<std::string>(value);
    } else if (field == "create_table") {
      action.create_table = std::get<bool>(value);
    } else if (field == "block_for") {
      action.block_for = std::get<DurationNs>(value);
    } else if (field == "max_entries") {
      action.max_entries = static_cast<std::size_t>(std::get<std::uint64_t>(value));
    } else if (field == "min_share") {
      action.min_share = std::get<double>(value);
    } else if (field == "allowlist") {
      action.allowlist = std::get<std::vector<IpPrefix>>(value);
    } else if (field == "dry_run") {
      action.dry_run = std::get<bool>(value);
    }
  }
  if (action.type == "nftables") {
    // An update can name sources that were not heavy yet at the start, and refreshes the
    // timeouts of those already blocked.
    if (!record.contains("events")) action.events = {"started", "updated", "ended"};
    // A family's table holds no set of the other: its default set name does not apply.
    const std::string_view family =
        std::string_view(action.table).substr(0, action.table.find(' '));
    if (family == "ip" && !record.contains("set_ipv6")) action.set_ipv6.clear();
    if (family == "ip6" && !record.contains("set_ipv4")) action.set_ipv4.clear();
  }
  std::get<std::vector<ActionConfig>>(list).push_back(std::move(action));
}

ConfigKey actions_key() {
  auto key = make_key<std::vector<ActionConfig>>(
      "actions", ConfigKind::kMappingList, [](auto& c) -> auto& { return c.actions; },
      "Actions on incident events. type exec runs a command with the event JSON on stdin and "
      "SYNWATCH_* variables: name, command, events (default started, ended), timeout, "
      "max_running. type nftables puts a concentrated incident's sources into nftables sets "
      "while it lasts: name, table, set_ipv4, set_ipv6, create_table, block_for, max_entries, "
      "min_share, allowlist, dry_run, events (default started, updated, ended).");
  key.unique_field = "name";
  key.check_element = check_action;
  key.append_element = append_action;
  auto bounded = [](std::string_view name, ConfigKind kind, ConfigValue minimum,
                    ConfigValue maximum, std::string_view doc) {
    ConfigKey field = webhook_field(name, kind, doc);
    field.minimum = std::move(minimum);
    field.maximum = std::move(maximum);
    return field;
  };
  ConfigKey type = webhook_field("type", ConfigKind::kEnum, "What the action does.");
  type.choices = {"exec", "nftables"};
  key.fields = {
      webhook_field("name", ConfigKind::kString, "Unique action name.", true),
      type,
      webhook_field("command", ConfigKind::kStringList,
                    "exec: program (absolute path) and arguments."),
      webhook_field("events", ConfigKind::kStringList, "Events: started, updated, ended."),
      bounded("timeout", ConfigKind::kDuration, 100 * kMilli, kHour,
              "exec: longest run; then its process group is killed."),
      bounded("max_running", ConfigKind::kUnsigned, std::uint64_t{1}, std::uint64_t{64},
              "exec: runs at once; more are skipped."),
      webhook_field("table", ConfigKind::kString,
                    "nftables: '<family> <name>' of the sets' table, family ip, ip6 or inet."),
      webhook_field("set_ipv4", ConfigKind::kString, "nftables: set for IPv4 sources."),
      webhook_field("set_ipv6", ConfigKind::kString, "nftables: set for IPv6 sources."),
      webhook_field("create_table", ConfigKind::kBool,
                    "nftables: create the table, sets and a SYN-dropping chain."),
      bounded("block_for", ConfigKind::kDuration, 10 * kSecond, 7 * kDay,
              "nftables: timeout of each element (refreshed while the incident lasts)."),
      bounded("max_entries", ConfigKind::kUnsigned, std::uint64_t{1}, std::uint64_t{65536},
              "nftables: elements held at once."),
      bounded("min_share", ConfigKind::kDouble, 0.0, 1.0,
              "nftables: smallest share of the incident's stale handshakes a source must send."),
      webhook_field("allowlist", ConfigKind::kPrefixList, "nftables: sources never blocked."),
      webhook_field("dry_run", ConfigKind::kBool, "nftables: log what would be done, only."),
  };
  return key;
}

std::vector<ConfigKey> build_schema() {
  // Ranges of window and update_interval start at the smallest tick; their relation to the
  // actual tick is a cross-key check below.
  return {
      prefix_list_key(
          "protected", [](auto& c) -> auto& { return c.protected_prefixes; },
          "Destination prefixes to watch (IPv4 or IPv6 CIDR); empty: every destination with "
          "--read, this host's own addresses live."),
      duration_key(
          "protected_refresh", kSecond, kDay, [](auto& c) -> auto& { return c.protected_refresh; },
          "Live mode with empty `protected`: how often the host's addresses are re-read."),
      at_restart(string_key(
          "user", [](auto& c) -> auto& { return c.user; },
          "User the live daemon switches to when started as root; must exist (a dedicated one, not "
          "a "
          "shared account such as nobody).")),
      string_key(
          "state_dir", [](auto& c) -> auto& { return c.state_dir; },
          "Directory for persistent state: the webhook spool of undelivered events, the incidents "
          "open "
          "at a crash, evidence captures."),

      bool_key(
          "capture.enabled", [](auto& c) -> auto& { return c.capture.enabled; },
          "Capture packets (the wire view); false: kernel-only mode, no capture privilege needed."),
      bool_key(
          "kernel.enabled", [](auto& c) -> auto& { return c.kernel.enabled; },
          "Poll the kernel's SYN_RECV sockets and SYN cookie counters (live mode)."),
      duration_key(
          "kernel.interval", 100 * kMilli, kHour,
          [](auto& c) -> auto& { return c.kernel.interval; }, "Period of the kernel view's polls."),
      string_list_key(
          "capture.interfaces", [](auto& c) -> auto& { return c.capture.interfaces; },
          "Interfaces to capture on; \"any\" is every interface."),
      unsigned_key(
          "capture.snap_length", 96, 65535, [](auto& c) -> auto& { return c.capture.snap_length; },
          "Bytes captured per packet (headers only)."),
      unsigned_key(
          "capture.buffer_size", 1u << 20, 1u << 30,
          [](auto& c) -> auto& { return c.capture.buffer_size; },
          "Kernel capture ring per interface and worker, in bytes."),
      with_check(string_key(
                     "capture.filter", [](auto& c) -> auto& { return c.capture.filter; },
                     "BPF filter; empty uses the built-in one (SYN, SYN-ACK, RST, FIN, "
                     "payload-free ACK)."),
                 &capture_filter_problem),
      bool_key(
          "capture.promiscuous", [](auto& c) -> auto& { return c.capture.promiscuous; },
          "Put interfaces in promiscuous mode (for mirror ports)."),
      at_restart(unsigned_key(
          "capture.workers", 0, 64, [](auto& c) -> auto& { return c.capture.workers; },
          "Capture threads, each with its own share of the handshake table (PACKET_FANOUT by "
          "flow); 0: one per CPU this process may run on.")),

      string_key(
          "alerts.file", [](auto& c) -> auto& { return c.alerts.file; },
          "Append incident events as JSON Lines to this file; empty: none."),
      webhooks_key(),
      unsigned_key(
          "alerts.spool_max_events", 1, 10'000'000,
          [](auto& c) -> auto& { return c.alerts.spool_max_events; },
          "Undelivered webhook events kept per receiver; when full, the oldest updated go first."),
      actions_key(),

      at_restart(bool_key(
          "evidence.enabled", [](auto& c) -> auto& { return c.evidence.enabled; },
          "Keep a pcap of each incident's SYNs (live; --read with --evidence-dir).")),
      at_restart(string_key(
          "evidence.directory", [](auto& c) -> auto& { return c.evidence.directory; },
          "Where evidence captures go; empty: <state_dir>/evidence.")),
      at_restart(unsigned_key(
          "evidence.first_packets", 0, 1'000'000,
          [](auto& c) -> auto& { return c.evidence.first_packets; },
          "SYNs to the target kept from an incident's start, every one.")),
      at_restart(unsigned_key(
          "evidence.per_second", 0, 100'000, [](auto& c) -> auto& { return c.evidence.per_second; },
          "After those, SYNs kept per second of the incident (the first of each second).")),
      at_restart(unsigned_key(
          "evidence.max_incident_bytes", 4096, std::uint64_t{1} << 40,
          [](auto& c) -> auto& { return c.evidence.max_incident_bytes; },
          "Largest evidence file of one incident; later frames are dropped (counted).")),
      at_restart(unsigned_key(
          "evidence.max_total_bytes", 4096, std::uint64_t{1} << 40,
          [](auto& c) -> auto& { return c.evidence.max_total_bytes; },
          "All evidence files together; the oldest files of ended incidents are removed first.")),

      at_restart(unsigned_key(
          "flow.capacity", 1, 268'435'456, [](auto& c) -> auto& { return c.flow.capacity; },
          "Pending handshakes tracked at once (64 bytes each); when full, the oldest is evicted.")),
      duration_key(
          "flow.pending_timeout", kSecond, kDay,
          [](auto& c) -> auto& { return c.flow.pending_timeout; },
          "A handshake not completed within this is dropped; 63s = Linux tcp_synack_retries=5."),

      at_restart(unsigned_key(
          "aggregation.max_destinations", 1, 1'000'000,
          [](auto& c) -> auto& { return c.aggregation.max_destinations; },
          "Destinations tracked at once; SYNs to further destinations are counted and dropped.")),
      at_restart(duration_key(
          "aggregation.window", 10 * kMilli, 60 * kSecond,
          [](auto& c) -> auto& { return c.aggregation.window; },
          "Sliding window for rates, distinct sources, entropy and top sources; a whole multiple "
          "of detection.tick, at most 60 ticks.")),
      unsigned_key(
          "aggregation.top_sources", 1, 32,
          [](auto& c) -> auto& { return c.aggregation.top_sources; },
          "Heaviest sources reported per destination."),
      at_restart(duration_key(
          "aggregation.idle_timeout", kSecond, kDay,
          [](auto& c) -> auto& { return c.aggregation.idle_timeout; },
          "A destination that received no SYN for this long is forgotten.")),

      at_restart(duration_key(
          "detection.tick", 10 * kMilli, 60 * kSecond,
          [](auto& c) -> auto& { return c.detection.tick; },
          "Evaluation and sub-window period, in packet time.")),
      unsigned_key(
          "detection.half_open", 1, 100'000'000,
          [](auto& c) -> auto& { return c.detection.half_open; },
          "Stale half-open connections (gone stale or failed within the window, not completed) to "
          "one address:port that signal a flood; 256 = half the 511 backlog of nginx and Apache."),
      duration_key(
          "detection.for", 0, kHour, [](auto& c) -> auto& { return c.detection.hold_for; },
          "How long the flood condition must hold before an incident starts."),
      duration_key(
          "detection.cooldown", 0, kDay, [](auto& c) -> auto& { return c.detection.cooldown; },
          "How long the condition must stay clear before an incident ends."),
      duration_key(
          "detection.update_interval", 10 * kMilli, kDay,
          [](auto& c) -> auto& { return c.detection.update_interval; },
          "Period of updates about an ongoing incident; at least detection.tick."),
      unsigned_key(
          "detection.host_half_open", 1, 100'000'000,
          [](auto& c) -> auto& { return c.detection.host_half_open; },
          "Stale half-open connections to one address across all its ports that signal a flood "
          "to random ports; above what a port scan fails."),
      at_restart(duration_key(
          "detection.stale.floor", 50 * kMilli, 3 * kSecond,
          [](auto& c) -> auto& { return c.detection.stale.floor; },
          "Shortest age at which a pending handshake can be judged stale.")),
      at_restart(duration_key(
          "detection.stale.no_history", 50 * kMilli, 3 * kSecond,
          [](auto& c) -> auto& { return c.detection.stale.no_history; },
          "Age at which a pending handshake is stale while its destination has no history; 1s = "
          "Linux's initial SYN-ACK retransmission timeout.")),
      at_restart(double_key(
          "detection.stale.percentile", 0.5, 1.0,
          [](auto& c) -> auto& { return c.detection.stale.percentile; },
          "Percentile of a destination's completed handshake times taken as its normal.")),
      at_restart(duration_key(
          "detection.stale.history", 2 * kSecond, kDay,
          [](auto& c) -> auto& { return c.detection.stale.history; },
          "How far back completed handshakes count towards the normal.")),
      double_key(
          "detection.baseline.multiple", 1.0, 1000.0,
          [](auto& c) -> auto& { return c.detection.baseline.multiple; },
          "The stale level must exceed this many times the destination's baseline."),
      duration_key(
          "detection.baseline.time_constant", 10 * kSecond, kDay,
          [](auto& c) -> auto& { return c.detection.baseline.time_constant; },
          "Time constant of the baseline's exponential average of the stale level (frozen while "
          "an incident is open)."),
      double_key(
          "detection.spoofed.min_distinct_ratio", 0.0, 1.0,
          [](auto& c) -> auto& { return c.detection.spoofed.min_distinct_ratio; },
          "Distinct sources / SYNs in the window from which sources look spoofed."),
      double_key(
          "detection.spoofed.min_entropy", 0.0, 1.0,
          [](auto& c) -> auto& { return c.detection.spoofed.min_entropy; },
          "Normalised source entropy (0..1) from which sources look randomly spoofed."),
      unsigned_key(
          "detection.concentrated.max_sources", 1, 32,
          [](auto& c) -> auto& { return c.detection.concentrated.max_sources; },
          "At most this many sources make a concentrated flood; at most aggregation.top_sources."),
      double_key(
          "detection.concentrated.min_share", 0.0, 1.0,
          [](auto& c) -> auto& { return c.detection.concentrated.min_share; },
          "Share of the SYNs that those few sources must send."),

      at_restart(bool_key(
          "metrics.enabled", [](auto& c) -> auto& { return c.metrics.enabled; },
          "Serve Prometheus metrics (live mode).")),
      at_restart(string_key(
          "metrics.listen", [](auto& c) -> auto& { return c.metrics.listen; },
          "Address:port of the /metrics endpoint, e.g. 127.0.0.1:9474 or [::]:9474.")),
      at_restart(unsigned_key(
          "metrics.max_destinations", 1, 100000,
          [](auto& c) -> auto& { return c.metrics.max_destinations; },
          "Most destinations exported with per-destination series.")),
      at_restart(string_key(
          "metrics.basic_auth_user", [](auto& c) -> auto& { return c.metrics.basic_auth_user; },
          "HTTP basic auth user for /metrics; empty: no authentication.")),
      at_restart(string_key(
          "metrics.basic_auth_password_file",
          [](auto& c) -> auto& { return c.metrics.basic_auth_password_file; },
          "File holding the basic auth password.")),
      at_restart(with_check(
          string_key(
              "metrics.tls_cert_file", [](auto& c) -> auto& { return c.metrics.tls_cert_file; },
              "PEM certificate (chain) for HTTPS on /metrics; with tls_key_file. Empty: "
              "plain HTTP."),
          tls_cert_file_problem)),
      at_restart(with_check(
          string_key(
              "metrics.tls_key_file", [](auto& c) -> auto& { return c.metrics.tls_key_file; },
              "PEM private key of metrics.tls_cert_file."),
          tls_key_file_problem)),

      at_restart(bool_key(
          "status.enabled", [](auto& c) -> auto& { return c.status.enabled; },
          "Serve the daemon's state as JSON on a Unix socket, for `synwatchd top` (live mode).")),
      at_restart(
          with_check(string_key(
                         "status.socket", [](auto& c) -> auto& { return c.status.socket; },
                         "Path of the status socket; readable by root and the daemon's group."),
                     &socket_path_problem)),

      enum_key(
          "log.level", {"trace", "debug", "info", "warn", "error", "critical", "off"},
          [](auto& c) -> auto& { return c.log.level; }, "Log verbosity."),
      string_key(
          "log.file", [](auto& c) -> auto& { return c.log.file; },
          "Also log to this file, rotated by size; empty: no file."),
      unsigned_key(
          "log.file_max_bytes", 4096, 1ull << 40,
          [](auto& c) -> auto& { return c.log.file_max_bytes; },
          "Size at which the log file is rotated."),
      unsigned_key(
          "log.file_max_files", 1, 1000, [](auto& c) -> auto& { return c.log.file_max_files; },
          "Rotated log files kept."),
  };
}

std::optional<std::string> check_window_against_tick(const Config& config) {
  const DurationNs tick = config.detection.tick;
  const DurationNs window = config.aggregation.window;
  const std::string got = ", got " + format_duration(window);
  if (window < tick) {
    return "must be at least detection.tick (" + format_duration(tick) + ")" + got;
  }
  if (window % tick != 0) {
    return "must be a whole multiple of detection.tick (" + format_duration(tick) + ")" + got;
  }
  if (window / tick > kMaxTicksPerWindow) {
    return "must be at most " + std::to_string(kMaxTicksPerWindow) + " ticks of detection.tick (" +
           format_duration(tick) + "), i.e. " + format_duration(kMaxTicksPerWindow * tick) + got +
           " (" + std::to_string(window / tick) + " ticks)";
  }
  return std::nullopt;
}

std::optional<std::string> check_update_interval_against_tick(const Config& config) {
  if (config.detection.update_interval < config.detection.tick) {
    return "must be at least detection.tick (" + format_duration(config.detection.tick) +
           "), got " + format_duration(config.detection.update_interval);
  }
  return std::nullopt;
}

std::optional<std::string> check_no_history_against_floor(const Config& config) {
  // No handshake is judged before the floor, so a shorter no-history age would not take effect.
  if (config.detection.stale.no_history < config.detection.stale.floor) {
    return "must be at least detection.stale.floor (" +
           format_duration(config.detection.stale.floor) + "), got " +
           format_duration(config.detection.stale.no_history);
  }
  return std::nullopt;
}

std::optional<std::string> check_concentrated_against_top_sources(const Config& config) {
  // The detector can only judge concentration among the sources the aggregator ranks.
  if (config.detection.concentrated.max_sources > config.aggregation.top_sources) {
    return "must be at most aggregation.top_sources (" +
           std::to_string(config.aggregation.top_sources) + "), got " +
           std::to_string(config.detection.concentrated.max_sources);
  }
  return std::nullopt;
}

std::optional<std::string> check_evidence_caps(const Config& config) {
  if (config.evidence.max_incident_bytes > config.evidence.max_total_bytes) {
    return "must be at most evidence.max_total_bytes (" +
           std::to_string(config.evidence.max_total_bytes) + "), got " +
           std::to_string(config.evidence.max_incident_bytes);
  }
  return std::nullopt;
}

std::string format_double(double value) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return ec == std::errc{} ? std::string(buffer, end) : std::string("?");
}

std::string join(const std::vector<std::string_view>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

}  // namespace

std::span<const ConfigKey> config_schema() {
  static const std::vector<ConfigKey> schema = build_schema();
  return schema;
}

const ConfigKey* find_config_key(std::string_view path) {
  const auto schema = config_schema();
  const auto it = std::ranges::find(schema, path, &ConfigKey::path);
  return it == schema.end() ? nullptr : &*it;
}

std::span<const ConfigCrossCheck> config_cross_checks() {
  static const std::vector<ConfigCrossCheck> checks = {
      {"aggregation.window", {"detection.tick"}, check_window_against_tick},
      {"detection.update_interval", {"detection.tick"}, check_update_interval_against_tick},
      {"detection.stale.no_history", {"detection.stale.floor"}, check_no_history_against_floor},
      {"detection.concentrated.max_sources",
       {"aggregation.top_sources"},
       check_concentrated_against_top_sources},
      {"evidence.max_incident_bytes", {"evidence.max_total_bytes"}, check_evidence_caps},
      {"metrics.tls_key_file", {"metrics.tls_cert_file"}, check_tls_key_against_cert},
  };
  return checks;
}

std::string ConfigKey::describe_type() const {
  switch (kind) {
    case ConfigKind::kBool:
      return "a boolean (true or false)";
    case ConfigKind::kUnsigned:
      return "an unsigned integer in [" + std::to_string(std::get<std::uint64_t>(minimum)) + ", " +
             std::to_string(std::get<std::uint64_t>(maximum)) + "]";
    case ConfigKind::kDouble:
      return "a number in [" + format_double(std::get<double>(minimum)) + ", " +
             format_double(std::get<double>(maximum)) + "]";
    case ConfigKind::kDuration:
      return "a duration in [" + format_duration(std::get<DurationNs>(minimum)) + ", " +
             format_duration(std::get<DurationNs>(maximum)) + "]";
    case ConfigKind::kString:
      return "a string";
    case ConfigKind::kEnum:
      return "one of " + join(choices, ", ");
    case ConfigKind::kPrefixList:
      return "a list of IP prefixes, e.g. [10.0.0.0/8, 2001:db8::/32]";
    case ConfigKind::kStringList:
      return "a list of strings";
    case ConfigKind::kStringMap:
      return "a mapping of names to strings";
    case ConfigKind::kMappingList: {
      std::vector<std::string_view> names;
      names.reserve(fields.size());
      for (const auto& field : fields) names.push_back(field.path);
      return "a list of mappings with fields " + join(names, ", ");
    }
  }
  return "?";
}

std::string format_duration(DurationNs duration) {
  if (duration == 0) return "0s";
  if (duration % kHour == 0) return std::to_string(duration / kHour) + "h";
  if (duration % kSecond == 0) return std::to_string(duration / kSecond) + "s";
  if (duration % kMilli == 0) return std::to_string(duration / kMilli) + "ms";
  return format_double(to_seconds(duration)) + "s";
}

std::optional<DurationNs> parse_duration(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    DurationNs nanos;
  };
  // "ms" before "m" and "s", since both are its suffixes too.
  static constexpr Unit kUnits[] = {{"ms", kMilli}, {"s", kSecond}, {"m", kMinute}, {"h", kHour}};
  DurationNs unit = kSecond;
  for (const auto& candidate : kUnits) {
    if (text.ends_with(candidate.suffix)) {
      unit = candidate.nanos;
      text.remove_suffix(candidate.suffix.size());
      break;
    }
  }
  // from_chars alone would also take "inf", "nan" and hex digits; a duration is plain decimal.
  if (text.empty() || text.find_first_not_of("0123456789.-eE") != std::string_view::npos) {
    return std::nullopt;
  }
  double amount = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), amount);
  if (end != text.data() + text.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) {
    const bool underflow = text.contains("e-") || text.contains("E-");
    amount = underflow ? 0.0 : text.starts_with('-') ? -HUGE_VAL : HUGE_VAL;
  } else if (ec != std::errc{}) {
    return std::nullopt;
  }
  const double nanos = amount * static_cast<double>(unit);
  // 9.2e18 is just below the int64 limit; beyond it the value saturates.
  constexpr double kLimit = 9.2e18;
  if (nanos >= kLimit) return std::numeric_limits<DurationNs>::max();
  if (nanos <= -kLimit) return std::numeric_limits<DurationNs>::min();
  return static_cast<DurationNs>(std::llround(nanos));
}

std::string format_config_value(const ConfigKey& key, const ConfigValue& value) {
  switch (key.kind) {
    case ConfigKind::kBool:
      return std::get<bool>(value) ? "true" : "false";
    case ConfigKind::kUnsigned:
      return std::to_string(std::get<std::uint64_t>(value));
    case ConfigKind::kDouble:
      return format_double(std::get<double>(value));
    case ConfigKind::kDuration:
      return format_duration(std::get<DurationNs>(value));
    case ConfigKind::kString:
    case ConfigKind::kEnum:
      return std::get<std::string>(value);
    case ConfigKind::kPrefixList: {
      std::string out = "[";
      for (const auto& prefix : std::get<std::vector<IpPrefix>>(value)) {
        if (out.size() > 1) out += ", ";
        out += prefix.to_string();
      }
      return out + "]";
    }
    case ConfigKind::kStringList: {
      std::string out = "[";
      for (const auto& item : std::get<std::vector<std::string>>(value)) {
        if (out.size() > 1) out += ", ";
        out += item;
      }
      return out + "]";
    }
    case ConfigKind::kStringMap: {
      std::string out = "{";
      for (const auto& [name, item] : std::get<std::map<std::string, std::string>>(value)) {
        if (out.size() > 1) out += ", ";
        out += name;
        out += ": ";
        out += item;
      }
      return out + "}";
    }
    case ConfigKind::kMappingList: {
      // Names (and a receiver's URL) identify the elements; the rest would make the line
      // unreadable.
      std::string out = "[";
      if (const auto* webhooks = std::get_if<std::vector<WebhookConfig>>(&value)) {
        for (const auto& webhook : *webhooks) {
          if (out.size() > 1) out += ", ";
          out += "{name: " + webhook.name + ", url: " + webhook.url + "}";
        }
      } else if (const auto* actions = std::get_if<std::vector<ActionConfig>>(&value)) {
        for (const auto& action : *actions) {
          if (out.size() > 1) out += ", ";
          out += "{name: " + action.name + "}";
        }
      }
      return out + "]";
    }
  }
  return "?";
}

std::string config_reference() {
  const Config defaults;
  std::string out;
  for (const auto& key : config_schema()) {
    out += key.path;
    out += " = ";
    out += format_config_value(key, key.read(defaults));
    out += "\n    ";
    out += key.describe_type();
    out += ". ";
    out += key.doc;
    if (key.reload == ReloadEffect::kAtRestart) out += " Takes effect at restart.";
    out += "\n";
  }
  return out;
}

std::vector<std::string> keys_needing_restart(const Config& running, const Config& next) {
  std::vector<std::string> keys;
  for (const auto& key : config_schema()) {
    if (key.reload == ReloadEffect::kAtRestart && key.read(running) != key.read(next)) {
      keys.emplace_back(key.path);
    }
  }
  return keys;
}

Config applied_on_reload(const Config& running, const Config& next) {
  Config applied = next;
  for (const auto& key : config_schema()) {
    if (key.reload == ReloadEffect::kAtRestart) key.assign(applied, key.read(running));
  }
  return applied;
}

}  // namespace synwatch
