// Who may spend an organization's quota through consume_quota (API.md, "Who is calling, and who
// may act for whom"): the AI calls' rule, since a consumption is what an AI call spends.
//   - A caller row-level security does not bind (a superuser, the owner, a BYPASSRLS role:
//     a DBA, whom the table's rights do not narrow to the acting user) or that writes every
//     organization (a service caller acting for no user, a super_admin) charges with its own
//     rights, as before. (Asking the acting identity of a superuser costs ~26k instructions
//     per call, 8 % of consume_quota's; for the others row-level security asks it anyway.)
//   - A caller acting for a user charges only for that user's own (live) organization, and
//     only if the user's role or scopes have ai:run (operators, managers, admins). The charge
//     then runs as the extension's owner: the user has no write rights on licenses, and
//     row-level security hid the row from the conditional UPDATE, which the general path
//     took for a race and retried until 40001.
//   - Anyone else (a viewer, a user of another organization, no live profile, readonly): 42501,
//     naming the function and the organization asked for, never another user.
#pragma once

#include <string>

namespace celaest::pg {

enum class SpendAs { Caller, Owner };

// Raises 42501 (naming `function`) when the statement's acting identity may not spend for
// `organization_id` (canonical uuid text); otherwise says with whose rights to charge.
SpendAs spending_rights(const std::string& organization_id, const char* function, unsigned int function_oid);

}  // namespace celaest::pg
