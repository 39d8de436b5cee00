#include "pg/identity/acting_identity.hpp"

#include "core/uuid_bytes.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/function_owner.hpp"
#include "pg/boundary/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "nodes/pg_list.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}


namespace celaest::pg {

bool ActingIdentity::sees_every_org() const {
  switch (level) {
    case AccessLevel::Readonly: return true;
    case AccessLevel::Service: return !user_id || super_admin;
    case AccessLevel::Authenticated: return super_admin;
    case AccessLevel::None: return false;
  }
  return false;
}

bool ActingIdentity::writes_every_org() const {
  switch (level) {
    case AccessLevel::Service: return !user_id || super_admin;
    case AccessLevel::Authenticated: return super_admin;
    default: return false;
  }
}

bool ActingIdentity::manages_platform() const {
  return level == AccessLevel::Service || (level == AccessLevel::Authenticated && super_admin);
}

const char* level_name(AccessLevel level) {
  switch (level) {
    case AccessLevel::Service: return "service";
    case AccessLevel::Authenticated: return "authenticated";
    case AccessLevel::Readonly: return "readonly";
    case AccessLevel::None: return nullptr;
  }
  return nullptr;
}

namespace {

// Everything the identity depends on. The same transaction, statement and command see the
// same rows (a new statement may see other transactions' commits; a new command, this one's
// own writes), so the identity can change only when one of these does. The settings are
// compared too: set_config() can change them inside one statement.
struct StatementKey {
  LocalTransactionId transaction = InvalidLocalTransactionId;
  TimestampTz statement_start = 0;
  CommandId command = InvalidCommandId;
  Oid calling_role = InvalidOid;
  std::string user_setting;
  std::string jwt_claims;  // what Supabase's auth.uid() reads
  std::string jwt_sub;

  bool operator==(const StatementKey& other) const {
    return transaction == other.transaction && statement_start == other.statement_start &&
           command == other.command && calling_role == other.calling_role &&
           user_setting == other.user_setting && jwt_claims == other.jwt_claims && jwt_sub == other.jwt_sub;
  }
};

std::string setting(const char* name) {
  const char* value = pg_guarded([name] { return GetConfigOption(name, true, false); });
  return value != nullptr ? std::string(value) : std::string();
}

StatementKey current_key() {
  StatementKey key;
  key.transaction = MyProc->lxid;
  key.statement_start = GetCurrentStatementStartTimestamp();
  key.command = GetCurrentCommandId(false);
  // The role SET ROLE chose, else the session user: a SECURITY DEFINER function changes
  // neither, so an end user calling one of ours is still an end user inside it.
  key.calling_role = GetOuterUserId();
  key.user_setting = setting("celaest.user_id");
  key.jwt_claims = setting("request.jwt.claims");
  key.jwt_sub = setting("request.jwt.claim.sub");
  return key;
}

// The profile lookups run as the function's owner (RunAsOwner, function_owner.hpp), as the
// SQL helpers did with SECURITY DEFINER: row-level security on users_profile calls back into
// this identity and must not see itself.

// Supabase's JWT subject: auth.uid() when that function exists (it need not), asked as the
// owner like the SQL helper this replaces (SECURITY DEFINER): a role given end-user access
// need not reach schema auth itself. Through SPI, whose kept plan outlives the transaction
// (the function manager would parse and plan an SQL function again in every transaction).
std::optional<std::string> auth_uid(SpiSession& spi) {
  const bool exists = pg_guarded([] {
    List* name = list_make2(makeString(pstrdup("auth")), makeString(pstrdup("uid")));
    const Oid oid = LookupFuncName(name, 0, nullptr, true);
    return OidIsValid(oid);
  });
  if (!exists) return std::nullopt;
  return spi.scalar("SELECT auth.uid()::text", {}, true);
}

std::string trimmed(const std::string& text) {
  const size_t first = text.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

// The rule of module 10's _level_of, from the role caches PostgreSQL keeps (that SQL version
// reads pg_roles and costs half a millisecond): superusers, the owner (of our functions, which
// is the extension's owner) and roles holding its privileges are service; then membership of
// a level's group role, direct (a NOINHERIT role, as Supabase's are) or inherited.
AccessLevel level_of(Oid role, Oid owner) {
  struct Group {
    const char* name;
    AccessLevel level;
  };
  static const Group groups[] = {{"celaest_service", AccessLevel::Service},
                                 {"celaest_authenticated", AccessLevel::Authenticated},
                                 {"celaest_readonly", AccessLevel::Readonly}};
  return pg_guarded([role, owner] {
    if (superuser_arg(role) || has_privs_of_role(role, owner)) return AccessLevel::Service;
    for (const Group& group : groups) {
      const Oid group_role = get_role_oid(group.name, true);
      if (!OidIsValid(group_role)) continue;
      if (SearchSysCacheExists2(AUTHMEMROLEMEM, ObjectIdGetDatum(group_role), ObjectIdGetDatum(role)) ||
          has_privs_of_role(role, group_role))
        return group.level;
    }
    return AccessLevel::None;
  });
}

ActingIdentity compute(const StatementKey& key, Oid function_oid) {
  ActingIdentity identity;
  std::optional<std::string> named;
  const std::string user_setting = trimmed(key.user_setting);
  if (!user_setting.empty()) {
    named = core::canonical_uuid_text(user_setting);
    if (!named)
      throw Error(ERRCODE_INVALID_TEXT_REPRESENTATION, "celaest.user_id is not a valid uuid: \"" + user_setting + "\"",
                  "", "SET celaest.user_id to the users_profile.id of the acting user, or RESET it.");
  }

  const Oid owner = function_owner(function_oid);
  identity.level = level_of(key.calling_role, owner);
  RunAsOwner as_owner(owner);
  SpiSession spi;
  const std::optional<std::string> jwt_subject = auth_uid(spi);

  if (identity.level == AccessLevel::Service) {
    identity.user_id = named ? named : jwt_subject;
  } else {
    if (named && named != jwt_subject)
      throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied to act as another CELAEST user",
                  "celaest.user_id is honoured for service callers only; this role is identified by auth.uid().",
                  "RESET celaest.user_id, or call through a role with grant_access(..., 'service').");
    identity.user_id = jwt_subject;
  }
  if (!identity.user_id) return identity;

  // The organization counts only while it is live; rights need a live profile in a live
  // organization (or in none); super_admin only a live profile.
  QueryResult profile = spi.run(
      "SELECT CASE WHEN o.deleted_at IS NULL THEN u.organization_id END::text, o.deleted_at IS NULL, u.role::text, "
      "       u.scopes ? 'ai:run', u.scopes ? 'batches:manage', u.scopes ? 'users:manage', u.scopes ? 'org:settings' "
      "  FROM celaest.users_profile AS u "
      "  LEFT JOIN celaest.organizations AS o ON o.id = u.organization_id "
      " WHERE u.id = $1::uuid AND u.deleted_at IS NULL",
      {identity.user_id}, true);
  if (profile.empty()) return identity;
  auto flag = [&](size_t column) { return profile.at(0, column).value_or("f") == "t"; };
  const std::string role = profile.at(0, 2).value_or("");
  identity.live_profile = true;
  identity.organization_id = profile.at(0, 0);
  identity.super_admin = role == "super_admin";
  if (flag(1)) {
    identity.rights = core::rights_of_role(role);
    const Right scoped[] = {Right::AiRun, Right::BatchesManage, Right::UsersManage, Right::OrgSettings};
    for (size_t i = 0; i < 4; ++i)
      if (flag(3 + i)) identity.rights |= static_cast<unsigned>(scoped[i]);
  }
  return identity;
}

struct Cached {
  bool valid = false;
  StatementKey key;
  ActingIdentity identity;
};

Cached& cached() {
  static Cached entry;
  return entry;
}

}  // namespace

const ActingIdentity& acting_identity(unsigned int function_oid) {
  Cached& entry = cached();
  StatementKey key = current_key();
  if (entry.valid && entry.key == key) return entry.identity;
  entry.valid = false;  // stays so if computing raises: errors are never kept
  entry.identity = compute(key, function_oid);
  entry.key = std::move(key);
  entry.valid = true;
  return entry.identity;
}

}  // namespace celaest::pg
