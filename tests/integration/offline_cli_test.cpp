// End to end, the command line of `synwatchd --read` for people (issue 22): the text report and
// its terminal default, several rotated files read as one capture, the progress line and
// --quiet. Terminals are real pseudo-terminals (util-linux `script`).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include "generated_capture.hpp"

namespace synwatch::testing {
namespace {

namespace fs = std::filesystem;

bool have(const std::string& tool) {
  return run_process({"sh", "-c", "command -v " + tool + " >/dev/null"}).exit_code == 0;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string without_carriage_returns(std::string text) {
  std::erase(text, '\r');
  return text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string command;
  for (const auto& arg : argv) command += (command.empty() ? "" : " ") + shell_quote(arg);
  return command;
}

class OfflineCli : public GeneratedCaptureTest {
 protected:
  // Runs `shell_command` with a pseudo-terminal as its standard input, output and error; the
  // result's `out` is everything the terminal showed (both streams, with \r\n line ends).
  static ProcessResult on_terminal(const std::string& shell_command) {
    return run_process({"script", "--quiet", "--return", "--command", shell_command, "/dev/null"});
  }
  void SetUp() override {
    if (!have("script")) GTEST_SKIP() << "script (util-linux) is needed for a pseudo-terminal";
  }

  // `file` cut by tcpdump -C 1 into pieces of about 1 MB, in their order.
  std::vector<std::string> rotated_pieces(const fs::path& file) {
    const fs::path dir = dir_.path() / "pieces";
    fs::create_directories(dir);
    std::vector<std::string> argv = {"tcpdump", "-r", file.string(), "-w", (dir / "piece").string(),
                                     "-C",      "1"};
    // As root tcpdump writes as the user tcpdump, who may not write here.
    if (::geteuid() == 0) argv.insert(argv.end(), {"-Z", "root"});
    const auto r = run_process(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> pieces;
    for (const auto& entry : fs::directory_iterator(dir)) pieces.push_back(entry.path().string());
    // piece, piece1, piece2, ...: by length, then by name.
    std::sort(pieces.begin(), pieces.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    return pieces;
  }
};

TEST_F(OfflineCli, TextReportHasALinePerEventATableOfIncidentsAndTheSummary) {
  const auto g = generate("few-sources");
  const auto json = analyse(g.file);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto events = parse_json_lines(json.out);
  ASSERT_EQ(of_type(events, "started").size(), 1u);

  const auto text = analyse(g.file, {"--format", "text"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(text.out.find('{'), std::string::npos) << text.out;
  const auto lines = lines_of(text.out);
  ASSERT_GT(lines.size(), events.size());
  // One line per event, in order: time, event, target, kind, figures, sources, reason.
  for (std::size_t i = 0; i < events.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    std::string time = events[i].at("time");  // 2024-01-01T00:00:01.552Z
    time[10] = ' ';
    time.pop_back();
    EXPECT_TRUE(lines[i].starts_with(time + " " + events[i].at("event").get<std::string>()));
    EXPECT_NE(lines[i].find(" 198.51.100.10:80 concentrated"), std::string::npos);
    EXPECT_NE(lines[i].find("; reason: " + events[i].at("reason").get<std::string>()),
              std::string::npos);
  }
  const std::string& started = lines[0];
  EXPECT_NE(started.find(", 5,000 SYN/s,"), std::string::npos) << started;  // for people
  EXPECT_NE(started.find("; top 198.18.0.1 ("), std::string::npos) << started;
  EXPECT_EQ(lines[events.size()], "");
  EXPECT_EQ(lines[events.size() + 1], "1 incident:");
  EXPECT_TRUE(lines[events.size() + 2].starts_with("TARGET            KIND          START (UTC)"))
      << lines[events.size() + 2];
  const std::string& row = lines[events.size() + 3];
  EXPECT_TRUE(row.starts_with("198.51.100.10:80  concentrated  2024-01-01 00:00:01.")) << row;
  EXPECT_NE(row.find("198.18.0.1 ("), std::string::npos) << row;
  EXPECT_NE(text.out.find("\nCapture: " + g.file.string() + "\nPackets: 30,135 "),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("\nIncidents: 1 (0 spoofed_random, 1 concentrated, 0 distributed), 1 "
                          "ended, " +
                          std::to_string(events.size()) + " events\n"),
            std::string::npos)
      << text.out;
  // The summary is in the report; stderr keeps only what goes wrong.
  EXPECT_EQ(text.err, "");
}

TEST_F(OfflineCli, TextWithoutIncidentsSaysSo) {
  const auto g = generate("legit-burst");
  const auto r = analyse(g.file, {"--format", "text"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("\nNo incidents.\n\nCapture: ")) << r.out;
  EXPECT_NE(r.out.find("Handshakes: 2,000 started, 2,000 completed"), std::string::npos) << r.out;
}

TEST_F(OfflineCli, TextOnATerminalJsonElsewhereAndJsonUnchanged) {
  const auto g = generate("few-sources", {"--duration", "2"});
  const auto piped = analyse(g.file);
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  ASSERT_FALSE(parse_json_lines(piped.out).empty());
  EXPECT_EQ(analyse(g.file, {"--format", "json"}).out, piped.out);

  const auto terminal = on_terminal(command_line({SYNWATCHD, "--read", g.file.string()}));
  ASSERT_EQ(terminal.exit_code, 0) << terminal.out << terminal.err;
  const std::string shown = without_carriage_returns(terminal.out);
  EXPECT_NE(shown.find("\n1 incident:\n"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("{\"ended_at\""), std::string::npos) << shown;

  // Standard output redirected to a file from the terminal: JSON, byte for byte as in a pipe.
  const fs::path out = dir_.path() / "events.json";
  const auto redirected = on_terminal(command_line({SYNWATCHD, "--read", g.file.string()}) + " > " +
                                      shell_quote(out.string()));
  ASSERT_EQ(redirected.exit_code, 0) << redirected.out;
  EXPECT_EQ(read_file(out), piped.out);
  // --format overrides the terminal default.
  const auto forced = on_terminal(
      command_line({SYNWATCHD, "--read", g.file.string(), "--format", "json", "--quiet"}));
  EXPECT_EQ(without_carriage_returns(forced.out), piped.out);
}

TEST_F(OfflineCli, BadFormatAndOptionsWithoutReadAreUsageErrors) {
  const auto g = generate("legit-burst", {"--count", "10"});
  const auto bad = analyse(g.file, {"--format", "xml"});
  EXPECT_EQ(bad.exit_code, 64);
  EXPECT_NE(bad.err.find("--format must be json or text, not 'xml'"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.out, "");
  for (const char* option : {"--format=text", "--quiet", "--progress"}) {
    const auto r = run_process({SYNWATCHD, option, "--check-config"});
    EXPECT_EQ(r.exit_code, 64) << option;
    EXPECT_NE(r.err.find("apply to --read"), std::string::npos) << r.err;
  }
  const auto both = analyse(g.file, {"--quiet", "--progress"});
  EXPECT_EQ(both.exit_code, 64);
  EXPECT_NE(both.err.find("--quiet and --progress exclude each other"), std::string::npos)
      << both.err;
}

TEST_F(OfflineCli, RotatedPiecesGiveTheSameEventsAsTheWholeCapture) {
  if (!have("tcpdump")) GTEST_SKIP() << "tcpdump is not installed (make deps installs it)";
  const auto g = generate("spoofed-flood");
  const auto whole = analyse(g.file);
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  ASSERT_EQ(of_type(parse_json_lines(whole.out), "started").size(), 1u);
  const auto pieces = rotated_pieces(g.file);
  ASSERT_GE(pieces.size(), 3u);

  // Named backwards, with one --read each, or after one --read: read in time order.
  std::vector<std::string> backwards(pieces.rbegin(), pieces.rend());
  std::vector<std::string> one_read = {"--read"};
  one_read.insert(one_read.end(), backwards.begin(), backwards.end());
  std::vector<std::string> many_reads;
  for (const auto& piece : backwards) many_reads.insert(many_reads.end(), {"--read", piece});
  for (const auto& argv_tail : {one_read, many_reads}) {
    std::vector<std::string> argv = {SYNWATCHD};
    argv.insert(argv.end(), argv_tail.begin(), argv_tail.end());
    const auto r = run_process(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, whole.out);
    std::string names;
    for (const auto& piece : pieces) names += (names.empty() ? "" : ", ") + piece;
    EXPECT_NE(r.err.find("synwatchd: " + std::to_string(pieces.size()) +
                         " files read as one capture, in time order (" + names + "): "),
              std::string::npos)
        << r.err;
    // The same totals as the whole file.
    EXPECT_EQ(r.err.substr(r.err.find("packets")), whole.err.substr(whole.err.find("packets")));
  }

  // Standard input is one of the pieces; gzip-compressed pieces too.
  ASSERT_EQ(run_process({"gzip", "-k", pieces[2]}).exit_code, 0);
  const std::string from_stdin = "cat " + shell_quote(pieces[1]) + " | " +
                                 command_line({SYNWATCHD, "--read", pieces[0], "-"}) + " " +
                                 command_line({pieces[2] + ".gz"});
  std::string rest;
  for (std::size_t i = 3; i < pieces.size(); ++i) rest += " " + shell_quote(pieces[i]);
  const auto piped = run_process({"sh", "-c", from_stdin + rest});
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.out, whole.out);

  // The text report lists the pieces with the time of each one's first packet.
  std::vector<std::string> text_argv = {SYNWATCHD, "--format", "text", "--read"};
  text_argv.insert(text_argv.end(), backwards.begin(), backwards.end());
  const auto text = run_process(text_argv);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("Capture: " + std::to_string(pieces.size()) +
                          " files read as one capture, in the time order of their first "
                          "packets:\n  " +
                          pieces[0] + " "),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("  from 2024-01-01 00:00:00.000\n"), std::string::npos) << text.out;
}

TEST_F(OfflineCli, OverlappingCapturesAreRefusedNamingBoth) {
  const auto a = generate("spoofed-flood", {"--duration", "2"});
  const auto b = generate("few-sources", {"--duration", "2", "--start", "1704067200.5"});
  const auto r = run_process({SYNWATCHD, "--read", a.file.string(), b.file.string()});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("'" + a.file.string() + "' and '" + b.file.string() + "' overlap in time"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("mergecap"), std::string::npos) << r.err;
  // What came before the overlap was analysed: a's first 0.6 s (to b's start and the
  // tolerance), not all of a.
  std::smatch packets;
  ASSERT_TRUE(std::regex_search(r.err, packets, std::regex(R"(\): ([0-9]+) packets)"))) << r.err;
  EXPECT_GT(std::stoll(packets[1]), 0);
  EXPECT_LT(std::stoll(packets[1]), a.summary["packets"].get<long long>() / 2) << r.err;

  const auto twice = run_process({SYNWATCHD, "--read", a.file.string(), a.file.string()});
  EXPECT_EQ(twice.exit_code, 64);
  EXPECT_NE(twice.err.find("are the same file"), std::string::npos) << twice.err;
  const auto missing =
      run_process({SYNWATCHD, "--read", a.file.string(), (dir_.path() / "nope.pcap").string()});
  EXPECT_EQ(missing.exit_code, 66);
  EXPECT_NE(missing.err.find("nope.pcap"), std::string::npos) << missing.err;
}

TEST_F(OfflineCli, ProgressLineOnATerminalNotInAPipeNorWithQuiet) {
  // 60,000 packets: enough batches for the progress line's first clock check.
  const auto g = generate("spoofed-flood");
  const auto piped = analyse(g.file);
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_EQ(piped.err.find('\r'), std::string::npos) << piped.err;
  EXPECT_EQ(piped.err.find("packets/s"), std::string::npos) << piped.err;

  const fs::path out = dir_.path() / "events.json";
  const std::string read = command_line({SYNWATCHD, "--read", g.file.string()});
  const auto terminal = on_terminal(read + " > " + shell_quote(out.string()));
  ASSERT_EQ(terminal.exit_code, 0) << terminal.out;
  static const std::regex progress(
      R"(\r[0-9.]+ [KM]iB of [0-9.]+ MiB \([0-9]+ %\), [0-9,]+ packets, [0-9,]+ packets/s, [0-9.]+ s left\x1b\[K)");
  EXPECT_TRUE(std::regex_search(terminal.out, progress)) << terminal.out;
  // Erased before the summary, which follows on a clean line.
  EXPECT_NE(terminal.out.find("\x1b[K\r\x1b[Ksynwatchd: " + g.file.string() + ": 60135 packets"),
            std::string::npos)
      << terminal.out;
  EXPECT_EQ(read_file(out), piped.out);  // the events are untouched

  const auto quiet = on_terminal(read + " --quiet > " + shell_quote(out.string()));
  ASSERT_EQ(quiet.exit_code, 0) << quiet.out;
  EXPECT_EQ(quiet.out, "");  // neither progress nor summary
  EXPECT_EQ(read_file(out), piped.out);

  // --progress draws it where there is no terminal (for tests and benchmarks).
  const auto forced = analyse(g.file, {"--progress"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_TRUE(std::regex_search(forced.err, progress)) << forced.err;
  EXPECT_EQ(forced.out, piped.out);

  // A stream has no known size: bytes, packets and a rate only.
  const auto streamed =
      on_terminal("cat " + shell_quote(g.file.string()) + " | " +
                  command_line({SYNWATCHD, "--read", "-"}) + " > " + shell_quote(out.string()));
  ASSERT_EQ(streamed.exit_code, 0) << streamed.out;
  static const std::regex stream_progress(
      R"(\r[0-9.]+ [KM]iB, [0-9,]+ packets, [0-9,]+ packets/s\x1b\[K)");
  EXPECT_TRUE(std::regex_search(streamed.out, stream_progress)) << streamed.out;
  EXPECT_EQ(read_file(out), piped.out);
}

TEST_F(OfflineCli, QuietLeavesTheEventsAndTheErrors) {
  const auto g = generate("spoofed-flood", {"--duration", "1"});
  const auto loud = analyse(g.file);
  const auto quiet = analyse(g.file, {"-q"});
  ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.out, loud.out);
  EXPECT_EQ(quiet.err, "");
  const auto missing = analyse(dir_.path() / "nope.pcap", {"--quiet"});
  EXPECT_EQ(missing.exit_code, 66);
  EXPECT_NE(missing.err.find("nope.pcap"), std::string::npos);
}

}  // namespace
}  // namespace synwatch::testing
