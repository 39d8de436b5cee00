// The state code of a license in force, quota aside (_license_code() in src/sql/22_licensing_rules.sql), from
// its status and whether its dates have passed: kept apart from PostgreSQL and tested alone.
#pragma once

#include <string_view>

namespace celaest::core {

enum class LicenseStatus { Trial, Active, Suspended, Expired, Cancelled };

// VALID, SUSPENDED, EXPIRED, TRIAL_EXPIRED or CANCELLED. `expired`: expires_at has passed;
// `trial_ended`: trial_ends_at has passed (counts for trials only). An expired-by-status
// license reads TRIAL_EXPIRED when it was a trial (`was_trial`).
std::string_view license_state_code(LicenseStatus status, bool expired, bool trial_ended, bool was_trial = false);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
