-- CELAEST — module 25: licensing functions (API.md, "Licenses and limits").
--
-- Tables: module 20 (subscription_plans, licenses, license_usage_log). Enforcement
-- points (triggers, the AI-call and batch helpers): module 26, and module 75 for the
-- tables created after it (processed_tasks, system_config).
--
-- Vocabulary
--   in force     status trial, active or suspended (at most one per organization;
--                the partial unique index licenses_one_in_force_per_org).
--   usable       in force, not suspended, and not lapsed by date (expires_at, or
--                trial_ends_at for a trial). A license whose status still says
--                trial/active but whose date has passed is refused as expired
--                (LC003) before refresh_licenses() gets round to flipping it.
--   current      the license that answers for an organization: the one in force,
--                else its most recent one (so that an organization whose license
--                was cancelled hears LC004, not "no license").
--   metric       ai_requests | users | concurrent_tasks | batch_size | storage_gb,
--                or the plan limit key (max_ai_requests_per_month, max_users,
--                max_concurrent_tasks, max_batch_size, max_storage_gb).
--   limit -1     unlimited (everywhere: plans, custom_limits, results).
--
-- Effective limits (effective_limits(), limit_value()), per limit key:
--   1. the plan's value (a key the plan does not name is unlimited);
--   2. billing_cycle usage_based: max_ai_requests_per_month is uncapped (metered);
--   3. a trial is narrowed by system_config 'license.trial_limits' (an object of
--      limit keys): the smaller of the two wins, -1 never widens;
--   4. custom_limits, when it names the key, wins over all of the above (a
--      per-license decision by whoever issued it).
--   storage: max_storage_gb is in GiB; consumption and usage are in bytes
--   (storage_used_bytes), so check_limit/consume_quota work in bytes.
--
-- Billing periods: monthly 30 days, quarterly 90, yearly 365, usage_based 30 (the
-- metering period), lifetime never (one period for the whole life: the AI quota is a
-- lifetime cap then). A day is 24 hours, whatever the session's TimeZone. The first
-- period opens at starts_at. refresh_licenses() rolls periods (and consume_quota rolls
-- a lapsed one itself before charging it, so a late worker never charges a new
-- period's request to the old one).
--
-- SQLSTATEs
--   LC001 no license in force   LC002 suspended   LC003 expired / trial expired
--   LC004 cancelled             LC010 quota or limit would be exceeded
--                               (DETAIL "limit: L, used: U, requested: R")
--   22023 bad input (unknown plan code, metric, option, malformed limits, negative
--         amount, unknown license id, bad dates); 22004 a required argument is NULL
--   23505 the organization already has a license in force
--   55000 illegal status transition (object_not_in_prerequisite_state: the request is
--         well-formed, the license is in the wrong state for it)
--
-- Privileges. Module 85 lets every role read its own organization's rows (RLS) and
-- grants no writes. So these functions are SECURITY INVOKER unless noted: the read
-- ones answer what the caller may see; the writing ones (issue_license,
-- set_license_status, refresh_licenses, consume_quota, release_quota and module 26's
-- reserve_ai_request/check_batch) need write rights on licenses, which the owner has
-- and which run_prompt, ai_chat and the background workers (running as the owner)
-- use. An application role cannot reset or burn quota by calling them. SECURITY
-- DEFINER, with SET search_path: validate_license (the key is the credential),
-- trial_limits (system_config is owner-only) and, in modules 26/76, reserve_counted and
-- the max_users / max_concurrent_tasks triggers (an exact count must see every row,
-- not only the caller's; reserve_counted is not granted to PUBLIC).
--
-- search_path. Functions with a SET clause: SET search_path = pg_catalog, pg_temp.
-- The per-request hot ones (check_limit, consume_quota, and reserve_ai_request in
-- module 26) have none: a SET clause costs a GUC save/restore on every call and
-- measurably lowers their TPS (README, licensing benchmark). They are SECURITY
-- INVOKER and name every table and function schema-qualified, so the caller's
-- search_path can only affect the caller (run_prompt/ai_chat call them with
-- search_path = pg_catalog, pg_temp already set).

-- ---------------------------------------------------------------------------
-- Names, units and pure helpers
-- ---------------------------------------------------------------------------

CREATE FUNCTION celaest.license_limit_key(p_metric text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE p_metric
        WHEN 'ai_requests'               THEN 'max_ai_requests_per_month'
        WHEN 'max_ai_requests_per_month' THEN 'max_ai_requests_per_month'
        WHEN 'users'                     THEN 'max_users'
        WHEN 'max_users'                 THEN 'max_users'
        WHEN 'concurrent_tasks'          THEN 'max_concurrent_tasks'
        WHEN 'max_concurrent_tasks'      THEN 'max_concurrent_tasks'
        WHEN 'batch_size'                THEN 'max_batch_size'
        WHEN 'max_batch_size'            THEN 'max_batch_size'
        WHEN 'storage_gb'                THEN 'max_storage_gb'
        WHEN 'max_storage_gb'            THEN 'max_storage_gb'
    END;
$$;
COMMENT ON FUNCTION celaest.license_limit_key(text) IS
    'Plan limit key of a metric given by name or by key (ai_requests -> max_ai_requests_per_month, users -> max_users, concurrent_tasks -> max_concurrent_tasks, batch_size -> max_batch_size, storage_gb -> max_storage_gb); NULL for anything else.';

CREATE FUNCTION celaest.license_metric_name(p_metric text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE celaest.license_limit_key(p_metric)
        WHEN 'max_ai_requests_per_month' THEN 'ai_requests'
        WHEN 'max_users'                 THEN 'users'
        WHEN 'max_concurrent_tasks'      THEN 'concurrent_tasks'
        WHEN 'max_batch_size'            THEN 'batch_size'
        WHEN 'max_storage_gb'            THEN 'storage_gb'
    END;
$$;
COMMENT ON FUNCTION celaest.license_metric_name(text) IS
    'Metric name (ai_requests, users, concurrent_tasks, batch_size, storage_gb) of a metric given by name or by plan limit key; NULL for anything else.';

CREATE FUNCTION celaest.billing_period_length(p_cycle celaest.billing_cycle)
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- Hours, not days or months: a period is an exact duration whatever the TimeZone.
    SELECT CASE p_cycle
        WHEN 'monthly'     THEN interval '720 hours'    -- 30 days
        WHEN 'quarterly'   THEN interval '2160 hours'   -- 90 days
        WHEN 'yearly'      THEN interval '8760 hours'   -- 365 days
        WHEN 'usage_based' THEN interval '720 hours'    -- metering period, 30 days
        WHEN 'lifetime'    THEN NULL                    -- never rolls
    END;
$$;
COMMENT ON FUNCTION celaest.billing_period_length(celaest.billing_cycle) IS
    'Length of a billing period: monthly 30 days, quarterly 90, yearly 365, usage_based 30 (metering period), lifetime NULL (never rolls). Exact 24-hour days.';

-- Inlined by the planner into the queries that call it (a single expression, each
-- argument but the key used once): no function call on the hot path.
CREATE FUNCTION celaest.limit_value(p_key text, p_plan_limits jsonb, p_custom_limits jsonb,
                                    p_trial_limits jsonb, p_uncapped boolean)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- -1 (unlimited) is mapped to NULL so that LEAST() ignores it, then back.
    -- (jsonb -> key)::bigint is a direct cast (no text round trip); the values are
    -- validated integers (validate_limits), and a missing key gives NULL.
    SELECT COALESCE(
        (p_custom_limits -> p_key)::bigint,
        LEAST(CASE WHEN p_uncapped AND p_key = 'max_ai_requests_per_month' THEN NULL
                   ELSE NULLIF((p_plan_limits -> p_key)::bigint, -1) END,
              NULLIF((p_trial_limits -> p_key)::bigint, -1)),
        -1);
$$;
COMMENT ON FUNCTION celaest.limit_value(text, jsonb, jsonb, jsonb, boolean) IS
    'Effective value of one limit key: custom_limits if it names the key, else the plan value (missing = -1) narrowed by p_trial_limits (non-NULL for trial licenses only); p_uncapped (usage_based billing) lifts max_ai_requests_per_month. -1 = unlimited.';

CREATE FUNCTION celaest.effective_limits_of(p_plan_limits jsonb, p_custom_limits jsonb,
                                            p_trial_limits jsonb, p_uncapped boolean)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object(
        'max_users',                 celaest.limit_value('max_users', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped),
        'max_ai_requests_per_month', celaest.limit_value('max_ai_requests_per_month', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped),
        'max_storage_gb',            celaest.limit_value('max_storage_gb', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped),
        'max_concurrent_tasks',      celaest.limit_value('max_concurrent_tasks', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped),
        'max_batch_size',            celaest.limit_value('max_batch_size', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped));
$$;
COMMENT ON FUNCTION celaest.effective_limits_of(jsonb, jsonb, jsonb, boolean) IS
    'All five effective limits (see limit_value) as a JSON object; -1 = unlimited.';

-- The state of a license as validate_license() reports it, quota aside.
CREATE FUNCTION celaest.license_code(p_status celaest.license_status, p_expires_at timestamptz,
                                     p_trial_ends_at timestamptz, p_metadata jsonb)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_status = 'cancelled' THEN 'CANCELLED'
        WHEN p_status = 'expired' THEN
            CASE WHEN p_metadata -> 'last_status_change' ->> 'from' = 'trial'
                 THEN 'TRIAL_EXPIRED' ELSE 'EXPIRED' END
        WHEN p_expires_at <= pg_catalog.now() THEN
            CASE WHEN p_status = 'trial' THEN 'TRIAL_EXPIRED' ELSE 'EXPIRED' END
        WHEN p_status = 'trial' AND p_trial_ends_at <= pg_catalog.now() THEN 'TRIAL_EXPIRED'
        WHEN p_status = 'suspended' THEN 'SUSPENDED'
        ELSE 'VALID'
    END;
$$;
COMMENT ON FUNCTION celaest.license_code(celaest.license_status, timestamptz, timestamptz, jsonb) IS
    'State code of a license, quota aside: VALID, SUSPENDED, EXPIRED, TRIAL_EXPIRED or CANCELLED. A trial or active license whose expires_at (or trial_ends_at) has passed is EXPIRED (TRIAL_EXPIRED) even before refresh_licenses() changes its status.';

-- Validates a limits object (plans' limits, custom_limits, license.trial_limits).
CREATE FUNCTION celaest.validate_limits(p_limits jsonb, p_what text DEFAULT 'limits')
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_entry record;
    v_num   numeric;
    v_max   numeric;
BEGIN
    IF p_limits IS NULL THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_limits) <> 'object' THEN
        RAISE EXCEPTION '% must be a JSON object of limits, not %: %', p_what, jsonb_typeof(p_limits), p_limits
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example {"max_users": 20, "max_ai_requests_per_month": -1}; -1 means unlimited.';
    END IF;
    FOR v_entry IN SELECT e.key, e.value FROM jsonb_each(p_limits) AS e ORDER BY e.key LOOP
        IF v_entry.key NOT IN ('max_users', 'max_ai_requests_per_month', 'max_storage_gb',
                               'max_concurrent_tasks', 'max_batch_size') THEN
            RAISE EXCEPTION '% names an unknown limit "%"', p_what, v_entry.key
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Known limits: max_users, max_ai_requests_per_month, max_storage_gb, max_concurrent_tasks, max_batch_size.';
        END IF;
        IF jsonb_typeof(v_entry.value) <> 'number' THEN
            RAISE EXCEPTION '% limit "%" must be an integer, not %', p_what, v_entry.key, v_entry.value
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use a JSON number: a count, or -1 for unlimited.';
        END IF;
        v_num := v_entry.value::numeric;
        -- storage is charged in bytes: GiB * 2^30 must fit a bigint.
        v_max := CASE WHEN v_entry.key = 'max_storage_gb' THEN 8589934591 ELSE 9223372036854775807 END;
        IF v_num <> trunc(v_num) OR v_num < -1 OR v_num > v_max THEN
            RAISE EXCEPTION '% limit "%" must be an integer from -1 to %, not %', p_what, v_entry.key, v_max, v_entry.value
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = '-1 means unlimited.';
        END IF;
    END LOOP;
    RETURN p_limits;
END;
$$;
COMMENT ON FUNCTION celaest.validate_limits(jsonb, text) IS
    'Returns p_limits if it is NULL or a JSON object whose keys are known limit keys and whose values are integers >= -1 (max_storage_gb at most 2^33-1); raises 22023 naming the offending key and value otherwise. p_what names the object in the message.';

-- ---------------------------------------------------------------------------
-- Reading licenses
-- ---------------------------------------------------------------------------

-- system_config is created in module 70: plpgsql binds it at first use. SECURITY
-- DEFINER: system_config is owner-only (module 85), and every caller of check_limit
-- needs this one, non-secret, setting.
CREATE FUNCTION celaest.trial_limits()
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
COMMENT ON FUNCTION celaest.trial_limits() IS
    'The system_config setting license.trial_limits (an object of limit keys that narrows trial licenses), or NULL when unset.';

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
    SELECT celaest.effective_limits_of(p.limits, l.custom_limits,
                                       CASE WHEN l.status = 'trial' THEN celaest.trial_limits() END,
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
CREATE FUNCTION celaest.assert_license_usable(p_org_id uuid)
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
           celaest.license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code
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
COMMENT ON FUNCTION celaest.assert_license_usable(uuid) IS
    'Id of the organization''s usable license (in force, not suspended, not lapsed). Raises LC001 (no license), LC002 (suspended), LC003 (expired or trial expired, also by date before refresh_licenses() runs) or LC004 (cancelled); 22004 for a NULL id.';

-- validate_license runs as its owner: the key is the credential, and whoever holds
-- it may learn its state even without row-level access to licenses. Unknown keys and
-- garbage take the same path (hash, one index probe that misses), so the answer and
-- its timing do not tell them apart; a B-tree probe by SHA-256 digest reveals nothing
-- usable about near-miss keys.
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
           celaest.license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code,
           celaest.effective_limits_of(p.limits, l.custom_limits,
                                       CASE WHEN l.status = 'trial' THEN celaest.trial_limits() END,
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
    SELECT count(*) INTO v_tasks FROM celaest.processed_tasks AS t
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

-- ---------------------------------------------------------------------------
-- Limits: check (read only) and consume (atomic)
-- ---------------------------------------------------------------------------

-- The slow, rare path shared by the argument checks: raises the right 22004/22023.
CREATE FUNCTION celaest._raise_bad_limit_call(p_org_id uuid, p_metric text, p_amount bigint)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_org_id IS NULL THEN
        RAISE EXCEPTION 'organization id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF celaest.license_limit_key(p_metric) IS NULL THEN
        RAISE EXCEPTION 'unknown license metric "%"', p_metric
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ai_requests, users, concurrent_tasks, batch_size or storage_gb (or the plan limit key, e.g. max_users).';
    END IF;
    IF p_amount IS NULL OR p_amount < 0 THEN
        RAISE EXCEPTION 'amount must be zero or positive, not %', COALESCE(p_amount::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION celaest._raise_bad_limit_call(uuid, text, bigint) IS
    'Internal: raises 22004 for a NULL organization, 22023 for an unknown metric or a negative/NULL amount; returns quietly when the arguments are fine.';

-- The general path of check_limit: every metric, and organizations without a license
-- in force (answered from their most recent license).
CREATE FUNCTION celaest._check_limit_general(p_org_id uuid, p_limit text, p_amount bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key  text := celaest.license_limit_key(p_limit);
    v_lic  record;
    v_used bigint;
BEGIN
    IF v_key IS NULL OR p_amount IS NULL OR p_amount < 0 OR p_org_id IS NULL THEN
        PERFORM celaest._raise_bad_limit_call(p_org_id, p_limit, p_amount);
    END IF;

    SELECT l.id,
           celaest.license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code,
           COALESCE(NULLIF(celaest.limit_value(v_key, p.limits, l.custom_limits,
                                               CASE WHEN l.status = 'trial' THEN celaest.trial_limits() END,
                                               l.billing_cycle = 'usage_based'), -1)
                    * CASE WHEN v_key = 'max_storage_gb' THEN 1073741824 ELSE 1 END, -1) AS lim,
           CASE WHEN l.current_period_end <= now() AND l.status IN ('trial', 'active', 'suspended')
                THEN 0 ELSE l.ai_requests_used END AS ai_used,
           l.storage_used_bytes
      INTO v_lic
      FROM celaest.licenses AS l
      JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
     WHERE l.organization_id = p_org_id
     ORDER BY l.status IN ('trial', 'active', 'suspended') DESC, l.created_at DESC, l.id
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('allowed', false, 'limit', NULL, 'used', NULL, 'remaining', NULL,
                                  'code', 'NOT_FOUND');
    END IF;

    v_used := CASE v_key
        WHEN 'max_ai_requests_per_month' THEN v_lic.ai_used
        WHEN 'max_storage_gb' THEN v_lic.storage_used_bytes
        WHEN 'max_users' THEN
            (SELECT count(*) FROM celaest.users_profile AS u
              WHERE u.organization_id = p_org_id AND u.deleted_at IS NULL)
        WHEN 'max_concurrent_tasks' THEN
            (SELECT count(*) FROM celaest.processed_tasks AS t
              WHERE t.organization_id = p_org_id AND t.status IN ('processing', 'retrying'))
        ELSE 0                          -- max_batch_size: a per-batch cap, nothing accumulates
    END;
    RETURN jsonb_build_object(
        'allowed',   v_lic.code = 'VALID' AND (v_lic.lim = -1 OR v_used + p_amount <= v_lic.lim),
        'limit',     v_lic.lim,
        'used',      v_used,
        'remaining', CASE WHEN v_lic.lim = -1 THEN -1 ELSE GREATEST(v_lic.lim - v_used, 0) END,
        'code',      CASE WHEN v_lic.code <> 'VALID' OR v_lic.lim = -1 OR v_used + p_amount <= v_lic.lim
                          THEN v_lic.code ELSE 'QUOTA_EXCEEDED' END);
END;
$$;
COMMENT ON FUNCTION celaest._check_limit_general(uuid, text, bigint) IS
    'Internal: the general path of check_limit (every metric; organizations without a license in force are answered from their most recent license, or NOT_FOUND).';

-- The terms the hot paths keep in shared memory for every backend (src/pg/licensing/license_quota.cpp):
-- the organization's license in force and its effective AI-request cap, as
-- '<license uuid> <cap> <status>' ('' when none is in force). Owner's rights and a fixed search_path:
-- what one caller reads here is used by all, so no caller's search_path or row-level
-- security may shape it. Not granted to anyone: the native code calls it through fmgr, and
-- every answer it then gives is gated by a read under the caller's own rights.
-- VOLATILE: a volatile SQL function reads with a snapshot of its own, newer than the cache
-- generation the caller read first (src/pg/boundary/cache_validity.hpp).
CREATE FUNCTION celaest._license_terms(p_org_id uuid)
RETURNS text
LANGUAGE sql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((
        SELECT l.id::text || ' ' ||
               coalesce(nullif(celaest.limit_value('max_ai_requests_per_month', p.limits, l.custom_limits,
                                                   CASE WHEN l.status = 'trial' THEN celaest.trial_limits() END,
                                                   l.billing_cycle = 'usage_based'), -1), -1)::text
               || ' ' || l.status::text
          FROM celaest.licenses AS l
          JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
         WHERE l.organization_id = p_org_id AND l.status IN ('trial', 'active', 'suspended')), '');
$$;
COMMENT ON FUNCTION celaest._license_terms(uuid) IS
    'Internal: ''<license id> <effective max_ai_requests_per_month> <status>'' of the organization''s license in force ('''' when none), for the shared cache of the native check_limit, consume_quota and AI calls. Owner''s rights, fixed search_path; not granted.';
REVOKE EXECUTE ON FUNCTION celaest._license_terms(uuid) FROM PUBLIC;

-- Native (src/pg/functions/quota_functions.cpp): the common call (AI requests of an organization
-- with a license in force) reads the counter in one statement, with the license and its
-- effective cap from a per-backend copy (module 78 invalidates it); everything else goes to
-- _check_limit_general above, which gives the same answer. SECURITY INVOKER: the caller's
-- row-level security applies to both paths.
CREATE FUNCTION celaest.check_limit(p_org_id uuid, p_limit text, p_amount bigint DEFAULT 1)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'celaest_check_limit'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION celaest.check_limit(uuid, text, bigint) IS
    'Read-only check whether the organization may use p_amount more of a metric (ai_requests, users, concurrent_tasks, batch_size, storage_gb, or the plan limit key): {allowed, limit, used, remaining, code}. code is VALID, QUOTA_EXCEEDED, or the license''s state (NOT_FOUND, SUSPENDED, EXPIRED, TRIAL_EXPIRED, CANCELLED) from the license in force, else the most recent one. -1 = unlimited; storage in bytes; batch_size compares p_amount with the limit (used 0). 22023 for an unknown metric or a negative amount, 22004 for a NULL organization.';

-- Rolls the license's billing period when it has ended (locks the row). Logs the
-- closed period's AI requests into license_usage_log and resets the counter.
CREATE FUNCTION celaest.roll_license_period(p_license_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r        celaest.licenses;
    v_len    interval;
    v_start  timestamptz;
    v_closed boolean := false;
BEGIN
    -- Most calls find nothing to do: say so without taking the row lock.
    IF NOT EXISTS (SELECT 1 FROM celaest.licenses AS l
                    WHERE l.id = p_license_id AND l.status IN ('trial', 'active', 'suspended')
                      AND l.billing_cycle <> 'lifetime'
                      AND (l.current_period_end IS NULL OR l.current_period_start IS NULL
                           OR l.current_period_end <= now())) THEN
        RETURN false;
    END IF;
    SELECT * INTO r FROM celaest.licenses AS l WHERE l.id = p_license_id FOR UPDATE;
    IF NOT FOUND OR r.status NOT IN ('trial', 'active', 'suspended') OR r.billing_cycle = 'lifetime' THEN
        RETURN false;
    END IF;
    v_len := celaest.billing_period_length(r.billing_cycle);
    IF r.current_period_start IS NOT NULL AND r.current_period_end IS NOT NULL THEN
        IF r.current_period_end > now() THEN
            RETURN false;
        END IF;
        INSERT INTO celaest.license_usage_log
            (license_id, organization_id, metric, quantity, period_start, period_end, metadata)
        VALUES
            (r.id, r.organization_id, 'ai_requests', r.ai_requests_used,
             r.current_period_start, r.current_period_end,
             jsonb_build_object('event', 'period_close', 'reason', 'period_end',
                                'billing_cycle', r.billing_cycle));
        v_start := r.current_period_end;
        v_closed := true;
    ELSE
        -- No period recorded (a row written without issue_license): open the one
        -- that contains now(), counted from starts_at. Nothing to close.
        v_start := COALESCE(r.current_period_start, r.starts_at);
    END IF;
    -- Skip whole empty periods when the worker was away, then land on the one that
    -- contains now() (the loop corrects any rounding of the jump).
    IF v_start + v_len <= now() THEN
        v_start := v_start + v_len * floor(extract(epoch FROM now() - v_start) / extract(epoch FROM v_len));
    END IF;
    WHILE v_start + v_len <= now() LOOP
        v_start := v_start + v_len;
    END LOOP;

    UPDATE celaest.licenses AS l
       SET current_period_start = v_start,
           current_period_end   = v_start + v_len,
           next_billing_date    = ((v_start + v_len) AT TIME ZONE 'UTC')::date,
           ai_requests_used     = CASE WHEN v_closed THEN 0 ELSE l.ai_requests_used END
     WHERE l.id = r.id;
    RETURN true;
END;
$$;
COMMENT ON FUNCTION celaest.roll_license_period(uuid) IS
    'If the license is in force, not lifetime, and its billing period has ended (or was never set), closes the period into license_usage_log (metric ai_requests, quantity = requests used, metadata.event = period_close), opens the period that contains now() and resets ai_requests_used. Returns whether it changed the license.';

-- The general (slow) path of a consumption: argument checks, refusals, lapsed
-- periods, counted metrics. consume_quota and reserve_ai_request fall back to it when
-- their one-statement fast path does not grant.
CREATE FUNCTION celaest.take_quota(p_org_id uuid, p_metric text, p_amount bigint,
                                   OUT license_id uuid, OUT remaining bigint,
                                   OUT period_start timestamptz, OUT period_end timestamptz)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key     text := celaest.license_limit_key(p_metric);
    v_lim     bigint;
    v_used    bigint;
    v_trial   jsonb;
    v_attempt integer := 0;
    v_lic     record;
BEGIN
    IF v_key IS NULL OR p_amount IS NULL OR p_amount < 0 OR p_org_id IS NULL THEN
        PERFORM celaest._raise_bad_limit_call(p_org_id, p_metric, p_amount);
    END IF;

    LOOP
        v_attempt := v_attempt + 1;
        license_id := celaest.assert_license_usable(p_org_id);       -- LC001-LC004

        IF v_key IN ('max_users', 'max_concurrent_tasks', 'max_batch_size') THEN
            remaining := celaest.reserve_counted(p_org_id, v_key, p_amount, true);
            RETURN;
        END IF;

        IF v_key = 'max_ai_requests_per_month' THEN
            PERFORM celaest.roll_license_period(license_id);
        END IF;

        v_trial := celaest.trial_limits();
        -- The conditional UPDATE is the whole guarantee: it grants only while the
        -- latest committed counter leaves room (READ COMMITTED re-checks the WHERE
        -- clause on the row version it waited for), and changes nothing otherwise.
        IF v_key = 'max_ai_requests_per_month' THEN
            UPDATE celaest.licenses AS l
               SET ai_requests_used = l.ai_requests_used + p_amount
              FROM celaest.subscription_plans AS p
             WHERE l.id = license_id
               AND l.status IN ('trial', 'active')
               AND p.id = l.plan_id
               AND celaest.license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) = 'VALID'
               AND (l.current_period_end IS NULL OR l.current_period_end > now())
               AND p_amount <= COALESCE(NULLIF(celaest.limit_value(v_key, p.limits, l.custom_limits,
                                                   CASE WHEN l.status = 'trial' THEN v_trial END,
                                                   l.billing_cycle = 'usage_based'), -1),
                                        9223372036854775807) - l.ai_requests_used
            RETURNING celaest.limit_value(v_key, p.limits, l.custom_limits,
                                          CASE WHEN l.status = 'trial' THEN v_trial END,
                                          l.billing_cycle = 'usage_based'),
                      l.ai_requests_used, l.current_period_start, l.current_period_end
                 INTO v_lim, v_used, period_start, period_end;
        ELSE  -- max_storage_gb: bytes against GiB
            UPDATE celaest.licenses AS l
               SET storage_used_bytes = l.storage_used_bytes + p_amount
              FROM celaest.subscription_plans AS p
             WHERE l.id = license_id
               AND l.status IN ('trial', 'active')
               AND p.id = l.plan_id
               AND celaest.license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) = 'VALID'
               AND p_amount <= COALESCE(NULLIF(celaest.limit_value(v_key, p.limits, l.custom_limits,
                                                   CASE WHEN l.status = 'trial' THEN v_trial END,
                                                   false), -1) * 1073741824,
                                        9223372036854775807) - l.storage_used_bytes
            RETURNING COALESCE(NULLIF(celaest.limit_value(v_key, p.limits, l.custom_limits,
                                                          CASE WHEN l.status = 'trial' THEN v_trial END,
                                                          false), -1) * 1073741824, -1),
                      l.storage_used_bytes, l.current_period_start, l.current_period_end
                 INTO v_lim, v_used, period_start, period_end;
        END IF;
        IF FOUND THEN
            remaining := CASE WHEN v_lim = -1 THEN -1 ELSE v_lim - v_used END;
            RETURN;
        END IF;

        -- Refused. Say why, from the latest committed state.
        SELECT celaest.license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code,
               l.status, l.current_period_end,
               COALESCE(NULLIF(celaest.limit_value(v_key, p.limits, l.custom_limits,
                                                   CASE WHEN l.status = 'trial' THEN v_trial END,
                                                   l.billing_cycle = 'usage_based'), -1)
                        * CASE WHEN v_key = 'max_storage_gb' THEN 1073741824 ELSE 1 END, -1) AS lim,
               CASE WHEN v_key = 'max_storage_gb' THEN l.storage_used_bytes ELSE l.ai_requests_used END AS used
          INTO v_lic
          FROM celaest.licenses AS l
          JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
         WHERE l.id = license_id;
        IF FOUND AND v_lic.code = 'VALID' AND v_lic.status IN ('trial', 'active')
           AND NOT (v_key = 'max_ai_requests_per_month' AND v_lic.current_period_end <= now())
           AND v_lic.lim <> -1 AND v_lic.used + p_amount > v_lic.lim THEN
            RAISE EXCEPTION 'quota exceeded for organization %: % would go over its limit',
                            p_org_id, celaest.license_metric_name(v_key)
                USING ERRCODE = 'LC010',
                      DETAIL = format('limit: %s, used: %s, requested: %s', v_lic.lim, v_lic.used, p_amount),
                      HINT = CASE WHEN v_key = 'max_ai_requests_per_month'
                                  THEN 'The quota resets when the billing period rolls over; raise it with custom_limits or a larger plan.'
                                  ELSE 'Free some storage or raise max_storage_gb.' END;
        END IF;
        -- The state moved under us (a release, a roll, a status change): look again.
        IF v_attempt >= 5 THEN
            RAISE EXCEPTION 'could not charge % to organization % after % attempts',
                            celaest.license_metric_name(v_key), p_org_id, v_attempt
                USING ERRCODE = 'serialization_failure',
                      HINT = 'The license changed repeatedly while charging it; retry the transaction.';
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION celaest.take_quota(uuid, text, bigint) IS
    'General path of a consumption (consume_quota, reserve_ai_request and check_batch use it): validates the arguments, refuses with LC001-LC004 or LC010 (DETAIL limit/used/requested) consuming nothing, rolls a lapsed billing period first, and charges p_amount atomically. Counters: ai_requests, storage_gb (bytes). Counted metrics (users, concurrent_tasks) and batch_size are checked under a per-organization lock held to the end of the transaction and change nothing. Returns the license, the remaining quota (-1 unlimited) and the billing period.';

-- Native (src/pg/functions/quota_functions.cpp): the common case (AI requests of a usable license
-- in its current period) is one conditional UPDATE of the counter, with the license and
-- its effective cap from a per-backend copy (module 78 invalidates it); everything else
-- (other metrics, refusals, a period to roll, bad arguments) goes through take_quota,
-- which charges or refuses by the same rule.
CREATE FUNCTION celaest.consume_quota(p_org_id uuid, p_metric text DEFAULT 'ai_requests',
                                      p_amount bigint DEFAULT 1)
RETURNS bigint
AS 'MODULE_PATHNAME', 'celaest_consume_quota'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest.consume_quota(uuid, text, bigint) IS
    'Consumes p_amount of a metric for the organization and returns what remains (-1 = unlimited). Exact under any concurrency: one conditional UPDATE grants only while the committed counter leaves room; a refusal (LC010, DETAIL limit/used/requested; LC001-LC004 for the license) or a rollback leaves the counter as it was. ai_requests and storage_gb (bytes) are counters; users, concurrent_tasks and batch_size are checked (count + p_amount <= limit) under a per-organization lock held to the end of the transaction, and change nothing. 22023 for an unknown metric or a negative amount.';

CREATE FUNCTION celaest.release_quota(p_org_id uuid, p_metric text, p_amount bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key  text := celaest.license_limit_key(p_metric);
    v_lim  bigint;
    v_used bigint;
BEGIN
    IF v_key IS NULL OR p_amount IS NULL OR p_amount < 0 OR p_org_id IS NULL THEN
        PERFORM celaest._raise_bad_limit_call(p_org_id, p_metric, p_amount);
    END IF;
    IF v_key NOT IN ('max_ai_requests_per_month', 'max_storage_gb') THEN
        RAISE EXCEPTION 'metric "%" cannot be released', p_metric
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'users and concurrent_tasks are counted from users_profile and processed_tasks; batch_size is a per-batch cap.',
                  HINT = 'Only ai_requests and storage_gb are counters.';
    END IF;
    UPDATE celaest.licenses AS l
       SET ai_requests_used   = CASE WHEN v_key = 'max_ai_requests_per_month'
                                     THEN GREATEST(l.ai_requests_used - p_amount, 0) ELSE l.ai_requests_used END,
           storage_used_bytes = CASE WHEN v_key = 'max_storage_gb'
                                     THEN GREATEST(l.storage_used_bytes - p_amount, 0) ELSE l.storage_used_bytes END
      FROM celaest.subscription_plans AS p
     WHERE l.organization_id = p_org_id
       AND l.status IN ('trial', 'active', 'suspended')
       AND p.id = l.plan_id
    RETURNING COALESCE(NULLIF(celaest.limit_value(v_key, p.limits, l.custom_limits,
                                                  CASE WHEN l.status = 'trial' THEN celaest.trial_limits() END,
                                                  l.billing_cycle = 'usage_based'), -1)
                       * CASE WHEN v_key = 'max_storage_gb' THEN 1073741824 ELSE 1 END, -1),
              CASE WHEN v_key = 'max_storage_gb' THEN l.storage_used_bytes ELSE l.ai_requests_used END
         INTO v_lim, v_used;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'organization % has no license in force', p_org_id
            USING ERRCODE = 'LC001';
    END IF;
    RETURN CASE WHEN v_lim = -1 THEN -1 ELSE GREATEST(v_lim - v_used, 0) END;
END;
$$;
COMMENT ON FUNCTION celaest.release_quota(uuid, text, bigint) IS
    'Gives back p_amount of a counter (ai_requests: a refund; storage_gb: bytes freed) on the license in force, never below zero; returns what remains (-1 = unlimited). LC001 without a license in force; 22023 for other metrics or a negative amount.';

-- ---------------------------------------------------------------------------
-- Lifecycle
-- ---------------------------------------------------------------------------

CREATE FUNCTION celaest.issue_license(p_org_id uuid, p_plan_code text, p_options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_opts       jsonb;
    v_opt        text;
    v_org        record;
    v_plan       record;
    v_cycle      celaest.billing_cycle := 'monthly';
    v_trial_days integer := 0;
    v_custom     jsonb;
    v_starts     timestamptz := now();
    v_expires    timestamptz;
    v_trial_ends timestamptz;
    v_status     celaest.license_status;
    v_len        interval;
    v_key        text;
    v_existing   record;
    v_lic        celaest.licenses;
    v_num        numeric;
    v_ts         timestamptz;
    v_secret     text;
BEGIN
    IF p_org_id IS NULL THEN
        RAISE EXCEPTION 'organization id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_plan_code IS NULL THEN
        RAISE EXCEPTION 'plan code must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_options IS NOT NULL AND jsonb_typeof(p_options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object, not %: %', jsonb_typeof(p_options), p_options
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A JSON null option is the same as leaving it out.
    SELECT COALESCE(jsonb_object_agg(e.key, e.value), '{}') INTO v_opts
      FROM jsonb_each(COALESCE(p_options, '{}')) AS e WHERE jsonb_typeof(e.value) <> 'null';
    FOR v_opt IN SELECT jsonb_object_keys(v_opts) ORDER BY 1 LOOP
        IF v_opt NOT IN ('billing_cycle', 'trial_days', 'custom_limits', 'starts_at', 'expires_at',
                         'notes', 'metadata') THEN
            RAISE EXCEPTION 'unknown issue_license option "%"', v_opt
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Options: billing_cycle, trial_days, custom_limits, starts_at, expires_at, notes, metadata.';
        END IF;
    END LOOP;

    SELECT o.id, o.deleted_at INTO v_org FROM celaest.organizations AS o WHERE o.id = p_org_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'organization % does not exist', p_org_id USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_org.deleted_at IS NOT NULL THEN
        RAISE EXCEPTION 'organization % is deleted', p_org_id
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Soft-deleted at %s.', v_org.deleted_at);
    END IF;

    SELECT p.id, p.code, p.is_active INTO v_plan FROM celaest.subscription_plans AS p WHERE p.code = p_plan_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown plan code "%"', p_plan_code
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'See celaest.subscription_plans for the plan codes.';
    END IF;
    IF NOT v_plan.is_active THEN
        RAISE EXCEPTION 'plan "%" is not active', p_plan_code
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Retired plans cannot be sold; choose an active plan.';
    END IF;

    IF v_opts ? 'billing_cycle' THEN
        IF jsonb_typeof(v_opts -> 'billing_cycle') <> 'string'
           OR NOT (v_opts ->> 'billing_cycle') = ANY (enum_range(NULL::celaest.billing_cycle)::text[]) THEN
            RAISE EXCEPTION 'invalid billing_cycle %', v_opts -> 'billing_cycle'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use monthly, quarterly, yearly, lifetime or usage_based.';
        END IF;
        v_cycle := (v_opts ->> 'billing_cycle')::celaest.billing_cycle;
    END IF;

    IF v_opts ? 'trial_days' THEN
        IF jsonb_typeof(v_opts -> 'trial_days') <> 'number' THEN
            RAISE EXCEPTION 'trial_days must be a whole number of days, not %', v_opts -> 'trial_days'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_num := (v_opts ->> 'trial_days')::numeric;
        IF v_num <> trunc(v_num) OR v_num < 0 OR v_num > 3650 THEN
            RAISE EXCEPTION 'trial_days must be a whole number from 0 to 3650, not %', v_opts -> 'trial_days'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_trial_days := v_num::integer;
    END IF;

    IF v_opts ? 'custom_limits' THEN
        v_custom := celaest.validate_limits(v_opts -> 'custom_limits', 'custom_limits');
    END IF;

    FOREACH v_key IN ARRAY ARRAY['starts_at', 'expires_at'] LOOP
        CONTINUE WHEN NOT v_opts ? v_key;
        IF jsonb_typeof(v_opts -> v_key) <> 'string' THEN
            RAISE EXCEPTION '% must be a timestamp string, not %', v_key, v_opts -> v_key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        BEGIN
            v_ts := (v_opts ->> v_key)::timestamptz;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION '% is not a valid timestamp: %', v_key, v_opts -> v_key
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use ISO 8601, e.g. "2026-01-31T00:00:00Z".';
        END;
        IF NOT isfinite(v_ts) THEN
            RAISE EXCEPTION '% must be a finite timestamp, not %', v_key, v_opts -> v_key
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Leave expires_at out for a license that does not expire; starts_at defaults to now.';
        END IF;
        IF v_key = 'starts_at' THEN
            v_starts := v_ts;
        ELSE
            v_expires := v_ts;
        END IF;
    END LOOP;
    IF v_starts > now() THEN
        RAISE EXCEPTION 'starts_at % is in the future', v_starts
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Issue the license when it starts; starts_at may be now or in the past.';
    END IF;
    IF v_expires IS NOT NULL AND v_expires <= v_starts THEN
        RAISE EXCEPTION 'expires_at % is not after starts_at %', v_expires, v_starts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_expires IS NOT NULL AND v_expires <= now() THEN
        RAISE EXCEPTION 'expires_at % has already passed', v_expires
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF v_trial_days > 0 THEN
        v_status := 'trial';
        v_trial_ends := v_starts + make_interval(hours => 24 * v_trial_days);
        IF v_trial_ends <= now() THEN
            RAISE EXCEPTION 'a trial of % days from % would already have ended', v_trial_days, v_starts
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        v_status := 'active';
    END IF;

    SELECT l.id, l.status INTO v_existing
      FROM celaest.licenses AS l
     WHERE l.organization_id = p_org_id AND l.status IN ('trial', 'active', 'suspended');
    IF FOUND THEN
        RAISE EXCEPTION 'organization % already has a license in force', p_org_id
            USING ERRCODE = 'unique_violation',
                  DETAIL = format('License %s is %s.', v_existing.id, v_existing.status),
                  HINT = 'An organization holds one license at a time: cancel or expire it first (celaest.set_license_status).';
    END IF;

    v_len := celaest.billing_period_length(v_cycle);
    v_secret := celaest.generate_license_key();
    BEGIN
        INSERT INTO celaest.licenses
            (organization_id, plan_id, license_key, license_key_hash, status, starts_at, expires_at,
             trial_ends_at, billing_cycle, next_billing_date, custom_limits,
             current_period_start, current_period_end, notes, metadata)
        VALUES
            (p_org_id, v_plan.id, v_secret, encode(sha256(convert_to(v_secret, 'UTF8')), 'hex'), v_status,
             v_starts, v_expires, v_trial_ends, v_cycle,
             ((v_starts + v_len) AT TIME ZONE 'UTC')::date, v_custom,
             v_starts, v_starts + v_len, v_opts ->> 'notes', COALESCE(v_opts -> 'metadata', '{}'))
        RETURNING * INTO v_lic;
    EXCEPTION WHEN unique_violation THEN
        -- A concurrent issue_license for the same organization won the race.
        IF EXISTS (SELECT 1 FROM celaest.licenses AS l
                    WHERE l.organization_id = p_org_id AND l.status IN ('trial', 'active', 'suspended')) THEN
            RAISE EXCEPTION 'organization % already has a license in force', p_org_id
                USING ERRCODE = 'unique_violation',
                      HINT = 'An organization holds one license at a time: cancel or expire it first (celaest.set_license_status).';
        END IF;
        RAISE;
    END;

    RETURN jsonb_build_object(
        'license_id', v_lic.id,
        'license_key', v_lic.license_key,
        'status', v_lic.status,
        'organization_id', v_lic.organization_id,
        'plan', v_plan.code,
        'billing_cycle', v_lic.billing_cycle,
        'starts_at', v_lic.starts_at,
        'expires_at', v_lic.expires_at,
        'trial_ends_at', v_lic.trial_ends_at,
        'current_period_start', v_lic.current_period_start,
        'current_period_end', v_lic.current_period_end,
        'limits', celaest.effective_limits(v_lic.id));
END;
$$;
COMMENT ON FUNCTION celaest.issue_license(uuid, text, jsonb) IS
    'Issues a license of plan p_plan_code to the organization and returns {license_id, license_key, status, organization_id, plan, billing_cycle, starts_at, expires_at, trial_ends_at, current_period_start, current_period_end, limits}. Options: billing_cycle (default monthly), trial_days (> 0: status trial, trial_ends_at = starts_at + days; else active), custom_limits, starts_at (now or past; the first billing period opens there), expires_at, notes, metadata. The key comes from generate_license_key(); only its SHA-256 is used for lookups. 23505 when the organization already has a license in force; 22023 for an unknown or inactive plan, unknown option, malformed custom_limits or bad dates.';

CREATE FUNCTION celaest.set_license_status(p_license_id uuid, p_status celaest.license_status,
                                           p_reason text DEFAULT NULL,
                                           p_expires_at timestamptz DEFAULT NULL)
RETURNS celaest.licenses
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r         celaest.licenses;
    v_new     celaest.licenses;
    v_legal   text[];
    v_expires timestamptz;
    v_len     interval;
    v_change  jsonb;
BEGIN
    IF p_license_id IS NULL OR p_status IS NULL THEN
        RAISE EXCEPTION 'license id and status must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO r FROM celaest.licenses AS l WHERE l.id = p_license_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'license % does not exist', p_license_id USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_expires_at IS NOT NULL AND p_status <> 'active' THEN
        RAISE EXCEPTION 'a new expires_at applies only to a transition to active, not to %', p_status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    v_legal := CASE r.status
        WHEN 'trial'     THEN ARRAY['active', 'expired', 'cancelled']
        WHEN 'active'    THEN ARRAY['suspended', 'expired', 'cancelled']
        WHEN 'suspended' THEN ARRAY['active', 'cancelled', 'expired']
        WHEN 'expired'   THEN ARRAY['active']
        ELSE ARRAY[]::text[]
    END;

    IF r.status = p_status THEN
        -- Idempotent, except that an active license may get a new expiry (renewal).
        IF p_expires_at IS NULL THEN
            RETURN r;
        END IF;
    ELSIF r.status = 'cancelled' THEN
        RAISE EXCEPTION 'license % cannot go from % to %', p_license_id, r.status, p_status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'A cancelled license is final.',
                  HINT = 'Issue a new license with celaest.issue_license().';
    ELSIF NOT p_status::text = ANY (v_legal) THEN
        RAISE EXCEPTION 'license % cannot go from % to %', p_license_id, r.status, p_status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('From %s a license may go to: %s.', r.status, array_to_string(v_legal, ', '));
    END IF;

    v_new := r;
    v_new.status := p_status;
    v_change := jsonb_build_object('from', r.status, 'to', p_status, 'reason', p_reason, 'at', now());

    IF p_status = 'active' THEN
        v_expires := COALESCE(p_expires_at, r.expires_at);
        IF v_expires IS NOT NULL AND v_expires <= now() THEN
            RAISE EXCEPTION 'license % cannot become active: it expires at %, which has passed', p_license_id, v_expires
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass a future expiry: celaest.set_license_status(id, ''active'', reason, p_expires_at).';
        END IF;
        v_new.expires_at := v_expires;
        v_new.suspended_at := NULL;
        IF r.status IN ('trial', 'expired') THEN
            -- Conversion or renewal: the paid period starts now. A trial's open
            -- period is closed here; an expired license's was closed at expiry.
            IF r.status = 'trial' THEN
                INSERT INTO celaest.license_usage_log
                    (license_id, organization_id, metric, quantity, period_start, period_end, metadata)
                VALUES (r.id, r.organization_id, 'ai_requests', r.ai_requests_used, r.current_period_start,
                        GREATEST(r.current_period_start, now()),
                        jsonb_build_object('event', 'period_close', 'reason', 'activated',
                                           'billing_cycle', r.billing_cycle));
            END IF;
            v_len := celaest.billing_period_length(r.billing_cycle);
            v_new.current_period_start := now();
            v_new.current_period_end := now() + v_len;
            v_new.next_billing_date := ((now() + v_len) AT TIME ZONE 'UTC')::date;
            v_new.ai_requests_used := 0;
        END IF;
        IF r.status = 'expired' AND EXISTS (
               SELECT 1 FROM celaest.licenses AS l
                WHERE l.organization_id = r.organization_id AND l.id <> r.id
                  AND l.status IN ('trial', 'active', 'suspended')) THEN
            RAISE EXCEPTION 'organization % already has a license in force', r.organization_id
                USING ERRCODE = 'unique_violation',
                      HINT = 'Renew only when the organization has no other license in force.';
        END IF;
    ELSIF p_status = 'suspended' THEN
        v_new.suspended_at := now();
    ELSIF p_status IN ('cancelled', 'expired') THEN
        IF p_status = 'cancelled' THEN
            v_new.cancelled_at := now();
        END IF;
        INSERT INTO celaest.license_usage_log
            (license_id, organization_id, metric, quantity, period_start, period_end, metadata)
        VALUES (r.id, r.organization_id, 'ai_requests', r.ai_requests_used, r.current_period_start,
                GREATEST(r.current_period_start, LEAST(r.current_period_end, now())),
                jsonb_build_object('event', 'period_close', 'reason', p_status,
                                   'billing_cycle', r.billing_cycle));
    END IF;
    v_new.metadata := r.metadata || jsonb_build_object('last_status_change', v_change);

    BEGIN
        UPDATE celaest.licenses AS l
           SET status               = v_new.status,
               expires_at           = v_new.expires_at,
               suspended_at         = v_new.suspended_at,
               cancelled_at         = v_new.cancelled_at,
               current_period_start = v_new.current_period_start,
               current_period_end   = v_new.current_period_end,
               next_billing_date    = v_new.next_billing_date,
               ai_requests_used     = v_new.ai_requests_used,
               metadata             = v_new.metadata
         WHERE l.id = r.id
        RETURNING * INTO v_new;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'organization % already has a license in force', r.organization_id
            USING ERRCODE = 'unique_violation',
                  HINT = 'Renew only when the organization has no other license in force.';
    END;
    RETURN v_new;
END;
$$;
COMMENT ON FUNCTION celaest.set_license_status(uuid, celaest.license_status, text, timestamptz) IS
    'Moves a license to p_status along the legal transitions (trial -> active/expired/cancelled; active -> suspended/expired/cancelled; suspended -> active/cancelled/expired; expired -> active on renewal; cancelled is final) and returns the new row; the same status is a no-op. Stamps suspended_at/cancelled_at, records {from, to, reason, at} in metadata.last_status_change (so the automatic audit entry carries the reason), closes the billing period into license_usage_log on expiry, cancellation and trial conversion, and opens a fresh period on conversion/renewal. p_expires_at: new expiry for a transition to active (required when the old one has passed). 55000 for an illegal transition, 22023 for an unknown license, 23505 if renewing while another license is in force.';

CREATE FUNCTION celaest.refresh_licenses()
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r       celaest.licenses;
    v_id    uuid;
    v_end   timestamptz;
    v_count integer := 0;
BEGIN
    -- 1. Lapsed trials and licenses expire (their open period is closed at the
    --    moment they lapsed). Rows locked by a running transaction are left for the
    --    next pass: the enforcement points already refuse them by date.
    FOR r IN SELECT * FROM celaest.licenses AS l
              WHERE l.status IN ('trial', 'active', 'suspended')
                AND (l.expires_at <= now() OR (l.status = 'trial' AND l.trial_ends_at <= now()))
              ORDER BY l.id
                FOR UPDATE SKIP LOCKED
    LOOP
        v_end := LEAST(r.expires_at, CASE WHEN r.status = 'trial' THEN r.trial_ends_at END);
        INSERT INTO celaest.license_usage_log
            (license_id, organization_id, metric, quantity, period_start, period_end, metadata)
        VALUES (r.id, r.organization_id, 'ai_requests', r.ai_requests_used, r.current_period_start,
                GREATEST(r.current_period_start, LEAST(r.current_period_end, v_end)),
                jsonb_build_object('event', 'period_close', 'reason', 'expired',
                                   'billing_cycle', r.billing_cycle));
        UPDATE celaest.licenses AS l
           SET status = 'expired',
               metadata = l.metadata || jsonb_build_object('last_status_change', jsonb_build_object(
                   'from', r.status, 'to', 'expired',
                   'reason', CASE WHEN r.status = 'trial' AND r.trial_ends_at <= now()
                                  THEN 'trial ended' ELSE 'expired' END,
                   'at', v_end))
         WHERE l.id = r.id;
        v_count := v_count + 1;
    END LOOP;

    -- 2. Billing periods that have ended roll over.
    FOR v_id IN SELECT l.id FROM celaest.licenses AS l
                 WHERE l.status IN ('trial', 'active', 'suspended')
                   AND l.billing_cycle <> 'lifetime'
                   AND (l.current_period_end IS NULL OR l.current_period_start IS NULL
                        OR l.current_period_end <= now())
                 ORDER BY l.id
                   FOR UPDATE SKIP LOCKED
    LOOP
        IF celaest.roll_license_period(v_id) THEN
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION celaest.refresh_licenses() IS
    'Housekeeping (the background worker calls it): expires lapsed trials and licenses (closing their open period into license_usage_log), then rolls every ended billing period by billing_cycle (roll_license_period). Skips rows locked by other transactions (next pass). Returns the number of licenses changed.';
