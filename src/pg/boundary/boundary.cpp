#include "pg/boundary/boundary.hpp"

#include <cstring>

namespace celaest::pg::detail {

namespace {

// The memory context that was current when PostgreSQL called the innermost entry point: a
// PgError's ErrorData is copied there, so it outlives every C++ frame (and every SPI or
// subtransaction context) of the call, until the entry point re-raises it.
MemoryContext entry_error_context = nullptr;
// An error a destructor could not throw, raised by the entry point after its body returns.
ErrorData* deferred_error = nullptr;

void copy_truncated(char* destination, size_t capacity, const char* source) noexcept {
  if (source == nullptr) source = "";
  size_t length = std::strlen(source);
  if (length >= capacity) length = capacity - 1;
  std::memcpy(destination, source, length);
  destination[length] = '\0';
}

}  // namespace

void capture(CapturedError* out, int sqlstate, const char* message, const char* detail, const char* hint) noexcept {
  out->sqlstate = sqlstate;
  copy_truncated(out->message, sizeof out->message, message);
  copy_truncated(out->detail, sizeof out->detail, detail);
  copy_truncated(out->hint, sizeof out->hint, hint);
}

EntryState enter_entry_point() noexcept {
  EntryState entry{PG_exception_stack, entry_error_context, deferred_error};
  entry_error_context = CurrentMemoryContext;
  deferred_error = nullptr;
  return entry;
}

void leave_entry_point(const EntryState& entry, Failure* failure) noexcept {
  // An error deferred by a destructor counts only when nothing else failed first.
  if (!failure->failed && deferred_error != nullptr) {
    failure->pg_error = deferred_error;
    failure->failed = true;
  }
  deferred_error = entry.deferred_error;
  entry_error_context = entry.error_context;
  // Every pg_guarded and PG_TRY puts PostgreSQL's exception stack back; if one did not, the
  // stack points into a frame that is gone and the next ERROR would jump there. Put it back
  // and report the bug rather than crash.
  if (PG_exception_stack != entry.exception_stack) {
    PG_exception_stack = entry.exception_stack;
    if (!failure->failed) {
      capture(&failure->own, ERRCODE_INTERNAL_ERROR,
              "celaest left PostgreSQL's exception stack changed (a bug in celaest)", "", "");
      failure->failed = true;
    }
  }
}

void raise_failure(const Failure& failure, const char* entry_point, bool as_warning) {
  if (failure.pg_error != nullptr) {
    if (!as_warning) ReThrowError(failure.pg_error);  // the original error, every field intact
    failure.pg_error->elevel = WARNING;
    ThrowErrorData(failure.pg_error);
    return;
  }
  const CapturedError& own = failure.own;
  ereport(as_warning ? WARNING : ERROR,
          (errcode(own.sqlstate), errmsg_internal("%s", own.message),
           own.detail[0] ? errdetail_internal("%s", own.detail) : 0, own.hint[0] ? errhint("%s", own.hint) : 0,
           entry_point ? errcontext("celaest %s", entry_point) : 0));
}

ErrorData* copy_and_flush_pg_error(MemoryContext caller_context) noexcept {
  // CopyErrorData allocates, so it can fail with an ERROR of its own (out of memory): that
  // ERROR must land here, not in the frames of our callers, hence the nested jump buffer.
  sigjmp_buf* outer_exception_stack = PG_exception_stack;
  ErrorData* volatile copied = nullptr;
  sigjmp_buf copy_failed;
  if (sigsetjmp(copy_failed, 0) == 0) {
    PG_exception_stack = &copy_failed;
    MemoryContext target = entry_error_context != nullptr ? entry_error_context : caller_context;
    if (target == ErrorContext) target = TopMemoryContext;  // CopyErrorData may not copy into it
    MemoryContextSwitchTo(target);
    copied = CopyErrorData();
    FlushErrorState();
  } else {
    copied = nullptr;  // the copy failed: both errors are dropped, the caller reports one
    FlushErrorState();
  }
  PG_exception_stack = outer_exception_stack;
  MemoryContextSwitchTo(caller_context);
  return copied;
}

void defer_error(ErrorData* error) noexcept {
  if (deferred_error == nullptr) deferred_error = error;
}

}  // namespace celaest::pg::detail
