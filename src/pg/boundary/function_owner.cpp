#include "pg/boundary/function_owner.hpp"

#include "pg/boundary/boundary.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "utils/syscache.h"
}

namespace celaest::pg {

Oid function_owner(Oid function_oid) {
  return pg_guarded([function_oid] {
    HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function_oid));
    if (!HeapTupleIsValid(tuple)) elog(ERROR, "celaest: cache lookup failed for function %u", function_oid);
    const Oid owner = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple))->proowner;
    ReleaseSysCache(tuple);
    return owner;
  });
}

}  // namespace celaest::pg
