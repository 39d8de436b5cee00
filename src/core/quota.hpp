// The answer to "may this organization use `amount` more of a counter?" (check_limit), from
// the license's state code, its effective limit and what the period has used: the rules of
// API.md "Licenses and limits", kept apart from PostgreSQL so that they are tested alone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace celaest::core {

inline constexpr int64_t kUnlimited = -1;

struct QuotaAnswer {
  bool allowed = false;
  int64_t limit = kUnlimited;  // -1 = unlimited
  int64_t used = 0;
  int64_t remaining = kUnlimited;  // -1 = unlimited; never negative otherwise
  std::string code;                // the license's code, or QUOTA_EXCEEDED
};

// `state_code` is the license's state quota aside (VALID, SUSPENDED, EXPIRED, …): a license
// that is not VALID allows nothing but keeps its own code. `amount` >= 0. Overflow-safe for
// any int64 inputs.
QuotaAnswer answer_quota(std::string_view state_code, int64_t limit, int64_t used, int64_t amount);

// True when `amount` more fits under `limit` given `used` (limit -1 = unlimited).
bool fits_quota(int64_t limit, int64_t used, int64_t amount);

// {"allowed": …, "limit": …, "used": …, "remaining": …, "code": "…"} as JSON text.
std::string quota_answer_json(const QuotaAnswer& answer);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
