-- Licensing 4/5: the lifecycle. Every transition (legal and illegal), the stamps, the
-- audit entries with their reason, renewal, and refresh_licenses() (expiry, billing
-- periods rolled by cycle and closed into license_usage_log). One transaction, rolled
-- back at the end.
\set SHOW_CONTEXT never
\set VERBOSITY default
\set ON_ERROR_ROLLBACK on
SET client_min_messages = warning;
BEGIN;

-- try(sql) and masked(text): shared by the licensing tests.
\i test/regress/sql/include/licensing_try.sql

INSERT INTO celaest.subscription_plans (code, name, limits) VALUES
    ('lc-life', 'Lifecycle', '{"max_users": 5, "max_ai_requests_per_month": 100, "max_storage_gb": 1,
                              "max_concurrent_tasks": 2, "max_batch_size": 10}');

-- A new organization with a license in the given state; returns the license id.
CREATE FUNCTION pg_temp.license_in(p_org uuid, p_state text, p_options jsonb DEFAULT '{}') RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE v uuid;
BEGIN
    INSERT INTO celaest.organizations (id, name, slug) VALUES (p_org, 'Lifecycle ' || p_org, 'regress-lc-' || p_org);
    v := (celaest.issue_license(p_org, 'lc-life',
              p_options || CASE WHEN p_state = 'trial' THEN '{"trial_days": 14}' ELSE '{}' END::jsonb) ->> 'license_id')::uuid;
    IF p_state IN ('suspended', 'expired', 'cancelled') THEN
        PERFORM celaest.set_license_status(v, p_state::celaest.license_status, 'fixture');
    END IF;
    RETURN v;
END $$;

-- ---------------------------------------------------------------------------
-- The transition matrix: ok, = (same status: a no-op), or the SQLSTATE of the refusal
-- (55000 object_not_in_prerequisite_state)
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE transition AS
SELECT f.s AS from_status, f.n AS fn, t.s AS to_status, t.n AS tn,
       pg_temp.license_in(('c4000000-0000-4000-8000-0000000000' || f.n || t.n)::uuid, f.s) AS license_id
  FROM unnest(ARRAY['trial', 'active', 'suspended', 'expired', 'cancelled']) WITH ORDINALITY AS f (s, n)
 CROSS JOIN unnest(ARRAY['trial', 'active', 'suspended', 'expired', 'cancelled']) WITH ORDINALITY AS t (s, n);
ALTER TABLE transition ADD COLUMN result text;
INSERT INTO label SELECT license_id, '<' || from_status || '>' FROM transition;
UPDATE transition SET result = split_part(pg_temp.try(format('SELECT celaest.set_license_status(%L, %L, %L)',
                                                             license_id, to_status, 'matrix')), ':', 1);
UPDATE transition SET result = '=' WHERE from_status = to_status AND result = 'ok';
SELECT from_status AS "from \ to",
       max(result) FILTER (WHERE to_status = 'trial') AS trial,
       max(result) FILTER (WHERE to_status = 'active') AS active,
       max(result) FILTER (WHERE to_status = 'suspended') AS suspended,
       max(result) FILTER (WHERE to_status = 'expired') AS expired,
       max(result) FILTER (WHERE to_status = 'cancelled') AS cancelled
  FROM transition GROUP BY from_status, fn ORDER BY fn;
-- Each refusal names the license and both states, and says where it may go.
SELECT from_status, to_status, pg_temp.try(format('SELECT celaest.set_license_status(%L, %L)', license_id, to_status)) AS refusal
  FROM transition WHERE (from_status, to_status) IN (('trial', 'suspended'), ('expired', 'suspended'), ('active', 'trial'))
 ORDER BY fn, tn;
SELECT pg_temp.try(format('SELECT celaest.set_license_status(%L, %L)', license_id, 'active')) AS cancelled_is_final
  FROM transition WHERE from_status = 'cancelled' AND to_status = 'cancelled';
-- Refusals changed nothing: every license is still in its starting state, or in the
-- target state when the move was legal.
SELECT count(*) AS consistent
  FROM transition AS t JOIN celaest.licenses AS l ON l.id = t.license_id
 WHERE l.status::text = CASE WHEN t.result IN ('ok', '=') THEN t.to_status ELSE t.from_status END;

-- ---------------------------------------------------------------------------
-- Stamps, reasons and the audit trail
-- ---------------------------------------------------------------------------
SELECT pg_temp.license_in('c4100000-0000-4000-8000-000000000001', 'active') AS lic \gset
INSERT INTO label VALUES (:'lic', '<A>');
SELECT celaest.consume_quota('c4100000-0000-4000-8000-000000000001', 'ai_requests', 7) AS remaining;
SELECT status, suspended_at = now() AS suspended_now, cancelled_at, ai_requests_used,
       (metadata -> 'last_status_change') - 'at' AS last_change
  FROM celaest.set_license_status(:'lic', 'suspended', 'payment failed');
-- Reactivation clears suspended_at and keeps the period's usage.
SELECT status, suspended_at, ai_requests_used, (metadata -> 'last_status_change') - 'at' AS last_change
  FROM celaest.set_license_status(:'lic', 'active', 'paid');
-- The same status is a no-op: no change, no audit entry.
SELECT count(*) AS audit_before FROM celaest.audit_logs WHERE resource_id = :'lic' \gset
SELECT status, metadata -> 'last_status_change' ->> 'reason' AS reason FROM celaest.set_license_status(:'lic', 'active', 'again');
SELECT count(*) - :audit_before AS new_audit_entries FROM celaest.audit_logs WHERE resource_id = :'lic';
-- Every change is audited with a before/after diff that carries the reason.
SELECT action, pg_temp.masked(description) AS description,
       changes -> 'before' ->> 'status' AS before_status, changes -> 'after' ->> 'status' AS after_status,
       changes -> 'after' -> 'metadata' -> 'last_status_change' ->> 'reason' AS reason,
       changes -> 'after' ? 'suspended_at' AS stamps_suspended_at,
       changes -> 'after' ->> 'license_key' AS key_in_audit
  FROM celaest.audit_logs WHERE resource_type = 'license' AND resource_id = :'lic'
 ORDER BY action = 'create' DESC, before_status;
-- Cancelling stamps cancelled_at and closes the open period into license_usage_log.
SELECT status, cancelled_at = now() AS cancelled_now, metadata -> 'last_status_change' ->> 'reason' AS reason
  FROM celaest.set_license_status(:'lic', 'cancelled', 'customer left');
SELECT metric, quantity, period_end = now() AS closed_now, metadata
  FROM celaest.license_usage_log WHERE license_id = :'lic';

-- ---------------------------------------------------------------------------
-- Trial conversion and renewal
-- ---------------------------------------------------------------------------
SELECT pg_temp.license_in('c4100000-0000-4000-8000-000000000002', 'trial') AS trial \gset
INSERT INTO label VALUES (:'trial', '<T>');
SELECT celaest.consume_quota('c4100000-0000-4000-8000-000000000002', 'ai_requests', 4) AS remaining;
-- Converting a trial: its period is closed (4 requests), the paid period starts now.
SELECT status, current_period_start = now() AS period_starts_now, current_period_end - current_period_start AS period,
       ai_requests_used, trial_ends_at IS NOT NULL AS keeps_trial_end
  FROM celaest.set_license_status(:'trial', 'active', 'converted');
SELECT quantity, metadata FROM celaest.license_usage_log WHERE license_id = :'trial';
-- An active license may get a new expiry (an extension); other statuses may not.
SELECT expires_at - now() AS extended_by FROM celaest.set_license_status(:'trial', 'active', 'extended', now() + interval '8760 hours');
SELECT pg_temp.try(format('SELECT celaest.set_license_status(%L, %L, NULL, now() + interval %L)', :'trial', 'suspended', '1 day')) AS expiry_on_suspend;

-- Renewal: expired -> active needs an expiry in the future when the old one has passed.
SELECT pg_temp.license_in('c4100000-0000-4000-8000-000000000003', 'active', jsonb_build_object('expires_at', now() + interval '24 hours')) AS lapsing \gset
INSERT INTO label VALUES (:'lapsing', '<R>');
UPDATE celaest.licenses SET expires_at = now() - interval '1 hour', ai_requests_used = 9 WHERE id = :'lapsing';
SELECT celaest.refresh_licenses() > 0 AS refreshed;
SELECT status, metadata -> 'last_status_change' ->> 'reason' AS reason FROM celaest.licenses WHERE id = :'lapsing';
SELECT pg_temp.try(format('SELECT celaest.set_license_status(%L, %L)', :'lapsing', 'active')) AS renew_without_expiry;
SELECT status, expires_at - now() AS runs_for, current_period_start = now() AS fresh_period, ai_requests_used,
       (metadata -> 'last_status_change') - 'at' AS last_change
  FROM celaest.set_license_status(:'lapsing', 'active', 'renewed', now() + interval '8760 hours');
-- An expired license whose organization meanwhile got another license cannot come back.
SELECT pg_temp.license_in('c4100000-0000-4000-8000-000000000004', 'expired') AS old \gset
INSERT INTO label VALUES (:'old', '<OLD>');
SELECT celaest.issue_license('c4100000-0000-4000-8000-000000000004', 'lc-life') ->> 'status' AS new_license;
SELECT pg_temp.try(format('SELECT celaest.set_license_status(%L, %L)', :'old', 'active')) AS renew_old;
-- Unknown license, NULL arguments.
SELECT pg_temp.try($$SELECT celaest.set_license_status('c4100000-0000-4000-8000-0000000000ff', 'active')$$) AS unknown,
       pg_temp.try($$SELECT celaest.set_license_status(NULL, 'active')$$) AS null_id,
       pg_temp.try(format('SELECT celaest.set_license_status(%L, NULL)', :'old')) AS null_status;

-- ---------------------------------------------------------------------------
-- refresh_licenses(): expiry and billing periods
-- ---------------------------------------------------------------------------
-- First settle whatever else in this database is due, so that the counts below are
-- this fixture's alone (now() stands still inside the transaction).
SELECT celaest.refresh_licenses() >= 0 AS settled;
SELECT celaest.refresh_licenses() AS nothing_due;
-- (All intervals in hours: a day is 24 hours. "d" below = days before now.)
CREATE TEMP TABLE r (name text PRIMARY KEY, license_id uuid);
INSERT INTO r VALUES
  ('trial lapsed',      pg_temp.license_in('c4200000-0000-4000-8000-000000000001', 'trial', jsonb_build_object('starts_at', now() - interval '240 hours'))),
  ('active lapsed',     pg_temp.license_in('c4200000-0000-4000-8000-000000000002', 'active', jsonb_build_object('starts_at', now() - interval '240 hours', 'expires_at', now() + interval '1 hour'))),
  ('suspended lapsed',  pg_temp.license_in('c4200000-0000-4000-8000-000000000003', 'active', jsonb_build_object('starts_at', now() - interval '240 hours', 'expires_at', now() + interval '1 hour'))),
  ('monthly 95d',       pg_temp.license_in('c4200000-0000-4000-8000-000000000004', 'active', jsonb_build_object('starts_at', now() - interval '2280 hours'))),
  ('quarterly 100d',    pg_temp.license_in('c4200000-0000-4000-8000-000000000005', 'active', jsonb_build_object('starts_at', now() - interval '2400 hours', 'billing_cycle', 'quarterly'))),
  ('yearly 100d',       pg_temp.license_in('c4200000-0000-4000-8000-000000000006', 'active', jsonb_build_object('starts_at', now() - interval '2400 hours', 'billing_cycle', 'yearly'))),
  ('lifetime 1000d',    pg_temp.license_in('c4200000-0000-4000-8000-000000000007', 'active', jsonb_build_object('starts_at', now() - interval '24000 hours', 'billing_cycle', 'lifetime'))),
  ('usage_based 31d',   pg_temp.license_in('c4200000-0000-4000-8000-000000000008', 'active', jsonb_build_object('starts_at', now() - interval '744 hours', 'billing_cycle', 'usage_based'))),
  ('no period 50d',     pg_temp.license_in('c4200000-0000-4000-8000-000000000009', 'active', jsonb_build_object('starts_at', now() - interval '1200 hours'))),
  ('trial 31d of 60',   pg_temp.license_in('c4200000-0000-4000-8000-000000000010', 'active', jsonb_build_object('starts_at', now() - interval '744 hours'))),
  ('cancelled 95d',     pg_temp.license_in('c4200000-0000-4000-8000-000000000011', 'active', jsonb_build_object('starts_at', now() - interval '2280 hours'))),
  ('current monthly',   pg_temp.license_in('c4200000-0000-4000-8000-000000000012', 'active'));
INSERT INTO label SELECT license_id, '<' || name || '>' FROM r;
UPDATE celaest.licenses SET trial_ends_at = now() - interval '2 hours', ai_requests_used = 3
 WHERE id = (SELECT license_id FROM r WHERE name = 'trial lapsed');
UPDATE celaest.licenses SET expires_at = now() - interval '1 hour'
 WHERE id IN (SELECT license_id FROM r WHERE name IN ('active lapsed', 'suspended lapsed'));
SELECT status FROM celaest.set_license_status((SELECT license_id FROM r WHERE name = 'suspended lapsed'), 'suspended');
UPDATE celaest.licenses SET ai_requests_used = 7 WHERE id IN (SELECT license_id FROM r WHERE name IN ('monthly 95d', 'usage_based 31d', 'lifetime 1000d'));
UPDATE celaest.licenses SET current_period_start = NULL, current_period_end = NULL, next_billing_date = NULL
 WHERE id = (SELECT license_id FROM r WHERE name = 'no period 50d');
UPDATE celaest.licenses SET status = 'trial', trial_ends_at = now() + interval '696 hours'
 WHERE id = (SELECT license_id FROM r WHERE name = 'trial 31d of 60');
SELECT status FROM celaest.set_license_status((SELECT license_id FROM r WHERE name = 'cancelled 95d'), 'cancelled');
DELETE FROM celaest.license_usage_log WHERE license_id IN (SELECT license_id FROM r);

SELECT celaest.refresh_licenses() AS changed;
SELECT r.name, l.status, celaest._license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code,
       l.metadata -> 'last_status_change' ->> 'reason' AS reason,
       now() - l.current_period_start AS period_started_ago,
       l.current_period_end - l.current_period_start AS period,
       l.next_billing_date = (l.current_period_end AT TIME ZONE 'UTC')::date AS next_billing_ok,
       l.ai_requests_used AS used
  FROM r JOIN celaest.licenses AS l ON l.id = r.license_id
 ORDER BY r.name;
-- The closed periods.
SELECT pg_temp.masked(u.license_id::text) AS license, u.metric, u.quantity,
       now() - u.period_start AS from_ago, now() - u.period_end AS to_ago,
       u.metadata ->> 'reason' AS reason, u.metadata ->> 'billing_cycle' AS cycle
  FROM celaest.license_usage_log AS u JOIN r ON r.license_id = u.license_id
 ORDER BY r.name;
-- Nothing left to do.
SELECT celaest.refresh_licenses() AS changed_again;

ROLLBACK;
