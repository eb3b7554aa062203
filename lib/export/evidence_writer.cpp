#include "export/evidence_writer.hpp"

#include <pcap/pcap.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "export/spool.hpp"

namespace synwatch {

namespace {

constexpr std::uint64_t kPcapFileHeaderBytes = 24;
constexpr std::uint64_t kPcapRecordHeaderBytes = 16;
// While an incident is open the rings are drained this often: at 100 frames a second per
// incident a 4,096-frame ring is far from full, and a drain costs microseconds.
constexpr auto kDrainInterval = std::chrono::milliseconds(20);

// Incident ids are hex digests; anything else (a hand-edited state file) is made safe for a
// file name rather than trusted with a path.
std::string file_name_of(const std::string& incident_id) {
  std::string name = incident_id.empty() ? std::string("incident") : incident_id;
  for (char& c : name) {
    const bool safe = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      c == '-' || c == '_';
    if (!safe) c = '_';
  }
  return name + ".pcap";
}

struct Command {
  enum class Type : std::uint8_t { kBegin, kEnd } type = Type::kBegin;
  std::uint32_t watch = 0;
  std::string incident_id;
};

struct StoredFile {
  std::filesystem::path path;
  std::uint64_t bytes = 0;
};

struct OpenFile {
  std::string incident_id;
  std::filesystem::path path;
  pcap_t* dead = nullptr;
  pcap_dumper_t* dumper = nullptr;
  int dlt = -1;
  std::uint64_t bytes = 0;
  bool dirty = false;
  bool failed = false;  // could not be opened: its frames are counted, not retried per frame
};

}  // namespace

struct EvidenceWriter::State {
  EvidenceConfig config;
  std::filesystem::path directory;
  std::vector<EvidenceRing*> rings;

  std::mutex mutex;  // guards the fields down to `flushed`
  std::condition_variable wake;
  std::condition_variable flushed_cv;
  std::deque<Command> commands;
  std::uint64_t flush_requested = 0;
  std::uint64_t flushed = 0;
  bool stopping = false;

  std::thread thread;

  // Writer thread only (or the owner before start / after stop).
  std::map<std::uint32_t, OpenFile> files;
  std::deque<StoredFile> stored;  // closed files, oldest first
  std::uint64_t total_bytes = 0;
  std::vector<std::uint32_t> ending;

  std::atomic<std::uint64_t> frames_written{0};
  std::atomic<std::uint64_t> dropped_incident_cap{0};
  std::atomic<std::uint64_t> dropped_total_cap{0};
  std::atomic<std::uint64_t> dropped_link_mismatch{0};
  std::atomic<std::uint64_t> dropped_write_error{0};
  std::atomic<std::uint64_t> files_removed{0};
  std::atomic<std::uint64_t> bytes_on_disk{0};
  std::atomic<std::uint64_t> file_count{0};

  void publish_disk_figures() {
    bytes_on_disk.store(total_bytes, std::memory_order_relaxed);
    std::uint64_t count = stored.size();
    for (const auto& [watch, file] : files) count += file.dumper != nullptr ? 1 : 0;
    file_count.store(count, std::memory_order_relaxed);
  }

  void scan_existing() {
    struct Found {
      StoredFile file;
      std::filesystem::file_time_type modified;
    };
    std::vector<Found> found;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
      std::error_code entry_error;
      if (!entry.is_regular_file(entry_error) || entry.path().extension() != ".pcap") continue;
      const auto size = entry.file_size(entry_error);
      const auto modified = entry.last_write_time(entry_error);
      if (entry_error) continue;
      found.push_back({{entry.path(), size}, modified});
    }
    std::ranges::sort(found, {}, &Found::modified);
    for (auto& f : found) {
      total_bytes += f.file.bytes;
      stored.push_back(std::move(f.file));
    }
    publish_disk_figures();
  }

  // Takes the queued commands: begins at once, ends kept for after the drain (frames pushed
  // before an end are still in the rings). Returns the flush request seen.
  std::uint64_t take_commands(bool& stop) {
    std::deque<Command> taken;
    std::uint64_t flush_seen = 0;
    {
      std::lock_guard lock(mutex);
      taken.swap(commands);
      flush_seen = flush_requested;
      stop = stopping;
    }
    for (auto& command : taken) {
      if (command.type == Command::Type::kBegin) {
        OpenFile file;
        file.path = directory / file_name_of(command.incident_id);
        file.incident_id = std::move(command.incident_id);
        files.insert_or_assign(command.watch, std::move(file));
      } else {
        ending.push_back(command.watch);
      }
    }
    return flush_seen;
  }

  bool make_room(std::uint64_t bytes) {
    while (total_bytes + bytes > config.max_total_bytes && !stored.empty()) {
      const StoredFile oldest = std::move(stored.front());
      stored.pop_front();
      std::error_code error;
      std::filesystem::remove(oldest.path, error);
      if (error) {
        spdlog::warn("evidence: cannot remove {}: {}", oldest.path.string(), error.message());
      } else {
        files_removed.fetch_add(1, std::memory_order_relaxed);
      }
      // Forgotten either way: a file that cannot be removed must not block every new one.
      total_bytes -= std::min(total_bytes, oldest.bytes);
    }
    return total_bytes + bytes <= config.max_total_bytes;
  }

  bool open_file(OpenFile& file, int dlt) {
    file.dlt = dlt;
    std::uint64_t existing = 0;
    std::error_code error;
    const bool exists = std::filesystem::exists(file.path, error);
    if (exists) {
      // An incident carried on after a restart: its file is open again, no longer removable.
      const auto it = std::ranges::find(stored, file.path, &StoredFile::path);
      if (it != stored.end()) {
        existing = it->bytes;
        stored.erase(it);
      }
    } else if (!make_room(kPcapFileHeaderBytes)) {
      dropped_total_cap.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    file.dead = pcap_open_dead_with_tstamp_precision(dlt, static_cast<int>(kEvidenceSnapLength),
                                                     PCAP_TSTAMP_PRECISION_NANO);
    if (file.dead == nullptr) {
      file.failed = true;
      return false;
    }
    file.dumper = exists ? pcap_dump_open_append(file.dead, file.path.c_str())
                         : pcap_dump_open(file.dead, file.path.c_str());
    if (file.dumper == nullptr) {
      spdlog::error("evidence: cannot write {}: {}", file.path.string(), pcap_geterr(file.dead));
      pcap_close(file.dead);
      file.dead = nullptr;
      file.failed = true;
      if (exists) total_bytes -= std::min(total_bytes, existing);
      return false;
    }
    // The directory's group (synwatch) may read it; nobody else: it holds traffic.
    (void)::fchmod(::fileno(pcap_dump_file(file.dumper)), 0640);
    file.bytes = exists ? existing : kPcapFileHeaderBytes;
    if (!exists) total_bytes += kPcapFileHeaderBytes;
    spdlog::info("evidence: incident {} recorded to {}", file.incident_id, file.path.string());
    return true;
  }

  void write(const EvidenceFrame& frame) {
    auto it = files.find(frame.watch);
    if (it == files.end()) {
      // Its begin was queued after this loop took the commands.
      bool stop = false;
      (void)take_commands(stop);
      it = files.find(frame.watch);
      if (it == files.end()) {
        dropped_write_error.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    OpenFile& file = it->second;
    if (file.failed) {
      dropped_write_error.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (file.dumper == nullptr && !open_file(file, frame.dlt)) {
      if (file.failed) dropped_write_error.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (frame.dlt != file.dlt) {
      dropped_link_mismatch.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const std::uint64_t record = kPcapRecordHeaderBytes + frame.length;
    if (file.bytes + record > config.max_incident_bytes) {
      dropped_incident_cap.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!make_room(record)) {
      dropped_total_cap.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    pcap_pkthdr header{};
    TimestampNs seconds = frame.time / kNanosPerSecond;
    TimestampNs nanos = frame.time % kNanosPerSecond;
    if (nanos < 0) {
      nanos += kNanosPerSecond;
      --seconds;
    }
    header.ts.tv_sec = static_cast<time_t>(seconds);
    header.ts.tv_usec = static_cast<suseconds_t>(nanos);  // nanoseconds: the file's precision
    header.caplen = frame.length;
    header.len = std::max<std::uint32_t>(frame.wire_length, frame.length);
    pcap_dump(reinterpret_cast<u_char*>(file.dumper), &header, frame.bytes.data());
    file.bytes += record;
    total_bytes += record;
    file.dirty = true;
    frames_written.fetch_add(1, std::memory_order_relaxed);
  }

  void close(OpenFile& file) {
    if (file.dumper != nullptr) {
      pcap_dump_close(file.dumper);
      pcap_close(file.dead);
      file.dumper = nullptr;
      file.dead = nullptr;
      stored.push_back({file.path, file.bytes});
    }
  }

  void drain() {
    for (EvidenceRing* ring : rings) {
      while (const EvidenceFrame* frame = ring->front()) {
        write(*frame);
        ring->release();
      }
    }
    for (auto& [watch, file] : files) {
      if (!file.dirty) continue;
      file.dirty = false;
      if (pcap_dump_flush(file.dumper) != 0) {
        spdlog::error("evidence: cannot write {}", file.path.string());
      }
    }
  }

  void apply_ends() {
    for (const std::uint32_t watch : ending) {
      const auto it = files.find(watch);
      if (it == files.end()) continue;
      close(it->second);
      files.erase(it);
    }
    ending.clear();
  }

  void run() {
    for (;;) {
      bool stop = false;
      const std::uint64_t flush_seen = take_commands(stop);
      drain();
      apply_ends();
      publish_disk_figures();
      {
        std::unique_lock lock(mutex);
        flushed = flush_seen;
        flushed_cv.notify_all();
        if (stop) break;
        const auto ready = [&] {
          return stopping || !commands.empty() || flush_requested > flushed;
        };
        if (files.empty()) {
          wake.wait(lock, ready);
        } else {
          wake.wait_for(lock, kDrainInterval, ready);
        }
      }
    }
    for (auto& [watch, file] : files) close(file);
    files.clear();
    publish_disk_figures();
  }
};

EvidenceWriter::EvidenceWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}

EvidenceWriter::~EvidenceWriter() {
  stop();
}

Expected<std::unique_ptr<EvidenceWriter>> EvidenceWriter::open(const EvidenceConfig& config,
                                                               std::filesystem::path directory,
                                                               const std::string& owner) {
  std::error_code error;
  // Absolute, so that the path in events means the same to whoever reads them.
  directory = std::filesystem::absolute(directory, error);
  if (error) return std::unexpected(Error::from_error_code(error, "evidence directory"));
  std::filesystem::create_directories(directory, error);
  if (error) {
    return std::unexpected(
        Error::from_error_code(error, "cannot create evidence directory " + directory.string()));
  }
  if (!owner.empty() && ::geteuid() == 0) {
    if (auto owned = hand_over_tree(directory, owner); !owned) {
      return std::unexpected(owned.error().prefixed("evidence directory: "));
    }
  }
  (void)::chmod(directory.c_str(), 0750);
  auto state = std::make_unique<State>();
  state->config = config;
  state->directory = std::move(directory);
  state->scan_existing();
  return std::unique_ptr<EvidenceWriter>(new EvidenceWriter(std::move(state)));
}

void EvidenceWriter::attach(EvidenceRing& ring) {
  state_->rings.push_back(&ring);
}

void EvidenceWriter::start() {
  if (!state_->thread.joinable()) state_->thread = std::thread([this] { state_->run(); });
}

void EvidenceWriter::stop() {
  if (!state_ || !state_->thread.joinable()) return;
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_all();
  state_->thread.join();
}

std::filesystem::path EvidenceWriter::path_of(const std::string& incident_id) const {
  return state_->directory / file_name_of(incident_id);
}

void EvidenceWriter::begin(std::uint32_t watch, const std::string& incident_id) {
  {
    std::lock_guard lock(state_->mutex);
    state_->commands.push_back({Command::Type::kBegin, watch, incident_id});
  }
  state_->wake.notify_all();
}

void EvidenceWriter::end(std::uint32_t watch) {
  {
    std::lock_guard lock(state_->mutex);
    state_->commands.push_back({Command::Type::kEnd, watch, {}});
  }
  state_->wake.notify_all();
}

void EvidenceWriter::flush() {
  std::unique_lock lock(state_->mutex);
  if (!state_->thread.joinable()) return;
  const std::uint64_t target = ++state_->flush_requested;
  state_->wake.notify_all();
  state_->flushed_cv.wait(lock, [&] { return state_->flushed >= target || state_->stopping; });
}

EvidenceStats EvidenceWriter::stats() const {
  EvidenceStats s;
  s.frames_written = state_->frames_written.load(std::memory_order_relaxed);
  s.dropped_incident_cap = state_->dropped_incident_cap.load(std::memory_order_relaxed);
  s.dropped_total_cap = state_->dropped_total_cap.load(std::memory_order_relaxed);
  s.dropped_link_mismatch = state_->dropped_link_mismatch.load(std::memory_order_relaxed);
  s.dropped_write_error = state_->dropped_write_error.load(std::memory_order_relaxed);
  s.files_removed = state_->files_removed.load(std::memory_order_relaxed);
  s.bytes_on_disk = state_->bytes_on_disk.load(std::memory_order_relaxed);
  s.files = state_->file_count.load(std::memory_order_relaxed);
  return s;
}

const std::filesystem::path& EvidenceWriter::directory() const noexcept {
  return state_->directory;
}

}  // namespace synwatch
