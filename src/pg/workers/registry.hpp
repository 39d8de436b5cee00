// Which databases CELAEST serves and the state of their workers (shared memory, needs
// shared_preload_libraries).
//
// One slot per database the launcher (launcher.cpp) found. The launcher alone allocates and
// frees slots; each database's workers write their own status into their slot; any backend
// may ask for a slot's workers to start (CREATE EXTENSION committed) or to stand aside for a
// while (DROP DATABASE, ALTER DATABASE … RENAME, CREATE DATABASE … TEMPLATE need a database
// nobody is connected to).
//
// Every function here takes only this module's LWLock and calls nothing that can ERROR:
// callers may be plain C-style frames (worker mains, the utility hook, xact callbacks).
#pragma once

extern "C" {
#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"
}

#include <string>
#include <vector>

namespace celaest::pg::workers {

// The workers every served database gets.
enum class Role : int { Maintenance = 0, BatchRunner = 1, LedgerWriter = 2 };
inline constexpr int kRoles = 3;
const char* role_name(Role role) noexcept;  // also the worker's bgw_type ("celaest batch runner")

inline constexpr int kMaxDatabases = 64;

void request_registry() noexcept;  // from _PG_init, when preloading
bool registry_available() noexcept;

// --- the launcher
// What the workers of a database last found. Unknown: only the maintenance worker is started,
// to look (one process per database without the extension, not a whole set).
enum class Extension : int { Unknown = 0, Present = 1, Absent = 2 };

struct DatabaseView {
  Oid database = InvalidOid;
  Extension extension = Extension::Unknown;
  bool wake = false;            // CREATE EXTENSION committed here since the last start
  TimestampTz paused_until = 0; // no workers before this time
  int pids[kRoles] = {};
};
void launcher_attached(Latch* latch) noexcept;
void launcher_ran() noexcept;
// The slot of `database` (allocated, extension Unknown, if new); -1 when full.
int slot_for(Oid database, const char* name) noexcept;
void free_slot(int slot) noexcept;
bool view_slot(int slot, DatabaseView* view) noexcept;  // false: a free slot
void clear_wake(int slot) noexcept;

// --- a database's worker
// Attaches the calling worker to its database's slot (-1: none, the launcher dropped it).
int worker_attached(Oid database, Role role) noexcept;
void worker_state(int slot, Role role, const char* state) noexcept;
void worker_ran(int slot, Role role, const char* error_or_null) noexcept;
void worker_detached(int slot, Role role) noexcept;
void extension_present(int slot) noexcept;  // a unit ran with the extension: start the whole set
void extension_absent(int slot) noexcept;   // the worker found no extension: stop serving

// --- any backend
// Sets the latch of `role`'s worker of the current database (e.g. after submit_batch commits).
void wake_worker(Role role) noexcept;
// CREATE EXTENSION committed in the current database: start its workers now.
void wake_launcher_for_current_database() noexcept;
// Asks the workers of `database` to exit and keeps them off for `pause_ms`; waits up to
// `wait_ms` for them to be gone. Returns true when none is left.
bool release_database(Oid database, long pause_ms, long wait_ms) noexcept;

// worker_status(): the launcher, then every worker of every served database.
struct WorkerRow {
  std::string worker, database, state, last_error;
  int pid = 0;
  TimestampTz last_run = 0;  // 0 = never
  int64 runs = 0;
};
std::vector<WorkerRow> worker_rows();

}  // namespace celaest::pg::workers
