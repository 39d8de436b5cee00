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
                THEN 0 ELSE l.ai_requests_used + celaest._ai_requests_pending(l.id) END AS ai_used,
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
            + celaest._sync_calls_in_flight(p_org_id)
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
               || ' ' || l.status::text || ' ' ||
               coalesce(nullif(celaest._limit_value('max_concurrent_tasks', p.limits, l.custom_limits,
                                                   CASE WHEN l.status = 'trial' THEN celaest._trial_limits() END,
                                                   l.billing_cycle = 'usage_based'), -1), -1)::text
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
                                - celaest._ai_requests_pending(l.id)
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
            remaining := CASE WHEN v_lim = -1 THEN -1
                              WHEN v_key = 'max_ai_requests_per_month'
                              THEN v_lim - v_used - celaest._ai_requests_pending(license_id)
                              ELSE v_lim - v_used END;
            RETURN;
        END IF;

        -- Refused. Say why, from the latest committed state.
        SELECT celaest._license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code,
               l.status, l.current_period_end,
               COALESCE(NULLIF(celaest._limit_value(v_key, p.limits, l.custom_limits,
                                                   CASE WHEN l.status = 'trial' THEN v_trial END,
                                                   l.billing_cycle = 'usage_based'), -1)
                        * CASE WHEN v_key = 'max_storage_gb' THEN 1073741824 ELSE 1 END, -1) AS lim,
               CASE WHEN v_key = 'max_storage_gb' THEN l.storage_used_bytes
                    ELSE l.ai_requests_used + celaest._ai_requests_pending(l.id) END AS used
          INTO v_lic
          FROM celaest.licenses AS l
          JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
         WHERE l.id = license_id;
        -- The caller reads the row but row-level security hides it from the UPDATE: no
        -- attempt can ever charge it, so this is a refusal, not a race (consume_quota charges
        -- as the owner for an acting user who may spend; other callers of this path run as
        -- the owner).
        IF FOUND AND row_security_active('celaest.licenses') AND NOT celaest._writes_every_org() THEN
            RAISE EXCEPTION 'permission denied to charge % to organization %',
                            celaest._license_metric_name(v_key), p_org_id
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Charge through celaest.consume_quota(), acting for a user of the organization who may spend (operator or above).';
        END IF;
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
        -- A license the caller reads but row-level security hides from its UPDATE (a service
        -- caller acting for a user): a refusal, not "no license".
        IF row_security_active('celaest.licenses') AND NOT celaest._writes_every_org()
           AND EXISTS (SELECT 1 FROM celaest.licenses AS l
                        WHERE l.organization_id = p_org_id AND l.status IN ('trial', 'active', 'suspended')) THEN
            RAISE EXCEPTION 'permission denied to release % of organization %',
                            celaest._license_metric_name(v_key), p_org_id
                USING ERRCODE = 'insufficient_privilege';
        END IF;
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
    PERFORM celaest._assert_licensing_admin('issue_license');               -- 42501
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
    PERFORM celaest._assert_licensing_admin('set_license_status');          -- 42501
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
        -- Plus the synchronous calls in flight, which have no row until they end.
        SELECT count(*) + celaest._sync_calls_in_flight(p_org_id) INTO v_used
          FROM celaest.processed_tasks AS t
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
                         9223372036854775807) - l.ai_requests_used - celaest._ai_requests_pending(l.id)
    RETURNING l.id INTO v_license;
    IF v_license IS NULL THEN
        SELECT q.license_id INTO v_license
          FROM celaest._take_quota(p_org_id, 'ai_requests', 1) AS q;      -- raises, or charges
    END IF;
    -- No license_usage_log row per call (API.md): the period's close sums the counter.
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
    v_batch   record;
    v_claimed integer := 0;
    v_orgs    uuid[] := '{}';     -- organizations looked at in this claim ...
    v_rooms   bigint[] := '{}';   -- ... and what each may still start (-1: no limit)
    v_at      integer;
    v_room    bigint;
    v_take    integer;
    v_n       integer;
    v_failed  record;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RETURN 0;
    END IF;
    FOR v_batch IN
        SELECT b.id, b.organization_id
          FROM celaest.task_batches b
         WHERE b.status IN ('pending', 'processing')
         ORDER BY b.priority DESC, b.created_at, b.id
    LOOP
        v_at := array_position(v_orgs, v_batch.organization_id);
        IF v_at IS NULL THEN
            BEGIN
                -- LC001-LC004 for an unusable license; the room left (or -1), counted once.
                v_room := celaest._reserve_counted(v_batch.organization_id, 'max_concurrent_tasks', 0, true);
            EXCEPTION WHEN SQLSTATE 'LC010' THEN
                v_room := 0;          -- already over (its limit was lowered)
            WHEN SQLSTATE 'LC001' OR SQLSTATE 'LC002' OR SQLSTATE 'LC003' OR SQLSTATE 'LC004' THEN
                -- Nothing of this organization can start: its queued tasks fail, and the AI
                -- requests submit_batch reserved for them go back.
                WITH failed AS (
                    UPDATE celaest.processed_tasks t
                       SET status = 'failed', completed_at = clock_timestamp(),
                           error_code = 'license_unusable', error_message = SQLERRM
                     WHERE t.organization_id = v_batch.organization_id AND t.status = 'pending'
                       AND t.batch_id IN (SELECT b.id FROM celaest.task_batches b
                                           WHERE b.organization_id = v_batch.organization_id
                                             AND b.status IN ('pending', 'processing'))
                    RETURNING t.license_id, t.batch_id, t.metadata ->> 'interrupted' = 'true' AS interrupted)
                SELECT array_agg(DISTINCT f.batch_id) AS batches,
                       array_agg(f.license_id) FILTER (WHERE f.interrupted IS NOT TRUE) AS licenses
                  INTO v_failed FROM failed f;
                PERFORM celaest._return_batch_reservations(v_failed.licenses);
                PERFORM celaest._refresh_batch(b) FROM unnest(v_failed.batches) AS b;
                v_room := 0;
            END;
            v_orgs := v_orgs || v_batch.organization_id;
            v_rooms := v_rooms || v_room;
            v_at := cardinality(v_orgs);
        END IF;
        v_room := v_rooms[v_at];
        CONTINUE WHEN v_room = 0;
        v_take := CASE WHEN v_room < 0 THEN p_limit - v_claimed ELSE least(v_room, p_limit - v_claimed) END;
        PERFORM set_config('celaest.batch_claim', 'on', true);
        WITH picked AS (
            SELECT t.id FROM celaest.processed_tasks t
             WHERE t.batch_id = v_batch.id AND t.status = 'pending'
             LIMIT v_take
               FOR UPDATE SKIP LOCKED)
        UPDATE celaest.processed_tasks t
           SET status = 'processing', started_at = clock_timestamp(),
               queue_time_ms = (extract(epoch FROM clock_timestamp() - t.created_at) * 1000)::int,
               metadata = t.metadata || jsonb_build_object('claimed_by', pg_backend_pid())
          FROM picked WHERE t.id = picked.id;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        PERFORM set_config('celaest.batch_claim', 'off', true);
        IF v_n > 0 THEN
            v_claimed := v_claimed + v_n;
            IF v_room > 0 THEN
                v_rooms[v_at] := v_room - v_n;
            END IF;
            UPDATE celaest.task_batches SET status = 'processing', started_at = coalesce(started_at, clock_timestamp())
             WHERE id = v_batch.id AND status = 'pending';
        END IF;
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
CREATE OR REPLACE FUNCTION celaest._recover_orphaned_tasks() RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_retry   boolean := coalesce(current_setting('celaest.retry_after_crash', true), 'off')::boolean;
    -- A request that was on the wire (a note in _batch_on_wire, written before it left) was sent
    -- with its key, and counts once in the key's usage. That count is folded here, as the ledger
    -- writer folds (the row and _ledger_folds in this transaction), and recorded on the task as
    -- an interrupted attempt, which a later rebuild counts. Only once the writer has rebuilt the
    -- counters after a restart ("served"): a rebuild still to come would count it again. Until
    -- then such orphans wait (the runner looks every second).
    v_served  boolean := coalesce((celaest._ledger_state() ->> 'served')::boolean, false);
    v_batches uuid[];
    v_count   integer;
BEGIN
    WITH orphans AS (
        SELECT t.id,
               (SELECT jsonb_agg(jsonb_build_object('api_key_id', w.api_key_id, 'model', w.model) ORDER BY w.noted_at)
                  FROM celaest._batch_on_wire AS w WHERE w.task_id = t.id) AS on_wire
          FROM celaest.processed_tasks t
         WHERE status = 'processing' AND batch_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                            WHERE a.pid = (t.metadata ->> 'claimed_by')::int)
           AND (v_served OR NOT EXISTS (SELECT 1 FROM celaest._batch_on_wire AS w WHERE w.task_id = t.id))
           FOR UPDATE OF t SKIP LOCKED),
    recovered AS (
        UPDATE celaest.processed_tasks t
           SET status = CASE WHEN v_retry THEN 'pending' ELSE 'failed' END::celaest.task_status,
               started_at = CASE WHEN v_retry THEN NULL ELSE t.started_at END,
               completed_at = CASE WHEN v_retry THEN NULL ELSE clock_timestamp() END,
               error_code = CASE WHEN v_retry THEN NULL ELSE 'interrupted' END,
               error_message = CASE WHEN v_retry THEN NULL ELSE
                   'the batch runner stopped while this task''s provider call may have been sent; not sent again '
                   '(celaest.retry_after_crash = off)' END,
               api_key_id = COALESCE(t.api_key_id, (o.on_wire -> -1 ->> 'api_key_id')::uuid),
               metadata = (t.metadata - 'claimed_by') || '{"interrupted": true}'
                          || CASE WHEN o.on_wire IS NULL THEN '{}'::jsonb ELSE jsonb_build_object(
                                 'interrupted_attempts', COALESCE(t.metadata -> 'interrupted_attempts', '[]'::jsonb)
                                     || (SELECT jsonb_agg(w || '{"outcome": "interrupted", "tokens": 0}'::jsonb)
                                           FROM jsonb_array_elements(o.on_wire) AS w),
                                 'ledger', COALESCE(t.metadata ->> 'ledger', 'keys')) END
          FROM orphans o WHERE t.id = o.id
        RETURNING t.id, t.batch_id, o.on_wire),
    sent AS (
        SELECT (w ->> 'api_key_id')::uuid AS key_id, count(*) AS requests
          FROM recovered AS r, jsonb_array_elements(r.on_wire) AS w
         WHERE r.on_wire IS NOT NULL
         GROUP BY 1),
    counted AS (
        UPDATE celaest.ai_api_pool AS k
           SET usage_count = k.usage_count + s.requests, last_used_at = GREATEST(k.last_used_at, now())
          FROM sent AS s WHERE k.id = s.key_id
        RETURNING k.id),
    folded AS (
        INSERT INTO celaest._ledger_folds AS f (subject, period_start, requests, tokens)
        SELECT key_id, NULL, requests, 0 FROM sent
        ON CONFLICT (subject) DO UPDATE SET requests = f.requests + EXCLUDED.requests
        RETURNING f.subject),
    cleared AS (
        DELETE FROM celaest._batch_on_wire AS w USING recovered AS r WHERE w.task_id = r.id
        RETURNING 1)
    SELECT array_agg(DISTINCT batch_id), count(*) INTO v_batches, v_count FROM recovered;
    PERFORM celaest._refresh_batch(b) FROM unnest(v_batches) AS b;
    -- The notes of tasks that have ended (answered, cancelled, failed) are of no more use.
    DELETE FROM celaest._batch_on_wire AS w
     WHERE NOT EXISTS (SELECT 1 FROM celaest.processed_tasks AS t
                        WHERE t.id = w.task_id AND t.status = 'processing');
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION celaest._recover_orphaned_tasks() IS
    'Internal (batch runner): tasks held in processing by a runner that is gone are marked interrupted, and fail with error_code interrupted unless celaest.retry_after_crash is on (then they are sent again, not charged again); a request that was on the wire is recorded as an interrupted attempt and counted once in its key''s usage.';
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

-- ---------------------------------------------------------------------------
-- ROI, flags, telemetry (issue 13)
-- ---------------------------------------------------------------------------
-- Definitions copied from src/sql (55_roi_functions.sql, 60_audit.sql,
-- 75_system_functions.sql, 80_views.sql) as they are in 0.2.0.

-- Telemetry: crawlers are recorded with device_type bot.
ALTER TABLE celaest.telemetry_events DROP CONSTRAINT telemetry_events_device_type_valid;
ALTER TABLE celaest.telemetry_events ADD CONSTRAINT telemetry_events_device_type_valid
    CHECK (device_type IN ('desktop', 'mobile', 'tablet', 'bot'));
COMMENT ON COLUMN celaest.telemetry_events.device_type IS 'Device type: desktop, mobile, tablet or bot (a crawler).';

-- The device, browser and OS a User-Agent header names (core/user_agent), as
-- {device_type, browser, os} with only the keys it recognised. Native and pure.
CREATE OR REPLACE FUNCTION celaest._parse_user_agent(p_user_agent text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'celaest_parse_user_agent'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION celaest._parse_user_agent(text) IS
    'Internal (telemetry): what a User-Agent string says, as {device_type (desktop, mobile, tablet or bot), browser (e.g. Chrome, Safari, Firefox, Edge, Samsung Internet, Android WebView, Googlebot, Bingbot), os (e.g. Windows, macOS, iOS, Android, Linux, ChromeOS)}; keys it cannot tell are left out. A crawler is a bot whatever device it claims.';

-- SECURITY DEFINER: telemetry_events is not writable by tenants; this is how they
-- record events, always attributed to the acting user and that user's organization.
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
    v_user_agent text;
    v_derived    jsonb := '{}';
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
    IF lower(v_opt ->> 'device_type') NOT IN ('desktop', 'mobile', 'tablet', 'bot') THEN
        RAISE EXCEPTION 'celaest.track_event: invalid device_type %', quote_literal(v_opt ->> 'device_type')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'device_type is desktop, mobile, tablet or bot.';
    END IF;

    -- The user agent (the option, else the session setting) tells the device, browser and
    -- OS the client did not state; what the client states wins. Parsed before the column
    -- cut, so a long header's tail still counts.
    v_user_agent := coalesce(v_opt ->> 'user_agent', nullif(btrim(current_setting('celaest.user_agent', true)), ''));
    IF v_user_agent IS NOT NULL THEN
        v_derived := celaest._parse_user_agent(v_user_agent);
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
         left(v_user_agent, 500),
         coalesce(lower(v_opt ->> 'device_type'), v_derived ->> 'device_type'),
         coalesce(v_opt ->> 'browser', v_derived ->> 'browser'),
         coalesce(v_opt ->> 'os', v_derived ->> 'os'))
    RETURNING id INTO v_id;

    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION celaest.track_event(text, jsonb, jsonb) IS
    'Records a telemetry event for the acting user (celaest._current_user_id_or_null(); NULL = anonymous) and their organization; returns its id. Options (strings): event_type (default ''custom''), event_category, session_id, page_url, referrer, device_type (desktop, mobile, tablet, bot), browser, os, ip_address and user_agent (default: the settings celaest.client_ip and celaest.user_agent). device_type, browser and os not given are derived from the user agent (celaest._parse_user_agent: crawlers are bots). page_url, referrer and user_agent are cut to 500 characters. A user id without a profile is recorded as anonymous, with properties.unknown_user_id. Raises 22023 for an empty or over-long event name, non-object properties or options, an unknown or non-string option, an invalid device_type or IP address.';


-- The gradual-rollout bucket, 1..100, exactly as Unleash computes it (murmur3 x86_32,
-- seed 0, of 'group:subject', mod 100, plus 1), so that a team moving from Unleash keeps
-- every user in the same bucket. Native: the hash lives in the pure core (core/murmur3).
CREATE OR REPLACE FUNCTION celaest._unleash_bucket(p_group text, p_subject text) RETURNS integer
    AS 'MODULE_PATHNAME', 'celaest_unleash_bucket'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION celaest._unleash_bucket(text, text) IS
    'Internal (feature flags): Unleash''s gradual-rollout bucket of a subject, 1..100: MurmurHash3 x86_32 with seed 0 of the UTF-8 bytes of p_group || '':'' || p_subject, mod 100, plus 1.';

-- SECURITY INVOKER: flags are readable by everyone; a user named explicitly is
-- looked up with the caller's rights (a tenant sees its own organization's users).
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
    IF p_user_id IS NOT NULL THEN
        -- A service caller names anyone (_acting_user_id's first rule), asked natively
        -- without the helper's call; everyone else through the helper.
        v_user := CASE WHEN celaest._caller_level() = 'service' THEN p_user_id
                       ELSE celaest._acting_user_id(p_user_id, 'is_feature_enabled') END;
    END IF;
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

    v_user := coalesce(v_user, celaest._current_user_id_or_null());
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
            -- Unleash's gradual rollout: a sticky bucket 1..100 of the flag key (the
            -- rollout's group) and the user (else the organization); the same subject
            -- always gets the same answer, and raising the percentage only ever adds
            -- subjects.
            v_subject := coalesce(v_user, v_org)::text;
            IF v_subject IS NULL THEN
                RETURN false;
            END IF;
            RETURN celaest._unleash_bucket(p_flag_key, v_subject)
                   <= coalesce(v_flag.target_percentage, 0);
        ELSE
            RETURN false;                   -- a target type this version does not know
    END CASE;
END;
$$;
COMMENT ON FUNCTION celaest.is_feature_enabled(text, uuid, uuid) IS
    'Whether a feature flag is on for a user (NULL: the acting user) and organization (NULL: that user''s). Unknown or disabled flag: false. target_type all: true; users: the user is in target_users; orgs: the organization is in target_organizations; percentage: Unleash''s gradual rollout, the bucket murmur3_x86_32(flag_key || '':'' || user id (else organization id), seed 0) % 100 + 1 is at most target_percentage (false with neither user nor organization). Never NULL.';


-- The time zone of an organization's ROI periods: settings->>'timezone', else UTC.
CREATE OR REPLACE FUNCTION celaest._roi_timezone(p_settings jsonb)
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(nullif(pg_catalog.btrim(p_settings OPERATOR(pg_catalog.->>) 'timezone'), ''), 'UTC');
$$;
COMMENT ON FUNCTION celaest._roi_timezone(jsonb) IS
    'Internal (ROI): the time zone of an organization''s ROI periods, from its settings: settings->>''timezone'', else UTC.';

-- Refuses (22023) an organization time zone PostgreSQL does not know, naming it, before
-- any figure is computed. Checks each distinct zone once.
CREATE OR REPLACE FUNCTION celaest._roi_check_timezones(p_org_id uuid)
RETURNS void
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_zone text;
    v_org  uuid;
BEGIN
    FOR v_zone, v_org IN
        SELECT z.zone, min(z.id::text)::uuid
          FROM (SELECT o.id, celaest._roi_timezone(o.settings) AS zone
                  FROM celaest.organizations AS o
                 WHERE p_org_id IS NULL OR o.id = p_org_id) AS z
         GROUP BY z.zone
    LOOP
        BEGIN
            PERFORM now() AT TIME ZONE v_zone;
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION 'celaest: unknown time zone % in the settings of organization %', quote_literal(v_zone), v_org
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'settings->>''timezone'' must be a name from pg_timezone_names, e.g. ''Europe/Madrid''.';
        END;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION celaest._roi_check_timezones(uuid) IS
    'Internal (ROI): raises 22023 naming the zone (and an organization using it) when an organization''s settings->>''timezone'' (one organization, or all when NULL) is not a time zone PostgreSQL knows.';

-- The one pass over processed_tasks: a native aggregate (src/pg/functions/roi.cpp,
-- core/roi_tally) that counts every task in its (organization, period[, model or prompt])
-- group and keeps what exact p95/p99 and distinct users need. It has a partial form, so
-- PostgreSQL runs it in parallel workers, each over its share of the table; no SQL function
-- runs per task. Arguments: the task's columns (organization_id, created_at, status,
-- cost_usd, tokens_total, execution_time_ms, ai_time_ms, user_id, prompt_id, the id grouped
-- by or NULL), then the run's constants, the same on every row ('completed', 'failed';
-- the organizations and the number of each one's zone in the next array; per zone the
-- instants where the run's local days start, then where the last one ends; each local
-- day's period number or NULL; the prompts that name manual minutes and those minutes).
-- Result: the figures of every group as bytes, for _roi_rows.
CREATE OR REPLACE FUNCTION celaest._roi_scan_step(internal, uuid, timestamptz, celaest.task_status, numeric, integer,
                                       integer, integer, uuid, uuid, uuid, celaest.task_status,
                                       celaest.task_status, uuid[], integer[], timestamptz[], integer[],
                                       uuid[], text[]) RETURNS internal
    AS 'MODULE_PATHNAME', 'celaest_roi_scan_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE OR REPLACE FUNCTION celaest._roi_scan_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'celaest_roi_scan_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE OR REPLACE FUNCTION celaest._roi_scan_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'celaest_roi_scan_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE OR REPLACE FUNCTION celaest._roi_scan_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'celaest_roi_scan_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE OR REPLACE FUNCTION celaest._roi_scan_final(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'celaest_roi_scan_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE celaest._roi_scan(uuid, timestamptz, celaest.task_status, numeric, integer, integer, integer,
                                   uuid, uuid, uuid, celaest.task_status, celaest.task_status, uuid[],
                                   integer[], timestamptz[], integer[], uuid[], text[]) (
    SFUNC = celaest._roi_scan_step,
    STYPE = internal,
    FINALFUNC = celaest._roi_scan_final,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = celaest._roi_scan_combine,
    SERIALFUNC = celaest._roi_scan_serialize,
    DESERIALFUNC = celaest._roi_scan_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE celaest._roi_scan(uuid, timestamptz, celaest.task_status, numeric, integer, integer, integer, uuid, uuid, uuid, celaest.task_status, celaest.task_status, uuid[], integer[], timestamptz[], integer[], uuid[], text[]) IS
    'Internal (ROI): the one pass over processed_tasks of a roll-up: counts each task in its organization''s local period (and model or prompt); returns the figures of every group as bytes for _roi_rows. Parallel (partial aggregation). Called by _roi_rollup only.';
COMMENT ON FUNCTION celaest._roi_scan_step(internal, uuid, timestamptz, celaest.task_status, numeric, integer, integer, integer, uuid, uuid, uuid, celaest.task_status, celaest.task_status, uuid[], integer[], timestamptz[], integer[], uuid[], text[]) IS 'Internal (ROI): transition function of _roi_scan.';
COMMENT ON FUNCTION celaest._roi_scan_combine(internal, internal) IS 'Internal (ROI): combine function of _roi_scan.';
COMMENT ON FUNCTION celaest._roi_scan_serialize(internal) IS 'Internal (ROI): serial function of _roi_scan.';
COMMENT ON FUNCTION celaest._roi_scan_deserialize(bytea, internal) IS 'Internal (ROI): deserial function of _roi_scan.';
COMMENT ON FUNCTION celaest._roi_scan_final(internal) IS 'Internal (ROI): final function of _roi_scan.';

-- One finished row of a roll-up (_roi_rollup's result, and what _roi_rows hands it).
CREATE TYPE celaest._roi_row AS (
    organization_id           uuid,
    period_start              date,
    period_end                date,
    dim_id                    uuid,
    tasks_completed           bigint,
    tasks_failed              bigint,
    success_rate              numeric,
    manual_equivalent_minutes bigint,
    time_saved_minutes        bigint,
    cost_ai                   numeric,
    cost_manual_equivalent    numeric,
    money_saved               numeric,
    cost_ai_exact             numeric,
    roi_percent               numeric,
    total_tokens              bigint,
    avg_tokens_per_task       integer,
    avg_execution_time_ms     integer,
    p95_execution_time_ms     integer,
    p99_execution_time_ms     integer,
    active_users_count        integer,
    new_users_count           integer,
    hourly_rate               numeric,
    timezone                  text,
    -- roi_metrics' metadata keys: {roi_percent, cost_ai_exact, hourly_rate, timezone}
    metadata                  jsonb
);
COMMENT ON TYPE celaest._roi_row IS
    'Internal (ROI): one row of a roll-up: an organization''s period (and model or prompt), every figure finished as API.md defines it, with the hourly rate and time zone used, and the metadata object roi_metrics stores ({roi_percent, cost_ai_exact, hourly_rate, timezone}).';

-- The rows of a roll-up, finished natively (src/pg/functions/roi.cpp, core/roi_figures): the
-- groups' figures _roi_scan returned (NULL: no task counted) and the run's constants (the
-- organizations, whether each one is reported, its hourly rate and time zone; the default
-- manual minutes; the periods' first and last days; the new users of (organization, period)
-- as three parallel arrays of 1-based positions and counts; dense: a row for every reported
-- organization and period, zeros included). API.md's formulas in exact decimal arithmetic
-- giving numeric's very results, per group, with no SQL expression evaluated per group.
CREATE OR REPLACE FUNCTION celaest._roi_rows(p_figures bytea, p_organizations uuid[], p_reported boolean[],
                                  p_hourly_rates numeric[], p_timezones text[], p_default_minutes numeric,
                                  p_period_starts date[], p_period_ends date[], p_new_user_orgs integer[],
                                  p_new_user_periods integer[], p_new_user_counts bigint[], p_dense boolean)
RETURNS SETOF celaest._roi_row
AS 'MODULE_PATHNAME', 'celaest_roi_rows'
LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION celaest._roi_rows(bytea, uuid[], boolean[], numeric[], text[], numeric, date[], date[], integer[], integer[], bigint[], boolean) IS
    'Internal (ROI): the finished rows of a roll-up from the figures _roi_scan returned and the run''s organizations (reported or not, hourly rate, time zone), default manual minutes, periods and new users; every figure as API.md defines it, computed natively with numeric''s exact results. Called by _roi_rollup only.';

-- The period (its first day) that holds a local date, or NULL when the date is outside
-- the periods a run covers: those overlapping [p_from, p_to], or for 'range' exactly
-- [p_from, p_to] (period start p_from). Called per day and organization, never per task.
CREATE OR REPLACE FUNCTION celaest._roi_period_of(p_period_type text, p_from date, p_to date, p_day date)
RETURNS date
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
               WHEN p_period_type = 'range' THEN
                   CASE WHEN p_day BETWEEN p_from AND p_to THEN p_from END
               WHEN p_day >= celaest._roi_period_start(p_period_type, p_from)
                AND p_day <= celaest._roi_period_end(p_period_type, celaest._roi_period_start(p_period_type, p_to))
               THEN celaest._roi_period_start(p_period_type, p_day)
           END;
$$;
COMMENT ON FUNCTION celaest._roi_period_of(text, date, date, date) IS
    'Internal (ROI): first day of the daily/weekly/monthly period holding p_day among those overlapping [p_from, p_to] (''range'': p_from when p_day is in [p_from, p_to]); NULL outside them.';

-- _roi_rollup is now PL/pgSQL returning SETOF celaest._roi_row: dropped and created again.
DROP FUNCTION celaest._roi_rollup(text, date, date, uuid, text);

-- ---------------------------------------------------------------------------
-- Stored ROI days (internal; not in the data dictionary): see "Stored days" in 55_roi.sql.
-- ---------------------------------------------------------------------------
-- UNLOGGED: every row can be computed again from processed_tasks; after a crash the table is
-- empty and the next run reads the tasks. No foreign key: rows of an organization that is gone
-- are never read, and the upkeep refresh deletes them.
CREATE UNLOGGED TABLE celaest._roi_days (
    organization_id uuid NOT NULL,
    day             date NOT NULL,
    timezone        text NOT NULL,
    state           bytea,
    CONSTRAINT _roi_days_pkey PRIMARY KEY (organization_id, day)
);
COMMENT ON TABLE celaest._roi_days IS
    'Internal (ROI): each organization''s local day tallied once (counts, sums, completed tasks'' execution times, users), merged by aggregate_roi into its periods instead of reading the day''s tasks again. Derived data: deleting rows only makes the next run read those days'' tasks.';
COMMENT ON COLUMN celaest._roi_days.organization_id IS 'Organization.';
COMMENT ON COLUMN celaest._roi_days.day IS 'The local day, in timezone.';
COMMENT ON COLUMN celaest._roi_days.timezone IS 'The organization''s time zone when the day was tallied; another zone makes the row unusable.';
COMMENT ON COLUMN celaest._roi_days.state IS 'The day''s tally (native bytes, core/roi_tally); NULL: no task that day.';

-- Logged: a note commits with the write it describes.
CREATE TABLE celaest._roi_stale (
    organization_id uuid,
    utc_day         date,
    first_at        timestamptz,
    last_at         timestamptz
);
COMMENT ON TABLE celaest._roi_stale IS
    'Internal (ROI): notes of writes to tasks of days that may be stored (written by triggers on processed_tasks and prompts_master, in the writer''s transaction, one per organization and UTC day); the next run deletes the stored days they touch. NULL organization or day: all of them.';
COMMENT ON COLUMN celaest._roi_stale.organization_id IS 'Organization whose task was written; NULL: every organization.';
COMMENT ON COLUMN celaest._roi_stale.utc_day IS 'The tasks'' created_at as a UTC date; NULL: every day.';
COMMENT ON COLUMN celaest._roi_stale.first_at IS 'The earliest created_at of the tasks written that day (the local days touched follow from it and last_at); NULL: the UTC day and the days next to it.';
COMMENT ON COLUMN celaest._roi_stale.last_at IS 'The latest created_at of the tasks written that day.';

-- Bookkeeping of the ROI functions (SECURITY DEFINER): no tenant reads it; a super admin may,
-- for support.
ALTER TABLE celaest._roi_days ENABLE ROW LEVEL SECURITY;
CREATE POLICY roi_days_super_admin ON celaest._roi_days FOR SELECT
    USING (celaest._current_user_is_super_admin());
ALTER TABLE celaest._roi_stale ENABLE ROW LEVEL SECURITY;
CREATE POLICY roi_stale_super_admin ON celaest._roi_stale FOR SELECT
    USING (celaest._current_user_is_super_admin());

-- The constants of a roll-up run, worked out once by small queries (never per task):
--   p_period_type  'daily' | 'weekly' | 'monthly': every period overlapping
--                  [p_from, p_to], whole periods (a weekly run from a Wednesday
--                  covers the week from its Monday);
--                  'range': one period, exactly [p_from, p_to].
--   p_org_id       one organization, or NULL for every organization in p_orgs (NULL: every
--                  one the caller sees); reported: the live ones, the one asked for, and
--                  soft-deleted ones with tasks near the window.
CREATE TYPE celaest._roi_run AS (
    lo           date,           -- the local days covered, lo .. hi
    hi           date,
    periods      date[],         -- each period's first and last day
    period_end   date[],
    day_period   integer[],      -- each local day's period (1-based), NULL: none
    orgs         uuid[],         -- every organization of the run, soft-deleted ones too
    org_tz       text[],         -- its time zone
    rates        numeric[],      -- its hourly rate
    reported     boolean[],      -- whether its rows are wanted
    zones        text[],         -- the distinct zones
    org_zone     integer[],      -- each organization's zone (1-based)
    day_starts   timestamptz[],  -- per zone, where each local day starts, then where the last ends
    prompts      uuid[],         -- the prompts that name manual minutes, and those minutes
    minutes      text[],
    default_minutes numeric,
    nu_orgs      integer[],      -- new users per (organization, period), 1-based positions
    nu_periods   integer[],
    nu_counts    bigint[]
);
COMMENT ON TYPE celaest._roi_run IS
    'Internal (ROI): the constants of a roll-up run (days, periods, organizations with their zones, rates and whether reported, where each zone''s local days start, the prompts'' manual minutes, new users), worked out once by _roi_run_constants.';

CREATE FUNCTION celaest._roi_run_constants(
    p_period_type text,
    p_from        date,
    p_to          date,
    p_org_id      uuid,
    p_orgs        uuid[] DEFAULT NULL
)
RETURNS celaest._roi_run
LANGUAGE plpgsql
STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    r            celaest._roi_run;
    v_last_start date := CASE WHEN p_period_type = 'range' THEN p_from
                              ELSE celaest._roi_period_start(p_period_type, p_to) END;
    v_defaults   record;
BEGIN
    r.lo := CASE WHEN p_period_type = 'range' THEN p_from
                 ELSE celaest._roi_period_start(p_period_type, p_from) END;
    r.hi := CASE WHEN p_period_type = 'range' THEN p_to
                 ELSE celaest._roi_period_end(p_period_type, v_last_start) END;
    SELECT array_agg(s.d::date ORDER BY s.d),
           array_agg(CASE WHEN p_period_type = 'range' THEN p_to
                          ELSE celaest._roi_period_end(p_period_type, s.d::date) END ORDER BY s.d)
      INTO r.periods, r.period_end
      FROM generate_series(r.lo::timestamp, v_last_start::timestamp,
                           CASE p_period_type WHEN 'weekly'  THEN interval '1 week'
                                              WHEN 'monthly' THEN interval '1 month'
                                              ELSE interval '1 day' END) AS s(d);
    -- Each local day's period, as its number in r.periods.
    SELECT array_agg(array_position(r.periods, celaest._roi_period_of(p_period_type, p_from, p_to, s.d::date))
                     ORDER BY s.d)
      INTO r.day_period
      FROM generate_series(r.lo::timestamp, r.hi::timestamp, interval '1 day') AS s(d);
    SELECT d.manual_minutes_per_task, d.hourly_rate INTO v_defaults FROM celaest._roi_defaults() AS d;
    r.default_minutes := v_defaults.manual_minutes_per_task;
    SELECT array_agg(o.id ORDER BY o.id),
           array_agg(celaest._roi_timezone(o.settings) ORDER BY o.id),
           array_agg(coalesce(celaest._roi_number(o.settings -> 'roi' ->> 'hourly_rate'), v_defaults.hourly_rate)
                     ORDER BY o.id),
           array_agg((o.deleted_at IS NULL
                      OR p_org_id IS NOT NULL
                      OR EXISTS (SELECT 1 FROM celaest.processed_tasks AS t
                                  WHERE t.organization_id = o.id
                                    AND t.created_at >= (r.lo - 2)::timestamptz
                                    AND t.created_at < (r.hi + 3)::timestamptz)) ORDER BY o.id)
      INTO r.orgs, r.org_tz, r.rates, r.reported
      FROM celaest.organizations AS o
     WHERE (p_org_id IS NULL OR o.id = p_org_id)
       AND (p_orgs IS NULL OR o.id = ANY (p_orgs));
    IF r.orgs IS NULL THEN
        RETURN r;
    END IF;
    SELECT array_agg(DISTINCT z.tz) INTO r.zones FROM unnest(r.org_tz) AS z(tz);
    SELECT array_agg(array_position(r.zones, z.tz) ORDER BY z.n) INTO r.org_zone
      FROM unnest(r.org_tz) WITH ORDINALITY AS z(tz, n);
    -- Where each zone's local days start (a task at exactly local midnight opens the day).
    SELECT array_agg(s.d AT TIME ZONE z.tz ORDER BY z.n, s.d) INTO r.day_starts
      FROM unnest(r.zones) WITH ORDINALITY AS z(tz, n),
           generate_series(r.lo::timestamp, (r.hi + 1)::timestamp, interval '1 day') AS s(d);
    SELECT array_agg(p.id), array_agg(m.minutes::text)
      INTO r.prompts, r.minutes
      FROM celaest.prompts_master AS p
     CROSS JOIN LATERAL (SELECT celaest._roi_number(p.metadata ->> 'manual_minutes') AS minutes) AS m
     WHERE m.minutes IS NOT NULL;
    -- New users (soft-deleted ones included: they were new then) per organization and the
    -- period of their local creation day; users created outside the days covered count nowhere.
    SELECT array_agg(u.org_n), array_agg(u.period_n), array_agg(u.n)
      INTO r.nu_orgs, r.nu_periods, r.nu_counts
      FROM (SELECT o.n AS org_n,
                   r.day_period[(u.created_at AT TIME ZONE o.tz)::date - r.lo + 1] AS period_n,
                   count(*) AS n
              FROM unnest(r.orgs, r.org_tz) WITH ORDINALITY AS o(id, tz, n)
              JOIN celaest.users_profile AS u ON u.organization_id = o.id
             GROUP BY 1, 2) AS u
     WHERE u.period_n IS NOT NULL;
    RETURN r;
END;
$$;
COMMENT ON FUNCTION celaest._roi_run_constants(text, date, date, uuid, uuid[]) IS
    'Internal (ROI): the constants of a roll-up over the daily/weekly/monthly periods overlapping [p_from, p_to] (''range'': exactly those days) for one organization or all (among p_orgs when given): see celaest._roi_run. Arguments are not validated here.';

-- The finished rows of a run from its periods' figures (_roi_scan's or _roi_fold's bytes).
CREATE FUNCTION celaest._roi_finish(p_figures bytea, r celaest._roi_run, p_dense boolean)
RETURNS SETOF celaest._roi_row
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT * FROM celaest._roi_rows(p_figures, r.orgs, r.reported, r.rates, r.org_tz, r.default_minutes,
                                    r.periods, r.period_end, r.nu_orgs, r.nu_periods, r.nu_counts, p_dense);
$$;
COMMENT ON FUNCTION celaest._roi_finish(bytea, celaest._roi_run, boolean) IS
    'Internal (ROI): the finished rows of a run (_roi_rows) from its periods'' figures and constants.';

-- The ROI math straight from the tasks: one row per (organization, period, dimension key):
--   p_period_type, p_org_id: see _roi_run_constants;
--   p_dimension    'total': one row per organization and period, dense (periods
--                  without tasks give a row of zeros);
--                  'model' / 'prompt': one row per model / prompt with tasks
--                  (dim_id NULL: tasks whose model / prompt is unknown).
-- roi_summary's roll-up; aggregate_roi merges stored days instead (_roi_rollup_days).
-- The callers validate the arguments and the time zones; this function trusts them.
-- How: the one pass over processed_tasks is a query of one table and one native aggregate
-- (_roi_scan), which PostgreSQL runs in parallel workers (PARALLEL RESTRICTED: it starts
-- workers of its own, so it runs in the leader); _roi_rows finishes every group's figures
-- natively. No SQL function or expression runs per task or per group.
-- jit = off: the row estimates would put small queries above jit_above_cost, and compiling
-- cost more than it saved (1.3 s of CPU on 2 M tasks, measured before the figures went native).
CREATE FUNCTION celaest._roi_rollup(
    p_period_type text,
    p_from        date,
    p_to          date,
    p_org_id      uuid,
    p_dimension   text DEFAULT 'total'
)
RETURNS SETOF celaest._roi_row
LANGUAGE plpgsql
STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    r         celaest._roi_run := celaest._roi_run_constants(p_period_type, p_from, p_to, p_org_id);
    v_figures bytea;
BEGIN
    IF r.orgs IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format(
        'SELECT celaest._roi_scan(t.organization_id, t.created_at, t.status, t.cost_usd, t.tokens_total,
                                  t.execution_time_ms, t.ai_time_ms, t.user_id, t.prompt_id, %s,
                                  ''completed'', ''failed'', $1, $2, $3, $4, $5, $6)
           FROM celaest.processed_tasks AS t
          WHERE t.created_at >= $7 AND t.created_at < $8 %s',
        CASE p_dimension WHEN 'model' THEN 't.model_id' WHEN 'prompt' THEN 't.prompt_id' ELSE 'NULL::uuid' END,
        CASE WHEN p_org_id IS NOT NULL THEN 'AND t.organization_id = $9' ELSE '' END)
      INTO v_figures
      USING r.orgs, r.org_zone, r.day_starts, r.day_period, r.prompts, r.minutes,
            (SELECT min(d) FROM unnest(r.day_starts) AS d), (SELECT max(d) FROM unnest(r.day_starts) AS d),
            p_org_id;
    RETURN QUERY SELECT * FROM celaest._roi_finish(v_figures, r, p_dimension = 'total');
END;
$$;
COMMENT ON FUNCTION celaest._roi_rollup(text, date, date, uuid, text) IS
    'Internal (ROI): the ROI figures of every organization (or one) per daily/weekly/monthly period overlapping [p_from, p_to] in each organization''s time zone, or for the exact range (''range''), in total or per model / prompt (p_dimension), read straight from processed_tasks. Used by roi_summary; arguments and time zones are not validated here.';

-- ---------------------------------------------------------------------------
-- Stored days: what aggregate_roi reads instead of the tasks
-- ---------------------------------------------------------------------------
-- Each organization's local day is tallied once (counts, sums, the completed tasks' execution
-- times and the users: what exact percentiles and distinct users need) and kept in
-- celaest._roi_days; a run merges the stored days into its periods and reads from
-- processed_tasks only the days it does not have. A stored day is
--   * sealed: it ended at least an hour (the live window) before the oldest transaction then
--     open in this database began, so every later write of one of its tasks is an "old" write;
--   * invalidated by such writes: a row trigger on processed_tasks, whose WHEN clause lets only
--     tasks created more than an hour before the writing transaction began through, notes the
--     task's organization, UTC day and instant; just before the writer's transaction commits
--     they become rows of celaest._roi_stale, one per organization and UTC day with the first
--     and last instant (so a rolled-back write notes nothing, and a committed one cannot be
--     missed); a run first deletes the stored days those notes touch (the local days the
--     instants fall on);
--   * tied to its organization's time zone when it was tallied: another zone reads the tasks;
--   * also invalidated by a change of a prompt's manual minutes (its tasks' days are noted)
--     and by TRUNCATE (every day).
-- Today, and any day still inside the live window, is always read from the tasks.
-- Only one run at a time maintains the store (a transaction-level advisory lock, tried, never
-- waited for); a run that does not get it, or runs under REPEATABLE READ, reads the stored days
-- that no note touches and the tasks of the others, and stores nothing.

-- A scan by local day: _roi_scan over a calendar in which each day is its own period; the
-- result is the tally itself (groups by organization and day), for _roi_day_states.
CREATE AGGREGATE celaest._roi_scan_days(uuid, timestamptz, celaest.task_status, numeric, integer, integer, integer,
                                        uuid, uuid, uuid, celaest.task_status, celaest.task_status, uuid[],
                                        integer[], timestamptz[], integer[], uuid[], text[]) (
    SFUNC = celaest._roi_scan_step,
    STYPE = internal,
    FINALFUNC = celaest._roi_scan_serialize,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = celaest._roi_scan_combine,
    SERIALFUNC = celaest._roi_scan_serialize,
    DESERIALFUNC = celaest._roi_scan_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE celaest._roi_scan_days(uuid, timestamptz, celaest.task_status, numeric, integer, integer, integer, uuid, uuid, uuid, celaest.task_status, celaest.task_status, uuid[], integer[], timestamptz[], integer[], uuid[], text[]) IS
    'Internal (ROI): _roi_scan''s pass over processed_tasks returning the tally itself (one group per organization and local day when each day is its own period), for _roi_day_states. Parallel.';

CREATE FUNCTION celaest._roi_day_states(p_tally bytea, p_organization_n integer[], p_day_n integer[])
RETURNS TABLE (organization_n integer, day_n integer, state bytea)
AS 'MODULE_PATHNAME', 'celaest_roi_day_states'
LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION celaest._roi_day_states(bytea, integer[], integer[]) IS
    'Internal (ROI): one row per given (organization, day) pair (1-based positions in the run''s arrays): that day''s group of a scan by local day (_roi_scan_days) as the state celaest._roi_days keeps, NULL when the scan counted no task that day.';

CREATE FUNCTION celaest._roi_fold_step(internal, uuid, date, text, bytea, uuid[], text[], date, integer[], integer,
                                       uuid[], date[], date[])
RETURNS internal
AS 'MODULE_PATHNAME', 'celaest_roi_fold_step' LANGUAGE C IMMUTABLE;
CREATE FUNCTION celaest._roi_fold_final(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'celaest_roi_fold_final' LANGUAGE C IMMUTABLE;
CREATE AGGREGATE celaest._roi_fold(uuid, date, text, bytea, uuid[], text[], date, integer[], integer, uuid[], date[],
                                   date[]) (
    SFUNC = celaest._roi_fold_step,
    STYPE = internal,
    FINALFUNC = celaest._roi_fold_final,
    FINALFUNC_MODIFY = READ_WRITE
);
COMMENT ON AGGREGATE celaest._roi_fold(uuid, date, text, bytea, uuid[], text[], date, integer[], integer, uuid[], date[], date[]) IS
    'Internal (ROI): step 1 of a run over stored days: counts each stored day (_roi_days rows: organization, day, zone, state) of use to the run (constants: organizations, their zones, first day, each day''s period, number of periods; notes of writes not consumed: organizations and the local days they touch, first and last, NULL meaning all) into its period; returns the run as bytes for _roi_fold_missing and _roi_fold_finish. A row with a NULL organization only starts the run.';
COMMENT ON FUNCTION celaest._roi_fold_step(internal, uuid, date, text, bytea, uuid[], text[], date, integer[], integer, uuid[], date[], date[]) IS 'Internal (ROI): transition function of _roi_fold.';
CREATE FUNCTION celaest._roi_fold_missing(p_fold bytea)
RETURNS TABLE (organization_n integer, day_n integer)
AS 'MODULE_PATHNAME', 'celaest_roi_fold_missing'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION celaest._roi_fold_missing(bytea) IS
    'Internal (ROI): the (organization, day) pairs of a run (_roi_fold''s bytes) that no stored day counted for, as 1-based positions: the days to read from the tasks.';
CREATE FUNCTION celaest._roi_fold_finish(p_fold bytea, p_fresh_tally bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'celaest_roi_fold_finish'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION celaest._roi_fold_finish(bytea, bytea) IS
    'Internal (ROI): step 2 of a run over stored days: the missing days'' tally (a scan by day; NULL: none) counted too; returns the figures of every period, as _roi_scan does, for _roi_rows.';
COMMENT ON FUNCTION celaest._roi_fold_final(internal) IS 'Internal (ROI): final function of _roi_fold.';

CREATE FUNCTION celaest._roi_mark_stale() RETURNS trigger
AS 'MODULE_PATHNAME', 'celaest_roi_mark_stale' LANGUAGE C;
CREATE FUNCTION celaest._roi_flush_notes() RETURNS void
AS 'MODULE_PATHNAME', 'celaest_roi_flush_notes' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION celaest._roi_flush_notes() IS
    'Internal (ROI): writes the notes this transaction''s writes of old tasks have left so far to celaest._roi_stale now rather than at commit (a run calls it first, so that it sees its own transaction''s writes).';
COMMENT ON FUNCTION celaest._roi_mark_stale() IS
    'Internal (ROI, trigger): notes the organization, UTC day and instant of an old task written (each version of the row); written to celaest._roi_stale just before the transaction commits, one row per organization and UTC day.';
-- The live window (one hour) is written here and in the seal of _roi_rollup_days.
CREATE TRIGGER processed_tasks_roi_stale_insert
    AFTER INSERT ON celaest.processed_tasks
    FOR EACH ROW WHEN (NEW.created_at < now() - interval '1 hour')
    EXECUTE FUNCTION celaest._roi_mark_stale();
CREATE TRIGGER processed_tasks_roi_stale_update
    AFTER UPDATE ON celaest.processed_tasks
    FOR EACH ROW WHEN (OLD.created_at < now() - interval '1 hour' OR NEW.created_at < now() - interval '1 hour')
    EXECUTE FUNCTION celaest._roi_mark_stale();
CREATE TRIGGER processed_tasks_roi_stale_delete
    AFTER DELETE ON celaest.processed_tasks
    FOR EACH ROW WHEN (OLD.created_at < now() - interval '1 hour')
    EXECUTE FUNCTION celaest._roi_mark_stale();

CREATE FUNCTION celaest._roi_stale_everything() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO celaest._roi_stale (organization_id, utc_day) VALUES (NULL, NULL);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION celaest._roi_stale_everything() IS
    'Internal (ROI, trigger): after TRUNCATE of processed_tasks, every stored ROI day is stale.';
CREATE TRIGGER processed_tasks_roi_stale_truncate
    AFTER TRUNCATE ON celaest.processed_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._roi_stale_everything();

-- A prompt's manual minutes are counted into the stored days of its completed tasks.
CREATE FUNCTION celaest._roi_prompt_minutes_changed() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO celaest._roi_stale (organization_id, utc_day)
    SELECT DISTINCT t.organization_id, (t.created_at AT TIME ZONE 'UTC')::date
      FROM celaest.processed_tasks AS t
     WHERE t.prompt_id = NEW.id AND t.status = 'completed';
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION celaest._roi_prompt_minutes_changed() IS
    'Internal (ROI, trigger): a prompt''s metadata manual_minutes changed: the days of its completed tasks are noted stale.';
CREATE TRIGGER prompts_master_roi_minutes
    AFTER UPDATE ON celaest.prompts_master
    FOR EACH ROW WHEN (OLD.metadata ->> 'manual_minutes' IS DISTINCT FROM NEW.metadata ->> 'manual_minutes')
    EXECUTE FUNCTION celaest._roi_prompt_minutes_changed();

-- Every trigger above also fires where rows arrive by logical replication or with
-- session_replication_role = replica (submit_batch's task rows): a stored day must not miss a write.
ALTER TABLE celaest.processed_tasks ENABLE ALWAYS TRIGGER processed_tasks_roi_stale_insert;
ALTER TABLE celaest.processed_tasks ENABLE ALWAYS TRIGGER processed_tasks_roi_stale_update;
ALTER TABLE celaest.processed_tasks ENABLE ALWAYS TRIGGER processed_tasks_roi_stale_delete;
ALTER TABLE celaest.processed_tasks ENABLE ALWAYS TRIGGER processed_tasks_roi_stale_truncate;
ALTER TABLE celaest.prompts_master ENABLE ALWAYS TRIGGER prompts_master_roi_minutes;

-- The total figures of every organization in p_orgs (the ones the caller sees; or the one
-- p_org_id names) per daily, weekly or monthly period overlapping [p_from, p_to], from the
-- stored days and the tasks of the days not stored, storing the sealed days it read (see
-- "Stored days" above). aggregate_roi's roll-up (through _roi_store); dense.
-- SECURITY DEFINER: the store holds every organization's days, and a day is tallied from all
-- of its tasks whoever asks; the caller chooses the organizations (p_orgs, read with its rights).
-- enable_nestloop = on: the days not stored are read by one index range scan each
-- ((organization_id, created_at)); the caller turns nested loops off for its upsert.
CREATE FUNCTION celaest._roi_rollup_days(
    p_period_type text,
    p_from        date,
    p_to          date,
    p_org_id      uuid,
    p_orgs        uuid[],
    INOUT r       celaest._roi_run DEFAULT NULL,
    OUT figures   bytea
)
LANGUAGE plpgsql
VOLATILE PARALLEL RESTRICTED
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET enable_nestloop = on
SET work_mem = '256MB'
AS $$
DECLARE
    v_days         integer;
    v_maintain     boolean;
    v_sealed_until timestamptz;   -- a day that ended at or before this instant may be stored
    v_mark_orgs    uuid[];        -- read-only runs: notes not consumed yet (NULL: every one)
    v_mark_first   date[];        -- the local days each touches, first and last (NULL: all)
    v_mark_last    date[];
    v_note_orgs    uuid[];        -- the notes this run consumes: organization, UTC day, zone
    v_note_days    date[];
    v_note_zones   text[];
    v_miss_orgs    integer[];     -- the (organization, day) pairs read from the tasks, 1-based
    v_miss_days    integer[];
    v_each_day     integer[];     -- a scan by day: each day its own period
    v_fold         bytea;         -- the run after step 1 (_roi_fold)
    v_tally        bytea;
BEGIN
    r := celaest._roi_run_constants(p_period_type, p_from, p_to, p_org_id, coalesce(p_orgs, '{}'));
    IF r.orgs IS NULL THEN
        RETURN;
    END IF;
    v_days := r.hi - r.lo + 1;
    PERFORM celaest._roi_flush_notes();
    v_maintain := current_setting('transaction_isolation') = 'read committed'
                  AND pg_try_advisory_xact_lock(hashtextextended('celaest._roi_days', 0));

    IF v_maintain AND EXISTS (SELECT 1 FROM celaest._roi_stale) THEN
        -- Consume the notes: the stored days they touch go. A note with its instants touches
        -- the local days they fall on in the organization's zone (and, around its UTC day, any
        -- day stored in another zone); one without (a prompt's minutes, TRUNCATE), or of an
        -- organization that is gone, the local days before, of and after its UTC day.
        WITH consumed AS (
            DELETE FROM celaest._roi_stale RETURNING organization_id, utc_day, first_at, last_at
        )
        SELECT array_agg(m.organization_id), array_agg(m.utc_day), array_agg(m.zone),
               array_agg(m.first_day), array_agg(m.last_day)
          INTO v_note_orgs, v_note_days, v_note_zones, v_mark_first, v_mark_last
          FROM (SELECT DISTINCT c.organization_id, c.utc_day, z.zone,
                       (c.first_at AT TIME ZONE z.zone)::date AS first_day,
                       (c.last_at AT TIME ZONE z.zone)::date AS last_day
                  FROM consumed AS c
                  LEFT JOIN celaest.organizations AS o ON o.id = c.organization_id
                 CROSS JOIN LATERAL (SELECT CASE WHEN o.id IS NOT NULL AND c.first_at IS NOT NULL
                                                 THEN celaest._roi_timezone(o.settings) END AS zone) AS z) AS m;
        -- A note of one organization and day: one index range scan of _roi_days' key.
        DELETE FROM celaest._roi_days AS d
         USING unnest(v_note_orgs, v_note_days, v_note_zones, v_mark_first, v_mark_last)
                   AS m(organization_id, utc_day, zone, first_day, last_day)
         WHERE m.organization_id IS NOT NULL AND m.utc_day IS NOT NULL
           AND d.organization_id = m.organization_id
           AND d.day BETWEEN m.utc_day - 1 AND m.utc_day + 1
           AND (m.zone IS NULL OR d.timezone <> m.zone OR d.day BETWEEN m.first_day AND m.last_day);
        -- Notes of every organization or every day (TRUNCATE, an organization's whole history).
        IF EXISTS (SELECT 1 FROM unnest(v_note_orgs, v_note_days) AS m(organization_id, utc_day)
                    WHERE m.organization_id IS NULL OR m.utc_day IS NULL) THEN
            DELETE FROM celaest._roi_days AS d
             USING unnest(v_note_orgs, v_note_days) AS m(organization_id, utc_day)
             WHERE (m.organization_id IS NULL OR m.utc_day IS NULL)
               AND (m.organization_id IS NULL OR d.organization_id = m.organization_id)
               AND (m.utc_day IS NULL OR d.day BETWEEN m.utc_day - 1 AND m.utc_day + 1);
        END IF;
        v_mark_first := NULL;
        v_mark_last := NULL;
    END IF;
    IF v_maintain THEN
        -- The seal: the oldest transaction open in this database (its writes of tasks created
        -- before its start minus the live window are noted; of later ones, not). Prepared
        -- transactions, or backends this role may not see, leave nothing sealed.
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_xacts AS p WHERE p.database = current_database())
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity AS a
                            WHERE a.datname = current_database() AND a.backend_xid IS NOT NULL
                              AND a.xact_start IS NULL) THEN
            SELECT least(now(), min(a.xact_start)) - interval '1 hour' INTO v_sealed_until
              FROM pg_catalog.pg_stat_activity AS a
             WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
               AND a.backend_type <> 'autovacuum worker';
        END IF;
    ELSE
        -- The notes as the local days they touch (as their consumption above would delete).
        SELECT array_agg(m.organization_id), array_agg(m.first_day), array_agg(m.last_day)
          INTO v_mark_orgs, v_mark_first, v_mark_last
          FROM (SELECT DISTINCT s.organization_id,
                       CASE WHEN z.zone IS NULL THEN s.utc_day - 1 ELSE (s.first_at AT TIME ZONE z.zone)::date END
                           AS first_day,
                       CASE WHEN z.zone IS NULL THEN s.utc_day + 1 ELSE (s.last_at AT TIME ZONE z.zone)::date END
                           AS last_day
                  FROM celaest._roi_stale AS s
                  LEFT JOIN celaest.organizations AS o ON o.id = s.organization_id
                 CROSS JOIN LATERAL (SELECT CASE WHEN o.id IS NOT NULL AND s.first_at IS NOT NULL
                                                 THEN celaest._roi_timezone(o.settings) END AS zone) AS z) AS m;
    END IF;

    -- Step 1, natively: one pass over the run's rows of _roi_days counts each stored day of use
    -- (its organization's current zone, not touched by a note this run does not consume) into
    -- its period; then the pairs none counted for. (The extra row starts the run when no day is
    -- stored.)
    SELECT celaest._roi_fold(x.organization_id, x.day, x.timezone, x.state, r.orgs, r.org_tz, r.lo, r.day_period,
                             cardinality(r.periods), v_mark_orgs, v_mark_first, v_mark_last)
      INTO v_fold
      FROM (SELECT s.organization_id, s.day, s.timezone, s.state
              FROM celaest._roi_days AS s
             WHERE s.day BETWEEN r.lo AND r.hi
               AND (p_org_id IS NULL OR s.organization_id = p_org_id)
            UNION ALL
            SELECT NULL, NULL, NULL, NULL) AS x;
    SELECT array_agg(m.organization_n ORDER BY m.organization_n, m.day_n), array_agg(m.day_n ORDER BY m.organization_n, m.day_n)
      INTO v_miss_orgs, v_miss_days
      FROM celaest._roi_fold_missing(v_fold) AS m;

    IF v_miss_orgs IS NOT NULL THEN
        SELECT array_agg(g) INTO v_each_day FROM generate_series(1, v_days) AS g;
        IF cardinality(v_miss_orgs) * 4 > cardinality(r.orgs) * v_days THEN
            -- Most days are missing (the first run): one pass over the window, in parallel
            -- workers (EXECUTE: a static SELECT INTO asks for one row, which rules workers out).
            EXECUTE format(
                'SELECT celaest._roi_scan_days(t.organization_id, t.created_at, t.status, t.cost_usd, t.tokens_total,
                                               t.execution_time_ms, t.ai_time_ms, t.user_id, t.prompt_id, NULL::uuid,
                                               ''completed'', ''failed'', $1, $2, $3, $4, $5, $6)
                   FROM celaest.processed_tasks AS t
                  WHERE t.created_at >= $7 AND t.created_at < $8 %s',
                CASE WHEN p_org_id IS NOT NULL THEN 'AND t.organization_id = $9' ELSE '' END)
              INTO v_tally
              USING r.orgs, r.org_zone, r.day_starts, v_each_day, r.prompts, r.minutes,
                    (SELECT min(x) FROM unnest(r.day_starts) AS x), (SELECT max(x) FROM unnest(r.day_starts) AS x),
                    p_org_id;
        ELSE
            -- A few days: each run of consecutive missing days of an organization is one
            -- range of its tasks.
            SELECT celaest._roi_scan_days(t.organization_id, t.created_at, t.status, t.cost_usd, t.tokens_total,
                                          t.execution_time_ms, t.ai_time_ms, t.user_id, t.prompt_id, NULL::uuid,
                                          'completed', 'failed', r.orgs, r.org_zone, r.day_starts, v_each_day,
                                          r.prompts, r.minutes)
              INTO v_tally
              FROM (SELECT r.orgs[i.o] AS org,
                           r.day_starts[(r.org_zone[i.o] - 1) * (v_days + 1) + i.first_day] AS from_instant,
                           r.day_starts[(r.org_zone[i.o] - 1) * (v_days + 1) + i.last_day + 1] AS to_instant
                      FROM (SELECT m.o, min(m.d) AS first_day, max(m.d) AS last_day
                              FROM (SELECT x.o, x.d, x.d - row_number() OVER (PARTITION BY x.o ORDER BY x.d) AS island
                                      FROM unnest(v_miss_orgs, v_miss_days) AS x(o, d)) AS m
                             GROUP BY m.o, m.island) AS i) AS g
              JOIN celaest.processed_tasks AS t
                ON t.organization_id = g.org AND t.created_at >= g.from_instant AND t.created_at < g.to_instant;
        END IF;
    END IF;

    -- Store the sealed days just read (days without tasks too: a NULL state).
    IF v_maintain AND v_miss_orgs IS NOT NULL THEN
        INSERT INTO celaest._roi_days AS s (organization_id, day, timezone, state)
        SELECT r.orgs[m.organization_n], r.lo + m.day_n - 1, r.org_tz[m.organization_n], m.state
          FROM celaest._roi_day_states(v_tally, v_miss_orgs, v_miss_days) AS m
         WHERE r.day_starts[(r.org_zone[m.organization_n] - 1) * (v_days + 1) + m.day_n + 1] <= v_sealed_until
        ON CONFLICT (organization_id, day) DO UPDATE SET timezone = EXCLUDED.timezone, state = EXCLUDED.state;
    END IF;
    -- Step 2: the days just read counted too; the figures.
    figures := celaest._roi_fold_finish(v_fold, v_tally);
END;
$$;
COMMENT ON FUNCTION celaest._roi_rollup_days(text, date, date, uuid, uuid[], celaest._roi_run) IS
    'Internal (ROI): the total figures (as _roi_rows reads them; r: the run''s constants) of the organizations in p_orgs (or p_org_id) per daily/weekly/monthly period overlapping [p_from, p_to], merged from the stored days (celaest._roi_days) and the tasks of the days not stored; stores the sealed days it read and consumes the notes of celaest._roi_stale when it gets the store''s lock. Used by aggregate_roi; arguments and time zones are not validated here.';
REVOKE EXECUTE ON FUNCTION celaest._roi_rollup_days(text, date, date, uuid, uuid[], celaest._roi_run) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- aggregate_roi and the daily refresh
-- ---------------------------------------------------------------------------
-- The rows of a run that roi_metrics does not already hold as they are: _roi_rows' rows,
-- compared natively with roi_metrics' rows of p_period_type (read with the caller's rights) and
-- left out when every figure is equal and the stored metadata holds our keys with our values.
CREATE FUNCTION celaest._roi_rows_changed(p_figures bytea, p_organizations uuid[], p_reported boolean[],
                                          p_hourly_rates numeric[], p_timezones text[], p_default_minutes numeric,
                                          p_period_starts date[], p_period_ends date[], p_new_user_orgs integer[],
                                          p_new_user_periods integer[], p_new_user_counts bigint[], p_dense boolean,
                                          p_period_type text)
RETURNS SETOF celaest._roi_row
AS 'MODULE_PATHNAME', 'celaest_roi_rows_changed'
LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 1000;
COMMENT ON FUNCTION celaest._roi_rows_changed(bytea, uuid[], boolean[], numeric[], text[], numeric, date[], date[], integer[], integer[], bigint[], boolean, text) IS
    'Internal (ROI): the rows of _roi_rows (same arguments) that roi_metrics (rows of p_period_type, read with the caller''s rights) does not already hold with the same figures and our metadata keys; what _roi_store upserts.';

-- Computes the periods (_roi_rollup_days: the stored days and the tasks of the others) and
-- upserts the rows roi_metrics does not hold as they are, in one statement. p_recent_only
-- keeps, per organization, only the daily rows of its local yesterday and today (the upkeep
-- refresh). Returns the number of rows computed (every reported organization and period).
-- SECURITY INVOKER: it reads and writes roi_metrics with the caller's rights.
-- work_mem: the run's figures (90,000 periods for 1,000 organizations over 90 days) stay in
-- memory.
-- enable_nestloop = off: against a freshly analyzed, empty roi_metrics the planner once chose a
-- nested loop that scanned the rows the INSERT had written so far for every row (minutes for
-- 90,000 rows, measured).
-- jit = off (here, in _roi_rollup and in roi_summary): the row estimates (every organization
-- times every period) put the cost above jit_above_cost, and compiling the expressions took
-- longer than evaluating them (1.3 s of CPU on 2 M tasks, measured).
CREATE OR REPLACE FUNCTION celaest._roi_store(
    p_period_type text,
    p_from        date,
    p_to          date,
    p_org_id      uuid,
    p_recent_only boolean DEFAULT false
)
RETURNS integer
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
SET work_mem = '256MB'
SET enable_nestloop = off
SET jit = off
AS $$
DECLARE
    v_count integer;
BEGIN
    -- Literal arguments (the statement is planned once per run, with its constants).
    EXECUTE format($q$
    WITH run AS MATERIALIZED (
        SELECT d.r, d.figures
          FROM celaest._roi_rollup_days(%L, %L::date, %L::date, %L::uuid,
                                        (SELECT array_agg(o.id) FROM celaest.organizations AS o)) AS d
    ),
    changed AS (
        -- r.metadata: our keys, built natively with the row (_roi_rows).
        SELECT r.*
          FROM run
         CROSS JOIN LATERAL celaest._roi_rows_changed(
                   run.figures, (run.r).orgs, (run.r).reported, (run.r).rates, (run.r).org_tz,
                   (run.r).default_minutes, (run.r).periods, (run.r).period_end, (run.r).nu_orgs,
                   (run.r).nu_periods, (run.r).nu_counts, true, %L) AS r
         WHERE (run.r).orgs IS NOT NULL
           AND (NOT %L::boolean
                OR r.period_start BETWEEN (now() AT TIME ZONE r.timezone)::date - 1
                                      AND (now() AT TIME ZONE r.timezone)::date)
    ),
    upserted AS (
        -- id: the column's default (uuid_generate_v4) is a random version-4 uuid as well, at
        -- twice the cost per row (measured); the first run writes 90,000 rows.
        INSERT INTO celaest.roi_metrics AS m
            (id, organization_id, period_type, period_start, period_end,
             tasks_completed, tasks_failed, success_rate,
             time_saved_minutes, manual_equivalent_minutes,
             cost_ai, cost_manual_equivalent, money_saved,
             total_tokens, avg_tokens_per_task,
             avg_execution_time_ms, p95_execution_time_ms, p99_execution_time_ms,
             active_users_count, new_users_count, metadata)
        SELECT pg_catalog.gen_random_uuid(), c.organization_id, %L, c.period_start, c.period_end,
               c.tasks_completed, c.tasks_failed, c.success_rate,
               c.time_saved_minutes, c.manual_equivalent_minutes,
               c.cost_ai, c.cost_manual_equivalent, c.money_saved,
               c.total_tokens, c.avg_tokens_per_task,
               c.avg_execution_time_ms, c.p95_execution_time_ms, c.p99_execution_time_ms,
               c.active_users_count, c.new_users_count, c.metadata
          FROM changed AS c
        -- The WHERE applies to rows another session writes meanwhile.
        ON CONFLICT (organization_id, period_type, period_start) DO UPDATE
           SET period_end                = EXCLUDED.period_end,
               tasks_completed           = EXCLUDED.tasks_completed,
               tasks_failed              = EXCLUDED.tasks_failed,
               success_rate              = EXCLUDED.success_rate,
               time_saved_minutes        = EXCLUDED.time_saved_minutes,
               manual_equivalent_minutes = EXCLUDED.manual_equivalent_minutes,
               cost_ai                   = EXCLUDED.cost_ai,
               cost_manual_equivalent    = EXCLUDED.cost_manual_equivalent,
               money_saved               = EXCLUDED.money_saved,
               total_tokens              = EXCLUDED.total_tokens,
               avg_tokens_per_task       = EXCLUDED.avg_tokens_per_task,
               avg_execution_time_ms     = EXCLUDED.avg_execution_time_ms,
               p95_execution_time_ms     = EXCLUDED.p95_execution_time_ms,
               p99_execution_time_ms     = EXCLUDED.p99_execution_time_ms,
               active_users_count        = EXCLUDED.active_users_count,
               new_users_count           = EXCLUDED.new_users_count,
               -- Keys other than ours in metadata are kept.
               metadata                  = m.metadata || EXCLUDED.metadata
         WHERE (m.period_end, m.tasks_completed, m.tasks_failed, m.success_rate,
                m.time_saved_minutes, m.manual_equivalent_minutes,
                m.cost_ai, m.cost_manual_equivalent, m.money_saved,
                m.total_tokens, m.avg_tokens_per_task,
                m.avg_execution_time_ms, m.p95_execution_time_ms, m.p99_execution_time_ms,
                m.active_users_count, m.new_users_count, m.metadata)
               IS DISTINCT FROM
               (EXCLUDED.period_end, EXCLUDED.tasks_completed, EXCLUDED.tasks_failed, EXCLUDED.success_rate,
                EXCLUDED.time_saved_minutes, EXCLUDED.manual_equivalent_minutes,
                EXCLUDED.cost_ai, EXCLUDED.cost_manual_equivalent, EXCLUDED.money_saved,
                EXCLUDED.total_tokens, EXCLUDED.avg_tokens_per_task,
                EXCLUDED.avg_execution_time_ms, EXCLUDED.p95_execution_time_ms, EXCLUDED.p99_execution_time_ms,
                EXCLUDED.active_users_count, EXCLUDED.new_users_count, m.metadata || EXCLUDED.metadata)
    )
    -- Every reported organization's periods (those the recent-only refresh keeps).
    SELECT count(*)::integer
      FROM run
     CROSS JOIN LATERAL unnest((run.r).org_tz, (run.r).reported) AS o(tz, reported)
     CROSS JOIN LATERAL unnest((run.r).periods) AS p(period_start)
     WHERE o.reported
       AND (NOT %L::boolean
            OR p.period_start BETWEEN (now() AT TIME ZONE o.tz)::date - 1 AND (now() AT TIME ZONE o.tz)::date)$q$,
        p_period_type, p_from, p_to, p_org_id, p_period_type, p_recent_only, p_period_type, p_recent_only)
      INTO v_count;
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION celaest._roi_store(text, date, date, uuid, boolean) IS
    'Internal (ROI): computes the roi_metrics rows of the periods overlapping [p_from, p_to] (one organization or all) with _roi_rollup_days and upserts those roi_metrics does not hold as they are; p_recent_only keeps only each organization''s local yesterday and today. Returns the number of rows computed. Arguments are not validated here.';
REVOKE EXECUTE ON FUNCTION celaest._roi_store(text, date, date, uuid, boolean) FROM PUBLIC;

-- SECURITY INVOKER: it reads tasks and writes roi_metrics with the caller's rights
-- (a maintenance job or an administrator; row-level security applies).
CREATE OR REPLACE FUNCTION celaest.aggregate_roi(
    p_period_type text,
    p_from        date,
    p_to          date DEFAULT NULL,
    p_org_id      uuid DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_to date := coalesce(p_to, p_from);
BEGIN
    IF p_period_type IS NULL OR p_period_type NOT IN ('daily', 'weekly', 'monthly') THEN
        RAISE EXCEPTION 'celaest.aggregate_roi: invalid period type %', coalesce(quote_literal(p_period_type), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The period type is ''daily'', ''weekly'' or ''monthly''.';
    END IF;
    IF p_from IS NULL THEN
        RAISE EXCEPTION 'celaest.aggregate_roi: p_from must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_to < p_from THEN
        RAISE EXCEPTION 'celaest.aggregate_roi: p_to % is before p_from %', v_to, p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_org_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM celaest.organizations AS o WHERE o.id = p_org_id) THEN
        RAISE EXCEPTION 'organization % does not exist', p_org_id
            USING ERRCODE = 'no_data_found',
                  DETAIL = 'There is no row in celaest.organizations with this id.';
    END IF;
    PERFORM celaest._roi_check_timezones(p_org_id);
    RETURN celaest._roi_store(p_period_type, p_from, v_to, p_org_id);
END;
$$;
COMMENT ON FUNCTION celaest.aggregate_roi(text, date, date, uuid) IS
    'Computes roi_metrics rows from processed_tasks for every daily, weekly (ISO, Monday-Sunday) or monthly period overlapping [p_from, coalesce(p_to, p_from)], in each organization''s settings->>''timezone'' (else UTC), for one organization or all (live ones, plus soft-deleted ones with tasks in the window), and upserts them; idempotent. Every period gets a row, zeros included. Figures as API.md defines them (see the header of src/sql/55_roi.sql): tasks_completed/failed and success_rate; cost_ai, total_tokens and active_users_count over every task; avg/p95/p99 execution time over completed tasks (exact percentile_cont, rounded); manual_equivalent_minutes from the prompt''s metadata manual_minutes (else roi.manual_minutes_per_task); time_saved_minutes = manual - ai_time_ms/60000; cost_manual_equivalent at the organization''s settings->roi->>hourly_rate (else roi.hourly_rate); money_saved. metadata gets roi_percent, cost_ai_exact, hourly_rate and timezone. Returns the number of rows computed (unchanged rows are not rewritten). Raises 22023 for a bad period type, p_to < p_from or an unknown time zone (naming it), P0002 for an unknown organization.';

-- What the upkeep worker runs every celaest.roi_refresh_interval: the daily rows of
-- yesterday and today, each organization in its own calendar. One roll-up over the
-- days that are yesterday or today somewhere (UTC-12 to UTC+14), keeping per
-- organization only its own two days: no row for a local day not yet begun.
CREATE OR REPLACE FUNCTION celaest._roi_refresh_recent()
RETURNS integer
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_utc_today date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    PERFORM celaest._roi_check_timezones(NULL);
    -- Stored days of organizations that are gone (nothing reads them).
    DELETE FROM celaest._roi_days AS d
     WHERE NOT EXISTS (SELECT 1 FROM celaest.organizations AS o WHERE o.id = d.organization_id);
    RETURN celaest._roi_store('daily', v_utc_today - 2, v_utc_today + 1, NULL, true);
END;
$$;
COMMENT ON FUNCTION celaest._roi_refresh_recent() IS
    'Internal (ROI, upkeep worker): refreshes the daily roi_metrics rows of yesterday and today of every organization, each in its own time zone; returns the number of rows computed. Raises 22023 when an organization''s time zone is unknown.';
REVOKE EXECUTE ON FUNCTION celaest._roi_refresh_recent() FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- roi_summary
-- ---------------------------------------------------------------------------
-- SECURITY INVOKER: a tenant sees its own figures through row-level security.
CREATE OR REPLACE FUNCTION celaest.roi_summary(p_org_id uuid, p_from date, p_to date)
RETURNS jsonb
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_org      uuid := coalesce(p_org_id, celaest.current_org_id());
    v_to       date := coalesce(p_to, p_from);
    v_result   jsonb;
    v_by_model jsonb;
    v_by_prompt jsonb;
BEGIN
    IF v_org IS NULL THEN
        RAISE EXCEPTION 'celaest.roi_summary: no organization given and the acting user belongs to none'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_from IS NULL THEN
        RAISE EXCEPTION 'celaest.roi_summary: p_from must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_to < p_from THEN
        RAISE EXCEPTION 'celaest.roi_summary: p_to % is before p_from %', v_to, p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM celaest.organizations AS o WHERE o.id = v_org) THEN
        RAISE EXCEPTION 'organization % does not exist', v_org
            USING ERRCODE = 'no_data_found',
                  DETAIL = 'There is no row in celaest.organizations with this id.';
    END IF;
    PERFORM celaest._roi_check_timezones(v_org);

    SELECT jsonb_build_object(
               'organization_id',           r.organization_id,
               'from',                      r.period_start,
               'to',                        r.period_end,
               'tasks_completed',           r.tasks_completed,
               'tasks_failed',              r.tasks_failed,
               'success_rate',              r.success_rate,
               'manual_equivalent_minutes', r.manual_equivalent_minutes,
               'time_saved_minutes',        r.time_saved_minutes,
               'time_saved_hours',          round(r.time_saved_minutes / 60.0, 2),
               'cost_ai',                   r.cost_ai,
               'cost_ai_exact',             r.cost_ai_exact,
               'cost_manual_equivalent',    r.cost_manual_equivalent,
               'money_saved',               r.money_saved,
               'roi_percent',               r.roi_percent,
               'hourly_rate',               r.hourly_rate,
               'timezone',                  r.timezone,
               'currency',                  'USD',
               'total_tokens',              r.total_tokens,
               'avg_tokens_per_task',       r.avg_tokens_per_task,
               'avg_execution_time_ms',     r.avg_execution_time_ms,
               'p95_execution_time_ms',     r.p95_execution_time_ms,
               'p99_execution_time_ms',     r.p99_execution_time_ms,
               'active_users_count',        r.active_users_count,
               'new_users_count',           r.new_users_count)
      INTO v_result
      FROM celaest._roi_rollup('range', p_from, v_to, v_org, 'total') AS r;

    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'model_id',               r.dim_id,
               'provider',               m.provider,
               'model',                  m.model_id,
               'display_name',           m.display_name,
               'tasks_completed',        r.tasks_completed,
               'tasks_failed',           r.tasks_failed,
               'success_rate',           r.success_rate,
               'manual_equivalent_minutes', r.manual_equivalent_minutes,
               'time_saved_minutes',     r.time_saved_minutes,
               'cost_ai',                r.cost_ai,
               'cost_ai_exact',          r.cost_ai_exact,
               'cost_manual_equivalent', r.cost_manual_equivalent,
               'money_saved',            r.money_saved,
               'roi_percent',            r.roi_percent,
               'total_tokens',           r.total_tokens,
               'avg_execution_time_ms',  r.avg_execution_time_ms,
               'p95_execution_time_ms',  r.p95_execution_time_ms)
             ORDER BY r.tasks_completed DESC, r.cost_ai_exact DESC, m.model_id NULLS LAST, r.dim_id), '[]')
      INTO v_by_model
      FROM celaest._roi_rollup('range', p_from, v_to, v_org, 'model') AS r
      LEFT JOIN celaest.ai_models AS m ON m.id = r.dim_id;

    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'prompt_id',              r.dim_id,
               'slug',                   p.slug,
               'version',                p.version,
               'name',                   p.name,
               'tasks_completed',        r.tasks_completed,
               'tasks_failed',           r.tasks_failed,
               'success_rate',           r.success_rate,
               'manual_equivalent_minutes', r.manual_equivalent_minutes,
               'time_saved_minutes',     r.time_saved_minutes,
               'cost_ai',                r.cost_ai,
               'cost_ai_exact',          r.cost_ai_exact,
               'cost_manual_equivalent', r.cost_manual_equivalent,
               'money_saved',            r.money_saved,
               'roi_percent',            r.roi_percent,
               'total_tokens',           r.total_tokens,
               'avg_execution_time_ms',  r.avg_execution_time_ms,
               'p95_execution_time_ms',  r.p95_execution_time_ms)
             ORDER BY r.tasks_completed DESC, r.cost_ai_exact DESC, p.slug NULLS LAST, p.version, r.dim_id), '[]')
      INTO v_by_prompt
      FROM celaest._roi_rollup('range', p_from, v_to, v_org, 'prompt') AS r
      LEFT JOIN celaest.prompts_master AS p ON p.id = r.dim_id;

    RETURN v_result || jsonb_build_object('by_model', v_by_model, 'by_prompt', v_by_prompt);
END;
$$;
COMMENT ON FUNCTION celaest.roi_summary(uuid, date, date) IS
    'ROI of one organization (NULL: the acting user''s) over the days [p_from, p_to] of its time zone (settings->>''timezone'', else UTC) (p_to NULL: one day), computed straight from processed_tasks with the same rules as aggregate_roi: {organization_id, from, to, tasks_completed, tasks_failed, success_rate, manual_equivalent_minutes, time_saved_minutes, time_saved_hours, cost_ai, cost_ai_exact, cost_manual_equivalent, money_saved, roi_percent (NULL when the AI cost is 0), hourly_rate, timezone, currency, total_tokens, avg_tokens_per_task, avg/p95/p99_execution_time_ms, active_users_count, new_users_count, by_model: [...], by_prompt: [...]}. Raises 22023 for NULL p_from, p_to < p_from or an unknown time zone, P0002 for an unknown organization.';

-- The cool-downs after a 429 with Retry-After live in shared memory (they are shared
-- by every backend and lost at restart, like the rate-limit windows): this reads them.
CREATE OR REPLACE FUNCTION celaest._api_key_cooldowns() RETURNS jsonb
    AS 'MODULE_PATHNAME', 'celaest_api_key_cooldowns'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION celaest._api_key_cooldowns() IS
    'Internal (key pool): the API keys cooling down now after a 429 with Retry-After, as {"<key id>": <end of the cool-down, Unix milliseconds>}. Reveals no secret.';

-- One row per provider of the enum, keys or not: "no key for groq" is a status.
-- Never selects key_value_encrypted.
CREATE OR REPLACE VIEW celaest.v_api_pool_status
WITH (security_invoker = true)
AS
SELECT pr.provider,
       count(k.id)                                                    AS keys_total,
       count(k.id) FILTER (WHERE k.is_active)                         AS keys_active,
       count(k.id) FILTER (WHERE k.is_active AND k.is_healthy)        AS keys_healthy,
       COALESCE(sum(k.usage_count), 0)::bigint                        AS usage_count,
       COALESCE(sum(k.tokens_used), 0)::bigint                        AS tokens_used,
       max(k.last_used_at)                                            AS last_used_at,
       min(k.expires_at) FILTER (WHERE k.is_active)                   AS nearest_expiry,
       count(k.id) FILTER (WHERE k.is_active AND c.until_ms IS NOT NULL) AS keys_cooling_down,
       to_timestamp(min(c.until_ms) FILTER (WHERE k.is_active) / 1000.0) AS cooldown_ends_at
  FROM unnest(enum_range(NULL::celaest.ai_provider)) AS pr (provider)
  LEFT JOIN celaest.ai_api_pool AS k ON k.provider = pr.provider
  LEFT JOIN (SELECT e.key::uuid AS key_id, e.value::bigint AS until_ms
               FROM jsonb_each_text(celaest._api_key_cooldowns()) AS e) AS c ON c.key_id = k.id
 GROUP BY pr.provider;

COMMENT ON VIEW celaest.v_api_pool_status IS
    'API-key pool status per provider (every provider, with or without keys): key counts, usage, tokens, last use, nearest expiry and the keys cooling down after a 429. Never shows a secret.';
COMMENT ON COLUMN celaest.v_api_pool_status.provider IS 'AI provider.';
COMMENT ON COLUMN celaest.v_api_pool_status.keys_total IS 'Keys in the pool.';
COMMENT ON COLUMN celaest.v_api_pool_status.keys_active IS 'Active keys.';
COMMENT ON COLUMN celaest.v_api_pool_status.keys_healthy IS 'Active keys that are healthy.';
COMMENT ON COLUMN celaest.v_api_pool_status.usage_count IS 'Total uses of all the provider''s keys.';
COMMENT ON COLUMN celaest.v_api_pool_status.tokens_used IS 'Total tokens of all the provider''s keys.';
COMMENT ON COLUMN celaest.v_api_pool_status.last_used_at IS 'Last use of any of the provider''s keys.';
COMMENT ON COLUMN celaest.v_api_pool_status.nearest_expiry IS 'Earliest expires_at among the active keys (NULL when none expires).';
COMMENT ON COLUMN celaest.v_api_pool_status.keys_cooling_down IS 'Active keys cooling down now after a 429 with Retry-After (not selectable until it ends).';
COMMENT ON COLUMN celaest.v_api_pool_status.cooldown_ends_at IS 'When the first of those cool-downs ends (NULL when no key is cooling down).';


CREATE OR REPLACE VIEW celaest.v_daily_task_metrics
WITH (security_invoker = true)
AS
SELECT t.organization_id,
       -- The organization's calendar day, as roi_metrics counts it (settings->>'timezone',
       -- else UTC).
       (t.created_at AT TIME ZONE celaest._roi_timezone(o.settings))::date AS day,
       count(*)                                                        AS tasks_total,
       count(*) FILTER (WHERE t.status = 'completed')                  AS tasks_completed,
       count(*) FILTER (WHERE t.status = 'failed')                     AS tasks_failed,
       count(*) FILTER (WHERE t.status = 'cancelled')                  AS tasks_cancelled,
       count(*) FILTER (WHERE t.status = 'pending')                    AS tasks_pending,
       count(*) FILTER (WHERE t.status = 'processing')                 AS tasks_processing,
       count(*) FILTER (WHERE t.status = 'retrying')                   AS tasks_retrying,
       sum(t.tokens_input)                                             AS tokens_input,
       sum(t.tokens_output)                                            AS tokens_output,
       sum(t.tokens_total)                                             AS tokens_total,
       sum(t.cost_usd)                                                 AS cost_usd,
       round(avg(t.execution_time_ms), 2)                              AS avg_execution_time_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY t.execution_time_ms)::numeric, 2)
                                                                       AS p95_execution_time_ms
  FROM celaest.processed_tasks AS t
  LEFT JOIN celaest.organizations AS o ON o.id = t.organization_id
 GROUP BY t.organization_id, 2;

COMMENT ON VIEW celaest.v_daily_task_metrics IS
    'Task metrics per organization and day (the date of created_at in the organization''s settings->>''timezone'', else UTC, as roi_metrics counts days): tasks by status, tokens, cost, average and 95th-percentile execution time.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.organization_id IS 'Organization.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.day IS 'Day: the date of the tasks'' created_at in the organization''s time zone (settings->>''timezone'', else UTC).';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_total IS 'Tasks created that day.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_completed IS 'Of which completed.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_failed IS 'Of which failed.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_cancelled IS 'Of which cancelled.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_pending IS 'Of which still pending.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_processing IS 'Of which processing.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_retrying IS 'Of which retrying.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tokens_input IS 'Input tokens.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tokens_output IS 'Output tokens.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tokens_total IS 'Total tokens.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.cost_usd IS 'Cost in USD.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.avg_execution_time_ms IS 'Average execution time, in milliseconds (tasks with a recorded time).';
COMMENT ON COLUMN celaest.v_daily_task_metrics.p95_execution_time_ms IS '95th percentile of execution time, in milliseconds (continuous percentile).';


-- ===========================================================================
-- The ledger (issue 10)
-- ===========================================================================
-- Definitions copied from src/sql (24_licensing_quota.sql, 47_ledger.sql) as they are in 0.2.0;
-- _check_limit_general, _take_quota and _reserve_ai_request (above) add _ai_requests_pending.

-- The AI requests of a license that licenses.ai_requests_used does not hold yet: charged by
-- calls and not yet folded in by the ledger writer, or admitted and in flight (47_ledger.sql,
-- README "The ledger"). 0 in a database no ledger writer serves.
CREATE FUNCTION celaest._ai_requests_pending(p_license_id uuid) RETURNS bigint
    AS 'MODULE_PATHNAME', 'celaest_ai_requests_pending'
    LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION celaest._ai_requests_pending(uuid) IS
    'Internal (ledger): AI requests of the license charged in shared memory but not yet folded into ai_requests_used, plus those admitted and in flight; 0 when no ledger writer serves the database.';
-- Executable by PUBLIC (stable): check_limit and consume_quota (every role) reach it through
-- their general paths.

-- The ledger (API.md "The ledger", README "The ledger"): every paid AI call is charged and
-- recorded whatever its caller's transaction does, and no call locks a license or key row.
-- The calls charge shared memory; the ledger writer (one background worker per served
-- database) writes the records of transactions that did not commit (_ledger_drain), folds the
-- charges into licenses and ai_api_pool (_ledger_fold), and after a restart rebuilds the
-- counters from processed_tasks (_ledger_rebuild).

-- What the writer has folded into each counter, so that a rebuild after a crash adds exactly
-- what shared memory lost: per license, the AI requests of its current billing period; per
-- key, its requests and tokens; per prompt, run_prompt's calls, their time and successes.
-- Written only by the writer, in the fold's own transaction.
CREATE TABLE celaest._ledger_folds (
    subject      uuid        PRIMARY KEY,   -- a licenses.id, an ai_api_pool.id or a prompts_master.id
    period_start timestamptz,               -- a license's billing period the requests belong to
    requests     bigint      NOT NULL DEFAULT 0,
    tokens       bigint      NOT NULL DEFAULT 0,
    time_ms      bigint      NOT NULL DEFAULT 0,
    successes    bigint      NOT NULL DEFAULT 0
);
COMMENT ON TABLE celaest._ledger_folds IS
    'Internal (ledger): what the ledger writer folded into each license (AI requests of the period), key (requests, tokens) and prompt (calls, time, successes) from calls charged in shared memory; _ledger_rebuild compares it with processed_tasks after a restart.';
COMMENT ON COLUMN celaest._ledger_folds.subject IS 'The license (licenses.id), key (ai_api_pool.id) or prompt (prompts_master.id).';
COMMENT ON COLUMN celaest._ledger_folds.period_start IS 'A license''s billing period the folded requests belong to; NULL for a key or a prompt.';
COMMENT ON COLUMN celaest._ledger_folds.requests IS 'AI requests folded (a license: in that period; a key: ever; a prompt: its run_prompt calls, ever).';
COMMENT ON COLUMN celaest._ledger_folds.tokens IS 'Tokens folded into a key''s tokens_used (0 for a license or a prompt).';
COMMENT ON COLUMN celaest._ledger_folds.time_ms IS 'A prompt''s folded calls: their execution time in ms, summed (0 for a license or a key).';
COMMENT ON COLUMN celaest._ledger_folds.successes IS 'A prompt''s folded calls that completed (0 for a license or a key).';
-- Bookkeeping of the writer (superuser): no tenant reads it; a super admin may, for support.
ALTER TABLE celaest._ledger_folds ENABLE ROW LEVEL SECURITY;
CREATE POLICY ledger_folds_super_admin ON celaest._ledger_folds FOR SELECT
    USING (celaest._current_user_is_super_admin());

CREATE FUNCTION celaest._ledger_fold() RETURNS bigint
    AS 'MODULE_PATHNAME', 'celaest_ledger_fold'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest._ledger_fold() IS
    'Internal (ledger writer): folds the AI calls'' charges kept in shared memory into licenses.ai_requests_used and ai_api_pool (usage, tokens, last use, health) in the current transaction, skipping rows another transaction has locked; returns the rows folded. The shared counters drop what was folded when the transaction commits.';

CREATE FUNCTION celaest._ledger_drain() RETURNS bigint
    AS 'MODULE_PATHNAME', 'celaest_ledger_drain'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest._ledger_drain() IS
    'Internal (ledger writer): writes the task records of AI calls whose transaction did not commit (the spool in the data directory), each once; returns how many.';

CREATE FUNCTION celaest._ledger_state() RETURNS jsonb
    AS 'MODULE_PATHNAME', 'celaest_ledger_state'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION celaest._ledger_state() IS
    'Internal (ledger): what is pending in this database — charges not yet folded, requests in flight, open consume_quota grants, health events, records in the spool — and whether a ledger writer serves it.';

-- After a restart (shared memory reset): the counters again equal the ledger. For each
-- license, the AI requests of its current period charged through the ledger (tasks marked
-- metadata.ledger = 'shared') minus what the writer had folded for that period is added; for
-- each key, the requests and tokens of every attempt sent with it (tasks marked 'shared' or
-- 'keys'). What was charged otherwise (consume_quota, batch reservations, an unserved
-- database's calls) is in neither figure and stays as it is.
CREATE OR REPLACE FUNCTION celaest._ledger_rebuild() RETURNS bigint
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_licenses bigint;
    v_keys     bigint;
    v_prompts  bigint;
BEGIN
    WITH truth AS (
             SELECT t.license_id AS id, count(*) AS n
               FROM celaest.processed_tasks AS t
               JOIN celaest.licenses AS l ON l.id = t.license_id
              WHERE t.batch_id IS NULL AND t.metadata->>'ledger' = 'shared'
                AND t.created_at >= COALESCE(l.current_period_start, '-infinity')
              GROUP BY t.license_id),
         target AS (
             SELECT l.id, l.current_period_start AS period_start, COALESCE(tr.n, 0) AS truth,
                    CASE WHEN f.period_start IS NOT DISTINCT FROM l.current_period_start
                         THEN COALESCE(f.requests, 0) ELSE 0 END AS folded
               FROM celaest.licenses AS l
               LEFT JOIN truth AS tr ON tr.id = l.id
               LEFT JOIN celaest._ledger_folds AS f ON f.subject = l.id
              WHERE tr.id IS NOT NULL OR f.subject IS NOT NULL),
         fixed AS (
             UPDATE celaest.licenses AS l
                SET ai_requests_used = GREATEST(l.ai_requests_used + g.truth - g.folded, 0)
               FROM target AS g
              WHERE l.id = g.id AND g.truth <> g.folded
             RETURNING l.id),
         noted AS (
             INSERT INTO celaest._ledger_folds AS f (subject, period_start, requests, tokens)
             SELECT id, period_start, truth, 0 FROM target
             ON CONFLICT (subject) DO UPDATE SET period_start = EXCLUDED.period_start,
                                                 requests = EXCLUDED.requests)
    SELECT count(*) INTO v_licenses FROM fixed;

    WITH truth AS (
             SELECT (a->>'api_key_id')::uuid AS id, count(*) AS n,
                    sum(COALESCE((a->>'tokens')::bigint, 0)) AS tokens
               FROM celaest.processed_tasks AS t,
                    -- attempts recorded with an answer, and requests a crash interrupted on the wire
                    jsonb_array_elements(CASE WHEN jsonb_typeof(t.metadata->'attempts') = 'array'
                                              THEN t.metadata->'attempts' ELSE '[]' END
                                         || CASE WHEN jsonb_typeof(t.metadata->'interrupted_attempts') = 'array'
                                                 THEN t.metadata->'interrupted_attempts' ELSE '[]' END) AS a
              WHERE t.metadata->>'ledger' IN ('shared', 'keys')
                AND a->>'api_key_id' IS NOT NULL AND a->>'outcome' IS DISTINCT FROM 'blocked_destination'
                AND a->>'sent' IS DISTINCT FROM 'false'   -- nothing went out: not charged
              GROUP BY 1),
         target AS (
             SELECT k.id, COALESCE(tr.n, 0) AS n, COALESCE(tr.tokens, 0) AS tokens,
                    COALESCE(f.requests, 0) AS folded_n, COALESCE(f.tokens, 0) AS folded_tokens
               FROM celaest.ai_api_pool AS k
               LEFT JOIN truth AS tr ON tr.id = k.id
               LEFT JOIN celaest._ledger_folds AS f ON f.subject = k.id
              WHERE tr.id IS NOT NULL OR f.subject IS NOT NULL),
         fixed AS (
             UPDATE celaest.ai_api_pool AS k
                SET usage_count = GREATEST(k.usage_count + g.n - g.folded_n, 0),
                    tokens_used = GREATEST(k.tokens_used + g.tokens - g.folded_tokens, 0)
               FROM target AS g
              WHERE k.id = g.id AND (g.n <> g.folded_n OR g.tokens <> g.folded_tokens)
             RETURNING k.id),
         noted AS (
             INSERT INTO celaest._ledger_folds AS f (subject, period_start, requests, tokens)
             SELECT id, NULL, n, tokens FROM target
             ON CONFLICT (subject) DO UPDATE SET requests = EXCLUDED.requests, tokens = EXCLUDED.tokens)
    SELECT count(*) INTO v_keys FROM fixed;

    -- run_prompt's statistics (usage_count and the running average time and success rate): the
    -- calls marked metadata.prompt_stats = 'shared' that the writer had not folded yet are
    -- added as one fold of them would add them.
    WITH truth AS (
             SELECT t.prompt_id AS id, count(*) AS n, sum(COALESCE(t.execution_time_ms, 0)) AS ms,
                    count(*) FILTER (WHERE t.status = 'completed') AS ok
               FROM celaest.processed_tasks AS t
              WHERE t.metadata->>'prompt_stats' = 'shared' AND t.prompt_id IS NOT NULL
              GROUP BY t.prompt_id),
         target AS (
             SELECT p.id, COALESCE(tr.n, 0) AS n, COALESCE(tr.ms, 0) AS ms, COALESCE(tr.ok, 0) AS ok,
                    COALESCE(f.requests, 0) AS folded_n, COALESCE(f.time_ms, 0) AS folded_ms,
                    COALESCE(f.successes, 0) AS folded_ok
               FROM celaest.prompts_master AS p
               LEFT JOIN truth AS tr ON tr.id = p.id
               LEFT JOIN celaest._ledger_folds AS f ON f.subject = p.id
              WHERE tr.id IS NOT NULL OR f.subject IS NOT NULL),
         fixed AS (
             UPDATE celaest.prompts_master AS p
                SET usage_count = p.usage_count + (g.n - g.folded_n),
                    avg_response_time_ms = ((COALESCE(p.avg_response_time_ms, 0)::numeric * p.usage_count
                                             + GREATEST(g.ms - g.folded_ms, 0)) / (p.usage_count + (g.n - g.folded_n)))::int,
                    success_rate = round((COALESCE(p.success_rate, 0) * p.usage_count
                                          + GREATEST(g.ok - g.folded_ok, 0) * 100) / (p.usage_count + (g.n - g.folded_n)), 2)
               FROM target AS g
              WHERE p.id = g.id AND g.n > g.folded_n
             RETURNING p.id),
         noted AS (
             INSERT INTO celaest._ledger_folds AS f (subject, period_start, requests, tokens, time_ms, successes)
             SELECT id, NULL, n, 0, ms, ok FROM target
             ON CONFLICT (subject) DO UPDATE SET requests = EXCLUDED.requests, time_ms = EXCLUDED.time_ms,
                                                 successes = EXCLUDED.successes)
    SELECT count(*) INTO v_prompts FROM fixed;
    RETURN v_licenses + v_keys + v_prompts;
END;
$$;
COMMENT ON FUNCTION celaest._ledger_rebuild() IS
    'Internal (ledger writer, at its start after a restart): brings licenses.ai_requests_used (current period), ai_api_pool usage_count/tokens_used and prompts_master''s statistics back to what processed_tasks records for the calls charged through the ledger, adding what shared memory lost; returns the rows corrected.';


-- Requests of batch tasks on the wire (README "Exactly once after a crash"): the batch runner
-- notes each request's key here in the transaction that picks it, before the request leaves. A
-- note matters only if its runner dies with the request out: the orphan recovery then counts the
-- request in the key's usage. That recovery pass (once a second) also clears the notes of tasks
-- that have ended. Narrow and without indexes: one multi-row INSERT per runner transaction, and
-- it holds about as many rows as there are requests in flight.
CREATE TABLE celaest._batch_on_wire (
    task_id    uuid        NOT NULL,
    api_key_id uuid        NOT NULL,
    model      text        NOT NULL,
    noted_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE celaest._batch_on_wire IS
    'Internal (batch runner): a request of a batch task about to leave with a key; read by the orphan recovery after a crash, cleared once its task has ended.';
COMMENT ON COLUMN celaest._batch_on_wire.task_id IS 'The batch task (processed_tasks.id).';
COMMENT ON COLUMN celaest._batch_on_wire.api_key_id IS 'The key the request carries (ai_api_pool.id).';
COMMENT ON COLUMN celaest._batch_on_wire.model IS 'The provider''s model name of the request.';
COMMENT ON COLUMN celaest._batch_on_wire.noted_at IS 'When the runner picked the request.';
-- Bookkeeping of the runner (superuser): no tenant reads it; a super admin may, for support.
ALTER TABLE celaest._batch_on_wire ENABLE ROW LEVEL SECURITY;
CREATE POLICY batch_on_wire_super_admin ON celaest._batch_on_wire FOR SELECT
    USING (celaest._current_user_is_super_admin());

-- ---------------------------------------------------------------------------
-- wait_batch sleeps until a batch ends (issue 12 §5): native, on a condition variable that the
-- transaction ending a batch broadcasts when it commits.
-- ---------------------------------------------------------------------------
-- max_concurrent_tasks counts the synchronous calls in flight (run_prompt, ai_chat)
-- ---------------------------------------------------------------------------
-- _license_terms carries the effective max_concurrent_tasks; _check_limit_general and
-- _reserve_counted (above) add _sync_calls_in_flight to the rows processing.
CREATE FUNCTION celaest._sync_calls_in_flight(p_org_id uuid) RETURNS bigint
    AS 'MODULE_PATHNAME', 'celaest_sync_calls_in_flight'
    LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION celaest._sync_calls_in_flight(uuid) IS
    'Internal (licensing): the organization''s synchronous AI calls (run_prompt, ai_chat) in flight in this database, counted in shared memory from admission until the provider call ends; added to the processed_tasks rows processing or retrying wherever max_concurrent_tasks is counted.';
-- _reserve_ai_request (above) writes no license_usage_log row per call any more.
COMMENT ON FUNCTION celaest._reserve_ai_request(uuid, uuid, uuid) IS
    'For the AI-call glue: charges one AI request to the organization''s license in the current billing period (atomic, exact under concurrency; no license_usage_log row: the period''s close sums the counter; p_user_id and p_task_id are not used any more) and returns the license id. Raises LC001/LC002/LC003/LC004 for the license, LC010 when the period''s quota is used up; a refusal charges nothing and a rollback undoes the charge. Holds the license row lock until the transaction ends.';
COMMENT ON FUNCTION celaest._license_terms(uuid) IS
    'Internal: ''<license id> <effective max_ai_requests_per_month> <status> <effective max_concurrent_tasks>'' of the organization''s license in force ('''' when none), for the shared cache of the native check_limit, consume_quota and AI calls. Owner''s rights, fixed search_path; not granted.';
COMMENT ON FUNCTION celaest._reserve_counted(uuid, text, bigint, boolean, uuid) IS
    'Admission check for a counted limit (max_users: live users; max_concurrent_tasks: tasks processing or retrying plus synchronous calls in flight; max_batch_size: p_amount itself) against the license in force: returns the room left after p_amount (-1 unlimited) or raises LC010 (DETAIL limit/used/requested). p_strict: refuse an unusable license (LC001-LC004); otherwise no license in force means no check. Serialised per organization and limit by an advisory lock held to the end of the transaction; 0A000 under REPEATABLE READ. p_exclude_id leaves the row being admitted out of the count.';

-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION celaest.wait_batch(p_batch_id uuid, p_timeout interval DEFAULT '5 minutes') RETURNS jsonb
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'celaest_wait_batch';
COMMENT ON FUNCTION celaest.wait_batch(uuid, interval) IS
    'Blocks (cancellable) until the batch ends or the timeout passes; returns batch_status(). Sleeps until a transaction ending a batch commits (a condition variable; without shared_preload_libraries, a poll).';

CREATE FUNCTION celaest._announce_batch_end() RETURNS trigger
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'celaest_announce_batch_end';
COMMENT ON FUNCTION celaest._announce_batch_end() IS
    'Trigger: wakes wait_batch() callers when the transaction that ended a batch commits.';
CREATE TRIGGER task_batches_announce_end
    AFTER UPDATE OF status ON celaest.task_batches
    FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION celaest._announce_batch_end();

-- ===========================================================================
-- Batch reservations and set-based claims (issue 12 §3)
-- ===========================================================================
-- submit_batch reserves one AI request per input at once (consume_quota, published to the
-- ledger while open); the claim charges nothing and counts max_concurrent_tasks once per
-- organization; tasks that never reached a provider give their units back.
-- A batch task's AI request was reserved by submit_batch; one that never reached a provider
-- (cancelled while queued, failed before its call, no usable key) gives it back, here, in the
-- transaction that ends the task: the task's end and the return commit together, so each
-- unit goes back exactly once. One element per unit (a license id may repeat); one UPDATE
-- and one license_usage_log row (metadata.event = batch_release) per license.
CREATE FUNCTION celaest._return_batch_reservations(p_license_ids uuid[]) RETURNS bigint
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH units AS (
        SELECT u.license_id, count(*) AS n
          FROM unnest(p_license_ids) AS u(license_id)
         WHERE u.license_id IS NOT NULL
         GROUP BY u.license_id),
    returned AS (
        UPDATE celaest.licenses AS l
           SET ai_requests_used = greatest(l.ai_requests_used - u.n, 0)
          FROM units u WHERE l.id = u.license_id
        RETURNING l.id, l.organization_id, u.n, l.current_period_start, l.current_period_end),
    logged AS (
        INSERT INTO celaest.license_usage_log
            (id, license_id, organization_id, metric, quantity, period_start, period_end, metadata)
        SELECT gen_random_uuid(), r.id, r.organization_id, 'ai_requests', r.n, r.current_period_start,
               r.current_period_end, '{"event": "batch_release"}'
          FROM returned r
        RETURNING quantity)
    SELECT coalesce(sum(quantity), 0)::bigint FROM logged;
$$;
COMMENT ON FUNCTION celaest._return_batch_reservations(uuid[]) IS
    'Internal (batch runner, cancel_batch): gives back the AI requests submit_batch reserved for batch tasks that never reached a provider, one unit per array element (a license id may repeat), with one license_usage_log row (event batch_release) per license; returns the units given back.';
REVOKE EXECUTE ON FUNCTION celaest._return_batch_reservations(uuid[]) FROM PUBLIC;

COMMENT ON FUNCTION celaest._claim_batch_tasks(integer) IS
    'Internal (batch runner): claims up to p_limit pending tasks for this backend, a batch''s tasks in one UPDATE; charges nothing (submit_batch reserved their AI requests). Tasks of organizations at max_concurrent_tasks stay queued and are passed over; those of an organization whose license is unusable fail and give their reservations back.';

-- The claim counts max_concurrent_tasks itself and says so (celaest.batch_claim).
DROP TRIGGER processed_tasks_enforce_max_concurrent_tasks ON celaest.processed_tasks;
CREATE TRIGGER processed_tasks_enforce_max_concurrent_tasks
    BEFORE INSERT OR UPDATE OF status, organization_id ON celaest.processed_tasks
    FOR EACH ROW
    WHEN (NEW.status IN ('processing', 'retrying')
          AND pg_catalog.current_setting('celaest.batch_claim', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION celaest._enforce_max_concurrent_tasks();

-- Tasks queued by 0.1.0 were to be charged by their claim, which charges nothing now: their
-- requests are reserved here, as submit_batch reserves them now.
UPDATE celaest.licenses AS l
   SET ai_requests_used = l.ai_requests_used + q.n
  FROM (SELECT t.license_id, count(*) AS n FROM celaest.processed_tasks t
         WHERE t.status = 'pending' AND t.batch_id IS NOT NULL AND t.license_id IS NOT NULL
         GROUP BY t.license_id) AS q
 WHERE l.id = q.license_id;

-- ===========================================================================
-- Platform objects for super_admins, the acting user of is_feature_enabled (issue 11 audit)
-- ===========================================================================
-- increment_api_key_usage checks its caller itself (service or super_admin) and runs as the
-- owner; the key pool's functions become executable by the authenticated level (for its
-- super_admins; _apply_access_privileges below grants them); is_feature_enabled refuses a
-- p_user_id other than the caller's own below service (its body is replaced above).
CREATE OR REPLACE FUNCTION celaest.increment_api_key_usage(p_key_id uuid, p_tokens integer)
RETURNS void
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT celaest._manages_platform() THEN
        RAISE EXCEPTION 'permission denied for function increment_api_key_usage'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only service callers and super_admins change the API-key pool.';
    END IF;
    IF p_key_id IS NULL THEN
        RAISE EXCEPTION 'celaest.increment_api_key_usage: p_key_id must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_tokens IS NULL OR p_tokens < 0 THEN
        RAISE EXCEPTION 'celaest.increment_api_key_usage: invalid token count %', COALESCE(p_tokens::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'p_tokens is the number of tokens the call used: zero or more.';
    END IF;

    UPDATE celaest.ai_api_pool
       SET usage_count  = usage_count + 1,
           tokens_used  = tokens_used + p_tokens,
           last_used_at = now()
     WHERE id = p_key_id;

    IF NOT FOUND THEN
        RAISE EXCEPTION 'API key % does not exist', p_key_id
            USING ERRCODE = 'no_data_found',
                  DETAIL = 'There is no row in celaest.ai_api_pool with this id.';
    END IF;
END;
$$;
COMMENT ON FUNCTION celaest.increment_api_key_usage(uuid, integer) IS
    'Atomically records one use of an API key: usage_count + 1, tokens_used + p_tokens, last_used_at = now(). Service callers and super_admins only (42501 for anyone else, before anything is checked). Raises 22023 for NULL or negative tokens, P0002 for an unknown key.';
COMMENT ON FUNCTION celaest.is_feature_enabled(text, uuid, uuid) IS
    'Whether a feature flag is on for a user (NULL: the acting user; only a service caller may name another user, 42501 otherwise) and organization (NULL: that user''s). Unknown or disabled flag: false. target_type all: true; users: the user is in target_users; orgs: the organization is in target_organizations; percentage: Unleash''s gradual rollout, the bucket murmur3_x86_32(flag_key || '':'' || user id (else organization id), seed 0) % 100 + 1 is at most target_percentage (false with neither user nor organization). Never NULL.';

-- ===========================================================================
-- The license key's lookup hash follows the key (audit s8)
-- ===========================================================================
-- validate_license finds a license by license_key_hash, which only issue_license filled: a
-- license inserted directly, or whose key was changed, was NOT_FOUND. A trigger now sets the
-- hash on every INSERT and UPDATE OF license_key (src/sql/23_licensing_reads.sql).
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

-- Rows written without it (a NULL hash) or whose key changed since (a stale one).
UPDATE celaest.licenses AS l
   SET license_key_hash = encode(sha256(convert_to(lower(btrim(l.license_key, E' \t\r\n')), 'UTF8')), 'hex')
 WHERE l.license_key_hash IS DISTINCT FROM
       encode(sha256(convert_to(lower(btrim(l.license_key, E' \t\r\n')), 'UTF8')), 'hex');

-- ===========================================================================
-- Licensing administration is for service callers acting for no user and super_admins (audit s8)
-- ===========================================================================
-- Licensing administration (issuing licenses, changing their status) is for trusted backends
-- and super_admins (API.md): callers who write every organization's licenses, i.e. a service
-- caller acting for no user, or a super_admin. A service caller acting for anyone else acts
-- with that user's rights, under which row-level security lets it write no license (and no
-- function acts on B's rows for A's user); before, set_license_status then answered 22023
-- "does not exist" for a license the caller reads. Roles row-level security does not apply to
-- (superusers, the owner, BYPASSRLS roles: a DBA acting as a user) write licenses directly
-- anyway and are not refused. Asked first, so the refusal tells nothing about the license.
CREATE FUNCTION celaest._assert_licensing_admin(p_function text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF row_security_active('celaest.licenses') AND NOT celaest._writes_every_org() THEN
        RAISE EXCEPTION 'permission denied for function %: licensing administration is for service callers acting for no user and for super_admins', p_function
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A trusted backend administers licenses acting for no user (RESET celaest.user_id).';
    END IF;
END;
$$;
COMMENT ON FUNCTION celaest._assert_licensing_admin(text) IS
    'Internal (licensing): raises 42501 naming p_function when row-level security applies to the caller and it does not write every organization (i.e. it is neither a service caller acting for no user nor a super_admin), as issue_license and set_license_status require.';

-- ===========================================================================
-- Identity and tenant isolation (issue 11)
-- ===========================================================================
-- Access levels (group roles celaest_service/_authenticated/_readonly, grant_access),
-- the acting user by level, the rights of each user role, row-level security on every
-- table, and every privilege reset (_apply_access_privileges: keep it the LAST statement
-- of this script, so that it covers every function the script creates).

CREATE OR REPLACE FUNCTION celaest._calling_role()
RETURNS oid
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- to_regrole: a catalog cache lookup (the pg_roles view costs a join per call, and row-level
    -- security asks this once per statement).
    RETURN pg_catalog.to_regrole(quote_ident(CASE WHEN current_setting('role') = 'none' THEN session_user::text
                                                  ELSE current_setting('role') END))::oid;
END;
$$;
COMMENT ON FUNCTION celaest._calling_role() IS
    'Internal (identity): the role that called: the role of SET ROLE, else the session user; a SECURITY DEFINER function''s owner never counts.';

CREATE OR REPLACE FUNCTION celaest._level_of(p_role oid)
RETURNS text
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT CASE
               WHEN p_role IS NULL THEN NULL
               WHEN r.rolsuper THEN 'service'
               -- The owner, and roles holding the owner's privileges.
               WHEN pg_has_role(r.oid, (SELECT e.extowner FROM pg_catalog.pg_extension AS e
                                         WHERE e.extname = 'celaest'), 'USAGE') THEN 'service'
               -- A member of a level's group: directly (a NOINHERIT role such as Supabase's,
               -- which grant_access also gives the privileges themselves), or inheriting it.
               WHEN 'celaest_service' = ANY (m.direct) OR pg_has_role(r.oid, 'celaest_service', 'USAGE')
                   THEN 'service'
               WHEN 'celaest_authenticated' = ANY (m.direct) OR pg_has_role(r.oid, 'celaest_authenticated', 'USAGE')
                   THEN 'authenticated'
               WHEN 'celaest_readonly' = ANY (m.direct) OR pg_has_role(r.oid, 'celaest_readonly', 'USAGE')
                   THEN 'readonly'
           END
      FROM pg_catalog.pg_roles AS r
      CROSS JOIN LATERAL (SELECT array_agg(g.rolname::text) AS direct
                            FROM pg_catalog.pg_auth_members AS am
                            JOIN pg_catalog.pg_roles AS g ON g.oid = am.roleid
                           WHERE am.member = r.oid) AS m
     WHERE r.oid = p_role);
END;
$$;
COMMENT ON FUNCTION celaest._level_of(oid) IS
    'Internal (identity): the CELAEST access level of a role: service (superusers, the extension owner and roles using its privileges, members of celaest_service), authenticated, readonly, or NULL (none).';

CREATE OR REPLACE FUNCTION celaest._caller_level()
RETURNS text
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_caller_level';
COMMENT ON FUNCTION celaest._caller_level() IS
    'Internal (identity): the access level of the calling role (service, authenticated, readonly or NULL).';

CREATE FUNCTION celaest._auth_uid()
RETURNS uuid
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid;
BEGIN
    -- A direct call, not EXECUTE: PL/pgSQL resolves it when first run (never if auth.uid() is
    -- missing) and keeps its plan, where EXECUTE would parse and plan on every call.
    IF to_regprocedure('auth.uid()') IS NOT NULL THEN
        v_user := auth.uid();
    END IF;
    RETURN v_user;
END;
$$;
COMMENT ON FUNCTION celaest._auth_uid() IS
    'Internal (identity): Supabase auth.uid() (the JWT subject) when that function exists, else NULL.';

CREATE OR REPLACE FUNCTION celaest._current_user_id_or_null()
RETURNS uuid
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_current_user_id_or_null';
COMMENT ON FUNCTION celaest._current_user_id_or_null() IS
    'The acting CELAEST user, or NULL. A service caller (superuser, extension owner, grant_access(..., ''service'')): the setting celaest.user_id, else Supabase auth.uid(). Any other caller: auth.uid() alone; a celaest.user_id that differs from it raises 42501. Raises 22P02 when celaest.user_id is set but not a uuid. Used by row-level security and automatic auditing.';

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
COMMENT ON FUNCTION celaest.current_user_id() IS
    'The acting CELAEST user: the setting celaest.user_id, else Supabase auth.uid(). Raises 42501 when neither gives a user, 22P02 when celaest.user_id is not a uuid.';

CREATE OR REPLACE FUNCTION celaest._current_org_id_or_null()
RETURNS uuid
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_current_org_id_or_null';
COMMENT ON FUNCTION celaest._current_org_id_or_null() IS
    'Organization of the acting user (users_profile.organization_id), or NULL when there is no user, no live profile or no live (not soft-deleted) organization. Used by row-level security.';

CREATE OR REPLACE FUNCTION celaest.current_org_id()
RETURNS uuid
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := celaest.current_user_id();
    v_org  uuid;
BEGIN
    SELECT u.organization_id INTO v_org
      FROM celaest.users_profile AS u
     WHERE u.id = v_user
       AND u.deleted_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'CELAEST user % has no profile', v_user
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'There is no live row in celaest.users_profile with this id (missing or soft-deleted).',
                  HINT = 'Create the user''s celaest.users_profile row, or act as another user.';
    END IF;
    -- A soft-deleted organization acts for nobody.
    IF v_org IS NOT NULL AND NOT EXISTS (SELECT 1 FROM celaest.organizations AS o
                                          WHERE o.id = v_org AND o.deleted_at IS NULL) THEN
        RAISE EXCEPTION 'the organization of CELAEST user % is deleted', v_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN v_org;
END;
$$;
COMMENT ON FUNCTION celaest.current_org_id() IS
    'Organization of the acting user (users_profile.organization_id; NULL if the user belongs to none). Raises 42501 when there is no user or the user has no live profile.';

CREATE OR REPLACE FUNCTION celaest._current_user_is_super_admin()
RETURNS boolean
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_current_user_is_super_admin';
COMMENT ON FUNCTION celaest._current_user_is_super_admin() IS
    'True when the acting user has a live profile with role super_admin (global administrator: row-level security lets them see every organization).';

DO $$
DECLARE
    v_group text;
BEGIN
    FOREACH v_group IN ARRAY ARRAY['celaest_service', 'celaest_authenticated', 'celaest_readonly'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = v_group) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', v_group);
            EXECUTE format('COMMENT ON ROLE %I IS %L', v_group,
                           'CELAEST access level ' || substr(v_group, 9)
                           || ' (celaest.grant_access); shared by every database of the cluster.');
        END IF;
    END LOOP;
END;
$$;

-- ---------------------------------------------------------------------------
-- Rights of a user role
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION celaest._role_allows(p_role celaest.user_role, p_scopes jsonb, p_right text)
RETURNS boolean
LANGUAGE C
IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_role_allows';
COMMENT ON FUNCTION celaest._role_allows(celaest.user_role, jsonb, text) IS
    'Internal (access): whether a user role, with its scopes, has a right (ai:run, batches:manage, users:manage, org:settings, platform:manage). Scopes add any right but platform:manage.';

-- Owner's rights: the acting user's own profile, whatever row-level security shows.
CREATE OR REPLACE FUNCTION celaest._acting_user_may(p_right text)
RETURNS boolean
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_acting_user_may';
COMMENT ON FUNCTION celaest._acting_user_may(text) IS
    'Internal (access): whether the acting CELAEST user (live profile, live organization) has a right.';

-- Rows of every organization: readonly, a service caller acting for nobody, a super_admin.
CREATE OR REPLACE FUNCTION celaest._sees_every_org()
RETURNS boolean
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_sees_every_org';
COMMENT ON FUNCTION celaest._sees_every_org() IS
    'Internal (access, row-level security): true for readonly callers, service callers acting for no user, and super_admins.';

CREATE OR REPLACE FUNCTION celaest._writes_every_org()
RETURNS boolean
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_writes_every_org';
COMMENT ON FUNCTION celaest._writes_every_org() IS
    'Internal (access, row-level security): true for service callers acting for no user and for super_admins.';

-- Platform objects (plans, models, key pool, prompts, flags, system config).
CREATE OR REPLACE FUNCTION celaest._manages_platform()
RETURNS boolean
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_manages_platform';
COMMENT ON FUNCTION celaest._manages_platform() IS
    'Internal (access, row-level security): true for service callers and super_admins, who alone change plans, models, the key pool, prompts, flags and system config.';

-- ---------------------------------------------------------------------------
-- The acting user of a function that acts for a person
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION celaest._acting_user_id(p_user_id uuid, p_function text)
RETURNS uuid
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_level text := celaest._caller_level();
    v_user  uuid;
BEGIN
    IF v_level IS NULL THEN
        RAISE EXCEPTION 'permission denied for function %', p_function
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The calling role has no CELAEST access level.',
                  HINT = 'A superuser grants one with celaest.grant_access(role, level).';
    END IF;
    -- Below service the acting user is auth.uid() itself (or the statement's identity
    -- raises 42501 for a differing celaest.user_id): compared through the native, per-
    -- statement identity rather than calling auth.uid() again (is_feature_enabled runs
    -- this for every call that names a user).
    IF v_level <> 'service' AND p_user_id IS NOT NULL
       AND p_user_id IS DISTINCT FROM celaest._current_user_id_or_null() THEN
        RAISE EXCEPTION 'permission denied for function %: only a service caller may name the acting user', p_function
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Omit p_user_id: this role acts as auth.uid().';
    END IF;
    v_user := coalesce(CASE WHEN v_level = 'service' THEN p_user_id END, celaest._current_user_id_or_null());
    IF v_user IS NULL THEN
        RAISE EXCEPTION 'permission denied for function %: no CELAEST user', p_function
            USING ERRCODE = 'insufficient_privilege',
                  HINT = CASE WHEN v_level = 'service'
                              THEN 'Pass p_user_id, or SET LOCAL celaest.user_id = ''<users_profile.id>''.'
                              ELSE 'Call with an authenticated session (auth.uid()).' END;
    END IF;
    RETURN v_user;
END;
$$;
COMMENT ON FUNCTION celaest._acting_user_id(uuid, text) IS
    'Internal (access): the user a function acts for. Service callers: p_user_id, else celaest.user_id, else auth.uid(). Others: auth.uid() alone (a differing p_user_id or celaest.user_id is 42501). 42501 naming p_function when there is no level or no user.';

-- The user and organization an AI call or a batch runs for, with the right to run it.
-- Owner's rights: the profile and organization are read whatever row-level security shows.
-- Native (src/pg/identity/caller.cpp): the same code ai_chat, run_prompt and submit_batch run,
-- so the rules have one copy. Service callers: p_user_id, else celaest.user_id, else
-- auth.uid(); others: auth.uid() alone (a differing p_user_id is 42501); then a live profile
-- in a live organization whose role (or scope) has ai:run.
CREATE FUNCTION celaest._ai_caller(p_user_id uuid, p_function text,
                                   OUT user_id uuid, OUT organization_id uuid)
RETURNS record
LANGUAGE C
STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'celaest_ai_caller';
COMMENT ON FUNCTION celaest._ai_caller(uuid, text) IS
    'Internal (access): the acting user of an AI call or batch and their organization; 42501 naming the function for no level, impersonation, no live profile or organization, or a role without ai:run.';

-- Who may see or cancel a batch. Others get "does not exist": a batch id of another
-- organization reveals nothing.
CREATE FUNCTION celaest._batch_access(p_org_id uuid, p_owner uuid, p_action text)
RETURNS boolean
LANGUAGE sql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
               WHEN p_action = 'read' THEN
                   p_org_id = celaest._current_org_id_or_null() OR celaest._sees_every_org()
               ELSE
                   celaest._writes_every_org()
                   OR (p_org_id = celaest._current_org_id_or_null()
                       AND (celaest._acting_user_may('batches:manage')
                            OR (p_owner = celaest._current_user_id_or_null() AND celaest._acting_user_may('ai:run'))))
           END;
$$;
COMMENT ON FUNCTION celaest._batch_access(uuid, uuid, text) IS
    'Internal (access): whether the caller may read (its organization, readonly, service, super_admin) or cancel (its own batch with ai:run, its organization''s with batches:manage, service, super_admin) a batch.';

-- ---------------------------------------------------------------------------
-- users_profile: a manager or admin manages the users of its organization, but grants no
-- role above its own, never super_admin, and no scope it does not hold.
-- ---------------------------------------------------------------------------
CREATE FUNCTION celaest._role_rank(p_role celaest.user_role)
RETURNS integer
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE p_role WHEN 'viewer' THEN 0 WHEN 'operator' THEN 1 WHEN 'manager' THEN 2
                       WHEN 'admin' THEN 3 WHEN 'super_admin' THEN 4 END;
$$;
COMMENT ON FUNCTION celaest._role_rank(celaest.user_role) IS
    'Internal (access): viewer 0, operator 1, manager 2, admin 3, super_admin 4.';

CREATE FUNCTION celaest._guard_profile_change()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me record;
BEGIN
    -- Trusted backends and super_admins are not limited.
    IF celaest._caller_level() = 'service' OR celaest._current_user_is_super_admin() THEN
        RETURN NEW;
    END IF;
    SELECT u.role, u.scopes INTO v_me
      FROM celaest.users_profile AS u
     WHERE u.id = celaest._current_user_id_or_null() AND u.deleted_at IS NULL;
    IF NOT FOUND
       OR NEW.role = 'super_admin'
       OR celaest._role_rank(NEW.role) > celaest._role_rank(v_me.role)
       OR (TG_OP = 'UPDATE' AND celaest._role_rank(OLD.role) > celaest._role_rank(v_me.role))
       OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(NEW.scopes) AS s (scope)
                   WHERE NOT coalesce(v_me.scopes ? s.scope, false)
                     AND NOT celaest._role_allows(v_me.role, '[]', s.scope)
                     AND (TG_OP = 'INSERT' OR NOT coalesce(OLD.scopes ? s.scope, false))) THEN
        RAISE EXCEPTION 'permission denied to give user % this role or these scopes', NEW.id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A user manages only users of a role up to its own, never super_admin, with scopes it holds.';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION celaest._guard_profile_change() IS
    'Internal (access, trigger): refuses a profile change by a tenant that would grant a role above its own, super_admin, or a scope it does not hold, or touch a user of a higher role.';

CREATE TRIGGER users_profile_guard_role
    BEFORE INSERT OR UPDATE OF role, scopes ON celaest.users_profile
    FOR EACH ROW EXECUTE FUNCTION celaest._guard_profile_change();

-- ---------------------------------------------------------------------------
-- The privileges of each level
-- ---------------------------------------------------------------------------
-- Functions no level executes, only the owner and superusers: those that grant access.
-- (Tenant levels get no function that writes but the few _level_volatile_functions names;
-- service, a trusted backend, gets the rest, internal ones included, since the functions it
-- calls with its own rights call them: consume_quota, issue_license, aggregate_roi, ...)
CREATE FUNCTION celaest._owner_only_functions()
RETURNS text[]
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY['grant_access', 'revoke_access', 'access_levels', '_assert_access_admin',
                 '_apply_access_privileges', '_grant_level_privileges', '_revoke_level_privileges',
                 '_boundary_probe', '_boundary_destructor_count'];
$$;
COMMENT ON FUNCTION celaest._owner_only_functions() IS
    'Internal (access): names of the functions executable by no access level (only the owner and superusers): those that grant access, and the boundary probes. Trigger functions aside.';

-- Volatile functions (they write, spend or wait) each level may call; every stable or
-- immutable function not owner-only is callable by every level (they read under the
-- caller's row-level security, or only the caller's own identity).
CREATE OR REPLACE FUNCTION celaest._level_volatile_functions(p_level text)
RETURNS text[]
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE p_level
               WHEN 'authenticated' THEN
                   ARRAY['run_prompt', 'ai_chat', 'submit_batch', 'wait_batch', 'cancel_batch',
                         'track_event', 'config_set', '_config_set_as_super_admin', '_api_key_cooldowns',
                         'add_api_key', 'rotate_api_key', 'check_api_keys', 'increment_api_key_usage']
               -- _api_key_cooldowns only reads (shared memory): v_api_pool_status calls it.
               -- The key pool's functions are for super_admins: each refuses every other end
               -- user (42501) before it does anything (_manages_platform).
               WHEN 'readonly' THEN ARRAY['wait_batch', '_api_key_cooldowns']
           END;
$$;
COMMENT ON FUNCTION celaest._level_volatile_functions(text) IS
    'Internal (access): the volatile functions (writing, spending or waiting) an authenticated or readonly caller may execute; service may execute every function not owner-only.';

CREATE OR REPLACE FUNCTION celaest._grant_level_privileges(p_grantee name, p_level text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fn       record;
    v_pool_read text;
    v_tenant   text := 'celaest.organizations, celaest.users_profile, celaest.licenses, '
                       'celaest.license_usage_log, celaest.task_batches, celaest.processed_tasks, '
                       'celaest.roi_metrics, celaest.audit_logs, celaest.telemetry_events';
    v_platform text := 'celaest.subscription_plans, celaest.ai_models, celaest.prompts_master, '
                       'celaest.feature_flags, celaest.system_config';
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA celaest TO %I', p_grantee);
    -- Reads: every table and view, the key pool without its ciphertext.
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_pool_read
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = 'celaest.ai_api_pool'::regclass AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname <> 'key_value_encrypted';
    EXECUTE format('GRANT SELECT ON %s, %s TO %I', v_tenant, v_platform, p_grantee);
    EXECUTE format('GRANT SELECT (%s) ON celaest.ai_api_pool TO %I', v_pool_read, p_grantee);
    EXECUTE format('GRANT SELECT ON celaest.v_active_licenses, celaest.v_api_pool_status, '
                   'celaest.v_daily_task_metrics TO %I', p_grantee);
    -- Writes, bounded by row-level security (module 85).
    IF p_level = 'service' THEN
        EXECUTE format('GRANT INSERT, UPDATE, DELETE ON %s, %s TO %I', v_tenant, v_platform, p_grantee);
        -- Not metadata: it carries the key's base_url and whether a superuser set it (the
        -- outbound guard trusts only those); a key's destination changes through add_api_key.
        EXECUTE format('GRANT UPDATE (key_name, priority, weight, rate_limit_rpm, rate_limit_tpm, rate_limit_rpd, '
                       'is_active, expires_at, notes), DELETE ON celaest.ai_api_pool TO %I', p_grantee);
    ELSIF p_level = 'authenticated' THEN
        EXECUTE format('GRANT INSERT, UPDATE ON celaest.users_profile TO %I', p_grantee);
        EXECUTE format('GRANT UPDATE (name, email, phone, website, address_line1, address_line2, city, state, '
                       'postal_code, country_code, tax_id, settings, metadata) ON celaest.organizations TO %I',
                       p_grantee);
        EXECUTE format('GRANT INSERT, UPDATE, DELETE ON celaest.subscription_plans, celaest.ai_models, '
                       'celaest.prompts_master, celaest.feature_flags TO %I', p_grantee);
        -- The key pool as service has it (super_admins only: its row-level security policy);
        -- keys are added and given a secret or destination through add_api_key/rotate_api_key.
        EXECUTE format('GRANT UPDATE (key_name, priority, weight, rate_limit_rpm, rate_limit_tpm, rate_limit_rpd, '
                       'is_active, expires_at, notes), DELETE ON celaest.ai_api_pool TO %I', p_grantee);
    END IF;
    -- Functions.
    FOR v_fn IN
        SELECT p.oid::regprocedure AS sig, p.proname, p.provolatile
          FROM pg_catalog.pg_proc AS p
         WHERE p.pronamespace = 'celaest'::regnamespace
           AND p.prorettype <> 'pg_catalog.trigger'::regtype
           AND p.proname <> ALL (celaest._owner_only_functions())
    LOOP
        IF p_level = 'service'
           OR v_fn.provolatile IN ('i', 's')
           OR v_fn.proname = ANY (celaest._level_volatile_functions(p_level)) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', v_fn.sig, p_grantee);
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION celaest._grant_level_privileges(name, text) IS
    'Internal (access): grants a role the privileges of a level (service, authenticated, readonly) on the schema, tables, views and functions.';

CREATE FUNCTION celaest._revoke_level_privileges(p_grantee name)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA celaest FROM %I', p_grantee);
    EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA celaest FROM %I', p_grantee);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA celaest FROM %I', p_grantee);
    EXECUTE format('REVOKE ALL ON SCHEMA celaest FROM %I', p_grantee);
END;
$$;
COMMENT ON FUNCTION celaest._revoke_level_privileges(name) IS
    'Internal (access): takes every privilege on the schema and its objects from a role.';

-- Every privilege from scratch: nothing for PUBLIC but version(); each group role and each
-- of its direct members its level's privileges. Run at install, at upgrade and by
-- grant_access.
CREATE FUNCTION celaest._apply_access_privileges()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_role  record;
BEGIN
    EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA celaest FROM PUBLIC';
    EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA celaest FROM PUBLIC';
    EXECUTE 'REVOKE ALL ON ALL SEQUENCES IN SCHEMA celaest FROM PUBLIC';
    EXECUTE 'REVOKE ALL ON SCHEMA celaest FROM PUBLIC';
    -- Supabase's default privileges may have granted new objects to its API roles directly.
    FOR v_role IN SELECT rolname FROM pg_catalog.pg_roles
                   WHERE rolname IN ('anon', 'authenticated', 'service_role',
                                     'celaest_service', 'celaest_authenticated', 'celaest_readonly')
                      OR pg_has_role(oid, 'celaest_service', 'MEMBER')
                      OR pg_has_role(oid, 'celaest_authenticated', 'MEMBER')
                      OR pg_has_role(oid, 'celaest_readonly', 'MEMBER') LOOP
        IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = v_role.rolname)
           AND v_role.rolname <> (SELECT r.rolname FROM pg_catalog.pg_roles AS r
                                    JOIN pg_catalog.pg_extension AS e ON e.extowner = r.oid
                                   WHERE e.extname = 'celaest') THEN
            PERFORM celaest._revoke_level_privileges(v_role.rolname);
        END IF;
    END LOOP;
    EXECUTE 'GRANT USAGE ON SCHEMA celaest TO PUBLIC';
    EXECUTE 'GRANT EXECUTE ON FUNCTION celaest.version() TO PUBLIC';
    FOR v_role IN
        SELECT g.level, g.rolname AS grantee
          FROM (VALUES ('service', 'celaest_service'), ('authenticated', 'celaest_authenticated'),
                       ('readonly', 'celaest_readonly')) AS g (level, rolname)
        UNION ALL
        SELECT g.level, m.rolname
          FROM (VALUES ('service', 'celaest_service'), ('authenticated', 'celaest_authenticated'),
                       ('readonly', 'celaest_readonly')) AS g (level, rolname)
          JOIN pg_catalog.pg_roles AS gr ON gr.rolname = g.rolname
          JOIN pg_catalog.pg_auth_members AS am ON am.roleid = gr.oid
          JOIN pg_catalog.pg_roles AS m ON m.oid = am.member
    LOOP
        PERFORM celaest._grant_level_privileges(v_role.grantee, v_role.level);
    END LOOP;
END;
$$;
COMMENT ON FUNCTION celaest._apply_access_privileges() IS
    'Internal (access): resets every privilege on the schema: PUBLIC may use the schema and call version(); the group roles and their direct members get their level''s privileges.';

-- ---------------------------------------------------------------------------
-- grant_access, revoke_access, access_levels
-- ---------------------------------------------------------------------------
CREATE FUNCTION celaest._assert_access_admin(p_function text)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r
                    WHERE r.oid = celaest._calling_role()
                      AND (r.rolsuper OR r.oid = (SELECT e.extowner FROM pg_catalog.pg_extension AS e
                                                   WHERE e.extname = 'celaest'))) THEN
        RAISE EXCEPTION 'permission denied for function %', p_function
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only a superuser or the owner of the extension celaest grants access levels.';
    END IF;
END;
$$;
COMMENT ON FUNCTION celaest._assert_access_admin(text) IS
    'Internal (access): 42501 naming the function unless the caller is a superuser or the extension''s owner.';

CREATE FUNCTION celaest.revoke_access(p_role regrole)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name  name;
    v_group text;
BEGIN
    PERFORM celaest._assert_access_admin('revoke_access');
    IF p_role IS NULL THEN
        RAISE EXCEPTION 'revoke_access: the role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT rolname INTO v_name FROM pg_catalog.pg_roles WHERE oid = p_role;
    FOREACH v_group IN ARRAY ARRAY['celaest_service', 'celaest_authenticated', 'celaest_readonly'] LOOP
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members AS am
                    WHERE am.member = p_role AND am.roleid = (SELECT oid FROM pg_catalog.pg_roles
                                                               WHERE rolname = v_group)) THEN
            EXECUTE format('REVOKE %I FROM %I', v_group, v_name);
        END IF;
    END LOOP;
    IF v_name NOT IN ('celaest_service', 'celaest_authenticated', 'celaest_readonly') THEN
        PERFORM celaest._revoke_level_privileges(v_name);
    END IF;
END;
$$;
COMMENT ON FUNCTION celaest.revoke_access(regrole) IS
    'Takes a role''s CELAEST access level (its group membership and every privilege on the schema). Superuser or extension owner only (42501). Roles are cluster-wide: the membership goes in every database.';

CREATE FUNCTION celaest.grant_access(p_role regrole, p_level text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name name;
BEGIN
    PERFORM celaest._assert_access_admin('grant_access');
    IF p_role IS NULL THEN
        RAISE EXCEPTION 'grant_access: the role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_level IS NULL OR p_level NOT IN ('service', 'authenticated', 'readonly') THEN
        RAISE EXCEPTION 'grant_access: unknown access level %', coalesce(quote_literal(p_level), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Levels are service, authenticated and readonly.';
    END IF;
    SELECT rolname INTO v_name FROM pg_catalog.pg_roles WHERE oid = p_role;
    IF v_name IN ('celaest_service', 'celaest_authenticated', 'celaest_readonly') THEN
        RAISE EXCEPTION 'grant_access: % is a CELAEST level itself', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE oid = p_role) THEN
        RAISE EXCEPTION 'grant_access: % is a superuser, always service', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM celaest.revoke_access(p_role);
    EXECUTE format('GRANT %I TO %I', 'celaest_' || p_level, v_name);
    PERFORM celaest._grant_level_privileges(v_name, p_level);
END;
$$;
COMMENT ON FUNCTION celaest.grant_access(regrole, text) IS
    'Gives a role a CELAEST access level: service (trusted backend: acts for the user it names), authenticated (end user: auth.uid()), readonly (reads every organization''s non-secret rows). Replaces the role''s previous level. Superuser or extension owner only (42501); 22023 for an unknown level. Roles are cluster-wide: the level holds in every database of the cluster with CELAEST.';

CREATE FUNCTION celaest.access_levels()
RETURNS TABLE (role_name name, level text, can_login boolean, inherits boolean)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.rolname, substr(g.rolname, 9), r.rolcanlogin, r.rolinherit
      FROM pg_catalog.pg_auth_members AS am
      JOIN pg_catalog.pg_roles AS g ON g.oid = am.roleid
      JOIN pg_catalog.pg_roles AS r ON r.oid = am.member
     WHERE g.rolname IN ('celaest_service', 'celaest_authenticated', 'celaest_readonly')
    UNION ALL
    SELECT r.rolname, 'service', r.rolcanlogin, r.rolinherit
      FROM pg_catalog.pg_roles AS r
     WHERE r.rolsuper
        OR r.oid = (SELECT e.extowner FROM pg_catalog.pg_extension AS e WHERE e.extname = 'celaest')
     ORDER BY 1;
$$;
COMMENT ON FUNCTION celaest.access_levels() IS
    'The roles holding a CELAEST access level: members of celaest_service, celaest_authenticated and celaest_readonly, plus superusers and the extension owner (always service).';

CREATE OR REPLACE FUNCTION celaest.batch_status(p_batch_id uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_batch  celaest.task_batches;
    v_counts record;
    v_done   bigint;
    v_eta    numeric;
BEGIN
    SELECT * INTO v_batch FROM celaest.task_batches WHERE id = p_batch_id;
    IF NOT FOUND OR NOT celaest._batch_access(v_batch.organization_id, v_batch.user_id, 'read') THEN
        RAISE EXCEPTION 'batch % does not exist', p_batch_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT count(*) AS total,
           count(*) FILTER (WHERE status = 'pending')    AS pending,
           count(*) FILTER (WHERE status IN ('processing', 'retrying')) AS processing,
           count(*) FILTER (WHERE status = 'completed')  AS completed,
           count(*) FILTER (WHERE status = 'failed')     AS failed,
           count(*) FILTER (WHERE status = 'cancelled')  AS cancelled,
           min(started_at) AS first_start, max(completed_at) AS last_end
      INTO v_counts
      FROM celaest.processed_tasks WHERE batch_id = p_batch_id;
    v_done := v_counts.completed + v_counts.failed + v_counts.cancelled;
    -- Remaining work at the pace observed so far (wall clock since the first task started).
    IF v_done > 0 AND v_counts.pending + v_counts.processing > 0 AND v_counts.first_start IS NOT NULL THEN
        v_eta := round(extract(epoch FROM (clock_timestamp() - v_counts.first_start)) / v_done
                       * (v_counts.pending + v_counts.processing), 1);
    ELSIF v_counts.pending + v_counts.processing = 0 THEN
        v_eta := 0;
    END IF;
    RETURN jsonb_build_object(
        'batch_id', p_batch_id, 'status', v_batch.status, 'total', v_counts.total,
        'pending', v_counts.pending, 'processing', v_counts.processing,
        'completed', v_counts.completed, 'failed', v_counts.failed, 'cancelled', v_counts.cancelled,
        'progress', CASE WHEN v_counts.total = 0 THEN 1 ELSE round(v_done::numeric / v_counts.total, 4) END,
        'eta_seconds', v_eta,
        'started_at', v_batch.started_at, 'completed_at', v_batch.completed_at);
END;
$$;
COMMENT ON FUNCTION celaest.batch_status(uuid) IS
    'Progress of a batch: {status, total, pending, processing, completed, failed, cancelled, progress (0..1), eta_seconds (NULL until a task has finished)}. A batch of another organization does not exist for the caller (P0002).';

CREATE OR REPLACE FUNCTION celaest.cancel_batch(p_batch_id uuid) RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org       uuid;
    v_owner     uuid;
    v_cancelled integer;
    v_queued    uuid[];
BEGIN
    SELECT organization_id, user_id INTO v_org, v_owner FROM celaest.task_batches WHERE id = p_batch_id;
    IF NOT FOUND OR NOT celaest._batch_access(v_org, v_owner, 'read') THEN
        RAISE EXCEPTION 'batch % does not exist', p_batch_id USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT celaest._batch_access(v_org, v_owner, 'cancel') THEN
        RAISE EXCEPTION 'permission denied for function cancel_batch: batch % is not yours to cancel', p_batch_id
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'An operator cancels its own batches; managers and admins their organization''s.';
    END IF;
    -- Every task still queued or in flight is cancelled; the batch runner notices the batch's
    -- status within ~100 ms and aborts the transfers of its tasks (a task that never reached
    -- a provider gives its AI request back; one on the wire stays charged). A task whose
    -- answer is recorded first stays completed. Locks are taken in the runner's order (tasks,
    -- then the batch row) and waited for, never skipped: a task the runner is claiming this
    -- instant is re-checked once its claim commits, and none is left behind.
    -- The queued ones never reached a provider: the AI requests submit_batch reserved for them
    -- go back in this transaction (an in-flight task's is the runner's to give back, if its
    -- call had not left yet).
    WITH cancelled AS (
        UPDATE celaest.processed_tasks
           SET status = 'cancelled', completed_at = clock_timestamp(),
               error_code = 'cancelled',
               error_message = CASE status WHEN 'pending' THEN 'cancelled by cancel_batch()'
                               ELSE 'cancelled by cancel_batch() while its provider call was in flight' END
         WHERE batch_id = p_batch_id AND status IN ('pending', 'processing', 'retrying')
        RETURNING license_id, error_message = 'cancelled by cancel_batch()' AS was_queued,
                  metadata ->> 'interrupted' = 'true' AS interrupted)
    -- A queued task put back after a crash may have been sent before it: its unit stays.
    SELECT count(*), array_agg(license_id) FILTER (WHERE was_queued AND interrupted IS NOT TRUE)
      INTO v_cancelled, v_queued FROM cancelled;
    PERFORM celaest._return_batch_reservations(v_queued);
    UPDATE celaest.task_batches
       SET status = 'cancelled', completed_at = coalesce(completed_at, clock_timestamp())
     WHERE id = p_batch_id AND status NOT IN ('completed', 'failed', 'cancelled');
    RETURN v_cancelled;
END;
$$;
COMMENT ON FUNCTION celaest.cancel_batch(uuid) IS
    'Cancels every task of the batch still queued or in flight (the batch runner aborts their transfers; an answer already recorded is kept) and marks the batch cancelled; returns how many tasks were cancelled. A batch of another organization does not exist for the caller (P0002); one the caller may see but not cancel (an operator''s batch for another operator, a viewer, readonly) is 42501.';

DROP FUNCTION celaest._batch_visible(uuid);

CREATE OR REPLACE FUNCTION celaest.config_get(p_key text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_value jsonb;
BEGIN
    -- Only service callers read sensitive rows of the table (module 85); everyone else
    -- goes through the masked read, which shows them to super_admins.
    IF NOT has_table_privilege('celaest.system_config', 'SELECT')
       OR celaest._caller_level() IS DISTINCT FROM 'service' THEN
        RETURN celaest._config_get_masked(p_key);
    END IF;
    SELECT c.value INTO v_value FROM celaest.system_config AS c WHERE c.key = p_key;
    IF NOT FOUND THEN
        RETURN celaest._config_default(p_key);
    END IF;
    RETURN v_value;
END;
$$;
COMMENT ON FUNCTION celaest.config_get(text) IS
    'Value of a system_config key. A sensitive value reads as "***" unless the caller may read celaest.system_config itself (its owner, a superuser, a role granted SELECT) or the acting CELAEST user is a live super_admin. A key without a row returns its built-in default (roi.manual_minutes_per_task = 5, roi.hourly_rate = 25); any other unknown key, NULL.';

-- Row-level security: the 0.1.0 policies give way to module 85's.
DROP POLICY organizations_tenant_isolation ON celaest.organizations;
DROP POLICY users_profile_tenant_isolation ON celaest.users_profile;
DROP POLICY licenses_tenant_isolation ON celaest.licenses;
DROP POLICY license_usage_log_tenant_isolation ON celaest.license_usage_log;
DROP POLICY task_batches_tenant_isolation ON celaest.task_batches;
DROP POLICY processed_tasks_tenant_isolation ON celaest.processed_tasks;
DROP POLICY roi_metrics_tenant_isolation ON celaest.roi_metrics;
DROP POLICY audit_logs_tenant_isolation ON celaest.audit_logs;
DROP POLICY telemetry_events_tenant_isolation ON celaest.telemetry_events;
CREATE POLICY organizations_read ON celaest.organizations FOR SELECT
    USING (id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._sees_every_org()));
CREATE POLICY organizations_write ON celaest.organizations
    USING ((SELECT celaest._writes_every_org()))
    WITH CHECK ((SELECT celaest._writes_every_org()));
CREATE POLICY organizations_settings ON celaest.organizations FOR UPDATE
    USING (id = (SELECT celaest._current_org_id_or_null()) AND (SELECT celaest._acting_user_may('org:settings')))
    WITH CHECK (id = (SELECT celaest._current_org_id_or_null()) AND (SELECT celaest._acting_user_may('org:settings')));

-- A user also always sees their own profile, with or without an organization.
ALTER TABLE celaest.users_profile ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_profile_read ON celaest.users_profile FOR SELECT
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR id = (SELECT celaest._current_user_id_or_null())
           OR (SELECT celaest._sees_every_org()));
CREATE POLICY users_profile_write ON celaest.users_profile
    USING ((SELECT celaest._writes_every_org()))
    WITH CHECK ((SELECT celaest._writes_every_org()));
CREATE POLICY users_profile_manage ON celaest.users_profile
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           AND (SELECT celaest._acting_user_may('users:manage')))
    WITH CHECK (organization_id = (SELECT celaest._current_org_id_or_null())
                AND (SELECT celaest._acting_user_may('users:manage')));

DO $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['licenses', 'license_usage_log', 'task_batches', 'processed_tasks',
                                   'roi_metrics', 'audit_logs', 'telemetry_events'] LOOP
        EXECUTE format('ALTER TABLE celaest.%I ENABLE ROW LEVEL SECURITY', v_table);
        -- Rows without an organization (global resources, system events) are read by
        -- those who read every organization only.
        EXECUTE format('CREATE POLICY %I ON celaest.%I FOR SELECT '
                       'USING (organization_id = (SELECT celaest._current_org_id_or_null()) '
                       'OR (SELECT celaest._sees_every_org()))', v_table || '_read', v_table);
        EXECUTE format('CREATE POLICY %I ON celaest.%I '
                       'USING ((SELECT celaest._writes_every_org())) '
                       'WITH CHECK ((SELECT celaest._writes_every_org()))', v_table || '_write', v_table);
    END LOOP;
END;
$$;

-- ---------------------------------------------------------------------------
-- Platform tables
-- ---------------------------------------------------------------------------
DO $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['subscription_plans', 'ai_models', 'prompts_master', 'feature_flags'] LOOP
        EXECUTE format('ALTER TABLE celaest.%I ENABLE ROW LEVEL SECURITY', v_table);
        EXECUTE format('CREATE POLICY %I ON celaest.%I FOR SELECT USING (true)', v_table || '_read', v_table);
        EXECUTE format('CREATE POLICY %I ON celaest.%I '
                       'USING ((SELECT celaest._manages_platform())) '
                       'WITH CHECK ((SELECT celaest._manages_platform()))', v_table || '_write', v_table);
    END LOOP;
END;
$$;

ALTER TABLE celaest.ai_api_pool ENABLE ROW LEVEL SECURITY;
CREATE POLICY ai_api_pool_read ON celaest.ai_api_pool FOR SELECT
    USING ((SELECT celaest._manages_platform()) OR (SELECT celaest._caller_level()) = 'readonly');
CREATE POLICY ai_api_pool_write ON celaest.ai_api_pool
    USING ((SELECT celaest._manages_platform()))
    WITH CHECK ((SELECT celaest._manages_platform()));

-- Sensitive values: service callers only (config_get shows them to super_admins, masked to
-- everyone else).
ALTER TABLE celaest.system_config ENABLE ROW LEVEL SECURITY;
CREATE POLICY system_config_read ON celaest.system_config FOR SELECT
    USING (NOT is_sensitive OR (SELECT celaest._caller_level()) = 'service');
CREATE POLICY system_config_insert ON celaest.system_config FOR INSERT
    WITH CHECK ((SELECT celaest._manages_platform()));
CREATE POLICY system_config_update ON celaest.system_config FOR UPDATE
    USING ((SELECT celaest._manages_platform()))
    WITH CHECK ((SELECT celaest._manages_platform()));
CREATE POLICY system_config_delete ON celaest.system_config FOR DELETE
    USING ((SELECT celaest._manages_platform()));

SELECT celaest._apply_access_privileges();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'service_role' AND NOT rolsuper) THEN
        PERFORM celaest.grant_access('service_role', 'service');
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticated' AND NOT rolsuper) THEN
        PERFORM celaest.grant_access('authenticated', 'authenticated');
    END IF;
END;
$$;

