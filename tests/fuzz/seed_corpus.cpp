// Writes the decoder fuzz seed corpus into the directory given as argv[1]: one file per valid
// frame, first byte = LinkType, so that the fuzzer starts from every header path.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "frame_builder.hpp"

using synwatch::test::Frame;
namespace test = synwatch::test;

namespace {

enum Link : std::uint8_t { kEthernet, kSll, kSll2, kRaw, kNull, kIpv4, kIpv6 };

bool write_seed(const std::string& directory, int index, Link link, const Frame& frame) {
  const std::string path = directory + "/seed-" + std::to_string(index);
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return false;
  const std::uint8_t selector = link;
  bool ok = std::fwrite(&selector, 1, 1, file) == 1 &&
            std::fwrite(frame.data(), 1, frame.size(), file) == frame.size();
  ok = std::fclose(file) == 0 && ok;
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    (void)std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::string directory = argv[1];

  test::TcpSpec syn;
  syn.options = test::linux_syn_options();
  test::TcpSpec syn_ack;
  syn_ack.flags = 0x12;
  syn_ack.options = {2, 4, 5, 0xb4, 1, 1, 4, 2, 30, 6, 1, 2, 3, 4};
  syn_ack.payload = 3;
  test::Ipv4Spec ip_options;
  ip_options.options = {0x94, 0x04, 0, 0};
  test::Ipv4Spec first_fragment;
  first_fragment.flags_and_offset = 0x2000;
  test::Ipv6Spec chain;
  chain.extensions = {test::options_header(0, 1), test::options_header(43),
                      test::fragment_header(0, true), test::authentication_header(1),
                      test::options_header(60)};

  const Frame v4 = test::ipv4({}, test::tcp_header(syn));
  const Frame v4_options = test::ipv4(ip_options, test::tcp_header(syn_ack));
  const Frame v4_fragment = test::ipv4(first_fragment, test::tcp_header(syn));
  const Frame v6 = test::ipv6({}, test::tcp_header(syn));
  const Frame v6_chain = test::ipv6(chain, test::tcp_header(syn_ack));

  const std::vector<std::pair<Link, Frame>> seeds = {
      {kEthernet, test::ethernet(0x0800, v4)},
      {kEthernet, test::ethernet(0x0800, v4_options, {0x88a8, 0x8100})},
      {kEthernet, test::ethernet(0x86dd, v6_chain, {0x8100})},
      {kSll, test::linux_sll(0x0800, v4_fragment)},
      {kSll, test::linux_sll(0x86dd, v6)},
      {kSll2, test::linux_sll2(0x86dd, v6_chain)},
      {kSll2, test::linux_sll2(0x0800, v4)},
      {kRaw, v4_options},
      {kRaw, v6_chain},
      {kNull, test::null_link(2, false, v4)},
      {kNull, test::null_link(30, true, v6)},
      {kIpv4, v4_options},
      {kIpv6, v6_chain},
  };
  int index = 0;
  for (const auto& [link, frame] : seeds) {
    if (!write_seed(directory, index++, link, frame)) {
      std::perror(directory.c_str());
      return 1;
    }
  }
  return 0;
}
