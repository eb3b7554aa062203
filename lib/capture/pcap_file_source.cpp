#include "capture/pcap_file_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <pcap/pcap.h>
#include <stdio_ext.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

#include "capture/frame_block.hpp"

namespace synwatch {
namespace {

std::string quoted(const std::string& path) {
  return "'" + path + "'";
}

// A gzip stream presented to libpcap as a FILE* through fopencookie. libpcap owns the FILE*
// (pcap_close closes it), and closing it frees this state.
struct GzipStream {
  gzFile file = nullptr;
  // Set when zlib found a damaged or cut stream; zlib reports a cut stream as a quiet end of
  // file, so without this a truncated .gz would look like a shorter, valid capture.
  std::string error;
  // Bytes handed to stdio: how far a pipe has been read (it has no offset to ask for).
  std::uint64_t delivered = 0;
};

ssize_t gzip_read(void* cookie, char* buffer, std::size_t size) {
  auto* stream = static_cast<GzipStream*>(cookie);
  const auto chunk = static_cast<unsigned>(std::min<std::size_t>(size, INT_MAX));
  const int got = gzread(stream->file, buffer, chunk);
  int code = Z_OK;
  const char* message = gzerror(stream->file, &code);
  if (got < 0 || (got == 0 && code != Z_OK)) {
    stream->error = message != nullptr ? message : "gzip read error";
    errno = EIO;
    return -1;
  }
  stream->delivered += static_cast<std::uint64_t>(got);
  return got;
}

int gzip_close(void* cookie) {
  auto* stream = static_cast<GzipStream*>(cookie);
  const int result = gzclose(stream->file);
  delete stream;
  return result == Z_OK ? 0 : EOF;
}

// A FILE* reading `compressed` through zlib (libpcap owns and closes it), or an error.
Expected<FILE*> cookie_stream(const std::string& path, gzFile compressed, std::size_t buffer_bytes,
                              GzipStream*& gzip_stream) {
  gzbuffer(compressed, static_cast<unsigned>(
                           std::clamp<std::size_t>(buffer_bytes, 8192, std::size_t{256} * 1024)));
  auto* stream = new GzipStream{compressed, {}};
  const cookie_io_functions_t functions{gzip_read, nullptr, nullptr, gzip_close};
  FILE* cookie_file = fopencookie(stream, "rb", functions);
  if (cookie_file == nullptr) {
    const int error = errno;
    gzip_close(stream);
    return std::unexpected(Error::from_errno(error, "cannot open capture " + quoted(path)));
  }
  gzip_stream = stream;
  return cookie_file;
}

// A pipe, FIFO or terminal cannot be rewound after its first bytes were looked at: zlib reads
// it instead, telling gzip from plain data itself (plain data passes through unchanged).
Expected<FILE*> open_unseekable_stream(const std::string& path, int fd, std::size_t buffer_bytes,
                                       bool& gzip, GzipStream*& gzip_stream) {
  gzFile compressed = gzdopen(fd, "rb");
  if (compressed == nullptr) {
    const int error = errno;
    ::close(fd);
    return std::unexpected(Error::from_errno(error, "cannot open capture " + quoted(path)));
  }
  auto stream = cookie_stream(path, compressed, buffer_bytes, gzip_stream);
  if (!stream) return stream;
  // gzdirect() is only known once zlib has looked at the first bytes: peek one through stdio.
  const int first = std::fgetc(*stream);
  if (first != EOF) (void)std::ungetc(first, *stream);
  gzip = gzdirect(compressed) == 0;
  return stream;
}

// Opens `path` ("-" = standard input) as a FILE* that yields the capture's uncompressed bytes.
// `streamed`: it is a pipe, FIFO or terminal, which cannot be read a second time; `size`: the
// file's size as stored, 0 for those.
Expected<FILE*> open_capture_stream(const std::string& path, std::size_t buffer_bytes, bool& gzip,
                                    bool& streamed, std::uint64_t& size, GzipStream*& gzip_stream) {
  const int fd = path == "-" ? ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0)
                             : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::unexpected(Error::from_errno(errno, "cannot open capture " + quoted(path)));
  }
  streamed = ::lseek(fd, 0, SEEK_CUR) < 0;
  if (streamed) return open_unseekable_stream(path, fd, buffer_bytes, gzip, gzip_stream);
  struct stat status {};
  size = ::fstat(fd, &status) == 0 && S_ISREG(status.st_mode)
             ? static_cast<std::uint64_t>(status.st_size)
             : 0;
  FILE* file = ::fdopen(fd, "rb");
  if (file == nullptr) {
    const int error = errno;
    ::close(fd);
    return std::unexpected(Error::from_errno(error, "cannot open capture " + quoted(path)));
  }
  // stdio's default 4 KiB buffer costs a read(2) per ~50 small frames; 1 MiB makes them rare.
  // Best effort: without it the stream keeps its default buffer.
  (void)std::setvbuf(file, nullptr, _IOFBF, buffer_bytes);
  unsigned char magic[2] = {0, 0};
  const std::size_t got = std::fread(magic, 1, sizeof magic, file);
  if (got < sizeof magic && std::ferror(file) != 0) {
    const int error = errno;
    (void)std::fclose(file);  // read-only: nothing to lose on close
    return std::unexpected(Error::from_errno(error, "cannot open capture " + quoted(path)));
  }
  gzip = got == sizeof magic && magic[0] == 0x1f && magic[1] == 0x8b;
  if (!gzip) {
    std::rewind(file);
    return file;
  }
  std::rewind(file);
  const int zlib_fd = ::fcntl(fileno(file), F_DUPFD_CLOEXEC, 0);
  (void)std::fclose(file);  // read through zlib below
  if (zlib_fd < 0) {
    return std::unexpected(Error::from_errno(errno, "cannot open capture " + quoted(path)));
  }
  gzFile compressed = gzdopen(zlib_fd, "rb");
  if (compressed == nullptr) {
    const int error = errno;
    ::close(zlib_fd);
    return std::unexpected(Error::from_errno(error, "cannot open capture " + quoted(path)));
  }
  return cookie_stream(path, compressed, buffer_bytes, gzip_stream);
}

}  // namespace

std::string dlt_name(int dlt) {
  const char* name = pcap_datalink_val_to_name(dlt);
  return name != nullptr ? name : "unknown";
}

Expected<LinkType> pcap_link_type(pcap* handle) {
  const int dlt = pcap_datalink(handle);
  if (const auto link = link_type_from_dlt(dlt)) return *link;
  return make_unexpected(ErrorKind::kInvalidInput, "unsupported link type " + std::to_string(dlt) +
                                                       " (" + dlt_name(dlt) + ")");
}

Expected<std::unique_ptr<PcapFileSource>> PcapFileSource::open(const std::string& path,
                                                               std::size_t buffer_bytes) {
  bool gzip = false;
  bool streamed = false;
  std::uint64_t size = 0;
  GzipStream* gzip_stream = nullptr;
  auto file = open_capture_stream(path, buffer_bytes, gzip, streamed, size, gzip_stream);
  if (!file) return std::unexpected(file.error());
  // libpcap reads each frame with two fread() calls, and glibc locks the stream in each: a fifth
  // of the cost of reading a capture of small frames. One thread drives a source at a time (the
  // class's thread rule), so the locks guard nothing.
  (void)__fsetlocking(*file, FSETLOCKING_BYCALLER);

  char message[PCAP_ERRBUF_SIZE] = {};
  pcap_t* handle =
      pcap_fopen_offline_with_tstamp_precision(*file, PCAP_TSTAMP_PRECISION_NANO, message);
  if (handle == nullptr) {
    // On failure libpcap leaves the FILE* to us.
    std::string reason = message;
    if (gzip_stream != nullptr && !gzip_stream->error.empty()) reason = gzip_stream->error;
    (void)std::fclose(*file);  // read-only: nothing to lose on close
    return make_unexpected(ErrorKind::kInvalidInput,
                           "cannot open capture " + quoted(path) + ": " + reason);
  }
  const int dlt = pcap_datalink(handle);
  auto link = pcap_link_type(handle);
  if (!link) {
    pcap_close(handle);
    return make_unexpected(link.error().kind, link.error().message + " in " + quoted(path));
  }
  auto source = std::unique_ptr<PcapFileSource>(new PcapFileSource(handle, path, *link, dlt, gzip));
  source->gzip_stream_ = gzip_stream;
  source->streamed_ = streamed;
  source->total_bytes_ = size;
  return source;
}

PcapFileSource::PcapFileSource(pcap* handle, std::string path, LinkType link, int datalink,
                               bool gzip)
    : handle_(handle), path_(std::move(path)), link_(link), datalink_(datalink), gzip_(gzip) {}

PcapFileSource::~PcapFileSource() {
  pcap_close(handle_);
}

namespace {

TimestampNs timestamp_of(const pcap_pkthdr& header) {
  // With nanosecond precision requested, libpcap puts nanoseconds in tv_usec.
  return static_cast<TimestampNs>(header.ts.tv_sec) * kNanosPerSecond +
         static_cast<TimestampNs>(header.ts.tv_usec);
}

}  // namespace

void PcapFileSource::finish(int next_result) {
  if (next_result == PCAP_ERROR_BREAK) {
    final_status_ = DispatchStatus::kEnd;
  } else {
    final_status_ = DispatchStatus::kError;
    error_ = "cannot read capture " + quoted(path_) + ": " + pcap_geterr(handle_);
  }
  // zlib turns a cut .gz into a short read or a quiet end of file; say what really happened.
  auto* stream = static_cast<GzipStream*>(gzip_stream_);
  if (stream != nullptr && !stream->error.empty()) {
    final_status_ = DispatchStatus::kError;
    error_ = "cannot read capture " + quoted(path_) + ": gzip: " + stream->error;
  }
}

DispatchResult PcapFileSource::dispatch(std::size_t max_packets, PacketHandler& handler) {
  if (final_status_ != DispatchStatus::kPackets) return {final_status_, 0};
  if (!batch_bytes_) batch_bytes_ = std::make_unique<std::uint8_t[]>(kBatchFrames * kSlotBytes);
  std::size_t delivered = 0;
  std::size_t batched = 0;
  const auto flush = [&] {
    if (batched > 0) handler.on_packets(std::span<const PacketView>(batch_.data(), batched));
    batched = 0;
  };
  while (delivered < max_packets) {
    pcap_pkthdr* header = nullptr;
    const u_char* bytes = nullptr;
    const int rc = pcap_next_ex(handle_, &header, &bytes);
    if (rc != 1) {
      flush();
      finish(rc);
      break;
    }
    ++delivered;
    if (header->caplen > kSlotBytes) {
      flush();
      handler.on_packet({std::span<const std::uint8_t>(bytes, header->caplen), header->len,
                         timestamp_of(*header)});
      continue;
    }
    std::uint8_t* slot = batch_bytes_.get() + batched * kSlotBytes;
    std::memcpy(slot, bytes, header->caplen);
    batch_[batched++] = {std::span<const std::uint8_t>(slot, header->caplen), header->len,
                         timestamp_of(*header)};
    if (batched == kBatchFrames) flush();
  }
  flush();
  bytes_read_.store(position(), std::memory_order_relaxed);
  // kPackets until the end or an error; then that final status, with what came before it.
  return {final_status_, delivered};
}

DispatchResult PcapFileSource::read_into(FrameBlock& block, std::size_t max_packets) {
  if (final_status_ != DispatchStatus::kPackets) return {final_status_, 0};
  std::size_t delivered = 0;
  while (delivered < max_packets && !block.full()) {
    pcap_pkthdr* header = nullptr;
    const u_char* bytes = nullptr;
    const int rc = pcap_next_ex(handle_, &header, &bytes);
    if (rc != 1) {
      finish(rc);
      break;
    }
    block.append(
        {std::span<const std::uint8_t>(bytes, header->caplen), header->len, timestamp_of(*header)});
    ++delivered;
  }
  bytes_read_.store(position(), std::memory_order_relaxed);
  return {final_status_, delivered};
}

std::uint64_t PcapFileSource::position() const noexcept {
  auto* stream = static_cast<GzipStream*>(gzip_stream_);
  if (stream != nullptr) {
    if (streamed_) return stream->delivered;
    // A .gz file: the compressed offset, to compare with its size on disk.
    const z_off_t offset = gzoffset(stream->file);
    return offset > 0 ? static_cast<std::uint64_t>(offset) : 0;
  }
  const long offset = std::ftell(pcap_file(handle_));
  return offset > 0 ? static_cast<std::uint64_t>(offset) : 0;
}

}  // namespace synwatch
