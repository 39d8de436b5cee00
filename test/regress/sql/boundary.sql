-- The C++/PostgreSQL boundary: every failure mode becomes a clean ERROR with its SQLSTATE,
-- C++ destructors run before the ERROR is raised, and the session keeps working.
\set SHOW_CONTEXT never
\set VERBOSITY default
SELECT celaest._boundary_destructor_count() AS destructors_before \gset

-- Our own C++ error type keeps SQLSTATE, message, detail and hint.
SELECT celaest._boundary_probe('cpp_error');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest._boundary_destructor_count() - :destructors_before AS destroyed_after_cpp_error;

-- A plain std::exception becomes XX000 with its message.
SELECT celaest._boundary_probe('std_exception');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest._boundary_destructor_count() - :destructors_before AS destroyed_after_std_exception;

-- A PostgreSQL error raised by SPI beneath C++ frames keeps its own SQLSTATE (42P01, 22012).
SELECT celaest._boundary_probe('spi_error');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest._boundary_probe('division_by_zero');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest._boundary_destructor_count() - :destructors_before AS destroyed_after_spi_errors;

-- A query cancel (statement_timeout) while C++ objects are live: 57014, destructors ran.
SET statement_timeout = '150ms';
SELECT celaest._boundary_probe('cancel');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET statement_timeout;
SELECT celaest._boundary_destructor_count() - :destructors_before AS destroyed_after_cancel;

-- Inside a transaction with a savepoint: the error rolls back to the savepoint only.
BEGIN;
CREATE TEMP TABLE boundary_kept(v int);
INSERT INTO boundary_kept VALUES (1);
SAVEPOINT before_probe;
SELECT celaest._boundary_probe('spi_error');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT before_probe;
INSERT INTO boundary_kept VALUES (2);
COMMIT;
SELECT array_agg(v ORDER BY v) AS kept_rows FROM boundary_kept;

-- Bad input names the value and hints at the good ones.
SELECT celaest._boundary_probe('no-such-mode');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- The same session goes on working, natively and through SPI.
SELECT celaest._boundary_probe('ok') AS still_working;
SELECT length(celaest.generate_license_key()) AS key_length,
       celaest.generate_license_key() ~ '^[0-9a-f]{64}$' AS lowercase_hex,
       celaest.generate_license_key() <> celaest.generate_license_key() AS distinct_keys;
SELECT celaest.version() LIKE 'celaest 0.2.0 (PostgreSQL 15.%' AS version_ok;

-- Only superusers may call the probes.
CREATE ROLE boundary_probe_user;
SET ROLE boundary_probe_user;
SELECT celaest._boundary_probe('ok');
RESET ROLE;
DROP ROLE boundary_probe_user;
