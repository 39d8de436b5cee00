-- CELAEST — feature flags: feature_flags and is_feature_enabled.

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
    FOR EACH ROW EXECUTE FUNCTION celaest._set_updated_at();

CREATE TRIGGER feature_flags_audit
    AFTER INSERT OR UPDATE OR DELETE ON celaest.feature_flags
    FOR EACH ROW EXECUTE FUNCTION celaest._audit_row_change('feature_flag');

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

-- pg_dump: these rows are user data (see 10_identity.sql).
SELECT pg_catalog.pg_extension_config_dump('celaest.feature_flags', '');


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
-- The acting user as every function taking p_user_id decides it (_acting_user_id): a
-- service caller may name anyone; anyone else only itself (42501 naming nobody), checked
-- first, whatever the flag, so the answer never depends on who may be named. Without
-- p_user_id the acting user, read from the statement's identity (native, cached): the
-- common call costs nothing more.
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
    IF p_user_id IS NOT NULL THEN
        -- A service caller names anyone (_acting_user_id's first rule), asked natively
        -- without the helper's call; everyone else through the helper.
        v_user := CASE WHEN celaest._caller_level() = 'service' THEN p_user_id
                       ELSE celaest._acting_user_id(p_user_id, 'is_feature_enabled') END;
    END IF;
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

    v_user := coalesce(v_user, celaest._current_user_id_or_null());
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
    'Whether a feature flag is on for a user (NULL: the acting user; only a service caller may name another user, 42501 otherwise) and organization (NULL: that user''s). Unknown or disabled flag: false. target_type all: true; users: the user is in target_users; orgs: the organization is in target_organizations; percentage: Unleash''s gradual rollout, the bucket murmur3_x86_32(flag_key || '':'' || user id (else organization id), seed 0) % 100 + 1 is at most target_percentage (false with neither user nor organization). Never NULL.';
