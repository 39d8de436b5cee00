-- Access levels, the acting user by level, and Supabase's database linter checks (issue 11).
-- Leaves behind, for the later tests, a Supabase-shaped database: the roles anon,
-- authenticated (level authenticated) and service_role (level service), all NOINHERIT as on
-- Supabase, and auth.uid() reading the JWT claims of the request.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT;
    END IF;
END;
$$;
CREATE SCHEMA auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
-- Supabase's definition: the single-claim setting, else the "sub" of the claims object.
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;

-- The three levels are group roles, NOLOGIN.
SELECT rolname, rolcanlogin, rolinherit FROM pg_roles WHERE rolname LIKE 'celaest\_%' ORDER BY rolname;

-- Supabase's roles were created after the extension: granted now, as the install does.
SELECT celaest.grant_access('service_role', 'service');
SELECT celaest.grant_access('authenticated', 'authenticated');
SELECT role_name, level, can_login, inherits FROM celaest.access_levels()
 WHERE role_name NOT IN (SELECT rolname FROM pg_roles WHERE rolsuper)
 ORDER BY role_name;

-- Refusals.
SELECT celaest.grant_access('anon', 'admin');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.grant_access('celaest_service', 'service');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET ROLE service_role;
SELECT celaest.grant_access('anon', 'service');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.revoke_access('authenticated');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM celaest.access_levels();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Nothing executable by PUBLIC (or anon) but version(); no table or view readable by them.
SELECT p.proname AS public_function
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace
   AND has_function_privilege('anon', p.oid, 'EXECUTE')
 ORDER BY 1;
SELECT c.relname AS anon_readable
  FROM pg_class AS c
 WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind IN ('r', 'v')
   AND has_table_privilege('anon', c.oid, 'SELECT')
 ORDER BY 1;
-- Functions that write, spend or run the queue: executable by no level.
SELECT p.proname AS owner_only_but_granted
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace
   AND p.proname = ANY (celaest._owner_only_functions())
   AND (has_function_privilege('service_role', p.oid, 'EXECUTE')
        OR has_function_privilege('authenticated', p.oid, 'EXECUTE')
        OR has_function_privilege('celaest_readonly', p.oid, 'EXECUTE'))
 ORDER BY 1;
-- Internal functions that write: executable by no tenant level.
SELECT p.proname AS tenant_may_run_internal_writer
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace AND p.proname LIKE '\_%' AND p.provolatile = 'v'
   AND p.proname <> '_config_set_as_super_admin'
   AND (has_function_privilege('authenticated', p.oid, 'EXECUTE')
        OR has_function_privilege('celaest_readonly', p.oid, 'EXECUTE'))
 ORDER BY 1;
-- What an end user may call that writes, spends or waits.
SELECT p.proname AS authenticated_volatile
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace AND p.provolatile = 'v'
   AND has_function_privilege('authenticated', p.oid, 'EXECUTE')
 ORDER BY 1;
SELECT p.proname AS readonly_volatile
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace AND p.provolatile = 'v'
   AND has_function_privilege('celaest_readonly', p.oid, 'EXECUTE')
 ORDER BY 1;
-- The key ciphertext: selectable by no level.
SELECT r.rolname, has_column_privilege(r.rolname, 'celaest.ai_api_pool', 'key_value_encrypted', 'SELECT') AS ciphertext
  FROM pg_roles AS r
 WHERE r.rolname IN ('anon', 'authenticated', 'service_role', 'celaest_readonly')
 ORDER BY 1;

-- ---------------------------------------------------------------------------
-- Supabase's database linter (supabase/splinter), the checks that apply to a schema
-- exposed through the API. Each query lists offenders: every result must be empty.
-- ---------------------------------------------------------------------------
-- 0013 rls_disabled_in_public: every table has row-level security enabled.
SELECT c.relname AS rls_disabled
  FROM pg_class AS c
 WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity;
-- 0007 policy_exists_rls_disabled / 0008 rls_enabled_no_policy.
SELECT c.relname AS rls_without_policy
  FROM pg_class AS c
 WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind = 'r' AND c.relrowsecurity
   AND NOT EXISTS (SELECT 1 FROM pg_policy AS p WHERE p.polrelid = c.oid);
-- 0011 function_search_path_mutable, for SECURITY DEFINER functions.
SELECT p.oid::regprocedure AS definer_with_mutable_search_path
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace AND p.prosecdef
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) AS c (setting) WHERE c.setting LIKE 'search\_path=%');
-- 0015 rls_references_user_metadata: no policy reads the JWT's user_metadata.
SELECT schemaname, tablename, policyname AS reads_user_metadata
  FROM pg_policies
 WHERE schemaname = 'celaest'
   AND (coalesce(qual, '') || coalesce(with_check, '')) ~ 'user_metadata';
-- 0010 security_definer_view: every view runs with the caller's rights (security_invoker).
SELECT c.relname AS view_bypassing_rls
  FROM pg_class AS c
 WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind IN ('v', 'm')
   AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false);
-- 0002 auth_users_exposed / writes by anon: no function anon may execute is volatile.
SELECT p.oid::regprocedure AS anon_may_write
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace AND p.provolatile = 'v'
   AND has_function_privilege('anon', p.oid, 'EXECUTE');
-- 0026/0027 (materialized views, foreign tables in the API): none.
SELECT c.relname AS matview_or_foreign
  FROM pg_class AS c
 WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind IN ('m', 'f');

-- ---------------------------------------------------------------------------
-- The acting user, by level
-- ---------------------------------------------------------------------------
BEGIN;
INSERT INTO celaest.organizations (id, name, slug) VALUES
    ('ac000000-0000-4000-8000-000000000001', 'Access A', 'access-a'),
    ('ac000000-0000-4000-8000-000000000002', 'Access B', 'access-b');
INSERT INTO celaest.users_profile (id, organization_id, email, role) VALUES
    ('ac100000-0000-4000-8000-00000000000a', 'ac000000-0000-4000-8000-000000000001', 'a@access.test', 'operator'),
    ('ac100000-0000-4000-8000-00000000000b', 'ac000000-0000-4000-8000-000000000002', 'b@access.test', 'admin');

-- A service caller names the user: the setting, else auth.uid().
SET LOCAL ROLE service_role;
SET LOCAL celaest.user_id = 'ac100000-0000-4000-8000-00000000000b';
SET LOCAL request.jwt.claim.sub = 'ac100000-0000-4000-8000-00000000000a';
SELECT celaest.current_user_id() AS service_named, celaest._caller_level() AS level;
SELECT slug FROM celaest.organizations WHERE slug LIKE 'access-%' ORDER BY slug;
RESET celaest.user_id;
SELECT celaest.current_user_id() AS service_from_jwt;
-- Acting for nobody, a service caller reads every organization.
RESET request.jwt.claim.sub;
SELECT slug FROM celaest.organizations WHERE slug LIKE 'access-%' ORDER BY slug;

-- An end user is auth.uid() alone.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claim.sub = 'ac100000-0000-4000-8000-00000000000a';
SELECT celaest.current_user_id() AS end_user, celaest._caller_level() AS level;
SELECT slug FROM celaest.organizations WHERE slug LIKE 'access-%' ORDER BY slug;
-- The same id in celaest.user_id is harmless; another one is refused, naming nobody.
SET LOCAL celaest.user_id = 'ac100000-0000-4000-8000-00000000000a';
SELECT celaest.current_user_id() AS same_user;
SET LOCAL celaest.user_id = 'ac100000-0000-4000-8000-00000000000b';
SELECT celaest.current_user_id();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM celaest.organizations;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET celaest.user_id;
SELECT celaest._acting_user_id('ac100000-0000-4000-8000-00000000000b', 'run_prompt');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET request.jwt.claim.sub;
SELECT celaest._acting_user_id(NULL, 'run_prompt');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;

-- anon has no level: it acts for nobody.
BEGIN;
SET LOCAL ROLE anon;
SELECT celaest.version() LIKE 'celaest %' AS anon_may_ask_the_version;
SELECT celaest.current_user_id();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SET LOCAL ROLE anon;
SELECT celaest.run_prompt('x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;

-- A soft-deleted organization acts for nobody.
BEGIN;
INSERT INTO celaest.organizations (id, name, slug, deleted_at) VALUES
    ('ac000000-0000-4000-8000-000000000003', 'Access gone', 'access-gone', now());
INSERT INTO celaest.users_profile (id, organization_id, email, role) VALUES
    ('ac100000-0000-4000-8000-00000000000c', 'ac000000-0000-4000-8000-000000000003', 'c@access.test', 'admin');
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claim.sub = 'ac100000-0000-4000-8000-00000000000c';
SELECT celaest._current_org_id_or_null() AS org_of_deleted, count(*) AS visible_orgs FROM celaest.organizations;
SELECT celaest.current_org_id();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;

-- The acting identity is worked out once per statement and kept only while nothing it
-- depends on has changed: the settings (even within one statement), the profile (this
-- transaction's own writes), the role.
BEGIN;
INSERT INTO celaest.organizations (id, name, slug) VALUES
    ('ac000000-0000-4000-8000-000000000004', 'Access D', 'access-d');
INSERT INTO celaest.users_profile (id, organization_id, email, role) VALUES
    ('ac100000-0000-4000-8000-00000000000d', 'ac000000-0000-4000-8000-000000000004', 'd@access.test', 'admin');
SET LOCAL celaest.user_id = 'ac100000-0000-4000-8000-00000000000a';
SELECT celaest._current_user_id_or_null() AS first,
       set_config('celaest.user_id', 'ac100000-0000-4000-8000-00000000000d', true) IS NOT NULL AS switched,
       celaest._current_user_id_or_null() AS second;
SELECT celaest._acting_user_may('users:manage') AS admin_manages_users, celaest._current_org_id_or_null() AS org;
UPDATE celaest.users_profile SET role = 'viewer' WHERE id = 'ac100000-0000-4000-8000-00000000000d';
SELECT celaest._acting_user_may('users:manage') AS viewer_manages_users;
UPDATE celaest.users_profile SET deleted_at = now() WHERE id = 'ac100000-0000-4000-8000-00000000000d';
SELECT celaest._current_org_id_or_null() AS org_of_deleted_user, celaest._sees_every_org() AS sees_every_org;
RESET celaest.user_id;
SET LOCAL ROLE authenticated;
SELECT celaest._caller_level() AS level_after_set_role;
SELECT celaest._acting_user_may('billing:everything');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET LOCAL celaest.user_id = 'not-a-uuid';
SELECT celaest._current_user_id_or_null();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;

-- revoke_access and grant_access again; a level granted to a NOINHERIT role holds directly.
CREATE ROLE regress_access_reporter NOLOGIN NOINHERIT;
SELECT celaest.grant_access('regress_access_reporter', 'readonly');
SELECT has_table_privilege('regress_access_reporter', 'celaest.licenses', 'SELECT') AS reads,
       has_table_privilege('regress_access_reporter', 'celaest.licenses', 'UPDATE') AS writes,
       has_function_privilege('regress_access_reporter', 'celaest.run_prompt(text, jsonb, uuid, jsonb)', 'EXECUTE') AS runs;
SELECT celaest.grant_access('regress_access_reporter', 'service');
SELECT level FROM celaest.access_levels() WHERE role_name = 'regress_access_reporter';
SELECT celaest.revoke_access('regress_access_reporter');
SELECT count(*) AS levels_left FROM celaest.access_levels() WHERE role_name = 'regress_access_reporter';
SELECT has_table_privilege('regress_access_reporter', 'celaest.licenses', 'SELECT') AS reads_after_revoke;
DROP ROLE regress_access_reporter;

-- ---------------------------------------------------------------------------
-- The key pool is a platform object: service callers and super_admins change it, through
-- its functions and (columns as service has them) directly; every other caller gets 42501
-- before anything is done. No end user ever reads a ciphertext.
-- ---------------------------------------------------------------------------
BEGIN;
INSERT INTO celaest.organizations (id, name, slug) VALUES
    ('ac000000-0000-4000-8000-000000000005', 'Access E', 'access-e');
INSERT INTO celaest.users_profile (id, organization_id, email, role) VALUES
    ('ac100000-0000-4000-8000-0000000000e1', 'ac000000-0000-4000-8000-000000000005', 'sa@access.test', 'super_admin'),
    ('ac100000-0000-4000-8000-0000000000e2', 'ac000000-0000-4000-8000-000000000005', 'ad@access.test', 'admin');
INSERT INTO celaest.ai_api_pool (id, provider, key_name, key_value_encrypted, key_hint) VALUES
    ('ac200000-0000-4000-8000-000000000001', 'openai', 'access key', '\x00', 'abcd');
-- The outbound guard's resolver, for a public name without DNS (superuser-only setting).
SET LOCAL celaest.resolve_override = 'api.openai.com=8.8.8.8';
-- A service caller (not a superuser) bumps a key's usage; an unknown key is P0002.
SET LOCAL ROLE service_role;
SELECT celaest.increment_api_key_usage('ac200000-0000-4000-8000-000000000001', 10);
SELECT celaest.increment_api_key_usage('ac200000-0000-4000-8000-0000000000ff', 10);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.increment_api_key_usage('ac200000-0000-4000-8000-000000000001', -1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- ... acting for a user too (any user: a service caller may call every function).
SET LOCAL celaest.user_id = 'ac100000-0000-4000-8000-0000000000e2';
SELECT celaest.increment_api_key_usage('ac200000-0000-4000-8000-000000000001', 5);
RESET celaest.user_id;
SELECT usage_count, tokens_used, last_used_at IS NOT NULL AS used FROM celaest.ai_api_pool
 WHERE id = 'ac200000-0000-4000-8000-000000000001';
-- A super_admin end user: every key-pool function, the table's writable columns, no ciphertext.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claim.sub = 'ac100000-0000-4000-8000-0000000000e1';
SELECT celaest.increment_api_key_usage('ac200000-0000-4000-8000-000000000001', 1);
SELECT celaest.increment_api_key_usage('ac200000-0000-4000-8000-0000000000ff', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.add_api_key('anthropic', 'super admin key', 'sk-ant-superadmin-0001',
                           '{"priority": 3, "notes": "by a super_admin"}') IS NOT NULL AS added;
SELECT key_name, key_hint, priority, metadata FROM celaest.ai_api_pool WHERE key_name = 'super admin key';
-- A base URL set by a super_admin end user (no superuser) passes the outbound guard.
SELECT celaest.add_api_key('openai', 'inward key', 'sk-inward-000000001', '{"base_url": "http://10.1.2.3:8080/v1"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.add_api_key('openai', 'allowed key', 'sk-allowed-00000001',
                           '{"base_url": "https://api.openai.com/v1"}') IS NOT NULL AS added_allowed;
SELECT metadata FROM celaest.ai_api_pool WHERE key_name = 'allowed key';
SELECT celaest.rotate_api_key((SELECT id FROM celaest.ai_api_pool WHERE key_name = 'super admin key'),
                              'sk-ant-superadmin-0002');
SELECT key_hint FROM celaest.ai_api_pool WHERE key_name = 'super admin key';
SELECT * FROM celaest.check_api_keys('ac200000-0000-4000-8000-0000000000ff');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE celaest.ai_api_pool SET priority = 7, is_active = false WHERE key_name = 'super admin key';
SELECT priority, is_active FROM celaest.ai_api_pool WHERE key_name = 'super admin key';
UPDATE celaest.ai_api_pool SET metadata = '{"base_url": "http://10.1.2.3"}' WHERE key_name = 'super admin key';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT key_value_encrypted FROM celaest.ai_api_pool;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT provider, keys_total FROM celaest.v_api_pool_status WHERE provider IN ('openai', 'anthropic') ORDER BY 1;
SELECT count(*) AS view_columns_with_ciphertext FROM information_schema.columns
 WHERE table_schema = 'celaest' AND table_name = 'v_api_pool_status' AND column_name LIKE '%encrypted%';
DELETE FROM celaest.ai_api_pool WHERE key_name = 'allowed key';
SELECT count(*) AS allowed_key_left FROM celaest.ai_api_pool WHERE key_name = 'allowed key';
-- An admin of an organization is not a super_admin: refused before anything is done (an
-- unknown key, a bad argument, a secret: the answer is 42501 all the same).
SET LOCAL request.jwt.claim.sub = 'ac100000-0000-4000-8000-0000000000e2';
SELECT celaest.increment_api_key_usage('ac200000-0000-4000-8000-000000000001', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.increment_api_key_usage('ac200000-0000-4000-8000-0000000000ff', -1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.add_api_key('openai', 'admin key', 'sk-admin-00000001');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.add_api_key(NULL, NULL, NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.rotate_api_key('ac200000-0000-4000-8000-000000000001', 'sk-admin-00000002');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM celaest.check_api_keys();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE celaest.ai_api_pool SET priority = 9 RETURNING id;
DELETE FROM celaest.ai_api_pool RETURNING id;
-- An end user without a profile, and a readonly caller: refused too.
SET LOCAL request.jwt.claim.sub = 'ac100000-0000-4000-8000-0000000000f0';
SELECT celaest.increment_api_key_usage('ac200000-0000-4000-8000-000000000001', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET LOCAL ROLE celaest_readonly;
SELECT celaest.increment_api_key_usage('ac200000-0000-4000-8000-000000000001', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT usage_count, tokens_used FROM celaest.ai_api_pool WHERE id = 'ac200000-0000-4000-8000-000000000001';
SELECT priority, is_active, key_hint FROM celaest.ai_api_pool WHERE key_name = 'super admin key';
SELECT resource_type, action FROM celaest.audit_logs
 WHERE resource_type = 'api_key' AND user_id = 'ac100000-0000-4000-8000-0000000000e1'
 ORDER BY created_at, action;
ROLLBACK;

-- Licensing and ROI aggregation stay with service callers (README, "Access levels").
BEGIN;
INSERT INTO celaest.organizations (id, name, slug) VALUES
    ('ac000000-0000-4000-8000-000000000006', 'Access F', 'access-f');
INSERT INTO celaest.users_profile (id, organization_id, email, role) VALUES
    ('ac100000-0000-4000-8000-0000000000f1', 'ac000000-0000-4000-8000-000000000006', 'sf@access.test', 'super_admin');
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claim.sub = 'ac100000-0000-4000-8000-0000000000f1';
SELECT p.proname, has_function_privilege('authenticated', p.oid, 'EXECUTE') AS end_users_may
  FROM pg_proc AS p
 WHERE p.pronamespace = 'celaest'::regnamespace
   AND p.proname IN ('issue_license', 'set_license_status', 'refresh_licenses', 'aggregate_roi')
 ORDER BY 1;
ROLLBACK;

-- is_feature_enabled acts for the caller: below service, a p_user_id (or celaest.user_id)
-- other than auth.uid() is 42501 naming nobody, whatever the flag; service names anyone.
BEGIN;
INSERT INTO celaest.organizations (id, name, slug) VALUES
    ('ac000000-0000-4000-8000-000000000007', 'Access G', 'access-g');
INSERT INTO celaest.users_profile (id, organization_id, email, role) VALUES
    ('ac100000-0000-4000-8000-0000000000a1', 'ac000000-0000-4000-8000-000000000007', 'g1@access.test', 'viewer'),
    ('ac100000-0000-4000-8000-0000000000a2', 'ac000000-0000-4000-8000-000000000007', 'g2@access.test', 'viewer');
INSERT INTO celaest.feature_flags (flag_key, name, is_enabled, target_type, target_users) VALUES
    ('access-users-flag', 'Access users flag', true, 'users', ARRAY['ac100000-0000-4000-8000-0000000000a2']::uuid[]),
    ('access-all-flag', 'Access all flag', true, 'all', NULL);
SET LOCAL ROLE service_role;
SELECT celaest.is_feature_enabled('access-users-flag', 'ac100000-0000-4000-8000-0000000000a2') AS service_names_g2,
       celaest.is_feature_enabled('access-users-flag', 'ac100000-0000-4000-8000-0000000000a1') AS service_names_g1;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claim.sub = 'ac100000-0000-4000-8000-0000000000a1';
SELECT celaest.is_feature_enabled('access-users-flag') AS own_default,
       celaest.is_feature_enabled('access-users-flag', 'ac100000-0000-4000-8000-0000000000a1') AS own_named;
SELECT celaest.is_feature_enabled('access-users-flag', 'ac100000-0000-4000-8000-0000000000a2');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.is_feature_enabled('access-all-flag', 'ac100000-0000-4000-8000-0000000000a2');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.is_feature_enabled('no-such-flag', 'ac100000-0000-4000-8000-0000000000a2');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET LOCAL celaest.user_id = 'ac100000-0000-4000-8000-0000000000a2';
SELECT celaest.is_feature_enabled('access-users-flag');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET celaest.user_id;
SET LOCAL request.jwt.claim.sub = 'ac100000-0000-4000-8000-0000000000a2';
SELECT celaest.is_feature_enabled('access-users-flag') AS g2_own_default;
ROLLBACK;
