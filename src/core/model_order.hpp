// The order in which a call tries models (API.md "Routing"): among the active text models
// (of the requested provider, if any), the requested model first, then the prompt's
// preferred model, then the catalogue order (default first, then by priority). Kept apart
// from PostgreSQL so that the rule is tested alone; the catalogue order itself comes sorted
// from the database (its collation decides ties between model names).
#pragma once

#include "core/provider.hpp"

#include <optional>
#include <string>
#include <vector>

namespace celaest::core {

struct CatalogModel {
  std::string id;        // ai_models.id
  std::string model_id;  // the provider's model name
  Provider provider = Provider::OpenAI;
  std::string price_in_per_1k, price_out_per_1k;
  bool active = false;
  bool text_generation = true;  // capabilities->>'text_generation' is not 'false'
  bool json_mode = false;        // capabilities->>'json_mode' is 'true'
};

enum class NamedModel { NotNamed, Unknown, Inactive, Usable };

// Whether `model_id` (of `provider`, if given) exists and is active in the catalogue.
NamedModel named_model_state(const std::vector<CatalogModel>& catalogue, const std::optional<std::string>& model_id,
                             const std::optional<Provider>& provider);

// Indexes into `catalogue` (which is in catalogue order), first choice first. Fallback is
// "through active models of the same capability" (API.md): when the call asks for JSON
// output, the models after the first choice must declare json_mode; the first choice is
// the caller's (or the catalogue's) and is tried as it is.
std::vector<size_t> candidate_order(const std::vector<CatalogModel>& catalogue,
                                    const std::optional<Provider>& provider,
                                    const std::optional<std::string>& requested_model_id,
                                    const std::optional<std::string>& preferred_id, bool needs_json_mode = false);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
