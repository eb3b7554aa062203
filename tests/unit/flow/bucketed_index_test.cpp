#include "flow/bucketed_index.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

namespace synwatch {
namespace {

// The container an index serves: keys by value (slot of the vector), the index holding values.
// The hash is given per key so that tests can choose homes and tags.
template <unsigned Slots = 15>
struct Keyed {
  explicit Keyed(std::size_t capacity) : index(capacity), keys(capacity, kNoKey) {}

  static constexpr std::uint64_t kNoKey = UINT64_MAX;
  using Index = BucketedIndex<Slots>;
  Index index;
  std::vector<std::uint64_t> keys;
  std::size_t key_checks = 0;  // calls of is_key: values whose tag matched

  [[nodiscard]] std::size_t find(std::uint64_t key, std::uint64_t hash) {
    return index.find(index.token(hash), [&](std::uint32_t value) {
      ++key_checks;
      return keys[value] == key;
    });
  }
  std::size_t insert(std::uint64_t key, std::uint64_t hash, std::uint32_t value) {
    const std::size_t slot = index.insert(index.token(hash), value);
    if (slot != Index::kNoSlot) keys[value] = key;
    return slot;
  }
  void erase(std::uint64_t key, std::uint64_t hash) {
    const std::size_t slot = find(key, hash);
    ASSERT_NE(slot, Index::kNoSlot);
    keys[index.value_at(slot)] = kNoKey;
    index.erase(slot, index.token(hash).home);
  }
};

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

// A hash whose home bucket is 0 (top 32 bits zero) and whose tag is `tag`.
std::uint64_t home_zero(std::uint32_t tag) {
  return tag;
}

constexpr auto kNoSlot = BucketedIndex<>::kNoSlot;

TEST(BucketedIndex, InsertFindErase) {
  Keyed<> t(100);
  for (std::uint32_t v = 0; v < 100; ++v) ASSERT_NE(t.insert(1000 + v, mix(v), v), kNoSlot);
  EXPECT_EQ(t.index.size(), 100u);
  for (std::uint32_t v = 0; v < 100; ++v) {
    const std::size_t slot = t.find(1000 + v, mix(v));
    ASSERT_NE(slot, kNoSlot) << v;
    EXPECT_EQ(t.index.value_at(slot), v);
  }
  EXPECT_EQ(t.find(5000, mix(5000)), kNoSlot);
  for (std::uint32_t v = 0; v < 100; v += 2) t.erase(1000 + v, mix(v));
  EXPECT_EQ(t.index.size(), 50u);
  for (std::uint32_t v = 0; v < 100; ++v) {
    EXPECT_EQ(t.find(1000 + v, mix(v)) == kNoSlot, v % 2 == 0) << v;
  }
}

TEST(BucketedIndex, SlotOfFindsAValueFromItsHome) {
  Keyed<2> t(20);
  for (std::uint32_t v = 0; v < 20; ++v) t.insert(v, home_zero(v), v);  // a long chain from 0
  for (std::uint32_t v = 0; v < 20; ++v) {
    const std::size_t slot = t.index.slot_of(v, t.index.token(home_zero(v)).home);
    EXPECT_EQ(slot, t.find(v, home_zero(v)));
    EXPECT_EQ(t.index.value_at(slot), v);
  }
}

// The tag filters: only values whose tag matches are asked about, and a full match of home and
// tag (a tag collision) is settled by the key.
TEST(BucketedIndex, TagsFilterAndCollisionsAreSettledByTheKey) {
  Keyed<> t(64);
  for (std::uint32_t v = 0; v < 8; ++v) t.insert(v, home_zero(v + 1), v);  // distinct tags
  t.key_checks = 0;
  EXPECT_EQ(t.find(100, home_zero(100)), kNoSlot);  // same home, a tag nobody has
  EXPECT_EQ(t.key_checks, 0u);
  EXPECT_NE(t.find(3, home_zero(4)), kNoSlot);
  EXPECT_EQ(t.key_checks, 1u);

  // Three more keys with exactly the hash of value 3: same home, same tag.
  for (std::uint32_t v = 8; v < 11; ++v) t.insert(100 + v, home_zero(4), v);
  for (std::uint32_t v = 8; v < 11; ++v) {
    const std::size_t slot = t.find(100 + v, home_zero(4));
    ASSERT_NE(slot, kNoSlot);
    EXPECT_EQ(t.index.value_at(slot), v);
  }
  EXPECT_EQ(t.index.value_at(t.find(3, home_zero(4))), 3u);
  t.key_checks = 0;
  EXPECT_EQ(t.find(999, home_zero(4)), kNoSlot);
  EXPECT_EQ(t.key_checks, 4u);  // every colliding value asked, none of the others
  t.erase(3, home_zero(4));
  EXPECT_EQ(t.find(3, home_zero(4)), kNoSlot);
  EXPECT_NE(t.find(109, home_zero(4)), kNoSlot);
}

// Keys pushed past full buckets count on each bucket they passed; erasing them takes them off
// again, so searches that walked the chain stop at the home bucket once more.
TEST(BucketedIndex, OverflowCountsGrowWithChainsAndShrinkOnErase) {
  Keyed<2> t(40);
  const auto token = t.index.token(home_zero(0));
  EXPECT_EQ(t.index.probe_length(token), 1u);
  t.insert(0, home_zero(1), 0);
  t.insert(1, home_zero(2), 1);
  EXPECT_EQ(t.index.overflowing_buckets(), 0u);  // home bucket full, nothing past it yet
  EXPECT_EQ(t.index.probe_length(token), 1u);
  for (std::uint32_t v = 2; v < 8; ++v) t.insert(v, home_zero(v + 1), v);  // into buckets 1..3
  EXPECT_EQ(t.index.overflowing_buckets(), 3u);
  EXPECT_EQ(t.index.probe_length(token), 4u);
  for (std::uint32_t v = 0; v < 8; ++v) EXPECT_NE(t.find(v, home_zero(v + 1)), kNoSlot) << v;

  // Erasing keys at home frees slots but moves nobody: the chain is still walked for the
  // overflowed keys, which stay where they are and are still found.
  t.erase(0, home_zero(1));
  t.erase(1, home_zero(2));
  EXPECT_EQ(t.index.probe_length(token), 4u);
  for (std::uint32_t v = 2; v < 8; ++v) EXPECT_NE(t.find(v, home_zero(v + 1)), kNoSlot) << v;

  // The furthest keys leave first: the chain shortens a bucket at a time.
  t.erase(7, home_zero(8));
  t.erase(6, home_zero(7));
  EXPECT_EQ(t.index.probe_length(token), 3u);
  EXPECT_EQ(t.index.overflowing_buckets(), 2u);
  for (std::uint32_t v = 2; v < 6; ++v) t.erase(v, home_zero(v + 1));
  EXPECT_EQ(t.index.overflowing_buckets(), 0u);
  EXPECT_EQ(t.index.probe_length(token), 1u);
  EXPECT_EQ(t.index.size(), 0u);
}

// A chain from the last bucket wraps around to the first.
TEST(BucketedIndex, ChainsWrapAroundTheEnd) {
  Keyed<1> t(8);
  const std::uint64_t last = ~std::uint64_t{0} << 32;  // multiply-shift: the last bucket
  const auto token = t.index.token(last);
  ASSERT_EQ(token.home, t.index.bucket_count() - 1);
  for (std::uint32_t v = 0; v < 3; ++v) t.insert(v, last | v, v);
  EXPECT_EQ(t.index.probe_length(token), 3u);
  for (std::uint32_t v = 0; v < 3; ++v) EXPECT_NE(t.find(v, last | v), kNoSlot) << v;
  for (std::uint32_t v = 0; v < 3; ++v) t.erase(v, last | v);
  EXPECT_EQ(t.index.overflowing_buckets(), 0u);
}

TEST(BucketedIndex, RefusesToInsertWhenFull) {
  for (const std::size_t capacity : {1, 2, 15, 16, 100}) {
    Keyed<> t(capacity);
    for (std::uint32_t v = 0; v < capacity; ++v) {
      ASSERT_NE(t.insert(v, home_zero(v), v), kNoSlot) << capacity;  // all into one chain
    }
    EXPECT_EQ(t.insert(capacity, mix(capacity), 0), kNoSlot) << capacity;
    EXPECT_EQ(t.index.size(), capacity);
    t.erase(0, home_zero(0));
    EXPECT_NE(t.insert(capacity, mix(capacity), 0), kNoSlot) << capacity;
    EXPECT_NE(t.find(capacity, mix(capacity)), kNoSlot) << capacity;
  }
}

// A token worked out once (and prefetched with) finds what a token worked out at the lookup
// finds, before and after other keys come and go.
TEST(BucketedIndex, PreparedTokenFindsWhatADirectLookupFinds) {
  Keyed<> t(1000);
  std::vector<BucketedIndex<>::Token> prepared;
  for (std::uint32_t v = 0; v < 1000; ++v) {
    prepared.push_back(t.index.token(mix(v)));
    t.index.prefetch(prepared.back());
  }
  for (std::uint32_t v = 0; v < 1000; v += 2) t.insert(v, mix(v), v);
  for (std::uint32_t v = 0; v < 1000; ++v) {
    const auto is_v = [&](std::uint32_t value) { return t.keys[value] == v; };
    EXPECT_EQ(t.index.find(prepared[v], is_v), t.find(v, mix(v))) << v;
  }
  for (std::uint32_t v = 1; v < 1000; v += 2) {
    ASSERT_NE(t.index.insert(prepared[v], v), kNoSlot);
    t.keys[v] = v;
  }
  for (std::uint32_t v = 0; v < 1000; ++v) {
    const auto is_v = [&](std::uint32_t value) { return t.keys[value] == v; };
    EXPECT_EQ(t.index.find(prepared[v], is_v), t.find(v, mix(v))) << v;
    EXPECT_NE(t.find(v, mix(v)), kNoSlot) << v;
  }
}

// 8 bytes per value at full buckets (one 64-byte bucket more for fewer than 16), fixed by the
// capacity whatever is stored.
TEST(BucketedIndex, MemoryDependsOnTheCapacityOnly) {
  std::vector<std::size_t> capacities{std::size_t{1} << 16, std::size_t{1} << 20, 1'000'003};
  for (std::size_t capacity = 1; capacity <= 2000; ++capacity) capacities.push_back(capacity);
  for (const std::size_t capacity : capacities) {
    const BucketedIndex<> index(capacity);
    EXPECT_LE(index.memory_bytes(), 8 * capacity + (capacity < 16 ? 64 : 0)) << capacity;
    EXPECT_GT(index.bucket_count() * BucketedIndex<>::kSlots, capacity) << capacity;
    EXPECT_EQ(index.memory_bytes(), BucketedIndex<>(capacity).memory_bytes());
  }
  // Fewer slots per bucket: as many slots, in more buckets.
  EXPECT_EQ(BucketedIndex<1>(8000).bucket_count(), 15 * BucketedIndex<>(8000).bucket_count());

  Keyed<> t(1000);
  const std::size_t before = t.index.memory_bytes();
  std::mt19937_64 rng(7);
  for (int op = 0; op < 20'000; ++op) {
    const auto v = static_cast<std::uint32_t>(rng() % 1000);
    if (t.keys[v] == Keyed<>::kNoKey) {
      t.insert(v, mix(v), v);
    } else {
      t.erase(v, mix(v));
    }
  }
  EXPECT_EQ(t.index.memory_bytes(), before);
}

// Random inserts and erases against std::unordered_map, with hashes good and poor (few distinct
// homes, so that chains are long), and buckets of 1, 2 and 15 slots.
template <unsigned Slots>
void expect_matches_a_map(std::uint64_t seed, unsigned home_bits) {
  constexpr std::size_t kCapacity = 200;
  std::mt19937_64 rng(seed);
  Keyed<Slots> t(kCapacity);
  std::unordered_map<std::uint64_t, std::uint32_t> model;  // key -> value
  std::vector<std::uint32_t> free_values;
  for (std::uint32_t v = 0; v < kCapacity; ++v) free_values.push_back(v);
  // Homes from the top `home_bits` bits of a good hash, the rest of the top half zero.
  const auto hash = [&](std::uint64_t key) {
    const std::uint64_t h = mix(key);
    const std::uint64_t top =
        home_bits >= 32 ? h >> 32 : (h >> 32) >> (32 - home_bits) << (32 - home_bits);
    return (top << 32) | (h & 0xffffffffULL);
  };
  std::size_t longest = 0;
  for (int op = 0; op < 50'000; ++op) {
    const std::uint64_t key = rng() % (2 * kCapacity);
    const std::size_t slot = t.find(key, hash(key));
    const auto it = model.find(key);
    ASSERT_EQ(slot == decltype(t)::Index::kNoSlot, it == model.end()) << op;
    if (it != model.end()) {
      ASSERT_EQ(t.index.value_at(slot), it->second);
      if (rng() % 2 == 0) {
        t.erase(key, hash(key));
        free_values.push_back(it->second);
        model.erase(it);
      }
    } else if (!free_values.empty()) {
      const std::uint32_t value = free_values.back();
      free_values.pop_back();
      ASSERT_NE(t.insert(key, hash(key), value), decltype(t)::Index::kNoSlot);
      model.emplace(key, value);
    } else {
      ASSERT_EQ(t.insert(key, hash(key), 0), decltype(t)::Index::kNoSlot);
    }
    ASSERT_EQ(t.index.size(), model.size());
    longest = std::max(longest, t.index.probe_length(t.index.token(hash(key))));
  }
  if (Slots < 15 || home_bits < 4) {
    EXPECT_GT(longest, 2u);
  }
  for (const auto& [key, value] : model) t.erase(key, hash(key));
  EXPECT_EQ(t.index.size(), 0u);
  EXPECT_EQ(t.index.overflowing_buckets(), 0u);
}

TEST(BucketedIndex, MatchesAMapWithOneSlotBuckets) {
  expect_matches_a_map<1>(1, 32);
  expect_matches_a_map<1>(2, 3);
}
TEST(BucketedIndex, MatchesAMapWithTwoSlotBuckets) {
  expect_matches_a_map<2>(3, 32);
  expect_matches_a_map<2>(4, 3);
}
TEST(BucketedIndex, MatchesAMapWithFullBuckets) {
  expect_matches_a_map<15>(5, 32);
  expect_matches_a_map<15>(6, 1);
}

}  // namespace
}  // namespace synwatch
