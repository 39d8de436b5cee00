-- CELAEST — licensing, tables: subscription_plans, licenses, license_usage_log.

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
    FOR EACH ROW EXECUTE FUNCTION celaest._set_updated_at();

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
    FOR EACH ROW EXECUTE FUNCTION celaest._set_updated_at();

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
    -- (task_id -> processed_tasks, ON DELETE SET NULL, is added in 40_tasks_tables.sql,
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

-- pg_dump: these rows are user data (see 10_identity.sql).
SELECT pg_catalog.pg_extension_config_dump('celaest.subscription_plans', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.licenses', '');
SELECT pg_catalog.pg_extension_config_dump('celaest.license_usage_log', '');
