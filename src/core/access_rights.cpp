#include "core/access_rights.hpp"

namespace celaest::core {

namespace {

constexpr unsigned bit(Right right) { return static_cast<unsigned>(right); }

}  // namespace

std::string_view right_name(Right right) {
  switch (right) {
    case Right::AiRun: return "ai:run";
    case Right::BatchesManage: return "batches:manage";
    case Right::UsersManage: return "users:manage";
    case Right::OrgSettings: return "org:settings";
    case Right::PlatformManage: return "platform:manage";
  }
  return {};
}

std::optional<Right> right_named(std::string_view name) {
  for (Right right : kAllRights)
    if (right_name(right) == name) return right;
  return std::nullopt;
}

unsigned rights_of_role(std::string_view role) {
  // viewer reads only; operator runs AI calls and batches; manager also manages the
  // organization's users and batches; admin also its settings; super_admin everything.
  const unsigned operator_rights = bit(Right::AiRun);
  const unsigned manager_rights = operator_rights | bit(Right::BatchesManage) | bit(Right::UsersManage);
  const unsigned admin_rights = manager_rights | bit(Right::OrgSettings);
  if (role == "viewer") return 0;
  if (role == "operator") return operator_rights;
  if (role == "manager") return manager_rights;
  if (role == "admin") return admin_rights;
  if (role == "super_admin") return admin_rights | bit(Right::PlatformManage);
  return 0;
}

}  // namespace celaest::core
