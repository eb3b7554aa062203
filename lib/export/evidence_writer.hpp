#pragma once
// Evidence captures: per incident, a pcap file of the SYNs to its target. The packet path (an
// EvidenceTap per capture worker, engine/evidence_tap.hpp) only copies sampled frames into a
// bounded EvidenceRing; this writer's thread drains the rings into one file per incident, named
// after the incident, and keeps the files within a cap per incident and a cap in total (oldest
// files of ended incidents removed first, files earlier runs left included).
//
// Files are classic pcap with nanosecond timestamps (tcpdump, tshark and Wireshark read them),
// frames cut at kEvidenceSnapLength bytes (headers), mode 0640. A file appears with its first
// frame; an incident carried on after a restart appends to its file.
//
// Thread safety: begin()/end() from the one thread that arms the taps (their producers
// quiescent or that thread itself); stats() from any thread; start()/stop() from the owner.

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/spsc_ring.hpp"
#include "common/time.hpp"
#include "config/config.hpp"

namespace synwatch {

// Ethernet or cooked headers, a VLAN tag, IPv6 with an extension header and TCP with every
// option fit in 192 bytes; a SYN carries no payload worth keeping.
inline constexpr std::size_t kEvidenceSnapLength = 192;

struct EvidenceFrame {
  TimestampNs time = 0;
  std::uint32_t watch = 0;        // the incident's watch token (EvidenceWriter::begin)
  std::uint32_t wire_length = 0;  // length on the wire
  std::uint16_t length = 0;       // bytes kept in `bytes`
  std::uint16_t dlt = 0;          // libpcap data link type of the frame
  std::array<std::uint8_t, kEvidenceSnapLength> bytes{};
};
using EvidenceRing = SpscRing<EvidenceFrame>;

struct EvidenceStats {
  std::uint64_t frames_written = 0;
  std::uint64_t dropped_incident_cap = 0;   // the incident's file was at max_incident_bytes
  std::uint64_t dropped_total_cap = 0;      // nothing older was left to remove
  std::uint64_t dropped_link_mismatch = 0;  // a frame of another link type than the file's
  std::uint64_t dropped_write_error = 0;    // the file could not be opened or written
  std::uint64_t files_removed = 0;          // to stay within max_total_bytes
  std::uint64_t bytes_on_disk = 0;          // of every evidence file in the directory
  std::uint64_t files = 0;
};

class EvidenceWriter {
 public:
  // Creates `directory` (parents too) and, when `owner` is not empty and this process is root,
  // hands it to that user, so that the writer can go on after privileges are dropped. Files
  // already there count against max_total_bytes.
  static Expected<std::unique_ptr<EvidenceWriter>> open(const EvidenceConfig& config,
                                                        std::filesystem::path directory,
                                                        const std::string& owner);
  ~EvidenceWriter();  // stop()
  EvidenceWriter(const EvidenceWriter&) = delete;
  EvidenceWriter& operator=(const EvidenceWriter&) = delete;

  // The rings to drain, one per tap; before start().
  void attach(EvidenceRing& ring);
  // Starts the writer thread (after privileges are dropped: files belong to the daemon's user).
  void start();
  // Drains every ring, closes every file and joins the thread.
  void stop();

  [[nodiscard]] std::filesystem::path path_of(const std::string& incident_id) const;
  // Frames tagged `watch` from now on belong to the incident; its file opens with the first.
  void begin(std::uint32_t watch, const std::string& incident_id);
  // The incident is over: frames tagged `watch` already in the rings are still written, then
  // its file is closed and becomes removable.
  void end(std::uint32_t watch);
  // Returns once everything begun, ended and pushed before the call is on disk (tests, --read).
  void flush();

  [[nodiscard]] EvidenceStats stats() const;
  [[nodiscard]] const std::filesystem::path& directory() const noexcept;

  struct State;  // implementation detail, public so that the .cpp's helpers can name it

 private:
  explicit EvidenceWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace synwatch
