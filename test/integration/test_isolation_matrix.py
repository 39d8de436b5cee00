"""The isolation matrix (issue 11): generated, not hand-picked.

For every table, view and SQL function of schema celaest, as each kind of caller (an `anon`-like
role, an end user of organization A in each of the five roles, `readonly`), try to read, write
and call on organization B's objects, and compare with the rules of API.md ("Who is calling,
and who may act for whom"): zero rows of B read or written by A's users (a super_admin aside),
readonly reads but writes nothing, every refusal is 42501 naming the function, and nothing of
B (nor A's quota) changes. Then the impersonation attempts: a differing p_user_id, SET
celaest.user_id, SET ROLE to a more trusted role, and a SECURITY DEFINER path.

Supabase-shaped: the roles anon, authenticated (NOINHERIT) and service_role, and auth.uid()
reading request.jwt.claims, as on a Supabase project.
"""

import json
import uuid

import psycopg2
import pytest

from conftest import connect, create_database, rows, scalar

DB = "celaest_it_matrix"
ROLES = ("viewer", "operator", "manager", "admin", "super_admin")
TENANT_TABLES = ("organizations", "users_profile", "licenses", "license_usage_log", "task_batches",
                 "processed_tasks", "roi_metrics", "audit_logs", "telemetry_events")
PLATFORM_TABLES = ("subscription_plans", "ai_models", "prompts_master", "feature_flags", "ai_api_pool",
                   "system_config")
VIEWS = ("v_active_licenses", "v_api_pool_status", "v_daily_task_metrics")
READONLY_ROLE = "it_matrix_reporter"
LOGIN_ROLE = "it_matrix_enduser"


def org_column(table):
    return "id" if table == "organizations" else "organization_id"


@pytest.fixture(scope="module")
def world():
    admin0 = connect("postgres")
    for role, options in (("anon", "NOLOGIN NOINHERIT"), ("authenticated", "NOLOGIN NOINHERIT"),
                          ("service_role", "NOLOGIN NOINHERIT"), (READONLY_ROLE, "NOLOGIN"),
                          (LOGIN_ROLE, "LOGIN")):
        if not scalar(admin0, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)):
            scalar(admin0, "CREATE ROLE %s %s" % (role, options))
    admin0.close()
    create_database(DB)
    admin = connect(DB)
    scalar(admin, "CREATE SCHEMA auth")
    scalar(admin, "GRANT USAGE ON SCHEMA auth TO PUBLIC")
    scalar(admin, """CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
        SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid $$""")
    # Supabase's roles existed at install: the extension gave them their levels.
    levels = {r["role_name"]: r["level"] for r in rows(admin, "SELECT * FROM celaest.access_levels()")}
    assert levels.get("service_role") == "service" and levels.get("authenticated") == "authenticated"
    assert "anon" not in levels
    scalar(admin, "SELECT celaest.grant_access(%s, 'readonly')", (READONLY_ROLE,))
    scalar(admin, "SELECT celaest.grant_access(%s, 'authenticated')", (LOGIN_ROLE,))
    scalar(admin, "ALTER ROLE %s PASSWORD 'matrix-login'" % LOGIN_ROLE)

    w = {"admin": admin, "orgs": {}, "users": {}}
    scalar(admin, "INSERT INTO celaest.subscription_plans (code, name) VALUES ('matrix', 'Matrix plan')")
    for org in ("A", "B"):
        org_id = str(uuid.uuid4())
        w["orgs"][org] = org_id
        scalar(admin, "INSERT INTO celaest.organizations (id, name, slug) VALUES (%s, %s, %s)",
               (org_id, "Matrix " + org, "matrix-" + org.lower()))
        for role in ROLES if org == "A" else ("admin", "operator"):
            user_id = str(uuid.uuid4())
            w["users"][(org, role)] = user_id
            scalar(admin, "INSERT INTO celaest.users_profile (id, organization_id, email, role)"
                          " VALUES (%s, %s, %s, %s)", (user_id, org_id, "%s-%s@matrix.test" % (org, role), role))
        issued = scalar(admin, "SELECT celaest.issue_license(%s, 'matrix')", (org_id,))
        w["license_" + org] = issued["license_id"]
        w["key_" + org] = issued["license_key"]
        batch = str(uuid.uuid4())
        w["batch_" + org] = batch
        scalar(admin, "INSERT INTO celaest.task_batches (id, organization_id, user_id, name, total_tasks)"
                      " VALUES (%s, %s, %s, 'matrix', 1)", (batch, org_id, w["users"][(org, "operator")]))
        scalar(admin, "INSERT INTO celaest.processed_tasks (organization_id, user_id, batch_id, status)"
                      " VALUES (%s, %s, %s, 'pending')", (org_id, w["users"][(org, "operator")], batch))
        scalar(admin, "INSERT INTO celaest.processed_tasks (organization_id, user_id, status, completed_at)"
                      " VALUES (%s, %s, 'completed', now())", (org_id, w["users"][(org, "operator")]))
        scalar(admin, "INSERT INTO celaest.telemetry_events (organization_id, event_type, event_name)"
                      " VALUES (%s, 'ui', 'matrix')", (org_id,))
        scalar(admin, "SELECT celaest.consume_quota(%s)", (org_id,))
        scalar(admin, "SELECT celaest.aggregate_roi('daily', current_date, NULL, %s)", (org_id,))
    scalar(admin, "SELECT celaest.config_set('matrix.secret', '\"s3cr3t-matrix\"', NULL, true)")
    scalar(admin, "INSERT INTO celaest.ai_api_pool (provider, key_name, key_value_encrypted)"
                  " VALUES ('groq', 'matrix-key', '\\x00')")
    w["key_id"] = scalar(admin, "SELECT id FROM celaest.ai_api_pool WHERE key_name = 'matrix-key'")
    yield w
    admin.close()


def fingerprint(w, org):
    """Everything of an organization, as the owner sees it: any write changes it."""
    admin = w["admin"]
    parts = []
    for table in TENANT_TABLES:
        parts.append(scalar(admin, "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                                   " FROM celaest.%s AS t WHERE %s = %%s" % (table, org_column(table)),
                            (w["orgs"][org],)))
    return parts


def caller(w, kind):
    """A connection acting as one kind of caller; returns (conn, role name)."""
    conn = connect(DB)
    if kind == "anon":
        scalar(conn, "SET ROLE anon")
        return conn, "anon"
    if kind == "readonly":
        scalar(conn, "SET ROLE %s" % READONLY_ROLE)
        return conn, READONLY_ROLE
    scalar(conn, "SET ROLE authenticated")
    scalar(conn, "SELECT set_config('request.jwt.claims', %s, false)",
           (json.dumps({"sub": w["users"][("A", kind)], "role": "authenticated"}),))
    return conn, "authenticated"


KINDS = ("anon",) + ROLES + ("readonly",)


def attempt(conn, sql, params=None):
    """(ok, sqlstate, message, result)."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            result = cur.fetchall() if cur.description else cur.rowcount
        return True, None, None, result
    except psycopg2.Error as exc:
        return False, exc.pgcode, exc.pgerror or "", None


@pytest.mark.parametrize("kind", KINDS)
def test_tables_and_views(world, kind):
    w = world
    conn, _ = caller(w, kind)
    before = fingerprint(w, "B")
    sees_every_org = kind in ("readonly", "super_admin")
    try:
        for table in TENANT_TABLES:
            col = org_column(table)
            ok, state, message, result = attempt(conn, "SELECT count(*) FROM celaest.%s WHERE %s = %%s"
                                                       % (table, col), (w["orgs"]["B"],))
            if kind == "anon":
                assert not ok and state == "42501" and table in message, (table, message)
                continue
            assert ok, (table, message)
            expected = scalar(w["admin"], "SELECT count(*) FROM celaest.%s WHERE %s = %%s" % (table, col),
                              (w["orgs"]["B"],)) if sees_every_org else 0
            assert result[0][0] == expected, (kind, table, result)
            # Writes on B's rows: refused (42501) or touching none.
            if kind == "super_admin":
                continue  # every organization is a super_admin's to change
            for sql in ("UPDATE celaest.%s SET %s = %s WHERE %s = %%s" % (table, col, col, col),
                        "DELETE FROM celaest.%s WHERE %s = %%s" % (table, col)):
                ok, state, message, result = attempt(conn, sql, (w["orgs"]["B"],))
                assert (not ok and state == "42501") or result == 0, (kind, sql, state, message, result)
        # Platform tables: readable, never their secrets; writable by nobody here but super_admin.
        for table in PLATFORM_TABLES:
            ok, state, message, result = attempt(conn, "SELECT count(*) FROM celaest.%s" % table
                                                 if table != "ai_api_pool" else
                                                 "SELECT count(id) FROM celaest.ai_api_pool")
            assert ok or (kind == "anon" and state == "42501"), (table, message)
        ok, state, message, _ = attempt(conn, "SELECT key_value_encrypted FROM celaest.ai_api_pool")
        assert not ok and state == "42501", message
        ok, state, message, result = attempt(conn, "SELECT value::text FROM celaest.system_config"
                                                   " WHERE key = 'matrix.secret'")
        assert (not ok and state == "42501") or result == [], (kind, result)
        for view in VIEWS:
            ok, state, message, result = attempt(conn, "SELECT * FROM celaest.%s" % view)
            if kind == "anon":
                assert not ok and state == "42501", message
                continue
            assert ok, message
            text = json.dumps(result, default=str)
            if not sees_every_org:
                assert w["orgs"]["B"] not in text and "matrix-b" not in text, (view, text)
    finally:
        conn.close()
    assert fingerprint(w, "B") == before


def argument_for(w, name, type_name):
    """A value for one argument of a generated call, aimed at organization B."""
    n = name or ""
    if type_name == "uuid":
        if "user" in n:
            return w["users"][("B", "admin")]
        if "batch" in n:
            return w["batch_B"]
        if "license" in n:
            return w["license_B"]
        if "key" in n:
            return w["key_id"]
        return w["orgs"]["B"]
    if type_name == "text":
        return {"p_metric": "ai_requests", "p_limit": "ai_requests", "p_plan_code": "matrix",
                "p_period_type": "daily", "p_level": "service", "p_license_key": "not-a-key",
                "p_key": "matrix.secret", "p_flag_key": "matrix", "p_dimension": "total"}.get(n, "x")
    if type_name == "jsonb":
        if n == "p_messages":
            return '[{"role": "user", "content": "x"}]'
        if n == "p_inputs":
            return '[{}]'
        return "{}"
    if type_name in ("integer", "bigint", "smallint"):
        return 1
    if type_name == "numeric":
        return 1
    if type_name == "boolean":
        return False
    if type_name == "date":
        return "2024-01-01"
    if type_name == "interval":
        return "0"
    if type_name.startswith("timestamp"):
        return "2024-01-01"
    if type_name == "regrole":
        return "anon"
    if type_name in ("oid", "name"):
        return "0" if type_name == "oid" else "x"
    return None  # enums and others: NULL


def generated_calls(w):
    admin = w["admin"]
    functions = rows(admin, """
        SELECT p.oid::regprocedure::text AS signature, p.proname AS name,
               coalesce(p.proargnames, '{}') AS arg_names,
               array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t) AS arg_types,
               p.pronargs AS nargs, p.proargmodes AS modes
          FROM pg_proc AS p
         WHERE p.pronamespace = 'celaest'::regnamespace
           AND p.prorettype <> 'trigger'::regtype AND p.prokind = 'f'
           -- aggregate support functions take "internal": no SQL caller can pass one
           AND NOT ('internal'::regtype = ANY (p.proargtypes::oid[]))
         ORDER BY p.proname""")
    calls = []
    for f in functions:
        names = list(f["arg_names"])[:f["nargs"]] if f["arg_names"] else [None] * f["nargs"]
        if f["modes"]:  # OUT arguments are not passed
            names = [nm for nm, mode in zip(f["arg_names"], f["modes"]) if mode in ("i", "b")]
        values = [argument_for(w, names[i] if i < len(names) else None, f["arg_types"][i])
                  for i in range(f["nargs"])]
        casts = ", ".join("%%s::%s" % t for t in f["arg_types"])
        calls.append((f["name"], f["signature"], "SELECT celaest.%s(%s)" % (f["name"], casts), values))
    return calls


@pytest.mark.parametrize("kind", KINDS)
def test_every_function(world, kind):
    w = world
    admin = w["admin"]
    conn, role = caller(w, kind)
    before_b = fingerprint(w, "B")
    quota_a = scalar(admin, "SELECT ai_requests_used FROM celaest.licenses WHERE id = %s", (w["license_A"],))
    called = 0
    try:
        for name, signature, sql, values in generated_calls(w):
            executable = scalar(admin, "SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, signature))
            ok, state, message, result = attempt(conn, sql, values)
            if not executable:
                assert not ok and state == "42501" and name in message, (kind, signature, state, message)
                continue
            called += 1
            if state == "42501":
                assert name in message or "permission denied" in message, (kind, signature, message)
            # Nothing of B is read through a function by A's users (the super_admin aside).
            if ok and kind not in ("super_admin", "readonly"):
                text = json.dumps(result, default=str)
                assert "matrix-b" not in text and w["key_B"] not in text, (kind, signature, text)
            # A refused call consumes nothing.
            if not ok and state == "42501":
                assert scalar(admin, "SELECT ai_requests_used FROM celaest.licenses WHERE id = %s",
                              (w["license_A"],)) == quota_a, (kind, signature)
        if kind == "anon":
            assert called == 1  # version()
    finally:
        conn.close()
    if kind != "super_admin":
        assert fingerprint(w, "B") == before_b, kind


@pytest.mark.parametrize("function, sql", [
    ("run_prompt", "SELECT celaest.run_prompt('x', '{}', %s)"),
    ("ai_chat", "SELECT celaest.ai_chat('[{\"role\": \"user\", \"content\": \"x\"}]', NULL, %s)"),
    ("submit_batch", "SELECT celaest.submit_batch('x', '[{}]', %s)"),
])
def test_impersonation_by_argument_is_refused(world, function, sql):
    w = world
    victim = w["users"][("B", "admin")]
    conn, _ = caller(w, "operator")
    before = fingerprint(w, "B")
    try:
        with pytest.raises(psycopg2.Error) as exc:
            scalar(conn, sql, (victim,))
        # submit_batch says 55000 first when no batch runner serves this database yet.
        if not (function == "submit_batch" and exc.value.pgcode == "55000"):
            assert exc.value.pgcode == "42501"
            assert function in exc.value.pgerror
        # The message names neither the other user nor the caller's token.
        assert victim not in exc.value.pgerror and w["users"][("A", "operator")] not in exc.value.pgerror
    finally:
        conn.close()
    assert fingerprint(w, "B") == before


def test_impersonation_by_setting_is_refused_everywhere(world):
    w = world
    victim = w["users"][("B", "admin")]
    conn, _ = caller(w, "admin")
    try:
        scalar(conn, "SELECT set_config('celaest.user_id', %s, false)", (victim,))
        for sql in ("SELECT count(*) FROM celaest.organizations",
                    "SELECT celaest.current_user_id()",
                    # A SECURITY DEFINER function of ours runs as the owner: the caller stays the end user.
                    "SELECT celaest.track_event('impersonated')",
                    "SELECT celaest.submit_batch('x', '[{}]')",
                    "SELECT celaest.batch_status('%s')" % w["batch_B"]):
            ok, state, message, result = attempt(conn, sql)
            assert not ok and (state == "42501" or ("submit_batch" in sql and state == "55000")), \
                (sql, state, message, result)
            assert victim not in message
        # The same id as the JWT's is harmless.
        scalar(conn, "SELECT set_config('celaest.user_id', %s, false)", (w["users"][("A", "admin")],))
        assert scalar(conn, "SELECT celaest.current_user_id()::text") == w["users"][("A", "admin")]
    finally:
        conn.close()


def test_set_role_to_a_more_trusted_role_is_refused(world):
    conn = connect(DB, user=LOGIN_ROLE, password="matrix-login")
    try:
        for target in ("service_role", "celaest_service", "postgres"):
            with pytest.raises(psycopg2.Error) as exc:
                scalar(conn, "SET ROLE %s" % target)
            assert exc.value.pgcode == "42501", target
        # Without a JWT the end user acts for nobody, whatever it names.
        with pytest.raises(psycopg2.Error) as exc:
            scalar(conn, "SELECT celaest.ai_chat('[{\"role\": \"user\", \"content\": \"x\"}]', NULL, %s)",
                   (world["users"][("A", "admin")],))
        assert exc.value.pgcode == "42501" and "ai_chat" in exc.value.pgerror
    finally:
        conn.close()


def test_a_security_definer_function_of_a_tenant_does_not_lend_the_owner_level(world):
    """A tenant's own SECURITY DEFINER function runs as the tenant: calling ours from it gives no
    more than calling ours directly."""
    w = world
    admin = w["admin"]
    scalar(admin, "CREATE SCHEMA IF NOT EXISTS matrix_tenant AUTHORIZATION %s" % LOGIN_ROLE)
    conn = connect(DB, user=LOGIN_ROLE, password="matrix-login")
    try:
        scalar(conn, """CREATE FUNCTION matrix_tenant.act_as(p_user uuid) RETURNS jsonb
                        LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS
                        $$ SELECT celaest.ai_chat('[{"role": "user", "content": "x"}]', NULL, p_user) $$""")
        with pytest.raises(psycopg2.Error) as exc:
            scalar(conn, "SELECT matrix_tenant.act_as(%s)", (w["users"][("B", "admin")],))
        assert exc.value.pgcode == "42501"
    finally:
        conn.close()
        scalar(admin, "DROP SCHEMA matrix_tenant CASCADE")


def test_roles_inside_the_organization(world):
    w = world
    admin = w["admin"]
    # viewer: no AI calls, no batches.
    conn, _ = caller(w, "viewer")
    try:
        for sql in ("SELECT celaest.ai_chat('[{\"role\": \"user\", \"content\": \"x\"}]')",
                    "SELECT celaest.submit_batch('x', '[{}]')"):
            with pytest.raises(psycopg2.Error) as exc:
                scalar(conn, sql)
            if not ("submit_batch" in sql and exc.value.pgcode == "55000"):  # no batch runner here yet
                assert exc.value.pgcode == "42501" and "viewer" in exc.value.pgerror
    finally:
        conn.close()
    # An operator cancels only its own batches; a manager its organization's.
    other_batch = str(uuid.uuid4())
    scalar(admin, "INSERT INTO celaest.task_batches (id, organization_id, user_id, name)"
                  " VALUES (%s, %s, %s, 'someone else''s')", (other_batch, w["orgs"]["A"], w["users"][("A", "admin")]))
    conn, _ = caller(w, "operator")
    try:
        with pytest.raises(psycopg2.Error) as exc:
            scalar(conn, "SELECT celaest.cancel_batch(%s)", (other_batch,))
        assert exc.value.pgcode == "42501" and "cancel_batch" in exc.value.pgerror
        assert scalar(conn, "SELECT celaest.batch_status(%s) ->> 'status'", (other_batch,)) == "pending"
    finally:
        conn.close()
    conn, _ = caller(w, "manager")
    try:
        assert scalar(conn, "SELECT celaest.cancel_batch(%s)", (other_batch,)) == 0
    finally:
        conn.close()
    # A manager manages its organization's users, up to its own role; an admin its settings.
    conn, _ = caller(w, "manager")
    try:
        assert scalar(conn, "UPDATE celaest.users_profile SET role = 'operator' WHERE id = %s RETURNING role",
                      (w["users"][("A", "viewer")],)) == "operator"
        with pytest.raises(psycopg2.Error) as exc:
            scalar(conn, "UPDATE celaest.users_profile SET role = 'admin' WHERE id = %s",
                   (w["users"][("A", "viewer")],))
        assert exc.value.pgcode == "42501"
        assert attempt(conn, "UPDATE celaest.organizations SET settings = '{}' WHERE id = %s",
                       (w["orgs"]["A"],))[3] == 0
    finally:
        conn.close()
        scalar(admin, "UPDATE celaest.users_profile SET role = 'viewer' WHERE id = %s", (w["users"][("A", "viewer")],))
    conn, _ = caller(w, "admin")
    try:
        assert attempt(conn, "UPDATE celaest.organizations SET settings = '{\"timezone\": \"UTC\"}' WHERE id = %s",
                       (w["orgs"]["A"],))[3] == 1
        # Platform objects: not an organization admin's.
        ok, state, _, result = attempt(conn, "UPDATE celaest.subscription_plans SET name = name")
        assert (not ok and state == "42501") or result == 0
    finally:
        conn.close()
    conn, _ = caller(w, "super_admin")
    try:
        ok, _, message, result = attempt(conn, "UPDATE celaest.subscription_plans SET name = name WHERE code = 'matrix'")
        assert ok and result == 1, message
    finally:
        conn.close()


def test_soft_deleted_user_acts_for_nobody(world):
    w = world
    admin = w["admin"]
    user = w["users"][("A", "operator")]
    scalar(admin, "UPDATE celaest.users_profile SET deleted_at = now() WHERE id = %s", (user,))
    conn, _ = caller(w, "operator")
    try:
        assert scalar(conn, "SELECT count(*) FROM celaest.organizations") == 0
        with pytest.raises(psycopg2.Error) as exc:
            scalar(conn, "SELECT celaest.ai_chat('[{\"role\": \"user\", \"content\": \"x\"}]')")
        assert exc.value.pgcode == "42501"
    finally:
        conn.close()
        scalar(admin, "UPDATE celaest.users_profile SET deleted_at = NULL WHERE id = %s", (user,))
