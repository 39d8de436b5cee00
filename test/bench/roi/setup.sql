-- ROI benchmark data: :orgs organizations (in four time zones), 20 users each, 10 prompts,
-- :rows processed_tasks spread evenly over the 90 days from 2025-01-01 UTC.
-- Fast load: one INSERT ... SELECT generate_series, foreign-key triggers off
-- (session_replication_role = replica: the keys are right by construction), and the
-- table's indexes dropped during the load and built afterwards (one sort each instead of
-- ten million insertions each). Of the other triggers on processed_tasks, max_concurrent_tasks
-- fires for processing/retrying tasks, which are not generated; the ROI store's note of old
-- tasks written (enabled ALWAYS) fires for every row, as for any backfill of history, and
-- notes each organization's UTC days once (the cold run then finds nothing stored anyway).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET maintenance_work_mem = '1GB';

CREATE TABLE bench_orgs AS
    SELECT n, md5('bench-org-' || n)::uuid AS id,
           (ARRAY['UTC', 'America/New_York', 'Pacific/Auckland', 'Asia/Kolkata'])[1 + n % 4] AS tz
      FROM generate_series(0, :orgs - 1) AS n;
INSERT INTO celaest.organizations (id, name, slug, settings)
SELECT id, 'Bench org ' || n, 'bench-org-' || n,
       jsonb_build_object('timezone', tz) || CASE WHEN n % 3 = 0 THEN '{"roi": {"hourly_rate": 42}}'::jsonb ELSE '{}' END
  FROM bench_orgs;

CREATE TABLE bench_users AS
    SELECT o.n AS org_n, u AS user_n, md5('bench-user-' || o.n || '-' || u)::uuid AS id, o.id AS org_id
      FROM bench_orgs AS o, generate_series(0, 19) AS u;
INSERT INTO celaest.users_profile (id, organization_id, email, created_at)
SELECT id, org_id, 'bench-' || org_n || '-' || user_n || '@example.test',
       timestamptz '2025-01-01 00:00Z' + (org_n * 20 + user_n) * interval '259 seconds'
  FROM bench_users;

CREATE TABLE bench_prompts AS
    SELECT n, md5('bench-prompt-' || n)::uuid AS id FROM generate_series(0, 9) AS n;
INSERT INTO celaest.prompts_master (id, slug, name, category, system_prompt, metadata)
SELECT id, 'bench-prompt-' || n, 'Bench prompt ' || n, 'bench', 'x',
       CASE WHEN n < 7 THEN jsonb_build_object('manual_minutes', 3 + n) ELSE '{}' END
  FROM bench_prompts;

CREATE TABLE bench_indexes AS
    SELECT indexname, indexdef FROM pg_indexes
     WHERE schemaname = 'celaest' AND tablename = 'processed_tasks' AND indexname <> 'processed_tasks_pkey';
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT indexname FROM bench_indexes LOOP
        EXECUTE format('DROP INDEX celaest.%I', r.indexname);
    END LOOP;
END $$;
-- The primary key too (license_usage_log's foreign key rests on it: dropped and restored).
ALTER TABLE celaest.license_usage_log DROP CONSTRAINT license_usage_log_task_id_fkey;
ALTER TABLE celaest.processed_tasks DROP CONSTRAINT processed_tasks_pkey;

SET session_replication_role = replica;
INSERT INTO celaest.processed_tasks
    (id, organization_id, user_id, prompt_id, status, created_at,
     tokens_input, tokens_output, cost_usd, execution_time_ms, ai_time_ms)
SELECT gen_random_uuid(),
       o.id,
       md5('bench-user-' || o.n || '-' || ((g / 1000) % 20))::uuid,
       p.id,
       (CASE WHEN g % 100 < 80 THEN 'completed' WHEN g % 100 < 92 THEN 'failed'
             WHEN g % 100 < 97 THEN 'pending' ELSE 'cancelled' END)::celaest.task_status,
       timestamptz '2025-01-01 00:00Z' + (g::float8 / :rows) * interval '90 days',
       100 + g % 900, 50 + g % 400,
       ((g % 1000) * 0.000037)::numeric(10,6),
       CASE WHEN g % 53 = 0 THEN NULL ELSE 200 + (g::bigint * 7919) % 20000 END,
       CASE WHEN g % 53 = 0 THEN NULL ELSE 150 + (g::bigint * 7919) % 15000 END
  FROM generate_series(0, :rows - 1) AS g
  JOIN bench_orgs AS o ON o.n = g % :orgs
  JOIN bench_prompts AS p ON p.n = g % 10;
RESET session_replication_role;

ALTER TABLE celaest.processed_tasks ADD CONSTRAINT processed_tasks_pkey PRIMARY KEY (id);
ALTER TABLE celaest.license_usage_log ADD CONSTRAINT license_usage_log_task_id_fkey
    FOREIGN KEY (task_id) REFERENCES celaest.processed_tasks (id) ON DELETE SET NULL;
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT indexdef FROM bench_indexes LOOP
        EXECUTE r.indexdef;
    END LOOP;
END $$;
