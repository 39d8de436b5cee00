-- CELAEST — licensing, enforcement points.
--
-- What is enforced, and where (API.md "Enforced limits"):
--   max_users                  BEFORE trigger on users_profile: a row that becomes a
--                              live member of an organization (INSERT, re-activation
--                              by clearing deleted_at, or a move to another
--                              organization) is refused with LC010 when the
--                              organization's license in force is full. Without a
--                              license in force nothing is checked.
--   max_ai_requests_per_month  _reserve_ai_request() below (the AI-call glue), or
--                              consume_quota() (24_licensing_quota.sql).
--   max_concurrent_tasks       BEFORE trigger on processed_tasks (created with the
--                              table, 40_tasks_tables.sql): a task entering processing or retrying
--                              from any other state (or inserted so) is refused with
--                              LC010 when the organization already has that many in
--                              flight, or LC001-LC004 when its license is unusable.
--   max_batch_size             _check_batch() below (for submit_batch).
--   max_storage_gb             consume_quota(org, 'storage_gb', bytes) is exact; the
--                              BEFORE UPDATE OF storage_used_bytes trigger on licenses
--                              refuses any other write that would go over the limit.
-- Plus two validation triggers: subscription_plans.limits and licenses.custom_limits
-- must be objects of known limit keys with integer values >= -1 (22023).
--
-- API for the AI-call glue and the batch runner
-- --------------------------------------------
--   celaest._reserve_ai_request(p_org_id uuid, p_user_id uuid, p_task_id uuid DEFAULT NULL)
--       RETURNS uuid  -- the license charged (for processed_tasks.license_id)
--     Charges one AI request to the organization's license in the current billing
--     period, atomically; no license_usage_log row (API.md: the per-call paths write
--     none, the period's close sums the counter; p_user_id, p_task_id unused). Raises LC001 (no
--     license in force), LC002 (suspended), LC003 (expired / trial expired), LC004
--     (cancelled), LC010 (quota used up; DETAIL "limit: L, used: U, requested: 1"),
--     22004 (NULL organization). A refusal charges nothing; a rollback of the calling
--     transaction undoes the charge.
--   celaest._check_batch(p_org_id uuid, p_inputs integer, p_reserve boolean DEFAULT false)
--       RETURNS uuid  -- the license
--     For submit_batch: raises LC001-LC004 as above, LC010 when p_inputs exceeds
--     max_batch_size, and LC010 when fewer than p_inputs AI requests remain in the
--     period. With p_reserve the p_inputs requests are charged at once (atomically,
--     exactly as consume_quota, logged as one license_usage_log row with
--     metadata.event = batch_reserve; the runner then must not charge each task again
--     and should _release_quota() the ones that never reach a provider); without it
--     nothing is charged and each task is charged by _reserve_ai_request when it runs.
--     22023 for a negative or NULL p_inputs.
--   celaest._reserve_counted(p_org_id uuid, p_key text, p_amount bigint, p_strict boolean,
--                           p_exclude_id uuid DEFAULT NULL) RETURNS bigint
--     The check behind the triggers (max_users, max_concurrent_tasks, max_batch_size):
--     returns the room left after p_amount, -1 if unlimited; LC010 if over.
--
-- Locks and how long they are held (read this before calling from a long transaction)
--   * An AI-request charge updates the license row; the row lock is held until the
--     calling transaction ends, so a second charge for the same organization waits
--     for it. Charge late in a transaction, or commit the charge (and the task's
--     'processing' state) in a short transaction of its own before calling the
--     provider, as the batch runner should. Other organizations never wait.
--   * users / concurrent-task checks take a transaction-level advisory lock per
--     (organization, limit) and count committed rows; concurrent admissions to the
--     same organization queue on it until the admitting transaction ends. They do
--     not block AI-request charges.
--   * Exactness holds in READ COMMITTED (each statement sees what the previous lock
--     holder committed) and SERIALIZABLE. Counting under REPEATABLE READ would use a
--     stale snapshot, so the counted checks refuse to run there (0A000) rather than
--     admit past the limit; counters (consume_quota) are exact in every isolation
--     level (a concurrent update in REPEATABLE READ is a 40001, as usual).

-- ---------------------------------------------------------------------------
-- Counted limits: users, tasks in flight, batch size
-- ---------------------------------------------------------------------------

CREATE FUNCTION celaest._reserve_counted(p_org_id uuid, p_key text, p_amount bigint, p_strict boolean,
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
COMMENT ON FUNCTION celaest._reserve_counted(uuid, text, bigint, boolean, uuid) IS
    'Admission check for a counted limit (max_users: live users; max_concurrent_tasks: tasks processing or retrying plus synchronous calls in flight; max_batch_size: p_amount itself) against the license in force: returns the room left after p_amount (-1 unlimited) or raises LC010 (DETAIL limit/used/requested). p_strict: refuse an unusable license (LC001-LC004); otherwise no license in force means no check. Serialised per organization and limit by an advisory lock held to the end of the transaction; 0A000 under REPEATABLE READ. p_exclude_id leaves the row being admitted out of the count.';
-- Not for application roles: it takes per-organization locks and reveals counts of any
-- organization. The triggers below (SECURITY DEFINER), run_prompt/submit_batch and the
-- workers (as the owner) call it.
REVOKE EXECUTE ON FUNCTION celaest._reserve_counted(uuid, text, bigint, boolean, uuid) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Helpers for the AI-call glue and the batch runner
-- ---------------------------------------------------------------------------

-- Hot path (one per AI call): no SET clause, schema-qualified names (22_licensing_rules.sql header).
CREATE FUNCTION celaest._reserve_ai_request(p_org_id uuid, p_user_id uuid, p_task_id uuid DEFAULT NULL)
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
COMMENT ON FUNCTION celaest._reserve_ai_request(uuid, uuid, uuid) IS
    'For the AI-call glue: charges one AI request to the organization''s license in the current billing period (atomic, exact under concurrency; no license_usage_log row: the period''s close sums the counter; p_user_id and p_task_id are not used any more) and returns the license id. Raises LC001/LC002/LC003/LC004 for the license, LC010 when the period''s quota is used up; a refusal charges nothing and a rollback undoes the charge. Holds the license row lock until the transaction ends.';
REVOKE EXECUTE ON FUNCTION celaest._reserve_ai_request(uuid, uuid, uuid) FROM PUBLIC;

CREATE FUNCTION celaest._check_batch(p_org_id uuid, p_inputs integer, p_reserve boolean DEFAULT false)
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
COMMENT ON FUNCTION celaest._check_batch(uuid, integer, boolean) IS
    'For submit_batch: returns the organization''s usable license, or raises LC001-LC004 for the license, LC010 when p_inputs exceeds max_batch_size or the AI requests left in the period (DETAIL limit/used/requested). p_reserve charges the p_inputs requests at once (atomic, one license_usage_log row); otherwise nothing is charged. 22023 for a negative p_inputs.';
REVOKE EXECUTE ON FUNCTION celaest._check_batch(uuid, integer, boolean) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Triggers
-- ---------------------------------------------------------------------------

-- SECURITY DEFINER: the admission must count every member, whatever the inserting
-- role may see, and _reserve_counted is not granted to PUBLIC.
CREATE FUNCTION celaest._enforce_max_users()
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
COMMENT ON FUNCTION celaest._enforce_max_users() IS
    'BEFORE INSERT/UPDATE trigger on users_profile: a row becoming a live member of an organization (new, undeleted or moved) must fit max_users of the organization''s license in force (LC010). No license in force: no check.';

REVOKE EXECUTE ON FUNCTION celaest._enforce_max_users() FROM PUBLIC;

CREATE TRIGGER users_profile_enforce_max_users
    BEFORE INSERT OR UPDATE OF organization_id, deleted_at ON celaest.users_profile
    FOR EACH ROW
    WHEN (NEW.organization_id IS NOT NULL AND NEW.deleted_at IS NULL)
    EXECUTE FUNCTION celaest._enforce_max_users();

CREATE FUNCTION celaest._enforce_storage_limit()
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
COMMENT ON FUNCTION celaest._enforce_storage_limit() IS
    'BEFORE UPDATE OF storage_used_bytes trigger on licenses: an increase beyond max_storage_gb (GiB, as bytes) is refused with LC010.';
REVOKE EXECUTE ON FUNCTION celaest._enforce_storage_limit() FROM PUBLIC;

CREATE TRIGGER licenses_enforce_storage_limit
    BEFORE UPDATE OF storage_used_bytes ON celaest.licenses
    FOR EACH ROW
    WHEN (NEW.storage_used_bytes > OLD.storage_used_bytes)
    EXECUTE FUNCTION celaest._enforce_storage_limit();

CREATE FUNCTION celaest._check_limits_column()
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
COMMENT ON FUNCTION celaest._check_limits_column() IS
    'BEFORE INSERT/UPDATE trigger on subscription_plans (limits) and licenses (custom_limits): the limits must be an object of known limit keys with integer values >= -1 (_validate_limits, 22023).';
REVOKE EXECUTE ON FUNCTION celaest._check_limits_column() FROM PUBLIC;

CREATE TRIGGER subscription_plans_check_limits
    BEFORE INSERT OR UPDATE OF limits ON celaest.subscription_plans
    FOR EACH ROW EXECUTE FUNCTION celaest._check_limits_column();
CREATE TRIGGER licenses_check_custom_limits
    BEFORE INSERT OR UPDATE OF custom_limits ON celaest.licenses
    FOR EACH ROW
    WHEN (NEW.custom_limits IS NOT NULL)
    EXECUTE FUNCTION celaest._check_limits_column();

-- max_concurrent_tasks: a task holds a slot while it is processing or retrying (a retry
-- has not let go of its slot); it takes one when it enters either state from any other
-- (or is inserted in it), and gives it back by leaving them. The trigger is created with
-- processed_tasks (40_tasks_tables.sql).
-- SECURITY DEFINER, like _enforce_max_users: the count must see every task.
CREATE FUNCTION celaest._enforce_max_concurrent_tasks()
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
COMMENT ON FUNCTION celaest._enforce_max_concurrent_tasks() IS
    'BEFORE INSERT/UPDATE trigger on processed_tasks: a task entering processing or retrying must fit max_concurrent_tasks of its organization''s license (LC010), and the license must be usable (LC001-LC004).';

REVOKE EXECUTE ON FUNCTION celaest._enforce_max_concurrent_tasks() FROM PUBLIC;

-- system_config 'license.trial_limits' must be a valid limits object. The trigger is
-- created with system_config (70_configuration.sql).
CREATE FUNCTION celaest._check_trial_limits_setting()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM celaest._validate_limits(NEW.value, 'system_config license.trial_limits');
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION celaest._check_trial_limits_setting() IS
    'BEFORE INSERT/UPDATE trigger on system_config: the value of license.trial_limits must be an object of known limit keys with integer values >= -1 (22023).';
REVOKE EXECUTE ON FUNCTION celaest._check_trial_limits_setting() FROM PUBLIC;
