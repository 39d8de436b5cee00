"""The C++/PostgreSQL boundary seen from a client (src/pg/boundary/boundary.hpp):

* a PostgreSQL error raised inside a CELAEST C++ function reaches the client whole — SQLSTATE,
  constraint, table and schema names, CONTEXT — because it is re-raised as it was;
* a cancel during batch preparation ends the statement as 57014 (it used to be caught as a
  task's error, and the pass went on issuing SPI after an unhandled ERROR);
* any other PostgreSQL error in one task's preparation fails that task only: the preparation
  runs in a subtransaction, rolled back, and the pass goes on.
"""

import json

import psycopg2
import pytest

from conftest import add_key, connect, new_secret, rows, scalar

PROMPT = "boundary-echo"


@pytest.fixture(scope="module")
def prompt(db):
    conn = connect(db.name)
    scalar(conn, "INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, user_prompt_template,"
                 " variables) VALUES (%s, 'boundary echo', 'test', 'You answer tests.', 'Echo {{word}}',"
                 " '[\"word\"]')", (PROMPT,))
    conn.close()
    return PROMPT


def claimed_batch(db, prompt, size):
    """A batch of `size` tasks queued and claimed by a new session (as the batch runner claims
    them), so that _run_claimed_tasks in that session runs them. The module's database has no
    batch runner (celaest.databases serves `postgres` only), so submit_batch refuses it (55000):
    the rows submit_batch would write are written here, its reservation of one AI request per
    task made here too, and nobody else claims them."""
    conn = db.connect()
    batch_id = scalar(conn, "INSERT INTO celaest.task_batches (organization_id, user_id, license_id, prompt_id,"
                            " total_tasks) SELECT %s, %s, %s, id, %s FROM celaest.prompts_master WHERE slug = %s"
                            " RETURNING id", (db.org_id, db.user_id, db.license_id, size, prompt))
    scalar(conn, "INSERT INTO celaest.processed_tasks (organization_id, user_id, license_id, batch_id, prompt_id,"
                 "  input_type, input_metadata, status)"
                 " SELECT b.organization_id, b.user_id, b.license_id, b.id, b.prompt_id, 'batch',"
                 "  jsonb_build_object('variables', jsonb_build_object('word', 'boundary-' || i),"
                 "                     'options', '{}'::jsonb, 'index', i), 'pending'"
                 " FROM celaest.task_batches b, generate_series(0, %s - 1) AS i WHERE b.id = %s",
           (size, batch_id))
    scalar(conn, "UPDATE celaest.licenses SET ai_requests_used = ai_requests_used + %s WHERE id = %s",
           (size, db.license_id))
    assert scalar(conn, "SELECT celaest._claim_batch_tasks(%s)", (size,)) == size
    return conn, batch_id


def tasks(conn, batch_id):
    return rows(conn, "SELECT status, error_code, error_message FROM celaest.processed_tasks"
                      " WHERE batch_id = %s ORDER BY (input_metadata->>'index')::int", (batch_id,))


class PromptsLocked:
    """Holds ACCESS EXCLUSIVE on celaest.prompts_master in another session: the first thing a
    pass reads while preparing its tasks (the prompt) waits for it."""

    def __init__(self, db):
        self.conn = connect(db.name)
        self.conn.autocommit = False

    def __enter__(self):
        with self.conn.cursor() as cur:
            cur.execute("LOCK TABLE celaest.prompts_master IN ACCESS EXCLUSIVE MODE")
        return self

    def __exit__(self, *exc):
        self.conn.rollback()
        self.conn.close()


def test_a_constraint_violation_inside_a_native_function_keeps_its_diagnostics(db):
    # add_api_key (C++) inserts through SPI; a blank-looking name passes its own checks and
    # the table's CHECK constraint refuses it.
    conn = db.connect()
    secret = new_secret("boundary-diag")
    with pytest.raises(psycopg2.Error) as raised:
        add_key(conn, "openai", "   ", secret)
    error = raised.value
    assert error.pgcode == "23514", error
    assert error.diag.constraint_name == "ai_api_pool_key_name_not_blank"
    assert error.diag.table_name == "ai_api_pool"
    assert error.diag.schema_name == "celaest"
    assert error.diag.message_primary.startswith('new row for relation "ai_api_pool" violates check constraint')
    # CONTEXT names the statement that failed (its text has placeholders, never the secret).
    assert 'SQL statement "INSERT INTO celaest.ai_api_pool' in (error.diag.context or "")
    for field in (error.diag.message_primary, error.diag.message_detail, error.diag.context):
        assert secret not in (field or "")
    conn.close()


def test_a_cancel_during_batch_preparation_ends_as_57014(db, prompt):
    conn, batch_id = claimed_batch(db, prompt, 2)
    with PromptsLocked(db):
        # lock_timeout only bounds the test if the cancel were swallowed again (the pass would
        # then go on and wait for the lock once more, with no timeout left).
        scalar(conn, "SET statement_timeout = '300ms'; SET lock_timeout = '5s'")
        with pytest.raises(psycopg2.Error) as raised:
            scalar(conn, "SELECT celaest._run_claimed_tasks(8)")
        scalar(conn, "RESET statement_timeout; RESET lock_timeout")
    assert raised.value.pgcode == "57014", raised.value
    assert "statement timeout" in raised.value.diag.message_primary
    # Nothing of the cancelled pass stayed: no task was failed as if its data were wrong.
    assert [(t["status"], t["error_code"]) for t in tasks(conn, batch_id)] == [("processing", None)] * 2
    # The session is sound, and the same pass runs to the end once nothing blocks it.
    assert scalar(conn, "SELECT celaest._run_claimed_tasks(8)") == 2
    assert [t["status"] for t in tasks(conn, batch_id)] == ["completed"] * 2
    conn.close()


def test_a_postgres_error_in_one_tasks_preparation_fails_that_task_and_the_pass_goes_on(db, prompt):
    # lock_timeout (55P03) is an error about the prompt's table, not a cancel: each task's
    # preparation fails in its own subtransaction, is recorded, and the pass completes (its
    # later SPI statements work: the tasks are recorded and their charges given back).
    conn, batch_id = claimed_batch(db, prompt, 2)
    used_before = db.license_used(conn)
    with PromptsLocked(db):
        scalar(conn, "SET lock_timeout = '200ms'")
        assert scalar(conn, "SELECT celaest._run_claimed_tasks(8)") == 2
        scalar(conn, "RESET lock_timeout")
    recorded = tasks(conn, batch_id)
    assert [(t["status"], t["error_code"]) for t in recorded] == [("failed", "invalid_task")] * 2, recorded
    assert all("lock timeout" in t["error_message"] for t in recorded), recorded
    assert db.license_used(conn) == used_before - 2
    conn.close()
