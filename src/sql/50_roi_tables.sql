-- CELAEST — ROI tables: roi_metrics.

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
    FOR EACH ROW EXECUTE FUNCTION celaest._set_updated_at();

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

-- pg_dump: these rows are user data (see 10_identity.sql).
SELECT pg_catalog.pg_extension_config_dump('celaest.roi_metrics', '');

-- ---------------------------------------------------------------------------
-- Stored ROI days (internal; not in the data dictionary): see "Stored days" in 55_roi.sql.
-- ---------------------------------------------------------------------------
-- UNLOGGED: every row can be computed again from processed_tasks; after a crash the table is
-- empty and the next run reads the tasks. No foreign key: rows of an organization that is gone
-- are never read, and the upkeep refresh deletes them.
CREATE UNLOGGED TABLE celaest._roi_days (
    organization_id uuid NOT NULL,
    day             date NOT NULL,
    timezone        text NOT NULL,
    state           bytea,
    CONSTRAINT _roi_days_pkey PRIMARY KEY (organization_id, day)
);
COMMENT ON TABLE celaest._roi_days IS
    'Internal (ROI): each organization''s local day tallied once (counts, sums, completed tasks'' execution times, users), merged by aggregate_roi into its periods instead of reading the day''s tasks again. Derived data: deleting rows only makes the next run read those days'' tasks.';
COMMENT ON COLUMN celaest._roi_days.organization_id IS 'Organization.';
COMMENT ON COLUMN celaest._roi_days.day IS 'The local day, in timezone.';
COMMENT ON COLUMN celaest._roi_days.timezone IS 'The organization''s time zone when the day was tallied; another zone makes the row unusable.';
COMMENT ON COLUMN celaest._roi_days.state IS 'The day''s tally (native bytes, core/roi_tally); NULL: no task that day.';

-- Logged: a note commits with the write it describes.
CREATE TABLE celaest._roi_stale (
    organization_id uuid,
    utc_day         date,
    first_at        timestamptz,
    last_at         timestamptz
);
COMMENT ON TABLE celaest._roi_stale IS
    'Internal (ROI): notes of writes to tasks of days that may be stored (written by triggers on processed_tasks and prompts_master, in the writer''s transaction, one per organization and UTC day); the next run deletes the stored days they touch. NULL organization or day: all of them.';
COMMENT ON COLUMN celaest._roi_stale.organization_id IS 'Organization whose task was written; NULL: every organization.';
COMMENT ON COLUMN celaest._roi_stale.utc_day IS 'The tasks'' created_at as a UTC date; NULL: every day.';
COMMENT ON COLUMN celaest._roi_stale.first_at IS 'The earliest created_at of the tasks written that day (the local days touched follow from it and last_at); NULL: the UTC day and the days next to it.';
COMMENT ON COLUMN celaest._roi_stale.last_at IS 'The latest created_at of the tasks written that day.';

-- Bookkeeping of the ROI functions (SECURITY DEFINER): no tenant reads it; a super admin may,
-- for support.
ALTER TABLE celaest._roi_days ENABLE ROW LEVEL SECURITY;
CREATE POLICY roi_days_super_admin ON celaest._roi_days FOR SELECT
    USING (celaest._current_user_is_super_admin());
ALTER TABLE celaest._roi_stale ENABLE ROW LEVEL SECURITY;
CREATE POLICY roi_stale_super_admin ON celaest._roi_stale FOR SELECT
    USING (celaest._current_user_is_super_admin());
