// _unleash_bucket(group, subject): the gradual-rollout bucket is_feature_enabled compares with
// a flag's target_percentage, computed exactly as Unleash does (core/murmur3).
#include "core/murmur3.hpp"
#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"

CELAEST_FUNCTION(celaest_unleash_bucket) {
  // STRICT in SQL: both arguments are present.
  std::optional<std::string> group = celaest::pg::text_arg(fcinfo, 0);
  std::optional<std::string> subject = celaest::pg::text_arg(fcinfo, 1);
  int bucket = celaest::core::unleash_bucket(*group, *subject);
  return Int32GetDatum(bucket);
}
