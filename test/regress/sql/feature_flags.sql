-- Feature flags: is_feature_enabled for every target type, the sticky percentage
-- bucket, and the acting user / organization defaults. One transaction, rolled back.
\set SHOW_CONTEXT never
\set VERBOSITY default
\set ON_ERROR_ROLLBACK on
BEGIN;

INSERT INTO celaest.organizations (id, name, slug) VALUES
    ('0f000000-0000-4000-8000-000000000001', 'Flags Org One', 'regress-flags-one'),
    ('0f000000-0000-4000-8000-000000000002', 'Flags Org Two', 'regress-flags-two');
INSERT INTO celaest.users_profile (id, organization_id, email, deleted_at) VALUES
    ('1f000000-0000-4000-8000-000000000001', '0f000000-0000-4000-8000-000000000001', 'flags-u1@example.com', NULL),
    ('1f000000-0000-4000-8000-000000000002', '0f000000-0000-4000-8000-000000000002', 'flags-u2@example.com', NULL),
    ('1f000000-0000-4000-8000-000000000003', NULL, 'flags-loner@example.com', NULL),
    ('1f000000-0000-4000-8000-000000000004', '0f000000-0000-4000-8000-000000000001', 'flags-gone@example.com', '2024-01-01 00:00Z');

INSERT INTO celaest.feature_flags
    (flag_key, name, is_enabled, target_type, target_percentage, target_users, target_organizations)
VALUES
    ('regress.everyone', 'Everyone', true, 'all', NULL, NULL, NULL),
    ('regress.off', 'Off', false, 'all', NULL, NULL, NULL),
    ('regress.listed_users', 'Listed users', true, 'users', NULL,
     ARRAY['1f000000-0000-4000-8000-000000000001']::uuid[], NULL),
    ('regress.listed_orgs', 'Listed orgs', true, 'orgs', NULL,
     NULL, ARRAY['0f000000-0000-4000-8000-000000000001']::uuid[]),
    ('regress.empty_lists', 'Empty lists', true, 'users', NULL, NULL, NULL),
    ('regress.rollout_30', 'Rollout 30 %', true, 'percentage', 30, NULL, NULL),
    ('regress.rollout_60', 'Rollout 60 %', true, 'percentage', 60, NULL, NULL),
    ('regress.rollout_0', 'Rollout 0 %', true, 'percentage', 0, NULL, NULL),
    ('regress.rollout_100', 'Rollout 100 %', true, 'percentage', 100, NULL, NULL),
    ('regress.rollout_off', 'Rollout, disabled', false, 'percentage', 100, NULL, NULL);

-- ---------------------------------------------------------------------------
-- Unknown, NULL, disabled, all
-- ---------------------------------------------------------------------------
SELECT celaest.is_feature_enabled('regress.no_such_flag') AS unknown,
       celaest.is_feature_enabled(NULL) AS null_key,
       celaest.is_feature_enabled('regress.off') AS disabled,
       celaest.is_feature_enabled('regress.rollout_off', '1f000000-0000-4000-8000-000000000001') AS disabled_rollout,
       celaest.is_feature_enabled('regress.everyone') AS everyone_anonymous,
       celaest.is_feature_enabled('regress.everyone', '1f000000-0000-4000-8000-000000000002') AS everyone_u2;

-- ---------------------------------------------------------------------------
-- users / orgs
-- ---------------------------------------------------------------------------
SELECT celaest.is_feature_enabled('regress.listed_users', '1f000000-0000-4000-8000-000000000001') AS listed_user,
       celaest.is_feature_enabled('regress.listed_users', '1f000000-0000-4000-8000-000000000002') AS unlisted_user,
       celaest.is_feature_enabled('regress.listed_users') AS nobody,
       celaest.is_feature_enabled('regress.empty_lists', '1f000000-0000-4000-8000-000000000001') AS null_list;
-- The organization: given, else the user's (a soft-deleted profile has none).
SELECT celaest.is_feature_enabled('regress.listed_orgs', NULL, '0f000000-0000-4000-8000-000000000001') AS listed_org,
       celaest.is_feature_enabled('regress.listed_orgs', NULL, '0f000000-0000-4000-8000-000000000002') AS unlisted_org,
       celaest.is_feature_enabled('regress.listed_orgs', '1f000000-0000-4000-8000-000000000001') AS member_of_listed,
       celaest.is_feature_enabled('regress.listed_orgs', '1f000000-0000-4000-8000-000000000002') AS member_of_unlisted,
       celaest.is_feature_enabled('regress.listed_orgs', '1f000000-0000-4000-8000-000000000003') AS no_org,
       celaest.is_feature_enabled('regress.listed_orgs', '1f000000-0000-4000-8000-000000000004') AS deleted_profile,
       -- an explicit organization wins over the user's
       celaest.is_feature_enabled('regress.listed_orgs', '1f000000-0000-4000-8000-000000000002',
                                  '0f000000-0000-4000-8000-000000000001') AS explicit_org_wins;
-- The acting user (celaest.user_id) when none is given.
SET celaest.user_id = '1f000000-0000-4000-8000-000000000001';
SELECT celaest.is_feature_enabled('regress.listed_users') AS acting_listed_user,
       celaest.is_feature_enabled('regress.listed_orgs') AS acting_users_org;
SET celaest.user_id = '1f000000-0000-4000-8000-000000000002';
SELECT celaest.is_feature_enabled('regress.listed_users') AS acting_unlisted_user,
       celaest.is_feature_enabled('regress.listed_orgs') AS acting_users_org;
RESET celaest.user_id;

-- ---------------------------------------------------------------------------
-- percentage: a deterministic, sticky bucket
-- ---------------------------------------------------------------------------
-- Unleash's gradual rollout: bucket = murmur3_x86_32('flag:id', seed 0) % 100 + 1, on when
-- bucket <= target_percentage. Fixed pairs whose buckets were computed by the independent
-- Python reference (test/integration/murmur3_reference.py, run as a script; it checks itself
-- against the published MurmurHash3 vectors first). test_feature_flags.py compares 10,000
-- more with the reference at test time.
CREATE TEMP TABLE reference_buckets (flag_key text, subject text, bucket integer);
INSERT INTO reference_buckets VALUES
-- generated by test/integration/murmur3_reference.py
    ('regress.rollout_30', '6f256838-f846-b7a6-7a57-10ee619ec868', 9),
    ('regress.rollout_30', 'b5375333-a7a7-add2-4e3d-cf2378aa029b', 70),
    ('regress.rollout_30', '1a3e45f3-675d-6968-1190-5f4b7f10e273', 85),
    ('regress.rollout_30', '16b03657-7f1c-c9c0-e8f3-ef45e48aa3f8', 9),
    ('regress.rollout_30', '424c4ce5-7c25-550e-27af-8c0a89936f3f', 22),
    ('regress.rollout_30', 'c838b6c6-96f0-e661-b60d-1f44173fcfaa', 71),
    ('regress.rollout_30', '5eb3c9d7-c6ab-2121-8d73-75a6559a1a5b', 84),
    ('regress.rollout_30', 'b9696de5-24b2-1d82-1306-f5ae672c479a', 54),
    ('checkout-v2', '0f000000-0000-4000-8000-000000000001', 53),
    ('checkout-v2', '1f000000-0000-4000-8000-000000000001', 94),
    ('new-dashboard', '1f000000-0000-4000-8000-000000000002', 72),
    ('a', 'b', 32);
SELECT flag_key, subject, bucket, celaest._unleash_bucket(flag_key, subject) AS ours
  FROM reference_buckets
 WHERE celaest._unleash_bucket(flag_key, subject) IS DISTINCT FROM bucket;
-- is_feature_enabled follows the bucket: on exactly when bucket <= 30.
SELECT subject, bucket, celaest.is_feature_enabled(flag_key, subject::uuid) AS enabled
  FROM reference_buckets WHERE flag_key = 'regress.rollout_30' ORDER BY bucket, subject;

-- 1000 users that have no profile (the bucket needs none).
CREATE TEMP TABLE rollout_users AS
    SELECT md5('regress-rollout-user-' || i)::uuid AS user_id FROM generate_series(1, 1000) AS i;
CREATE TEMP TABLE rollout AS
    SELECT user_id,
           celaest.is_feature_enabled('regress.rollout_30', user_id) AS first_30,
           celaest.is_feature_enabled('regress.rollout_30', user_id) AS again_30,
           celaest.is_feature_enabled('regress.rollout_60', user_id) AS at_60,
           celaest.is_feature_enabled('regress.rollout_0', user_id) AS at_0,
           celaest.is_feature_enabled('regress.rollout_100', user_id) AS at_100,
           -- the documented bucket
           celaest._unleash_bucket('regress.rollout_30', user_id::text) AS bucket_30
      FROM rollout_users;
SELECT count(*) FILTER (WHERE first_30) BETWEEN 250 AND 350 AS about_30_percent,
       count(*) FILTER (WHERE at_60) BETWEEN 550 AND 650 AS about_60_percent,
       count(*) FILTER (WHERE first_30 IS DISTINCT FROM again_30) AS changed_answers,
       count(*) FILTER (WHERE first_30 IS DISTINCT FROM (bucket_30 <= 30)) AS not_the_documented_bucket,
       count(*) FILTER (WHERE at_0) AS at_0,
       count(*) FILTER (WHERE at_100) AS at_100,
       min(bucket_30) >= 1 AND max(bucket_30) <= 100 AS buckets_1_to_100
  FROM rollout;
-- The bucket also differs per flag (30 % of one flag is not the first 30 % of all).
SELECT count(*) FILTER (WHERE celaest.is_feature_enabled('regress.rollout_30', user_id)
                          <> (celaest._unleash_bucket('regress.rollout_60', user_id::text) <= 30))
       > 0 AS buckets_depend_on_the_flag
  FROM rollout_users;
-- Without a user, the organization is the subject; with neither, false.
SELECT celaest.is_feature_enabled('regress.rollout_30', NULL, '0f000000-0000-4000-8000-000000000001')
       = (celaest._unleash_bucket('regress.rollout_30', '0f000000-0000-4000-8000-000000000001') <= 30)
       AS org_bucket,
       celaest.is_feature_enabled('regress.rollout_100') AS no_subject;
-- The flag row is read as it is now: raising the percentage adds users and drops none.
UPDATE celaest.feature_flags SET target_percentage = 60 WHERE flag_key = 'regress.rollout_30';
SELECT count(*) FILTER (WHERE celaest.is_feature_enabled('regress.rollout_30', user_id) AND NOT first_30) > 0 AS users_added,
       count(*) FILTER (WHERE first_30 AND NOT celaest.is_feature_enabled('regress.rollout_30', user_id)) AS users_dropped
  FROM rollout;
-- Disabling a rolled-out flag turns it off for everyone.
UPDATE celaest.feature_flags SET is_enabled = false WHERE flag_key = 'regress.rollout_30';
SELECT count(*) FILTER (WHERE celaest.is_feature_enabled('regress.rollout_30', user_id)) AS on_while_disabled
  FROM rollout;

-- ---------------------------------------------------------------------------
-- A tenant role: flags are readable by everyone
-- ---------------------------------------------------------------------------
CREATE ROLE regress_celaest_flags_tenant NOLOGIN;
SELECT celaest.grant_access('regress_celaest_flags_tenant', 'authenticated');
SET ROLE regress_celaest_flags_tenant;
SET request.jwt.claim.sub = '1f000000-0000-4000-8000-000000000001';
SELECT celaest.is_feature_enabled('regress.listed_users') AS listed_user,
       celaest.is_feature_enabled('regress.listed_orgs') AS users_org,
       celaest.is_feature_enabled('regress.off') AS disabled;
RESET request.jwt.claim.sub;
RESET ROLE;

ROLLBACK;
