#include "pg/workers/registry.hpp"

#include "pg/boundary/boundary.hpp"

extern "C" {
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
}

#include <csignal>
#include <cstring>
#include <memory>

namespace celaest::pg::workers {

namespace {

struct WorkerSlot {
  int pid;
  Latch* latch;
  char state[32];
  TimestampTz last_run;
  char last_error[256];
  int64 runs;
};

struct DatabaseSlot {
  Oid database;  // InvalidOid: free
  char name[NAMEDATALEN];
  Extension extension;
  bool wake;
  TimestampTz paused_until;
  WorkerSlot workers[kRoles];
};

struct Registry {
  LWLock* lock;
  int launcher_pid;
  Latch* launcher_latch;
  TimestampTz launcher_last_run;
  int64 launcher_runs;
  DatabaseSlot databases[kMaxDatabases];
};

Registry* registry = nullptr;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;

void on_shmem_request() noexcept {
  run_entry_point("worker registry shmem request", OnFailure::RaiseError, [&] {
    pg_guarded([] {
      if (previous_request_hook) previous_request_hook();
      RequestAddinShmemSpace(MAXALIGN(sizeof(Registry)));
      RequestNamedLWLockTranche("celaest workers", 1);
    });
  });
}

void on_shmem_startup() noexcept {
  run_entry_point("worker registry shmem startup", OnFailure::RaiseError, [&] {
    pg_guarded([] {
      if (previous_startup_hook) previous_startup_hook();
      LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
      bool found = false;
      registry = static_cast<Registry*>(ShmemInitStruct("celaest workers", sizeof(Registry), &found));
      if (!found) {
        std::memset(registry, 0, sizeof(Registry));
        registry->lock = &(GetNamedLWLockTranche("celaest workers"))->lock;
      }
      LWLockRelease(AddinShmemInitLock);
    });
  });
}

void copy_text(char* destination, size_t capacity, const char* source) noexcept {
  std::strncpy(destination, source ? source : "", capacity - 1);
  destination[capacity - 1] = '\0';
}

// The lock is taken and released in the same plain frame by every function below; nothing
// between the two can ERROR, so no release is ever skipped.
void lock(LWLockMode mode) noexcept { LWLockAcquire(registry->lock, mode); }
void unlock() noexcept { LWLockRelease(registry->lock); }

bool valid(int slot) noexcept { return registry && slot >= 0 && slot < kMaxDatabases; }

int find_locked(Oid database) noexcept {
  for (int i = 0; i < kMaxDatabases; ++i)
    if (registry->databases[i].database == database) return i;
  return -1;
}

}  // namespace

const char* role_name(Role role) noexcept {
  switch (role) {
    case Role::Maintenance:
      return "celaest maintenance";
    case Role::BatchRunner:
      return "celaest batch runner";
    case Role::LedgerWriter:
      return "celaest ledger writer";
  }
  return "celaest worker";
}

void request_registry() noexcept {
  previous_request_hook = shmem_request_hook;
  shmem_request_hook = on_shmem_request;
  previous_startup_hook = shmem_startup_hook;
  shmem_startup_hook = on_shmem_startup;
}

bool registry_available() noexcept { return registry != nullptr; }

void launcher_attached(Latch* latch) noexcept {
  if (!registry) return;
  lock(LW_EXCLUSIVE);
  registry->launcher_pid = MyProcPid;
  registry->launcher_latch = latch;
  unlock();
}

void launcher_ran() noexcept {
  if (!registry) return;
  lock(LW_EXCLUSIVE);
  registry->launcher_last_run = GetCurrentTimestamp();
  registry->launcher_runs++;
  unlock();
}

int slot_for(Oid database, const char* name) noexcept {
  if (!registry) return -1;
  lock(LW_EXCLUSIVE);
  int slot = find_locked(database);
  if (slot < 0) {
    slot = find_locked(InvalidOid);
    if (slot >= 0) {
      DatabaseSlot& fresh = registry->databases[slot];
      std::memset(&fresh, 0, sizeof fresh);
      fresh.database = database;
      fresh.extension = Extension::Unknown;  // its maintenance worker starts and looks
    }
  }
  if (slot >= 0) copy_text(registry->databases[slot].name, NAMEDATALEN, name);  // follows a rename
  unlock();
  return slot;
}

void free_slot(int slot) noexcept {
  if (!valid(slot)) return;
  lock(LW_EXCLUSIVE);
  std::memset(&registry->databases[slot], 0, sizeof(DatabaseSlot));
  unlock();
}

bool view_slot(int slot, DatabaseView* view) noexcept {
  if (!valid(slot)) return false;
  lock(LW_SHARED);
  const DatabaseSlot& entry = registry->databases[slot];
  const bool used = entry.database != InvalidOid;
  if (used) {
    view->database = entry.database;
    view->extension = entry.extension;
    view->wake = entry.wake;
    view->paused_until = entry.paused_until;
    for (int role = 0; role < kRoles; ++role) view->pids[role] = entry.workers[role].pid;
  }
  unlock();
  return used;
}

void clear_wake(int slot) noexcept {
  if (!valid(slot)) return;
  lock(LW_EXCLUSIVE);
  registry->databases[slot].wake = false;
  unlock();
}

int worker_attached(Oid database, Role role) noexcept {
  if (!registry) return -1;
  lock(LW_EXCLUSIVE);
  const int slot = find_locked(database);
  if (slot >= 0) {
    WorkerSlot& worker = registry->databases[slot].workers[static_cast<int>(role)];
    worker.pid = MyProcPid;
    worker.latch = MyLatch;
    copy_text(worker.state, sizeof worker.state, "starting");
  }
  unlock();
  return slot;
}

void worker_state(int slot, Role role, const char* state) noexcept {
  if (!valid(slot)) return;
  lock(LW_EXCLUSIVE);
  WorkerSlot& worker = registry->databases[slot].workers[static_cast<int>(role)];
  if (worker.pid == MyProcPid) copy_text(worker.state, sizeof worker.state, state);
  unlock();
}

void worker_ran(int slot, Role role, const char* error_or_null) noexcept {
  if (!valid(slot)) return;
  lock(LW_EXCLUSIVE);
  WorkerSlot& worker = registry->databases[slot].workers[static_cast<int>(role)];
  if (worker.pid == MyProcPid) {
    worker.last_run = GetCurrentTimestamp();
    worker.runs++;
    copy_text(worker.last_error, sizeof worker.last_error, error_or_null ? error_or_null : "");
  }
  unlock();
}

void worker_detached(int slot, Role role) noexcept {
  if (!valid(slot)) return;
  lock(LW_EXCLUSIVE);
  WorkerSlot& worker = registry->databases[slot].workers[static_cast<int>(role)];
  if (worker.pid == MyProcPid) {
    worker.pid = 0;
    worker.latch = nullptr;
    copy_text(worker.state, sizeof worker.state, "stopped");
  }
  unlock();
}

void extension_present(int slot) noexcept {
  if (!valid(slot)) return;
  Latch* latch = nullptr;
  lock(LW_EXCLUSIVE);
  if (registry->databases[slot].extension != Extension::Present) {
    registry->databases[slot].extension = Extension::Present;
    latch = registry->launcher_latch;  // the rest of the set starts now, not at the next tick
  }
  unlock();
  if (latch) SetLatch(latch);
}

void extension_absent(int slot) noexcept {
  if (!valid(slot)) return;
  lock(LW_EXCLUSIVE);
  registry->databases[slot].extension = Extension::Absent;
  unlock();
}

void wake_worker(Role role) noexcept {
  if (!registry) return;
  Latch* latch = nullptr;
  lock(LW_SHARED);
  const int slot = find_locked(MyDatabaseId);
  if (slot >= 0) latch = registry->databases[slot].workers[static_cast<int>(role)].latch;
  unlock();
  if (latch) SetLatch(latch);
}

void wake_launcher_for_current_database() noexcept {
  if (!registry) return;
  Latch* latch = nullptr;
  lock(LW_EXCLUSIVE);
  const int slot = find_locked(MyDatabaseId);
  if (slot >= 0) {
    registry->databases[slot].extension = Extension::Present;
    registry->databases[slot].wake = true;
  }
  latch = registry->launcher_latch;  // a new database gets its slot on the launcher's next look
  unlock();
  if (latch) SetLatch(latch);
}

bool release_database(Oid database, long pause_ms, long wait_ms) noexcept {
  if (!registry) return true;
  const TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait_ms);
  for (;;) {
    int pids[kRoles] = {};
    bool any = false;
    lock(LW_EXCLUSIVE);
    const int slot = find_locked(database);
    if (slot >= 0) {
      DatabaseSlot& entry = registry->databases[slot];
      entry.paused_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), pause_ms);
      for (int role = 0; role < kRoles; ++role) {
        pids[role] = entry.workers[role].pid;
        any = any || pids[role] != 0;
      }
    }
    unlock();
    if (!any) return true;
    // SIGTERM: the workers' handler (die) ends them at their next interrupt check.
    for (int pid : pids)
      if (pid != 0) kill(pid, SIGTERM);
    if (GetCurrentTimestamp() >= deadline) return false;
    pg_usleep(20'000L);
  }
}

std::vector<WorkerRow> worker_rows() {
  std::vector<WorkerRow> rows;
  if (!registry) {
    for (int role = 0; role < kRoles; ++role) {
      WorkerRow row;
      row.worker = role_name(static_cast<Role>(role));
      row.state = "not preloaded";
      rows.push_back(row);
    }
    return rows;
  }
  // Copied under the lock into plain structs first: nothing below the lock may allocate.
  struct Copy {
    DatabaseSlot slots[kMaxDatabases];
    int launcher_pid;
    TimestampTz launcher_last_run;
    int64 launcher_runs;
  };
  auto copy = std::make_unique<Copy>();
  lock(LW_SHARED);
  std::memcpy(copy->slots, registry->databases, sizeof copy->slots);
  copy->launcher_pid = registry->launcher_pid;
  copy->launcher_last_run = registry->launcher_last_run;
  copy->launcher_runs = registry->launcher_runs;
  unlock();

  WorkerRow launcher;
  launcher.worker = "celaest launcher";
  launcher.pid = copy->launcher_pid;
  launcher.state = copy->launcher_pid ? "running" : "not started";
  launcher.last_run = copy->launcher_last_run;
  launcher.runs = copy->launcher_runs;
  rows.push_back(launcher);
  for (const DatabaseSlot& entry : copy->slots) {
    if (entry.database == InvalidOid || entry.extension != Extension::Present) continue;
    for (int role = 0; role < kRoles; ++role) {
      const WorkerSlot& worker = entry.workers[role];
      WorkerRow row;
      row.worker = role_name(static_cast<Role>(role));
      row.database = entry.name;
      row.pid = worker.pid;
      row.state = worker.pid ? (worker.state[0] ? worker.state : "starting") : "stopped";
      row.last_run = worker.last_run;
      row.last_error = worker.last_error;
      row.runs = worker.runs;
      rows.push_back(row);
    }
  }
  return rows;
}

}  // namespace celaest::pg::workers
