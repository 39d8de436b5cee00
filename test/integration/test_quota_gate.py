"""The AI-request quota around synchronous calls: concurrent calls of one organization are
admitted against committed usage plus calls in flight, so they run side by side and never
overshoot; a rolled-back call charges nothing and releases its admission."""
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


def test_a_rolled_back_call_charges_nothing_and_frees_its_admission(db, conn, quota):
    used_before = quota(1)
    other = db.connect()
    other.autocommit = False
    db.ai_chat(other, say("then rolled back"), None, {"provider": "groq"})
    # While that call's transaction is open, its admission holds the last request.
    with pytest.raises(psycopg2.Error) as refused:
        db.ai_chat(conn, say("no room while the other is in flight"), None, {"provider": "groq"})
    assert sqlstate(refused) == "LC010"
    assert "in flight: 1" in refused.value.diag.message_detail
    conn.rollback()
    other.rollback()
    assert db.license_used(conn) == used_before
    # Released at rollback: the last request can be used now, and then none is left.
    assert db.ai_chat(conn, say("now there is room"), None, {"provider": "groq"})["status"] == "completed"
    assert db.license_used(conn) == used_before + 1
    with pytest.raises(psycopg2.Error) as exhausted:
        db.ai_chat(conn, say("quota used up"), None, {"provider": "groq"})
    assert sqlstate(exhausted) == "LC010"
    conn.rollback()
    other.close()
