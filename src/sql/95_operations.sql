-- Operations: version, background worker status, and the boundary self-test probes.

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

-- Self-tests of the C++/PostgreSQL boundary (regression suite). Superuser only.
CREATE FUNCTION celaest._boundary_probe(p_mode text) RETURNS text
    AS 'MODULE_PATHNAME', 'celaest_boundary_probe'
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest._boundary_probe(text) IS
    'Test probe: fails in the given way (cpp_error, std_exception, spi_error, division_by_zero, cancel) beneath live C++ objects.';
REVOKE ALL ON FUNCTION celaest._boundary_probe(text) FROM PUBLIC;

CREATE FUNCTION celaest._boundary_destructor_count() RETURNS bigint
    AS 'MODULE_PATHNAME', 'celaest_boundary_destructor_count'
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest._boundary_destructor_count() IS
    'Test probe: how many probe objects this backend has destroyed (proves unwinding before an ERROR).';
REVOKE ALL ON FUNCTION celaest._boundary_destructor_count() FROM PUBLIC;
