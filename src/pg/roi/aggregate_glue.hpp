// What the ROI module's native aggregates and functions share at the PostgreSQL boundary: an
// aggregate state that is a C++ object owned by the aggregate's memory context, array
// arguments read as Datums, bytes returned as bytea.
#pragma once

#include "core/uuid_bytes.hpp"
#include "pg/boundary/boundary.hpp"

#include <vector>

namespace celaest::pg::roi {

// The aggregate's memory context; ERROR when not called as an aggregate.
MemoryContext aggregate_context(FunctionCallInfo fcinfo);

// Registers `object` to be deleted when `context` is reset or deleted (end of the query, or an
// error), and returns it.
template <typename T>
T* owned_by(MemoryContext context, T* object) {
  auto* callback = static_cast<MemoryContextCallback*>(
      pg_guarded([&] { return MemoryContextAllocZero(context, sizeof(MemoryContextCallback)); }));
  callback->func = [](void* arg) { delete static_cast<T*>(arg); };
  callback->arg = object;
  pg_guarded([&] { MemoryContextRegisterResetCallback(context, callback); });
  return object;
}

// The elements of a one-dimensional array argument (NULL elements flagged); none when the
// argument is NULL.
struct ArrayElements {
  Datum* values = nullptr;
  bool* nulls = nullptr;
  int count = 0;
};
ArrayElements array_elements(FunctionCallInfo fcinfo, int argument, Oid element_type);

core::UuidBytes uuid_bytes(Datum datum);
// The non-NULL elements of a uuid array.
std::vector<core::UuidBytes> uuid_list(const ArrayElements& elements);

// A bytea holding `bytes`, in the current memory context.
Datum bytea_datum(const std::vector<unsigned char>& bytes);

}  // namespace celaest::pg::roi
