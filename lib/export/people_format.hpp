#pragma once
// Numbers, sizes, durations and times written for people rather than parsers: thousands
// separators, units, no more digits than a reader can use. Shared by the webhook messages
// (Slack, Alertmanager summaries), the text report of --read and its progress line.
// Thread safety: free functions without shared state.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.hpp"

namespace synwatch {

// "0", "999", "12,400", "-1,234,567": rounded to a whole number; "?" when not finite.
std::string people_number(double value);

// "1.2 s", "42 s", "3 min 20 s", "2 h 5 min"; negative durations read as 0.
std::string people_duration(DurationNs duration);

// "512 B", "1.5 KiB", "12.3 MiB", "4.0 GiB": binary units, one decimal from KiB on.
std::string people_bytes(std::uint64_t bytes);

// "2024-01-01 00:00:02.250": UTC to the millisecond, the RFC 3339 time with a space for the T
// and without the Z (the report says once that its times are UTC).
std::string people_time(TimestampNs time);

struct TableColumn {
  std::string_view title;
  bool right_aligned = false;
};

// A table for a terminal: a title row, then `rows` (one cell per column), columns two blanks
// apart and as wide as their widest cell. The last column is not padded and lines carry no
// trailing blanks: they only make lines wrap on narrow terminals. Lines without newlines.
std::vector<std::string> render_table(std::span<const TableColumn> columns,
                                      std::span<const std::vector<std::string>> rows);

}  // namespace synwatch
