#include "pg/boundary/jsonb_build.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"

extern "C" {
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
}

#include <cmath>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace celaest::pg {

namespace {

using Op = JsonbBuilder::Op;
using Token = JsonbBuilder::Token;

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

// Plain C on PostgreSQL's side (runs inside pg_guarded).
Datum build_tokens(const Token* tokens, size_t count) {
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

void JsonbBuilder::begin_object(bool element) { push(Op::BeginObject, element); }
void JsonbBuilder::end_object(bool element) { push(Op::EndObject, element); }
void JsonbBuilder::begin_array(bool element) { push(Op::BeginArray, element); }
void JsonbBuilder::end_array(bool element) { push(Op::EndArray, element); }

void JsonbBuilder::key(const std::string& name) {
  if (!storable(name)) buildable_ = false;
  push(Op::Key, false, name.data(), name.size());
}

void JsonbBuilder::key(const char* name) {
  const size_t length = std::strlen(name);
  if (!storable(std::string(name, length))) buildable_ = false;
  push(Op::Key, false, name, length);
}

void JsonbBuilder::string(const std::string& value, bool element) {
  if (!storable(value)) buildable_ = false;
  push(Op::String, element, value.data(), value.size());
}

void JsonbBuilder::integer(int64_t value, bool element) { push(Op::Integer, element, nullptr, 0, value); }

void JsonbBuilder::number(double value, bool element) {
  if (!std::isfinite(value)) return null(element);
  const std::string& text = numbers_.emplace_back(nlohmann::json(value).dump());
  push(Op::Number, element, text.c_str(), text.size());
}

void JsonbBuilder::boolean(bool value, bool element) { push(value ? Op::True : Op::False, element); }
void JsonbBuilder::null(bool element) { push(Op::Null, element); }

void JsonbBuilder::json(const nlohmann::json& value, bool element) {
  using Type = nlohmann::json::value_t;
  switch (value.type()) {
    case Type::object:
      begin_object(element);
      for (auto it = value.begin(); it != value.end(); ++it) {
        key(it.key());
        json(it.value(), false);
      }
      end_object(element);
      return;
    case Type::array:
      begin_array(element);
      for (const auto& item : value) json(item, true);
      end_array(element);
      return;
    case Type::string: return string(value.get_ref<const std::string&>(), element);
    case Type::number_float: return number(value.get<double>(), element);
    case Type::number_integer: return integer(value.get<int64_t>(), element);
    case Type::number_unsigned:
      if (value.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX))
        return integer(static_cast<int64_t>(value.get<uint64_t>()), element);
      else {
        const std::string& text = numbers_.emplace_back(value.dump());
        return push(Op::Number, element, text.c_str(), text.size());
      }
    case Type::boolean: return boolean(value.get<bool>(), element);
    case Type::null: return null(element);
    default:  // binary, discarded: never in our documents
      buildable_ = false;
      return;
  }
}

uintptr_t JsonbBuilder::build() const {
  return pg_guarded([&] { return build_tokens(tokens_.data(), tokens_.size()); });
}

uintptr_t jsonb_from_json(const nlohmann::json& value) {
  if (value.is_object() || value.is_array()) {
    JsonbBuilder builder;
    builder.json(value);
    if (builder.buildable()) return builder.build();
  }
  return jsonb_datum(value.dump());
}

}  // namespace celaest::pg
