// A jsonb value built straight from a nlohmann::json document, without printing it and parsing
// the text again (jsonb_in): an AI call's result is returned as jsonb on every call, and
// printing plus parsing cost as much as building its whole answer.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>

namespace celaest::pg {

// The same value as jsonb_in(value.dump()) gives, as a Datum: numbers are read by numeric_in
// from the text dump() prints for them (a non-finite float is null, as dump() prints it). A
// document that dump() or jsonb_in would refuse (a string that is not UTF-8, or holds a NUL)
// and a bare scalar go through that text path, so they fail, or succeed, as they always did.
uintptr_t jsonb_from_json(const nlohmann::json& value);

}  // namespace celaest::pg
