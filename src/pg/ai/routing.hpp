// Routing (API.md "Routing"): which models to try, in order, and which API key of the pool
// to use for a model. Keys are decrypted here and only here.
#pragma once

#include "core/call_keys.hpp"
#include "core/call_options.hpp"
#include "core/provider.hpp"

#include "pg/ai/routing_catalog.hpp"
#include "pg/boundary/spi.hpp"

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace celaest::pg {

// Defined in the core, where the call plan uses them.
using core::KeyChoice;
using core::ModelChoice;

class Router {
 public:
  explicit Router(SpiSession& spi) : spi_(spi) {}

  // The models to try, first choice first: the option's model, else the prompt's preferred
  // model, else the active default; then the other active text models by priority.
  // Unknown model or provider → 22023; no active model at all → LC020.
  std::vector<ModelChoice> candidate_models(const core::CallOptions& options,
                                            const std::optional<std::string>& preferred_model_id);

  // A usable key for the model's provider: active, healthy, unexpired, with room in its
  // RPM/TPM/RPD windows; highest priority first, then weighted. Keys in `excluded` are skipped.
  std::optional<KeyChoice> pick_key(const ModelChoice& model, const std::set<std::string>& excluded);

 private:
  std::string base_url_for(core::Provider provider, const std::string& key_override) const;

  SpiSession& spi_;
};

// The plaintext of a key from the pool (also used by check_api_keys), cached per backend while
// md5(key_value_encrypted) = `ciphertext_digest` and the setting are unchanged. LC040 when the
// encryption key setting is empty.
std::string decrypt_pool_key(SpiSession& spi, const std::string& key_id, const std::string& ciphertext_digest);
// The schema-qualified name of a pgcrypto function, wherever pgcrypto is installed.
std::string pgcrypto_function(SpiSession& spi, const char* name);
// The base URL for a provider: the key's metadata override, else celaest.<provider>_base_url.
std::string provider_base_url(core::Provider provider, const std::string& key_override);

}  // namespace celaest::pg
