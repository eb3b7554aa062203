// The libpcap floor: the least any reader of a capture file can cost. Opens the file, loops
// pcap_next_ex and counts frames and bytes, nothing else. run.sh times it against
// `synwatchd --read` on the same file in the same run (issue 8: --read <= 2x this).
//
// Usage: pcap_floor FILE   prints "packets=N bytes=B seconds=S pps=P" on stdout.

#include <pcap/pcap.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    (void)std::fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 64;
  }
  char error[PCAP_ERRBUF_SIZE] = {};
  const auto start = std::chrono::steady_clock::now();
  pcap_t* handle =
      pcap_open_offline_with_tstamp_precision(argv[1], PCAP_TSTAMP_PRECISION_NANO, error);
  if (handle == nullptr) {
    (void)std::fprintf(stderr, "pcap_floor: %s\n", error);
    return 66;
  }
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  pcap_pkthdr* header = nullptr;
  const std::uint8_t* data = nullptr;
  int rc = 0;
  while ((rc = pcap_next_ex(handle, &header, &data)) == 1) {
    ++packets;
    bytes += header->caplen;
  }
  const bool failed = rc == PCAP_ERROR;
  if (failed) (void)std::fprintf(stderr, "pcap_floor: %s\n", pcap_geterr(handle));
  pcap_close(handle);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  (void)std::printf(
      "packets=%llu bytes=%llu seconds=%.3f pps=%.0f\n", static_cast<unsigned long long>(packets),
      static_cast<unsigned long long>(bytes), seconds, static_cast<double>(packets) / seconds);
  return failed ? 65 : 0;
}
