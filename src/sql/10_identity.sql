-- CELAEST — identity: organizations, users_profile, and "who is calling".

-- ---------------------------------------------------------------------------
-- organizations
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.organizations (
    id                      UUID            NOT NULL DEFAULT uuid_generate_v4(),
    name                    VARCHAR(255)    NOT NULL,
    slug                    VARCHAR(100)    NOT NULL,
    email                   VARCHAR(255),
    phone                   VARCHAR(50),
    website                 VARCHAR(500),
    address_line1           VARCHAR(255),
    address_line2           VARCHAR(255),
    city                    VARCHAR(100),
    state                   VARCHAR(100),
    postal_code             VARCHAR(20),
    country_code            CHAR(2),
    tax_id                  VARCHAR(50),
    settings                JSONB           NOT NULL DEFAULT '{}',
    metadata                JSONB           NOT NULL DEFAULT '{}',
    max_users               INTEGER         NOT NULL DEFAULT 5,
    max_api_calls_per_month BIGINT          NOT NULL DEFAULT 10000,
    created_at              TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    updated_at              TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    deleted_at              TIMESTAMPTZ,

    CONSTRAINT organizations_pkey PRIMARY KEY (id),
    CONSTRAINT organizations_slug_key UNIQUE (slug),
    CONSTRAINT organizations_name_not_blank CHECK (btrim(name) <> ''),
    -- URL-friendly: lowercase letters, digits, '-' and '_', starting with a letter or digit.
    CONSTRAINT organizations_slug_format CHECK (slug ~ '^[a-z0-9][a-z0-9_-]*$'),
    CONSTRAINT organizations_email_format CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    CONSTRAINT organizations_country_code_format CHECK (country_code ~ '^[A-Z]{2}$'),
    CONSTRAINT organizations_settings_is_object CHECK (jsonb_typeof(settings) = 'object'),
    CONSTRAINT organizations_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object'),
    -- Limits follow the plans' convention: -1 means unlimited.
    CONSTRAINT organizations_max_users_valid CHECK (max_users >= -1),
    CONSTRAINT organizations_max_api_calls_per_month_valid CHECK (max_api_calls_per_month >= -1)
);

CREATE TRIGGER organizations_set_updated_at
    BEFORE UPDATE ON celaest.organizations
    FOR EACH ROW EXECUTE FUNCTION celaest._set_updated_at();

COMMENT ON TABLE celaest.organizations IS
    'Business entities that group users; the base of multi-tenancy. Soft-deleted (deleted_at), never removed once they have history.';
COMMENT ON COLUMN celaest.organizations.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.organizations.name IS 'Organization name.';
COMMENT ON COLUMN celaest.organizations.slug IS 'URL-friendly identifier (UNIQUE).';
COMMENT ON COLUMN celaest.organizations.email IS 'Contact email.';
COMMENT ON COLUMN celaest.organizations.phone IS 'Phone number.';
COMMENT ON COLUMN celaest.organizations.website IS 'Website.';
COMMENT ON COLUMN celaest.organizations.address_line1 IS 'Address line 1.';
COMMENT ON COLUMN celaest.organizations.address_line2 IS 'Address line 2.';
COMMENT ON COLUMN celaest.organizations.city IS 'City.';
COMMENT ON COLUMN celaest.organizations.state IS 'State or province.';
COMMENT ON COLUMN celaest.organizations.postal_code IS 'Postal code.';
COMMENT ON COLUMN celaest.organizations.country_code IS 'ISO 3166-1 alpha-2 country code (two uppercase letters).';
COMMENT ON COLUMN celaest.organizations.tax_id IS 'Tax identifier.';
COMMENT ON COLUMN celaest.organizations.settings IS 'Custom settings (JSON object), e.g. timezone, locale, branding, roi.hourly_rate.';
COMMENT ON COLUMN celaest.organizations.metadata IS 'Additional data (JSON object).';
COMMENT ON COLUMN celaest.organizations.max_users IS 'User limit (-1 = unlimited).';
COMMENT ON COLUMN celaest.organizations.max_api_calls_per_month IS 'API call limit per month (-1 = unlimited).';
COMMENT ON COLUMN celaest.organizations.created_at IS 'Creation time.';
COMMENT ON COLUMN celaest.organizations.updated_at IS 'Last update time (maintained by trigger).';
COMMENT ON COLUMN celaest.organizations.deleted_at IS 'Deletion time (soft delete); NULL while the organization is live.';

-- ---------------------------------------------------------------------------
-- users_profile
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.users_profile (
    id                   UUID            NOT NULL,
    organization_id      UUID,
    email                VARCHAR(255)    NOT NULL,
    first_name           VARCHAR(100),
    last_name            VARCHAR(100),
    display_name         VARCHAR(200),
    avatar_url           VARCHAR(500),
    phone                VARCHAR(50),
    role                 celaest.user_role NOT NULL DEFAULT 'viewer',
    scopes               JSONB           NOT NULL DEFAULT '[]',
    timezone             VARCHAR(50)     NOT NULL DEFAULT 'UTC',
    locale               VARCHAR(10)     NOT NULL DEFAULT 'es',
    preferences          JSONB           NOT NULL DEFAULT '{}',
    onboarding_completed BOOLEAN         NOT NULL DEFAULT FALSE,
    onboarding_step      INTEGER         NOT NULL DEFAULT 0,
    last_login_at        TIMESTAMPTZ,
    login_count          INTEGER         NOT NULL DEFAULT 0,
    metadata             JSONB           NOT NULL DEFAULT '{}',
    created_at           TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    updated_at           TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    deleted_at           TIMESTAMPTZ,

    CONSTRAINT users_profile_pkey PRIMARY KEY (id),
    CONSTRAINT users_profile_email_key UNIQUE (email),
    -- SET NULL: organization_id is optional (a user may exist before joining a
    -- tenant), so a removed organization leaves its users unattached rather than
    -- deleting accounts that belong to the auth system.
    CONSTRAINT users_profile_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES celaest.organizations (id) ON DELETE SET NULL,
    CONSTRAINT users_profile_email_format CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    CONSTRAINT users_profile_scopes_is_array CHECK (jsonb_typeof(scopes) = 'array'),
    CONSTRAINT users_profile_preferences_is_object CHECK (jsonb_typeof(preferences) = 'object'),
    CONSTRAINT users_profile_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT users_profile_onboarding_step_nonneg CHECK (onboarding_step >= 0),
    CONSTRAINT users_profile_login_count_nonneg CHECK (login_count >= 0)
);

CREATE INDEX users_profile_organization_id_idx ON celaest.users_profile (organization_id);

CREATE TRIGGER users_profile_set_updated_at
    BEFORE UPDATE ON celaest.users_profile
    FOR EACH ROW EXECUTE FUNCTION celaest._set_updated_at();

-- Supabase: users_profile.id is the auth user's id. When the database has
-- auth.users at install time, tie the profile to it (deleting the auth user
-- deletes the profile); otherwise the table stands alone.
DO $$
BEGIN
    IF pg_catalog.to_regclass('auth.users') IS NOT NULL THEN
        ALTER TABLE celaest.users_profile
            ADD CONSTRAINT users_profile_id_fkey FOREIGN KEY (id)
            REFERENCES auth.users (id) ON DELETE CASCADE;
    END IF;
END;
$$;

COMMENT ON TABLE celaest.users_profile IS
    'Extended user profile; complements Supabase auth.users (id is the auth user''s id). Soft-deleted (deleted_at).';
COMMENT ON COLUMN celaest.users_profile.id IS 'Auth user id (PK); references auth.users(id) when installed on Supabase.';
COMMENT ON COLUMN celaest.users_profile.organization_id IS 'Organization the user belongs to (FK -> organizations).';
COMMENT ON COLUMN celaest.users_profile.email IS 'Email (UNIQUE).';
COMMENT ON COLUMN celaest.users_profile.first_name IS 'First name.';
COMMENT ON COLUMN celaest.users_profile.last_name IS 'Last name.';
COMMENT ON COLUMN celaest.users_profile.display_name IS 'Name shown in the UI.';
COMMENT ON COLUMN celaest.users_profile.avatar_url IS 'Avatar URL.';
COMMENT ON COLUMN celaest.users_profile.phone IS 'Phone number.';
COMMENT ON COLUMN celaest.users_profile.role IS 'User role.';
COMMENT ON COLUMN celaest.users_profile.scopes IS 'Fine-grained permissions (JSON array), e.g. ["licenses:read", "users:manage"].';
COMMENT ON COLUMN celaest.users_profile.timezone IS 'Time zone.';
COMMENT ON COLUMN celaest.users_profile.locale IS 'Preferred language.';
COMMENT ON COLUMN celaest.users_profile.preferences IS 'UI preferences (JSON object).';
COMMENT ON COLUMN celaest.users_profile.onboarding_completed IS 'Whether onboarding is completed.';
COMMENT ON COLUMN celaest.users_profile.onboarding_step IS 'Current onboarding step.';
COMMENT ON COLUMN celaest.users_profile.last_login_at IS 'Last login time.';
COMMENT ON COLUMN celaest.users_profile.login_count IS 'Login counter.';
COMMENT ON COLUMN celaest.users_profile.metadata IS 'Additional data (JSON object).';
COMMENT ON COLUMN celaest.users_profile.created_at IS 'Creation time.';
COMMENT ON COLUMN celaest.users_profile.updated_at IS 'Last update time (maintained by trigger).';
COMMENT ON COLUMN celaest.users_profile.deleted_at IS 'Deletion time (soft delete); NULL while the user is live.';

-- pg_dump skips the rows of an extension's tables unless they are marked as
-- configuration tables; these rows are user data, so all of them are dumped.
-- Restore as a superuser with ordinary triggers off, e.g.
--   PGOPTIONS='-c session_replication_role=replica' pg_restore -d target dump
-- otherwise the automatic audit would log every restored license, plan, key, user,
-- flag and setting as newly created (and the licensing triggers would re-check
-- restored history). audit_logs' append-only triggers stay on (ENABLE ALWAYS);
-- they do not stop inserts.
SELECT pg_catalog.pg_extension_config_dump('celaest.organizations', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.users_profile', '');

-- ---------------------------------------------------------------------------
-- Who is calling (API.md, "Who is calling, and who may act for whom").
-- ---------------------------------------------------------------------------
-- The calling role is the role SET ROLE chose, else the session user: the role that
-- called, whatever owner a SECURITY DEFINER function of ours switched to since. (A
-- SECURITY DEFINER function changes current_user but neither of these.)
-- PL/pgSQL, not SQL, here and in _level_of, _caller_level and _role_allows (every AI call runs
-- them): a SQL function with a SET clause is never inlined, and its body is parsed and planned
-- again in every transaction; PL/pgSQL keeps the plans for the session (README, "Benchmarks":
-- 0.43 ms of a 1.16 ms ai_chat went to replanning these four).
CREATE FUNCTION celaest._calling_role()
RETURNS oid
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- to_regrole: a catalog cache lookup (the pg_roles view costs a join per call, and row-level
    -- security asks this once per statement).
    RETURN pg_catalog.to_regrole(quote_ident(CASE WHEN current_setting('role') = 'none' THEN session_user::text
                                                  ELSE current_setting('role') END))::oid;
END;
$$;
COMMENT ON FUNCTION celaest._calling_role() IS
    'Internal (identity): the role that called: the role of SET ROLE, else the session user; a SECURITY DEFINER function''s owner never counts.';

-- The access level of a role (module 84 grants them): superusers and the extension's
-- owner are service; otherwise membership of the level's group role.
CREATE FUNCTION celaest._level_of(p_role oid)
RETURNS text
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT CASE
               WHEN p_role IS NULL THEN NULL
               WHEN r.rolsuper THEN 'service'
               -- The owner, and roles holding the owner's privileges.
               WHEN pg_has_role(r.oid, (SELECT e.extowner FROM pg_catalog.pg_extension AS e
                                         WHERE e.extname = 'celaest'), 'USAGE') THEN 'service'
               -- A member of a level's group: directly (a NOINHERIT role such as Supabase's,
               -- which grant_access also gives the privileges themselves), or inheriting it.
               WHEN 'celaest_service' = ANY (m.direct) OR pg_has_role(r.oid, 'celaest_service', 'USAGE')
                   THEN 'service'
               WHEN 'celaest_authenticated' = ANY (m.direct) OR pg_has_role(r.oid, 'celaest_authenticated', 'USAGE')
                   THEN 'authenticated'
               WHEN 'celaest_readonly' = ANY (m.direct) OR pg_has_role(r.oid, 'celaest_readonly', 'USAGE')
                   THEN 'readonly'
           END
      FROM pg_catalog.pg_roles AS r
      CROSS JOIN LATERAL (SELECT array_agg(g.rolname::text) AS direct
                            FROM pg_catalog.pg_auth_members AS am
                            JOIN pg_catalog.pg_roles AS g ON g.oid = am.roleid
                           WHERE am.member = r.oid) AS m
     WHERE r.oid = p_role);
END;
$$;
COMMENT ON FUNCTION celaest._level_of(oid) IS
    'Internal (identity): the CELAEST access level of a role: service (superusers, the extension owner and roles using its privileges, members of celaest_service), authenticated, readonly, or NULL (none).';

-- Native (src/pg/functions/identity.cpp): worked out once per statement, see _current_user_id_or_null.
CREATE FUNCTION celaest._caller_level()
RETURNS text
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_caller_level';
COMMENT ON FUNCTION celaest._caller_level() IS
    'Internal (identity): the access level of the calling role (service, authenticated, readonly or NULL).';

-- Supabase's JWT subject. Called dynamically: auth.uid() need not exist. SECURITY DEFINER:
-- a role given end-user access need not be able to reach schema auth itself; auth.uid()
-- reads only the request's own settings.
CREATE FUNCTION celaest._auth_uid()
RETURNS uuid
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid;
BEGIN
    -- A direct call, not EXECUTE: PL/pgSQL resolves it when first run (never if auth.uid() is
    -- missing) and keeps its plan, where EXECUTE would parse and plan on every call.
    IF to_regprocedure('auth.uid()') IS NOT NULL THEN
        v_user := auth.uid();
    END IF;
    RETURN v_user;
END;
$$;
COMMENT ON FUNCTION celaest._auth_uid() IS
    'Internal (identity): Supabase auth.uid() (the JWT subject) when that function exists, else NULL.';

-- STABLE: within one statement the answer cannot change. A malformed setting is a
-- caller bug and raises in both variants (silently acting as "nobody" would hide
-- it and drop the actor from audit rows); only "no user at all" differs.
-- By level: a service caller names the user (celaest.user_id, else auth.uid()); any other
-- caller is auth.uid() alone, and a celaest.user_id that differs from it is refused (42501)
-- rather than ignored, so that a client that tries it learns it at once.
-- Native (src/pg/functions/identity.cpp, pg/identity/acting_identity.cpp): row-level security
-- asks for the acting identity in every query, so it is worked out once per statement (the
-- same transaction, statement start, command and settings) and kept; the rules are those of
-- the comment below, applied there. Errors are never kept: each call raises again.
CREATE FUNCTION celaest._current_user_id_or_null()
RETURNS uuid
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_current_user_id_or_null';
COMMENT ON FUNCTION celaest._current_user_id_or_null() IS
    'The acting CELAEST user, or NULL. A service caller (superuser, extension owner, grant_access(..., ''service'')): the setting celaest.user_id, else Supabase auth.uid(). Any other caller: auth.uid() alone; a celaest.user_id that differs from it raises 42501. Raises 22P02 when celaest.user_id is set but not a uuid. Used by row-level security and automatic auditing.';

CREATE FUNCTION celaest.current_user_id()
RETURNS uuid
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := celaest._current_user_id_or_null();
BEGIN
    IF v_user IS NULL THEN
        RAISE EXCEPTION 'no CELAEST user: set celaest.user_id or authenticate'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run SET LOCAL celaest.user_id = ''<users_profile.id>'' first, or call through Supabase Auth (auth.uid()).';
    END IF;
    RETURN v_user;
END;
$$;
COMMENT ON FUNCTION celaest.current_user_id() IS
    'The acting CELAEST user: the setting celaest.user_id, else Supabase auth.uid(). Raises 42501 when neither gives a user, 22P02 when celaest.user_id is not a uuid.';

-- SECURITY DEFINER: row-level security policies call these, including the policy on
-- users_profile itself; running as the owner (not subject to RLS, which is not
-- FORCEd) avoids policy recursion and lets a user learn their own organization.
-- Native (src/pg/functions/identity.cpp): reads users_profile and organizations as the
-- function's owner, so the policy on users_profile does not recurse into itself.
CREATE FUNCTION celaest._current_org_id_or_null()
RETURNS uuid
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_current_org_id_or_null';
COMMENT ON FUNCTION celaest._current_org_id_or_null() IS
    'Organization of the acting user (users_profile.organization_id), or NULL when there is no user, no live profile or no live (not soft-deleted) organization. Used by row-level security.';

CREATE FUNCTION celaest.current_org_id()
RETURNS uuid
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := celaest.current_user_id();
    v_org  uuid;
BEGIN
    SELECT u.organization_id INTO v_org
      FROM celaest.users_profile AS u
     WHERE u.id = v_user
       AND u.deleted_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'CELAEST user % has no profile', v_user
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'There is no live row in celaest.users_profile with this id (missing or soft-deleted).',
                  HINT = 'Create the user''s celaest.users_profile row, or act as another user.';
    END IF;
    -- A soft-deleted organization acts for nobody.
    IF v_org IS NOT NULL AND NOT EXISTS (SELECT 1 FROM celaest.organizations AS o
                                          WHERE o.id = v_org AND o.deleted_at IS NULL) THEN
        RAISE EXCEPTION 'the organization of CELAEST user % is deleted', v_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN v_org;
END;
$$;
COMMENT ON FUNCTION celaest.current_org_id() IS
    'Organization of the acting user (users_profile.organization_id; NULL if the user belongs to none). Raises 42501 when there is no user or the user has no live profile.';

-- Native (src/pg/functions/identity.cpp).
CREATE FUNCTION celaest._current_user_is_super_admin()
RETURNS boolean
LANGUAGE C
STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'celaest_current_user_is_super_admin';
COMMENT ON FUNCTION celaest._current_user_is_super_admin() IS
    'True when the acting user has a live profile with role super_admin (global administrator: row-level security lets them see every organization).';
-- Executable by PUBLIC: the row-level security policies (85_security.sql) call it as the querying role.
