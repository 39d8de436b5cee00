#include "pg/ai/routing_catalog.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/cache_validity.hpp"
#include "pg/boundary/wall_clock.hpp"

namespace celaest::pg {

namespace {

struct KeptCatalog {
  uint64_t generation = 0;
  int64_t filled_at_ms = 0;
  std::shared_ptr<const RoutingCatalog> catalog;
};

KeptCatalog& kept() {
  static KeptCatalog copy;
  return copy;
}

std::optional<int64_t> optional_int(const Text& text) {
  if (!text) return std::nullopt;
  return std::stoll(*text);
}

core::Provider provider_of(const Text& label) {
  auto provider = core::provider_from_name(label.value_or(""));
  if (!provider) throw Error(ERRCODE_INTERNAL_ERROR, "unknown provider label " + label.value_or(""));
  return *provider;
}

// `to_keep`: the copy will be kept, so each statement takes a snapshot of its own, newer than
// the generation the caller read first (cache_validity.hpp). Otherwise the calling
// statement's snapshot, as routing always read: a call does not see the health changes it
// makes itself while it falls back from model to model. Ties between model names follow
// the database's collation.
std::shared_ptr<const RoutingCatalog> read_catalog(SpiSession& spi, bool to_keep) {
  auto catalog = std::make_shared<RoutingCatalog>();
  QueryResult models = spi.run(
      "SELECT id, model_id, provider::text, coalesce(cost_per_1k_input::text, ''),"
      "       coalesce(cost_per_1k_output::text, ''), is_active,"
      "       coalesce(capabilities->>'text_generation', 'true') <> 'false',"
      "       coalesce(capabilities->>'json_mode', 'false') = 'true'"
      "  FROM celaest.ai_models ORDER BY is_default DESC, priority DESC, model_id",
      {}, !to_keep);
  catalog->models.reserve(models.rows.size());
  for (const Row& row : models.rows) {
    core::CatalogModel model;
    model.id = *row[0];
    model.model_id = *row[1];
    model.provider = provider_of(row[2]);
    model.price_in_per_1k = row[3].value_or("");
    model.price_out_per_1k = row[4].value_or("");
    model.active = row[5] == Text("t");
    model.text_generation = row[6] == Text("t");
    model.json_mode = row[7] == Text("t");
    catalog->models.push_back(std::move(model));
  }
  QueryResult keys = spi.run(
      "SELECT id, provider::text, is_active AND is_healthy,"
      "       (extract(epoch FROM expires_at) * 1000)::bigint, priority, weight,"
      "       rate_limit_rpm, rate_limit_tpm, rate_limit_rpd, coalesce(metadata->>'base_url', ''),"
      "       md5(key_value_encrypted), consecutive_failures > 0,"
      "       coalesce(metadata->>'base_url_by_superuser', '') = 'true'"
      "  FROM celaest.ai_api_pool",
      {}, !to_keep);
  catalog->keys.reserve(keys.rows.size());
  for (const Row& row : keys.rows) {
    PoolKey key;
    key.id = *row[0];
    key.provider = provider_of(row[1]);
    key.active_and_healthy = row[2] == Text("t");
    key.expires_at_ms = optional_int(row[3]);
    key.priority = static_cast<int>(optional_int(row[4]).value_or(0));
    key.weight = static_cast<int>(optional_int(row[5]).value_or(1));
    key.rpm = optional_int(row[6]);
    key.tpm = optional_int(row[7]);
    key.rpd = optional_int(row[8]);
    key.base_url_override = row[9].value_or("");
    key.ciphertext_digest = row[10].value_or("");
    key.has_failures = row[11] == Text("t");
    key.base_url_by_superuser = row[12] == Text("t");
    catalog->keys.push_back(std::move(key));
  }
  return catalog;
}

}  // namespace

std::shared_ptr<const RoutingCatalog> routing_catalog(SpiSession& spi) {
  const std::optional<uint64_t> generation = cache_validity::current(cache_validity::Domain::Routing);
  KeptCatalog& copy = kept();
  const int64_t now = now_ms();
  if (generation && copy.catalog && copy.generation == *generation &&
      now - copy.filled_at_ms < cache_validity::kMaxCopyAgeMs)
    return copy.catalog;
  std::shared_ptr<const RoutingCatalog> catalog = read_catalog(spi, generation.has_value());
  if (generation) copy = KeptCatalog{*generation, now, catalog};
  return catalog;
}

}  // namespace celaest::pg
