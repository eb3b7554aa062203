#include "capture/capture_sequence.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <utility>

#include "capture/frame_block.hpp"

namespace synwatch {

namespace {

// A look at the first packet needs a few KiB, not the 1 MiB a full read takes at a time.
constexpr std::size_t kPeekBufferBytes = std::size_t{16} * 1024;

std::string quoted(const std::string& path) {
  return "'" + path + "'";
}

}  // namespace

struct CaptureSequence::KeptFrame {
  std::vector<std::uint8_t> bytes;
  std::uint32_t wire_length = 0;
  TimestampNs timestamp = 0;

  [[nodiscard]] PacketView view() const {
    return {std::span<const std::uint8_t>(bytes), wire_length, timestamp};
  }
};

namespace {

// Keeps a copy of the one frame a peek delivers.
class FirstFrame final : public PacketHandler {
 public:
  void on_packet(const PacketView& packet) noexcept override {
    if (seen_) return;
    seen_ = true;
    bytes_.assign(packet.data.begin(), packet.data.end());
    wire_length_ = packet.wire_length;
    timestamp_ = packet.timestamp;
  }
  [[nodiscard]] bool seen() const noexcept { return seen_; }
  [[nodiscard]] TimestampNs timestamp() const noexcept { return timestamp_; }
  std::vector<std::uint8_t> take_bytes() noexcept { return std::move(bytes_); }
  [[nodiscard]] std::uint32_t wire_length() const noexcept { return wire_length_; }

 private:
  bool seen_ = false;
  std::vector<std::uint8_t> bytes_;
  std::uint32_t wire_length_ = 0;
  TimestampNs timestamp_ = 0;
};

}  // namespace

// Hands frames on while they are no later than `limit` (the next file's first packet, with the
// tolerance); the first one past it marks an overlap, and nothing more is handed on.
class CaptureSequence::OrderGuard final : public PacketHandler {
 public:
  OrderGuard(PacketHandler& target, TimestampNs limit) : target_(target), limit_(limit) {}

  void on_packet(const PacketView& packet) noexcept override {
    if (overlap_) return;
    if (packet.timestamp > limit_) {
      overlap_ = true;
      offending_ = packet.timestamp;
      return;
    }
    target_.on_packet(packet);
    ++forwarded_;
  }
  void on_packets(std::span<const PacketView> packets) noexcept override {
    if (overlap_) return;
    std::size_t in_order = 0;
    while (in_order < packets.size() && packets[in_order].timestamp <= limit_) ++in_order;
    if (in_order > 0) target_.on_packets(packets.first(in_order));
    forwarded_ += in_order;
    if (in_order < packets.size()) {
      overlap_ = true;
      offending_ = packets[in_order].timestamp;
    }
  }

  [[nodiscard]] bool overlap() const noexcept { return overlap_; }
  [[nodiscard]] TimestampNs offending() const noexcept { return offending_; }
  [[nodiscard]] std::size_t forwarded() const noexcept { return forwarded_; }

 private:
  PacketHandler& target_;
  TimestampNs limit_;
  bool overlap_ = false;
  TimestampNs offending_ = 0;
  std::size_t forwarded_ = 0;
};

std::expected<std::unique_ptr<CaptureSequence>, SequenceError> CaptureSequence::open(
    std::span<const std::string> paths) {
  if (paths.empty()) return std::unexpected(SequenceError{SequenceProblem::kUsage, "no capture"});
  if (paths.size() == 1) {
    auto opened = PcapFileSource::open(paths.front());
    if (!opened) {
      return std::unexpected(SequenceError{SequenceProblem::kCannotOpen, opened.error().message});
    }
    auto sequence = std::unique_ptr<CaptureSequence>(new CaptureSequence((*opened)->link_type()));
    sequence->files_.push_back({paths.front(), std::nullopt, (*opened)->progress().total_bytes});
    sequence->total_bytes_ = sequence->files_.front().size_bytes;
    sequence->kept_sources_.resize(1);
    sequence->kept_frames_.resize(1);
    sequence->current_ = std::move(*opened);
    sequence->next_file_ = 1;
    return sequence;
  }

  // Named twice, a file would overlap itself; standard input cannot even be read twice.
  struct Identity {
    dev_t device;
    ino_t inode;
    std::size_t index;
  };
  std::vector<Identity> identities;
  std::size_t standard_inputs = 0;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (paths[i] == "-") {
      if (++standard_inputs > 1) {
        return std::unexpected(
            SequenceError{SequenceProblem::kUsage, "standard input (-) can be read only once"});
      }
      continue;
    }
    struct stat status {};
    if (::stat(paths[i].c_str(), &status) != 0) continue;  // opening it says why
    for (const Identity& seen : identities) {
      if (seen.device == status.st_dev && seen.inode == status.st_ino) {
        return std::unexpected(SequenceError{
            SequenceProblem::kUsage, quoted(paths[seen.index]) + " and " + quoted(paths[i]) +
                                         " are the same file: name each piece once"});
      }
    }
    identities.push_back({status.st_dev, status.st_ino, i});
  }

  struct Peeked {
    SequenceFile file;
    std::unique_ptr<PcapFileSource> kept_source;
    std::unique_ptr<KeptFrame> kept_frame;
    int datalink = 0;
    LinkType link = LinkType::kEthernet;
  };
  std::vector<Peeked> peeked;
  peeked.reserve(paths.size());
  for (const std::string& path : paths) {
    struct stat status {};
    const bool regular =
        path != "-" && ::stat(path.c_str(), &status) == 0 && S_ISREG(status.st_mode);
    auto opened = PcapFileSource::open(
        path, regular ? kPeekBufferBytes : PcapFileSource::kDefaultBufferBytes);
    if (!opened) {
      return std::unexpected(SequenceError{SequenceProblem::kCannotOpen, opened.error().message});
    }
    PcapFileSource& source = **opened;
    FirstFrame first;
    const DispatchResult result = source.dispatch(1, first);
    if (result.status == DispatchStatus::kError) {
      return std::unexpected(SequenceError{SequenceProblem::kNotOneCapture, source.error()});
    }
    Peeked entry;
    entry.file = {path, first.seen() ? std::optional(first.timestamp()) : std::nullopt,
                  source.progress().total_bytes};
    entry.datalink = source.datalink();
    entry.link = source.link_type();
    if (source.streamed() && first.seen()) {
      entry.kept_frame = std::make_unique<KeptFrame>(
          KeptFrame{first.take_bytes(), first.wire_length(), first.timestamp()});
      entry.kept_source = std::move(*opened);
    }
    peeked.push_back(std::move(entry));
  }
  for (const Peeked& entry : peeked) {
    if (entry.link != peeked.front().link) {
      return std::unexpected(SequenceError{
          SequenceProblem::kNotOneCapture,
          quoted(entry.file.path) + " has link type " + dlt_name(entry.datalink) + " and " +
              quoted(peeked.front().file.path) + " " + dlt_name(peeked.front().datalink) +
              ": files of different link types are not pieces of one capture"});
    }
  }
  // By first packet; files without packets first (they add nothing); ties keep the command
  // line's order.
  std::stable_sort(peeked.begin(), peeked.end(), [](const Peeked& a, const Peeked& b) {
    return a.file.first_packet < b.file.first_packet;
  });

  auto sequence = std::unique_ptr<CaptureSequence>(new CaptureSequence(peeked.front().link));
  bool sizes_known = true;
  for (Peeked& entry : peeked) {
    sizes_known = sizes_known && entry.file.size_bytes > 0;
    sequence->total_bytes_ += entry.file.size_bytes;
    sequence->files_.push_back(std::move(entry.file));
    sequence->kept_sources_.push_back(std::move(entry.kept_source));
    sequence->kept_frames_.push_back(std::move(entry.kept_frame));
  }
  if (!sizes_known) sequence->total_bytes_ = 0;
  return sequence;
}

CaptureSequence::CaptureSequence(LinkType link) : link_(link) {}

CaptureSequence::~CaptureSequence() = default;

std::string CaptureSequence::name() const {
  std::string names;
  for (const SequenceFile& file : files_) names += (names.empty() ? "" : ", ") + file.path;
  return names;
}

bool CaptureSequence::open_next() {
  const std::size_t index = next_file_++;
  if (kept_sources_[index]) {
    current_ = std::move(kept_sources_[index]);
  } else {
    auto opened = PcapFileSource::open(files_[index].path);
    if (!opened) {
      final_status_ = DispatchStatus::kError;
      error_ = opened.error().message;
      return false;
    }
    if ((*opened)->link_type() != link_) {
      final_status_ = DispatchStatus::kError;
      error_ = "capture " + quoted(files_[index].path) + " changed since it was opened";
      return false;
    }
    current_ = std::move(*opened);
  }
  current_file_ = index;
  return true;
}

bool CaptureSequence::ensure_current() {
  if (current_) return true;
  if (next_file_ == files_.size()) {
    final_status_ = DispatchStatus::kEnd;
    return false;
  }
  return open_next();
}

CaptureSequence::Limit CaptureSequence::current_limit() const {
  // The next file that has packets sets how late this one's may be.
  for (std::size_t later = current_file_ + 1; later < files_.size(); ++later) {
    if (const auto first = files_[later].first_packet) {
      const TimestampNs never = std::numeric_limits<TimestampNs>::max();
      return {*first > never - kOverlapTolerance ? never : *first + kOverlapTolerance, later};
    }
  }
  return {std::numeric_limits<TimestampNs>::max(), current_file_};
}

void CaptureSequence::fail_overlap(const Limit& limit, TimestampNs offending) {
  const SequenceFile& current = files_[current_file_];
  const SequenceFile& next = files_[limit.file];
  final_status_ = DispatchStatus::kError;
  error_ = quoted(current.path) + " and " + quoted(next.path) +
           " overlap in time: " + quoted(current.path) + " has a packet at " +
           format_rfc3339(offending) + ", after the first packet of " + quoted(next.path) + " at " +
           format_rfc3339(next.first_packet.value_or(0)) +
           ". Several files are read as consecutive pieces of one capture (tcpdump -C or "
           "-G); merge overlapping captures first (mergecap -w merged.pcap ...) or read "
           "them one at a time";
}

bool CaptureSequence::after_read(const DispatchResult& result) {
  if (result.status == DispatchStatus::kError) {
    final_status_ = DispatchStatus::kError;
    error_ = current_->error();
    return false;
  }
  if (result.status == DispatchStatus::kEnd) {
    const std::uint64_t size = files_[current_file_].size_bytes;
    bytes_before_current_ += size > 0 ? size : current_->progress().bytes;
    current_.reset();
  }
  return true;
}

void CaptureSequence::publish_progress() {
  bytes_read_.store(bytes_before_current_ + (current_ ? current_->progress().bytes : 0),
                    std::memory_order_relaxed);
}

DispatchResult CaptureSequence::dispatch(std::size_t max_packets, PacketHandler& handler) {
  if (final_status_ != DispatchStatus::kPackets) return {final_status_, 0};
  std::size_t delivered = 0;
  while (delivered < max_packets && ensure_current()) {
    const Limit limit = current_limit();
    OrderGuard guard(handler, limit.latest);
    if (auto& kept = kept_frames_[current_file_]) {
      guard.on_packet(kept->view());
      kept.reset();
    }
    DispatchResult result{DispatchStatus::kPackets, 0};
    if (!guard.overlap()) {
      result = current_->dispatch(max_packets - delivered - guard.forwarded(), guard);
    }
    delivered += guard.forwarded();
    if (guard.overlap()) {
      fail_overlap(limit, guard.offending());
      break;
    }
    if (!after_read(result)) break;
  }
  publish_progress();
  return {final_status_, delivered};
}

DispatchResult CaptureSequence::read_into(FrameBlock& block, std::size_t max_packets) {
  if (final_status_ != DispatchStatus::kPackets) return {final_status_, 0};
  std::size_t delivered = 0;
  while (delivered < max_packets && !block.full() && ensure_current()) {
    const Limit limit = current_limit();
    const std::size_t first_new = block.size();
    if (auto& kept = kept_frames_[current_file_]) {
      block.append(kept->view());
      kept.reset();
    }
    const std::size_t kept_count = block.size() - first_new;
    const DispatchResult result = current_->read_into(block, max_packets - delivered - kept_count);
    // The order check after the fact: the first frame past the limit and all after it go.
    const auto frames = block.frames();
    const auto late =
        std::find_if(frames.begin() + static_cast<std::ptrdiff_t>(first_new), frames.end(),
                     [&](const PacketView& frame) { return frame.timestamp > limit.latest; });
    if (late != frames.end()) {
      const TimestampNs offending = late->timestamp;
      const auto in_order = static_cast<std::size_t>(late - frames.begin());
      delivered += in_order - first_new;
      block.truncate(in_order);
      fail_overlap(limit, offending);
      break;
    }
    delivered += block.size() - first_new;
    if (!after_read(result)) break;
  }
  publish_progress();
  return {final_status_, delivered};
}

}  // namespace synwatch
