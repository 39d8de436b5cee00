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
-- The device, browser and OS a User-Agent header names (core/user_agent), as
-- {device_type, browser, os} with only the keys it recognised. Native and pure.
CREATE FUNCTION celaest._parse_user_agent(p_user_agent text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'celaest_parse_user_agent'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION celaest._parse_user_agent(text) IS
    'Internal (telemetry): what a User-Agent string says, as {device_type (desktop, mobile, tablet or bot), browser (e.g. Chrome, Safari, Firefox, Edge, Samsung Internet, Android WebView, Googlebot, Bingbot), os (e.g. Windows, macOS, iOS, Android, Linux, ChromeOS)}; keys it cannot tell are left out. A crawler is a bot whatever device it claims.';

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
    v_user_agent text;
    v_derived    jsonb := '{}';
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
    IF lower(v_opt ->> 'device_type') NOT IN ('desktop', 'mobile', 'tablet', 'bot') THEN
        RAISE EXCEPTION 'celaest.track_event: invalid device_type %', quote_literal(v_opt ->> 'device_type')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'device_type is desktop, mobile, tablet or bot.';
    END IF;

    -- The user agent (the option, else the session setting) tells the device, browser and
    -- OS the client did not state; what the client states wins. Parsed before the column
    -- cut, so a long header's tail still counts.
    v_user_agent := coalesce(v_opt ->> 'user_agent', nullif(btrim(current_setting('celaest.user_agent', true)), ''));
    IF v_user_agent IS NOT NULL THEN
        v_derived := celaest._parse_user_agent(v_user_agent);
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
         left(v_user_agent, 500),
         coalesce(lower(v_opt ->> 'device_type'), v_derived ->> 'device_type'),
         coalesce(v_opt ->> 'browser', v_derived ->> 'browser'),
         coalesce(v_opt ->> 'os', v_derived ->> 'os'))
    RETURNING id INTO v_id;

    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION celaest.track_event(text, jsonb, jsonb) IS
    'Records a telemetry event for the acting user (celaest.current_user_id_or_null(); NULL = anonymous) and their organization; returns its id. Options (strings): event_type (default ''custom''), event_category, session_id, page_url, referrer, device_type (desktop, mobile, tablet, bot), browser, os, ip_address and user_agent (default: the settings celaest.client_ip and celaest.user_agent). device_type, browser and os not given are derived from the user agent (celaest._parse_user_agent: crawlers are bots). page_url, referrer and user_agent are cut to 500 characters. A user id without a profile is recorded as anonymous, with properties.unknown_user_id. Raises 22023 for an empty or over-long event name, non-object properties or options, an unknown or non-string option, an invalid device_type or IP address.';

-- ---------------------------------------------------------------------------
-- Feature flags
-- ---------------------------------------------------------------------------
-- The gradual-rollout bucket, 1..100, exactly as Unleash computes it (murmur3 x86_32,
-- seed 0, of 'group:subject', mod 100, plus 1), so that a team moving from Unleash keeps
-- every user in the same bucket. Native: the hash lives in the pure core (core/murmur3).
CREATE FUNCTION celaest._unleash_bucket(p_group text, p_subject text) RETURNS integer
    AS 'MODULE_PATHNAME', 'celaest_unleash_bucket'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION celaest._unleash_bucket(text, text) IS
    'Internal (feature flags): Unleash''s gradual-rollout bucket of a subject, 1..100: MurmurHash3 x86_32 with seed 0 of the UTF-8 bytes of p_group || '':'' || p_subject, mod 100, plus 1.';

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
            -- Unleash's gradual rollout: a sticky bucket 1..100 of the flag key (the
            -- rollout's group) and the user (else the organization); the same subject
            -- always gets the same answer, and raising the percentage only ever adds
            -- subjects.
            v_subject := coalesce(v_user, v_org)::text;
            IF v_subject IS NULL THEN
                RETURN false;
            END IF;
            RETURN celaest._unleash_bucket(p_flag_key, v_subject)
                   <= coalesce(v_flag.target_percentage, 0);
        ELSE
            RETURN false;                   -- a target type this version does not know
    END CASE;
END;
$$;
COMMENT ON FUNCTION celaest.is_feature_enabled(text, uuid, uuid) IS
    'Whether a feature flag is on for a user (NULL: the acting user) and organization (NULL: that user''s). Unknown or disabled flag: false. target_type all: true; users: the user is in target_users; orgs: the organization is in target_organizations; percentage: Unleash''s gradual rollout, the bucket murmur3_x86_32(flag_key || '':'' || user id (else organization id), seed 0) % 100 + 1 is at most target_percentage (false with neither user nor organization). Never NULL.';
