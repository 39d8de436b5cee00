// The finished rows of a ROI roll-up at the PostgreSQL boundary: _roi_rows' arguments read
// (the figures as bytes and the run's constants), the rows finished natively (core/roi_figures)
// and returned as celaest._roi_row, with roi_metrics' metadata built as jsonb_build_object
// would build it.
#pragma once

#include "core/roi_figures.hpp"
#include "pg/roi/aggregate_glue.hpp"

#include <vector>

namespace celaest::pg::roi {

// _roi_rows' arguments 0..11 (see src/sql/55_roi.sql).
struct RoiRowsInput {
  std::vector<core::RoiFigures> figures;
  int minutes_scale = 0;
  ArrayElements organizations;
  ArrayElements rates;
  ArrayElements zones;
  ArrayElements period_starts;
  ArrayElements period_ends;
  core::RoiRates run;
};
RoiRowsInput rows_input(FunctionCallInfo fcinfo);

std::vector<core::RoiRow> finished_rows(const RoiRowsInput& input);

constexpr int kCostScale = 6;  // processed_tasks.cost_usd is numeric(10,6); cost_ai_exact too

// A numeric Datum of core's value (allocated in the current context).
Datum numeric_datum(const core::NumericValue& value);

// roi_metrics' metadata keys of a row: {roi_percent, cost_ai_exact, hourly_rate, timezone}.
Datum metadata_datum(const core::RoiRow& row, const RoiRowsInput& input);

// Returns the rows (all, or those whose `unchanged` flag is false) as the function's
// materialized result set of celaest._roi_row.
void emit_rows(FunctionCallInfo fcinfo, const RoiRowsInput& input, const std::vector<core::RoiRow>& rows,
               const std::vector<bool>* unchanged);

}  // namespace celaest::pg::roi
