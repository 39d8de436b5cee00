-- Licensing: license key generation (native, on the server's strong random source).

CREATE FUNCTION celaest.generate_license_key() RETURNS text
    AS 'MODULE_PATHNAME', 'celaest_generate_license_key'
    LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION celaest.generate_license_key() IS
    'A new license key: 64 lowercase hex characters (256 bits) from pg_strong_random.';
