// Who is calling (API.md, "Who is calling, and who may act for whom"): the user an AI call or
// a batch acts for, and that user's organization. The rules are module 84's celaest._ai_caller,
// applied natively over the statement's acting identity (acting_identity.hpp); that SQL function
// runs this same code, so every function applies the same ones.
#pragma once

#include "pg/boundary/spi.hpp"

#include <optional>
#include <string>

namespace celaest::pg {

struct Caller {
  std::string user_id;
  std::string organization_id;
};

// The acting user: a service caller's p_user_id (else celaest.user_id, else auth.uid()); any
// other caller's auth.uid(). 42501 naming `function` for a caller without an access level,
// an impersonation attempt, no user, no live profile or organization, or a role that may not
// run AI calls (viewer). `function_oid` is the SQL function asking (its owner, the extension's
// owner, reads the profile: acting_identity.hpp).
Caller resolve_caller(SpiSession& spi, const std::optional<std::string>& user_id, const char* function,
                      unsigned int function_oid);

}  // namespace celaest::pg
