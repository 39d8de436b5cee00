// The byte format the ROI tallies, day states and runs travel in (between parallel workers,
// in celaest._roi_days, between a run's steps): values written as their bytes, vectors as a
// count and their elements. Same binary on both ends; a reader refuses bytes that run short.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace celaest::core {

namespace roi_bytes {

class Writer {
 public:
  explicit Writer(std::vector<unsigned char>* out) : out_(out) {}
  template <typename T>
  void put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>, "written as bytes");
    const auto* bytes = reinterpret_cast<const unsigned char*>(&value);
    out_->insert(out_->end(), bytes, bytes + sizeof value);
  }
  template <typename T>
  void put_all(const std::vector<T>& values) {
    put<std::uint64_t>(values.size());
    const auto* bytes = reinterpret_cast<const unsigned char*>(values.data());
    out_->insert(out_->end(), bytes, bytes + values.size() * sizeof(T));
  }

 private:
  std::vector<unsigned char>* out_;
};

class Reader {
 public:
  Reader(const unsigned char* data, std::size_t size) : data_(data), left_(size) {}
  template <typename T>
  T get() {
    T value;
    take(&value, sizeof value);
    return value;
  }
  template <typename T>
  std::vector<T> get_all() {
    const auto count = get<std::uint64_t>();
    if (count > left_ / sizeof(T)) throw std::invalid_argument("ROI bytes: truncated");
    std::vector<T> values(count);
    take(values.data(), count * sizeof(T));
    return values;
  }
  // The values a put_all wrote, left where they lie: their first byte and how many there are.
  template <typename T>
  std::pair<const unsigned char*, std::size_t> view_all() {
    const auto count = get<std::uint64_t>();
    if (count > left_ / sizeof(T)) throw std::invalid_argument("ROI bytes: truncated");
    const unsigned char* first = data_;
    data_ += count * sizeof(T);
    left_ -= count * sizeof(T);
    return {first, static_cast<std::size_t>(count)};
  }
  // Appends the values a put_all wrote, straight from the bytes.
  template <typename T>
  void append_all(std::vector<T>& out) {
    const auto count = get<std::uint64_t>();
    if (count > left_ / sizeof(T)) throw std::invalid_argument("ROI bytes: truncated");
    const std::size_t old_size = out.size();
    out.resize(old_size + count);
    take(out.data() + old_size, count * sizeof(T));
  }
  bool done() const noexcept { return left_ == 0; }

 private:
  void take(void* out, std::size_t size) {
    if (size > left_) throw std::invalid_argument("ROI bytes: truncated");
    if (size == 0) return;  // an empty vector's data() may be null
    std::memcpy(out, data_, size);
    data_ += size;
    left_ -= size;
  }
  const unsigned char* data_;
  std::size_t left_;
};

}  // namespace roi_bytes

}  // namespace celaest::core

#include "core/cpp_only.hpp"
