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
-- An end user per organization for the row-level security workload: Supabase-shaped (a
-- NOINHERIT role 'bench_end_user' with the authenticated level, auth.uid() reading the JWT
-- claims). User n is the admin of organization n: 00000000-0000-4000-a000-<n, 12 digits>.
CREATE SCHEMA IF NOT EXISTS auth;
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid $$;
GRANT USAGE ON SCHEMA auth TO PUBLIC;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_end_user') THEN
        CREATE ROLE bench_end_user LOGIN NOINHERIT;
    END IF;
END $$;
SELECT celaest.grant_access('bench_end_user', 'authenticated');
INSERT INTO celaest.users_profile (id, organization_id, email, display_name, role)
SELECT ('00000000-0000-4000-a000-' || lpad(n::text, 12, '0'))::uuid,
       ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid,
       'admin' || n || '@bench.example', 'Admin ' || n, 'admin'
  FROM generate_series(1, 1000) AS n;
VACUUM ANALYZE;
