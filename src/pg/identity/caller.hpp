// Who is calling (API.md): the user (argument, else celaest.current_user_id()) and the
// organization of that user's profile.
#pragma once

#include "pg/boundary/spi.hpp"

#include <optional>
#include <string>

namespace celaest::pg {

struct Caller {
  std::string user_id;
  std::string organization_id;
};

// 42501 when there is no user, no profile, or no organization.
Caller resolve_caller(SpiSession& spi, const std::optional<std::string>& user_id);

}  // namespace celaest::pg
