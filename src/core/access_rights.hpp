// Rights inside an organization (API.md, "Who is calling, and who may act for whom"): what each
// users_profile.role may do; scopes add rights, never platform:manage. The one copy of the
// matrix: SQL's _role_allows and the per-statement acting identity both read it.
#pragma once

#include <optional>
#include <string_view>

namespace celaest::core {

enum class Right : unsigned { AiRun = 1, BatchesManage = 2, UsersManage = 4, OrgSettings = 8, PlatformManage = 16 };

inline constexpr Right kAllRights[] = {Right::AiRun, Right::BatchesManage, Right::UsersManage, Right::OrgSettings,
                                       Right::PlatformManage};

// "ai:run", "batches:manage", "users:manage", "org:settings", "platform:manage".
std::string_view right_name(Right right);
std::optional<Right> right_named(std::string_view name);

// The rights of a role (viewer, operator, manager, admin, super_admin) as a bit set of Right;
// 0 for any other name.
unsigned rights_of_role(std::string_view role);

// Whether a scope may add `right` (every right but platform:manage).
inline bool scope_may_grant(Right right) { return right != Right::PlatformManage; }

}  // namespace celaest::core

#include "core/cpp_only.hpp"
