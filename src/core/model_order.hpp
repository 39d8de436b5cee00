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

// What a call asks of routing (API.md "Routing and failover").
struct ModelRequest {
  std::optional<Provider> provider;               // the `provider` option
  std::optional<std::string> requested_model_id;  // the model the caller named
  std::optional<std::string> preferred_id;        // the prompt's preferred model (ai_models.id)
  bool needs_json_mode = false;
  // After the first choice: `fallback_models` (model ids, in the caller's order, tried as they
  // are), then, when `automatic_fallback`, the other active text models of the same capability
  // (JSON mode needs json_mode) in catalogue order.
  std::vector<std::string> fallback_models;
  bool automatic_fallback = true;
};

// Indexes into `catalogue` (which is in catalogue order: default first, then by priority),
// first choice first. The first choice is the requested model, else the preferred one, else
// the catalogue's first; it is tried as it is. No index appears twice; inactive or unknown
// fallback models are skipped (the glue refuses unknown ones before routing).
std::vector<size_t> candidate_order(const std::vector<CatalogModel>& catalogue, const ModelRequest& request);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
