-- Configuration: config_get / config_set, sensitive values, who is an administrator,
-- built-in defaults, pg_dump registration. One transaction, rolled back at the end.
\set SHOW_CONTEXT never
\set VERBOSITY default
\set ON_ERROR_ROLLBACK on

-- system_config is extension user data for pg_dump, every row of it (70_configuration.sql);
-- that is why the extension seeds no rows and keeps its defaults built in.
SELECT extconfig::regclass[] @> ARRAY['celaest.system_config'::regclass] AS dumped,
       extcondition[array_position(extconfig::regclass[], 'celaest.system_config'::regclass)] AS dump_filter
  FROM pg_extension WHERE extname = 'celaest';

BEGIN;

-- ---------------------------------------------------------------------------
-- Built-in defaults and unknown keys
-- ---------------------------------------------------------------------------
SELECT count(*) AS rows_installed_by_the_extension FROM celaest.system_config
 WHERE key IN ('roi.manual_minutes_per_task', 'roi.hourly_rate');
SELECT celaest.config_get('roi.manual_minutes_per_task') AS manual_minutes,
       celaest.config_get('roi.hourly_rate') AS hourly_rate,
       celaest.config_get('regress.no.such.key') AS unknown,
       celaest.config_get(NULL) AS null_key;

-- ---------------------------------------------------------------------------
-- Fixture: an organization with a viewer, an (organization) admin, a super_admin
-- and a soft-deleted super_admin.
-- ---------------------------------------------------------------------------
INSERT INTO celaest.organizations (id, name, slug) VALUES
    ('0e000000-0000-4000-8000-000000000001', 'Config Org', 'regress-config-org');
INSERT INTO celaest.users_profile (id, organization_id, email, role, deleted_at) VALUES
    ('1e000000-0000-4000-8000-000000000001', '0e000000-0000-4000-8000-000000000001', 'cfg-viewer@example.com', 'viewer', NULL),
    ('1e000000-0000-4000-8000-000000000002', '0e000000-0000-4000-8000-000000000001', 'cfg-admin@example.com', 'admin', NULL),
    ('1e000000-0000-4000-8000-000000000003', '0e000000-0000-4000-8000-000000000001', 'cfg-root@example.com', 'super_admin', NULL),
    ('1e000000-0000-4000-8000-000000000004', '0e000000-0000-4000-8000-000000000001', 'cfg-gone@example.com', 'super_admin', '2024-01-01 00:00Z');

-- ---------------------------------------------------------------------------
-- Setting values (as a superuser)
-- ---------------------------------------------------------------------------
SELECT celaest.config_set('regress.plain', '{"retries": 3}', 'A plain setting');
SELECT celaest.config_set('regress.secret', '"s3cr3t"', 'A secret', true);
-- Overriding a built-in default; it reads back as set.
SELECT celaest.config_set('roi.hourly_rate', '40.5');
SELECT celaest.config_get('roi.hourly_rate') AS hourly_rate;
-- A superuser acting as a CELAEST user: updated_by names them.
SET celaest.user_id = '1e000000-0000-4000-8000-000000000003';
SELECT celaest.config_set('regress.plain', '{"retries": 5}');
RESET celaest.user_id;
-- NULL description / is_sensitive keep the stored ones.
SELECT key, value, description, is_sensitive, updated_by
  FROM celaest.system_config WHERE key LIKE 'regress.%' OR key = 'roi.hourly_rate' ORDER BY key;

-- Setting what is already there writes nothing (same tuple, same updated_at).
SELECT ctid AS plain_ctid FROM celaest.system_config WHERE key = 'regress.plain' \gset
SELECT celaest.config_set('regress.plain', '{"retries": 5}', 'A plain setting', false);
SELECT ctid = :'plain_ctid'::tid AS not_rewritten FROM celaest.system_config WHERE key = 'regress.plain';

-- Changes are audited; the secret is masked in the audit trail.
SELECT a.action, a.description, a.changes -> 'after' ->> 'value' AS audited_value
  FROM celaest.audit_logs AS a
 WHERE a.resource_type = 'system_config' AND a.description LIKE 'system_config ''regress.%'
 ORDER BY a.created_at, a.description;

-- ---------------------------------------------------------------------------
-- Refusals
-- ---------------------------------------------------------------------------
SELECT celaest.config_set('regress.null', NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.config_set(NULL, '1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.config_set('   ', '1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.config_set(' regress.padded', '1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.config_set(repeat('k', 101), '1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.config_set('roi.hourly_rate', '"forty"');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.config_set('roi.manual_minutes_per_task', '-1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- JSON null is a value (SQL NULL is not).
SELECT celaest.config_set('regress.json_null', 'null');
SELECT celaest.config_get('regress.json_null') AS json_null, celaest.config_get('regress.json_null') IS NULL AS is_sql_null;

-- ---------------------------------------------------------------------------
-- Non-superuser roles
-- ---------------------------------------------------------------------------
CREATE ROLE regress_celaest_cfg_tenant NOLOGIN;
SELECT celaest.grant_access('regress_celaest_cfg_tenant', 'authenticated');
-- A role with the privileges of the extension's owner (here: of the superuser
-- running the tests) may read and write the table, so it is an administrator.
CREATE ROLE regress_celaest_cfg_ops NOLOGIN;
SELECT current_user AS owner_role \gset
GRANT :"owner_role" TO regress_celaest_cfg_ops;

SET ROLE regress_celaest_cfg_tenant;
-- The table itself is out of reach.
SELECT value FROM celaest.system_config WHERE key = 'regress.secret';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Anonymous, viewer, organization admin, soft-deleted super_admin: masked, refused.
SELECT 'anonymous' AS who, celaest.config_get('regress.secret') AS secret, celaest.config_get('regress.plain') AS plain;
SELECT celaest.config_set('regress.plain', '1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET request.jwt.claim.sub = '1e000000-0000-4000-8000-000000000001';
SELECT 'viewer' AS who, celaest.config_get('regress.secret') AS secret, celaest.config_get('regress.plain') AS plain;
SELECT celaest.config_set('regress.plain', '1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET request.jwt.claim.sub = '1e000000-0000-4000-8000-000000000002';
SELECT 'org admin' AS who, celaest.config_get('regress.secret') AS secret;
SELECT celaest.config_set('regress.plain', '1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET request.jwt.claim.sub = '1e000000-0000-4000-8000-000000000004';
SELECT 'deleted super_admin' AS who, celaest.config_get('regress.secret') AS secret;
SELECT celaest.config_set('regress.plain', '1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- A live super_admin reads and writes.
SET request.jwt.claim.sub = '1e000000-0000-4000-8000-000000000003';
SELECT 'super_admin' AS who, celaest.config_get('regress.secret') AS secret;
SELECT celaest.config_set('regress.secret', '"rotated"');
SELECT celaest.config_get('regress.secret') AS secret;
RESET request.jwt.claim.sub;
SELECT 'anonymous again' AS who, celaest.config_get('regress.secret') AS secret;
RESET ROLE;
SELECT value, description, is_sensitive, updated_by FROM celaest.system_config WHERE key = 'regress.secret';

-- A readonly role reads the table's rows but not its sensitive values, and may not write.
CREATE ROLE regress_celaest_cfg_reader NOLOGIN;
SELECT celaest.grant_access('regress_celaest_cfg_reader', 'readonly');
SET ROLE regress_celaest_cfg_reader;
SELECT 'table reader' AS who, celaest.config_get('regress.secret') AS secret;
SELECT celaest.config_set('regress.secret', '"by reader"');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;

SET ROLE regress_celaest_cfg_ops;
SELECT 'owner member' AS who, celaest.config_get('regress.secret') AS secret;
SELECT celaest.config_set('regress.secret', '"by ops"');
-- Unmarking a secret is an explicit choice.
SELECT celaest.config_set('regress.secret', '"by ops"', NULL, false);
RESET ROLE;
SET ROLE regress_celaest_cfg_tenant;
SELECT 'anonymous, after unmarking' AS who, celaest.config_get('regress.secret') AS secret;
RESET ROLE;

ROLLBACK;
