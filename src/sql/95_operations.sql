-- Operations: version and background worker status.

CREATE FUNCTION celaest.version() RETURNS text
    AS 'MODULE_PATHNAME', 'celaest_version'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION celaest.version() IS
    'CELAEST version with the PostgreSQL and libcurl versions it was built against.';

CREATE FUNCTION celaest.worker_status()
    RETURNS TABLE(worker text, pid integer, database text, state text,
                  last_run timestamptz, last_error text, runs bigint)
    AS 'MODULE_PATHNAME', 'celaest_worker_status'
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED ROWS 2;
COMMENT ON FUNCTION celaest.worker_status() IS
    'One row per CELAEST background worker: pid, database, state, last run, last error and run count.';
