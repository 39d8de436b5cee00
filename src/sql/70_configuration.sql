-- CELAEST — configuration: system_config, config_get and config_set.

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
    FOR EACH ROW EXECUTE FUNCTION celaest._set_updated_at();

-- Every change is audited; a sensitive value is masked (see _audit_row_change).
CREATE TRIGGER system_config_audit
    AFTER INSERT OR UPDATE OR DELETE ON celaest.system_config
    FOR EACH ROW EXECUTE FUNCTION celaest._audit_row_change('system_config');

COMMENT ON TABLE celaest.system_config IS
    'Global system configuration (key-value).';
COMMENT ON COLUMN celaest.system_config.key IS 'Setting key (PK), e.g. roi.hourly_rate.';
COMMENT ON COLUMN celaest.system_config.value IS 'Setting value (JSON).';
COMMENT ON COLUMN celaest.system_config.description IS 'Description.';
COMMENT ON COLUMN celaest.system_config.is_sensitive IS 'Sensitive: never exposed through APIs to non-admins, masked in audit entries.';
COMMENT ON COLUMN celaest.system_config.updated_at IS 'Last update time (maintained by trigger).';
COMMENT ON COLUMN celaest.system_config.updated_by IS 'User who last updated the setting (FK -> users_profile).';


-- pg_dump: these rows are user data (see 10_identity.sql).
SELECT pg_catalog.pg_extension_config_dump('celaest.system_config', '');

-- ---------------------------------------------------------------------------
-- Licensing: 'license.trial_limits' must be a valid limits object
-- (the trigger function is in 26_licensing_enforcement.sql)
-- ---------------------------------------------------------------------------
CREATE TRIGGER system_config_check_trial_limits
    BEFORE INSERT OR UPDATE OF key, value ON celaest.system_config
    FOR EACH ROW
    WHEN (NEW.key = 'license.trial_limits')
    EXECUTE FUNCTION celaest._check_trial_limits_setting();


-- ---------------------------------------------------------------------------
-- Configuration
-- ---------------------------------------------------------------------------
-- Built-in defaults. system_config holds only what an administrator has set; a
-- documented key without a row has its built-in default, which config_get returns
-- and the modules use. The extension deliberately seeds no rows: this file registers
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
-- Executable by PUBLIC: config_get (SECURITY INVOKER, every role) calls it.

-- Who sees sensitive values and may change the configuration (the "administrators"):
--   * a database role that may itself read / write celaest.system_config (its
--     owner, superusers, members of the owner, or roles a DBA granted it to):
--     masking a value from someone who can SELECT it would protect nothing;
--   * the acting CELAEST user when their live profile has role super_admin
--     (celaest._current_user_is_super_admin()).
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
    IF v_sensitive AND NOT celaest._current_user_is_super_admin() THEN
        -- Masked, not NULL: the caller learns that the setting exists and is set.
        RETURN '"***"'::jsonb;
    END IF;
    RETURN v_value;
END;
$$;
COMMENT ON FUNCTION celaest._config_get_masked(text) IS
    'Internal (configuration): config_get for callers without access to system_config: the value, "***" when it is sensitive and the acting CELAEST user is not a live super_admin, the built-in default when the key has no row.';
-- Executable by PUBLIC: config_get (SECURITY INVOKER, every role) calls it for roles that may not read system_config.

CREATE FUNCTION celaest.config_get(p_key text)
RETURNS jsonb
LANGUAGE plpgsql
STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_value jsonb;
BEGIN
    -- Only service callers read sensitive rows of the table (module 85); everyone else
    -- goes through the masked read, which shows them to super_admins.
    IF NOT has_table_privilege('celaest.system_config', 'SELECT')
       OR celaest._caller_level() IS DISTINCT FROM 'service' THEN
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
VOLATILE PARALLEL UNSAFE
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
     WHERE u.id = celaest._current_user_id_or_null();

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
-- Executable by PUBLIC: config_set (SECURITY INVOKER, every role) calls it for roles granted writes on system_config.

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
VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT celaest._current_user_is_super_admin() THEN
        RAISE EXCEPTION 'permission denied to change system configuration key %', coalesce(quote_literal(p_key), 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only a role that may write celaest.system_config (e.g. its owner or a superuser) or a CELAEST super_admin may change it.';
    END IF;
    PERFORM celaest._config_write(p_key, p_value, p_description, p_is_sensitive);
END;
$$;
COMMENT ON FUNCTION celaest._config_set_as_super_admin(text, jsonb, text, boolean) IS
    'Internal (configuration): config_set for callers without write access to system_config: allowed when the acting CELAEST user is a live super_admin, 42501 otherwise.';
-- Executable by PUBLIC: config_set (SECURITY INVOKER, every role) calls it for every other role; it checks the caller itself.

CREATE FUNCTION celaest.config_set(
    p_key          text,
    p_value        jsonb,
    p_description  text DEFAULT NULL,
    p_is_sensitive boolean DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE
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
