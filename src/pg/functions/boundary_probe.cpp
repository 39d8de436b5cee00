// Self-test entry points for the boundary (superuser only; used by the regression suite).
// Each mode fails in a different way beneath live C++ objects whose destructors count
// themselves, so a test can see that unwinding happened before PostgreSQL raised the ERROR.
#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"
#include "pg/boundary/spi.hpp"

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

void fail_in_mode(const std::string& mode) {
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
  } else if (mode == "cancel") {
    // Waits for a cancel (statement_timeout or pg_cancel_backend) while C++ objects are live.
    for (;;) {
      celaest::pg::check_for_interrupts();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  } else if (mode != "ok") {
    throw celaest::pg::Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown probe mode \"" + mode + "\"", "",
                             "Use ok, cpp_error, std_exception, spi_error, division_by_zero or cancel.");
  }
}

}  // namespace

CELAEST_FUNCTION(celaest_boundary_probe) {
  fail_in_mode(celaest::pg::text_arg(fcinfo, 0).value_or(""));
  return celaest::pg::text_datum("ok");
}

CELAEST_FUNCTION(celaest_boundary_destructor_count) { return Int64GetDatum(destructors_run); }
