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
