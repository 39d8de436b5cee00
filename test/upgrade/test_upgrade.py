"""ALTER EXTENSION celaest UPDATE from every released version gives a fresh install's schema.

For each released version X (its install script frozen as sql/celaest--X.sql): install X in
one database and fill it with data through X's API; install the current version
(celaest.control's default_version) in another; run ALTER EXTENSION celaest UPDATE in the first.
Then the two schemas must be equal object by object (test/upgrade/catalog.py: tables,
columns, constraints, indexes, functions with their bodies and labels, triggers, policies,
views, types, comments, owners, privileges), the data must be unchanged, and the upgraded
database must still work.

Runs inside scripts/cluster.sh (PG* variables name a throwaway cluster with celaest preloaded).
"""

import glob
import json
import os
import re
import sys
import uuid

import psycopg2
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from catalog import differences, snapshot  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UPGRADE_HINT = (
    "The schema of an upgraded database differs from a fresh install. Every schema change made "
    "in src/sql since the last release must also be made by the upgrade script "
    "sql/celaest--%s--%s.sql (ALTER/CREATE OR REPLACE/DROP/COMMENT/GRANT/REVOKE), so that "
    "ALTER EXTENSION celaest UPDATE gives the same objects as CREATE EXTENSION."
)


def current_version():
    with open(os.path.join(ROOT, "celaest.control")) as control:
        return re.search(r"^default_version = '(.*)'", control.read(), re.M).group(1)


def released_versions():
    names = (os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "sql", "celaest--*.sql")))
    found = (re.fullmatch(r"celaest--([^-]+)\.sql", n) for n in names)
    return sorted((m.group(1) for m in found if m and m.group(1) != current_version()),
                  key=lambda v: [int(x) for x in v.split(".")])


def connect(dbname):
    conn = psycopg2.connect(dbname=dbname)
    conn.autocommit = True
    return conn


def create_database(name, version):
    admin = connect("postgres")
    try:
        with admin.cursor() as cur:
            cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
            cur.execute('CREATE DATABASE "%s"' % name)
    finally:
        admin.close()
    conn = connect(name)
    with conn.cursor() as cur:
        cur.execute("SET client_min_messages = warning")
        cur.execute("CREATE EXTENSION celaest VERSION %s CASCADE", (version,))
    return conn


def drop_database(name):
    admin = connect("postgres")
    try:
        with admin.cursor() as cur:
            cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    finally:
        admin.close()


def scalar(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0] if cur.description else None


ORG, USER, ADMIN = (str(uuid.UUID(int=n)) for n in (0xA1, 0xA2, 0xA3))
# Licenses written without issue_license: one inserted directly (no lookup hash), one whose
# hash no longer matches its key (changed later). The upgrade fills in both hashes.
DIRECT_ORG = str(uuid.UUID(int=0xA4))
DIRECT_KEY, STALE_KEY = "Direct-Upgrade-Key-0001", "stale-upgrade-key-0002"


def fill(conn):
    """Rows in every table, written through the released version's API and triggers."""
    run = lambda sql, params=None: scalar(conn, sql, params)  # noqa: E731
    run("INSERT INTO celaest.organizations (id, name, slug, settings) VALUES (%s, 'Upgrade Org', 'upgrade-org',"
        " '{\"roi\": {\"hourly_rate\": 40}}')", (ORG,))
    run("INSERT INTO celaest.users_profile (id, organization_id, email, role) VALUES"
        " (%s, %s, 'operator@upgrade.test', 'operator'), (%s, NULL, 'root@upgrade.test', 'super_admin')",
        (USER, ORG, ADMIN))
    run("INSERT INTO celaest.subscription_plans (code, name, limits) VALUES ('up-pro', 'Upgrade Pro',"
        " '{\"max_users\": 10, \"max_ai_requests_per_month\": 1000, \"max_batch_size\": 50}')")
    license = run("SELECT celaest.issue_license(%s, 'up-pro', '{\"custom_limits\": {\"max_users\": 20}}')", (ORG,))
    # Usage written directly: the native consume_quota of the current library calls the current
    # version's SQL helpers, which an older schema does not have until it is updated.
    run("UPDATE celaest.licenses SET ai_requests_used = 3, storage_used_bytes = 1048576 WHERE id = %s",
        (license["license_id"],))
    model = run("INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input,"
                " cost_per_1k_output, priority, is_default) VALUES ('openai', 'gpt-up', 'GPT Up', 0.15, 0.6, 10, true)"
                " RETURNING id")
    run("CREATE TEMP TABLE upgrade_secret AS SELECT 'sk-upgrade-' || md5(random()::text) AS s")
    key = run("SELECT celaest.add_api_key('openai', 'upgrade key', (SELECT s FROM upgrade_secret),"
              " '{\"priority\": 5, \"rate_limit_rpm\": 100}')")
    run("SELECT celaest.increment_api_key_usage(%s, 42)", (key,))
    prompt = run("INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, user_prompt_template,"
                 " variables, preferred_model_id, is_default, metadata) VALUES ('up-note', 'Note', 'test',"
                 " 'You write.', 'Write about {{topic}}.', '[\"topic\"]', %s, true, '{\"manual_minutes\": 7}')"
                 " RETURNING id", (model,))
    batch = run("INSERT INTO celaest.task_batches (organization_id, user_id, license_id, prompt_id, model_id, name,"
                " status, total_tasks, completed_tasks, failed_tasks, started_at, completed_at)"
                " VALUES (%s, %s, %s, %s, %s, 'done batch', 'completed', 2, 1, 1, now() - interval '1 hour', now())"
                " RETURNING id", (ORG, USER, license["license_id"], prompt, model))
    run("INSERT INTO celaest.processed_tasks (organization_id, user_id, license_id, batch_id, prompt_id, model_id,"
        " api_key_id, status, tokens_input, tokens_output, cost_usd, execution_time_ms, ai_time_ms, output_raw,"
        " started_at, completed_at)"
        " SELECT %s, %s, %s, %s, %s, %s, %s, s::celaest.task_status, 100, 50, 0.000045, 900, 800, 'out',"
        "        now() - interval '1 hour', now()"
        "   FROM unnest(ARRAY['completed', 'failed']) AS s",
        (ORG, USER, license["license_id"], batch, prompt, model, key))
    # Days around today in any time zone: rows the upkeep worker may refresh already exist.
    run("SELECT celaest.aggregate_roi('daily', current_date - 2, current_date + 1, %s)", (ORG,))
    run("SELECT celaest.log_audit(%s, %s, 'export', 'report', NULL, 'upgrade test export', '{\"rows\": 3}')",
        (USER, ORG))
    run("SELECT celaest.config_set('roi.hourly_rate', '30', 'Upgrade test rate', false)")
    run("SELECT celaest.config_set('upgrade.secret', '\"hidden\"', NULL, true)")
    run("INSERT INTO celaest.feature_flags (flag_key, name, is_enabled, target_type, target_percentage)"
        " VALUES ('up-flag', 'Upgrade flag', true, 'percentage', 50)")
    run("SELECT set_config('celaest.user_id', %s, false)", (USER,))
    run("SELECT celaest.track_event('upgrade_test', '{\"step\": 1}', '{\"event_type\": \"test\"}')")
    run("RESET celaest.user_id")
    run("SELECT celaest.set_license_status(%s, 'suspended', 'upgrade test')", (license["license_id"],))
    run("SELECT celaest.set_license_status(%s, 'active', 'upgrade test')", (license["license_id"],))
    run("INSERT INTO celaest.organizations (id, name, slug) VALUES (%s, 'Direct Org', 'direct-org')", (DIRECT_ORG,))
    run("INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status)"
        " SELECT %s, id, %s, 'active' FROM celaest.subscription_plans WHERE code = 'up-pro'", (DIRECT_ORG, DIRECT_KEY))
    run("INSERT INTO celaest.licenses (organization_id, plan_id, license_key, license_key_hash, status)"
        " SELECT %s, id, %s, repeat('0', 64), 'cancelled' FROM celaest.subscription_plans WHERE code = 'up-pro'",
        (ORG, STALE_KEY))
    return license


def without_backfilled_hashes(contents):
    """The contents with what the upgrade's hash backfill changes left out: the hash (and
    updated_at) of every license, and the audit rows of licenses."""
    kept = dict(contents)
    kept["licenses"] = sorted(json.dumps({k: v for k, v in json.loads(r).items()
                                          if k not in ("license_key_hash", "updated_at")}, sort_keys=True)
                              for r in contents.get("licenses", []))
    kept["audit_logs"] = sorted(r for r in contents.get("audit_logs", [])
                                if json.loads(r).get("resource_type") != "license")
    return kept


def table_contents(conn):
    """{table: sorted rows as text} for every table of the extension. roi_metrics.updated_at is
    left out: the upkeep worker may recompute today's rows (same figures) at any time."""
    contents = {}
    with conn.cursor() as cur:
        cur.execute("SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'celaest'::regnamespace"
                    " AND c.relkind = 'r' ORDER BY 1")
        for (table,) in cur.fetchall():
            row = "to_jsonb(t)" + (" - 'updated_at'" if table == "roi_metrics" else "")
            cur.execute("SELECT coalesce(array_agg((%s)::text ORDER BY (%s)::text), '{}') FROM celaest.%s AS t"
                        % (row, row, table))
            contents[table] = cur.fetchone()[0]
    return contents


@pytest.mark.parametrize("old_version", released_versions())
def test_upgrade_equals_fresh_install(old_version):
    new_version = current_version()
    upgraded_db, fresh_db = "celaest_upgrade_from_" + old_version.replace(".", "_"), "celaest_upgrade_fresh"
    upgraded = create_database(upgraded_db, old_version)
    fresh = create_database(fresh_db, new_version)
    try:
        license = fill(upgraded)
        before = table_contents(upgraded)

        with upgraded.cursor() as cur:
            cur.execute("SET client_min_messages = warning")
            cur.execute("ALTER EXTENSION celaest UPDATE")
        assert scalar(upgraded, "SELECT extversion FROM pg_extension WHERE extname = 'celaest'") == new_version

        diff = differences(snapshot(fresh), snapshot(upgraded))
        assert not diff, "%s\n\n%d object(s) differ:\n%s" % (
            UPGRADE_HINT % (old_version, new_version), len(diff), "\n".join(diff))

        after = table_contents(upgraded)
        # A table the upgrade creates starts empty, as in a fresh install: no rows changed but
        # the lookup hashes of the licenses written without one (below).
        before_kept, after_kept = without_backfilled_hashes(before), without_backfilled_hashes(after)
        changed = sorted(t for t in set(before_kept) | set(after_kept)
                         if before_kept.get(t, []) != after_kept.get(t, []))
        assert not changed, "the upgrade changed the rows of %s" % ", ".join(changed)
        assert scalar(upgraded, "SELECT count(*) FROM celaest.licenses WHERE license_key_hash IS DISTINCT FROM"
                                " encode(sha256(convert_to(lower(license_key), 'UTF8')), 'hex')") == 0
        assert scalar(upgraded, "SELECT celaest.validate_license(%s) ->> 'code'", (DIRECT_KEY,)) == "VALID"
        assert scalar(upgraded, "SELECT celaest.validate_license(%s) ->> 'code'", (STALE_KEY,)) == "CANCELLED"

        # The upgraded database works: reads, a charge and the fast paths.
        validated = scalar(upgraded, "SELECT celaest.validate_license(%s)", (license["license_key"],))
        assert validated["code"] == "VALID" and validated["usage"]["ai_requests"] == 3
        assert scalar(upgraded, "SELECT celaest.consume_quota(%s, 'ai_requests', 2)", (ORG,)) == 995
        assert scalar(upgraded, "SELECT (celaest.check_limit(%s, 'users', 1))->>'allowed'", (ORG,)) == "true"
        assert scalar(upgraded, "SELECT celaest.effective_limits(%s)->>'max_users'",
                      (license["license_id"],)) == "20"
        assert scalar(upgraded, "SELECT celaest.config_get('upgrade.secret')") == "hidden"
        assert scalar(upgraded, "SELECT count(*) FROM celaest.v_active_licenses") == 2
        scalar(upgraded, "SELECT celaest.refresh_licenses()")
        scalar(upgraded, "SELECT celaest.roi_summary(%s, current_date - 1, current_date)", (ORG,))
    finally:
        upgraded.close()
        fresh.close()
        drop_database(upgraded_db)
        drop_database(fresh_db)
