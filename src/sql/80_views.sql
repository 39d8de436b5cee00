-- CELAEST — views: the three views of the data dictionary ("Vistas Disponibles").
--
-- Plain views (API.md) with security_invoker: they read the tables with the
-- caller's rights, so row-level security applies to whoever queries them and a
-- view never widens what a role can see.

-- ---------------------------------------------------------------------------
-- v_active_licenses
-- ---------------------------------------------------------------------------
CREATE VIEW celaest.v_active_licenses
WITH (security_invoker = true)
AS
SELECT l.id                   AS license_id,
       l.organization_id,
       o.name                 AS organization_name,
       o.slug                 AS organization_slug,
       l.plan_id,
       p.code                 AS plan_code,
       p.name                 AS plan_name,
       l.status,
       l.billing_cycle,
       l.starts_at,
       l.expires_at,
       l.trial_ends_at,
       l.current_period_start,
       l.current_period_end,
       l.next_billing_date,
       e.effective_limits,
       l.ai_requests_used,
       q.ai_requests_limit,
       CASE
           WHEN q.ai_requests_limit IS NULL OR q.ai_requests_limit < 0 THEN -1
           ELSE GREATEST(q.ai_requests_limit - l.ai_requests_used, 0)
       END                    AS ai_requests_remaining,
       l.storage_used_bytes
  FROM celaest.licenses AS l
  JOIN celaest.organizations AS o ON o.id = l.organization_id
  JOIN celaest.subscription_plans AS p ON p.id = l.plan_id
 -- Effective limits exactly as the licensing functions enforce them (API.md's
 -- effective_limits(): plan limits overlaid with custom_limits, narrowed for
 -- trials by license.trial_limits, AI requests uncapped when usage_based).
 CROSS JOIN LATERAL (
       SELECT celaest.effective_limits(l.id) AS effective_limits) AS e
 CROSS JOIN LATERAL (
       -- A limit that is absent (or not a number) is not configured: unlimited.
       SELECT CASE
                  WHEN jsonb_typeof(e.effective_limits -> 'max_ai_requests_per_month') = 'number'
                  THEN (e.effective_limits ->> 'max_ai_requests_per_month')::numeric::bigint
              END AS ai_requests_limit) AS q
 WHERE l.status IN ('trial', 'active', 'suspended');

COMMENT ON VIEW celaest.v_active_licenses IS
    'Licenses in force (trial, active or suspended), one row each, with organization, plan, dates, effective limits, usage and remaining AI requests.';
COMMENT ON COLUMN celaest.v_active_licenses.license_id IS 'License id.';
COMMENT ON COLUMN celaest.v_active_licenses.organization_id IS 'Licensed organization.';
COMMENT ON COLUMN celaest.v_active_licenses.organization_name IS 'Organization name.';
COMMENT ON COLUMN celaest.v_active_licenses.organization_slug IS 'Organization slug.';
COMMENT ON COLUMN celaest.v_active_licenses.plan_id IS 'Subscribed plan.';
COMMENT ON COLUMN celaest.v_active_licenses.plan_code IS 'Plan code.';
COMMENT ON COLUMN celaest.v_active_licenses.plan_name IS 'Plan name.';
COMMENT ON COLUMN celaest.v_active_licenses.status IS 'License status (trial, active or suspended).';
COMMENT ON COLUMN celaest.v_active_licenses.billing_cycle IS 'Billing cycle.';
COMMENT ON COLUMN celaest.v_active_licenses.starts_at IS 'Start time.';
COMMENT ON COLUMN celaest.v_active_licenses.expires_at IS 'Expiry time (NULL = does not expire).';
COMMENT ON COLUMN celaest.v_active_licenses.trial_ends_at IS 'End of the trial period.';
COMMENT ON COLUMN celaest.v_active_licenses.current_period_start IS 'Start of the current billing period.';
COMMENT ON COLUMN celaest.v_active_licenses.current_period_end IS 'End of the current billing period.';
COMMENT ON COLUMN celaest.v_active_licenses.next_billing_date IS 'Next billing date.';
COMMENT ON COLUMN celaest.v_active_licenses.effective_limits IS 'Effective limits, as celaest.effective_limits() gives them (plan limits overlaid with the license''s custom_limits); -1 means unlimited.';
COMMENT ON COLUMN celaest.v_active_licenses.ai_requests_used IS 'AI requests used in the current billing period.';
COMMENT ON COLUMN celaest.v_active_licenses.ai_requests_limit IS 'Effective max_ai_requests_per_month (-1 = unlimited, NULL = not configured).';
COMMENT ON COLUMN celaest.v_active_licenses.ai_requests_remaining IS 'AI requests left in the current billing period (never negative); -1 when unlimited.';
COMMENT ON COLUMN celaest.v_active_licenses.storage_used_bytes IS 'Storage used, in bytes.';

-- ---------------------------------------------------------------------------
-- v_api_pool_status
-- ---------------------------------------------------------------------------
-- The cool-downs after a 429 with Retry-After live in shared memory (they are shared
-- by every backend and lost at restart, like the rate-limit windows): this reads them.
CREATE FUNCTION celaest._api_key_cooldowns() RETURNS jsonb
    AS 'MODULE_PATHNAME', 'celaest_api_key_cooldowns'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION celaest._api_key_cooldowns() IS
    'Internal (key pool): the API keys cooling down now after a 429 with Retry-After, as {"<key id>": <end of the cool-down, Unix milliseconds>}. Reveals no secret.';

-- One row per provider of the enum, keys or not: "no key for groq" is a status.
-- Never selects key_value_encrypted.
CREATE VIEW celaest.v_api_pool_status
WITH (security_invoker = true)
AS
SELECT pr.provider,
       count(k.id)                                                    AS keys_total,
       count(k.id) FILTER (WHERE k.is_active)                         AS keys_active,
       count(k.id) FILTER (WHERE k.is_active AND k.is_healthy)        AS keys_healthy,
       COALESCE(sum(k.usage_count), 0)::bigint                        AS usage_count,
       COALESCE(sum(k.tokens_used), 0)::bigint                        AS tokens_used,
       max(k.last_used_at)                                            AS last_used_at,
       min(k.expires_at) FILTER (WHERE k.is_active)                   AS nearest_expiry,
       count(k.id) FILTER (WHERE k.is_active AND c.until_ms IS NOT NULL) AS keys_cooling_down,
       to_timestamp(min(c.until_ms) FILTER (WHERE k.is_active) / 1000.0) AS cooldown_ends_at
  FROM unnest(enum_range(NULL::celaest.ai_provider)) AS pr (provider)
  LEFT JOIN celaest.ai_api_pool AS k ON k.provider = pr.provider
  LEFT JOIN (SELECT e.key::uuid AS key_id, e.value::bigint AS until_ms
               FROM jsonb_each_text(celaest._api_key_cooldowns()) AS e) AS c ON c.key_id = k.id
 GROUP BY pr.provider;

COMMENT ON VIEW celaest.v_api_pool_status IS
    'API-key pool status per provider (every provider, with or without keys): key counts, usage, tokens, last use, nearest expiry and the keys cooling down after a 429. Never shows a secret.';
COMMENT ON COLUMN celaest.v_api_pool_status.provider IS 'AI provider.';
COMMENT ON COLUMN celaest.v_api_pool_status.keys_total IS 'Keys in the pool.';
COMMENT ON COLUMN celaest.v_api_pool_status.keys_active IS 'Active keys.';
COMMENT ON COLUMN celaest.v_api_pool_status.keys_healthy IS 'Active keys that are healthy.';
COMMENT ON COLUMN celaest.v_api_pool_status.usage_count IS 'Total uses of all the provider''s keys.';
COMMENT ON COLUMN celaest.v_api_pool_status.tokens_used IS 'Total tokens of all the provider''s keys.';
COMMENT ON COLUMN celaest.v_api_pool_status.last_used_at IS 'Last use of any of the provider''s keys.';
COMMENT ON COLUMN celaest.v_api_pool_status.nearest_expiry IS 'Earliest expires_at among the active keys (NULL when none expires).';
COMMENT ON COLUMN celaest.v_api_pool_status.keys_cooling_down IS 'Active keys cooling down now after a 429 with Retry-After (not selectable until it ends).';
COMMENT ON COLUMN celaest.v_api_pool_status.cooldown_ends_at IS 'When the first of those cool-downs ends (NULL when no key is cooling down).';

-- ---------------------------------------------------------------------------
-- v_daily_task_metrics
-- ---------------------------------------------------------------------------
CREATE VIEW celaest.v_daily_task_metrics
WITH (security_invoker = true)
AS
SELECT t.organization_id,
       -- The organization's calendar day, as roi_metrics counts it (settings->>'timezone',
       -- else UTC).
       (t.created_at AT TIME ZONE celaest._roi_timezone(o.settings))::date AS day,
       count(*)                                                        AS tasks_total,
       count(*) FILTER (WHERE t.status = 'completed')                  AS tasks_completed,
       count(*) FILTER (WHERE t.status = 'failed')                     AS tasks_failed,
       count(*) FILTER (WHERE t.status = 'cancelled')                  AS tasks_cancelled,
       count(*) FILTER (WHERE t.status = 'pending')                    AS tasks_pending,
       count(*) FILTER (WHERE t.status = 'processing')                 AS tasks_processing,
       count(*) FILTER (WHERE t.status = 'retrying')                   AS tasks_retrying,
       sum(t.tokens_input)                                             AS tokens_input,
       sum(t.tokens_output)                                            AS tokens_output,
       sum(t.tokens_total)                                             AS tokens_total,
       sum(t.cost_usd)                                                 AS cost_usd,
       round(avg(t.execution_time_ms), 2)                              AS avg_execution_time_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY t.execution_time_ms)::numeric, 2)
                                                                       AS p95_execution_time_ms
  FROM celaest.processed_tasks AS t
  LEFT JOIN celaest.organizations AS o ON o.id = t.organization_id
 GROUP BY t.organization_id, 2;

COMMENT ON VIEW celaest.v_daily_task_metrics IS
    'Task metrics per organization and day (the date of created_at in the organization''s settings->>''timezone'', else UTC, as roi_metrics counts days): tasks by status, tokens, cost, average and 95th-percentile execution time.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.organization_id IS 'Organization.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.day IS 'Day: the date of the tasks'' created_at in the organization''s time zone (settings->>''timezone'', else UTC).';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_total IS 'Tasks created that day.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_completed IS 'Of which completed.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_failed IS 'Of which failed.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_cancelled IS 'Of which cancelled.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_pending IS 'Of which still pending.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_processing IS 'Of which processing.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tasks_retrying IS 'Of which retrying.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tokens_input IS 'Input tokens.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tokens_output IS 'Output tokens.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.tokens_total IS 'Total tokens.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.cost_usd IS 'Cost in USD.';
COMMENT ON COLUMN celaest.v_daily_task_metrics.avg_execution_time_ms IS 'Average execution time, in milliseconds (tasks with a recorded time).';
COMMENT ON COLUMN celaest.v_daily_task_metrics.p95_execution_time_ms IS '95th percentile of execution time, in milliseconds (continuous percentile).';
