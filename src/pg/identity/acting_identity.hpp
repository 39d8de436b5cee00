// The acting identity of the current statement: the calling role's access level, the user it
// acts for and that user's organization and rights (API.md, "Who is calling, and who may act
// for whom"). Row-level security asks for it in every query of every statement; the rules
// were a chain of SQL and PL/pgSQL helpers run again for each query, which held an end
// user's check_limit to a fiftieth of a superuser's speed. Here the answer is worked out
// once per statement and kept until something it depends on can have changed.
#pragma once

#include "core/access_rights.hpp"

#include <optional>
#include <string>

namespace celaest::pg {

enum class AccessLevel { None, Readonly, Authenticated, Service };

using core::Right;

struct ActingIdentity {
  AccessLevel level = AccessLevel::None;
  std::optional<std::string> user_id;          // the acting user (not checked against profiles)
  bool live_profile = false;                   // user_id has a users_profile row, not soft-deleted
  std::optional<std::string> organization_id;  // its organization, when that is live too
  bool super_admin = false;                    // live profile with role super_admin
  unsigned rights = 0;  // Right bits (the role's and its scopes'); none unless profile and organization are live

  bool may(Right right) const { return (rights & static_cast<unsigned>(right)) != 0; }
  // Readonly callers, service callers acting for nobody, super_admins.
  bool sees_every_org() const;
  // Service callers acting for nobody, super_admins.
  bool writes_every_org() const;
  // Service callers and super_admins: plans, models, key pool, prompts, flags, config.
  bool manages_platform() const;
};

// The identity of the statement now running. Raises 22P02 for a malformed celaest.user_id
// and 42501 when a caller below service names a user other than its auth.uid() (errors are
// never cached: each call raises again). `function_oid` is the SQL function asking; its owner
// (the extension's owner) reads the profile, so row-level security does not recurse.
const ActingIdentity& acting_identity(unsigned int function_oid);

const char* level_name(AccessLevel level);  // "service", ...; nullptr for None

}  // namespace celaest::pg
