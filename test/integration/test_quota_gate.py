"""The AI-request quota around synchronous calls: concurrent calls of one organization are
admitted against committed usage plus calls in flight, so they run side by side and never
overshoot; a rolled-back call is charged and recorded all the same (the ledger)."""
import threading
import time

import psycopg2
import pytest

from conftest import scalar, sqlstate


def say(text):
    return [{"role": "user", "content": text}]


@pytest.fixture
def quota(db, conn):
    """Sets the license's AI-request limit to `used + room`; restores it afterwards."""
    def set_room(room):
        used = db.license_used(conn)
        scalar(conn, "UPDATE celaest.licenses SET custom_limits ="
                     " coalesce(custom_limits, '{}') || jsonb_build_object('max_ai_requests_per_month', %s::int)"
                     " WHERE id = %s RETURNING 1", (used + room, db.license_id))
        return used
    yield set_room
    scalar(conn, "UPDATE celaest.licenses SET custom_limits = custom_limits - 'max_ai_requests_per_month'"
                 " WHERE id = %s RETURNING 1", (db.license_id,))


def test_concurrent_calls_never_overshoot_the_quota(db, conn, quota):
    used_before = quota(5)
    conns = [db.connect() for _ in range(12)]
    barrier = threading.Barrier(len(conns))
    outcomes = []
    lock = threading.Lock()

    def call(c):
        barrier.wait()
        try:
            db.ai_chat(c, say("quota race [[mock:sleep=300]]"), None, {"provider": "groq"})
            result = "ok"
        except psycopg2.Error as error:
            c.rollback()
            result = error.pgcode
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=call, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes) == ["LC010"] * 7 + ["ok"] * 5
    assert db.license_used(conn) == used_before + 5
    for c in conns:
        c.close()


def test_a_rolled_back_call_is_charged_and_recorded_by_the_next_call(db, conn, quota):
    """A paid call is charged and recorded whatever its transaction does (API.md "The ledger";
    issue 10 inverted this test, which asserted the opposite). This module's database has no
    ledger writer (the test cluster's launcher serves only `postgres`): the record of a call
    whose transaction did not commit is written, and charged, by the next call of the same
    backend. test_ledger.py covers a served database, where the writer does it within a second."""
    used_before = quota(5)
    tasks_before = db.task_count(conn)
    other = db.connect()
    other.autocommit = False
    first = db.ai_chat(other, say("then rolled back"), None, {"provider": "groq"})
    # While that call's transaction is open, its admission holds a request.
    check = scalar(conn, "SELECT celaest.check_limit(%s, 'ai_requests')", (db.org_id,))
    assert check["used"] == used_before
    other.rollback()
    assert db.ai_chat(other, say("the next call"), None, {"provider": "groq"})["status"] == "completed"
    other.commit()
    assert db.license_used(conn) == used_before + 2
    assert db.task_count(conn) == tasks_before + 2
    assert scalar(conn, "SELECT count(*) FROM celaest.processed_tasks WHERE id = %s", (first["task_id"],)) == 1
    # Written once: a later call writes nothing more.
    db.ai_chat(other, say("and one more"), None, {"provider": "groq"})
    other.commit()
    assert db.license_used(conn) == used_before + 3
    assert db.task_count(conn) == tasks_before + 3
    other.close()


@pytest.mark.parametrize("call", ["ai_chat", "run_prompt"])
def test_no_call_waits_for_another_callers_open_transaction_in_an_unserved_database(db, conn, call):
    """Issue 10 §2 where no ledger writer runs (this module's database): the charges of a call
    (license, key, prompt statistics) are made when its transaction commits, so a caller that
    keeps its transaction open after a call holds none of those rows. Session A calls and stays
    open; session B (same organization, key and prompt) completes within its statement_timeout,
    and once A commits every charge is there, exactly once."""
    slug = "qg-open-" + call
    prompt_id = scalar(conn, "SELECT id FROM celaest.prompts_master WHERE slug = %s", (slug,)) or scalar(
        conn, "INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, user_prompt_template,"
              " variables, preferred_model_id, temperature, max_tokens, is_default)"
              " VALUES (%s, %s, 'test', 'Be brief.', 'Say {{topic}}.', '[\"topic\"]', %s, 0.30, 50, true)"
              " RETURNING id", (slug, slug, db.models["groq"]["id"]))

    def make_call(c, text):
        if call == "ai_chat":
            return db.ai_chat(c, say(text), None, {"provider": "groq"})
        return db.run_prompt(c, slug, {"topic": text})

    def prompt_uses():
        return scalar(conn, "SELECT usage_count FROM celaest.prompts_master WHERE id = %s", (prompt_id,))

    used_before, uses_before = db.license_used(conn), prompt_uses()
    a = db.connect()
    a.autocommit = False
    b = db.connect()
    scalar(b, "SELECT set_config('statement_timeout', '4000', false)")
    try:
        make_call(a, "A holds its transaction")
        for n in range(3):
            assert make_call(b, "B %d" % n)["status"] == "completed"  # 57014 when it waits on A
        assert db.license_used(conn) == used_before + 3
        a.commit()
        assert db.license_used(conn) == used_before + 4
        if call == "run_prompt":
            assert prompt_uses() == uses_before + 4
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("failure", ["401", "500"])
def test_a_failing_key_locks_nothing_in_an_unserved_database(db, conn, mock, failure):
    """Issue 10 §2 with key health events: in this module's database (no ledger writer) a key
    failing 401 (definitive) or 500 is written at commit with the call's other charges, not in
    the call's statement. Session A's call fails on the key, moves to a good one and A keeps its
    transaction open; session B's calls (same key first) complete under statement_timeout
    (before: B's failure UPDATE waited for A's row lock, 57014). Nothing is lost: once A
    commits, the failing key has every failure and every request sent with it; a rolled-back
    call's failure is written by that backend's next call."""
    from conftest import add_key, new_secret
    failing_id, failing_secret = db.only_key(conn, "openai", "failing-" + failure,
                                             valid=(failure != "401"), options={"priority": 10})
    good_id = add_key(conn, "openai", "openai-good-" + failure, new_secret("openai-good-" + failure), {"priority": 0})
    if failure == "500":
        mock.fault(provider="openai", status=500, count=100, key_prefix=failing_secret)
    threshold = 100  # a 500 never makes the key unhealthy here: every call tries it first
    a = db.connect(health_failure_threshold=threshold)
    a.autocommit = False
    b = db.connect(health_failure_threshold=threshold)
    scalar(b, "SELECT set_config('statement_timeout', '4000', false)")
    try:
        first = db.ai_chat(a, say("A fails over, then holds"), None, {"provider": "openai"})
        assert first["status"] == "completed" and first["retry_count"] == 1, first
        for n in range(3):
            assert db.ai_chat(b, say("B %d" % n), None, {"provider": "openai"})["status"] == "completed"
        a.commit()
        sent_to_failing = [r for r in mock.chat_requests("openai") if r["status_returned"] != 200]
        key = db.key(conn, failing_id)
        assert key["usage_count"] == len(sent_to_failing)
        if failure == "401":
            # A's definitive failure and B's first (B's later calls skip the unhealthy key).
            assert not key["is_healthy"] and key["consecutive_failures"] == 2, key
        else:
            assert key["is_healthy"] and key["consecutive_failures"] == 4 == len(sent_to_failing), key
        assert db.key(conn, good_id)["usage_count"] == 4
        # A rolled-back call's failure is not lost: written with its record by the next call.
        scalar(conn, "UPDATE celaest.ai_api_pool SET consecutive_failures = 0, is_healthy = true WHERE id = %s"
                     " RETURNING 1", (failing_id,))
        db.ai_chat(a, say("A rolls back"), None, {"provider": "openai"})
        a.rollback()
        assert db.key(conn, failing_id)["consecutive_failures"] == 0
        db.ai_chat(a, say("A's next call"), None, {"provider": "openai"})
        a.commit()
        key = db.key(conn, failing_id)
        assert key["consecutive_failures"] == 2 and key["is_healthy"] == (failure == "500"), key
    finally:
        a.close()
        b.close()


def test_a_backend_that_exits_after_a_rolled_back_call_leaves_it_to_the_next_backend(db, conn):
    """Issue 10 §4, unserved database: a backend whose call's transaction rolled back and that
    makes no further call hands the record to the spool when it exits; the first AI call of
    the next backend of the database writes it and charges it (nothing is silently lost)."""
    import time
    used_before = db.license_used(conn)
    key_before = db.key(conn, db.keys["groq"])["usage_count"]
    a = db.connect()
    a.autocommit = False
    pid = scalar(a, "SELECT pg_backend_pid()")
    gone = db.ai_chat(a, say("rolled back, then the session ends"), None, {"provider": "groq"})
    a.rollback()
    a.close()
    deadline = time.time() + 10
    while scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)):
        assert time.time() < deadline, "the backend did not exit"
        time.sleep(0.05)
    assert scalar(conn, "SELECT count(*) FROM celaest.processed_tasks WHERE id = %s", (gone["task_id"],)) == 0
    b = db.connect()
    try:
        assert db.ai_chat(b, say("a new backend's first call"), None, {"provider": "groq"})["status"] == "completed"
    finally:
        b.close()
    assert scalar(conn, "SELECT count(*) FROM celaest.processed_tasks WHERE id = %s", (gone["task_id"],)) == 1
    assert db.license_used(conn) == used_before + 2
    assert db.key(conn, db.keys["groq"])["usage_count"] == key_before + 2


def test_a_reader_of_the_spool_that_rolls_back_leaves_it_as_it_was(db, conn):
    """Unserved database: a backend's first call writes the records spooled by backends that
    exited; if that call's transaction rolls back, the spool keeps them (read again later) and
    they are not spooled a second time (before: every rolled-back reader added a copy of all it
    had read — 2,430 files after a 2,000-call serial run of test_accounting_books). Each record
    is written, and charged, once."""
    import time

    def spooled():
        return scalar(conn, "SELECT (celaest._ledger_state()->>'records_spooled')::int")

    def exit_after(c):
        pid = scalar(c, "SELECT pg_backend_pid()")
        c.close()
        deadline = time.time() + 10
        while scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)):
            assert time.time() < deadline
            time.sleep(0.05)

    used_before, spooled_before = db.license_used(conn), spooled()
    a = db.connect()
    a.autocommit = False
    first = db.ai_chat(a, say("A rolls back and exits"), None, {"provider": "groq"})
    a.rollback()
    exit_after(a)
    assert spooled() == spooled_before + 1
    b = db.connect()
    b.autocommit = False
    second = db.ai_chat(b, say("B reads the spool, rolls back and exits"), None, {"provider": "groq"})
    b.rollback()
    exit_after(b)
    assert spooled() == spooled_before + 2  # A's record once, B's own
    c = db.connect()
    try:
        db.ai_chat(c, say("C reads the spool and commits"), None, {"provider": "groq"})
    finally:
        c.close()
    assert spooled() == 0
    for task in (first, second):
        assert scalar(conn, "SELECT count(*) FROM celaest.processed_tasks WHERE id = %s", (task["task_id"],)) == 1
    assert db.license_used(conn) == used_before + 3


# -- max_concurrent_tasks (API.md "Enforced limits": tasks processing at once) ---------------

@pytest.fixture
def concurrency(db, conn):
    """Sets the license's max_concurrent_tasks; removes the tasks a test left processing and the
    limit afterwards."""
    def set_cap(cap):
        scalar(conn, "UPDATE celaest.licenses SET custom_limits ="
                     " coalesce(custom_limits, '{}') || jsonb_build_object('max_concurrent_tasks', %s::int)"
                     " WHERE id = %s RETURNING 1", (cap, db.license_id))
    yield set_cap
    scalar(conn, "UPDATE celaest.processed_tasks SET status = 'failed'"
                 " WHERE organization_id = %s AND status IN ('processing', 'retrying') RETURNING 1", (db.org_id,))
    scalar(conn, "UPDATE celaest.licenses SET custom_limits = custom_limits - 'max_concurrent_tasks'"
                 " WHERE id = %s RETURNING 1", (db.license_id,))


def concurrent_tasks(conn, org_id):
    return scalar(conn, "SELECT celaest.check_limit(%s, 'concurrent_tasks')", (org_id,))


def test_a_synchronous_call_is_refused_when_tasks_processing_fill_max_concurrent_tasks(
        db, conn, mock, concurrency):
    # Two tasks processing (a batch's, anyone's) fill a cap of 2: the call is refused with LC010
    # before any request leaves, and nothing is charged.
    concurrency(2)
    for _ in range(2):
        scalar(conn, "INSERT INTO celaest.processed_tasks (organization_id, user_id, status)"
                     " VALUES (%s, %s, 'processing') RETURNING 1", (db.org_id, db.user_id))
    used_before = db.license_used(conn)
    c = db.connect()
    with pytest.raises(psycopg2.Error) as refused:
        db.ai_chat(c, say("no room for me"), None, {"provider": "groq"})
    c.rollback()
    assert sqlstate(refused) == "LC010", refused.value
    assert "max_concurrent_tasks" in str(refused.value)
    assert mock.chat_requests_containing("no room for me", provider="groq") == []
    assert db.license_used(conn) == used_before
    # One of them ends: the call goes through, and then no longer counts.
    scalar(conn, "UPDATE celaest.processed_tasks SET status = 'completed'"
                 " WHERE id = (SELECT id FROM celaest.processed_tasks WHERE organization_id = %s"
                 "             AND status = 'processing' LIMIT 1) RETURNING 1", (db.org_id,))
    result = db.ai_chat(c, say("room for me"), None, {"provider": "groq"})
    assert result["status"] == "completed", result
    assert concurrent_tasks(conn, db.org_id)["used"] == 1


def test_synchronous_calls_in_flight_count_against_max_concurrent_tasks(db, conn, mock, concurrency):
    # Cap 2: two calls answered after 1.5 s are in flight; a third, started meanwhile, is refused;
    # check_limit and the batch side (_reserve_counted) see the two; once they end, calls go again.
    concurrency(2)
    slow = [db.connect() for _ in range(2)]
    results = []
    lock = threading.Lock()

    def call(c):
        answer = db.ai_chat(c, say("slow call [[mock:sleep=1500]]"), None, {"provider": "groq"})
        with lock:
            results.append(answer["status"])

    threads = [threading.Thread(target=call, args=(c,)) for c in slow]
    for t in threads:
        t.start()
    deadline = time.time() + 5
    while concurrent_tasks(conn, db.org_id)["used"] < 2:
        assert time.time() < deadline, concurrent_tasks(conn, db.org_id)
        time.sleep(0.02)
    state = concurrent_tasks(conn, db.org_id)
    assert (state["allowed"], state["limit"], state["used"], state["code"]) == (False, 2, 2, "QUOTA_EXCEEDED"), state
    third = db.connect()
    with pytest.raises(psycopg2.Error) as refused:
        db.ai_chat(third, say("third call"), None, {"provider": "groq"})
    third.rollback()
    assert sqlstate(refused) == "LC010", refused.value
    # A task entering processing is refused too while the calls fill the cap.
    with pytest.raises(psycopg2.Error) as row_refused:
        scalar(third, "INSERT INTO celaest.processed_tasks (organization_id, user_id, status)"
                      " VALUES (%s, %s, 'processing') RETURNING 1", (db.org_id, db.user_id))
    third.rollback()
    assert sqlstate(row_refused) == "LC010", row_refused.value
    for t in threads:
        t.join(20)
    assert results == ["completed", "completed"]
    assert concurrent_tasks(conn, db.org_id)["used"] == 0
    assert db.ai_chat(third, say("after them"), None, {"provider": "groq"})["status"] == "completed"
    for c in slow + [third]:
        c.close()


def test_a_failed_or_cancelled_call_gives_its_place_back(db, conn, mock, concurrency):
    # Cap 1: a call the provider fails, and a call cancelled mid-flight, each leave the place free.
    concurrency(1)
    c = db.connect()
    failed = db.ai_chat(c, say("fails [[mock:400]]"), None, {"provider": "groq"})
    assert failed["status"] == "failed", failed
    assert concurrent_tasks(conn, db.org_id)["used"] == 0
    timer = threading.Timer(0.5, c.cancel)
    timer.start()
    with pytest.raises(psycopg2.Error) as cancelled:
        db.ai_chat(c, say("cancelled [[mock:sleep=3000]]"), None, {"provider": "groq"})
    c.rollback()
    assert sqlstate(cancelled) == "57014", cancelled.value
    assert concurrent_tasks(conn, db.org_id)["used"] == 0
    assert db.ai_chat(c, say("after the cancel"), None, {"provider": "groq"})["status"] == "completed"
    c.close()
