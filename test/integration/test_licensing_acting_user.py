"""consume_quota, set_license_status and issue_license called for a user (API.md, "Who is
calling, and who may act for whom"; README "Security model").

A service caller acting for a user (SET celaest.user_id) acts with that user's rights. Before,
row-level security hid the license row from consume_quota's conditional UPDATE while the
refusal re-check still saw room, so the call retried until 40001, and set_license_status
answered 22023 "does not exist" for a license the caller reads. Now:
  - consume_quota (every metric): the acting user spends for its own organization when its
    role may run AI calls (operators and above; the charge is made as the extension's owner,
    as exact as any other); a viewer, a user of another organization, a readonly caller: 42501
    naming the function, never another user; the counter stays as it was.
  - set_license_status, issue_license (licensing administration): service callers acting for
    no user and super_admins; everyone else 42501, whatever the license.
  - An end user (authenticated) may call neither (42501) and reads only its organization.
Runs in a database no ledger writer serves and in `postgres`, which the ledger writer serves
(consume_quota's fast path differs between them).
"""
import json
import threading
import time
import uuid

import psycopg2
import pytest

from conftest import connect, create_database, scalar

OWN_DB = "celaest_it_acting"
SERVED_DB = "postgres"
SERVICE_ROLE = "it_acting_service"
END_USER_ROLE = "it_acting_enduser"
READONLY_ROLE = "it_acting_reporter"
QUOTA = 10


def as_json(value):
    return value if isinstance(value, (dict, list)) or value is None else json.loads(value)


def tag():
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module", params=["unserved", "served"])
def world(request):
    if request.param == "served":
        dbname = SERVED_DB
    else:
        create_database(OWN_DB)
        dbname = OWN_DB
    admin = connect(dbname)
    if request.param == "served":
        scalar(admin, "SET client_min_messages = warning")
        scalar(admin, "CREATE EXTENSION IF NOT EXISTS celaest CASCADE")
        deadline = time.time() + 30
        while not as_json(scalar(admin, "SELECT celaest._ledger_state()"))["served"]:
            assert time.time() < deadline, "no ledger writer serves %s" % dbname
            time.sleep(0.1)
    for role in (SERVICE_ROLE, END_USER_ROLE, READONLY_ROLE):
        if not scalar(admin, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)):
            scalar(admin, "CREATE ROLE %s NOLOGIN" % role)
    scalar(admin, "SELECT celaest.grant_access(%s, 'service')", (SERVICE_ROLE,))
    scalar(admin, "SELECT celaest.grant_access(%s, 'authenticated')", (END_USER_ROLE,))
    scalar(admin, "SELECT celaest.grant_access(%s, 'readonly')", (READONLY_ROLE,))
    has_auth_uid = request.param == "unserved"
    if has_auth_uid:  # Supabase's auth.uid(), reading the request's JWT claims
        scalar(admin, "CREATE SCHEMA auth")
        scalar(admin, "GRANT USAGE ON SCHEMA auth TO PUBLIC")
        scalar(admin, """CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
            SELECT (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid $$""")

    t = tag()
    w = {"dbname": dbname, "admin": admin, "orgs": {}, "users": {}, "licenses": {}, "has_auth_uid": has_auth_uid}
    plan = "acting-" + t
    scalar(admin, "INSERT INTO celaest.subscription_plans (code, name, limits) VALUES (%s, %s, %s)",
           (plan, "Acting " + t, json.dumps({"max_users": 20, "max_ai_requests_per_month": QUOTA,
                                             "max_storage_gb": 1, "max_concurrent_tasks": 5,
                                             "max_batch_size": 10})))
    for org in ("A", "B", "C"):
        org_id = str(uuid.uuid4())
        w["orgs"][org] = org_id
        scalar(admin, "INSERT INTO celaest.organizations (id, name, slug) VALUES (%s, %s, %s)",
               (org_id, "Acting %s %s" % (org, t), "acting-%s-%s" % (org.lower(), t)))
        for role in ("viewer", "operator", "manager", "admin", "super_admin") if org == "A" else ("admin",):
            user_id = str(uuid.uuid4())
            w["users"][(org, role)] = user_id
            scalar(admin, "INSERT INTO celaest.users_profile (id, organization_id, email, role)"
                          " VALUES (%s, %s, %s, %s)", (user_id, org_id, "%s-%s-%s@acting.test" % (org, role, t), role))
        w["licenses"][org] = as_json(scalar(admin, "SELECT celaest.issue_license(%s, %s)", (org_id, plan)))["license_id"]
    yield w
    admin.close()
    # The roles go with the test: a level's group members get privileges in every database
    # installed later (test/upgrade compares two such databases' ACLs).
    cleanup = connect("postgres")
    try:
        if request.param == "unserved":
            scalar(cleanup, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % OWN_DB)
        for role in (SERVICE_ROLE, END_USER_ROLE, READONLY_ROLE):
            scalar(cleanup, "DROP OWNED BY %s" % role)
            scalar(cleanup, "DROP ROLE %s" % role)
    finally:
        cleanup.close()


def service_for(w, user):
    """A service caller acting for `user` (None: for nobody)."""
    conn = connect(w["dbname"])
    scalar(conn, "SET ROLE %s" % SERVICE_ROLE)
    if user is not None:
        scalar(conn, "SELECT set_config('celaest.user_id', %s, false)", (user,))
    return conn


def end_user(w, user):
    conn = connect(w["dbname"])
    scalar(conn, "SET ROLE %s" % END_USER_ROLE)
    scalar(conn, "SELECT set_config('request.jwt.claims', %s, false)", (json.dumps({"sub": user}),))
    return conn


def counters(w, org):
    return tuple(scalar(w["admin"], "SELECT ARRAY[ai_requests_used, storage_used_bytes] FROM celaest.licenses"
                                    " WHERE id = %s", (w["licenses"][org],)))


def refused(conn, sql, params=None):
    with pytest.raises(psycopg2.Error) as exc:
        scalar(conn, sql, params)
    return exc.value


def assert_names_no_user(w, error):
    for user in w["users"].values():
        assert user not in error.pgerror


@pytest.mark.parametrize("role", ["operator", "manager", "admin", "super_admin"])
def test_service_acting_for_a_user_who_may_spend_consumes(world, role):
    w = world
    ai_before, storage_before = counters(w, "A")
    conn = service_for(w, w["users"][("A", role)])
    try:
        remaining = scalar(conn, "SELECT celaest.consume_quota(%s, 'ai_requests', 1)", (w["orgs"]["A"],))
        assert remaining == QUOTA - ai_before - 1
        assert scalar(conn, "SELECT celaest.consume_quota(%s, 'storage_gb', 1024)", (w["orgs"]["A"],)) \
            == 1073741824 - storage_before - 1024
        # The counted metrics are checked, and change nothing.
        assert scalar(conn, "SELECT celaest.consume_quota(%s, 'batch_size', 3)", (w["orgs"]["A"],)) == 7
        # check_limit (reads, the caller's row-level security) sees the charge.
        check = as_json(scalar(conn, "SELECT celaest.check_limit(%s, 'ai_requests', 1)", (w["orgs"]["A"],)))
        assert check["code"] == "VALID" and check["used"] == ai_before + 1
        # Over the quota: LC010, not 40001, and nothing charged.
        error = refused(conn, "SELECT celaest.consume_quota(%s, 'ai_requests', %s)", (w["orgs"]["A"], QUOTA + 1))
        assert error.pgcode == "LC010", error.pgerror
        # A rolled-back consumption leaves the counter as it was.
        scalar(conn, "BEGIN")
        scalar(conn, "SELECT celaest.consume_quota(%s, 'ai_requests', 1)", (w["orgs"]["A"],))
        scalar(conn, "ROLLBACK")
    finally:
        conn.close()
    assert counters(w, "A") == (ai_before + 1, storage_before + 1024)
    scalar(w["admin"], "UPDATE celaest.licenses SET ai_requests_used = 0, storage_used_bytes = 0 WHERE id = %s",
           (w["licenses"]["A"],))


@pytest.mark.parametrize("metric, amount", [("ai_requests", 1), ("storage_gb", 1024), ("users", 1)])
def test_service_acting_for_a_viewer_is_refused(world, metric, amount):
    w = world
    before = counters(w, "A")
    conn = service_for(w, w["users"][("A", "viewer")])
    try:
        error = refused(conn, "SELECT celaest.consume_quota(%s, %s, %s)", (w["orgs"]["A"], metric, amount))
        assert error.pgcode == "42501", error.pgerror
        assert "consume_quota" in error.pgerror and "may not spend" in error.pgerror
        assert_names_no_user(w, error)
        # The viewer still reads its organization's quota.
        assert as_json(scalar(conn, "SELECT celaest.check_limit(%s, 'ai_requests')", (w["orgs"]["A"],)))["code"] \
            == "VALID"
        # The general path called directly refuses too, rather than retrying until 40001.
        error = refused(conn, "SELECT celaest._take_quota(%s, 'ai_requests', 1)", (w["orgs"]["A"],))
        assert error.pgcode == "42501", error.pgerror
        # Nor is a release "no license in force" (LC001) for a license the caller reads.
        error = refused(conn, "SELECT celaest._release_quota(%s, 'ai_requests', 1)", (w["orgs"]["A"],))
        assert error.pgcode == "42501", error.pgerror
    finally:
        conn.close()
    assert counters(w, "A") == before


def test_a_user_of_another_organization_is_refused(world):
    w = world
    before_a, before_b = counters(w, "A"), counters(w, "B")
    conn = service_for(w, w["users"][("B", "admin")])
    try:
        for metric in ("ai_requests", "storage_gb"):
            error = refused(conn, "SELECT celaest.consume_quota(%s, %s, 1)", (w["orgs"]["A"], metric))
            assert error.pgcode == "42501", error.pgerror
            assert "consume_quota" in error.pgerror
            assert_names_no_user(w, error)
        # A's quota is not even visible to B's user; B's own is spent as usual.
        assert as_json(scalar(conn, "SELECT celaest.check_limit(%s, 'ai_requests')", (w["orgs"]["A"],)))["code"] \
            == "NOT_FOUND"
        assert scalar(conn, "SELECT celaest.consume_quota(%s)", (w["orgs"]["B"],)) == QUOTA - before_b[0] - 1
    finally:
        conn.close()
    assert counters(w, "A") == before_a
    assert counters(w, "B") == (before_b[0] + 1, before_b[1])


def test_readonly_and_unknown_users_are_refused(world):
    w = world
    before = counters(w, "A")
    conn = service_for(w, str(uuid.uuid4()))  # no such profile
    try:
        error = refused(conn, "SELECT celaest.consume_quota(%s)", (w["orgs"]["A"],))
        assert error.pgcode == "42501", error.pgerror
    finally:
        conn.close()
    conn = connect(w["dbname"])
    try:
        scalar(conn, "SET ROLE %s" % READONLY_ROLE)
        error = refused(conn, "SELECT celaest.consume_quota(%s)", (w["orgs"]["A"],))
        assert error.pgcode == "42501", error.pgerror
    finally:
        conn.close()
    assert counters(w, "A") == before


def test_consumptions_for_an_acting_user_are_exact_under_concurrency(world):
    w = world
    org = w["orgs"]["C"]
    scalar(w["admin"], "UPDATE celaest.licenses SET ai_requests_used = 0 WHERE id = %s", (w["licenses"]["C"],))
    outcomes = []
    lock = threading.Lock()

    def spender():
        conn = service_for(w, w["users"][("C", "admin")])
        try:
            for _ in range(6):
                try:
                    scalar(conn, "SELECT celaest.consume_quota(%s)", (org,))
                    result = "granted"
                except psycopg2.Error as exc:
                    result = exc.pgcode
                with lock:
                    outcomes.append(result)
        finally:
            conn.close()

    threads = [threading.Thread(target=spender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(outcomes)) == ["LC010", "granted"], outcomes
    assert outcomes.count("granted") == QUOTA
    assert counters(w, "C")[0] == QUOTA


def test_licensing_administration_needs_a_service_caller_acting_for_no_user(world):
    w = world
    license_a = w["licenses"]["A"]
    status = lambda: scalar(w["admin"], "SELECT status::text FROM celaest.licenses WHERE id = %s", (license_a,))  # noqa: E731
    for role in ("viewer", "operator", "admin"):
        conn = service_for(w, w["users"][("A", role)])
        try:
            # The caller reads the license, and is told it may not change it (not "does not exist").
            assert scalar(conn, "SELECT count(*) FROM celaest.licenses WHERE id = %s", (license_a,)) == 1
            error = refused(conn, "SELECT celaest.set_license_status(%s, 'suspended', 'acting test')", (license_a,))
            assert error.pgcode == "42501" and "set_license_status" in error.pgerror, error.pgerror
            assert_names_no_user(w, error)
            # The same answer for a license it cannot read, or none at all: nothing is revealed.
            for other in (w["licenses"]["B"], str(uuid.uuid4())):
                error = refused(conn, "SELECT celaest.set_license_status(%s, 'suspended')", (other,))
                assert error.pgcode == "42501", error.pgerror
            error = refused(conn, "SELECT celaest.issue_license(%s, 'any-plan')", (w["orgs"]["A"],))
            assert error.pgcode == "42501" and "issue_license" in error.pgerror, error.pgerror
        finally:
            conn.close()
    assert status() == "active"
    # A super_admin, and a service caller acting for no user, administer licenses.
    for user in (w["users"][("A", "super_admin")], None):
        conn = service_for(w, user)
        try:
            assert as_json(scalar(conn, "SELECT to_jsonb(celaest.set_license_status(%s, 'suspended', 'acting test'))",
                                  (license_a,)))["status"] == "suspended"
            assert as_json(scalar(conn, "SELECT to_jsonb(celaest.set_license_status(%s, 'active', 'acting test'))",
                                  (license_a,)))["status"] == "active"
        finally:
            conn.close()
    assert status() == "active"


def test_an_end_user_calls_neither_consume_quota_nor_set_license_status(world):
    w = world
    if not w["has_auth_uid"]:
        pytest.skip("auth.uid() is created only in the test's own database")
    before = counters(w, "A")
    for role in ("operator", "admin", "viewer"):
        conn = end_user(w, w["users"][("A", role)])
        try:
            for sql, params in (("SELECT celaest.consume_quota(%s)", (w["orgs"]["A"],)),
                                ("SELECT celaest.consume_quota(%s, 'storage_gb', 1)", (w["orgs"]["A"],)),
                                ("SELECT celaest.set_license_status(%s, 'suspended')", (w["licenses"]["A"],)),
                                ("SELECT celaest._take_quota(%s, 'ai_requests', 1)", (w["orgs"]["A"],))):
                error = refused(conn, sql, params)
                assert error.pgcode == "42501", (sql, error.pgerror)
                assert_names_no_user(w, error)
            # Reads: its own organization's quota, nothing of B's.
            own = as_json(scalar(conn, "SELECT celaest.check_limit(%s, 'ai_requests')", (w["orgs"]["A"],)))
            assert own["code"] == "VALID" and own["used"] == before[0]
            assert as_json(scalar(conn, "SELECT celaest.check_limit(%s, 'ai_requests')", (w["orgs"]["B"],)))["code"] \
                == "NOT_FOUND"
        finally:
            conn.close()
    assert counters(w, "A") == before
