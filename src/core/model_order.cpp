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

std::vector<size_t> candidate_order(const std::vector<CatalogModel>& catalogue,
                                    const std::optional<Provider>& provider,
                                    const std::optional<std::string>& requested_model_id,
                                    const std::optional<std::string>& preferred_id, bool needs_json_mode) {
  std::vector<size_t> order;
  for (size_t i = 0; i < catalogue.size(); ++i) {
    const CatalogModel& model = catalogue[i];
    if (model.active && model.text_generation && (!provider || model.provider == *provider)) order.push_back(i);
  }
  // Requested before preferred before the rest; the catalogue order within each rank.
  auto rank = [&](size_t i) {
    const CatalogModel& model = catalogue[i];
    if (requested_model_id && model.model_id == *requested_model_id) return 0;
    if (preferred_id && model.id == *preferred_id) return 1;
    return 2;
  };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rank(a) < rank(b); });
  if (needs_json_mode && order.size() > 1)
    order.erase(std::remove_if(order.begin() + 1, order.end(), [&](size_t i) { return !catalogue[i].json_mode; }),
                order.end());
  return order;
}

}  // namespace celaest::core
