-- CELAEST — module 60: audit (audit_logs, telemetry_events), log_audit() and
-- automatic auditing of licenses, plans, the API pool and user access rights.
-- (feature_flags and system_config get their audit triggers in module 70, after
-- their tables.)

-- ---------------------------------------------------------------------------
-- audit_logs
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.audit_logs (
    id            UUID            NOT NULL DEFAULT uuid_generate_v4(),
    user_id       UUID,
    organization_id UUID,
    action        celaest.audit_action NOT NULL,
    resource_type VARCHAR(100)    NOT NULL,
    resource_id   UUID,
    description   TEXT,
    changes       JSONB,
    request_id    VARCHAR(100),
    ip_address    INET,
    user_agent    VARCHAR(500),
    success       BOOLEAN         NOT NULL DEFAULT TRUE,
    error_message TEXT,
    created_at    TIMESTAMPTZ     NOT NULL DEFAULT NOW(),

    CONSTRAINT audit_logs_pkey PRIMARY KEY (id),
    -- NO ACTION (API.md): a user or organization with audit history is
    -- soft-deleted, never removed. SET NULL or CASCADE could not work anyway:
    -- they would UPDATE or DELETE audit rows, which this table refuses.
    CONSTRAINT audit_logs_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES celaest.users_profile (id) ON DELETE NO ACTION,
    CONSTRAINT audit_logs_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES celaest.organizations (id) ON DELETE NO ACTION,
    CONSTRAINT audit_logs_resource_type_not_blank CHECK (btrim(resource_type) <> ''),
    CONSTRAINT audit_logs_changes_is_object CHECK (changes IS NULL OR jsonb_typeof(changes) = 'object')
);

-- Tenant history, newest first (also serves the organization_id FK).
CREATE INDEX audit_logs_organization_id_created_at_idx ON celaest.audit_logs (organization_id, created_at);
CREATE INDEX audit_logs_user_id_idx ON celaest.audit_logs (user_id);
-- "History of this license / key / flag".
CREATE INDEX audit_logs_resource_idx ON celaest.audit_logs (resource_type, resource_id);
-- Time ranges across tenants (compliance exports), newest first.
CREATE INDEX audit_logs_created_at_idx ON celaest.audit_logs (created_at);

COMMENT ON TABLE celaest.audit_logs IS
    'Immutable audit log for compliance and debugging. Append-only for every role, owner and superusers included: UPDATE, DELETE and TRUNCATE raise 42501.';
COMMENT ON COLUMN celaest.audit_logs.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.audit_logs.user_id IS 'Acting user (FK -> users_profile); NULL for system actions.';
COMMENT ON COLUMN celaest.audit_logs.organization_id IS 'Organization concerned (FK -> organizations); NULL for global resources.';
COMMENT ON COLUMN celaest.audit_logs.action IS 'Action type.';
COMMENT ON COLUMN celaest.audit_logs.resource_type IS 'Resource type, e.g. license, subscription_plan, api_key, user, feature_flag, system_config.';
COMMENT ON COLUMN celaest.audit_logs.resource_id IS 'Resource id.';
COMMENT ON COLUMN celaest.audit_logs.description IS 'Description.';
COMMENT ON COLUMN celaest.audit_logs.changes IS 'Before/after values (JSON object {"before": ..., "after": ...}); secrets masked as "***".';
COMMENT ON COLUMN celaest.audit_logs.request_id IS 'Correlation id (setting celaest.request_id).';
COMMENT ON COLUMN celaest.audit_logs.ip_address IS 'Client IP address (setting celaest.client_ip).';
COMMENT ON COLUMN celaest.audit_logs.user_agent IS 'Client user agent (setting celaest.user_agent).';
COMMENT ON COLUMN celaest.audit_logs.success IS 'Whether the operation succeeded.';
COMMENT ON COLUMN celaest.audit_logs.error_message IS 'Error message, when the operation failed.';
COMMENT ON COLUMN celaest.audit_logs.created_at IS 'Event time.';

-- Append-only, for every role. The triggers are ENABLE ALWAYS so that they also
-- fire under session_replication_role = replica.
CREATE FUNCTION celaest.audit_logs_refuse_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'celaest.audit_logs is append-only'
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = format('%s of audit entries is not allowed, for any role.', TG_OP),
              HINT = 'Audit entries are never changed or removed; record a correction with celaest.log_audit().';
END;
$$;
COMMENT ON FUNCTION celaest.audit_logs_refuse_change() IS
    'Trigger function that keeps celaest.audit_logs append-only: raises 42501 on UPDATE, DELETE and TRUNCATE.';

CREATE TRIGGER audit_logs_no_update_delete
    BEFORE UPDATE OR DELETE ON celaest.audit_logs
    FOR EACH ROW EXECUTE FUNCTION celaest.audit_logs_refuse_change();
CREATE TRIGGER audit_logs_no_truncate
    BEFORE TRUNCATE ON celaest.audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION celaest.audit_logs_refuse_change();
ALTER TABLE celaest.audit_logs ENABLE ALWAYS TRIGGER audit_logs_no_update_delete;
ALTER TABLE celaest.audit_logs ENABLE ALWAYS TRIGGER audit_logs_no_truncate;

-- ---------------------------------------------------------------------------
-- telemetry_events
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.telemetry_events (
    id              UUID            NOT NULL DEFAULT uuid_generate_v4(),
    organization_id UUID,
    user_id         UUID,
    session_id      VARCHAR(100),
    event_type      VARCHAR(100)    NOT NULL,
    event_category  VARCHAR(50),
    event_name      VARCHAR(200)    NOT NULL,
    properties      JSONB           NOT NULL DEFAULT '{}',
    page_url        VARCHAR(500),
    referrer        VARCHAR(500),
    ip_address      INET,
    user_agent      VARCHAR(500),
    device_type     VARCHAR(20),
    browser         VARCHAR(50),
    os              VARCHAR(50),
    created_at      TIMESTAMPTZ     NOT NULL DEFAULT NOW(),

    CONSTRAINT telemetry_events_pkey PRIMARY KEY (id),
    -- SET NULL: behavioural analytics are anonymised, not lost, when their
    -- organization or user is removed.
    CONSTRAINT telemetry_events_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES celaest.organizations (id) ON DELETE SET NULL,
    CONSTRAINT telemetry_events_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES celaest.users_profile (id) ON DELETE SET NULL,
    CONSTRAINT telemetry_events_event_type_not_blank CHECK (btrim(event_type) <> ''),
    CONSTRAINT telemetry_events_event_name_not_blank CHECK (btrim(event_name) <> ''),
    CONSTRAINT telemetry_events_properties_is_object CHECK (jsonb_typeof(properties) = 'object'),
    CONSTRAINT telemetry_events_device_type_valid CHECK (device_type IN ('desktop', 'mobile', 'tablet', 'bot'))
);

-- Tenant analytics by time (also serves the organization_id FK).
CREATE INDEX telemetry_events_organization_id_created_at_idx ON celaest.telemetry_events (organization_id, created_at);
CREATE INDEX telemetry_events_user_id_idx ON celaest.telemetry_events (user_id);
-- High-volume, append-only, physically in time order: a BRIN index answers time
-- ranges at a tiny fraction of a B-tree's size.
CREATE INDEX telemetry_events_created_at_brin ON celaest.telemetry_events USING brin (created_at);

COMMENT ON TABLE celaest.telemetry_events IS
    'Telemetry events for behavioural analytics.';
COMMENT ON COLUMN celaest.telemetry_events.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.telemetry_events.organization_id IS 'Organization (FK -> organizations).';
COMMENT ON COLUMN celaest.telemetry_events.user_id IS 'User (FK -> users_profile).';
COMMENT ON COLUMN celaest.telemetry_events.session_id IS 'Session id.';
COMMENT ON COLUMN celaest.telemetry_events.event_type IS 'Event type.';
COMMENT ON COLUMN celaest.telemetry_events.event_category IS 'Event category.';
COMMENT ON COLUMN celaest.telemetry_events.event_name IS 'Event name.';
COMMENT ON COLUMN celaest.telemetry_events.properties IS 'Event properties (JSON object).';
COMMENT ON COLUMN celaest.telemetry_events.page_url IS 'Page URL.';
COMMENT ON COLUMN celaest.telemetry_events.referrer IS 'Referrer.';
COMMENT ON COLUMN celaest.telemetry_events.ip_address IS 'Client IP address.';
COMMENT ON COLUMN celaest.telemetry_events.user_agent IS 'Client user agent.';
COMMENT ON COLUMN celaest.telemetry_events.device_type IS 'Device type: desktop, mobile, tablet or bot (a crawler).';
COMMENT ON COLUMN celaest.telemetry_events.browser IS 'Browser.';
COMMENT ON COLUMN celaest.telemetry_events.os IS 'Operating system.';
COMMENT ON COLUMN celaest.telemetry_events.created_at IS 'Event time.';

-- pg_dump: these rows are user data (see module 10).
SELECT pg_catalog.pg_extension_config_dump('celaest.audit_logs', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.telemetry_events', '');

-- ---------------------------------------------------------------------------
-- log_audit (data dictionary, "Funciones Disponibles")
-- ---------------------------------------------------------------------------
-- SECURITY INVOKER: writing audit rows takes INSERT on audit_logs (and passes its
-- row-level security), so nobody can forge entries for other users or tenants
-- through this function. The extension's own SECURITY DEFINER code calls it freely.
-- p_user_id is stored as given: NULL records a system action.
CREATE FUNCTION celaest.log_audit(
    p_user_id       uuid,
    p_org_id        uuid,
    p_action        celaest.audit_action,
    p_resource_type text,
    p_resource_id   uuid,
    p_description   text,
    p_changes       jsonb DEFAULT NULL
)
RETURNS uuid
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id         uuid;
    v_request_id text := nullif(btrim(current_setting('celaest.request_id', true)), '');
    v_client_ip  text := nullif(btrim(current_setting('celaest.client_ip', true)), '');
    v_user_agent text := nullif(btrim(current_setting('celaest.user_agent', true)), '');
BEGIN
    IF p_resource_type IS NULL OR btrim(p_resource_type) = '' THEN
        RAISE EXCEPTION 'celaest.log_audit: p_resource_type must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the kind of resource, e.g. ''license''.';
    END IF;
    IF p_action IS NULL THEN
        RAISE EXCEPTION 'celaest.log_audit: p_action must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_changes IS NOT NULL AND jsonb_typeof(p_changes) <> 'object' THEN
        RAISE EXCEPTION 'celaest.log_audit: p_changes must be a JSON object, not %', jsonb_typeof(p_changes)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass {"before": {...}, "after": {...}} or NULL.';
    END IF;

    -- Request context comes from the session settings. Over-long values are cut to
    -- the column width: an audit write must not fail because a header was long.
    -- A malformed celaest.client_ip is a caller bug and fails the inet cast (22P02).
    INSERT INTO celaest.audit_logs
        (user_id, organization_id, action, resource_type, resource_id, description, changes,
         request_id, ip_address, user_agent)
    VALUES
        (p_user_id, p_org_id, p_action, p_resource_type, p_resource_id, p_description, p_changes,
         left(v_request_id, 100), v_client_ip::inet, left(v_user_agent, 500))
    RETURNING id INTO v_id;

    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION celaest.log_audit(uuid, uuid, celaest.audit_action, text, uuid, text, jsonb) IS
    'Appends one entry to celaest.audit_logs and returns its id. request_id, ip_address and user_agent come from the settings celaest.request_id, celaest.client_ip and celaest.user_agent when set. Raises 22023 for an empty resource type, a NULL action or non-object changes.';

-- ---------------------------------------------------------------------------
-- Automatic auditing
-- ---------------------------------------------------------------------------
-- One AFTER ROW trigger function for every audited table; TG_ARGV[0] is the
-- resource_type recorded. changes = {"before": {...}, "after": {...}}: for an
-- UPDATE only the columns that changed (updated_at aside); for an INSERT the whole
-- new row (before = null); for a DELETE the whole old row (after = null).
--
-- Per table:
--   licenses      license_key masked (it is a bearer credential).
--   ai_api_pool   key_value_encrypted masked, always.
--   system_config value masked on each side whose is_sensitive is true; the key
--                 (not a uuid) goes into the description.
--   users_profile only access-relevant columns (id, organization_id, role, scopes,
--                 deleted_at) are copied: audit rows can never be erased, so
--                 personal data (names, email, phone, preferences) stays out.
-- Which UPDATEs are audited at all is decided by the triggers' WHEN clauses, so a
-- skipped update costs neither a queued trigger event nor a function call.
--
-- SECURITY DEFINER: the audit row must be written whoever changes the audited
-- table, whatever their own rights on audit_logs.
CREATE FUNCTION celaest.audit_row_change()
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
        RAISE EXCEPTION 'celaest.audit_row_change() only audits CELAEST tables (AFTER ... FOR EACH ROW)'
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
    v_actor := celaest.current_user_id_or_null();
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
COMMENT ON FUNCTION celaest.audit_row_change() IS
    'AFTER ROW trigger function that records an INSERT, UPDATE or DELETE in celaest.audit_logs with a before/after diff of the changed columns (secrets masked as "***"). TG_ARGV[0] is the resource_type.';

-- licenses: every change except pure usage accounting. consume_quota and the AI
-- call path bump ai_requests_used / storage_used_bytes on every request: auditing
-- those would put one audit row (and one trigger call) on the hot path of every
-- AI call and bury the meaningful entries; license_usage_log is their history.
CREATE TRIGGER licenses_audit_insert_delete
    AFTER INSERT OR DELETE ON celaest.licenses
    FOR EACH ROW EXECUTE FUNCTION celaest.audit_row_change('license');
-- UPDATE OF the audited columns: the per-call usage bump (SET ai_requests_used = ...) does
-- not even evaluate the WHEN clause, whose to_jsonb() of both rows costs more than the bump.
CREATE TRIGGER licenses_audit_update
    AFTER UPDATE OF id, organization_id, plan_id, license_key, license_key_hash, status, starts_at,
                    expires_at, trial_ends_at, billing_cycle, next_billing_date, custom_limits,
                    current_period_start, current_period_end, notes, metadata, created_at,
                    suspended_at, cancelled_at
    ON celaest.licenses
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - '{ai_requests_used,storage_used_bytes,updated_at}'::text[])
          IS DISTINCT FROM (to_jsonb(NEW) - '{ai_requests_used,storage_used_bytes,updated_at}'::text[]))
    EXECUTE FUNCTION celaest.audit_row_change('license');

CREATE TRIGGER subscription_plans_audit
    AFTER INSERT OR UPDATE OR DELETE ON celaest.subscription_plans
    FOR EACH ROW EXECUTE FUNCTION celaest.audit_row_change('subscription_plan');

-- ai_api_pool: every change except usage and health bookkeeping.
-- increment_api_key_usage runs after every provider call and the health checker
-- touches every key on each pass; auditing those counters would add a trigger call
-- and an audit row to the hot path and drown configuration changes in noise.
CREATE TRIGGER ai_api_pool_audit_insert_delete
    AFTER INSERT OR DELETE ON celaest.ai_api_pool
    FOR EACH ROW EXECUTE FUNCTION celaest.audit_row_change('api_key');
-- UPDATE OF the audited columns: usage and health bookkeeping skips the trigger entirely.
CREATE TRIGGER ai_api_pool_audit_update
    AFTER UPDATE OF id, provider, key_name, key_value_encrypted, key_hint, is_active, rate_limit_rpm,
                    rate_limit_tpm, rate_limit_rpd, priority, weight, notes, metadata, created_at,
                    expires_at
    ON celaest.ai_api_pool
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - '{usage_count,tokens_used,last_used_at,last_health_check,consecutive_failures,is_healthy,updated_at}'::text[])
          IS DISTINCT FROM (to_jsonb(NEW) - '{usage_count,tokens_used,last_used_at,last_health_check,consecutive_failures,is_healthy,updated_at}'::text[]))
    EXECUTE FUNCTION celaest.audit_row_change('api_key');

-- users_profile: creation, removal, and changes of access rights only (role,
-- scopes, organization, soft delete); logins and preferences are not audit events.
CREATE TRIGGER users_profile_audit_insert_delete
    AFTER INSERT OR DELETE ON celaest.users_profile
    FOR EACH ROW EXECUTE FUNCTION celaest.audit_row_change('user');
CREATE TRIGGER users_profile_audit_update
    AFTER UPDATE ON celaest.users_profile
    FOR EACH ROW
    WHEN (OLD.role IS DISTINCT FROM NEW.role
          OR OLD.scopes IS DISTINCT FROM NEW.scopes
          OR OLD.organization_id IS DISTINCT FROM NEW.organization_id
          OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION celaest.audit_row_change('user');
