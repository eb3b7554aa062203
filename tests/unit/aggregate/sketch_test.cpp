// Tests of the streaming sketches against exact answers computed from the same streams.
// Every stream comes from a fixed-seed generator, so results are deterministic.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "aggregate/hyperloglog.hpp"
#include "aggregate/source_entropy.hpp"
#include "aggregate/space_saving.hpp"
#include "common/ip_address.hpp"

namespace synwatch {

// Readable failure messages for addresses and counters.
void PrintTo(const IpAddress& address, std::ostream* out) {
  *out << address.to_string();
}
void PrintTo(const HeavySource& source, std::ostream* out) {
  *out << "{" << source.address.to_string() << " count " << source.count << " error "
       << source.error << "}";
}

namespace {

using Summary = SpaceSaving<16>;

static_assert(std::is_trivially_copyable_v<SourceHll>);
static_assert(std::is_trivially_copyable_v<Summary>);
static_assert(SourceHll::kRegisterCount == 1024);

IpAddress random_v4(std::mt19937_64& rng) {
  return IpAddress::from_v4(static_cast<std::uint32_t>(rng()));
}

IpAddress random_v6(std::mt19937_64& rng) {
  std::array<std::uint8_t, 16> bytes{};
  const std::uint64_t high = rng();
  const std::uint64_t low = rng();
  std::memcpy(bytes.data(), &high, 8);
  std::memcpy(bytes.data() + 8, &low, 8);
  bytes[0] = 0x20;  // global unicast, never IPv4-mapped
  return IpAddress::from_v6(bytes.data());
}

std::size_t count_distinct(std::vector<IpAddress> addresses) {
  std::sort(addresses.begin(), addresses.end());
  return static_cast<std::size_t>(std::unique(addresses.begin(), addresses.end()) -
                                  addresses.begin());
}

// ---------------------------------------------------------------------------------------------
// HyperLogLog

TEST(HyperLogLog, StandardErrorMatchesTheDocumentedFigure) {
  EXPECT_NEAR(SourceHll::kRelativeStandardError, 0.0325, 0.00001);
  EXPECT_NEAR(HyperLogLog<11>::kRelativeStandardError, 1.04 / std::sqrt(2048.0), 1e-12);
}

struct CardinalityCase {
  std::size_t sources;
  bool ipv6;
};

class HyperLogLogAccuracy : public ::testing::TestWithParam<CardinalityCase> {};

TEST_P(HyperLogLogAccuracy, ErrorWithinThreeStandardErrors) {
  const auto [sources, ipv6] = GetParam();
  std::mt19937_64 rng(0x5eed0000 + sources + (ipv6 ? 1 : 0));
  std::vector<IpAddress> addresses;
  addresses.reserve(sources);
  SourceHll sketch;
  for (std::size_t i = 0; i < sources; ++i) {
    addresses.push_back(ipv6 ? random_v6(rng) : random_v4(rng));
    sketch.add_hash(SourceHll::hash_address(addresses.back()));
  }
  const auto truth = static_cast<double>(count_distinct(std::move(addresses)));
  const double estimate = sketch.estimate();
  EXPECT_NEAR(estimate, truth, 3 * SourceHll::kRelativeStandardError * truth)
      << "relative error " << (estimate - truth) / truth;
}

INSTANTIATE_TEST_SUITE_P(
    Sizes, HyperLogLogAccuracy,
    ::testing::Values(CardinalityCase{100, false}, CardinalityCase{1'000, false},
                      CardinalityCase{10'000, false}, CardinalityCase{100'000, false},
                      CardinalityCase{1'000'000, false}, CardinalityCase{100, true},
                      CardinalityCase{1'000, true}, CardinalityCase{10'000, true},
                      CardinalityCase{100'000, true}, CardinalityCase{1'000'000, true}),
    [](const ::testing::TestParamInfo<CardinalityCase>& case_info) {
      return std::string(case_info.param.ipv6 ? "ipv6_" : "ipv4_") +
             std::to_string(case_info.param.sources);
    });

TEST(HyperLogLog, UnbiasedWithTheDocumentedSpread) {
  // 64 independent sketches of 20 k sources: a constant bias of a few percent, invisible in any
  // single sketch's 3-sigma band, shows in the mean; the spread should match 1.04 / sqrt(m).
  constexpr int kSketches = 64;
  constexpr int kSources = 20'000;
  std::mt19937_64 rng(0xb1a5);
  double sum = 0;
  double sum_of_squares = 0;
  for (int s = 0; s < kSketches; ++s) {
    SourceHll sketch;
    for (int i = 0; i < kSources; ++i) sketch.add(random_v6(rng));  // collisions: ~never
    const double relative_error = (sketch.estimate() - kSources) / kSources;
    sum += relative_error;
    sum_of_squares += relative_error * relative_error;
  }
  const double mean = sum / kSketches;
  const double rms = std::sqrt(sum_of_squares / kSketches);
  const double rse = SourceHll::kRelativeStandardError;
  EXPECT_NEAR(mean, 0.0, 3 * rse / std::sqrt(double{kSketches}));
  EXPECT_GT(rms, 0.7 * rse);
  EXPECT_LT(rms, 1.3 * rse);
}

TEST(HyperLogLog, DuplicatesDoNotChangeTheSketch) {
  std::mt19937_64 rng(7);
  std::vector<IpAddress> addresses;
  addresses.reserve(20'000);
  for (int i = 0; i < 20'000; ++i) addresses.push_back(random_v4(rng));
  SourceHll sketch;
  for (const auto& a : addresses) sketch.add(a);
  const SourceHll once = sketch;
  const double estimate_once = sketch.estimate();
  std::shuffle(addresses.begin(), addresses.end(), rng);
  for (int repeat = 0; repeat < 3; ++repeat) {
    for (const auto& a : addresses) sketch.add(a);
  }
  EXPECT_EQ(sketch, once);
  EXPECT_EQ(sketch.estimate(), estimate_once);
  // A single source repeated stays a single source.
  SourceHll single;
  for (int i = 0; i < 1000; ++i) single.add(addresses.front());
  EXPECT_NEAR(single.estimate(), 1.0, 0.01);
}

TEST(HyperLogLog, UnionOfSketchesEqualsSketchOfAllKeys) {
  std::mt19937_64 rng(11);
  std::vector<IpAddress> pool;
  pool.reserve(60'000);
  for (int i = 0; i < 60'000; ++i) pool.push_back(random_v6(rng));
  std::array<SourceHll, 5> parts{};
  SourceHll everything;
  std::uniform_int_distribution<std::size_t> pick(0, pool.size() - 1);
  for (auto& part : parts) {
    for (int i = 0; i < 20'000; ++i) {  // parts overlap: 100 k draws from 60 k addresses
      const IpAddress& a = pool[pick(rng)];
      part.add(a);
      everything.add(a);
    }
  }
  std::array<const SourceHll*, 6> pointers{&parts[0], &parts[1], nullptr,
                                           &parts[2], &parts[3], &parts[4]};
  const double union_estimate = estimate_union(std::span<const SourceHll* const>(pointers));
  EXPECT_EQ(union_estimate, everything.estimate());
  EXPECT_GT(union_estimate, parts[0].estimate() * 2);  // the union really is larger

  SourceHll merged;
  for (const auto& part : parts) merged.merge_from(part);
  EXPECT_EQ(merged, everything);

  EXPECT_EQ(estimate_union(std::span<const SourceHll* const>()), 0.0);
  const std::array<const SourceHll*, 1> one{&parts[3]};
  EXPECT_EQ(estimate_union(std::span<const SourceHll* const>(one)), parts[3].estimate());
}

TEST(HyperLogLog, ClearEmptiesTheSketch) {
  std::mt19937_64 rng(13);
  SourceHll sketch;
  for (int i = 0; i < 5'000; ++i) sketch.add(random_v4(rng));
  ASSERT_GT(sketch.estimate(), 4'000.0);
  ASSERT_FALSE(sketch.empty());
  sketch.clear();
  EXPECT_TRUE(sketch.empty());
  EXPECT_EQ(sketch, SourceHll{});
  EXPECT_EQ(sketch.estimate(), 0.0);
  sketch.add(random_v4(rng));
  EXPECT_NEAR(sketch.estimate(), 1.0, 0.01);
}

TEST(HyperLogLog, AllZeroBytesIsTheEmptySketch) {
  SourceHll sketch;
  sketch.add(*IpAddress::parse("192.0.2.1"));
  std::memset(static_cast<void*>(&sketch), 0, sizeof sketch);
  EXPECT_EQ(sketch, SourceHll{});
  EXPECT_EQ(sketch.estimate(), 0.0);
}

// ---------------------------------------------------------------------------------------------
// SpaceSaving

using Truth = std::map<IpAddress, std::uint64_t>;

std::vector<HeavySource> top_of(const Summary& summary) {
  std::vector<HeavySource> out(Summary::kCapacity);
  out.resize(summary.top(out));
  return out;
}

// Checks every Space-Saving guarantee of `summary` against the exact counts of its stream.
// `merged`: the summary came from merge_from(), which keeps the K largest of the combined
// counters, so the kept counts may add up to less than the weight seen.
void expect_guarantees(const Summary& summary, const Truth& truth, bool merged = false) {
  std::uint64_t total = 0;
  for (const auto& [address, count] : truth) total += count;
  EXPECT_EQ(summary.total(), total);
  const double bound = static_cast<double>(total) / Summary::kCapacity;
  EXPECT_LE(static_cast<double>(summary.min_count()), bound);
  const auto top = top_of(summary);
  EXPECT_EQ(top.size(), std::min<std::size_t>(truth.size(), Summary::kCapacity));
  std::map<IpAddress, HeavySource> tracked;
  for (const auto& entry : top) {
    const auto it = truth.find(entry.address);
    const std::uint64_t true_count = it == truth.end() ? 0 : it->second;
    EXPECT_GE(entry.count, true_count) << entry.address.to_string() << " under-counted";
    EXPECT_LE(entry.guaranteed_count(), true_count) << entry.address.to_string();
    EXPECT_LE(entry.error, summary.min_count());
    EXPECT_TRUE(tracked.emplace(entry.address, entry).second)
        << entry.address.to_string() << " tracked twice";
  }
  for (const auto& [address, count] : truth) {
    if (!tracked.contains(address)) {
      EXPECT_LE(count, summary.min_count()) << address.to_string() << " lost";
      EXPECT_LE(static_cast<double>(count), bound);
    }
  }
  for (std::size_t i = 1; i < top.size(); ++i) EXPECT_GE(top[i - 1].count, top[i].count);
  if (top.size() == Summary::kCapacity) {
    // Full: the counter replaced next is the smallest, and the counts add up to the weight
    // seen (an untracked address takes over a counter and adds its weight to it).
    EXPECT_EQ(summary.min_count(), top.back().count);
    std::uint64_t counted = 0;
    for (const auto& entry : top) counted += entry.count;
    if (merged) {
      EXPECT_LE(counted, total);
    } else {
      EXPECT_EQ(counted, total);
    }
  }
}

// Zipf(s) over `keys` addresses, most popular first.
struct ZipfStream {
  std::vector<IpAddress> keys;
  std::discrete_distribution<std::size_t> rank;

  ZipfStream(std::mt19937_64& rng, std::size_t key_count, double exponent) {
    std::vector<double> weights;
    for (std::size_t i = 0; i < key_count; ++i) {
      keys.push_back(random_v4(rng));
      weights.push_back(1.0 / std::pow(static_cast<double>(i + 1), exponent));
    }
    rank = std::discrete_distribution<std::size_t>(weights.begin(), weights.end());
  }
  const IpAddress& next(std::mt19937_64& rng) { return keys[rank(rng)]; }
};

TEST(SpaceSaving, ExactWhenDistinctSourcesFitInTheSummary) {
  std::mt19937_64 rng(17);
  std::vector<IpAddress> stream;
  Truth truth;
  for (std::uint64_t i = 0; i < Summary::kCapacity; ++i) {
    const IpAddress a = i % 2 == 0 ? random_v4(rng) : random_v6(rng);
    truth[a] = 3 * i + 1;
    for (std::uint64_t n = 0; n < 3 * i + 1; ++n) stream.push_back(a);
  }
  std::shuffle(stream.begin(), stream.end(), rng);
  Summary summary;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    // Mix weighted and unit adds: two consecutive equal addresses go in as one weight-2 add.
    if (i + 1 < stream.size() && stream[i] == stream[i + 1]) {
      summary.add(stream[i], 2);
      ++i;
    } else {
      summary.add(stream[i]);
    }
  }
  const auto top = top_of(summary);
  ASSERT_EQ(top.size(), Summary::kCapacity);
  for (std::size_t i = 0; i < top.size(); ++i) {
    EXPECT_EQ(top[i].count, 3 * (Summary::kCapacity - 1 - i) + 1);
    EXPECT_EQ(top[i].error, 0u);
    EXPECT_EQ(top[i].count, truth.at(top[i].address));
  }
  EXPECT_EQ(summary.min_count(), 1u);
  // A shorter output span receives the heaviest entries only.
  std::array<HeavySource, 3> three{};
  ASSERT_EQ(summary.top(three), 3u);
  EXPECT_EQ(three[0], top[0]);
  EXPECT_EQ(three[2], top[2]);
}

// The fingerprint scan has a form per K (16 at a time, 4 at a time, one by one): each must find
// an address in every position.
template <std::size_t K>
void expect_exact_while_distinct_addresses_fit() {
  SCOPED_TRACE(K);
  std::mt19937_64 rng(61 + K);
  std::vector<IpAddress> addresses;
  std::vector<IpAddress> stream;
  for (std::size_t i = 0; i < K; ++i) {
    addresses.push_back(i % 3 == 0 ? random_v6(rng) : random_v4(rng));
    for (std::size_t n = 0; n <= i; ++n) stream.push_back(addresses.back());
  }
  std::shuffle(stream.begin(), stream.end(), rng);
  SpaceSaving<K> summary;
  for (const IpAddress& a : stream) summary.add(a);
  std::array<HeavySource, K> top{};
  ASSERT_EQ(summary.top(top), K);
  for (std::size_t i = 0; i < K; ++i) {
    EXPECT_EQ(top[i].address, addresses[K - 1 - i]);
    EXPECT_EQ(top[i].count, K - i);
    EXPECT_EQ(top[i].error, 0u);
  }
  // Full now: a new address takes over the counter at 1, then addresses[0] (no longer
  // tracked) one of the two at 2, leaving the other as the smallest.
  summary.add(random_v4(rng));
  summary.add(addresses[0]);
  ASSERT_EQ(summary.top(top), K);
  EXPECT_EQ(summary.min_count(), 2u);
  EXPECT_EQ(summary.total(), stream.size() + 2);
}

TEST(SpaceSaving, EveryCounterCountIsFoundAgain) {
  expect_exact_while_distinct_addresses_fit<5>();
  expect_exact_while_distinct_addresses_fit<12>();
  expect_exact_while_distinct_addresses_fit<16>();
  expect_exact_while_distinct_addresses_fit<32>();
  expect_exact_while_distinct_addresses_fit<64>();
}

TEST(SpaceSaving, FindsTheTrueTopSourcesOfAZipfStream) {
  std::mt19937_64 rng(19);
  ZipfStream zipf(rng, 1'000, 1.5);
  Summary summary;
  Truth truth;
  constexpr std::uint64_t kSyns = 200'000;
  for (std::uint64_t i = 0; i < kSyns; ++i) {
    const IpAddress& a = zipf.next(rng);
    summary.add(a);
    ++truth[a];
  }
  expect_guarantees(summary, truth);
  std::vector<std::pair<std::uint64_t, IpAddress>> by_count;
  for (const auto& [address, count] : truth) by_count.emplace_back(count, address);
  std::sort(by_count.rbegin(), by_count.rend());
  // Sources above N / K are the ones Space-Saving promises to find; they lead the report in
  // their true order, with their true counts inside [count - error, count].
  const auto top = top_of(summary);
  std::size_t promised = 0;
  while (by_count[promised].first > kSyns / Summary::kCapacity) ++promised;
  ASSERT_GE(promised, 3u) << "the stream is not skewed enough to test anything";
  for (std::size_t i = 0; i < promised; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(top[i].address, by_count[i].second);
    EXPECT_GE(top[i].count, by_count[i].first);
    EXPECT_LE(top[i].guaranteed_count(), by_count[i].first);
  }
  // The heaviest source arrives early, before the counters fill up, so its count is tight.
  EXPECT_LE(top[0].error, by_count[0].first / 100);
}

TEST(SpaceSaving, NeverUnderCountsUnderAWeightedFlood) {
  // A few steady heavy sources inside a flood where nearly every SYN is a new address.
  std::mt19937_64 rng(23);
  // Two sources with 1/8 of the SYNs each: above N / K = 1/16, so they must be tracked.
  std::vector<IpAddress> heavy;
  heavy.reserve(2);
  for (int i = 0; i < 2; ++i) heavy.push_back(random_v6(rng));
  std::uniform_int_distribution<std::uint32_t> weight(1, 5);
  Summary summary;
  Truth truth;
  for (int i = 0; i < 100'000; ++i) {
    const IpAddress a =
        i % 4 == 0 ? heavy[static_cast<std::size_t>(i / 4) % heavy.size()] : random_v4(rng);
    const std::uint32_t w = weight(rng);
    summary.add(a, w);
    truth[a] += w;
    if (i % 25'000 == 24'999) {
      SCOPED_TRACE(i);
      expect_guarantees(summary, truth);
    }
  }
  const auto top = top_of(summary);
  std::vector<IpAddress> reported;
  for (std::size_t i = 0; i < heavy.size(); ++i) reported.push_back(top[i].address);
  for (const auto& h : heavy) {
    EXPECT_NE(std::find(reported.begin(), reported.end(), h), reported.end());
  }
  const Summary before_zero_weight = summary;
  summary.add(random_v4(rng), 0);  // a zero weight changes nothing
  EXPECT_EQ(top_of(summary), top_of(before_zero_weight));
  EXPECT_EQ(summary.total(), before_zero_weight.total());
}

TEST(SpaceSaving, SmallestCounterStaysRightThroughEveryKindOfAdd) {
  // The summary keeps a mask of the counters holding the smallest count, so that a flood's adds
  // need no scan. Every kind of add changes that set: new addresses (unit and weighted), hits
  // on counters inside it and above it, clears. After each add the counter replaced next must
  // still be a smallest one and the counts must add up.
  std::mt19937_64 rng(53);
  std::vector<IpAddress> heavy;
  heavy.reserve(5);
  for (int i = 0; i < 5; ++i) heavy.push_back(random_v4(rng));
  std::vector<IpAddress> recent;
  Summary summary;
  Truth truth;
  std::uniform_int_distribution<int> kind(0, 99);
  for (int i = 0; i < 30'000; ++i) {
    const int k = kind(rng);
    IpAddress a;
    if (k < 60 || recent.empty()) {
      a = random_v4(rng);
      recent.push_back(a);
      if (recent.size() > 24) recent.erase(recent.begin());
    } else if (k < 80) {
      a = recent[static_cast<std::size_t>(k) % recent.size()];  // likely in or near the run
    } else {
      a = heavy[static_cast<std::size_t>(k) % heavy.size()];
    }
    const std::uint32_t weight = k % 7 == 0 ? 1 + static_cast<std::uint32_t>(k % 3) : 1;
    summary.add(a, weight);
    truth[a] += weight;
    const auto top = top_of(summary);
    std::uint64_t counted = 0;
    for (const auto& entry : top) counted += entry.count;
    if (top.size() == Summary::kCapacity) {
      ASSERT_EQ(summary.min_count(), top.back().count) << "after add " << i;
      ASSERT_EQ(counted, summary.total()) << "after add " << i;
    }
    if (i % 5'000 == 4'999) {
      SCOPED_TRACE(i);
      expect_guarantees(summary, truth);
    }
    if (i % 9'000 == 8'999) {
      summary.clear();
      truth.clear();
    }
  }
}

TEST(SpaceSaving, NewCounterBelowTheSmallestWhileFilling) {
  // Before the summary is full a new address may start below every counter; the set of
  // smallest counters is worked out when it fills, not carried over from before.
  std::mt19937_64 rng(59);
  std::vector<IpAddress> a;
  for (std::size_t i = 0; i < Summary::kCapacity; ++i) a.push_back(random_v4(rng));
  Summary summary;
  summary.add(a[0], 3);
  summary.add(a[1], 3);
  summary.add(a[2], 3);
  summary.add(a[0]);     // 3 -> 4 past the two other 3s
  summary.add(a[3], 1);  // below them all
  summary.add(a[3]);     // 1 -> 2: still the smallest
  for (std::size_t i = 4; i < Summary::kCapacity; ++i) summary.add(a[i], 10);
  const auto top = top_of(summary);
  ASSERT_EQ(top.size(), Summary::kCapacity);
  EXPECT_EQ(top.back(), (HeavySource{a[3], 2, 0}));
  EXPECT_EQ(summary.min_count(), 2u);
  summary.add(random_v4(rng));  // takes over a[3]'s counter, the smallest
  EXPECT_EQ(summary.min_count(), 3u);
}

TEST(SpaceSaving, FingerprintCollisionsKeepAddressesApart) {
  // Birthday search for two IPv6 addresses with the same 32-bit fingerprint (~80 k tries;
  // IPv4 addresses cannot collide, their fingerprint is a bijection of the 32 address bits).
  std::mt19937_64 rng(47);
  std::unordered_map<std::uint32_t, IpAddress> seen;
  IpAddress first;
  IpAddress second;
  bool found = false;
  for (int tries = 0; tries < 1'000'000 && !found; ++tries) {
    const IpAddress a = random_v6(rng);
    const auto [it, inserted] = seen.emplace(Summary::fingerprint(a), a);
    if (!inserted && it->second != a) {
      first = it->second;
      second = a;
      found = true;
    }
  }
  ASSERT_TRUE(found);
  Summary summary;
  summary.add(first, 7);
  summary.add(second, 2);
  summary.add(first);
  const std::vector<HeavySource> expected{{first, 8, 0}, {second, 2, 0}};
  EXPECT_EQ(top_of(summary), expected);
}

TEST(SpaceSaving, MergeKeepsTheGuarantees) {
  // Five sub-window summaries of one Zipf-plus-flood stream merged in sequence, as the
  // destination table merges its window slots.
  std::mt19937_64 rng(29);
  ZipfStream zipf(rng, 500, 1.1);
  std::array<Summary, 5> windows{};
  Truth truth;
  for (std::size_t w = 0; w < windows.size(); ++w) {
    for (int i = 0; i < 40'000; ++i) {
      const IpAddress a = i % 2 == 0 ? zipf.next(rng) : random_v4(rng);
      windows[w].add(a);
      ++truth[a];
    }
  }
  Summary merged;
  for (const auto& window : windows) merged.merge_from(window);
  expect_guarantees(merged, truth, /*merged=*/true);
  // Zipf rank 1 carries ~1/7 of its half of the stream: far above N/K, so it must lead.
  EXPECT_EQ(top_of(merged).front().address, zipf.keys.front());
}

TEST(SpaceSaving, MergeOfSummariesThatFitIsExact) {
  const IpAddress a = *IpAddress::parse("198.51.100.1");
  const IpAddress b = *IpAddress::parse("2001:db8::2");
  const IpAddress c = *IpAddress::parse("203.0.113.3");
  Summary left;
  Summary right;
  left.add(a, 5);
  left.add(b, 2);
  right.add(b, 4);
  right.add(c, 1);
  left.merge_from(right);
  const std::vector<HeavySource> expected{{b, 6, 0}, {a, 5, 0}, {c, 1, 0}};
  EXPECT_EQ(top_of(left), expected);
  EXPECT_EQ(left.total(), 12u);

  left.merge_from(left);  // self-merge doubles every counter
  const std::vector<HeavySource> doubled{{b, 12, 0}, {a, 10, 0}, {c, 2, 0}};
  EXPECT_EQ(top_of(left), doubled);
  EXPECT_EQ(left.total(), 24u);

  Summary empty;
  empty.merge_from(right);
  EXPECT_EQ(top_of(empty), top_of(right));
}

TEST(SpaceSaving, MergeCountsWhatTheOtherSideMayHaveEvicted) {
  // `target` sends 50 SYNs in the first window but is pushed out there by 16 busier sources;
  // in the second window it is the heaviest. The merged count must still cover all 550.
  const IpAddress target = *IpAddress::parse("203.0.113.50");
  Summary first;
  Summary second;
  Truth truth;
  first.add(target, 50);
  truth[target] += 50;
  for (int round = 0; round < 100; ++round) {
    for (std::uint32_t i = 0; i < Summary::kCapacity; ++i) {
      first.add(IpAddress::from_v4(0x0a000000u + i));
      ++truth[IpAddress::from_v4(0x0a000000u + i)];
    }
  }
  second.add(target, 500);
  truth[target] += 500;
  const std::uint64_t first_min = first.min_count();
  ASSERT_GE(first_min, 50u);
  for (const auto& entry : top_of(first)) ASSERT_NE(entry.address, target);

  Summary merged;
  merged.merge_from(first);
  merged.merge_from(second);
  expect_guarantees(merged, truth, /*merged=*/true);
  const auto top = top_of(merged);
  EXPECT_EQ(top.front(), (HeavySource{target, 500 + first_min, first_min}));

  Summary reversed = second;  // the same merge from the other side
  reversed.merge_from(first);
  expect_guarantees(reversed, truth, /*merged=*/true);
  EXPECT_EQ(top_of(reversed), top);
}

TEST(SpaceSaving, MergeOfFullSummariesPadsWithTheOtherSidesMinimum) {
  // Two disjoint full summaries: an address's count on the other side is unknown but at most
  // that side's minimum, so the minimum is added as count and as error.
  Summary left;
  Summary right;
  for (std::uint32_t i = 0; i < Summary::kCapacity; ++i) {
    left.add(IpAddress::from_v4(0x0a000000u + i), 10);        // minimum 10
    right.add(IpAddress::from_v4(0x0b000000u + i), 100 + i);  // minimum 100
  }
  left.merge_from(right);
  // left's addresses become 10 + 100 = 110 (error 100); right's 100 + i + 10 (error 10). The
  // tie at 110 goes to the smaller error, so right's addresses are kept.
  const auto top = top_of(left);
  ASSERT_EQ(top.size(), Summary::kCapacity);
  for (std::size_t i = 0; i < top.size(); ++i) {
    const auto index = static_cast<std::uint32_t>(Summary::kCapacity - 1 - i);
    EXPECT_EQ(top[i], (HeavySource{IpAddress::from_v4(0x0b000000u + index), 110u + index, 10u}));
  }
  EXPECT_EQ(left.min_count(), 110u);
  EXPECT_EQ(left.total(), 16u * 10u + 16u * 100u + 120u);
}

TEST(SpaceSaving, ClearEmptiesTheSummary) {
  std::mt19937_64 rng(31);
  Summary summary;
  for (int i = 0; i < 1'000; ++i) summary.add(random_v4(rng));
  ASSERT_EQ(summary.size(), Summary::kCapacity);
  // An address that sat in a counter before clear() must not be found in its stale slot.
  const IpAddress a = top_of(summary).back().address;
  summary.clear();
  EXPECT_TRUE(summary.empty());
  EXPECT_EQ(summary.total(), 0u);
  EXPECT_EQ(summary.min_count(), 0u);
  EXPECT_TRUE(top_of(summary).empty());
  summary.add(a, 3);
  const std::vector<HeavySource> expected{{a, 3, 0}};
  EXPECT_EQ(top_of(summary), expected);

  std::memset(static_cast<void*>(&summary), 0, sizeof summary);  // the pool's way to clear
  EXPECT_TRUE(summary.empty());
  EXPECT_TRUE(top_of(summary).empty());
}

// ---------------------------------------------------------------------------------------------
// Source entropy

// One window's sketches fed alongside the exact counts.
struct Window {
  SourceHll distinct;
  Summary heavy;
  Truth truth;
  std::uint64_t syns = 0;

  void add(const IpAddress& a) {
    distinct.add_hash(SourceHll::hash_address(a));
    heavy.add(a);
    ++truth[a];
    ++syns;
  }
  double estimated_entropy() const {
    std::array<HeavySource, Summary::kCapacity> top{};
    const std::size_t found = heavy.top(top);
    return normalized_source_entropy(std::span<const HeavySource>(top.data(), found), syns,
                                     distinct.estimate());
  }
  double exact_entropy() const {
    const auto n = static_cast<double>(syns);
    double h = 0;
    for (const auto& [address, count] : truth) {
      const double p = static_cast<double>(count) / n;
      h -= p * std::log(p);
    }
    return h / std::log(n);
  }
};

TEST(SourceEntropy, OneSourceIsZero) {
  Window window;
  for (int i = 0; i < 1'000; ++i) window.add(*IpAddress::parse("198.51.100.77"));
  EXPECT_NEAR(window.estimated_entropy(), 0.0, 1e-12);
}

TEST(SourceEntropy, AllDistinctSourcesIsNearOne) {
  std::mt19937_64 rng(37);
  Window window;
  for (int i = 0; i < 100'000; ++i) window.add(random_v4(rng));
  EXPECT_GT(window.exact_entropy(), 0.999);
  EXPECT_NEAR(window.estimated_entropy(), 1.0, 0.01);
}

TEST(SourceEntropy, FiveEqualHeavySourcesIsLow) {
  std::mt19937_64 rng(41);
  std::array<IpAddress, 5> sources{};
  for (auto& s : sources) s = random_v6(rng);
  std::uniform_int_distribution<std::size_t> pick(0, sources.size() - 1);
  Window window;
  for (int i = 0; i < 100'000; ++i) window.add(sources[pick(rng)]);
  const double exact = window.exact_entropy();
  EXPECT_NEAR(exact, std::log(5.0) / std::log(100'000.0), 0.001);
  const double estimate = window.estimated_entropy();
  EXPECT_NEAR(estimate, exact, 0.05);
  EXPECT_LT(estimate, 0.2);
}

TEST(SourceEntropy, HalfFromThreeSourcesHalfRandomIsNearExact) {
  std::mt19937_64 rng(43);
  const std::array<IpAddress, 3> heavy{random_v4(rng), random_v4(rng), random_v6(rng)};
  std::bernoulli_distribution from_heavy(0.5);
  std::discrete_distribution<std::size_t> which({0.5, 0.3, 0.2});
  Window window;
  for (int i = 0; i < 100'000; ++i) {
    window.add(from_heavy(rng) ? heavy[which(rng)] : random_v4(rng));
  }
  const double exact = window.exact_entropy();
  const double estimate = window.estimated_entropy();
  EXPECT_NEAR(estimate, exact, 0.1);
  EXPECT_GT(exact, 0.4);  // really a mix: neither end of the scale
  EXPECT_LT(exact, 0.8);
}

TEST(SourceEntropy, RemainderIsNeverSpreadThinnerThanOneSynPerSource) {
  // Half of 1000 SYNs from one source, the other 500 from 500 sources, but the distinct
  // estimate says 1000: spreading the rest over 999 sources would claim 0.60 instead of 0.55.
  const std::array<HeavySource, 1> heavy{HeavySource{*IpAddress::parse("192.0.2.1"), 500, 0}};
  const double exact = (0.5 * std::log(2.0) + 0.5 * std::log(1'000.0)) / std::log(1'000.0);
  EXPECT_NEAR(normalized_source_entropy(heavy, 1'000, 1'000.0), exact, 1e-12);
  EXPECT_NEAR(normalized_source_entropy(heavy, 1'000, 501.0), exact, 1e-12);
  // Fewer distinct sources than SYNs left: the even spread over D - k sources is used as is.
  const double over_100 = (0.5 * std::log(2.0) + 0.5 * std::log(100 / 0.5)) / std::log(1'000.0);
  EXPECT_NEAR(normalized_source_entropy(heavy, 1'000, 101.0), over_100, 1e-12);
}

TEST(SourceEntropy, DegenerateInputs) {
  const std::array<HeavySource, 1> one{HeavySource{*IpAddress::parse("192.0.2.1"), 1, 0}};
  EXPECT_EQ(normalized_source_entropy(one, 1, 1.0), 0.0);
  EXPECT_EQ(normalized_source_entropy({}, 0, 0.0), 0.0);
  // No heavy sources, every SYN from a distinct source: the even spread is exact.
  EXPECT_NEAR(normalized_source_entropy({}, 1'000, 1'000.0), 1.0, 1e-12);
  // A distinct estimate above N is capped at the SYNs available; NaN is treated as unknown.
  EXPECT_NEAR(normalized_source_entropy({}, 1'000, 1'100.0), 1.0, 1e-12);
  EXPECT_EQ(normalized_source_entropy({}, 1'000, std::nan("")), 0.0);
  // Counts above N cannot produce a negative remainder or a result outside [0, 1].
  const std::array<HeavySource, 2> inconsistent{
      HeavySource{*IpAddress::parse("192.0.2.1"), 900, 0},
      HeavySource{*IpAddress::parse("192.0.2.2"), 900, 0}};
  const double clamped = normalized_source_entropy(inconsistent, 1'000, 2.0);
  EXPECT_GE(clamped, 0.0);
  EXPECT_LE(clamped, 1.0);
}

}  // namespace
}  // namespace synwatch
