-- CELAEST — install script, prelude: enums and the shared updated_at trigger function.
--
-- The Makefile concatenates src/sql/*.sql in name order into sql/celaest--<version>.sql.
--
-- File names: NN_<feature>[_<part>].sql, named after the feature they build.
--   * The tens digit orders the features so that each comes after what it uses:
--     00 prelude, 10 identity, 20 licensing, 30 AI calls and keys, 40 tasks and batches,
--     50 ROI, 60 audit, 70 configuration, feature flags and telemetry, 78 cache validity,
--     80 views, 85 security (grants, row-level security), 95 operations.
--   * The units digit orders a feature's parts: x0 its tables (<feature>_tables), then its
--     functions, each part after the parts it calls. A feature small enough for one file
--     keeps tables, functions and triggers together, in that order.
--   * A trigger is created in the file that creates its table, once its function exists:
--     trigger functions are plpgsql or C, so a function defined in an earlier file may
--     name tables created later (26_licensing_enforcement.sql's functions guard
--     processed_tasks and system_config, created in 40 and 70). Audit and cache validity
--     watch tables of earlier features, so their files attach their own triggers.
--   * Creation order matters for LANGUAGE sql functions: their bodies are checked at
--     CREATE time, so they come after every table and function they name. plpgsql and C
--     bodies are resolved when they run.
--   * A native function's C++ entry point is src/pg/functions/<feature>[_<part>].cpp,
--     with the same stem as the SQL file that declares it.
--
-- Function names: the public API (README, "SQL API") has plain names; every other
-- function (helpers, trigger functions, the batch runner's steps) starts with "_" and is
-- not executable by PUBLIC, unless a row-level security policy, a view or a function
-- that every role may call needs it (the REVOKE or a comment next to it says which).
-- test/regress/sql/schema_hygiene.sql checks both rules.
--
-- Versions: sql/celaest--<old>--<new>.sql carries every schema change made here since the
-- last release, so that an upgraded database equals a fresh install (test/upgrade).
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
CREATE FUNCTION celaest._set_updated_at()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION celaest._set_updated_at() IS
    'BEFORE UPDATE row trigger: sets updated_at to now() (transaction start time) on every update of the row.';
REVOKE EXECUTE ON FUNCTION celaest._set_updated_at() FROM PUBLIC;
