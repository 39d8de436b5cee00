"""The launcher serves every database with the extension (API.md "Operations").

Runs in its own cluster (scripts/test.sh: CELAEST_DATABASES= scripts/cluster.sh ...), where
celaest.databases is empty: every connectable database is a candidate. Databases come and go
while the server runs; worker_status(), asked from any served database, shows every worker.
"""

import time

import psycopg2
import pytest

ROLES = ("celaest maintenance", "celaest batch runner", "celaest ledger writer")


def connect(dbname):
    conn = psycopg2.connect(dbname=dbname)
    conn.autocommit = True
    return conn


def run(dbname, sql, params=None):
    conn = connect(dbname)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def create_database(name, extension=True):
    run("postgres", 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    run("postgres", 'CREATE DATABASE "%s"' % name)
    if extension:
        run(name, "SET client_min_messages = warning; CREATE EXTENSION celaest CASCADE")


def workers_by_database():
    """{database: {role: pid}} of live workers, from pg_stat_activity (the truth)."""
    found = {}
    for datname, backend_type, pid in run("postgres", "SELECT datname, backend_type, pid FROM pg_stat_activity"
                                                      " WHERE backend_type LIKE 'celaest %'"):
        found.setdefault(datname, {})[backend_type] = pid
    return found


def wait_until(predicate, timeout=6.0, what="condition"):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.1)


def serves(dbname):
    return set(ROLES) <= set(workers_by_database().get(dbname, {}))


@pytest.fixture(scope="module")
def databases():
    # postgres gets the extension too: worker_status() is asked from there.
    run("postgres", "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS celaest CASCADE")
    create_database("launch_a")
    create_database("launch_b")
    create_database("launch_plain", extension=False)
    yield
    for name in ("launch_a", "launch_b", "launch_plain", "launch_c", "launch_renamed", "launch_copy", "launch_spool"):
        run("postgres", 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def test_every_database_with_the_extension_gets_its_workers(databases):
    wait_until(lambda: serves("launch_a") and serves("launch_b") and serves("postgres"), what="workers")
    # A database without the extension has none (its workers looked once and left).
    time.sleep(1.5)
    assert "launch_plain" not in workers_by_database()
    rows = run("postgres", "SELECT worker, pid, database, state FROM celaest.worker_status()")
    listed = {(w, d) for w, pid, d, state in rows if pid}
    for db in ("launch_a", "launch_b", "postgres"):
        for role in ROLES:
            assert (role, db) in listed, rows
    assert ("celaest launcher", None) in {(w, d) for w, _, d, _ in rows}
    assert not [r for r in rows if r[2] == "launch_plain"], rows


def test_create_extension_starts_workers_within_seconds(databases):
    started = time.time()
    run("launch_plain", "SET client_min_messages = warning; CREATE EXTENSION celaest CASCADE")
    wait_until(lambda: serves("launch_plain"), timeout=3, what="workers after CREATE EXTENSION")
    assert time.time() - started < 3


def test_drop_extension_stops_them(databases):
    create_database("launch_c")
    wait_until(lambda: serves("launch_c"), what="launch_c workers")
    run("launch_c", "DROP EXTENSION celaest")
    wait_until(lambda: "launch_c" not in workers_by_database(), timeout=4, what="workers to leave launch_c")
    time.sleep(1.5)  # and they stay gone
    assert "launch_c" not in workers_by_database()


def test_a_terminated_worker_is_started_again(databases):
    wait_until(lambda: serves("launch_a"), what="launch_a workers")
    runner = workers_by_database()["launch_a"]["celaest batch runner"]
    run("postgres", "SELECT pg_terminate_backend(%s)", (runner,))
    restarted = wait_until(lambda: (workers_by_database().get("launch_a", {}).get("celaest batch runner")
                                    not in (None, runner)), timeout=5, what="the runner to restart")
    assert restarted


def test_a_worker_asked_to_stop_leaves_within_a_second(databases):
    # issue 12 §1 (pg_cron's recipe): SIGTERM ends a worker within a second, whichever it is
    # and whatever it waits on; the launcher then starts a new one.
    wait_until(lambda: serves("launch_a"), what="launch_a workers")
    for role in ROLES:
        pid = workers_by_database()["launch_a"][role]
        # With a timeout, pg_terminate_backend waits for the process to exit: true if it did.
        assert run("postgres", "SELECT pg_terminate_backend(%s, 1000)", (pid,)) == [(True,)], role
        wait_until(lambda: serves("launch_a"), what="launch_a workers again")


def test_ddl_that_needs_an_idle_database_is_not_blocked(databases):
    wait_until(lambda: serves("launch_b"), what="launch_b workers")
    # CREATE DATABASE … TEMPLATE, ALTER DATABASE … RENAME and DROP DATABASE (no FORCE) need a
    # database without connections: the workers step aside.
    run("postgres", 'CREATE DATABASE launch_copy TEMPLATE launch_b')
    run("postgres", 'ALTER DATABASE launch_b RENAME TO launch_renamed')
    wait_until(lambda: serves("launch_renamed"), timeout=15, what="workers in the renamed database")
    run("postgres", 'DROP DATABASE launch_renamed')
    wait_until(lambda: "launch_renamed" not in workers_by_database(), timeout=4, what="workers gone")
    # The copy has the extension (it came with the template): it is served too.
    wait_until(lambda: serves("launch_copy"), timeout=15, what="workers in the copy")


def test_drop_database_releases_its_ledger_spool(databases):
    # issue 12 §1 "release everything": records a dropped database's backends handed on (in
    # $PGDATA/celaest_ledger, named by the database's oid) that nobody wrote before the drop
    # are removed by the launcher, not kept forever; other databases' files stay.
    create_database("launch_spool")
    oid = run("postgres", "SELECT oid FROM pg_database WHERE datname = 'launch_spool'")[0][0]
    run("postgres", 'DROP DATABASE launch_spool WITH (FORCE)')
    kept_oid = run("postgres", "SELECT oid FROM pg_database WHERE datname = 'postgres'")[0][0]
    # Files as a backend leaves them (a record, one set aside): the writer of `postgres` would
    # write a real record at once, so the kept one is a file it sets aside.
    run("postgres", "COPY (SELECT 1) TO PROGRAM 'mkdir -p celaest_ledger'")  # the server's cwd: its data directory
    dropped = ["%d.1.2.3.rec" % oid, "%d.1.2.4.rec.failed" % oid]
    kept = "%d.1.2.5.rec.failed" % kept_oid
    data = run("postgres", "SHOW data_directory")[0][0]
    for name in dropped + [kept]:
        run("postgres", "COPY (SELECT '{}') TO '%s/celaest_ledger/%s'" % (data, name))

    def spool():
        return {r[0] for r in run("postgres", "SELECT pg_ls_dir('celaest_ledger')")}

    assert set(dropped) <= spool()
    wait_until(lambda: not (set(dropped) & spool()), timeout=15, what="the dropped database's spool files to go")
    assert kept in spool()
    run("postgres", "COPY (SELECT 1) TO PROGRAM 'rm -f celaest_ledger/%s'" % kept)
