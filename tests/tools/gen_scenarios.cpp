// synwatch-gen: writes deterministic pcap scenarios for synwatch's end-to-end tests and
// benchmarks. `synwatch-gen --list` describes every scenario; the same arguments (seed
// included) always produce a byte-identical file. Prints a one-line JSON summary to stdout.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <iomanip>
#include <iostream>
#include <string>

#include "scenarios.hpp"

namespace {

void print_list() {
  using synwatch::gen::scenarios;
  using synwatch::gen::to_string;
  std::cout << "scenarios (defaults in brackets; options not listed are rejected):\n";
  for (const auto& s : scenarios()) {
    std::cout << "  " << s.name;
    if (s.rate) {
      std::cout << "  [--rate " << std::fixed << std::setprecision(0) << *s.rate << " "
                << s.rate_unit << "]";
    }
    // Shortest form (10, 0.5), whatever precision the rate above left behind.
    std::cout << std::defaultfloat << std::setprecision(6);
    if (s.duration) std::cout << "  [--duration " << *s.duration << " s]";
    if (s.count) std::cout << "  [--count " << *s.count << " " << s.count_unit << "]";
    if (s.legit_rate) {
      std::cout << "  [--legit-rate " << *s.legit_rate << " connections/s]";
    }
    if (s.history) std::cout << "  [--history " << *s.history << " s]";
    if (s.answer) std::cout << "  [--answer " << to_string(*s.answer) << ": none|synack|rst]";
    std::cout << "\n      " << s.description << "\n";
  }
  std::cout
      << "every scenario takes --seed (default 1), --target (default 198.51.100.10:80; ipv6-flood "
         "[2001:db8::10]:443; an IPv6 target makes any scenario IPv6), --link "
         "(ethernet|vlan|qinq|sll|sll2|raw), --start (epoch seconds, default 1704067200 = "
         "2024-01-01T00:00:00Z) and --duplicate (every frame written twice, back to back with the "
         "same timestamp, as a span port seeing both sides delivers it; summary counts include "
         "both copies)\n";
}

int run(int argc, char** argv) {
  using namespace synwatch::gen;
  CLI::App app{"synwatch-gen: deterministic SYN flood scenario captures (pcap, ns timestamps)"};
  GeneratorOptions options;
  bool list = false;
  double rate = 0;
  double duration = 0;
  std::uint64_t count = 0;
  double legit_rate = 0;
  double history = 0;
  std::string answer;
  std::string target;
  std::string link = "ethernet";
  std::string start;
  app.add_flag("--list", list, "describe the scenarios and exit");
  app.add_option("scenario", options.scenario, "scenario name (see --list)");
  app.add_option("--out", options.out, "pcap file to write");
  app.add_option("--seed", options.seed, "random seed (default 1)");
  auto* rate_option = app.add_option("--rate", rate, "events per second (unit per scenario)");
  auto* duration_option = app.add_option("--duration", duration, "seconds of attack or traffic");
  auto* count_option =
      app.add_option("--count", count, "number of packets, ports, clients... (per scenario)");
  auto* legit_rate_option = app.add_option("--legit-rate", legit_rate,
                                           "legitimate connections per second beside the attack");
  auto* history_option = app.add_option(
      "--history", history, "seconds of legitimate load alone before the attack starts");
  app.add_option("--answer", answer, "the server's answer to the attack's SYNs: none|synack|rst")
      ->check(CLI::IsMember({"none", "synack", "rst"}));
  app.add_flag("--duplicate", options.duplicate,
               "write every frame twice, back to back with the same timestamp");
  app.add_option("--target", target, "ADDR:PORT or [ADDR6]:PORT under attack");
  app.add_option("--link", link, "ethernet|vlan|qinq|sll|sll2|raw")
      ->check(CLI::IsMember({"ethernet", "vlan", "qinq", "sll", "sll2", "raw"}));
  app.add_option("--start", start, "time of the first packet, epoch seconds (fraction allowed)");
  CLI11_PARSE(app, argc, argv);

  if (list) {
    print_list();
    return 0;
  }
  if (options.scenario.empty() || options.out.empty()) {
    std::cerr << "synwatch-gen: need SCENARIO and --out FILE (or --list)\n";
    return 2;
  }
  if (*rate_option) options.rate = rate;
  if (*duration_option) options.duration = duration;
  if (*count_option) options.count = count;
  if (*legit_rate_option) options.legit_rate = legit_rate;
  if (*history_option) options.history = history;
  if (!answer.empty()) options.answer = parse_syn_reply(answer);
  options.link = *parse_link(link);
  if (!target.empty()) {
    options.target = parse_endpoint(target);
    if (!options.target) {
      std::cerr << "synwatch-gen: --target must be ADDR:PORT or [ADDR6]:PORT, got '" << target
                << "'\n";
      return 2;
    }
  }
  if (!start.empty()) {
    const auto parsed = parse_epoch_seconds(start);
    if (!parsed) {
      std::cerr << "synwatch-gen: --start must be epoch seconds such as 1704067200.5, got '"
                << start << "'\n";
      return 2;
    }
    options.start = *parsed;
  }
  const auto summary = run_scenario(options);
  if (!summary) {
    std::cerr << "synwatch-gen: " << summary.error() << "\n";
    return 2;
  }
  std::cout << summary->to_json() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // An exception escaping run() (bad_alloc, a library throwing) is reported rather than
  // aborting through std::terminate.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "synwatch-gen: internal error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "synwatch-gen: internal error: unknown exception\n";
  }
  return 1;
}
