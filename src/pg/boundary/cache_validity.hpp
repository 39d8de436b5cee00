// When a per-backend (or shared-memory) copy of database rows may be used.
//
// Each copy carries the generation of its domain, read *before* the rows were read. A
// statement-level trigger on every table such copies come from marks the transaction with
// the domain; when a marked transaction commits, that domain's generation moves on (after
// the commit is visible to new snapshots), so every backend drops those copies on its next
// look. Until then, the marked transaction itself uses no copy of that domain: it may see
// its own uncommitted change.
#pragma once

#include <cstdint>
#include <optional>

namespace celaest::pg::cache_validity {

enum class Domain : int {
  Licensing = 0,  // licenses (terms), subscription_plans, system_config: license_quota.cpp
  Routing = 1,    // ai_models, ai_api_pool (configuration, health): routing_catalog.cpp
  Identity = 2,   // users_profile (organization of a user): caller.cpp
};
inline constexpr int kDomains = 3;

// A copy is also read again once it is this old, whatever the generation says: a bound on
// staleness where no trigger can see a change (triggers disabled by a bulk load, a prepared
// transaction committed by COMMIT PREPARED, rows written by logical replication).
inline constexpr int64_t kMaxCopyAgeMs = 10'000;

// The generation a copy must carry to be used now, and the one to stamp on a copy about to
// be read. nullopt: use no copy and make none (not preloaded; a hot standby, where the
// primary's triggers never run here; this transaction changed the domain's rows; or it runs
// on one snapshot: REPEATABLE READ / SERIALIZABLE, whose snapshot may predate the generation).
std::optional<uint64_t> current(Domain domain);

// This transaction changed rows of the domain (the trigger celaest._cached_data_changed).
void note_change(Domain domain);

void register_callbacks();     // from _PG_init
void reserve_shared_memory();  // from _PG_init, when preloaded: the generation counters

}  // namespace celaest::pg::cache_validity
