-- Licensing 3/5: check_limit (read only) and consume_quota / release_quota (atomic) for
-- every metric, the license refusals (LC001-LC004), LC010 with its DETAIL, refusals and
-- rollbacks that change nothing, billing periods rolled on the way, and bad input.
-- (Exactness under concurrency: test/integration/test_licensing_concurrency.py.)
-- One transaction, rolled back at the end.
\set SHOW_CONTEXT never
\set VERBOSITY default
\set ON_ERROR_ROLLBACK on
SET client_min_messages = warning;
BEGIN;

-- try(sql) and masked(text): shared by the licensing tests.
\i test/regress/sql/include/licensing_try.sql

-- The counters of an organization's license in force.
CREATE FUNCTION pg_temp.used(p_org uuid) RETURNS TABLE (ai_requests_used bigint, storage_used_bytes bigint)
LANGUAGE sql AS $$
    SELECT l.ai_requests_used, l.storage_used_bytes FROM celaest.licenses AS l
     WHERE l.organization_id = p_org AND l.status IN ('trial', 'active', 'suspended');
$$;

-- ---------------------------------------------------------------------------
-- Fixture
-- ---------------------------------------------------------------------------
INSERT INTO celaest.subscription_plans (code, name, limits) VALUES
    ('lc-q', 'Quota', '{"max_users": 2, "max_ai_requests_per_month": 5, "max_storage_gb": 1,
                        "max_concurrent_tasks": 1, "max_batch_size": 3}');
INSERT INTO celaest.organizations (id, name, slug)
SELECT ('c3000000-0000-4000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'Quota Org ' || n, 'regress-lc-quota-' || n
  FROM generate_series(1, 12) AS n;
-- Org 1: active. 2: suspended. 3: cancelled. 4: expired. 5: trial ended by date.
-- 6: no license at all. 7: usage_based. 8: trial narrowed by license.trial_limits.
-- 9: custom unlimited. 10: lapsed billing period. 11: reserve_ai_request / check_batch.
SELECT count(*) AS issued FROM (
    SELECT celaest.issue_license(('c3000000-0000-4000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'lc-q',
               CASE n WHEN 5 THEN '{"trial_days": 14}'
                      WHEN 7 THEN '{"billing_cycle": "usage_based"}'
                      WHEN 8 THEN '{"trial_days": 14}'
                      WHEN 9 THEN '{"custom_limits": {"max_ai_requests_per_month": -1, "max_storage_gb": -1}}'
                      ELSE '{}' END::jsonb)
      FROM generate_series(1, 11) AS n WHERE n <> 6) AS s;
INSERT INTO label SELECT id, '<L' || right(organization_id::text, 2)::int || '>' FROM celaest.licenses
 WHERE organization_id::text LIKE 'c3000000-%';
SELECT status FROM celaest.set_license_status(celaest._assert_license_usable('c3000000-0000-4000-8000-000000000002'), 'suspended', 'fraud check');
SELECT status FROM celaest.set_license_status(celaest._assert_license_usable('c3000000-0000-4000-8000-000000000003'), 'cancelled');
SELECT status FROM celaest.set_license_status(celaest._assert_license_usable('c3000000-0000-4000-8000-000000000004'), 'expired');
UPDATE celaest.licenses SET trial_ends_at = now() - interval '1 hour'
 WHERE organization_id = 'c3000000-0000-4000-8000-000000000005';
INSERT INTO celaest.system_config (key, value) VALUES ('license.trial_limits', '{"max_ai_requests_per_month": 2}')
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;

-- ---------------------------------------------------------------------------
-- AI requests: consume until the quota is used up
-- ---------------------------------------------------------------------------
SELECT celaest.check_limit('c3000000-0000-4000-8000-000000000001', 'ai_requests') AS before_any;
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001') AS remaining_after_1;
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'ai_requests', 3) AS remaining_after_4;
SELECT celaest.check_limit('c3000000-0000-4000-8000-000000000001', 'ai_requests', 2) AS two_more;
SELECT celaest.check_limit('c3000000-0000-4000-8000-000000000001', 'max_ai_requests_per_month', 1) AS one_more_by_key;
-- Over the limit: LC010 naming the organization, DETAIL limit/used/requested; nothing changes.
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'ai_requests', 2);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM pg_temp.used('c3000000-0000-4000-8000-000000000001');
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'max_ai_requests_per_month', 1) AS last_one_by_key;
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Zero is allowed and changes nothing, even at the limit.
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'ai_requests', 0) AS zero,
       celaest.check_limit('c3000000-0000-4000-8000-000000000001', 'ai_requests', 0) AS check_zero,
       celaest.check_limit('c3000000-0000-4000-8000-000000000001', 'ai_requests') AS check_one;
-- A rolled-back consumption leaves the counter as it was.
SELECT celaest._release_quota('c3000000-0000-4000-8000-000000000001', 'ai_requests', 3) AS refunded_remaining;
SAVEPOINT before_consume;
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'ai_requests', 3) AS consumed_then_rolled_back;
ROLLBACK TO SAVEPOINT before_consume;
SELECT * FROM pg_temp.used('c3000000-0000-4000-8000-000000000001');
-- A refund never goes below zero.
SELECT celaest._release_quota('c3000000-0000-4000-8000-000000000001', 'ai_requests', 1000) AS after_big_refund;
SELECT * FROM pg_temp.used('c3000000-0000-4000-8000-000000000001');

-- ---------------------------------------------------------------------------
-- Storage: bytes against max_storage_gb (1 GiB here)
-- ---------------------------------------------------------------------------
SELECT celaest.check_limit('c3000000-0000-4000-8000-000000000001', 'storage_gb', 1073741824) AS one_gib;
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'storage_gb', 1073741000) AS remaining_bytes;
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'max_storage_gb', 1000);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest._release_quota('c3000000-0000-4000-8000-000000000001', 'storage_gb', 1073740000) AS after_delete;
SELECT * FROM pg_temp.used('c3000000-0000-4000-8000-000000000001');
-- Any other write of storage_used_bytes past the limit is refused too; shrinking is fine.
UPDATE celaest.licenses SET storage_used_bytes = 2147483648 WHERE organization_id = 'c3000000-0000-4000-8000-000000000001'
   AND status = 'active';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE celaest.licenses SET storage_used_bytes = 0 WHERE organization_id = 'c3000000-0000-4000-8000-000000000001'
   AND status = 'active';

-- ---------------------------------------------------------------------------
-- Counted metrics: users, concurrent_tasks; and batch_size (a per-batch cap)
-- ---------------------------------------------------------------------------
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('c3100000-0000-4000-8000-000000000001', 'c3000000-0000-4000-8000-000000000001', 'q1@lc.test');
SELECT celaest.check_limit('c3000000-0000-4000-8000-000000000001', 'users') AS users,
       celaest.check_limit('c3000000-0000-4000-8000-000000000001', 'max_users', 2) AS two_more_users;
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'users', 1) AS room_after_one_more_user;
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'users', 2);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO celaest.processed_tasks (organization_id, user_id, status) VALUES
    ('c3000000-0000-4000-8000-000000000001', 'c3100000-0000-4000-8000-000000000001', 'processing');
SELECT celaest.check_limit('c3000000-0000-4000-8000-000000000001', 'concurrent_tasks') AS concurrent_tasks;
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'concurrent_tasks');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.check_limit('c3000000-0000-4000-8000-000000000001', 'batch_size', 3) AS batch_of_3,
       celaest.check_limit('c3000000-0000-4000-8000-000000000001', 'batch_size', 4) AS batch_of_4;
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'batch_size', 3) AS room_in_batch_of_3;
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'batch_size', 4);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Counted metrics are not counters: nothing to release.
SELECT pg_temp.try($$SELECT celaest._release_quota('c3000000-0000-4000-8000-000000000001', 'users', 1)$$) AS release_users;

-- ---------------------------------------------------------------------------
-- Licenses that refuse: LC001-LC004 from consume_quota, the code from check_limit
-- ---------------------------------------------------------------------------
SELECT o.name, (celaest.check_limit(o.id, 'ai_requests') ->> 'code') AS check_code,
       (celaest.check_limit(o.id, 'ai_requests') ->> 'allowed') AS allowed,
       pg_temp.try(format('SELECT celaest.consume_quota(%L)', o.id)) AS consume
  FROM (VALUES ('suspended', 'c3000000-0000-4000-8000-000000000002'::uuid),
               ('cancelled', 'c3000000-0000-4000-8000-000000000003'),
               ('expired', 'c3000000-0000-4000-8000-000000000004'),
               ('trial ended by date', 'c3000000-0000-4000-8000-000000000005'),
               ('no license', 'c3000000-0000-4000-8000-000000000006')) AS o (name, id);
-- Every metric is refused alike, and nothing was charged.
SELECT m, pg_temp.try(format('SELECT celaest.consume_quota(%L, %L)', 'c3000000-0000-4000-8000-000000000002', m)) AS suspended
  FROM unnest(ARRAY['ai_requests', 'storage_gb', 'users', 'concurrent_tasks', 'batch_size']) AS m;
SELECT l.organization_id, l.ai_requests_used, l.storage_used_bytes FROM celaest.licenses AS l
 WHERE l.organization_id IN ('c3000000-0000-4000-8000-000000000002', 'c3000000-0000-4000-8000-000000000003',
                             'c3000000-0000-4000-8000-000000000004', 'c3000000-0000-4000-8000-000000000005')
 ORDER BY 1;

-- ---------------------------------------------------------------------------
-- Unlimited and narrowed quotas
-- ---------------------------------------------------------------------------
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000007', 'ai_requests', 1000) AS usage_based,
       celaest.consume_quota('c3000000-0000-4000-8000-000000000009', 'ai_requests', 1000) AS custom_unlimited,
       celaest.consume_quota('c3000000-0000-4000-8000-000000000009', 'storage_gb', 5368709120) AS custom_unlimited_storage,
       celaest.check_limit('c3000000-0000-4000-8000-000000000007', 'ai_requests', 1000000) AS usage_based_check;
-- A trial is narrowed to 2 AI requests by license.trial_limits.
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000008', 'ai_requests', 2) AS trial_remaining;
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000008');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- ---------------------------------------------------------------------------
-- A billing period that ended before refresh_licenses() ran: check_limit already
-- counts from zero, and consume_quota rolls the period before charging it.
-- ---------------------------------------------------------------------------
UPDATE celaest.licenses
   SET current_period_start = now() - interval '744 hours', current_period_end = now() - interval '24 hours',
       ai_requests_used = 5
 WHERE organization_id = 'c3000000-0000-4000-8000-000000000010';
SELECT celaest.check_limit('c3000000-0000-4000-8000-000000000010', 'ai_requests') AS lapsed_period;
SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000010') AS remaining_in_new_period;
SELECT current_period_start = now() - interval '24 hours' AS new_period_starts_at_old_end,
       current_period_end - current_period_start AS period, ai_requests_used
  FROM celaest.licenses WHERE organization_id = 'c3000000-0000-4000-8000-000000000010';
SELECT metric, quantity, period_end - period_start AS closed_period, metadata
  FROM celaest.license_usage_log WHERE organization_id = 'c3000000-0000-4000-8000-000000000010';

-- ---------------------------------------------------------------------------
-- The fast path and the general path give the same answers
-- ---------------------------------------------------------------------------
SELECT o.n, celaest.check_limit(o.id, 'ai_requests', 2) = celaest._check_limit_general(o.id, 'ai_requests', 2) AS same
  FROM (SELECT n, ('c3000000-0000-4000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid AS id
          FROM generate_series(1, 12) AS n) AS o
 ORDER BY o.n;

-- ---------------------------------------------------------------------------
-- The AI-call glue: reserve_ai_request (one request, no log row per call) and check_batch
-- ---------------------------------------------------------------------------
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('c3100000-0000-4000-8000-000000000011', 'c3000000-0000-4000-8000-000000000011', 'q11@lc.test');
INSERT INTO celaest.processed_tasks (id, organization_id, user_id) VALUES
    ('c3200000-0000-4000-8000-000000000011', 'c3000000-0000-4000-8000-000000000011', 'c3100000-0000-4000-8000-000000000011');
SELECT pg_temp.masked(celaest._reserve_ai_request('c3000000-0000-4000-8000-000000000011',
           'c3100000-0000-4000-8000-000000000011', 'c3200000-0000-4000-8000-000000000011')::text) AS charged_license;
SELECT pg_temp.masked(license_id::text) AS license, metric, quantity, task_id, user_id,
       period_end - period_start AS period, metadata
  FROM celaest.license_usage_log WHERE organization_id = 'c3000000-0000-4000-8000-000000000011';
SELECT pg_temp.masked(celaest._check_batch('c3000000-0000-4000-8000-000000000011', 3)::text) AS batch_ok;
SELECT pg_temp.try($$SELECT celaest._check_batch('c3000000-0000-4000-8000-000000000011', 4)$$) AS batch_too_big;
SELECT pg_temp.masked(celaest._check_batch('c3000000-0000-4000-8000-000000000011', 3, true)::text) AS batch_reserved;
SELECT * FROM pg_temp.used('c3000000-0000-4000-8000-000000000011');
SELECT pg_temp.try($$SELECT celaest._check_batch('c3000000-0000-4000-8000-000000000011', 2)$$) AS batch_over_quota;
SELECT pg_temp.try($$SELECT celaest._check_batch('c3000000-0000-4000-8000-000000000011', 1, true)$$) AS one_left,
       pg_temp.try($$SELECT celaest._reserve_ai_request('c3000000-0000-4000-8000-000000000011', NULL)$$) AS reserve_when_used_up;
SELECT count(*) AS usage_rows, sum(quantity) AS charged FROM celaest.license_usage_log
 WHERE organization_id = 'c3000000-0000-4000-8000-000000000011';
SELECT pg_temp.try($$SELECT celaest._check_batch('c3000000-0000-4000-8000-000000000003', 1)$$) AS batch_cancelled,
       pg_temp.try($$SELECT celaest._reserve_ai_request('c3000000-0000-4000-8000-000000000006', NULL)$$) AS reserve_no_license;

-- ---------------------------------------------------------------------------
-- Bad input: 22023 / 22004 naming the value, nothing changed
-- ---------------------------------------------------------------------------
SELECT t.call, pg_temp.try(t.sql) AS result
  FROM (VALUES
    ('consume negative',   $$SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'ai_requests', -1)$$),
    ('consume metric',     $$SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'tokens')$$),
    ('consume NULL metric', $$SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', NULL)$$),
    ('consume NULL amount', $$SELECT celaest.consume_quota('c3000000-0000-4000-8000-000000000001', 'ai_requests', NULL)$$),
    ('consume NULL org',   $$SELECT celaest.consume_quota(NULL)$$),
    ('check negative',     $$SELECT celaest.check_limit('c3000000-0000-4000-8000-000000000001', 'ai_requests', -5)$$),
    ('check metric',       $$SELECT celaest.check_limit('c3000000-0000-4000-8000-000000000001', 'AI_REQUESTS')$$),
    ('check NULL org',     $$SELECT celaest.check_limit(NULL, 'users')$$),
    ('release negative',   $$SELECT celaest._release_quota('c3000000-0000-4000-8000-000000000001', 'storage_gb', -1)$$),
    ('release metric',     $$SELECT celaest._release_quota('c3000000-0000-4000-8000-000000000001', 'gigabytes', 1)$$),
    ('release no license', $$SELECT celaest._release_quota('c3000000-0000-4000-8000-000000000006', 'ai_requests', 1)$$),
    ('batch negative',     $$SELECT celaest._check_batch('c3000000-0000-4000-8000-000000000001', -1)$$),
    ('batch NULL org',     $$SELECT celaest._check_batch(NULL, 1)$$)
  ) AS t (call, sql);
SELECT * FROM pg_temp.used('c3000000-0000-4000-8000-000000000001');

ROLLBACK;
