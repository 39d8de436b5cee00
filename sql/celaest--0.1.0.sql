-- CELAEST 0.1.0 — install script, module 00: prelude (enums, shared trigger function).
--
-- The Makefile concatenates src/sql/*.sql in name order into celaest--0.1.0.sql.
-- During CREATE EXTENSION the search_path is `celaest, <schemas of pgcrypto and
-- uuid-ossp>`: column DEFAULTs may name uuid_generate_v4() unqualified and resolve it
-- wherever uuid-ossp lives (public, or Supabase's `extensions`). Function bodies never
-- rely on that: they use pg_catalog builtins and fully qualified celaest.* names.

\echo Use "CREATE EXTENSION celaest" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Enumerated types (data dictionary, "Tipos Enumerados"), values in its order.
-- ---------------------------------------------------------------------------

CREATE TYPE celaest.user_role AS ENUM (
    'super_admin',
    'admin',
    'manager',
    'operator',
    'viewer'
);
COMMENT ON TYPE celaest.user_role IS
    'User role: super_admin (global administrator, full system access), admin (organization administrator), manager (team manager: users and reports), operator (operational user, no administration), viewer (read-only dashboards).';

CREATE TYPE celaest.license_status AS ENUM (
    'active',
    'suspended',
    'expired',
    'cancelled',
    'trial'
);
COMMENT ON TYPE celaest.license_status IS
    'License state: active (fully functional), suspended (non-payment or violation; blocked), expired (lapsed naturally; blocked), cancelled (cancelled by the customer; blocked), trial (trial period; limited).';

CREATE TYPE celaest.ai_provider AS ENUM (
    'gemini',
    'groq',
    'deepseek',
    'openai',
    'anthropic',
    'local'
);
COMMENT ON TYPE celaest.ai_provider IS
    'Supported AI provider: gemini (Google AI Studio), groq (Groq Cloud), deepseek (DeepSeek API), openai (OpenAI API), anthropic (Anthropic API), local (Ollama).';

CREATE TYPE celaest.task_status AS ENUM (
    'pending',
    'processing',
    'completed',
    'failed',
    'cancelled',
    'retrying'
);
COMMENT ON TYPE celaest.task_status IS
    'Task processing state: pending (queued), processing (running), completed (finished successfully), failed (failed; review the error), cancelled (cancelled by the user), retrying (being retried).';

CREATE TYPE celaest.audit_action AS ENUM (
    'create',
    'read',
    'update',
    'delete',
    'login',
    'logout',
    'export',
    'import',
    'api_call'
);
COMMENT ON TYPE celaest.audit_action IS
    'Auditable action: create, read, update, delete (of a resource), login, logout (session), export, import (of data), api_call (call to an external API).';

CREATE TYPE celaest.billing_cycle AS ENUM (
    'monthly',
    'quarterly',
    'yearly',
    'lifetime',
    'usage_based'
);
COMMENT ON TYPE celaest.billing_cycle IS
    'Billing cycle: monthly (30 days), quarterly (90 days), yearly (365 days), lifetime (never renews), usage_based (billed by usage).';

-- ---------------------------------------------------------------------------
-- Shared trigger function: keeps updated_at current on every table that has it.
-- ---------------------------------------------------------------------------
-- Hot path (it runs for every UPDATE of such a table, e.g. each API-key usage bump),
-- so no SET search_path clause (that costs a GUC save/restore per row); the one call
-- is schema-qualified instead.
CREATE FUNCTION celaest.set_updated_at()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION celaest.set_updated_at() IS
    'BEFORE UPDATE row trigger: sets updated_at to now() (transaction start time) on every update of the row.';
-- CELAEST — module 10: identity (organizations, users_profile) and "who is calling".

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
    FOR EACH ROW EXECUTE FUNCTION celaest.set_updated_at();

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
    FOR EACH ROW EXECUTE FUNCTION celaest.set_updated_at();

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
-- Who is calling (API.md): celaest.user_id setting, else Supabase auth.uid().
-- ---------------------------------------------------------------------------
-- STABLE: within one statement the answer cannot change. A malformed setting is a
-- caller bug and raises in both variants (silently acting as "nobody" would hide
-- it and drop the actor from audit rows); only "no user at all" differs.
CREATE FUNCTION celaest.current_user_id_or_null()
RETURNS uuid
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_setting text := btrim(current_setting('celaest.user_id', true));
    v_user    uuid;
BEGIN
    IF v_setting IS NOT NULL AND v_setting <> '' THEN
        -- The forms uuid_in accepts: 32 hex digits, optionally '-' after any group of
        -- four, optionally in braces. Checked up front so that no subtransaction is needed.
        IF v_setting !~* '^([0-9a-f]{4}(-?[0-9a-f]{4}){7}|\{[0-9a-f]{4}(-?[0-9a-f]{4}){7}\})$' THEN
            RAISE EXCEPTION 'celaest.user_id is not a valid uuid: "%"', v_setting
                USING ERRCODE = 'invalid_text_representation',
                      HINT = 'SET celaest.user_id to the users_profile.id of the acting user, or RESET it.';
        END IF;
        RETURN v_setting::uuid;
    END IF;

    -- Supabase: the JWT "sub" claim. Called dynamically: auth.uid() need not exist.
    IF to_regprocedure('auth.uid()') IS NOT NULL THEN
        EXECUTE 'SELECT auth.uid()' INTO v_user;
        RETURN v_user;
    END IF;

    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION celaest.current_user_id_or_null() IS
    'The acting CELAEST user: the setting celaest.user_id, else Supabase auth.uid(), else NULL. Raises 22P02 when celaest.user_id is set but not a uuid. Used by row-level security and automatic auditing.';

CREATE FUNCTION celaest.current_user_id()
RETURNS uuid
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := celaest.current_user_id_or_null();
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
CREATE FUNCTION celaest.current_org_id_or_null()
RETURNS uuid
LANGUAGE sql
STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.organization_id
      FROM celaest.users_profile AS u
     WHERE u.id = celaest.current_user_id_or_null()
       AND u.deleted_at IS NULL;
$$;
COMMENT ON FUNCTION celaest.current_org_id_or_null() IS
    'Organization of the acting user (users_profile.organization_id), or NULL when there is no user, no live profile or no organization. Used by row-level security.';

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
    RETURN v_org;
END;
$$;
COMMENT ON FUNCTION celaest.current_org_id() IS
    'Organization of the acting user (users_profile.organization_id; NULL if the user belongs to none). Raises 42501 when there is no user or the user has no live profile.';

CREATE FUNCTION celaest.current_user_is_super_admin()
RETURNS boolean
LANGUAGE sql
STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE((
        SELECT u.role = 'super_admin'::celaest.user_role
          FROM celaest.users_profile AS u
         WHERE u.id = celaest.current_user_id_or_null()
           AND u.deleted_at IS NULL), false);
$$;
COMMENT ON FUNCTION celaest.current_user_is_super_admin() IS
    'True when the acting user has a live profile with role super_admin (global administrator: row-level security lets them see every organization).';
-- CELAEST — module 20: licensing (subscription_plans, licenses, license_usage_log).

-- ---------------------------------------------------------------------------
-- subscription_plans
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.subscription_plans (
    id            UUID            NOT NULL DEFAULT uuid_generate_v4(),
    code          VARCHAR(50)     NOT NULL,
    name          VARCHAR(100)    NOT NULL,
    description   TEXT,
    price_monthly NUMERIC(10,2),
    price_yearly  NUMERIC(10,2),
    currency      CHAR(3)         NOT NULL DEFAULT 'USD',
    limits        JSONB           NOT NULL DEFAULT '{"max_users": 5, "max_ai_requests_per_month": 10000, "max_storage_gb": 1, "max_concurrent_tasks": 2, "max_batch_size": 100}',
    features      JSONB           NOT NULL DEFAULT '[]',
    is_active     BOOLEAN         NOT NULL DEFAULT TRUE,
    is_public     BOOLEAN         NOT NULL DEFAULT TRUE,
    sort_order    INTEGER         NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    updated_at    TIMESTAMPTZ     NOT NULL DEFAULT NOW(),

    CONSTRAINT subscription_plans_pkey PRIMARY KEY (id),
    CONSTRAINT subscription_plans_code_key UNIQUE (code),
    CONSTRAINT subscription_plans_code_not_blank CHECK (btrim(code) <> ''),
    CONSTRAINT subscription_plans_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT subscription_plans_price_monthly_nonneg CHECK (price_monthly >= 0),
    CONSTRAINT subscription_plans_price_yearly_nonneg CHECK (price_yearly >= 0),
    CONSTRAINT subscription_plans_currency_format CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT subscription_plans_limits_is_object CHECK (jsonb_typeof(limits) = 'object'),
    CONSTRAINT subscription_plans_features_is_array CHECK (jsonb_typeof(features) = 'array')
    -- sort_order is unconstrained: a negative value legitimately sorts a plan first.
);

CREATE TRIGGER subscription_plans_set_updated_at
    BEFORE UPDATE ON celaest.subscription_plans
    FOR EACH ROW EXECUTE FUNCTION celaest.set_updated_at();

COMMENT ON TABLE celaest.subscription_plans IS
    'Catalog of subscription plans with their limits and prices.';
COMMENT ON COLUMN celaest.subscription_plans.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.subscription_plans.code IS 'Unique plan code (UNIQUE).';
COMMENT ON COLUMN celaest.subscription_plans.name IS 'Plan name.';
COMMENT ON COLUMN celaest.subscription_plans.description IS 'Description.';
COMMENT ON COLUMN celaest.subscription_plans.price_monthly IS 'Monthly price.';
COMMENT ON COLUMN celaest.subscription_plans.price_yearly IS 'Yearly price.';
COMMENT ON COLUMN celaest.subscription_plans.currency IS 'ISO 4217 currency code (three uppercase letters).';
COMMENT ON COLUMN celaest.subscription_plans.limits IS
    'Plan limits (JSON object): max_users, max_ai_requests_per_month, max_storage_gb, max_concurrent_tasks, max_batch_size; -1 means unlimited.';
COMMENT ON COLUMN celaest.subscription_plans.features IS 'Included features (JSON array).';
COMMENT ON COLUMN celaest.subscription_plans.is_active IS 'Whether the plan is active (can be sold).';
COMMENT ON COLUMN celaest.subscription_plans.is_public IS 'Whether the plan is shown on the pricing page.';
COMMENT ON COLUMN celaest.subscription_plans.sort_order IS 'Display order.';
COMMENT ON COLUMN celaest.subscription_plans.created_at IS 'Creation time.';
COMMENT ON COLUMN celaest.subscription_plans.updated_at IS 'Last update time (maintained by trigger).';

-- ---------------------------------------------------------------------------
-- licenses
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.licenses (
    id                   UUID            NOT NULL DEFAULT uuid_generate_v4(),
    organization_id      UUID            NOT NULL,
    plan_id              UUID            NOT NULL,
    license_key          VARCHAR(64)     NOT NULL,
    license_key_hash     VARCHAR(128),
    status               celaest.license_status NOT NULL DEFAULT 'trial',
    starts_at            TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    expires_at           TIMESTAMPTZ,
    trial_ends_at        TIMESTAMPTZ,
    billing_cycle        celaest.billing_cycle NOT NULL DEFAULT 'monthly',
    next_billing_date    DATE,
    custom_limits        JSONB,
    current_period_start TIMESTAMPTZ,
    current_period_end   TIMESTAMPTZ,
    ai_requests_used     BIGINT          NOT NULL DEFAULT 0,
    storage_used_bytes   BIGINT          NOT NULL DEFAULT 0,
    notes                TEXT,
    metadata             JSONB           NOT NULL DEFAULT '{}',
    created_at           TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    updated_at           TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    suspended_at         TIMESTAMPTZ,
    cancelled_at         TIMESTAMPTZ,

    CONSTRAINT licenses_pkey PRIMARY KEY (id),
    CONSTRAINT licenses_license_key_key UNIQUE (license_key),
    -- RESTRICT: a license is a billing record. An organization that ever held one
    -- is soft-deleted (deleted_at), never removed from under its licenses.
    CONSTRAINT licenses_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES celaest.organizations (id) ON DELETE RESTRICT,
    -- RESTRICT: a plan that was sold is retired (is_active = false), not deleted;
    -- licenses need it for their limits.
    CONSTRAINT licenses_plan_id_fkey FOREIGN KEY (plan_id)
        REFERENCES celaest.subscription_plans (id) ON DELETE RESTRICT,
    CONSTRAINT licenses_license_key_not_blank CHECK (btrim(license_key) <> ''),
    CONSTRAINT licenses_custom_limits_is_object CHECK (custom_limits IS NULL OR jsonb_typeof(custom_limits) = 'object'),
    CONSTRAINT licenses_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT licenses_ai_requests_used_nonneg CHECK (ai_requests_used >= 0),
    CONSTRAINT licenses_storage_used_bytes_nonneg CHECK (storage_used_bytes >= 0),
    CONSTRAINT licenses_current_period_order CHECK (current_period_end >= current_period_start)
);

-- At most one license in force (trial, active or suspended) per organization (API.md).
CREATE UNIQUE INDEX licenses_one_in_force_per_org ON celaest.licenses (organization_id)
    WHERE status IN ('trial', 'active', 'suspended');
CREATE INDEX licenses_organization_id_idx ON celaest.licenses (organization_id);
CREATE INDEX licenses_plan_id_idx ON celaest.licenses (plan_id);
CREATE INDEX licenses_license_key_hash_idx ON celaest.licenses (license_key_hash);

CREATE TRIGGER licenses_set_updated_at
    BEFORE UPDATE ON celaest.licenses
    FOR EACH ROW EXECUTE FUNCTION celaest.set_updated_at();

COMMENT ON TABLE celaest.licenses IS
    'Licenses of organizations; control access and usage. At most one per organization is in force (trial, active or suspended).';
COMMENT ON COLUMN celaest.licenses.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.licenses.organization_id IS 'Licensed organization (FK -> organizations).';
COMMENT ON COLUMN celaest.licenses.plan_id IS 'Subscribed plan (FK -> subscription_plans).';
COMMENT ON COLUMN celaest.licenses.license_key IS 'Unique license token (UNIQUE).';
COMMENT ON COLUMN celaest.licenses.license_key_hash IS 'Hash of the license key, for lookups.';
COMMENT ON COLUMN celaest.licenses.status IS 'License status.';
COMMENT ON COLUMN celaest.licenses.starts_at IS 'Start time.';
COMMENT ON COLUMN celaest.licenses.expires_at IS 'Expiry time (NULL = does not expire).';
COMMENT ON COLUMN celaest.licenses.trial_ends_at IS 'End of the trial period.';
COMMENT ON COLUMN celaest.licenses.billing_cycle IS 'Billing cycle.';
COMMENT ON COLUMN celaest.licenses.next_billing_date IS 'Next billing date.';
COMMENT ON COLUMN celaest.licenses.custom_limits IS 'Custom limits (JSON object) overlaid on the plan limits; -1 means unlimited.';
COMMENT ON COLUMN celaest.licenses.current_period_start IS 'Start of the current billing period.';
COMMENT ON COLUMN celaest.licenses.current_period_end IS 'End of the current billing period.';
COMMENT ON COLUMN celaest.licenses.ai_requests_used IS 'AI requests used in the current billing period.';
COMMENT ON COLUMN celaest.licenses.storage_used_bytes IS 'Storage used, in bytes.';
COMMENT ON COLUMN celaest.licenses.notes IS 'Internal notes.';
COMMENT ON COLUMN celaest.licenses.metadata IS 'Additional data (JSON object).';
COMMENT ON COLUMN celaest.licenses.created_at IS 'Creation time.';
COMMENT ON COLUMN celaest.licenses.updated_at IS 'Last update time (maintained by trigger).';
COMMENT ON COLUMN celaest.licenses.suspended_at IS 'Suspension time.';
COMMENT ON COLUMN celaest.licenses.cancelled_at IS 'Cancellation time.';

-- ---------------------------------------------------------------------------
-- license_usage_log (named by the dictionary, columns as API.md gives them)
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.license_usage_log (
    id              UUID            NOT NULL DEFAULT uuid_generate_v4(),
    license_id      UUID            NOT NULL,
    organization_id UUID            NOT NULL,
    metric          VARCHAR(50)     NOT NULL,
    quantity        BIGINT          NOT NULL,
    period_start    TIMESTAMPTZ,
    period_end      TIMESTAMPTZ,
    task_id         UUID,
    user_id         UUID,
    metadata        JSONB           NOT NULL DEFAULT '{}',
    created_at      TIMESTAMPTZ     NOT NULL DEFAULT NOW(),

    CONSTRAINT license_usage_log_pkey PRIMARY KEY (id),
    -- RESTRICT: usage history is what was billed; a license with history is
    -- expired or cancelled, never deleted from under it.
    CONSTRAINT license_usage_log_license_id_fkey FOREIGN KEY (license_id)
        REFERENCES celaest.licenses (id) ON DELETE RESTRICT,
    -- RESTRICT: same reason; organizations are soft-deleted.
    CONSTRAINT license_usage_log_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES celaest.organizations (id) ON DELETE RESTRICT,
    -- SET NULL: the user is attribution only; the consumption stands without it.
    CONSTRAINT license_usage_log_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES celaest.users_profile (id) ON DELETE SET NULL,
    -- (task_id -> processed_tasks, ON DELETE SET NULL, is added in module 40,
    -- once processed_tasks exists.)
    CONSTRAINT license_usage_log_metric_not_blank CHECK (btrim(metric) <> ''),
    CONSTRAINT license_usage_log_quantity_nonneg CHECK (quantity >= 0),
    CONSTRAINT license_usage_log_period_order CHECK (period_end >= period_start),
    CONSTRAINT license_usage_log_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
);

CREATE INDEX license_usage_log_license_id_created_at_idx ON celaest.license_usage_log (license_id, created_at);
CREATE INDEX license_usage_log_organization_id_idx ON celaest.license_usage_log (organization_id);
CREATE INDEX license_usage_log_task_id_idx ON celaest.license_usage_log (task_id);
CREATE INDEX license_usage_log_user_id_idx ON celaest.license_usage_log (user_id);

COMMENT ON TABLE celaest.license_usage_log IS
    'Consumption history of licenses: one row per consumption or per billing-period close.';
COMMENT ON COLUMN celaest.license_usage_log.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.license_usage_log.license_id IS 'License consumed (FK -> licenses).';
COMMENT ON COLUMN celaest.license_usage_log.organization_id IS 'Organization of the license (FK -> organizations).';
COMMENT ON COLUMN celaest.license_usage_log.metric IS 'Metric consumed, e.g. ai_requests or storage_gb.';
COMMENT ON COLUMN celaest.license_usage_log.quantity IS 'Quantity consumed (or, for a period close, the period total).';
COMMENT ON COLUMN celaest.license_usage_log.period_start IS 'Start of the billing period the row belongs to.';
COMMENT ON COLUMN celaest.license_usage_log.period_end IS 'End of the billing period the row belongs to.';
COMMENT ON COLUMN celaest.license_usage_log.task_id IS 'Task that caused the consumption, if any (FK -> processed_tasks).';
COMMENT ON COLUMN celaest.license_usage_log.user_id IS 'User who caused the consumption, if any (FK -> users_profile).';
COMMENT ON COLUMN celaest.license_usage_log.metadata IS 'Additional data (JSON object).';
COMMENT ON COLUMN celaest.license_usage_log.created_at IS 'Time of the consumption.';

-- pg_dump: these rows are user data (see module 10).
SELECT pg_catalog.pg_extension_config_dump('celaest.subscription_plans', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.licenses', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.license_usage_log', '');
-- Licensing: license key generation (native, on the server's strong random source).

CREATE FUNCTION celaest.generate_license_key() RETURNS text
    AS 'MODULE_PATHNAME', 'celaest_generate_license_key'
    LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION celaest.generate_license_key() IS
    'A new license key: 64 lowercase hex characters (256 bits) from pg_strong_random.';
-- CELAEST — module 25: licensing functions (API.md, "Licenses and limits").
--
-- Tables: module 20 (subscription_plans, licenses, license_usage_log). Enforcement
-- points (triggers, the AI-call and batch helpers): module 26, and module 75 for the
-- tables created after it (processed_tasks, system_config).
--
-- Vocabulary
--   in force     status trial, active or suspended (at most one per organization;
--                the partial unique index licenses_one_in_force_per_org).
--   usable       in force, not suspended, and not lapsed by date (expires_at, or
--                trial_ends_at for a trial). A license whose status still says
--                trial/active but whose date has passed is refused as expired
--                (LC003) before refresh_licenses() gets round to flipping it.
--   current      the license that answers for an organization: the one in force,
--                else its most recent one (so that an organization whose license
--                was cancelled hears LC004, not "no license").
--   metric       ai_requests | users | concurrent_tasks | batch_size | storage_gb,
--                or the plan limit key (max_ai_requests_per_month, max_users,
--                max_concurrent_tasks, max_batch_size, max_storage_gb).
--   limit -1     unlimited (everywhere: plans, custom_limits, results).
--
-- Effective limits (effective_limits(), limit_value()), per limit key:
--   1. the plan's value (a key the plan does not name is unlimited);
--   2. billing_cycle usage_based: max_ai_requests_per_month is uncapped (metered);
--   3. a trial is narrowed by system_config 'license.trial_limits' (an object of
--      limit keys): the smaller of the two wins, -1 never widens;
--   4. custom_limits, when it names the key, wins over all of the above (a
--      per-license decision by whoever issued it).
--   storage: max_storage_gb is in GiB; consumption and usage are in bytes
--   (storage_used_bytes), so check_limit/consume_quota work in bytes.
--
-- Billing periods: monthly 30 days, quarterly 90, yearly 365, usage_based 30 (the
-- metering period), lifetime never (one period for the whole life: the AI quota is a
-- lifetime cap then). A day is 24 hours, whatever the session's TimeZone. The first
-- period opens at starts_at. refresh_licenses() rolls periods (and consume_quota rolls
-- a lapsed one itself before charging it, so a late worker never charges a new
-- period's request to the old one).
--
-- SQLSTATEs
--   LC001 no license in force   LC002 suspended   LC003 expired / trial expired
--   LC004 cancelled             LC010 quota or limit would be exceeded
--                               (DETAIL "limit: L, used: U, requested: R")
--   22023 bad input (unknown plan code, metric, option, malformed limits, negative
--         amount, unknown license id, bad dates); 22004 a required argument is NULL
--   23505 the organization already has a license in force
--   55000 illegal status transition (object_not_in_prerequisite_state: the request is
--         well-formed, the license is in the wrong state for it)
--
-- Privileges. Module 85 lets every role read its own organization's rows (RLS) and
-- grants no writes. So these functions are SECURITY INVOKER unless noted: the read
-- ones answer what the caller may see; the writing ones (issue_license,
-- set_license_status, refresh_licenses, consume_quota, release_quota and module 26's
-- reserve_ai_request/check_batch) need write rights on licenses, which the owner has
-- and which run_prompt, ai_chat and the background workers (running as the owner)
-- use. An application role cannot reset or burn quota by calling them. SECURITY
-- DEFINER, with SET search_path: validate_license (the key is the credential),
-- trial_limits (system_config is owner-only) and, in modules 26/76, reserve_counted and
-- the max_users / max_concurrent_tasks triggers (an exact count must see every row,
-- not only the caller's; reserve_counted is not granted to PUBLIC).
--
-- search_path. Functions with a SET clause: SET search_path = pg_catalog, pg_temp.
-- The per-request hot ones (check_limit, consume_quota, and reserve_ai_request in
-- module 26) have none: a SET clause costs a GUC save/restore on every call and
-- measurably lowers their TPS (README, licensing benchmark). They are SECURITY
-- INVOKER and name every table and function schema-qualified, so the caller's
-- search_path can only affect the caller (run_prompt/ai_chat call them with
-- search_path = pg_catalog, pg_temp already set).

-- ---------------------------------------------------------------------------
-- Names, units and pure helpers
-- ---------------------------------------------------------------------------

CREATE FUNCTION celaest.license_limit_key(p_metric text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE p_metric
        WHEN 'ai_requests'               THEN 'max_ai_requests_per_month'
        WHEN 'max_ai_requests_per_month' THEN 'max_ai_requests_per_month'
        WHEN 'users'                     THEN 'max_users'
        WHEN 'max_users'                 THEN 'max_users'
        WHEN 'concurrent_tasks'          THEN 'max_concurrent_tasks'
        WHEN 'max_concurrent_tasks'      THEN 'max_concurrent_tasks'
        WHEN 'batch_size'                THEN 'max_batch_size'
        WHEN 'max_batch_size'            THEN 'max_batch_size'
        WHEN 'storage_gb'                THEN 'max_storage_gb'
        WHEN 'max_storage_gb'            THEN 'max_storage_gb'
    END;
$$;
COMMENT ON FUNCTION celaest.license_limit_key(text) IS
    'Plan limit key of a metric given by name or by key (ai_requests -> max_ai_requests_per_month, users -> max_users, concurrent_tasks -> max_concurrent_tasks, batch_size -> max_batch_size, storage_gb -> max_storage_gb); NULL for anything else.';

CREATE FUNCTION celaest.license_metric_name(p_metric text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE celaest.license_limit_key(p_metric)
        WHEN 'max_ai_requests_per_month' THEN 'ai_requests'
        WHEN 'max_users'                 THEN 'users'
        WHEN 'max_concurrent_tasks'      THEN 'concurrent_tasks'
        WHEN 'max_batch_size'            THEN 'batch_size'
        WHEN 'max_storage_gb'            THEN 'storage_gb'
    END;
$$;
COMMENT ON FUNCTION celaest.license_metric_name(text) IS
    'Metric name (ai_requests, users, concurrent_tasks, batch_size, storage_gb) of a metric given by name or by plan limit key; NULL for anything else.';

CREATE FUNCTION celaest.billing_period_length(p_cycle celaest.billing_cycle)
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- Hours, not days or months: a period is an exact duration whatever the TimeZone.
    SELECT CASE p_cycle
        WHEN 'monthly'     THEN interval '720 hours'    -- 30 days
        WHEN 'quarterly'   THEN interval '2160 hours'   -- 90 days
        WHEN 'yearly'      THEN interval '8760 hours'   -- 365 days
        WHEN 'usage_based' THEN interval '720 hours'    -- metering period, 30 days
        WHEN 'lifetime'    THEN NULL                    -- never rolls
    END;
$$;
COMMENT ON FUNCTION celaest.billing_period_length(celaest.billing_cycle) IS
    'Length of a billing period: monthly 30 days, quarterly 90, yearly 365, usage_based 30 (metering period), lifetime NULL (never rolls). Exact 24-hour days.';

-- Inlined by the planner into the queries that call it (a single expression, each
-- argument but the key used once): no function call on the hot path.
CREATE FUNCTION celaest.limit_value(p_key text, p_plan_limits jsonb, p_custom_limits jsonb,
                                    p_trial_limits jsonb, p_uncapped boolean)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- -1 (unlimited) is mapped to NULL so that LEAST() ignores it, then back.
    -- (jsonb -> key)::bigint is a direct cast (no text round trip); the values are
    -- validated integers (validate_limits), and a missing key gives NULL.
    SELECT COALESCE(
        (p_custom_limits -> p_key)::bigint,
        LEAST(CASE WHEN p_uncapped AND p_key = 'max_ai_requests_per_month' THEN NULL
                   ELSE NULLIF((p_plan_limits -> p_key)::bigint, -1) END,
              NULLIF((p_trial_limits -> p_key)::bigint, -1)),
        -1);
$$;
COMMENT ON FUNCTION celaest.limit_value(text, jsonb, jsonb, jsonb, boolean) IS
    'Effective value of one limit key: custom_limits if it names the key, else the plan value (missing = -1) narrowed by p_trial_limits (non-NULL for trial licenses only); p_uncapped (usage_based billing) lifts max_ai_requests_per_month. -1 = unlimited.';

CREATE FUNCTION celaest.effective_limits_of(p_plan_limits jsonb, p_custom_limits jsonb,
                                            p_trial_limits jsonb, p_uncapped boolean)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object(
        'max_users',                 celaest.limit_value('max_users', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped),
        'max_ai_requests_per_month', celaest.limit_value('max_ai_requests_per_month', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped),
        'max_storage_gb',            celaest.limit_value('max_storage_gb', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped),
        'max_concurrent_tasks',      celaest.limit_value('max_concurrent_tasks', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped),
        'max_batch_size',            celaest.limit_value('max_batch_size', p_plan_limits, p_custom_limits, p_trial_limits, p_uncapped));
$$;
COMMENT ON FUNCTION celaest.effective_limits_of(jsonb, jsonb, jsonb, boolean) IS
    'All five effective limits (see limit_value) as a JSON object; -1 = unlimited.';

-- The state of a license as validate_license() reports it, quota aside.
CREATE FUNCTION celaest.license_code(p_status celaest.license_status, p_expires_at timestamptz,
                                     p_trial_ends_at timestamptz, p_metadata jsonb)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_status = 'cancelled' THEN 'CANCELLED'
        WHEN p_status = 'expired' THEN
            CASE WHEN p_metadata -> 'last_status_change' ->> 'from' = 'trial'
                 THEN 'TRIAL_EXPIRED' ELSE 'EXPIRED' END
        WHEN p_expires_at <= pg_catalog.now() THEN
            CASE WHEN p_status = 'trial' THEN 'TRIAL_EXPIRED' ELSE 'EXPIRED' END
        WHEN p_status = 'trial' AND p_trial_ends_at <= pg_catalog.now() THEN 'TRIAL_EXPIRED'
        WHEN p_status = 'suspended' THEN 'SUSPENDED'
        ELSE 'VALID'
    END;
$$;
COMMENT ON FUNCTION celaest.license_code(celaest.license_status, timestamptz, timestamptz, jsonb) IS
    'State code of a license, quota aside: VALID, SUSPENDED, EXPIRED, TRIAL_EXPIRED or CANCELLED. A trial or active license whose expires_at (or trial_ends_at) has passed is EXPIRED (TRIAL_EXPIRED) even before refresh_licenses() changes its status.';

-- Validates a limits object (plans' limits, custom_limits, license.trial_limits).
CREATE FUNCTION celaest.validate_limits(p_limits jsonb, p_what text DEFAULT 'limits')
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_entry record;
    v_num   numeric;
    v_max   numeric;
BEGIN
    IF p_limits IS NULL THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_limits) <> 'object' THEN
        RAISE EXCEPTION '% must be a JSON object of limits, not %: %', p_what, jsonb_typeof(p_limits), p_limits
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example {"max_users": 20, "max_ai_requests_per_month": -1}; -1 means unlimited.';
    END IF;
    FOR v_entry IN SELECT e.key, e.value FROM jsonb_each(p_limits) AS e ORDER BY e.key LOOP
        IF v_entry.key NOT IN ('max_users', 'max_ai_requests_per_month', 'max_storage_gb',
                               'max_concurrent_tasks', 'max_batch_size') THEN
            RAISE EXCEPTION '% names an unknown limit "%"', p_what, v_entry.key
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Known limits: max_users, max_ai_requests_per_month, max_storage_gb, max_concurrent_tasks, max_batch_size.';
        END IF;
        IF jsonb_typeof(v_entry.value) <> 'number' THEN
            RAISE EXCEPTION '% limit "%" must be an integer, not %', p_what, v_entry.key, v_entry.value
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use a JSON number: a count, or -1 for unlimited.';
        END IF;
        v_num := v_entry.value::numeric;
        -- storage is charged in bytes: GiB * 2^30 must fit a bigint.
        v_max := CASE WHEN v_entry.key = 'max_storage_gb' THEN 8589934591 ELSE 9223372036854775807 END;
        IF v_num <> trunc(v_num) OR v_num < -1 OR v_num > v_max THEN
            RAISE EXCEPTION '% limit "%" must be an integer from -1 to %, not %', p_what, v_entry.key, v_max, v_entry.value
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = '-1 means unlimited.';
        END IF;
    END LOOP;
    RETURN p_limits;
END;
$$;
COMMENT ON FUNCTION celaest.validate_limits(jsonb, text) IS
    'Returns p_limits if it is NULL or a JSON object whose keys are known limit keys and whose values are integers >= -1 (max_storage_gb at most 2^33-1); raises 22023 naming the offending key and value otherwise. p_what names the object in the message.';

-- ---------------------------------------------------------------------------
-- Reading licenses
-- ---------------------------------------------------------------------------

-- system_config is created in module 70: plpgsql binds it at first use. SECURITY
-- DEFINER: system_config is owner-only (module 85), and every caller of check_limit
-- needs this one, non-secret, setting.
CREATE FUNCTION celaest.trial_limits()
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_value jsonb;
BEGIN
    SELECT c.value INTO v_value FROM celaest.system_config AS c WHERE c.key = 'license.trial_limits';
    RETURN v_value;
END;
$$;
COMMENT ON FUNCTION celaest.trial_limits() IS
    'The system_config setting license.trial_limits (an object of limit keys that narrows trial licenses), or NULL when unset.';

CREATE FUNCTION celaest.current_license(p_org_id uuid)
RETURNS celaest.licenses
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
    SELECT l.*
      FROM celaest.licenses AS l
     WHERE l.organization_id = p_org_id
       AND l.status IN ('trial', 'active', 'suspended');
$$;
COMMENT ON FUNCTION celaest.current_license(uuid) IS
    'The license in force (trial, active or suspended) of the organization, or NULL when it has none.';

CREATE FUNCTION celaest.effective_limits(p_license_id uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_result jsonb;
BEGIN
    SELECT celaest.effective_limits_of(p.limits, l.custom_limits,
                                       CASE WHEN l.status = 'trial' THEN celaest.trial_limits() END,
                                       l.billing_cycle = 'usage_based')
      INTO v_result
      FROM celaest.licenses AS l
      JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
     WHERE l.id = p_license_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'license % does not exist', p_license_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN v_result;
END;
$$;
COMMENT ON FUNCTION celaest.effective_limits(uuid) IS
    'Effective limits of a license: plan limits (trials narrowed by system_config license.trial_limits; usage_based licenses uncapped in AI requests) overlaid with custom_limits; all five keys, -1 = unlimited. Raises 22023 for an unknown license.';

-- Raises the refusal for an organization whose current license is not usable
-- (LC001-LC004); returns the id of the usable license otherwise.
CREATE FUNCTION celaest.assert_license_usable(p_org_id uuid)
RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_lic  record;
    v_code text;
BEGIN
    IF p_org_id IS NULL THEN
        RAISE EXCEPTION 'organization id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT l.id, l.status, l.expires_at, l.trial_ends_at, l.suspended_at, l.cancelled_at, l.metadata,
           celaest.license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code
      INTO v_lic
      FROM celaest.licenses AS l
     WHERE l.organization_id = p_org_id
     ORDER BY l.status IN ('trial', 'active', 'suspended') DESC, l.created_at DESC, l.id
     LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'organization % has no license in force', p_org_id
            USING ERRCODE = 'LC001',
                  HINT = 'Issue one with celaest.issue_license().';
    END IF;
    v_code := v_lic.code;
    IF v_code = 'VALID' THEN
        RETURN v_lic.id;
    ELSIF v_code = 'SUSPENDED' THEN
        RAISE EXCEPTION 'license % of organization % is suspended', v_lic.id, p_org_id
            USING ERRCODE = 'LC002',
                  DETAIL = CASE WHEN v_lic.suspended_at IS NULL THEN 'Suspended.'
                                ELSE format('Suspended at %s.', v_lic.suspended_at) END;
    ELSIF v_code = 'CANCELLED' THEN
        RAISE EXCEPTION 'license % of organization % is cancelled', v_lic.id, p_org_id
            USING ERRCODE = 'LC004',
                  DETAIL = CASE WHEN v_lic.cancelled_at IS NULL THEN 'Cancelled.'
                                ELSE format('Cancelled at %s.', v_lic.cancelled_at) END,
                  HINT = 'A cancelled license is final; issue a new one with celaest.issue_license().';
    ELSIF v_code = 'TRIAL_EXPIRED' THEN
        RAISE EXCEPTION 'the trial of license % of organization % has expired', v_lic.id, p_org_id
            USING ERRCODE = 'LC003',
                  DETAIL = CASE WHEN COALESCE(v_lic.trial_ends_at, v_lic.expires_at) IS NULL THEN 'Trial expired by status.'
                                ELSE format('Trial ended at %s.', LEAST(v_lic.trial_ends_at, v_lic.expires_at)) END,
                  HINT = 'Activate the license (celaest.set_license_status) or issue a paid one.';
    ELSE
        RAISE EXCEPTION 'license % of organization % has expired', v_lic.id, p_org_id
            USING ERRCODE = 'LC003',
                  DETAIL = CASE WHEN v_lic.expires_at IS NULL THEN 'Expired by status.'
                                ELSE format('Expired at %s.', v_lic.expires_at) END,
                  HINT = 'Renew it: celaest.set_license_status(id, ''active'', reason, new expires_at).';
    END IF;
END;
$$;
COMMENT ON FUNCTION celaest.assert_license_usable(uuid) IS
    'Id of the organization''s usable license (in force, not suspended, not lapsed). Raises LC001 (no license), LC002 (suspended), LC003 (expired or trial expired, also by date before refresh_licenses() runs) or LC004 (cancelled); 22004 for a NULL id.';

-- validate_license runs as its owner: the key is the credential, and whoever holds
-- it may learn its state even without row-level access to licenses. Unknown keys and
-- garbage take the same path (hash, one index probe that misses), so the answer and
-- its timing do not tell them apart; a B-tree probe by SHA-256 digest reveals nothing
-- usable about near-miss keys.
CREATE FUNCTION celaest.validate_license(p_license_key text)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_hash  text := encode(sha256(convert_to(lower(btrim(COALESCE(p_license_key, ''), E' \t\r\n')), 'UTF8')), 'hex');
    v_lic   record;
    v_code  text;
    v_users bigint;
    v_tasks bigint;
BEGIN
    SELECT l.id, l.organization_id, l.status, l.expires_at, l.trial_ends_at, l.billing_cycle,
           l.current_period_start, l.current_period_end, l.storage_used_bytes, p.code AS plan_code,
           celaest.license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code,
           celaest.effective_limits_of(p.limits, l.custom_limits,
                                       CASE WHEN l.status = 'trial' THEN celaest.trial_limits() END,
                                       l.billing_cycle = 'usage_based') AS limits,
           CASE WHEN l.current_period_end <= now() AND l.status IN ('trial', 'active', 'suspended')
                THEN 0 ELSE l.ai_requests_used END AS ai_used
      INTO v_lic
      FROM celaest.licenses AS l
      JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
     WHERE l.license_key_hash = v_hash;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('valid', false, 'code', 'NOT_FOUND', 'license_id', NULL,
                                  'organization_id', NULL, 'plan', NULL, 'status', NULL,
                                  'expires_at', NULL, 'trial_ends_at', NULL, 'billing_cycle', NULL,
                                  'limits', NULL, 'usage', NULL);
    END IF;

    v_code := v_lic.code;
    IF v_code = 'VALID' AND (v_lic.limits ->> 'max_ai_requests_per_month')::bigint <> -1
       AND v_lic.ai_used >= (v_lic.limits ->> 'max_ai_requests_per_month')::bigint THEN
        v_code := 'QUOTA_EXCEEDED';
    END IF;
    SELECT count(*) INTO v_users FROM celaest.users_profile AS u
     WHERE u.organization_id = v_lic.organization_id AND u.deleted_at IS NULL;
    SELECT count(*) INTO v_tasks FROM celaest.processed_tasks AS t
     WHERE t.organization_id = v_lic.organization_id AND t.status IN ('processing', 'retrying');

    RETURN jsonb_build_object(
        'valid', v_code = 'VALID',
        'code', v_code,
        'license_id', v_lic.id,
        'organization_id', v_lic.organization_id,
        'plan', v_lic.plan_code,
        'status', v_lic.status,
        'expires_at', v_lic.expires_at,
        'trial_ends_at', v_lic.trial_ends_at,
        'billing_cycle', v_lic.billing_cycle,
        'limits', v_lic.limits,
        'usage', jsonb_build_object(
            'ai_requests', v_lic.ai_used,
            'storage_bytes', v_lic.storage_used_bytes,
            'users', v_users,
            'concurrent_tasks', v_tasks,
            'period_start', v_lic.current_period_start,
            'period_end', v_lic.current_period_end));
END;
$$;
COMMENT ON FUNCTION celaest.validate_license(text) IS
    'Looks a license key up by its SHA-256 and returns {valid, code, license_id, organization_id, plan, status, expires_at, trial_ends_at, billing_cycle, limits, usage}; code is VALID, NOT_FOUND (unknown key or garbage, answered alike), SUSPENDED, EXPIRED, TRIAL_EXPIRED, CANCELLED or QUOTA_EXCEEDED (AI requests of the period used up); valid is true only for VALID.';

-- ---------------------------------------------------------------------------
-- Limits: check (read only) and consume (atomic)
-- ---------------------------------------------------------------------------

-- The slow, rare path shared by the argument checks: raises the right 22004/22023.
CREATE FUNCTION celaest._raise_bad_limit_call(p_org_id uuid, p_metric text, p_amount bigint)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_org_id IS NULL THEN
        RAISE EXCEPTION 'organization id must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF celaest.license_limit_key(p_metric) IS NULL THEN
        RAISE EXCEPTION 'unknown license metric "%"', p_metric
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ai_requests, users, concurrent_tasks, batch_size or storage_gb (or the plan limit key, e.g. max_users).';
    END IF;
    IF p_amount IS NULL OR p_amount < 0 THEN
        RAISE EXCEPTION 'amount must be zero or positive, not %', COALESCE(p_amount::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION celaest._raise_bad_limit_call(uuid, text, bigint) IS
    'Internal: raises 22004 for a NULL organization, 22023 for an unknown metric or a negative/NULL amount; returns quietly when the arguments are fine.';

-- The general path of check_limit: every metric, and organizations without a license
-- in force (answered from their most recent license).
CREATE FUNCTION celaest._check_limit_general(p_org_id uuid, p_limit text, p_amount bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key  text := celaest.license_limit_key(p_limit);
    v_lic  record;
    v_used bigint;
BEGIN
    IF v_key IS NULL OR p_amount IS NULL OR p_amount < 0 OR p_org_id IS NULL THEN
        PERFORM celaest._raise_bad_limit_call(p_org_id, p_limit, p_amount);
    END IF;

    SELECT l.id,
           celaest.license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code,
           COALESCE(NULLIF(celaest.limit_value(v_key, p.limits, l.custom_limits,
                                               CASE WHEN l.status = 'trial' THEN celaest.trial_limits() END,
                                               l.billing_cycle = 'usage_based'), -1)
                    * CASE WHEN v_key = 'max_storage_gb' THEN 1073741824 ELSE 1 END, -1) AS lim,
           CASE WHEN l.current_period_end <= now() AND l.status IN ('trial', 'active', 'suspended')
                THEN 0 ELSE l.ai_requests_used END AS ai_used,
           l.storage_used_bytes
      INTO v_lic
      FROM celaest.licenses AS l
      JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
     WHERE l.organization_id = p_org_id
     ORDER BY l.status IN ('trial', 'active', 'suspended') DESC, l.created_at DESC, l.id
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('allowed', false, 'limit', NULL, 'used', NULL, 'remaining', NULL,
                                  'code', 'NOT_FOUND');
    END IF;

    v_used := CASE v_key
        WHEN 'max_ai_requests_per_month' THEN v_lic.ai_used
        WHEN 'max_storage_gb' THEN v_lic.storage_used_bytes
        WHEN 'max_users' THEN
            (SELECT count(*) FROM celaest.users_profile AS u
              WHERE u.organization_id = p_org_id AND u.deleted_at IS NULL)
        WHEN 'max_concurrent_tasks' THEN
            (SELECT count(*) FROM celaest.processed_tasks AS t
              WHERE t.organization_id = p_org_id AND t.status IN ('processing', 'retrying'))
        ELSE 0                          -- max_batch_size: a per-batch cap, nothing accumulates
    END;
    RETURN jsonb_build_object(
        'allowed',   v_lic.code = 'VALID' AND (v_lic.lim = -1 OR v_used + p_amount <= v_lic.lim),
        'limit',     v_lic.lim,
        'used',      v_used,
        'remaining', CASE WHEN v_lic.lim = -1 THEN -1 ELSE GREATEST(v_lic.lim - v_used, 0) END,
        'code',      CASE WHEN v_lic.code <> 'VALID' OR v_lic.lim = -1 OR v_used + p_amount <= v_lic.lim
                          THEN v_lic.code ELSE 'QUOTA_EXCEEDED' END);
END;
$$;
COMMENT ON FUNCTION celaest._check_limit_general(uuid, text, bigint) IS
    'Internal: the general path of check_limit (every metric; organizations without a license in force are answered from their most recent license, or NOT_FOUND).';

-- The terms the hot paths keep in shared memory for every backend (src/pg/license_quota.cpp):
-- the organization's license in force and its effective AI-request cap, as
-- '<license uuid> <cap> <status>' ('' when none is in force). Owner's rights and a fixed search_path:
-- what one caller reads here is used by all, so no caller's search_path or row-level
-- security may shape it. Not granted to anyone: the native code calls it through fmgr, and
-- every answer it then gives is gated by a read under the caller's own rights.
-- VOLATILE: a volatile SQL function reads with a snapshot of its own, newer than the cache
-- generation the caller read first (src/pg/cache_validity.hpp).
CREATE FUNCTION celaest._license_terms(p_org_id uuid)
RETURNS text
LANGUAGE sql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((
        SELECT l.id::text || ' ' ||
               coalesce(nullif(celaest.limit_value('max_ai_requests_per_month', p.limits, l.custom_limits,
                                                   CASE WHEN l.status = 'trial' THEN celaest.trial_limits() END,
                                                   l.billing_cycle = 'usage_based'), -1), -1)::text
               || ' ' || l.status::text
          FROM celaest.licenses AS l
          JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
         WHERE l.organization_id = p_org_id AND l.status IN ('trial', 'active', 'suspended')), '');
$$;
COMMENT ON FUNCTION celaest._license_terms(uuid) IS
    'Internal: ''<license id> <effective max_ai_requests_per_month> <status>'' of the organization''s license in force ('''' when none), for the shared cache of the native check_limit, consume_quota and AI calls. Owner''s rights, fixed search_path; not granted.';
REVOKE EXECUTE ON FUNCTION celaest._license_terms(uuid) FROM PUBLIC;

-- Native (src/pg/quota_functions.cpp): the common call (AI requests of an organization
-- with a license in force) reads the counter in one statement, with the license and its
-- effective cap from a per-backend copy (module 78 invalidates it); everything else goes to
-- _check_limit_general above, which gives the same answer. SECURITY INVOKER: the caller's
-- row-level security applies to both paths.
CREATE FUNCTION celaest.check_limit(p_org_id uuid, p_limit text, p_amount bigint DEFAULT 1)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'celaest_check_limit'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION celaest.check_limit(uuid, text, bigint) IS
    'Read-only check whether the organization may use p_amount more of a metric (ai_requests, users, concurrent_tasks, batch_size, storage_gb, or the plan limit key): {allowed, limit, used, remaining, code}. code is VALID, QUOTA_EXCEEDED, or the license''s state (NOT_FOUND, SUSPENDED, EXPIRED, TRIAL_EXPIRED, CANCELLED) from the license in force, else the most recent one. -1 = unlimited; storage in bytes; batch_size compares p_amount with the limit (used 0). 22023 for an unknown metric or a negative amount, 22004 for a NULL organization.';

-- Rolls the license's billing period when it has ended (locks the row). Logs the
-- closed period's AI requests into license_usage_log and resets the counter.
CREATE FUNCTION celaest.roll_license_period(p_license_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r        celaest.licenses;
    v_len    interval;
    v_start  timestamptz;
    v_closed boolean := false;
BEGIN
    -- Most calls find nothing to do: say so without taking the row lock.
    IF NOT EXISTS (SELECT 1 FROM celaest.licenses AS l
                    WHERE l.id = p_license_id AND l.status IN ('trial', 'active', 'suspended')
                      AND l.billing_cycle <> 'lifetime'
                      AND (l.current_period_end IS NULL OR l.current_period_start IS NULL
                           OR l.current_period_end <= now())) THEN
        RETURN false;
    END IF;
    SELECT * INTO r FROM celaest.licenses AS l WHERE l.id = p_license_id FOR UPDATE;
    IF NOT FOUND OR r.status NOT IN ('trial', 'active', 'suspended') OR r.billing_cycle = 'lifetime' THEN
        RETURN false;
    END IF;
    v_len := celaest.billing_period_length(r.billing_cycle);
    IF r.current_period_start IS NOT NULL AND r.current_period_end IS NOT NULL THEN
        IF r.current_period_end > now() THEN
            RETURN false;
        END IF;
        INSERT INTO celaest.license_usage_log
            (license_id, organization_id, metric, quantity, period_start, period_end, metadata)
        VALUES
            (r.id, r.organization_id, 'ai_requests', r.ai_requests_used,
             r.current_period_start, r.current_period_end,
             jsonb_build_object('event', 'period_close', 'reason', 'period_end',
                                'billing_cycle', r.billing_cycle));
        v_start := r.current_period_end;
        v_closed := true;
    ELSE
        -- No period recorded (a row written without issue_license): open the one
        -- that contains now(), counted from starts_at. Nothing to close.
        v_start := COALESCE(r.current_period_start, r.starts_at);
    END IF;
    -- Skip whole empty periods when the worker was away, then land on the one that
    -- contains now() (the loop corrects any rounding of the jump).
    IF v_start + v_len <= now() THEN
        v_start := v_start + v_len * floor(extract(epoch FROM now() - v_start) / extract(epoch FROM v_len));
    END IF;
    WHILE v_start + v_len <= now() LOOP
        v_start := v_start + v_len;
    END LOOP;

    UPDATE celaest.licenses AS l
       SET current_period_start = v_start,
           current_period_end   = v_start + v_len,
           next_billing_date    = ((v_start + v_len) AT TIME ZONE 'UTC')::date,
           ai_requests_used     = CASE WHEN v_closed THEN 0 ELSE l.ai_requests_used END
     WHERE l.id = r.id;
    RETURN true;
END;
$$;
COMMENT ON FUNCTION celaest.roll_license_period(uuid) IS
    'If the license is in force, not lifetime, and its billing period has ended (or was never set), closes the period into license_usage_log (metric ai_requests, quantity = requests used, metadata.event = period_close), opens the period that contains now() and resets ai_requests_used. Returns whether it changed the license.';

-- The general (slow) path of a consumption: argument checks, refusals, lapsed
-- periods, counted metrics. consume_quota and reserve_ai_request fall back to it when
-- their one-statement fast path does not grant.
CREATE FUNCTION celaest.take_quota(p_org_id uuid, p_metric text, p_amount bigint,
                                   OUT license_id uuid, OUT remaining bigint,
                                   OUT period_start timestamptz, OUT period_end timestamptz)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key     text := celaest.license_limit_key(p_metric);
    v_lim     bigint;
    v_used    bigint;
    v_trial   jsonb;
    v_attempt integer := 0;
    v_lic     record;
BEGIN
    IF v_key IS NULL OR p_amount IS NULL OR p_amount < 0 OR p_org_id IS NULL THEN
        PERFORM celaest._raise_bad_limit_call(p_org_id, p_metric, p_amount);
    END IF;

    LOOP
        v_attempt := v_attempt + 1;
        license_id := celaest.assert_license_usable(p_org_id);       -- LC001-LC004

        IF v_key IN ('max_users', 'max_concurrent_tasks', 'max_batch_size') THEN
            remaining := celaest.reserve_counted(p_org_id, v_key, p_amount, true);
            RETURN;
        END IF;

        IF v_key = 'max_ai_requests_per_month' THEN
            PERFORM celaest.roll_license_period(license_id);
        END IF;

        v_trial := celaest.trial_limits();
        -- The conditional UPDATE is the whole guarantee: it grants only while the
        -- latest committed counter leaves room (READ COMMITTED re-checks the WHERE
        -- clause on the row version it waited for), and changes nothing otherwise.
        IF v_key = 'max_ai_requests_per_month' THEN
            UPDATE celaest.licenses AS l
               SET ai_requests_used = l.ai_requests_used + p_amount
              FROM celaest.subscription_plans AS p
             WHERE l.id = license_id
               AND l.status IN ('trial', 'active')
               AND p.id = l.plan_id
               AND celaest.license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) = 'VALID'
               AND (l.current_period_end IS NULL OR l.current_period_end > now())
               AND p_amount <= COALESCE(NULLIF(celaest.limit_value(v_key, p.limits, l.custom_limits,
                                                   CASE WHEN l.status = 'trial' THEN v_trial END,
                                                   l.billing_cycle = 'usage_based'), -1),
                                        9223372036854775807) - l.ai_requests_used
            RETURNING celaest.limit_value(v_key, p.limits, l.custom_limits,
                                          CASE WHEN l.status = 'trial' THEN v_trial END,
                                          l.billing_cycle = 'usage_based'),
                      l.ai_requests_used, l.current_period_start, l.current_period_end
                 INTO v_lim, v_used, period_start, period_end;
        ELSE  -- max_storage_gb: bytes against GiB
            UPDATE celaest.licenses AS l
               SET storage_used_bytes = l.storage_used_bytes + p_amount
              FROM celaest.subscription_plans AS p
             WHERE l.id = license_id
               AND l.status IN ('trial', 'active')
               AND p.id = l.plan_id
               AND celaest.license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) = 'VALID'
               AND p_amount <= COALESCE(NULLIF(celaest.limit_value(v_key, p.limits, l.custom_limits,
                                                   CASE WHEN l.status = 'trial' THEN v_trial END,
                                                   false), -1) * 1073741824,
                                        9223372036854775807) - l.storage_used_bytes
            RETURNING COALESCE(NULLIF(celaest.limit_value(v_key, p.limits, l.custom_limits,
                                                          CASE WHEN l.status = 'trial' THEN v_trial END,
                                                          false), -1) * 1073741824, -1),
                      l.storage_used_bytes, l.current_period_start, l.current_period_end
                 INTO v_lim, v_used, period_start, period_end;
        END IF;
        IF FOUND THEN
            remaining := CASE WHEN v_lim = -1 THEN -1 ELSE v_lim - v_used END;
            RETURN;
        END IF;

        -- Refused. Say why, from the latest committed state.
        SELECT celaest.license_code(l.status, l.expires_at, l.trial_ends_at, l.metadata) AS code,
               l.status, l.current_period_end,
               COALESCE(NULLIF(celaest.limit_value(v_key, p.limits, l.custom_limits,
                                                   CASE WHEN l.status = 'trial' THEN v_trial END,
                                                   l.billing_cycle = 'usage_based'), -1)
                        * CASE WHEN v_key = 'max_storage_gb' THEN 1073741824 ELSE 1 END, -1) AS lim,
               CASE WHEN v_key = 'max_storage_gb' THEN l.storage_used_bytes ELSE l.ai_requests_used END AS used
          INTO v_lic
          FROM celaest.licenses AS l
          JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
         WHERE l.id = license_id;
        IF FOUND AND v_lic.code = 'VALID' AND v_lic.status IN ('trial', 'active')
           AND NOT (v_key = 'max_ai_requests_per_month' AND v_lic.current_period_end <= now())
           AND v_lic.lim <> -1 AND v_lic.used + p_amount > v_lic.lim THEN
            RAISE EXCEPTION 'quota exceeded for organization %: % would go over its limit',
                            p_org_id, celaest.license_metric_name(v_key)
                USING ERRCODE = 'LC010',
                      DETAIL = format('limit: %s, used: %s, requested: %s', v_lic.lim, v_lic.used, p_amount),
                      HINT = CASE WHEN v_key = 'max_ai_requests_per_month'
                                  THEN 'The quota resets when the billing period rolls over; raise it with custom_limits or a larger plan.'
                                  ELSE 'Free some storage or raise max_storage_gb.' END;
        END IF;
        -- The state moved under us (a release, a roll, a status change): look again.
        IF v_attempt >= 5 THEN
            RAISE EXCEPTION 'could not charge % to organization % after % attempts',
                            celaest.license_metric_name(v_key), p_org_id, v_attempt
                USING ERRCODE = 'serialization_failure',
                      HINT = 'The license changed repeatedly while charging it; retry the transaction.';
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION celaest.take_quota(uuid, text, bigint) IS
    'General path of a consumption (consume_quota, reserve_ai_request and check_batch use it): validates the arguments, refuses with LC001-LC004 or LC010 (DETAIL limit/used/requested) consuming nothing, rolls a lapsed billing period first, and charges p_amount atomically. Counters: ai_requests, storage_gb (bytes). Counted metrics (users, concurrent_tasks) and batch_size are checked under a per-organization lock held to the end of the transaction and change nothing. Returns the license, the remaining quota (-1 unlimited) and the billing period.';

-- Native (src/pg/quota_functions.cpp): the common case (AI requests of a usable license
-- in its current period) is one conditional UPDATE of the counter, with the license and
-- its effective cap from a per-backend copy (module 78 invalidates it); everything else
-- (other metrics, refusals, a period to roll, bad arguments) goes through take_quota,
-- which charges or refuses by the same rule.
CREATE FUNCTION celaest.consume_quota(p_org_id uuid, p_metric text DEFAULT 'ai_requests',
                                      p_amount bigint DEFAULT 1)
RETURNS bigint
AS 'MODULE_PATHNAME', 'celaest_consume_quota'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest.consume_quota(uuid, text, bigint) IS
    'Consumes p_amount of a metric for the organization and returns what remains (-1 = unlimited). Exact under any concurrency: one conditional UPDATE grants only while the committed counter leaves room; a refusal (LC010, DETAIL limit/used/requested; LC001-LC004 for the license) or a rollback leaves the counter as it was. ai_requests and storage_gb (bytes) are counters; users, concurrent_tasks and batch_size are checked (count + p_amount <= limit) under a per-organization lock held to the end of the transaction, and change nothing. 22023 for an unknown metric or a negative amount.';

CREATE FUNCTION celaest.release_quota(p_org_id uuid, p_metric text, p_amount bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key  text := celaest.license_limit_key(p_metric);
    v_lim  bigint;
    v_used bigint;
BEGIN
    IF v_key IS NULL OR p_amount IS NULL OR p_amount < 0 OR p_org_id IS NULL THEN
        PERFORM celaest._raise_bad_limit_call(p_org_id, p_metric, p_amount);
    END IF;
    IF v_key NOT IN ('max_ai_requests_per_month', 'max_storage_gb') THEN
        RAISE EXCEPTION 'metric "%" cannot be released', p_metric
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'users and concurrent_tasks are counted from users_profile and processed_tasks; batch_size is a per-batch cap.',
                  HINT = 'Only ai_requests and storage_gb are counters.';
    END IF;
    UPDATE celaest.licenses AS l
       SET ai_requests_used   = CASE WHEN v_key = 'max_ai_requests_per_month'
                                     THEN GREATEST(l.ai_requests_used - p_amount, 0) ELSE l.ai_requests_used END,
           storage_used_bytes = CASE WHEN v_key = 'max_storage_gb'
                                     THEN GREATEST(l.storage_used_bytes - p_amount, 0) ELSE l.storage_used_bytes END
      FROM celaest.subscription_plans AS p
     WHERE l.organization_id = p_org_id
       AND l.status IN ('trial', 'active', 'suspended')
       AND p.id = l.plan_id
    RETURNING COALESCE(NULLIF(celaest.limit_value(v_key, p.limits, l.custom_limits,
                                                  CASE WHEN l.status = 'trial' THEN celaest.trial_limits() END,
                                                  l.billing_cycle = 'usage_based'), -1)
                       * CASE WHEN v_key = 'max_storage_gb' THEN 1073741824 ELSE 1 END, -1),
              CASE WHEN v_key = 'max_storage_gb' THEN l.storage_used_bytes ELSE l.ai_requests_used END
         INTO v_lim, v_used;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'organization % has no license in force', p_org_id
            USING ERRCODE = 'LC001';
    END IF;
    RETURN CASE WHEN v_lim = -1 THEN -1 ELSE GREATEST(v_lim - v_used, 0) END;
END;
$$;
COMMENT ON FUNCTION celaest.release_quota(uuid, text, bigint) IS
    'Gives back p_amount of a counter (ai_requests: a refund; storage_gb: bytes freed) on the license in force, never below zero; returns what remains (-1 = unlimited). LC001 without a license in force; 22023 for other metrics or a negative amount.';

-- ---------------------------------------------------------------------------
-- Lifecycle
-- ---------------------------------------------------------------------------

CREATE FUNCTION celaest.issue_license(p_org_id uuid, p_plan_code text, p_options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_opts       jsonb;
    v_opt        text;
    v_org        record;
    v_plan       record;
    v_cycle      celaest.billing_cycle := 'monthly';
    v_trial_days integer := 0;
    v_custom     jsonb;
    v_starts     timestamptz := now();
    v_expires    timestamptz;
    v_trial_ends timestamptz;
    v_status     celaest.license_status;
    v_len        interval;
    v_key        text;
    v_existing   record;
    v_lic        celaest.licenses;
    v_num        numeric;
    v_ts         timestamptz;
    v_secret     text;
BEGIN
    IF p_org_id IS NULL THEN
        RAISE EXCEPTION 'organization id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_plan_code IS NULL THEN
        RAISE EXCEPTION 'plan code must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_options IS NOT NULL AND jsonb_typeof(p_options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object, not %: %', jsonb_typeof(p_options), p_options
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A JSON null option is the same as leaving it out.
    SELECT COALESCE(jsonb_object_agg(e.key, e.value), '{}') INTO v_opts
      FROM jsonb_each(COALESCE(p_options, '{}')) AS e WHERE jsonb_typeof(e.value) <> 'null';
    FOR v_opt IN SELECT jsonb_object_keys(v_opts) ORDER BY 1 LOOP
        IF v_opt NOT IN ('billing_cycle', 'trial_days', 'custom_limits', 'starts_at', 'expires_at',
                         'notes', 'metadata') THEN
            RAISE EXCEPTION 'unknown issue_license option "%"', v_opt
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Options: billing_cycle, trial_days, custom_limits, starts_at, expires_at, notes, metadata.';
        END IF;
    END LOOP;

    SELECT o.id, o.deleted_at INTO v_org FROM celaest.organizations AS o WHERE o.id = p_org_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'organization % does not exist', p_org_id USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_org.deleted_at IS NOT NULL THEN
        RAISE EXCEPTION 'organization % is deleted', p_org_id
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Soft-deleted at %s.', v_org.deleted_at);
    END IF;

    SELECT p.id, p.code, p.is_active INTO v_plan FROM celaest.subscription_plans AS p WHERE p.code = p_plan_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown plan code "%"', p_plan_code
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'See celaest.subscription_plans for the plan codes.';
    END IF;
    IF NOT v_plan.is_active THEN
        RAISE EXCEPTION 'plan "%" is not active', p_plan_code
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Retired plans cannot be sold; choose an active plan.';
    END IF;

    IF v_opts ? 'billing_cycle' THEN
        IF jsonb_typeof(v_opts -> 'billing_cycle') <> 'string'
           OR NOT (v_opts ->> 'billing_cycle') = ANY (enum_range(NULL::celaest.billing_cycle)::text[]) THEN
            RAISE EXCEPTION 'invalid billing_cycle %', v_opts -> 'billing_cycle'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use monthly, quarterly, yearly, lifetime or usage_based.';
        END IF;
        v_cycle := (v_opts ->> 'billing_cycle')::celaest.billing_cycle;
    END IF;

    IF v_opts ? 'trial_days' THEN
        IF jsonb_typeof(v_opts -> 'trial_days') <> 'number' THEN
            RAISE EXCEPTION 'trial_days must be a whole number of days, not %', v_opts -> 'trial_days'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_num := (v_opts ->> 'trial_days')::numeric;
        IF v_num <> trunc(v_num) OR v_num < 0 OR v_num > 3650 THEN
            RAISE EXCEPTION 'trial_days must be a whole number from 0 to 3650, not %', v_opts -> 'trial_days'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_trial_days := v_num::integer;
    END IF;

    IF v_opts ? 'custom_limits' THEN
        v_custom := celaest.validate_limits(v_opts -> 'custom_limits', 'custom_limits');
    END IF;

    FOREACH v_key IN ARRAY ARRAY['starts_at', 'expires_at'] LOOP
        CONTINUE WHEN NOT v_opts ? v_key;
        IF jsonb_typeof(v_opts -> v_key) <> 'string' THEN
            RAISE EXCEPTION '% must be a timestamp string, not %', v_key, v_opts -> v_key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        BEGIN
            v_ts := (v_opts ->> v_key)::timestamptz;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION '% is not a valid timestamp: %', v_key, v_opts -> v_key
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use ISO 8601, e.g. "2026-01-31T00:00:00Z".';
        END;
        IF NOT isfinite(v_ts) THEN
            RAISE EXCEPTION '% must be a finite timestamp, not %', v_key, v_opts -> v_key
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Leave expires_at out for a license that does not expire; starts_at defaults to now.';
        END IF;
        IF v_key = 'starts_at' THEN
            v_starts := v_ts;
        ELSE
            v_expires := v_ts;
        END IF;
    END LOOP;
    IF v_starts > now() THEN
        RAISE EXCEPTION 'starts_at % is in the future', v_starts
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Issue the license when it starts; starts_at may be now or in the past.';
    END IF;
    IF v_expires IS NOT NULL AND v_expires <= v_starts THEN
        RAISE EXCEPTION 'expires_at % is not after starts_at %', v_expires, v_starts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_expires IS NOT NULL AND v_expires <= now() THEN
        RAISE EXCEPTION 'expires_at % has already passed', v_expires
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF v_trial_days > 0 THEN
        v_status := 'trial';
        v_trial_ends := v_starts + make_interval(hours => 24 * v_trial_days);
        IF v_trial_ends <= now() THEN
            RAISE EXCEPTION 'a trial of % days from % would already have ended', v_trial_days, v_starts
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        v_status := 'active';
    END IF;

    SELECT l.id, l.status INTO v_existing
      FROM celaest.licenses AS l
     WHERE l.organization_id = p_org_id AND l.status IN ('trial', 'active', 'suspended');
    IF FOUND THEN
        RAISE EXCEPTION 'organization % already has a license in force', p_org_id
            USING ERRCODE = 'unique_violation',
                  DETAIL = format('License %s is %s.', v_existing.id, v_existing.status),
                  HINT = 'An organization holds one license at a time: cancel or expire it first (celaest.set_license_status).';
    END IF;

    v_len := celaest.billing_period_length(v_cycle);
    v_secret := celaest.generate_license_key();
    BEGIN
        INSERT INTO celaest.licenses
            (organization_id, plan_id, license_key, license_key_hash, status, starts_at, expires_at,
             trial_ends_at, billing_cycle, next_billing_date, custom_limits,
             current_period_start, current_period_end, notes, metadata)
        VALUES
            (p_org_id, v_plan.id, v_secret, encode(sha256(convert_to(v_secret, 'UTF8')), 'hex'), v_status,
             v_starts, v_expires, v_trial_ends, v_cycle,
             ((v_starts + v_len) AT TIME ZONE 'UTC')::date, v_custom,
             v_starts, v_starts + v_len, v_opts ->> 'notes', COALESCE(v_opts -> 'metadata', '{}'))
        RETURNING * INTO v_lic;
    EXCEPTION WHEN unique_violation THEN
        -- A concurrent issue_license for the same organization won the race.
        IF EXISTS (SELECT 1 FROM celaest.licenses AS l
                    WHERE l.organization_id = p_org_id AND l.status IN ('trial', 'active', 'suspended')) THEN
            RAISE EXCEPTION 'organization % already has a license in force', p_org_id
                USING ERRCODE = 'unique_violation',
                      HINT = 'An organization holds one license at a time: cancel or expire it first (celaest.set_license_status).';
        END IF;
        RAISE;
    END;

    RETURN jsonb_build_object(
        'license_id', v_lic.id,
        'license_key', v_lic.license_key,
        'status', v_lic.status,
        'organization_id', v_lic.organization_id,
        'plan', v_plan.code,
        'billing_cycle', v_lic.billing_cycle,
        'starts_at', v_lic.starts_at,
        'expires_at', v_lic.expires_at,
        'trial_ends_at', v_lic.trial_ends_at,
        'current_period_start', v_lic.current_period_start,
        'current_period_end', v_lic.current_period_end,
        'limits', celaest.effective_limits(v_lic.id));
END;
$$;
COMMENT ON FUNCTION celaest.issue_license(uuid, text, jsonb) IS
    'Issues a license of plan p_plan_code to the organization and returns {license_id, license_key, status, organization_id, plan, billing_cycle, starts_at, expires_at, trial_ends_at, current_period_start, current_period_end, limits}. Options: billing_cycle (default monthly), trial_days (> 0: status trial, trial_ends_at = starts_at + days; else active), custom_limits, starts_at (now or past; the first billing period opens there), expires_at, notes, metadata. The key comes from generate_license_key(); only its SHA-256 is used for lookups. 23505 when the organization already has a license in force; 22023 for an unknown or inactive plan, unknown option, malformed custom_limits or bad dates.';

CREATE FUNCTION celaest.set_license_status(p_license_id uuid, p_status celaest.license_status,
                                           p_reason text DEFAULT NULL,
                                           p_expires_at timestamptz DEFAULT NULL)
RETURNS celaest.licenses
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r         celaest.licenses;
    v_new     celaest.licenses;
    v_legal   text[];
    v_expires timestamptz;
    v_len     interval;
    v_change  jsonb;
BEGIN
    IF p_license_id IS NULL OR p_status IS NULL THEN
        RAISE EXCEPTION 'license id and status must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO r FROM celaest.licenses AS l WHERE l.id = p_license_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'license % does not exist', p_license_id USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_expires_at IS NOT NULL AND p_status <> 'active' THEN
        RAISE EXCEPTION 'a new expires_at applies only to a transition to active, not to %', p_status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    v_legal := CASE r.status
        WHEN 'trial'     THEN ARRAY['active', 'expired', 'cancelled']
        WHEN 'active'    THEN ARRAY['suspended', 'expired', 'cancelled']
        WHEN 'suspended' THEN ARRAY['active', 'cancelled', 'expired']
        WHEN 'expired'   THEN ARRAY['active']
        ELSE ARRAY[]::text[]
    END;

    IF r.status = p_status THEN
        -- Idempotent, except that an active license may get a new expiry (renewal).
        IF p_expires_at IS NULL THEN
            RETURN r;
        END IF;
    ELSIF r.status = 'cancelled' THEN
        RAISE EXCEPTION 'license % cannot go from % to %', p_license_id, r.status, p_status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'A cancelled license is final.',
                  HINT = 'Issue a new license with celaest.issue_license().';
    ELSIF NOT p_status::text = ANY (v_legal) THEN
        RAISE EXCEPTION 'license % cannot go from % to %', p_license_id, r.status, p_status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('From %s a license may go to: %s.', r.status, array_to_string(v_legal, ', '));
    END IF;

    v_new := r;
    v_new.status := p_status;
    v_change := jsonb_build_object('from', r.status, 'to', p_status, 'reason', p_reason, 'at', now());

    IF p_status = 'active' THEN
        v_expires := COALESCE(p_expires_at, r.expires_at);
        IF v_expires IS NOT NULL AND v_expires <= now() THEN
            RAISE EXCEPTION 'license % cannot become active: it expires at %, which has passed', p_license_id, v_expires
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass a future expiry: celaest.set_license_status(id, ''active'', reason, p_expires_at).';
        END IF;
        v_new.expires_at := v_expires;
        v_new.suspended_at := NULL;
        IF r.status IN ('trial', 'expired') THEN
            -- Conversion or renewal: the paid period starts now. A trial's open
            -- period is closed here; an expired license's was closed at expiry.
            IF r.status = 'trial' THEN
                INSERT INTO celaest.license_usage_log
                    (license_id, organization_id, metric, quantity, period_start, period_end, metadata)
                VALUES (r.id, r.organization_id, 'ai_requests', r.ai_requests_used, r.current_period_start,
                        GREATEST(r.current_period_start, now()),
                        jsonb_build_object('event', 'period_close', 'reason', 'activated',
                                           'billing_cycle', r.billing_cycle));
            END IF;
            v_len := celaest.billing_period_length(r.billing_cycle);
            v_new.current_period_start := now();
            v_new.current_period_end := now() + v_len;
            v_new.next_billing_date := ((now() + v_len) AT TIME ZONE 'UTC')::date;
            v_new.ai_requests_used := 0;
        END IF;
        IF r.status = 'expired' AND EXISTS (
               SELECT 1 FROM celaest.licenses AS l
                WHERE l.organization_id = r.organization_id AND l.id <> r.id
                  AND l.status IN ('trial', 'active', 'suspended')) THEN
            RAISE EXCEPTION 'organization % already has a license in force', r.organization_id
                USING ERRCODE = 'unique_violation',
                      HINT = 'Renew only when the organization has no other license in force.';
        END IF;
    ELSIF p_status = 'suspended' THEN
        v_new.suspended_at := now();
    ELSIF p_status IN ('cancelled', 'expired') THEN
        IF p_status = 'cancelled' THEN
            v_new.cancelled_at := now();
        END IF;
        INSERT INTO celaest.license_usage_log
            (license_id, organization_id, metric, quantity, period_start, period_end, metadata)
        VALUES (r.id, r.organization_id, 'ai_requests', r.ai_requests_used, r.current_period_start,
                GREATEST(r.current_period_start, LEAST(r.current_period_end, now())),
                jsonb_build_object('event', 'period_close', 'reason', p_status,
                                   'billing_cycle', r.billing_cycle));
    END IF;
    v_new.metadata := r.metadata || jsonb_build_object('last_status_change', v_change);

    BEGIN
        UPDATE celaest.licenses AS l
           SET status               = v_new.status,
               expires_at           = v_new.expires_at,
               suspended_at         = v_new.suspended_at,
               cancelled_at         = v_new.cancelled_at,
               current_period_start = v_new.current_period_start,
               current_period_end   = v_new.current_period_end,
               next_billing_date    = v_new.next_billing_date,
               ai_requests_used     = v_new.ai_requests_used,
               metadata             = v_new.metadata
         WHERE l.id = r.id
        RETURNING * INTO v_new;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'organization % already has a license in force', r.organization_id
            USING ERRCODE = 'unique_violation',
                  HINT = 'Renew only when the organization has no other license in force.';
    END;
    RETURN v_new;
END;
$$;
COMMENT ON FUNCTION celaest.set_license_status(uuid, celaest.license_status, text, timestamptz) IS
    'Moves a license to p_status along the legal transitions (trial -> active/expired/cancelled; active -> suspended/expired/cancelled; suspended -> active/cancelled/expired; expired -> active on renewal; cancelled is final) and returns the new row; the same status is a no-op. Stamps suspended_at/cancelled_at, records {from, to, reason, at} in metadata.last_status_change (so the automatic audit entry carries the reason), closes the billing period into license_usage_log on expiry, cancellation and trial conversion, and opens a fresh period on conversion/renewal. p_expires_at: new expiry for a transition to active (required when the old one has passed). 55000 for an illegal transition, 22023 for an unknown license, 23505 if renewing while another license is in force.';

CREATE FUNCTION celaest.refresh_licenses()
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r       celaest.licenses;
    v_id    uuid;
    v_end   timestamptz;
    v_count integer := 0;
BEGIN
    -- 1. Lapsed trials and licenses expire (their open period is closed at the
    --    moment they lapsed). Rows locked by a running transaction are left for the
    --    next pass: the enforcement points already refuse them by date.
    FOR r IN SELECT * FROM celaest.licenses AS l
              WHERE l.status IN ('trial', 'active', 'suspended')
                AND (l.expires_at <= now() OR (l.status = 'trial' AND l.trial_ends_at <= now()))
              ORDER BY l.id
                FOR UPDATE SKIP LOCKED
    LOOP
        v_end := LEAST(r.expires_at, CASE WHEN r.status = 'trial' THEN r.trial_ends_at END);
        INSERT INTO celaest.license_usage_log
            (license_id, organization_id, metric, quantity, period_start, period_end, metadata)
        VALUES (r.id, r.organization_id, 'ai_requests', r.ai_requests_used, r.current_period_start,
                GREATEST(r.current_period_start, LEAST(r.current_period_end, v_end)),
                jsonb_build_object('event', 'period_close', 'reason', 'expired',
                                   'billing_cycle', r.billing_cycle));
        UPDATE celaest.licenses AS l
           SET status = 'expired',
               metadata = l.metadata || jsonb_build_object('last_status_change', jsonb_build_object(
                   'from', r.status, 'to', 'expired',
                   'reason', CASE WHEN r.status = 'trial' AND r.trial_ends_at <= now()
                                  THEN 'trial ended' ELSE 'expired' END,
                   'at', v_end))
         WHERE l.id = r.id;
        v_count := v_count + 1;
    END LOOP;

    -- 2. Billing periods that have ended roll over.
    FOR v_id IN SELECT l.id FROM celaest.licenses AS l
                 WHERE l.status IN ('trial', 'active', 'suspended')
                   AND l.billing_cycle <> 'lifetime'
                   AND (l.current_period_end IS NULL OR l.current_period_start IS NULL
                        OR l.current_period_end <= now())
                 ORDER BY l.id
                   FOR UPDATE SKIP LOCKED
    LOOP
        IF celaest.roll_license_period(v_id) THEN
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION celaest.refresh_licenses() IS
    'Housekeeping (the background worker calls it): expires lapsed trials and licenses (closing their open period into license_usage_log), then rolls every ended billing period by billing_cycle (roll_license_period). Skips rows locked by other transactions (next pass). Returns the number of licenses changed.';
-- CELAEST — module 26: license enforcement points.
--
-- What is enforced, and where (API.md "Enforced limits"):
--   max_users                  BEFORE trigger on users_profile: a row that becomes a
--                              live member of an organization (INSERT, re-activation
--                              by clearing deleted_at, or a move to another
--                              organization) is refused with LC010 when the
--                              organization's license in force is full. Without a
--                              license in force nothing is checked.
--   max_ai_requests_per_month  reserve_ai_request() below (the AI-call glue), or
--                              consume_quota() (module 25).
--   max_concurrent_tasks       BEFORE trigger on processed_tasks (module 76, after the
--                              table exists): a task entering processing or retrying
--                              from any other state (or inserted so) is refused with
--                              LC010 when the organization already has that many in
--                              flight, or LC001-LC004 when its license is unusable.
--   max_batch_size             check_batch() below (for submit_batch).
--   max_storage_gb             consume_quota(org, 'storage_gb', bytes) is exact; the
--                              BEFORE UPDATE OF storage_used_bytes trigger on licenses
--                              refuses any other write that would go over the limit.
-- Plus two validation triggers: subscription_plans.limits and licenses.custom_limits
-- must be objects of known limit keys with integer values >= -1 (22023).
--
-- API for the AI-call glue and the batch runner
-- --------------------------------------------
--   celaest.reserve_ai_request(p_org_id uuid, p_user_id uuid, p_task_id uuid DEFAULT NULL)
--       RETURNS uuid  -- the license charged (for processed_tasks.license_id)
--     Charges one AI request to the organization's license in the current billing
--     period, atomically, and logs it in license_usage_log (task_id, user_id;
--     p_task_id must be an existing processed_tasks row, or NULL). Raises LC001 (no
--     license in force), LC002 (suspended), LC003 (expired / trial expired), LC004
--     (cancelled), LC010 (quota used up; DETAIL "limit: L, used: U, requested: 1"),
--     22004 (NULL organization). A refusal charges nothing; a rollback of the calling
--     transaction undoes the charge and the log row.
--   celaest.check_batch(p_org_id uuid, p_inputs integer, p_reserve boolean DEFAULT false)
--       RETURNS uuid  -- the license
--     For submit_batch: raises LC001-LC004 as above, LC010 when p_inputs exceeds
--     max_batch_size, and LC010 when fewer than p_inputs AI requests remain in the
--     period. With p_reserve the p_inputs requests are charged at once (atomically,
--     exactly as consume_quota, logged as one license_usage_log row with
--     metadata.event = batch_reserve; the runner then must not charge each task again
--     and should release_quota() the ones that never reach a provider); without it
--     nothing is charged and each task is charged by reserve_ai_request when it runs.
--     22023 for a negative or NULL p_inputs.
--   celaest.reserve_counted(p_org_id uuid, p_key text, p_amount bigint, p_strict boolean,
--                           p_exclude_id uuid DEFAULT NULL) RETURNS bigint
--     The check behind the triggers (max_users, max_concurrent_tasks, max_batch_size):
--     returns the room left after p_amount, -1 if unlimited; LC010 if over.
--
-- Locks and how long they are held (read this before calling from a long transaction)
--   * An AI-request charge updates the license row; the row lock is held until the
--     calling transaction ends, so a second charge for the same organization waits
--     for it. Charge late in a transaction, or commit the charge (and the task's
--     'processing' state) in a short transaction of its own before calling the
--     provider, as the batch runner should. Other organizations never wait.
--   * users / concurrent-task checks take a transaction-level advisory lock per
--     (organization, limit) and count committed rows; concurrent admissions to the
--     same organization queue on it until the admitting transaction ends. They do
--     not block AI-request charges.
--   * Exactness holds in READ COMMITTED (each statement sees what the previous lock
--     holder committed) and SERIALIZABLE. Counting under REPEATABLE READ would use a
--     stale snapshot, so the counted checks refuse to run there (0A000) rather than
--     admit past the limit; counters (consume_quota) are exact in every isolation
--     level (a concurrent update in REPEATABLE READ is a 40001, as usual).

-- ---------------------------------------------------------------------------
-- Counted limits: users, tasks in flight, batch size
-- ---------------------------------------------------------------------------

CREATE FUNCTION celaest.reserve_counted(p_org_id uuid, p_key text, p_amount bigint, p_strict boolean,
                                        p_exclude_id uuid DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_lic  record;
    v_used bigint;
BEGIN
    IF p_org_id IS NULL THEN
        RAISE EXCEPTION 'organization id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_key IS NULL OR p_key NOT IN ('max_users', 'max_concurrent_tasks', 'max_batch_size') THEN
        RAISE EXCEPTION 'reserve_counted: "%" is not a counted limit', p_key
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Counted limits: max_users, max_concurrent_tasks, max_batch_size.';
    END IF;
    IF p_amount IS NULL OR p_amount < 0 THEN
        RAISE EXCEPTION 'amount must be zero or positive, not %', COALESCE(p_amount::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_strict THEN
        PERFORM celaest.assert_license_usable(p_org_id);            -- LC001-LC004
    END IF;

    SELECT l.id,
           celaest.limit_value(p_key, p.limits, l.custom_limits,
                               CASE WHEN l.status = 'trial' THEN celaest.trial_limits() END,
                               l.billing_cycle = 'usage_based') AS lim
      INTO v_lic
      FROM celaest.licenses AS l
      JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
     WHERE l.organization_id = p_org_id
       AND l.status IN ('trial', 'active', 'suspended');
    IF NOT FOUND OR v_lic.lim = -1 THEN
        RETURN -1;                      -- no license in force (p_strict off), or unlimited
    END IF;

    IF p_key = 'max_batch_size' THEN
        IF p_amount > v_lic.lim THEN
            RAISE EXCEPTION 'a batch of % inputs exceeds max_batch_size of organization %', p_amount, p_org_id
                USING ERRCODE = 'LC010',
                      DETAIL = format('limit: %s, used: 0, requested: %s', v_lic.lim, p_amount),
                      HINT = 'Split the inputs into smaller batches.';
        END IF;
        RETURN v_lic.lim - p_amount;
    END IF;

    IF current_setting('transaction_isolation') = 'repeatable read' THEN
        RAISE EXCEPTION '% of organization % cannot be checked exactly under REPEATABLE READ', p_key, p_org_id
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A REPEATABLE READ snapshot does not see rows that concurrent transactions commit, so a count would let the limit be exceeded.',
                  HINT = 'Do this in a READ COMMITTED or SERIALIZABLE transaction.';
    END IF;
    -- One admission at a time per organization and limit, until this transaction
    -- ends; the count below then sees every admission committed before it.
    PERFORM pg_advisory_xact_lock(hashtextextended('celaest.' || p_key || ':' || p_org_id::text, 0));

    IF p_key = 'max_users' THEN
        SELECT count(*) INTO v_used FROM celaest.users_profile AS u
         WHERE u.organization_id = p_org_id AND u.deleted_at IS NULL
           AND u.id IS DISTINCT FROM p_exclude_id;
    ELSE
        SELECT count(*) INTO v_used FROM celaest.processed_tasks AS t
         WHERE t.organization_id = p_org_id AND t.status IN ('processing', 'retrying')
           AND t.id IS DISTINCT FROM p_exclude_id;
    END IF;
    IF v_used + p_amount > v_lic.lim THEN
        RAISE EXCEPTION 'organization % has reached its % limit', p_org_id, p_key
            USING ERRCODE = 'LC010',
                  DETAIL = format('limit: %s, used: %s, requested: %s', v_lic.lim, v_used, p_amount),
                  HINT = CASE WHEN p_key = 'max_users'
                              THEN 'Soft-delete a user, or raise max_users (custom_limits or a larger plan).'
                              ELSE 'Wait for a running task to finish, or raise max_concurrent_tasks.' END;
    END IF;
    RETURN v_lic.lim - v_used - p_amount;
END;
$$;
COMMENT ON FUNCTION celaest.reserve_counted(uuid, text, bigint, boolean, uuid) IS
    'Admission check for a counted limit (max_users: live users; max_concurrent_tasks: tasks processing or retrying; max_batch_size: p_amount itself) against the license in force: returns the room left after p_amount (-1 unlimited) or raises LC010 (DETAIL limit/used/requested). p_strict: refuse an unusable license (LC001-LC004); otherwise no license in force means no check. Serialised per organization and limit by an advisory lock held to the end of the transaction; 0A000 under REPEATABLE READ. p_exclude_id leaves the row being admitted out of the count.';
-- Not for application roles: it takes per-organization locks and reveals counts of any
-- organization. The triggers below (SECURITY DEFINER), run_prompt/submit_batch and the
-- workers (as the owner) call it.
REVOKE EXECUTE ON FUNCTION celaest.reserve_counted(uuid, text, bigint, boolean, uuid) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Helpers for the AI-call glue and the batch runner
-- ---------------------------------------------------------------------------

-- Hot path (one per AI call): no SET clause, schema-qualified names (module 25 header).
CREATE FUNCTION celaest.reserve_ai_request(p_org_id uuid, p_user_id uuid, p_task_id uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_license uuid;
    v_start   timestamptz;
    v_end     timestamptz;
BEGIN
    -- Same statement as consume_quota's fast path, for one request.
    UPDATE celaest.licenses AS l
       SET ai_requests_used = l.ai_requests_used + 1
      FROM celaest.subscription_plans AS p
     WHERE l.organization_id = p_org_id
       AND l.status = 'active'
       AND p.id = l.plan_id
       AND (l.expires_at IS NULL OR l.expires_at > pg_catalog.now())
       AND (l.current_period_end IS NULL OR l.current_period_end > pg_catalog.now())
       AND 1 <= COALESCE(NULLIF(celaest.limit_value('max_ai_requests_per_month', p.limits, l.custom_limits,
                                    NULL, l.billing_cycle = 'usage_based'), -1),
                         9223372036854775807) - l.ai_requests_used
    RETURNING l.id, l.current_period_start, l.current_period_end
         INTO v_license, v_start, v_end;
    IF v_license IS NULL THEN
        SELECT q.license_id, q.period_start, q.period_end INTO v_license, v_start, v_end
          FROM celaest.take_quota(p_org_id, 'ai_requests', 1) AS q;      -- raises, or charges
    END IF;
    INSERT INTO celaest.license_usage_log
        (license_id, organization_id, metric, quantity, period_start, period_end, task_id, user_id)
    VALUES (v_license, p_org_id, 'ai_requests', 1, v_start, v_end, p_task_id, p_user_id);
    RETURN v_license;
END;
$$;
COMMENT ON FUNCTION celaest.reserve_ai_request(uuid, uuid, uuid) IS
    'For the AI-call glue: charges one AI request to the organization''s license in the current billing period (atomic, exact under concurrency), logs it in license_usage_log with p_task_id/p_user_id, and returns the license id. Raises LC001/LC002/LC003/LC004 for the license, LC010 when the period''s quota is used up; a refusal charges nothing and a rollback undoes the charge. Holds the license row lock until the transaction ends.';

CREATE FUNCTION celaest.check_batch(p_org_id uuid, p_inputs integer, p_reserve boolean DEFAULT false)
RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_license uuid;
    v_check   jsonb;
    v_start   timestamptz;
    v_end     timestamptz;
BEGIN
    IF p_inputs IS NULL OR p_inputs < 0 THEN
        RAISE EXCEPTION 'number of batch inputs must be zero or positive, not %', COALESCE(p_inputs::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_license := celaest.assert_license_usable(p_org_id);                 -- 22004, LC001-LC004
    PERFORM celaest.reserve_counted(p_org_id, 'max_batch_size', p_inputs, true);  -- LC010
    IF p_reserve THEN
        SELECT q.period_start, q.period_end INTO v_start, v_end
          FROM celaest.take_quota(p_org_id, 'ai_requests', p_inputs) AS q;   -- LC010, atomic
        IF p_inputs > 0 THEN
            INSERT INTO celaest.license_usage_log
                (license_id, organization_id, metric, quantity, period_start, period_end, metadata)
            VALUES (v_license, p_org_id, 'ai_requests', p_inputs, v_start, v_end,
                    '{"event": "batch_reserve"}');
        END IF;
    ELSE
        v_check := celaest.check_limit(p_org_id, 'ai_requests', p_inputs);
        IF NOT (v_check ->> 'allowed')::boolean THEN
            IF v_check ->> 'code' <> 'QUOTA_EXCEEDED' THEN
                PERFORM celaest.assert_license_usable(p_org_id);      -- changed meanwhile: say why
            END IF;
            RAISE EXCEPTION 'a batch of % inputs exceeds the AI requests left to organization %', p_inputs, p_org_id
                USING ERRCODE = 'LC010',
                      DETAIL = format('limit: %s, used: %s, requested: %s',
                                      v_check ->> 'limit', v_check ->> 'used', p_inputs),
                      HINT = 'Submit fewer inputs, or wait for the billing period to roll over.';
        END IF;
    END IF;
    RETURN v_license;
END;
$$;
COMMENT ON FUNCTION celaest.check_batch(uuid, integer, boolean) IS
    'For submit_batch: returns the organization''s usable license, or raises LC001-LC004 for the license, LC010 when p_inputs exceeds max_batch_size or the AI requests left in the period (DETAIL limit/used/requested). p_reserve charges the p_inputs requests at once (atomic, one license_usage_log row); otherwise nothing is charged. 22023 for a negative p_inputs.';

-- ---------------------------------------------------------------------------
-- Triggers
-- ---------------------------------------------------------------------------

-- SECURITY DEFINER: the admission must count every member, whatever the inserting
-- role may see, and reserve_counted is not granted to PUBLIC.
CREATE FUNCTION celaest.enforce_max_users()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The WHEN clause admits only rows that end up live members of an organization.
    IF TG_OP = 'UPDATE' AND OLD.deleted_at IS NULL
       AND OLD.organization_id IS NOT DISTINCT FROM NEW.organization_id THEN
        RETURN NEW;                     -- already counted
    END IF;
    PERFORM celaest.reserve_counted(NEW.organization_id, 'max_users', 1, false, NEW.id);
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION celaest.enforce_max_users() IS
    'BEFORE INSERT/UPDATE trigger on users_profile: a row becoming a live member of an organization (new, undeleted or moved) must fit max_users of the organization''s license in force (LC010). No license in force: no check.';

REVOKE EXECUTE ON FUNCTION celaest.enforce_max_users() FROM PUBLIC;

CREATE TRIGGER users_profile_enforce_max_users
    BEFORE INSERT OR UPDATE OF organization_id, deleted_at ON celaest.users_profile
    FOR EACH ROW
    WHEN (NEW.organization_id IS NOT NULL AND NEW.deleted_at IS NULL)
    EXECUTE FUNCTION celaest.enforce_max_users();

CREATE FUNCTION celaest.enforce_storage_limit()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_gb bigint;
BEGIN
    SELECT celaest.limit_value('max_storage_gb', p.limits, NEW.custom_limits,
                               CASE WHEN NEW.status = 'trial' THEN celaest.trial_limits() END, false)
      INTO v_gb
      FROM celaest.subscription_plans AS p WHERE p.id = NEW.plan_id;
    IF v_gb <> -1 AND NEW.storage_used_bytes > v_gb * 1073741824 THEN
        RAISE EXCEPTION 'storage of organization % would exceed max_storage_gb', NEW.organization_id
            USING ERRCODE = 'LC010',
                  DETAIL = format('limit: %s, used: %s, requested: %s', v_gb * 1073741824,
                                  OLD.storage_used_bytes, NEW.storage_used_bytes - OLD.storage_used_bytes),
                  HINT = 'Storage is counted in bytes against max_storage_gb GiB; free some, or raise the limit.';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION celaest.enforce_storage_limit() IS
    'BEFORE UPDATE OF storage_used_bytes trigger on licenses: an increase beyond max_storage_gb (GiB, as bytes) is refused with LC010.';

CREATE TRIGGER licenses_enforce_storage_limit
    BEFORE UPDATE OF storage_used_bytes ON celaest.licenses
    FOR EACH ROW
    WHEN (NEW.storage_used_bytes > OLD.storage_used_bytes)
    EXECUTE FUNCTION celaest.enforce_storage_limit();

CREATE FUNCTION celaest.check_limits_column()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'subscription_plans' THEN
        PERFORM celaest.validate_limits(NEW.limits, format('limits of plan "%s"', NEW.code));
    ELSE
        PERFORM celaest.validate_limits(NEW.custom_limits, 'custom_limits');
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION celaest.check_limits_column() IS
    'BEFORE INSERT/UPDATE trigger on subscription_plans (limits) and licenses (custom_limits): the limits must be an object of known limit keys with integer values >= -1 (validate_limits, 22023).';

CREATE TRIGGER subscription_plans_check_limits
    BEFORE INSERT OR UPDATE OF limits ON celaest.subscription_plans
    FOR EACH ROW EXECUTE FUNCTION celaest.check_limits_column();
CREATE TRIGGER licenses_check_custom_limits
    BEFORE INSERT OR UPDATE OF custom_limits ON celaest.licenses
    FOR EACH ROW
    WHEN (NEW.custom_limits IS NOT NULL)
    EXECUTE FUNCTION celaest.check_limits_column();
-- CELAEST — module 30: AI mesh (ai_models, ai_api_pool, prompts_master).

-- ---------------------------------------------------------------------------
-- ai_models
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.ai_models (
    id                 UUID            NOT NULL DEFAULT uuid_generate_v4(),
    provider           celaest.ai_provider NOT NULL,
    model_id           VARCHAR(100)    NOT NULL,
    display_name       VARCHAR(200)    NOT NULL,
    capabilities       JSONB           NOT NULL DEFAULT '{"text_generation": true, "code_generation": false, "vision": false, "function_calling": false, "streaming": false, "json_mode": false}',
    max_tokens_input   INTEGER,
    max_tokens_output  INTEGER,
    context_window     INTEGER,
    cost_per_1k_input  NUMERIC(10,6),
    cost_per_1k_output NUMERIC(10,6),
    is_active          BOOLEAN         NOT NULL DEFAULT TRUE,
    is_default         BOOLEAN         NOT NULL DEFAULT FALSE,
    priority           INTEGER         NOT NULL DEFAULT 0,
    notes              TEXT,
    metadata           JSONB           NOT NULL DEFAULT '{}',
    created_at         TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    updated_at         TIMESTAMPTZ     NOT NULL DEFAULT NOW(),

    CONSTRAINT ai_models_pkey PRIMARY KEY (id),
    CONSTRAINT ai_models_provider_model_id_key UNIQUE (provider, model_id),
    CONSTRAINT ai_models_model_id_not_blank CHECK (btrim(model_id) <> ''),
    CONSTRAINT ai_models_capabilities_is_object CHECK (jsonb_typeof(capabilities) = 'object'),
    CONSTRAINT ai_models_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT ai_models_max_tokens_input_positive CHECK (max_tokens_input > 0),
    CONSTRAINT ai_models_max_tokens_output_positive CHECK (max_tokens_output > 0),
    CONSTRAINT ai_models_context_window_positive CHECK (context_window > 0),
    CONSTRAINT ai_models_cost_per_1k_input_nonneg CHECK (cost_per_1k_input >= 0),
    CONSTRAINT ai_models_cost_per_1k_output_nonneg CHECK (cost_per_1k_output >= 0)
    -- priority is unconstrained: it only orders fallback, and a negative value is
    -- the natural way to rank a model below the default 0.
);

-- At most one active default model (routing falls back to it).
CREATE UNIQUE INDEX ai_models_one_default ON celaest.ai_models ((true))
    WHERE is_default AND is_active;

CREATE TRIGGER ai_models_set_updated_at
    BEFORE UPDATE ON celaest.ai_models
    FOR EACH ROW EXECUTE FUNCTION celaest.set_updated_at();

COMMENT ON TABLE celaest.ai_models IS
    'Catalog of AI models with their capabilities, limits and costs.';
COMMENT ON COLUMN celaest.ai_models.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.ai_models.provider IS 'AI provider.';
COMMENT ON COLUMN celaest.ai_models.model_id IS 'Provider''s model id (unique per provider).';
COMMENT ON COLUMN celaest.ai_models.display_name IS 'Display name.';
COMMENT ON COLUMN celaest.ai_models.capabilities IS
    'Model capabilities (JSON object): text_generation, code_generation, vision, function_calling, streaming, json_mode.';
COMMENT ON COLUMN celaest.ai_models.max_tokens_input IS 'Maximum input tokens.';
COMMENT ON COLUMN celaest.ai_models.max_tokens_output IS 'Maximum output tokens.';
COMMENT ON COLUMN celaest.ai_models.context_window IS 'Context window, in tokens.';
COMMENT ON COLUMN celaest.ai_models.cost_per_1k_input IS 'Cost per 1K input tokens (USD).';
COMMENT ON COLUMN celaest.ai_models.cost_per_1k_output IS 'Cost per 1K output tokens (USD).';
COMMENT ON COLUMN celaest.ai_models.is_active IS 'Whether the model is active.';
COMMENT ON COLUMN celaest.ai_models.is_default IS 'Whether this is the default model (at most one active default).';
COMMENT ON COLUMN celaest.ai_models.priority IS 'Fallback priority (higher first).';
COMMENT ON COLUMN celaest.ai_models.notes IS 'Notes.';
COMMENT ON COLUMN celaest.ai_models.metadata IS 'Additional data (JSON object).';
COMMENT ON COLUMN celaest.ai_models.created_at IS 'Creation time.';
COMMENT ON COLUMN celaest.ai_models.updated_at IS 'Last update time (maintained by trigger).';

-- ---------------------------------------------------------------------------
-- ai_api_pool
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.ai_api_pool (
    id                   UUID            NOT NULL DEFAULT uuid_generate_v4(),
    provider             celaest.ai_provider NOT NULL,
    key_name             VARCHAR(100)    NOT NULL,
    key_value_encrypted  BYTEA           NOT NULL,
    key_hint             VARCHAR(10),
    is_active            BOOLEAN         NOT NULL DEFAULT TRUE,
    is_healthy           BOOLEAN         NOT NULL DEFAULT TRUE,
    last_health_check    TIMESTAMPTZ,
    consecutive_failures INTEGER         NOT NULL DEFAULT 0,
    rate_limit_rpm       INTEGER,
    rate_limit_tpm       INTEGER,
    rate_limit_rpd       INTEGER,
    usage_count          BIGINT          NOT NULL DEFAULT 0,
    tokens_used          BIGINT          NOT NULL DEFAULT 0,
    last_used_at         TIMESTAMPTZ,
    priority             INTEGER         NOT NULL DEFAULT 0,
    weight               INTEGER         NOT NULL DEFAULT 100,
    notes                TEXT,
    metadata             JSONB           NOT NULL DEFAULT '{}',
    created_at           TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    updated_at           TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    expires_at           TIMESTAMPTZ,

    CONSTRAINT ai_api_pool_pkey PRIMARY KEY (id),
    CONSTRAINT ai_api_pool_key_name_not_blank CHECK (btrim(key_name) <> ''),
    CONSTRAINT ai_api_pool_consecutive_failures_nonneg CHECK (consecutive_failures >= 0),
    CONSTRAINT ai_api_pool_rate_limit_rpm_positive CHECK (rate_limit_rpm > 0),
    CONSTRAINT ai_api_pool_rate_limit_tpm_positive CHECK (rate_limit_tpm > 0),
    CONSTRAINT ai_api_pool_rate_limit_rpd_positive CHECK (rate_limit_rpd > 0),
    CONSTRAINT ai_api_pool_usage_count_nonneg CHECK (usage_count >= 0),
    CONSTRAINT ai_api_pool_tokens_used_nonneg CHECK (tokens_used >= 0),
    -- weight 0 is allowed: the key stays configured but takes no share of the load.
    CONSTRAINT ai_api_pool_weight_nonneg CHECK (weight >= 0),
    CONSTRAINT ai_api_pool_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
    -- priority is unconstrained: it only orders selection (higher first), and a
    -- negative value ranks a backup key below the default 0.
);

-- Key selection: healthy active keys of a provider, highest priority first.
CREATE INDEX ai_api_pool_selectable_idx ON celaest.ai_api_pool (provider, priority DESC)
    WHERE is_active AND is_healthy;

CREATE TRIGGER ai_api_pool_set_updated_at
    BEFORE UPDATE ON celaest.ai_api_pool
    FOR EACH ROW EXECUTE FUNCTION celaest.set_updated_at();

COMMENT ON TABLE celaest.ai_api_pool IS
    'Pool of provider API keys for load balancing and redundancy. Secrets are stored encrypted with pgcrypto (pgp_sym_encrypt) and never shown.';
COMMENT ON COLUMN celaest.ai_api_pool.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.ai_api_pool.provider IS 'AI provider.';
COMMENT ON COLUMN celaest.ai_api_pool.key_name IS 'Descriptive name.';
COMMENT ON COLUMN celaest.ai_api_pool.key_value_encrypted IS 'API key encrypted with pgp_sym_encrypt under celaest.encryption_key; never exposed.';
COMMENT ON COLUMN celaest.ai_api_pool.key_hint IS 'Last 4 characters of the key.';
COMMENT ON COLUMN celaest.ai_api_pool.is_active IS 'Whether the key is active.';
COMMENT ON COLUMN celaest.ai_api_pool.is_healthy IS 'Whether the key is healthy (last health check passed).';
COMMENT ON COLUMN celaest.ai_api_pool.last_health_check IS 'Time of the last health check.';
COMMENT ON COLUMN celaest.ai_api_pool.consecutive_failures IS 'Consecutive failures.';
COMMENT ON COLUMN celaest.ai_api_pool.rate_limit_rpm IS 'Requests per minute allowed (NULL = no limit).';
COMMENT ON COLUMN celaest.ai_api_pool.rate_limit_tpm IS 'Tokens per minute allowed (NULL = no limit).';
COMMENT ON COLUMN celaest.ai_api_pool.rate_limit_rpd IS 'Requests per day allowed (NULL = no limit).';
COMMENT ON COLUMN celaest.ai_api_pool.usage_count IS 'Total uses.';
COMMENT ON COLUMN celaest.ai_api_pool.tokens_used IS 'Total tokens.';
COMMENT ON COLUMN celaest.ai_api_pool.last_used_at IS 'Time of the last use.';
COMMENT ON COLUMN celaest.ai_api_pool.priority IS 'Selection priority (higher first).';
COMMENT ON COLUMN celaest.ai_api_pool.weight IS 'Load-balancing weight among keys of equal priority.';
COMMENT ON COLUMN celaest.ai_api_pool.notes IS 'Notes.';
COMMENT ON COLUMN celaest.ai_api_pool.metadata IS 'Additional data (JSON object), e.g. base_url.';
COMMENT ON COLUMN celaest.ai_api_pool.created_at IS 'Creation time.';
COMMENT ON COLUMN celaest.ai_api_pool.updated_at IS 'Last update time (maintained by trigger).';
COMMENT ON COLUMN celaest.ai_api_pool.expires_at IS 'Expiry time (NULL = does not expire).';

-- ---------------------------------------------------------------------------
-- prompts_master
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.prompts_master (
    id                   UUID            NOT NULL DEFAULT uuid_generate_v4(),
    slug                 VARCHAR(100)    NOT NULL,
    name                 VARCHAR(200)    NOT NULL,
    description          TEXT,
    category             VARCHAR(50)     NOT NULL,
    subcategory          VARCHAR(50),
    system_prompt        TEXT            NOT NULL,
    user_prompt_template TEXT,
    variables            JSONB           NOT NULL DEFAULT '[]',
    preferred_model_id   UUID,
    temperature          NUMERIC(3,2)    NOT NULL DEFAULT 0.7,
    max_tokens           INTEGER         NOT NULL DEFAULT 2048,
    top_p                NUMERIC(3,2)    NOT NULL DEFAULT 1.0,
    version              INTEGER         NOT NULL DEFAULT 1,
    is_active            BOOLEAN         NOT NULL DEFAULT TRUE,
    is_default           BOOLEAN         NOT NULL DEFAULT FALSE,
    parent_id            UUID,
    usage_count          BIGINT          NOT NULL DEFAULT 0,
    avg_response_time_ms INTEGER,
    success_rate         NUMERIC(5,2),
    tags                 TEXT[],
    notes                TEXT,
    metadata             JSONB           NOT NULL DEFAULT '{}',
    created_at           TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    updated_at           TIMESTAMPTZ     NOT NULL DEFAULT NOW(),

    CONSTRAINT prompts_master_pkey PRIMARY KEY (id),
    CONSTRAINT prompts_master_slug_version_key UNIQUE (slug, version),
    -- SET NULL: the preference is advisory; routing falls back to the default model.
    CONSTRAINT prompts_master_preferred_model_id_fkey FOREIGN KEY (preferred_model_id)
        REFERENCES celaest.ai_models (id) ON DELETE SET NULL,
    -- SET NULL: removing a version leaves the versions derived from it in place,
    -- as roots of their own history.
    CONSTRAINT prompts_master_parent_id_fkey FOREIGN KEY (parent_id)
        REFERENCES celaest.prompts_master (id) ON DELETE SET NULL,
    CONSTRAINT prompts_master_parent_not_self CHECK (parent_id <> id),
    -- The slug is addressed as "slug" or "slug@version": no '@', no whitespace.
    CONSTRAINT prompts_master_slug_format CHECK (slug ~ '^[^@[:space:]]+$'),
    CONSTRAINT prompts_master_category_not_blank CHECK (btrim(category) <> ''),
    CONSTRAINT prompts_master_variables_is_array CHECK (jsonb_typeof(variables) = 'array'),
    CONSTRAINT prompts_master_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT prompts_master_temperature_range CHECK (temperature BETWEEN 0 AND 2),
    CONSTRAINT prompts_master_max_tokens_positive CHECK (max_tokens > 0),
    CONSTRAINT prompts_master_top_p_range CHECK (top_p BETWEEN 0 AND 1),
    CONSTRAINT prompts_master_version_positive CHECK (version > 0),
    CONSTRAINT prompts_master_usage_count_nonneg CHECK (usage_count >= 0),
    CONSTRAINT prompts_master_avg_response_time_ms_nonneg CHECK (avg_response_time_ms >= 0),
    CONSTRAINT prompts_master_success_rate_range CHECK (success_rate BETWEEN 0 AND 100)
);

-- run_prompt('slug') resolves the one active default version of a slug.
CREATE UNIQUE INDEX prompts_master_one_default_per_slug ON celaest.prompts_master (slug)
    WHERE is_default AND is_active;
CREATE INDEX prompts_master_preferred_model_id_idx ON celaest.prompts_master (preferred_model_id);
CREATE INDEX prompts_master_parent_id_idx ON celaest.prompts_master (parent_id);

CREATE TRIGGER prompts_master_set_updated_at
    BEFORE UPDATE ON celaest.prompts_master
    FOR EACH ROW EXECUTE FUNCTION celaest.set_updated_at();

COMMENT ON TABLE celaest.prompts_master IS
    'Versioned repository of system prompts; a prompt is addressed by slug (its active default version) or slug@version.';
COMMENT ON COLUMN celaest.prompts_master.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.prompts_master.slug IS 'Short identifier (unique together with version).';
COMMENT ON COLUMN celaest.prompts_master.name IS 'Prompt name.';
COMMENT ON COLUMN celaest.prompts_master.description IS 'Description.';
COMMENT ON COLUMN celaest.prompts_master.category IS 'Category.';
COMMENT ON COLUMN celaest.prompts_master.subcategory IS 'Subcategory.';
COMMENT ON COLUMN celaest.prompts_master.system_prompt IS 'System prompt.';
COMMENT ON COLUMN celaest.prompts_master.user_prompt_template IS 'User prompt template with {{variable}} placeholders.';
COMMENT ON COLUMN celaest.prompts_master.variables IS 'Expected variables (JSON array of names).';
COMMENT ON COLUMN celaest.prompts_master.preferred_model_id IS 'Preferred model (FK -> ai_models).';
COMMENT ON COLUMN celaest.prompts_master.temperature IS 'Sampling temperature (0 to 2).';
COMMENT ON COLUMN celaest.prompts_master.max_tokens IS 'Maximum response tokens.';
COMMENT ON COLUMN celaest.prompts_master.top_p IS 'Top-p (nucleus sampling, 0 to 1).';
COMMENT ON COLUMN celaest.prompts_master.version IS 'Prompt version (unique per slug).';
COMMENT ON COLUMN celaest.prompts_master.is_active IS 'Whether the prompt is active.';
COMMENT ON COLUMN celaest.prompts_master.is_default IS 'Whether this is the default version of its slug (at most one active default per slug).';
COMMENT ON COLUMN celaest.prompts_master.parent_id IS 'Version this one derives from (FK -> prompts_master, self).';
COMMENT ON COLUMN celaest.prompts_master.usage_count IS 'Usage counter.';
COMMENT ON COLUMN celaest.prompts_master.avg_response_time_ms IS 'Average response time, in milliseconds.';
COMMENT ON COLUMN celaest.prompts_master.success_rate IS 'Success rate, in percent (0 to 100).';
COMMENT ON COLUMN celaest.prompts_master.tags IS 'Tags.';
COMMENT ON COLUMN celaest.prompts_master.notes IS 'Notes.';
COMMENT ON COLUMN celaest.prompts_master.metadata IS 'Additional data (JSON object), e.g. manual_minutes for ROI.';
COMMENT ON COLUMN celaest.prompts_master.created_at IS 'Creation time.';
COMMENT ON COLUMN celaest.prompts_master.updated_at IS 'Last update time (maintained by trigger).';

-- pg_dump: these rows are user data (see module 10).
SELECT pg_catalog.pg_extension_config_dump('celaest.ai_models', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.ai_api_pool', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.prompts_master', '');

-- ---------------------------------------------------------------------------
-- increment_api_key_usage (data dictionary, "Funciones Disponibles")
-- ---------------------------------------------------------------------------
-- One UPDATE: the row lock makes concurrent bumps serialize, so none is lost.
-- SECURITY INVOKER: the pool is owner-only; callers are the extension's own
-- privileged code paths.
CREATE FUNCTION celaest.increment_api_key_usage(p_key_id uuid, p_tokens integer)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_key_id IS NULL THEN
        RAISE EXCEPTION 'celaest.increment_api_key_usage: p_key_id must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_tokens IS NULL OR p_tokens < 0 THEN
        RAISE EXCEPTION 'celaest.increment_api_key_usage: invalid token count %', COALESCE(p_tokens::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'p_tokens is the number of tokens the call used: zero or more.';
    END IF;

    UPDATE celaest.ai_api_pool
       SET usage_count  = usage_count + 1,
           tokens_used  = tokens_used + p_tokens,
           last_used_at = now()
     WHERE id = p_key_id;

    IF NOT FOUND THEN
        RAISE EXCEPTION 'API key % does not exist', p_key_id
            USING ERRCODE = 'no_data_found',
                  DETAIL = 'There is no row in celaest.ai_api_pool with this id.';
    END IF;
END;
$$;
COMMENT ON FUNCTION celaest.increment_api_key_usage(uuid, integer) IS
    'Atomically records one use of an API key: usage_count + 1, tokens_used + p_tokens, last_used_at = now(). Raises 22023 for NULL or negative tokens, P0002 for an unknown key.';
-- AI calls (native, libcurl): run_prompt and ai_chat. SECURITY DEFINER so that application
-- roles can call them without rights on the key pool or the task tables; the caller is
-- still identified by celaest.user_id / auth.uid() (API.md "Who is calling").

CREATE FUNCTION celaest.run_prompt(p_prompt text, p_variables jsonb DEFAULT '{}',
                                   p_user_id uuid DEFAULT NULL, p_options jsonb DEFAULT '{}')
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'celaest_run_prompt'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION celaest.run_prompt(text, jsonb, uuid, jsonb) IS
    'Runs a prompt (slug or slug@version) rendered with {{variables}}: enforces the license, routes model and key, calls the provider, records a processed_tasks row and returns {task_id, status, output_text, output_json, provider, model, tokens_input, tokens_output, cost_usd, execution_time_ms, ai_time_ms, retry_count, error_code, error_message}.';

CREATE FUNCTION celaest.ai_chat(p_messages jsonb, p_model text DEFAULT NULL,
                                p_user_id uuid DEFAULT NULL, p_options jsonb DEFAULT '{}')
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'celaest_ai_chat'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION celaest.ai_chat(jsonb, text, uuid, jsonb) IS
    'Chat completion over [{"role":"system|user|assistant","content":"..."}] with the same routing, accounting and result as run_prompt.';
-- The API-key pool (native): secrets encrypted with pgcrypto under celaest.encryption_key.
-- Administrative: EXECUTE is revoked from PUBLIC; grant it to the roles that manage keys.

CREATE FUNCTION celaest.add_api_key(p_provider celaest.ai_provider, p_key_name text, p_secret text,
                                    p_options jsonb DEFAULT '{}')
    RETURNS uuid
    AS 'MODULE_PATHNAME', 'celaest_add_api_key'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION celaest.add_api_key(celaest.ai_provider, text, text, jsonb) IS
    'Adds an API key to the pool, encrypted with pgp_sym_encrypt under celaest.encryption_key; options priority, weight, rate_limit_rpm, rate_limit_tpm, rate_limit_rpd, expires_at, base_url, notes.';
REVOKE ALL ON FUNCTION celaest.add_api_key(celaest.ai_provider, text, text, jsonb) FROM PUBLIC;

CREATE FUNCTION celaest.rotate_api_key(p_key_id uuid, p_secret text)
    RETURNS void
    AS 'MODULE_PATHNAME', 'celaest_rotate_api_key'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION celaest.rotate_api_key(uuid, text) IS
    'Replaces the secret of a pool key (re-encrypted), resets its failure count and marks it healthy.';
REVOKE ALL ON FUNCTION celaest.rotate_api_key(uuid, text) FROM PUBLIC;

CREATE FUNCTION celaest.check_api_keys(p_key_id uuid DEFAULT NULL)
    RETURNS TABLE(key_id uuid, provider celaest.ai_provider, healthy boolean, status_code integer,
                  latency_ms integer, error text)
    AS 'MODULE_PATHNAME', 'celaest_check_api_keys'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION celaest.check_api_keys(uuid) IS
    'Health-checks one key or every active key now, concurrently (the provider''s cheapest authenticated call), and updates the pool exactly as the background worker does.';
REVOKE ALL ON FUNCTION celaest.check_api_keys(uuid) FROM PUBLIC;
-- CELAEST — module 40: operations (task_batches, processed_tasks).
--
-- Foreign keys of the history tables follow one rule:
--   * owners and billing parents (organization, user, license, batch): RESTRICT.
--     Tasks are the billing, telemetry and ROI record; deleting a parent must
--     neither erase them nor orphan them. Parents are soft-deleted or cancelled.
--   * catalog references (model, API key, prompt): SET NULL. The catalog can be
--     pruned (a retired model, the row of a leaked key) without being blocked by
--     history; a task keeps its own tokens and cost.

-- ---------------------------------------------------------------------------
-- task_batches (named by the dictionary, columns as API.md gives them)
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.task_batches (
    id              UUID            NOT NULL DEFAULT uuid_generate_v4(),
    organization_id UUID            NOT NULL,
    user_id         UUID            NOT NULL,
    license_id      UUID,
    prompt_id       UUID,
    model_id        UUID,
    name            VARCHAR(200),
    status          celaest.task_status NOT NULL DEFAULT 'pending',
    total_tasks     INTEGER         NOT NULL DEFAULT 0,
    completed_tasks INTEGER         NOT NULL DEFAULT 0,
    failed_tasks    INTEGER         NOT NULL DEFAULT 0,
    priority        INTEGER         NOT NULL DEFAULT 0,
    options         JSONB           NOT NULL DEFAULT '{}',
    error_message   TEXT,
    metadata        JSONB           NOT NULL DEFAULT '{}',
    created_at      TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    updated_at      TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    started_at      TIMESTAMPTZ,
    completed_at    TIMESTAMPTZ,

    CONSTRAINT task_batches_pkey PRIMARY KEY (id),
    -- RESTRICT (owner): see the rule at the top of this file.
    CONSTRAINT task_batches_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES celaest.organizations (id) ON DELETE RESTRICT,
    -- RESTRICT (owner): users are soft-deleted.
    CONSTRAINT task_batches_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES celaest.users_profile (id) ON DELETE RESTRICT,
    -- RESTRICT (billing parent): the batch was charged to this license.
    CONSTRAINT task_batches_license_id_fkey FOREIGN KEY (license_id)
        REFERENCES celaest.licenses (id) ON DELETE RESTRICT,
    -- SET NULL (catalog): the batch keeps running on routing defaults.
    CONSTRAINT task_batches_prompt_id_fkey FOREIGN KEY (prompt_id)
        REFERENCES celaest.prompts_master (id) ON DELETE SET NULL,
    -- SET NULL (catalog).
    CONSTRAINT task_batches_model_id_fkey FOREIGN KEY (model_id)
        REFERENCES celaest.ai_models (id) ON DELETE SET NULL,
    -- One constraint for the three counters: it sorts (and so is checked and
    -- reported) before counters_within_total, which a negative total also breaks.
    CONSTRAINT task_batches_counters_nonneg CHECK (total_tasks >= 0 AND completed_tasks >= 0 AND failed_tasks >= 0),
    CONSTRAINT task_batches_counters_within_total CHECK (completed_tasks + failed_tasks <= total_tasks),
    CONSTRAINT task_batches_options_is_object CHECK (jsonb_typeof(options) = 'object'),
    CONSTRAINT task_batches_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
    -- priority is unconstrained: it orders batches (higher first), and a negative
    -- value is the natural "background" priority below the default 0.
);

CREATE INDEX task_batches_organization_id_created_at_idx ON celaest.task_batches (organization_id, created_at);
CREATE INDEX task_batches_user_id_idx ON celaest.task_batches (user_id);
CREATE INDEX task_batches_license_id_idx ON celaest.task_batches (license_id);
CREATE INDEX task_batches_prompt_id_idx ON celaest.task_batches (prompt_id);
CREATE INDEX task_batches_model_id_idx ON celaest.task_batches (model_id);

CREATE TRIGGER task_batches_set_updated_at
    BEFORE UPDATE ON celaest.task_batches
    FOR EACH ROW EXECUTE FUNCTION celaest.set_updated_at();

COMMENT ON TABLE celaest.task_batches IS
    'Batches of AI tasks submitted together (submit_batch); each input becomes one processed_tasks row run by the background worker.';
COMMENT ON COLUMN celaest.task_batches.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.task_batches.organization_id IS 'Organization that owns the batch (FK -> organizations).';
COMMENT ON COLUMN celaest.task_batches.user_id IS 'User who submitted the batch (FK -> users_profile).';
COMMENT ON COLUMN celaest.task_batches.license_id IS 'License the batch is charged to (FK -> licenses).';
COMMENT ON COLUMN celaest.task_batches.prompt_id IS 'Prompt version the tasks run (FK -> prompts_master).';
COMMENT ON COLUMN celaest.task_batches.model_id IS 'Model requested for the tasks (FK -> ai_models).';
COMMENT ON COLUMN celaest.task_batches.name IS 'Batch name.';
COMMENT ON COLUMN celaest.task_batches.status IS 'Batch status.';
COMMENT ON COLUMN celaest.task_batches.total_tasks IS 'Number of tasks in the batch.';
COMMENT ON COLUMN celaest.task_batches.completed_tasks IS 'Tasks completed successfully.';
COMMENT ON COLUMN celaest.task_batches.failed_tasks IS 'Tasks that failed.';
COMMENT ON COLUMN celaest.task_batches.priority IS 'Scheduling priority (higher first).';
COMMENT ON COLUMN celaest.task_batches.options IS 'Call options for every task of the batch (JSON object), as run_prompt takes them.';
COMMENT ON COLUMN celaest.task_batches.error_message IS 'Error message, when the batch as a whole failed.';
COMMENT ON COLUMN celaest.task_batches.metadata IS 'Additional data (JSON object).';
COMMENT ON COLUMN celaest.task_batches.created_at IS 'Creation (submission) time.';
COMMENT ON COLUMN celaest.task_batches.updated_at IS 'Last update time (maintained by trigger).';
COMMENT ON COLUMN celaest.task_batches.started_at IS 'Time the first task started.';
COMMENT ON COLUMN celaest.task_batches.completed_at IS 'Time the batch ended.';

-- ---------------------------------------------------------------------------
-- processed_tasks
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.processed_tasks (
    id                UUID            NOT NULL DEFAULT uuid_generate_v4(),
    organization_id   UUID            NOT NULL,
    user_id           UUID            NOT NULL,
    license_id        UUID,
    batch_id          UUID,
    model_id          UUID,
    api_key_id        UUID,
    prompt_id         UUID,
    input_type        VARCHAR(50),
    input_text        TEXT,
    input_metadata    JSONB           NOT NULL DEFAULT '{}',
    output_json       JSONB,
    output_raw        TEXT,
    output_confidence NUMERIC(5,4),
    status            celaest.task_status NOT NULL DEFAULT 'pending',
    error_message     TEXT,
    error_code        VARCHAR(50),
    retry_count       INTEGER         NOT NULL DEFAULT 0,
    tokens_input      INTEGER         NOT NULL DEFAULT 0,
    tokens_output     INTEGER         NOT NULL DEFAULT 0,
    tokens_total      INTEGER         GENERATED ALWAYS AS (tokens_input + tokens_output) STORED,
    cost_usd          NUMERIC(10,6)   NOT NULL DEFAULT 0,
    execution_time_ms INTEGER,
    queue_time_ms     INTEGER,
    ai_time_ms        INTEGER,
    request_id        VARCHAR(100),
    user_agent        VARCHAR(500),
    ip_address        INET,
    metadata          JSONB           NOT NULL DEFAULT '{}',
    created_at        TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    started_at        TIMESTAMPTZ,
    completed_at      TIMESTAMPTZ,

    CONSTRAINT processed_tasks_pkey PRIMARY KEY (id),
    -- RESTRICT (owner): see the rule at the top of this file.
    CONSTRAINT processed_tasks_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES celaest.organizations (id) ON DELETE RESTRICT,
    -- RESTRICT (owner): users are soft-deleted.
    CONSTRAINT processed_tasks_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES celaest.users_profile (id) ON DELETE RESTRICT,
    -- RESTRICT (billing parent): the task was charged to this license.
    CONSTRAINT processed_tasks_license_id_fkey FOREIGN KEY (license_id)
        REFERENCES celaest.licenses (id) ON DELETE RESTRICT,
    -- RESTRICT (parent): a batch is cancelled (cancel_batch), not deleted. CASCADE
    -- would erase billed tasks; SET NULL would turn its pending tasks into
    -- stray single tasks still in the queue.
    CONSTRAINT processed_tasks_batch_id_fkey FOREIGN KEY (batch_id)
        REFERENCES celaest.task_batches (id) ON DELETE RESTRICT,
    -- SET NULL (catalog).
    CONSTRAINT processed_tasks_model_id_fkey FOREIGN KEY (model_id)
        REFERENCES celaest.ai_models (id) ON DELETE SET NULL,
    -- SET NULL (catalog): the row of a compromised key must always be removable.
    CONSTRAINT processed_tasks_api_key_id_fkey FOREIGN KEY (api_key_id)
        REFERENCES celaest.ai_api_pool (id) ON DELETE SET NULL,
    -- SET NULL (catalog).
    CONSTRAINT processed_tasks_prompt_id_fkey FOREIGN KEY (prompt_id)
        REFERENCES celaest.prompts_master (id) ON DELETE SET NULL,
    CONSTRAINT processed_tasks_input_metadata_is_object CHECK (jsonb_typeof(input_metadata) = 'object'),
    CONSTRAINT processed_tasks_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT processed_tasks_output_confidence_range CHECK (output_confidence BETWEEN 0 AND 1),
    CONSTRAINT processed_tasks_retry_count_nonneg CHECK (retry_count >= 0),
    CONSTRAINT processed_tasks_tokens_input_nonneg CHECK (tokens_input >= 0),
    CONSTRAINT processed_tasks_tokens_output_nonneg CHECK (tokens_output >= 0),
    CONSTRAINT processed_tasks_cost_usd_nonneg CHECK (cost_usd >= 0),
    CONSTRAINT processed_tasks_execution_time_ms_nonneg CHECK (execution_time_ms >= 0),
    CONSTRAINT processed_tasks_queue_time_ms_nonneg CHECK (queue_time_ms >= 0),
    CONSTRAINT processed_tasks_ai_time_ms_nonneg CHECK (ai_time_ms >= 0)
);

-- The task queue: pending / retrying tasks, oldest first.
CREATE INDEX processed_tasks_status_created_at_idx ON celaest.processed_tasks (status, created_at);
-- Per-tenant history and dashboards (also serves the organization_id FK).
CREATE INDEX processed_tasks_organization_id_created_at_idx ON celaest.processed_tasks (organization_id, created_at);
-- Batch progress (also serves the batch_id FK).
CREATE INDEX processed_tasks_batch_id_status_idx ON celaest.processed_tasks (batch_id, status);
CREATE INDEX processed_tasks_user_id_idx ON celaest.processed_tasks (user_id);
CREATE INDEX processed_tasks_license_id_idx ON celaest.processed_tasks (license_id);
CREATE INDEX processed_tasks_model_id_idx ON celaest.processed_tasks (model_id);
CREATE INDEX processed_tasks_api_key_id_idx ON celaest.processed_tasks (api_key_id);
CREATE INDEX processed_tasks_prompt_id_idx ON celaest.processed_tasks (prompt_id);

COMMENT ON TABLE celaest.processed_tasks IS
    'Detailed record of every AI execution; the core of telemetry, billing and ROI.';
COMMENT ON COLUMN celaest.processed_tasks.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.processed_tasks.organization_id IS 'Organization (FK -> organizations).';
COMMENT ON COLUMN celaest.processed_tasks.user_id IS 'User who ran the task (FK -> users_profile).';
COMMENT ON COLUMN celaest.processed_tasks.license_id IS 'License the task was charged to (FK -> licenses).';
COMMENT ON COLUMN celaest.processed_tasks.batch_id IS 'Batch the task belongs to, if any (FK -> task_batches).';
COMMENT ON COLUMN celaest.processed_tasks.model_id IS 'Model used (FK -> ai_models).';
COMMENT ON COLUMN celaest.processed_tasks.api_key_id IS 'API key used (FK -> ai_api_pool).';
COMMENT ON COLUMN celaest.processed_tasks.prompt_id IS 'Prompt version used (FK -> prompts_master).';
COMMENT ON COLUMN celaest.processed_tasks.input_type IS 'Input type.';
COMMENT ON COLUMN celaest.processed_tasks.input_text IS 'Input text.';
COMMENT ON COLUMN celaest.processed_tasks.input_metadata IS 'Input metadata (JSON object), e.g. the template variables.';
COMMENT ON COLUMN celaest.processed_tasks.output_json IS 'Structured response (JSON).';
COMMENT ON COLUMN celaest.processed_tasks.output_raw IS 'Raw response text.';
COMMENT ON COLUMN celaest.processed_tasks.output_confidence IS 'Confidence score (0 to 1).';
COMMENT ON COLUMN celaest.processed_tasks.status IS 'Task status.';
COMMENT ON COLUMN celaest.processed_tasks.error_message IS 'Error message.';
COMMENT ON COLUMN celaest.processed_tasks.error_code IS 'Error code.';
COMMENT ON COLUMN celaest.processed_tasks.retry_count IS 'Retries performed.';
COMMENT ON COLUMN celaest.processed_tasks.tokens_input IS 'Input tokens.';
COMMENT ON COLUMN celaest.processed_tasks.tokens_output IS 'Output tokens.';
COMMENT ON COLUMN celaest.processed_tasks.tokens_total IS 'Total tokens (generated: tokens_input + tokens_output).';
COMMENT ON COLUMN celaest.processed_tasks.cost_usd IS 'Cost in USD.';
COMMENT ON COLUMN celaest.processed_tasks.execution_time_ms IS 'Total execution time, in milliseconds.';
COMMENT ON COLUMN celaest.processed_tasks.queue_time_ms IS 'Time spent queued, in milliseconds.';
COMMENT ON COLUMN celaest.processed_tasks.ai_time_ms IS 'Time spent in the AI provider, in milliseconds.';
COMMENT ON COLUMN celaest.processed_tasks.request_id IS 'Correlation id.';
COMMENT ON COLUMN celaest.processed_tasks.user_agent IS 'Client user agent.';
COMMENT ON COLUMN celaest.processed_tasks.ip_address IS 'Client IP address.';
COMMENT ON COLUMN celaest.processed_tasks.metadata IS 'Additional data (JSON object).';
COMMENT ON COLUMN celaest.processed_tasks.created_at IS 'Creation (enqueue) time.';
COMMENT ON COLUMN celaest.processed_tasks.started_at IS 'Processing start time.';
COMMENT ON COLUMN celaest.processed_tasks.completed_at IS 'Processing end time.';

-- license_usage_log.task_id, now that processed_tasks exists.
-- SET NULL (API.md): the consumption stands even if the task row goes.
ALTER TABLE celaest.license_usage_log
    ADD CONSTRAINT license_usage_log_task_id_fkey FOREIGN KEY (task_id)
    REFERENCES celaest.processed_tasks (id) ON DELETE SET NULL;

-- pg_dump: these rows are user data (see module 10).
SELECT pg_catalog.pg_extension_config_dump('celaest.task_batches', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.processed_tasks', '');
-- Batches: submit_batch (native) queues one pending processed_tasks row per input; the
-- batch runner worker claims them (short transaction: status processing + license charge,
-- committed before any provider is called), runs them side by side through libcurl multi
-- (native _run_claimed_tasks), and records them. Tasks left in processing by a runner that
-- died are put back in the queue (at-least-once; nothing is deleted before it has run).

CREATE FUNCTION celaest.submit_batch(p_prompt text, p_inputs jsonb, p_user_id uuid DEFAULT NULL,
                                     p_options jsonb DEFAULT '{}')
    RETURNS uuid
    AS 'MODULE_PATHNAME', 'celaest_submit_batch'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION celaest.submit_batch(text, jsonb, uuid, jsonb) IS
    'Queues a batch: p_inputs is a JSON array of variable objects for the prompt (slug or slug@version); checks max_batch_size and the AI requests left (LC010) and every input''s variables (LC030), creates the task_batches row and one pending task per input, wakes the batch runner and returns the batch id. Options as run_prompt, plus name and priority.';

CREATE FUNCTION celaest._wake_batch_runner() RETURNS void
    AS 'MODULE_PATHNAME', 'celaest_wake_batch_runner'
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest._wake_batch_runner() IS
    'Internal: sets the batch runner''s latch so that newly queued tasks start at once.';

-- Who may see, wait for or cancel a batch: the acting CELAEST user's organization, a
-- CELAEST super_admin, or a role that may write task_batches itself (its owner, a superuser,
-- an operator granted UPDATE). Asked from inside SECURITY DEFINER functions, so the invoking
-- role is read from the role setting (SET ROLE) or, without one, session_user. Others get
-- "does not exist": a batch id of another organization reveals nothing.
CREATE FUNCTION celaest._batch_visible(p_org_id uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_org_id = celaest.current_org_id_or_null()
        OR celaest.current_user_is_super_admin()
        OR has_table_privilege(CASE WHEN current_setting('role') = 'none' THEN session_user::text
                                    ELSE current_setting('role') END,
                               'celaest.task_batches', 'UPDATE');
$$;
COMMENT ON FUNCTION celaest._batch_visible(uuid) IS
    'Internal: true when the caller may see a batch of this organization (its own organization, a CELAEST super_admin, or a role that may update task_batches).';

CREATE FUNCTION celaest.batch_status(p_batch_id uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_batch  celaest.task_batches;
    v_counts record;
    v_done   bigint;
    v_eta    numeric;
BEGIN
    SELECT * INTO v_batch FROM celaest.task_batches WHERE id = p_batch_id;
    IF NOT FOUND OR NOT celaest._batch_visible(v_batch.organization_id) THEN
        RAISE EXCEPTION 'batch % does not exist', p_batch_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT count(*) AS total,
           count(*) FILTER (WHERE status = 'pending')    AS pending,
           count(*) FILTER (WHERE status IN ('processing', 'retrying')) AS processing,
           count(*) FILTER (WHERE status = 'completed')  AS completed,
           count(*) FILTER (WHERE status = 'failed')     AS failed,
           count(*) FILTER (WHERE status = 'cancelled')  AS cancelled,
           min(started_at) AS first_start, max(completed_at) AS last_end
      INTO v_counts
      FROM celaest.processed_tasks WHERE batch_id = p_batch_id;
    v_done := v_counts.completed + v_counts.failed + v_counts.cancelled;
    -- Remaining work at the pace observed so far (wall clock since the first task started).
    IF v_done > 0 AND v_counts.pending + v_counts.processing > 0 AND v_counts.first_start IS NOT NULL THEN
        v_eta := round(extract(epoch FROM (clock_timestamp() - v_counts.first_start)) / v_done
                       * (v_counts.pending + v_counts.processing), 1);
    ELSIF v_counts.pending + v_counts.processing = 0 THEN
        v_eta := 0;
    END IF;
    RETURN jsonb_build_object(
        'batch_id', p_batch_id, 'status', v_batch.status, 'total', v_counts.total,
        'pending', v_counts.pending, 'processing', v_counts.processing,
        'completed', v_counts.completed, 'failed', v_counts.failed, 'cancelled', v_counts.cancelled,
        'progress', CASE WHEN v_counts.total = 0 THEN 1 ELSE round(v_done::numeric / v_counts.total, 4) END,
        'eta_seconds', v_eta,
        'started_at', v_batch.started_at, 'completed_at', v_batch.completed_at);
END;
$$;
COMMENT ON FUNCTION celaest.batch_status(uuid) IS
    'Progress of a batch: {status, total, pending, processing, completed, failed, cancelled, progress (0..1), eta_seconds (NULL until a task has finished)}. A batch of another organization does not exist for the caller (P0002).';

CREATE FUNCTION celaest.wait_batch(p_batch_id uuid, p_timeout interval DEFAULT '5 minutes') RETURNS jsonb
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deadline timestamptz := clock_timestamp() + p_timeout;
    v_status   jsonb;
    v_pause    float8 := 0.01;
BEGIN
    IF p_timeout IS NULL OR p_timeout < interval '0' THEN
        RAISE EXCEPTION 'timeout must be a non-negative interval, not %', coalesce(p_timeout::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    LOOP
        -- Each statement of a VOLATILE function sees a new snapshot: the runner's commits.
        v_status := celaest.batch_status(p_batch_id);
        EXIT WHEN v_status ->> 'status' IN ('completed', 'failed', 'cancelled')
               OR clock_timestamp() >= v_deadline;
        PERFORM pg_catalog.pg_sleep(least(v_pause, greatest(extract(epoch FROM v_deadline - clock_timestamp()), 0)));
        v_pause := least(v_pause * 2, 0.2);   -- quick for short batches, cheap for long ones
    END LOOP;
    RETURN v_status;
END;
$$;
COMMENT ON FUNCTION celaest.wait_batch(uuid, interval) IS
    'Blocks (cancellable) until the batch ends or the timeout passes; returns batch_status().';

CREATE FUNCTION celaest.cancel_batch(p_batch_id uuid) RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org       uuid;
    v_cancelled integer;
BEGIN
    SELECT organization_id INTO v_org FROM celaest.task_batches WHERE id = p_batch_id;
    IF NOT FOUND OR NOT celaest._batch_visible(v_org) THEN
        RAISE EXCEPTION 'batch % does not exist', p_batch_id USING ERRCODE = 'no_data_found';
    END IF;
    -- Tasks a runner holds right now finish; every task still queued is cancelled. Locks are
    -- taken in the runner's order (tasks, then the batch row) and waited for, never skipped:
    -- a task the runner is claiming this instant is re-checked once its claim commits (it is
    -- then processing and runs), and no queued task is left behind in a cancelled batch.
    UPDATE celaest.processed_tasks
       SET status = 'cancelled', completed_at = clock_timestamp(),
           error_code = 'cancelled', error_message = 'cancelled by cancel_batch()'
     WHERE batch_id = p_batch_id AND status = 'pending';
    GET DIAGNOSTICS v_cancelled = ROW_COUNT;
    UPDATE celaest.task_batches
       SET status = 'cancelled', completed_at = coalesce(completed_at, clock_timestamp())
     WHERE id = p_batch_id AND status NOT IN ('completed', 'failed', 'cancelled');
    RETURN v_cancelled;
END;
$$;
COMMENT ON FUNCTION celaest.cancel_batch(uuid) IS
    'Cancels every task of the batch still queued (tasks in flight finish) and marks the batch cancelled; returns how many tasks were cancelled. A batch of another organization does not exist for the caller (P0002).';

-- Batch counters and status from its tasks. Internal.
CREATE FUNCTION celaest._refresh_batch(p_batch_id uuid) RETURNS void
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
    UPDATE celaest.task_batches b
       SET completed_tasks = c.completed, failed_tasks = c.failed,
           started_at = coalesce(b.started_at, c.first_start),
           status = CASE WHEN b.status = 'cancelled' THEN b.status
                         WHEN c.open > 0 THEN 'processing'::celaest.task_status
                         WHEN c.completed = 0 AND c.failed > 0 THEN 'failed'::celaest.task_status
                         ELSE 'completed'::celaest.task_status END,
           completed_at = CASE WHEN c.open = 0 THEN coalesce(b.completed_at, clock_timestamp()) END
      FROM (SELECT count(*) FILTER (WHERE status = 'completed') AS completed,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status IN ('pending', 'processing', 'retrying')) AS open,
                   min(started_at) AS first_start
              FROM celaest.processed_tasks WHERE batch_id = p_batch_id) c
     WHERE b.id = p_batch_id;
$$;
COMMENT ON FUNCTION celaest._refresh_batch(uuid) IS
    'Internal: recomputes a batch''s counters and status from its tasks.';

-- Claims up to p_limit pending batch tasks for this backend: each one enters processing
-- (max_concurrent_tasks, LC010 → stays queued) and is charged one AI request (refusals
-- fail the task with the license's reason). The worker commits this before calling.
CREATE FUNCTION celaest._claim_batch_tasks(p_limit integer) RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_task    record;
    v_claimed integer := 0;
    v_license uuid;
    v_full    uuid[] := '{}';   -- organizations found at max_concurrent_tasks in this pass
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RETURN 0;
    END IF;
    -- The queue in order, without a LIMIT: tasks of an organization at its concurrency limit
    -- stay queued and are passed over, so they never hold up other organizations' tasks.
    -- Rows are fetched (and locked) a few at a time and the loop stops at p_limit claims.
    FOR v_task IN
        SELECT t.id, t.organization_id, t.user_id, t.batch_id
          FROM celaest.processed_tasks t
          JOIN celaest.task_batches b ON b.id = t.batch_id
         WHERE t.status = 'pending' AND b.status IN ('pending', 'processing')
         ORDER BY b.priority DESC, t.created_at, t.id
           FOR UPDATE OF t SKIP LOCKED
    LOOP
        CONTINUE WHEN v_task.organization_id = ANY (v_full);
        BEGIN
            UPDATE celaest.processed_tasks
               SET status = 'processing', started_at = clock_timestamp(),
                   queue_time_ms = (extract(epoch FROM clock_timestamp() - created_at) * 1000)::int,
                   metadata = metadata || jsonb_build_object('claimed_by', pg_backend_pid())
             WHERE id = v_task.id;
            v_license := celaest.reserve_ai_request(v_task.organization_id, v_task.user_id, v_task.id);
            UPDATE celaest.processed_tasks SET license_id = v_license WHERE id = v_task.id;
            v_claimed := v_claimed + 1;
            UPDATE celaest.task_batches SET status = 'processing', started_at = coalesce(started_at, clock_timestamp())
             WHERE id = v_task.batch_id AND status = 'pending';
        EXCEPTION WHEN SQLSTATE 'LC001' OR SQLSTATE 'LC002' OR SQLSTATE 'LC003' OR SQLSTATE 'LC004'
                    OR SQLSTATE 'LC010' THEN
            IF SQLSTATE = 'LC010' AND SQLERRM LIKE '%max_concurrent_tasks%' THEN
                -- The organization is at max_concurrent_tasks: its tasks stay queued for a later pass.
                v_full := v_full || v_task.organization_id;
            ELSE
                UPDATE celaest.processed_tasks
                   SET status = 'failed', completed_at = clock_timestamp(),
                       error_code = CASE SQLSTATE WHEN 'LC010' THEN 'quota_exceeded' ELSE 'license_unusable' END,
                       error_message = SQLERRM
                 WHERE id = v_task.id;
                PERFORM celaest._refresh_batch(v_task.batch_id);
            END IF;
        END;
        EXIT WHEN v_claimed >= p_limit;
    END LOOP;
    RETURN v_claimed;
END;
$$;
COMMENT ON FUNCTION celaest._claim_batch_tasks(integer) IS
    'Internal (batch runner): claims up to p_limit pending tasks for this backend and charges their AI requests; tasks of organizations at max_concurrent_tasks stay queued and are passed over.';

CREATE FUNCTION celaest._run_claimed_tasks(p_parallel integer) RETURNS integer
    AS 'MODULE_PATHNAME', 'celaest_run_claimed_tasks'
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest._run_claimed_tasks(integer) IS
    'Internal (batch runner): runs the tasks this backend claimed, at most p_parallel transfers at once, and records them.';

-- Puts back in the queue the tasks of runners that are gone (crash, restart).
CREATE FUNCTION celaest._requeue_orphaned_tasks() RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_task record;
    v_count integer := 0;
BEGIN
    FOR v_task IN
        SELECT id, organization_id FROM celaest.processed_tasks t
         WHERE status = 'processing' AND batch_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                            WHERE a.pid = (t.metadata ->> 'claimed_by')::int)
           FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE celaest.processed_tasks SET status = 'pending', started_at = NULL,
               metadata = metadata - 'claimed_by' WHERE id = v_task.id;
        -- Its charge was never used: give it back (it is charged again when re-claimed).
        PERFORM celaest.release_quota(v_task.organization_id, 'ai_requests', 1);
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION celaest._requeue_orphaned_tasks() IS
    'Internal (batch runner): returns to pending the tasks held in processing by a runner that no longer exists.';

CREATE FUNCTION celaest.run_pending_tasks(p_parallel integer DEFAULT 4) RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One call, one transaction: for running the queue by hand (tests, no worker). The
    -- background worker runs the two steps in separate transactions instead.
    PERFORM celaest._claim_batch_tasks(p_parallel);
    RETURN celaest._run_claimed_tasks(p_parallel);
END;
$$;
COMMENT ON FUNCTION celaest.run_pending_tasks(integer) IS
    'Claims and runs up to p_parallel pending batch tasks in this session (the batch runner does the same in the background).';
-- CELAEST — module 50: analytics (roi_metrics).

CREATE TABLE celaest.roi_metrics (
    id                        UUID            NOT NULL DEFAULT uuid_generate_v4(),
    organization_id           UUID            NOT NULL,
    period_type               VARCHAR(20)     NOT NULL,
    period_start              DATE            NOT NULL,
    period_end                DATE            NOT NULL,
    tasks_completed           BIGINT          NOT NULL DEFAULT 0,
    tasks_failed              BIGINT          NOT NULL DEFAULT 0,
    success_rate              NUMERIC(5,2),
    time_saved_minutes        BIGINT          NOT NULL DEFAULT 0,
    manual_equivalent_minutes BIGINT          NOT NULL DEFAULT 0,
    cost_ai                   NUMERIC(12,2)   NOT NULL DEFAULT 0,
    cost_manual_equivalent    NUMERIC(12,2)   NOT NULL DEFAULT 0,
    money_saved               NUMERIC(12,2)   NOT NULL DEFAULT 0,
    total_tokens              BIGINT          NOT NULL DEFAULT 0,
    avg_tokens_per_task       INTEGER,
    avg_execution_time_ms     INTEGER,
    p95_execution_time_ms     INTEGER,
    p99_execution_time_ms     INTEGER,
    active_users_count        INTEGER         NOT NULL DEFAULT 0,
    new_users_count           INTEGER         NOT NULL DEFAULT 0,
    metadata                  JSONB           NOT NULL DEFAULT '{}',
    created_at                TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    updated_at                TIMESTAMPTZ     NOT NULL DEFAULT NOW(),

    CONSTRAINT roi_metrics_pkey PRIMARY KEY (id),
    -- One row per organization, period type and period (aggregate_roi upserts on it;
    -- also serves the organization_id FK).
    CONSTRAINT roi_metrics_organization_id_period_key UNIQUE (organization_id, period_type, period_start),
    -- CASCADE: these rows are derived data, recomputable from processed_tasks by
    -- aggregate_roi; they have no meaning without their organization.
    CONSTRAINT roi_metrics_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES celaest.organizations (id) ON DELETE CASCADE,
    CONSTRAINT roi_metrics_period_type_valid CHECK (period_type IN ('daily', 'weekly', 'monthly')),
    CONSTRAINT roi_metrics_period_order CHECK (period_end >= period_start),
    CONSTRAINT roi_metrics_tasks_completed_nonneg CHECK (tasks_completed >= 0),
    CONSTRAINT roi_metrics_tasks_failed_nonneg CHECK (tasks_failed >= 0),
    CONSTRAINT roi_metrics_success_rate_range CHECK (success_rate BETWEEN 0 AND 100),
    CONSTRAINT roi_metrics_manual_equivalent_minutes_nonneg CHECK (manual_equivalent_minutes >= 0),
    CONSTRAINT roi_metrics_cost_ai_nonneg CHECK (cost_ai >= 0),
    CONSTRAINT roi_metrics_cost_manual_equivalent_nonneg CHECK (cost_manual_equivalent >= 0),
    CONSTRAINT roi_metrics_total_tokens_nonneg CHECK (total_tokens >= 0),
    CONSTRAINT roi_metrics_avg_tokens_per_task_nonneg CHECK (avg_tokens_per_task >= 0),
    CONSTRAINT roi_metrics_avg_execution_time_ms_nonneg CHECK (avg_execution_time_ms >= 0),
    CONSTRAINT roi_metrics_p95_execution_time_ms_nonneg CHECK (p95_execution_time_ms >= 0),
    CONSTRAINT roi_metrics_p99_execution_time_ms_nonneg CHECK (p99_execution_time_ms >= 0),
    CONSTRAINT roi_metrics_active_users_count_nonneg CHECK (active_users_count >= 0),
    CONSTRAINT roi_metrics_new_users_count_nonneg CHECK (new_users_count >= 0),
    CONSTRAINT roi_metrics_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
    -- time_saved_minutes and money_saved are deliberately unconstrained: by the
    -- dictionary's formulas (manual - AI) they are negative when the AI was slower
    -- or dearer than the manual work, and that is a result worth showing.
);

CREATE TRIGGER roi_metrics_set_updated_at
    BEFORE UPDATE ON celaest.roi_metrics
    FOR EACH ROW EXECUTE FUNCTION celaest.set_updated_at();

COMMENT ON TABLE celaest.roi_metrics IS
    'ROI metrics aggregated per organization and period (daily, weekly, monthly); pre-computed for dashboards by aggregate_roi.';
COMMENT ON COLUMN celaest.roi_metrics.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.roi_metrics.organization_id IS 'Organization (FK -> organizations).';
COMMENT ON COLUMN celaest.roi_metrics.period_type IS 'Period type: daily, weekly or monthly.';
COMMENT ON COLUMN celaest.roi_metrics.period_start IS 'First day of the period.';
COMMENT ON COLUMN celaest.roi_metrics.period_end IS 'Last day of the period.';
COMMENT ON COLUMN celaest.roi_metrics.tasks_completed IS 'Tasks completed.';
COMMENT ON COLUMN celaest.roi_metrics.tasks_failed IS 'Tasks failed.';
COMMENT ON COLUMN celaest.roi_metrics.success_rate IS 'Success rate, in percent (0 to 100).';
COMMENT ON COLUMN celaest.roi_metrics.time_saved_minutes IS 'Minutes saved: manual_equivalent_minutes - (tasks x average AI minutes); negative when the AI took longer.';
COMMENT ON COLUMN celaest.roi_metrics.manual_equivalent_minutes IS 'Equivalent manual time, in minutes.';
COMMENT ON COLUMN celaest.roi_metrics.cost_ai IS 'AI cost.';
COMMENT ON COLUMN celaest.roi_metrics.cost_manual_equivalent IS 'Equivalent manual cost.';
COMMENT ON COLUMN celaest.roi_metrics.money_saved IS 'Money saved: cost_manual_equivalent - cost_ai; negative when the AI cost more.';
COMMENT ON COLUMN celaest.roi_metrics.total_tokens IS 'Total tokens.';
COMMENT ON COLUMN celaest.roi_metrics.avg_tokens_per_task IS 'Average tokens per task.';
COMMENT ON COLUMN celaest.roi_metrics.avg_execution_time_ms IS 'Average execution time, in milliseconds.';
COMMENT ON COLUMN celaest.roi_metrics.p95_execution_time_ms IS '95th percentile of execution time, in milliseconds.';
COMMENT ON COLUMN celaest.roi_metrics.p99_execution_time_ms IS '99th percentile of execution time, in milliseconds.';
COMMENT ON COLUMN celaest.roi_metrics.active_users_count IS 'Active users in the period.';
COMMENT ON COLUMN celaest.roi_metrics.new_users_count IS 'New users in the period.';
COMMENT ON COLUMN celaest.roi_metrics.metadata IS 'Additional data (JSON object).';
COMMENT ON COLUMN celaest.roi_metrics.created_at IS 'Creation time.';
COMMENT ON COLUMN celaest.roi_metrics.updated_at IS 'Last update time (maintained by trigger).';

-- pg_dump: these rows are user data (see module 10).
SELECT pg_catalog.pg_extension_config_dump('celaest.roi_metrics', '');
-- CELAEST — module 55: ROI (aggregate_roi, roi_summary).
--
-- The ROI of an organization over a period is computed in-database from
-- processed_tasks. The rules, written once in celaest._roi_rollup() and used by
-- both aggregate_roi() (which stores roi_metrics rows) and roi_summary() (which
-- answers for an arbitrary date range without touching roi_metrics):
--
--   * Periods are calendar days in UTC, whatever the session's TimeZone: daily =
--     one day; weekly = ISO week, Monday to Sunday; monthly = calendar month.
--     period_end is the last day of the period (inclusive).
--   * A task belongs to the period that contains its created_at. Only finished
--     tasks count: status completed or failed. Pending, processing and retrying
--     tasks are counted once they finish (re-run aggregate_roi: it is idempotent);
--     cancelled tasks never reached a provider and are left out.
--   * Activity and spend count every finished task, failed ones included (the money
--     was spent): cost_ai = sum of cost_usd, total_tokens, avg_tokens_per_task,
--     active_users_count (distinct users with a finished task in the period).
--   * Value counts only completed tasks (a failed task saved nobody any work):
--       manual minutes of a task = its prompt's metadata->>'manual_minutes',
--           else system_config 'roi.manual_minutes_per_task', else 5;
--       hourly rate (USD) = organizations.settings->'roi'->>'hourly_rate',
--           else system_config 'roi.hourly_rate', else 25;
--       A value that is not a non-negative number is ignored (the next source
--       applies), so one bad prompt cannot break every report.
--       manual_equivalent_minutes = round(sum of manual minutes)
--       ai minutes                = round(sum of execution_time_ms / 60000)
--       time_saved_minutes        = manual_equivalent_minutes - ai minutes
--       cost_manual_equivalent    = round(sum of manual minutes / 60 * hourly rate, 2)
--       money_saved               = cost_manual_equivalent - round(cost_ai, 2)
--     The stored differences are taken between the rounded figures, so that
--     saved = manual - AI holds exactly for every row a dashboard shows.
--     avg / p95 / p99 execution_time_ms: over completed tasks (percentile_cont,
--     rounded to whole milliseconds); NULL when there are none.
--   * success_rate = completed / (completed + failed) * 100, NULL when none.
--   * roi_percent  = (exact manual cost - exact AI cost) / exact AI cost * 100,
--     from the unrounded amounts (a month of AI calls can cost less than a cent),
--     NULL when the AI cost is 0.
--   * new_users_count: users_profile rows of the organization created in the
--     period (soft-deleted ones included: they were new then).

-- ---------------------------------------------------------------------------
-- Internal helpers
-- ---------------------------------------------------------------------------

-- The functions below that are LANGUAGE sql carry no SET clause so that the
-- planner can inline them into the caller's query; every name in them is
-- schema-qualified instead, and they run with the caller's rights.

CREATE FUNCTION celaest._roi_number(p_value text)
RETURNS numeric
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE
               WHEN p_value OPERATOR(pg_catalog.~) '^[[:space:]]*([0-9]+(\.[0-9]*)?|\.[0-9]+)[[:space:]]*$'
               THEN pg_catalog.btrim(p_value)::numeric
           END;
$$;
COMMENT ON FUNCTION celaest._roi_number(text) IS
    'Internal (ROI): the text as a non-negative number, or NULL when it is not one (e.g. "ten", "-3", "1e3"). Used to read manual minutes and hourly rates from JSON settings.';

CREATE FUNCTION celaest._roi_period_start(p_period_type text, p_day date)
RETURNS date
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE p_period_type
               WHEN 'daily'   THEN p_day
               WHEN 'weekly'  THEN pg_catalog.date_trunc('week',  p_day::timestamp)::date
               WHEN 'monthly' THEN pg_catalog.date_trunc('month', p_day::timestamp)::date
           END;
$$;
COMMENT ON FUNCTION celaest._roi_period_start(text, date) IS
    'Internal (ROI): first day of the daily, weekly (ISO, Monday) or monthly period containing the day; NULL for any other period type.';

CREATE FUNCTION celaest._roi_period_end(p_period_type text, p_start date)
RETURNS date
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE p_period_type
               WHEN 'daily'   THEN p_start
               WHEN 'weekly'  THEN p_start + 6
               WHEN 'monthly' THEN (p_start::timestamp + interval '1 month')::date - 1
           END;
$$;
COMMENT ON FUNCTION celaest._roi_period_end(text, date) IS
    'Internal (ROI): last day (inclusive) of the daily, weekly or monthly period that starts on p_start; NULL for any other period type.';

-- The global ROI defaults. plpgsql (its body is resolved at call time) because
-- system_config and _config_default are created by later modules. SECURITY
-- DEFINER: ROI reports must work for callers who may not read system_config
-- (owner-only); this reveals only the two ROI numbers, which the reports imply.
CREATE FUNCTION celaest._roi_defaults(OUT manual_minutes_per_task numeric, OUT hourly_rate numeric)
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT celaest._roi_number(c.value #>> '{}') INTO manual_minutes_per_task
      FROM celaest.system_config AS c
     WHERE c.key = 'roi.manual_minutes_per_task';
    SELECT celaest._roi_number(c.value #>> '{}') INTO hourly_rate
      FROM celaest.system_config AS c
     WHERE c.key = 'roi.hourly_rate';
    -- Unset or unusable: the built-in defaults (5 and 25), kept in one place by
    -- the configuration module (celaest._config_default, module 75).
    manual_minutes_per_task := coalesce(manual_minutes_per_task,
        celaest._roi_number(celaest._config_default('roi.manual_minutes_per_task') #>> '{}'));
    hourly_rate := coalesce(hourly_rate,
        celaest._roi_number(celaest._config_default('roi.hourly_rate') #>> '{}'));
END;
$$;
COMMENT ON FUNCTION celaest._roi_defaults() IS
    'Internal (ROI): the global defaults: system_config roi.manual_minutes_per_task (else 5 minutes) and roi.hourly_rate (else 25 USD per hour). Values that are not non-negative numbers are ignored.';

-- The ROI math, written once. One row per (organization, period, dimension key):
--   p_period_type  'daily' | 'weekly' | 'monthly': every period overlapping
--                  [p_from, p_to], whole periods (a weekly run from a Wednesday
--                  covers the week from its Monday);
--                  'range': one period, exactly [p_from, p_to].
--   p_org_id       one organization, or NULL for every live organization and any
--                  soft-deleted one with tasks in the window.
--   p_dimension    'total': one row per organization and period, dense (periods
--                  without tasks give a row of zeros);
--                  'model' / 'prompt': one row per model / prompt with finished
--                  tasks (dim_id NULL: tasks whose model / prompt is unknown).
-- The callers validate the arguments; this function trusts them.
CREATE FUNCTION celaest._roi_rollup(
    p_period_type text,
    p_from        date,
    p_to          date,
    p_org_id      uuid,
    p_dimension   text DEFAULT 'total'
)
RETURNS TABLE (
    organization_id           uuid,
    period_start              date,
    period_end                date,
    dim_id                    uuid,
    tasks_completed           bigint,
    tasks_failed              bigint,
    success_rate              numeric,
    manual_equivalent_minutes bigint,
    time_saved_minutes        bigint,
    cost_ai                   numeric,
    cost_manual_equivalent    numeric,
    money_saved               numeric,
    cost_ai_exact             numeric,
    roi_percent               numeric,
    total_tokens              bigint,
    avg_tokens_per_task       integer,
    avg_execution_time_ms     integer,
    p95_execution_time_ms     integer,
    p99_execution_time_ms     integer,
    active_users_count        integer,
    new_users_count           integer,
    hourly_rate               numeric
)
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
WITH
defaults AS (
    SELECT d.manual_minutes_per_task, d.hourly_rate FROM celaest._roi_defaults() AS d
),
bounds AS (
    SELECT b.lo, b.last_start,
           b.lo::timestamp AT TIME ZONE 'UTC'             AS lo_ts,
           (b.last_end + 1)::timestamp AT TIME ZONE 'UTC' AS hi_ts
      FROM (SELECT CASE WHEN p_period_type = 'range' THEN p_from
                        ELSE celaest._roi_period_start(p_period_type, p_from) END AS lo,
                   CASE WHEN p_period_type = 'range' THEN p_from
                        ELSE celaest._roi_period_start(p_period_type, p_to) END AS last_start,
                   CASE WHEN p_period_type = 'range' THEN p_to
                        ELSE celaest._roi_period_end(p_period_type,
                                 celaest._roi_period_start(p_period_type, p_to)) END AS last_end) AS b
),
periods AS (
    SELECT s.d::date AS period_start,
           CASE WHEN p_period_type = 'range' THEN p_to
                ELSE celaest._roi_period_end(p_period_type, s.d::date) END AS period_end
      FROM bounds AS b,
           pg_catalog.generate_series(b.lo::timestamp, b.last_start::timestamp,
                                      CASE p_period_type WHEN 'weekly'  THEN interval '1 week'
                                                         WHEN 'monthly' THEN interval '1 month'
                                                         ELSE interval '1 day' END) AS s(d)
),
orgs AS (
    SELECT o.id,
           coalesce(celaest._roi_number(o.settings -> 'roi' ->> 'hourly_rate'), df.hourly_rate) AS hourly_rate
      FROM celaest.organizations AS o, defaults AS df, bounds AS b
     WHERE (p_org_id IS NULL OR o.id = p_org_id)
       AND (o.deleted_at IS NULL
            OR p_org_id IS NOT NULL
            OR EXISTS (SELECT 1 FROM celaest.processed_tasks AS t
                        WHERE t.organization_id = o.id
                          AND t.created_at >= b.lo_ts AND t.created_at < b.hi_ts))
),
tasks AS (
    SELECT t.organization_id,
           CASE WHEN p_period_type = 'range' THEN p_from
                ELSE celaest._roi_period_start(p_period_type, (t.created_at AT TIME ZONE 'UTC')::date) END
               AS period_start,
           CASE p_dimension WHEN 'model' THEN t.model_id WHEN 'prompt' THEN t.prompt_id END AS dim_id,
           t.user_id,
           t.status = 'completed'::celaest.task_status AS completed,
           t.cost_usd,
           t.tokens_total,
           t.execution_time_ms,
           CASE WHEN t.status = 'completed'::celaest.task_status
                THEN coalesce(celaest._roi_number(p.metadata ->> 'manual_minutes'), df.manual_minutes_per_task)
           END AS manual_minutes
      FROM celaest.processed_tasks AS t
      JOIN orgs AS o ON o.id = t.organization_id
      LEFT JOIN celaest.prompts_master AS p ON p.id = t.prompt_id
     CROSS JOIN bounds AS b
     CROSS JOIN defaults AS df
     WHERE t.created_at >= b.lo_ts AND t.created_at < b.hi_ts
       AND t.status IN ('completed'::celaest.task_status, 'failed'::celaest.task_status)
),
agg AS (
    SELECT k.organization_id, k.period_start, k.dim_id,
           count(*) FILTER (WHERE k.completed)                          AS tasks_completed,
           count(*) FILTER (WHERE NOT k.completed)                      AS tasks_failed,
           count(*)                                                     AS tasks_finished,
           coalesce(sum(k.manual_minutes), 0)                           AS manual_minutes,
           coalesce(sum(k.execution_time_ms) FILTER (WHERE k.completed), 0) AS ai_ms,
           sum(k.cost_usd)                                              AS cost_ai,
           sum(k.tokens_total)                                          AS total_tokens,
           avg(k.execution_time_ms) FILTER (WHERE k.completed)          AS avg_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY k.execution_time_ms) FILTER (WHERE k.completed) AS p95_ms,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY k.execution_time_ms) FILTER (WHERE k.completed) AS p99_ms,
           count(DISTINCT k.user_id)                                    AS active_users
      FROM tasks AS k
     GROUP BY k.organization_id, k.period_start, k.dim_id
),
new_users AS (
    SELECT u.organization_id,
           CASE WHEN p_period_type = 'range' THEN p_from
                ELSE celaest._roi_period_start(p_period_type, (u.created_at AT TIME ZONE 'UTC')::date) END
               AS period_start,
           count(*) AS new_users
      FROM celaest.users_profile AS u
      JOIN orgs AS o ON o.id = u.organization_id
     CROSS JOIN bounds AS b
     WHERE u.created_at >= b.lo_ts AND u.created_at < b.hi_ts
     GROUP BY 1, 2
),
figures AS (
    SELECT o.id AS organization_id, pr.period_start, pr.period_end, a.dim_id,
           coalesce(a.tasks_completed, 0)                                   AS tasks_completed,
           coalesce(a.tasks_failed, 0)                                      AS tasks_failed,
           coalesce(a.tasks_finished, 0)                                    AS tasks_finished,
           round(coalesce(a.manual_minutes, 0))::bigint                     AS manual_minutes_rounded,
           round(coalesce(a.ai_ms, 0) / 60000.0)::bigint                    AS ai_minutes_rounded,
           coalesce(a.cost_ai, 0::numeric(10,6))                            AS cost_ai_exact,
           coalesce(a.manual_minutes, 0) * o.hourly_rate / 60               AS cost_manual_exact,
           coalesce(a.total_tokens, 0)                                      AS total_tokens,
           a.avg_ms, a.p95_ms, a.p99_ms,
           coalesce(a.active_users, 0)                                      AS active_users,
           coalesce(nu.new_users, 0)                                        AS new_users,
           o.hourly_rate
      FROM orgs AS o
     CROSS JOIN periods AS pr
      LEFT JOIN agg AS a ON a.organization_id = o.id AND a.period_start = pr.period_start
      LEFT JOIN new_users AS nu ON nu.organization_id = o.id AND nu.period_start = pr.period_start
     WHERE p_dimension = 'total' OR a.organization_id IS NOT NULL
)
SELECT f.organization_id,
       f.period_start,
       f.period_end,
       f.dim_id,
       f.tasks_completed,
       f.tasks_failed,
       round(100.0 * f.tasks_completed / nullif(f.tasks_finished, 0), 2),
       f.manual_minutes_rounded,
       f.manual_minutes_rounded - f.ai_minutes_rounded,
       round(f.cost_ai_exact, 2),
       round(f.cost_manual_exact, 2),
       round(f.cost_manual_exact, 2) - round(f.cost_ai_exact, 2),
       f.cost_ai_exact,
       round((f.cost_manual_exact - f.cost_ai_exact) * 100 / nullif(f.cost_ai_exact, 0), 2),
       f.total_tokens,
       round(f.total_tokens::numeric / nullif(f.tasks_finished, 0))::integer,
       round(f.avg_ms)::integer,
       round(f.p95_ms)::integer,
       round(f.p99_ms)::integer,
       f.active_users::integer,
       f.new_users::integer,
       f.hourly_rate
  FROM figures AS f;
$$;
COMMENT ON FUNCTION celaest._roi_rollup(text, date, date, uuid, text) IS
    'Internal (ROI): the ROI figures of every organization (or one) per daily/weekly/monthly period overlapping [p_from, p_to], or for the exact range (''range''), in total or per model / prompt (p_dimension). Shared by aggregate_roi and roi_summary; arguments are not validated here.';

-- ---------------------------------------------------------------------------
-- aggregate_roi
-- ---------------------------------------------------------------------------
-- SECURITY INVOKER: it reads tasks and writes roi_metrics with the caller's rights
-- (a maintenance job or an administrator; row-level security applies).
CREATE FUNCTION celaest.aggregate_roi(
    p_period_type text,
    p_from        date,
    p_to          date DEFAULT NULL,
    p_org_id      uuid DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_to    date := coalesce(p_to, p_from);
    v_count integer;
BEGIN
    IF p_period_type IS NULL OR p_period_type NOT IN ('daily', 'weekly', 'monthly') THEN
        RAISE EXCEPTION 'celaest.aggregate_roi: invalid period type %', coalesce(quote_literal(p_period_type), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The period type is ''daily'', ''weekly'' or ''monthly''.';
    END IF;
    IF p_from IS NULL THEN
        RAISE EXCEPTION 'celaest.aggregate_roi: p_from must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_to < p_from THEN
        RAISE EXCEPTION 'celaest.aggregate_roi: p_to % is before p_from %', v_to, p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_org_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM celaest.organizations AS o WHERE o.id = p_org_id) THEN
        RAISE EXCEPTION 'organization % does not exist', p_org_id
            USING ERRCODE = 'no_data_found',
                  DETAIL = 'There is no row in celaest.organizations with this id.';
    END IF;

    -- Rows whose figures did not change are not rewritten (updated_at keeps the
    -- time the numbers last changed); they are still counted: the result is the
    -- number of (organization, period) rows that are now current.
    WITH computed AS (
        SELECT r.*
          FROM celaest._roi_rollup(p_period_type, p_from, v_to, p_org_id, 'total') AS r
    ),
    upserted AS (
        INSERT INTO celaest.roi_metrics AS m
            (organization_id, period_type, period_start, period_end,
             tasks_completed, tasks_failed, success_rate,
             time_saved_minutes, manual_equivalent_minutes,
             cost_ai, cost_manual_equivalent, money_saved,
             total_tokens, avg_tokens_per_task,
             avg_execution_time_ms, p95_execution_time_ms, p99_execution_time_ms,
             active_users_count, new_users_count, metadata)
        SELECT c.organization_id, p_period_type, c.period_start, c.period_end,
               c.tasks_completed, c.tasks_failed, c.success_rate,
               c.time_saved_minutes, c.manual_equivalent_minutes,
               c.cost_ai, c.cost_manual_equivalent, c.money_saved,
               c.total_tokens, c.avg_tokens_per_task,
               c.avg_execution_time_ms, c.p95_execution_time_ms, c.p99_execution_time_ms,
               c.active_users_count, c.new_users_count,
               jsonb_build_object('roi_percent', c.roi_percent,
                                  'cost_ai_exact', c.cost_ai_exact,
                                  'hourly_rate', c.hourly_rate)
          FROM computed AS c
        ON CONFLICT (organization_id, period_type, period_start) DO UPDATE
           SET period_end                = EXCLUDED.period_end,
               tasks_completed           = EXCLUDED.tasks_completed,
               tasks_failed              = EXCLUDED.tasks_failed,
               success_rate              = EXCLUDED.success_rate,
               time_saved_minutes        = EXCLUDED.time_saved_minutes,
               manual_equivalent_minutes = EXCLUDED.manual_equivalent_minutes,
               cost_ai                   = EXCLUDED.cost_ai,
               cost_manual_equivalent    = EXCLUDED.cost_manual_equivalent,
               money_saved               = EXCLUDED.money_saved,
               total_tokens              = EXCLUDED.total_tokens,
               avg_tokens_per_task       = EXCLUDED.avg_tokens_per_task,
               avg_execution_time_ms     = EXCLUDED.avg_execution_time_ms,
               p95_execution_time_ms     = EXCLUDED.p95_execution_time_ms,
               p99_execution_time_ms     = EXCLUDED.p99_execution_time_ms,
               active_users_count        = EXCLUDED.active_users_count,
               new_users_count           = EXCLUDED.new_users_count,
               -- Keys other than ours in metadata are kept.
               metadata                  = m.metadata || EXCLUDED.metadata
         WHERE (m.period_end, m.tasks_completed, m.tasks_failed, m.success_rate,
                m.time_saved_minutes, m.manual_equivalent_minutes,
                m.cost_ai, m.cost_manual_equivalent, m.money_saved,
                m.total_tokens, m.avg_tokens_per_task,
                m.avg_execution_time_ms, m.p95_execution_time_ms, m.p99_execution_time_ms,
                m.active_users_count, m.new_users_count, m.metadata)
               IS DISTINCT FROM
               (EXCLUDED.period_end, EXCLUDED.tasks_completed, EXCLUDED.tasks_failed, EXCLUDED.success_rate,
                EXCLUDED.time_saved_minutes, EXCLUDED.manual_equivalent_minutes,
                EXCLUDED.cost_ai, EXCLUDED.cost_manual_equivalent, EXCLUDED.money_saved,
                EXCLUDED.total_tokens, EXCLUDED.avg_tokens_per_task,
                EXCLUDED.avg_execution_time_ms, EXCLUDED.p95_execution_time_ms, EXCLUDED.p99_execution_time_ms,
                EXCLUDED.active_users_count, EXCLUDED.new_users_count, m.metadata || EXCLUDED.metadata)
        RETURNING 1
    )
    SELECT count(*) INTO v_count FROM computed;

    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION celaest.aggregate_roi(text, date, date, uuid) IS
    'Computes roi_metrics rows from processed_tasks for every daily, weekly (ISO, Monday-Sunday) or monthly period (UTC calendar days) overlapping [p_from, coalesce(p_to, p_from)], for one organization or all (live ones, plus soft-deleted ones with tasks in the window), and upserts them; idempotent. Every period gets a row, zeros included. Only completed and failed tasks count; manual minutes (prompt metadata manual_minutes, else system_config roi.manual_minutes_per_task, else 5) and time saved count completed tasks only; cost_ai counts both. metadata gets roi_percent, cost_ai_exact and hourly_rate. Returns the number of rows computed (unchanged rows are not rewritten). Raises 22023 for a bad period type or p_to < p_from, P0002 for an unknown organization.';

-- ---------------------------------------------------------------------------
-- roi_summary
-- ---------------------------------------------------------------------------
-- SECURITY INVOKER: a tenant sees its own figures through row-level security.
CREATE FUNCTION celaest.roi_summary(p_org_id uuid, p_from date, p_to date)
RETURNS jsonb
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org      uuid := coalesce(p_org_id, celaest.current_org_id());
    v_to       date := coalesce(p_to, p_from);
    v_result   jsonb;
    v_by_model jsonb;
    v_by_prompt jsonb;
BEGIN
    IF v_org IS NULL THEN
        RAISE EXCEPTION 'celaest.roi_summary: no organization given and the acting user belongs to none'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_from IS NULL THEN
        RAISE EXCEPTION 'celaest.roi_summary: p_from must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_to < p_from THEN
        RAISE EXCEPTION 'celaest.roi_summary: p_to % is before p_from %', v_to, p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM celaest.organizations AS o WHERE o.id = v_org) THEN
        RAISE EXCEPTION 'organization % does not exist', v_org
            USING ERRCODE = 'no_data_found',
                  DETAIL = 'There is no row in celaest.organizations with this id.';
    END IF;

    SELECT jsonb_build_object(
               'organization_id',           r.organization_id,
               'from',                      r.period_start,
               'to',                        r.period_end,
               'tasks_completed',           r.tasks_completed,
               'tasks_failed',              r.tasks_failed,
               'success_rate',              r.success_rate,
               'manual_equivalent_minutes', r.manual_equivalent_minutes,
               'time_saved_minutes',        r.time_saved_minutes,
               'time_saved_hours',          round(r.time_saved_minutes / 60.0, 2),
               'cost_ai',                   r.cost_ai,
               'cost_ai_exact',             r.cost_ai_exact,
               'cost_manual_equivalent',    r.cost_manual_equivalent,
               'money_saved',               r.money_saved,
               'roi_percent',               r.roi_percent,
               'hourly_rate',               r.hourly_rate,
               'currency',                  'USD',
               'total_tokens',              r.total_tokens,
               'avg_tokens_per_task',       r.avg_tokens_per_task,
               'avg_execution_time_ms',     r.avg_execution_time_ms,
               'p95_execution_time_ms',     r.p95_execution_time_ms,
               'p99_execution_time_ms',     r.p99_execution_time_ms,
               'active_users_count',        r.active_users_count,
               'new_users_count',           r.new_users_count)
      INTO v_result
      FROM celaest._roi_rollup('range', p_from, v_to, v_org, 'total') AS r;

    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'model_id',               r.dim_id,
               'provider',               m.provider,
               'model',                  m.model_id,
               'display_name',           m.display_name,
               'tasks_completed',        r.tasks_completed,
               'tasks_failed',           r.tasks_failed,
               'success_rate',           r.success_rate,
               'manual_equivalent_minutes', r.manual_equivalent_minutes,
               'time_saved_minutes',     r.time_saved_minutes,
               'cost_ai',                r.cost_ai,
               'cost_ai_exact',          r.cost_ai_exact,
               'cost_manual_equivalent', r.cost_manual_equivalent,
               'money_saved',            r.money_saved,
               'roi_percent',            r.roi_percent,
               'total_tokens',           r.total_tokens,
               'avg_execution_time_ms',  r.avg_execution_time_ms,
               'p95_execution_time_ms',  r.p95_execution_time_ms)
             ORDER BY r.tasks_completed DESC, r.cost_ai_exact DESC, m.model_id NULLS LAST, r.dim_id), '[]')
      INTO v_by_model
      FROM celaest._roi_rollup('range', p_from, v_to, v_org, 'model') AS r
      LEFT JOIN celaest.ai_models AS m ON m.id = r.dim_id;

    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'prompt_id',              r.dim_id,
               'slug',                   p.slug,
               'version',                p.version,
               'name',                   p.name,
               'tasks_completed',        r.tasks_completed,
               'tasks_failed',           r.tasks_failed,
               'success_rate',           r.success_rate,
               'manual_equivalent_minutes', r.manual_equivalent_minutes,
               'time_saved_minutes',     r.time_saved_minutes,
               'cost_ai',                r.cost_ai,
               'cost_ai_exact',          r.cost_ai_exact,
               'cost_manual_equivalent', r.cost_manual_equivalent,
               'money_saved',            r.money_saved,
               'roi_percent',            r.roi_percent,
               'total_tokens',           r.total_tokens,
               'avg_execution_time_ms',  r.avg_execution_time_ms,
               'p95_execution_time_ms',  r.p95_execution_time_ms)
             ORDER BY r.tasks_completed DESC, r.cost_ai_exact DESC, p.slug NULLS LAST, p.version, r.dim_id), '[]')
      INTO v_by_prompt
      FROM celaest._roi_rollup('range', p_from, v_to, v_org, 'prompt') AS r
      LEFT JOIN celaest.prompts_master AS p ON p.id = r.dim_id;

    RETURN v_result || jsonb_build_object('by_model', v_by_model, 'by_prompt', v_by_prompt);
END;
$$;
COMMENT ON FUNCTION celaest.roi_summary(uuid, date, date) IS
    'ROI of one organization (NULL: the acting user''s) over the UTC days [p_from, p_to] (p_to NULL: one day), computed straight from processed_tasks with the same rules as aggregate_roi: {organization_id, from, to, tasks_completed, tasks_failed, success_rate, manual_equivalent_minutes, time_saved_minutes, time_saved_hours, cost_ai, cost_ai_exact, cost_manual_equivalent, money_saved, roi_percent (NULL when the AI cost is 0), hourly_rate, currency, total_tokens, avg_tokens_per_task, avg/p95/p99_execution_time_ms, active_users_count, new_users_count, by_model: [...], by_prompt: [...]}. Raises 22023 for NULL p_from or p_to < p_from, P0002 for an unknown organization.';
-- CELAEST — module 60: audit (audit_logs, telemetry_events), log_audit() and
-- automatic auditing of licenses, plans, the API pool and user access rights.
-- (feature_flags and system_config get their audit triggers in module 70, after
-- their tables.)

-- ---------------------------------------------------------------------------
-- audit_logs
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.audit_logs (
    id            UUID            NOT NULL DEFAULT uuid_generate_v4(),
    user_id       UUID,
    organization_id UUID,
    action        celaest.audit_action NOT NULL,
    resource_type VARCHAR(100)    NOT NULL,
    resource_id   UUID,
    description   TEXT,
    changes       JSONB,
    request_id    VARCHAR(100),
    ip_address    INET,
    user_agent    VARCHAR(500),
    success       BOOLEAN         NOT NULL DEFAULT TRUE,
    error_message TEXT,
    created_at    TIMESTAMPTZ     NOT NULL DEFAULT NOW(),

    CONSTRAINT audit_logs_pkey PRIMARY KEY (id),
    -- NO ACTION (API.md): a user or organization with audit history is
    -- soft-deleted, never removed. SET NULL or CASCADE could not work anyway:
    -- they would UPDATE or DELETE audit rows, which this table refuses.
    CONSTRAINT audit_logs_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES celaest.users_profile (id) ON DELETE NO ACTION,
    CONSTRAINT audit_logs_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES celaest.organizations (id) ON DELETE NO ACTION,
    CONSTRAINT audit_logs_resource_type_not_blank CHECK (btrim(resource_type) <> ''),
    CONSTRAINT audit_logs_changes_is_object CHECK (changes IS NULL OR jsonb_typeof(changes) = 'object')
);

-- Tenant history, newest first (also serves the organization_id FK).
CREATE INDEX audit_logs_organization_id_created_at_idx ON celaest.audit_logs (organization_id, created_at);
CREATE INDEX audit_logs_user_id_idx ON celaest.audit_logs (user_id);
-- "History of this license / key / flag".
CREATE INDEX audit_logs_resource_idx ON celaest.audit_logs (resource_type, resource_id);
-- Time ranges across tenants (compliance exports), newest first.
CREATE INDEX audit_logs_created_at_idx ON celaest.audit_logs (created_at);

COMMENT ON TABLE celaest.audit_logs IS
    'Immutable audit log for compliance and debugging. Append-only for every role, owner and superusers included: UPDATE, DELETE and TRUNCATE raise 42501.';
COMMENT ON COLUMN celaest.audit_logs.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.audit_logs.user_id IS 'Acting user (FK -> users_profile); NULL for system actions.';
COMMENT ON COLUMN celaest.audit_logs.organization_id IS 'Organization concerned (FK -> organizations); NULL for global resources.';
COMMENT ON COLUMN celaest.audit_logs.action IS 'Action type.';
COMMENT ON COLUMN celaest.audit_logs.resource_type IS 'Resource type, e.g. license, subscription_plan, api_key, user, feature_flag, system_config.';
COMMENT ON COLUMN celaest.audit_logs.resource_id IS 'Resource id.';
COMMENT ON COLUMN celaest.audit_logs.description IS 'Description.';
COMMENT ON COLUMN celaest.audit_logs.changes IS 'Before/after values (JSON object {"before": ..., "after": ...}); secrets masked as "***".';
COMMENT ON COLUMN celaest.audit_logs.request_id IS 'Correlation id (setting celaest.request_id).';
COMMENT ON COLUMN celaest.audit_logs.ip_address IS 'Client IP address (setting celaest.client_ip).';
COMMENT ON COLUMN celaest.audit_logs.user_agent IS 'Client user agent (setting celaest.user_agent).';
COMMENT ON COLUMN celaest.audit_logs.success IS 'Whether the operation succeeded.';
COMMENT ON COLUMN celaest.audit_logs.error_message IS 'Error message, when the operation failed.';
COMMENT ON COLUMN celaest.audit_logs.created_at IS 'Event time.';

-- Append-only, for every role. The triggers are ENABLE ALWAYS so that they also
-- fire under session_replication_role = replica.
CREATE FUNCTION celaest.audit_logs_refuse_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'celaest.audit_logs is append-only'
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = format('%s of audit entries is not allowed, for any role.', TG_OP),
              HINT = 'Audit entries are never changed or removed; record a correction with celaest.log_audit().';
END;
$$;
COMMENT ON FUNCTION celaest.audit_logs_refuse_change() IS
    'Trigger function that keeps celaest.audit_logs append-only: raises 42501 on UPDATE, DELETE and TRUNCATE.';

CREATE TRIGGER audit_logs_no_update_delete
    BEFORE UPDATE OR DELETE ON celaest.audit_logs
    FOR EACH ROW EXECUTE FUNCTION celaest.audit_logs_refuse_change();
CREATE TRIGGER audit_logs_no_truncate
    BEFORE TRUNCATE ON celaest.audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION celaest.audit_logs_refuse_change();
ALTER TABLE celaest.audit_logs ENABLE ALWAYS TRIGGER audit_logs_no_update_delete;
ALTER TABLE celaest.audit_logs ENABLE ALWAYS TRIGGER audit_logs_no_truncate;

-- ---------------------------------------------------------------------------
-- telemetry_events
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.telemetry_events (
    id              UUID            NOT NULL DEFAULT uuid_generate_v4(),
    organization_id UUID,
    user_id         UUID,
    session_id      VARCHAR(100),
    event_type      VARCHAR(100)    NOT NULL,
    event_category  VARCHAR(50),
    event_name      VARCHAR(200)    NOT NULL,
    properties      JSONB           NOT NULL DEFAULT '{}',
    page_url        VARCHAR(500),
    referrer        VARCHAR(500),
    ip_address      INET,
    user_agent      VARCHAR(500),
    device_type     VARCHAR(20),
    browser         VARCHAR(50),
    os              VARCHAR(50),
    created_at      TIMESTAMPTZ     NOT NULL DEFAULT NOW(),

    CONSTRAINT telemetry_events_pkey PRIMARY KEY (id),
    -- SET NULL: behavioural analytics are anonymised, not lost, when their
    -- organization or user is removed.
    CONSTRAINT telemetry_events_organization_id_fkey FOREIGN KEY (organization_id)
        REFERENCES celaest.organizations (id) ON DELETE SET NULL,
    CONSTRAINT telemetry_events_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES celaest.users_profile (id) ON DELETE SET NULL,
    CONSTRAINT telemetry_events_event_type_not_blank CHECK (btrim(event_type) <> ''),
    CONSTRAINT telemetry_events_event_name_not_blank CHECK (btrim(event_name) <> ''),
    CONSTRAINT telemetry_events_properties_is_object CHECK (jsonb_typeof(properties) = 'object'),
    CONSTRAINT telemetry_events_device_type_valid CHECK (device_type IN ('desktop', 'mobile', 'tablet'))
);

-- Tenant analytics by time (also serves the organization_id FK).
CREATE INDEX telemetry_events_organization_id_created_at_idx ON celaest.telemetry_events (organization_id, created_at);
CREATE INDEX telemetry_events_user_id_idx ON celaest.telemetry_events (user_id);
-- High-volume, append-only, physically in time order: a BRIN index answers time
-- ranges at a tiny fraction of a B-tree's size.
CREATE INDEX telemetry_events_created_at_brin ON celaest.telemetry_events USING brin (created_at);

COMMENT ON TABLE celaest.telemetry_events IS
    'Telemetry events for behavioural analytics.';
COMMENT ON COLUMN celaest.telemetry_events.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.telemetry_events.organization_id IS 'Organization (FK -> organizations).';
COMMENT ON COLUMN celaest.telemetry_events.user_id IS 'User (FK -> users_profile).';
COMMENT ON COLUMN celaest.telemetry_events.session_id IS 'Session id.';
COMMENT ON COLUMN celaest.telemetry_events.event_type IS 'Event type.';
COMMENT ON COLUMN celaest.telemetry_events.event_category IS 'Event category.';
COMMENT ON COLUMN celaest.telemetry_events.event_name IS 'Event name.';
COMMENT ON COLUMN celaest.telemetry_events.properties IS 'Event properties (JSON object).';
COMMENT ON COLUMN celaest.telemetry_events.page_url IS 'Page URL.';
COMMENT ON COLUMN celaest.telemetry_events.referrer IS 'Referrer.';
COMMENT ON COLUMN celaest.telemetry_events.ip_address IS 'Client IP address.';
COMMENT ON COLUMN celaest.telemetry_events.user_agent IS 'Client user agent.';
COMMENT ON COLUMN celaest.telemetry_events.device_type IS 'Device type: desktop, mobile or tablet.';
COMMENT ON COLUMN celaest.telemetry_events.browser IS 'Browser.';
COMMENT ON COLUMN celaest.telemetry_events.os IS 'Operating system.';
COMMENT ON COLUMN celaest.telemetry_events.created_at IS 'Event time.';

-- pg_dump: these rows are user data (see module 10).
SELECT pg_catalog.pg_extension_config_dump('celaest.audit_logs', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.telemetry_events', '');

-- ---------------------------------------------------------------------------
-- log_audit (data dictionary, "Funciones Disponibles")
-- ---------------------------------------------------------------------------
-- SECURITY INVOKER: writing audit rows takes INSERT on audit_logs (and passes its
-- row-level security), so nobody can forge entries for other users or tenants
-- through this function. The extension's own SECURITY DEFINER code calls it freely.
-- p_user_id is stored as given: NULL records a system action.
CREATE FUNCTION celaest.log_audit(
    p_user_id       uuid,
    p_org_id        uuid,
    p_action        celaest.audit_action,
    p_resource_type text,
    p_resource_id   uuid,
    p_description   text,
    p_changes       jsonb DEFAULT NULL
)
RETURNS uuid
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id         uuid;
    v_request_id text := nullif(btrim(current_setting('celaest.request_id', true)), '');
    v_client_ip  text := nullif(btrim(current_setting('celaest.client_ip', true)), '');
    v_user_agent text := nullif(btrim(current_setting('celaest.user_agent', true)), '');
BEGIN
    IF p_resource_type IS NULL OR btrim(p_resource_type) = '' THEN
        RAISE EXCEPTION 'celaest.log_audit: p_resource_type must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the kind of resource, e.g. ''license''.';
    END IF;
    IF p_action IS NULL THEN
        RAISE EXCEPTION 'celaest.log_audit: p_action must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_changes IS NOT NULL AND jsonb_typeof(p_changes) <> 'object' THEN
        RAISE EXCEPTION 'celaest.log_audit: p_changes must be a JSON object, not %', jsonb_typeof(p_changes)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass {"before": {...}, "after": {...}} or NULL.';
    END IF;

    -- Request context comes from the session settings. Over-long values are cut to
    -- the column width: an audit write must not fail because a header was long.
    -- A malformed celaest.client_ip is a caller bug and fails the inet cast (22P02).
    INSERT INTO celaest.audit_logs
        (user_id, organization_id, action, resource_type, resource_id, description, changes,
         request_id, ip_address, user_agent)
    VALUES
        (p_user_id, p_org_id, p_action, p_resource_type, p_resource_id, p_description, p_changes,
         left(v_request_id, 100), v_client_ip::inet, left(v_user_agent, 500))
    RETURNING id INTO v_id;

    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION celaest.log_audit(uuid, uuid, celaest.audit_action, text, uuid, text, jsonb) IS
    'Appends one entry to celaest.audit_logs and returns its id. request_id, ip_address and user_agent come from the settings celaest.request_id, celaest.client_ip and celaest.user_agent when set. Raises 22023 for an empty resource type, a NULL action or non-object changes.';

-- ---------------------------------------------------------------------------
-- Automatic auditing
-- ---------------------------------------------------------------------------
-- One AFTER ROW trigger function for every audited table; TG_ARGV[0] is the
-- resource_type recorded. changes = {"before": {...}, "after": {...}}: for an
-- UPDATE only the columns that changed (updated_at aside); for an INSERT the whole
-- new row (before = null); for a DELETE the whole old row (after = null).
--
-- Per table:
--   licenses      license_key masked (it is a bearer credential).
--   ai_api_pool   key_value_encrypted masked, always.
--   system_config value masked on each side whose is_sensitive is true; the key
--                 (not a uuid) goes into the description.
--   users_profile only access-relevant columns (id, organization_id, role, scopes,
--                 deleted_at) are copied: audit rows can never be erased, so
--                 personal data (names, email, phone, preferences) stays out.
-- Which UPDATEs are audited at all is decided by the triggers' WHEN clauses, so a
-- skipped update costs neither a queued trigger event nor a function call.
--
-- SECURITY DEFINER: the audit row must be written whoever changes the audited
-- table, whatever their own rights on audit_logs.
CREATE FUNCTION celaest.audit_row_change()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_resource_type text := TG_ARGV[0];
    v_old           jsonb;
    v_new           jsonb;
    v_row           jsonb;
    v_before        jsonb;
    v_after         jsonb;
    v_changed       text[];
    v_action        celaest.audit_action;
    v_actor         uuid;
    v_org           uuid;
    v_resource_id   uuid;
    v_label         text;
    v_description   text;
    v_keep          text[];
    v_mask          text   := NULL;
    k               text;
BEGIN
    -- It runs with the owner's rights: refuse to serve any table but ours.
    IF TG_TABLE_SCHEMA <> 'celaest' OR TG_WHEN <> 'AFTER' OR TG_LEVEL <> 'ROW' THEN
        RAISE EXCEPTION 'celaest.audit_row_change() only audits CELAEST tables (AFTER ... FOR EACH ROW)'
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    IF TG_OP = 'INSERT' THEN
        v_new := to_jsonb(NEW);
        v_action := 'create';
    ELSIF TG_OP = 'UPDATE' THEN
        v_old := to_jsonb(OLD);
        v_new := to_jsonb(NEW);
        v_action := 'update';
    ELSE
        v_old := to_jsonb(OLD);
        v_action := 'delete';
    END IF;
    v_row := COALESCE(v_new, v_old);

    IF TG_TABLE_NAME = 'users_profile' THEN
        v_keep := ARRAY['id', 'organization_id', 'role', 'scopes', 'deleted_at'];
        SELECT jsonb_object_agg(e.key, e.value) INTO v_old FROM jsonb_each(v_old) AS e WHERE e.key = ANY (v_keep);
        SELECT jsonb_object_agg(e.key, e.value) INTO v_new FROM jsonb_each(v_new) AS e WHERE e.key = ANY (v_keep);
    END IF;

    IF TG_OP = 'UPDATE' THEN
        SELECT jsonb_object_agg(n.key, o.value),
               jsonb_object_agg(n.key, n.value),
               array_agg(n.key ORDER BY n.key)
          INTO v_before, v_after, v_changed
          FROM jsonb_each(v_new) AS n
          JOIN jsonb_each(v_old) AS o ON o.key = n.key
         WHERE n.value IS DISTINCT FROM o.value
           AND n.key <> 'updated_at';
        IF v_changed IS NULL THEN
            RETURN NULL;            -- nothing but updated_at changed
        END IF;
    ELSE
        v_before := v_old;          -- NULL for INSERT
        v_after := v_new;           -- NULL for DELETE
    END IF;

    -- Secrets.
    IF TG_TABLE_NAME = 'licenses' THEN
        v_mask := 'license_key';
    ELSIF TG_TABLE_NAME = 'ai_api_pool' THEN
        v_mask := 'key_value_encrypted';
    END IF;
    IF v_mask IS NOT NULL THEN
        IF v_before ? v_mask THEN v_before := jsonb_set(v_before, ARRAY[v_mask], '"***"'); END IF;
        IF v_after ? v_mask THEN v_after := jsonb_set(v_after, ARRAY[v_mask], '"***"'); END IF;
    END IF;
    IF TG_TABLE_NAME = 'system_config' THEN
        IF v_before ? 'value' AND (v_old ->> 'is_sensitive')::boolean THEN
            v_before := jsonb_set(v_before, '{value}', '"***"');
        END IF;
        IF v_after ? 'value' AND (v_new ->> 'is_sensitive')::boolean THEN
            v_after := jsonb_set(v_after, '{value}', '"***"');
        END IF;
    END IF;

    -- Who, for whom, on what.
    v_actor := celaest.current_user_id_or_null();
    IF v_actor IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM celaest.users_profile AS u WHERE u.id = v_actor) THEN
        -- An id with no profile (or the profile this very statement deleted) cannot
        -- be referenced; keep it in the description instead of failing the change.
        v_label := format(' by unknown user %s', v_actor);
        v_actor := NULL;
    END IF;
    IF v_row ? 'organization_id' THEN
        v_org := (v_row ->> 'organization_id')::uuid;
    END IF;
    IF TG_TABLE_NAME = 'system_config' THEN
        v_resource_id := NULL;
        k := format(' %L', v_row ->> 'key');
    ELSE
        v_resource_id := (v_row ->> 'id')::uuid;
        k := CASE TG_TABLE_NAME
                 WHEN 'subscription_plans' THEN format(' %L', v_row ->> 'code')
                 WHEN 'feature_flags'      THEN format(' %L', v_row ->> 'flag_key')
                 WHEN 'ai_api_pool'        THEN format(' %L', v_row ->> 'key_name')
                 ELSE ''
             END;
    END IF;
    v_description := v_resource_type || k || ' '
        || CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END
        || CASE WHEN TG_OP = 'UPDATE' THEN ' (' || array_to_string(v_changed, ', ') || ')' ELSE '' END
        || COALESCE(v_label, '');

    PERFORM celaest.log_audit(v_actor, v_org, v_action, v_resource_type, v_resource_id, v_description,
                              jsonb_build_object('before', v_before, 'after', v_after));
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION celaest.audit_row_change() IS
    'AFTER ROW trigger function that records an INSERT, UPDATE or DELETE in celaest.audit_logs with a before/after diff of the changed columns (secrets masked as "***"). TG_ARGV[0] is the resource_type.';

-- licenses: every change except pure usage accounting. consume_quota and the AI
-- call path bump ai_requests_used / storage_used_bytes on every request: auditing
-- those would put one audit row (and one trigger call) on the hot path of every
-- AI call and bury the meaningful entries; license_usage_log is their history.
CREATE TRIGGER licenses_audit_insert_delete
    AFTER INSERT OR DELETE ON celaest.licenses
    FOR EACH ROW EXECUTE FUNCTION celaest.audit_row_change('license');
-- UPDATE OF the audited columns: the per-call usage bump (SET ai_requests_used = ...) does
-- not even evaluate the WHEN clause, whose to_jsonb() of both rows costs more than the bump.
CREATE TRIGGER licenses_audit_update
    AFTER UPDATE OF id, organization_id, plan_id, license_key, license_key_hash, status, starts_at,
                    expires_at, trial_ends_at, billing_cycle, next_billing_date, custom_limits,
                    current_period_start, current_period_end, notes, metadata, created_at,
                    suspended_at, cancelled_at
    ON celaest.licenses
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - '{ai_requests_used,storage_used_bytes,updated_at}'::text[])
          IS DISTINCT FROM (to_jsonb(NEW) - '{ai_requests_used,storage_used_bytes,updated_at}'::text[]))
    EXECUTE FUNCTION celaest.audit_row_change('license');

CREATE TRIGGER subscription_plans_audit
    AFTER INSERT OR UPDATE OR DELETE ON celaest.subscription_plans
    FOR EACH ROW EXECUTE FUNCTION celaest.audit_row_change('subscription_plan');

-- ai_api_pool: every change except usage and health bookkeeping.
-- increment_api_key_usage runs after every provider call and the health checker
-- touches every key on each pass; auditing those counters would add a trigger call
-- and an audit row to the hot path and drown configuration changes in noise.
CREATE TRIGGER ai_api_pool_audit_insert_delete
    AFTER INSERT OR DELETE ON celaest.ai_api_pool
    FOR EACH ROW EXECUTE FUNCTION celaest.audit_row_change('api_key');
-- UPDATE OF the audited columns: usage and health bookkeeping skips the trigger entirely.
CREATE TRIGGER ai_api_pool_audit_update
    AFTER UPDATE OF id, provider, key_name, key_value_encrypted, key_hint, is_active, rate_limit_rpm,
                    rate_limit_tpm, rate_limit_rpd, priority, weight, notes, metadata, created_at,
                    expires_at
    ON celaest.ai_api_pool
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - '{usage_count,tokens_used,last_used_at,last_health_check,consecutive_failures,is_healthy,updated_at}'::text[])
          IS DISTINCT FROM (to_jsonb(NEW) - '{usage_count,tokens_used,last_used_at,last_health_check,consecutive_failures,is_healthy,updated_at}'::text[]))
    EXECUTE FUNCTION celaest.audit_row_change('api_key');

-- users_profile: creation, removal, and changes of access rights only (role,
-- scopes, organization, soft delete); logins and preferences are not audit events.
CREATE TRIGGER users_profile_audit_insert_delete
    AFTER INSERT OR DELETE ON celaest.users_profile
    FOR EACH ROW EXECUTE FUNCTION celaest.audit_row_change('user');
CREATE TRIGGER users_profile_audit_update
    AFTER UPDATE ON celaest.users_profile
    FOR EACH ROW
    WHEN (OLD.role IS DISTINCT FROM NEW.role
          OR OLD.scopes IS DISTINCT FROM NEW.scopes
          OR OLD.organization_id IS DISTINCT FROM NEW.organization_id
          OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION celaest.audit_row_change('user');
-- CELAEST — module 70: system (system_config, feature_flags).

-- ---------------------------------------------------------------------------
-- system_config
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.system_config (
    key          VARCHAR(100)    NOT NULL,
    value        JSONB           NOT NULL,
    description  TEXT,
    is_sensitive BOOLEAN         NOT NULL DEFAULT FALSE,
    updated_at   TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    updated_by   UUID,

    CONSTRAINT system_config_pkey PRIMARY KEY (key),
    -- SET NULL: the user is attribution only; the setting stays.
    CONSTRAINT system_config_updated_by_fkey FOREIGN KEY (updated_by)
        REFERENCES celaest.users_profile (id) ON DELETE SET NULL,
    CONSTRAINT system_config_key_not_blank CHECK (btrim(key) <> '')
    -- value may be any JSON (a number, a string, an object...): it is the setting.
);

CREATE INDEX system_config_updated_by_idx ON celaest.system_config (updated_by);

CREATE TRIGGER system_config_set_updated_at
    BEFORE UPDATE ON celaest.system_config
    FOR EACH ROW EXECUTE FUNCTION celaest.set_updated_at();

-- Every change is audited; a sensitive value is masked (see audit_row_change).
CREATE TRIGGER system_config_audit
    AFTER INSERT OR UPDATE OR DELETE ON celaest.system_config
    FOR EACH ROW EXECUTE FUNCTION celaest.audit_row_change('system_config');

COMMENT ON TABLE celaest.system_config IS
    'Global system configuration (key-value).';
COMMENT ON COLUMN celaest.system_config.key IS 'Setting key (PK), e.g. roi.hourly_rate.';
COMMENT ON COLUMN celaest.system_config.value IS 'Setting value (JSON).';
COMMENT ON COLUMN celaest.system_config.description IS 'Description.';
COMMENT ON COLUMN celaest.system_config.is_sensitive IS 'Sensitive: never exposed through APIs to non-admins, masked in audit entries.';
COMMENT ON COLUMN celaest.system_config.updated_at IS 'Last update time (maintained by trigger).';
COMMENT ON COLUMN celaest.system_config.updated_by IS 'User who last updated the setting (FK -> users_profile).';

-- ---------------------------------------------------------------------------
-- feature_flags
-- ---------------------------------------------------------------------------
CREATE TABLE celaest.feature_flags (
    id                   UUID            NOT NULL DEFAULT uuid_generate_v4(),
    flag_key             VARCHAR(100)    NOT NULL,
    name                 VARCHAR(200)    NOT NULL,
    description          TEXT,
    is_enabled           BOOLEAN         NOT NULL DEFAULT FALSE,
    target_type          VARCHAR(20)     NOT NULL DEFAULT 'all',
    target_percentage    INTEGER,
    target_users         UUID[],
    target_organizations UUID[],
    metadata             JSONB           NOT NULL DEFAULT '{}',
    created_at           TIMESTAMPTZ     NOT NULL DEFAULT NOW(),
    updated_at           TIMESTAMPTZ     NOT NULL DEFAULT NOW(),

    CONSTRAINT feature_flags_pkey PRIMARY KEY (id),
    CONSTRAINT feature_flags_flag_key_key UNIQUE (flag_key),
    CONSTRAINT feature_flags_flag_key_not_blank CHECK (btrim(flag_key) <> ''),
    CONSTRAINT feature_flags_target_type_valid CHECK (target_type IN ('all', 'percentage', 'users', 'orgs')),
    CONSTRAINT feature_flags_target_percentage_range CHECK (target_percentage BETWEEN 0 AND 100),
    -- A percentage rollout without a percentage cannot be evaluated.
    CONSTRAINT feature_flags_percentage_given CHECK (target_type <> 'percentage' OR target_percentage IS NOT NULL),
    CONSTRAINT feature_flags_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
);

CREATE TRIGGER feature_flags_set_updated_at
    BEFORE UPDATE ON celaest.feature_flags
    FOR EACH ROW EXECUTE FUNCTION celaest.set_updated_at();

CREATE TRIGGER feature_flags_audit
    AFTER INSERT OR UPDATE OR DELETE ON celaest.feature_flags
    FOR EACH ROW EXECUTE FUNCTION celaest.audit_row_change('feature_flag');

COMMENT ON TABLE celaest.feature_flags IS
    'Feature flags for progressive rollout and A/B testing.';
COMMENT ON COLUMN celaest.feature_flags.id IS 'Unique identifier (PK).';
COMMENT ON COLUMN celaest.feature_flags.flag_key IS 'Unique flag key (UNIQUE).';
COMMENT ON COLUMN celaest.feature_flags.name IS 'Flag name.';
COMMENT ON COLUMN celaest.feature_flags.description IS 'Description.';
COMMENT ON COLUMN celaest.feature_flags.is_enabled IS 'Whether the flag is enabled.';
COMMENT ON COLUMN celaest.feature_flags.target_type IS
    'Targeting type: all (every user), percentage (a deterministic share of users), users (listed users), orgs (listed organizations).';
COMMENT ON COLUMN celaest.feature_flags.target_percentage IS 'Rollout percentage (0 to 100) for target_type percentage.';
COMMENT ON COLUMN celaest.feature_flags.target_users IS 'Targeted users (users_profile ids) for target_type users.';
COMMENT ON COLUMN celaest.feature_flags.target_organizations IS 'Targeted organizations (organizations ids) for target_type orgs.';
COMMENT ON COLUMN celaest.feature_flags.metadata IS 'Additional data (JSON object).';
COMMENT ON COLUMN celaest.feature_flags.created_at IS 'Creation time.';
COMMENT ON COLUMN celaest.feature_flags.updated_at IS 'Last update time (maintained by trigger).';

-- pg_dump: these rows are user data (see module 10).
SELECT pg_catalog.pg_extension_config_dump('celaest.system_config', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.feature_flags', '');
-- CELAEST — module 75: telemetry (track_event), configuration (config_get,
-- config_set) and feature flags (is_feature_enabled).

-- ---------------------------------------------------------------------------
-- Configuration
-- ---------------------------------------------------------------------------
-- Built-in defaults. system_config holds only what an administrator has set; a
-- documented key without a row has its built-in default, which config_get returns
-- and the modules use. The extension deliberately seeds no rows: module 70 registers
-- the whole table with pg_extension_config_dump(..., ''), so pg_dump dumps every row,
-- and a row inserted by the install script would collide on restore with its own
-- dumped copy (CREATE EXTENSION runs first), failing the table's whole COPY.
--   roi.manual_minutes_per_task  5   minutes of manual work one completed task
--                                    replaces, when its prompt does not say
--                                    (prompts_master.metadata->>'manual_minutes')
--   roi.hourly_rate              25  cost of an hour of manual work, in USD, when the
--                                    organization does not say
--                                    (organizations.settings->'roi'->>'hourly_rate')
CREATE FUNCTION celaest._config_default(p_key text)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE p_key
               WHEN 'roi.manual_minutes_per_task' THEN '5'::jsonb
               WHEN 'roi.hourly_rate'             THEN '25'::jsonb
           END;
$$;
COMMENT ON FUNCTION celaest._config_default(text) IS
    'Internal (configuration): the built-in default of a documented system_config key (roi.manual_minutes_per_task = 5, roi.hourly_rate = 25), NULL for any other key.';

-- Who sees sensitive values and may change the configuration (the "administrators"):
--   * a database role that may itself read / write celaest.system_config (its
--     owner, superusers, members of the owner, or roles a DBA granted it to):
--     masking a value from someone who can SELECT it would protect nothing;
--   * the acting CELAEST user when their live profile has role super_admin
--     (celaest.current_user_is_super_admin()).
-- Not an organization 'admin': system_config is global, and an organization
-- administrator must not read another tenant's secrets or change everyone's settings.
--
-- config_get and config_set are SECURITY INVOKER, so that "may this role read the
-- table" is asked of the real caller (current_user). Callers without table access
-- go through the two SECURITY DEFINER helpers below, which apply the super_admin
-- rule themselves and are therefore safe for anyone to call.

-- SECURITY DEFINER: the masked read for callers without access to the table.
CREATE FUNCTION celaest._config_get_masked(p_key text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE STRICT PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_value     jsonb;
    v_sensitive boolean;
BEGIN
    SELECT c.value, c.is_sensitive INTO v_value, v_sensitive
      FROM celaest.system_config AS c
     WHERE c.key = p_key;
    IF NOT FOUND THEN
        RETURN celaest._config_default(p_key);
    END IF;
    IF v_sensitive AND NOT celaest.current_user_is_super_admin() THEN
        -- Masked, not NULL: the caller learns that the setting exists and is set.
        RETURN '"***"'::jsonb;
    END IF;
    RETURN v_value;
END;
$$;
COMMENT ON FUNCTION celaest._config_get_masked(text) IS
    'Internal (configuration): config_get for callers without access to system_config: the value, "***" when it is sensitive and the acting CELAEST user is not a live super_admin, the built-in default when the key has no row.';

CREATE FUNCTION celaest.config_get(p_key text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_value jsonb;
BEGIN
    IF NOT has_table_privilege('celaest.system_config', 'SELECT') THEN
        RETURN celaest._config_get_masked(p_key);
    END IF;
    SELECT c.value INTO v_value FROM celaest.system_config AS c WHERE c.key = p_key;
    IF NOT FOUND THEN
        RETURN celaest._config_default(p_key);
    END IF;
    RETURN v_value;
END;
$$;
COMMENT ON FUNCTION celaest.config_get(text) IS
    'Value of a system_config key. A sensitive value reads as "***" unless the caller may read celaest.system_config itself (its owner, a superuser, a role granted SELECT) or the acting CELAEST user is a live super_admin. A key without a row returns its built-in default (roi.manual_minutes_per_task = 5, roi.hourly_rate = 25); any other unknown key, NULL.';

-- The write itself, with the caller's rights (callers without write access to
-- system_config get "permission denied for table"; config_set routes them through
-- _config_set_as_super_admin instead).
CREATE FUNCTION celaest._config_write(
    p_key          text,
    p_value        jsonb,
    p_description  text,
    p_is_sensitive boolean
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor uuid;
BEGIN
    IF p_key IS NULL OR btrim(p_key) = '' THEN
        RAISE EXCEPTION 'celaest.config_set: the key must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_key <> btrim(p_key) OR length(p_key) > 100 THEN
        RAISE EXCEPTION 'celaest.config_set: invalid key %', quote_literal(p_key)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A key has at most 100 characters and no leading or trailing spaces, e.g. ''roi.hourly_rate''.';
    END IF;
    IF p_value IS NULL THEN
        RAISE EXCEPTION 'celaest.config_set: the value of % must not be NULL', quote_literal(p_key)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a JSON value (JSON null is ''null''::jsonb).';
    END IF;
    -- The documented numeric settings: a wrong type would silently fall back to
    -- the built-in default in every report, so refuse it here.
    IF p_key IN ('roi.manual_minutes_per_task', 'roi.hourly_rate')
       AND (jsonb_typeof(p_value) <> 'number' OR p_value::text::numeric < 0) THEN
        RAISE EXCEPTION 'celaest.config_set: % must be a non-negative JSON number, not %', p_key, p_value::text
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Attribution only: an id without a profile is recorded as NULL (the audit
    -- entry still names it).
    SELECT u.id INTO v_actor
      FROM celaest.users_profile AS u
     WHERE u.id = celaest.current_user_id_or_null();

    INSERT INTO celaest.system_config AS c (key, value, description, is_sensitive, updated_by)
    VALUES (p_key, p_value, p_description, coalesce(p_is_sensitive, false), v_actor)
    ON CONFLICT (key) DO UPDATE
       SET value        = EXCLUDED.value,
           description  = coalesce(p_description, c.description),
           is_sensitive = coalesce(p_is_sensitive, c.is_sensitive),
           updated_by   = EXCLUDED.updated_by
     -- Setting what is already there changes nothing (not even updated_at).
     WHERE (c.value, c.description, c.is_sensitive)
           IS DISTINCT FROM
           (EXCLUDED.value, coalesce(p_description, c.description), coalesce(p_is_sensitive, c.is_sensitive));
END;
$$;
COMMENT ON FUNCTION celaest._config_write(text, jsonb, text, boolean) IS
    'Internal (configuration): validates and upserts one system_config key with the caller''s rights (the body of config_set).';

-- SECURITY DEFINER: the write for callers without access to the table, allowed to
-- a live CELAEST super_admin only.
CREATE FUNCTION celaest._config_set_as_super_admin(
    p_key          text,
    p_value        jsonb,
    p_description  text,
    p_is_sensitive boolean
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT celaest.current_user_is_super_admin() THEN
        RAISE EXCEPTION 'permission denied to change system configuration key %', coalesce(quote_literal(p_key), 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only a role that may write celaest.system_config (e.g. its owner or a superuser) or a CELAEST super_admin may change it.';
    END IF;
    PERFORM celaest._config_write(p_key, p_value, p_description, p_is_sensitive);
END;
$$;
COMMENT ON FUNCTION celaest._config_set_as_super_admin(text, jsonb, text, boolean) IS
    'Internal (configuration): config_set for callers without write access to system_config: allowed when the acting CELAEST user is a live super_admin, 42501 otherwise.';

CREATE FUNCTION celaest.config_set(
    p_key          text,
    p_value        jsonb,
    p_description  text DEFAULT NULL,
    p_is_sensitive boolean DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF has_table_privilege('celaest.system_config', 'INSERT')
       AND has_table_privilege('celaest.system_config', 'UPDATE') THEN
        PERFORM celaest._config_write(p_key, p_value, p_description, p_is_sensitive);
    ELSE
        PERFORM celaest._config_set_as_super_admin(p_key, p_value, p_description, p_is_sensitive);
    END IF;
END;
$$;
COMMENT ON FUNCTION celaest.config_set(text, jsonb, text, boolean) IS
    'Creates or updates a system_config key. Allowed to roles that may write celaest.system_config (its owner, superusers, roles granted INSERT and UPDATE) and to a live CELAEST super_admin; 42501 for anyone else (an organization admin included: the configuration is global). A NULL description or is_sensitive keeps the stored one (a new key is not sensitive unless told). updated_by = the acting CELAEST user. roi.manual_minutes_per_task and roi.hourly_rate must be non-negative numbers. Raises 22023 for an empty or over-long key or a NULL value. Audited.';

-- ---------------------------------------------------------------------------
-- Telemetry
-- ---------------------------------------------------------------------------
-- SECURITY DEFINER: telemetry_events is not writable by tenants; this is how they
-- record events, always attributed to the acting user and that user's organization.
CREATE FUNCTION celaest.track_event(
    p_event_name text,
    p_properties jsonb DEFAULT '{}',
    p_options    jsonb DEFAULT '{}'
)
RETURNS uuid
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_properties jsonb := coalesce(p_properties, '{}');
    v_options    jsonb := coalesce(p_options, '{}');
    v_user       uuid  := celaest.current_user_id_or_null();
    v_org        uuid;
    v_key        text;
    v_type       text;
    v_opt        jsonb := '{}';
    v_ip_text    text;
    v_ip_source  text;
    v_ip         inet;
    v_id         uuid;
BEGIN
    IF p_event_name IS NULL OR btrim(p_event_name) = '' THEN
        RAISE EXCEPTION 'celaest.track_event: the event name must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(p_event_name) > 200 THEN
        RAISE EXCEPTION 'celaest.track_event: the event name is longer than 200 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(v_properties) <> 'object' THEN
        RAISE EXCEPTION 'celaest.track_event: p_properties must be a JSON object, not %', jsonb_typeof(v_properties)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(v_options) <> 'object' THEN
        RAISE EXCEPTION 'celaest.track_event: p_options must be a JSON object, not %', jsonb_typeof(v_options)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Options: known keys only (a misspelt one is an error, not a silent loss),
    -- string values; empty strings and JSON null mean "not given".
    FOR v_key, v_type IN SELECT e.key, jsonb_typeof(e.value) FROM jsonb_each(v_options) AS e LOOP
        IF v_key NOT IN ('event_type', 'event_category', 'session_id', 'page_url', 'referrer',
                         'device_type', 'browser', 'os', 'ip_address', 'user_agent') THEN
            RAISE EXCEPTION 'celaest.track_event: unknown option %', quote_literal(v_key)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Options are event_type, event_category, session_id, page_url, referrer, device_type, browser, os, ip_address and user_agent; event data goes in p_properties.';
        END IF;
        IF v_type NOT IN ('string', 'null') THEN
            RAISE EXCEPTION 'celaest.track_event: option % must be a string, not %', v_key, v_type
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_type = 'string' AND btrim(v_options ->> v_key) <> '' THEN
            v_opt := v_opt || jsonb_build_object(v_key, btrim(v_options ->> v_key));
        END IF;
    END LOOP;

    -- Identifiers must fit; they are not cut.
    IF length(v_opt ->> 'event_type') > 100 OR length(v_opt ->> 'event_category') > 50
       OR length(v_opt ->> 'session_id') > 100 OR length(v_opt ->> 'browser') > 50
       OR length(v_opt ->> 'os') > 50 THEN
        RAISE EXCEPTION 'celaest.track_event: an option is too long'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Limits: event_type and session_id 100 characters; event_category, browser and os 50.';
    END IF;
    IF lower(v_opt ->> 'device_type') NOT IN ('desktop', 'mobile', 'tablet') THEN
        RAISE EXCEPTION 'celaest.track_event: invalid device_type %', quote_literal(v_opt ->> 'device_type')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'device_type is desktop, mobile or tablet.';
    END IF;

    -- Request context: the option, else the session setting (as log_audit does).
    IF v_opt ? 'ip_address' THEN
        v_ip_text := v_opt ->> 'ip_address';
        v_ip_source := 'option ip_address';
    ELSE
        v_ip_text := nullif(btrim(current_setting('celaest.client_ip', true)), '');
        v_ip_source := 'setting celaest.client_ip';
    END IF;
    IF v_ip_text IS NOT NULL THEN
        BEGIN
            v_ip := v_ip_text::inet;
        EXCEPTION WHEN invalid_text_representation THEN
            RAISE EXCEPTION 'celaest.track_event: % is not an IP address: %', v_ip_source, quote_literal(v_ip_text)
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;

    -- The acting user and their organization. An id without a profile (e.g. an
    -- event sent between sign-up and profile creation) is not lost: the event is
    -- recorded without user and organization, and the id kept in the properties.
    IF v_user IS NOT NULL THEN
        SELECT u.organization_id INTO v_org FROM celaest.users_profile AS u WHERE u.id = v_user;
        IF NOT FOUND THEN
            v_properties := v_properties || jsonb_build_object('unknown_user_id', v_user);
            v_user := NULL;
        END IF;
    END IF;

    INSERT INTO celaest.telemetry_events
        (organization_id, user_id, session_id, event_type, event_category, event_name, properties,
         page_url, referrer, ip_address, user_agent, device_type, browser, os)
    VALUES
        (v_org, v_user, v_opt ->> 'session_id', coalesce(v_opt ->> 'event_type', 'custom'),
         v_opt ->> 'event_category', p_event_name, v_properties,
         -- Client-supplied URLs and user agents can be long: cut to the column width
         -- rather than lose the event.
         left(v_opt ->> 'page_url', 500), left(v_opt ->> 'referrer', 500), v_ip,
         left(coalesce(v_opt ->> 'user_agent', nullif(btrim(current_setting('celaest.user_agent', true)), '')), 500),
         lower(v_opt ->> 'device_type'), v_opt ->> 'browser', v_opt ->> 'os')
    RETURNING id INTO v_id;

    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION celaest.track_event(text, jsonb, jsonb) IS
    'Records a telemetry event for the acting user (celaest.current_user_id_or_null(); NULL = anonymous) and their organization; returns its id. Options (strings): event_type (default ''custom''), event_category, session_id, page_url, referrer, device_type (desktop, mobile, tablet), browser, os, ip_address and user_agent (default: the settings celaest.client_ip and celaest.user_agent). page_url, referrer and user_agent are cut to 500 characters. A user id without a profile is recorded as anonymous, with properties.unknown_user_id. Raises 22023 for an empty or over-long event name, non-object properties or options, an unknown or non-string option, an invalid device_type or IP address.';

-- ---------------------------------------------------------------------------
-- Feature flags
-- ---------------------------------------------------------------------------
-- SECURITY INVOKER: flags are readable by everyone; a user named explicitly is
-- looked up with the caller's rights (a tenant sees its own organization's users).
CREATE FUNCTION celaest.is_feature_enabled(
    p_flag_key text,
    p_user_id  uuid DEFAULT NULL,
    p_org_id   uuid DEFAULT NULL
)
RETURNS boolean
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_flag    record;
    v_user    uuid;
    v_org     uuid := p_org_id;
    v_subject text;
BEGIN
    SELECT f.is_enabled, f.target_type, f.target_percentage, f.target_users, f.target_organizations
      INTO v_flag
      FROM celaest.feature_flags AS f
     WHERE f.flag_key = p_flag_key;
    IF NOT FOUND OR NOT v_flag.is_enabled THEN
        RETURN false;                       -- unknown (or NULL) key, or disabled
    END IF;
    IF v_flag.target_type = 'all' THEN
        RETURN true;
    END IF;

    v_user := coalesce(p_user_id, celaest.current_user_id_or_null());
    IF v_org IS NULL AND v_user IS NOT NULL
       AND v_flag.target_type IN ('orgs', 'percentage') THEN
        SELECT u.organization_id INTO v_org
          FROM celaest.users_profile AS u
         WHERE u.id = v_user AND u.deleted_at IS NULL;
    END IF;

    CASE v_flag.target_type
        WHEN 'users' THEN
            RETURN coalesce(v_user = ANY (v_flag.target_users), false);
        WHEN 'orgs' THEN
            RETURN coalesce(v_org = ANY (v_flag.target_organizations), false);
        WHEN 'percentage' THEN
            -- Sticky bucket 0..99 from a hash of the flag and the user (else the
            -- organization): the same subject always gets the same answer, and
            -- raising the percentage only ever adds subjects. The sign bit is masked
            -- off (abs() would overflow on the smallest bigint).
            v_subject := coalesce(v_user, v_org)::text;
            IF v_subject IS NULL THEN
                RETURN false;
            END IF;
            RETURN (hashtextextended(p_flag_key || ':' || v_subject, 0) & 9223372036854775807) % 100
                   < coalesce(v_flag.target_percentage, 0);
        ELSE
            RETURN false;                   -- a target type this version does not know
    END CASE;
END;
$$;
COMMENT ON FUNCTION celaest.is_feature_enabled(text, uuid, uuid) IS
    'Whether a feature flag is on for a user (NULL: the acting user) and organization (NULL: that user''s). Unknown or disabled flag: false. target_type all: true; users: the user is in target_users; orgs: the organization is in target_organizations; percentage: a sticky bucket, hashtextextended(flag_key || '':'' || user id (else organization id), 0) masked to non-negative, mod 100, is below target_percentage (false with neither user nor organization). Never NULL.';
-- CELAEST — module 76: licensing enforcement on tables created after module 26
-- (processed_tasks in module 40, system_config in module 70). The functions are in
-- modules 25/26; this file only attaches them.

-- ---------------------------------------------------------------------------
-- max_concurrent_tasks: tasks in flight (processing or retrying) per organization
-- ---------------------------------------------------------------------------
-- A task holds a slot while it is processing or retrying (a retry has not let go of
-- its slot); it takes one when it enters either state from any other (or is
-- inserted in it), and gives it back by leaving them.
-- SECURITY DEFINER, like enforce_max_users (module 26): the count must see every task.
CREATE FUNCTION celaest.enforce_max_concurrent_tasks()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The WHEN clause admits only rows that end up in flight.
    IF TG_OP = 'UPDATE' AND OLD.status IN ('processing', 'retrying')
       AND OLD.organization_id = NEW.organization_id THEN
        RETURN NEW;                     -- already holds its slot
    END IF;
    PERFORM celaest.reserve_counted(NEW.organization_id, 'max_concurrent_tasks', 1, true, NEW.id);
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION celaest.enforce_max_concurrent_tasks() IS
    'BEFORE INSERT/UPDATE trigger on processed_tasks: a task entering processing or retrying must fit max_concurrent_tasks of its organization''s license (LC010), and the license must be usable (LC001-LC004).';

REVOKE EXECUTE ON FUNCTION celaest.enforce_max_concurrent_tasks() FROM PUBLIC;

CREATE TRIGGER processed_tasks_enforce_max_concurrent_tasks
    BEFORE INSERT OR UPDATE OF status, organization_id ON celaest.processed_tasks
    FOR EACH ROW
    WHEN (NEW.status IN ('processing', 'retrying'))
    EXECUTE FUNCTION celaest.enforce_max_concurrent_tasks();

-- The admission count reads only the few tasks in flight of one organization.
CREATE INDEX processed_tasks_in_flight_idx ON celaest.processed_tasks (organization_id)
    WHERE status IN ('processing', 'retrying');

-- ---------------------------------------------------------------------------
-- system_config 'license.trial_limits' must be a valid limits object
-- ---------------------------------------------------------------------------
CREATE FUNCTION celaest.check_trial_limits_setting()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM celaest.validate_limits(NEW.value, 'system_config license.trial_limits');
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION celaest.check_trial_limits_setting() IS
    'BEFORE INSERT/UPDATE trigger on system_config: the value of license.trial_limits must be an object of known limit keys with integer values >= -1 (22023).';

CREATE TRIGGER system_config_check_trial_limits
    BEFORE INSERT OR UPDATE OF key, value ON celaest.system_config
    FOR EACH ROW
    WHEN (NEW.key = 'license.trial_limits')
    EXECUTE FUNCTION celaest.check_trial_limits_setting();
-- CELAEST — module 78: invalidation of the hot paths' caches.
--
-- The hot paths (check_limit, consume_quota, the AI calls) keep copies of rows that rarely
-- change, in three domains:
--   licensing  which license is in force for an organization and its effective AI cap
--              (licenses, subscription_plans, system_config license.trial_limits);
--   routing    the model catalogue and the key pool's configuration and health
--              (ai_models, ai_api_pool);
--   identity   the organization of a user (users_profile).
-- A statement-level trigger on each source table marks the transaction with its domain;
-- when it commits, the domain's generation counter in shared memory moves on and every
-- backend drops its copies of that domain (src/pg/cache_validity.hpp). BEFORE the statement:
-- from its first changed row on, the transaction makes and uses no copy of the domain (an
-- AFTER trigger would leave the statement itself free to copy its own uncommitted rows).
-- ENABLE ALWAYS: they fire under session_replication_role = replica too (pg_restore, a
-- logical replication apply); copies are also re-read after 10 s whatever the generation. Per-call state
-- (usage counters, periods, expiry dates, rate-limit windows) is never copied: it is read,
-- or written, by every call, so the per-call updates name no watched column.

CREATE FUNCTION celaest._cached_data_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'celaest_cached_data_changed'
LANGUAGE C;
COMMENT ON FUNCTION celaest._cached_data_changed() IS
    'Statement-level trigger (argument: licensing, routing or identity): marks the transaction so that, when it commits, every backend drops its cached copies of that domain (src/pg/cache_validity.hpp).';
REVOKE EXECUTE ON FUNCTION celaest._cached_data_changed() FROM PUBLIC;

-- licensing -----------------------------------------------------------------
-- licenses: the columns the cached terms derive from; the per-call counter updates
-- (ai_requests_used, storage_used_bytes) and period rolls invalidate nothing.
CREATE TRIGGER licenses_invalidate_caches
    BEFORE INSERT OR DELETE OR TRUNCATE
          OR UPDATE OF id, organization_id, plan_id, status, billing_cycle, custom_limits
    ON celaest.licenses
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed('licensing');
CREATE TRIGGER subscription_plans_invalidate_caches
    BEFORE INSERT OR DELETE OR UPDATE OR TRUNCATE ON celaest.subscription_plans
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed('licensing');
-- system_config: license.trial_limits narrows the cap of trials.
CREATE TRIGGER system_config_invalidate_caches
    BEFORE INSERT OR DELETE OR UPDATE OR TRUNCATE ON celaest.system_config
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed('licensing');

-- routing -------------------------------------------------------------------
CREATE TRIGGER ai_models_invalidate_caches
    BEFORE INSERT OR DELETE OR UPDATE OR TRUNCATE ON celaest.ai_models
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed('routing');
-- ai_api_pool: everything but the usage counters each call bumps (usage_count, tokens_used,
-- last_used_at), the health checker's stamp (last_health_check) and updated_at. A failure
-- (consecutive_failures) and a change of health do invalidate: they are rare.
CREATE TRIGGER ai_api_pool_invalidate_caches
    BEFORE INSERT OR DELETE OR TRUNCATE
          OR UPDATE OF id, provider, key_name, key_value_encrypted, key_hint, is_active, is_healthy,
                       consecutive_failures, rate_limit_rpm, rate_limit_tpm, rate_limit_rpd, priority,
                       weight, notes, metadata, created_at, expires_at
    ON celaest.ai_api_pool
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed('routing');

-- identity ------------------------------------------------------------------
-- Only existing users' organizations are copied: a new user changes no copy (sign-ups are
-- frequent), a move, a soft delete or a removal does.
CREATE TRIGGER users_profile_invalidate_caches
    BEFORE DELETE OR TRUNCATE OR UPDATE OF id, organization_id, deleted_at
    ON celaest.users_profile
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._cached_data_changed('identity');

-- Fire in every replication role (see the header).
ALTER TABLE celaest.licenses ENABLE ALWAYS TRIGGER licenses_invalidate_caches;
ALTER TABLE celaest.subscription_plans ENABLE ALWAYS TRIGGER subscription_plans_invalidate_caches;
ALTER TABLE celaest.system_config ENABLE ALWAYS TRIGGER system_config_invalidate_caches;
ALTER TABLE celaest.ai_models ENABLE ALWAYS TRIGGER ai_models_invalidate_caches;
ALTER TABLE celaest.ai_api_pool ENABLE ALWAYS TRIGGER ai_api_pool_invalidate_caches;
ALTER TABLE celaest.users_profile ENABLE ALWAYS TRIGGER users_profile_invalidate_caches;
-- CELAEST — module 80: the three views of the data dictionary ("Vistas Disponibles").
--
-- Plain views (API.md) with security_invoker: they read the tables with the
-- caller's rights, so row-level security applies to whoever queries them and a
-- view never widens what a role can see.

-- ---------------------------------------------------------------------------
-- v_active_licenses
-- ---------------------------------------------------------------------------
CREATE VIEW celaest.v_active_licenses
WITH (security_invoker = true)
AS
SELECT l.id                   AS license_id,
       l.organization_id,
       o.name                 AS organization_name,
       o.slug                 AS organization_slug,
       l.plan_id,
       p.code                 AS plan_code,
       p.name                 AS plan_name,
       l.status,
       l.billing_cycle,
       l.starts_at,
       l.expires_at,
       l.trial_ends_at,
       l.current_period_start,
       l.current_period_end,
       l.next_billing_date,
       e.effective_limits,
       l.ai_requests_used,
       q.ai_requests_limit,
       CASE
           WHEN q.ai_requests_limit IS NULL OR q.ai_requests_limit < 0 THEN -1
           ELSE GREATEST(q.ai_requests_limit - l.ai_requests_used, 0)
       END                    AS ai_requests_remaining,
       l.storage_used_bytes
  FROM celaest.licenses AS l
  JOIN celaest.organizations AS o ON o.id = l.organization_id
  JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
 -- Effective limits exactly as the licensing functions enforce them (API.md's
 -- effective_limits(): plan limits overlaid with custom_limits, narrowed for
 -- trials by license.trial_limits, AI requests uncapped when usage_based).
 CROSS JOIN LATERAL (
       SELECT celaest.effective_limits(l.id) AS effective_limits) AS e
 CROSS JOIN LATERAL (
       -- A limit that is absent (or not a number) is not configured: unlimited.
       SELECT CASE
                  WHEN jsonb_typeof(e.effective_limits -> 'max_ai_requests_per_month') = 'number'
                  THEN (e.effective_limits ->> 'max_ai_requests_per_month')::numeric::bigint
              END AS ai_requests_limit) AS q
 WHERE l.status IN ('trial', 'active', 'suspended');

COMMENT ON VIEW celaest.v_active_licenses IS
    'Licenses in force (trial, active or suspended), one row each, with organization, plan, dates, effective limits, usage and remaining AI requests.';
COMMENT ON COLUMN celaest.v_active_licenses.license_id IS 'License id.';
COMMENT ON COLUMN celaest.v_active_licenses.organization_id IS 'Licensed organization.';
COMMENT ON COLUMN celaest.v_active_licenses.organization_name IS 'Organization name.';
COMMENT ON COLUMN celaest.v_active_licenses.organization_slug IS 'Organization slug.';
COMMENT ON COLUMN celaest.v_active_licenses.plan_id IS 'Subscribed plan.';
COMMENT ON COLUMN celaest.v_active_licenses.plan_code IS 'Plan code.';
COMMENT ON COLUMN celaest.v_active_licenses.plan_name IS 'Plan name.';
COMMENT ON COLUMN celaest.v_active_licenses.status IS 'License status (trial, active or suspended).';
COMMENT ON COLUMN celaest.v_active_licenses.billing_cycle IS 'Billing cycle.';
COMMENT ON COLUMN celaest.v_active_licenses.starts_at IS 'Start time.';
COMMENT ON COLUMN celaest.v_active_licenses.expires_at IS 'Expiry time (NULL = does not expire).';
COMMENT ON COLUMN celaest.v_active_licenses.trial_ends_at IS 'End of the trial period.';
COMMENT ON COLUMN celaest.v_active_licenses.current_period_start IS 'Start of the current billing period.';
COMMENT ON COLUMN celaest.v_active_licenses.current_period_end IS 'End of the current billing period.';
COMMENT ON COLUMN celaest.v_active_licenses.next_billing_date IS 'Next billing date.';
COMMENT ON COLUMN celaest.v_active_licenses.effective_limits IS 'Effective limits, as celaest.effective_limits() gives them (plan limits overlaid with the license''s custom_limits); -1 means unlimited.';
COMMENT ON COLUMN celaest.v_active_licenses.ai_requests_used IS 'AI requests used in the current billing period.';
COMMENT ON COLUMN celaest.v_active_licenses.ai_requests_limit IS 'Effective max_ai_requests_per_month (-1 = unlimited, NULL = not configured).';
COMMENT ON COLUMN celaest.v_active_licenses.ai_requests_remaining IS 'AI requests left in the current billing period (never negative); -1 when unlimited.';
COMMENT ON COLUMN celaest.v_active_licenses.storage_used_bytes IS 'Storage used, in bytes.';

-- ---------------------------------------------------------------------------
-- v_api_pool_status
-- ---------------------------------------------------------------------------
-- One row per provider of the enum, keys or not: "no key for groq" is a status.
-- Never selects key_value_encrypted.
CREATE VIEW celaest.v_api_pool_status
WITH (security_invoker = true)
AS
SELECT pr.provider,
       count(k.id)                                                    AS keys_total,
       count(k.id) FILTER (WHERE k.is_active)                         AS keys_active,
       count(k.id) FILTER (WHERE k.is_active AND k.is_healthy)        AS keys_healthy,
       COALESCE(sum(k.usage_count), 0)::bigint                        AS usage_count,
       COALESCE(sum(k.tokens_used), 0)::bigint                        AS tokens_used,
       max(k.last_used_at)                                            AS last_used_at,
       min(k.expires_at) FILTER (WHERE k.is_active)                   AS nearest_expiry
  FROM unnest(enum_range(NULL::celaest.ai_provider)) AS pr (provider)
  LEFT JOIN celaest.ai_api_pool AS k ON k.provider = pr.provider
 GROUP BY pr.provider;

COMMENT ON VIEW celaest.v_api_pool_status IS
    'API-key pool status per provider (every provider, with or without keys): key counts, usage, tokens, last use and nearest expiry. Never shows a secret.';
COMMENT ON COLUMN celaest.v_api_pool_status.provider IS 'AI provider.';
COMMENT ON COLUMN celaest.v_api_pool_status.keys_total IS 'Keys in the pool.';
COMMENT ON COLUMN celaest.v_api_pool_status.keys_active IS 'Active keys.';
COMMENT ON COLUMN celaest.v_api_pool_status.keys_healthy IS 'Active keys that are healthy.';
COMMENT ON COLUMN celaest.v_api_pool_status.usage_count IS 'Total uses of all the provider''s keys.';
COMMENT ON COLUMN celaest.v_api_pool_status.tokens_used IS 'Total tokens of all the provider''s keys.';
COMMENT ON COLUMN celaest.v_api_pool_status.last_used_at IS 'Last use of any of the provider''s keys.';
COMMENT ON COLUMN celaest.v_api_pool_status.nearest_expiry IS 'Earliest expires_at among the active keys (NULL when none expires).';

-- ---------------------------------------------------------------------------
-- v_daily_task_metrics
-- ---------------------------------------------------------------------------
CREATE VIEW celaest.v_daily_task_metrics
WITH (security_invoker = true)
AS
SELECT t.organization_id,
       (t.created_at AT TIME ZONE 'UTC')::date                         AS day,
       count(*)                                                        AS tasks_total,
       count(*) FILTER (WHERE t.status = 'completed')                  AS tasks_completed,
       count(*) FILTER (WHERE t.status = 'failed')                     AS tasks_failed,
       count(*) FILTER (WHERE t.status = 'cancelled')                  AS tasks_cancelled,
       count(*) FILTER (WHERE t.status = 'pending')                    AS tasks_pending,
       count(*) FILTER (WHERE t.status = 'processing')                 AS tasks_processing,
       count(*) FILTER (WHERE t.status = 'retrying')                   AS tasks_retrying,
       sum(t.tokens_input)                                             AS tokens_input,
       sum(t.tokens_output)                                            AS tokens_output,
       sum(t.tokens_total)                                             AS tokens_total,
       sum(t.cost_usd)                                                 AS cost_usd,
       round(avg(t.execution_time_ms), 2)                              AS avg_execution_time_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY t.execution_time_ms)::numeric, 2)
                                                                       AS p95_execution_time_ms
  FROM celaest.processed_tasks AS t
 GROUP BY t.organization_id, (t.created_at AT TIME ZONE 'UTC')::date;

COMMENT ON VIEW celaest.v_daily_task_metrics IS
    'Task metrics per organization and day (UTC date of created_at): tasks by status, tokens, cost, average and 95th-percentile execution time.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.organization_id IS 'Organization.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.day IS 'Day (UTC date of the tasks'' created_at).';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_total IS 'Tasks created that day.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_completed IS 'Of which completed.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_failed IS 'Of which failed.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_cancelled IS 'Of which cancelled.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_pending IS 'Of which still pending.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_processing IS 'Of which processing.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_retrying IS 'Of which retrying.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tokens_input IS 'Input tokens.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tokens_output IS 'Output tokens.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tokens_total IS 'Total tokens.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.cost_usd IS 'Cost in USD.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.avg_execution_time_ms IS 'Average execution time, in milliseconds (tasks with a recorded time).';
COMMENT ON COLUMN celaest.v_daily_task_metrics.p95_execution_time_ms IS '95th percentile of execution time, in milliseconds (continuous percentile).';
-- CELAEST — module 85: privileges and row-level tenant isolation (Supabase style).
--
-- * Tenant tables: ROW LEVEL SECURITY enabled (not FORCEd, so the owner, superusers
--   and the extension's SECURITY DEFINER functions are unaffected). A role sees the
--   rows of its own organization (celaest.current_org_id_or_null()); a super_admin
--   (global administrator) sees all. Everyone may SELECT them, which is what the
--   security_invoker views need; writes are not granted (the extension's functions
--   write), and if a DBA grants them the same policies bound them.
-- * Catalog tables (plans, models, prompts, flags): readable by everyone.
-- * ai_api_pool and system_config: no access for non-owners. They hold secrets.
--
-- The policies call the helper functions through scalar subqueries, so each is
-- evaluated once per statement (an InitPlan), not once per row.
--
-- Identity comes from the setting celaest.user_id (or Supabase auth.uid()). Any
-- session that can run SQL can SET celaest.user_id, so this isolates tenants for
-- applications that set it on their users' behalf (or for Supabase JWT users);
-- it does not defend against roles that run arbitrary SQL.

GRANT USAGE ON SCHEMA celaest TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Tenant tables
-- ---------------------------------------------------------------------------
ALTER TABLE celaest.organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY organizations_tenant_isolation ON celaest.organizations
    USING (id = (SELECT celaest.current_org_id_or_null())
           OR (SELECT celaest.current_user_is_super_admin()));

-- A user also always sees their own profile, with or without an organization.
ALTER TABLE celaest.users_profile ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_profile_tenant_isolation ON celaest.users_profile
    USING (organization_id = (SELECT celaest.current_org_id_or_null())
           OR id = (SELECT celaest.current_user_id_or_null())
           OR (SELECT celaest.current_user_is_super_admin()));

ALTER TABLE celaest.licenses ENABLE ROW LEVEL SECURITY;
CREATE POLICY licenses_tenant_isolation ON celaest.licenses
    USING (organization_id = (SELECT celaest.current_org_id_or_null())
           OR (SELECT celaest.current_user_is_super_admin()));

ALTER TABLE celaest.license_usage_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY license_usage_log_tenant_isolation ON celaest.license_usage_log
    USING (organization_id = (SELECT celaest.current_org_id_or_null())
           OR (SELECT celaest.current_user_is_super_admin()));

ALTER TABLE celaest.task_batches ENABLE ROW LEVEL SECURITY;
CREATE POLICY task_batches_tenant_isolation ON celaest.task_batches
    USING (organization_id = (SELECT celaest.current_org_id_or_null())
           OR (SELECT celaest.current_user_is_super_admin()));

ALTER TABLE celaest.processed_tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY processed_tasks_tenant_isolation ON celaest.processed_tasks
    USING (organization_id = (SELECT celaest.current_org_id_or_null())
           OR (SELECT celaest.current_user_is_super_admin()));

ALTER TABLE celaest.roi_metrics ENABLE ROW LEVEL SECURITY;
CREATE POLICY roi_metrics_tenant_isolation ON celaest.roi_metrics
    USING (organization_id = (SELECT celaest.current_org_id_or_null())
           OR (SELECT celaest.current_user_is_super_admin()));

-- Rows without an organization (global resources, system events) are visible to
-- super_admins only.
ALTER TABLE celaest.audit_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_logs_tenant_isolation ON celaest.audit_logs
    USING (organization_id = (SELECT celaest.current_org_id_or_null())
           OR (SELECT celaest.current_user_is_super_admin()));

ALTER TABLE celaest.telemetry_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY telemetry_events_tenant_isolation ON celaest.telemetry_events
    USING (organization_id = (SELECT celaest.current_org_id_or_null())
           OR (SELECT celaest.current_user_is_super_admin()));

GRANT SELECT ON celaest.organizations, celaest.users_profile, celaest.licenses,
                celaest.license_usage_log, celaest.task_batches, celaest.processed_tasks,
                celaest.roi_metrics, celaest.audit_logs, celaest.telemetry_events
    TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Catalog tables: readable by everyone.
-- ---------------------------------------------------------------------------
GRANT SELECT ON celaest.subscription_plans, celaest.ai_models, celaest.prompts_master,
                celaest.feature_flags
    TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Secrets: owner only.
-- ---------------------------------------------------------------------------
REVOKE ALL ON celaest.ai_api_pool, celaest.system_config FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Views
-- ---------------------------------------------------------------------------
GRANT SELECT ON celaest.v_active_licenses, celaest.v_daily_task_metrics TO PUBLIC;
-- v_api_pool_status reads ai_api_pool with the caller's rights, which non-owners
-- do not have: granting it would only trade "permission denied for view" for
-- "permission denied for table". Grant it together with the pool to operators.
REVOKE ALL ON celaest.v_api_pool_status FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------
-- The audit trigger function is SECURITY DEFINER: attached to someone else's
-- table it would write audit rows for anyone. Triggers fire without an EXECUTE
-- check, so revoking EXECUTE only stops new triggers from using it.
REVOKE EXECUTE ON FUNCTION celaest.audit_row_change() FROM PUBLIC;
-- Pool bookkeeping is for the extension's own (privileged) call path.
REVOKE EXECUTE ON FUNCTION celaest.increment_api_key_usage(uuid, integer) FROM PUBLIC;
-- Operations: version, background worker status, and the boundary self-test probes.

CREATE FUNCTION celaest.version() RETURNS text
    AS 'MODULE_PATHNAME', 'celaest_version'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION celaest.version() IS
    'CELAEST version with the PostgreSQL and libcurl versions it was built against.';

CREATE FUNCTION celaest.worker_status()
    RETURNS TABLE(worker text, pid integer, database text, state text,
                  last_run timestamptz, last_error text, runs bigint)
    AS 'MODULE_PATHNAME', 'celaest_worker_status'
    LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED ROWS 2;
COMMENT ON FUNCTION celaest.worker_status() IS
    'One row per CELAEST background worker: pid, database, state, last run, last error and run count.';

-- Self-tests of the C++/PostgreSQL boundary (regression suite). Superuser only.
CREATE FUNCTION celaest._boundary_probe(p_mode text) RETURNS text
    AS 'MODULE_PATHNAME', 'celaest_boundary_probe'
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest._boundary_probe(text) IS
    'Test probe: fails in the given way (cpp_error, std_exception, spi_error, division_by_zero, cancel) beneath live C++ objects.';
REVOKE ALL ON FUNCTION celaest._boundary_probe(text) FROM PUBLIC;

CREATE FUNCTION celaest._boundary_destructor_count() RETURNS bigint
    AS 'MODULE_PATHNAME', 'celaest_boundary_destructor_count'
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest._boundary_destructor_count() IS
    'Test probe: how many probe objects this backend has destroyed (proves unwinding before an ERROR).';
REVOKE ALL ON FUNCTION celaest._boundary_destructor_count() FROM PUBLIC;
