#include "pg/boundary/wall_clock.hpp"

#include <random>

namespace celaest::pg {

double random_unit() {
  static std::mt19937_64 generator{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

}  // namespace celaest::pg
