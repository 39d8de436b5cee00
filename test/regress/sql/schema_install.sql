-- Installing CELAEST. The first test of the schedule: every later test uses the
-- extension this one leaves installed.
\set SHOW_CONTEXT never

-- 1. A database with neither pgcrypto nor uuid-ossp: CASCADE installs both.
--    (pg_regress preloads them, so remove them first.)
DROP EXTENSION pgcrypto;
DROP EXTENSION "uuid-ossp";
CREATE EXTENSION celaest CASCADE;
SELECT e.extname, n.nspname AS schema, e.extversion, e.extrelocatable
  FROM pg_extension AS e
  JOIN pg_namespace AS n ON n.oid = e.extnamespace
 WHERE e.extname IN ('celaest', 'pgcrypto', 'uuid-ossp')
 ORDER BY e.extname;

-- Everything it creates lives in schema celaest and belongs to the extension.
SELECT count(*) FILTER (WHERE c.relkind = 'r') AS tables,
       count(*) FILTER (WHERE c.relkind = 'v') AS views
  FROM pg_class AS c
 WHERE c.relnamespace = 'celaest'::regnamespace;
SELECT c.relname AS not_an_extension_member
  FROM pg_class AS c
 WHERE c.relnamespace = 'celaest'::regnamespace
   AND c.relkind IN ('r', 'v')
   AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e');

-- All fifteen tables hold user data: pg_dump dumps their rows (extconfig).
SELECT c.relname AS dumped_table
  FROM pg_extension AS e
  CROSS JOIN LATERAL unnest(e.extconfig) AS t (oid)
  JOIN pg_class AS c ON c.oid = t.oid
 WHERE e.extname = 'celaest'
 ORDER BY c.relname;

-- Without Supabase's auth schema, users_profile.id stands alone.
SELECT conname FROM pg_constraint
 WHERE conrelid = 'celaest.users_profile'::regclass AND contype = 'f'
 ORDER BY conname;

-- 2. A Supabase-shaped database: pgcrypto and uuid-ossp in schema "extensions"
--    (not on the search_path), and auth.users / auth.uid(). Done in a transaction
--    that is rolled back, so the installation of step 1 is what stays.
\set ON_ERROR_ROLLBACK on
BEGIN;
DROP EXTENSION celaest;
DROP EXTENSION pgcrypto;
DROP EXTENSION "uuid-ossp";
CREATE SCHEMA extensions;
CREATE EXTENSION pgcrypto SCHEMA extensions;
CREATE EXTENSION "uuid-ossp" SCHEMA extensions;
CREATE SCHEMA auth;
CREATE TABLE auth.users (id uuid PRIMARY KEY);
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$;
SHOW search_path;
CREATE EXTENSION celaest;

-- Column defaults reached uuid-ossp in its own schema.
SELECT pg_get_expr(d.adbin, d.adrelid) AS organizations_id_default
  FROM pg_attrdef AS d
 WHERE d.adrelid = 'celaest.organizations'::regclass AND d.adnum = 1;
INSERT INTO celaest.organizations (name, slug) VALUES ('Supa', 'supa') RETURNING id IS NOT NULL AS got_id;

-- users_profile.id references auth.users(id), ON DELETE CASCADE.
SELECT conname, pg_get_constraintdef(oid) AS definition
  FROM pg_constraint
 WHERE conrelid = 'celaest.users_profile'::regclass AND contype = 'f'
 ORDER BY conname;
INSERT INTO auth.users VALUES ('5a5a5a5a-0000-4000-8000-000000000001');
INSERT INTO celaest.users_profile (id, email) VALUES ('5a5a5a5a-0000-4000-8000-000000000001', 'supa@example.test');
INSERT INTO celaest.users_profile (id, email) VALUES ('5a5a5a5a-0000-4000-8000-000000000002', 'ghost@example.test');
DELETE FROM auth.users WHERE id = '5a5a5a5a-0000-4000-8000-000000000001';
SELECT count(*) AS profiles_left FROM celaest.users_profile;

-- Who is calling: the JWT subject through auth.uid(), unless celaest.user_id is set.
SELECT celaest._current_user_id_or_null() AS no_jwt_no_setting;
SET LOCAL request.jwt.claim.sub = '5a5a5a5a-0000-4000-8000-0000000000aa';
SELECT celaest.current_user_id() AS from_auth_uid;
SET LOCAL celaest.user_id = '5a5a5a5a-0000-4000-8000-0000000000bb';
SELECT celaest.current_user_id() AS from_setting;
ROLLBACK;
\set ON_ERROR_ROLLBACK off

-- 3. Back to the installation of step 1.
SELECT e.extname, n.nspname AS schema
  FROM pg_extension AS e
  JOIN pg_namespace AS n ON n.oid = e.extnamespace
 WHERE e.extname IN ('celaest', 'pgcrypto', 'uuid-ossp')
 ORDER BY e.extname;
SELECT to_regnamespace('auth') AS auth_schema, to_regnamespace('extensions') AS extensions_schema;
