-- CELAEST — ROI: aggregate_roi, roi_summary.
--
-- The ROI of an organization over a period is computed in-database from
-- processed_tasks. The rules, written once in celaest._roi_rollup() and used by
-- both aggregate_roi() (which stores roi_metrics rows) and roi_summary() (which
-- answers for an arbitrary date range without touching roi_metrics):
--
--   * Periods are calendar days in UTC, whatever the session's TimeZone: daily =
--     one day; weekly = ISO week, Monday to Sunday; monthly = calendar month.
--     period_end is the last day of the period (inclusive).
--   * A task belongs to the period that contains its created_at. Only finished
--     tasks count: status completed or failed. Pending, processing and retrying
--     tasks are counted once they finish (re-run aggregate_roi: it is idempotent);
--     cancelled tasks never reached a provider and are left out.
--   * Activity and spend count every finished task, failed ones included (the money
--     was spent): cost_ai = sum of cost_usd, total_tokens, avg_tokens_per_task,
--     active_users_count (distinct users with a finished task in the period).
--   * Value counts only completed tasks (a failed task saved nobody any work):
--       manual minutes of a task = its prompt's metadata->>'manual_minutes',
--           else system_config 'roi.manual_minutes_per_task', else 5;
--       hourly rate (USD) = organizations.settings->'roi'->>'hourly_rate',
--           else system_config 'roi.hourly_rate', else 25;
--       A value that is not a non-negative number is ignored (the next source
--       applies), so one bad prompt cannot break every report.
--       manual_equivalent_minutes = round(sum of manual minutes)
--       ai minutes                = round(sum of execution_time_ms / 60000)
--       time_saved_minutes        = manual_equivalent_minutes - ai minutes
--       cost_manual_equivalent    = round(sum of manual minutes / 60 * hourly rate, 2)
--       money_saved               = cost_manual_equivalent - round(cost_ai, 2)
--     The stored differences are taken between the rounded figures, so that
--     saved = manual - AI holds exactly for every row a dashboard shows.
--     avg / p95 / p99 execution_time_ms: over completed tasks (percentile_cont,
--     rounded to whole milliseconds); NULL when there are none.
--   * success_rate = completed / (completed + failed) * 100, NULL when none.
--   * roi_percent  = (exact manual cost - exact AI cost) / exact AI cost * 100,
--     from the unrounded amounts (a month of AI calls can cost less than a cent),
--     NULL when the AI cost is 0.
--   * new_users_count: users_profile rows of the organization created in the
--     period (soft-deleted ones included: they were new then).

-- ---------------------------------------------------------------------------
-- Internal helpers
-- ---------------------------------------------------------------------------

-- The functions below that are LANGUAGE sql carry no SET clause so that the
-- planner can inline them into the caller's query; every name in them is
-- schema-qualified instead, and they run with the caller's rights.

CREATE FUNCTION celaest._roi_number(p_value text)
RETURNS numeric
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE
               WHEN p_value OPERATOR(pg_catalog.~) '^[[:space:]]*([0-9]+(\.[0-9]*)?|\.[0-9]+)[[:space:]]*$'
               THEN pg_catalog.btrim(p_value)::numeric
           END;
$$;
COMMENT ON FUNCTION celaest._roi_number(text) IS
    'Internal (ROI): the text as a non-negative number, or NULL when it is not one (e.g. "ten", "-3", "1e3"). Used to read manual minutes and hourly rates from JSON settings.';
-- Executable by PUBLIC: roi_summary (SECURITY INVOKER, every role) reaches it through _roi_rollup.

CREATE FUNCTION celaest._roi_period_start(p_period_type text, p_day date)
RETURNS date
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE p_period_type
               WHEN 'daily'   THEN p_day
               WHEN 'weekly'  THEN pg_catalog.date_trunc('week',  p_day::timestamp)::date
               WHEN 'monthly' THEN pg_catalog.date_trunc('month', p_day::timestamp)::date
           END;
$$;
COMMENT ON FUNCTION celaest._roi_period_start(text, date) IS
    'Internal (ROI): first day of the daily, weekly (ISO, Monday) or monthly period containing the day; NULL for any other period type.';
-- Executable by PUBLIC: roi_summary (SECURITY INVOKER, every role) reaches it through _roi_rollup.

CREATE FUNCTION celaest._roi_period_end(p_period_type text, p_start date)
RETURNS date
LANGUAGE sql
IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE p_period_type
               WHEN 'daily'   THEN p_start
               WHEN 'weekly'  THEN p_start + 6
               WHEN 'monthly' THEN (p_start::timestamp + interval '1 month')::date - 1
           END;
$$;
COMMENT ON FUNCTION celaest._roi_period_end(text, date) IS
    'Internal (ROI): last day (inclusive) of the daily, weekly or monthly period that starts on p_start; NULL for any other period type.';
-- Executable by PUBLIC: roi_summary (SECURITY INVOKER, every role) reaches it through _roi_rollup.

-- The global ROI defaults. plpgsql (its body is resolved at call time) because
-- system_config and _config_default are created by a later file (70_configuration.sql). SECURITY
-- DEFINER: ROI reports must work for callers who may not read system_config
-- (owner-only); this reveals only the two ROI numbers, which the reports imply.
CREATE FUNCTION celaest._roi_defaults(OUT manual_minutes_per_task numeric, OUT hourly_rate numeric)
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT celaest._roi_number(c.value #>> '{}') INTO manual_minutes_per_task
      FROM celaest.system_config AS c
     WHERE c.key = 'roi.manual_minutes_per_task';
    SELECT celaest._roi_number(c.value #>> '{}') INTO hourly_rate
      FROM celaest.system_config AS c
     WHERE c.key = 'roi.hourly_rate';
    -- Unset or unusable: the built-in defaults (5 and 25), kept in one place by
    -- the configuration module (celaest._config_default, 70_configuration.sql).
    manual_minutes_per_task := coalesce(manual_minutes_per_task,
        celaest._roi_number(celaest._config_default('roi.manual_minutes_per_task') #>> '{}'));
    hourly_rate := coalesce(hourly_rate,
        celaest._roi_number(celaest._config_default('roi.hourly_rate') #>> '{}'));
END;
$$;
COMMENT ON FUNCTION celaest._roi_defaults() IS
    'Internal (ROI): the global defaults: system_config roi.manual_minutes_per_task (else 5 minutes) and roi.hourly_rate (else 25 USD per hour). Values that are not non-negative numbers are ignored.';
-- Executable by PUBLIC: roi_summary (SECURITY INVOKER, every role) reaches it through _roi_rollup.

-- The ROI math, written once. One row per (organization, period, dimension key):
--   p_period_type  'daily' | 'weekly' | 'monthly': every period overlapping
--                  [p_from, p_to], whole periods (a weekly run from a Wednesday
--                  covers the week from its Monday);
--                  'range': one period, exactly [p_from, p_to].
--   p_org_id       one organization, or NULL for every live organization and any
--                  soft-deleted one with tasks in the window.
--   p_dimension    'total': one row per organization and period, dense (periods
--                  without tasks give a row of zeros);
--                  'model' / 'prompt': one row per model / prompt with finished
--                  tasks (dim_id NULL: tasks whose model / prompt is unknown).
-- The callers validate the arguments; this function trusts them.
CREATE FUNCTION celaest._roi_rollup(
    p_period_type text,
    p_from        date,
    p_to          date,
    p_org_id      uuid,
    p_dimension   text DEFAULT 'total'
)
RETURNS TABLE (
    organization_id           uuid,
    period_start              date,
    period_end                date,
    dim_id                    uuid,
    tasks_completed           bigint,
    tasks_failed              bigint,
    success_rate              numeric,
    manual_equivalent_minutes bigint,
    time_saved_minutes        bigint,
    cost_ai                   numeric,
    cost_manual_equivalent    numeric,
    money_saved               numeric,
    cost_ai_exact             numeric,
    roi_percent               numeric,
    total_tokens              bigint,
    avg_tokens_per_task       integer,
    avg_execution_time_ms     integer,
    p95_execution_time_ms     integer,
    p99_execution_time_ms     integer,
    active_users_count        integer,
    new_users_count           integer,
    hourly_rate               numeric
)
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
WITH
defaults AS (
    SELECT d.manual_minutes_per_task, d.hourly_rate FROM celaest._roi_defaults() AS d
),
bounds AS (
    SELECT b.lo, b.last_start,
           b.lo::timestamp AT TIME ZONE 'UTC'             AS lo_ts,
           (b.last_end + 1)::timestamp AT TIME ZONE 'UTC' AS hi_ts
      FROM (SELECT CASE WHEN p_period_type = 'range' THEN p_from
                        ELSE celaest._roi_period_start(p_period_type, p_from) END AS lo,
                   CASE WHEN p_period_type = 'range' THEN p_from
                        ELSE celaest._roi_period_start(p_period_type, p_to) END AS last_start,
                   CASE WHEN p_period_type = 'range' THEN p_to
                        ELSE celaest._roi_period_end(p_period_type,
                                 celaest._roi_period_start(p_period_type, p_to)) END AS last_end) AS b
),
periods AS (
    SELECT s.d::date AS period_start,
           CASE WHEN p_period_type = 'range' THEN p_to
                ELSE celaest._roi_period_end(p_period_type, s.d::date) END AS period_end
      FROM bounds AS b,
           pg_catalog.generate_series(b.lo::timestamp, b.last_start::timestamp,
                                      CASE p_period_type WHEN 'weekly'  THEN interval '1 week'
                                                         WHEN 'monthly' THEN interval '1 month'
                                                         ELSE interval '1 day' END) AS s(d)
),
orgs AS (
    SELECT o.id,
           coalesce(celaest._roi_number(o.settings -> 'roi' ->> 'hourly_rate'), df.hourly_rate) AS hourly_rate
      FROM celaest.organizations AS o, defaults AS df, bounds AS b
     WHERE (p_org_id IS NULL OR o.id = p_org_id)
       AND (o.deleted_at IS NULL
            OR p_org_id IS NOT NULL
            OR EXISTS (SELECT 1 FROM celaest.processed_tasks AS t
                        WHERE t.organization_id = o.id
                          AND t.created_at >= b.lo_ts AND t.created_at < b.hi_ts))
),
tasks AS (
    SELECT t.organization_id,
           CASE WHEN p_period_type = 'range' THEN p_from
                ELSE celaest._roi_period_start(p_period_type, (t.created_at AT TIME ZONE 'UTC')::date) END
               AS period_start,
           CASE p_dimension WHEN 'model' THEN t.model_id WHEN 'prompt' THEN t.prompt_id END AS dim_id,
           t.user_id,
           t.status = 'completed'::celaest.task_status AS completed,
           t.cost_usd,
           t.tokens_total,
           t.execution_time_ms,
           CASE WHEN t.status = 'completed'::celaest.task_status
                THEN coalesce(celaest._roi_number(p.metadata ->> 'manual_minutes'), df.manual_minutes_per_task)
           END AS manual_minutes
      FROM celaest.processed_tasks AS t
      JOIN orgs AS o ON o.id = t.organization_id
      LEFT JOIN celaest.prompts_master AS p ON p.id = t.prompt_id
     CROSS JOIN bounds AS b
     CROSS JOIN defaults AS df
     WHERE t.created_at >= b.lo_ts AND t.created_at < b.hi_ts
       AND t.status IN ('completed'::celaest.task_status, 'failed'::celaest.task_status)
),
agg AS (
    SELECT k.organization_id, k.period_start, k.dim_id,
           count(*) FILTER (WHERE k.completed)                          AS tasks_completed,
           count(*) FILTER (WHERE NOT k.completed)                      AS tasks_failed,
           count(*)                                                     AS tasks_finished,
           coalesce(sum(k.manual_minutes), 0)                           AS manual_minutes,
           coalesce(sum(k.execution_time_ms) FILTER (WHERE k.completed), 0) AS ai_ms,
           sum(k.cost_usd)                                              AS cost_ai,
           sum(k.tokens_total)                                          AS total_tokens,
           avg(k.execution_time_ms) FILTER (WHERE k.completed)          AS avg_ms,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY k.execution_time_ms) FILTER (WHERE k.completed) AS p95_ms,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY k.execution_time_ms) FILTER (WHERE k.completed) AS p99_ms,
           count(DISTINCT k.user_id)                                    AS active_users
      FROM tasks AS k
     GROUP BY k.organization_id, k.period_start, k.dim_id
),
new_users AS (
    SELECT u.organization_id,
           CASE WHEN p_period_type = 'range' THEN p_from
                ELSE celaest._roi_period_start(p_period_type, (u.created_at AT TIME ZONE 'UTC')::date) END
               AS period_start,
           count(*) AS new_users
      FROM celaest.users_profile AS u
      JOIN orgs AS o ON o.id = u.organization_id
     CROSS JOIN bounds AS b
     WHERE u.created_at >= b.lo_ts AND u.created_at < b.hi_ts
     GROUP BY 1, 2
),
figures AS (
    SELECT o.id AS organization_id, pr.period_start, pr.period_end, a.dim_id,
           coalesce(a.tasks_completed, 0)                                   AS tasks_completed,
           coalesce(a.tasks_failed, 0)                                      AS tasks_failed,
           coalesce(a.tasks_finished, 0)                                    AS tasks_finished,
           round(coalesce(a.manual_minutes, 0))::bigint                     AS manual_minutes_rounded,
           round(coalesce(a.ai_ms, 0) / 60000.0)::bigint                    AS ai_minutes_rounded,
           coalesce(a.cost_ai, 0::numeric(10,6))                            AS cost_ai_exact,
           coalesce(a.manual_minutes, 0) * o.hourly_rate / 60               AS cost_manual_exact,
           coalesce(a.total_tokens, 0)                                      AS total_tokens,
           a.avg_ms, a.p95_ms, a.p99_ms,
           coalesce(a.active_users, 0)                                      AS active_users,
           coalesce(nu.new_users, 0)                                        AS new_users,
           o.hourly_rate
      FROM orgs AS o
     CROSS JOIN periods AS pr
      LEFT JOIN agg AS a ON a.organization_id = o.id AND a.period_start = pr.period_start
      LEFT JOIN new_users AS nu ON nu.organization_id = o.id AND nu.period_start = pr.period_start
     WHERE p_dimension = 'total' OR a.organization_id IS NOT NULL
)
SELECT f.organization_id,
       f.period_start,
       f.period_end,
       f.dim_id,
       f.tasks_completed,
       f.tasks_failed,
       round(100.0 * f.tasks_completed / nullif(f.tasks_finished, 0), 2),
       f.manual_minutes_rounded,
       f.manual_minutes_rounded - f.ai_minutes_rounded,
       round(f.cost_ai_exact, 2),
       round(f.cost_manual_exact, 2),
       round(f.cost_manual_exact, 2) - round(f.cost_ai_exact, 2),
       f.cost_ai_exact,
       round((f.cost_manual_exact - f.cost_ai_exact) * 100 / nullif(f.cost_ai_exact, 0), 2),
       f.total_tokens,
       round(f.total_tokens::numeric / nullif(f.tasks_finished, 0))::integer,
       round(f.avg_ms)::integer,
       round(f.p95_ms)::integer,
       round(f.p99_ms)::integer,
       f.active_users::integer,
       f.new_users::integer,
       f.hourly_rate
  FROM figures AS f;
$$;
COMMENT ON FUNCTION celaest._roi_rollup(text, date, date, uuid, text) IS
    'Internal (ROI): the ROI figures of every organization (or one) per daily/weekly/monthly period overlapping [p_from, p_to], or for the exact range (''range''), in total or per model / prompt (p_dimension). Shared by aggregate_roi and roi_summary; arguments are not validated here.';
-- Executable by PUBLIC: roi_summary (SECURITY INVOKER, every role) calls it.

-- ---------------------------------------------------------------------------
-- aggregate_roi
-- ---------------------------------------------------------------------------
-- SECURITY INVOKER: it reads tasks and writes roi_metrics with the caller's rights
-- (a maintenance job or an administrator; row-level security applies).
CREATE FUNCTION celaest.aggregate_roi(
    p_period_type text,
    p_from        date,
    p_to          date DEFAULT NULL,
    p_org_id      uuid DEFAULT NULL
)
RETURNS integer
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_to    date := coalesce(p_to, p_from);
    v_count integer;
BEGIN
    IF p_period_type IS NULL OR p_period_type NOT IN ('daily', 'weekly', 'monthly') THEN
        RAISE EXCEPTION 'celaest.aggregate_roi: invalid period type %', coalesce(quote_literal(p_period_type), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The period type is ''daily'', ''weekly'' or ''monthly''.';
    END IF;
    IF p_from IS NULL THEN
        RAISE EXCEPTION 'celaest.aggregate_roi: p_from must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_to < p_from THEN
        RAISE EXCEPTION 'celaest.aggregate_roi: p_to % is before p_from %', v_to, p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_org_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM celaest.organizations AS o WHERE o.id = p_org_id) THEN
        RAISE EXCEPTION 'organization % does not exist', p_org_id
            USING ERRCODE = 'no_data_found',
                  DETAIL = 'There is no row in celaest.organizations with this id.';
    END IF;

    -- Rows whose figures did not change are not rewritten (updated_at keeps the
    -- time the numbers last changed); they are still counted: the result is the
    -- number of (organization, period) rows that are now current.
    WITH computed AS (
        SELECT r.*
          FROM celaest._roi_rollup(p_period_type, p_from, v_to, p_org_id, 'total') AS r
    ),
    upserted AS (
        INSERT INTO celaest.roi_metrics AS m
            (organization_id, period_type, period_start, period_end,
             tasks_completed, tasks_failed, success_rate,
             time_saved_minutes, manual_equivalent_minutes,
             cost_ai, cost_manual_equivalent, money_saved,
             total_tokens, avg_tokens_per_task,
             avg_execution_time_ms, p95_execution_time_ms, p99_execution_time_ms,
             active_users_count, new_users_count, metadata)
        SELECT c.organization_id, p_period_type, c.period_start, c.period_end,
               c.tasks_completed, c.tasks_failed, c.success_rate,
               c.time_saved_minutes, c.manual_equivalent_minutes,
               c.cost_ai, c.cost_manual_equivalent, c.money_saved,
               c.total_tokens, c.avg_tokens_per_task,
               c.avg_execution_time_ms, c.p95_execution_time_ms, c.p99_execution_time_ms,
               c.active_users_count, c.new_users_count,
               jsonb_build_object('roi_percent', c.roi_percent,
                                  'cost_ai_exact', c.cost_ai_exact,
                                  'hourly_rate', c.hourly_rate)
          FROM computed AS c
        ON CONFLICT (organization_id, period_type, period_start) DO UPDATE
           SET period_end                = EXCLUDED.period_end,
               tasks_completed           = EXCLUDED.tasks_completed,
               tasks_failed              = EXCLUDED.tasks_failed,
               success_rate              = EXCLUDED.success_rate,
               time_saved_minutes        = EXCLUDED.time_saved_minutes,
               manual_equivalent_minutes = EXCLUDED.manual_equivalent_minutes,
               cost_ai                   = EXCLUDED.cost_ai,
               cost_manual_equivalent    = EXCLUDED.cost_manual_equivalent,
               money_saved               = EXCLUDED.money_saved,
               total_tokens              = EXCLUDED.total_tokens,
               avg_tokens_per_task       = EXCLUDED.avg_tokens_per_task,
               avg_execution_time_ms     = EXCLUDED.avg_execution_time_ms,
               p95_execution_time_ms     = EXCLUDED.p95_execution_time_ms,
               p99_execution_time_ms     = EXCLUDED.p99_execution_time_ms,
               active_users_count        = EXCLUDED.active_users_count,
               new_users_count           = EXCLUDED.new_users_count,
               -- Keys other than ours in metadata are kept.
               metadata                  = m.metadata || EXCLUDED.metadata
         WHERE (m.period_end, m.tasks_completed, m.tasks_failed, m.success_rate,
                m.time_saved_minutes, m.manual_equivalent_minutes,
                m.cost_ai, m.cost_manual_equivalent, m.money_saved,
                m.total_tokens, m.avg_tokens_per_task,
                m.avg_execution_time_ms, m.p95_execution_time_ms, m.p99_execution_time_ms,
                m.active_users_count, m.new_users_count, m.metadata)
               IS DISTINCT FROM
               (EXCLUDED.period_end, EXCLUDED.tasks_completed, EXCLUDED.tasks_failed, EXCLUDED.success_rate,
                EXCLUDED.time_saved_minutes, EXCLUDED.manual_equivalent_minutes,
                EXCLUDED.cost_ai, EXCLUDED.cost_manual_equivalent, EXCLUDED.money_saved,
                EXCLUDED.total_tokens, EXCLUDED.avg_tokens_per_task,
                EXCLUDED.avg_execution_time_ms, EXCLUDED.p95_execution_time_ms, EXCLUDED.p99_execution_time_ms,
                EXCLUDED.active_users_count, EXCLUDED.new_users_count, m.metadata || EXCLUDED.metadata)
        RETURNING 1
    )
    SELECT count(*) INTO v_count FROM computed;

    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION celaest.aggregate_roi(text, date, date, uuid) IS
    'Computes roi_metrics rows from processed_tasks for every daily, weekly (ISO, Monday-Sunday) or monthly period (UTC calendar days) overlapping [p_from, coalesce(p_to, p_from)], for one organization or all (live ones, plus soft-deleted ones with tasks in the window), and upserts them; idempotent. Every period gets a row, zeros included. Only completed and failed tasks count; manual minutes (prompt metadata manual_minutes, else system_config roi.manual_minutes_per_task, else 5) and time saved count completed tasks only; cost_ai counts both. metadata gets roi_percent, cost_ai_exact and hourly_rate. Returns the number of rows computed (unchanged rows are not rewritten). Raises 22023 for a bad period type or p_to < p_from, P0002 for an unknown organization.';

-- ---------------------------------------------------------------------------
-- roi_summary
-- ---------------------------------------------------------------------------
-- SECURITY INVOKER: a tenant sees its own figures through row-level security.
CREATE FUNCTION celaest.roi_summary(p_org_id uuid, p_from date, p_to date)
RETURNS jsonb
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org      uuid := coalesce(p_org_id, celaest.current_org_id());
    v_to       date := coalesce(p_to, p_from);
    v_result   jsonb;
    v_by_model jsonb;
    v_by_prompt jsonb;
BEGIN
    IF v_org IS NULL THEN
        RAISE EXCEPTION 'celaest.roi_summary: no organization given and the acting user belongs to none'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_from IS NULL THEN
        RAISE EXCEPTION 'celaest.roi_summary: p_from must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_to < p_from THEN
        RAISE EXCEPTION 'celaest.roi_summary: p_to % is before p_from %', v_to, p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM celaest.organizations AS o WHERE o.id = v_org) THEN
        RAISE EXCEPTION 'organization % does not exist', v_org
            USING ERRCODE = 'no_data_found',
                  DETAIL = 'There is no row in celaest.organizations with this id.';
    END IF;

    SELECT jsonb_build_object(
               'organization_id',           r.organization_id,
               'from',                      r.period_start,
               'to',                        r.period_end,
               'tasks_completed',           r.tasks_completed,
               'tasks_failed',              r.tasks_failed,
               'success_rate',              r.success_rate,
               'manual_equivalent_minutes', r.manual_equivalent_minutes,
               'time_saved_minutes',        r.time_saved_minutes,
               'time_saved_hours',          round(r.time_saved_minutes / 60.0, 2),
               'cost_ai',                   r.cost_ai,
               'cost_ai_exact',             r.cost_ai_exact,
               'cost_manual_equivalent',    r.cost_manual_equivalent,
               'money_saved',               r.money_saved,
               'roi_percent',               r.roi_percent,
               'hourly_rate',               r.hourly_rate,
               'currency',                  'USD',
               'total_tokens',              r.total_tokens,
               'avg_tokens_per_task',       r.avg_tokens_per_task,
               'avg_execution_time_ms',     r.avg_execution_time_ms,
               'p95_execution_time_ms',     r.p95_execution_time_ms,
               'p99_execution_time_ms',     r.p99_execution_time_ms,
               'active_users_count',        r.active_users_count,
               'new_users_count',           r.new_users_count)
      INTO v_result
      FROM celaest._roi_rollup('range', p_from, v_to, v_org, 'total') AS r;

    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'model_id',               r.dim_id,
               'provider',               m.provider,
               'model',                  m.model_id,
               'display_name',           m.display_name,
               'tasks_completed',        r.tasks_completed,
               'tasks_failed',           r.tasks_failed,
               'success_rate',           r.success_rate,
               'manual_equivalent_minutes', r.manual_equivalent_minutes,
               'time_saved_minutes',     r.time_saved_minutes,
               'cost_ai',                r.cost_ai,
               'cost_ai_exact',          r.cost_ai_exact,
               'cost_manual_equivalent', r.cost_manual_equivalent,
               'money_saved',            r.money_saved,
               'roi_percent',            r.roi_percent,
               'total_tokens',           r.total_tokens,
               'avg_execution_time_ms',  r.avg_execution_time_ms,
               'p95_execution_time_ms',  r.p95_execution_time_ms)
             ORDER BY r.tasks_completed DESC, r.cost_ai_exact DESC, m.model_id NULLS LAST, r.dim_id), '[]')
      INTO v_by_model
      FROM celaest._roi_rollup('range', p_from, v_to, v_org, 'model') AS r
      LEFT JOIN celaest.ai_models AS m ON m.id = r.dim_id;

    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'prompt_id',              r.dim_id,
               'slug',                   p.slug,
               'version',                p.version,
               'name',                   p.name,
               'tasks_completed',        r.tasks_completed,
               'tasks_failed',           r.tasks_failed,
               'success_rate',           r.success_rate,
               'manual_equivalent_minutes', r.manual_equivalent_minutes,
               'time_saved_minutes',     r.time_saved_minutes,
               'cost_ai',                r.cost_ai,
               'cost_ai_exact',          r.cost_ai_exact,
               'cost_manual_equivalent', r.cost_manual_equivalent,
               'money_saved',            r.money_saved,
               'roi_percent',            r.roi_percent,
               'total_tokens',           r.total_tokens,
               'avg_execution_time_ms',  r.avg_execution_time_ms,
               'p95_execution_time_ms',  r.p95_execution_time_ms)
             ORDER BY r.tasks_completed DESC, r.cost_ai_exact DESC, p.slug NULLS LAST, p.version, r.dim_id), '[]')
      INTO v_by_prompt
      FROM celaest._roi_rollup('range', p_from, v_to, v_org, 'prompt') AS r
      LEFT JOIN celaest.prompts_master AS p ON p.id = r.dim_id;

    RETURN v_result || jsonb_build_object('by_model', v_by_model, 'by_prompt', v_by_prompt);
END;
$$;
COMMENT ON FUNCTION celaest.roi_summary(uuid, date, date) IS
    'ROI of one organization (NULL: the acting user''s) over the UTC days [p_from, p_to] (p_to NULL: one day), computed straight from processed_tasks with the same rules as aggregate_roi: {organization_id, from, to, tasks_completed, tasks_failed, success_rate, manual_equivalent_minutes, time_saved_minutes, time_saved_hours, cost_ai, cost_ai_exact, cost_manual_equivalent, money_saved, roi_percent (NULL when the AI cost is 0), hourly_rate, currency, total_tokens, avg_tokens_per_task, avg/p95/p99_execution_time_ms, active_users_count, new_users_count, by_model: [...], by_prompt: [...]}. Raises 22023 for NULL p_from or p_to < p_from, P0002 for an unknown organization.';
