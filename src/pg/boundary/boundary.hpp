// The C++/PostgreSQL boundary: the one mechanism every native entry point goes through.
//
// A PostgreSQL ERROR is a longjmp; a C++ exception unwinds the stack. Neither may cross the
// other's frames. So:
//   * every function PostgreSQL calls is declared with CELAEST_FUNCTION: a plain extern "C"
//     shim runs the C++ body inside try/catch, copies the error into a fixed buffer, lets every
//     destructor run, and only then raises the ERROR from a frame that holds no C++ object;
//   * every PostgreSQL call made from C++ that can ERROR runs inside pg_guarded(): it catches
//     the longjmp, restores PostgreSQL's exception stack and memory context, copies the
//     ErrorData and rethrows it as celaest::pg::Error, keeping SQLSTATE, message, detail, hint.
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

#include <csetjmp>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace celaest::pg {

// Our SQLSTATE class LC (API.md "Errors").
inline constexpr int kNoLicense = MAKE_SQLSTATE('L', 'C', '0', '0', '1');
inline constexpr int kLicenseSuspended = MAKE_SQLSTATE('L', 'C', '0', '0', '2');
inline constexpr int kLicenseExpired = MAKE_SQLSTATE('L', 'C', '0', '0', '3');
inline constexpr int kLicenseCancelled = MAKE_SQLSTATE('L', 'C', '0', '0', '4');
inline constexpr int kQuotaExceeded = MAKE_SQLSTATE('L', 'C', '0', '1', '0');
inline constexpr int kNoUsableKey = MAKE_SQLSTATE('L', 'C', '0', '2', '0');
inline constexpr int kProviderFailed = MAKE_SQLSTATE('L', 'C', '0', '2', '1');
inline constexpr int kTemplateVariableMissing = MAKE_SQLSTATE('L', 'C', '0', '3', '0');
inline constexpr int kEncryptionKeyMissing = MAKE_SQLSTATE('L', 'C', '0', '4', '0');

// An error on its way through C++ frames to PostgreSQL.
class Error : public std::exception {
 public:
  Error(int sqlstate, std::string message, std::string detail = {}, std::string hint = {})
      : sqlstate_(sqlstate), message_(std::move(message)), detail_(std::move(detail)), hint_(std::move(hint)) {}

  int sqlstate() const noexcept { return sqlstate_; }
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& message() const noexcept { return message_; }
  const std::string& detail() const noexcept { return detail_; }
  const std::string& hint() const noexcept { return hint_; }

 private:
  int sqlstate_;
  std::string message_;
  std::string detail_;
  std::string hint_;
};

namespace detail {

// Trivially destructible on purpose: it lives in the frame that raises the ERROR, and copying
// into it allocates nothing (so it cannot itself fail inside a catch handler).
struct CapturedError {
  int sqlstate;
  char message[1024];
  char detail[1024];
  char hint[512];
};

void capture(CapturedError* out, int sqlstate, const char* message, const char* detail, const char* hint) noexcept;
[[noreturn]] void raise_captured(const CapturedError* error);
Error error_from_current_pg_error(MemoryContext caller_context);

}  // namespace detail

// Runs a C++ body for PostgreSQL: no exception escapes, and the ERROR is raised only after
// the body's frames (and their destructors) are gone.
template <typename Body>
Datum invoke(Body body, FunctionCallInfo fcinfo) {
  detail::CapturedError captured;
  bool failed = false;
  Datum result = (Datum)0;
  try {
    result = body(fcinfo);
  } catch (const Error& e) {
    detail::capture(&captured, e.sqlstate(), e.message().c_str(), e.detail().c_str(), e.hint().c_str());
    failed = true;
  } catch (const std::bad_alloc&) {
    detail::capture(&captured, ERRCODE_OUT_OF_MEMORY, "out of memory in celaest", "", "");
    failed = true;
  } catch (const std::exception& e) {
    detail::capture(&captured, ERRCODE_INTERNAL_ERROR, e.what(), "", "");
    failed = true;
  } catch (...) {
    detail::capture(&captured, ERRCODE_INTERNAL_ERROR, "unknown C++ exception in celaest", "", "");
    failed = true;
  }
  if (failed) detail::raise_captured(&captured);
  return result;
}

// Calls PostgreSQL from C++. `fn` may ERROR; its body must keep only trivially destructible
// locals (the longjmp skips its frame), and it must return a trivially destructible value.
template <typename Fn>
auto pg_guarded(Fn&& fn) -> decltype(fn()) {
  using Result = decltype(fn());
  static_assert(std::is_void_v<Result> || std::is_trivially_destructible_v<Result>,
                "pg_guarded: a longjmp may skip the destructor of the result");
  MemoryContext caller_context = CurrentMemoryContext;
  sigjmp_buf* saved_exception_stack = PG_exception_stack;
  ErrorContextCallback* saved_context_stack = error_context_stack;
  sigjmp_buf local_jump;
  if (sigsetjmp(local_jump, 0) == 0) {
    PG_exception_stack = &local_jump;
    if constexpr (std::is_void_v<Result>) {
      fn();
      PG_exception_stack = saved_exception_stack;
      return;
    } else {
      Result value = fn();
      PG_exception_stack = saved_exception_stack;
      return value;
    }
  }
  PG_exception_stack = saved_exception_stack;
  error_context_stack = saved_context_stack;
  throw detail::error_from_current_pg_error(caller_context);
}

// Serves a pending cancel/terminate from C++: PostgreSQL's own error (57014, 57P01) comes back
// as an Error and unwinds our frames before it is raised again at the boundary.
inline void check_for_interrupts() {
  if (INTERRUPTS_PENDING_CONDITION()) pg_guarded([] { ProcessInterrupts(); });
}

// True when a cancel or terminate is pending: polled from libcurl's progress callback.
inline bool interrupt_pending() noexcept { return QueryCancelPending || ProcDiePending; }

}  // namespace celaest::pg

// Declares a SQL-callable function whose C++ body runs behind the boundary.
#define CELAEST_FUNCTION(sql_symbol)                                                 \
  static Datum sql_symbol##_body(FunctionCallInfo fcinfo);                           \
  extern "C" {                                                                       \
  PG_FUNCTION_INFO_V1(sql_symbol);                                                   \
  Datum sql_symbol(PG_FUNCTION_ARGS) { return celaest::pg::invoke(sql_symbol##_body, fcinfo); } \
  }                                                                                  \
  static Datum sql_symbol##_body(FunctionCallInfo fcinfo)
