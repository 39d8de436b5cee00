// The license in force of an organization, its effective AI-request cap and its effective
// max_concurrent_tasks (-1 unlimited),
// as license_quota.cpp reads them, kept in shared memory so that the whole server reads them
// once per cache generation, not every backend (pooled connections come and go). Per database
// (the current one). Not preloaded: nothing is kept (no backend could tell another's change).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace celaest::pg::license_terms_cache {

struct LicenseTermsCopy {
  std::string license_id;
  unsigned char license_uuid[16] = {};  // the same id, as the server's uuid value
  int64_t ai_cap = -1;
  bool trial = false;  // the license is a trial (its status, when the terms were read)
  int64_t concurrent_cap = -1;  // max_concurrent_tasks in effect (the synchronous calls' gate)
};

// Only a copy of `generation` (cache_validity.hpp) filled after `filled_after_ms` (Unix ms) counts.
std::optional<LicenseTermsCopy> find(const std::string& organization_id, uint64_t generation,
                                     int64_t filled_after_ms);
void keep(const std::string& organization_id, const LicenseTermsCopy& terms, uint64_t generation,
          int64_t filled_at_ms);

void reserve_shared_memory();  // from _PG_init

}  // namespace celaest::pg::license_terms_cache
