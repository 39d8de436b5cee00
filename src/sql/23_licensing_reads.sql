-- CELAEST — licensing, reads: the license in force, effective limits, usability, validate_license.
-- (Vocabulary, SQLSTATEs and privileges: the header of 22_licensing_rules.sql.)

-- ---------------------------------------------------------------------------
-- Reading licenses
-- ---------------------------------------------------------------------------

-- system_config is created in 70_configuration.sql: plpgsql binds it at first use. SECURITY
-- DEFINER: system_config is owner-only (85_security.sql), and every caller of check_limit
-- needs this one, non-secret, setting.
CREATE FUNCTION celaest._trial_limits()
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_value jsonb;
BEGIN
    SELECT c.value INTO v_value FROM celaest.system_config AS c WHERE c.key = 'license.trial_limits';
    RETURN v_value;
END;
$$;
COMMENT ON FUNCTION celaest._trial_limits() IS
    'The system_config setting license.trial_limits (an object of limit keys that narrows trial licenses), or NULL when unset.';
-- Executable by PUBLIC: check_limit and effective_limits (SECURITY INVOKER, every role) use it.

CREATE FUNCTION celaest.current_license(p_org_id uuid)
RETURNS celaest.licenses
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
    SELECT l.*
      FROM celaest.licenses AS l
     WHERE l.organization_id = p_org_id
       AND l.status IN ('trial', 'active', 'suspended');
$$;
COMMENT ON FUNCTION celaest.current_license(uuid) IS
    'The license in force (trial, active or suspended) of the organization, or NULL when it has none.';

CREATE FUNCTION celaest.effective_limits(p_license_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_result jsonb;
BEGIN
    SELECT celaest._effective_limits_of(p.limits, l.custom_limits,
                                       CASE WHEN l.status = 'trial' THEN celaest._trial_limits() END,
                                       l.billing_cycle = 'usage_based')
      INTO v_result
      FROM celaest.licenses AS l
      JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
     WHERE l.id = p_license_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'license % does not exist', p_license_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v_result;
END;
$$;
COMMENT ON FUNCTION celaest.effective_limits(uuid) IS
    'Effective limits of a license: plan limits (trials narrowed by system_config license.trial_limits; usage_based licenses uncapped in AI requests) overlaid with custom_limits; all five keys, -1 = unlimited. Raises 22023 for an unknown license.';

-- Raises the refusal for an organization whose current license is not usable
-- (LC001-LC004); returns the id of the usable license otherwise.
CREATE FUNCTION celaest._assert_license_usable(p_org_id uuid)
RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_lic  record;
    v_code text;
BEGIN
    IF p_org_id IS NULL THEN
        RAISE EXCEPTION 'organization id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT l.id, l.status, l.expires_at, l.trial_ends_at, l.suspended_at, l.cancelled_at, l.metadata,
           celaest._license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code
      INTO v_lic
      FROM celaest.licenses AS l
     WHERE l.organization_id = p_org_id
     ORDER BY l.status IN ('trial', 'active', 'suspended') DESC, l.created_at DESC, l.id
     LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'organization % has no license in force', p_org_id
            USING ERRCODE = 'LC001',
                  HINT = 'Issue one with celaest.issue_license().';
    END IF;
    v_code := v_lic.code;
    IF v_code = 'VALID' THEN
        RETURN v_lic.id;
    ELSIF v_code = 'SUSPENDED' THEN
        RAISE EXCEPTION 'license % of organization % is suspended', v_lic.id, p_org_id
            USING ERRCODE = 'LC002',
                  DETAIL = CASE WHEN v_lic.suspended_at IS NULL THEN 'Suspended.'
                                ELSE format('Suspended at %s.', v_lic.suspended_at) END;
    ELSIF v_code = 'CANCELLED' THEN
        RAISE EXCEPTION 'license % of organization % is cancelled', v_lic.id, p_org_id
            USING ERRCODE = 'LC004',
                  DETAIL = CASE WHEN v_lic.cancelled_at IS NULL THEN 'Cancelled.'
                                ELSE format('Cancelled at %s.', v_lic.cancelled_at) END,
                  HINT = 'A cancelled license is final; issue a new one with celaest.issue_license().';
    ELSIF v_code = 'TRIAL_EXPIRED' THEN
        RAISE EXCEPTION 'the trial of license % of organization % has expired', v_lic.id, p_org_id
            USING ERRCODE = 'LC003',
                  DETAIL = CASE WHEN COALESCE(v_lic.trial_ends_at, v_lic.expires_at) IS NULL THEN 'Trial expired by status.'
                                ELSE format('Trial ended at %s.', LEAST(v_lic.trial_ends_at, v_lic.expires_at)) END,
                  HINT = 'Activate the license (celaest.set_license_status) or issue a paid one.';
    ELSE
        RAISE EXCEPTION 'license % of organization % has expired', v_lic.id, p_org_id
            USING ERRCODE = 'LC003',
                  DETAIL = CASE WHEN v_lic.expires_at IS NULL THEN 'Expired by status.'
                                ELSE format('Expired at %s.', v_lic.expires_at) END,
                  HINT = 'Renew it: celaest.set_license_status(id, ''active'', reason, new expires_at).';
    END IF;
END;
$$;
COMMENT ON FUNCTION celaest._assert_license_usable(uuid) IS
    'Id of the organization''s usable license (in force, not suspended, not lapsed). Raises LC001 (no license), LC002 (suspended), LC003 (expired or trial expired, also by date before refresh_licenses() runs) or LC004 (cancelled); 22004 for a NULL id.';
REVOKE EXECUTE ON FUNCTION celaest._assert_license_usable(uuid) FROM PUBLIC;

-- The lookup hash always follows the key: whoever writes a license (issue_license, an
-- application's or a fixture's INSERT, an UPDATE of license_key) gets license_key_hash set
-- here, by the same rule validate_license hashes what it is given (lowercase, surrounding
-- blanks ignored; a key from generate_license_key is already lowercase hex, so issue_license's
-- hash is unchanged). An UPDATE naming only license_key_hash is left alone. No cached copy
-- derives from the key (78_cache_validity.sql): validate_license reads the row each call, so
-- a changed key is followed by the very next lookup and the old key is NOT_FOUND at once.
-- ENABLE ALWAYS: rows restored or replicated (session_replication_role = replica) get it too.
CREATE FUNCTION celaest._license_key_hash_follows_key()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.license_key_hash := encode(sha256(convert_to(lower(btrim(NEW.license_key, E' \t\r\n')), 'UTF8')), 'hex');
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION celaest._license_key_hash_follows_key() IS
    'Internal (licensing, trigger): sets licenses.license_key_hash to the SHA-256 (hex) of the key as validate_license looks it up (lowercase, surrounding blanks ignored), on every INSERT and UPDATE OF license_key.';
REVOKE EXECUTE ON FUNCTION celaest._license_key_hash_follows_key() FROM PUBLIC;
CREATE TRIGGER licenses_license_key_hash
    BEFORE INSERT OR UPDATE OF license_key ON celaest.licenses
    FOR EACH ROW EXECUTE FUNCTION celaest._license_key_hash_follows_key();
ALTER TABLE celaest.licenses ENABLE ALWAYS TRIGGER licenses_license_key_hash;

-- validate_license runs as its owner: the key is the credential, and whoever holds
-- it may learn its state even without row-level access to licenses. Unknown keys and
-- garbage take the same path (hash, one index probe that misses), so the answer and
-- its timing do not tell them apart; a B-tree probe by SHA-256 digest reveals nothing
-- usable about near-miss keys. The hash is the one licenses_license_key_hash stores (above).
CREATE FUNCTION celaest.validate_license(p_license_key text)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_hash  text := encode(sha256(convert_to(lower(btrim(COALESCE(p_license_key, ''), E' \t\r\n')), 'UTF8')), 'hex');
    v_lic   record;
    v_code  text;
    v_users bigint;
    v_tasks bigint;
BEGIN
    SELECT l.id, l.organization_id, l.status, l.expires_at, l.trial_ends_at, l.billing_cycle,
           l.current_period_start, l.current_period_end, l.storage_used_bytes, p.code AS plan_code,
           celaest._license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code,
           celaest._effective_limits_of(p.limits, l.custom_limits,
                                       CASE WHEN l.status = 'trial' THEN celaest._trial_limits() END,
                                       l.billing_cycle = 'usage_based') AS limits,
           CASE WHEN l.current_period_end <= now() AND l.status IN ('trial', 'active', 'suspended')
                THEN 0 ELSE l.ai_requests_used END AS ai_used
      INTO v_lic
      FROM celaest.licenses AS l
      JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
     WHERE l.license_key_hash = v_hash;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('valid', false, 'code', 'NOT_FOUND', 'license_id', NULL,
                                  'organization_id', NULL, 'plan', NULL, 'status', NULL,
                                  'expires_at', NULL, 'trial_ends_at', NULL, 'billing_cycle', NULL,
                                  'limits', NULL, 'usage', NULL);
    END IF;

    v_code := v_lic.code;
    IF v_code = 'VALID' AND (v_lic.limits ->> 'max_ai_requests_per_month')::bigint <> -1
       AND v_lic.ai_used >= (v_lic.limits ->> 'max_ai_requests_per_month')::bigint THEN
        v_code := 'QUOTA_EXCEEDED';
    END IF;
    SELECT count(*) INTO v_users FROM celaest.users_profile AS u
     WHERE u.organization_id = v_lic.organization_id AND u.deleted_at IS NULL;
    -- Tasks processing: the rows, and the synchronous calls in flight (no row until they end).
    SELECT count(*) + celaest._sync_calls_in_flight(v_lic.organization_id) INTO v_tasks
      FROM celaest.processed_tasks AS t
     WHERE t.organization_id = v_lic.organization_id AND t.status IN ('processing', 'retrying');

    RETURN jsonb_build_object(
        'valid', v_code = 'VALID',
        'code', v_code,
        'license_id', v_lic.id,
        'organization_id', v_lic.organization_id,
        'plan', v_lic.plan_code,
        'status', v_lic.status,
        'expires_at', v_lic.expires_at,
        'trial_ends_at', v_lic.trial_ends_at,
        'billing_cycle', v_lic.billing_cycle,
        'limits', v_lic.limits,
        'usage', jsonb_build_object(
            'ai_requests', v_lic.ai_used,
            'storage_bytes', v_lic.storage_used_bytes,
            'users', v_users,
            'concurrent_tasks', v_tasks,
            'period_start', v_lic.current_period_start,
            'period_end', v_lic.current_period_end));
END;
$$;
COMMENT ON FUNCTION celaest.validate_license(text) IS
    'Looks a license key up by its SHA-256 and returns {valid, code, license_id, organization_id, plan, status, expires_at, trial_ends_at, billing_cycle, limits, usage}; code is VALID, NOT_FOUND (unknown key or garbage, answered alike), SUSPENDED, EXPIRED, TRIAL_EXPIRED, CANCELLED or QUOTA_EXCEEDED (AI requests of the period used up); valid is true only for VALID.';
