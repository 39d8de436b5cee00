// The role that owns a function (pg_proc.proowner): the extension's owner for celaest's own
// functions. Glue that must act as the extension (a SECURITY DEFINER's effect from C) runs as it.
#pragma once

extern "C" {
#include "postgres.h"
#include "miscadmin.h"
}

namespace celaest::pg {

// ERROR (as a thrown PgError) when the function does not exist.
Oid function_owner(Oid function_oid);

// While it lives, statements run as `owner` (a SECURITY DEFINER's effect from C): row-level
// security and privileges are the owner's; the calling role (GetOuterUserId) and so the
// acting identity stay the caller's. Restored on scope exit, also when an error unwinds (and
// by the transaction's abort anyway).
class RunAsOwner {
 public:
  explicit RunAsOwner(Oid owner) {
    GetUserIdAndSecContext(&saved_user_, &saved_context_);
    SetUserIdAndSecContext(owner, saved_context_ | SECURITY_LOCAL_USERID_CHANGE);
  }
  ~RunAsOwner() { SetUserIdAndSecContext(saved_user_, saved_context_); }
  RunAsOwner(const RunAsOwner&) = delete;
  RunAsOwner& operator=(const RunAsOwner&) = delete;

 private:
  Oid saved_user_ = InvalidOid;
  int saved_context_ = 0;
};

}  // namespace celaest::pg
