-- CELAEST — security: privileges and row-level tenant isolation (Supabase style).
--
-- * Tenant tables: ROW LEVEL SECURITY enabled (not FORCEd, so the owner, superusers
--   and the extension's SECURITY DEFINER functions are unaffected). A role sees the
--   rows of its own organization (celaest._current_org_id_or_null()); a super_admin
--   (global administrator) sees all. Everyone may SELECT them, which is what the
--   security_invoker views need; writes are not granted (the extension's functions
--   write), and if a DBA grants them the same policies bound them.
-- * Catalog tables (plans, models, prompts, flags): readable by everyone.
-- * ai_api_pool and system_config: no access for non-owners. They hold secrets.
--
-- The policies call the helper functions through scalar subqueries, so each is
-- evaluated once per statement (an InitPlan), not once per row.
--
-- Identity comes from the setting celaest.user_id (or Supabase auth.uid()). Any
-- session that can run SQL can SET celaest.user_id, so this isolates tenants for
-- applications that set it on their users' behalf (or for Supabase JWT users);
-- it does not defend against roles that run arbitrary SQL.

GRANT USAGE ON SCHEMA celaest TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Tenant tables
-- ---------------------------------------------------------------------------
ALTER TABLE celaest.organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY organizations_tenant_isolation ON celaest.organizations
    USING (id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));

-- A user also always sees their own profile, with or without an organization.
ALTER TABLE celaest.users_profile ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_profile_tenant_isolation ON celaest.users_profile
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR id = (SELECT celaest._current_user_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));

ALTER TABLE celaest.licenses ENABLE ROW LEVEL SECURITY;
CREATE POLICY licenses_tenant_isolation ON celaest.licenses
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));

ALTER TABLE celaest.license_usage_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY license_usage_log_tenant_isolation ON celaest.license_usage_log
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));

ALTER TABLE celaest.task_batches ENABLE ROW LEVEL SECURITY;
CREATE POLICY task_batches_tenant_isolation ON celaest.task_batches
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));

ALTER TABLE celaest.processed_tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY processed_tasks_tenant_isolation ON celaest.processed_tasks
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));

ALTER TABLE celaest.roi_metrics ENABLE ROW LEVEL SECURITY;
CREATE POLICY roi_metrics_tenant_isolation ON celaest.roi_metrics
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));

-- Rows without an organization (global resources, system events) are visible to
-- super_admins only.
ALTER TABLE celaest.audit_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_logs_tenant_isolation ON celaest.audit_logs
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));

ALTER TABLE celaest.telemetry_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY telemetry_events_tenant_isolation ON celaest.telemetry_events
    USING (organization_id = (SELECT celaest._current_org_id_or_null())
           OR (SELECT celaest._current_user_is_super_admin()));

GRANT SELECT ON celaest.organizations, celaest.users_profile, celaest.licenses,
                celaest.license_usage_log, celaest.task_batches, celaest.processed_tasks,
                celaest.roi_metrics, celaest.audit_logs, celaest.telemetry_events
    TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Catalog tables: readable by everyone.
-- ---------------------------------------------------------------------------
GRANT SELECT ON celaest.subscription_plans, celaest.ai_models, celaest.prompts_master,
                celaest.feature_flags
    TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Secrets: owner only.
-- ---------------------------------------------------------------------------
REVOKE ALL ON celaest.ai_api_pool, celaest.system_config FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Views
-- ---------------------------------------------------------------------------
GRANT SELECT ON celaest.v_active_licenses, celaest.v_daily_task_metrics TO PUBLIC;
-- v_api_pool_status reads ai_api_pool with the caller's rights, which non-owners
-- do not have: granting it would only trade "permission denied for view" for
-- "permission denied for table". Grant it together with the pool to operators.
REVOKE ALL ON celaest.v_api_pool_status FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------
-- The audit trigger function is SECURITY DEFINER: attached to someone else's
-- table it would write audit rows for anyone. Triggers fire without an EXECUTE
-- check, so revoking EXECUTE only stops new triggers from using it.
REVOKE EXECUTE ON FUNCTION celaest._audit_row_change() FROM PUBLIC;
-- Pool bookkeeping is for the extension's own (privileged) call path.
REVOKE EXECUTE ON FUNCTION celaest.increment_api_key_usage(uuid, integer) FROM PUBLIC;
