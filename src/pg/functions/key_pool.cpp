// The API-key pool: add_api_key(), rotate_api_key() and check_api_keys().
// Secrets are encrypted with pgcrypto under celaest.encryption_key; the plaintext travels only
// as a bound SPI parameter (never in statement text) and is never echoed in an error.
#include "pg/identity/acting_identity.hpp"  // first of the pg headers: it brings a pure core header

#include <nlohmann/json.hpp>

#include "core/call_keys.hpp"
#include "core/codec.hpp"
#include "core/text.hpp"
#include "http/client.hpp"

#include "pg/ai/call_runner.hpp"
#include "pg/ai/destination.hpp"
#include "pg/ai/key_health.hpp"
#include "pg/ai/routing.hpp"

#include "pg/boundary/boundary.hpp"
#include "pg/boundary/datum.hpp"
#include "pg/boundary/descriptors.hpp"
#include "pg/boundary/settings.hpp"
#include "pg/boundary/spi.hpp"

extern "C" {
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
}

#include <algorithm>
#include <string>
#include <vector>

namespace celaest::pg {

namespace {

std::string require_encryption_key() {
  const char* key = settings::encryption_key;
  if (key == nullptr || key[0] == '\0')
    throw Error(kEncryptionKeyMissing, "celaest.encryption_key is not set",
                "The API-key pool is encrypted with pgcrypto under this setting.",
                "A superuser sets it in postgresql.conf, with ALTER SYSTEM, or ALTER DATABASE ... SET.");
  return key;
}

// pgp_sym_encrypt's options for pool secrets: iterated and salted S2K at its smallest count.
// The iterations stretch a human passphrase against guessing; celaest.encryption_key is a
// server secret (README: 32 random bytes), which they do not strengthen, and at pgcrypto's
// default (65,536-253,952 bytes hashed) each decryption cost ~0.4 ms: a new session's health
// check of 1,000 keys spent most of its time there. Older ciphertexts keep their own count
// (it is written in the packet) until rotate_api_key re-encrypts them.
constexpr const char* kSecretCipherOptions = "s2k-count=1024";

void require_secret(const std::optional<std::string>& secret) {
  // The message never quotes the secret: an error message may end up in a log.
  if (!secret || secret->find_first_not_of(" \t\r\n") == std::string::npos)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "p_secret must be a non-empty API key");
  if (secret->find_first_of("\r\n") != std::string::npos)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "p_secret must not contain line breaks");
}

Text key_hint(const std::string& secret) {
  // Too short a secret would be half revealed by its last four characters.
  return secret.size() >= 8 ? Text(secret.substr(secret.size() - 4)) : Text();
}

Text integer_option(const nlohmann::json& options, const char* name, long long low) {
  if (!options.contains(name) || options[name].is_null()) return std::nullopt;
  const auto& value = options[name];
  if (!value.is_number_integer() || value.get<long long>() < low || value.get<long long>() > 2147483647LL)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string("invalid option \"") + name + "\": " + value.dump(),
                "Expected an integer >= " + std::to_string(low) + ".");
  return std::to_string(value.get<long long>());
}

Text text_option(const nlohmann::json& options, const char* name) {
  if (!options.contains(name) || options[name].is_null()) return std::nullopt;
  if (!options[name].is_string())
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string("invalid option \"") + name + "\": " + options[name].dump(),
                "Expected a string.");
  return options[name].get<std::string>();
}

// A base URL set by a superuser is trusted as it is; anyone else's passes the outbound guard
// (allowlist, then the resolved addresses) or is refused with 22023.
// The calling role as celaest._calling_role() sees it (SET ROLE's role, else the session user:
// never the owner this SECURITY DEFINER function runs as), asked of the server directly so that
// a 0.1.0 schema running this library before ALTER EXTENSION UPDATE works too.
bool calling_role_is_superuser(SpiSession&) {
  return pg_guarded([] { return superuser_arg(GetOuterUserId()); });
}

// The key pool is a platform object (API.md): only service callers and super_admins change it.
// These functions are SECURITY DEFINER and executable by the authenticated level (for its
// super_admins), so every other end user is refused here, before an argument is looked at.
// The acting identity reads the calling role (GetOuterUserId), never the owner we run as.
void require_platform_manager(FunctionCallInfo fcinfo, const char* function) {
  if (!acting_identity(fcinfo->flinfo->fn_oid).manages_platform())
    throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, std::string("permission denied for function ") + function,
                "Only service callers and super_admins change the API-key pool.");
}

void require_allowed_destination(const std::string& base_url) {
  Destination verdict = check_destination(base_url);
  if (!verdict.allowed)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid option \"base_url\": destination refused", verdict.reason,
                "A superuser allows a destination in celaest.allowed_base_urls (an internal address must be named "
                "there itself).");
}

}  // namespace

}  // namespace celaest::pg

using namespace celaest::pg;
namespace core = celaest::core;
namespace http = celaest::http;

// add_api_key(p_provider ai_provider, p_key_name text, p_secret text, p_options jsonb) RETURNS uuid
CELAEST_FUNCTION(celaest_add_api_key) {
  require_platform_manager(fcinfo, "add_api_key");
  auto provider = enum_arg(fcinfo, 0);
  auto key_name = text_arg(fcinfo, 1);
  auto secret = text_arg(fcinfo, 2);
  if (!provider) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "p_provider must not be NULL");
  if (!key_name || key_name->empty()) throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "p_key_name must not be empty");
  require_secret(secret);
  nlohmann::json options = nlohmann::json::parse(jsonb_arg(fcinfo, 3).value_or("{}"));
  if (!options.is_object())
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "p_options must be a JSON object, got " + options.dump());
  Text base_url = text_option(options, "base_url");
  if (base_url && base_url->rfind("http://", 0) != 0 && base_url->rfind("https://", 0) != 0)
    throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid option \"base_url\": \"" + *base_url + "\"",
                "Expected an http:// or https:// URL.");
  const std::string encryption_key = require_encryption_key();

  SpiSession spi;
  const bool by_superuser = calling_role_is_superuser(spi);
  if (base_url && !by_superuser) require_allowed_destination(*base_url);
  std::string sql =
      "INSERT INTO celaest.ai_api_pool (provider, key_name, key_value_encrypted, key_hint, priority, weight,"
      "  rate_limit_rpm, rate_limit_tpm, rate_limit_rpd, expires_at, notes, metadata)"
      " VALUES ($1::celaest.ai_provider, $2, " + pgcrypto_function(spi, "pgp_sym_encrypt") + "($3, $4, '" + kSecretCipherOptions + "'), $5,"
      "  coalesce($6::int, 0), coalesce($7::int, 100), $8::int, $9::int, $10::int, $11::timestamptz, $12,"
      "  CASE WHEN $13 IS NULL THEN '{}'::jsonb"
      "       WHEN $14::boolean THEN jsonb_build_object('base_url', $13, 'base_url_by_superuser', true)"
      "       ELSE jsonb_build_object('base_url', $13) END)"
      " RETURNING id";
  Text id = spi.scalar(sql, {*provider, *key_name, *secret, encryption_key, key_hint(*secret),
                             integer_option(options, "priority", -2147483647LL), integer_option(options, "weight", 0),
                             integer_option(options, "rate_limit_rpm", 1), integer_option(options, "rate_limit_tpm", 1),
                             integer_option(options, "rate_limit_rpd", 1), text_option(options, "expires_at"),
                             text_option(options, "notes"), base_url, std::string(by_superuser ? "true" : "false")});
  return uuid_datum(*id);
}

// rotate_api_key(p_key_id uuid, p_secret text) RETURNS void
CELAEST_FUNCTION(celaest_rotate_api_key) {
  require_platform_manager(fcinfo, "rotate_api_key");
  auto key_id = uuid_arg(fcinfo, 0);
  auto secret = text_arg(fcinfo, 1);
  if (!key_id) throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "p_key_id must not be NULL");
  require_secret(secret);
  const std::string encryption_key = require_encryption_key();
  SpiSession spi;
  // The new secret goes where the key's base URL points: that destination passes the guard
  // again unless a superuser set it.
  QueryResult current = spi.run(
      "SELECT coalesce(metadata->>'base_url', ''), coalesce(metadata->>'base_url_by_superuser', '') = 'true'"
      " FROM celaest.ai_api_pool WHERE id = $1::uuid",
      {*key_id}, true);
  if (!current.empty() && !current.at(0, 0)->empty() && current.at(0, 1) != Text("t") &&
      !calling_role_is_superuser(spi))
    require_allowed_destination(*current.at(0, 0));
  std::string sql = "UPDATE celaest.ai_api_pool SET key_value_encrypted = " +
                    pgcrypto_function(spi, "pgp_sym_encrypt") +
                    "($2, $3, '" + kSecretCipherOptions + "'), key_hint = $4, consecutive_failures = 0, is_healthy = true"
                    " WHERE id = $1::uuid RETURNING id";
  Text rotated = spi.scalar(sql, {*key_id, *secret, encryption_key, key_hint(*secret)});
  if (!rotated) throw Error(ERRCODE_NO_DATA_FOUND, "API key " + *key_id + " does not exist");
  PG_RETURN_VOID();
}

// check_api_keys(p_key_id uuid) RETURNS TABLE(key_id, provider, healthy, status_code, latency_ms, error)
CELAEST_FUNCTION(celaest_check_api_keys) {
  require_platform_manager(fcinfo, "check_api_keys");
  auto only_key = uuid_arg(fcinfo, 0);
  struct Checked {
    std::string id, provider;
    bool healthy = false;
    long status = 0, latency_ms = 0;
    std::string error;
  };
  std::vector<Checked> checked;
  {
    const std::string encryption_key = require_encryption_key();
    SpiSession spi;
    // The sweep first retires keys past expires_at (routing already skips them): they are
    // deactivated, not checked. A key named by p_key_id is checked whatever its state.
    if (!only_key)
      spi.run("UPDATE celaest.ai_api_pool SET is_active = false WHERE is_active AND expires_at <= now()", {});
    // Every secret in one statement: one executor start and one plan for the whole pool,
    // instead of a query per key.
    QueryResult keys = spi.run(
        "SELECT id, provider::text, coalesce(metadata->>'base_url', ''),"
        "       coalesce(metadata->>'base_url_by_superuser', '') = 'true', " +
            pgcrypto_function(spi, "pgp_sym_decrypt") +
            "(key_value_encrypted, $2)"
            " FROM celaest.ai_api_pool"
            " WHERE ($1 IS NULL OR id = $1::uuid) AND ($1 IS NOT NULL OR is_active) ORDER BY provider, priority DESC, id",
        {only_key, encryption_key});  // not read-only: it must see the sweep above
    if (only_key && keys.empty()) throw Error(ERRCODE_NO_DATA_FOUND, "API key " + *only_key + " does not exist");

    std::vector<http::Request> requests;
    std::vector<std::string> secrets;
    std::vector<Checked> blocked;
    for (const Row& row : keys.rows) {
      auto provider = core::provider_from_name(*row[1]);
      Destination destination;
      if (!row[2]->empty() && row[3] != Text("t")) {
        destination = check_destination(*row[2]);
        if (!destination.allowed) {  // the secret is not sent there
          blocked.push_back(Checked{*row[0], *row[1], false, 0, 0, "blocked_destination: " + destination.reason});
          continue;
        }
      }
      const std::string& secret = *row[4];
      // The same limits as an AI call's request, celaest.max_response_size included.
      http::Request request{
          core::codec_for(*provider).encode_health_check(provider_base_url(*provider, *row[2]), secret),
          transfer_limits()};
      request.pinned_address = destination.pinned_address;
      requests.push_back(std::move(request));
      secrets.push_back(secret);
      checked.push_back(Checked{*row[0], *row[1]});
    }

    // All keys at once: a pool of many keys is checked in about one round trip. No more sockets
    // at once than the backend can hold next to PostgreSQL's own files (its open-files soft
    // limit is raised to the hard one first): 1,000 keys under a 1,024 limit would otherwise run
    // the backend out of descriptors.
    const size_t parallel = std::min(std::max<size_t>(1, requests.size()), socket_budget());
    std::vector<http::Response> responses =
        backend_client().perform_many(requests, parallel, [] { return interrupt_pending(); });
    std::vector<KeyVerdict> verdicts;
    verdicts.reserve(responses.size());
    for (size_t i = 0; i < responses.size(); ++i) {
      const http::Response& response = responses[i];
      if (response.error == http::TransportError::Aborted) check_for_interrupts();
      Checked& result = checked[i];
      auto provider = *core::provider_from_name(result.provider);
      result.latency_ms = response.elapsed_ms;
      result.status = response.error == http::TransportError::None ? response.status : 0;
      // A check that did not pass says what a call's failure would about the key (core::
      // health_check_failure): a 429 leaves its health as it was; the row still reports the
      // check's own outcome (healthy false, the error).
      core::KeyOutcome::Health health = core::KeyOutcome::Health::Worked;
      if (response.error != http::TransportError::None) {
        result.error = std::string(http::to_string(response.error)) + ": " + response.error_text;
        health = core::health_check_failure(
            core::transport_failure(response.error == http::TransportError::Timeout, response.error_text));
      } else {
        result.healthy = core::codec_for(provider).health_ok(response);
        if (!result.healthy) {
          core::ChatResult failure = core::codec_for(provider).decode_chat(response, core::ChatRequest{});
          health = core::health_check_failure(failure);
          result.error = failure.error_code + ": " + failure.error_message;
        }
      }
      result.error = core::redact(result.error, secrets[i]);
      verdicts.push_back(KeyVerdict{result.id, result.healthy, health == core::KeyOutcome::Health::FailedDefinitively,
                                    health != core::KeyOutcome::Health::Unchanged});
    }
    KeyHealth(spi).checked_all(verdicts);
    for (Checked& refused : blocked) checked.push_back(std::move(refused));
  }

  pg_guarded([&] {
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = (ReturnSetInfo*)fcinfo->resultinfo;
    for (const Checked& row : checked) {
      Datum values[6];
      bool nulls[6] = {false, false, false, row.status == 0, false, row.error.empty()};
      values[0] = DirectFunctionCall1(uuid_in, CStringGetDatum(row.id.c_str()));
      Oid provider_type = TupleDescAttr(rsinfo->setDesc, 1)->atttypid;
      values[1] = OidInputFunctionCall(F_ENUM_IN, (char*)row.provider.c_str(), provider_type, -1);
      values[2] = BoolGetDatum(row.healthy);
      values[3] = Int32GetDatum((int32)row.status);
      values[4] = Int32GetDatum((int32)row.latency_ms);
      values[5] = PointerGetDatum(cstring_to_text(row.error.c_str()));
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
  });
  return (Datum)0;
}
