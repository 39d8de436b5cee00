#include "core/weighted_pick.hpp"

#include <algorithm>
#include <climits>
#include <cmath>

namespace celaest::core {

std::optional<std::size_t> pick_candidate(const std::vector<Candidate>& candidates, double random01) {
  if (candidates.empty()) return std::nullopt;
  const double r = std::isnan(random01) ? 0.0 : std::clamp(random01, 0.0, 1.0);

  int best_weighted = INT_MIN, best_any = INT_MIN;
  bool any_weighted = false;
  for (const auto& c : candidates) {
    best_any = std::max(best_any, c.priority);
    if (c.weight > 0) {
      best_weighted = any_weighted ? std::max(best_weighted, c.priority) : c.priority;
      any_weighted = true;
    }
  }

  if (!any_weighted) {
    // Nothing carries weight: spread evenly over the top priority.
    std::vector<std::size_t> top;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (candidates[i].priority == best_any) top.push_back(i);
    }
    const auto k = std::min(static_cast<std::size_t>(r * static_cast<double>(top.size())), top.size() - 1);
    return top[k];
  }

  long long total = 0;
  for (const auto& c : candidates) {
    if (c.priority == best_weighted && c.weight > 0) total += c.weight;
  }
  // target in [0, total): walk the cumulative weights; r == 1 lands on the last one.
  const auto target = std::min(static_cast<long long>(r * static_cast<double>(total)), total - 1);
  long long cumulative = 0;
  std::optional<std::size_t> last;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const auto& c = candidates[i];
    if (c.priority != best_weighted || c.weight <= 0) continue;
    cumulative += c.weight;
    last = i;
    if (target < cumulative) return i;
  }
  return last;
}

}  // namespace celaest::core
