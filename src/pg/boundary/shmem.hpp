// Shared memory by concern (needs shared_preload_libraries). Each concern declares one
// Segment<Region> in the file of its only user and reserves it from _PG_init; this file owns
// the shmem_request/startup hooks and hands each segment its memory and its own LWLock (a
// tranche of one lock named after the segment, so that a wait shows up in pg_stat_activity
// under the concern that caused it). No lock is shared between concerns: the key windows, the
// license in-flight counts, the license terms and the worker slots never wait on each other.
#pragma once

#include "pg/boundary/boundary.hpp"

extern "C" {
#include "storage/lwlock.h"
}

#include <cstddef>
#include <type_traits>

namespace celaest::pg::shmem {

namespace detail {

struct Reservation {
  const char* name;
  std::size_t size;
  void* owner;
  void (*attach)(void* owner, void* memory, LWLock* lock, bool created);
};
// From _PG_init (through Segment::reserve): remembered until the request hook asks for it.
void reserve(const Reservation& reservation);

}  // namespace detail

// From _PG_init, after the segments are reserved.
void install_hooks();

// Holds an LWLock. Releasing does not ERROR (the lock is held), so a destructor may do it;
// an ERROR elsewhere releases every LWLock anyway (AbortTransaction's LWLockReleaseAll).
class LockGuard {
 public:
  LockGuard(LWLock* lock, LWLockMode mode) : lock_(lock) { pg_guarded([&] { LWLockAcquire(lock_, mode); }); }
  ~LockGuard() { LWLockRelease(lock_); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  LWLock* lock_;
};

// One concern's state. Region is plain data (no pointers into backend memory, no
// destructor); all bytes zero is its initial state unless `initialize` says more.
template <typename Region>
class Segment {
  static_assert(std::is_trivially_destructible_v<Region>, "shared memory is never destroyed");

 public:
  using Initialize = void (*)(Region&);

  constexpr explicit Segment(const char* name, Initialize initialize = nullptr)
      : name_(name), initialize_(initialize) {}

  // From _PG_init while shared_preload_libraries is being loaded.
  void reserve() { detail::reserve({name_, sizeof(Region), this, &Segment::attach}); }

  // The region in shared memory, or nullptr when not preloaded: for lock-free readers (atomics)
  // and for concerns that have no meaning within one backend.
  Region* shared() const noexcept { return shared_; }
  // The segment's lock (nullptr when not preloaded), for a holder that must keep it across a
  // step that is not a function call (the ledger writer's commit).
  LWLock* lock() const noexcept { return lock_; }

  // fn(Region&) under the segment's lock. Not preloaded: on this backend's own copy, without a
  // lock (nothing else can see it), so the concern still holds within the backend.
  template <typename Fn>
  decltype(auto) locked(LWLockMode mode, Fn&& fn) {
    if (!shared_) return fn(local());
    LockGuard guard(lock_, mode);
    return fn(*shared_);
  }

 private:
  static void attach(void* owner, void* memory, LWLock* lock, bool created) {
    auto* self = static_cast<Segment*>(owner);
    self->shared_ = static_cast<Region*>(memory);
    self->lock_ = lock;
    if (created && self->initialize_) self->initialize_(*self->shared_);
  }

  Region& local() {
    if (!local_) {
      local_ = new Region();  // value-initialized: zero, like fresh shared memory; lives as long as the backend
      if (initialize_) initialize_(*local_);
    }
    return *local_;
  }

  const char* name_;
  Initialize initialize_;
  Region* shared_ = nullptr;
  LWLock* lock_ = nullptr;
  Region* local_ = nullptr;
};

}  // namespace celaest::pg::shmem
