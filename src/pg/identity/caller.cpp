#include "pg/identity/caller.hpp"

namespace celaest::pg {

Caller resolve_caller(SpiSession& spi, const std::optional<std::string>& user_id, const char* function) {
  // Asked every call, not kept per backend: the answer depends on the calling role, its
  // settings and auth.uid() as much as on the profile, and every refusal must be exact.
  // Not read-only: the same snapshot rules as the rest of the call (cache_validity.hpp).
  QueryResult rows =
      spi.run("SELECT c.user_id::text, c.organization_id::text FROM celaest._ai_caller($1::uuid, $2) AS c",
              {user_id, std::string(function)});
  return Caller{rows.at(0, 0).value_or(""), rows.at(0, 1).value_or("")};
}

}  // namespace celaest::pg
