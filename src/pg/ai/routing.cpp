#include "pg/ai/routing.hpp"
#include "pg/ai/destination.hpp"

#include "core/model_order.hpp"

#include "core/weighted_pick.hpp"

#include "pg/ai/key_rate_windows.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/wall_clock.hpp"
#include "pg/boundary/settings.hpp"

#include <chrono>
#include <random>
#include <unordered_map>

namespace celaest::pg {

namespace {

// Decrypted keys by pool id, valid while the ciphertext and the encryption key are the same:
// pgcrypto's iterated S2K makes each decryption cost more than the rest of a call. Not the row
// version (xmin): every call bumps the key's usage counters, so xmin changes on every use.
struct CachedSecret {
  std::string ciphertext_digest;
  std::string encryption_key;
  std::string secret;
};
std::unordered_map<std::string, CachedSecret>& secret_cache() {
  static std::unordered_map<std::string, CachedSecret> cache;
  return cache;
}

}  // namespace

std::string pgcrypto_function(SpiSession& spi, const char* name) {
  static std::string schema;
  if (schema.empty()) {
    Text found = spi.scalar(
        "SELECT quote_ident(n.nspname) FROM pg_catalog.pg_extension e "
        "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pgcrypto'",
        {}, true);
    if (!found) throw Error(ERRCODE_UNDEFINED_OBJECT, "extension pgcrypto is not installed", "", "CREATE EXTENSION pgcrypto;");
    schema = *found;
  }
  return schema + "." + name;
}

std::string decrypt_pool_key(SpiSession& spi, const std::string& key_id, const std::string& ciphertext_digest) {
  // Checked first: emptying the setting stops every session at once, cache or not.
  const char* encryption_key = settings::encryption_key;
  if (encryption_key == nullptr || encryption_key[0] == '\0')
    throw Error(kEncryptionKeyMissing, "celaest.encryption_key is not set",
                "The API-key pool is encrypted with pgcrypto under this setting.",
                "A superuser sets it in postgresql.conf, with ALTER SYSTEM, or ALTER DATABASE ... SET.");
  auto& cache = secret_cache();
  if (auto found = cache.find(key_id); found != cache.end() && found->second.ciphertext_digest == ciphertext_digest &&
                                       found->second.encryption_key == encryption_key)
    return found->second.secret;
  // The digest and the plaintext from one row version (and a fresh snapshot, as the routing
  // catalogue's): the secret is kept under the digest it was decrypted from, never under a
  // newer one read elsewhere.
  std::string sql = "SELECT md5(key_value_encrypted), " + pgcrypto_function(spi, "pgp_sym_decrypt") +
                    "(key_value_encrypted, $2) FROM celaest.ai_api_pool WHERE id = $1::uuid";
  QueryResult rows = spi.run(sql, {key_id, std::string(encryption_key)});
  if (rows.empty() || !rows.at(0, 1)) throw Error(ERRCODE_NO_DATA_FOUND, "API key " + key_id + " not found in the pool");
  cache[key_id] = CachedSecret{rows.at(0, 0).value_or(""), encryption_key, *rows.at(0, 1)};
  return *rows.at(0, 1);
}

std::string provider_base_url(core::Provider provider, const std::string& key_override) {
  if (!key_override.empty()) return key_override;
  const char* configured = settings::base_url_setting(static_cast<int>(provider));
  if (configured != nullptr && configured[0] != '\0') return configured;
  return std::string(core::default_base_url(provider));
}

std::vector<ModelChoice> Router::candidate_models(const core::CallOptions& options,
                                                  const std::optional<std::string>& preferred_model_id) {
  std::optional<core::Provider> provider;
  if (options.provider) {
    provider = core::provider_from_name(*options.provider);
    if (!provider)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown provider \"" + *options.provider + "\"", "",
                  "Use gemini, groq, deepseek, openai, anthropic or local.");
  }
  const std::shared_ptr<const RoutingCatalog> catalog = routing_catalog(spi_);
  const auto& models = catalog->models;
  switch (core::named_model_state(models, options.model, provider)) {
    case core::NamedModel::Unknown:
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown model \"" + *options.model + "\"", "",
                  "Models are rows of celaest.ai_models (model_id).");
    case core::NamedModel::Inactive:
      throw Error(kNoUsableKey, "model \"" + *options.model + "\" is not active");
    default:
      break;
  }
  for (const std::string& fallback : options.fallback_models)
    if (core::named_model_state(models, fallback, std::nullopt) == core::NamedModel::Unknown)
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown model \"" + fallback + "\" in option fallback_models", "",
                  "Models are rows of celaest.ai_models (model_id).");
  core::ModelRequest request;
  request.provider = provider;
  request.requested_model_id = options.model;
  request.preferred_id = preferred_model_id;
  request.needs_json_mode = options.json_mode;
  request.fallback_models = options.fallback_models;
  request.automatic_fallback = core::falls_back_automatically(options);
  std::vector<ModelChoice> choices;
  for (size_t index : core::candidate_order(models, request)) {
    const core::CatalogModel& model = models[index];
    choices.push_back(ModelChoice{model.id, model.model_id, model.provider, model.price_in_per_1k, model.price_out_per_1k});
  }
  if (choices.empty())
    throw Error(kNoUsableKey, "no active AI model" + (options.provider ? " for provider " + *options.provider : std::string()),
                "", "Add or activate a row in celaest.ai_models.");
  return choices;
}

std::optional<KeyChoice> Router::pick_key(const ModelChoice& model, const std::set<std::string>& excluded) {
  const int64_t now = now_ms();
  bool provider_has_keys = false;
  std::vector<const PoolKey*> usable;
  // Read for every pick: within a transaction that has just marked a key unhealthy, the copy
  // is not used (cache_validity.hpp) and the pool is read again, as it is now.
  const std::shared_ptr<const RoutingCatalog> catalog = routing_catalog(spi_);
  for (const PoolKey& key : catalog->keys) {
    if (key.provider != model.provider) continue;
    provider_has_keys = true;
    if (!key.active_and_healthy || (key.expires_at_ms && *key.expires_at_ms <= now) || excluded.count(key.id)) continue;
    usable.push_back(&key);
  }

  while (!usable.empty()) {
    std::vector<core::Candidate> candidates;
    candidates.reserve(usable.size());
    for (const PoolKey* key : usable) candidates.push_back({key->priority, key->weight});
    auto chosen = core::pick_candidate(candidates, random_unit());
    if (!chosen) break;
    const PoolKey& key = *usable[*chosen];
    // The outbound guard: a key's own base URL that a superuser did not set is checked (and
    // resolved) now; a refused one is handed back without its secret, for the plan to record.
    Destination destination;
    if (!key.base_url_override.empty() && !key.base_url_by_superuser) {
      destination = check_destination(key.base_url_override);
      if (!destination.allowed) {
        KeyChoice refused{key.id, std::string(), key.base_url_override, key.has_failures};
        refused.blocked_reason = destination.reason;
        return refused;
      }
    }
    key_rate_windows::KeyLimits limits{key.rpm, key.tpm, key.rpd};
    if (key_rate_windows::admit_request(key.id, limits, now) == key_rate_windows::Admission::Admitted) {
      KeyChoice chosen_key{key.id, decrypt_pool_key(spi_, key.id, key.ciphertext_digest),
                           provider_base_url(model.provider, key.base_url_override), key.has_failures};
      chosen_key.pinned_address = destination.pinned_address;
      return chosen_key;
    }
    usable.erase(usable.begin() + static_cast<long>(*chosen));  // no room or cooling down
  }

  // A local Ollama needs no key: with no key for it in the pool at all, call it keyless.
  if (model.provider == core::Provider::Local && !provider_has_keys)
    return KeyChoice{std::nullopt, std::string(), provider_base_url(model.provider, ""), false};
  return std::nullopt;
}

}  // namespace celaest::pg
