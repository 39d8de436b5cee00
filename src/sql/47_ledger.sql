-- The ledger (API.md "The ledger", README "The ledger"): every paid AI call is charged and
-- recorded whatever its caller's transaction does, and no call locks a license or key row.
-- The calls charge shared memory; the ledger writer (one background worker per served
-- database) writes the records of transactions that did not commit (_ledger_drain), folds the
-- charges into licenses and ai_api_pool (_ledger_fold), and after a restart rebuilds the
-- counters from processed_tasks (_ledger_rebuild).

-- What the writer has folded into each counter, so that a rebuild after a crash adds exactly
-- what shared memory lost: per license, the AI requests of its current billing period; per
-- key, its requests and tokens; per prompt, run_prompt's calls, their time and successes.
-- Written only by the writer, in the fold's own transaction.
CREATE TABLE celaest._ledger_folds (
    subject      uuid        PRIMARY KEY,   -- a licenses.id, an ai_api_pool.id or a prompts_master.id
    period_start timestamptz,               -- a license's billing period the requests belong to
    requests     bigint      NOT NULL DEFAULT 0,
    tokens       bigint      NOT NULL DEFAULT 0,
    time_ms      bigint      NOT NULL DEFAULT 0,
    successes    bigint      NOT NULL DEFAULT 0
);
COMMENT ON TABLE celaest._ledger_folds IS
    'Internal (ledger): what the ledger writer folded into each license (AI requests of the period), key (requests, tokens) and prompt (calls, time, successes) from calls charged in shared memory; _ledger_rebuild compares it with processed_tasks after a restart.';
COMMENT ON COLUMN celaest._ledger_folds.subject IS 'The license (licenses.id), key (ai_api_pool.id) or prompt (prompts_master.id).';
COMMENT ON COLUMN celaest._ledger_folds.period_start IS 'A license''s billing period the folded requests belong to; NULL for a key or a prompt.';
COMMENT ON COLUMN celaest._ledger_folds.requests IS 'AI requests folded (a license: in that period; a key: ever; a prompt: its run_prompt calls, ever).';
COMMENT ON COLUMN celaest._ledger_folds.tokens IS 'Tokens folded into a key''s tokens_used (0 for a license or a prompt).';
COMMENT ON COLUMN celaest._ledger_folds.time_ms IS 'A prompt''s folded calls: their execution time in ms, summed (0 for a license or a key).';
COMMENT ON COLUMN celaest._ledger_folds.successes IS 'A prompt''s folded calls that completed (0 for a license or a key).';
-- Bookkeeping of the writer (superuser): no tenant reads it; a super admin may, for support.
ALTER TABLE celaest._ledger_folds ENABLE ROW LEVEL SECURITY;
CREATE POLICY ledger_folds_super_admin ON celaest._ledger_folds FOR SELECT
    USING (celaest._current_user_is_super_admin());

CREATE FUNCTION celaest._ledger_fold() RETURNS bigint
    AS 'MODULE_PATHNAME', 'celaest_ledger_fold'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest._ledger_fold() IS
    'Internal (ledger writer): folds the AI calls'' charges kept in shared memory into licenses.ai_requests_used and ai_api_pool (usage, tokens, last use, health) in the current transaction, skipping rows another transaction has locked; returns the rows folded. The shared counters drop what was folded when the transaction commits.';

CREATE FUNCTION celaest._ledger_drain() RETURNS bigint
    AS 'MODULE_PATHNAME', 'celaest_ledger_drain'
    LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest._ledger_drain() IS
    'Internal (ledger writer): writes the task records of AI calls whose transaction did not commit (the spool in the data directory), each once; returns how many.';

CREATE FUNCTION celaest._ledger_state() RETURNS jsonb
    AS 'MODULE_PATHNAME', 'celaest_ledger_state'
    LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION celaest._ledger_state() IS
    'Internal (ledger): what is pending in this database — charges not yet folded, requests in flight, open consume_quota grants, health events, records in the spool — and whether a ledger writer serves it.';

-- After a restart (shared memory reset): the counters again equal the ledger. For each
-- license, the AI requests of its current period charged through the ledger (tasks marked
-- metadata.ledger = 'shared') minus what the writer had folded for that period is added; for
-- each key, the requests and tokens of every attempt sent with it (tasks marked 'shared' or
-- 'keys'). What was charged otherwise (consume_quota, batch reservations, an unserved
-- database's calls) is in neither figure and stays as it is.
CREATE FUNCTION celaest._ledger_rebuild() RETURNS bigint
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_licenses bigint;
    v_keys     bigint;
    v_prompts  bigint;
BEGIN
    WITH truth AS (
             SELECT t.license_id AS id, count(*) AS n
               FROM celaest.processed_tasks AS t
               JOIN celaest.licenses AS l ON l.id = t.license_id
              WHERE t.batch_id IS NULL AND t.metadata->>'ledger' = 'shared'
                AND t.created_at >= COALESCE(l.current_period_start, '-infinity')
              GROUP BY t.license_id),
         target AS (
             SELECT l.id, l.current_period_start AS period_start, COALESCE(tr.n, 0) AS truth,
                    CASE WHEN f.period_start IS NOT DISTINCT FROM l.current_period_start
                         THEN COALESCE(f.requests, 0) ELSE 0 END AS folded
               FROM celaest.licenses AS l
               LEFT JOIN truth AS tr ON tr.id = l.id
               LEFT JOIN celaest._ledger_folds AS f ON f.subject = l.id
              WHERE tr.id IS NOT NULL OR f.subject IS NOT NULL),
         fixed AS (
             UPDATE celaest.licenses AS l
                SET ai_requests_used = GREATEST(l.ai_requests_used + g.truth - g.folded, 0)
               FROM target AS g
              WHERE l.id = g.id AND g.truth <> g.folded
             RETURNING l.id),
         noted AS (
             INSERT INTO celaest._ledger_folds AS f (subject, period_start, requests, tokens)
             SELECT id, period_start, truth, 0 FROM target
             ON CONFLICT (subject) DO UPDATE SET period_start = EXCLUDED.period_start,
                                                 requests = EXCLUDED.requests)
    SELECT count(*) INTO v_licenses FROM fixed;

    WITH truth AS (
             SELECT (a->>'api_key_id')::uuid AS id, count(*) AS n,
                    sum(COALESCE((a->>'tokens')::bigint, 0)) AS tokens
               FROM celaest.processed_tasks AS t,
                    -- attempts recorded with an answer, and requests a crash interrupted on the wire
                    jsonb_array_elements(CASE WHEN jsonb_typeof(t.metadata->'attempts') = 'array'
                                              THEN t.metadata->'attempts' ELSE '[]' END
                                         || CASE WHEN jsonb_typeof(t.metadata->'interrupted_attempts') = 'array'
                                                 THEN t.metadata->'interrupted_attempts' ELSE '[]' END) AS a
              WHERE t.metadata->>'ledger' IN ('shared', 'keys')
                AND a->>'api_key_id' IS NOT NULL AND a->>'outcome' IS DISTINCT FROM 'blocked_destination'
                AND a->>'sent' IS DISTINCT FROM 'false'   -- nothing went out: not charged
              GROUP BY 1),
         target AS (
             SELECT k.id, COALESCE(tr.n, 0) AS n, COALESCE(tr.tokens, 0) AS tokens,
                    COALESCE(f.requests, 0) AS folded_n, COALESCE(f.tokens, 0) AS folded_tokens
               FROM celaest.ai_api_pool AS k
               LEFT JOIN truth AS tr ON tr.id = k.id
               LEFT JOIN celaest._ledger_folds AS f ON f.subject = k.id
              WHERE tr.id IS NOT NULL OR f.subject IS NOT NULL),
         fixed AS (
             UPDATE celaest.ai_api_pool AS k
                SET usage_count = GREATEST(k.usage_count + g.n - g.folded_n, 0),
                    tokens_used = GREATEST(k.tokens_used + g.tokens - g.folded_tokens, 0)
               FROM target AS g
              WHERE k.id = g.id AND (g.n <> g.folded_n OR g.tokens <> g.folded_tokens)
             RETURNING k.id),
         noted AS (
             INSERT INTO celaest._ledger_folds AS f (subject, period_start, requests, tokens)
             SELECT id, NULL, n, tokens FROM target
             ON CONFLICT (subject) DO UPDATE SET requests = EXCLUDED.requests, tokens = EXCLUDED.tokens)
    SELECT count(*) INTO v_keys FROM fixed;

    -- run_prompt's statistics (usage_count and the running average time and success rate): the
    -- calls marked metadata.prompt_stats = 'shared' that the writer had not folded yet are
    -- added as one fold of them would add them.
    WITH truth AS (
             SELECT t.prompt_id AS id, count(*) AS n, sum(COALESCE(t.execution_time_ms, 0)) AS ms,
                    count(*) FILTER (WHERE t.status = 'completed') AS ok
               FROM celaest.processed_tasks AS t
              WHERE t.metadata->>'prompt_stats' = 'shared' AND t.prompt_id IS NOT NULL
              GROUP BY t.prompt_id),
         target AS (
             SELECT p.id, COALESCE(tr.n, 0) AS n, COALESCE(tr.ms, 0) AS ms, COALESCE(tr.ok, 0) AS ok,
                    COALESCE(f.requests, 0) AS folded_n, COALESCE(f.time_ms, 0) AS folded_ms,
                    COALESCE(f.successes, 0) AS folded_ok
               FROM celaest.prompts_master AS p
               LEFT JOIN truth AS tr ON tr.id = p.id
               LEFT JOIN celaest._ledger_folds AS f ON f.subject = p.id
              WHERE tr.id IS NOT NULL OR f.subject IS NOT NULL),
         fixed AS (
             UPDATE celaest.prompts_master AS p
                SET usage_count = p.usage_count + (g.n - g.folded_n),
                    avg_response_time_ms = ((COALESCE(p.avg_response_time_ms, 0)::numeric * p.usage_count
                                             + GREATEST(g.ms - g.folded_ms, 0)) / (p.usage_count + (g.n - g.folded_n)))::int,
                    success_rate = round((COALESCE(p.success_rate, 0) * p.usage_count
                                          + GREATEST(g.ok - g.folded_ok, 0) * 100) / (p.usage_count + (g.n - g.folded_n)), 2)
               FROM target AS g
              WHERE p.id = g.id AND g.n > g.folded_n
             RETURNING p.id),
         noted AS (
             INSERT INTO celaest._ledger_folds AS f (subject, period_start, requests, tokens, time_ms, successes)
             SELECT id, NULL, n, 0, ms, ok FROM target
             ON CONFLICT (subject) DO UPDATE SET requests = EXCLUDED.requests, time_ms = EXCLUDED.time_ms,
                                                 successes = EXCLUDED.successes)
    SELECT count(*) INTO v_prompts FROM fixed;
    RETURN v_licenses + v_keys + v_prompts;
END;
$$;
COMMENT ON FUNCTION celaest._ledger_rebuild() IS
    'Internal (ledger writer, at its start after a restart): brings licenses.ai_requests_used (current period), ai_api_pool usage_count/tokens_used and prompts_master''s statistics back to what processed_tasks records for the calls charged through the ledger, adding what shared memory lost; returns the rows corrected.';
