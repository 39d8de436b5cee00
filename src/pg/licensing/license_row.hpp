// One license row read straight from its primary-key index, for the hot path of
// check_limit and the AI calls' admission: what `SELECT … FROM celaest.licenses WHERE id = $1`
// returns with the statement's snapshot, without planning or starting an executor (which
// cost more than the read itself). Citus reads its metadata tables the same way.
#pragma once

#include "core/license_state.hpp"

#include <cstdint>
#include <string>

namespace celaest::pg {

struct LicenseCounters {
  core::LicenseStatus status = core::LicenseStatus::Cancelled;
  bool expired = false;       // expires_at <= now()
  bool trial_ended = false;   // trial_ends_at <= now()
  bool period_ended = false;  // current_period_end <= now()
  int64_t ai_requests_used = 0;
};

enum class DirectRead {
  Found,
  NotFound,    // no visible row with that id and organization
  NotAllowed,  // the read may not stand in for the query: row-level security applies to the
               // current user, the user may not read the table, the schema is not the
               // expected one, or there is no statement snapshot. Run the query instead.
};

// Statement: the calling statement's snapshot (what a STABLE function's query sees).
// Latest: committed as of now, for decisions that must count every charge committed since
// the statement began (an AI call's admission inside a long statement).
enum class RowSnapshot { Statement, Latest };

DirectRead read_license_counters(const std::string& license_id, const std::string& organization_id,
                                 RowSnapshot snapshot, LicenseCounters* counters);

}  // namespace celaest::pg
