-- Batches: submit_batch (native) queues one pending processed_tasks row per input; the
-- batch runner worker claims them (short transaction: status processing + license charge,
-- committed before any provider is called), runs them side by side through libcurl multi
-- (native _run_claimed_tasks), and records them. Tasks left in processing by a runner that
-- died are put back in the queue (at-least-once; nothing is deleted before it has run).

CREATE FUNCTION celaest.submit_batch(p_prompt text, p_inputs jsonb, p_user_id uuid DEFAULT NULL,
                                     p_options jsonb DEFAULT '{}')
    RETURNS uuid
    AS 'MODULE_PATHNAME', 'celaest_submit_batch'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION celaest.submit_batch(text, jsonb, uuid, jsonb) IS
    'Queues a batch: p_inputs is a JSON array of variable objects for the prompt (slug or slug@version); checks max_batch_size and the AI requests left (LC010) and every input''s variables (LC030), creates the task_batches row and one pending task per input, wakes the batch runner and returns the batch id. Options as run_prompt, plus name and priority.';

-- Who may see, wait for or cancel a batch: module 84's _batch_access (defined later; plpgsql
-- resolves it when called). Others get "does not exist": a batch id of another organization
-- reveals nothing.
CREATE FUNCTION celaest.batch_status(p_batch_id uuid) RETURNS jsonb
    LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_batch  celaest.task_batches;
    v_counts record;
    v_done   bigint;
    v_eta    numeric;
BEGIN
    SELECT * INTO v_batch FROM celaest.task_batches WHERE id = p_batch_id;
    IF NOT FOUND OR NOT celaest._batch_access(v_batch.organization_id, v_batch.user_id, 'read') THEN
        RAISE EXCEPTION 'batch % does not exist', p_batch_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT count(*) AS total,
           count(*) FILTER (WHERE status = 'pending')    AS pending,
           count(*) FILTER (WHERE status IN ('processing', 'retrying')) AS processing,
           count(*) FILTER (WHERE status = 'completed')  AS completed,
           count(*) FILTER (WHERE status = 'failed')     AS failed,
           count(*) FILTER (WHERE status = 'cancelled')  AS cancelled,
           min(started_at) AS first_start, max(completed_at) AS last_end
      INTO v_counts
      FROM celaest.processed_tasks WHERE batch_id = p_batch_id;
    v_done := v_counts.completed + v_counts.failed + v_counts.cancelled;
    -- Remaining work at the pace observed so far (wall clock since the first task started).
    IF v_done > 0 AND v_counts.pending + v_counts.processing > 0 AND v_counts.first_start IS NOT NULL THEN
        v_eta := round(extract(epoch FROM (clock_timestamp() - v_counts.first_start)) / v_done
                       * (v_counts.pending + v_counts.processing), 1);
    ELSIF v_counts.pending + v_counts.processing = 0 THEN
        v_eta := 0;
    END IF;
    RETURN jsonb_build_object(
        'batch_id', p_batch_id, 'status', v_batch.status, 'total', v_counts.total,
        'pending', v_counts.pending, 'processing', v_counts.processing,
        'completed', v_counts.completed, 'failed', v_counts.failed, 'cancelled', v_counts.cancelled,
        'progress', CASE WHEN v_counts.total = 0 THEN 1 ELSE round(v_done::numeric / v_counts.total, 4) END,
        'eta_seconds', v_eta,
        'started_at', v_batch.started_at, 'completed_at', v_batch.completed_at);
END;
$$;
COMMENT ON FUNCTION celaest.batch_status(uuid) IS
    'Progress of a batch: {status, total, pending, processing, completed, failed, cancelled, progress (0..1), eta_seconds (NULL until a task has finished)}. A batch of another organization does not exist for the caller (P0002).';

CREATE FUNCTION celaest.wait_batch(p_batch_id uuid, p_timeout interval DEFAULT '5 minutes') RETURNS jsonb
    LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'celaest_wait_batch';
COMMENT ON FUNCTION celaest.wait_batch(uuid, interval) IS
    'Blocks (cancellable) until the batch ends or the timeout passes; returns batch_status(). Sleeps until a transaction ending a batch commits (a condition variable; without shared_preload_libraries, a poll).';

-- The end of a batch wakes its wait_batch() callers when the ending transaction commits.
CREATE FUNCTION celaest._announce_batch_end() RETURNS trigger
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    AS 'MODULE_PATHNAME', 'celaest_announce_batch_end';
COMMENT ON FUNCTION celaest._announce_batch_end() IS
    'Trigger: wakes wait_batch() callers when the transaction that ended a batch commits.';
CREATE TRIGGER task_batches_announce_end
    AFTER UPDATE OF status ON celaest.task_batches
    FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION celaest._announce_batch_end();

CREATE FUNCTION celaest.cancel_batch(p_batch_id uuid) RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_org       uuid;
    v_owner     uuid;
    v_cancelled integer;
    v_queued    uuid[];
BEGIN
    SELECT organization_id, user_id INTO v_org, v_owner FROM celaest.task_batches WHERE id = p_batch_id;
    IF NOT FOUND OR NOT celaest._batch_access(v_org, v_owner, 'read') THEN
        RAISE EXCEPTION 'batch % does not exist', p_batch_id USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT celaest._batch_access(v_org, v_owner, 'cancel') THEN
        RAISE EXCEPTION 'permission denied for function cancel_batch: batch % is not yours to cancel', p_batch_id
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'An operator cancels its own batches; managers and admins their organization''s.';
    END IF;
    -- Every task still queued or in flight is cancelled; the batch runner notices the batch's
    -- status within ~100 ms and aborts the transfers of its tasks (a task that never reached
    -- a provider gives its AI request back; one on the wire stays charged). A task whose
    -- answer is recorded first stays completed. Locks are taken in the runner's order (tasks,
    -- then the batch row) and waited for, never skipped: a task the runner is claiming this
    -- instant is re-checked once its claim commits, and none is left behind.
    -- The queued ones never reached a provider: the AI requests submit_batch reserved for them
    -- go back in this transaction (an in-flight task's is the runner's to give back, if its
    -- call had not left yet).
    WITH cancelled AS (
        UPDATE celaest.processed_tasks
           SET status = 'cancelled', completed_at = clock_timestamp(),
               error_code = 'cancelled',
               error_message = CASE status WHEN 'pending' THEN 'cancelled by cancel_batch()'
                               ELSE 'cancelled by cancel_batch() while its provider call was in flight' END
         WHERE batch_id = p_batch_id AND status IN ('pending', 'processing', 'retrying')
        RETURNING license_id, error_message = 'cancelled by cancel_batch()' AS was_queued,
                  metadata ->> 'interrupted' = 'true' AS interrupted)
    -- A queued task put back after a crash may have been sent before it: its unit stays.
    SELECT count(*), array_agg(license_id) FILTER (WHERE was_queued AND interrupted IS NOT TRUE)
      INTO v_cancelled, v_queued FROM cancelled;
    PERFORM celaest._return_batch_reservations(v_queued);
    UPDATE celaest.task_batches
       SET status = 'cancelled', completed_at = coalesce(completed_at, clock_timestamp())
     WHERE id = p_batch_id AND status NOT IN ('completed', 'failed', 'cancelled');
    RETURN v_cancelled;
END;
$$;
COMMENT ON FUNCTION celaest.cancel_batch(uuid) IS
    'Cancels every task of the batch still queued or in flight (the batch runner aborts their transfers; an answer already recorded is kept) and marks the batch cancelled; returns how many tasks were cancelled. A batch of another organization does not exist for the caller (P0002); one the caller may see but not cancel (an operator''s batch for another operator, a viewer, readonly) is 42501.';

-- Batch counters and status from its tasks. Internal.
CREATE FUNCTION celaest._refresh_batch(p_batch_id uuid) RETURNS void
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
    UPDATE celaest.task_batches b
       SET completed_tasks = c.completed, failed_tasks = c.failed,
           started_at = coalesce(b.started_at, c.first_start),
           status = CASE WHEN b.status = 'cancelled' THEN b.status
                         WHEN c.open > 0 THEN 'processing'::celaest.task_status
                         WHEN c.completed = 0 AND c.failed > 0 THEN 'failed'::celaest.task_status
                         ELSE 'completed'::celaest.task_status END,
           completed_at = CASE WHEN c.open = 0 THEN coalesce(b.completed_at, clock_timestamp()) END
      FROM (SELECT count(*) FILTER (WHERE status = 'completed') AS completed,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status IN ('pending', 'processing', 'retrying')) AS open,
                   min(started_at) AS first_start
              FROM celaest.processed_tasks WHERE batch_id = p_batch_id) c
     WHERE b.id = p_batch_id;
$$;
COMMENT ON FUNCTION celaest._refresh_batch(uuid) IS
    'Internal: recomputes a batch''s counters and status from its tasks.';
REVOKE EXECUTE ON FUNCTION celaest._refresh_batch(uuid) FROM PUBLIC;

-- A batch task's AI request was reserved by submit_batch; one that never reached a provider
-- (cancelled while queued, failed before its call, no usable key) gives it back, here, in the
-- transaction that ends the task: the task's end and the return commit together, so each
-- unit goes back exactly once. One element per unit (a license id may repeat); one UPDATE
-- and one license_usage_log row (metadata.event = batch_release) per license.
CREATE FUNCTION celaest._return_batch_reservations(p_license_ids uuid[]) RETURNS bigint
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH units AS (
        SELECT u.license_id, count(*) AS n
          FROM unnest(p_license_ids) AS u(license_id)
         WHERE u.license_id IS NOT NULL
         GROUP BY u.license_id),
    returned AS (
        UPDATE celaest.licenses AS l
           SET ai_requests_used = greatest(l.ai_requests_used - u.n, 0)
          FROM units u WHERE l.id = u.license_id
        RETURNING l.id, l.organization_id, u.n, l.current_period_start, l.current_period_end),
    logged AS (
        INSERT INTO celaest.license_usage_log
            (id, license_id, organization_id, metric, quantity, period_start, period_end, metadata)
        SELECT gen_random_uuid(), r.id, r.organization_id, 'ai_requests', r.n, r.current_period_start,
               r.current_period_end, '{"event": "batch_release"}'
          FROM returned r
        RETURNING quantity)
    SELECT coalesce(sum(quantity), 0)::bigint FROM logged;
$$;
COMMENT ON FUNCTION celaest._return_batch_reservations(uuid[]) IS
    'Internal (batch runner, cancel_batch): gives back the AI requests submit_batch reserved for batch tasks that never reached a provider, one unit per array element (a license id may repeat), with one license_usage_log row (event batch_release) per license; returns the units given back.';
REVOKE EXECUTE ON FUNCTION celaest._return_batch_reservations(uuid[]) FROM PUBLIC;

-- Claims up to p_limit pending batch tasks for this backend, set-based: per batch (highest
-- priority, oldest first) one UPDATE of many tasks (FOR UPDATE SKIP LOCKED), in the order of
-- the batch's inputs. Their AI requests were reserved by submit_batch, so the claim charges
-- nothing. max_concurrent_tasks is counted once per organization and claim (_reserve_counted:
-- the license must be usable, and its per-organization lock is held to the end of this
-- transaction, so no other admission counts meanwhile); the claiming UPDATE sets
-- celaest.batch_claim so that the per-row trigger does not count again. Tasks of an
-- organization at its limit stay queued and are passed over; those of an organization whose
-- license is no longer usable fail (license_unusable) and give their reservations back.
-- The worker commits this before calling.
CREATE FUNCTION celaest._claim_batch_tasks(p_limit integer) RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_batch   record;
    v_claimed integer := 0;
    v_orgs    uuid[] := '{}';     -- organizations looked at in this claim ...
    v_rooms   bigint[] := '{}';   -- ... and what each may still start (-1: no limit)
    v_at      integer;
    v_room    bigint;
    v_take    integer;
    v_n       integer;
    v_failed  record;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RETURN 0;
    END IF;
    FOR v_batch IN
        SELECT b.id, b.organization_id
          FROM celaest.task_batches b
         WHERE b.status IN ('pending', 'processing')
         ORDER BY b.priority DESC, b.created_at, b.id
    LOOP
        v_at := array_position(v_orgs, v_batch.organization_id);
        IF v_at IS NULL THEN
            BEGIN
                -- LC001-LC004 for an unusable license; the room left (or -1), counted once.
                v_room := celaest._reserve_counted(v_batch.organization_id, 'max_concurrent_tasks', 0, true);
            EXCEPTION WHEN SQLSTATE 'LC010' THEN
                v_room := 0;          -- already over (its limit was lowered)
            WHEN SQLSTATE 'LC001' OR SQLSTATE 'LC002' OR SQLSTATE 'LC003' OR SQLSTATE 'LC004' THEN
                -- Nothing of this organization can start: its queued tasks fail, and the AI
                -- requests submit_batch reserved for them go back.
                WITH failed AS (
                    UPDATE celaest.processed_tasks t
                       SET status = 'failed', completed_at = clock_timestamp(),
                           error_code = 'license_unusable', error_message = SQLERRM
                     WHERE t.organization_id = v_batch.organization_id AND t.status = 'pending'
                       AND t.batch_id IN (SELECT b.id FROM celaest.task_batches b
                                           WHERE b.organization_id = v_batch.organization_id
                                             AND b.status IN ('pending', 'processing'))
                    RETURNING t.license_id, t.batch_id, t.metadata ->> 'interrupted' = 'true' AS interrupted)
                SELECT array_agg(DISTINCT f.batch_id) AS batches,
                       array_agg(f.license_id) FILTER (WHERE f.interrupted IS NOT TRUE) AS licenses
                  INTO v_failed FROM failed f;
                PERFORM celaest._return_batch_reservations(v_failed.licenses);
                PERFORM celaest._refresh_batch(b) FROM unnest(v_failed.batches) AS b;
                v_room := 0;
            END;
            v_orgs := v_orgs || v_batch.organization_id;
            v_rooms := v_rooms || v_room;
            v_at := cardinality(v_orgs);
        END IF;
        v_room := v_rooms[v_at];
        CONTINUE WHEN v_room = 0;
        v_take := CASE WHEN v_room < 0 THEN p_limit - v_claimed ELSE least(v_room, p_limit - v_claimed) END;
        PERFORM set_config('celaest.batch_claim', 'on', true);
        WITH picked AS (
            SELECT t.id FROM celaest.processed_tasks t
             WHERE t.batch_id = v_batch.id AND t.status = 'pending'
             LIMIT v_take
               FOR UPDATE SKIP LOCKED)
        UPDATE celaest.processed_tasks t
           SET status = 'processing', started_at = clock_timestamp(),
               queue_time_ms = (extract(epoch FROM clock_timestamp() - t.created_at) * 1000)::int,
               metadata = t.metadata || jsonb_build_object('claimed_by', pg_backend_pid())
          FROM picked WHERE t.id = picked.id;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        PERFORM set_config('celaest.batch_claim', 'off', true);
        IF v_n > 0 THEN
            v_claimed := v_claimed + v_n;
            IF v_room > 0 THEN
                v_rooms[v_at] := v_room - v_n;
            END IF;
            UPDATE celaest.task_batches SET status = 'processing', started_at = coalesce(started_at, clock_timestamp())
             WHERE id = v_batch.id AND status = 'pending';
        END IF;
        EXIT WHEN v_claimed >= p_limit;
    END LOOP;
    RETURN v_claimed;
END;
$$;
COMMENT ON FUNCTION celaest._claim_batch_tasks(integer) IS
    'Internal (batch runner): claims up to p_limit pending tasks for this backend, a batch''s tasks in one UPDATE; charges nothing (submit_batch reserved their AI requests). Tasks of organizations at max_concurrent_tasks stay queued and are passed over; those of an organization whose license is unusable fail and give their reservations back.';
REVOKE EXECUTE ON FUNCTION celaest._claim_batch_tasks(integer) FROM PUBLIC;

CREATE FUNCTION celaest._run_claimed_tasks(p_parallel integer) RETURNS integer
    AS 'MODULE_PATHNAME', 'celaest_run_claimed_tasks'
    LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION celaest._run_claimed_tasks(integer) IS
    'Internal (batch runner): runs the tasks this backend claimed, at most p_parallel transfers at once, and records them.';
REVOKE EXECUTE ON FUNCTION celaest._run_claimed_tasks(integer) FROM PUBLIC;

-- Requests of batch tasks on the wire (README "Exactly once after a crash"): the batch runner
-- notes each request's key here in the transaction that picks it, before the request leaves. A
-- note matters only if its runner dies with the request out: the orphan recovery then counts the
-- request in the key's usage. That recovery pass (once a second) also clears the notes of tasks
-- that have ended. Narrow and without indexes: one multi-row INSERT per runner transaction, and
-- it holds about as many rows as there are requests in flight.
CREATE TABLE celaest._batch_on_wire (
    task_id    uuid        NOT NULL,
    api_key_id uuid        NOT NULL,
    model      text        NOT NULL,
    noted_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE celaest._batch_on_wire IS
    'Internal (batch runner): a request of a batch task about to leave with a key; read by the orphan recovery after a crash, cleared once its task has ended.';
COMMENT ON COLUMN celaest._batch_on_wire.task_id IS 'The batch task (processed_tasks.id).';
COMMENT ON COLUMN celaest._batch_on_wire.api_key_id IS 'The key the request carries (ai_api_pool.id).';
COMMENT ON COLUMN celaest._batch_on_wire.model IS 'The provider''s model name of the request.';
COMMENT ON COLUMN celaest._batch_on_wire.noted_at IS 'When the runner picked the request.';
-- Bookkeeping of the runner (superuser): no tenant reads it; a super admin may, for support.
ALTER TABLE celaest._batch_on_wire ENABLE ROW LEVEL SECURITY;
CREATE POLICY batch_on_wire_super_admin ON celaest._batch_on_wire FOR SELECT
    USING (celaest._current_user_is_super_admin());

-- Exactly once (API.md "submit_batch"): a task a runner claimed is in processing until the pass
-- that claimed it records its result. If that runner is gone (killed, crashed, immediate
-- shutdown), the provider call may already have been sent and paid for: the task is marked
-- interrupted, and it is sent again only when celaest.retry_after_crash is on; otherwise it ends
-- failed with error_code 'interrupted'. Either way it was charged once, by its claim.
CREATE FUNCTION celaest._recover_orphaned_tasks() RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_retry   boolean := coalesce(current_setting('celaest.retry_after_crash', true), 'off')::boolean;
    -- A request that was on the wire (a note in _batch_on_wire, written before it left) was sent
    -- with its key, and counts once in the key's usage. That count is folded here, as the ledger
    -- writer folds (the row and _ledger_folds in this transaction), and recorded on the task as
    -- an interrupted attempt, which a later rebuild counts. Only once the writer has rebuilt the
    -- counters after a restart ("served"): a rebuild still to come would count it again. Until
    -- then such orphans wait (the runner looks every second).
    v_served  boolean := coalesce((celaest._ledger_state() ->> 'served')::boolean, false);
    v_batches uuid[];
    v_count   integer;
BEGIN
    WITH orphans AS (
        SELECT t.id,
               (SELECT jsonb_agg(jsonb_build_object('api_key_id', w.api_key_id, 'model', w.model) ORDER BY w.noted_at)
                  FROM celaest._batch_on_wire AS w WHERE w.task_id = t.id) AS on_wire
          FROM celaest.processed_tasks t
         WHERE status = 'processing' AND batch_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                            WHERE a.pid = (t.metadata ->> 'claimed_by')::int)
           AND (v_served OR NOT EXISTS (SELECT 1 FROM celaest._batch_on_wire AS w WHERE w.task_id = t.id))
           FOR UPDATE OF t SKIP LOCKED),
    recovered AS (
        UPDATE celaest.processed_tasks t
           SET status = CASE WHEN v_retry THEN 'pending' ELSE 'failed' END::celaest.task_status,
               started_at = CASE WHEN v_retry THEN NULL ELSE t.started_at END,
               completed_at = CASE WHEN v_retry THEN NULL ELSE clock_timestamp() END,
               error_code = CASE WHEN v_retry THEN NULL ELSE 'interrupted' END,
               error_message = CASE WHEN v_retry THEN NULL ELSE
                   'the batch runner stopped while this task''s provider call may have been sent; not sent again '
                   '(celaest.retry_after_crash = off)' END,
               api_key_id = COALESCE(t.api_key_id, (o.on_wire -> -1 ->> 'api_key_id')::uuid),
               metadata = (t.metadata - 'claimed_by') || '{"interrupted": true}'
                          || CASE WHEN o.on_wire IS NULL THEN '{}'::jsonb ELSE jsonb_build_object(
                                 'interrupted_attempts', COALESCE(t.metadata -> 'interrupted_attempts', '[]'::jsonb)
                                     || (SELECT jsonb_agg(w || '{"outcome": "interrupted", "tokens": 0}'::jsonb)
                                           FROM jsonb_array_elements(o.on_wire) AS w),
                                 'ledger', COALESCE(t.metadata ->> 'ledger', 'keys')) END
          FROM orphans o WHERE t.id = o.id
        RETURNING t.id, t.batch_id, o.on_wire),
    sent AS (
        SELECT (w ->> 'api_key_id')::uuid AS key_id, count(*) AS requests
          FROM recovered AS r, jsonb_array_elements(r.on_wire) AS w
         WHERE r.on_wire IS NOT NULL
         GROUP BY 1),
    counted AS (
        UPDATE celaest.ai_api_pool AS k
           SET usage_count = k.usage_count + s.requests, last_used_at = GREATEST(k.last_used_at, now())
          FROM sent AS s WHERE k.id = s.key_id
        RETURNING k.id),
    folded AS (
        INSERT INTO celaest._ledger_folds AS f (subject, period_start, requests, tokens)
        SELECT key_id, NULL, requests, 0 FROM sent
        ON CONFLICT (subject) DO UPDATE SET requests = f.requests + EXCLUDED.requests
        RETURNING f.subject),
    cleared AS (
        DELETE FROM celaest._batch_on_wire AS w USING recovered AS r WHERE w.task_id = r.id
        RETURNING 1)
    SELECT array_agg(DISTINCT batch_id), count(*) INTO v_batches, v_count FROM recovered;
    PERFORM celaest._refresh_batch(b) FROM unnest(v_batches) AS b;
    -- The notes of tasks that have ended (answered, cancelled, failed) are of no more use.
    DELETE FROM celaest._batch_on_wire AS w
     WHERE NOT EXISTS (SELECT 1 FROM celaest.processed_tasks AS t
                        WHERE t.id = w.task_id AND t.status = 'processing');
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION celaest._recover_orphaned_tasks() IS
    'Internal (batch runner): tasks held in processing by a runner that is gone are marked interrupted, and fail with error_code interrupted unless celaest.retry_after_crash is on (then they are sent again, not charged again); a request that was on the wire is recorded as an interrupted attempt and counted once in its key''s usage.';
REVOKE EXECUTE ON FUNCTION celaest._recover_orphaned_tasks() FROM PUBLIC;

CREATE FUNCTION celaest._run_pending_tasks(p_parallel integer DEFAULT 4) RETURNS integer
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One call, one transaction: for running the queue by hand (tests, no worker). The
    -- background worker runs the two steps in separate transactions instead.
    PERFORM celaest._claim_batch_tasks(p_parallel);
    RETURN celaest._run_claimed_tasks(p_parallel);
END;
$$;
COMMENT ON FUNCTION celaest._run_pending_tasks(integer) IS
    'Claims and runs up to p_parallel pending batch tasks in this session (the batch runner does the same in the background).';
REVOKE EXECUTE ON FUNCTION celaest._run_pending_tasks(integer) FROM PUBLIC;
