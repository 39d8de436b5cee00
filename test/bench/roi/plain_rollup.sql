-- The same job as aggregate_roi('daily', '2025-01-01', '2025-03-31') in plain SQL: every
-- figure per organization and local day, percentile_cont and count(DISTINCT) included.
-- Not stored (a SELECT), so it does less than aggregate_roi.
SELECT t.organization_id,
       (t.created_at AT TIME ZONE coalesce(o.settings ->> 'timezone', 'UTC'))::date AS day,
       count(*) FILTER (WHERE t.status = 'completed') AS tasks_completed,
       count(*) FILTER (WHERE t.status = 'failed') AS tasks_failed,
       sum(t.cost_usd) AS cost_ai,
       sum(t.tokens_total) AS total_tokens,
       round(avg(t.execution_time_ms) FILTER (WHERE t.status = 'completed')) AS avg_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY t.execution_time_ms)
             FILTER (WHERE t.status = 'completed')::numeric) AS p95_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY t.execution_time_ms)
             FILTER (WHERE t.status = 'completed')::numeric) AS p99_ms,
       sum(coalesce((p.metadata ->> 'manual_minutes')::numeric, 5)) FILTER (WHERE t.status = 'completed') AS manual,
       sum(t.ai_time_ms) FILTER (WHERE t.status = 'completed') AS ai_ms,
       count(DISTINCT t.user_id) AS active_users
  FROM celaest.processed_tasks AS t
  JOIN celaest.organizations AS o ON o.id = t.organization_id
  LEFT JOIN celaest.prompts_master AS p ON p.id = t.prompt_id
 GROUP BY 1, 2;
