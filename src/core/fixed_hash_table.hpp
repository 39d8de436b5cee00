// A fixed-capacity hash table over an array of cells the caller provides, for state that lives
// in PostgreSQL shared memory: the cells hold no pointers and no std:: containers, the table
// never allocates, and an array whose bytes are all zero is an empty table (what ShmemInitStruct
// memory becomes after a memset). The table object itself is only a view (array + capacity):
// each backend makes one over the same cells, under the lock that guards them.
//
// Open addressing with linear probing. Erase uses backward shift, not tombstones: the later
// members of the probe chain move back into the hole, so every entry stays reachable from its
// home cell without crossing an empty cell, and churn never lengthens the chains.
//
// Full table: insert returns {nullptr, Outcome::Full} and changes nothing; the caller decides
// what a key that cannot be kept means. Entries the caller calls stale (its predicate, e.g.
// "idle for a day") are evicted by insert when they stand in its probe chain, and by evict().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>


namespace celaest::core {

// 64-bit FNV-1a: the same value in every process (std::hash promises no such thing), so every
// backend finds an entry where another put it.
inline std::uint64_t stable_hash(std::string_view bytes, std::uint64_t seed = 14695981039346656037ull) noexcept {
  std::uint64_t hash = seed;
  for (unsigned char byte : bytes) {
    hash ^= byte;
    hash *= 1099511628211ull;
  }
  return hash;
}

// The common policy: entries keyed by one text member (a FixedText), looked up by its text.
// Used as TextKeyPolicy<Entry, &Entry::member>.
template <typename Entry, auto Member>
struct TextKeyPolicy {
  using Key = std::string_view;
  static std::uint64_t hash(Key key) { return stable_hash(key); }
  static bool holds(const Entry& entry, Key key) { return entry.*Member == key; }
  static void assign(Entry& entry, Key key) { (entry.*Member).assign(key); }
};

template <typename Slot>
struct HashCell {
  std::uint64_t hash;  // the key's hash, kept so that moving an entry needs no rehash
  bool occupied;
  Slot slot;
};

// Policy, a struct of static members:
//   using Key = ...;                              // what entries are looked up by
//   static std::uint64_t hash(const Key&);        // the same in every process
//   static bool holds(const Slot&, const Key&);   // the slot is this key's entry
//   static void assign(Slot&, const Key&);        // a zeroed slot becomes this key's entry
template <typename Slot, typename Policy>
class FixedHashTable {
  static_assert(std::is_trivially_copyable_v<Slot>, "a slot must be trivially copyable: it lives in shared memory");

 public:
  using Cell = HashCell<Slot>;
  using Key = typename Policy::Key;
  static_assert(std::is_trivially_copyable_v<Cell>);

  enum class Outcome { Found, Inserted, Full };
  struct Place {
    Slot* slot;  // nullptr when Full
    Outcome outcome;
  };

  FixedHashTable(Cell* cells, std::size_t capacity) noexcept : cells_(cells), capacity_(capacity) {}

  std::size_t capacity() const noexcept { return capacity_; }

  // Entries in use; counts every cell (O(capacity)): for tests and diagnostics.
  std::size_t size() const noexcept {
    std::size_t used = 0;
    for (std::size_t i = 0; i < capacity_; ++i) used += cells_[i].occupied ? 1 : 0;
    return used;
  }

  Slot* find(const Key& key) noexcept { return slot_at(locate(key)); }
  const Slot* find(const Key& key) const noexcept { return slot_at(locate(key)); }

  // The key's entry, made (zeroed, then Policy::assign) when it has none.
  Place insert(const Key& key) noexcept {
    return insert(key, [](const Slot&) { return false; });
  }

  // The same, evicting the stale entries (is_stale(slot) is true) met on the way, so that their
  // cells can be reused. The key's own entry is returned as Found even when stale: the caller
  // knows what to refresh.
  template <typename IsStale>
  Place insert(const Key& key, IsStale&& is_stale) noexcept {
    if (capacity_ == 0) return {nullptr, Outcome::Full};
    const std::uint64_t hash = Policy::hash(key);
    std::size_t index = home(hash);
    for (std::size_t probed = 0; probed < capacity_;) {
      Cell& cell = cells_[index];
      if (!cell.occupied) {
        cell = Cell{};
        cell.hash = hash;
        cell.occupied = true;
        Policy::assign(cell.slot, key);
        return {&cell.slot, Outcome::Inserted};
      }
      if (cell.hash == hash && Policy::holds(cell.slot, key)) return {&cell.slot, Outcome::Found};
      if (is_stale(static_cast<const Slot&>(cell.slot))) {
        remove_at(index);  // a later member of the chain may have moved here: look again
        continue;
      }
      index = next(index);
      ++probed;
    }
    return {nullptr, Outcome::Full};
  }

  bool erase(const Key& key) noexcept {
    const std::size_t index = locate(key);
    if (index == capacity_) return false;
    remove_at(index);
    return true;
  }

  // Removes every stale entry; returns how many.
  template <typename IsStale>
  std::size_t evict(IsStale&& is_stale) noexcept {
    std::size_t removed = 0;
    for (std::size_t index = 0; index < capacity_;) {
      Cell& cell = cells_[index];
      if (cell.occupied && is_stale(static_cast<const Slot&>(cell.slot))) {
        remove_at(index);  // the shift may have moved the next entry of the chain here
        ++removed;
        continue;
      }
      ++index;
    }
    return removed;
  }

 private:
  std::size_t home(std::uint64_t hash) const noexcept { return static_cast<std::size_t>(hash % capacity_); }
  std::size_t next(std::size_t index) const noexcept { return index + 1 == capacity_ ? 0 : index + 1; }
  Slot* slot_at(std::size_t index) const noexcept { return index == capacity_ ? nullptr : &cells_[index].slot; }

  // The index of the key's cell, or capacity_ when it has none.
  std::size_t locate(const Key& key) const noexcept {
    if (capacity_ == 0) return capacity_;
    const std::uint64_t hash = Policy::hash(key);
    std::size_t index = home(hash);
    for (std::size_t probed = 0; probed < capacity_; ++probed, index = next(index)) {
      const Cell& cell = cells_[index];
      if (!cell.occupied) return capacity_;  // the end of the chain
      if (cell.hash == hash && Policy::holds(cell.slot, key)) return index;
    }
    return capacity_;
  }

  // Backward shift: empties the cell, then walks the rest of the chain and moves back each
  // entry whose home is not in the cyclic range (hole, current], i.e. each entry that the
  // hole would otherwise cut off from its home.
  void remove_at(std::size_t hole) noexcept {
    cells_[hole] = Cell{};
    for (std::size_t index = next(hole); cells_[index].occupied; index = next(index)) {
      const std::size_t entry_home = home(cells_[index].hash);
      const bool reachable = hole <= index ? (hole < entry_home && entry_home <= index)
                                           : (hole < entry_home || entry_home <= index);
      if (reachable) continue;
      cells_[hole] = cells_[index];
      cells_[index] = Cell{};
      hole = index;
    }
  }

  Cell* cells_;
  std::size_t capacity_;
};

}  // namespace celaest::core

#include "core/cpp_only.hpp"
