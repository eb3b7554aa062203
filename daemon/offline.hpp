#pragma once
// `synwatchd --read FILE...`: analyse a capture as fast as it reads. Events go to stdout as JSON
// lines (for programs) or as a text report (for people: event lines, a table of incidents and
// the capture summary); a summary, and on a terminal a progress line, go to stderr.

#include <string>
#include <vector>

#include "config/config.hpp"
#include "export/text_report.hpp"

namespace synwatch {

struct OfflineOptions {
  // One capture, or several consecutive pieces of one (read in the time order of their first
  // packets); "-" is standard input.
  std::vector<std::string> captures;
  std::string evidence_dir;  // --evidence-dir: each incident's evidence capture; empty: none
  ReportFormat format = ReportFormat::kJson;
  bool progress = false;             // draw the progress line on stderr
  bool quiet = false;                // --quiet: no summary on stderr (JSON) and no progress line
  std::size_t terminal_columns = 0;  // of stderr, to keep the progress line on one row
};

// Returns the process exit code: 0 on success, 64 when a file is named twice, 66 when a file
// cannot be opened, 65 when one is damaged part-way or the files are not consecutive pieces of
// one capture (events found up to that point are still printed).
int run_offline(const Config& config, const OfflineOptions& options);

}  // namespace synwatch
