// What a call or a health check learned about an API key, written back to the pool:
// usage counters, consecutive failures and health (celaest.health_failure_threshold).
#pragma once

#include "pg/spi.hpp"

#include <string>

namespace celaest::pg {

class KeyHealth {
 public:
  explicit KeyHealth(SpiSession& spi) : spi_(spi) {}

  void record_use(const std::string& key_id, long long tokens);  // increment_api_key_usage
  // record_use() and succeeded() in one statement: the common outcome of a call.
  void record_successful_use(const std::string& key_id, long long tokens);
  void succeeded(const std::string& key_id);                      // resets the failure count
  // Counts a failure; `definitive` (401/403/invalid key/billing) marks the key unhealthy at once.
  void failed(const std::string& key_id, bool definitive);
  void checked(const std::string& key_id);                        // stamps last_health_check

 private:
  SpiSession& spi_;
};

}  // namespace celaest::pg
