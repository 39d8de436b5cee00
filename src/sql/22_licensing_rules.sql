-- CELAEST — licensing, rules: metric names, periods, effective limits, license state,
-- limits validation (pure helpers). This header holds the licensing feature's vocabulary
-- for all its files (API.md, "Licenses and limits"):
--   20_licensing_tables.sql       subscription_plans, licenses, license_usage_log
--   21_licensing_keys.sql         generate_license_key (native)
--   22_licensing_rules.sql        this file
--   23_licensing_reads.sql        current_license, effective_limits, validate_license
--   24_licensing_quota.sql        check_limit, consume_quota, _take_quota, _release_quota
--   25_licensing_lifecycle.sql    issue_license, set_license_status, refresh_licenses
--   26_licensing_enforcement.sql  the enforcement points: trigger functions and the
--                                 AI-call / batch helpers (the triggers are created with
--                                 their tables, processed_tasks and system_config included).
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
-- Effective limits (effective_limits(), _limit_value()), per limit key:
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
-- Privileges. 85_security.sql lets every role read its own organization's rows (RLS) and
-- grants no writes. So these functions are SECURITY INVOKER unless noted: the read
-- ones answer what the caller may see; the writing ones (issue_license,
-- set_license_status, refresh_licenses, consume_quota, _release_quota and
-- _reserve_ai_request/_check_batch) need write rights on licenses, which the owner has
-- and which run_prompt, ai_chat and the background workers (running as the owner)
-- use. An application role cannot reset or burn quota by calling them, and the internal
-- helpers of those writing paths are not even executable by PUBLIC. Who may act for whom
-- (API.md): consume_quota acting for a user who may spend for the organization (operator
-- and above, src/pg/licensing/spending_rights.hpp) charges as the owner, anyone else acting
-- for a user gets 42501; issue_license and set_license_status first ask
-- _assert_licensing_admin (a service caller acting for no user, or a super_admin). SECURITY
-- DEFINER, with SET search_path: validate_license (the key is the credential),
-- _trial_limits (system_config is owner-only) and, in 26_licensing_enforcement.sql, _reserve_counted and
-- the max_users / max_concurrent_tasks triggers (an exact count must see every row,
-- not only the caller's; _reserve_counted is not granted to PUBLIC).
--
-- search_path. Functions with a SET clause: SET search_path = pg_catalog, pg_temp.
-- The per-request hot ones (check_limit, consume_quota, and _reserve_ai_request)
-- have none: a SET clause costs a GUC save/restore on every call and
-- measurably lowers their TPS (README, licensing benchmark). They are SECURITY
-- INVOKER and name every table and function schema-qualified, so the caller's
-- search_path can only affect the caller (run_prompt/ai_chat call them with
-- search_path = pg_catalog, pg_temp already set).


-- ---------------------------------------------------------------------------
-- Names, units and pure helpers
-- ---------------------------------------------------------------------------

CREATE FUNCTION celaest._license_limit_key(p_metric text)
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
COMMENT ON FUNCTION celaest._license_limit_key(text) IS
    'Plan limit key of a metric given by name or by key (ai_requests -> max_ai_requests_per_month, users -> max_users, concurrent_tasks -> max_concurrent_tasks, batch_size -> max_batch_size, storage_gb -> max_storage_gb); NULL for anything else.';
-- Executable by PUBLIC: check_limit (SECURITY INVOKER, every role) reaches it through _check_limit_general.

CREATE FUNCTION celaest._license_metric_name(p_metric text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE celaest._license_limit_key(p_metric)
        WHEN 'max_ai_requests_per_month' THEN 'ai_requests'
        WHEN 'max_users'                 THEN 'users'
        WHEN 'max_concurrent_tasks'      THEN 'concurrent_tasks'
        WHEN 'max_batch_size'            THEN 'batch_size'
        WHEN 'max_storage_gb'            THEN 'storage_gb'
    END;
$$;
COMMENT ON FUNCTION celaest._license_metric_name(text) IS
    'Metric name (ai_requests, users, concurrent_tasks, batch_size, storage_gb) of a metric given by name or by plan limit key; NULL for anything else.';
REVOKE EXECUTE ON FUNCTION celaest._license_metric_name(text) FROM PUBLIC;

CREATE FUNCTION celaest._billing_period_length(p_cycle celaest.billing_cycle)
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
COMMENT ON FUNCTION celaest._billing_period_length(celaest.billing_cycle) IS
    'Length of a billing period: monthly 30 days, quarterly 90, yearly 365, usage_based 30 (metering period), lifetime NULL (never rolls). Exact 24-hour days.';
REVOKE EXECUTE ON FUNCTION celaest._billing_period_length(celaest.billing_cycle) FROM PUBLIC;

-- Inlined by the planner into the queries that call it (a single expression, each
-- argument but the key used once): no function call on the hot path.
CREATE FUNCTION celaest._limit_value(p_key text, p_plan_limits jsonb, p_custom_limits jsonb,
                                    p_trial_limits jsonb, p_uncapped boolean)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- -1 (unlimited) is mapped to NULL so that LEAST() ignores it, then back.
    -- (jsonb -> key)::bigint is a direct cast (no text round trip); the values are
    -- validated integers (_validate_limits), and a missing key gives NULL.
    SELECT COALESCE(
        (p_custom_limits -> p_key)::bigint,
        LEAST(CASE WHEN p_uncapped AND p_key = 'max_ai_requests_per_month' THEN NULL
                   ELSE NULLIF((p_plan_limits -> p_key)::bigint, -1) END,
              NULLIF((p_trial_limits -> p_key)::bigint, -1)),
        -1);
$$;
COMMENT ON FUNCTION celaest._limit_value(text, jsonb, jsonb, jsonb, boolean) IS
    'Effective value of one limit key: custom_limits if it names the key, else the plan value (missing = -1) narrowed by p_trial_limits (non-NULL for trial licenses only); p_uncapped (usage_based billing) lifts max_ai_requests_per_month. -1 = unlimited.';
-- Executable by PUBLIC: check_limit and effective_limits (SECURITY INVOKER, every role) use it.

CREATE FUNCTION celaest._effective_limits_of(p_plan_limits jsonb, p_custom_limits jsonb,
                                            p_trial_limits jsonb, p_uncapped boolean)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object(
        'max_users',                 celaest._limit_value('max_users', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped),
        'max_ai_requests_per_month', celaest._limit_value('max_ai_requests_per_month', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped),
        'max_storage_gb',            celaest._limit_value('max_storage_gb', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped),
        'max_concurrent_tasks',      celaest._limit_value('max_concurrent_tasks', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped),
        'max_batch_size',            celaest._limit_value('max_batch_size', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped));
$$;
COMMENT ON FUNCTION celaest._effective_limits_of(jsonb, jsonb, jsonb, boolean) IS
    'All five effective limits (see _limit_value) as a JSON object; -1 = unlimited.';
-- Executable by PUBLIC: effective_limits (SECURITY INVOKER, every role; the view v_active_licenses) uses it.

-- The state of a license as validate_license() reports it, quota aside.
CREATE FUNCTION celaest._license_code(p_status celaest.license_status, p_expires_at timestamptz,
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
COMMENT ON FUNCTION celaest._license_code(celaest.license_status, timestamptz, timestamptz, jsonb) IS
    'State code of a license, quota aside: VALID, SUSPENDED, EXPIRED, TRIAL_EXPIRED or CANCELLED. A trial or active license whose expires_at (or trial_ends_at) has passed is EXPIRED (TRIAL_EXPIRED) even before refresh_licenses() changes its status.';
-- Executable by PUBLIC: check_limit (SECURITY INVOKER, every role) uses it, natively and through _check_limit_general.

-- Validates a limits object (plans' limits, custom_limits, license.trial_limits).
CREATE FUNCTION celaest._validate_limits(p_limits jsonb, p_what text DEFAULT 'limits')
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
COMMENT ON FUNCTION celaest._validate_limits(jsonb, text) IS
    'Returns p_limits if it is NULL or a JSON object whose keys are known limit keys and whose values are integers >= -1 (max_storage_gb at most 2^33-1); raises 22023 naming the offending key and value otherwise. p_what names the object in the message.';
-- Executable by PUBLIC: the limits triggers run as the writing role, which may be any role granted writes on plans, licenses or system_config.
