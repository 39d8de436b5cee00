// A jsonb value built straight from C++ values or a nlohmann::json document, without printing
// it and parsing the text again (jsonb_in): an AI call's result is returned as jsonb on every
// call, and printing plus parsing cost as much as building its whole answer.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace celaest::pg {

// The steps of one jsonb document, collected on the C++ side and built in one go. The texts
// given must outlive build(). Each value is what jsonb_in makes of the text nlohmann's dump()
// prints for it (numbers are read by numeric_in from that text; a non-finite float is null).
// A string that dump() or jsonb_in would refuse (not UTF-8, or holding a NUL) makes the
// document unbuildable (buildable() false): the caller takes the text path then, which fails,
// or succeeds, as it always did.
class JsonbBuilder {
 public:
  JsonbBuilder() { tokens_.reserve(64); }
  void begin_object(bool element = false);
  void end_object(bool element = false);
  void begin_array(bool element = false);
  void end_array(bool element = false);
  void key(const std::string& name);
  void key(const char* name);  // a literal, or text that outlives build()
  // Scalars: `element` inside an array, else an object's value (after key()).
  void string(const std::string& value, bool element = false);
  void integer(int64_t value, bool element = false);
  void number(double value, bool element = false);
  void boolean(bool value, bool element = false);
  void null(bool element = false);
  // A whole document (an object's value or an array's element).
  void json(const nlohmann::json& value, bool element = false);

  bool buildable() const { return buildable_; }
  uintptr_t build() const;  // the jsonb Datum; only when buildable()

  // For the implementation's guarded part.
  enum class Op : uint8_t { BeginObject, EndObject, BeginArray, EndArray, Key, String, Integer, Number, True, False, Null };
  struct Token {
    Op op;
    bool element;
    const char* text;
    size_t length;
    int64_t integer;
  };

 private:
  void push(Op op, bool element, const char* text = nullptr, size_t length = 0, int64_t integer = 0) {
    tokens_.push_back({op, element, text, length, integer});
  }
  std::vector<Token> tokens_;
  std::deque<std::string> numbers_;  // stable addresses for the numbers' text
  bool buildable_ = true;
};

// jsonb_in(value.dump()), built directly when it can be (see JsonbBuilder).
uintptr_t jsonb_from_json(const nlohmann::json& value);

}  // namespace celaest::pg
