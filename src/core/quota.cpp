#include "core/quota.hpp"

#include <algorithm>

namespace celaest::core {

bool fits_quota(int64_t limit, int64_t used, int64_t amount) {
  if (limit == kUnlimited) return true;
  // amount <= limit - used, without computing used + amount (which may overflow).
  if (used > limit) return false;
  return amount <= limit - used;
}

QuotaAnswer answer_quota(std::string_view state_code, int64_t limit, int64_t used, int64_t amount) {
  QuotaAnswer answer;
  answer.limit = limit;
  answer.used = used;
  answer.remaining = limit == kUnlimited ? kUnlimited : std::max<int64_t>(used > limit ? 0 : limit - used, 0);
  const bool valid = state_code == "VALID";
  const bool fits = fits_quota(limit, used, amount);
  answer.allowed = valid && fits;
  answer.code = (!valid || fits) ? std::string(state_code) : std::string("QUOTA_EXCEEDED");
  return answer;
}

std::string quota_answer_json(const QuotaAnswer& answer) {
  // The codes are fixed upper-case words: nothing to escape.
  return std::string("{\"allowed\": ") + (answer.allowed ? "true" : "false") +
         ", \"limit\": " + std::to_string(answer.limit) + ", \"used\": " + std::to_string(answer.used) +
         ", \"remaining\": " + std::to_string(answer.remaining) + ", \"code\": \"" + answer.code + "\"}";
}

}  // namespace celaest::core
