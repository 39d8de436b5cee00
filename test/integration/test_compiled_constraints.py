"""celaest's own statements take CHECK constraints and row triggers' WHEN conditions from copies
compiled once per session (src/pg/boundary/check_constraint_cache.cpp). A copy must never be
used once the table's definition has changed: a constraint or trigger added, changed or dropped
— by another session or by the same one, after the copies were built — applies to the very
next statement, as it does for PostgreSQL's own per-statement compilation. consume_quota's
UPDATE of licenses and ai_chat's INSERT of its task are celaest's statements.
"""

import psycopg2
import pytest

from conftest import add_key, connect, new_secret, rotate_key, scalar

MESSAGES = [{"role": "user", "content": "compiled constraints"}]


def quiet(conn):
    """A CHECK violation on licenses prints the row, license key included, in the server log,
    which the secrecy tests scan: this session's errors stay out of the log."""
    scalar(conn, "SET log_min_messages = fatal")
    scalar(conn, "SET log_min_error_statement = panic")
    return conn


def consume(conn, db):
    return scalar(conn, "SELECT celaest.consume_quota(%s)", (db.org_id,))


def admin(db):
    conn = connect(db.name)
    conn.autocommit = True
    return conn


def test_a_check_added_or_dropped_by_another_session_applies_to_the_next_statement(db):
    conn = quiet(db.connect())
    conn.autocommit = True
    other = admin(db)
    try:
        consume(conn, db)
        consume(conn, db)  # the session's copies of licenses' CHECKs exist now
        scalar(other, "ALTER TABLE celaest.licenses ADD CONSTRAINT licenses_cache_probe"
                      " CHECK (ai_requests_used < 0) NOT VALID")
        with pytest.raises(psycopg2.Error) as raised:
            consume(conn, db)
        assert raised.value.pgcode == "23514"
        assert raised.value.diag.constraint_name == "licenses_cache_probe"
        scalar(other, "ALTER TABLE celaest.licenses DROP CONSTRAINT licenses_cache_probe")
        consume(conn, db)
    finally:
        scalar(other, "ALTER TABLE celaest.licenses DROP CONSTRAINT IF EXISTS licenses_cache_probe")
        other.close()
        conn.close()


def test_a_check_replaced_in_the_same_session_and_transaction_applies(db):
    conn = quiet(db.connect())
    conn.autocommit = False
    try:
        consume(conn, db)
        # Same name, another expression: the copy is compared with the stored text.
        scalar(conn, "ALTER TABLE celaest.licenses ADD CONSTRAINT licenses_cache_probe"
                     " CHECK (ai_requests_used >= 0) NOT VALID")
        consume(conn, db)
        scalar(conn, "ALTER TABLE celaest.licenses DROP CONSTRAINT licenses_cache_probe")
        scalar(conn, "ALTER TABLE celaest.licenses ADD CONSTRAINT licenses_cache_probe"
                     " CHECK (ai_requests_used < 0) NOT VALID")
        with pytest.raises(psycopg2.Error) as raised:
            consume(conn, db)
        assert raised.value.diag.constraint_name == "licenses_cache_probe"
    finally:
        conn.rollback()
        conn.close()
        other = admin(db)
        scalar(other, "ALTER TABLE celaest.licenses DROP CONSTRAINT IF EXISTS licenses_cache_probe")
        other.close()


def test_a_trigger_when_condition_changed_by_another_session_applies(db):
    conn = quiet(db.connect())
    conn.autocommit = True
    other = admin(db)
    try:
        scalar(other, "CREATE FUNCTION public.cache_probe_refuse() RETURNS trigger LANGUAGE plpgsql AS"
                      " $$BEGIN RAISE EXCEPTION 'cache probe' USING ERRCODE = 'P0042'; END$$")
        scalar(other, "CREATE TRIGGER cache_probe BEFORE UPDATE ON celaest.licenses FOR EACH ROW"
                      " WHEN (NEW.ai_requests_used < 0) EXECUTE FUNCTION public.cache_probe_refuse()")
        consume(conn, db)
        consume(conn, db)  # the WHEN condition's copy exists now, and is false
        scalar(other, "DROP TRIGGER cache_probe ON celaest.licenses")
        scalar(other, "CREATE TRIGGER cache_probe BEFORE UPDATE ON celaest.licenses FOR EACH ROW"
                      " WHEN (NEW.ai_requests_used > OLD.ai_requests_used) EXECUTE FUNCTION public.cache_probe_refuse()")
        with pytest.raises(psycopg2.Error) as raised:
            consume(conn, db)
        assert raised.value.pgcode == "P0042"
        scalar(other, "DROP TRIGGER cache_probe ON celaest.licenses")
        consume(conn, db)
    finally:
        scalar(other, "DROP TRIGGER IF EXISTS cache_probe ON celaest.licenses")
        scalar(other, "DROP FUNCTION IF EXISTS public.cache_probe_refuse()")
        other.close()
        conn.close()


def test_ai_chat_tasks_still_meet_the_tables_checks_after_their_definition_changes(db):
    conn = db.connect()
    conn.autocommit = True
    other = admin(db)
    try:
        first = db.ai_chat(conn, MESSAGES)
        assert first["status"] == "completed"
        # A constraint every task meets, added and dropped under the session's copies.
        scalar(other, "ALTER TABLE celaest.processed_tasks ADD CONSTRAINT processed_tasks_cache_probe"
                      " CHECK (tokens_input >= 0) NOT VALID")
        assert db.ai_chat(conn, MESSAGES)["status"] == "completed"
        scalar(other, "ALTER TABLE celaest.processed_tasks DROP CONSTRAINT processed_tasks_cache_probe")
        assert db.ai_chat(conn, MESSAGES)["status"] == "completed"
        # The table's own CHECKs still hold on the rows written through the copies.
        assert scalar(conn, "SELECT count(*) FROM celaest.processed_tasks"
                            " WHERE id = %s AND status = 'completed' AND tokens_total = tokens_input + tokens_output",
                      (first["task_id"],)) == 1
    finally:
        scalar(other, "ALTER TABLE celaest.processed_tasks DROP CONSTRAINT IF EXISTS processed_tasks_cache_probe")
        other.close()
        conn.close()


def test_a_when_condition_over_the_whole_row_is_evaluated_again_in_later_statements(db):
    # The audit trigger on ai_api_pool has WHEN (to_jsonb(OLD) ... IS DISTINCT FROM to_jsonb(NEW)):
    # a whole-row Var keeps its row descriptor in the statement's memory, so that condition is
    # compiled per statement; a session's second rotation must find nothing of the first's.
    conn = db.connect()
    try:
        key_id = add_key(conn, "openai", "compiled-whole-row", new_secret("compiled-whole-row"))
        for round_ in range(3):
            rotate_key(conn, key_id, new_secret("compiled-whole-row-%d" % round_))
        assert scalar(conn, "SELECT is_active FROM celaest.ai_api_pool WHERE id = %s", (key_id,)) is not None
    finally:
        conn.close()
