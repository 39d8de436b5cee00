-- CELAEST — module 85: row-level security on every table (API.md, "Who is calling, and who
-- may act for whom"). The privileges themselves (which level may read or write what) are
-- granted by module 84 (_apply_access_privileges, run at the end of the install script).
--
-- * Tenant tables: a caller reads the rows of its acting user's organization; readonly
--   callers, service callers acting for no user and super_admins read every organization.
--   Writes: service callers acting for no user and super_admins everywhere; a manager or
--   admin the users of its organization (users_profile), an admin its organization's
--   settings (organizations). A user of organization A reads and writes zero rows of B.
-- * Platform tables (plans, models, prompts, flags, key pool, system config): read by every
--   level (the key pool only by service, readonly and super_admins, never its ciphertext,
--   which no level may select; sensitive config values only by service), written only by
--   service callers and super_admins.
-- * RLS is enabled, not FORCEd: the extension's own SECURITY DEFINER functions run as the
--   owner and must see every row (the queue, the ledger, exact counts); each of them decides
--   for its caller itself (module 84: _ai_caller, _batch_access).
--
-- The policies call the helper functions through scalar subqueries, so each is evaluated
-- once per statement (an InitPlan), not once per row.

-- ---------------------------------------------------------------------------
-- Tenant tables
-- ---------------------------------------------------------------------------
ALTER TABLE celaest.organizations ENABLE ROW LEVEL SECURITY;
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
