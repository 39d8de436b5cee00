-- CELAEST — AI tables: ai_models, ai_api_pool, prompts_master, and the key-usage bump.

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
    FOR EACH ROW EXECUTE FUNCTION celaest._set_updated_at();

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
    FOR EACH ROW EXECUTE FUNCTION celaest._set_updated_at();

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
    FOR EACH ROW EXECUTE FUNCTION celaest._set_updated_at();

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

-- pg_dump: these rows are user data (see 10_identity.sql).
SELECT pg_catalog.pg_extension_config_dump('celaest.ai_models', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.ai_api_pool', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.prompts_master', '');

-- ---------------------------------------------------------------------------
-- increment_api_key_usage (data dictionary, "Funciones Disponibles")
-- ---------------------------------------------------------------------------
-- One UPDATE: the row lock makes concurrent bumps serialize, so none is lost. It
-- commits with the caller's transaction (a rolled-back bump counts nothing); the
-- ledger's fold adds to the same columns and skips a row locked here until a later
-- pass, and its crash rebuild counts only AI calls' attempts, so a bump made here is
-- neither lost nor counted twice (README, "The ledger").
-- SECURITY DEFINER: the key pool is a platform object that service callers and
-- super_admins change (API.md); the level privileges give neither UPDATE on these
-- counters, so the caller is checked here, before anything else, and the UPDATE runs
-- with the owner's rights. The AI calls charge keys natively, not through this.
CREATE FUNCTION celaest.increment_api_key_usage(p_key_id uuid, p_tokens integer)
RETURNS void
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT celaest._manages_platform() THEN
        RAISE EXCEPTION 'permission denied for function increment_api_key_usage'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only service callers and super_admins change the API-key pool.';
    END IF;
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
    'Atomically records one use of an API key: usage_count + 1, tokens_used + p_tokens, last_used_at = now(). Service callers and super_admins only (42501 for anyone else, before anything is checked). Raises 22023 for NULL or negative tokens, P0002 for an unknown key.';
