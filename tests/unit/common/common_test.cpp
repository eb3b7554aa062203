#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <system_error>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "common/ip_address.hpp"
#include "common/thread_annotations.hpp"
#include "common/time.hpp"
#include "common/wake_fd.hpp"
#include "error_printer.hpp"

namespace synwatch {
namespace {

TEST(IpAddress, AssignV4OverwritesAnyEarlierAddress) {
  IpAddress a = *IpAddress::parse("2001:db8::ffff:1");
  const std::uint8_t octets[4] = {198, 51, 100, 7};
  a.assign_v4(octets);
  EXPECT_EQ(a, IpAddress::from_v4(octets));
  EXPECT_EQ(a, *IpAddress::parse("198.51.100.7"));
  EXPECT_TRUE(a.is_v4());
}

TEST(IpAddress, ParsesAndFormatsBothFamilies) {
  const auto v4 = IpAddress::parse("198.51.100.7");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->v4(), 0xc6336407u);
  EXPECT_EQ(v4->to_string(), "198.51.100.7");
  const auto v6 = IpAddress::parse("2001:db8::1");
  ASSERT_TRUE(v6);
  EXPECT_FALSE(v6->is_v4());
  EXPECT_EQ(v6->to_string(), "2001:db8::1");
  EXPECT_FALSE(IpAddress::parse("300.1.1.1"));
  EXPECT_FALSE(IpAddress::parse(""));
  EXPECT_FALSE(IpAddress::parse("example.com"));
}

TEST(Endpoint, BracketsIpv6) {
  EXPECT_EQ((Endpoint{*IpAddress::parse("10.0.0.1"), 80}).to_string(), "10.0.0.1:80");
  EXPECT_EQ((Endpoint{*IpAddress::parse("2001:db8::5"), 443}).to_string(), "[2001:db8::5]:443");
}

TEST(IpPrefix, MatchesBothFamiliesAndClearsHostBits) {
  const auto p = IpPrefix::parse("10.1.2.3/8");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->to_string(), "10.0.0.0/8");
  EXPECT_TRUE(p->contains(*IpAddress::parse("10.255.0.1")));
  EXPECT_FALSE(p->contains(*IpAddress::parse("11.0.0.1")));
  EXPECT_FALSE(p->contains(*IpAddress::parse("2001:db8::1")));
  const auto p6 = IpPrefix::parse("2001:db8::/33");
  ASSERT_TRUE(p6);
  EXPECT_TRUE(p6->contains(*IpAddress::parse("2001:db8:7fff::1")));
  EXPECT_FALSE(p6->contains(*IpAddress::parse("2001:db8:8000::1")));
  const auto host = IpPrefix::parse("192.0.2.1");
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->contains(*IpAddress::parse("192.0.2.1")));
  EXPECT_FALSE(host->contains(*IpAddress::parse("192.0.2.2")));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0/33"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0/"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0/8x"));
}

TEST(Bogon, ClassifiesReservedRanges) {
  for (const char* a :
       {"0.1.2.3", "10.0.0.1", "127.0.0.1", "100.64.0.1", "169.254.1.1", "172.16.0.1",
        "172.31.255.255", "192.168.1.1", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1",
        "::", "fc00::1", "fd12::1", "fe80::1", "ff02::1"}) {
    EXPECT_TRUE(is_bogon(*IpAddress::parse(a))) << a;
  }
  for (const char* a : {"1.1.1.1", "100.63.255.255", "100.128.0.0", "172.32.0.1", "198.18.0.1",
                        "2001:db8::1", "2a00::1"}) {
    EXPECT_FALSE(is_bogon(*IpAddress::parse(a))) << a;
  }
}

TEST(Bogon, Ipv4AgreesWithThePrefixListAtEveryRangeEdge) {
  // is_bogon decides most IPv4 addresses by the first octet; the list is the definition.
  std::vector<IpPrefix> reserved;
  for (const char* p : {"0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16",
                        "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4"}) {
    reserved.push_back(*IpPrefix::parse(p));
  }
  const auto listed = [&](const IpAddress& a) {
    return std::any_of(reserved.begin(), reserved.end(),
                       [&](const IpPrefix& p) { return p.contains(a); });
  };
  std::vector<std::uint32_t> probes;
  for (const IpPrefix& p : reserved) {
    const std::uint32_t first = p.network.v4();
    const std::uint32_t last = first | (0xffffffffu >> (p.length - 96));
    for (const std::uint32_t edge : {first, last}) {
      probes.insert(probes.end(), {edge - 1, edge, edge + 1});
    }
  }
  std::uint32_t x = 12345;
  for (int i = 0; i < 100000; ++i) probes.push_back(x = x * 1664525u + 1013904223u);
  // Every first octet at both ends and in between: the inline first-octet shortcut.
  for (std::uint32_t octet = 0; octet < 256; ++octet) {
    // x.0.0.0, x.255.255.255, and the second octets of the ranges narrower than a /8.
    for (const std::uint32_t rest :
         {0x000000u, 0xffffffu, 0xfe0000u, 0x100000u, 0xa80101u, 0x400000u}) {
      probes.push_back(octet << 24 | rest);
    }
  }
  for (std::uint32_t probe : probes) {
    const IpAddress a = IpAddress::from_v4(probe);
    ASSERT_EQ(is_bogon(a), listed(a)) << a.to_string();
    ASSERT_EQ(is_bogon_in_general(a), listed(a)) << a.to_string();
  }
}

TEST(Time, FormatsRfc3339IncludingBefore1970) {
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(1'700'000'000'123'456'789LL), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
}

TEST(Time, ParsesWhatItFormatsAndRefusesTheRest) {
  for (const TimestampNs t : {0LL, 1'700'000'000'123'000'000LL, -1'000'000LL}) {
    EXPECT_EQ(parse_rfc3339(format_rfc3339(t)), t) << t;
  }
  EXPECT_EQ(parse_rfc3339("2023-11-14T22:13:20Z"), 1'700'000'000'000'000'000LL);
  EXPECT_EQ(parse_rfc3339("2023-11-14T22:13:20.5Z"), 1'700'000'000'500'000'000LL);
  // The fuzzer found year 4048 overflowed the nanosecond multiply (undefined behaviour).
  EXPECT_EQ(parse_rfc3339("4048-01-01T00:00:00Z"), std::nullopt);
  EXPECT_EQ(parse_rfc3339("9999-12-31T23:59:59Z"), std::nullopt);
  EXPECT_EQ(parse_rfc3339("1600-01-01T00:00:00Z"), std::nullopt);
  for (const char* bad : {"", "2023-11-14", "2023-11-14T22:13:20", "2023-11-14T22:13:20.Z",
                          "-023-11-14T22:13:20Z", " 2023-11-14T22:13:20Z", "2023-1-14T22:13:20Z",
                          "2023-13-14T22:13:20Z", "2023-11-00T22:13:20Z", "2023-11-14T24:13:20Z",
                          "2023-11-14T22:60:20Z", "2023-11-14T22:13:61Z", "2023-11-14T22:13:20Zx",
                          "2023-11-14 22:13:20Z", "2023-11-14T+2:13:20Z"}) {
    EXPECT_EQ(parse_rfc3339(bad), std::nullopt) << bad;
  }
}

TEST(Error, FromErrnoNamesTheOperationAndKeepsItsKind) {
  const auto missing = Error::from_errno(ENOENT, "connect /run/synwatch/status.sock");
  EXPECT_EQ(missing.kind, ErrorKind::kNotFound);
  EXPECT_EQ(missing.message, "connect /run/synwatch/status.sock: No such file or directory");
  EXPECT_EQ(Error::from_errno(EACCES, "x").kind, ErrorKind::kPermissionDenied);
  EXPECT_EQ(Error::from_errno(EPERM, "x").kind, ErrorKind::kPermissionDenied);
  EXPECT_EQ(Error::from_errno(EADDRINUSE, "x").kind, ErrorKind::kInUse);
  EXPECT_EQ(Error::from_errno(ECONNREFUSED, "x").kind, ErrorKind::kNotFound);
  EXPECT_EQ(Error::from_errno(ENOSPC, "x").kind, ErrorKind::kResourceExhausted);
  EXPECT_EQ(Error::from_errno(EIO, "x").kind, ErrorKind::kIo);
}

TEST(Error, FromErrorCodeFollowsTheErrnoOfAFilesystemError) {
  std::error_code code;
  (void)std::filesystem::file_size("/nonexistent/synwatch-error-test", code);
  ASSERT_TRUE(code);
  const auto missing = Error::from_error_code(code, "cannot size /nonexistent/synwatch-error-test");
  EXPECT_EQ(missing.kind, ErrorKind::kNotFound);
  EXPECT_EQ(missing.message,
            "cannot size /nonexistent/synwatch-error-test: No such file or directory");
  EXPECT_EQ(Error::from_error_code(std::make_error_code(std::errc::permission_denied), "x").kind,
            ErrorKind::kPermissionDenied);
  // Not an errno: nothing to tell the kind by.
  EXPECT_EQ(Error::from_error_code(std::make_error_code(std::future_errc::no_state), "x").kind,
            ErrorKind::kIo);
}

TEST(Error, PrefixedKeepsTheKindAndLeadsTheMessage) {
  const Error in_use{ErrorKind::kInUse, "bind: Address already in use"};
  const Error led = in_use.prefixed("cannot serve metrics on :9100: ");
  EXPECT_EQ(led.kind, ErrorKind::kInUse);
  EXPECT_EQ(led.message, "cannot serve metrics on :9100: bind: Address already in use");
}

TEST(Error, EveryKindHasItsOwnName) {
  const ErrorKind kinds[] = {ErrorKind::kInvalidInput,
                             ErrorKind::kNotFound,
                             ErrorKind::kPermissionDenied,
                             ErrorKind::kInUse,
                             ErrorKind::kTimedOut,
                             ErrorKind::kResourceExhausted,
                             ErrorKind::kIo};
  std::vector<std::string_view> names;
  for (const auto kind : kinds) names.push_back(to_string(kind));
  std::ranges::sort(names);
  EXPECT_EQ(std::ranges::adjacent_find(names), names.end());
  EXPECT_EQ(std::ranges::count(names, "unknown"), 0);
}

// Whether another caller could take `mutex` right now.
bool free_now(Mutex& mutex) {
  if (!mutex.try_lock()) return false;
  mutex.unlock();
  return true;
}

TEST(MutexLock, HoldsTheMutexForItsScope) {
  Mutex mutex;
  {
    const MutexLock lock(mutex);
    EXPECT_FALSE(std::async(std::launch::async, [&] { return free_now(mutex); }).get());
  }
  EXPECT_TRUE(free_now(mutex));
}

TEST(MutexLock, AConditionVariableWaitReleasesTheMutex) {
  Mutex mutex;
  std::condition_variable_any changed;
  bool ready = false;
  std::thread setter([&] {
    const MutexLock lock(mutex);
    ready = true;
    changed.notify_all();
  });
  {
    MutexLock lock(mutex);
    while (!ready) changed.wait(lock);
  }
  setter.join();
  EXPECT_TRUE(ready);
}

// Exits 0 if, with no descriptor left to take, a WakeFd says EMFILE, also once moved.
[[noreturn]] void create_wake_fd_without_descriptors() {
  const rlimit limit{.rlim_cur = 3, .rlim_max = 3};  // below the lowest free descriptor
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(2);
  WakeFd refused;
  const bool said = refused.fd() == -1 && refused.creation_errno() == EMFILE;
  const WakeFd moved(std::move(refused));
  ::_exit(said && moved.creation_errno() == EMFILE ? 0 : 1);
}

TEST(WakeFd, SaysWhyTheKernelRefusedIt) {
  const WakeFd created;
  EXPECT_GE(created.fd(), 0);
  EXPECT_EQ(created.creation_errno(), 0);
  // In a child, so that the lowered limit does not leak into other tests.
  EXPECT_EXIT(create_wake_fd_without_descriptors(), testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace synwatch
