// When a per-backend copy of database rows (license terms, routing) may be used.
//
// Each copy carries the shared cache generation read *before* the rows were read. A
// statement-level trigger on every table such a copy comes from marks the transaction;
// when a marked transaction commits, the generation moves on (after the commit is visible
// to new snapshots), so every backend drops its copies on its next look. Until then, the
// marked transaction itself uses no copy at all: it may see its own uncommitted change.
#pragma once

#include <cstdint>
#include <optional>

namespace celaest::pg::cache_validity {

// The generation a copy must carry to be used now, and the one to stamp on a copy about to
// be read. nullopt: use no copy and make none (not preloaded, this transaction changed
// cached data, or it runs on one snapshot: REPEATABLE READ / SERIALIZABLE, whose snapshot
// may predate the generation).
std::optional<uint64_t> current();

// This transaction changed rows that caches copy (the trigger celaest._cached_data_changed).
void note_change();

void register_callbacks();  // from _PG_init

}  // namespace celaest::pg::cache_validity
