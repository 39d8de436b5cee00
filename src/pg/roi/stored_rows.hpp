// Which finished ROI rows roi_metrics already holds as they are: read under the caller's rights
// and compared natively, so that an unchanged row is neither built as a tuple nor compared in
// SQL (aggregate_roi over 90,000 unchanged rows spent most of its time on exactly that).
#pragma once

#include "pg/roi/rows.hpp"

#include <vector>

namespace celaest::pg::roi {

// unchanged[i]: roi_metrics has a row of period_type for rows[i]'s organization and period
// start whose figures equal rows[i]'s and whose metadata holds rows[i]'s keys with their values
// (what _roi_store's upsert would otherwise leave as it is).
std::vector<bool> rows_already_stored(const RoiRowsInput& input, const std::vector<core::RoiRow>& rows,
                                      const char* period_type);

}  // namespace celaest::pg::roi
