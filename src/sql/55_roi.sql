-- CELAEST — ROI: aggregate_roi, roi_summary.
--
-- The ROI of an organization over a period is computed in-database from
-- processed_tasks, by the rules of API.md ("ROI"), written once in
-- celaest._roi_rollup() and used by aggregate_roi() (which stores roi_metrics rows),
-- roi_summary() (an arbitrary date range, without touching roi_metrics) and
-- _roi_refresh_recent() (the upkeep worker's daily refresh):
--
--   * Periods are calendar days, ISO weeks (Monday to Sunday) or calendar months in
--     the organization's settings->>'timezone' (else UTC); period_end is the last
--     day of the period (inclusive). A task belongs to the period of its
--     created_at, read in that time zone (a task at exactly local midnight opens
--     the new day). An unknown time zone is an error (22023) naming it.
--   * tasks_completed / tasks_failed: tasks in that status.
--     success_rate = completed x 100 / (completed + failed), 2 decimals; NULL when both are 0.
--   * cost_ai and total_tokens: every task of the period, whatever its status
--     (failed calls cost too). active_users_count: distinct user_id with a task in
--     the period. avg_tokens_per_task = total_tokens / (completed + failed), rounded;
--     NULL when both are 0.
--   * avg / p95 / p99 execution_time_ms: over completed tasks with an
--     execution_time_ms; p95/p99 are exactly percentile_cont's value, rounded half
--     away from zero to the millisecond; NULL when there are none.
--   * The value side counts completed tasks only (a failed task saved nobody work):
--       manual minutes of a task = its prompt's metadata->>'manual_minutes',
--           else system_config 'roi.manual_minutes_per_task' (else 5);
--       hourly rate = organizations.settings->'roi'->>'hourly_rate',
--           else system_config 'roi.hourly_rate' (else 25);
--       a value that is not a non-negative number is ignored (the next source applies).
--     Each stored figure follows from the stored figures before it, so that a
--     customer can check every row with the formulas of API.md:
--       manual_equivalent_minutes = round(sum of the manual minutes)
--       time_saved_minutes        = round(manual_equivalent_minutes - sum of ai_time_ms / 60000)
--       cost_ai                   = round(sum of cost_usd, 2)
--       cost_manual_equivalent    = round(manual_equivalent_minutes / 60 x hourly rate, 2)
--       money_saved               = cost_manual_equivalent - cost_ai
--     (round() is numeric rounding, half away from zero.)
--   * new_users_count: users_profile rows of the organization created in the period
--     (soft-deleted ones included: they were new then).
--   * metadata: timezone, hourly_rate, cost_ai_exact (unrounded) and roi_percent =
--     (cost_manual_equivalent - cost_ai_exact) x 100 / cost_ai_exact (NULL when 0).
--
-- Speed (test/bench/roi_bench.sh): one pass over processed_tasks, meant to run in
-- parallel workers (the aggregates below have partial forms; as of this writing the
-- planner still chooses a serial plan: see the benchmark notes). No function is called
-- per task row: a task's period comes
-- from two small hashed tables (organization -> time zone, and time zone + day ->
-- the instants where local days start), the percentiles and the distinct users from
-- native aggregates with a parallel (partial) form, the manual minutes from a hashed
-- table of prompts.

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

-- The time zone of an organization's ROI periods: settings->>'timezone', else UTC.
CREATE FUNCTION celaest._roi_timezone(p_settings jsonb)
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(nullif(pg_catalog.btrim(p_settings OPERATOR(pg_catalog.->>) 'timezone'), ''), 'UTC');
$$;
COMMENT ON FUNCTION celaest._roi_timezone(jsonb) IS
    'Internal (ROI): the time zone of an organization''s ROI periods, from its settings: settings->>''timezone'', else UTC.';

-- Refuses (22023) an organization time zone PostgreSQL does not know, naming it, before
-- any figure is computed. Checks each distinct zone once.
CREATE FUNCTION celaest._roi_check_timezones(p_org_id uuid)
RETURNS void
LANGUAGE plpgsql
STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_zone text;
    v_org  uuid;
BEGIN
    FOR v_zone, v_org IN
        SELECT z.zone, min(z.id::text)::uuid
          FROM (SELECT o.id, celaest._roi_timezone(o.settings) AS zone
                  FROM celaest.organizations AS o
                 WHERE p_org_id IS NULL OR o.id = p_org_id) AS z
         GROUP BY z.zone
    LOOP
        BEGIN
            PERFORM now() AT TIME ZONE v_zone;
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE EXCEPTION 'celaest: unknown time zone % in the settings of organization %', quote_literal(v_zone), v_org
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'settings->>''timezone'' must be a name from pg_timezone_names, e.g. ''Europe/Madrid''.';
        END;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION celaest._roi_check_timezones(uuid) IS
    'Internal (ROI): raises 22023 naming the zone (and an organization using it) when an organization''s settings->>''timezone'' (one organization, or all when NULL) is not a time zone PostgreSQL knows.';

-- Native aggregates with a partial form, so that the roll-up runs in parallel workers
-- (percentile_cont and count(DISTINCT ...) have none). src/pg/functions/roi.cpp.
CREATE FUNCTION celaest._roi_collect_int4(internal, integer) RETURNS internal
    AS 'MODULE_PATHNAME', 'celaest_roi_collect_int4' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION celaest._roi_combine_int4(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'celaest_roi_combine_int4' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION celaest._roi_serialize_int4(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'celaest_roi_serialize_int4' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION celaest._roi_deserialize_int4(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'celaest_roi_deserialize_int4' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION celaest._roi_exec_percentiles_final(internal) RETURNS integer[]
    AS 'MODULE_PATHNAME', 'celaest_roi_exec_percentiles_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE celaest._roi_exec_percentiles(integer) (
    SFUNC = celaest._roi_collect_int4,
    STYPE = internal,
    -- A typical period's state (about a hundred completed tasks), for the planner's
    -- hash-table estimate; without it, it assumes 8 kB per group and sorts instead.
    SSPACE = 600,
    FINALFUNC = celaest._roi_exec_percentiles_final,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = celaest._roi_combine_int4,
    SERIALFUNC = celaest._roi_serialize_int4,
    DESERIALFUNC = celaest._roi_deserialize_int4,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE celaest._roi_exec_percentiles(integer) IS
    'Internal (ROI): {p95, p99} of the non-NULL values: percentile_cont(0.95) and percentile_cont(0.99) exactly, rounded half away from zero; NULL when there are none. Parallel (partial aggregation).';
COMMENT ON FUNCTION celaest._roi_collect_int4(internal, integer) IS 'Internal (ROI): transition function of _roi_exec_percentiles.';
COMMENT ON FUNCTION celaest._roi_combine_int4(internal, internal) IS 'Internal (ROI): combine function of _roi_exec_percentiles.';
COMMENT ON FUNCTION celaest._roi_serialize_int4(internal) IS 'Internal (ROI): serial function of _roi_exec_percentiles.';
COMMENT ON FUNCTION celaest._roi_deserialize_int4(bytea, internal) IS 'Internal (ROI): deserial function of _roi_exec_percentiles.';
COMMENT ON FUNCTION celaest._roi_exec_percentiles_final(internal) IS 'Internal (ROI): final function of _roi_exec_percentiles.';

CREATE FUNCTION celaest._roi_collect_uuid(internal, uuid) RETURNS internal
    AS 'MODULE_PATHNAME', 'celaest_roi_collect_uuid' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION celaest._roi_combine_uuid(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'celaest_roi_combine_uuid' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION celaest._roi_serialize_uuid(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'celaest_roi_serialize_uuid' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION celaest._roi_deserialize_uuid(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'celaest_roi_deserialize_uuid' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION celaest._roi_distinct_count_final(internal) RETURNS integer
    AS 'MODULE_PATHNAME', 'celaest_roi_distinct_count_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE celaest._roi_distinct_count(uuid) (
    SFUNC = celaest._roi_collect_uuid,
    STYPE = internal,
    SSPACE = 600,   -- a period's distinct users, kept at most twice over
    FINALFUNC = celaest._roi_distinct_count_final,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = celaest._roi_combine_uuid,
    SERIALFUNC = celaest._roi_serialize_uuid,
    DESERIALFUNC = celaest._roi_deserialize_uuid,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE celaest._roi_distinct_count(uuid) IS
    'Internal (ROI): the number of distinct non-NULL values (count(DISTINCT x), 0 when none), with a parallel (partial) form.';
COMMENT ON FUNCTION celaest._roi_collect_uuid(internal, uuid) IS 'Internal (ROI): transition function of _roi_distinct_count.';
COMMENT ON FUNCTION celaest._roi_combine_uuid(internal, internal) IS 'Internal (ROI): combine function of _roi_distinct_count.';
COMMENT ON FUNCTION celaest._roi_serialize_uuid(internal) IS 'Internal (ROI): serial function of _roi_distinct_count.';
COMMENT ON FUNCTION celaest._roi_deserialize_uuid(bytea, internal) IS 'Internal (ROI): deserial function of _roi_distinct_count.';
COMMENT ON FUNCTION celaest._roi_distinct_count_final(internal) IS 'Internal (ROI): final function of _roi_distinct_count.';

-- The period (its first day) that holds a local date, or NULL when the date is outside
-- the periods a run covers: those overlapping [p_from, p_to], or for 'range' exactly
-- [p_from, p_to] (period start p_from). Called per day and organization, never per task.
CREATE FUNCTION celaest._roi_period_of(p_period_type text, p_from date, p_to date, p_day date)
RETURNS date
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
               WHEN p_period_type = 'range' THEN
                   CASE WHEN p_day BETWEEN p_from AND p_to THEN p_from END
               WHEN p_day >= celaest._roi_period_start(p_period_type, p_from)
                AND p_day <= celaest._roi_period_end(p_period_type, celaest._roi_period_start(p_period_type, p_to))
               THEN celaest._roi_period_start(p_period_type, p_day)
           END;
$$;
COMMENT ON FUNCTION celaest._roi_period_of(text, date, date, date) IS
    'Internal (ROI): first day of the daily/weekly/monthly period holding p_day among those overlapping [p_from, p_to] (''range'': p_from when p_day is in [p_from, p_to]); NULL outside them.';

-- The ROI math, written once. One row per (organization, period, dimension key):
--   p_period_type  'daily' | 'weekly' | 'monthly': every period overlapping
--                  [p_from, p_to], whole periods (a weekly run from a Wednesday
--                  covers the week from its Monday);
--                  'range': one period, exactly [p_from, p_to].
--   p_org_id       one organization, or NULL for every live organization and any
--                  soft-deleted one with tasks in the window.
--   p_dimension    'total': one row per organization and period, dense (periods
--                  without tasks give a row of zeros);
--                  'model' / 'prompt': one row per model / prompt with tasks
--                  (dim_id NULL: tasks whose model / prompt is unknown).
-- The callers validate the arguments and the time zones; this function trusts them.
-- LANGUAGE sql, no SET clause, STABLE: the planner inlines it into the caller's query,
-- where the arguments are constants and every CASE on them folds away. Dates are read
-- in the session's TimeZone on both sides of the task -> day join, so the result does
-- not depend on it.
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
    hourly_rate               numeric,
    timezone                  text
)
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
WITH
bounds AS (
    -- lo .. last_end: the local dates covered; last_start: the start of the last period.
    SELECT b.lo, b.last_start, b.last_end
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
defaults AS (
    SELECT d.manual_minutes_per_task, d.hourly_rate FROM celaest._roi_defaults() AS d
),
orgs AS (
    SELECT o.id,
           celaest._roi_timezone(o.settings) AS tz,
           coalesce(celaest._roi_number(o.settings -> 'roi' ->> 'hourly_rate'), df.hourly_rate) AS hourly_rate
      FROM celaest.organizations AS o, defaults AS df, bounds AS b
     WHERE (p_org_id IS NULL OR o.id = p_org_id)
       AND (o.deleted_at IS NULL
            OR p_org_id IS NOT NULL
            OR EXISTS (SELECT 1 FROM celaest.processed_tasks AS t
                        WHERE t.organization_id = o.id
                          AND t.created_at >= (b.lo - 2)::timestamptz
                          AND t.created_at < (b.last_end + 3)::timestamptz))
),
-- The one pass over processed_tasks. Written without references to the CTEs above
-- (a CTE read twice is materialized, and a scan of one cannot run in a parallel
-- worker): everything the workers need is an inline subquery.
agg AS (
    SELECT t.organization_id,
           -- The task's period: its day in the session's TimeZone (t.created_at::date)
           -- picks the row of `days`, which says where the organization's local days
           -- start within that day (at most two starts: a day is 23 to 25 hours).
           CASE WHEN d.start_1 IS NULL OR t.created_at < d.start_1 THEN d.period_0
                WHEN d.start_2 IS NULL OR t.created_at < d.start_2 THEN d.period_1
                ELSE d.period_2 END AS period_start,
           CASE p_dimension WHEN 'model' THEN t.model_id WHEN 'prompt' THEN t.prompt_id END AS dim_id,
           count(*) FILTER (WHERE t.status = 'completed'::celaest.task_status) AS tasks_completed,
           count(*) FILTER (WHERE t.status = 'failed'::celaest.task_status) AS tasks_failed,
           sum(t.cost_usd) AS cost_ai_exact,
           sum(t.tokens_total) AS total_tokens,
           avg(t.execution_time_ms) FILTER (WHERE t.status = 'completed'::celaest.task_status) AS avg_ms,
           celaest._roi_exec_percentiles(t.execution_time_ms)
               FILTER (WHERE t.status = 'completed'::celaest.task_status) AS percentiles,
           sum(pm.manual_minutes) FILTER (WHERE t.status = 'completed'::celaest.task_status) AS prompt_minutes,
           count(*) FILTER (WHERE t.status = 'completed'::celaest.task_status AND pm.manual_minutes IS NULL)
               AS default_minute_tasks,
           sum(t.ai_time_ms) FILTER (WHERE t.status = 'completed'::celaest.task_status) AS ai_ms,
           celaest._roi_distinct_count(t.user_id) AS active_users
      FROM celaest.processed_tasks AS t
      -- (organization, day) -> where the organization's local days start within that
      -- day: 1,000 organizations x the days of the window, hashed; built per time zone
      -- (AT TIME ZONE runs once per zone and day) and spread over the organizations.
      -- OFFSET 0 keeps it one relation: the tasks are joined to it in one hash join,
      -- never scanned once per organization.
      JOIN (SELECT o.id AS organization_id, zd.day, zd.start_1, zd.start_2,
                   zd.period_0, zd.period_1, zd.period_2
              FROM (SELECT o.id, celaest._roi_timezone(o.settings) AS tz
                      FROM celaest.organizations AS o
                     WHERE p_org_id IS NULL OR o.id = p_org_id) AS o
              JOIN (SELECT z.tz, k.day,
                           celaest._roi_period_of(p_period_type, p_from, p_to, l.day_0)     AS period_0,
                           celaest._roi_period_of(p_period_type, p_from, p_to, l.day_0 + 1) AS period_1,
                           celaest._roi_period_of(p_period_type, p_from, p_to, l.day_0 + 2) AS period_2,
                           CASE WHEN l.start_1 < k.day_end THEN l.start_1 END AS start_1,
                           CASE WHEN l.start_2 < k.day_end THEN l.start_2 END AS start_2
                      FROM (SELECT DISTINCT celaest._roi_timezone(o.settings) AS tz
                              FROM celaest.organizations AS o
                             WHERE p_org_id IS NULL OR o.id = p_org_id) AS z
                     CROSS JOIN (SELECT g.day::date AS day, g.day::date::timestamptz AS day_start,
                                        (g.day::date + 1)::timestamptz AS day_end
                                   FROM pg_catalog.generate_series(
                                            (CASE WHEN p_period_type = 'range' THEN p_from
                                                  ELSE celaest._roi_period_start(p_period_type, p_from) END - 2)::timestamp,
                                            (CASE WHEN p_period_type = 'range' THEN p_to
                                                  ELSE celaest._roi_period_end(p_period_type,
                                                           celaest._roi_period_start(p_period_type, p_to)) END + 2)::timestamp,
                                            interval '1 day') AS g(day)) AS k
                     CROSS JOIN LATERAL (
                           SELECT x.day_0,
                                  ((x.day_0 + 1)::timestamp AT TIME ZONE z.tz) AS start_1,
                                  ((x.day_0 + 2)::timestamp AT TIME ZONE z.tz) AS start_2
                             FROM (SELECT (k.day_start AT TIME ZONE z.tz)::date AS day_0) AS x) AS l) AS zd
                ON zd.tz = o.tz
            OFFSET 0) AS d
        ON d.organization_id = t.organization_id AND d.day = t.created_at::date
      LEFT JOIN (SELECT p.id, celaest._roi_number(p.metadata ->> 'manual_minutes') AS manual_minutes
                   FROM celaest.prompts_master AS p
                 OFFSET 0) AS pm
        ON pm.id = t.prompt_id
     -- The window, with two days' margin for any offset from UTC. Immutable pieces only
     -- (timestamp AT TIME ZONE 'UTC'), so that it folds into constants the planner can
     -- estimate, and the scan compares with a constant.
     WHERE t.created_at >= ((CASE WHEN p_period_type = 'range' THEN p_from
                                  ELSE celaest._roi_period_start(p_period_type, p_from) END - 2)::timestamp
                            AT TIME ZONE 'UTC')
       AND t.created_at < ((CASE WHEN p_period_type = 'range' THEN p_to
                                 ELSE celaest._roi_period_end(p_period_type,
                                          celaest._roi_period_start(p_period_type, p_to)) END + 3)::timestamp
                           AT TIME ZONE 'UTC')
     -- Tasks in the two-day margins (read to cover every offset from UTC) fall in no
     -- period (NULL) and find no row of `periods` below.
     GROUP BY 1, 2, 3
),
new_users AS (
    SELECT u.organization_id,
           celaest._roi_period_of(p_period_type, p_from, p_to, (u.created_at AT TIME ZONE o.tz)::date) AS period_start,
           count(*) AS new_users
      FROM celaest.users_profile AS u
      JOIN orgs AS o ON o.id = u.organization_id
     GROUP BY 1, 2
),
figures AS (
    SELECT o.id AS organization_id, pr.period_start, pr.period_end, a.dim_id,
           coalesce(a.tasks_completed, 0) AS tasks_completed,
           coalesce(a.tasks_failed, 0) AS tasks_failed,
           round(coalesce(a.prompt_minutes, 0)
                 + coalesce(a.default_minute_tasks, 0) * df.manual_minutes_per_task)::bigint AS manual_minutes,
           coalesce(a.ai_ms, 0) AS ai_ms,
           coalesce(a.cost_ai_exact, 0::numeric(10,6)) AS cost_ai_exact,
           coalesce(a.total_tokens, 0) AS total_tokens,
           a.avg_ms, a.percentiles,
           coalesce(a.active_users, 0) AS active_users,
           coalesce(nu.new_users, 0) AS new_users,
           o.hourly_rate, o.tz
      FROM orgs AS o
     CROSS JOIN periods AS pr
     CROSS JOIN defaults AS df
      LEFT JOIN agg AS a ON a.organization_id = o.id AND a.period_start = pr.period_start
      LEFT JOIN new_users AS nu ON nu.organization_id = o.id AND nu.period_start = pr.period_start
     WHERE p_dimension = 'total' OR a.organization_id IS NOT NULL
),
money AS (
    SELECT f.*,
           round(f.cost_ai_exact, 2) AS cost_ai,
           round(f.manual_minutes * f.hourly_rate / 60, 2) AS cost_manual
      FROM figures AS f
)
SELECT m.organization_id,
       m.period_start,
       m.period_end,
       m.dim_id,
       m.tasks_completed,
       m.tasks_failed,
       round(100.0 * m.tasks_completed / nullif(m.tasks_completed + m.tasks_failed, 0), 2),
       m.manual_minutes,
       round(m.manual_minutes - m.ai_ms / 60000.0)::bigint,
       m.cost_ai,
       m.cost_manual,
       m.cost_manual - m.cost_ai,
       m.cost_ai_exact,
       round((m.cost_manual - m.cost_ai_exact) * 100 / nullif(m.cost_ai_exact, 0), 2),
       m.total_tokens,
       round(m.total_tokens::numeric / nullif(m.tasks_completed + m.tasks_failed, 0))::integer,
       round(m.avg_ms)::integer,
       m.percentiles[1],
       m.percentiles[2],
       m.active_users,
       m.new_users::integer,
       m.hourly_rate,
       m.tz
  FROM money AS m;
$$;
COMMENT ON FUNCTION celaest._roi_rollup(text, date, date, uuid, text) IS
    'Internal (ROI): the ROI figures of every organization (or one) per daily/weekly/monthly period overlapping [p_from, p_to] in each organization''s time zone, or for the exact range (''range''), in total or per model / prompt (p_dimension). Shared by aggregate_roi, roi_summary and _roi_refresh_recent; arguments and time zones are not validated here.';

-- ---------------------------------------------------------------------------
-- aggregate_roi and the daily refresh
-- ---------------------------------------------------------------------------
-- Computes the periods into a temporary table first and upserts from there: a
-- CREATE TABLE AS query may run in parallel workers, an INSERT ... SELECT (or a
-- data-modifying CTE) may not. p_recent_only keeps, per organization, only the
-- daily rows of its local yesterday and today (the upkeep refresh).
-- SECURITY INVOKER: it reads tasks and writes roi_metrics with the caller's rights.
-- work_mem: the roll-up hashes one group per organization and period (90,000 for
-- 1,000 organizations over 90 days), each holding its execution times and users;
-- with the default 4 MB the hash table would spill to disk.
CREATE FUNCTION celaest._roi_store(
    p_period_type text,
    p_from        date,
    p_to          date,
    p_org_id      uuid,
    p_recent_only boolean DEFAULT false
)
RETURNS integer
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
SET work_mem = '256MB'
AS $$
DECLARE
    v_count integer;
BEGIN
    IF to_regclass('pg_temp.celaest_roi_computed') IS NOT NULL THEN
        DROP TABLE pg_temp.celaest_roi_computed;    -- left by a failed run in this session
    END IF;
    -- Literal arguments: the planner inlines _roi_rollup and folds every CASE on them.
    EXECUTE format('CREATE TEMPORARY TABLE celaest_roi_computed AS
                    SELECT * FROM celaest._roi_rollup(%L, %L::date, %L::date, %L::uuid, ''total'')',
                   p_period_type, p_from, p_to, p_org_id);
    IF p_recent_only THEN
        DELETE FROM pg_temp.celaest_roi_computed AS c
         WHERE c.period_start NOT BETWEEN (now() AT TIME ZONE c.timezone)::date - 1
                                      AND (now() AT TIME ZONE c.timezone)::date;
    END IF;

    -- Rows whose figures did not change are not rewritten (updated_at keeps the
    -- time the numbers last changed); they are still counted: the result is the
    -- number of (organization, period) rows that are now current.
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
                              'hourly_rate', c.hourly_rate,
                              'timezone', c.timezone)
      FROM pg_temp.celaest_roi_computed AS c
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
            EXCLUDED.active_users_count, EXCLUDED.new_users_count, m.metadata || EXCLUDED.metadata);

    SELECT count(*) INTO v_count FROM pg_temp.celaest_roi_computed;
    DROP TABLE pg_temp.celaest_roi_computed;
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION celaest._roi_store(text, date, date, uuid, boolean) IS
    'Internal (ROI): computes the roi_metrics rows of the periods overlapping [p_from, p_to] (one organization or all) with _roi_rollup and upserts them; p_recent_only keeps only each organization''s local yesterday and today. Returns the number of rows computed. Arguments are not validated here.';
REVOKE EXECUTE ON FUNCTION celaest._roi_store(text, date, date, uuid, boolean) FROM PUBLIC;

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
    v_to date := coalesce(p_to, p_from);
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
    PERFORM celaest._roi_check_timezones(p_org_id);
    RETURN celaest._roi_store(p_period_type, p_from, v_to, p_org_id);
END;
$$;
COMMENT ON FUNCTION celaest.aggregate_roi(text, date, date, uuid) IS
    'Computes roi_metrics rows from processed_tasks for every daily, weekly (ISO, Monday-Sunday) or monthly period overlapping [p_from, coalesce(p_to, p_from)], in each organization''s settings->>''timezone'' (else UTC), for one organization or all (live ones, plus soft-deleted ones with tasks in the window), and upserts them; idempotent. Every period gets a row, zeros included. Figures as API.md defines them (see the header of src/sql/55_roi.sql): tasks_completed/failed and success_rate; cost_ai, total_tokens and active_users_count over every task; avg/p95/p99 execution time over completed tasks (exact percentile_cont, rounded); manual_equivalent_minutes from the prompt''s metadata manual_minutes (else roi.manual_minutes_per_task); time_saved_minutes = manual - ai_time_ms/60000; cost_manual_equivalent at the organization''s settings->roi->>hourly_rate (else roi.hourly_rate); money_saved. metadata gets roi_percent, cost_ai_exact, hourly_rate and timezone. Returns the number of rows computed (unchanged rows are not rewritten). Raises 22023 for a bad period type, p_to < p_from or an unknown time zone (naming it), P0002 for an unknown organization.';

-- What the upkeep worker runs every celaest.roi_refresh_interval: the daily rows of
-- yesterday and today, each organization in its own calendar. One roll-up over the
-- days that are yesterday or today somewhere (UTC-12 to UTC+14), keeping per
-- organization only its own two days: no row for a local day not yet begun.
CREATE FUNCTION celaest._roi_refresh_recent()
RETURNS integer
LANGUAGE plpgsql
VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_utc_today date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
    PERFORM celaest._roi_check_timezones(NULL);
    RETURN celaest._roi_store('daily', v_utc_today - 2, v_utc_today + 1, NULL, true);
END;
$$;
COMMENT ON FUNCTION celaest._roi_refresh_recent() IS
    'Internal (ROI, upkeep worker): refreshes the daily roi_metrics rows of yesterday and today of every organization, each in its own time zone; returns the number of rows computed. Raises 22023 when an organization''s time zone is unknown.';
REVOKE EXECUTE ON FUNCTION celaest._roi_refresh_recent() FROM PUBLIC;

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
    PERFORM celaest._roi_check_timezones(v_org);

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
               'timezone',                  r.timezone,
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
    'ROI of one organization (NULL: the acting user''s) over the days [p_from, p_to] of its time zone (settings->>''timezone'', else UTC) (p_to NULL: one day), computed straight from processed_tasks with the same rules as aggregate_roi: {organization_id, from, to, tasks_completed, tasks_failed, success_rate, manual_equivalent_minutes, time_saved_minutes, time_saved_hours, cost_ai, cost_ai_exact, cost_manual_equivalent, money_saved, roi_percent (NULL when the AI cost is 0), hourly_rate, timezone, currency, total_tokens, avg_tokens_per_task, avg/p95/p99_execution_time_ms, active_users_count, new_users_count, by_model: [...], by_prompt: [...]}. Raises 22023 for NULL p_from, p_to < p_from or an unknown time zone, P0002 for an unknown organization.';
