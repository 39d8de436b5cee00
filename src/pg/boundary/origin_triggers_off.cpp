#include "pg/boundary/origin_triggers_off.hpp"

#include "pg/boundary/boundary.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace celaest::pg {

void with_origin_triggers_off(const std::function<void()>& work) {
  // The setting is superuser-only; the extension changes it for its own statement, not for the
  // caller. On an error the transaction's (or subtransaction's) abort unwinds the nest level.
  const int nest_level = pg_guarded([] {
    const int level = NewGUCNestLevel();
    (void)set_config_option("session_replication_role", "replica", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                            0, false);
    return level;
  });
  work();
  pg_guarded([nest_level] { AtEOXact_GUC(true, nest_level); });
}

}  // namespace celaest::pg
