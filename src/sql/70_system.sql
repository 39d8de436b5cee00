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
