// Self-test entry points for the boundary, used by the regression suite (test/regress/sql/
// boundary.sql). The extension does not declare them: the test does, as a superuser, with
// CREATE FUNCTION ... AS '$libdir/celaest', 'celaest_boundary_probe'.
// Each mode fails in a different way beneath live C++ objects whose destructors count
// themselves, so a test can see that unwinding happened before PostgreSQL raised the ERROR.
// The modes that write use the table boundary_test.probe_target, which the test creates.
#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"
#include "pg/boundary/spi.hpp"
#include "pg/boundary/subtransaction.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

long long destructors_run = 0;

struct CountsItsDestructor {
  std::string payload = std::string(64, 'x');  // a real heap allocation that must be freed
  ~CountsItsDestructor() { ++destructors_run; }
};

std::string fail_in_mode(const std::string& mode) {
  CountsItsDestructor witness;
  if (mode == "cpp_error") {
    throw celaest::pg::Error(celaest::pg::kTemplateVariableMissing, "probe: our own error with SQLSTATE LC030",
                             "probe detail", "probe hint");
  } else if (mode == "std_exception") {
    throw std::runtime_error("probe: a plain std::exception");
  } else if (mode == "spi_error") {
    CountsItsDestructor second_witness;
    celaest::pg::SpiSession spi;
    spi.run("SELECT * FROM celaest_no_such_table_for_probe");
  } else if (mode == "division_by_zero") {
    celaest::pg::SpiSession spi;
    spi.run("SELECT 1 / (random() * 0)::int");
  } else if (mode == "check_violation") {
    // PostgreSQL's error names the constraint, table and schema; they must reach the client.
    celaest::pg::SpiSession spi;
    spi.run("INSERT INTO boundary_test.probe_target VALUES (-1)");
  } else if (mode == "catch_as_our_error") {
    // A PostgreSQL error is not one of ours: this catch must not see it.
    celaest::pg::SpiSession spi;
    try {
      spi.run("SELECT 1 / (random() * 0)::int");
    } catch (const celaest::pg::Error&) {
      return "swallowed";
    }
  } else if (mode == "isolated_spi_error") {
    // The way to carry on after a PostgreSQL error: a subtransaction, rolled back.
    celaest::pg::SpiSession spi;
    try {
      celaest::pg::in_subtransaction([&] {
        spi.run("INSERT INTO boundary_test.probe_target VALUES (1)");
        spi.run("SELECT 1 / (random() * 0)::int");
      });
    } catch (const celaest::pg::PgError& error) {
      spi.run("INSERT INTO boundary_test.probe_target VALUES (2)");
      return std::string("recovered from ") + unpack_sql_state(error.sqlstate());
    }
  } else if (mode == "cancel") {
    // Waits for a cancel (statement_timeout or pg_cancel_backend) while C++ objects are live.
    for (;;) {
      celaest::pg::check_for_interrupts();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  } else if (mode != "ok") {
    throw celaest::pg::Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown probe mode \"" + mode + "\"", "",
                             "Use ok, cpp_error, std_exception, spi_error, division_by_zero, check_violation, "
                             "catch_as_our_error, isolated_spi_error or cancel.");
  }
  return "ok";
}

}  // namespace

CELAEST_FUNCTION(celaest_boundary_probe) {
  return celaest::pg::text_datum(fail_in_mode(celaest::pg::text_arg(fcinfo, 0).value_or("")));
}

CELAEST_FUNCTION(celaest_boundary_destructor_count) { return Int64GetDatum(destructors_run); }
