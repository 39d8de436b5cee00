// Work that may fail on its own, without failing the statement around it: PL/pgSQL's
// BEGIN ... EXCEPTION, for C++.
//
// After a PostgreSQL ERROR, the only way to go on using PostgreSQL in the same transaction is
// to roll back a subtransaction begun before the failing work: it releases the locks, buffers,
// snapshots and SPI state the ERROR left behind. So a caller that wants to carry on after a
// PgError runs the work through in_subtransaction() and catches outside it.
#pragma once

#include "pg/boundary/boundary.hpp"

extern "C" {
#include "access/xact.h"
#include "utils/resowner.h"
}

namespace celaest::pg {

// Runs `work` in an internal subtransaction: released when it returns, rolled back when it
// throws (anything: our own Error, a PgError, a C++ exception), and the exception goes on to
// the caller. The memory context and resource owner are the caller's again either way.
template <typename Work>
void in_subtransaction(Work&& work) {
  MemoryContext caller_context = CurrentMemoryContext;
  ResourceOwner caller_owner = CurrentResourceOwner;
  // The subtransaction makes its own memory context current; the work keeps allocating in the
  // caller's (SpiSession and Datum conversions expect it).
  pg_guarded([caller_context] {
    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(caller_context);
  });
  try {
    work();
  } catch (...) {
    pg_guarded([caller_context, caller_owner] {
      RollbackAndReleaseCurrentSubTransaction();
      MemoryContextSwitchTo(caller_context);
      CurrentResourceOwner = caller_owner;
    });
    throw;
  }
  pg_guarded([caller_context, caller_owner] {
    ReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(caller_context);
    CurrentResourceOwner = caller_owner;
  });
}

}  // namespace celaest::pg
