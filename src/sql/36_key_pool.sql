-- The API-key pool (native): secrets encrypted with pgcrypto under celaest.encryption_key.
-- Administrative: the key pool is a platform object (API.md). EXECUTE goes to the service and
-- authenticated levels (module 84); each function refuses every caller but a service caller or
-- a super_admin with 42501 before doing anything (require_platform_manager, key_pool.cpp).

CREATE FUNCTION celaest.add_api_key(p_provider celaest.ai_provider, p_key_name text, p_secret text,
                                    p_options jsonb DEFAULT '{}')
    RETURNS uuid
    AS 'MODULE_PATHNAME', 'celaest_add_api_key'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION celaest.add_api_key(celaest.ai_provider, text, text, jsonb) IS
    'Adds an API key to the pool, encrypted with pgp_sym_encrypt under celaest.encryption_key; options priority, weight, rate_limit_rpm, rate_limit_tpm, rate_limit_rpd, expires_at, base_url, notes.';
REVOKE ALL ON FUNCTION celaest.add_api_key(celaest.ai_provider, text, text, jsonb) FROM PUBLIC;

CREATE FUNCTION celaest.rotate_api_key(p_key_id uuid, p_secret text)
    RETURNS void
    AS 'MODULE_PATHNAME', 'celaest_rotate_api_key'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION celaest.rotate_api_key(uuid, text) IS
    'Replaces the secret of a pool key (re-encrypted), resets its failure count and marks it healthy.';
REVOKE ALL ON FUNCTION celaest.rotate_api_key(uuid, text) FROM PUBLIC;

CREATE FUNCTION celaest.check_api_keys(p_key_id uuid DEFAULT NULL)
    RETURNS TABLE(key_id uuid, provider celaest.ai_provider, healthy boolean, status_code integer,
                  latency_ms integer, error text)
    AS 'MODULE_PATHNAME', 'celaest_check_api_keys'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION celaest.check_api_keys(uuid) IS
    'Health-checks one key or every active key now, concurrently (the provider''s cheapest authenticated call), and updates the pool exactly as the background worker does.';
REVOKE ALL ON FUNCTION celaest.check_api_keys(uuid) FROM PUBLIC;
