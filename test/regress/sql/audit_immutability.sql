-- audit_logs is append-only for every role; log_audit() writes entries; changes to
-- audited tables are recorded automatically with masked secrets. Rolled back at the end.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
BEGIN;
SET LOCAL TimeZone = 'UTC';

INSERT INTO celaest.organizations (id, name, slug) VALUES
    ('a5000000-0000-4000-8000-000000000001', 'Audit Org', 'audit-org');
INSERT INTO celaest.users_profile (id, organization_id, email, role) VALUES
    ('a5100000-0000-4000-8000-000000000001', 'a5000000-0000-4000-8000-000000000001', 'auditor@audit.test', 'admin');

-- ---------------------------------------------------------------------------
-- log_audit: the row, with the request context taken from the settings.
-- ---------------------------------------------------------------------------
SET LOCAL celaest.request_id = 'req-0001';
SET LOCAL celaest.client_ip = '203.0.113.7';
SET LOCAL celaest.user_agent = 'regress/1.0';
SELECT celaest.log_audit('a5100000-0000-4000-8000-000000000001', 'a5000000-0000-4000-8000-000000000001',
                         'update', 'license', 'a5200000-0000-4000-8000-000000000001',
                         'License suspended for non-payment',
                         '{"before": {"status": "active"}, "after": {"status": "suspended"}}') AS audit_id \gset
SELECT user_id, organization_id, action, resource_type, resource_id, description, changes,
       request_id, ip_address, user_agent, success, error_message, created_at = now() AS created_now
  FROM celaest.audit_logs WHERE id = :'audit_id';
-- Without context and without changes (p_changes defaults to NULL).
RESET celaest.request_id;
RESET celaest.client_ip;
RESET celaest.user_agent;
SELECT celaest.log_audit(NULL, NULL, 'export', 'report', NULL, 'Monthly export') AS audit_id \gset
SELECT user_id, organization_id, action, resource_type, changes, request_id, ip_address, user_agent
  FROM celaest.audit_logs WHERE id = :'audit_id';
-- Bad input.
SELECT celaest.log_audit(NULL, NULL, 'read', '', NULL, 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.log_audit(NULL, NULL, 'read', NULL, NULL, 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.log_audit(NULL, NULL, NULL, 'license', NULL, 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.log_audit(NULL, NULL, 'read', 'license', NULL, 'x', '[1, 2]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.log_audit('a5100000-0000-4000-8000-0000000000ff', NULL, 'read', 'license', NULL, 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET LOCAL celaest.client_ip = 'not-an-ip';
SELECT celaest.log_audit(NULL, NULL, 'read', 'license', NULL, 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET celaest.client_ip;

-- ---------------------------------------------------------------------------
-- Append-only, as a superuser...
-- ---------------------------------------------------------------------------
UPDATE celaest.audit_logs SET description = 'rewritten' WHERE id = :'audit_id';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DELETE FROM celaest.audit_logs WHERE id = :'audit_id';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
TRUNCATE celaest.audit_logs;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- ... also with ordinary triggers switched off for replication.
SET LOCAL session_replication_role = replica;
DELETE FROM celaest.audit_logs WHERE id = :'audit_id';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET session_replication_role;

-- ... and as the table's owner when that owner is an ordinary role.
CREATE ROLE regress_celaest_audit_owner NOLOGIN;
SELECT relowner::regrole AS original_owner FROM pg_class WHERE oid = 'celaest.audit_logs'::regclass \gset
ALTER TABLE celaest.audit_logs OWNER TO regress_celaest_audit_owner;
SET LOCAL ROLE regress_celaest_audit_owner;
SELECT rolsuper AS owner_is_superuser FROM pg_roles WHERE rolname = current_user;
UPDATE celaest.audit_logs SET description = 'rewritten' WHERE id = :'audit_id';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DELETE FROM celaest.audit_logs WHERE id = :'audit_id';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
TRUNCATE celaest.audit_logs;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Appending is what the owner may do.
INSERT INTO celaest.audit_logs (action, resource_type, description)
VALUES ('read', 'report', 'owner appends') RETURNING action, resource_type, description;
RESET ROLE;
ALTER TABLE celaest.audit_logs OWNER TO :"original_owner";
SELECT description FROM celaest.audit_logs WHERE id = :'audit_id';

-- ---------------------------------------------------------------------------
-- Automatic auditing. The acting user comes from celaest.user_id.
-- ---------------------------------------------------------------------------
SET LOCAL celaest.user_id = 'a5100000-0000-4000-8000-000000000001';
SELECT count(*) AS entries_before FROM celaest.audit_logs \gset

-- An API key: the encrypted secret never reaches the log.
INSERT INTO celaest.ai_api_pool (id, provider, key_name, key_value_encrypted, key_hint)
VALUES ('a5300000-0000-4000-8000-000000000001', 'groq', 'audit-groq', '\x5345435245542d4b4559', 'Y-KEY');
SELECT user_id, organization_id, action, resource_type, resource_id, description,
       changes -> 'before' AS before,
       changes #> '{after,key_value_encrypted}' AS after_secret,
       changes #> '{after,key_name}' AS after_key_name,
       changes #> '{after,key_hint}' AS after_key_hint,
       position('5345435245542d4b4559' IN changes::text) AS secret_hex_found
  FROM celaest.audit_logs
 WHERE resource_id = 'a5300000-0000-4000-8000-000000000001'
 ORDER BY created_at, description;
-- Usage and health bookkeeping are not audited (hot path)...
SELECT celaest.increment_api_key_usage('a5300000-0000-4000-8000-000000000001', 1500);
UPDATE celaest.ai_api_pool SET is_healthy = false, consecutive_failures = 3, last_health_check = now()
 WHERE id = 'a5300000-0000-4000-8000-000000000001';
SELECT count(*) AS key_entries FROM celaest.audit_logs WHERE resource_id = 'a5300000-0000-4000-8000-000000000001';
-- ... configuration changes are, with only the changed columns; a rotated secret
-- shows as masked on both sides.
UPDATE celaest.ai_api_pool SET priority = 5, key_value_encrypted = '\x4e45572d4b4559', tokens_used = tokens_used + 1
 WHERE id = 'a5300000-0000-4000-8000-000000000001';
SELECT action, description, changes
  FROM celaest.audit_logs
 WHERE resource_id = 'a5300000-0000-4000-8000-000000000001' AND action = 'update';
DELETE FROM celaest.ai_api_pool WHERE id = 'a5300000-0000-4000-8000-000000000001';
SELECT action, description, changes #> '{before,key_value_encrypted}' AS before_secret,
       changes #> '{before,priority}' AS before_priority, changes -> 'after' AS after
  FROM celaest.audit_logs
 WHERE resource_id = 'a5300000-0000-4000-8000-000000000001' AND action = 'delete';

-- A sensitive system setting: its value is masked, before and after; a plain one is not.
INSERT INTO celaest.system_config (key, value, description, is_sensitive)
VALUES ('audit.webhook_secret', '"s3cr3t-one"', 'Webhook signing secret', true),
       ('audit.hourly_rate', '25', 'Hourly rate', false);
UPDATE celaest.system_config SET value = '"s3cr3t-two"' WHERE key = 'audit.webhook_secret';
UPDATE celaest.system_config SET value = '30' WHERE key = 'audit.hourly_rate';
SELECT action, resource_id, description,
       changes #> '{before,value}' AS before_value, changes #> '{after,value}' AS after_value,
       changes #> '{after,is_sensitive}' AS after_is_sensitive,
       position('s3cr3t' IN changes::text) AS secret_found
  FROM celaest.audit_logs
 WHERE resource_type = 'system_config' AND description LIKE '%''audit.%'
 ORDER BY description;
-- Unmarking it as sensitive reveals only what comes after.
UPDATE celaest.system_config SET value = '"public-now"', is_sensitive = false WHERE key = 'audit.webhook_secret';
SELECT description, changes
  FROM celaest.audit_logs
 WHERE resource_type = 'system_config' AND description LIKE '%''audit.webhook_secret'' updated (is_sensitive, value)';

-- A license: status changes are audited, usage accounting is not; the key is masked.
INSERT INTO celaest.subscription_plans (id, code, name) VALUES ('a5400000-0000-4000-8000-000000000001', 'audit-plan', 'Audit plan');
INSERT INTO celaest.licenses (id, organization_id, plan_id, license_key, status)
VALUES ('a5200000-0000-4000-8000-000000000002', 'a5000000-0000-4000-8000-000000000001',
        'a5400000-0000-4000-8000-000000000001', 'audit-license-key-0001', 'active');
UPDATE celaest.licenses SET ai_requests_used = ai_requests_used + 1, storage_used_bytes = 2048
 WHERE id = 'a5200000-0000-4000-8000-000000000002';
UPDATE celaest.licenses SET status = 'suspended', suspended_at = '2026-05-01 00:00+00', ai_requests_used = 7
 WHERE id = 'a5200000-0000-4000-8000-000000000002';
SELECT user_id, organization_id, action, description, changes #> '{after,license_key}' AS after_key,
       CASE WHEN action = 'update' THEN changes END AS changes,
       position('audit-license-key-0001' IN changes::text) AS key_found
  FROM celaest.audit_logs
 WHERE resource_id = 'a5200000-0000-4000-8000-000000000002' AND resource_type = 'license'
 ORDER BY action;

-- A user: role and scope changes are audited (access-relevant columns only, no
-- personal data); logins are not.
UPDATE celaest.users_profile SET login_count = login_count + 1, last_login_at = now()
 WHERE id = 'a5100000-0000-4000-8000-000000000001';
UPDATE celaest.users_profile SET role = 'manager', scopes = '["licenses:read"]', first_name = 'Ana'
 WHERE id = 'a5100000-0000-4000-8000-000000000001';
SELECT action, description, changes
  FROM celaest.audit_logs
 WHERE resource_type = 'user' AND resource_id = 'a5100000-0000-4000-8000-000000000001'
 ORDER BY action;

-- A feature flag and a plan.
INSERT INTO celaest.feature_flags (id, flag_key, name) VALUES ('a5500000-0000-4000-8000-000000000001', 'audit-flag', 'Audit flag');
UPDATE celaest.feature_flags SET is_enabled = true WHERE flag_key = 'audit-flag';
UPDATE celaest.subscription_plans SET price_monthly = 49.00 WHERE code = 'audit-plan';
SELECT resource_type, action, description, CASE WHEN action = 'update' THEN changes END AS changes
  FROM celaest.audit_logs
 WHERE resource_id IN ('a5500000-0000-4000-8000-000000000001', 'a5400000-0000-4000-8000-000000000001')
 ORDER BY resource_type, action;
-- An update that changes nothing records nothing.
UPDATE celaest.feature_flags SET is_enabled = true WHERE flag_key = 'audit-flag';
SELECT count(*) AS flag_entries FROM celaest.audit_logs WHERE resource_id = 'a5500000-0000-4000-8000-000000000001';

-- Every automatic entry names the acting user, and carries the request context.
SET LOCAL celaest.request_id = 'req-0002';
UPDATE celaest.feature_flags SET is_enabled = false WHERE flag_key = 'audit-flag';
SELECT user_id, request_id, description FROM celaest.audit_logs
 WHERE resource_id = 'a5500000-0000-4000-8000-000000000001' AND action = 'update'
 ORDER BY request_id NULLS FIRST, description;
-- An acting id without a profile cannot be referenced: it goes into the description.
SET LOCAL celaest.user_id = 'a5100000-0000-4000-8000-0000000000ee';
UPDATE celaest.feature_flags SET name = 'Audit flag, renamed' WHERE flag_key = 'audit-flag';
SELECT user_id, description FROM celaest.audit_logs
 WHERE resource_id = 'a5500000-0000-4000-8000-000000000001' AND description LIKE '%(name)%';

-- The audit trigger function serves CELAEST tables only.
RESET celaest.user_id;
CREATE TEMP TABLE forged (id uuid, organization_id uuid);
CREATE TRIGGER forged_audit AFTER INSERT ON forged FOR EACH ROW EXECUTE FUNCTION celaest._audit_row_change('license');
INSERT INTO forged VALUES ('a5600000-0000-4000-8000-000000000001', 'a5000000-0000-4000-8000-000000000001');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

SELECT count(*) - :entries_before AS automatic_entries FROM celaest.audit_logs;
ROLLBACK;
\set ON_ERROR_ROLLBACK off
SELECT count(*) AS leftover_roles FROM pg_roles WHERE rolname = 'regress_celaest_audit_owner';
