-- CELAEST — licensing, lifecycle: issue_license, set_license_status, refresh_licenses.
-- (Vocabulary, SQLSTATEs and privileges: the header of 22_licensing_rules.sql.)

-- ---------------------------------------------------------------------------
-- Lifecycle
-- ---------------------------------------------------------------------------

-- The options of issue_license, validated and resolved against now(): what the license
-- will hold. Raises 22023 for an unknown option, a bad value or dates that do not fit.
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

CREATE FUNCTION celaest.issue_license(p_org_id uuid, p_plan_code text, p_options jsonb DEFAULT '{}')
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
        IF celaest._roll_license_period(v_id) THEN
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION celaest.refresh_licenses() IS
    'Housekeeping (the background worker calls it): expires lapsed trials and licenses (closing their open period into license_usage_log), then rolls every ended billing period by billing_cycle (_roll_license_period). Skips rows locked by other transactions (next pass). Returns the number of licenses changed.';
