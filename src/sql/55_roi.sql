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
-- Speed (test/bench/roi_bench.sh): one pass over processed_tasks per run, in parallel
-- workers: _roi_rollup works out the run's constants (periods, each organization's zone,
-- where each zone's local days start, the prompts' manual minutes) and hands them to
-- _roi_scan, a native aggregate with a partial form (src/pg/functions/roi.cpp,
-- core/roi_tally), over a Parallel Seq Scan; _roi_rows finishes the figures natively
-- (core/roi_figures). No SQL function is called per task row, no SQL expression per group.

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

-- The one pass over processed_tasks: a native aggregate (src/pg/functions/roi.cpp,
-- core/roi_tally) that counts every task in its (organization, period[, model or prompt])
-- group and keeps what exact p95/p99 and distinct users need. It has a partial form, so
-- PostgreSQL runs it in parallel workers, each over its share of the table; no SQL function
-- runs per task. Arguments: the task's columns (organization_id, created_at, status,
-- cost_usd, tokens_total, execution_time_ms, ai_time_ms, user_id, prompt_id, the id grouped
-- by or NULL), then the run's constants, the same on every row ('completed', 'failed';
-- the organizations and the number of each one's zone in the next array; per zone the
-- instants where the run's local days start, then where the last one ends; each local
-- day's period number or NULL; the prompts that name manual minutes and those minutes).
-- Result: the figures of every group as bytes, for _roi_rows.
CREATE FUNCTION celaest._roi_scan_step(internal, uuid, timestamptz, celaest.task_status, numeric, integer,
                                       integer, integer, uuid, uuid, uuid, celaest.task_status,
                                       celaest.task_status, uuid[], integer[], timestamptz[], integer[],
                                       uuid[], text[]) RETURNS internal
    AS 'MODULE_PATHNAME', 'celaest_roi_scan_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION celaest._roi_scan_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'celaest_roi_scan_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION celaest._roi_scan_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'celaest_roi_scan_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION celaest._roi_scan_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'celaest_roi_scan_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION celaest._roi_scan_final(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'celaest_roi_scan_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE celaest._roi_scan(uuid, timestamptz, celaest.task_status, numeric, integer, integer, integer,
                                   uuid, uuid, uuid, celaest.task_status, celaest.task_status, uuid[],
                                   integer[], timestamptz[], integer[], uuid[], text[]) (
    SFUNC = celaest._roi_scan_step,
    STYPE = internal,
    FINALFUNC = celaest._roi_scan_final,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = celaest._roi_scan_combine,
    SERIALFUNC = celaest._roi_scan_serialize,
    DESERIALFUNC = celaest._roi_scan_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE celaest._roi_scan(uuid, timestamptz, celaest.task_status, numeric, integer, integer, integer, uuid, uuid, uuid, celaest.task_status, celaest.task_status, uuid[], integer[], timestamptz[], integer[], uuid[], text[]) IS
    'Internal (ROI): the one pass over processed_tasks of a roll-up: counts each task in its organization''s local period (and model or prompt); returns the figures of every group as bytes for _roi_rows. Parallel (partial aggregation). Called by _roi_rollup only.';
COMMENT ON FUNCTION celaest._roi_scan_step(internal, uuid, timestamptz, celaest.task_status, numeric, integer, integer, integer, uuid, uuid, uuid, celaest.task_status, celaest.task_status, uuid[], integer[], timestamptz[], integer[], uuid[], text[]) IS 'Internal (ROI): transition function of _roi_scan.';
COMMENT ON FUNCTION celaest._roi_scan_combine(internal, internal) IS 'Internal (ROI): combine function of _roi_scan.';
COMMENT ON FUNCTION celaest._roi_scan_serialize(internal) IS 'Internal (ROI): serial function of _roi_scan.';
COMMENT ON FUNCTION celaest._roi_scan_deserialize(bytea, internal) IS 'Internal (ROI): deserial function of _roi_scan.';
COMMENT ON FUNCTION celaest._roi_scan_final(internal) IS 'Internal (ROI): final function of _roi_scan.';

-- One finished row of a roll-up (_roi_rollup's result, and what _roi_rows hands it).
CREATE TYPE celaest._roi_row AS (
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
    timezone                  text,
    -- roi_metrics' metadata keys: {roi_percent, cost_ai_exact, hourly_rate, timezone}
    metadata                  jsonb
);
COMMENT ON TYPE celaest._roi_row IS
    'Internal (ROI): one row of a roll-up: an organization''s period (and model or prompt), every figure finished as API.md defines it, with the hourly rate and time zone used, and the metadata object roi_metrics stores ({roi_percent, cost_ai_exact, hourly_rate, timezone}).';

-- The rows of a roll-up, finished natively (src/pg/functions/roi.cpp, core/roi_figures): the
-- groups' figures _roi_scan returned (NULL: no task counted) and the run's constants (the
-- organizations, whether each one is reported, its hourly rate and time zone; the default
-- manual minutes; the periods' first and last days; the new users of (organization, period)
-- as three parallel arrays of 1-based positions and counts; dense: a row for every reported
-- organization and period, zeros included). API.md's formulas in exact decimal arithmetic
-- giving numeric's very results, per group, with no SQL expression evaluated per group.
CREATE FUNCTION celaest._roi_rows(p_figures bytea, p_organizations uuid[], p_reported boolean[],
                                  p_hourly_rates numeric[], p_timezones text[], p_default_minutes numeric,
                                  p_period_starts date[], p_period_ends date[], p_new_user_orgs integer[],
                                  p_new_user_periods integer[], p_new_user_counts bigint[], p_dense boolean)
RETURNS SETOF celaest._roi_row
AS 'MODULE_PATHNAME', 'celaest_roi_rows'
LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION celaest._roi_rows(bytea, uuid[], boolean[], numeric[], text[], numeric, date[], date[], integer[], integer[], bigint[], boolean) IS
    'Internal (ROI): the finished rows of a roll-up from the figures _roi_scan returned and the run''s organizations (reported or not, hourly rate, time zone), default manual minutes, periods and new users; every figure as API.md defines it, computed natively with numeric''s exact results. Called by _roi_rollup only.';

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

-- The constants of a roll-up run, worked out once by small queries (never per task):
--   p_period_type  'daily' | 'weekly' | 'monthly': every period overlapping
--                  [p_from, p_to], whole periods (a weekly run from a Wednesday
--                  covers the week from its Monday);
--                  'range': one period, exactly [p_from, p_to].
--   p_org_id       one organization, or NULL for every organization in p_orgs (NULL: every
--                  one the caller sees); reported: the live ones, the one asked for, and
--                  soft-deleted ones with tasks near the window.
CREATE TYPE celaest._roi_run AS (
    lo           date,           -- the local days covered, lo .. hi
    hi           date,
    periods      date[],         -- each period's first and last day
    period_end   date[],
    day_period   integer[],      -- each local day's period (1-based), NULL: none
    orgs         uuid[],         -- every organization of the run, soft-deleted ones too
    org_tz       text[],         -- its time zone
    rates        numeric[],      -- its hourly rate
    reported     boolean[],      -- whether its rows are wanted
    zones        text[],         -- the distinct zones
    org_zone     integer[],      -- each organization's zone (1-based)
    day_starts   timestamptz[],  -- per zone, where each local day starts, then where the last ends
    prompts      uuid[],         -- the prompts that name manual minutes, and those minutes
    minutes      text[],
    default_minutes numeric,
    nu_orgs      integer[],      -- new users per (organization, period), 1-based positions
    nu_periods   integer[],
    nu_counts    bigint[]
);
COMMENT ON TYPE celaest._roi_run IS
    'Internal (ROI): the constants of a roll-up run (days, periods, organizations with their zones, rates and whether reported, where each zone''s local days start, the prompts'' manual minutes, new users), worked out once by _roi_run_constants.';

CREATE FUNCTION celaest._roi_run_constants(
    p_period_type text,
    p_from        date,
    p_to          date,
    p_org_id      uuid,
    p_orgs        uuid[] DEFAULT NULL
)
RETURNS celaest._roi_run
LANGUAGE plpgsql
STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    r            celaest._roi_run;
    v_last_start date := CASE WHEN p_period_type = 'range' THEN p_from
                              ELSE celaest._roi_period_start(p_period_type, p_to) END;
    v_defaults   record;
BEGIN
    r.lo := CASE WHEN p_period_type = 'range' THEN p_from
                 ELSE celaest._roi_period_start(p_period_type, p_from) END;
    r.hi := CASE WHEN p_period_type = 'range' THEN p_to
                 ELSE celaest._roi_period_end(p_period_type, v_last_start) END;
    SELECT array_agg(s.d::date ORDER BY s.d),
           array_agg(CASE WHEN p_period_type = 'range' THEN p_to
                          ELSE celaest._roi_period_end(p_period_type, s.d::date) END ORDER BY s.d)
      INTO r.periods, r.period_end
      FROM generate_series(r.lo::timestamp, v_last_start::timestamp,
                           CASE p_period_type WHEN 'weekly'  THEN interval '1 week'
                                              WHEN 'monthly' THEN interval '1 month'
                                              ELSE interval '1 day' END) AS s(d);
    -- Each local day's period, as its number in r.periods.
    SELECT array_agg(array_position(r.periods, celaest._roi_period_of(p_period_type, p_from, p_to, s.d::date))
                     ORDER BY s.d)
      INTO r.day_period
      FROM generate_series(r.lo::timestamp, r.hi::timestamp, interval '1 day') AS s(d);
    SELECT d.manual_minutes_per_task, d.hourly_rate INTO v_defaults FROM celaest._roi_defaults() AS d;
    r.default_minutes := v_defaults.manual_minutes_per_task;
    SELECT array_agg(o.id ORDER BY o.id),
           array_agg(celaest._roi_timezone(o.settings) ORDER BY o.id),
           array_agg(coalesce(celaest._roi_number(o.settings -> 'roi' ->> 'hourly_rate'), v_defaults.hourly_rate)
                     ORDER BY o.id),
           array_agg((o.deleted_at IS NULL
                      OR p_org_id IS NOT NULL
                      OR EXISTS (SELECT 1 FROM celaest.processed_tasks AS t
                                  WHERE t.organization_id = o.id
                                    AND t.created_at >= (r.lo - 2)::timestamptz
                                    AND t.created_at < (r.hi + 3)::timestamptz)) ORDER BY o.id)
      INTO r.orgs, r.org_tz, r.rates, r.reported
      FROM celaest.organizations AS o
     WHERE (p_org_id IS NULL OR o.id = p_org_id)
       AND (p_orgs IS NULL OR o.id = ANY (p_orgs));
    IF r.orgs IS NULL THEN
        RETURN r;
    END IF;
    SELECT array_agg(DISTINCT z.tz) INTO r.zones FROM unnest(r.org_tz) AS z(tz);
    SELECT array_agg(array_position(r.zones, z.tz) ORDER BY z.n) INTO r.org_zone
      FROM unnest(r.org_tz) WITH ORDINALITY AS z(tz, n);
    -- Where each zone's local days start (a task at exactly local midnight opens the day).
    SELECT array_agg(s.d AT TIME ZONE z.tz ORDER BY z.n, s.d) INTO r.day_starts
      FROM unnest(r.zones) WITH ORDINALITY AS z(tz, n),
           generate_series(r.lo::timestamp, (r.hi + 1)::timestamp, interval '1 day') AS s(d);
    SELECT array_agg(p.id), array_agg(m.minutes::text)
      INTO r.prompts, r.minutes
      FROM celaest.prompts_master AS p
     CROSS JOIN LATERAL (SELECT celaest._roi_number(p.metadata ->> 'manual_minutes') AS minutes) AS m
     WHERE m.minutes IS NOT NULL;
    -- New users (soft-deleted ones included: they were new then) per organization and the
    -- period of their local creation day; users created outside the days covered count nowhere.
    SELECT array_agg(u.org_n), array_agg(u.period_n), array_agg(u.n)
      INTO r.nu_orgs, r.nu_periods, r.nu_counts
      FROM (SELECT o.n AS org_n,
                   r.day_period[(u.created_at AT TIME ZONE o.tz)::date - r.lo + 1] AS period_n,
                   count(*) AS n
              FROM unnest(r.orgs, r.org_tz) WITH ORDINALITY AS o(id, tz, n)
              JOIN celaest.users_profile AS u ON u.organization_id = o.id
             GROUP BY 1, 2) AS u
     WHERE u.period_n IS NOT NULL;
    RETURN r;
END;
$$;
COMMENT ON FUNCTION celaest._roi_run_constants(text, date, date, uuid, uuid[]) IS
    'Internal (ROI): the constants of a roll-up over the daily/weekly/monthly periods overlapping [p_from, p_to] (''range'': exactly those days) for one organization or all (among p_orgs when given): see celaest._roi_run. Arguments are not validated here.';

-- The finished rows of a run from its periods' figures (_roi_scan's or _roi_fold's bytes).
CREATE FUNCTION celaest._roi_finish(p_figures bytea, r celaest._roi_run, p_dense boolean)
RETURNS SETOF celaest._roi_row
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT * FROM celaest._roi_rows(p_figures, r.orgs, r.reported, r.rates, r.org_tz, r.default_minutes,
                                    r.periods, r.period_end, r.nu_orgs, r.nu_periods, r.nu_counts, p_dense);
$$;
COMMENT ON FUNCTION celaest._roi_finish(bytea, celaest._roi_run, boolean) IS
    'Internal (ROI): the finished rows of a run (_roi_rows) from its periods'' figures and constants.';

-- The ROI math straight from the tasks: one row per (organization, period, dimension key):
--   p_period_type, p_org_id: see _roi_run_constants;
--   p_dimension    'total': one row per organization and period, dense (periods
--                  without tasks give a row of zeros);
--                  'model' / 'prompt': one row per model / prompt with tasks
--                  (dim_id NULL: tasks whose model / prompt is unknown).
-- roi_summary's roll-up; aggregate_roi merges stored days instead (_roi_rollup_days).
-- The callers validate the arguments and the time zones; this function trusts them.
-- How: the one pass over processed_tasks is a query of one table and one native aggregate
-- (_roi_scan), which PostgreSQL runs in parallel workers (PARALLEL RESTRICTED: it starts
-- workers of its own, so it runs in the leader); _roi_rows finishes every group's figures
-- natively. No SQL function or expression runs per task or per group.
-- jit = off: the row estimates would put small queries above jit_above_cost, and compiling
-- cost more than it saved (1.3 s of CPU on 2 M tasks, measured before the figures went native).
CREATE FUNCTION celaest._roi_rollup(
    p_period_type text,
    p_from        date,
    p_to          date,
    p_org_id      uuid,
    p_dimension   text DEFAULT 'total'
)
RETURNS SETOF celaest._roi_row
LANGUAGE plpgsql
STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    r         celaest._roi_run := celaest._roi_run_constants(p_period_type, p_from, p_to, p_org_id);
    v_figures bytea;
BEGIN
    IF r.orgs IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format(
        'SELECT celaest._roi_scan(t.organization_id, t.created_at, t.status, t.cost_usd, t.tokens_total,
                                  t.execution_time_ms, t.ai_time_ms, t.user_id, t.prompt_id, %s,
                                  ''completed'', ''failed'', $1, $2, $3, $4, $5, $6)
           FROM celaest.processed_tasks AS t
          WHERE t.created_at >= $7 AND t.created_at < $8 %s',
        CASE p_dimension WHEN 'model' THEN 't.model_id' WHEN 'prompt' THEN 't.prompt_id' ELSE 'NULL::uuid' END,
        CASE WHEN p_org_id IS NOT NULL THEN 'AND t.organization_id = $9' ELSE '' END)
      INTO v_figures
      USING r.orgs, r.org_zone, r.day_starts, r.day_period, r.prompts, r.minutes,
            (SELECT min(d) FROM unnest(r.day_starts) AS d), (SELECT max(d) FROM unnest(r.day_starts) AS d),
            p_org_id;
    RETURN QUERY SELECT * FROM celaest._roi_finish(v_figures, r, p_dimension = 'total');
END;
$$;
COMMENT ON FUNCTION celaest._roi_rollup(text, date, date, uuid, text) IS
    'Internal (ROI): the ROI figures of every organization (or one) per daily/weekly/monthly period overlapping [p_from, p_to] in each organization''s time zone, or for the exact range (''range''), in total or per model / prompt (p_dimension), read straight from processed_tasks. Used by roi_summary; arguments and time zones are not validated here.';

-- ---------------------------------------------------------------------------
-- Stored days: what aggregate_roi reads instead of the tasks
-- ---------------------------------------------------------------------------
-- Each organization's local day is tallied once (counts, sums, the completed tasks' execution
-- times and the users: what exact percentiles and distinct users need) and kept in
-- celaest._roi_days; a run merges the stored days into its periods and reads from
-- processed_tasks only the days it does not have. A stored day is
--   * sealed: it ended at least an hour (the live window) before the oldest transaction then
--     open in this database began, so every later write of one of its tasks is an "old" write;
--   * invalidated by such writes: a row trigger on processed_tasks, whose WHEN clause lets only
--     tasks created more than an hour before the writing transaction began through, notes the
--     task's organization, UTC day and instant; just before the writer's transaction commits
--     they become rows of celaest._roi_stale, one per organization and UTC day with the first
--     and last instant (so a rolled-back write notes nothing, and a committed one cannot be
--     missed); a run first deletes the stored days those notes touch (the local days the
--     instants fall on);
--   * tied to its organization's time zone when it was tallied: another zone reads the tasks;
--   * also invalidated by a change of a prompt's manual minutes (its tasks' days are noted)
--     and by TRUNCATE (every day).
-- Today, and any day still inside the live window, is always read from the tasks.
-- Only one run at a time maintains the store (a transaction-level advisory lock, tried, never
-- waited for); a run that does not get it, or runs under REPEATABLE READ, reads the stored days
-- that no note touches and the tasks of the others, and stores nothing.

-- A scan by local day: _roi_scan over a calendar in which each day is its own period; the
-- result is the tally itself (groups by organization and day), for _roi_day_states.
CREATE AGGREGATE celaest._roi_scan_days(uuid, timestamptz, celaest.task_status, numeric, integer, integer, integer,
                                        uuid, uuid, uuid, celaest.task_status, celaest.task_status, uuid[],
                                        integer[], timestamptz[], integer[], uuid[], text[]) (
    SFUNC = celaest._roi_scan_step,
    STYPE = internal,
    FINALFUNC = celaest._roi_scan_serialize,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = celaest._roi_scan_combine,
    SERIALFUNC = celaest._roi_scan_serialize,
    DESERIALFUNC = celaest._roi_scan_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE celaest._roi_scan_days(uuid, timestamptz, celaest.task_status, numeric, integer, integer, integer, uuid, uuid, uuid, celaest.task_status, celaest.task_status, uuid[], integer[], timestamptz[], integer[], uuid[], text[]) IS
    'Internal (ROI): _roi_scan''s pass over processed_tasks returning the tally itself (one group per organization and local day when each day is its own period), for _roi_day_states. Parallel.';

CREATE FUNCTION celaest._roi_day_states(p_tally bytea, p_organization_n integer[], p_day_n integer[])
RETURNS TABLE (organization_n integer, day_n integer, state bytea)
AS 'MODULE_PATHNAME', 'celaest_roi_day_states'
LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION celaest._roi_day_states(bytea, integer[], integer[]) IS
    'Internal (ROI): one row per given (organization, day) pair (1-based positions in the run''s arrays): that day''s group of a scan by local day (_roi_scan_days) as the state celaest._roi_days keeps, NULL when the scan counted no task that day.';

CREATE FUNCTION celaest._roi_fold_step(internal, uuid, date, text, bytea, uuid[], text[], date, integer[], integer,
                                       uuid[], date[], date[])
RETURNS internal
AS 'MODULE_PATHNAME', 'celaest_roi_fold_step' LANGUAGE C IMMUTABLE;
CREATE FUNCTION celaest._roi_fold_final(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'celaest_roi_fold_final' LANGUAGE C IMMUTABLE;
CREATE AGGREGATE celaest._roi_fold(uuid, date, text, bytea, uuid[], text[], date, integer[], integer, uuid[], date[],
                                   date[]) (
    SFUNC = celaest._roi_fold_step,
    STYPE = internal,
    FINALFUNC = celaest._roi_fold_final,
    FINALFUNC_MODIFY = READ_WRITE
);
COMMENT ON AGGREGATE celaest._roi_fold(uuid, date, text, bytea, uuid[], text[], date, integer[], integer, uuid[], date[], date[]) IS
    'Internal (ROI): step 1 of a run over stored days: counts each stored day (_roi_days rows: organization, day, zone, state) of use to the run (constants: organizations, their zones, first day, each day''s period, number of periods; notes of writes not consumed: organizations and the local days they touch, first and last, NULL meaning all) into its period; returns the run as bytes for _roi_fold_missing and _roi_fold_finish. A row with a NULL organization only starts the run.';
COMMENT ON FUNCTION celaest._roi_fold_step(internal, uuid, date, text, bytea, uuid[], text[], date, integer[], integer, uuid[], date[], date[]) IS 'Internal (ROI): transition function of _roi_fold.';
CREATE FUNCTION celaest._roi_fold_missing(p_fold bytea)
RETURNS TABLE (organization_n integer, day_n integer)
AS 'MODULE_PATHNAME', 'celaest_roi_fold_missing'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION celaest._roi_fold_missing(bytea) IS
    'Internal (ROI): the (organization, day) pairs of a run (_roi_fold''s bytes) that no stored day counted for, as 1-based positions: the days to read from the tasks.';
CREATE FUNCTION celaest._roi_fold_finish(p_fold bytea, p_fresh_tally bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'celaest_roi_fold_finish'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION celaest._roi_fold_finish(bytea, bytea) IS
    'Internal (ROI): step 2 of a run over stored days: the missing days'' tally (a scan by day; NULL: none) counted too; returns the figures of every period, as _roi_scan does, for _roi_rows.';
COMMENT ON FUNCTION celaest._roi_fold_final(internal) IS 'Internal (ROI): final function of _roi_fold.';

CREATE FUNCTION celaest._roi_mark_stale() RETURNS trigger
AS 'MODULE_PATHNAME', 'celaest_roi_mark_stale' LANGUAGE C;
CREATE FUNCTION celaest._roi_flush_notes() RETURNS void
AS 'MODULE_PATHNAME', 'celaest_roi_flush_notes' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION celaest._roi_flush_notes() IS
    'Internal (ROI): writes the notes this transaction''s writes of old tasks have left so far to celaest._roi_stale now rather than at commit (a run calls it first, so that it sees its own transaction''s writes).';
COMMENT ON FUNCTION celaest._roi_mark_stale() IS
    'Internal (ROI, trigger): notes the organization, UTC day and instant of an old task written (each version of the row); written to celaest._roi_stale just before the transaction commits, one row per organization and UTC day.';
-- The live window (one hour) is written here and in the seal of _roi_rollup_days.
CREATE TRIGGER processed_tasks_roi_stale_insert
    AFTER INSERT ON celaest.processed_tasks
    FOR EACH ROW WHEN (NEW.created_at < now() - interval '1 hour')
    EXECUTE FUNCTION celaest._roi_mark_stale();
CREATE TRIGGER processed_tasks_roi_stale_update
    AFTER UPDATE ON celaest.processed_tasks
    FOR EACH ROW WHEN (OLD.created_at < now() - interval '1 hour' OR NEW.created_at < now() - interval '1 hour')
    EXECUTE FUNCTION celaest._roi_mark_stale();
CREATE TRIGGER processed_tasks_roi_stale_delete
    AFTER DELETE ON celaest.processed_tasks
    FOR EACH ROW WHEN (OLD.created_at < now() - interval '1 hour')
    EXECUTE FUNCTION celaest._roi_mark_stale();

CREATE FUNCTION celaest._roi_stale_everything() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO celaest._roi_stale (organization_id, utc_day) VALUES (NULL, NULL);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION celaest._roi_stale_everything() IS
    'Internal (ROI, trigger): after TRUNCATE of processed_tasks, every stored ROI day is stale.';
CREATE TRIGGER processed_tasks_roi_stale_truncate
    AFTER TRUNCATE ON celaest.processed_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION celaest._roi_stale_everything();

-- A prompt's manual minutes are counted into the stored days of its completed tasks.
CREATE FUNCTION celaest._roi_prompt_minutes_changed() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO celaest._roi_stale (organization_id, utc_day)
    SELECT DISTINCT t.organization_id, (t.created_at AT TIME ZONE 'UTC')::date
      FROM celaest.processed_tasks AS t
     WHERE t.prompt_id = NEW.id AND t.status = 'completed';
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION celaest._roi_prompt_minutes_changed() IS
    'Internal (ROI, trigger): a prompt''s metadata manual_minutes changed: the days of its completed tasks are noted stale.';
CREATE TRIGGER prompts_master_roi_minutes
    AFTER UPDATE ON celaest.prompts_master
    FOR EACH ROW WHEN (OLD.metadata ->> 'manual_minutes' IS DISTINCT FROM NEW.metadata ->> 'manual_minutes')
    EXECUTE FUNCTION celaest._roi_prompt_minutes_changed();

-- Every trigger above also fires where rows arrive by logical replication or with
-- session_replication_role = replica (submit_batch's task rows): a stored day must not miss a write.
ALTER TABLE celaest.processed_tasks ENABLE ALWAYS TRIGGER processed_tasks_roi_stale_insert;
ALTER TABLE celaest.processed_tasks ENABLE ALWAYS TRIGGER processed_tasks_roi_stale_update;
ALTER TABLE celaest.processed_tasks ENABLE ALWAYS TRIGGER processed_tasks_roi_stale_delete;
ALTER TABLE celaest.processed_tasks ENABLE ALWAYS TRIGGER processed_tasks_roi_stale_truncate;
ALTER TABLE celaest.prompts_master ENABLE ALWAYS TRIGGER prompts_master_roi_minutes;

-- The total figures of every organization in p_orgs (the ones the caller sees; or the one
-- p_org_id names) per daily, weekly or monthly period overlapping [p_from, p_to], from the
-- stored days and the tasks of the days not stored, storing the sealed days it read (see
-- "Stored days" above). aggregate_roi's roll-up (through _roi_store); dense.
-- SECURITY DEFINER: the store holds every organization's days, and a day is tallied from all
-- of its tasks whoever asks; the caller chooses the organizations (p_orgs, read with its rights).
-- enable_nestloop = on: the days not stored are read by one index range scan each
-- ((organization_id, created_at)); the caller turns nested loops off for its upsert.
CREATE FUNCTION celaest._roi_rollup_days(
    p_period_type text,
    p_from        date,
    p_to          date,
    p_org_id      uuid,
    p_orgs        uuid[],
    INOUT r       celaest._roi_run DEFAULT NULL,
    OUT figures   bytea
)
LANGUAGE plpgsql
VOLATILE PARALLEL RESTRICTED
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET enable_nestloop = on
SET work_mem = '256MB'
AS $$
DECLARE
    v_days         integer;
    v_maintain     boolean;
    v_sealed_until timestamptz;   -- a day that ended at or before this instant may be stored
    v_mark_orgs    uuid[];        -- read-only runs: notes not consumed yet (NULL: every one)
    v_mark_first   date[];        -- the local days each touches, first and last (NULL: all)
    v_mark_last    date[];
    v_note_orgs    uuid[];        -- the notes this run consumes: organization, UTC day, zone
    v_note_days    date[];
    v_note_zones   text[];
    v_miss_orgs    integer[];     -- the (organization, day) pairs read from the tasks, 1-based
    v_miss_days    integer[];
    v_each_day     integer[];     -- a scan by day: each day its own period
    v_fold         bytea;         -- the run after step 1 (_roi_fold)
    v_tally        bytea;
BEGIN
    r := celaest._roi_run_constants(p_period_type, p_from, p_to, p_org_id, coalesce(p_orgs, '{}'));
    IF r.orgs IS NULL THEN
        RETURN;
    END IF;
    v_days := r.hi - r.lo + 1;
    PERFORM celaest._roi_flush_notes();
    v_maintain := current_setting('transaction_isolation') = 'read committed'
                  AND pg_try_advisory_xact_lock(hashtextextended('celaest._roi_days', 0));

    IF v_maintain AND EXISTS (SELECT 1 FROM celaest._roi_stale) THEN
        -- Consume the notes: the stored days they touch go. A note with its instants touches
        -- the local days they fall on in the organization's zone (and, around its UTC day, any
        -- day stored in another zone); one without (a prompt's minutes, TRUNCATE), or of an
        -- organization that is gone, the local days before, of and after its UTC day.
        WITH consumed AS (
            DELETE FROM celaest._roi_stale RETURNING organization_id, utc_day, first_at, last_at
        )
        SELECT array_agg(m.organization_id), array_agg(m.utc_day), array_agg(m.zone),
               array_agg(m.first_day), array_agg(m.last_day)
          INTO v_note_orgs, v_note_days, v_note_zones, v_mark_first, v_mark_last
          FROM (SELECT DISTINCT c.organization_id, c.utc_day, z.zone,
                       (c.first_at AT TIME ZONE z.zone)::date AS first_day,
                       (c.last_at AT TIME ZONE z.zone)::date AS last_day
                  FROM consumed AS c
                  LEFT JOIN celaest.organizations AS o ON o.id = c.organization_id
                 CROSS JOIN LATERAL (SELECT CASE WHEN o.id IS NOT NULL AND c.first_at IS NOT NULL
                                                 THEN celaest._roi_timezone(o.settings) END AS zone) AS z) AS m;
        -- A note of one organization and day: one index range scan of _roi_days' key.
        DELETE FROM celaest._roi_days AS d
         USING unnest(v_note_orgs, v_note_days, v_note_zones, v_mark_first, v_mark_last)
                   AS m(organization_id, utc_day, zone, first_day, last_day)
         WHERE m.organization_id IS NOT NULL AND m.utc_day IS NOT NULL
           AND d.organization_id = m.organization_id
           AND d.day BETWEEN m.utc_day - 1 AND m.utc_day + 1
           AND (m.zone IS NULL OR d.timezone <> m.zone OR d.day BETWEEN m.first_day AND m.last_day);
        -- Notes of every organization or every day (TRUNCATE, an organization's whole history).
        IF EXISTS (SELECT 1 FROM unnest(v_note_orgs, v_note_days) AS m(organization_id, utc_day)
                    WHERE m.organization_id IS NULL OR m.utc_day IS NULL) THEN
            DELETE FROM celaest._roi_days AS d
             USING unnest(v_note_orgs, v_note_days) AS m(organization_id, utc_day)
             WHERE (m.organization_id IS NULL OR m.utc_day IS NULL)
               AND (m.organization_id IS NULL OR d.organization_id = m.organization_id)
               AND (m.utc_day IS NULL OR d.day BETWEEN m.utc_day - 1 AND m.utc_day + 1);
        END IF;
        v_mark_first := NULL;
        v_mark_last := NULL;
    END IF;
    IF v_maintain THEN
        -- The seal: the oldest transaction open in this database (its writes of tasks created
        -- before its start minus the live window are noted; of later ones, not). Prepared
        -- transactions, or backends this role may not see, leave nothing sealed.
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_xacts AS p WHERE p.database = current_database())
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity AS a
                            WHERE a.datname = current_database() AND a.backend_xid IS NOT NULL
                              AND a.xact_start IS NULL) THEN
            SELECT least(now(), min(a.xact_start)) - interval '1 hour' INTO v_sealed_until
              FROM pg_catalog.pg_stat_activity AS a
             WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
               AND a.backend_type <> 'autovacuum worker';
        END IF;
    ELSE
        -- The notes as the local days they touch (as their consumption above would delete).
        SELECT array_agg(m.organization_id), array_agg(m.first_day), array_agg(m.last_day)
          INTO v_mark_orgs, v_mark_first, v_mark_last
          FROM (SELECT DISTINCT s.organization_id,
                       CASE WHEN z.zone IS NULL THEN s.utc_day - 1 ELSE (s.first_at AT TIME ZONE z.zone)::date END
                           AS first_day,
                       CASE WHEN z.zone IS NULL THEN s.utc_day + 1 ELSE (s.last_at AT TIME ZONE z.zone)::date END
                           AS last_day
                  FROM celaest._roi_stale AS s
                  LEFT JOIN celaest.organizations AS o ON o.id = s.organization_id
                 CROSS JOIN LATERAL (SELECT CASE WHEN o.id IS NOT NULL AND s.first_at IS NOT NULL
                                                 THEN celaest._roi_timezone(o.settings) END AS zone) AS z) AS m;
    END IF;

    -- Step 1, natively: one pass over the run's rows of _roi_days counts each stored day of use
    -- (its organization's current zone, not touched by a note this run does not consume) into
    -- its period; then the pairs none counted for. (The extra row starts the run when no day is
    -- stored.)
    SELECT celaest._roi_fold(x.organization_id, x.day, x.timezone, x.state, r.orgs, r.org_tz, r.lo, r.day_period,
                             cardinality(r.periods), v_mark_orgs, v_mark_first, v_mark_last)
      INTO v_fold
      FROM (SELECT s.organization_id, s.day, s.timezone, s.state
              FROM celaest._roi_days AS s
             WHERE s.day BETWEEN r.lo AND r.hi
               AND (p_org_id IS NULL OR s.organization_id = p_org_id)
            UNION ALL
            SELECT NULL, NULL, NULL, NULL) AS x;
    SELECT array_agg(m.organization_n ORDER BY m.organization_n, m.day_n), array_agg(m.day_n ORDER BY m.organization_n, m.day_n)
      INTO v_miss_orgs, v_miss_days
      FROM celaest._roi_fold_missing(v_fold) AS m;

    IF v_miss_orgs IS NOT NULL THEN
        SELECT array_agg(g) INTO v_each_day FROM generate_series(1, v_days) AS g;
        IF cardinality(v_miss_orgs) * 4 > cardinality(r.orgs) * v_days THEN
            -- Most days are missing (the first run): one pass over the window, in parallel
            -- workers (EXECUTE: a static SELECT INTO asks for one row, which rules workers out).
            EXECUTE format(
                'SELECT celaest._roi_scan_days(t.organization_id, t.created_at, t.status, t.cost_usd, t.tokens_total,
                                               t.execution_time_ms, t.ai_time_ms, t.user_id, t.prompt_id, NULL::uuid,
                                               ''completed'', ''failed'', $1, $2, $3, $4, $5, $6)
                   FROM celaest.processed_tasks AS t
                  WHERE t.created_at >= $7 AND t.created_at < $8 %s',
                CASE WHEN p_org_id IS NOT NULL THEN 'AND t.organization_id = $9' ELSE '' END)
              INTO v_tally
              USING r.orgs, r.org_zone, r.day_starts, v_each_day, r.prompts, r.minutes,
                    (SELECT min(x) FROM unnest(r.day_starts) AS x), (SELECT max(x) FROM unnest(r.day_starts) AS x),
                    p_org_id;
        ELSE
            -- A few days: each run of consecutive missing days of an organization is one
            -- range of its tasks.
            SELECT celaest._roi_scan_days(t.organization_id, t.created_at, t.status, t.cost_usd, t.tokens_total,
                                          t.execution_time_ms, t.ai_time_ms, t.user_id, t.prompt_id, NULL::uuid,
                                          'completed', 'failed', r.orgs, r.org_zone, r.day_starts, v_each_day,
                                          r.prompts, r.minutes)
              INTO v_tally
              FROM (SELECT r.orgs[i.o] AS org,
                           r.day_starts[(r.org_zone[i.o] - 1) * (v_days + 1) + i.first_day] AS from_instant,
                           r.day_starts[(r.org_zone[i.o] - 1) * (v_days + 1) + i.last_day + 1] AS to_instant
                      FROM (SELECT m.o, min(m.d) AS first_day, max(m.d) AS last_day
                              FROM (SELECT x.o, x.d, x.d - row_number() OVER (PARTITION BY x.o ORDER BY x.d) AS island
                                      FROM unnest(v_miss_orgs, v_miss_days) AS x(o, d)) AS m
                             GROUP BY m.o, m.island) AS i) AS g
              JOIN celaest.processed_tasks AS t
                ON t.organization_id = g.org AND t.created_at >= g.from_instant AND t.created_at < g.to_instant;
        END IF;
    END IF;

    -- Store the sealed days just read (days without tasks too: a NULL state).
    IF v_maintain AND v_miss_orgs IS NOT NULL THEN
        INSERT INTO celaest._roi_days AS s (organization_id, day, timezone, state)
        SELECT r.orgs[m.organization_n], r.lo + m.day_n - 1, r.org_tz[m.organization_n], m.state
          FROM celaest._roi_day_states(v_tally, v_miss_orgs, v_miss_days) AS m
         WHERE r.day_starts[(r.org_zone[m.organization_n] - 1) * (v_days + 1) + m.day_n + 1] <= v_sealed_until
        ON CONFLICT (organization_id, day) DO UPDATE SET timezone = EXCLUDED.timezone, state = EXCLUDED.state;
    END IF;
    -- Step 2: the days just read counted too; the figures.
    figures := celaest._roi_fold_finish(v_fold, v_tally);
END;
$$;
COMMENT ON FUNCTION celaest._roi_rollup_days(text, date, date, uuid, uuid[], celaest._roi_run) IS
    'Internal (ROI): the total figures (as _roi_rows reads them; r: the run''s constants) of the organizations in p_orgs (or p_org_id) per daily/weekly/monthly period overlapping [p_from, p_to], merged from the stored days (celaest._roi_days) and the tasks of the days not stored; stores the sealed days it read and consumes the notes of celaest._roi_stale when it gets the store''s lock. Used by aggregate_roi; arguments and time zones are not validated here.';
REVOKE EXECUTE ON FUNCTION celaest._roi_rollup_days(text, date, date, uuid, uuid[], celaest._roi_run) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- aggregate_roi and the daily refresh
-- ---------------------------------------------------------------------------
-- The rows of a run that roi_metrics does not already hold as they are: _roi_rows' rows,
-- compared natively with roi_metrics' rows of p_period_type (read with the caller's rights) and
-- left out when every figure is equal and the stored metadata holds our keys with our values.
CREATE FUNCTION celaest._roi_rows_changed(p_figures bytea, p_organizations uuid[], p_reported boolean[],
                                          p_hourly_rates numeric[], p_timezones text[], p_default_minutes numeric,
                                          p_period_starts date[], p_period_ends date[], p_new_user_orgs integer[],
                                          p_new_user_periods integer[], p_new_user_counts bigint[], p_dense boolean,
                                          p_period_type text)
RETURNS SETOF celaest._roi_row
AS 'MODULE_PATHNAME', 'celaest_roi_rows_changed'
LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 1000;
COMMENT ON FUNCTION celaest._roi_rows_changed(bytea, uuid[], boolean[], numeric[], text[], numeric, date[], date[], integer[], integer[], bigint[], boolean, text) IS
    'Internal (ROI): the rows of _roi_rows (same arguments) that roi_metrics (rows of p_period_type, read with the caller''s rights) does not already hold with the same figures and our metadata keys; what _roi_store upserts.';

-- Computes the periods (_roi_rollup_days: the stored days and the tasks of the others) and
-- upserts the rows roi_metrics does not hold as they are, in one statement. p_recent_only
-- keeps, per organization, only the daily rows of its local yesterday and today (the upkeep
-- refresh). Returns the number of rows computed (every reported organization and period).
-- SECURITY INVOKER: it reads and writes roi_metrics with the caller's rights.
-- work_mem: the run's figures (90,000 periods for 1,000 organizations over 90 days) stay in
-- memory.
-- enable_nestloop = off: against a freshly analyzed, empty roi_metrics the planner once chose a
-- nested loop that scanned the rows the INSERT had written so far for every row (minutes for
-- 90,000 rows, measured).
-- jit = off (here, in _roi_rollup and in roi_summary): the row estimates (every organization
-- times every period) put the cost above jit_above_cost, and compiling the expressions took
-- longer than evaluating them (1.3 s of CPU on 2 M tasks, measured).
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
SET enable_nestloop = off
SET jit = off
AS $$
DECLARE
    v_count integer;
BEGIN
    -- Literal arguments (the statement is planned once per run, with its constants).
    EXECUTE format($q$
    WITH run AS MATERIALIZED (
        SELECT d.r, d.figures
          FROM celaest._roi_rollup_days(%L, %L::date, %L::date, %L::uuid,
                                        (SELECT array_agg(o.id) FROM celaest.organizations AS o)) AS d
    ),
    changed AS (
        -- r.metadata: our keys, built natively with the row (_roi_rows).
        SELECT r.*
          FROM run
         CROSS JOIN LATERAL celaest._roi_rows_changed(
                   run.figures, (run.r).orgs, (run.r).reported, (run.r).rates, (run.r).org_tz,
                   (run.r).default_minutes, (run.r).periods, (run.r).period_end, (run.r).nu_orgs,
                   (run.r).nu_periods, (run.r).nu_counts, true, %L) AS r
         WHERE (run.r).orgs IS NOT NULL
           AND (NOT %L::boolean
                OR r.period_start BETWEEN (now() AT TIME ZONE r.timezone)::date - 1
                                      AND (now() AT TIME ZONE r.timezone)::date)
    ),
    upserted AS (
        -- id: the column's default (uuid_generate_v4) is a random version-4 uuid as well, at
        -- twice the cost per row (measured); the first run writes 90,000 rows.
        INSERT INTO celaest.roi_metrics AS m
            (id, organization_id, period_type, period_start, period_end,
             tasks_completed, tasks_failed, success_rate,
             time_saved_minutes, manual_equivalent_minutes,
             cost_ai, cost_manual_equivalent, money_saved,
             total_tokens, avg_tokens_per_task,
             avg_execution_time_ms, p95_execution_time_ms, p99_execution_time_ms,
             active_users_count, new_users_count, metadata)
        SELECT pg_catalog.gen_random_uuid(), c.organization_id, %L, c.period_start, c.period_end,
               c.tasks_completed, c.tasks_failed, c.success_rate,
               c.time_saved_minutes, c.manual_equivalent_minutes,
               c.cost_ai, c.cost_manual_equivalent, c.money_saved,
               c.total_tokens, c.avg_tokens_per_task,
               c.avg_execution_time_ms, c.p95_execution_time_ms, c.p99_execution_time_ms,
               c.active_users_count, c.new_users_count, c.metadata
          FROM changed AS c
        -- The WHERE applies to rows another session writes meanwhile.
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
    )
    -- Every reported organization's periods (those the recent-only refresh keeps).
    SELECT count(*)::integer
      FROM run
     CROSS JOIN LATERAL unnest((run.r).org_tz, (run.r).reported) AS o(tz, reported)
     CROSS JOIN LATERAL unnest((run.r).periods) AS p(period_start)
     WHERE o.reported
       AND (NOT %L::boolean
            OR p.period_start BETWEEN (now() AT TIME ZONE o.tz)::date - 1 AND (now() AT TIME ZONE o.tz)::date)$q$,
        p_period_type, p_from, p_to, p_org_id, p_period_type, p_recent_only, p_period_type, p_recent_only)
      INTO v_count;
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION celaest._roi_store(text, date, date, uuid, boolean) IS
    'Internal (ROI): computes the roi_metrics rows of the periods overlapping [p_from, p_to] (one organization or all) with _roi_rollup_days and upserts those roi_metrics does not hold as they are; p_recent_only keeps only each organization''s local yesterday and today. Returns the number of rows computed. Arguments are not validated here.';
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
    -- Stored days of organizations that are gone (nothing reads them).
    DELETE FROM celaest._roi_days AS d
     WHERE NOT EXISTS (SELECT 1 FROM celaest.organizations AS o WHERE o.id = d.organization_id);
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
SET jit = off
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
