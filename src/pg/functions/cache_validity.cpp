// celaest._cached_data_changed(), the trigger of src/sql/78_cache_validity.sql: marks the
// transaction as having changed rows that the hot paths copy (pg/boundary/cache_validity.hpp).
#include "pg/boundary/boundary.hpp"
#include "pg/boundary/cache_validity.hpp"

extern "C" {
#include "commands/trigger.h"
}

#include <cstring>
#include <string>

// Statement-level trigger on the tables that caches copy (created in src/sql/78_cache_validity.sql);
// its argument names the domain: licensing, routing or identity.
CELAEST_FUNCTION(celaest_cached_data_changed) {
  using celaest::pg::Error;
  using celaest::pg::cache_validity::Domain;
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "celaest._cached_data_changed() must be called as a trigger");
  const Trigger* trigger = reinterpret_cast<TriggerData*>(fcinfo->context)->tg_trigger;
  const char* domain = trigger->tgnargs == 1 ? trigger->tgargs[0] : "";
  if (std::strcmp(domain, "licensing") == 0) {
    celaest::pg::cache_validity::note_change(Domain::Licensing);
  } else if (std::strcmp(domain, "routing") == 0) {
    celaest::pg::cache_validity::note_change(Domain::Routing);
  } else if (std::strcmp(domain, "identity") == 0) {
    celaest::pg::cache_validity::note_change(Domain::Identity);
  } else {
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                std::string("celaest._cached_data_changed(): unknown cache domain \"") + domain + "\"", "",
                "The trigger argument is licensing, routing or identity.");
  }
  return PointerGetDatum(nullptr);
}
