"""submit_batch's reservation (issue 12 §3, API.md submit_batch): one AI request per input,
reserved at once when the batch is submitted, counted by every admission while submit_batch's
transaction is still open, never overrun by concurrent submits at the quota's edge, and given
back, exactly once, by every task that never reached a provider. The books agree afterwards:
what the provider received, what processed_tasks says was sent, the key's and the license's
counters.

Runs in the database the batch runner serves (batch_env), against the strict mock provider.
"""
import json
import socket
import threading
import time

import psycopg2
import pytest

from batch_env import as_json, connect, env, rows, scalar, tag, words  # noqa: F401 (env: a fixture)

FOLD_WAIT_S = 5.0


def log_rows(env, org, event):
    """license_usage_log rows of the organization's batch reservations or releases."""
    return rows(env.admin,
                "SELECT quantity, metadata FROM celaest.license_usage_log"
                " WHERE organization_id = %s AND metadata->>'event' = %s ORDER BY created_at",
                (org["org_id"], event))


def wait_for(predicate, what, timeout=FOLD_WAIT_S):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, what()
        time.sleep(0.05)


def test_concurrent_submits_at_the_quota_edge_never_overrun_it(env):
    # Quota 10, eight sessions submitting 3 inputs each at the same instant: exactly three
    # batches fit (9 requests); every other submit is refused (LC010) and reserves nothing.
    # max_concurrent_tasks 0 keeps the tasks queued, so the counter holds reservations only.
    org = env.org(max_concurrent_tasks=0, max_ai_requests=10)
    sessions = 8
    start = threading.Barrier(sessions)
    accepted, refused, errors = [], [], []

    def submit(i):
        conn = connect()
        try:
            start.wait()
            accepted.append(env.submit(org, words(tag(), 3), conn=conn))
        except psycopg2.Error as error:
            (refused if error.pgcode == "LC010" else errors).append(error)
        finally:
            conn.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert (len(accepted), len(refused)) == (3, 5), (accepted, refused)
    assert env.ai_requests_used(org) == 9
    # One reservation row per accepted batch, each for its inputs.
    reserved = log_rows(env, org, "batch_reserve")
    assert sorted(r["quantity"] for r in reserved) == [3, 3, 3]
    assert {as_json(r["metadata"])["batch_id"] for r in reserved} == set(accepted)
    # The queued tasks never reach a provider: cancelled, they give every unit back.
    for batch_id in accepted:
        assert scalar(env.admin, "SELECT celaest.cancel_batch(%s)", (batch_id,)) == 3
    assert env.ai_requests_used(org) == 0


def test_an_open_submit_batch_is_counted_by_every_admission(env):
    # The reservation is published while submit_batch's transaction is open: another session's
    # check_limit sees it, its AI call is refused at once (the quota gate), and its consume_quota
    # waits for the open reservation and is refused when it commits. The submitting session
    # itself counts its reservation once.
    org = env.org(max_concurrent_tasks=0, max_ai_requests=5)
    submitter = connect()
    submitter.autocommit = False
    other = connect()
    try:
        batch_id = env.submit(org, words(tag(), 5), conn=submitter)   # open, not committed
        own = as_json(scalar(submitter, "SELECT celaest.check_limit(%s, 'ai_requests', 1)", (org["org_id"],)))
        assert (own["allowed"], own["used"]) == (False, 5), own
        seen = as_json(scalar(other, "SELECT celaest.check_limit(%s, 'ai_requests', 1)", (org["org_id"],)))
        assert (seen["allowed"], seen["used"]) == (False, 5), seen
        scalar(other, "SET statement_timeout = '3s'")
        scalar(other, "SELECT set_config('celaest.user_id', %s, false)", (org["user_id"],))
        with pytest.raises(psycopg2.Error) as refused:
            scalar(other, "SELECT celaest.ai_chat(%s::jsonb, %s, NULL, '{}'::jsonb)",
                   (json.dumps([{"role": "user", "content": "over the edge " + tag()}]), env.model_id))
        assert refused.value.pgcode == "LC010", refused.value
        scalar(other, "SET statement_timeout = 0")

        outcome = {}

        def consume():
            conn = connect()
            try:
                outcome["remaining"] = scalar(conn, "SELECT celaest.consume_quota(%s, 'ai_requests', 1)",
                                              (org["org_id"],))
            except psycopg2.Error as error:
                outcome["error"] = error.pgcode
            finally:
                conn.close()

        waiter = threading.Thread(target=consume)
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive(), outcome  # waits on the open reservation's row lock
        submitter.commit()
        waiter.join(10)
        assert outcome == {"error": "LC010"}, outcome
        assert env.ai_requests_used(org) == 5
    finally:
        submitter.rollback()
        submitter.close()
        other.close()
    assert scalar(env.admin, "SELECT celaest.cancel_batch(%s)", (batch_id,)) == 5
    assert env.ai_requests_used(org) == 0


def test_a_rolled_back_submit_reserves_nothing(env):
    org = env.org(max_concurrent_tasks=0, max_ai_requests=4)
    conn = connect()
    conn.autocommit = False
    try:
        env.submit(org, words(tag(), 4), conn=conn)
        conn.rollback()
    finally:
        conn.close()
    assert env.ai_requests_used(org) == 0
    assert as_json(scalar(env.admin, "SELECT celaest.check_limit(%s, 'ai_requests', 4)",
                          (org["org_id"],)))["allowed"] is True
    assert log_rows(env, org, "batch_reserve") == []


def test_tasks_that_never_reach_a_provider_give_their_unit_back_exactly_once(env):
    # Queued tasks cancelled: their units go back with the cancel, once (a second cancel_batch
    # returns nothing more). Tasks whose model went away before they ran: they fail without a
    # call and give theirs back.
    org = env.org(max_concurrent_tasks=0)
    queued = env.submit(org, words(tag(), 4))
    assert env.ai_requests_used(org) == 4
    assert scalar(env.admin, "SELECT celaest.cancel_batch(%s)", (queued,)) == 4
    assert env.ai_requests_used(org) == 0
    assert scalar(env.admin, "SELECT celaest.cancel_batch(%s)", (queued,)) == 0
    assert env.ai_requests_used(org) == 0
    assert [r["quantity"] for r in log_rows(env, org, "batch_release")] == [4]

    other_model = "br-model-" + tag()
    model_uuid = scalar(env.admin, "INSERT INTO celaest.ai_models (provider, model_id, display_name)"
                                   " VALUES ('openai', %s, %s) RETURNING id", (other_model, other_model))
    routed = env.org()
    conn = connect()
    conn.autocommit = False
    try:
        doomed = env.submit(routed, words(tag(), 3), conn=conn, options={"model": other_model})
        scalar(conn, "UPDATE celaest.ai_models SET is_active = false WHERE id = %s", (model_uuid,))
        conn.commit()
    finally:
        conn.close()
    final = env.wait(doomed)
    assert (final["status"], final["failed"]) == ("failed", 3), final
    assert env.ai_requests_used(routed) == 0
    assert sum(r["quantity"] for r in log_rows(env, routed, "batch_release")) == 3


def test_tasks_whose_every_connection_was_refused_give_their_unit_back(env):
    # API.md: one unit per call that reached a provider. A key whose base URL nothing listens on:
    # the tasks fail connection_failed, their attempts are marked not sent, their units go back.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s RETURNING 1", (env.key_id,))
    dead = env.add_key("openai", "br-refused-" + tag(), "sk-good-refused-0123456789abcdef",
                       {"base_url": "http://127.0.0.1:%d/openai/v1" % port, "priority": 100000})
    try:
        org = env.org()
        batch_id = env.submit(org, words(tag(), 2))
        final = env.wait(batch_id)
        assert (final["status"], final["failed"]) == ("failed", 2), final
        tasks = env.tasks(batch_id)
        assert {tk["error_code"] for tk in tasks} == {"connection_failed"}, tasks
        assert all(a.get("sent") is False for tk in tasks for a in tk["metadata"]["attempts"]), tasks
        assert env.ai_requests_used(org) == 0
        assert sum(r["quantity"] for r in log_rows(env, org, "batch_release")) == 2
    finally:
        scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s RETURNING 1", (dead,))
        scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = true WHERE id = %s RETURNING 1", (env.key_id,))


def test_the_books_agree_after_batches_with_mixed_outcomes(env):
    # Successes and a provider error after retries (sent, so charged), then a batch cancelled
    # while queued: the provider's own record, the tasks' attempts, the key's counter and the
    # license's counter agree, and the reservations are the calls plus what was given back.
    org = env.org()
    t = tag()
    inputs = words(t, 5)
    inputs[1] = {"word": "%s-boom [[mock:500]]" % t}
    key_uses = lambda: scalar(env.admin, "SELECT usage_count FROM celaest.ai_api_pool WHERE id = %s",
                              (env.key_id,))
    key_before = key_uses()
    ran = env.submit(org, inputs)
    final = env.wait(ran)
    assert (final["completed"], final["failed"]) == (4, 1), final
    scalar(env.admin, "UPDATE celaest.licenses SET custom_limits = '{\"max_concurrent_tasks\": 0}'"
                      " WHERE id = %s", (org["license_id"],))
    queued = env.submit(org, words(t + "q", 2))
    assert scalar(env.admin, "SELECT celaest.cancel_batch(%s)", (queued,)) == 2

    tasks = env.tasks(ran) + env.tasks(queued)
    attempts = [a for tk in tasks for a in as_json(tk["metadata"]).get("attempts", [])]
    received = env.mock.chat_requests_containing(t)
    assert len(received) == len(attempts) >= 5, (received, attempts)
    assert {a["api_key_id"] for a in attempts} == {str(env.key_id)}
    wait_for(lambda: key_uses() - key_before == len(attempts),
             lambda: "key usage %s, attempts %d" % (key_uses() - key_before, len(attempts)))
    reached = [tk for tk in tasks if as_json(tk["metadata"]).get("attempts")]
    assert env.ai_requests_used(org) == len(reached) == 5
    reserved = sum(r["quantity"] for r in log_rows(env, org, "batch_reserve"))
    returned = sum(r["quantity"] for r in log_rows(env, org, "batch_release"))
    assert (reserved, returned) == (7, 2)


def test_queued_tasks_of_a_license_no_longer_usable_fail_and_give_their_units_back(env):
    # The claim checks the license once per organization: suspended while its tasks wait, they
    # fail (license_unusable) in one statement and their reservations go back.
    org = env.org(max_concurrent_tasks=0)
    batch_id = env.submit(org, words(tag(), 3))
    assert env.ai_requests_used(org) == 3
    scalar(env.admin, "UPDATE celaest.licenses SET status = 'suspended' WHERE id = %s", (org["license_id"],))
    final = env.wait(batch_id, timeout="10 seconds")
    assert (final["status"], final["failed"]) == ("failed", 3), final
    assert {tk["error_code"] for tk in env.tasks(batch_id)} == {"license_unusable"}
    assert env.ai_requests_used(org) == 0
    assert [r["quantity"] for r in log_rows(env, org, "batch_release")] == [3]


def test_a_queued_task_put_back_after_a_crash_keeps_its_unit_when_cancelled(env):
    # With retry_after_crash on, recovery puts a task whose call may have been sent back in the
    # queue, marked interrupted: it was possibly billed, so cancelling it gives nothing back.
    org = env.org(max_concurrent_tasks=0)
    batch_id = env.submit(org, words(tag(), 2))
    scalar(env.admin, "UPDATE celaest.processed_tasks SET metadata = metadata || '{\"interrupted\": true}'"
                      " WHERE batch_id = %s AND (input_metadata->>'index')::int = 0", (batch_id,))
    assert scalar(env.admin, "SELECT celaest.cancel_batch(%s)", (batch_id,)) == 2
    assert env.ai_requests_used(org) == 1
    assert [r["quantity"] for r in log_rows(env, org, "batch_release")] == [1]


def test_tasks_ended_by_a_failed_runner_transaction_give_back_only_unsent_units_once(env):
    # A runner transaction that fails as a whole ends every task the runner holds failed
    # (runner_error). API.md: one unit per call that reached a provider, so the task waiting for
    # room in its key's window (never sent) gives its unit back, once; the one whose answer the
    # failed transaction was recording keeps its unit. The failure: a trigger refusing to mark
    # this organization's tasks completed. A provider no other batch test uses, with one key
    # allowing one request a minute.
    t = tag()
    model, model_uuid, key_id = env.paced_deepseek_key("br-paced-key-" + t, rpm=1)
    org = env.org()
    trigger_function = "public.br_refuse_completion_" + t
    with env.admin.cursor() as cur:
        cur.execute("CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS"
                    " $$BEGIN RAISE EXCEPTION 'test: completion refused'; END$$" % trigger_function)
        cur.execute("CREATE TRIGGER br_refuse_completion_%s BEFORE UPDATE ON celaest.processed_tasks"
                    " FOR EACH ROW WHEN (NEW.status = 'completed' AND NEW.organization_id = '%s')"
                    " EXECUTE FUNCTION %s()" % (t, org["org_id"], trigger_function))
    try:
        batch_id = env.submit(org, words(t, 2), options={"model": model})
        # Both units reserved (read from the log: the runner may already have given one back).
        assert [r["quantity"] for r in log_rows(env, org, "batch_reserve")] == [2]
        final = env.wait(batch_id)
        assert (final["status"], final["failed"]) == ("failed", 2), final
        tasks = env.tasks(batch_id)
        assert {tk["error_code"] for tk in tasks} == {"runner_error"}, tasks
        assert len(env.mock.chat_requests_containing(t, provider="deepseek")) == 1
        assert env.ai_requests_used(org) == 1
        assert [r["quantity"] for r in log_rows(env, org, "batch_release")] == [1]
        time.sleep(1.5)  # the recovery pass and the runner's next rounds give nothing more back
        assert env.ai_requests_used(org) == 1
        assert [r["quantity"] for r in log_rows(env, org, "batch_release")] == [1]
    finally:
        with env.admin.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS br_refuse_completion_%s ON celaest.processed_tasks" % t)
            cur.execute("DROP FUNCTION IF EXISTS %s()" % trigger_function)
        scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s RETURNING 1", (key_id,))
        scalar(env.admin, "UPDATE celaest.ai_models SET is_active = false WHERE id = %s RETURNING 1", (model_uuid,))
