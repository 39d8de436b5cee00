#include "core/fixed_hash_table.hpp"
#include "core/fixed_text.hpp"

#include "pg/licensing/license_terms_cache.hpp"

#include "pg/boundary/cache_validity.hpp"
#include "pg/boundary/shmem.hpp"

extern "C" {
#include "miscadmin.h"
}

#include <cstring>
#include <string_view>

namespace celaest::pg::license_terms_cache {

namespace {

struct TermsSlot {
  uint32_t database;  // organizations of different databases never share a slot
  core::FixedText<37> organization_id;
  core::FixedText<37> license_id;
  unsigned char license_uuid[16];
  int64_t ai_cap;
  int64_t concurrent_cap;
  bool trial;
  uint64_t generation;
  int64_t filled_at_ms;
};

struct OrganizationKey {
  uint32_t database;
  std::string_view organization_id;
};

struct OrganizationPolicy {
  using Key = OrganizationKey;
  static std::uint64_t hash(const Key& key) {
    return core::stable_hash(std::string_view(reinterpret_cast<const char*>(&key.database), sizeof key.database),
                             core::stable_hash(key.organization_id));
  }
  static bool holds(const TermsSlot& slot, const Key& key) {
    return slot.database == key.database && slot.organization_id == key.organization_id;
  }
  static void assign(TermsSlot& slot, const Key& key) {
    slot.database = key.database;
    slot.organization_id.assign(key.organization_id);
  }
};

using TermsTable = core::FixedHashTable<TermsSlot, OrganizationPolicy>;

// Organizations whose terms are kept. A copy of another generation, or too old to be used,
// is stale: its slot goes to the next organization that needs one. Full: not kept.
constexpr size_t kTermsSlots = 8192;

struct TermsCopies {
  TermsTable::Cell cells[kTermsSlots];
};

shmem::Segment<TermsCopies> segment("celaest license terms");

}  // namespace

std::optional<LicenseTermsCopy> find(const std::string& organization_id, uint64_t generation,
                                     int64_t filled_after_ms) {
  if (!segment.shared()) return std::nullopt;
  return segment.locked(LW_SHARED, [&](TermsCopies& copies) -> std::optional<LicenseTermsCopy> {
    TermsTable table(copies.cells, kTermsSlots);
    const TermsSlot* slot = table.find(OrganizationKey{MyDatabaseId, organization_id});
    if (!slot || slot->generation != generation || slot->filled_at_ms <= filled_after_ms) return std::nullopt;
    LicenseTermsCopy terms{std::string(slot->license_id.view()), {}, slot->ai_cap, slot->trial, slot->concurrent_cap};
    std::memcpy(terms.license_uuid, slot->license_uuid, sizeof terms.license_uuid);
    return terms;
  });
}

void keep(const std::string& organization_id, const LicenseTermsCopy& terms, uint64_t generation,
          int64_t filled_at_ms) {
  if (!segment.shared()) return;
  segment.locked(LW_EXCLUSIVE, [&](TermsCopies& copies) {
    TermsTable table(copies.cells, kTermsSlots);
    auto stale = [&](const TermsSlot& other) {
      return other.generation != generation || other.filled_at_ms <= filled_at_ms - cache_validity::kMaxCopyAgeMs;
    };
    TermsSlot* slot = table.insert(OrganizationKey{MyDatabaseId, organization_id}, stale).slot;
    if (!slot) return;
    slot->license_id.assign(terms.license_id);
    std::memcpy(slot->license_uuid, terms.license_uuid, sizeof slot->license_uuid);
    slot->ai_cap = terms.ai_cap;
    slot->concurrent_cap = terms.concurrent_cap;
    slot->trial = terms.trial;
    slot->generation = generation;
    slot->filled_at_ms = filled_at_ms;
  });
}

void reserve_shared_memory() { segment.reserve(); }

}  // namespace celaest::pg::license_terms_cache
