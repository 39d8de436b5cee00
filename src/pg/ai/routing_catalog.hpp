// The model catalogue and the key pool's configuration, as routing reads them for every
// call: a per-backend copy, read again when the routing cache generation moves on (module
// 78: any change of ai_models, of a key's configuration or health). The usage counters and
// the rate-limit windows are not part of it.
#pragma once

#include "core/model_order.hpp"
#include "core/provider.hpp"

#include "pg/boundary/spi.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace celaest::pg {

struct PoolKey {
  std::string id;
  core::Provider provider = core::Provider::OpenAI;
  bool active_and_healthy = false;
  std::optional<int64_t> expires_at_ms;  // Unix ms; nullopt = never
  int priority = 0, weight = 1;
  std::optional<int64_t> rpm, tpm, rpd;
  std::string base_url_override;  // metadata->>'base_url', "" = none
  std::string ciphertext_digest;  // md5(key_value_encrypted): the decryption cache's check
  bool has_failures = false;      // consecutive_failures > 0
  bool base_url_by_superuser = false;  // metadata->>'base_url_by_superuser': exempt from the outbound guard
};

struct RoutingCatalog {
  std::vector<core::CatalogModel> models;  // catalogue order: default first, then by priority
  std::vector<PoolKey> keys;
};

// The copy when the routing generation allows it, else read now (and kept when possible).
std::shared_ptr<const RoutingCatalog> routing_catalog(SpiSession& spi);

}  // namespace celaest::pg
