#include "export/people_format.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

namespace synwatch {

std::string people_number(double value) {
  if (!std::isfinite(value)) return "?";
  const bool negative = value < 0;
  auto whole = static_cast<unsigned long long>(std::llround(std::fabs(value)));
  std::string digits = std::to_string(whole);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return negative ? "-" + out : out;
}

std::string people_duration(DurationNs duration) {
  if (duration < 0) duration = 0;
  const double seconds = static_cast<double>(duration) / kNanosPerSecond;
  char text[48];
  if (seconds < 10) {
    (void)std::snprintf(text, sizeof text, "%.1f s", seconds);
  } else if (seconds < 60) {
    (void)std::snprintf(text, sizeof text, "%.0f s", seconds);
  } else if (seconds < 3600) {
    const auto whole = static_cast<long long>(seconds);
    (void)std::snprintf(text, sizeof text, "%lld min %lld s", whole / 60, whole % 60);
  } else {
    const auto minutes = static_cast<long long>(seconds / 60);
    (void)std::snprintf(text, sizeof text, "%lld h %lld min", minutes / 60, minutes % 60);
  }
  return text;
}

std::string people_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static constexpr std::array<const char*, 5> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  // 1023.96 KiB would print as "1024.0 KiB": move up a unit before rounding can reach 1024.
  while (value >= 1023.95 && unit + 1 < kUnits.size()) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  (void)std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  return text;
}

std::string people_time(TimestampNs time) {
  std::string text = format_rfc3339(time);  // "2024-01-01T00:00:02.250Z"
  if (text.size() > 11 && text[10] == 'T') text[10] = ' ';
  if (!text.empty() && text.back() == 'Z') text.pop_back();
  return text;
}

std::vector<std::string> render_table(std::span<const TableColumn> columns,
                                      std::span<const std::vector<std::string>> rows) {
  std::vector<std::size_t> widths(columns.size());
  for (std::size_t c = 0; c < columns.size(); ++c) {
    widths[c] = columns[c].title.size();
    for (const auto& row : rows) {
      if (c < row.size()) widths[c] = std::max(widths[c], row[c].size());
    }
  }
  const auto render_row = [&](const auto& cell_of) {
    std::string line;
    for (std::size_t c = 0; c < columns.size(); ++c) {
      const std::string_view cell = cell_of(c);
      const bool last = c + 1 == columns.size();
      if (!last && cell.size() < widths[c]) {
        const std::string fill(widths[c] - cell.size(), ' ');
        line += columns[c].right_aligned ? fill + std::string(cell) : std::string(cell) + fill;
      } else {
        line += cell;
      }
      if (!last) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    return line;
  };
  std::vector<std::string> lines;
  lines.reserve(rows.size() + 1);
  lines.push_back(render_row([&](std::size_t c) { return columns[c].title; }));
  for (const auto& row : rows) {
    lines.push_back(render_row([&](std::size_t c) {
      return c < row.size() ? std::string_view(row[c]) : std::string_view();
    }));
  }
  return lines;
}

}  // namespace synwatch
