#include "core/access_rights.hpp"

#include <gtest/gtest.h>

using celaest::core::Right;
using celaest::core::right_name;
using celaest::core::right_named;
using celaest::core::rights_of_role;

namespace {

bool allows(const char* role, Right right) { return (rights_of_role(role) & static_cast<unsigned>(right)) != 0; }

}  // namespace

// API.md's matrix, row by row.
TEST(AccessRights, TheMatrixOfApiMd) {
  for (Right right : celaest::core::kAllRights) EXPECT_FALSE(allows("viewer", right)) << right_name(right);

  EXPECT_TRUE(allows("operator", Right::AiRun));
  EXPECT_FALSE(allows("operator", Right::BatchesManage));
  EXPECT_FALSE(allows("operator", Right::UsersManage));
  EXPECT_FALSE(allows("operator", Right::OrgSettings));
  EXPECT_FALSE(allows("operator", Right::PlatformManage));

  EXPECT_TRUE(allows("manager", Right::AiRun));
  EXPECT_TRUE(allows("manager", Right::BatchesManage));
  EXPECT_TRUE(allows("manager", Right::UsersManage));
  EXPECT_FALSE(allows("manager", Right::OrgSettings));
  EXPECT_FALSE(allows("manager", Right::PlatformManage));

  EXPECT_TRUE(allows("admin", Right::OrgSettings));
  EXPECT_TRUE(allows("admin", Right::UsersManage));
  EXPECT_FALSE(allows("admin", Right::PlatformManage));

  for (Right right : celaest::core::kAllRights) EXPECT_TRUE(allows("super_admin", right)) << right_name(right);
}

TEST(AccessRights, UnknownRolesHaveNoRights) {
  EXPECT_EQ(rights_of_role(""), 0u);
  EXPECT_EQ(rights_of_role("Admin"), 0u);
  EXPECT_EQ(rights_of_role("owner"), 0u);
}

TEST(AccessRights, NamesRoundTrip) {
  for (Right right : celaest::core::kAllRights) EXPECT_EQ(right_named(right_name(right)), right);
  EXPECT_FALSE(right_named("billing:everything"));
  EXPECT_FALSE(right_named("AI:RUN"));
  EXPECT_FALSE(right_named(""));
}

TEST(AccessRights, ScopesNeverGrantPlatformManage) {
  EXPECT_FALSE(celaest::core::scope_may_grant(Right::PlatformManage));
  EXPECT_TRUE(celaest::core::scope_may_grant(Right::AiRun));
  EXPECT_TRUE(celaest::core::scope_may_grant(Right::OrgSettings));
}
