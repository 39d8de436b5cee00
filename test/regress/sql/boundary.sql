-- The C++/PostgreSQL boundary: every failure mode becomes a clean ERROR with its SQLSTATE,
-- C++ destructors run before the ERROR is raised, a PostgreSQL error reaches the client
-- whole (CONTEXT, internal query, constraint names), and the session keeps working.
\set SHOW_CONTEXT never
\set VERBOSITY default

-- The probes are C functions of the library that the extension does not declare (they are
-- not part of any install): the test declares them, as the superuser it runs as.
CREATE SCHEMA boundary_test;
CREATE FUNCTION boundary_test.probe(p_mode text) RETURNS text
    AS '$libdir/celaest', 'celaest_boundary_probe' LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION boundary_test.destructor_count() RETURNS bigint
    AS '$libdir/celaest', 'celaest_boundary_destructor_count' LANGUAGE C VOLATILE STRICT;
CREATE TABLE boundary_test.probe_target (v int CONSTRAINT probe_target_v_positive CHECK (v > 0));
SELECT boundary_test.destructor_count() AS destructors_before \gset

-- Our own C++ error type keeps SQLSTATE, message, detail and hint.
SELECT boundary_test.probe('cpp_error');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT boundary_test.destructor_count() - :destructors_before AS destroyed_after_cpp_error;

-- A plain std::exception becomes XX000 with its message.
SELECT boundary_test.probe('std_exception');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT boundary_test.destructor_count() - :destructors_before AS destroyed_after_std_exception;

-- A PostgreSQL error raised by SPI beneath C++ frames keeps its own SQLSTATE (42P01, 22012).
SELECT boundary_test.probe('spi_error');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT boundary_test.probe('division_by_zero');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT boundary_test.destructor_count() - :destructors_before AS destroyed_after_spi_errors;

-- ... and it is re-raised as it was (ReThrowError), not rebuilt from four fields: the
-- internal query with its error position, and the CONTEXT, survive.
\set SHOW_CONTEXT always
SELECT boundary_test.probe('spi_error');
SELECT boundary_test.probe('division_by_zero');
\set SHOW_CONTEXT never
-- The schema, table and constraint names survive too (clients read them: psycopg2's
-- e.diag.constraint_name); here PL/pgSQL reads them, after the probe's destructors ran.
SELECT boundary_test.destructor_count() AS destructors_before_check \gset
DO $$
DECLARE
    v_state text; v_constraint text; v_table text; v_schema text; v_context text;
BEGIN
    PERFORM boundary_test.probe('check_violation');
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_constraint = CONSTRAINT_NAME,
                            v_table = TABLE_NAME, v_schema = SCHEMA_NAME, v_context = PG_EXCEPTION_CONTEXT;
    RAISE NOTICE 'sqlstate %, constraint %, table %.%', v_state, v_constraint, v_schema, v_table;
    RAISE NOTICE 'context: %', v_context;
END
$$;
SELECT boundary_test.destructor_count() - :destructors_before_check AS destroyed_after_check_violation;

-- A PostgreSQL error is not our Error: `catch (const Error&)` cannot swallow it.
SELECT boundary_test.probe('catch_as_our_error');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Carrying on after a PostgreSQL error takes a subtransaction: its work is rolled back (the
-- row 1), and SPI works again afterwards (the row 2).
SELECT boundary_test.probe('isolated_spi_error');
SELECT array_agg(v ORDER BY v) AS rows_after_isolated_error FROM boundary_test.probe_target;

-- A query cancel (statement_timeout) while C++ objects are live: 57014, destructors ran.
SELECT boundary_test.destructor_count() AS destructors_before_cancel \gset
SET statement_timeout = '150ms';
SELECT boundary_test.probe('cancel');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET statement_timeout;
SELECT boundary_test.destructor_count() - :destructors_before_cancel AS destroyed_after_cancel;

-- Inside a transaction with a savepoint: the error rolls back to the savepoint only.
BEGIN;
CREATE TEMP TABLE boundary_kept(v int);
INSERT INTO boundary_kept VALUES (1);
SAVEPOINT before_probe;
SELECT boundary_test.probe('spi_error');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT before_probe;
INSERT INTO boundary_kept VALUES (2);
COMMIT;
SELECT array_agg(v ORDER BY v) AS kept_rows FROM boundary_kept;

-- Bad input names the value and hints at the good ones.
SELECT boundary_test.probe('no-such-mode');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- The same session goes on working, natively and through SPI.
SELECT boundary_test.probe('ok') AS still_working;
SELECT length(celaest.generate_license_key()) AS key_length,
       celaest.generate_license_key() ~ '^[0-9a-f]{64}$' AS lowercase_hex,
       celaest.generate_license_key() <> celaest.generate_license_key() AS distinct_keys;
SELECT celaest.version() LIKE 'celaest 0.2.0 (PostgreSQL 15.%' AS version_ok;

-- The extension itself ships no probe.
SELECT count(*) AS probes_in_the_extension
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace AND p.prosrc LIKE 'celaest_boundary%';

DROP TABLE boundary_test.probe_target;
DROP FUNCTION boundary_test.probe(text);
DROP FUNCTION boundary_test.destructor_count();
DROP SCHEMA boundary_test;
