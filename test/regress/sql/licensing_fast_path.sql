-- Licensing 6/6: the native fast paths of check_limit and consume_quota, which keep a
-- per-backend copy of each organization's license in force and its effective AI cap
-- (78_cache_validity.sql). Unlike the other licensing tests this one commits as it goes: a copy is
-- made and used only outside a transaction that changed licensing data. Every answer is
-- compared with the general SQL path (_check_limit_general), and every change that
-- matters (custom_limits, plan limits, trial limits, status, a new license) must show at
-- once in the same session. (Across sessions: test/integration/test_licensing_concurrency.py.)
\set SHOW_CONTEXT never
\set VERBOSITY default
SET client_min_messages = warning;

\i test/regress/sql/include/licensing_try.sql

-- The fast answer, and whether it equals the general path's.
CREATE FUNCTION pg_temp.both(p_org uuid, p_amount bigint DEFAULT 1) RETURNS text LANGUAGE sql AS $$
    SELECT celaest.check_limit(p_org, 'ai_requests', p_amount)::text
           || CASE WHEN celaest.check_limit(p_org, 'ai_requests', p_amount)
                        = celaest._check_limit_general(p_org, 'ai_requests', p_amount)
                   THEN '' ELSE '  <> general: ' || celaest._check_limit_general(p_org, 'ai_requests', p_amount)::text END;
$$;

-- ---------------------------------------------------------------------------
-- Fixture (committed): one organization per license state
-- ---------------------------------------------------------------------------
INSERT INTO celaest.subscription_plans (code, name, limits) VALUES
    ('lc-fast', 'Fast path', '{"max_users": 2, "max_ai_requests_per_month": 5, "max_storage_gb": 1,
                              "max_concurrent_tasks": 1, "max_batch_size": 3}');
INSERT INTO celaest.organizations (id, name, slug)
SELECT ('c6000000-0000-4000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'Fast Org ' || n, 'regress-lc-fast-' || n
  FROM generate_series(1, 7) AS n;
-- 1 active, 2 trial, 3 usage_based, 4 custom unlimited, 5 suspended, 6 expired by date,
-- 7 no license at all.
SELECT count(*) AS issued FROM (
    SELECT celaest.issue_license(('c6000000-0000-4000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'lc-fast',
               CASE n WHEN 2 THEN '{"trial_days": 14}'
                      WHEN 3 THEN '{"billing_cycle": "usage_based"}'
                      WHEN 4 THEN '{"custom_limits": {"max_ai_requests_per_month": -1}}'
                      ELSE '{}' END::jsonb)
      FROM generate_series(1, 6) AS n) AS s;
INSERT INTO label SELECT id, '<L' || right(organization_id::text, 2)::int || '>' FROM celaest.licenses
 WHERE organization_id::text LIKE 'c6000000-%';
SELECT status FROM celaest.set_license_status(celaest._assert_license_usable('c6000000-0000-4000-8000-000000000005'), 'suspended', 'regress');
UPDATE celaest.licenses SET expires_at = now() - interval '1 second'
 WHERE organization_id = 'c6000000-0000-4000-8000-000000000006';
INSERT INTO celaest.system_config (key, value) VALUES ('license.trial_limits', '{"max_ai_requests_per_month": 2}')
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;

-- ---------------------------------------------------------------------------
-- Every state: the same answer as the general path, first read and from the copy
-- ---------------------------------------------------------------------------
SELECT n, pg_temp.both(('c6000000-0000-4000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid) AS first_read
  FROM generate_series(1, 7) AS n ORDER BY n;
SELECT n, pg_temp.both(('c6000000-0000-4000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid, 3) AS cached_amount_3
  FROM generate_series(1, 7) AS n ORDER BY n;

-- ---------------------------------------------------------------------------
-- consume_quota: grants up to the cap, then LC010 and nothing changes
-- ---------------------------------------------------------------------------
SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000001') AS remaining_after_1;
SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000001', 'ai_requests', 4) AS remaining_after_5;
SELECT pg_temp.try($$SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000001')$$) AS sixth;
SELECT pg_temp.both('c6000000-0000-4000-8000-000000000001', 0) AS at_the_cap;
-- The trial's cap is the plan's narrowed by license.trial_limits (2).
SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000002', 'ai_requests', 2) AS trial_remaining;
SELECT pg_temp.try($$SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000002')$$) AS trial_third;
-- Unlimited: -1 remains.
SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000003', 'ai_requests', 1000) AS usage_based_remaining,
       celaest.consume_quota('c6000000-0000-4000-8000-000000000004', 'max_ai_requests_per_month', 1000) AS custom_remaining;
-- Refusals come from the general path, with its errors.
SELECT pg_temp.try($$SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000005')$$) AS suspended;
SELECT pg_temp.try($$SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000006')$$) AS expired;
SELECT pg_temp.try($$SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000007')$$) AS no_license;
SELECT pg_temp.try($$SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000001', 'ai_requests', -1)$$) AS negative;
SELECT pg_temp.try($$SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000001', 'tokens', 1)$$) AS unknown_metric;
SELECT pg_temp.try($$SELECT celaest.consume_quota(NULL)$$) AS null_org;
SELECT pg_temp.try($$SELECT celaest.check_limit(NULL, 'ai_requests')$$) AS null_org_check;
SELECT ai_requests_used FROM celaest.licenses
 WHERE organization_id = 'c6000000-0000-4000-8000-000000000001' AND status = 'active';

-- ---------------------------------------------------------------------------
-- Committed changes show at once in this session
-- ---------------------------------------------------------------------------
UPDATE celaest.licenses SET custom_limits = '{"max_ai_requests_per_month": 8}'
 WHERE organization_id = 'c6000000-0000-4000-8000-000000000001';
SELECT pg_temp.both('c6000000-0000-4000-8000-000000000001') AS custom_limit_raised;
SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000001', 'ai_requests', 3) AS remaining_under_8;
UPDATE celaest.licenses SET custom_limits = NULL
 WHERE organization_id = 'c6000000-0000-4000-8000-000000000001';
UPDATE celaest.subscription_plans SET limits = limits || '{"max_ai_requests_per_month": 10}' WHERE code = 'lc-fast';
SELECT pg_temp.both('c6000000-0000-4000-8000-000000000001') AS plan_limit_raised;
UPDATE celaest.system_config SET value = '{"max_ai_requests_per_month": 3}' WHERE key = 'license.trial_limits';
SELECT pg_temp.both('c6000000-0000-4000-8000-000000000002') AS trial_limit_raised;
SELECT status FROM celaest.set_license_status((SELECT id FROM celaest.licenses
                                               WHERE organization_id = 'c6000000-0000-4000-8000-000000000005'), 'active', 'regress');
SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000005') AS reactivated_remaining;
-- A cancelled license and a new one: the new license is charged.
SELECT status FROM celaest.set_license_status(celaest._assert_license_usable('c6000000-0000-4000-8000-000000000004'), 'cancelled', 'regress');
SELECT pg_temp.both('c6000000-0000-4000-8000-000000000004') AS after_cancel;
SELECT celaest.issue_license('c6000000-0000-4000-8000-000000000004', 'lc-fast') IS NOT NULL AS reissued;
SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000004') AS new_license_remaining;
SELECT status, ai_requests_used FROM celaest.licenses
 WHERE organization_id = 'c6000000-0000-4000-8000-000000000004' ORDER BY created_at;

-- ---------------------------------------------------------------------------
-- Inside a transaction that changes licensing data: its own change counts, and a
-- rollback leaves the committed terms
-- ---------------------------------------------------------------------------
BEGIN;
UPDATE celaest.licenses SET custom_limits = '{"max_ai_requests_per_month": 100}'
 WHERE organization_id = 'c6000000-0000-4000-8000-000000000001';
SELECT pg_temp.both('c6000000-0000-4000-8000-000000000001') AS inside_the_change;
SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000001', 'ai_requests', 50) AS remaining_inside;
ROLLBACK;
SELECT pg_temp.both('c6000000-0000-4000-8000-000000000001') AS after_rollback;

-- ---------------------------------------------------------------------------
-- Row-level security: a tenant role reads its own quota only, even though this backend
-- already holds copies of every organization's terms (filled above as superuser)
-- ---------------------------------------------------------------------------
INSERT INTO celaest.users_profile (id, organization_id, email)
VALUES ('c6000000-0000-4000-8000-0000000000f1', 'c6000000-0000-4000-8000-000000000001', 'fast-path@regress.test');
CREATE ROLE regress_lc_fast_tenant;
SELECT celaest.grant_access('regress_lc_fast_tenant', 'authenticated');
GRANT EXECUTE ON FUNCTION celaest.check_limit(uuid, text, bigint), celaest.consume_quota(uuid, text, bigint)
   TO regress_lc_fast_tenant;
GRANT SELECT ON label TO regress_lc_fast_tenant;
SET ROLE regress_lc_fast_tenant;
SET request.jwt.claim.sub = 'c6000000-0000-4000-8000-0000000000f1';
SELECT celaest.check_limit('c6000000-0000-4000-8000-000000000001', 'ai_requests') AS own_org;
SELECT celaest.check_limit('c6000000-0000-4000-8000-000000000003', 'ai_requests') AS other_org;
SELECT pg_temp.try($$SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000003')$$) AS consume_other_org;
RESET request.jwt.claim.sub;
RESET ROLE;
SELECT ai_requests_used FROM celaest.licenses
 WHERE organization_id = 'c6000000-0000-4000-8000-000000000003' AND status = 'active';
DROP OWNED BY regress_lc_fast_tenant;
DROP ROLE regress_lc_fast_tenant;

-- ---------------------------------------------------------------------------
-- The shared copy cannot be shaped by one caller: a search_path that puts a hostile `=`
-- first (it would make nullif(cap, -1) NULL: "unlimited") reads the same cap
-- ---------------------------------------------------------------------------
CREATE SCHEMA regress_evil;
CREATE FUNCTION regress_evil.always(bigint, integer) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR regress_evil.= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = regress_evil.always);
INSERT INTO celaest.organizations (id, name, slug)
VALUES ('c6000000-0000-4000-8000-000000000008', 'Fast Org 8', 'regress-lc-fast-8');
SELECT celaest.issue_license('c6000000-0000-4000-8000-000000000008', 'lc-fast') IS NOT NULL AS issued_8;
SET search_path = regress_evil, pg_catalog, public;
SELECT celaest.check_limit('c6000000-0000-4000-8000-000000000008', 'ai_requests') ->> 'limit' AS limit_under_hostile_path;
RESET search_path;
SELECT celaest.check_limit('c6000000-0000-4000-8000-000000000008', 'ai_requests') ->> 'limit' AS limit_afterwards;
DROP SCHEMA regress_evil CASCADE;

-- ---------------------------------------------------------------------------
-- A statement that changes licensing data copies nothing, even of its own rows before it
-- fails: the rolled-back limit (1000) is never seen afterwards
-- ---------------------------------------------------------------------------
SELECT pg_temp.try($$
    WITH changed AS (UPDATE celaest.licenses SET custom_limits = '{"max_ai_requests_per_month": 1000}'
                      WHERE organization_id = 'c6000000-0000-4000-8000-000000000008' RETURNING organization_id)
    SELECT celaest.check_limit(organization_id, 'ai_requests') ->> 'limit', 1 / 0 FROM changed$$) AS failed_statement;
SELECT celaest.check_limit('c6000000-0000-4000-8000-000000000008', 'ai_requests') ->> 'limit' AS limit_after_failure;
SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000008', 'ai_requests', 10) AS remaining_of_10;

-- Several charges in one statement: each sees the one before (the UPDATE runs in the
-- statement's snapshot, advanced past this transaction's own changes).
SELECT ai_requests_used AS before_two FROM celaest.licenses
 WHERE organization_id = 'c6000000-0000-4000-8000-000000000001' AND status = 'active';
SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000001') AS remaining FROM generate_series(1, 2);
SELECT pg_temp.try($$SELECT celaest.consume_quota('c6000000-0000-4000-8000-000000000001') FROM generate_series(1, 2)$$)
       AS over_the_cap_in_one_statement;
SELECT ai_requests_used AS after_two FROM celaest.licenses
 WHERE organization_id = 'c6000000-0000-4000-8000-000000000001' AND status = 'active';
