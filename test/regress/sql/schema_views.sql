-- The three views of the data dictionary on sample data (rolled back at the end).
\set SHOW_CONTEXT never

-- Plain views that run with the caller's rights (row-level security applies).
SELECT c.relname AS view_name, c.reloptions
  FROM pg_class AS c
 WHERE c.relnamespace = 'celaest'::regnamespace AND c.relkind = 'v'
 ORDER BY c.relname;

BEGIN;
SET LOCAL TimeZone = 'UTC';

INSERT INTO celaest.organizations (id, name, slug) VALUES
    ('70000000-0000-4000-8000-000000000001', 'Views One', 'views-one'),
    ('70000000-0000-4000-8000-000000000002', 'Views Two', 'views-two'),
    ('70000000-0000-4000-8000-000000000003', 'Views Three', 'views-three');
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('71000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-000000000001', 'one@views.test'),
    ('71000000-0000-4000-8000-000000000002', '70000000-0000-4000-8000-000000000002', 'two@views.test');
INSERT INTO celaest.subscription_plans (id, code, name, limits) VALUES
    ('72000000-0000-4000-8000-000000000001', 'views-basic', 'Views Basic', DEFAULT),
    ('72000000-0000-4000-8000-000000000002', 'views-unlimited', 'Views Unlimited',
     '{"max_users": -1, "max_ai_requests_per_month": -1, "max_storage_gb": -1, "max_concurrent_tasks": 10, "max_batch_size": 1000}');

-- Org one: an active license with a custom request limit (and an old expired one);
-- org two: a trial on the unlimited plan; org three: suspended, over its limit.
INSERT INTO celaest.licenses (id, organization_id, plan_id, license_key, status, starts_at, expires_at,
                              trial_ends_at, current_period_start, current_period_end, next_billing_date,
                              custom_limits, ai_requests_used, storage_used_bytes) VALUES
    ('73000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-000000000001',
     '72000000-0000-4000-8000-000000000001', 'views-key-1', 'active', '2026-03-01', '2027-03-01',
     NULL, '2026-03-01', '2026-04-01', '2026-04-01', '{"max_ai_requests_per_month": 500}', 120, 1048576),
    ('73000000-0000-4000-8000-000000000002', '70000000-0000-4000-8000-000000000001',
     '72000000-0000-4000-8000-000000000001', 'views-key-2', 'expired', '2025-01-01', '2026-01-01',
     NULL, NULL, NULL, NULL, NULL, 9999, 0),
    ('73000000-0000-4000-8000-000000000003', '70000000-0000-4000-8000-000000000002',
     '72000000-0000-4000-8000-000000000002', 'views-key-3', 'trial', '2026-03-10', NULL,
     '2026-03-24', '2026-03-10', '2026-04-10', NULL, NULL, 42, 0),
    ('73000000-0000-4000-8000-000000000004', '70000000-0000-4000-8000-000000000003',
     '72000000-0000-4000-8000-000000000001', 'views-key-4', 'suspended', '2026-01-01', NULL,
     NULL, '2026-03-01', '2026-04-01', NULL, '{"max_ai_requests_per_month": 500, "max_users": 2}', 700, 0);

SELECT license_id, organization_name, organization_slug, plan_code, plan_name, status, billing_cycle,
       starts_at, expires_at, trial_ends_at, current_period_start, current_period_end, next_billing_date
  FROM celaest.v_active_licenses
 WHERE organization_slug LIKE 'views-%'
 ORDER BY organization_slug;
SELECT organization_slug, effective_limits, ai_requests_used, ai_requests_limit, ai_requests_remaining,
       storage_used_bytes
  FROM celaest.v_active_licenses
 WHERE organization_slug LIKE 'views-%'
 ORDER BY organization_slug;

-- The API-key pool: every provider, counts, usage, and the nearest expiry of the
-- active keys (the inactive key expiring sooner does not count).
INSERT INTO celaest.ai_api_pool (provider, key_name, key_value_encrypted, is_active, is_healthy,
                                 usage_count, tokens_used, last_used_at, expires_at) VALUES
    ('groq',   'views-groq-1', '\xdeadbeef', true,  true,  10, 1000, '2026-03-02 10:00', '2026-12-31'),
    ('groq',   'views-groq-2', '\xdeadbeef', true,  false,  5,  500, '2026-03-02 11:00', '2026-06-30'),
    ('groq',   'views-groq-3', '\xdeadbeef', false, true,   1,   10, '2026-01-01 00:00', '2026-04-01'),
    ('gemini', 'views-gemini', '\xdeadbeef', true,  true,   0,    0, NULL,               NULL);
SELECT * FROM celaest.v_api_pool_status ORDER BY provider;
-- No secret in it.
SELECT count(*) AS secret_columns
  FROM pg_attribute
 WHERE attrelid = 'celaest.v_api_pool_status'::regclass AND atttypid = 'bytea'::regtype;

-- Tasks: org one has three tasks on 1 March (UTC) and five on 2 March, one of which
-- was created on 1 March in New York but 2 March in UTC; org two has one.
INSERT INTO celaest.processed_tasks (organization_id, user_id, status, tokens_input, tokens_output, cost_usd,
                                     execution_time_ms, created_at) VALUES
    ('70000000-0000-4000-8000-000000000001', '71000000-0000-4000-8000-000000000001', 'completed', 10, 5, 0.001000, 100, '2026-03-01 08:00+00'),
    ('70000000-0000-4000-8000-000000000001', '71000000-0000-4000-8000-000000000001', 'completed', 20, 10, 0.002000, 200, '2026-03-01 09:00+00'),
    ('70000000-0000-4000-8000-000000000001', '71000000-0000-4000-8000-000000000001', 'failed', 0, 0, 0, 300, '2026-03-01 23:59:59+00'),
    ('70000000-0000-4000-8000-000000000001', '71000000-0000-4000-8000-000000000001', 'pending', 0, 0, 0, NULL, '2026-03-01 23:30-05'),
    ('70000000-0000-4000-8000-000000000001', '71000000-0000-4000-8000-000000000001', 'processing', 0, 0, 0, NULL, '2026-03-02 10:00+00'),
    ('70000000-0000-4000-8000-000000000001', '71000000-0000-4000-8000-000000000001', 'cancelled', 0, 0, 0, NULL, '2026-03-02 11:00+00'),
    ('70000000-0000-4000-8000-000000000001', '71000000-0000-4000-8000-000000000001', 'retrying', 5, 0, 0.000500, 40, '2026-03-02 12:00+00'),
    ('70000000-0000-4000-8000-000000000001', '71000000-0000-4000-8000-000000000001', 'completed', 7, 3, 0.000700, 60, '2026-03-02 13:00+00'),
    ('70000000-0000-4000-8000-000000000002', '71000000-0000-4000-8000-000000000002', 'completed', 1000, 2000, 0.123456, 1500, '2026-03-01 12:00+00');

SELECT o.slug, m.day, m.tasks_total, m.tasks_completed, m.tasks_failed, m.tasks_cancelled,
       m.tasks_pending, m.tasks_processing, m.tasks_retrying
  FROM celaest.v_daily_task_metrics AS m
  JOIN celaest.organizations AS o ON o.id = m.organization_id
 WHERE o.slug LIKE 'views-%'
 ORDER BY o.slug, m.day;
SELECT o.slug, m.day, m.tokens_input, m.tokens_output, m.tokens_total, m.cost_usd,
       m.avg_execution_time_ms, m.p95_execution_time_ms
  FROM celaest.v_daily_task_metrics AS m
  JOIN celaest.organizations AS o ON o.id = m.organization_id
 WHERE o.slug LIKE 'views-%'
 ORDER BY o.slug, m.day;

ROLLBACK;
