// State shared by all backends and the background workers (needs shared_preload_libraries):
// the workers' status for worker_status(), and each API key's rate-limit windows, so that
// RPM/TPM/RPD stay exact across concurrent sessions without a row lock held during a call.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace celaest::pg::shared {

enum class WorkerKind : int { Maintenance = 0, BatchRunner = 1 };
inline constexpr int kWorkerKinds = 2;
const char* worker_name(WorkerKind kind);

void request();                 // from _PG_init (shmem_request_hook)
bool available();               // false when not preloaded

struct WorkerStatus {
  std::string worker, database, state, last_error;
  int pid = 0;
  int64_t last_run = 0;  // TimestampTz, 0 = never
  int64_t runs = 0;
};
WorkerStatus worker_status(WorkerKind kind);
void worker_started(WorkerKind kind, const char* database);
void worker_state(WorkerKind kind, const char* state);
void worker_ran(WorkerKind kind, const char* error_or_null);
void worker_stopped(WorkerKind kind);
void wake_worker(WorkerKind kind);  // sets the worker's latch (e.g. after submit_batch)

// Rate-limit windows of one API key (fixed minute and day windows, UTC).
struct KeyLimits {
  std::optional<int64_t> rpm, tpm, rpd;
};
enum class Admission { Admitted, NoRoom, CoolingDown };
// Atomically admits one request if every window has room, and counts it.
Admission admit_request(const std::string& key_id, const KeyLimits& limits, int64_t now_ms);
void record_tokens(const std::string& key_id, int64_t tokens, int64_t now_ms);
void cool_down(const std::string& key_id, int64_t until_ms);  // after a 429 with Retry-After
// Keys still cooling down at now_ms, each with the instant (Unix ms) its cool-down ends:
// what v_api_pool_status reports. Copied under a shared lock; the caller gets plain values.
std::vector<std::pair<std::string, int64_t>> cooling_keys(int64_t now_ms);

// AI requests of a license admitted but not yet committed (charged at the end of the call):
// admission counts them, so concurrent calls of one organization never overshoot the quota
// while none of them holds the license row lock during its provider call.
// Admits when inflight + 1 <= remaining (remaining < 0 = unlimited); returns the in-flight
// count seen (before admission) in *inflight.
bool admit_inflight(const std::string& license_id, int64_t remaining, int64_t* inflight);
void release_inflight(const std::string& license_id);

// The license in force of an organization and its effective AI-request cap (-1 unlimited),
// as license_quota.cpp reads them: kept here so that the whole server reads them once per
// cache generation, not every backend (pooled connections come and go).
struct LicenseTermsCopy {
  std::string license_id;
  unsigned char license_uuid[16] = {};  // the same id, as the server's uuid value
  int64_t ai_cap = -1;
  bool trial = false;  // the license is a trial (its status, when the terms were read)
};
// Per database (the current one). find: only a copy of `generation` filled after
// `filled_after_ms` (Unix ms) counts.
std::optional<LicenseTermsCopy> find_license_terms(const std::string& organization_id, uint64_t generation,
                                                   int64_t filled_after_ms);
void keep_license_terms(const std::string& organization_id, const LicenseTermsCopy& terms, uint64_t generation,
                        int64_t filled_at_ms);

// Generation of the data that backends copy into their own caches (license terms, routing):
// bumped, without a lock, each time a transaction that changed such data commits
// (cache_validity.hpp). nullopt without shared memory: then no backend can tell another's
// change, and nothing may be cached.
// One counter per cache domain (cache_validity.hpp), so that a busy table of one domain does
// not empty the caches of another.
inline constexpr int kCacheDomains = 3;
std::optional<uint64_t> cache_generation(int domain);
void bump_cache_generation(int domain);

}  // namespace celaest::pg::shared
