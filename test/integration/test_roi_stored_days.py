"""aggregate_roi's stored days (celaest._roi_days) against the tasks themselves.

aggregate_roi keeps each organization's sealed local days tallied and reads from processed_tasks
only the days it does not have. Every test here changes tasks (or what a stored day depends on)
the way an application or a DBA would, then checks that aggregate_roi's rows equal the same
figures computed straight from the tasks (_roi_rollup, roi_summary's roll-up, which test_roi.py
checks against an independent computation). A day that stayed stored over a write it missed
shows up as a difference.
"""
import contextlib
import datetime as dt

import psycopg2
import pytest

from conftest import connect, scalar
from test_roi import FROM, TO, rows, world_in_database

DB = "celaest_it_roi_days"
FIGURES = ("period_end, tasks_completed, tasks_failed, success_rate, manual_equivalent_minutes, "
           "time_saved_minutes, cost_ai, cost_manual_equivalent, money_saved, total_tokens, avg_tokens_per_task, "
           "avg_execution_time_ms, p95_execution_time_ms, p99_execution_time_ms, active_users_count, "
           "new_users_count")


@pytest.fixture(scope="module")
def world():
    yield from world_in_database(DB, 20261207)


@contextlib.contextmanager
def transaction(conn, commit=True):
    """One explicit transaction on an autocommit connection: committed (or rolled back) at the end."""
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            yield cur
        if commit:
            conn.commit()
        else:
            conn.rollback()
    finally:
        conn.rollback()
        conn.autocommit = True


def assert_runs_agree_with_the_tasks(conn, period_type="daily", first=FROM, last=TO):
    """aggregate_roi's rows == the figures read straight from processed_tasks."""
    scalar(conn, "SELECT celaest.aggregate_roi(%s, %s, %s)", (period_type, first, last))
    stored = rows(conn, "SELECT m.organization_id, m.period_start, %s FROM celaest.roi_metrics AS m"
                        " WHERE m.period_type = %%s AND m.period_start BETWEEN %%s AND %%s"
                        " ORDER BY 1, 2" % FIGURES.replace("period_end", "m.period_end"),
                  (period_type, first - dt.timedelta(days=31), last))
    from_tasks = rows(conn, "SELECT r.organization_id, r.period_start, %s"
                            " FROM celaest._roi_rollup(%%s, %%s, %%s, NULL, 'total') AS r ORDER BY 1, 2" % FIGURES,
                      (period_type, first, last))
    assert len(from_tasks) > 0
    assert stored == from_tasks


def stale_notes(conn):
    return scalar(conn, "SELECT count(*) FROM celaest._roi_stale")


def stored_days(conn, org_id=None):
    return scalar(conn, "SELECT count(*) FROM celaest._roi_days WHERE %s IS NULL OR organization_id = %s",
                  (org_id, org_id))


def old_task(conn, org_id, status="completed", offset=0):
    """A task of the stored window (id, UTC day)."""
    return rows(conn, "SELECT id, (created_at AT TIME ZONE 'UTC')::date FROM celaest.processed_tasks"
                      " WHERE organization_id = %s AND status = %s AND created_at BETWEEN %s AND %s"
                      " ORDER BY created_at OFFSET %s LIMIT 1",
                (org_id, status, FROM + dt.timedelta(days=5), TO - dt.timedelta(days=5), offset))[0]


def two_old_tasks_of_one_day(conn, org_id):
    """Two completed tasks of the stored window, of one organization and UTC day."""
    first, day = old_task(conn, org_id)
    second = rows(conn, "SELECT id FROM celaest.processed_tasks WHERE organization_id = %s AND status = 'completed'"
                        " AND (created_at AT TIME ZONE 'UTC')::date = %s AND id <> %s LIMIT 1",
                  (org_id, day, first))[0][0]
    return first, second


def test_a_first_run_stores_every_sealed_day_and_never_today(world):
    conn = world.conn
    assert stored_days(conn) == 0
    assert_runs_agree_with_the_tasks(conn)
    days = (TO - FROM).days + 1
    assert stored_days(conn) == len(world.orgs) * days
    # A task created now: today is inside the live window, read from the tasks on every run.
    org = world.orgs["utc"]
    user = next(u["id"] for u in world.users if u["org"] == "utc")
    with conn.cursor() as cur:
        cur.execute("INSERT INTO celaest.processed_tasks (organization_id, user_id, status, execution_time_ms)"
                    " VALUES (%s, %s, 'completed', 1234)", (org["id"], user))
    today = scalar(conn, "SELECT (now() AT TIME ZONE 'UTC')::date")
    assert_runs_agree_with_the_tasks(conn, "daily", today, today)
    assert scalar(conn, "SELECT count(*) FROM celaest._roi_days WHERE day = %s AND organization_id = %s",
                  (today, org["id"])) == 0
    # No stored day ends within the live window (an hour) or later, in its own zone.
    assert scalar(conn, "SELECT count(*) FROM celaest._roi_days AS d JOIN celaest.organizations AS o"
                        " ON o.id = d.organization_id"
                        " WHERE ((d.day + 1)::timestamp AT TIME ZONE d.timezone) > now() - interval '1 hour'") == 0
    assert stale_notes(conn) == 0   # a task created now notes nothing


def test_late_updates_deletes_and_backfills_are_seen(world):
    conn = world.conn
    assert_runs_agree_with_the_tasks(conn)
    madrid, auckland, kolkata = world.orgs["madrid"], world.orgs["auckland"], world.orgs["kolkata"]
    updated, _ = old_task(conn, madrid["id"])
    deleted, _ = old_task(conn, auckland["id"], "failed")
    user = next(u["id"] for u in world.users if u["org"] == "kolkata")
    with conn.cursor() as cur:
        cur.execute("UPDATE celaest.processed_tasks SET status = 'failed', cost_usd = cost_usd + 1.5,"
                    " execution_time_ms = 77777 WHERE id = %s", (updated,))
        cur.execute("DELETE FROM celaest.processed_tasks WHERE id = %s", (deleted,))
        # A backfill of a whole old day, in one statement: one note for the organization and day.
        cur.execute("INSERT INTO celaest.processed_tasks (organization_id, user_id, status, created_at,"
                    " execution_time_ms, ai_time_ms, cost_usd, tokens_input)"
                    " SELECT %s, %s, 'completed', %s::timestamptz + g * interval '1 minute', g * 10, g, 0.001, g"
                    " FROM generate_series(1, 200) AS g", (kolkata["id"], user, dt.datetime(2025, 3, 3, 4, 0)))
    assert stale_notes(conn) == 3
    assert_runs_agree_with_the_tasks(conn)
    assert stale_notes(conn) == 0
    assert_runs_agree_with_the_tasks(conn, "weekly", FROM, TO)
    assert_runs_agree_with_the_tasks(conn, "monthly", FROM, TO)


def test_a_rolled_back_write_notes_nothing_and_changes_nothing(world):
    conn = world.conn
    assert_runs_agree_with_the_tasks(conn)
    task, _ = old_task(conn, world.orgs["new_york"]["id"])
    with transaction(conn, commit=False) as cur:
        cur.execute("UPDATE celaest.processed_tasks SET status = 'failed' WHERE id = %s", (task,))
    assert stale_notes(conn) == 0
    before = stored_days(conn)
    assert_runs_agree_with_the_tasks(conn)
    assert stored_days(conn) == before


def test_a_write_after_a_rolled_back_savepoint_is_noted_again(world):
    conn = world.conn
    assert_runs_agree_with_the_tasks(conn)
    org = world.orgs["new_york"]["id"]
    first, second = two_old_tasks_of_one_day(conn, org)
    with transaction(conn) as cur:
        cur.execute("SAVEPOINT s")
        cur.execute("UPDATE celaest.processed_tasks SET cost_usd = 3 WHERE id = %s", (first,))
        cur.execute("ROLLBACK TO SAVEPOINT s")
        cur.execute("UPDATE celaest.processed_tasks SET cost_usd = 4, status = 'failed' WHERE id = %s", (second,))
    assert stale_notes(conn) == 1
    assert_runs_agree_with_the_tasks(conn)


def test_a_write_after_a_run_in_the_same_transaction_is_noted_again(world):
    conn = world.conn
    org = world.orgs["auckland"]["id"]
    first, second = two_old_tasks_of_one_day(conn, org)
    with transaction(conn) as cur:
        cur.execute("UPDATE celaest.processed_tasks SET cost_usd = 2 WHERE id = %s", (first,))
        cur.execute("SELECT celaest.aggregate_roi('daily', %s, %s)", (FROM, TO))  # consumes the note
        cur.execute("UPDATE celaest.processed_tasks SET status = 'failed' WHERE id = %s", (second,))
    assert stale_notes(conn) == 1
    assert_runs_agree_with_the_tasks(conn)


def test_a_new_time_zone_or_new_manual_minutes_are_seen(world):
    conn = world.conn
    assert_runs_agree_with_the_tasks(conn)
    org = world.orgs["utc"]
    with conn.cursor() as cur:
        cur.execute("UPDATE celaest.organizations SET settings = settings || '{\"timezone\": \"Asia/Tokyo\"}'"
                    " WHERE id = %s", (org["id"],))
        cur.execute("UPDATE celaest.prompts_master SET metadata = '{\"manual_minutes\": \"3.25\"}' WHERE id = %s",
                    (world.prompts["roi-twelve"],))
    assert stale_notes(conn) > 0
    try:
        assert_runs_agree_with_the_tasks(conn)
        assert_runs_agree_with_the_tasks(conn, "monthly", FROM, TO)
        zones = rows(conn, "SELECT DISTINCT timezone FROM celaest._roi_days WHERE organization_id = %s", (org["id"],))
        assert zones == [("Asia/Tokyo",)]
    finally:
        with conn.cursor() as cur:
            cur.execute("UPDATE celaest.organizations SET settings = settings - 'timezone' WHERE id = %s", (org["id"],))
            cur.execute("UPDATE celaest.prompts_master SET metadata = '{\"manual_minutes\": 12}' WHERE id = %s",
                        (world.prompts["roi-twelve"],))
    assert_runs_agree_with_the_tasks(conn)


def test_a_run_left_open_makes_no_other_run_wait(world):
    conn = world.conn
    assert_runs_agree_with_the_tasks(conn)
    holder = connect(DB)
    other = connect(DB)
    try:
        holder.autocommit = False
        with holder.cursor() as cur:   # holds the store's lock until it ends
            cur.execute("SELECT celaest.aggregate_roi('daily', %s, %s)", (FROM, TO))
        task, _ = old_task(conn, world.orgs["madrid"]["id"], offset=3)
        with conn.cursor() as cur:
            cur.execute("UPDATE celaest.processed_tasks SET status = 'failed', execution_time_ms = NULL"
                        " WHERE id = %s", (task,))
        with other.cursor() as cur:
            cur.execute("SET statement_timeout = '20s'")
        notes = stale_notes(conn)
        assert notes == 1
        days = stored_days(conn)
        # Reads the stored days the note does not touch and the tasks of the others; stores nothing.
        assert_runs_agree_with_the_tasks(other)
        assert stale_notes(conn) == notes and stored_days(conn) == days
        holder.rollback()
        assert_runs_agree_with_the_tasks(conn)
        assert stale_notes(conn) == 0
    finally:
        holder.close()
        other.close()


def test_a_repeatable_read_run_stores_nothing(world):
    conn = world.conn
    with conn.cursor() as cur:
        cur.execute("DELETE FROM celaest._roi_days")
    with transaction(conn) as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("SELECT celaest.aggregate_roi('daily', %s, %s)", (FROM, TO))
        cur.execute("SELECT count(*) FROM celaest._roi_days")
        assert cur.fetchone()[0] == 0
    assert_runs_agree_with_the_tasks(conn)
    assert stored_days(conn) > 0


def test_a_corrupt_stored_day_is_an_error_naming_the_way_out(world):
    conn = world.conn
    assert_runs_agree_with_the_tasks(conn)
    with conn.cursor() as cur:
        cur.execute("UPDATE celaest._roi_days SET state = '\\x00010203'::bytea"
                    " WHERE ctid = (SELECT ctid FROM celaest._roi_days WHERE state IS NOT NULL LIMIT 1)")
    with pytest.raises(psycopg2.Error) as error:
        scalar(conn, "SELECT celaest.aggregate_roi('daily', %s, %s)", (FROM, TO))
    assert error.value.pgcode == "XX001"
    assert "DELETE FROM celaest._roi_days" in error.value.pgerror + (error.value.diag.message_hint or "")
    with conn.cursor() as cur:
        cur.execute("DELETE FROM celaest._roi_days")
    assert_runs_agree_with_the_tasks(conn)


def test_rows_changed_by_hand_are_put_right_and_only_they_are_rewritten(world):
    conn = world.conn
    assert_runs_agree_with_the_tasks(conn)
    org = world.orgs["madrid"]["id"]
    first, second, third = [r[0] for r in rows(
        conn, "SELECT period_start FROM celaest.roi_metrics WHERE organization_id = %s AND period_type = 'daily'"
              " AND period_start BETWEEN %s AND %s ORDER BY period_start LIMIT 3", (org, FROM, TO))]
    with conn.cursor() as cur:
        cur.execute("UPDATE celaest.roi_metrics SET tasks_completed = tasks_completed + 1,"
                    " metadata = metadata || '{\"note\": \"kept\"}' WHERE organization_id = %s"
                    " AND period_type = 'daily' AND period_start = %s", (org, first))
        cur.execute("UPDATE celaest.roi_metrics SET metadata = metadata || '{\"hourly_rate\": 1}'"
                    " WHERE organization_id = %s AND period_type = 'daily' AND period_start = %s", (org, second))
        cur.execute("UPDATE celaest.roi_metrics SET cost_ai = cost_ai + 0.001::numeric(12,3)"
                    " WHERE organization_id = %s AND period_type = 'daily' AND period_start = %s", (org, third))
    before = dict(rows(conn, "SELECT id, updated_at FROM celaest.roi_metrics WHERE period_type = 'daily'"))
    assert_runs_agree_with_the_tasks(conn)
    after = dict(rows(conn, "SELECT id, updated_at FROM celaest.roi_metrics WHERE period_type = 'daily'"))
    rewritten = {rid for rid in after if after[rid] != before.get(rid)}
    expected = {r[0] for r in rows(conn, "SELECT id FROM celaest.roi_metrics WHERE organization_id = %s"
                                         " AND period_type = 'daily' AND period_start IN (%s, %s)",
                                   (org, first, second))}
    # cost_ai is numeric(12,2): the hand-made 0.001 rounds away and that row was never different.
    assert rewritten == expected
    note, rate = rows(conn, "SELECT metadata->>'note', metadata->>'hourly_rate' FROM celaest.roi_metrics"
                            " WHERE organization_id = %s AND period_type = 'daily' AND period_start = %s",
                      (org, first))[0]
    assert note == "kept" and rate == str(world.orgs["madrid"]["rate"])


def test_a_service_backend_rewriting_old_tasks_needs_no_right_on_the_bookkeeping(world):
    """The notes are written as the extension's owner: a service role may not touch _roi_stale
    itself, yet its late writes are noted (and nothing else changes for it)."""
    conn = world.conn
    assert_runs_agree_with_the_tasks(conn)
    task, _ = old_task(conn, world.orgs["kolkata"]["id"], offset=7)
    with conn.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS it_roi_service")
        cur.execute("CREATE ROLE it_roi_service NOLOGIN")
        cur.execute("SELECT celaest.grant_access('it_roi_service', 'service')")
    try:
        with transaction(conn) as cur:
            cur.execute("SET LOCAL ROLE it_roi_service")
            with pytest.raises(psycopg2.Error) as refused:
                cur.execute("SAVEPOINT s; INSERT INTO celaest._roi_stale VALUES (NULL, NULL, NULL, NULL)")
            assert refused.value.pgcode == "42501"
            cur.execute("ROLLBACK TO SAVEPOINT s")
            cur.execute("UPDATE celaest.processed_tasks SET status = 'failed', cost_usd = 9 WHERE id = %s", (task,))
            assert cur.rowcount == 1
        assert stale_notes(conn) == 1
        assert_runs_agree_with_the_tasks(conn)
    finally:
        with conn.cursor() as cur:
            cur.execute("SELECT celaest.revoke_access('it_roi_service')")
            cur.execute("DROP OWNED BY it_roi_service")
            cur.execute("DROP ROLE it_roi_service")


def test_a_run_after_a_write_after_a_run_in_one_transaction_sees_the_write(world):
    conn = world.conn
    task, _ = old_task(conn, world.orgs["new_york"]["id"], offset=11)
    with transaction(conn) as cur:
        cur.execute("DELETE FROM celaest._roi_days")
        assert_runs_agree_with_the_tasks(conn)            # stores the days, in this transaction
        cur.execute("UPDATE celaest.processed_tasks SET status = 'failed', execution_time_ms = 1 WHERE id = %s",
                    (task,))
        assert_runs_agree_with_the_tasks(conn)            # must not use the stored day just changed
    assert_runs_agree_with_the_tasks(conn)


def test_truncate_makes_every_stored_day_stale(world):
    conn = world.conn
    assert_runs_agree_with_the_tasks(conn)
    with conn.cursor() as cur:
        cur.execute("TRUNCATE celaest.processed_tasks CASCADE")
    assert stale_notes(conn) == 1
    assert_runs_agree_with_the_tasks(conn)
    assert scalar(conn, "SELECT count(*) FROM celaest._roi_days WHERE state IS NOT NULL") == 0
    assert scalar(conn, "SELECT sum(tasks_completed) FROM celaest.roi_metrics WHERE period_type = 'daily'"
                        " AND period_start BETWEEN %s AND %s", (FROM, TO)) == 0
