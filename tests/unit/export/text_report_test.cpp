// The text report of --read and its progress line: exact lines for known events and figures.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "export/people_format.hpp"
#include "export/progress_line.hpp"
#include "export/text_report.hpp"

namespace synwatch {
namespace {

constexpr TimestampNs kStart = 1'704'067'201'250'000'000;  // 2024-01-01T00:00:01.250Z

IncidentEvent event_of(EventType type, TimestampNs time, const std::string& incident = "abc") {
  IncidentEvent event;
  event.type = type;
  event.incident_id = incident;
  event.target = {*IpAddress::parse("198.51.100.10"), 80};
  event.kind = AttackKind::kConcentrated;
  event.started_at = kStart;
  event.time = time;
  event.stats.half_open = 4800;
  event.stats.stale = 4700;
  event.stats.peak_half_open = 4800;
  event.stats.syn_rate = 5000.4;
  event.stats.synack_rate = 4990;
  event.stats.completed_rate = 0;
  event.stats.distinct_sources = 3;
  event.top_sources = {{*IpAddress::parse("198.18.0.1"), 3000},
                       {*IpAddress::parse("198.18.0.2"), 1000},
                       {*IpAddress::parse("198.18.0.3"), 990},
                       {*IpAddress::parse("198.18.0.4"), 2}};
  event.reason = "why";
  if (type == EventType::kEnded) event.ended_at = time;
  return event;
}

// Everything written to a stdio stream, read back.
class CapturedStream {
 public:
  CapturedStream() : file_(std::tmpfile()) {}
  ~CapturedStream() {
    if (file_ != nullptr) (void)std::fclose(file_);
  }
  CapturedStream(const CapturedStream&) = delete;
  CapturedStream& operator=(const CapturedStream&) = delete;
  [[nodiscard]] std::FILE* get() const { return file_; }
  [[nodiscard]] std::string text() const {
    (void)std::fflush(file_);
    std::rewind(file_);
    std::string out;
    char buffer[4096];
    for (std::size_t n = 0; (n = std::fread(buffer, 1, sizeof buffer, file_)) > 0;) {
      out.append(buffer, n);
    }
    return out;
  }

 private:
  std::FILE* file_;
};

TEST(PeopleFormat, NumbersDurationsBytesAndTimes) {
  EXPECT_EQ(people_number(12400), "12,400");
  EXPECT_EQ(people_number(999.6), "1,000");
  EXPECT_EQ(people_duration(1'200'000'000), "1.2 s");
  EXPECT_EQ(people_bytes(0), "0 B");
  EXPECT_EQ(people_bytes(1023), "1023 B");
  EXPECT_EQ(people_bytes(1536), "1.5 KiB");
  EXPECT_EQ(people_bytes(1024 * 1024 - 1), "1.0 MiB");  // not "1024.0 KiB"
  EXPECT_EQ(people_bytes(12'900'000), "12.3 MiB");
  EXPECT_EQ(people_bytes(std::uint64_t{5} << 40), "5.0 TiB");
  EXPECT_EQ(people_time(kStart), "2024-01-01 00:00:01.250");
}

TEST(TextReport, ParsesTheTwoFormatsOnly) {
  EXPECT_EQ(parse_report_format("json"), ReportFormat::kJson);
  EXPECT_EQ(parse_report_format("text"), ReportFormat::kText);
  EXPECT_EQ(parse_report_format("Text"), std::nullopt);
  EXPECT_EQ(parse_report_format(""), std::nullopt);
}

TEST(TextReport, EventLineHasTimeTargetKindFiguresSourcesAndReason) {
  EXPECT_EQ(render_event_line(event_of(EventType::kStarted, kStart)),
            "2024-01-01 00:00:01.250 started 198.51.100.10:80 concentrated: half-open 4,800 "
            "(4,700 stale, peak 4,800), 5,000 SYN/s, 4,990 SYN-ACK/s, 0 completed/s, ~3 sources; "
            "top 198.18.0.1 (3,000), 198.18.0.2 (1,000), 198.18.0.3 (990), +1 more; reason: why");
}

TEST(TextReport, EndedLineSaysHowLongAndLinesUpWithTheOthers) {
  IncidentEvent ended = event_of(EventType::kEnded, kStart + 12'400'000'000);
  ended.top_sources.clear();
  ended.host_scope = true;
  ended.evidence_path = "/var/lib/synwatch/evidence/abc.pcap";
  EXPECT_EQ(render_event_line(ended),
            "2024-01-01 00:00:13.650 ended   198.51.100.10 (all ports) concentrated after 12 s: "
            "half-open 4,800 (4,700 stale, peak 4,800), 5,000 SYN/s, 4,990 SYN-ACK/s, 0 "
            "completed/s, ~3 sources; reason: why; evidence /var/lib/synwatch/evidence/abc.pcap");
  const std::string started = render_event_line(event_of(EventType::kStarted, kStart));
  const std::string updated = render_event_line(event_of(EventType::kUpdated, kStart));
  EXPECT_EQ(started.find("198.51"), updated.find("198.51"));
  EXPECT_EQ(started.find("198.51"), render_event_line(ended).find("198.51"));
}

TEST(TextReport, SummariesTakePeaksAndEachSourcesLargestCount) {
  IncidentSummaries summaries;
  IncidentEvent started = event_of(EventType::kStarted, kStart);
  summaries.add(started);
  IncidentEvent other = event_of(EventType::kStarted, kStart + kNanosPerSecond, "other");
  other.target.port = 443;
  summaries.add(other);
  IncidentEvent updated = event_of(EventType::kUpdated, kStart + 10 * kNanosPerSecond);
  updated.kind = AttackKind::kDistributed;
  updated.stats.half_open = 9000;
  updated.stats.peak_half_open = 8000;  // the current count can exceed an older peak figure
  updated.stats.syn_rate = 7000;
  updated.stats.distinct_sources = 2;
  updated.top_sources = {{*IpAddress::parse("198.18.0.2"), 2500},
                         {*IpAddress::parse("198.18.0.1"), 100},
                         {*IpAddress::parse("198.18.0.9"), 990}};
  summaries.add(updated);
  IncidentEvent ended = event_of(EventType::kEnded, kStart + 20 * kNanosPerSecond);
  ended.stats.syn_rate = 1;
  ended.top_sources.clear();
  summaries.add(ended);

  ASSERT_EQ(summaries.incidents().size(), 2u);
  const IncidentSummary& first = summaries.incidents()[0];
  EXPECT_EQ(first.incident_id, "abc");
  EXPECT_EQ(first.target, "198.51.100.10:80");
  EXPECT_EQ(first.events, 3u);
  EXPECT_EQ(first.kind, AttackKind::kConcentrated);  // its latest event's
  EXPECT_EQ(first.started_at, kStart);
  EXPECT_EQ(first.ended_at, kStart + 20 * kNanosPerSecond);
  EXPECT_EQ(first.peak_half_open, 9000u);
  EXPECT_DOUBLE_EQ(first.peak_syn_rate, 7000);
  EXPECT_DOUBLE_EQ(first.peak_distinct_sources, 3);
  ASSERT_EQ(first.top_sources.size(), 5u);
  EXPECT_EQ(first.top_sources[0].address.to_string(), "198.18.0.1");
  EXPECT_EQ(first.top_sources[0].syns, 3000u);  // the larger of 3,000 and 100, not their sum
  EXPECT_EQ(first.top_sources[1].address.to_string(), "198.18.0.2");
  EXPECT_EQ(first.top_sources[1].syns, 2500u);
  // Equal counts: by address.
  EXPECT_EQ(first.top_sources[2].address.to_string(), "198.18.0.3");
  EXPECT_EQ(first.top_sources[3].address.to_string(), "198.18.0.9");
  const IncidentSummary& second = summaries.incidents()[1];
  EXPECT_EQ(second.target, "198.51.100.10:443");
  EXPECT_FALSE(second.ended_at.has_value());
}

TEST(TextReport, TableHasAHeaderAndAnAlignedRowPerIncident) {
  IncidentSummaries summaries;
  summaries.add(event_of(EventType::kStarted, kStart));
  summaries.add(event_of(EventType::kEnded, kStart + 83 * kNanosPerSecond));
  IncidentEvent open = event_of(EventType::kStarted, kStart + kNanosPerSecond, "second");
  open.target = {*IpAddress::parse("2001:db8::10"), 443};
  open.kind = AttackKind::kSpoofedRandom;
  open.stats.peak_half_open = 123456;
  open.stats.syn_rate = 20000;
  open.stats.distinct_sources = 45000;
  open.started_at = kStart + kNanosPerSecond;
  open.top_sources.resize(1);
  summaries.add(open);
  IncidentEvent later = open;
  later.type = EventType::kUpdated;
  later.time = kStart + 3'500'000'000;
  summaries.add(later);
  EXPECT_EQ(render_incident_table(summaries.incidents()),
            "2 incidents:\n"
            "TARGET              KIND            START (UTC)              END                     "
            "  DURATION  PEAK HALF-OPEN  PEAK SYN/s  SOURCES  TOP SOURCES (SYNs)\n"
            "198.51.100.10:80    concentrated    2024-01-01 00:00:01.250  00:01:24.250            "
            "1 min 23 s           4,800       5,000       ~3  198.18.0.1 (3,000), 198.18.0.2 "
            "(1,000), 198.18.0.3 (990), +1 more\n"
            "[2001:db8::10]:443  spoofed_random  2024-01-01 00:00:02.250  open at end of capture  "
            "  >= 2.5 s         123,456      20,000  ~45,000  198.18.0.1 (3,000)\n");
  EXPECT_EQ(render_incident_table({}), "No incidents.\n");
}

TEST(TextReport, EndOnAnotherDayShowsTheDate) {
  IncidentSummaries summaries;
  summaries.add(event_of(EventType::kStarted, kStart));
  summaries.add(event_of(EventType::kEnded, kStart + DurationNs{24} * 3600 * kNanosPerSecond));
  const std::string table = render_incident_table(summaries.incidents());
  EXPECT_NE(table.find("2024-01-02 00:00:01.250"), std::string::npos) << table;
  EXPECT_NE(table.find("24 h 0 min"), std::string::npos) << table;
}

CaptureSummary sample_capture() {
  CaptureSummary capture;
  capture.files = {{"a.pcap", kStart}};
  capture.packets = 1'234'567;
  capture.tcp_segments = 1'200'000;
  capture.decode_errors = 3;
  capture.decode_error_detail = "truncated_ip=3";
  capture.handshakes_started = 20000;
  capture.handshakes_expired = 19000;
  capture.handshakes_pending = 1000;
  capture.incidents_by_kind = {1, 0, 2};
  capture.incidents_ended = 3;
  capture.events = 7;
  capture.elapsed = 500 * kNanosPerMilli;
  return capture;
}

TEST(TextReport, CaptureSummaryOfOneFile) {
  EXPECT_EQ(render_capture_summary(sample_capture()),
            "Capture: a.pcap\n"
            "Packets: 1,234,567 (1,200,000 TCP segments, 3 decode errors: truncated_ip=3) in "
            "0.5 s, 2,469,134 packets/s\n"
            "Handshakes: 20,000 started, 0 completed, 0 reset, 19,000 expired, 0 evicted, 1,000 "
            "still pending\n"
            "Incidents: 3 (1 spoofed_random, 0 concentrated, 2 distributed), 3 ended, 7 events\n");
}

TEST(TextReport, CaptureSummaryOfSeveralFilesSaysTheyWereReadAsOne) {
  CaptureSummary capture = sample_capture();
  capture.files = {{"empty.pcap", std::nullopt},
                   {"/tmp/rotated/cap.pcap", kStart},
                   {"/tmp/rotated/cap.pcap1", kStart + 60 * kNanosPerSecond}};
  const std::string text = render_capture_summary(capture);
  EXPECT_TRUE(text.starts_with(
      "Capture: 3 files read as one capture, in the time order of their first packets:\n"
      "  empty.pcap              (no packets)\n"
      "  /tmp/rotated/cap.pcap   from 2024-01-01 00:00:01.250\n"
      "  /tmp/rotated/cap.pcap1  from 2024-01-01 00:01:01.250\n"
      "Packets: "))
      << text;
}

TEST(TextReportSink, WritesEventLinesThenTheTableAndTheSummary) {
  CapturedStream out;
  TextReportSink sink(out.get());
  sink.publish(event_of(EventType::kStarted, kStart));
  sink.publish(event_of(EventType::kEnded, kStart + 2 * kNanosPerSecond));
  ASSERT_TRUE(sink.finish(sample_capture()));
  EXPECT_EQ(sink.written(), 2u);
  EXPECT_EQ(sink.failed(), 0u);
  EXPECT_EQ(out.text(),
            render_event_line(event_of(EventType::kStarted, kStart)) + "\n" +
                render_event_line(event_of(EventType::kEnded, kStart + 2 * kNanosPerSecond)) +
                "\n\n" + render_incident_table(sink.summaries().incidents()) + "\n" +
                render_capture_summary(sample_capture()));
}

TEST(TextReportSink, CountsLinesAStreamRefuses) {
  std::FILE* full = std::fopen("/dev/full", "w");
  if (full == nullptr) GTEST_SKIP() << "no /dev/full";
  TextReportSink sink(full);
  sink.publish(event_of(EventType::kStarted, kStart));
  EXPECT_EQ(sink.written(), 0u);
  EXPECT_EQ(sink.failed(), 1u);
  EXPECT_EQ(sink.last_error(), ENOSPC);
  EXPECT_FALSE(sink.finish(sample_capture()));
  EXPECT_EQ(sink.summaries().incidents().size(), 1u);  // still summarised
  (void)std::fclose(full);
}

TEST(Progress, LineWithAndWithoutAKnownSize) {
  EXPECT_EQ(render_progress({0, 0, 0, 0}), "0 B, 0 packets");
  EXPECT_EQ(render_progress({.bytes = 300 << 20,
                             .total_bytes = std::uint64_t{1200} << 20,
                             .packets = 5'000'000,
                             .elapsed = 2 * kNanosPerSecond}),
            "300.0 MiB of 1.2 GiB (25 %), 5,000,000 packets, 2,500,000 packets/s, 6.0 s left");
  EXPECT_EQ(render_progress({.bytes = 12'900'000,
                             .total_bytes = 0,
                             .packets = 200'000,
                             .elapsed = 500 * kNanosPerMilli}),
            "12.3 MiB, 200,000 packets, 400,000 packets/s");
}

TimestampNs fake_now = 0;
TimestampNs fake_clock() {
  return fake_now;
}

TEST(Progress, ChecksTheClockEveryFewBatchesAndRedrawsAtMostFourTimesASecond) {
  CapturedStream terminal;
  fake_now = 1000 * kNanosPerSecond;
  ProgressLine::Options options;
  options.batches_per_clock_check = 4;
  options.clock = &fake_clock;
  ProgressLine line(terminal.get(), options);
  int due = 0;
  // The first clock check (4th batch) draws at once.
  for (int batch = 1; batch <= 4; ++batch) {
    if (line.due()) {
      ++due;
      EXPECT_EQ(batch, 4);
      fake_now += kNanosPerSecond;
      line.draw({1024, 4096, 100, 0});
    }
  }
  EXPECT_EQ(due, 1);
  EXPECT_EQ(terminal.text(),
            "\r1.0 KiB of 4.0 KiB (25 %), 100 packets, 100 packets/s, 3.0 s "
            "left\033[K");
  // 100 ms later: not yet.
  fake_now += 100 * kNanosPerMilli;
  for (int batch = 0; batch < 4; ++batch) EXPECT_FALSE(line.due());
  // 250 ms after the draw: on the next clock check, not on the batches in between.
  fake_now += 150 * kNanosPerMilli;
  EXPECT_FALSE(line.due());
  EXPECT_FALSE(line.due());
  EXPECT_FALSE(line.due());
  EXPECT_TRUE(line.due());
  line.draw({2048, 4096, 200, 0});
  EXPECT_EQ(line.draws(), 2u);
  line.clear();
  line.clear();  // nothing left to erase: writes nothing
  const std::string text = terminal.text();
  EXPECT_TRUE(text.ends_with("\033[K\r\033[K")) << text;
  EXPECT_EQ(text.find("\r\033[K\r\033[K"), std::string::npos) << text;
}

TEST(Progress, LongLinesAreCutToTheTerminal) {
  CapturedStream terminal;
  ProgressLine::Options options;
  options.columns = 20;
  ProgressLine line(terminal.get(), options);
  line.draw({1 << 20, 1 << 30, 123456789, 0});
  EXPECT_EQ(terminal.text(), "\r1.0 MiB of 1.0 GiB \033[K");
}

}  // namespace
}  // namespace synwatch
