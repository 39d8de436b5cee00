"""The AI-request quota around synchronous calls: concurrent calls of one organization are
admitted against committed usage plus calls in flight, so they run side by side and never
overshoot; a rolled-back call is charged and recorded all the same (the ledger)."""
import threading

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
