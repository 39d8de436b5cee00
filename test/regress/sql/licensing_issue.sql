-- Licensing 1/5: issue_license, keys, billing periods, effective limits, and bad input.
-- Everything runs in one transaction that is rolled back at the end (no fixture is left
-- for the tests that follow); now() is therefore one instant throughout.
\set SHOW_CONTEXT never
\set VERBOSITY default
\set ON_ERROR_ROLLBACK on
SET client_min_messages = warning;
BEGIN;

-- try(sql) and masked(text): shared by the licensing tests.
\i test/regress/sql/include/licensing_try.sql

-- ---------------------------------------------------------------------------
-- Fixture
-- ---------------------------------------------------------------------------
INSERT INTO celaest.subscription_plans (code, name, limits, is_active) VALUES
    ('lc-std', 'Standard', '{"max_users": 3, "max_ai_requests_per_month": 100, "max_storage_gb": 2,
                             "max_concurrent_tasks": 2, "max_batch_size": 10}', true),
    ('lc-partial', 'Partial', '{"max_users": 7}', true),
    ('lc-retired', 'Retired', '{"max_users": 1}', false);
INSERT INTO celaest.organizations (id, name, slug)
SELECT ('c1000000-0000-4000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'Issue Org ' || n, 'regress-lc-issue-' || n
  FROM generate_series(1, 20) AS n;
INSERT INTO celaest.organizations (id, name, slug, deleted_at)
VALUES ('c1000000-0000-4000-8000-000000000099', 'Deleted Org', 'regress-lc-issue-99', now());

-- ---------------------------------------------------------------------------
-- An active license: the key, its hash, the first billing period
-- ---------------------------------------------------------------------------
SELECT celaest.issue_license('c1000000-0000-4000-8000-000000000001', 'lc-std') AS r1 \gset
INSERT INTO label VALUES ((:'r1'::jsonb ->> 'license_id')::uuid, '<L1>');
SELECT r ->> 'status' AS status, r ->> 'plan' AS plan, r ->> 'billing_cycle' AS billing_cycle,
       r ->> 'organization_id' AS organization_id,
       (r ->> 'license_key') ~ '^[0-9a-f]{64}$' AS key_is_64_hex,
       (r ->> 'starts_at')::timestamptz = now() AS starts_now,
       r -> 'expires_at' AS expires_at, r -> 'trial_ends_at' AS trial_ends_at,
       (r ->> 'current_period_start')::timestamptz = now() AS period_opens_at_start,
       (r ->> 'current_period_end')::timestamptz - (r ->> 'current_period_start')::timestamptz AS period,
       r -> 'limits' AS limits
  FROM (SELECT :'r1'::jsonb AS r) AS s;
-- Stored: the key, its SHA-256 in hex, the next billing date (UTC date of the period end).
SELECT l.license_key = :'r1'::jsonb ->> 'license_key' AS key_stored,
       l.license_key_hash = encode(sha256(convert_to(l.license_key, 'UTF8')), 'hex') AS hash_is_sha256,
       length(l.license_key_hash) AS hash_length,
       l.next_billing_date = (l.current_period_end AT TIME ZONE 'UTC')::date AS next_billing_date_ok,
       l.ai_requests_used, l.storage_used_bytes, l.custom_limits, l.metadata
  FROM celaest.licenses AS l WHERE l.id = (:'r1'::jsonb ->> 'license_id')::uuid;
-- Two keys are never alike.
SELECT count(DISTINCT license_key) = count(*) AS keys_distinct FROM celaest.licenses;

-- ---------------------------------------------------------------------------
-- A trial: trial_days > 0 starts it as trial, trial_ends_at = start + days
-- ---------------------------------------------------------------------------
SELECT celaest.issue_license('c1000000-0000-4000-8000-000000000002', 'lc-std',
                             '{"trial_days": 14, "notes": "evaluation", "metadata": {"source": "sales"}}') AS r2 \gset
INSERT INTO label VALUES ((:'r2'::jsonb ->> 'license_id')::uuid, '<L2 trial>');
SELECT r ->> 'status' AS status,
       (r ->> 'trial_ends_at')::timestamptz - (r ->> 'starts_at')::timestamptz AS trial_length,
       (r ->> 'current_period_end')::timestamptz - (r ->> 'current_period_start')::timestamptz AS period
  FROM (SELECT :'r2'::jsonb AS r) AS s;
SELECT notes, metadata FROM celaest.licenses WHERE id = (:'r2'::jsonb ->> 'license_id')::uuid;
-- trial_days 0 is an active license.
SELECT celaest.issue_license('c1000000-0000-4000-8000-000000000003', 'lc-std', '{"trial_days": 0}') ->> 'status' AS status;

-- ---------------------------------------------------------------------------
-- Billing cycles: the first period opens at starts_at and lasts the cycle
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE issued AS
SELECT o.n, o.cycle, celaest.issue_license(('c1000000-0000-4000-8000-00000000000' || o.n)::uuid, 'lc-std',
                                           jsonb_build_object('billing_cycle', o.cycle)) AS r
  FROM (VALUES (4, 'monthly'), (5, 'quarterly'), (6, 'yearly'), (7, 'lifetime'), (8, 'usage_based')) AS o (n, cycle);
SELECT i.cycle, l.billing_cycle AS stored,
       l.current_period_start = now() AS opens_now,
       l.current_period_end - l.current_period_start AS period,
       l.next_billing_date = (l.current_period_end AT TIME ZONE 'UTC')::date AS next_billing_date_ok,
       l.next_billing_date IS NULL AS no_next_billing_date
  FROM issued AS i JOIN celaest.licenses AS l ON l.id = (i.r ->> 'license_id')::uuid
 ORDER BY i.n;
SELECT celaest._billing_period_length(c) AS length, c AS cycle
  FROM unnest(enum_range(NULL::celaest.billing_cycle)) AS c;

-- A backdated start: the first period still opens at starts_at (refresh_licenses rolls it).
-- (Intervals in hours: a day is 24 hours whatever the TimeZone.)
SELECT (r ->> 'current_period_start')::timestamptz = now() - interval '1080 hours' AS period_opens_at_starts_at,
       (r ->> 'current_period_end')::timestamptz = now() - interval '360 hours' AS period_ended_15_days_ago,
       r ->> 'status' AS status
  FROM (SELECT celaest.issue_license('c1000000-0000-4000-8000-000000000009', 'lc-std',
                jsonb_build_object('starts_at', now() - interval '1080 hours',
                                   'expires_at', now() + interval '7680 hours')) AS r) AS s;
SELECT expires_at - starts_at AS expires_after FROM celaest.licenses
 WHERE organization_id = 'c1000000-0000-4000-8000-000000000009';
-- A JSON null option is the same as leaving it out.
SELECT r ->> 'status' AS status, r -> 'expires_at' AS expires_at
  FROM (SELECT celaest.issue_license('c1000000-0000-4000-8000-000000000010', 'lc-std',
                '{"expires_at": null, "trial_days": null, "custom_limits": null}') AS r) AS s;

-- ---------------------------------------------------------------------------
-- Effective limits: plan limits overlaid by custom_limits; -1 = unlimited
-- ---------------------------------------------------------------------------
SELECT celaest.issue_license('c1000000-0000-4000-8000-000000000011', 'lc-std',
           '{"custom_limits": {"max_users": 10, "max_ai_requests_per_month": -1}}') -> 'limits' AS custom_overlay;
-- A plan that names only max_users: the others are unlimited.
SELECT celaest.issue_license('c1000000-0000-4000-8000-000000000012', 'lc-partial') -> 'limits' AS partial_plan;
-- usage_based: AI requests are metered, not capped.
SELECT celaest.effective_limits(l.id) AS usage_based
  FROM celaest.licenses AS l WHERE l.organization_id = 'c1000000-0000-4000-8000-000000000008';

-- Trials run with the plan's limits unless system_config license.trial_limits narrows them:
-- the smaller value wins, -1 never widens, and custom_limits still wins over both.
INSERT INTO celaest.system_config (key, value) VALUES
    ('license.trial_limits', '{"max_ai_requests_per_month": 50, "max_users": -1, "max_batch_size": 500}')
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
SELECT celaest.effective_limits((:'r2'::jsonb ->> 'license_id')::uuid) AS trial_narrowed;
SELECT celaest.issue_license('c1000000-0000-4000-8000-000000000013', 'lc-std',
           '{"trial_days": 7, "custom_limits": {"max_ai_requests_per_month": 500}}') -> 'limits' AS trial_with_custom;
SELECT celaest.issue_license('c1000000-0000-4000-8000-000000000014', 'lc-std',
           '{"trial_days": 7, "billing_cycle": "usage_based"}') -> 'limits' AS usage_based_trial;
-- An active license is not narrowed.
SELECT celaest.effective_limits((:'r1'::jsonb ->> 'license_id')::uuid) -> 'max_ai_requests_per_month' AS active_ai_limit;
-- The pure helper agrees with the per-key one for every key.
SELECT k, celaest._limit_value(k, '{"max_users": 3, "max_storage_gb": -1}', '{"max_batch_size": 9}',
                              '{"max_users": 2, "max_storage_gb": 4, "max_batch_size": 1}', false) AS value,
       celaest._effective_limits_of('{"max_users": 3, "max_storage_gb": -1}', '{"max_batch_size": 9}',
                                   '{"max_users": 2, "max_storage_gb": 4, "max_batch_size": 1}', false) ->> k AS from_object
  FROM unnest(ARRAY['max_users', 'max_ai_requests_per_month', 'max_storage_gb', 'max_concurrent_tasks',
                    'max_batch_size']) AS k;

-- current_license: the one in force, or NULL.
SELECT (celaest.current_license('c1000000-0000-4000-8000-000000000001')).id = (:'r1'::jsonb ->> 'license_id')::uuid AS current_is_l1,
       celaest.current_license('c1000000-0000-4000-8000-000000000020') IS NULL AS none_for_org_20;

-- ---------------------------------------------------------------------------
-- At most one license in force per organization (23505, naming the organization)
-- ---------------------------------------------------------------------------
SELECT count(*) AS licenses_before FROM celaest.licenses \gset
SELECT pg_temp.try($$SELECT celaest.issue_license('c1000000-0000-4000-8000-000000000001', 'lc-std')$$) AS second_license;
SELECT pg_temp.try($$SELECT celaest.issue_license('c1000000-0000-4000-8000-000000000002', 'lc-partial')$$) AS second_after_trial;
-- Once the first one is cancelled, a new one may be issued.
SELECT status FROM celaest.set_license_status((:'r1'::jsonb ->> 'license_id')::uuid, 'cancelled', 'replaced');
SELECT celaest.issue_license('c1000000-0000-4000-8000-000000000001', 'lc-partial') ->> 'status' AS reissued;
SELECT count(*) - :licenses_before AS licenses_added FROM celaest.licenses;

-- ---------------------------------------------------------------------------
-- Bad input: a clear error naming the value, and nothing changed
-- ---------------------------------------------------------------------------
SELECT count(*) AS licenses_before FROM celaest.licenses \gset
SELECT t.case, pg_temp.try(format('SELECT celaest.issue_license(%L, %L, %L)', t.org, t.plan, t.options)) AS result
  FROM (VALUES
    ('unknown plan',         'c1000000-0000-4000-8000-000000000020', 'nope', '{}'),
    ('retired plan',         'c1000000-0000-4000-8000-000000000020', 'lc-retired', '{}'),
    ('unknown organization', 'c1000000-0000-4000-8000-0000000000ff', 'lc-std', '{}'),
    ('deleted organization', 'c1000000-0000-4000-8000-000000000099', 'lc-std', '{}'),
    ('options not object',   'c1000000-0000-4000-8000-000000000020', 'lc-std', '[]'),
    ('unknown option',       'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"trial_dayz": 3}'),
    ('billing_cycle weekly', 'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"billing_cycle": "weekly"}'),
    ('billing_cycle number', 'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"billing_cycle": 30}'),
    ('trial_days negative',  'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"trial_days": -1}'),
    ('trial_days fraction',  'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"trial_days": 1.5}'),
    ('trial_days string',    'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"trial_days": "14"}'),
    ('trial_days huge',      'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"trial_days": 4000}'),
    ('custom not object',    'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"custom_limits": [1, 2]}'),
    ('custom string value',  'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"custom_limits": {"max_users": "ten"}}'),
    ('custom fraction',      'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"custom_limits": {"max_users": 2.5}}'),
    ('custom below -1',      'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"custom_limits": {"max_users": -2}}'),
    ('custom null value',    'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"custom_limits": {"max_users": null}}'),
    ('custom unknown limit', 'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"custom_limits": {"max_userz": 1}}'),
    ('custom storage huge',  'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"custom_limits": {"max_storage_gb": 9999999999}}'),
    ('starts_at garbage',    'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"starts_at": "next tuesday"}'),
    ('starts_at number',     'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"starts_at": 20260101}'),
    ('starts_at infinity',   'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"starts_at": "-infinity"}'),
    ('starts_at future',     'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"starts_at": "2999-01-01T00:00:00Z"}'),
    ('expires_at past',      'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"starts_at": "2001-01-01T00:00:00Z", "expires_at": "2002-01-01T00:00:00Z"}'),
    ('expires_at now-ish',   'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"expires_at": "2001-01-01T00:00:00Z"}'),
    ('expires before start', 'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"starts_at": "2001-01-02T00:00:00Z", "expires_at": "2001-01-01T00:00:00Z"}'),
    ('trial already over',   'c1000000-0000-4000-8000-000000000020', 'lc-std', '{"starts_at": "2001-01-01T00:00:00Z", "trial_days": 7}')
  ) AS t ("case", org, plan, options);
SELECT pg_temp.try($$SELECT celaest.issue_license(NULL, 'lc-std')$$) AS null_org,
       pg_temp.try($$SELECT celaest.issue_license('c1000000-0000-4000-8000-000000000020', NULL)$$) AS null_plan;
SELECT count(*) - :licenses_before AS licenses_added FROM celaest.licenses;
SELECT pg_temp.try($$SELECT celaest.effective_limits('c1000000-0000-4000-8000-0000000000ff')$$) AS unknown_license;

-- The limits objects are validated wherever they are written: plans, custom_limits,
-- and the license.trial_limits setting.
SELECT t.case, pg_temp.try(t.sql) AS result
  FROM (VALUES
    ('plan insert',   $$INSERT INTO celaest.subscription_plans (code, name, limits) VALUES ('lc-bad', 'Bad', '{"max_users": "5"}')$$),
    ('plan update',   $$UPDATE celaest.subscription_plans SET limits = '{"max_storage_gb": -7}' WHERE code = 'lc-std'$$),
    ('custom update', $$UPDATE celaest.licenses SET custom_limits = '{"users": 5}' WHERE organization_id = 'c1000000-0000-4000-8000-000000000003'$$),
    ('trial setting', $$UPDATE celaest.system_config SET value = '{"max_ai_requests_per_month": 0.5}' WHERE key = 'license.trial_limits'$$),
    ('trial setting not object', $$UPDATE celaest.system_config SET value = '"none"' WHERE key = 'license.trial_limits'$$)
  ) AS t ("case", sql);
SELECT celaest._validate_limits(NULL) IS NULL AS null_is_fine,
       celaest._validate_limits('{"max_users": -1, "max_storage_gb": 8589934591, "max_batch_size": 1e3}') AS valid_limits;

ROLLBACK;
