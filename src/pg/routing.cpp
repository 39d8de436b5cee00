#include "pg/routing.hpp"

#include "core/weighted_pick.hpp"

#include "pg/boundary.hpp"
#include "pg/wall_clock.hpp"
#include "pg/settings.hpp"
#include "pg/shared_state.hpp"

#include <chrono>
#include <random>
#include <unordered_map>

namespace celaest::pg {

namespace {

std::optional<int64_t> optional_int(const Text& text) {
  if (!text) return std::nullopt;
  return std::stoll(*text);
}

ModelChoice model_from_row(const Row& row) {
  auto provider = core::provider_from_name(row[2].value_or(""));
  if (!provider) throw Error(ERRCODE_INTERNAL_ERROR, "unknown provider label " + row[2].value_or(""));
  return ModelChoice{*row[0], *row[1], *provider, row[3].value_or(""), row[4].value_or("")};
}

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
  std::string sql = "SELECT " + pgcrypto_function(spi, "pgp_sym_decrypt") +
                    "(key_value_encrypted, $2) FROM celaest.ai_api_pool WHERE id = $1::uuid";
  Text secret = spi.scalar(sql, {key_id, std::string(encryption_key)}, true);
  if (!secret) throw Error(ERRCODE_NO_DATA_FOUND, "API key " + key_id + " not found in the pool");
  cache[key_id] = CachedSecret{ciphertext_digest, encryption_key, *secret};
  return *secret;
}

std::string provider_base_url(core::Provider provider, const std::string& key_override) {
  if (!key_override.empty()) return key_override;
  const char* configured = settings::base_url_setting(static_cast<int>(provider));
  if (configured != nullptr && configured[0] != '\0') return configured;
  return std::string(core::default_base_url(provider));
}

std::vector<ModelChoice> Router::candidate_models(const core::CallOptions& options,
                                                  const std::optional<std::string>& preferred_model_id) {
  if (options.provider && !core::provider_from_name(*options.provider))
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown provider \"" + *options.provider + "\"", "",
                "Use gemini, groq, deepseek, openai, anthropic or local.");
  if (options.model) {
    QueryResult named = spi_.run(
        "SELECT bool_or(is_active) FROM celaest.ai_models WHERE model_id = $1 "
        "AND ($2 IS NULL OR provider = $2::celaest.ai_provider) HAVING count(*) > 0",
        {*options.model, options.provider}, true);
    if (named.empty())
      throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unknown model \"" + *options.model + "\"", "",
                  "Models are rows of celaest.ai_models (model_id).");
    if (named.at(0, 0) != Text("t"))
      throw Error(kNoUsableKey, "model \"" + *options.model + "\" is not active");
  }
  QueryResult rows = spi_.run(
      "SELECT id, model_id, provider::text, cost_per_1k_input::text, cost_per_1k_output::text "
      "FROM celaest.ai_models "
      "WHERE is_active AND ($1 IS NULL OR provider = $1::celaest.ai_provider) "
      "  AND coalesce(capabilities->>'text_generation', 'true') <> 'false' "
      "ORDER BY (model_id = $2) IS TRUE DESC, (id = $3::uuid) IS TRUE DESC, is_default DESC, "
      "         priority DESC, model_id",
      {options.provider, options.model, preferred_model_id}, true);
  std::vector<ModelChoice> models;
  models.reserve(rows.rows.size());
  for (const Row& row : rows.rows) models.push_back(model_from_row(row));
  if (models.empty())
    throw Error(kNoUsableKey, "no active AI model" + (options.provider ? " for provider " + *options.provider : std::string()),
                "", "Add or activate a row in celaest.ai_models.");
  return models;
}

std::optional<KeyChoice> Router::pick_key(const ModelChoice& model, const std::set<std::string>& excluded) {
  QueryResult rows = spi_.run(
      "SELECT id, priority, weight, rate_limit_rpm, rate_limit_tpm, rate_limit_rpd, "
      "       coalesce(metadata->>'base_url', ''), md5(key_value_encrypted) "
      "FROM celaest.ai_api_pool "
      "WHERE provider = $1::celaest.ai_provider AND is_active AND is_healthy "
      "  AND (expires_at IS NULL OR expires_at > now())",
      {std::string(core::provider_name(model.provider))}, true);

  std::vector<const Row*> usable;
  for (const Row& row : rows.rows)
    if (!excluded.count(*row[0])) usable.push_back(&row);

  while (!usable.empty()) {
    std::vector<core::Candidate> candidates;
    candidates.reserve(usable.size());
    for (const Row* row : usable) candidates.push_back({std::stoi(*(*row)[1]), std::stoi(*(*row)[2])});
    auto chosen = core::pick_candidate(candidates, random_unit());
    if (!chosen) break;
    const Row& row = *usable[*chosen];
    shared::KeyLimits limits{optional_int(row[3]), optional_int(row[4]), optional_int(row[5])};
    if (shared::admit_request(*row[0], limits, now_ms()) == shared::Admission::Admitted) {
      return KeyChoice{*row[0], decrypt_pool_key(spi_, *row[0], *row[7]), provider_base_url(model.provider, *row[6])};
    }
    usable.erase(usable.begin() + static_cast<long>(*chosen));  // no room or cooling down
  }

  // A local Ollama needs no key: with no key for it in the pool at all, call it keyless.
  if (model.provider == core::Provider::Local && rows.empty()) {
    Text any = spi_.scalar("SELECT 1 FROM celaest.ai_api_pool WHERE provider = 'local' LIMIT 1", {}, true);
    if (!any) return KeyChoice{std::nullopt, std::string(), provider_base_url(model.provider, "")};
  }
  return std::nullopt;
}

}  // namespace celaest::pg
