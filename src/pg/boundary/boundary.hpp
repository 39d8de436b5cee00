// The C++/PostgreSQL boundary: the one mechanism every native entry point goes through.
//
// A PostgreSQL ERROR is a longjmp; a C++ exception unwinds the stack. Neither may cross the
// other's frames. The code lives in two zones:
//
//   * The C++ zone: everything between an entry point's wrapper and a pg_guarded() call.
//     Code here MAY THROW (Error, PgError, std::exception) and MUST NOT elog(ERROR): it holds
//     C++ objects whose destructors a longjmp would skip. Every PostgreSQL call that can
//     ERROR is made through pg_guarded(), which turns the ERROR into a thrown PgError.
//
//   * The PostgreSQL zone: the body of a pg_guarded() lambda, a PG_TRY block, and the wrapper
//     frames below the try (raise()). Code here MAY elog(ERROR) (or CHECK_FOR_INTERRUPTS) and
//     MUST NOT THROW: its frames hold only trivially destructible values, and an exception
//     leaving a PG_TRY block would leave PostgreSQL's exception stack pointing at a dead frame.
//
// Entry points (every function PostgreSQL calls into):
//   * SQL-callable functions are declared with CELAEST_FUNCTION (invoke());
//   * _PG_init, shared-memory hooks, transaction callbacks and worker mains run their body
//     through run_entry_point(). An error leaves as ERROR, or — where an ERROR is no longer
//     possible (after commit, during abort) — as a WARNING.
// Both catch everything, let every destructor run, and only then raise, from a frame that
// holds no C++ object. .clang-tidy (bugprone-exception-escape) checks that no exception can
// leave the named entry points; scripts/tidy.sh runs it in CI.
//
// Two error types, as plv8 keeps them apart:
//   * Error: CELAEST's own (LC0xx, 22023, ...), with SQLSTATE, message, detail and hint.
//   * PgError: a PostgreSQL ERROR caught by pg_guarded, thrown by nothing else. It is NOT an
//     Error, so `catch (const Error&)` cannot swallow it. It holds the complete ErrorData and
//     is re-raised with ReThrowError, so CONTEXT, the internal query and the schema, table,
//     column and constraint names reach the client unchanged. After a PgError, PostgreSQL may
//     be used again only once the (sub)transaction has been rolled back: catching it to carry
//     on is allowed only around a subtransaction (in_subtransaction() in subtransaction.hpp).
#pragma once

extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

#include <csetjmp>
#include <exception>
#include <new>
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

// CELAEST's own error on its way through C++ frames to PostgreSQL.
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

// A PostgreSQL ERROR in flight through C++ frames. Deliberately not derived from Error nor
// from std::exception: only `catch (const PgError&)` or `catch (...)` see it.
// Trivially destructible: the ErrorData lives in the memory context of the entry point that
// PostgreSQL called (it outlives every C++ frame of the call), and is freed with it.
class PgError {
 public:
  explicit PgError(ErrorData* data) noexcept : data_(data) {}

  ErrorData* data() const noexcept { return data_; }
  int sqlstate() const noexcept { return data_->sqlerrcode; }
  const char* message() const noexcept { return data_->message ? data_->message : ""; }
  // A cancel, terminate or shutdown (class 57), or the server running out of a resource
  // (class 53): an error about the session, never about one piece of work, so it always
  // ends the statement, whatever isolation a caller has set up.
  bool ends_the_statement() const noexcept {
    const int error_class = ERRCODE_TO_CATEGORY(data_->sqlerrcode);
    return error_class == ERRCODE_TO_CATEGORY(ERRCODE_QUERY_CANCELED) ||
           error_class == ERRCODE_TO_CATEGORY(ERRCODE_INSUFFICIENT_RESOURCES);
  }

 private:
  ErrorData* data_;
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

// What an entry point's body left behind. Trivially destructible, like everything in the
// frames that raise.
struct Failure {
  bool failed = false;
  ErrorData* pg_error = nullptr;  // set: a PostgreSQL error, re-raised as it was
  CapturedError own;              // otherwise: ours or a C++ exception, raised from here
};

// What an entry point saved on the way in, restored on the way out.
struct EntryState {
  sigjmp_buf* exception_stack;  // PostgreSQL's, as it must be again when the body is done
  MemoryContext error_context;  // the enclosing entry point's, for nested entries
  ErrorData* deferred_error;    // ditto
};

void capture(CapturedError* out, int sqlstate, const char* message, const char* detail, const char* hint) noexcept;
EntryState enter_entry_point() noexcept;
void leave_entry_point(const EntryState& entry, Failure* failure) noexcept;
// Raises the failure as ERROR, or emits it as a WARNING (as_warning) and returns.
void raise_failure(const Failure& failure, const char* entry_point, bool as_warning);

// Copies the current PostgreSQL error into the entry point's memory context and clears
// PostgreSQL's error state; nullptr when the copy itself failed (out of memory). Leaves
// `caller_context` current.
ErrorData* copy_and_flush_pg_error(MemoryContext caller_context) noexcept;

// Hands an error that could not be thrown (a destructor's) to the entry point, which raises it
// once the body has returned. The first deferred error wins.
void defer_error(ErrorData* error) noexcept;

template <typename Body>
void run_catching(Body& body, Failure* failure) noexcept {
  try {
    body();
  } catch (const PgError& e) {
    failure->pg_error = e.data();
    failure->failed = true;
  } catch (const Error& e) {
    capture(&failure->own, e.sqlstate(), e.message().c_str(), e.detail().c_str(), e.hint().c_str());
    failure->failed = true;
  } catch (const std::bad_alloc&) {
    capture(&failure->own, ERRCODE_OUT_OF_MEMORY, "out of memory in celaest", "", "");
    failure->failed = true;
  } catch (const std::exception& e) {
    capture(&failure->own, ERRCODE_INTERNAL_ERROR, e.what(), "", "");
    failure->failed = true;
  } catch (...) {
    capture(&failure->own, ERRCODE_INTERNAL_ERROR, "unknown C++ exception in celaest", "", "");
    failure->failed = true;
  }
}

}  // namespace detail

// Runs a SQL function's C++ body for PostgreSQL: no exception escapes, and the ERROR is raised
// only after the body's frames (and their destructors) are gone.
template <typename Body>
Datum invoke(Body body, FunctionCallInfo fcinfo) noexcept {
  Datum result = (Datum)0;
  auto call = [&] { result = body(fcinfo); };
  detail::Failure failure;
  const detail::EntryState entry = detail::enter_entry_point();
  detail::run_catching(call, &failure);
  detail::leave_entry_point(entry, &failure);
  if (failure.failed) detail::raise_failure(failure, nullptr, false);
  return result;
}

// What becomes of an error that reaches a non-SQL entry point.
enum class OnFailure {
  RaiseError,  // _PG_init, shared-memory hooks, worker mains (a worker then exits and restarts)
  Warn,        // after commit or during abort, where an ERROR can no longer undo anything
};

// The wrapper for every non-SQL entry point: run `body` (a lambda capturing by reference)
// with no exception escaping; an error leaves as ERROR or WARNING (see OnFailure), raised
// from this frame once the body's C++ objects are gone. `entry_point` names it in a WARNING.
template <typename Body>
void run_entry_point(const char* entry_point, OnFailure on_failure, Body&& body) noexcept {
  static_assert(std::is_trivially_destructible_v<std::remove_reference_t<Body>>,
                "run_entry_point: the body must capture by reference (an ERROR skips its destructor)");
  detail::Failure failure;
  const detail::EntryState entry = detail::enter_entry_point();
  detail::run_catching(body, &failure);
  detail::leave_entry_point(entry, &failure);
  if (failure.failed) detail::raise_failure(failure, entry_point, on_failure == OnFailure::Warn);
}

// Transaction callbacks run after commit or during abort for the events they act on:
// their errors can only be warnings.
inline OnFailure on_failure_at(XactEvent event) noexcept {
  return event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PARALLEL_PRE_COMMIT ||
                 event == XACT_EVENT_PRE_PREPARE
             ? OnFailure::RaiseError
             : OnFailure::Warn;
}

// Calls PostgreSQL from C++. `fn` may ERROR; its body must keep only trivially destructible
// locals (the longjmp skips its frame), and it must return a trivially destructible value.
// An ERROR comes back as a thrown PgError (Error only if copying it ran out of memory).
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
  ErrorData* copied = detail::copy_and_flush_pg_error(caller_context);
  if (copied == nullptr) throw Error(ERRCODE_OUT_OF_MEMORY, "out of memory while copying a PostgreSQL error");
  throw PgError(copied);
}

// Serves a pending cancel/terminate from C++: PostgreSQL's own error (57014, 57P01) comes back
// as a PgError and unwinds our frames before it is raised again at the boundary.
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
