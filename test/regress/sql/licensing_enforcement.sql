-- Licensing 5/5: the enforcement points on other tables: max_users (users_profile),
-- max_concurrent_tasks (processed_tasks), and the view of licenses in force. Each
-- refusal is LC010 (or the license's LC00x) and changes nothing. One transaction,
-- rolled back at the end, then two short ones for the isolation levels.
\set SHOW_CONTEXT never
\set VERBOSITY default
\set ON_ERROR_ROLLBACK on
SET client_min_messages = warning;
BEGIN;

-- try(sql) and masked(text): shared by the licensing tests.
\i test/regress/sql/include/licensing_try.sql

INSERT INTO celaest.subscription_plans (code, name, limits) VALUES
    ('lc-enf', 'Enforcement', '{"max_users": 2, "max_ai_requests_per_month": 100, "max_storage_gb": 1,
                               "max_concurrent_tasks": 2, "max_batch_size": 10}');
INSERT INTO celaest.organizations (id, name, slug)
SELECT ('c5000000-0000-4000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'Enforcement Org ' || n, 'regress-lc-enf-' || n
  FROM generate_series(1, 6) AS n;
-- Org 1: active. 2: no license. 3: suspended. 4: custom max_users -1. 5: tasks. 6: cancelled.
SELECT count(celaest.issue_license(('c5000000-0000-4000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'lc-enf',
                                   CASE WHEN n = 4 THEN '{"custom_limits": {"max_users": -1}}' ELSE '{}' END::jsonb)) AS issued
  FROM generate_series(1, 6) AS n WHERE n <> 2;
SELECT status FROM celaest.set_license_status((celaest.current_license('c5000000-0000-4000-8000-000000000003')).id, 'suspended');
SELECT status FROM celaest.set_license_status((celaest.current_license('c5000000-0000-4000-8000-000000000006')).id, 'cancelled');
INSERT INTO label SELECT id, '<L' || right(organization_id::text, 1) || '>' FROM celaest.licenses
 WHERE organization_id::text LIKE 'c5000000-%';
CREATE FUNCTION pg_temp.members(p_org uuid) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM celaest.users_profile WHERE organization_id = p_org AND deleted_at IS NULL;
$$;

-- ---------------------------------------------------------------------------
-- max_users
-- ---------------------------------------------------------------------------
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('c5100000-0000-4000-8000-000000000001', 'c5000000-0000-4000-8000-000000000001', 'u1@enf.test'),
    ('c5100000-0000-4000-8000-000000000002', 'c5000000-0000-4000-8000-000000000001', 'u2@enf.test');
-- The third live member is refused.
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('c5100000-0000-4000-8000-000000000003', 'c5000000-0000-4000-8000-000000000001', 'u3@enf.test');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- A user without an organization is not counted anywhere; joining the full one is refused.
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('c5100000-0000-4000-8000-000000000004', NULL, 'u4@enf.test');
UPDATE celaest.users_profile SET organization_id = 'c5000000-0000-4000-8000-000000000001'
 WHERE id = 'c5100000-0000-4000-8000-000000000004';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Changing anything else of a member is not a new admission.
UPDATE celaest.users_profile SET display_name = 'Uno', role = 'admin' WHERE id = 'c5100000-0000-4000-8000-000000000001';
-- Soft-deleting one frees a seat; undeleting it when the seat is taken is refused.
UPDATE celaest.users_profile SET deleted_at = now() WHERE id = 'c5100000-0000-4000-8000-000000000002';
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('c5100000-0000-4000-8000-000000000005', 'c5000000-0000-4000-8000-000000000001', 'u5@enf.test');
UPDATE celaest.users_profile SET deleted_at = NULL WHERE id = 'c5100000-0000-4000-8000-000000000002';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT pg_temp.members('c5000000-0000-4000-8000-000000000001') AS members;
-- A statement that would add two members where one seat is left adds none.
UPDATE celaest.users_profile SET deleted_at = now() WHERE id = 'c5100000-0000-4000-8000-000000000005';
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('c5100000-0000-4000-8000-000000000006', 'c5000000-0000-4000-8000-000000000001', 'u6@enf.test'),
    ('c5100000-0000-4000-8000-000000000007', 'c5000000-0000-4000-8000-000000000001', 'u7@enf.test');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT pg_temp.members('c5000000-0000-4000-8000-000000000001') AS members;
-- Without a license in force nothing is checked; a suspended license still counts;
-- custom max_users -1 is unlimited; a cancelled license is not in force.
INSERT INTO celaest.users_profile (id, organization_id, email)
SELECT ('c5100000-0000-4000-8000-0000000002' || lpad(n::text, 2, '0'))::uuid, 'c5000000-0000-4000-8000-000000000002', 'nolic' || n || '@enf.test'
  FROM generate_series(1, 5) AS n;
INSERT INTO celaest.users_profile (id, organization_id, email)
SELECT ('c5100000-0000-4000-8000-0000000003' || lpad(n::text, 2, '0'))::uuid, 'c5000000-0000-4000-8000-000000000003', 'susp' || n || '@enf.test'
  FROM generate_series(1, 3) AS n;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO celaest.users_profile (id, organization_id, email)
SELECT ('c5100000-0000-4000-8000-0000000004' || lpad(n::text, 2, '0'))::uuid, 'c5000000-0000-4000-8000-000000000004', 'unl' || n || '@enf.test'
  FROM generate_series(1, 5) AS n;
INSERT INTO celaest.users_profile (id, organization_id, email)
SELECT ('c5100000-0000-4000-8000-0000000006' || lpad(n::text, 2, '0'))::uuid, 'c5000000-0000-4000-8000-000000000006', 'canc' || n || '@enf.test'
  FROM generate_series(1, 3) AS n;
SELECT o.n, pg_temp.members(('c5000000-0000-4000-8000-00000000000' || o.n)::uuid) AS members
  FROM generate_series(1, 6) AS o (n) ORDER BY o.n;

-- ---------------------------------------------------------------------------
-- max_concurrent_tasks: a task holds a slot while processing or retrying
-- ---------------------------------------------------------------------------
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('c5100000-0000-4000-8000-000000000501', 'c5000000-0000-4000-8000-000000000005', 'tasks@enf.test');
INSERT INTO celaest.processed_tasks (id, organization_id, user_id, status)
SELECT ('c5200000-0000-4000-8000-00000000000' || n)::uuid, 'c5000000-0000-4000-8000-000000000005',
       'c5100000-0000-4000-8000-000000000501', 'pending'
  FROM generate_series(1, 5) AS n;
CREATE FUNCTION pg_temp.in_flight() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(right(id::text, 1) || '=' || status, ' ' ORDER BY id) FROM celaest.processed_tasks
     WHERE organization_id = 'c5000000-0000-4000-8000-000000000005';
$$;
UPDATE celaest.processed_tasks SET status = 'processing' WHERE id = 'c5200000-0000-4000-8000-000000000001';
UPDATE celaest.processed_tasks SET status = 'processing' WHERE id = 'c5200000-0000-4000-8000-000000000002';
-- A third at once is refused (the message names max_concurrent_tasks: the batch runner
-- leaves such a task queued).
UPDATE celaest.processed_tasks SET status = 'processing' WHERE id = 'c5200000-0000-4000-8000-000000000003';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO celaest.processed_tasks (organization_id, user_id, status) VALUES
    ('c5000000-0000-4000-8000-000000000005', 'c5100000-0000-4000-8000-000000000501', 'processing');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT pg_temp.in_flight() AS tasks;
-- processing <-> retrying keeps the slot; leaving both frees it.
UPDATE celaest.processed_tasks SET status = 'retrying', retry_count = 1 WHERE id = 'c5200000-0000-4000-8000-000000000001';
UPDATE celaest.processed_tasks SET status = 'processing' WHERE id = 'c5200000-0000-4000-8000-000000000001';
UPDATE celaest.processed_tasks SET status = 'retrying' WHERE id = 'c5200000-0000-4000-8000-000000000003';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE celaest.processed_tasks SET status = 'completed' WHERE id = 'c5200000-0000-4000-8000-000000000002';
UPDATE celaest.processed_tasks SET status = 'processing' WHERE id = 'c5200000-0000-4000-8000-000000000003';
SELECT pg_temp.in_flight() AS tasks;
-- One statement claiming two where none is free claims none.
UPDATE celaest.processed_tasks SET status = 'processing'
 WHERE id IN ('c5200000-0000-4000-8000-000000000004', 'c5200000-0000-4000-8000-000000000005');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE celaest.processed_tasks SET status = 'failed' WHERE id = 'c5200000-0000-4000-8000-000000000001';
UPDATE celaest.processed_tasks SET status = 'processing'
 WHERE id IN ('c5200000-0000-4000-8000-000000000004', 'c5200000-0000-4000-8000-000000000005');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT pg_temp.in_flight() AS tasks;
-- A task may not start when its organization's license is unusable; queueing is fine.
SELECT o.name, pg_temp.try(format(
         'INSERT INTO celaest.processed_tasks (organization_id, user_id, status) VALUES (%L, %L, %L)',
         o.org, 'c5100000-0000-4000-8000-000000000001', o.status)) AS result
  FROM (VALUES ('suspended, processing', 'c5000000-0000-4000-8000-000000000003', 'processing'),
               ('cancelled, retrying', 'c5000000-0000-4000-8000-000000000006', 'retrying'),
               ('no license, processing', 'c5000000-0000-4000-8000-000000000002', 'processing'),
               ('suspended, pending', 'c5000000-0000-4000-8000-000000000003', 'pending')) AS o (name, org, status);

-- ---------------------------------------------------------------------------
-- v_active_licenses: one row per license in force
-- ---------------------------------------------------------------------------
SELECT celaest.consume_quota('c5000000-0000-4000-8000-000000000001', 'ai_requests', 30) AS remaining;
SELECT organization_slug, plan_code, status, ai_requests_used, ai_requests_limit, ai_requests_remaining,
       effective_limits = celaest.effective_limits(license_id) AS limits_agree
  FROM celaest.v_active_licenses WHERE organization_slug LIKE 'regress-lc-enf-%' ORDER BY organization_slug;

-- ---------------------------------------------------------------------------
-- Privileges: an application role reads its own organization's limits (row-level
-- security), validates keys, and cannot charge, reset or probe quotas itself.
-- ---------------------------------------------------------------------------
CREATE ROLE regress_lc_app;
SELECT celaest.grant_access('regress_lc_app', 'authenticated');
GRANT SELECT ON label TO regress_lc_app;
SELECT license_key AS key1 FROM celaest.licenses WHERE organization_id = 'c5000000-0000-4000-8000-000000000001' \gset
SET LOCAL request.jwt.claim.sub = 'c5100000-0000-4000-8000-000000000001';
SET LOCAL ROLE regress_lc_app;
SELECT celaest.check_limit('c5000000-0000-4000-8000-000000000001', 'ai_requests') AS own_organization,
       celaest.check_limit('c5000000-0000-4000-8000-000000000005', 'ai_requests') ->> 'code' AS other_organization,
       celaest.check_limit('c5000000-0000-4000-8000-000000000001', 'users') AS own_users;
SELECT (celaest.validate_license(:'key1')) ->> 'code' AS validate_any_key;
SELECT t.call, pg_temp.try(t.sql) AS result
  FROM (VALUES
    ('consume_quota', $$SELECT celaest.consume_quota('c5000000-0000-4000-8000-000000000001')$$),
    ('release_quota', $$SELECT celaest._release_quota('c5000000-0000-4000-8000-000000000001', 'ai_requests', 30)$$),
    ('reserve_ai_request', $$SELECT celaest._reserve_ai_request('c5000000-0000-4000-8000-000000000001', NULL)$$),
    ('reserve_counted', $$SELECT celaest._reserve_counted('c5000000-0000-4000-8000-000000000001', 'max_users', 1, false)$$),
    ('direct UPDATE', $$UPDATE celaest.licenses SET ai_requests_used = 0$$)
  ) AS t (call, sql);
RESET ROLE;
SELECT ai_requests_used FROM celaest.licenses WHERE organization_id = 'c5000000-0000-4000-8000-000000000001';

ROLLBACK;

-- ---------------------------------------------------------------------------
-- Counting under REPEATABLE READ would miss concurrent admissions: refused (0A000).
-- SERIALIZABLE is exact (its conflict detection covers the count). Both rolled back.
-- ---------------------------------------------------------------------------
BEGIN ISOLATION LEVEL REPEATABLE READ;
INSERT INTO celaest.subscription_plans (code, name, limits) VALUES ('lc-rr', 'RR', '{"max_users": 5}');
INSERT INTO celaest.organizations (id, name, slug) VALUES ('c5300000-0000-4000-8000-000000000001', 'RR Org', 'regress-lc-rr');
SELECT celaest.issue_license('c5300000-0000-4000-8000-000000000001', 'lc-rr') ->> 'status' AS status;
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('c5310000-0000-4000-8000-000000000001', 'c5300000-0000-4000-8000-000000000001', 'rr@enf.test');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
INSERT INTO celaest.subscription_plans (code, name, limits) VALUES ('lc-rr', 'RR', '{"max_users": 1}');
INSERT INTO celaest.organizations (id, name, slug) VALUES ('c5300000-0000-4000-8000-000000000001', 'RR Org', 'regress-lc-rr');
SELECT celaest.issue_license('c5300000-0000-4000-8000-000000000001', 'lc-rr') ->> 'status' AS status;
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('c5310000-0000-4000-8000-000000000001', 'c5300000-0000-4000-8000-000000000001', 'rr@enf.test');
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('c5310000-0000-4000-8000-000000000002', 'c5300000-0000-4000-8000-000000000001', 'rr2@enf.test');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
