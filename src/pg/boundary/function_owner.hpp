// The role that owns a function (pg_proc.proowner): the extension's owner for celaest's own
// functions. Glue that must act as the extension (a SECURITY DEFINER's effect from C) runs as it.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace celaest::pg {

// ERROR (as a thrown PgError) when the function does not exist.
Oid function_owner(Oid function_oid);

}  // namespace celaest::pg
