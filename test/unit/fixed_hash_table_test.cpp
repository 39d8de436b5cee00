#include "core/fixed_hash_table.hpp"
#include "core/fixed_text.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace celaest::core {
namespace {

struct Counter {
  std::uint32_t key;
  std::int64_t value;
  std::int64_t last_used;
};

// Hash = key % 8 by default: collisions are chosen by the test, not left to chance.
struct ModuloPolicy {
  using Key = std::uint32_t;
  static inline std::uint64_t modulus = 8;
  static std::uint64_t hash(Key key) { return key % modulus; }
  static bool holds(const Counter& slot, Key key) { return slot.key == key; }
  static void assign(Counter& slot, Key key) { slot.key = key; }
};

using Table = FixedHashTable<Counter, ModuloPolicy>;

class FixedHashTableTest : public ::testing::Test {
 protected:
  explicit FixedHashTableTest(std::size_t capacity = 8) : cells_(capacity), table_(cells_.data(), capacity) {
    ModuloPolicy::modulus = 8;
    std::memset(static_cast<void*>(cells_.data()), 0, cells_.size() * sizeof(Table::Cell));  // as shared memory
  }
  Counter* put(std::uint32_t key, std::int64_t value) {
    Table::Place place = table_.insert(key);
    if (place.slot) place.slot->value = value;
    return place.slot;
  }
  std::int64_t value_of(std::uint32_t key) {
    const Counter* slot = table_.find(key);
    return slot ? slot->value : -1;
  }
  std::vector<Table::Cell> cells_;
  Table table_;
};

TEST_F(FixedHashTableTest, ZeroedCellsAreAnEmptyTable) {
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_EQ(table_.find(3), nullptr);
  EXPECT_FALSE(table_.erase(3));
}

TEST_F(FixedHashTableTest, InsertFindErase) {
  Table::Place first = table_.insert(5);
  ASSERT_NE(first.slot, nullptr);
  EXPECT_EQ(first.outcome, Table::Outcome::Inserted);
  EXPECT_EQ(first.slot->key, 5u);
  EXPECT_EQ(first.slot->value, 0);  // a new entry starts zeroed
  first.slot->value = 42;

  Table::Place again = table_.insert(5);
  EXPECT_EQ(again.outcome, Table::Outcome::Found);
  EXPECT_EQ(again.slot, first.slot);
  EXPECT_EQ(value_of(5), 42);
  EXPECT_EQ(table_.size(), 1u);

  EXPECT_TRUE(table_.erase(5));
  EXPECT_EQ(table_.find(5), nullptr);
  EXPECT_FALSE(table_.erase(5));
  EXPECT_EQ(table_.size(), 0u);
}

TEST_F(FixedHashTableTest, CollisionsProbeToTheNextCells) {
  // 1, 9, 17 share home cell 1; 2 has home 2 but finds it taken by 9.
  put(1, 10);
  put(9, 90);
  put(17, 170);
  put(2, 20);
  EXPECT_EQ(value_of(1), 10);
  EXPECT_EQ(value_of(9), 90);
  EXPECT_EQ(value_of(17), 170);
  EXPECT_EQ(value_of(2), 20);
  EXPECT_EQ(table_.find(25), nullptr);  // same home, not there: stops at the first empty cell
  EXPECT_EQ(table_.size(), 4u);
}

TEST_F(FixedHashTableTest, EraseInTheMiddleOfAChainKeepsTheRestReachable) {
  put(1, 10);    // cell 1
  put(9, 90);    // cell 2
  put(2, 20);    // home 2, cell 3
  put(17, 170);  // home 1, cell 4
  put(4, 40);    // home 4, cell 5
  ASSERT_TRUE(table_.erase(9));
  EXPECT_EQ(table_.find(9), nullptr);
  EXPECT_EQ(value_of(1), 10);
  EXPECT_EQ(value_of(2), 20);
  EXPECT_EQ(value_of(17), 170);
  EXPECT_EQ(value_of(4), 40);
  // No tombstone: the chain closed up, so the cells after it are free again.
  EXPECT_EQ(table_.size(), 4u);
  ASSERT_TRUE(table_.erase(1));
  EXPECT_EQ(value_of(2), 20);
  EXPECT_EQ(value_of(17), 170);
  EXPECT_EQ(value_of(4), 40);
}

TEST_F(FixedHashTableTest, EraseAcrossTheEndOfTheArray) {
  put(6, 60);   // cell 6
  put(14, 140);  // home 6, cell 7
  put(22, 220);  // home 6, wraps to cell 0
  put(7, 70);    // home 7, cell 1
  put(0, 1);     // home 0, cell 2
  ASSERT_TRUE(table_.erase(6));
  EXPECT_EQ(value_of(14), 140);
  EXPECT_EQ(value_of(22), 220);
  EXPECT_EQ(value_of(7), 70);
  EXPECT_EQ(value_of(0), 1);
  ASSERT_TRUE(table_.erase(14));
  EXPECT_EQ(value_of(22), 220);
  EXPECT_EQ(value_of(7), 70);
  EXPECT_EQ(value_of(0), 1);
}

TEST_F(FixedHashTableTest, FullTableRefusesNewKeysAndKeepsTheOld) {
  for (std::uint32_t key = 0; key < 8; ++key) ASSERT_NE(put(key * 3, key), nullptr);
  EXPECT_EQ(table_.size(), 8u);
  Table::Place refused = table_.insert(100);
  EXPECT_EQ(refused.slot, nullptr);
  EXPECT_EQ(refused.outcome, Table::Outcome::Full);
  EXPECT_EQ(table_.find(100), nullptr);  // and a find on a full table ends
  for (std::uint32_t key = 0; key < 8; ++key) EXPECT_EQ(value_of(key * 3), key);
  // An existing key is still found by insert.
  EXPECT_EQ(table_.insert(21).outcome, Table::Outcome::Found);
  // One erase makes room for one.
  ASSERT_TRUE(table_.erase(9));
  EXPECT_EQ(table_.insert(100).outcome, Table::Outcome::Inserted);
  EXPECT_EQ(table_.insert(101).outcome, Table::Outcome::Full);
}

TEST_F(FixedHashTableTest, InsertEvictsStaleEntriesOnItsWay) {
  for (std::uint32_t key = 0; key < 8; ++key) put(key, key)->last_used = key < 4 ? 1 : 100;
  auto stale = [](const Counter& slot) { return slot.last_used < 50; };
  // Full of entries, four of them stale: a new key takes the room of one.
  Table::Place place = table_.insert(8, stale);  // home 0, stale
  ASSERT_NE(place.slot, nullptr);
  EXPECT_EQ(place.outcome, Table::Outcome::Inserted);
  EXPECT_EQ(table_.find(0), nullptr);
  for (std::uint32_t key = 4; key < 8; ++key) EXPECT_EQ(value_of(key), key);
  // A key's own stale entry is returned, not evicted.
  Table::Place own = table_.insert(1, stale);
  EXPECT_EQ(own.outcome, Table::Outcome::Found);
  EXPECT_EQ(own.slot->value, 1);
}

TEST_F(FixedHashTableTest, InsertWithNothingStaleOnAFullTableIsFull) {
  for (std::uint32_t key = 0; key < 8; ++key) put(key, key)->last_used = 100;
  EXPECT_EQ(table_.insert(8, [](const Counter& slot) { return slot.last_used < 50; }).outcome,
            Table::Outcome::Full);
  EXPECT_EQ(table_.size(), 8u);
}

TEST_F(FixedHashTableTest, EvictRemovesEveryStaleEntryAndKeepsChains) {
  // One long chain around the end: 6, 14, 22, 30 (home 6) and 7 (home 7).
  for (std::uint32_t key : {6u, 14u, 22u, 30u, 7u, 3u}) put(key, key)->last_used = (key == 14 || key == 30) ? 1 : 100;
  EXPECT_EQ(table_.evict([](const Counter& slot) { return slot.last_used < 50; }), 2u);
  EXPECT_EQ(table_.size(), 4u);
  EXPECT_EQ(table_.find(14), nullptr);
  EXPECT_EQ(table_.find(30), nullptr);
  for (std::uint32_t key : {6u, 22u, 7u, 3u}) EXPECT_EQ(value_of(key), key);
}

TEST(FixedHashTable, ZeroCapacityIsAlwaysFull) {
  Table table(nullptr, 0);
  EXPECT_EQ(table.insert(1).outcome, Table::Outcome::Full);
  EXPECT_EQ(table.find(1), nullptr);
  EXPECT_FALSE(table.erase(1));
}

// Random inserts, erases, evictions and finds against std::unordered_map, with a hash that
// collides often (few distinct homes) so that chains are long and wrap around.
TEST(FixedHashTable, BehavesLikeAnUnorderedMapUpToItsCapacity) {
  constexpr std::size_t kCapacity = 61;
  for (std::uint64_t modulus : {7u, 61u, 1000u}) {
    ModuloPolicy::modulus = modulus;
    std::vector<Table::Cell> cells(kCapacity);
    std::memset(static_cast<void*>(cells.data()), 0, cells.size() * sizeof cells[0]);
    Table table(cells.data(), kCapacity);
    std::unordered_map<std::uint32_t, std::int64_t> model;
    std::mt19937 random(20261207u + static_cast<unsigned>(modulus));
    std::uniform_int_distribution<std::uint32_t> key_of(0, 150);
    std::uniform_int_distribution<int> operation(0, 99);
    for (int step = 0; step < 200000; ++step) {
      const std::uint32_t key = key_of(random);
      const int op = operation(random);
      if (op < 45) {
        auto place = table.insert(key);
        if (model.count(key)) {
          ASSERT_EQ(place.outcome, Table::Outcome::Found);
        } else if (model.size() == kCapacity) {
          ASSERT_EQ(place.outcome, Table::Outcome::Full);
          continue;
        } else {
          ASSERT_EQ(place.outcome, Table::Outcome::Inserted);
          model[key] = 0;
        }
        place.slot->value = step;
        model[key] = step;
      } else if (op < 80) {
        ASSERT_EQ(table.erase(key), model.erase(key) == 1) << step;
      } else if (op < 82) {
        // Evict the entries with an odd value.
        auto odd = [](const Counter& slot) { return slot.value % 2 != 0; };
        std::size_t expected = 0;
        for (auto it = model.begin(); it != model.end();) {
          if (it->second % 2 != 0) {
            it = model.erase(it);
            ++expected;
          } else {
            ++it;
          }
        }
        ASSERT_EQ(table.evict(odd), expected) << step;
      } else {
        const Counter* slot = table.find(key);
        auto found = model.find(key);
        ASSERT_EQ(slot != nullptr, found != model.end()) << step;
        if (slot) {
          ASSERT_EQ(slot->value, found->second) << step;
        }
      }
      if (step % 1000 == 0) {
        ASSERT_EQ(table.size(), model.size());
        for (const auto& [k, v] : model) {
          const Counter* slot = table.find(k);
          ASSERT_NE(slot, nullptr) << k;
          ASSERT_EQ(slot->value, v);
        }
      }
    }
  }
  ModuloPolicy::modulus = 8;
}

TEST(FixedText, KeepsCutsAndCompares) {
  FixedText<8> text{};
  EXPECT_TRUE(text.empty());
  EXPECT_EQ(text.view(), "");
  text.assign("abc");
  EXPECT_EQ(text, "abc");
  EXPECT_NE(text, "abcd");
  text.assign("abcdefghij");
  EXPECT_EQ(text.view(), "abcdefg");  // Capacity - 1 bytes, then the NUL
  EXPECT_EQ(std::strlen(text.c_str()), 7u);
  text.assign("x");
  EXPECT_EQ(text.view(), "x");  // nothing of the longer text is left behind
  EXPECT_EQ(text.bytes[2], '\0');
}

TEST(StableHash, IsFnv1a) {
  EXPECT_EQ(stable_hash(""), 14695981039346656037ull);
  EXPECT_EQ(stable_hash("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_NE(stable_hash("key-1"), stable_hash("key-2"));
}

}  // namespace
}  // namespace celaest::core
