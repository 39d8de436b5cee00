-- Benchmark data: 1,000 organizations, each with an active license of a plan whose
-- AI quota is never reached during a run. Ids are derived from the number n (1..1000)
-- so that the pgbench scripts can name an organization or license without a lookup:
--   organization n: 00000000-0000-4000-8000-<n, 12 digits>
--   license n:      00000000-0000-4000-9000-<n, 12 digits>
\set ON_ERROR_STOP on
SET client_min_messages = warning;
INSERT INTO celaest.subscription_plans (code, name, limits)
VALUES ('bench', 'Benchmark',
        '{"max_users": 100, "max_ai_requests_per_month": 1000000000000, "max_storage_gb": 10,
          "max_concurrent_tasks": 10, "max_batch_size": 100}');
INSERT INTO celaest.organizations (id, name, slug)
SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'Bench ' || n, 'bench-' || n
  FROM generate_series(1, 1000) AS n;
SELECT count(celaest.issue_license(('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'bench'))
  FROM generate_series(1, 1000) AS n;
-- Deterministic license ids for the bare UPDATE baseline.
UPDATE celaest.licenses AS l
   SET id = ('00000000-0000-4000-9000-' || substr(l.organization_id::text, 25))::uuid;
VACUUM ANALYZE;
