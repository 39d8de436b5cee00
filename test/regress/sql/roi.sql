-- ROI: aggregate_roi and roi_summary on a small dataset whose figures are worked
-- out by hand below. Everything runs in one transaction that is rolled back at
-- the end, so that no fixture is left for the tests that follow.
\set SHOW_CONTEXT never
\set VERBOSITY default
\set ON_ERROR_ROLLBACK on
BEGIN;

-- ---------------------------------------------------------------------------
-- Fixture (all times UTC)
-- ---------------------------------------------------------------------------
-- Org A: own hourly rate 30. Org B: no rate (system_config, else 25).
-- Org C: soft-deleted, with a task in the window. Org D: soft-deleted, no tasks.
INSERT INTO celaest.organizations (id, name, slug, settings, created_at, deleted_at) VALUES
    ('0a000000-0000-4000-8000-000000000001', 'ROI Org A', 'regress-roi-a', '{"roi": {"hourly_rate": 30}}', '2023-12-01 00:00Z', NULL),
    ('0b000000-0000-4000-8000-000000000002', 'ROI Org B', 'regress-roi-b', '{}', '2023-12-01 00:00Z', NULL),
    ('0c000000-0000-4000-8000-000000000003', 'ROI Org C', 'regress-roi-c', '{}', '2023-12-01 00:00Z', '2024-02-01 00:00Z'),
    ('0d000000-0000-4000-8000-000000000004', 'ROI Org D', 'regress-roi-d', '{}', '2023-12-01 00:00Z', '2024-02-01 00:00Z');

-- u1 and u2 are new in org A on Jan 1 and Jan 2; u3 (B) and u4 (C) are older.
INSERT INTO celaest.users_profile (id, organization_id, email, role, created_at) VALUES
    ('1a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000001', 'roi-u1@example.com', 'operator', '2024-01-01 10:00Z'),
    ('1a000000-0000-4000-8000-000000000002', '0a000000-0000-4000-8000-000000000001', 'roi-u2@example.com', 'operator', '2024-01-02 09:00Z'),
    ('1b000000-0000-4000-8000-000000000003', '0b000000-0000-4000-8000-000000000002', 'roi-u3@example.com', 'operator', '2023-12-20 00:00Z'),
    ('1c000000-0000-4000-8000-000000000004', '0c000000-0000-4000-8000-000000000003', 'roi-u4@example.com', 'operator', '2023-12-20 00:00Z');

INSERT INTO celaest.ai_models (id, provider, model_id, display_name) VALUES
    ('2a000000-0000-4000-8000-000000000001', 'openai', 'regress-roi-gpt', 'Regress GPT'),
    ('2a000000-0000-4000-8000-000000000002', 'groq', 'regress-roi-llama', 'Regress Llama');

-- Manual minutes: p1 says 12; p2 says "ten" (not a number: ignored, the default
-- applies); p3 says nothing (default). The default is 5 until changed below.
INSERT INTO celaest.prompts_master (id, slug, name, category, system_prompt, metadata) VALUES
    ('3a000000-0000-4000-8000-000000000001', 'regress-roi-summarize', 'Summarize', 'text', 'Summarize.', '{"manual_minutes": 12}'),
    ('3a000000-0000-4000-8000-000000000002', 'regress-roi-classify', 'Classify', 'text', 'Classify.', '{"manual_minutes": "ten"}'),
    ('3a000000-0000-4000-8000-000000000003', 'regress-roi-translate', 'Translate', 'text', 'Translate.', '{}');

INSERT INTO celaest.processed_tasks
    (id, organization_id, user_id, model_id, prompt_id, status,
     tokens_input, tokens_output, cost_usd, execution_time_ms, created_at)
VALUES
    -- Org A, Monday 2024-01-01
    ('4a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001',
     '2a000000-0000-4000-8000-000000000001', '3a000000-0000-4000-8000-000000000001', 'completed', 100, 50, 0.012, 30000, '2024-01-01 11:00Z'),
    ('4a000000-0000-4000-8000-000000000002', '0a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001',
     '2a000000-0000-4000-8000-000000000001', '3a000000-0000-4000-8000-000000000001', 'completed', 80, 20, 0.008, 90000, '2024-01-01 12:00Z'),
    ('4a000000-0000-4000-8000-000000000003', '0a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000002',
     '2a000000-0000-4000-8000-000000000002', '3a000000-0000-4000-8000-000000000002', 'completed', 40, 10, 0.004, 6000, '2024-01-01 13:00Z'),
    ('4a000000-0000-4000-8000-000000000004', '0a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000002',
     '2a000000-0000-4000-8000-000000000002', '3a000000-0000-4000-8000-000000000001', 'failed', 10, 0, 0.001, 120000, '2024-01-01 14:00Z'),
    -- not finished / cancelled: never counted
    ('4a000000-0000-4000-8000-000000000005', '0a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001',
     '2a000000-0000-4000-8000-000000000001', NULL, 'pending', 0, 0, 0, NULL, '2024-01-01 15:00Z'),
    ('4a000000-0000-4000-8000-000000000006', '0a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001',
     '2a000000-0000-4000-8000-000000000001', '3a000000-0000-4000-8000-000000000001', 'cancelled', 0, 0, 0, NULL, '2024-01-01 16:00Z'),
    -- Org A, Tuesday 2024-01-02
    ('4a000000-0000-4000-8000-000000000007', '0a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000002',
     '2a000000-0000-4000-8000-000000000001', '3a000000-0000-4000-8000-000000000003', 'completed', 1000, 500, 0.5, 600000, '2024-01-02 10:00Z'),
    ('4a000000-0000-4000-8000-000000000008', '0a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000002',
     '2a000000-0000-4000-8000-000000000001', '3a000000-0000-4000-8000-000000000003', 'failed', 0, 0, 0, NULL, '2024-01-02 11:00Z'),
    -- Org A, Sunday 2024-01-07 23:30 and Monday 2024-01-08 00:10 (UTC): different
    -- ISO weeks, although both are Sunday afternoon in America/Mexico_City.
    ('4a000000-0000-4000-8000-000000000009', '0a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001',
     '2a000000-0000-4000-8000-000000000001', '3a000000-0000-4000-8000-000000000001', 'completed', 200, 100, 0.1, 60000, '2024-01-07 23:30Z'),
    ('4a000000-0000-4000-8000-000000000010', '0a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001',
     '2a000000-0000-4000-8000-000000000001', '3a000000-0000-4000-8000-000000000001', 'completed', 200, 100, 0.2, 120000, '2024-01-08 00:10Z'),
    -- Org B, 2024-01-01: no prompt (default minutes), no rate (default rate)
    ('4b000000-0000-4000-8000-000000000011', '0b000000-0000-4000-8000-000000000002', '1b000000-0000-4000-8000-000000000003',
     '2a000000-0000-4000-8000-000000000002', NULL, 'completed', 400, 100, 0.05, 3000, '2024-01-01 09:00Z'),
    -- Org C (soft-deleted since February), 2024-01-01
    ('4c000000-0000-4000-8000-000000000013', '0c000000-0000-4000-8000-000000000003', '1c000000-0000-4000-8000-000000000004',
     NULL, NULL, 'completed', 0, 0, 0, NULL, '2024-01-01 09:00Z');

-- ---------------------------------------------------------------------------
-- Refusals
-- ---------------------------------------------------------------------------
SELECT celaest.aggregate_roi('yearly', '2024-01-01');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.aggregate_roi('Daily', '2024-01-01');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.aggregate_roi(NULL, '2024-01-01');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.aggregate_roi('daily', NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.aggregate_roi('daily', '2024-01-05', '2024-01-01');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.aggregate_roi('daily', '2024-01-01', NULL, 'ffffffff-0000-4000-8000-000000000000');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.roi_summary('0a000000-0000-4000-8000-000000000001', '2024-01-05', '2024-01-01');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.roi_summary('0a000000-0000-4000-8000-000000000001', NULL, '2024-01-01');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT celaest.roi_summary('ffffffff-0000-4000-8000-000000000000', '2024-01-01', '2024-01-31');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- No organization given and no acting user.
SELECT celaest.roi_summary(NULL, '2024-01-01', '2024-01-31');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS roi_rows_after_refusals FROM celaest.roi_metrics
 WHERE organization_id = '0a000000-0000-4000-8000-000000000001';

-- ---------------------------------------------------------------------------
-- Daily, org A, Jan 1-3 (the session time zone does not matter: org A has no
-- settings->>'timezone', so its periods are UTC days)
-- These tasks record no ai_time_ms: API.md counts the AI time of time_saved_minutes
-- from ai_time_ms (not execution_time_ms), so time saved = manual minutes here;
-- test/integration/test_roi.py covers ai_time_ms, time zones and DST.
-- ---------------------------------------------------------------------------
-- Jan 1: completed t1 t2 t3, failed t4 (t5 pending, t6 cancelled: only in cost, tokens and active users).
--   success 3/4 = 75.00; manual 12 + 12 + 5 = 29; no ai_time_ms: saved 29; cost_ai 0.012+0.008+0.004+0.001 = 0.025 -> 0.03;
--   manual cost 29 * 30 / 60 = 14.50; money 14.50 - 0.03 = 14.47;
--   roi (14.5 - 0.025) / 0.025 = 57900.00 %; tokens 150+100+50+10 = 310, / 4 = 77.5 -> 78;
--   exec of completed {6000, 30000, 90000}: avg 42000, p95 30000 + 0.9 * 60000 = 84000,
--   p99 30000 + 0.98 * 60000 = 88800; active users u1, u2 = 2; new users u1 = 1.
-- Jan 2: completed t7, failed t8. success 50.00; manual 5 (p3: default); saved 5; cost 0.50; manual cost 2.50; money 2.00; roi 400.00 %; tokens 1500 / 2 = 750;
--   exec 600000; active u2 = 1; new u2 = 1.
-- Jan 3: no tasks: a row of zeros, NULL rates and times.
SET TimeZone = 'America/Mexico_City';
SELECT celaest.aggregate_roi('daily', '2024-01-01', '2024-01-03', '0a000000-0000-4000-8000-000000000001') AS daily_rows;
\x on
SELECT period_type, period_start, period_end, tasks_completed, tasks_failed, success_rate,
       manual_equivalent_minutes, time_saved_minutes, cost_ai, cost_manual_equivalent, money_saved,
       total_tokens, avg_tokens_per_task, avg_execution_time_ms, p95_execution_time_ms, p99_execution_time_ms,
       active_users_count, new_users_count, metadata
  FROM celaest.roi_metrics
 WHERE organization_id = '0a000000-0000-4000-8000-000000000001' AND period_type = 'daily'
 ORDER BY period_start;
\x off

-- Idempotent: the same call again computes the same rows and rewrites none of
-- them (same tuple, same everything).
CREATE TEMP TABLE roi_before AS
    SELECT ctid AS row_ctid, * FROM celaest.roi_metrics
     WHERE organization_id = '0a000000-0000-4000-8000-000000000001';
SELECT celaest.aggregate_roi('daily', '2024-01-01', '2024-01-03', '0a000000-0000-4000-8000-000000000001') AS daily_rows_again;
SELECT count(*) AS rows_differing
  FROM ((SELECT ctid, * FROM celaest.roi_metrics WHERE organization_id = '0a000000-0000-4000-8000-000000000001')
        EXCEPT
        (SELECT * FROM roi_before)) AS d;

-- A task finishing later on Jan 3 changes that day's row, and only that row.
INSERT INTO celaest.processed_tasks
    (id, organization_id, user_id, model_id, prompt_id, status, tokens_input, tokens_output, cost_usd, execution_time_ms, created_at)
VALUES ('4a000000-0000-4000-8000-000000000012', '0a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001',
        '2a000000-0000-4000-8000-000000000001', '3a000000-0000-4000-8000-000000000001', 'completed', 10, 10, 0.002, 60000, '2024-01-03 08:00Z');
SELECT celaest.aggregate_roi('daily', '2024-01-01', '2024-01-03', '0a000000-0000-4000-8000-000000000001') AS daily_rows_after_new_task;
SELECT m.period_start, m.ctid = b.row_ctid AS untouched, m.id = b.id AS same_id,
       m.tasks_completed, m.manual_equivalent_minutes, m.time_saved_minutes, m.cost_ai, m.money_saved
  FROM celaest.roi_metrics AS m
  JOIN roi_before AS b USING (organization_id, period_type, period_start)
 WHERE m.organization_id = '0a000000-0000-4000-8000-000000000001' AND m.period_type = 'daily'
 ORDER BY m.period_start;
DELETE FROM celaest.processed_tasks WHERE id = '4a000000-0000-4000-8000-000000000012';
SELECT celaest.aggregate_roi('daily', '2024-01-03', NULL, '0a000000-0000-4000-8000-000000000001') AS jan3_recomputed;
SELECT tasks_completed, cost_ai FROM celaest.roi_metrics
 WHERE organization_id = '0a000000-0000-4000-8000-000000000001' AND period_type = 'daily' AND period_start = '2024-01-03';

-- ---------------------------------------------------------------------------
-- Weekly and monthly
-- ---------------------------------------------------------------------------
-- From a Wednesday to the next Monday: the whole ISO weeks of Jan 1 and Jan 8.
-- Week of Jan 1 (t1-t4, t7, t8, t9): completed 5, failed 2: 71.43 %; manual
--   12+12+5+5+12 = 46; saved 46;
--   cost 0.625 -> 0.63; manual cost 46 * 30 / 60 = 23.00; money 22.37;
--   roi (23 - 0.625) / 0.625 = 3580.00 %; tokens 310+1500+300 = 2110 / 7 -> 301;
--   exec {6000, 30000, 60000, 90000, 600000}: avg 157200, p95 90000 + 0.8 * 510000
--   = 498000, p99 90000 + 0.96 * 510000 = 579600; active 2; new 2.
-- Week of Jan 8 (t10 only): manual 12, saved 12; cost 0.20; manual cost 6.00;
--   money 5.80; roi 2900.00 %.
SELECT celaest.aggregate_roi('weekly', '2024-01-03', '2024-01-08', '0a000000-0000-4000-8000-000000000001') AS weekly_rows;
-- Monthly from mid-January to early February: January and (leap) February.
-- January (t1-t4, t7-t10): completed 6, failed 2: 75.00 %; manual 58; saved 58; cost 0.825 -> 0.83; manual cost 29.00; money 28.17;
--   roi (29 - 0.825) / 0.825 = 3415.15 %; tokens 2410 / 8 -> 301;
--   exec {6000, 30000, 60000, 90000, 120000, 600000}: avg 151000,
--   p95 120000 + 0.75 * 480000 = 480000, p99 120000 + 0.95 * 480000 = 576000.
SELECT celaest.aggregate_roi('monthly', '2024-01-15', '2024-02-10', '0a000000-0000-4000-8000-000000000001') AS monthly_rows;
RESET TimeZone;
SELECT period_type, period_start, period_end, tasks_completed AS done, tasks_failed AS failed,
       success_rate AS rate, manual_equivalent_minutes AS manual, time_saved_minutes AS saved,
       cost_ai, cost_manual_equivalent AS cost_manual, money_saved, total_tokens AS tokens,
       avg_tokens_per_task AS avg_tok, avg_execution_time_ms AS avg_ms, p95_execution_time_ms AS p95_ms,
       p99_execution_time_ms AS p99_ms, active_users_count AS active, new_users_count AS new,
       metadata ->> 'roi_percent' AS roi_percent
  FROM celaest.roi_metrics
 WHERE organization_id = '0a000000-0000-4000-8000-000000000001' AND period_type IN ('weekly', 'monthly')
 ORDER BY period_type DESC, period_start;

-- ---------------------------------------------------------------------------
-- roi_summary: straight from processed_tasks, same rules
-- ---------------------------------------------------------------------------
-- The week of Jan 1 gives the weekly row's figures, with breakdowns:
--   by model: GPT (t1 t2 t7 t9 done, t8 failed): 80.00 %, manual 41, saved 41,
--     cost 0.620 -> 0.62, manual cost 20.50, money 19.88, roi 3206.45 %, tokens 2050,
--     avg 195000, p95 90000 + 0.85 * 510000 = 523500;
--     Llama (t3 done, t4 failed): 50.00 %, manual 5, saved 5, cost 0.005 -> 0.01,
--     manual cost 2.50, money 2.49, roi 49900.00 %, tokens 60.
--   by prompt: summarize (t1 t2 t9 done, t4 failed) 75.00 %, manual 36, saved 36,
--     cost 0.121 -> 0.12, manual cost 18.00, money 17.88, roi 14776.03 %, p95 87000;
--     translate (t7 done, t8 failed) and classify (t3 done): one completed task each,
--     the dearer first.
SELECT jsonb_pretty(celaest.roi_summary('0a000000-0000-4000-8000-000000000001', '2024-01-01', '2024-01-07'));

-- The summary of January equals the monthly row aggregate_roi stored.
SELECT s ->> 'tasks_completed' = m.tasks_completed::text
       AND s ->> 'tasks_failed' = m.tasks_failed::text
       AND (s ->> 'success_rate')::numeric = m.success_rate
       AND (s ->> 'manual_equivalent_minutes')::bigint = m.manual_equivalent_minutes
       AND (s ->> 'time_saved_minutes')::bigint = m.time_saved_minutes
       AND (s ->> 'cost_ai')::numeric = m.cost_ai
       AND (s ->> 'cost_manual_equivalent')::numeric = m.cost_manual_equivalent
       AND (s ->> 'money_saved')::numeric = m.money_saved
       AND (s ->> 'total_tokens')::bigint = m.total_tokens
       AND (s ->> 'avg_execution_time_ms')::int = m.avg_execution_time_ms
       AND (s ->> 'p95_execution_time_ms')::int = m.p95_execution_time_ms
       AND (s ->> 'p99_execution_time_ms')::int = m.p99_execution_time_ms
       AND (s ->> 'active_users_count')::int = m.active_users_count
       AND (s ->> 'new_users_count')::int = m.new_users_count
       AND s ->> 'roi_percent' = m.metadata ->> 'roi_percent' AS summary_matches_monthly_row
  FROM celaest.roi_summary('0a000000-0000-4000-8000-000000000001', '2024-01-01', '2024-01-31') AS s,
       celaest.roi_metrics AS m
 WHERE m.organization_id = '0a000000-0000-4000-8000-000000000001'
   AND m.period_type = 'monthly' AND m.period_start = '2024-01-01';

-- A range without tasks: zeros, NULL rates, empty breakdowns.
SELECT jsonb_pretty(celaest.roi_summary('0a000000-0000-4000-8000-000000000001', '2024-03-01', NULL));

-- ---------------------------------------------------------------------------
-- Where the manual minutes and the hourly rate come from
-- ---------------------------------------------------------------------------
-- Org B, Jan 1: t11 has no prompt, org B no rate: 5 min at 25/h = 2.0833 -> 2.08;
--   money 2.08 - 0.05 = 2.03; roi (2.08 - 0.05) / 0.05 = 4060.00 %.
SELECT celaest.aggregate_roi('daily', '2024-01-01', NULL, '0b000000-0000-4000-8000-000000000002') AS org_b_rows;
SELECT manual_equivalent_minutes, time_saved_minutes, cost_ai, cost_manual_equivalent, money_saved, metadata
  FROM celaest.roi_metrics
 WHERE organization_id = '0b000000-0000-4000-8000-000000000002' AND period_type = 'daily';
-- system_config now says 6 minutes and 48/h: org B gets 6 min at 48/h = 4.80, money
-- 4.75, roi 9500.00 %. Org A keeps its own rate (30) and p1's 12 minutes; only t3
-- (prompt p2, "ten") takes the new default: Jan 1 manual 12 + 12 + 6 = 30, cost 15.00.
SELECT celaest.config_set('roi.manual_minutes_per_task', '6');
SELECT celaest.config_set('roi.hourly_rate', '48');
SELECT celaest.aggregate_roi('daily', '2024-01-01', NULL, '0b000000-0000-4000-8000-000000000002') AS org_b_rows;
SELECT celaest.aggregate_roi('daily', '2024-01-01', NULL, '0a000000-0000-4000-8000-000000000001') AS org_a_rows;
SELECT o.slug, m.manual_equivalent_minutes, m.time_saved_minutes, m.cost_manual_equivalent, m.money_saved,
       m.metadata ->> 'roi_percent' AS roi_percent, m.metadata ->> 'hourly_rate' AS hourly_rate
  FROM celaest.roi_metrics AS m
  JOIN celaest.organizations AS o ON o.id = m.organization_id
 WHERE m.organization_id IN ('0a000000-0000-4000-8000-000000000001', '0b000000-0000-4000-8000-000000000002')
   AND m.period_type = 'daily' AND m.period_start = '2024-01-01'
 ORDER BY o.slug;

-- ---------------------------------------------------------------------------
-- Every organization at once
-- ---------------------------------------------------------------------------
-- One row per live organization, plus soft-deleted ones with tasks that day (C),
-- not soft-deleted ones without (D).
SELECT celaest.aggregate_roi('daily', '2024-01-01')
       = (SELECT count(*) FROM celaest.organizations AS o
           WHERE o.deleted_at IS NULL
              OR EXISTS (SELECT 1 FROM celaest.processed_tasks AS t
                          WHERE t.organization_id = o.id
                            AND t.created_at >= '2024-01-01 00:00Z' AND t.created_at < '2024-01-02 00:00Z'))
       AS one_row_per_organization;
SELECT o.slug, m.tasks_completed, m.manual_equivalent_minutes
  FROM celaest.organizations AS o
  LEFT JOIN celaest.roi_metrics AS m
         ON m.organization_id = o.id AND m.period_type = 'daily' AND m.period_start = '2024-01-01'
 WHERE o.slug LIKE 'regress-roi-%'
 ORDER BY o.slug;

-- ---------------------------------------------------------------------------
-- A tenant: reads its own organization's ROI, nobody else's, and cannot write
-- ---------------------------------------------------------------------------
CREATE ROLE regress_celaest_roi_tenant NOLOGIN;
SELECT celaest.grant_access('regress_celaest_roi_tenant', 'authenticated');
SET ROLE regress_celaest_roi_tenant;
SET request.jwt.claim.sub = '1a000000-0000-4000-8000-000000000001';
SELECT s ->> 'organization_id' AS organization_id, s ->> 'tasks_completed' AS tasks_completed,
       s ->> 'money_saved' AS money_saved
  FROM celaest.roi_summary(NULL, '2024-01-01', '2024-01-07') AS s;
SELECT celaest.roi_summary('0b000000-0000-4000-8000-000000000002', '2024-01-01', '2024-01-07');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT DISTINCT organization_id AS visible_roi_rows FROM celaest.roi_metrics;
SELECT celaest.aggregate_roi('daily', '2024-01-01', NULL, '0a000000-0000-4000-8000-000000000001');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET request.jwt.claim.sub;
RESET ROLE;

ROLLBACK;
