-- Who is calling (current_user_id, current_org_id and their _or_null variants) and
-- increment_api_key_usage. Rolled back at the end.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on

-- Volatility and security of the functions of this module.
SELECT p.oid::regprocedure AS function, p.provolatile AS volatility, p.proparallel AS parallel,
       p.prosecdef AS security_definer, p.proconfig AS settings
  FROM pg_proc AS p
 WHERE p.oid IN ('celaest.current_user_id()'::regprocedure,
                 'celaest._current_user_id_or_null()'::regprocedure,
                 'celaest.current_org_id()'::regprocedure,
                 'celaest._current_org_id_or_null()'::regprocedure,
                 'celaest._current_user_is_super_admin()'::regprocedure,
                 'celaest.increment_api_key_usage(uuid, integer)'::regprocedure,
                 'celaest.log_audit(uuid, uuid, celaest.audit_action, text, uuid, text, jsonb)'::regprocedure)
 ORDER BY p.oid::regprocedure::text;

BEGIN;
INSERT INTO celaest.organizations (id, name, slug) VALUES
    ('f5000000-0000-4000-8000-000000000001', 'Functions Org', 'functions-org');
INSERT INTO celaest.users_profile (id, organization_id, email, role, deleted_at) VALUES
    ('f5100000-0000-4000-8000-000000000001', 'f5000000-0000-4000-8000-000000000001', 'member@fn.test', 'operator', NULL),
    ('f5100000-0000-4000-8000-000000000002', NULL, 'orgless@fn.test', 'viewer', NULL),
    ('f5100000-0000-4000-8000-000000000003', 'f5000000-0000-4000-8000-000000000001', 'gone@fn.test', 'admin', '2026-01-01'),
    ('f5100000-0000-4000-8000-000000000004', 'f5000000-0000-4000-8000-000000000001', 'boss@fn.test', 'super_admin', NULL);

-- ---------------------------------------------------------------------------
-- No user.
-- ---------------------------------------------------------------------------
SHOW celaest.user_id;
SELECT celaest._current_user_id_or_null() AS user_or_null, celaest._current_org_id_or_null() AS org_or_null,
       celaest._current_user_is_super_admin() AS super_admin;
\set VERBOSITY default
SELECT celaest.current_user_id();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.current_org_id();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Blank is "not set".
SET LOCAL celaest.user_id = '   ';
SELECT celaest._current_user_id_or_null() AS blank_setting;

-- ---------------------------------------------------------------------------
-- The setting.
-- ---------------------------------------------------------------------------
SET LOCAL celaest.user_id = 'f5100000-0000-4000-8000-000000000001';
SELECT celaest.current_user_id() AS user_id, celaest._current_user_id_or_null() AS user_or_null,
       celaest.current_org_id() AS org_id, celaest._current_org_id_or_null() AS org_or_null,
       celaest._current_user_is_super_admin() AS super_admin;
-- Every spelling uuid input accepts.
SET LOCAL celaest.user_id = 'F5100000-0000-4000-8000-000000000001';
SELECT celaest.current_user_id() AS upper_case;
SET LOCAL celaest.user_id = '{f5100000-0000-4000-8000-000000000001}';
SELECT celaest.current_user_id() AS braces;
SET LOCAL celaest.user_id = 'f5100000000040008000000000000001';
SELECT celaest.current_user_id() AS no_hyphens;
SET LOCAL celaest.user_id = ' f5100000-0000-4000-8000-000000000001 ';
SELECT celaest.current_user_id() AS padded;
-- Malformed values are errors that name the value, in both variants.
SET LOCAL celaest.user_id = 'alice';
SELECT celaest.current_user_id();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest._current_user_id_or_null();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET LOCAL celaest.user_id = 'f5100000-0000-4000-8000-00000000000';
SELECT celaest.current_user_id();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET LOCAL celaest.user_id = 'f510000000004000800000000000000 1';
SELECT celaest.current_user_id();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET LOCAL celaest.user_id = '{f5100000-0000-4000-8000-000000000001';
SELECT celaest.current_user_id();
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A user without an organization: current_org_id() is NULL, not an error.
SET LOCAL celaest.user_id = 'f5100000-0000-4000-8000-000000000002';
SELECT celaest.current_org_id() AS org_id, celaest._current_org_id_or_null() AS org_or_null;
-- A soft-deleted user, and an id without a profile, have no organization to act for.
SET LOCAL celaest.user_id = 'f5100000-0000-4000-8000-000000000003';
SELECT celaest.current_org_id();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest._current_org_id_or_null() AS deleted_org_or_null, celaest._current_user_is_super_admin() AS super_admin;
SET LOCAL celaest.user_id = 'f5100000-0000-4000-8000-0000000000ff';
SELECT celaest.current_org_id();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.current_user_id() AS unknown_user, celaest._current_org_id_or_null() AS unknown_org_or_null;
-- The global administrator.
SET LOCAL celaest.user_id = 'f5100000-0000-4000-8000-000000000004';
SELECT celaest._current_user_is_super_admin() AS super_admin;

-- A SET LOCAL inside a rolled-back savepoint is undone.
SAVEPOINT before_local;
SET LOCAL celaest.user_id = 'f5100000-0000-4000-8000-000000000001';
ROLLBACK TO SAVEPOINT before_local;
SELECT celaest.current_user_id() AS after_savepoint_rollback;

-- ---------------------------------------------------------------------------
-- increment_api_key_usage
-- ---------------------------------------------------------------------------
INSERT INTO celaest.ai_api_pool (id, provider, key_name, key_value_encrypted)
VALUES ('f5300000-0000-4000-8000-000000000001', 'gemini', 'fn-key', '\x00');
SELECT usage_count, tokens_used, last_used_at FROM celaest.ai_api_pool WHERE id = 'f5300000-0000-4000-8000-000000000001';
SELECT celaest.increment_api_key_usage('f5300000-0000-4000-8000-000000000001', 1500);
SELECT celaest.increment_api_key_usage('f5300000-0000-4000-8000-000000000001', 0);
SELECT usage_count, tokens_used, last_used_at = now() AS last_used_now
  FROM celaest.ai_api_pool WHERE id = 'f5300000-0000-4000-8000-000000000001';
SELECT celaest.increment_api_key_usage('f5300000-0000-4000-8000-000000000001', -1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.increment_api_key_usage('f5300000-0000-4000-8000-000000000001', NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.increment_api_key_usage('f5300000-0000-4000-8000-0000000000ff', 10);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.increment_api_key_usage(NULL, 10);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Refusals changed nothing.
SELECT usage_count, tokens_used FROM celaest.ai_api_pool WHERE id = 'f5300000-0000-4000-8000-000000000001';
ROLLBACK;
\set ON_ERROR_ROLLBACK off
