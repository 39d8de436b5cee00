#include "pg/boundary/jsonb_build.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"

extern "C" {
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
}

#include <cmath>
#include <deque>
#include <string>
#include <vector>

namespace celaest::pg {

namespace {

enum class Op : uint8_t { BeginObject, EndObject, BeginArray, EndArray, Key, String, Integer, Number, True, False, Null };

// One step of pushJsonbValue, flattened on the C++ side first: the guarded part is a plain
// loop over PODs (a PostgreSQL error may not unwind through C++ destructors).
struct Token {
  Op op;
  bool element;  // a scalar inside an array (WJB_ELEM), else an object's value (WJB_VALUE)
  const char* text;
  size_t length;
  int64_t integer;  // Op::Integer
};

// Strict UTF-8 (what nlohmann's dump() accepts), and no NUL (jsonb_in refuses \u0000).
bool storable(const std::string& text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  for (size_t i = 0; i < size;) {
    const unsigned char lead = bytes[i];
    if (lead == 0) return false;
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t extra = 0;
    uint32_t code = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
      extra = 1;
      code = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      extra = 2;
      code = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      extra = 3;
      code = lead & 0x07;
    } else {
      return false;
    }
    if (i + extra >= size) return false;  // truncated sequence
    for (size_t k = 1; k <= extra; ++k) {
      if ((bytes[i + k] & 0xC0) != 0x80) return false;
      code = (code << 6) | (bytes[i + k] & 0x3F);
    }
    if ((extra == 2 && (code < 0x800 || (code >= 0xD800 && code <= 0xDFFF))) || (extra == 3 && (code < 0x10000 || code > 0x10FFFF)))
      return false;
    i += extra + 1;
  }
  return true;
}

class Flattener {
 public:
  Flattener() { tokens_.reserve(64); }
  // false: the document must take the text path.
  bool flatten(const nlohmann::json& value, bool element) {
    using Type = nlohmann::json::value_t;
    switch (value.type()) {
      case Type::object:
        tokens_.push_back({Op::BeginObject, element, nullptr, 0, 0});
        for (auto it = value.begin(); it != value.end(); ++it) {
          if (!storable(it.key())) return false;
          tokens_.push_back({Op::Key, false, it.key().data(), it.key().size(), 0});
          if (!flatten(it.value(), false)) return false;
        }
        tokens_.push_back({Op::EndObject, element, nullptr, 0, 0});
        return true;
      case Type::array:
        tokens_.push_back({Op::BeginArray, element, nullptr, 0, 0});
        for (const auto& item : value)
          if (!flatten(item, true)) return false;
        tokens_.push_back({Op::EndArray, element, nullptr, 0, 0});
        return true;
      case Type::string: {
        const std::string& text = value.get_ref<const std::string&>();
        if (!storable(text)) return false;
        tokens_.push_back({Op::String, element, text.data(), text.size(), 0});
        return true;
      }
      case Type::number_float:
        if (!std::isfinite(value.get<double>())) {
          tokens_.push_back({Op::Null, element, nullptr, 0, 0});
          return true;
        }
        [[fallthrough]];
      case Type::number_unsigned: {
        if (value.is_number_unsigned() && value.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)) {
          tokens_.push_back({Op::Integer, element, nullptr, 0, static_cast<int64_t>(value.get<uint64_t>())});
          return true;
        }
        const std::string& text = numbers_.emplace_back(value.dump());
        tokens_.push_back({Op::Number, element, text.c_str(), text.size(), 0});
        return true;
      }
      case Type::number_integer:
        tokens_.push_back({Op::Integer, element, nullptr, 0, value.get<int64_t>()});
        return true;
      case Type::boolean:
        tokens_.push_back({value.get<bool>() ? Op::True : Op::False, element, nullptr, 0, 0});
        return true;
      case Type::null:
        tokens_.push_back({Op::Null, element, nullptr, 0, 0});
        return true;
      default:  // binary, discarded: never in our documents
        return false;
    }
  }
  const std::vector<Token>& tokens() const { return tokens_; }

 private:
  std::vector<Token> tokens_;
  std::deque<std::string> numbers_;  // stable addresses for the tokens' text
};

// Plain C on PostgreSQL's side (runs inside pg_guarded).
Datum build(const Token* tokens, size_t count) {
  JsonbParseState* state = nullptr;
  JsonbValue* result = nullptr;
  for (size_t i = 0; i < count; ++i) {
    const Token& token = tokens[i];
    JsonbValue scalar;
    switch (token.op) {
      case Op::BeginObject: result = pushJsonbValue(&state, WJB_BEGIN_OBJECT, nullptr); continue;
      case Op::EndObject: result = pushJsonbValue(&state, WJB_END_OBJECT, nullptr); continue;
      case Op::BeginArray: result = pushJsonbValue(&state, WJB_BEGIN_ARRAY, nullptr); continue;
      case Op::EndArray: result = pushJsonbValue(&state, WJB_END_ARRAY, nullptr); continue;
      case Op::Key:
      case Op::String:
        scalar.type = jbvString;
        scalar.val.string.val = const_cast<char*>(token.text);
        scalar.val.string.len = static_cast<int>(token.length);
        break;
      case Op::Integer:
        scalar.type = jbvNumeric;
        scalar.val.numeric = int64_to_numeric(token.integer);  // what numeric_in makes of its digits
        break;
      case Op::Number:
        scalar.type = jbvNumeric;
        scalar.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(token.text),
                                                                 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
        break;
      case Op::True:
      case Op::False:
        scalar.type = jbvBool;
        scalar.val.boolean = token.op == Op::True;
        break;
      case Op::Null: scalar.type = jbvNull; break;
    }
    const JsonbIteratorToken kind = token.op == Op::Key ? WJB_KEY : token.element ? WJB_ELEM : WJB_VALUE;
    result = pushJsonbValue(&state, kind, &scalar);
  }
  return JsonbPGetDatum(JsonbValueToJsonb(result));
}

}  // namespace

uintptr_t jsonb_from_json(const nlohmann::json& value) {
  if (value.is_object() || value.is_array()) {
    Flattener flattener;
    if (flattener.flatten(value, false)) {
      const std::vector<Token>& tokens = flattener.tokens();
      return pg_guarded([&] { return build(tokens.data(), tokens.size()); });
    }
  }
  return jsonb_datum(value.dump());
}

}  // namespace celaest::pg
