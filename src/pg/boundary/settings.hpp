// The celaest.* settings (GUCs). Defined once in _PG_init; read directly by the C++ glue.
#pragma once

namespace celaest::pg::settings {

extern char* encryption_key;         // superuser only, never shown
extern char* worker_databases;       // celaest.databases: the databases the launcher may serve ('' = all)
extern char* worker_database;        // celaest.database: its one-name alias, kept for 0.1.0 configurations
extern int health_check_interval_s;  // seconds between API-key health checks
extern int roi_refresh_interval_s;   // seconds between refreshes of the recent daily ROI rows
extern int health_failure_threshold; // consecutive failures before a key is marked unhealthy
extern int http_timeout_ms;
extern int http_connect_timeout_ms;
extern int max_retries;
extern int retry_base_delay_ms;
extern int retry_max_delay_ms;
extern int worker_concurrency;
extern bool retry_after_crash;       // re-send batch tasks interrupted by a crash (API.md: exactly once)
extern int max_response_kb;
extern char* http_ca_file;          // PEM bundle of trusted CAs for https ("" = the system's store)
extern char* user_id;                // celaest.user_id: who is calling (API.md)
extern char* request_id;             // correlation id recorded by audits and tasks
extern char* client_ip;
extern char* user_agent;
extern char* allowed_base_urls;      // URL prefixes a key's base_url (not set by a superuser) may name
extern char* resolve_override;       // "host=address, ...": resolver answers for tests (superuser only)

// celaest.<provider>_base_url, indexed by core::Provider order.
const char* base_url_setting(int provider_index);

void define_all();

}  // namespace celaest::pg::settings
