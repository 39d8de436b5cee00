// Arguments in and results out of SQL functions, as C++ values. Each conversion that can
// ERROR (detoasting, input functions) goes through pg_guarded.
#pragma once

#include "pg/boundary/boundary.hpp"

#include <optional>
#include <string>

namespace celaest::pg {

std::optional<std::string> text_arg(FunctionCallInfo fcinfo, int index);     // text, varchar
std::optional<std::string> uuid_arg(FunctionCallInfo fcinfo, int index);     // canonical text form
std::optional<std::string> jsonb_arg(FunctionCallInfo fcinfo, int index);    // JSON text
std::optional<std::string> enum_arg(FunctionCallInfo fcinfo, int index);     // enum label
std::optional<long long> int_arg(FunctionCallInfo fcinfo, int index);        // int2/int4/int8 by declared type
std::optional<std::string> interval_arg(FunctionCallInfo fcinfo, int index); // text form

Datum text_datum(const std::string& value);
Datum jsonb_datum(const std::string& json_text);
Datum uuid_datum(const std::string& uuid_text);

}  // namespace celaest::pg
