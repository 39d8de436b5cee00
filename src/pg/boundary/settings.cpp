// Core headers come first: they refuse to compile after postgres.h (core/cpp_only.hpp).
#include "core/provider.hpp"

#include <string>

#include "pg/boundary/settings.hpp"

extern "C" {
#include "postgres.h"
#include "miscadmin.h"
#include "utils/guc.h"
}

namespace celaest::pg::settings {

char* encryption_key = nullptr;
char* worker_databases = nullptr;
char* worker_database = nullptr;
int health_check_interval_s = 300;
int roi_refresh_interval_s = 900;
int health_failure_threshold = 3;
int http_timeout_ms = 60000;
int http_connect_timeout_ms = 10000;
int max_retries = 2;
int retry_base_delay_ms = 250;
int retry_max_delay_ms = 30000;
int worker_concurrency = 1024;
bool retry_after_crash = false;
int max_response_kb = 8192;
char* http_ca_file = nullptr;
char* user_id = nullptr;
char* request_id = nullptr;
char* client_ip = nullptr;
char* user_agent = nullptr;
char* allowed_base_urls = nullptr;
char* resolve_override = nullptr;

namespace {

constexpr int kProviderCount = 6;
char* base_urls[kProviderCount] = {};

// Names must outlive the GUC machinery: static storage.
struct BaseUrlSetting {
  const char* name;
  const char* description;
};

const BaseUrlSetting kBaseUrlSettings[kProviderCount] = {
    {"celaest.gemini_base_url", "Base URL of the Gemini API (documented base, e.g. .../v1beta)."},
    {"celaest.groq_base_url", "Base URL of the Groq OpenAI-compatible API."},
    {"celaest.deepseek_base_url", "Base URL of the DeepSeek API."},
    {"celaest.openai_base_url", "Base URL of the OpenAI API (e.g. https://api.openai.com/v1)."},
    {"celaest.anthropic_base_url", "Base URL of the Anthropic API."},
    {"celaest.local_base_url", "Base URL of the local Ollama server."},
};

void define_string(const char* name, const char* description, char** variable, const char* default_value,
                   GucContext context, int flags = 0) {
  DefineCustomStringVariable(name, description, nullptr, variable, default_value, context, flags, nullptr, nullptr,
                             nullptr);
}

void define_int(const char* name, const char* description, int* variable, int default_value, int min_value,
                int max_value, GucContext context, int flags = 0) {
  DefineCustomIntVariable(name, description, nullptr, variable, default_value, min_value, max_value, context, flags,
                          nullptr, nullptr, nullptr);
}

}  // namespace

const char* base_url_setting(int provider_index) {
  if (provider_index < 0 || provider_index >= kProviderCount) return nullptr;
  return base_urls[provider_index];
}

void define_all() {
  // The key that encrypts the API-key pool: superuser only, never shown by SHOW ALL or pg_settings
  // to others, and not in postgresql.conf.sample.
  define_string("celaest.encryption_key", "Symmetric key used by pgcrypto to encrypt the API-key pool.",
                &encryption_key, "", PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_NO_RESET_ALL);
  // Worker layout is fixed at server start, as pg_cron does with cron.database_name. Only a
  // preloading postmaster may define a server-start setting (later it is FATAL: "cannot create
  // PGC_POSTMASTER variables after startup"); loaded by CREATE EXTENSION there are no workers.
  if (process_shared_preload_libraries_in_progress) {
    define_string("celaest.databases",
                  "Databases the CELAEST launcher serves (comma-separated names; empty: every database with the "
                  "extension).",
                  &worker_databases, "", PGC_POSTMASTER);
    define_string("celaest.database", "One database for the CELAEST background workers (alias of celaest.databases).",
                  &worker_database, "", PGC_POSTMASTER);
  }
  define_int("celaest.health_check_interval", "Seconds between background API-key health checks (0 disables).",
             &health_check_interval_s, 300, 0, 86400, PGC_SIGHUP, GUC_UNIT_S);
  define_int("celaest.roi_refresh_interval",
             "Seconds between the background refreshes of yesterday's and today's daily ROI rows (0 disables).",
             &roi_refresh_interval_s, 900, 0, 86400, PGC_SIGHUP, GUC_UNIT_S);
  define_int("celaest.health_failure_threshold", "Consecutive failures after which an API key is marked unhealthy.",
             &health_failure_threshold, 3, 1, 1000, PGC_SUSET);
  define_int("celaest.http_timeout", "Total timeout of one provider HTTP call.", &http_timeout_ms, 60000, 100,
             3600000, PGC_USERSET, GUC_UNIT_MS);
  define_int("celaest.http_connect_timeout", "Connect timeout of one provider HTTP call.", &http_connect_timeout_ms,
             10000, 50, 600000, PGC_USERSET, GUC_UNIT_MS);
  define_int("celaest.max_retries", "Retries of a retryable provider failure (per model).", &max_retries, 2, 0, 10,
             PGC_USERSET);
  define_int("celaest.retry_base_delay", "Base delay of the exponential back-off between retries.",
             &retry_base_delay_ms, 250, 0, 60000, PGC_USERSET, GUC_UNIT_MS);
  define_int("celaest.retry_max_delay", "Upper bound of one back-off delay, Retry-After included.", &retry_max_delay_ms,
             30000, 0, 600000, PGC_USERSET, GUC_UNIT_MS);
  define_int("celaest.worker_concurrency", "Provider calls the batch runner keeps in flight at once.",
             &worker_concurrency, 1024, 1, 16384, PGC_SIGHUP);
  DefineCustomBoolVariable("celaest.retry_after_crash",
                           "Send again a batch task whose provider call may have been sent before a crash (it is "
                           "charged once either way).",
                           nullptr, &retry_after_crash, false, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  // Set (LOCAL) only by _claim_batch_tasks around its claiming UPDATE: that claim counts
  // max_concurrent_tasks once per organization, so the per-row trigger need not count again.
  // Hidden; whoever could set it may already write processed_tasks and licenses directly
  // (service level), so it lets no one past a limit they could not pass already.
  static bool batch_claim = false;
  DefineCustomBoolVariable("celaest.batch_claim", "Internal: the batch runner's claim counts max_concurrent_tasks.",
                           nullptr, &batch_claim, false, PGC_USERSET,
                           GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_NO_RESET_ALL, nullptr,
                           nullptr, nullptr);
  define_int("celaest.max_response_size", "Largest provider response accepted.", &max_response_kb, 8192, 16,
             1048576, PGC_SUSET, GUC_UNIT_KB);
  // Superuser only: trusting another CA decides which servers may receive the API keys.
  define_string("celaest.http_ca_file",
                "PEM file of the certificate authorities trusted for https provider calls ('' = the system's).",
                &http_ca_file, "", PGC_SUSET);
  define_string("celaest.user_id", "The CELAEST user acting in this session (API.md: who is calling).", &user_id, "",
                PGC_USERSET);
  define_string("celaest.request_id", "Correlation id recorded with audit rows and tasks.", &request_id, "",
                PGC_USERSET);
  define_string("celaest.client_ip", "Client IP address recorded with audit rows and tasks.", &client_ip, "",
                PGC_USERSET);
  define_string("celaest.user_agent", "Client user agent recorded with audit rows and tasks.", &user_agent, "",
                PGC_USERSET);
  for (int i = 0; i < kProviderCount; ++i) {
    auto provider = static_cast<core::Provider>(i);
    // Superuser only: redirecting a provider would send its API keys elsewhere. The boot value
    // must outlive the call (the GUC keeps the pointer for pg_settings.boot_val): a static
    // NUL-terminated literal, never a temporary std::string.
    define_string(kBaseUrlSettings[i].name, kBaseUrlSettings[i].description, &base_urls[i],
                  core::default_base_url(provider).data(), PGC_SUSET);
  }
  // The outbound guard (API.md): superuser only, like the base URL settings it complements.
  // The default admits the six providers' public endpoints; the boot value must outlive the
  // GUC machinery, hence a function-static string.
  static const std::string default_allowlist = [] {
    std::string joined;
    for (int i = 0; i < kProviderCount; ++i) {
      if (!joined.empty()) joined += ", ";
      joined += std::string(core::default_base_url(static_cast<core::Provider>(i)));
    }
    return joined;
  }();
  define_string("celaest.allowed_base_urls",
                "URL prefixes an API key's base_url may name unless a superuser set it (comma-separated).",
                &allowed_base_urls, default_allowlist.c_str(), PGC_SUSET);
  // Lets the tests make a name resolve to an internal address without /etc/hosts or a DNS
  // server; it changes only what a name resolves to, never what the guard admits.
  define_string("celaest.resolve_override",
                "Resolver answers used by the outbound guard instead of DNS, as host=address pairs (tests).",
                &resolve_override, "", PGC_SUSET, GUC_NOT_IN_SAMPLE);
  MarkGUCPrefixReserved("celaest");
}

}  // namespace celaest::pg::settings
