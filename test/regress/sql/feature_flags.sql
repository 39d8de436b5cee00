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
           (hashtextextended('regress.rollout_30:' || user_id::text, 0) & 9223372036854775807) % 100 AS bucket_30
      FROM rollout_users;
SELECT count(*) FILTER (WHERE first_30) BETWEEN 250 AND 350 AS about_30_percent,
       count(*) FILTER (WHERE at_60) BETWEEN 550 AND 650 AS about_60_percent,
       count(*) FILTER (WHERE first_30 IS DISTINCT FROM again_30) AS changed_answers,
       count(*) FILTER (WHERE first_30 IS DISTINCT FROM (bucket_30 < 30)) AS not_the_documented_bucket,
       count(*) FILTER (WHERE at_0) AS at_0,
       count(*) FILTER (WHERE at_100) AS at_100,
       min(bucket_30) >= 0 AND max(bucket_30) <= 99 AS buckets_0_to_99
  FROM rollout;
-- The bucket also differs per flag (30 % of one flag is not the first 30 % of all).
SELECT count(*) FILTER (WHERE celaest.is_feature_enabled('regress.rollout_30', user_id)
                          <> ((hashtextextended('regress.rollout_60:' || user_id::text, 0) & 9223372036854775807) % 100 < 30))
       > 0 AS buckets_depend_on_the_flag
  FROM rollout_users;
-- Without a user, the organization is the subject; with neither, false.
SELECT celaest.is_feature_enabled('regress.rollout_30', NULL, '0f000000-0000-4000-8000-000000000001')
       = ((hashtextextended('regress.rollout_30:0f000000-0000-4000-8000-000000000001', 0) & 9223372036854775807) % 100 < 30)
       AS org_bucket,
       celaest.is_feature_enabled('regress.rollout_100') AS no_subject;
-- The flag row is read as it is now: raising the percentage adds users.
UPDATE celaest.feature_flags SET target_percentage = 60 WHERE flag_key = 'regress.rollout_30';
SELECT count(*) FILTER (WHERE celaest.is_feature_enabled('regress.rollout_30', user_id) AND NOT first_30) > 0 AS users_added,
       count(*) FILTER (WHERE first_30 AND NOT celaest.is_feature_enabled('regress.rollout_30', user_id)) AS users_dropped
  FROM rollout;

-- ---------------------------------------------------------------------------
-- A tenant role: flags are readable by everyone
-- ---------------------------------------------------------------------------
CREATE ROLE regress_celaest_flags_tenant NOLOGIN;
SET ROLE regress_celaest_flags_tenant;
SET celaest.user_id = '1f000000-0000-4000-8000-000000000001';
SELECT celaest.is_feature_enabled('regress.listed_users') AS listed_user,
       celaest.is_feature_enabled('regress.listed_orgs') AS users_org,
       celaest.is_feature_enabled('regress.off') AS disabled;
RESET celaest.user_id;
RESET ROLE;

ROLLBACK;
