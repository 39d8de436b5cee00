-- Privileges and row-level tenant isolation. Everything is rolled back, the test
-- role included.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on

-- Which tables have row-level security (enabled, not forced) and which policies.
-- (The tenant below is an end user: level authenticated, identified by auth.uid(), which
-- the access test set up.)
SELECT c.relname AS table_name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced
  FROM pg_class AS c
 WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind = 'r'
 ORDER BY c.relname;
SELECT tablename, policyname, cmd, roles, qual
  FROM pg_policies
 WHERE schemaname = 'celaest'
 ORDER BY tablename, policyname;

-- What PUBLIC may do on the tables and views.
SELECT c.relname AS relation,
       string_agg(p.privilege_type, ', ' ORDER BY p.privilege_type) AS public_privileges
  FROM pg_class AS c
  LEFT JOIN LATERAL aclexplode(c.relacl) AS p ON p.grantee = 0
 WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind IN ('r', 'v')
 GROUP BY c.relname
 ORDER BY c.relname;

BEGIN;
CREATE ROLE regress_celaest_tenant NOLOGIN;
SELECT celaest.grant_access('regress_celaest_tenant', 'authenticated');

INSERT INTO celaest.organizations (id, name, slug) VALUES
    ('50000000-0000-4000-8000-000000000001', 'Security One', 'sec-one'),
    ('50000000-0000-4000-8000-000000000002', 'Security Two', 'sec-two');
INSERT INTO celaest.users_profile (id, organization_id, email, role) VALUES
    ('51000000-0000-4000-8000-000000000001', '50000000-0000-4000-8000-000000000001', 'one@sec.test', 'operator'),
    ('51000000-0000-4000-8000-000000000002', '50000000-0000-4000-8000-000000000002', 'two@sec.test', 'admin'),
    ('51000000-0000-4000-8000-000000000009', '50000000-0000-4000-8000-000000000001', 'root@sec.test', 'super_admin'),
    ('51000000-0000-4000-8000-00000000000a', NULL, 'loner@sec.test', 'viewer');
INSERT INTO celaest.subscription_plans (id, code, name) VALUES
    ('52000000-0000-4000-8000-000000000001', 'sec-plan', 'Security plan');
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status) VALUES
    ('50000000-0000-4000-8000-000000000001', '52000000-0000-4000-8000-000000000001', 'sec-key-1', 'active'),
    ('50000000-0000-4000-8000-000000000002', '52000000-0000-4000-8000-000000000001', 'sec-key-2', 'active');
INSERT INTO celaest.processed_tasks (organization_id, user_id, status) VALUES
    ('50000000-0000-4000-8000-000000000001', '51000000-0000-4000-8000-000000000001', 'completed'),
    ('50000000-0000-4000-8000-000000000002', '51000000-0000-4000-8000-000000000002', 'completed'),
    ('50000000-0000-4000-8000-000000000002', '51000000-0000-4000-8000-000000000002', 'failed');
INSERT INTO celaest.telemetry_events (organization_id, event_type, event_name) VALUES
    ('50000000-0000-4000-8000-000000000001', 'ui', 'one'),
    ('50000000-0000-4000-8000-000000000002', 'ui', 'two'),
    (NULL, 'system', 'global');
INSERT INTO celaest.ai_api_pool (provider, key_name, key_value_encrypted) VALUES ('groq', 'sec-key', '\x00');
INSERT INTO celaest.system_config (key, value) VALUES ('sec.setting', '1');

SET LOCAL ROLE regress_celaest_tenant;

-- Nobody set: no tenant rows, no error.
SELECT count(*) AS visible_orgs FROM celaest.organizations;
SELECT count(*) AS visible_licenses FROM celaest.licenses;

-- A user of org one sees org one only: tables, views, audit history.
SET LOCAL request.jwt.claim.sub = '51000000-0000-4000-8000-000000000001';
SELECT slug FROM celaest.organizations ORDER BY slug;
SELECT email FROM celaest.users_profile ORDER BY email;
SELECT license_key FROM celaest.licenses ORDER BY license_key;
SELECT organization_slug, status FROM celaest.v_active_licenses ORDER BY organization_slug;
SELECT tasks_total, tasks_completed FROM celaest.v_daily_task_metrics;
SELECT event_name FROM celaest.telemetry_events ORDER BY event_name;
SELECT resource_type, description FROM celaest.audit_logs ORDER BY resource_type, description;
-- The catalog is readable.
SELECT code FROM celaest.subscription_plans WHERE code = 'sec-plan';
-- Secrets are not.
SELECT count(*) FROM celaest.ai_api_pool;
SELECT count(*) FROM celaest.system_config;
SELECT count(*) FROM celaest.v_api_pool_status;
-- Writes are not granted.
UPDATE celaest.licenses SET notes = 'mine now';
INSERT INTO celaest.audit_logs (action, resource_type) VALUES ('read', 'forged');
SELECT celaest.log_audit(NULL, NULL, 'read', 'forged', NULL, 'forged entry');
SELECT celaest.increment_api_key_usage('00000000-0000-4000-8000-000000000000', 1);

-- A user of org two sees org two.
SET LOCAL request.jwt.claim.sub = '51000000-0000-4000-8000-000000000002';
SELECT slug FROM celaest.organizations ORDER BY slug;
SELECT organization_slug FROM celaest.v_active_licenses ORDER BY organization_slug;
SELECT tasks_total, tasks_completed, tasks_failed FROM celaest.v_daily_task_metrics;

-- A user without an organization sees only their own profile.
SET LOCAL request.jwt.claim.sub = '51000000-0000-4000-8000-00000000000a';
SELECT count(*) AS visible_orgs FROM celaest.organizations;
SELECT email FROM celaest.users_profile ORDER BY email;

-- An id without a profile sees nothing.
SET LOCAL request.jwt.claim.sub = '51000000-0000-4000-8000-0000000000ff';
SELECT count(*) AS visible_users FROM celaest.users_profile;

-- The global administrator sees every organization.
SET LOCAL request.jwt.claim.sub = '51000000-0000-4000-8000-000000000009';
SELECT slug FROM celaest.organizations WHERE slug LIKE 'sec-%' ORDER BY slug;
SELECT organization_slug FROM celaest.v_active_licenses WHERE organization_slug LIKE 'sec-%' ORDER BY 1;
SELECT event_name FROM celaest.telemetry_events
 WHERE event_name IN ('one', 'two', 'global') ORDER BY event_name;

-- A malformed identity is an error, not "nobody".
SET LOCAL request.jwt.claim.sub = 'not-a-uuid';
SELECT count(*) FROM celaest.organizations;

-- Row-level security is not forced: the owner sees everything.
RESET ROLE;
RESET request.jwt.claim.sub;
SELECT count(*) AS owner_sees_orgs FROM celaest.organizations WHERE slug LIKE 'sec-%';
ROLLBACK;
\set ON_ERROR_ROLLBACK off

SELECT count(*) AS leftover_roles FROM pg_roles WHERE rolname = 'regress_celaest_tenant';
