// The bash completion (systemd/synwatchd.bash-completion) in a real bash, with the real
// synwatchd: what it offers for options, --set keys and values, --format and file names.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "run_process.hpp"

namespace synwatch::testing {
namespace {

namespace fs = std::filesystem;

const std::string kScript = std::string(SYNWATCH_SOURCE_DIR) + "/systemd/synwatchd.bash-completion";

// What the completion offers for `line` typed up to its end, as bash would call it: COMP_LINE,
// COMP_POINT and COMP_WORDS (split at blanks and at bash's word breaks, = and :) set, then the
// function `complete -p synwatchd` names, then COMPREPLY printed one per line.
std::set<std::string> complete(const std::string& line) {
  const std::string script = "source " + shell_quote(kScript) + R"(
spec=$(complete -p synwatchd) || exit 3
function=${spec#*-F }; function=${function%% *}
COMP_LINE=$1; COMP_POINT=${#COMP_LINE}
words=$(sed -e 's/\([=:]\)/ \1 /g' <<<"$COMP_LINE"); read -ra COMP_WORDS <<<"$words"
[[ $COMP_LINE == *' ' || $COMP_LINE == *[=:] ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
"$function" synwatchd "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
)";
  const auto r = run_process({"bash", "--norc", "-c", script, "completion", line});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  std::set<std::string> offered;
  std::istringstream in(r.out);
  for (std::string word; std::getline(in, word);) {
    if (!word.empty()) offered.insert(word);
  }
  return offered;
}

// The path of the synwatchd under test, as a user would type it (it has no blanks).
std::string daemon() {
  return SYNWATCHD;
}

// Every key of `synwatchd --config-reference`.
std::set<std::string> config_keys() {
  const auto r = run_process({SYNWATCHD, "--config-reference"});
  EXPECT_EQ(r.exit_code, 0);
  std::set<std::string> keys;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != ' ') keys.insert(line.substr(0, line.find(" = ")));
  }
  return keys;
}

TEST(Completion, IsRegisteredForSynwatchd) {
  const auto r =
      run_process({"bash", "--norc", "-c", "source " + shell_quote(kScript) + "; complete -p"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "complete -F _synwatchd synwatchd\n");
}

// The options `synwatchd ARGS --help` lists.
std::set<std::string> options_of_help(std::vector<std::string> argv) {
  argv.insert(argv.begin(), SYNWATCHD);
  argv.emplace_back("--help");
  const auto help = run_process(argv);
  EXPECT_EQ(help.exit_code, 0);
  std::set<std::string> options;
  static const std::regex option(R"((^|[ ,])(--?[A-Za-z][A-Za-z-]*))");
  std::istringstream lines(help.out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("  -")) continue;  // option lines; descriptions follow them
    const std::string names = line.substr(0, line.find("  ", 2));
    for (std::sregex_iterator it(names.begin(), names.end(), option), end; it != end; ++it) {
      options.insert((*it)[2]);
    }
  }
  return options;
}

TEST(Completion, OffersEveryOptionOfHelpAndNoOther) {
  const auto options = options_of_help({});
  ASSERT_TRUE(options.contains("--format"));
  ASSERT_TRUE(options.contains("-q"));
  EXPECT_EQ(complete(daemon() + " -"), options);
  std::set<std::string> long_options;
  for (const auto& name : options) {
    if (name.starts_with("--")) long_options.insert(name);
  }
  EXPECT_EQ(complete(daemon() + " --"), long_options);
  EXPECT_EQ(complete(daemon() + " --rea"), (std::set<std::string>{"--read"}));
}

TEST(Completion, OffersTopAndThenItsOwnOptions) {
  EXPECT_EQ(complete(daemon() + " t"), (std::set<std::string>{"top"}));
  EXPECT_TRUE(complete(daemon() + " ").contains("top"));
  EXPECT_FALSE(complete(daemon() + " --read x ").contains("top")) << "only as the first word";
  const auto options = options_of_help({"top"});
  ASSERT_TRUE(options.contains("--once"));
  ASSERT_TRUE(options.contains("--socket"));
  EXPECT_EQ(complete(daemon() + " top -"), options);
  EXPECT_EQ(complete(daemon() + " top --format "), (std::set<std::string>{"json", "text"}));
  EXPECT_TRUE(complete(daemon() + " top --interval ").empty());
}

TEST(Completion, SetCompletesTheKeysOfTheSchema) {
  const auto keys = config_keys();
  ASSERT_GT(keys.size(), 50u);
  std::set<std::string> detection;
  for (const auto& key : keys) {
    if (key.starts_with("det")) detection.insert(key + "=");
  }
  ASSERT_TRUE(detection.contains("detection.half_open="));
  EXPECT_EQ(complete(daemon() + " --set det"), detection);
  EXPECT_EQ(complete(daemon() + " -s detection.stale.f"),
            (std::set<std::string>{"detection.stale.floor="}));
  EXPECT_EQ(complete(daemon() + " --read x.pcap --set=aggregation.w"),
            (std::set<std::string>{"aggregation.window="}));
  std::set<std::string> all;
  for (const auto& key : keys) all.insert(key + "=");
  EXPECT_EQ(complete(daemon() + " --set "), all);
  EXPECT_TRUE(complete(daemon() + " --set nosuchkey").empty());
}

TEST(Completion, SetCompletesTheValuesOfBooleansAndChoices) {
  // Readline replaces what follows the '=', so that is what is offered.
  EXPECT_EQ(complete(daemon() + " --set log.level="),
            (std::set<std::string>{"trace", "debug", "info", "warn", "error", "critical", "off"}));
  EXPECT_EQ(complete(daemon() + " --set log.level=in"), (std::set<std::string>{"info"}));
  EXPECT_EQ(complete(daemon() + " --set capture.promiscuous="),
            (std::set<std::string>{"true", "false"}));
  EXPECT_TRUE(complete(daemon() + " --set detection.half_open=").empty());  // any number
}

TEST(Completion, FormatAndFiles) {
  EXPECT_EQ(complete(daemon() + " --read x.pcap --format "),
            (std::set<std::string>{"json", "text"}));
  EXPECT_EQ(complete(daemon() + " --format=t"), (std::set<std::string>{"text"}));
  TempDir dir;
  for (const char* name : {"cap.pcap", "cap.pcap1", "cap.pcap2.gz", "other.yaml"}) {
    std::ofstream(dir.path() / name) << "x";
  }
  fs::create_directory(dir.path() / "capdir");
  const std::string base = (dir.path() / "cap").string();
  const std::set<std::string> caps = {base + ".pcap", base + ".pcap1", base + ".pcap2.gz",
                                      base + "dir"};
  EXPECT_EQ(complete(daemon() + " --read " + base), caps);
  // --read takes several files: the next word is another one.
  EXPECT_EQ(complete(daemon() + " --read " + base + ".pcap " + base), caps);
  EXPECT_EQ(complete(daemon() + " -c " + (dir.path() / "oth").string()),
            (std::set<std::string>{(dir.path() / "other.yaml").string()}));
  EXPECT_EQ(complete(daemon() + " --evidence-dir " + base), (std::set<std::string>{base + "dir"}));
  // After another option's value, options again.
  EXPECT_TRUE(complete(daemon() + " --set log.level=info --f").contains("--format"));
}

TEST(Completion, KeysComeFromTheSynwatchdOnPathWhenNoneIsTyped) {
  const std::string bin_dir = fs::path(SYNWATCHD).parent_path().string();
  const std::string script = "source " + shell_quote(kScript) + R"(
PATH=$1:$PATH
COMP_LINE='synwatchd --set log.l'; COMP_POINT=${#COMP_LINE}
COMP_WORDS=(synwatchd --set log.l); COMP_CWORD=2
_synwatchd synwatchd log.l --set
printf '%s\n' "${COMPREPLY[@]}"
)";
  const auto r = run_process({"bash", "--norc", "-c", script, "completion", bin_dir});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "log.level=\n");
}

}  // namespace
}  // namespace synwatch::testing
