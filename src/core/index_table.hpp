// A growable open-addressing hash table from small keys to dense indexes (0, 1, 2, ...), for
// the ROI scan's per-task look-ups (organization, prompt, group), where std::unordered_map's
// node allocation and pointer chasing would cost more than the rest of the work on a row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace celaest::core {

// A 64-bit finalizer (splitmix64's): spreads any key bits over the whole hash.
inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// Key: trivially copyable and comparable with ==; Hash: a functor giving its 64-bit hash.
template <typename Key, typename Hash>
class IndexTable {
 public:
  IndexTable() { cells_.resize(16); }

  std::optional<std::uint32_t> find(const Key& key) const {
    const std::size_t mask = cells_.size() - 1;
    for (std::size_t i = Hash{}(key) & mask;; i = (i + 1) & mask) {
      const Cell& cell = cells_[i];
      if (!cell.used) return std::nullopt;
      if (cell.key == key) return cell.index;
    }
  }

  // The index of the key; a new key gets the next index (size() before the call).
  std::uint32_t find_or_add(const Key& key) {
    if ((size_ + 1) * 2 > cells_.size()) grow();
    const std::size_t mask = cells_.size() - 1;
    for (std::size_t i = Hash{}(key) & mask;; i = (i + 1) & mask) {
      Cell& cell = cells_[i];
      if (!cell.used) {
        cell = Cell{key, static_cast<std::uint32_t>(size_), true};
        return static_cast<std::uint32_t>(size_++);
      }
      if (cell.key == key) return cell.index;
    }
  }

  std::size_t size() const noexcept { return size_; }

 private:
  struct Cell {
    Key key;
    std::uint32_t index;
    bool used;
  };

  void grow() {
    std::vector<Cell> old(cells_.size() * 2);
    old.swap(cells_);
    const std::size_t mask = cells_.size() - 1;
    for (const Cell& cell : old) {
      if (!cell.used) continue;
      std::size_t i = Hash{}(cell.key) & mask;
      while (cells_[i].used) i = (i + 1) & mask;
      cells_[i] = cell;
    }
  }

  std::vector<Cell> cells_;
  std::size_t size_ = 0;
};

}  // namespace celaest::core

#include "core/cpp_only.hpp"
