"""The ledger (API.md "The ledger", README "The ledger"): every AI call that reached a provider
is recorded in processed_tasks and charged once to its license and keys, whatever its caller's
transaction does — commit, rollback, an error later on, a cancel or a terminate after the
answer, a rolled-back savepoint — and no call waits for another caller's transaction.

Runs in `postgres`, the database the launcher serves in the test cluster (its ledger writer
folds the charges into the rows and writes the records of transactions that did not commit).
Each test has its own organization, license and key, so the figures are exact.
"""
import json
import threading
import time
import uuid

import psycopg2
import pytest

from batch_env import BatchEnv, as_json, connect, rows, scalar, tag

# How long the writer may take to fold a charge or write a record handed on (API.md: within
# 1 s of the transaction's end), with room for a loaded test machine.
SETTLE_S = 5.0


@pytest.fixture(scope="module")
def env(mock_server):
    environment = BatchEnv(mock_server)
    environment.setup()
    deadline = time.time() + 30
    while not as_json(scalar(environment.admin, "SELECT celaest._ledger_state()"))["served"]:
        # The writer rebuilds the counters once at its start; calls charge the ledger after that.
        assert time.time() < deadline, "no ledger writer serves %s" % environment.admin.dsn
        time.sleep(0.1)
    yield environment
    environment.teardown()


class Tenant:
    """An organization with its own license and key (the env's model routes to that key only
    while the test runs: the env's own key is set aside)."""

    def __init__(self, env, max_ai_requests=100000):
        self.env = env
        # No max_concurrent_tasks: the sessions here call at once, up to sixteen of them.
        self.org = env.org(max_ai_requests=max_ai_requests, max_concurrent_tasks=-1)
        self.key_id = env.add_key("openai", "ledger-key-" + tag(), "sk-good-ledger-" + tag() + tag(),
                                  {"base_url": env.mock.url("openai"), "priority": 2000})

    def session(self, **settings):
        conn = connect()
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('celaest.user_id', %s, false)", (self.org["user_id"],))
            cur.execute("SELECT set_config('celaest.openai_base_url', %s, false)", (self.env.mock.url("openai"),))
            for name, value in settings.items():
                cur.execute("SELECT set_config(%s, %s, false)", (name, str(value)))
        return conn

    def chat(self, conn, text, **options):
        options.setdefault("model", self.env.model_id)
        return as_json(scalar(conn, "SELECT celaest.ai_chat(%s::jsonb, NULL, NULL, %s::jsonb)",
                              (json.dumps([{"role": "user", "content": text}]), json.dumps(options))))

    # -- the three books of this tenant
    def tasks(self, request_id=None):
        sql = "SELECT * FROM celaest.processed_tasks WHERE organization_id = %s"
        params = [self.org["org_id"]]
        if request_id:
            sql += " AND request_id = %s"
            params.append(request_id)
        return rows(self.env.admin, sql, params)

    def license_used(self):
        return scalar(self.env.admin, "SELECT ai_requests_used FROM celaest.licenses WHERE id = %s",
                      (self.org["license_id"],))

    def key(self):
        return rows(self.env.admin, "SELECT usage_count, tokens_used, last_used_at FROM celaest.ai_api_pool"
                                    " WHERE id = %s", (self.key_id,))[0]

    def expected_key(self):
        """The key's usage and tokens as the task rows record them (every attempt sent with it)."""
        requests = tokens = 0
        for task in self.tasks():
            for attempt in task["metadata"].get("attempts", []):
                if (attempt.get("api_key_id") == self.key_id and attempt.get("outcome") != "blocked_destination"
                        and attempt.get("sent", True)):
                    requests += 1
                    tokens += attempt.get("tokens", 0)
        return requests, tokens

    def settle(self, calls):
        """Waits until `calls` tasks are recorded and every counter agrees with them; then checks
        that they stay so (nothing is written twice)."""
        deadline = time.time() + SETTLE_S
        while True:
            tasks = self.tasks()
            key = self.key()
            expected = self.expected_key()
            if (len(tasks) == calls and self.license_used() == calls
                    and (key["usage_count"], key["tokens_used"]) == expected):
                break
            assert time.time() < deadline, (len(tasks), self.license_used(), key, expected,
                                            as_json(scalar(self.env.admin, "SELECT celaest._ledger_state()")))
            time.sleep(0.05)
        time.sleep(0.6)  # a few writer passes later: still once
        assert len(self.tasks()) == calls and self.license_used() == calls
        assert (self.key()["usage_count"], self.key()["tokens_used"]) == self.expected_key()
        return tasks

    def close(self):
        scalar(self.env.admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s", (self.key_id,))


@pytest.fixture
def tenant(env):
    scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s", (env.key_id,))
    t = Tenant(env)
    yield t
    t.close()
    scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = true WHERE id = %s", (env.key_id,))


def test_the_writer_runs_with_the_other_workers(env):
    workers = env.workers()
    assert "celaest ledger writer" in workers, workers
    assert workers["celaest ledger writer"]["pid"]


def test_a_committed_call_is_recorded_and_charged_once(tenant):
    conn = tenant.session()
    result = tenant.chat(conn, "committed " + tag(), request_id="commit-" + tag())
    assert result["status"] == "completed"
    tasks = tenant.settle(1)
    assert tasks[0]["id"] == uuid.UUID(result["task_id"]) or str(tasks[0]["id"]) == result["task_id"]
    assert tasks[0]["metadata"]["ledger"] == "shared"
    assert tenant.key()["last_used_at"] is not None
    conn.close()


def test_a_rolled_back_call_is_recorded_and_charged(tenant):
    conn = tenant.session()
    conn.autocommit = False
    request_id = "rollback-" + tag()
    result = tenant.chat(conn, "rolled back " + tag(), request_id=request_id)
    assert result["status"] == "completed"
    conn.rollback()
    tasks = tenant.settle(1)
    task = tasks[0]
    assert str(task["id"]) == result["task_id"]
    assert task["request_id"] == request_id and task["status"] == "completed"
    assert task["tokens_input"] == result["tokens_input"] and task["tokens_output"] == result["tokens_output"]
    assert float(task["cost_usd"]) == pytest.approx(float(result["cost_usd"]))
    assert task["metadata"]["attempts"][0]["api_key_id"] == tenant.key_id
    conn.close()


def test_an_error_later_in_the_transaction_still_records_the_call(tenant):
    conn = tenant.session()
    conn.autocommit = False
    tenant.chat(conn, "then an error " + tag())
    with pytest.raises(psycopg2.Error) as failed:
        scalar(conn, "SELECT 1 / 0")
    assert failed.value.pgcode == "22012"
    conn.rollback()
    tenant.settle(1)
    conn.close()


def test_a_statement_cancelled_after_the_answer_still_records_the_call(tenant):
    conn = tenant.session()
    scalar(conn, "SET statement_timeout = '1s'")
    text = "cancelled after the answer " + tag()
    with pytest.raises(psycopg2.Error) as cancelled:
        scalar(conn, "SELECT celaest.ai_chat(%s::jsonb, NULL, NULL, %s::jsonb), pg_sleep(5)",
               (json.dumps([{"role": "user", "content": text}]), json.dumps({"model": tenant.env.model_id})))
    assert cancelled.value.pgcode == "57014"
    tasks = tenant.settle(1)
    assert tasks[0]["input_text"] == text and tasks[0]["status"] == "completed"
    conn.close()


def test_a_backend_terminated_after_the_answer_still_records_the_call(tenant):
    conn = tenant.session()
    conn.autocommit = False
    result = tenant.chat(conn, "terminated " + tag())
    pid = conn.get_backend_pid()
    assert scalar(tenant.env.admin, "SELECT pg_terminate_backend(%s, 5000)", (pid,))
    tasks = tenant.settle(1)
    assert str(tasks[0]["id"]) == result["task_id"]
    conn.close()


def test_a_rolled_back_savepoint_records_its_call_and_the_commit_keeps_the_others(tenant):
    conn = tenant.session()
    conn.autocommit = False
    tenant.chat(conn, "before the savepoint " + tag())
    scalar(conn, "SAVEPOINT s; SELECT 1")
    tenant.chat(conn, "inside the savepoint " + tag())
    scalar(conn, "ROLLBACK TO SAVEPOINT s; SELECT 1")
    tenant.chat(conn, "after the savepoint " + tag())
    conn.commit()
    tenant.settle(3)
    conn.close()


def test_run_prompt_and_json_mode_rolled_back_are_recorded(tenant):
    env = tenant.env
    conn = tenant.session()
    conn.autocommit = False
    result = as_json(scalar(conn, "SELECT celaest.run_prompt(%s, %s::jsonb, NULL, '{}'::jsonb)",
                            (env.prompt_slug, json.dumps({"word": "ledger-" + tag()}))))
    assert result["status"] == "completed"
    conn.rollback()
    scalar(env.admin, "UPDATE celaest.ai_models SET capabilities = capabilities || '{\"json_mode\": true}'"
                      " WHERE id = %s", (env.model_uuid,))
    json_result = tenant.chat(conn, 'answer in JSON {"ledger": true} ' + tag(), json=True)
    conn.rollback()
    tasks = tenant.settle(2)
    assert {str(t["id"]) for t in tasks} == {result["task_id"], json_result["task_id"]}
    assert {t["input_type"] for t in tasks} == {"prompt", "chat"}
    conn.close()


def test_a_rolled_back_call_counts_for_admission_at_once(env):
    scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s", (env.key_id,))
    t = Tenant(env, max_ai_requests=1)
    try:
        conn = t.session()
        conn.autocommit = False
        t.chat(conn, "the only request " + tag())
        conn.rollback()
        # At once, before the writer folded anything: the rolled-back call used the quota.
        with pytest.raises(psycopg2.Error) as refused:
            t.chat(conn, "no room left " + tag())
        assert refused.value.pgcode == "LC010"
        conn.rollback()
        check = as_json(scalar(env.admin, "SELECT celaest.check_limit(%s, 'ai_requests')", (t.org["org_id"],)))
        assert check["used"] == 1 and check["allowed"] is False
        with pytest.raises(psycopg2.Error) as consumed:
            scalar(env.admin, "SELECT celaest.consume_quota(%s)", (t.org["org_id"],))
        assert consumed.value.pgcode == "LC010"
        t.settle(1)
        conn.close()
    finally:
        t.close()
        scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = true WHERE id = %s", (env.key_id,))


def test_a_transaction_left_open_after_a_call_makes_no_other_caller_wait(tenant):
    # The scenario: A holds its transaction 6 s after ai_chat; B, on the same license
    # and key, calls 1.5 s later with statement_timeout = 4s and must not be cancelled.
    a = tenant.session()
    a.autocommit = False
    b = tenant.session()
    scalar(b, "SET statement_timeout = '4s'")
    tenant.chat(a, "A holds its transaction " + tag())
    held = threading.Thread(target=lambda: scalar(a, "SELECT pg_sleep(6)"))
    held.start()
    time.sleep(1.5)
    assert tenant.chat(b, "B goes on " + tag())["status"] == "completed"
    # Nor does the writer wait: B's call is folded while A's transaction is still open.
    deadline = time.time() + SETTLE_S
    while tenant.key()["usage_count"] < 2 or tenant.license_used() < 2:
        assert held.is_alive(), "A's transaction ended before B's charges were folded"
        assert time.time() < deadline
        time.sleep(0.05)
    held.join()
    a.commit()
    tenant.settle(2)
    a.close()
    b.close()


def test_sixteen_sessions_holding_their_transactions_never_wait(tenant):
    sessions = 16
    calls_each = 3
    errors = []
    barrier = threading.Barrier(sessions)

    def body():
        conn = tenant.session()
        # Each call alone takes a few ms; waiting for another session's 2 s would be cancelled.
        scalar(conn, "SET statement_timeout = '1500ms'")
        conn.autocommit = False
        try:
            barrier.wait()
            for i in range(calls_each):
                tenant.chat(conn, "sixteen %d %s" % (i, tag()))
                scalar(conn, "SELECT pg_sleep(0.5)")
                conn.commit() if i % 2 == 0 else conn.rollback()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=body) for _ in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    tenant.settle(sessions * calls_each)


def test_admission_is_exact_under_sixteen_sessions_with_rollbacks(env):
    quota = 40
    scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s", (env.key_id,))
    t = Tenant(env, max_ai_requests=quota)
    granted = []
    lock = threading.Lock()
    errors = []

    def body(index):
        conn = t.session()
        conn.autocommit = False
        try:
            for i in range(10):
                try:
                    t.chat(conn, "exact %d %d %s" % (index, i, tag()))
                    with lock:
                        granted.append(1)
                    conn.rollback() if (index + i) % 3 == 0 else conn.commit()
                except psycopg2.Error as exc:
                    conn.rollback()
                    if exc.pgcode != "LC010":
                        raise
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            conn.close()

    try:
        threads = [threading.Thread(target=body, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert len(granted) == quota
        t.settle(quota)
    finally:
        t.close()
        scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = true WHERE id = %s", (env.key_id,))


def test_consume_quota_and_ai_calls_share_the_quota_exactly(env):
    # consume_quota keeps its transactional charge (a rolled-back consumption leaves the
    # counter); AI calls charge the ledger whatever their transaction does. 16 sessions mix both,
    # with rollbacks, against one quota: never over it, and every unit used.
    quota = 120
    scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s", (env.key_id,))
    t = Tenant(env, max_ai_requests=quota)
    lock = threading.Lock()
    counted = {"ai": 0, "consumed": 0}
    errors = []

    def body(index):
        conn = t.session()
        conn.autocommit = False
        try:
            for i in range(30):
                ai = (index + i) % 2 == 0
                try:
                    if ai:
                        t.chat(conn, "mixed %d %d %s" % (index, i, tag()))
                    else:
                        scalar(conn, "SELECT celaest.consume_quota(%s)", (t.org["org_id"],))
                except psycopg2.Error as exc:
                    conn.rollback()
                    if exc.pgcode != "LC010":
                        raise
                    continue
                rolled_back = (index * 7 + i) % 4 == 0
                conn.rollback() if rolled_back else conn.commit()
                with lock:
                    if ai:
                        counted["ai"] += 1  # rolled back or not: paid, so counted
                    elif not rolled_back:
                        counted["consumed"] += 1
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            conn.close()

    try:
        threads = [threading.Thread(target=body, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert counted["ai"] + counted["consumed"] == quota, counted
        deadline = time.time() + SETTLE_S
        while not (len(t.tasks()) == counted["ai"] and t.license_used() == quota):
            assert time.time() < deadline, (counted, len(t.tasks()), t.license_used())
            time.sleep(0.05)
        check = as_json(scalar(env.admin, "SELECT celaest.check_limit(%s, 'ai_requests')", (t.org["org_id"],)))
        assert check["used"] == quota and check["remaining"] == 0
    finally:
        t.close()
        scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = true WHERE id = %s", (env.key_id,))


def test_ledger_state_shows_nothing_pending_once_settled(env, tenant):
    conn = tenant.session()
    tenant.chat(conn, "state " + tag())
    tenant.settle(1)
    deadline = time.time() + SETTLE_S
    while True:
        state = as_json(scalar(env.admin, "SELECT celaest._ledger_state()"))
        if state["requests_unfolded"] == 0 and state["records_spooled"] == 0 and state["key_requests_unfolded"] == 0:
            break
        assert time.time() < deadline, state
        time.sleep(0.05)
    assert state["served"] is True
    conn.close()


def test_prompt_statistics_lock_nothing_and_count_every_paid_call(env, tenant):
    """run_prompt's statistics (prompts_master usage_count, average time, success rate) leave the
    caller's transaction like the license and key counters: session A runs the prompt and keeps
    its transaction open, session B (same prompt) completes within its statement_timeout; A's
    call counts even though A rolls back, and the writer folds every call exactly once."""
    def uses():
        return scalar(env.admin, "SELECT usage_count FROM celaest.prompts_master WHERE id = %s", (env.prompt_id,))

    def run(conn):
        return as_json(scalar(conn, "SELECT celaest.run_prompt(%s, %s::jsonb, NULL, '{}'::jsonb)",
                              (env.prompt_slug, json.dumps({"word": "stats-" + tag()}))))

    before = uses()
    a = tenant.session()
    a.autocommit = False
    b = tenant.session(statement_timeout=4000)
    try:
        assert run(a)["status"] == "completed"
        for _ in range(3):
            assert run(b)["status"] == "completed"  # 57014 if it waited on A's row lock
        deadline = time.time() + SETTLE_S
        while uses() != before + 4:  # folded while A is still open (A's call included)
            assert time.time() < deadline, (uses(), before)
            time.sleep(0.05)
        a.rollback()
        time.sleep(0.6)  # a few writer passes later: still once
        assert uses() == before + 4
        assert scalar(env.admin, "SELECT success_rate FROM celaest.prompts_master WHERE id = %s",
                      (env.prompt_id,)) is not None
        tenant.settle(4)
    finally:
        a.close()
        b.close()
