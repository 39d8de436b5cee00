-- Constraints: bad rows are refused with an error that names the constraint, and
-- foreign keys act on delete as chosen. Everything runs in one transaction that is
-- rolled back; psql's ON_ERROR_ROLLBACK keeps it alive after each refusal.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
BEGIN;

-- ---------------------------------------------------------------------------
-- The foreign keys and what they do on delete.
-- ---------------------------------------------------------------------------
SELECT conrelid::regclass AS table_name, conname, pg_get_constraintdef(oid) AS definition
  FROM pg_constraint
 WHERE connamespace = 'celaest'::regnamespace AND contype = 'f'
 ORDER BY conrelid::regclass::text, conname;

-- Every foreign key column leads some index. Expect no rows.
SELECT c.conrelid::regclass AS table_name, c.conname AS unindexed_foreign_key
  FROM pg_constraint AS c
 WHERE c.connamespace = 'celaest'::regnamespace AND c.contype = 'f'
   AND NOT EXISTS (SELECT 1 FROM pg_index AS i
                    WHERE i.indrelid = c.conrelid
                      AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] = c.conkey);

-- The unique constraints and unique indexes.
SELECT conrelid::regclass AS table_name, conname, pg_get_constraintdef(oid) AS definition
  FROM pg_constraint
 WHERE connamespace = 'celaest'::regnamespace AND contype = 'u'
 ORDER BY conrelid::regclass::text, conname;
SELECT indexrelid::regclass AS index_name, pg_get_indexdef(indexrelid) AS definition
  FROM pg_index
 WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'celaest'::regnamespace)
   AND indisunique AND NOT indisprimary
   AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)
 ORDER BY indexrelid::regclass::text;

-- The hot lookups have their indexes.
SELECT indexrelid::regclass AS index_name, pg_get_indexdef(indexrelid) AS definition
  FROM pg_index
 WHERE indexrelid IN ('celaest.licenses_license_key_hash_idx'::regclass,
                      'celaest.processed_tasks_status_created_at_idx'::regclass,
                      'celaest.processed_tasks_organization_id_created_at_idx'::regclass,
                      'celaest.processed_tasks_batch_id_status_idx'::regclass,
                      'celaest.audit_logs_created_at_idx'::regclass,
                      'celaest.telemetry_events_created_at_brin'::regclass,
                      'celaest.ai_api_pool_selectable_idx'::regclass,
                      'celaest.license_usage_log_license_id_created_at_idx'::regclass)
 ORDER BY indexrelid::regclass::text;

-- ---------------------------------------------------------------------------
-- Good rows to start from.
-- ---------------------------------------------------------------------------
INSERT INTO celaest.organizations (id, name, slug) VALUES
    ('a0000000-0000-4000-8000-000000000001', 'Constraint Org A', 'con-a'),
    ('a0000000-0000-4000-8000-000000000002', 'Constraint Org B', 'con-b'),
    ('a0000000-0000-4000-8000-000000000003', 'Constraint Org C', 'con-c');
INSERT INTO celaest.users_profile (id, organization_id, email) VALUES
    ('a1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001', 'a1@con.test');
INSERT INTO celaest.subscription_plans (id, code, name) VALUES
    ('b0000000-0000-4000-8000-000000000001', 'con-pro', 'Constraint Pro');
INSERT INTO celaest.licenses (id, organization_id, plan_id, license_key, status) VALUES
    ('b1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001',
     'b0000000-0000-4000-8000-000000000001', 'con-key-1', 'active');
INSERT INTO celaest.ai_models (id, provider, model_id, display_name, is_default) VALUES
    ('d0000000-0000-4000-8000-000000000001', 'groq', 'con-model', 'Con model', true);
INSERT INTO celaest.ai_api_pool (id, provider, key_name, key_value_encrypted) VALUES
    ('d1000000-0000-4000-8000-000000000001', 'groq', 'con-key', '\x00');
INSERT INTO celaest.prompts_master (id, slug, name, category, system_prompt, is_default) VALUES
    ('d2000000-0000-4000-8000-000000000001', 'con-prompt', 'Con prompt', 'test', 'You are terse.', true);
INSERT INTO celaest.task_batches (id, organization_id, user_id, total_tasks) VALUES
    ('e0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001',
     'a1000000-0000-4000-8000-000000000001', 1);
INSERT INTO celaest.processed_tasks (id, organization_id, user_id, batch_id, model_id, api_key_id, prompt_id) VALUES
    ('e1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001',
     'a1000000-0000-4000-8000-000000000001', 'e0000000-0000-4000-8000-000000000001',
     'd0000000-0000-4000-8000-000000000001', 'd1000000-0000-4000-8000-000000000001',
     'd2000000-0000-4000-8000-000000000001');
INSERT INTO celaest.roi_metrics (organization_id, period_type, period_start, period_end) VALUES
    ('a0000000-0000-4000-8000-000000000002', 'daily', '2026-01-01', '2026-01-01');
INSERT INTO celaest.feature_flags (flag_key, name) VALUES ('con-flag', 'Con flag');

-- ---------------------------------------------------------------------------
-- CHECK constraints and JSON shapes (terse: the failing row would show now()).
-- Ordinary triggers are off for this section (session_replication_role =
-- replica), so that each constraint is seen on its own, not behind a trigger of
-- the licensing module that validates the same column more strictly first.
-- ---------------------------------------------------------------------------
\set VERBOSITY terse
SET LOCAL session_replication_role = replica;
-- organizations
INSERT INTO celaest.organizations (name, slug) VALUES ('  ', 'blank-name');
INSERT INTO celaest.organizations (name, slug) VALUES ('Bad slug', 'Bad Slug');
INSERT INTO celaest.organizations (name, slug, email) VALUES ('Bad email', 'bad-email', 'nobody');
INSERT INTO celaest.organizations (name, slug, country_code) VALUES ('Bad country', 'bad-country', 'mx');
INSERT INTO celaest.organizations (name, slug, settings) VALUES ('Bad settings', 'bad-settings', '[]');
INSERT INTO celaest.organizations (name, slug, metadata) VALUES ('Bad metadata', 'bad-metadata', '"x"');
INSERT INTO celaest.organizations (name, slug, max_users) VALUES ('Bad max users', 'bad-max-users', -2);
INSERT INTO celaest.organizations (name, slug, max_api_calls_per_month) VALUES ('Bad max calls', 'bad-max-calls', -2);
INSERT INTO celaest.organizations (name, slug, country_code, max_users) VALUES ('Good', 'good-org', 'MX', -1)
RETURNING slug, country_code, max_users;
-- users_profile
INSERT INTO celaest.users_profile (id, email) VALUES ('a1000000-0000-4000-8000-0000000000f1', 'not-an-email');
INSERT INTO celaest.users_profile (id, email, scopes) VALUES ('a1000000-0000-4000-8000-0000000000f1', 'f1@con.test', '{}');
INSERT INTO celaest.users_profile (id, email, preferences) VALUES ('a1000000-0000-4000-8000-0000000000f1', 'f1@con.test', '[]');
INSERT INTO celaest.users_profile (id, email, metadata) VALUES ('a1000000-0000-4000-8000-0000000000f1', 'f1@con.test', 'null');
INSERT INTO celaest.users_profile (id, email, onboarding_step) VALUES ('a1000000-0000-4000-8000-0000000000f1', 'f1@con.test', -1);
INSERT INTO celaest.users_profile (id, email, login_count) VALUES ('a1000000-0000-4000-8000-0000000000f1', 'f1@con.test', -1);
INSERT INTO celaest.users_profile (id, email, role) VALUES ('a1000000-0000-4000-8000-0000000000f1', 'f1@con.test', 'owner');
-- subscription_plans
INSERT INTO celaest.subscription_plans (code, name) VALUES (' ', 'Blank code');
INSERT INTO celaest.subscription_plans (code, name, price_monthly) VALUES ('neg-monthly', 'Negative', -1);
INSERT INTO celaest.subscription_plans (code, name, price_yearly) VALUES ('neg-yearly', 'Negative', -0.01);
INSERT INTO celaest.subscription_plans (code, name, currency) VALUES ('bad-currency', 'Bad currency', 'usd');
INSERT INTO celaest.subscription_plans (code, name, limits) VALUES ('bad-limits', 'Bad limits', '[]');
INSERT INTO celaest.subscription_plans (code, name, features) VALUES ('bad-features', 'Bad features', '{}');
-- licenses
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status, custom_limits)
VALUES ('a0000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-000000000001', 'k-bad-custom', 'expired', '[]');
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status, metadata)
VALUES ('a0000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-000000000001', 'k-bad-meta', 'expired', '[]');
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status, ai_requests_used)
VALUES ('a0000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-000000000001', 'k-neg-used', 'expired', -1);
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status, storage_used_bytes)
VALUES ('a0000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-000000000001', 'k-neg-storage', 'expired', -1);
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status, current_period_start, current_period_end)
VALUES ('a0000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-000000000001', 'k-bad-period', 'expired',
        '2026-02-01', '2026-01-01');
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status)
VALUES ('a0000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-000000000001', '', 'expired');
-- license_usage_log
INSERT INTO celaest.license_usage_log (license_id, organization_id, metric, quantity)
VALUES ('b1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001', 'ai_requests', -1);
INSERT INTO celaest.license_usage_log (license_id, organization_id, metric, quantity)
VALUES ('b1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001', '', 1);
INSERT INTO celaest.license_usage_log (license_id, organization_id, metric, quantity, period_start, period_end)
VALUES ('b1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001', 'ai_requests', 1,
        '2026-02-01', '2026-01-01');
INSERT INTO celaest.license_usage_log (license_id, organization_id, metric, quantity, metadata)
VALUES ('b1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001', 'ai_requests', 1, '[]');
-- ai_models
INSERT INTO celaest.ai_models (provider, model_id, display_name, capabilities) VALUES ('groq', 'm-caps', 'x', '[]');
INSERT INTO celaest.ai_models (provider, model_id, display_name, metadata) VALUES ('groq', 'm-meta', 'x', '[]');
INSERT INTO celaest.ai_models (provider, model_id, display_name, max_tokens_input) VALUES ('groq', 'm-in', 'x', 0);
INSERT INTO celaest.ai_models (provider, model_id, display_name, max_tokens_output) VALUES ('groq', 'm-out', 'x', 0);
INSERT INTO celaest.ai_models (provider, model_id, display_name, context_window) VALUES ('groq', 'm-ctx', 'x', -1);
INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input) VALUES ('groq', 'm-cin', 'x', -0.000001);
INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_output) VALUES ('groq', 'm-cout', 'x', -1);
INSERT INTO celaest.ai_models (provider, model_id, display_name) VALUES ('groq', ' ', 'x');
INSERT INTO celaest.ai_models (provider, model_id, display_name, priority) VALUES ('groq', 'm-low', 'Low priority', -10)
RETURNING model_id, priority;
-- ai_api_pool
INSERT INTO celaest.ai_api_pool (provider, key_name, key_value_encrypted, weight) VALUES ('groq', 'k', '\x00', -1);
INSERT INTO celaest.ai_api_pool (provider, key_name, key_value_encrypted, rate_limit_rpm) VALUES ('groq', 'k', '\x00', 0);
INSERT INTO celaest.ai_api_pool (provider, key_name, key_value_encrypted, rate_limit_tpm) VALUES ('groq', 'k', '\x00', 0);
INSERT INTO celaest.ai_api_pool (provider, key_name, key_value_encrypted, rate_limit_rpd) VALUES ('groq', 'k', '\x00', -5);
INSERT INTO celaest.ai_api_pool (provider, key_name, key_value_encrypted, usage_count) VALUES ('groq', 'k', '\x00', -1);
INSERT INTO celaest.ai_api_pool (provider, key_name, key_value_encrypted, tokens_used) VALUES ('groq', 'k', '\x00', -1);
INSERT INTO celaest.ai_api_pool (provider, key_name, key_value_encrypted, consecutive_failures) VALUES ('groq', 'k', '\x00', -1);
INSERT INTO celaest.ai_api_pool (provider, key_name, key_value_encrypted, metadata) VALUES ('groq', 'k', '\x00', '[]');
INSERT INTO celaest.ai_api_pool (provider, key_name, key_value_encrypted) VALUES ('groq', '', '\x00');
INSERT INTO celaest.ai_api_pool (provider, key_name) VALUES ('groq', 'no-secret');
-- prompts_master
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, temperature) VALUES ('p', 'p', 'c', 's', 2.5);
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, temperature) VALUES ('p', 'p', 'c', 's', -0.1);
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, top_p) VALUES ('p', 'p', 'c', 's', 1.01);
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, max_tokens) VALUES ('p', 'p', 'c', 's', 0);
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, version) VALUES ('p', 'p', 'c', 's', 0);
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, usage_count) VALUES ('p', 'p', 'c', 's', -1);
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, avg_response_time_ms) VALUES ('p', 'p', 'c', 's', -1);
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, success_rate) VALUES ('p', 'p', 'c', 's', 100.01);
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, variables) VALUES ('p', 'p', 'c', 's', '{}');
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, metadata) VALUES ('p', 'p', 'c', 's', '[]');
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt) VALUES ('p@2', 'p', 'c', 's');
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt) VALUES ('p', 'p', ' ', 's');
INSERT INTO celaest.prompts_master (id, slug, name, category, system_prompt, parent_id)
VALUES ('d2000000-0000-4000-8000-0000000000ff', 'p', 'p', 'c', 's', 'd2000000-0000-4000-8000-0000000000ff');
-- task_batches
INSERT INTO celaest.task_batches (organization_id, user_id, total_tasks)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', -1);
INSERT INTO celaest.task_batches (organization_id, user_id, total_tasks, completed_tasks)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 1, -1);
INSERT INTO celaest.task_batches (organization_id, user_id, total_tasks, failed_tasks)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 1, -1);
INSERT INTO celaest.task_batches (organization_id, user_id, total_tasks, completed_tasks, failed_tasks)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 2, 2, 1);
INSERT INTO celaest.task_batches (organization_id, user_id, options)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', '[]');
INSERT INTO celaest.task_batches (organization_id, user_id, metadata)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', '1');
-- processed_tasks
INSERT INTO celaest.processed_tasks (organization_id, user_id, output_confidence)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 1.0001);
INSERT INTO celaest.processed_tasks (organization_id, user_id, retry_count)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', -1);
INSERT INTO celaest.processed_tasks (organization_id, user_id, tokens_input)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', -1);
INSERT INTO celaest.processed_tasks (organization_id, user_id, tokens_output)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', -1);
INSERT INTO celaest.processed_tasks (organization_id, user_id, cost_usd)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', -0.000001);
INSERT INTO celaest.processed_tasks (organization_id, user_id, execution_time_ms)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', -1);
INSERT INTO celaest.processed_tasks (organization_id, user_id, queue_time_ms)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', -1);
INSERT INTO celaest.processed_tasks (organization_id, user_id, ai_time_ms)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', -1);
INSERT INTO celaest.processed_tasks (organization_id, user_id, input_metadata)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', '[]');
INSERT INTO celaest.processed_tasks (organization_id, user_id, metadata)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', '[]');
INSERT INTO celaest.processed_tasks (organization_id, user_id, tokens_total)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 5);
-- roi_metrics
INSERT INTO celaest.roi_metrics (organization_id, period_type, period_start, period_end)
VALUES ('a0000000-0000-4000-8000-000000000001', 'yearly', '2026-01-01', '2026-12-31');
INSERT INTO celaest.roi_metrics (organization_id, period_type, period_start, period_end)
VALUES ('a0000000-0000-4000-8000-000000000001', 'weekly', '2026-01-08', '2026-01-01');
INSERT INTO celaest.roi_metrics (organization_id, period_type, period_start, period_end, success_rate)
VALUES ('a0000000-0000-4000-8000-000000000001', 'daily', '2026-01-01', '2026-01-01', -1);
INSERT INTO celaest.roi_metrics (organization_id, period_type, period_start, period_end, tasks_failed)
VALUES ('a0000000-0000-4000-8000-000000000001', 'daily', '2026-01-01', '2026-01-01', -1);
INSERT INTO celaest.roi_metrics (organization_id, period_type, period_start, period_end, cost_ai)
VALUES ('a0000000-0000-4000-8000-000000000001', 'daily', '2026-01-01', '2026-01-01', -1);
INSERT INTO celaest.roi_metrics (organization_id, period_type, period_start, period_end, p99_execution_time_ms)
VALUES ('a0000000-0000-4000-8000-000000000001', 'daily', '2026-01-01', '2026-01-01', -1);
INSERT INTO celaest.roi_metrics (organization_id, period_type, period_start, period_end, metadata)
VALUES ('a0000000-0000-4000-8000-000000000001', 'daily', '2026-01-01', '2026-01-01', '[]');
-- Savings may be negative: the AI was slower or dearer than the manual work.
INSERT INTO celaest.roi_metrics (organization_id, period_type, period_start, period_end, time_saved_minutes, money_saved)
VALUES ('a0000000-0000-4000-8000-000000000001', 'monthly', '2026-01-01', '2026-01-31', -30, -12.50)
RETURNING period_type, time_saved_minutes, money_saved;
-- audit_logs
INSERT INTO celaest.audit_logs (action, resource_type) VALUES ('read', ' ');
INSERT INTO celaest.audit_logs (action, resource_type, changes) VALUES ('read', 'x', '[]');
-- telemetry_events
INSERT INTO celaest.telemetry_events (event_type, event_name, device_type) VALUES ('ui', 'click', 'watch');
INSERT INTO celaest.telemetry_events (event_type, event_name, properties) VALUES ('ui', 'click', '[]');
INSERT INTO celaest.telemetry_events (event_type, event_name) VALUES ('', 'click');
INSERT INTO celaest.telemetry_events (event_type, event_name) VALUES ('ui', ' ');
-- system_config
INSERT INTO celaest.system_config (key, value) VALUES (' ', '1');
INSERT INTO celaest.system_config (key) VALUES ('no-value');
-- feature_flags
INSERT INTO celaest.feature_flags (flag_key, name, target_type) VALUES ('f1', 'f', 'beta');
INSERT INTO celaest.feature_flags (flag_key, name, target_type, target_percentage) VALUES ('f1', 'f', 'percentage', 101);
INSERT INTO celaest.feature_flags (flag_key, name, target_type, target_percentage) VALUES ('f1', 'f', 'percentage', -1);
INSERT INTO celaest.feature_flags (flag_key, name, target_type) VALUES ('f1', 'f', 'percentage');
INSERT INTO celaest.feature_flags (flag_key, name, metadata) VALUES ('f1', 'f', '[]');
INSERT INTO celaest.feature_flags (flag_key, name) VALUES ('', 'f');

-- ---------------------------------------------------------------------------
-- UNIQUE (with the offending key).
-- ---------------------------------------------------------------------------
RESET session_replication_role;
\set VERBOSITY default
INSERT INTO celaest.organizations (name, slug) VALUES ('Again', 'con-a');
INSERT INTO celaest.users_profile (id, email) VALUES ('a1000000-0000-4000-8000-0000000000f2', 'a1@con.test');
INSERT INTO celaest.users_profile (id, email) VALUES ('a1000000-0000-4000-8000-000000000001', 'other@con.test');
INSERT INTO celaest.subscription_plans (code, name) VALUES ('con-pro', 'Again');
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status)
VALUES ('a0000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-000000000001', 'con-key-1', 'expired');
INSERT INTO celaest.feature_flags (flag_key, name) VALUES ('con-flag', 'Again');
INSERT INTO celaest.ai_models (provider, model_id, display_name) VALUES ('groq', 'con-model', 'Again');
-- ... the same model id under another provider is another model.
INSERT INTO celaest.ai_models (provider, model_id, display_name) VALUES ('openai', 'con-model', 'Same id, other provider')
RETURNING provider, model_id;
INSERT INTO celaest.roi_metrics (organization_id, period_type, period_start, period_end)
VALUES ('a0000000-0000-4000-8000-000000000002', 'daily', '2026-01-01', '2026-01-01');
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, version)
VALUES ('con-prompt', 'Again', 'test', 's', 1);

-- One license in force per organization: a second trial/active/suspended one is
-- refused; expired and cancelled ones are history and may pile up.
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status)
VALUES ('a0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000001', 'con-key-2', 'trial');
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status)
VALUES ('a0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000001', 'con-key-3', 'suspended');
INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status) VALUES
    ('a0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000001', 'con-key-4', 'expired'),
    ('a0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000001', 'con-key-5', 'cancelled'),
    ('a0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000001', 'con-key-6', 'expired');
SELECT status, count(*) FROM celaest.licenses
 WHERE organization_id = 'a0000000-0000-4000-8000-000000000001'
 GROUP BY status ORDER BY status;

-- One active default model; an inactive default may wait in the wings.
INSERT INTO celaest.ai_models (provider, model_id, display_name, is_default)
VALUES ('gemini', 'con-default-2', 'Second default', true);
INSERT INTO celaest.ai_models (provider, model_id, display_name, is_default, is_active)
VALUES ('gemini', 'con-default-3', 'Inactive default', true, false)
RETURNING model_id, is_default, is_active;

-- One active default version per prompt slug; versions are unique per slug.
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, version, is_default)
VALUES ('con-prompt', 'v2 as default', 'test', 's', 2, true);
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, version, is_default, is_active, parent_id)
VALUES ('con-prompt', 'v2, inactive default', 'test', 's', 2, true, false, 'd2000000-0000-4000-8000-000000000001')
RETURNING slug, version, is_default, is_active;
INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, is_default)
VALUES ('other-prompt', 'Another slug', 'test', 's', true)
RETURNING slug, version, is_default;

-- ---------------------------------------------------------------------------
-- FOREIGN KEYS: missing parents, and what deleting a parent does.
-- ---------------------------------------------------------------------------
INSERT INTO celaest.users_profile (id, organization_id, email)
VALUES ('a1000000-0000-4000-8000-0000000000f3', 'a0000000-0000-4000-8000-0000000000ff', 'f3@con.test');
INSERT INTO celaest.licenses (organization_id, plan_id, license_key)
VALUES ('a0000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-0000000000ff', 'con-key-x');
INSERT INTO celaest.processed_tasks (organization_id, user_id)
VALUES ('a0000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-0000000000ff');
INSERT INTO celaest.license_usage_log (license_id, organization_id, metric, quantity, task_id)
VALUES ('b1000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001', 'ai_requests', 1,
        'e1000000-0000-4000-8000-0000000000ff');
INSERT INTO celaest.audit_logs (action, resource_type, user_id)
VALUES ('read', 'x', 'a1000000-0000-4000-8000-0000000000ff');

-- RESTRICT: an organization with a license, a plan that was sold, a batch with tasks.
DELETE FROM celaest.organizations WHERE id = 'a0000000-0000-4000-8000-000000000001';
DELETE FROM celaest.subscription_plans WHERE id = 'b0000000-0000-4000-8000-000000000001';
DELETE FROM celaest.task_batches WHERE id = 'e0000000-0000-4000-8000-000000000001';
-- NO ACTION from audit_logs: org C has no license, but its history is audited.
INSERT INTO celaest.users_profile (id, organization_id, email)
VALUES ('a1000000-0000-4000-8000-0000000000c1', 'a0000000-0000-4000-8000-000000000003', 'c1@con.test');
DELETE FROM celaest.organizations WHERE id = 'a0000000-0000-4000-8000-000000000003';
-- CASCADE: org B has only derived ROI rows; they go with it.
DELETE FROM celaest.organizations WHERE id = 'a0000000-0000-4000-8000-000000000002';
SELECT count(*) AS roi_rows_of_org_b FROM celaest.roi_metrics
 WHERE organization_id = 'a0000000-0000-4000-8000-000000000002';
-- SET NULL: catalog rows can be pruned; the task keeps its numbers.
DELETE FROM celaest.ai_api_pool WHERE id = 'd1000000-0000-4000-8000-000000000001';
DELETE FROM celaest.ai_models WHERE id = 'd0000000-0000-4000-8000-000000000001';
DELETE FROM celaest.prompts_master WHERE id = 'd2000000-0000-4000-8000-000000000001';
SELECT model_id, api_key_id, prompt_id, batch_id IS NOT NULL AS still_in_batch
  FROM celaest.processed_tasks WHERE id = 'e1000000-0000-4000-8000-000000000001';
-- SET NULL: license_usage_log.task_id (API.md); the consumption stays.
INSERT INTO celaest.license_usage_log (id, license_id, organization_id, metric, quantity, task_id)
VALUES ('b2000000-0000-4000-8000-000000000001', 'b1000000-0000-4000-8000-000000000001',
        'a0000000-0000-4000-8000-000000000001', 'ai_requests', 1, 'e1000000-0000-4000-8000-000000000001');
DELETE FROM celaest.processed_tasks WHERE id = 'e1000000-0000-4000-8000-000000000001';
SELECT task_id, quantity FROM celaest.license_usage_log WHERE id = 'b2000000-0000-4000-8000-000000000001';

ROLLBACK;
