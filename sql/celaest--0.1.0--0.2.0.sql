-- CELAEST 0.1.0 → 0.2.0 (ALTER EXTENSION celaest UPDATE TO '0.2.0').
--
-- Every schema change made since 0.1.0 lands here as well as in src/sql, so that an upgraded
-- database equals a fresh 0.2.0 install object by object (test/upgrade checks it).

\echo Use "ALTER EXTENSION celaest UPDATE TO '0.2.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Internal functions take the "_" prefix (00_prelude.sql, "Function names"). Triggers,
-- policies and views refer to functions by OID and follow the rename; function bodies are
-- text and are replaced below.
-- ---------------------------------------------------------------------------
ALTER FUNCTION celaest.current_user_id_or_null() RENAME TO _current_user_id_or_null;
ALTER FUNCTION celaest.current_org_id_or_null() RENAME TO _current_org_id_or_null;
ALTER FUNCTION celaest.current_user_is_super_admin() RENAME TO _current_user_is_super_admin;
ALTER FUNCTION celaest.license_limit_key(text) RENAME TO _license_limit_key;
ALTER FUNCTION celaest.license_metric_name(text) RENAME TO _license_metric_name;
ALTER FUNCTION celaest.billing_period_length(celaest.billing_cycle) RENAME TO _billing_period_length;
ALTER FUNCTION celaest.limit_value(text, jsonb, jsonb, jsonb, boolean) RENAME TO _limit_value;
ALTER FUNCTION celaest.effective_limits_of(jsonb, jsonb, jsonb, boolean) RENAME TO _effective_limits_of;
ALTER FUNCTION celaest.license_code(celaest.license_status, timestamptz, timestamptz, jsonb) RENAME TO _license_code;
ALTER FUNCTION celaest.validate_limits(jsonb, text) RENAME TO _validate_limits;
ALTER FUNCTION celaest.trial_limits() RENAME TO _trial_limits;
ALTER FUNCTION celaest.assert_license_usable(uuid) RENAME TO _assert_license_usable;
ALTER FUNCTION celaest.roll_license_period(uuid) RENAME TO _roll_license_period;
ALTER FUNCTION celaest.take_quota(uuid, text, bigint) RENAME TO _take_quota;
ALTER FUNCTION celaest.release_quota(uuid, text, bigint) RENAME TO _release_quota;
ALTER FUNCTION celaest.reserve_counted(uuid, text, bigint, boolean, uuid) RENAME TO _reserve_counted;
ALTER FUNCTION celaest.reserve_ai_request(uuid, uuid, uuid) RENAME TO _reserve_ai_request;
ALTER FUNCTION celaest.check_batch(uuid, integer, boolean) RENAME TO _check_batch;
ALTER FUNCTION celaest.run_pending_tasks(integer) RENAME TO _run_pending_tasks;
ALTER FUNCTION celaest.set_updated_at() RENAME TO _set_updated_at;
ALTER FUNCTION celaest.enforce_max_users() RENAME TO _enforce_max_users;
ALTER FUNCTION celaest.enforce_storage_limit() RENAME TO _enforce_storage_limit;
ALTER FUNCTION celaest.check_limits_column() RENAME TO _check_limits_column;
ALTER FUNCTION celaest.audit_logs_refuse_change() RENAME TO _audit_logs_refuse_change;
ALTER FUNCTION celaest.audit_row_change() RENAME TO _audit_row_change;
ALTER FUNCTION celaest.enforce_max_concurrent_tasks() RENAME TO _enforce_max_concurrent_tasks;
ALTER FUNCTION celaest.check_trial_limits_setting() RENAME TO _check_trial_limits_setting;

-- Never called: the batch runner is woken by submit_batch's own transaction callback. The C
-- symbol stays in the library, so that 0.1.0's script still installs.
DROP FUNCTION celaest._wake_batch_runner();

-- ---------------------------------------------------------------------------
-- Policies: written again, so that the stored expressions carry the new names (a policy
-- follows a renamed function by OID, but keeps the old name as its column alias).
-- ---------------------------------------------------------------------------
ALTER POLICY organizations_tenant_isolation ON celaest.organizations
    USING (id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));
ALTER POLICY users_profile_tenant_isolation ON celaest.users_profile
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR id = (SELECT celaest._current_user_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));
ALTER POLICY licenses_tenant_isolation ON celaest.licenses
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));
ALTER POLICY license_usage_log_tenant_isolation ON celaest.license_usage_log
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));
ALTER POLICY task_batches_tenant_isolation ON celaest.task_batches
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));
ALTER POLICY processed_tasks_tenant_isolation ON celaest.processed_tasks
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));
ALTER POLICY roi_metrics_tenant_isolation ON celaest.roi_metrics
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));
ALTER POLICY audit_logs_tenant_isolation ON celaest.audit_logs
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));
ALTER POLICY telemetry_events_tenant_isolation ON celaest.telemetry_events
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));

-- ---------------------------------------------------------------------------
-- Bodies that name a renamed function, or changed otherwise (issue_license's option
-- validation moved into _issue_license_options), in install order.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION celaest.current_user_id()
RETURNS uuid
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := celaest._current_user_id_or_null();
BEGIN
    IF v_user IS NULL THEN
        RAISE EXCEPTION 'no CELAEST user: set celaest.user_id or authenticate'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run SET LOCAL celaest.user_id = ''<users_profile.id>'' first, or call through Supabase Auth (auth.uid()).';
    END IF;
    RETURN v_user;
END;
$$;

CREATE OR REPLACE FUNCTION celaest._current_org_id_or_null()
RETURNS uuid
LANGUAGE sql
STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.organization_id
      FROM celaest.users_profile AS u
     WHERE u.id = celaest._current_user_id_or_null()
       AND u.deleted_at IS NULL;
$$;

CREATE OR REPLACE FUNCTION celaest._current_user_is_super_admin()
RETURNS boolean
LANGUAGE sql
STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE((
        SELECT u.role = 'super_admin'::celaest.user_role
          FROM celaest.users_profile AS u
         WHERE u.id = celaest._current_user_id_or_null()
           AND u.deleted_at IS NULL), false);
$$;

CREATE OR REPLACE FUNCTION celaest._license_metric_name(p_metric text)
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

CREATE OR REPLACE FUNCTION celaest._limit_value(p_key text, p_plan_limits jsonb, p_custom_limits jsonb,
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

CREATE OR REPLACE FUNCTION celaest._effective_limits_of(p_plan_limits jsonb, p_custom_limits jsonb,
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

CREATE OR REPLACE FUNCTION celaest.effective_limits(p_license_id uuid)
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

CREATE OR REPLACE FUNCTION celaest._assert_license_usable(p_org_id uuid)
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

CREATE OR REPLACE FUNCTION celaest.validate_license(p_license_key text)
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

CREATE OR REPLACE FUNCTION celaest._raise_bad_limit_call(p_org_id uuid, p_metric text, p_amount bigint)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_org_id IS NULL THEN
        RAISE EXCEPTION 'organization id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF celaest._license_limit_key(p_metric) IS NULL THEN
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

CREATE OR REPLACE FUNCTION celaest._check_limit_general(p_org_id uuid, p_limit text, p_amount bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key  text := celaest._license_limit_key(p_limit);
    v_lic  record;
    v_used bigint;
BEGIN
    IF v_key IS NULL OR p_amount IS NULL OR p_amount < 0 OR p_org_id IS NULL THEN
        PERFORM celaest._raise_bad_limit_call(p_org_id, p_limit, p_amount);
    END IF;

    SELECT l.id,
           celaest._license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code,
           COALESCE(NULLIF(celaest._limit_value(v_key, p.limits, l.custom_limits,
                                               CASE WHEN l.status = 'trial' THEN celaest._trial_limits() END,
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

CREATE OR REPLACE FUNCTION celaest._license_terms(p_org_id uuid)
RETURNS text
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((
        SELECT l.id::text || ' ' ||
               coalesce(nullif(celaest._limit_value('max_ai_requests_per_month', p.limits, l.custom_limits,
                                                   CASE WHEN l.status = 'trial' THEN celaest._trial_limits() END,
                                                   l.billing_cycle = 'usage_based'), -1), -1)::text
               || ' ' || l.status::text
          FROM celaest.licenses AS l
          JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
         WHERE l.organization_id = p_org_id AND l.status IN ('trial', 'active', 'suspended')), '');
$$;

CREATE OR REPLACE FUNCTION celaest._roll_license_period(p_license_id uuid)
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
    v_len := celaest._billing_period_length(r.billing_cycle);
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

CREATE OR REPLACE FUNCTION celaest._take_quota(p_org_id uuid, p_metric text, p_amount bigint,
                                   OUT license_id uuid, OUT remaining bigint,
                                   OUT period_start timestamptz, OUT period_end timestamptz)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key     text := celaest._license_limit_key(p_metric);
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
        license_id := celaest._assert_license_usable(p_org_id);       -- LC001-LC004

        IF v_key IN ('max_users', 'max_concurrent_tasks', 'max_batch_size') THEN
            remaining := celaest._reserve_counted(p_org_id, v_key, p_amount, true);
            RETURN;
        END IF;

        IF v_key = 'max_ai_requests_per_month' THEN
            PERFORM celaest._roll_license_period(license_id);
        END IF;

        v_trial := celaest._trial_limits();
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
               AND celaest._license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) = 'VALID'
               AND (l.current_period_end IS NULL OR l.current_period_end > now())
               AND p_amount <= COALESCE(NULLIF(celaest._limit_value(v_key, p.limits, l.custom_limits,
                                                   CASE WHEN l.status = 'trial' THEN v_trial END,
                                                   l.billing_cycle = 'usage_based'), -1),
                                        9223372036854775807) - l.ai_requests_used
            RETURNING celaest._limit_value(v_key, p.limits, l.custom_limits,
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
               AND celaest._license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) = 'VALID'
               AND p_amount <= COALESCE(NULLIF(celaest._limit_value(v_key, p.limits, l.custom_limits,
                                                   CASE WHEN l.status = 'trial' THEN v_trial END,
                                                   false), -1) * 1073741824,
                                        9223372036854775807) - l.storage_used_bytes
            RETURNING COALESCE(NULLIF(celaest._limit_value(v_key, p.limits, l.custom_limits,
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
        SELECT celaest._license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code,
               l.status, l.current_period_end,
               COALESCE(NULLIF(celaest._limit_value(v_key, p.limits, l.custom_limits,
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
                            p_org_id, celaest._license_metric_name(v_key)
                USING ERRCODE = 'LC010',
                      DETAIL = format('limit: %s, used: %s, requested: %s', v_lic.lim, v_lic.used, p_amount),
                      HINT = CASE WHEN v_key = 'max_ai_requests_per_month'
                                  THEN 'The quota resets when the billing period rolls over; raise it with custom_limits or a larger plan.'
                                  ELSE 'Free some storage or raise max_storage_gb.' END;
        END IF;
        -- The state moved under us (a release, a roll, a status change): look again.
        IF v_attempt >= 5 THEN
            RAISE EXCEPTION 'could not charge % to organization % after % attempts',
                            celaest._license_metric_name(v_key), p_org_id, v_attempt
                USING ERRCODE = 'serialization_failure',
                      HINT = 'The license changed repeatedly while charging it; retry the transaction.';
        END IF;
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION celaest._release_quota(p_org_id uuid, p_metric text, p_amount bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key  text := celaest._license_limit_key(p_metric);
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
    RETURNING COALESCE(NULLIF(celaest._limit_value(v_key, p.limits, l.custom_limits,
                                                  CASE WHEN l.status = 'trial' THEN celaest._trial_limits() END,
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

CREATE FUNCTION celaest._issue_license_options(p_options jsonb,
                                               OUT billing_cycle celaest.billing_cycle,
                                               OUT status celaest.license_status,
                                               OUT custom_limits jsonb,
                                               OUT starts_at timestamptz,
                                               OUT expires_at timestamptz,
                                               OUT trial_ends_at timestamptz,
                                               OUT notes text,
                                               OUT metadata jsonb)
RETURNS record
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_opts       jsonb;
    v_opt        text;
    v_cycle      celaest.billing_cycle := 'monthly';
    v_trial_days integer := 0;
    v_custom     jsonb;
    v_starts     timestamptz := now();
    v_expires    timestamptz;
    v_trial_ends timestamptz;
    v_status     celaest.license_status;
    v_key        text;
    v_num        numeric;
    v_ts         timestamptz;
BEGIN
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
        v_custom := celaest._validate_limits(v_opts -> 'custom_limits', 'custom_limits');
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

    billing_cycle := v_cycle;
    status        := v_status;
    custom_limits := v_custom;
    starts_at     := v_starts;
    expires_at    := v_expires;
    trial_ends_at := v_trial_ends;
    notes         := v_opts ->> 'notes';
    metadata      := COALESCE(v_opts -> 'metadata', '{}');
END;
$$;
COMMENT ON FUNCTION celaest._issue_license_options(jsonb) IS
    'Internal (issue_license): validates issue_license''s options (billing_cycle, trial_days, custom_limits, starts_at, expires_at, notes, metadata; a JSON null is an option left out) and returns the billing cycle, status (trial when trial_days > 0, else active), custom limits, start, expiry, trial end, notes and metadata of the license to issue. 22023 for an unknown option, a bad value, a future starts_at, or an expiry or trial end that is not after the start and now.';
REVOKE EXECUTE ON FUNCTION celaest._issue_license_options(jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION celaest.issue_license(p_org_id uuid, p_plan_code text, p_options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_opts       record;
    v_org        record;
    v_plan       record;
    v_len        interval;
    v_existing   record;
    v_lic        celaest.licenses;
    v_secret     text;
BEGIN
    IF p_org_id IS NULL THEN
        RAISE EXCEPTION 'organization id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_plan_code IS NULL THEN
        RAISE EXCEPTION 'plan code must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_opts := celaest._issue_license_options(p_options);                -- 22023

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

    SELECT l.id, l.status INTO v_existing
      FROM celaest.licenses AS l
     WHERE l.organization_id = p_org_id AND l.status IN ('trial', 'active', 'suspended');
    IF FOUND THEN
        RAISE EXCEPTION 'organization % already has a license in force', p_org_id
            USING ERRCODE = 'unique_violation',
                  DETAIL = format('License %s is %s.', v_existing.id, v_existing.status),
                  HINT = 'An organization holds one license at a time: cancel or expire it first (celaest.set_license_status).';
    END IF;

    v_len := celaest._billing_period_length(v_opts.billing_cycle);
    v_secret := celaest.generate_license_key();
    BEGIN
        INSERT INTO celaest.licenses
            (organization_id, plan_id, license_key, license_key_hash, status, starts_at, expires_at,
             trial_ends_at, billing_cycle, next_billing_date, custom_limits,
             current_period_start, current_period_end, notes, metadata)
        VALUES
            (p_org_id, v_plan.id, v_secret, encode(sha256(convert_to(v_secret, 'UTF8')), 'hex'), v_opts.status,
             v_opts.starts_at, v_opts.expires_at, v_opts.trial_ends_at, v_opts.billing_cycle,
             ((v_opts.starts_at + v_len) AT TIME ZONE 'UTC')::date, v_opts.custom_limits,
             v_opts.starts_at, v_opts.starts_at + v_len, v_opts.notes, v_opts.metadata)
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

CREATE OR REPLACE FUNCTION celaest.set_license_status(p_license_id uuid, p_status celaest.license_status,
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
            v_len := celaest._billing_period_length(r.billing_cycle);
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

CREATE OR REPLACE FUNCTION celaest.refresh_licenses()
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
        IF celaest._roll_license_period(v_id) THEN
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;

CREATE OR REPLACE FUNCTION celaest._reserve_counted(p_org_id uuid, p_key text, p_amount bigint, p_strict boolean,
                                        p_exclude_id uuid DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_lic  record;
    v_used bigint;
BEGIN
    IF p_org_id IS NULL THEN
        RAISE EXCEPTION 'organization id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_key IS NULL OR p_key NOT IN ('max_users', 'max_concurrent_tasks', 'max_batch_size') THEN
        RAISE EXCEPTION '_reserve_counted: "%" is not a counted limit', p_key
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Counted limits: max_users, max_concurrent_tasks, max_batch_size.';
    END IF;
    IF p_amount IS NULL OR p_amount < 0 THEN
        RAISE EXCEPTION 'amount must be zero or positive, not %', COALESCE(p_amount::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_strict THEN
        PERFORM celaest._assert_license_usable(p_org_id);            -- LC001-LC004
    END IF;

    SELECT l.id,
           celaest._limit_value(p_key, p.limits, l.custom_limits,
                               CASE WHEN l.status = 'trial' THEN celaest._trial_limits() END,
                               l.billing_cycle = 'usage_based') AS lim
      INTO v_lic
      FROM celaest.licenses AS l
      JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
     WHERE l.organization_id = p_org_id
       AND l.status IN ('trial', 'active', 'suspended');
    IF NOT FOUND OR v_lic.lim = -1 THEN
        RETURN -1;                      -- no license in force (p_strict off), or unlimited
    END IF;

    IF p_key = 'max_batch_size' THEN
        IF p_amount > v_lic.lim THEN
            RAISE EXCEPTION 'a batch of % inputs exceeds max_batch_size of organization %', p_amount, p_org_id
                USING ERRCODE = 'LC010',
                      DETAIL = format('limit: %s, used: 0, requested: %s', v_lic.lim, p_amount),
                      HINT = 'Split the inputs into smaller batches.';
        END IF;
        RETURN v_lic.lim - p_amount;
    END IF;

    IF current_setting('transaction_isolation') = 'repeatable read' THEN
        RAISE EXCEPTION '% of organization % cannot be checked exactly under REPEATABLE READ', p_key, p_org_id
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A REPEATABLE READ snapshot does not see rows that concurrent transactions commit, so a count would let the limit be exceeded.',
                  HINT = 'Do this in a READ COMMITTED or SERIALIZABLE transaction.';
    END IF;
    -- One admission at a time per organization and limit, until this transaction
    -- ends; the count below then sees every admission committed before it.
    PERFORM pg_advisory_xact_lock(hashtextextended('celaest.' || p_key || ':' || p_org_id::text, 0));

    IF p_key = 'max_users' THEN
        SELECT count(*) INTO v_used FROM celaest.users_profile AS u
         WHERE u.organization_id = p_org_id AND u.deleted_at IS NULL
           AND u.id IS DISTINCT FROM p_exclude_id;
    ELSE
        SELECT count(*) INTO v_used FROM celaest.processed_tasks AS t
         WHERE t.organization_id = p_org_id AND t.status IN ('processing', 'retrying')
           AND t.id IS DISTINCT FROM p_exclude_id;
    END IF;
    IF v_used + p_amount > v_lic.lim THEN
        RAISE EXCEPTION 'organization % has reached its % limit', p_org_id, p_key
            USING ERRCODE = 'LC010',
                  DETAIL = format('limit: %s, used: %s, requested: %s', v_lic.lim, v_used, p_amount),
                  HINT = CASE WHEN p_key = 'max_users'
                              THEN 'Soft-delete a user, or raise max_users (custom_limits or a larger plan).'
                              ELSE 'Wait for a running task to finish, or raise max_concurrent_tasks.' END;
    END IF;
    RETURN v_lic.lim - v_used - p_amount;
END;
$$;

CREATE OR REPLACE FUNCTION celaest._reserve_ai_request(p_org_id uuid, p_user_id uuid, p_task_id uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_license uuid;
    v_start   timestamptz;
    v_end     timestamptz;
BEGIN
    -- Same statement as consume_quota's fast path, for one request.
    UPDATE celaest.licenses AS l
       SET ai_requests_used = l.ai_requests_used + 1
      FROM celaest.subscription_plans AS p
     WHERE l.organization_id = p_org_id
       AND l.status = 'active'
       AND p.id = l.plan_id
       AND (l.expires_at IS NULL OR l.expires_at > pg_catalog.now())
       AND (l.current_period_end IS NULL OR l.current_period_end > pg_catalog.now())
       AND 1 <= COALESCE(NULLIF(celaest._limit_value('max_ai_requests_per_month', p.limits, l.custom_limits,
                                    NULL, l.billing_cycle = 'usage_based'), -1),
                         9223372036854775807) - l.ai_requests_used
    RETURNING l.id, l.current_period_start, l.current_period_end
         INTO v_license, v_start, v_end;
    IF v_license IS NULL THEN
        SELECT q.license_id, q.period_start, q.period_end INTO v_license, v_start, v_end
          FROM celaest._take_quota(p_org_id, 'ai_requests', 1) AS q;      -- raises, or charges
    END IF;
    INSERT INTO celaest.license_usage_log
        (license_id, organization_id, metric, quantity, period_start, period_end, task_id, user_id)
    VALUES (v_license, p_org_id, 'ai_requests', 1, v_start, v_end, p_task_id, p_user_id);
    RETURN v_license;
END;
$$;

CREATE OR REPLACE FUNCTION celaest._check_batch(p_org_id uuid, p_inputs integer, p_reserve boolean DEFAULT false)
RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_license uuid;
    v_check   jsonb;
    v_start   timestamptz;
    v_end     timestamptz;
BEGIN
    IF p_inputs IS NULL OR p_inputs < 0 THEN
        RAISE EXCEPTION 'number of batch inputs must be zero or positive, not %', COALESCE(p_inputs::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_license := celaest._assert_license_usable(p_org_id);                 -- 22004, LC001-LC004
    PERFORM celaest._reserve_counted(p_org_id, 'max_batch_size', p_inputs, true);  -- LC010
    IF p_reserve THEN
        SELECT q.period_start, q.period_end INTO v_start, v_end
          FROM celaest._take_quota(p_org_id, 'ai_requests', p_inputs) AS q;   -- LC010, atomic
        IF p_inputs > 0 THEN
            INSERT INTO celaest.license_usage_log
                (license_id, organization_id, metric, quantity, period_start, period_end, metadata)
            VALUES (v_license, p_org_id, 'ai_requests', p_inputs, v_start, v_end,
                    '{"event": "batch_reserve"}');
        END IF;
    ELSE
        v_check := celaest.check_limit(p_org_id, 'ai_requests', p_inputs);
        IF NOT (v_check ->> 'allowed')::boolean THEN
            IF v_check ->> 'code' <> 'QUOTA_EXCEEDED' THEN
                PERFORM celaest._assert_license_usable(p_org_id);      -- changed meanwhile: say why
            END IF;
            RAISE EXCEPTION 'a batch of % inputs exceeds the AI requests left to organization %', p_inputs, p_org_id
                USING ERRCODE = 'LC010',
                      DETAIL = format('limit: %s, used: %s, requested: %s',
                                      v_check ->> 'limit', v_check ->> 'used', p_inputs),
                      HINT = 'Submit fewer inputs, or wait for the billing period to roll over.';
        END IF;
    END IF;
    RETURN v_license;
END;
$$;

CREATE OR REPLACE FUNCTION celaest._enforce_max_users()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The WHEN clause admits only rows that end up live members of an organization.
    IF TG_OP = 'UPDATE' AND OLD.deleted_at IS NULL
       AND OLD.organization_id IS NOT DISTINCT FROM NEW.organization_id THEN
        RETURN NEW;                     -- already counted
    END IF;
    PERFORM celaest._reserve_counted(NEW.organization_id, 'max_users', 1, false, NEW.id);
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION celaest._enforce_storage_limit()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_gb bigint;
BEGIN
    SELECT celaest._limit_value('max_storage_gb', p.limits, NEW.custom_limits,
                               CASE WHEN NEW.status = 'trial' THEN celaest._trial_limits() END, false)
      INTO v_gb
      FROM celaest.subscription_plans AS p WHERE p.id = NEW.plan_id;
    IF v_gb <> -1 AND NEW.storage_used_bytes > v_gb * 1073741824 THEN
        RAISE EXCEPTION 'storage of organization % would exceed max_storage_gb', NEW.organization_id
            USING ERRCODE = 'LC010',
                  DETAIL = format('limit: %s, used: %s, requested: %s', v_gb * 1073741824,
                                  OLD.storage_used_bytes, NEW.storage_used_bytes - OLD.storage_used_bytes),
                  HINT = 'Storage is counted in bytes against max_storage_gb GiB; free some, or raise the limit.';
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION celaest._check_limits_column()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'subscription_plans' THEN
        PERFORM celaest._validate_limits(NEW.limits, format('limits of plan "%s"', NEW.code));
    ELSE
        PERFORM celaest._validate_limits(NEW.custom_limits, 'custom_limits');
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION celaest._enforce_max_concurrent_tasks()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The WHEN clause admits only rows that end up in flight.
    IF TG_OP = 'UPDATE' AND OLD.status IN ('processing', 'retrying')
       AND OLD.organization_id = NEW.organization_id THEN
        RETURN NEW;                     -- already holds its slot
    END IF;
    PERFORM celaest._reserve_counted(NEW.organization_id, 'max_concurrent_tasks', 1, true, NEW.id);
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION celaest._check_trial_limits_setting()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM celaest._validate_limits(NEW.value, 'system_config license.trial_limits');
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION celaest._batch_visible(p_org_id uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_org_id = celaest._current_org_id_or_null()
        OR celaest._current_user_is_super_admin()
        OR has_table_privilege(CASE WHEN current_setting('role') = 'none' THEN session_user::text
                                    ELSE current_setting('role') END,
                               'celaest.task_batches', 'UPDATE');
$$;

CREATE OR REPLACE FUNCTION celaest._claim_batch_tasks(p_limit integer) RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_task    record;
    v_claimed integer := 0;
    v_license uuid;
    v_full    uuid[] := '{}';   -- organizations found at max_concurrent_tasks in this pass
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RETURN 0;
    END IF;
    -- The queue in order, without a LIMIT: tasks of an organization at its concurrency limit
    -- stay queued and are passed over, so they never hold up other organizations' tasks.
    -- Rows are fetched (and locked) a few at a time and the loop stops at p_limit claims.
    FOR v_task IN
        SELECT t.id, t.organization_id, t.user_id, t.batch_id, t.license_id,
               (t.metadata ->> 'interrupted') = 'true' AS charged  -- claimed once before a crash
          FROM celaest.processed_tasks t
          JOIN celaest.task_batches b ON b.id = t.batch_id
         WHERE t.status = 'pending' AND b.status IN ('pending', 'processing')
         ORDER BY b.priority DESC, t.created_at, t.id
           FOR UPDATE OF t SKIP LOCKED
    LOOP
        CONTINUE WHEN v_task.organization_id = ANY (v_full);
        BEGIN
            UPDATE celaest.processed_tasks
               SET status = 'processing', started_at = clock_timestamp(),
                   queue_time_ms = (extract(epoch FROM clock_timestamp() - created_at) * 1000)::int,
                   metadata = metadata || jsonb_build_object('claimed_by', pg_backend_pid())
             WHERE id = v_task.id;
            -- A task sent again after a crash was charged by its first claim (exactly once).
            v_license := CASE WHEN v_task.charged THEN v_task.license_id
                              ELSE celaest._reserve_ai_request(v_task.organization_id, v_task.user_id, v_task.id) END;
            UPDATE celaest.processed_tasks SET license_id = v_license WHERE id = v_task.id;
            v_claimed := v_claimed + 1;
            UPDATE celaest.task_batches SET status = 'processing', started_at = coalesce(started_at, clock_timestamp())
             WHERE id = v_task.batch_id AND status = 'pending';
        EXCEPTION WHEN SQLSTATE 'LC001' OR SQLSTATE 'LC002' OR SQLSTATE 'LC003' OR SQLSTATE 'LC004'
                    OR SQLSTATE 'LC010' THEN
            IF SQLSTATE = 'LC010' AND SQLERRM LIKE '%max_concurrent_tasks%' THEN
                -- The organization is at max_concurrent_tasks: its tasks stay queued for a later pass.
                v_full := v_full || v_task.organization_id;
            ELSE
                UPDATE celaest.processed_tasks
                   SET status = 'failed', completed_at = clock_timestamp(),
                       error_code = CASE SQLSTATE WHEN 'LC010' THEN 'quota_exceeded' ELSE 'license_unusable' END,
                       error_message = SQLERRM
                 WHERE id = v_task.id;
                PERFORM celaest._refresh_batch(v_task.batch_id);
            END IF;
        END;
        EXIT WHEN v_claimed >= p_limit;
    END LOOP;
    RETURN v_claimed;
END;
$$;

DROP FUNCTION celaest._requeue_orphaned_tasks();

-- Exactly once (API.md "submit_batch"): a task a runner claimed is in processing until the pass
-- that claimed it records its result. If that runner is gone (killed, crashed, immediate
-- shutdown), the provider call may already have been sent and paid for: the task is marked
-- interrupted, and it is sent again only when celaest.retry_after_crash is on; otherwise it ends
-- failed with error_code 'interrupted'. Either way it was charged once, by its claim.
CREATE FUNCTION celaest._recover_orphaned_tasks() RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_retry   boolean := coalesce(current_setting('celaest.retry_after_crash', true), 'off')::boolean;
    v_batches uuid[];
    v_count   integer;
BEGIN
    WITH orphans AS (
        SELECT id FROM celaest.processed_tasks t
         WHERE status = 'processing' AND batch_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                            WHERE a.pid = (t.metadata ->> 'claimed_by')::int)
           FOR UPDATE SKIP LOCKED),
    recovered AS (
        UPDATE celaest.processed_tasks t
           SET status = CASE WHEN v_retry THEN 'pending' ELSE 'failed' END::celaest.task_status,
               started_at = CASE WHEN v_retry THEN NULL ELSE t.started_at END,
               completed_at = CASE WHEN v_retry THEN NULL ELSE clock_timestamp() END,
               error_code = CASE WHEN v_retry THEN NULL ELSE 'interrupted' END,
               error_message = CASE WHEN v_retry THEN NULL ELSE
                   'the batch runner stopped while this task''s provider call may have been sent; not sent again '
                   '(celaest.retry_after_crash = off)' END,
               metadata = (t.metadata - 'claimed_by') || '{"interrupted": true}'
          FROM orphans o WHERE t.id = o.id
        RETURNING t.batch_id)
    SELECT array_agg(DISTINCT batch_id), count(*) INTO v_batches, v_count FROM recovered;
    PERFORM celaest._refresh_batch(b) FROM unnest(v_batches) AS b;
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION celaest._recover_orphaned_tasks() IS
    'Internal (batch runner): tasks held in processing by a runner that is gone are marked interrupted, and fail with error_code interrupted unless celaest.retry_after_crash is on (then they are sent again, not charged again).';
REVOKE EXECUTE ON FUNCTION celaest._recover_orphaned_tasks() FROM PUBLIC;

CREATE OR REPLACE FUNCTION celaest._roi_defaults(OUT manual_minutes_per_task numeric, OUT hourly_rate numeric)
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT celaest._roi_number(c.value #>> '{}') INTO manual_minutes_per_task
      FROM celaest.system_config AS c
     WHERE c.key = 'roi.manual_minutes_per_task';
    SELECT celaest._roi_number(c.value #>> '{}') INTO hourly_rate
      FROM celaest.system_config AS c
     WHERE c.key = 'roi.hourly_rate';
    -- Unset or unusable: the built-in defaults (5 and 25), kept in one place by
    -- the configuration module (celaest._config_default, 70_configuration.sql).
    manual_minutes_per_task := coalesce(manual_minutes_per_task,
        celaest._roi_number(celaest._config_default('roi.manual_minutes_per_task') #>> '{}'));
    hourly_rate := coalesce(hourly_rate,
        celaest._roi_number(celaest._config_default('roi.hourly_rate') #>> '{}'));
END;
$$;

CREATE OR REPLACE FUNCTION celaest._audit_row_change()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_resource_type text := TG_ARGV[0];
    v_old           jsonb;
    v_new           jsonb;
    v_row           jsonb;
    v_before        jsonb;
    v_after         jsonb;
    v_changed       text[];
    v_action        celaest.audit_action;
    v_actor         uuid;
    v_org           uuid;
    v_resource_id   uuid;
    v_label         text;
    v_description   text;
    v_keep          text[];
    v_mask          text   := NULL;
    k               text;
BEGIN
    -- It runs with the owner's rights: refuse to serve any table but ours.
    IF TG_TABLE_SCHEMA <> 'celaest' OR TG_WHEN <> 'AFTER' OR TG_LEVEL <> 'ROW' THEN
        RAISE EXCEPTION 'celaest._audit_row_change() only audits CELAEST tables (AFTER ... FOR EACH ROW)'
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    IF TG_OP = 'INSERT' THEN
        v_new := to_jsonb(NEW);
        v_action := 'create';
    ELSIF TG_OP = 'UPDATE' THEN
        v_old := to_jsonb(OLD);
        v_new := to_jsonb(NEW);
        v_action := 'update';
    ELSE
        v_old := to_jsonb(OLD);
        v_action := 'delete';
    END IF;
    v_row := COALESCE(v_new, v_old);

    IF TG_TABLE_NAME = 'users_profile' THEN
        v_keep := ARRAY['id', 'organization_id', 'role', 'scopes', 'deleted_at'];
        SELECT jsonb_object_agg(e.key, e.value) INTO v_old FROM jsonb_each(v_old) AS e WHERE e.key = ANY (v_keep);
        SELECT jsonb_object_agg(e.key, e.value) INTO v_new FROM jsonb_each(v_new) AS e WHERE e.key = ANY (v_keep);
    END IF;

    IF TG_OP = 'UPDATE' THEN
        SELECT jsonb_object_agg(n.key, o.value),
               jsonb_object_agg(n.key, n.value),
               array_agg(n.key ORDER BY n.key)
          INTO v_before, v_after, v_changed
          FROM jsonb_each(v_new) AS n
          JOIN jsonb_each(v_old) AS o ON o.key = n.key
         WHERE n.value IS DISTINCT FROM o.value
           AND n.key <> 'updated_at';
        IF v_changed IS NULL THEN
            RETURN NULL;            -- nothing but updated_at changed
        END IF;
    ELSE
        v_before := v_old;          -- NULL for INSERT
        v_after := v_new;           -- NULL for DELETE
    END IF;

    -- Secrets.
    IF TG_TABLE_NAME = 'licenses' THEN
        v_mask := 'license_key';
    ELSIF TG_TABLE_NAME = 'ai_api_pool' THEN
        v_mask := 'key_value_encrypted';
    END IF;
    IF v_mask IS NOT NULL THEN
        IF v_before ? v_mask THEN v_before := jsonb_set(v_before, ARRAY[v_mask], '"***"'); END IF;
        IF v_after ? v_mask THEN v_after := jsonb_set(v_after, ARRAY[v_mask], '"***"'); END IF;
    END IF;
    IF TG_TABLE_NAME = 'system_config' THEN
        IF v_before ? 'value' AND (v_old ->> 'is_sensitive')::boolean THEN
            v_before := jsonb_set(v_before, '{value}', '"***"');
        END IF;
        IF v_after ? 'value' AND (v_new ->> 'is_sensitive')::boolean THEN
            v_after := jsonb_set(v_after, '{value}', '"***"');
        END IF;
    END IF;

    -- Who, for whom, on what.
    v_actor := celaest._current_user_id_or_null();
    IF v_actor IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM celaest.users_profile AS u WHERE u.id = v_actor) THEN
        -- An id with no profile (or the profile this very statement deleted) cannot
        -- be referenced; keep it in the description instead of failing the change.
        v_label := format(' by unknown user %s', v_actor);
        v_actor := NULL;
    END IF;
    IF v_row ? 'organization_id' THEN
        v_org := (v_row ->> 'organization_id')::uuid;
    END IF;
    IF TG_TABLE_NAME = 'system_config' THEN
        v_resource_id := NULL;
        k := format(' %L', v_row ->> 'key');
    ELSE
        v_resource_id := (v_row ->> 'id')::uuid;
        k := CASE TG_TABLE_NAME
                 WHEN 'subscription_plans' THEN format(' %L', v_row ->> 'code')
                 WHEN 'feature_flags'      THEN format(' %L', v_row ->> 'flag_key')
                 WHEN 'ai_api_pool'        THEN format(' %L', v_row ->> 'key_name')
                 ELSE ''
             END;
    END IF;
    v_description := v_resource_type || k || ' '
        || CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END
        || CASE WHEN TG_OP = 'UPDATE' THEN ' (' || array_to_string(v_changed, ', ') || ')' ELSE '' END
        || COALESCE(v_label, '');

    PERFORM celaest.log_audit(v_actor, v_org, v_action, v_resource_type, v_resource_id, v_description,
                              jsonb_build_object('before', v_before, 'after', v_after));
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION celaest._config_get_masked(p_key text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE STRICT PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_value     jsonb;
    v_sensitive boolean;
BEGIN
    SELECT c.value, c.is_sensitive INTO v_value, v_sensitive
      FROM celaest.system_config AS c
     WHERE c.key = p_key;
    IF NOT FOUND THEN
        RETURN celaest._config_default(p_key);
    END IF;
    IF v_sensitive AND NOT celaest._current_user_is_super_admin() THEN
        -- Masked, not NULL: the caller learns that the setting exists and is set.
        RETURN '"***"'::jsonb;
    END IF;
    RETURN v_value;
END;
$$;

CREATE OR REPLACE FUNCTION celaest._config_write(
    p_key          text,
    p_value        jsonb,
    p_description  text,
    p_is_sensitive boolean
)
RETURNS void
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor uuid;
BEGIN
    IF p_key IS NULL OR btrim(p_key) = '' THEN
        RAISE EXCEPTION 'celaest.config_set: the key must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_key <> btrim(p_key) OR length(p_key) > 100 THEN
        RAISE EXCEPTION 'celaest.config_set: invalid key %', quote_literal(p_key)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A key has at most 100 characters and no leading or trailing spaces, e.g. ''roi.hourly_rate''.';
    END IF;
    IF p_value IS NULL THEN
        RAISE EXCEPTION 'celaest.config_set: the value of % must not be NULL', quote_literal(p_key)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a JSON value (JSON null is ''null''::jsonb).';
    END IF;
    -- The documented numeric settings: a wrong type would silently fall back to
    -- the built-in default in every report, so refuse it here.
    IF p_key IN ('roi.manual_minutes_per_task', 'roi.hourly_rate')
       AND (jsonb_typeof(p_value) <> 'number' OR p_value::text::numeric < 0) THEN
        RAISE EXCEPTION 'celaest.config_set: % must be a non-negative JSON number, not %', p_key, p_value::text
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Attribution only: an id without a profile is recorded as NULL (the audit
    -- entry still names it).
    SELECT u.id INTO v_actor
      FROM celaest.users_profile AS u
     WHERE u.id = celaest._current_user_id_or_null();

    INSERT INTO celaest.system_config AS c (key, value, description, is_sensitive, updated_by)
    VALUES (p_key, p_value, p_description, coalesce(p_is_sensitive, false), v_actor)
    ON CONFLICT (key) DO UPDATE
       SET value        = EXCLUDED.value,
           description  = coalesce(p_description, c.description),
           is_sensitive = coalesce(p_is_sensitive, c.is_sensitive),
           updated_by   = EXCLUDED.updated_by
     -- Setting what is already there changes nothing (not even updated_at).
     WHERE (c.value, c.description, c.is_sensitive)
           IS DISTINCT FROM
           (EXCLUDED.value, coalesce(p_description, c.description), coalesce(p_is_sensitive, c.is_sensitive));
END;
$$;

CREATE OR REPLACE FUNCTION celaest._config_set_as_super_admin(
    p_key          text,
    p_value        jsonb,
    p_description  text,
    p_is_sensitive boolean
)
RETURNS void
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT celaest._current_user_is_super_admin() THEN
        RAISE EXCEPTION 'permission denied to change system configuration key %', coalesce(quote_literal(p_key), 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only a role that may write celaest.system_config (e.g. its owner or a superuser) or a CELAEST super_admin may change it.';
    END IF;
    PERFORM celaest._config_write(p_key, p_value, p_description, p_is_sensitive);
END;
$$;

CREATE OR REPLACE FUNCTION celaest.config_set(
    p_key          text,
    p_value        jsonb,
    p_description  text DEFAULT NULL,
    p_is_sensitive boolean DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF has_table_privilege('celaest.system_config', 'INSERT')
       AND has_table_privilege('celaest.system_config', 'UPDATE') THEN
        PERFORM celaest._config_write(p_key, p_value, p_description, p_is_sensitive);
    ELSE
        PERFORM celaest._config_set_as_super_admin(p_key, p_value, p_description, p_is_sensitive);
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION celaest.is_feature_enabled(
    p_flag_key text,
    p_user_id  uuid DEFAULT NULL,
    p_org_id   uuid DEFAULT NULL
)
RETURNS boolean
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_flag    record;
    v_user    uuid;
    v_org     uuid := p_org_id;
    v_subject text;
BEGIN
    SELECT f.is_enabled, f.target_type, f.target_percentage, f.target_users, f.target_organizations
      INTO v_flag
      FROM celaest.feature_flags AS f
     WHERE f.flag_key = p_flag_key;
    IF NOT FOUND OR NOT v_flag.is_enabled THEN
        RETURN false;                       -- unknown (or NULL) key, or disabled
    END IF;
    IF v_flag.target_type = 'all' THEN
        RETURN true;
    END IF;

    v_user := coalesce(p_user_id, celaest._current_user_id_or_null());
    IF v_org IS NULL AND v_user IS NOT NULL
       AND v_flag.target_type IN ('orgs', 'percentage') THEN
        SELECT u.organization_id INTO v_org
          FROM celaest.users_profile AS u
         WHERE u.id = v_user AND u.deleted_at IS NULL;
    END IF;

    CASE v_flag.target_type
        WHEN 'users' THEN
            RETURN coalesce(v_user = ANY (v_flag.target_users), false);
        WHEN 'orgs' THEN
            RETURN coalesce(v_org = ANY (v_flag.target_organizations), false);
        WHEN 'percentage' THEN
            -- Sticky bucket 0..99 from a hash of the flag and the user (else the
            -- organization): the same subject always gets the same answer, and
            -- raising the percentage only ever adds subjects. The sign bit is masked
            -- off (abs() would overflow on the smallest bigint).
            v_subject := coalesce(v_user, v_org)::text;
            IF v_subject IS NULL THEN
                RETURN false;
            END IF;
            RETURN (hashtextextended(p_flag_key || ':' || v_subject, 0) & 9223372036854775807) % 100
                   < coalesce(v_flag.target_percentage, 0);
        ELSE
            RETURN false;                   -- a target type this version does not know
    END CASE;
END;
$$;

CREATE OR REPLACE FUNCTION celaest.track_event(
    p_event_name text,
    p_properties jsonb DEFAULT '{}',
    p_options    jsonb DEFAULT '{}'
)
RETURNS uuid
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_properties jsonb := coalesce(p_properties, '{}');
    v_options    jsonb := coalesce(p_options, '{}');
    v_user       uuid  := celaest._current_user_id_or_null();
    v_org        uuid;
    v_key        text;
    v_type       text;
    v_opt        jsonb := '{}';
    v_ip_text    text;
    v_ip_source  text;
    v_ip         inet;
    v_id         uuid;
BEGIN
    IF p_event_name IS NULL OR btrim(p_event_name) = '' THEN
        RAISE EXCEPTION 'celaest.track_event: the event name must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(p_event_name) > 200 THEN
        RAISE EXCEPTION 'celaest.track_event: the event name is longer than 200 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(v_properties) <> 'object' THEN
        RAISE EXCEPTION 'celaest.track_event: p_properties must be a JSON object, not %', jsonb_typeof(v_properties)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(v_options) <> 'object' THEN
        RAISE EXCEPTION 'celaest.track_event: p_options must be a JSON object, not %', jsonb_typeof(v_options)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Options: known keys only (a misspelt one is an error, not a silent loss),
    -- string values; empty strings and JSON null mean "not given".
    FOR v_key, v_type IN SELECT e.key, jsonb_typeof(e.value) FROM jsonb_each(v_options) AS e LOOP
        IF v_key NOT IN ('event_type', 'event_category', 'session_id', 'page_url', 'referrer',
                         'device_type', 'browser', 'os', 'ip_address', 'user_agent') THEN
            RAISE EXCEPTION 'celaest.track_event: unknown option %', quote_literal(v_key)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Options are event_type, event_category, session_id, page_url, referrer, device_type, browser, os, ip_address and user_agent; event data goes in p_properties.';
        END IF;
        IF v_type NOT IN ('string', 'null') THEN
            RAISE EXCEPTION 'celaest.track_event: option % must be a string, not %', v_key, v_type
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_type = 'string' AND btrim(v_options ->> v_key) <> '' THEN
            v_opt := v_opt || jsonb_build_object(v_key, btrim(v_options ->> v_key));
        END IF;
    END LOOP;

    -- Identifiers must fit; they are not cut.
    IF length(v_opt ->> 'event_type') > 100 OR length(v_opt ->> 'event_category') > 50
       OR length(v_opt ->> 'session_id') > 100 OR length(v_opt ->> 'browser') > 50
       OR length(v_opt ->> 'os') > 50 THEN
        RAISE EXCEPTION 'celaest.track_event: an option is too long'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Limits: event_type and session_id 100 characters; event_category, browser and os 50.';
    END IF;
    IF lower(v_opt ->> 'device_type') NOT IN ('desktop', 'mobile', 'tablet') THEN
        RAISE EXCEPTION 'celaest.track_event: invalid device_type %', quote_literal(v_opt ->> 'device_type')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'device_type is desktop, mobile or tablet.';
    END IF;

    -- Request context: the option, else the session setting (as log_audit does).
    IF v_opt ? 'ip_address' THEN
        v_ip_text := v_opt ->> 'ip_address';
        v_ip_source := 'option ip_address';
    ELSE
        v_ip_text := nullif(btrim(current_setting('celaest.client_ip', true)), '');
        v_ip_source := 'setting celaest.client_ip';
    END IF;
    IF v_ip_text IS NOT NULL THEN
        BEGIN
            v_ip := v_ip_text::inet;
        EXCEPTION WHEN invalid_text_representation THEN
            RAISE EXCEPTION 'celaest.track_event: % is not an IP address: %', v_ip_source, quote_literal(v_ip_text)
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;

    -- The acting user and their organization. An id without a profile (e.g. an
    -- event sent between sign-up and profile creation) is not lost: the event is
    -- recorded without user and organization, and the id kept in the properties.
    IF v_user IS NOT NULL THEN
        SELECT u.organization_id INTO v_org FROM celaest.users_profile AS u WHERE u.id = v_user;
        IF NOT FOUND THEN
            v_properties := v_properties || jsonb_build_object('unknown_user_id', v_user);
            v_user := NULL;
        END IF;
    END IF;

    INSERT INTO celaest.telemetry_events
        (organization_id, user_id, session_id, event_type, event_category, event_name, properties,
         page_url, referrer, ip_address, user_agent, device_type, browser, os)
    VALUES
        (v_org, v_user, v_opt ->> 'session_id', coalesce(v_opt ->> 'event_type', 'custom'),
         v_opt ->> 'event_category', p_event_name, v_properties,
         -- Client-supplied URLs and user agents can be long: cut to the column width
         -- rather than lose the event.
         left(v_opt ->> 'page_url', 500), left(v_opt ->> 'referrer', 500), v_ip,
         left(coalesce(v_opt ->> 'user_agent', nullif(btrim(current_setting('celaest.user_agent', true)), '')), 500),
         lower(v_opt ->> 'device_type'), v_opt ->> 'browser', v_opt ->> 'os')
    RETURNING id INTO v_id;

    RETURN v_id;
END;
$$;

-- ---------------------------------------------------------------------------
-- Comments that name a renamed function
-- ---------------------------------------------------------------------------
COMMENT ON FUNCTION celaest._effective_limits_of(jsonb, jsonb, jsonb, boolean) IS
    'All five effective limits (see _limit_value) as a JSON object; -1 = unlimited.';
COMMENT ON FUNCTION celaest._take_quota(uuid, text, bigint) IS
    'General path of a consumption (consume_quota, _reserve_ai_request and _check_batch use it): validates the arguments, refuses with LC001-LC004 or LC010 (DETAIL limit/used/requested) consuming nothing, rolls a lapsed billing period first, and charges p_amount atomically. Counters: ai_requests, storage_gb (bytes). Counted metrics (users, concurrent_tasks) and batch_size are checked under a per-organization lock held to the end of the transaction and change nothing. Returns the license, the remaining quota (-1 unlimited) and the billing period.';
COMMENT ON FUNCTION celaest.refresh_licenses() IS
    'Housekeeping (the background worker calls it): expires lapsed trials and licenses (closing their open period into license_usage_log), then rolls every ended billing period by billing_cycle (_roll_license_period). Skips rows locked by other transactions (next pass). Returns the number of licenses changed.';
COMMENT ON FUNCTION celaest._check_limits_column() IS
    'BEFORE INSERT/UPDATE trigger on subscription_plans (limits) and licenses (custom_limits): the limits must be an object of known limit keys with integer values >= -1 (_validate_limits, 22023).';
COMMENT ON FUNCTION celaest.track_event(text, jsonb, jsonb) IS
    'Records a telemetry event for the acting user (celaest._current_user_id_or_null(); NULL = anonymous) and their organization; returns its id. Options (strings): event_type (default ''custom''), event_category, session_id, page_url, referrer, device_type (desktop, mobile, tablet), browser, os, ip_address and user_agent (default: the settings celaest.client_ip and celaest.user_agent). page_url, referrer and user_agent are cut to 500 characters. A user id without a profile is recorded as anonymous, with properties.unknown_user_id. Raises 22023 for an empty or over-long event name, non-object properties or options, an unknown or non-string option, an invalid device_type or IP address.';

-- ---------------------------------------------------------------------------
-- Internal functions off PUBLIC (the ones a policy, a view or a function every role may
-- call needs stay executable; their definitions say why)
-- ---------------------------------------------------------------------------
REVOKE EXECUTE ON FUNCTION celaest._set_updated_at() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._license_metric_name(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._billing_period_length(celaest.billing_cycle) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._assert_license_usable(uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._roll_license_period(uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._take_quota(uuid, text, bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._release_quota(uuid, text, bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._reserve_ai_request(uuid, uuid, uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._check_batch(uuid, integer, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._enforce_storage_limit() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._check_limits_column() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._check_trial_limits_setting() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._batch_visible(uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._refresh_batch(uuid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._claim_batch_tasks(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._run_claimed_tasks(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._run_pending_tasks(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION celaest._audit_logs_refuse_change() FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Boundary probes: installed by the tests (test/regress/sql/boundary.sql), not the extension
-- ---------------------------------------------------------------------------
DROP FUNCTION celaest._boundary_probe(text);
DROP FUNCTION celaest._boundary_destructor_count();
