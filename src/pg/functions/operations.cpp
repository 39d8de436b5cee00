// Operations: version() and worker_status().
#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"
#include "pg/workers/worker_status.hpp"

extern "C" {
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

#include <curl/curl.h>

#include <string>

CELAEST_FUNCTION(celaest_version) {
  std::string version = "celaest " CELAEST_VERSION " (PostgreSQL " PG_VERSION ", ";
  version += curl_version();
  version += ")";
  return celaest::pg::text_datum(version);
}

// worker_status() RETURNS TABLE(worker, pid, database, state, last_run, last_error, runs)
CELAEST_FUNCTION(celaest_worker_status) {
  using celaest::pg::workers::WorkerKind;
  celaest::pg::workers::WorkerStatus rows[celaest::pg::workers::kWorkerKinds] = {
      celaest::pg::workers::worker_status(WorkerKind::Maintenance),
      celaest::pg::workers::worker_status(WorkerKind::BatchRunner)};
  celaest::pg::pg_guarded([&] {
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = (ReturnSetInfo*)fcinfo->resultinfo;
    for (const auto& row : rows) {
      Datum values[7];
      bool nulls[7] = {false, row.pid == 0, row.database.empty(), false, row.last_run == 0, row.last_error.empty(),
                       false};
      values[0] = PointerGetDatum(cstring_to_text(row.worker.c_str()));
      values[1] = Int32GetDatum(row.pid);
      values[2] = PointerGetDatum(cstring_to_text(row.database.c_str()));
      values[3] = PointerGetDatum(cstring_to_text(row.state.c_str()));
      values[4] = TimestampTzGetDatum(row.last_run);
      values[5] = PointerGetDatum(cstring_to_text(row.last_error.c_str()));
      values[6] = Int64GetDatum(row.runs);
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
  });
  return (Datum)0;
}
