// The launcher: one background worker (shared_preload_libraries) that finds every database
// with the extension and keeps a worker set running in each (registry.hpp), as TimescaleDB's
// launcher does and unlike pg_cron and pg_net (one database each).
//
// How a database is found: at start, every connectable database gets its workers; a worker
// that finds no extension reports it and exits, and its database is left alone until CREATE
// EXTENSION celaest commits there (the utility hook below wakes the launcher). A worker that
// finds the extension gone (DROP EXTENSION) exits the same way. DROP DATABASE, ALTER DATABASE
// … RENAME / SET TABLESPACE and CREATE DATABASE … TEMPLATE need a database nobody is connected
// to: the utility hook asks its workers to exit first and keeps them off for a few seconds.
// `celaest.databases` (server start), when set, restricts the launcher to those names.
#pragma once

namespace celaest::pg::workers {

void register_launcher() noexcept;      // from _PG_init, when preloading
void install_utility_hook() noexcept;   // from _PG_init, when preloading
// Whether a batch runner can serve the current database: the library is preloaded, the
// database is not excluded by celaest.databases (submit_batch refuses with 55000 otherwise).
bool serves_current_database();

}  // namespace celaest::pg::workers
