// How many tasks of an organization are processing or retrying: what max_concurrent_tasks
// counts in rows. Read straight from the partial index processed_tasks_in_flight_idx (no
// executor, no plan: an AI call's admission makes this read on every call), with the latest
// snapshot, and for every row of the organization whoever the caller is: an admission must
// count all of them, as the SECURITY DEFINER trigger path (_reserve_counted) does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace celaest::pg {

// nullopt when the table or its index cannot be found (a changed schema): count by query then.
std::optional<int64_t> tasks_in_flight(const std::string& organization_id);

}  // namespace celaest::pg
