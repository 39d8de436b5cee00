#include "pg/boundary/shmem.hpp"

extern "C" {
#include "storage/ipc.h"
#include "storage/shmem.h"
}

#include <cstring>

namespace celaest::pg::shmem {

namespace {

// Constant-initialized (plain data): reservations made from _PG_init need no constructor to
// have run first.
constexpr int kMaxSegments = 8;
detail::Reservation reservations[kMaxSegments];
int reserved = 0;

shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;

// The two hooks go through the boundary like every entry point (an error stops the postmaster
// with an ERROR rather than an exception); their bodies call only PostgreSQL and the segments'
// attach functions, which store pointers and initialize plain data.
void on_shmem_request() noexcept {
  run_entry_point("shared memory request", OnFailure::RaiseError, [&] {
    pg_guarded([] {
      if (previous_request_hook) previous_request_hook();
      for (int i = 0; i < reserved; ++i) {
        RequestAddinShmemSpace(CACHELINEALIGN(reservations[i].size));  // ShmemAlloc's own rounding
        RequestNamedLWLockTranche(reservations[i].name, 1);
      }
    });
  });
}

void on_shmem_startup() noexcept {
  run_entry_point("shared memory startup", OnFailure::RaiseError, [&] {
    pg_guarded([] {
      if (previous_startup_hook) previous_startup_hook();
      LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
      for (int i = 0; i < reserved; ++i) {
        const detail::Reservation& segment = reservations[i];
        bool found = false;
        void* memory = ShmemInitStruct(segment.name, segment.size, &found);
        if (!found) std::memset(memory, 0, segment.size);
        segment.attach(segment.owner, memory, &GetNamedLWLockTranche(segment.name)->lock, !found);
      }
      LWLockRelease(AddinShmemInitLock);
    });
  });
}

}  // namespace

namespace detail {

void reserve(const Reservation& reservation) {
  // Only _PG_init calls this, with a fixed set of segments: more is a programming error.
  if (reserved == kMaxSegments) elog(FATAL, "celaest: more than %d shared memory segments reserved", kMaxSegments);
  reservations[reserved++] = reservation;
}

}  // namespace detail

void install_hooks() {
  previous_request_hook = shmem_request_hook;
  shmem_request_hook = on_shmem_request;
  previous_startup_hook = shmem_startup_hook;
  shmem_startup_hook = on_shmem_startup;
}

}  // namespace celaest::pg::shmem
