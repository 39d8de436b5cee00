-- CELAEST — task tables: task_batches, processed_tasks.
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
    FOR EACH ROW EXECUTE FUNCTION celaest._set_updated_at();

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

-- pg_dump: these rows are user data (see 10_identity.sql).
SELECT pg_catalog.pg_extension_config_dump('celaest.task_batches', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.processed_tasks', '');

-- ---------------------------------------------------------------------------
-- Licensing: max_concurrent_tasks (the trigger function is in 26_licensing_enforcement.sql)
-- ---------------------------------------------------------------------------
-- The batch runner's claim (_claim_batch_tasks) counts the limit once per organization for all
-- the tasks it claims and says so with celaest.batch_claim: the trigger then has nothing to
-- count row by row (a WHEN clause, so no function call per row either).
CREATE TRIGGER processed_tasks_enforce_max_concurrent_tasks
    BEFORE INSERT OR UPDATE OF status, organization_id ON celaest.processed_tasks
    FOR EACH ROW
    WHEN (NEW.status IN ('processing', 'retrying')
          AND pg_catalog.current_setting('celaest.batch_claim', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION celaest._enforce_max_concurrent_tasks();

-- The admission count reads only the few tasks in flight of one organization.
CREATE INDEX processed_tasks_in_flight_idx ON celaest.processed_tasks (organization_id)
    WHERE status IN ('processing', 'retrying');
