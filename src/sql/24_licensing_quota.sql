-- CELAEST — licensing, quota: check_limit (read only), consume_quota / _release_quota (atomic),
-- the billing-period roll, and the shared-memory terms of the native fast paths
-- (src/pg/functions/licensing_quota.cpp, src/pg/licensing/license_quota.cpp).
-- (Vocabulary, SQLSTATEs and privileges: the header of 22_licensing_rules.sql.)

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
COMMENT ON FUNCTION celaest._raise_bad_limit_call(uuid, text, bigint) IS
    'Internal: raises 22004 for a NULL organization, 22023 for an unknown metric or a negative/NULL amount; returns quietly when the arguments are fine.';
-- Executable by PUBLIC: check_limit (SECURITY INVOKER, every role) reaches it through _check_limit_general.

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

-- The synchronous calls (run_prompt, ai_chat) of an organization in flight in this database:
-- tasks processing that no processed_tasks row shows until their call ends
-- (src/pg/licensing/concurrency_gate.hpp). Every count of max_concurrent_tasks adds it.
CREATE FUNCTION celaest._sync_calls_in_flight(p_org_id uuid) RETURNS bigint
    AS 'MODULE_PATHNAME', 'celaest_sync_calls_in_flight'
    LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION celaest._sync_calls_in_flight(uuid) IS
    'Internal (licensing): the organization''s synchronous AI calls (run_prompt, ai_chat) in flight in this database, counted in shared memory from admission until the provider call ends; added to the processed_tasks rows processing or retrying wherever max_concurrent_tasks is counted.';
-- Stable, so every level may call it: check_limit (every role) reaches it through its general path.

-- The general path of check_limit: every metric, and organizations without a license
-- in force (answered from their most recent license).
CREATE FUNCTION celaest._check_limit_general(p_org_id uuid, p_limit text, p_amount bigint)
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
COMMENT ON FUNCTION celaest._check_limit_general(uuid, text, bigint) IS
    'Internal: the general path of check_limit (every metric; organizations without a license in force are answered from their most recent license, or NOT_FOUND).';
-- Executable by PUBLIC: check_limit (SECURITY INVOKER, every role) calls it for every answer its fast path does not give.

-- The terms the hot paths keep in shared memory for every backend (src/pg/licensing/license_quota.cpp):
-- the organization's license in force, its effective AI-request cap and its effective
-- max_concurrent_tasks, as '<license uuid> <cap> <status> <concurrent cap>' ('' when none is in force). Owner's rights and a fixed search_path:
-- what one caller reads here is used by all, so no caller's search_path or row-level
-- security may shape it. Not granted to anyone: the native code calls it through fmgr, and
-- every answer it then gives is gated by a read under the caller's own rights.
-- VOLATILE: a volatile SQL function reads with a snapshot of its own, newer than the cache
-- generation the caller read first (src/pg/boundary/cache_validity.hpp).
CREATE FUNCTION celaest._license_terms(p_org_id uuid)
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
COMMENT ON FUNCTION celaest._license_terms(uuid) IS
    'Internal: ''<license id> <effective max_ai_requests_per_month> <status> <effective max_concurrent_tasks>'' of the organization''s license in force ('''' when none), for the shared cache of the native check_limit, consume_quota and AI calls. Owner''s rights, fixed search_path; not granted.';
REVOKE EXECUTE ON FUNCTION celaest._license_terms(uuid) FROM PUBLIC;

-- Native (src/pg/functions/quota_functions.cpp): the common call (AI requests of an organization
-- with a license in force) reads the counter in one statement, with the license and its
-- effective cap from a per-backend copy (78_cache_validity.sql invalidates it); everything else goes to
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
CREATE FUNCTION celaest._roll_license_period(p_license_id uuid)
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
COMMENT ON FUNCTION celaest._roll_license_period(uuid) IS
    'If the license is in force, not lifetime, and its billing period has ended (or was never set), closes the period into license_usage_log (metric ai_requests, quantity = requests used, metadata.event = period_close), opens the period that contains now() and resets ai_requests_used. Returns whether it changed the license.';
REVOKE EXECUTE ON FUNCTION celaest._roll_license_period(uuid) FROM PUBLIC;

-- The general (slow) path of a consumption: argument checks, refusals, lapsed
-- periods, counted metrics. consume_quota and _reserve_ai_request fall back to it when
-- their one-statement fast path does not grant.
CREATE FUNCTION celaest._take_quota(p_org_id uuid, p_metric text, p_amount bigint,
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
COMMENT ON FUNCTION celaest._take_quota(uuid, text, bigint) IS
    'General path of a consumption (consume_quota, _reserve_ai_request and _check_batch use it): validates the arguments, refuses with LC001-LC004 or LC010 (DETAIL limit/used/requested) consuming nothing, rolls a lapsed billing period first, and charges p_amount atomically. Counters: ai_requests, storage_gb (bytes). Counted metrics (users, concurrent_tasks) and batch_size are checked under a per-organization lock held to the end of the transaction and change nothing. Returns the license, the remaining quota (-1 unlimited) and the billing period.';
REVOKE EXECUTE ON FUNCTION celaest._take_quota(uuid, text, bigint) FROM PUBLIC;

-- Native (src/pg/functions/quota_functions.cpp): the common case (AI requests of a usable license
-- in its current period) is one conditional UPDATE of the counter, with the license and
-- its effective cap from a per-backend copy (78_cache_validity.sql invalidates it); everything else
-- (other metrics, refusals, a period to roll, bad arguments) goes through _take_quota,
-- which charges or refuses by the same rule.
CREATE FUNCTION celaest.consume_quota(p_org_id uuid, p_metric text DEFAULT 'ai_requests',
                                      p_amount bigint DEFAULT 1)
RETURNS bigint
AS 'MODULE_PATHNAME', 'celaest_consume_quota'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest.consume_quota(uuid, text, bigint) IS
    'Consumes p_amount of a metric for the organization and returns what remains (-1 = unlimited). Exact under any concurrency: one conditional UPDATE grants only while the committed counter leaves room; a refusal (LC010, DETAIL limit/used/requested; LC001-LC004 for the license) or a rollback leaves the counter as it was. ai_requests and storage_gb (bytes) are counters; users, concurrent_tasks and batch_size are checked (count + p_amount <= limit) under a per-organization lock held to the end of the transaction, and change nothing. 22023 for an unknown metric or a negative amount.';

CREATE FUNCTION celaest._release_quota(p_org_id uuid, p_metric text, p_amount bigint)
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
COMMENT ON FUNCTION celaest._release_quota(uuid, text, bigint) IS
    'Gives back p_amount of a counter (ai_requests: a refund; storage_gb: bytes freed) on the license in force, never below zero; returns what remains (-1 = unlimited). LC001 without a license in force; 22023 for other metrics or a negative amount.';
REVOKE EXECUTE ON FUNCTION celaest._release_quota(uuid, text, bigint) FROM PUBLIC;
