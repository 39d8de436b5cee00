-- Licensing 2/5: validate_license: every code, lookups by the key's SHA-256, and unknown
-- keys answered exactly like garbage. One transaction, rolled back at the end.
\set SHOW_CONTEXT never
\set VERBOSITY default
\set ON_ERROR_ROLLBACK on
SET client_min_messages = warning;
BEGIN;

-- try(sql) and masked(text): shared by the licensing tests.
\i test/regress/sql/include/licensing_try.sql

-- The parts of validate_license's answer that do not depend on the clock or on ids.
CREATE FUNCTION pg_temp.v(p_key text) RETURNS TABLE (code text, valid boolean, status text, plan text,
                                                     license text, ai_limit text, ai_used text, has_usage boolean)
LANGUAGE sql AS $$
    SELECT r ->> 'code', (r ->> 'valid')::boolean, r ->> 'status', r ->> 'plan',
           pg_temp.masked(r ->> 'license_id'), r -> 'limits' ->> 'max_ai_requests_per_month',
           r -> 'usage' ->> 'ai_requests', r -> 'usage' IS NOT NULL AND jsonb_typeof(r -> 'usage') = 'object'
      FROM (SELECT celaest.validate_license(p_key) AS r) AS s;
$$;

-- ---------------------------------------------------------------------------
-- Fixture: one organization per state
-- ---------------------------------------------------------------------------
INSERT INTO celaest.subscription_plans (code, name, limits) VALUES
    ('lc-val', 'Validate', '{"max_users": 3, "max_ai_requests_per_month": 3, "max_storage_gb": 1,
                             "max_concurrent_tasks": 2, "max_batch_size": 10}');
INSERT INTO celaest.organizations (id, name, slug)
SELECT ('c2000000-0000-4000-8000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'Validate Org ' || n, 'regress-lc-validate-' || n
  FROM generate_series(1, 10) AS n;

CREATE TEMP TABLE k (name text PRIMARY KEY, license_id uuid, license_key text);
INSERT INTO k
SELECT s.name, (s.r ->> 'license_id')::uuid, s.r ->> 'license_key'
  FROM (SELECT 'active' AS name, celaest.issue_license('c2000000-0000-4000-8000-000000000001', 'lc-val') AS r
        UNION ALL SELECT 'trial', celaest.issue_license('c2000000-0000-4000-8000-000000000002', 'lc-val', '{"trial_days": 14}')
        UNION ALL SELECT 'suspended', celaest.issue_license('c2000000-0000-4000-8000-000000000003', 'lc-val')
        UNION ALL SELECT 'cancelled', celaest.issue_license('c2000000-0000-4000-8000-000000000004', 'lc-val')
        UNION ALL SELECT 'expired', celaest.issue_license('c2000000-0000-4000-8000-000000000005', 'lc-val')
        UNION ALL SELECT 'expired by date', celaest.issue_license('c2000000-0000-4000-8000-000000000006', 'lc-val')
        UNION ALL SELECT 'trial ended by date', celaest.issue_license('c2000000-0000-4000-8000-000000000007', 'lc-val', '{"trial_days": 14}')
        UNION ALL SELECT 'trial expired', celaest.issue_license('c2000000-0000-4000-8000-000000000008', 'lc-val', '{"trial_days": 14}')
        UNION ALL SELECT 'quota used up', celaest.issue_license('c2000000-0000-4000-8000-000000000009', 'lc-val')
        UNION ALL SELECT 'renewed', celaest.issue_license('c2000000-0000-4000-8000-000000000010', 'lc-val')) AS s;
INSERT INTO label SELECT license_id, '<' || name || '>' FROM k;

SELECT status FROM celaest.set_license_status((SELECT license_id FROM k WHERE name = 'suspended'), 'suspended', 'non-payment');
SELECT status FROM celaest.set_license_status((SELECT license_id FROM k WHERE name = 'cancelled'), 'cancelled', 'churned');
SELECT status FROM celaest.set_license_status((SELECT license_id FROM k WHERE name = 'expired'), 'expired', 'contract over');
SELECT status FROM celaest.set_license_status((SELECT license_id FROM k WHERE name = 'trial expired'), 'expired', 'no conversion');
-- Dates that have passed while the status still says active / trial (refresh_licenses
-- has not run yet): already refused.
UPDATE celaest.licenses SET expires_at = now() - interval '1 hour'
 WHERE id = (SELECT license_id FROM k WHERE name = 'expired by date');
UPDATE celaest.licenses SET trial_ends_at = now() - interval '1 hour'
 WHERE id = (SELECT license_id FROM k WHERE name = 'trial ended by date');
SELECT celaest.consume_quota('c2000000-0000-4000-8000-000000000009', 'ai_requests', 3) AS remaining;
SELECT status FROM celaest.set_license_status((SELECT license_id FROM k WHERE name = 'renewed'), 'expired');
SELECT status FROM celaest.set_license_status((SELECT license_id FROM k WHERE name = 'renewed'), 'active', 'paid again');

-- ---------------------------------------------------------------------------
-- Every code
-- ---------------------------------------------------------------------------
SELECT k.name, v.*
  FROM k CROSS JOIN LATERAL pg_temp.v(k.license_key) AS v
 ORDER BY k.name;
-- The whole answer for a valid key.
SELECT jsonb_object_keys(celaest.validate_license(license_key)) AS answer_keys FROM k WHERE name = 'active' ORDER BY 1;
SELECT celaest.validate_license(license_key) -> 'limits' AS limits,
       (celaest.validate_license(license_key) -> 'usage') - 'period_start' - 'period_end' AS usage,
       (celaest.validate_license(license_key) -> 'usage' ->> 'period_end')::timestamptz
         - (celaest.validate_license(license_key) -> 'usage' ->> 'period_start')::timestamptz AS period,
       celaest.validate_license(license_key) ->> 'organization_id' AS organization_id
  FROM k WHERE name = 'active';

-- The key is matched as lowercase hex, surrounding blanks (spaces, tabs, newlines) ignored.
SELECT (pg_temp.v(upper(license_key))).code AS upper_case, (pg_temp.v(E' \t' || license_key || E'\n')).code AS padded
  FROM k WHERE name = 'active';

-- ---------------------------------------------------------------------------
-- NOT_FOUND: an unknown well-formed key gets exactly the answer garbage gets
-- ---------------------------------------------------------------------------
SELECT celaest.validate_license(repeat('0', 64)) AS unknown_key;
SELECT probe, celaest.validate_license(k) = celaest.validate_license(repeat('0', 64)) AS same_as_unknown_key
  FROM (VALUES ('garbage', 'garbage'), ('empty', ''), ('blanks', '   '), ('63 hex digits', repeat('f', 63)),
               ('65 hex digits', repeat('f', 65)), ('quote injection', $$' OR '1'='1$$),
               ('10000 characters', repeat('x', 10000)), ('NULL', NULL)) AS p (probe, k);
-- Keys are looked up by their SHA-256: the stored hash is not itself a key, and a license
-- whose hash does not match its key (a corrupted row) is not found by that key.
SELECT (pg_temp.v(l.license_key_hash)).code AS hash_as_key FROM celaest.licenses AS l
  JOIN k ON k.license_id = l.id WHERE k.name = 'active';
UPDATE celaest.licenses SET license_key_hash = repeat('0', 64)
 WHERE id = (SELECT license_id FROM k WHERE name = 'active');
SELECT (pg_temp.v(license_key)).code AS key_with_wrong_hash FROM k WHERE name = 'active';

-- ---------------------------------------------------------------------------
-- The hash follows the key, however the license was written
-- ---------------------------------------------------------------------------
-- Inserted directly (an application, a fixture): no hash given, found by its key as given,
-- in any case and with blanks around it; the stored hash is the key's, as issue_license's.
INSERT INTO celaest.organizations (id, name, slug)
VALUES ('c2000000-0000-4000-8000-000000000011', 'Validate Org direct', 'regress-lc-validate-direct');
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status)
SELECT 'c2000000-0000-4000-8000-000000000011', p.id, 'Direct-License-Key-0001', 'active'
  FROM celaest.subscription_plans AS p WHERE p.code = 'lc-val';
SELECT (pg_temp.v('Direct-License-Key-0001')).code AS direct, (pg_temp.v('direct-license-key-0001')).code AS lower_case,
       (pg_temp.v(E' Direct-License-Key-0001\n')).code AS padded,
       celaest.validate_license('Direct-License-Key-0001') ->> 'organization_id' AS organization_id;
-- Even a hash written with the row gives way to the key's.
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, license_key_hash, status)
SELECT 'c2000000-0000-4000-8000-000000000011', p.id, 'direct-cancelled-key', repeat('f', 64), 'cancelled'
  FROM celaest.subscription_plans AS p WHERE p.code = 'lc-val';
SELECT (pg_temp.v('direct-cancelled-key')).code AS written_with_a_wrong_hash;
-- A key changed later: the new key is found at once, the old one is NOT_FOUND.
UPDATE celaest.licenses SET license_key = 'Replaced-License-Key-0002'
 WHERE license_key = 'Direct-License-Key-0001';
SELECT (pg_temp.v('Replaced-License-Key-0002')).code AS new_key, (pg_temp.v('Direct-License-Key-0001')).code AS old_key;
-- check_limit and validate_license answer for the same license.
SELECT celaest.check_limit('c2000000-0000-4000-8000-000000000011', 'ai_requests') ->> 'code' AS check_limit,
       (celaest.validate_license('Replaced-License-Key-0002') ->> 'license_id')::uuid
       = (SELECT id FROM celaest.licenses WHERE license_key = 'Replaced-License-Key-0002') AS same_license;
SELECT count(*) AS hash_not_the_keys FROM celaest.licenses
 WHERE license_key_hash IS DISTINCT FROM encode(sha256(convert_to(lower(btrim(license_key)), 'UTF8')), 'hex')
   AND organization_id <> (SELECT organization_id FROM celaest.licenses AS l JOIN k ON k.license_id = l.id
                            WHERE k.name = 'active');

ROLLBACK;
