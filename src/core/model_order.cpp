#include "core/model_order.hpp"

#include <algorithm>

namespace celaest::core {

NamedModel named_model_state(const std::vector<CatalogModel>& catalogue, const std::optional<std::string>& model_id,
                             const std::optional<Provider>& provider) {
  if (!model_id) return NamedModel::NotNamed;
  bool found = false;
  for (const CatalogModel& model : catalogue) {
    if (model.model_id != *model_id || (provider && model.provider != *provider)) continue;
    if (model.active) return NamedModel::Usable;
    found = true;
  }
  return found ? NamedModel::Inactive : NamedModel::Unknown;
}

std::vector<size_t> candidate_order(const std::vector<CatalogModel>& catalogue, const ModelRequest& request) {
  auto eligible = [&](const CatalogModel& model) {
    return model.active && model.text_generation && (!request.provider || model.provider == *request.provider);
  };
  std::vector<size_t> order;
  auto take = [&](size_t i) {
    if (std::find(order.begin(), order.end(), i) == order.end()) order.push_back(i);
  };

  // The first choice: requested, else preferred, else the catalogue's first.
  std::optional<size_t> first;
  for (size_t i = 0; i < catalogue.size() && !first; ++i)
    if (eligible(catalogue[i]) && request.requested_model_id && catalogue[i].model_id == *request.requested_model_id)
      first = i;
  if (!request.requested_model_id) {
    for (size_t i = 0; i < catalogue.size() && !first; ++i)
      if (eligible(catalogue[i]) && request.preferred_id && catalogue[i].id == *request.preferred_id) first = i;
    for (size_t i = 0; i < catalogue.size() && !first; ++i)
      if (eligible(catalogue[i])) first = i;
  }
  if (first) take(*first);

  // The caller's own fallback list, in its order: named models, tried as they are.
  for (const std::string& model_id : request.fallback_models)
    for (size_t i = 0; i < catalogue.size(); ++i)
      if (catalogue[i].active && catalogue[i].text_generation && catalogue[i].model_id == model_id) {
        take(i);
        break;
      }

  if (request.automatic_fallback) {
    // The prompt's preferred model ranks before the rest of the catalogue.
    std::vector<size_t> rest;
    for (size_t i = 0; i < catalogue.size(); ++i)
      if (eligible(catalogue[i]) && (!request.needs_json_mode || catalogue[i].json_mode)) rest.push_back(i);
    std::stable_partition(rest.begin(), rest.end(), [&](size_t i) {
      return request.preferred_id && catalogue[i].id == *request.preferred_id;
    });
    for (size_t i : rest) take(i);
  }
  return order;
}

}  // namespace celaest::core
