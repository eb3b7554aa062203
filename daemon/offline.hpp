#pragma once
// `synwatchd --read FILE`: analyse a capture as fast as it reads, events as JSON lines on stdout,
// a human summary on stderr.

#include <string>

#include "config/config.hpp"

namespace synwatch {

// Returns the process exit code: 0 on success, 66 when the file cannot be opened, 65 when it is
// damaged part-way (events found up to the damage are still printed).
// `evidence_dir` (--evidence-dir): write each incident's evidence capture there; empty: none.
int run_offline(const Config& config, const std::string& capture_path,
                const std::string& evidence_dir);

}  // namespace synwatch
