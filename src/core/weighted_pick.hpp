// Choosing among usable API keys (or models): highest priority first, then by weight.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

namespace celaest::core {

struct Candidate {
  int priority;
  int weight;
};

// The index of the chosen candidate, nullopt for an empty list. random01 in [0,1) is the
// caller's random draw.
// - Only candidates of the highest priority that has a positive weight are eligible; a
//   priority level whose weights are all 0 is drained and skipped.
// - Among them, the chance of each is weight / sum of weights (negative weight = 0).
// - Weight 0 is never chosen unless every candidate has weight <= 0; then the choice is
//   uniform among the highest priority.
std::optional<std::size_t> pick_candidate(const std::vector<Candidate>& candidates, double random01);

}  // namespace celaest::core

#include "core/cpp_only.hpp"
