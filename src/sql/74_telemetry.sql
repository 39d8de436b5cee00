-- CELAEST — telemetry: telemetry_events and track_event.

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
    CONSTRAINT telemetry_events_device_type_valid CHECK (device_type IN ('desktop', 'mobile', 'tablet', 'bot'))
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
COMMENT ON COLUMN celaest.telemetry_events.device_type IS 'Device type: desktop, mobile, tablet or bot (a crawler).';
COMMENT ON COLUMN celaest.telemetry_events.browser IS 'Browser.';
COMMENT ON COLUMN celaest.telemetry_events.os IS 'Operating system.';
COMMENT ON COLUMN celaest.telemetry_events.created_at IS 'Event time.';

-- pg_dump: these rows are user data (see 10_identity.sql).
SELECT pg_catalog.pg_extension_config_dump('celaest.telemetry_events', '');

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
VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_properties jsonb := coalesce(p_properties, '{}');
    v_options    jsonb := coalesce(p_options, '{}');
    v_user       uuid  := celaest._current_user_id_or_null();
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
    'Records a telemetry event for the acting user (celaest._current_user_id_or_null(); NULL = anonymous) and their organization; returns its id. Options (strings): event_type (default ''custom''), event_category, session_id, page_url, referrer, device_type (desktop, mobile, tablet, bot), browser, os, ip_address and user_agent (default: the settings celaest.client_ip and celaest.user_agent). device_type, browser and os not given are derived from the user agent (celaest._parse_user_agent: crawlers are bots). page_url, referrer and user_agent are cut to 500 characters. A user id without a profile is recorded as anonymous, with properties.unknown_user_id. Raises 22023 for an empty or over-long event name, non-object properties or options, an unknown or non-string option, an invalid device_type or IP address.';
