"""Helpers for the batch tests (test_batches.py): the `postgres` database, where the
background workers run, set up with a model, a pool key and a prompt that point at the
strict mock provider, and one organization/user/plan/license per test on demand.

Its own fixtures on purpose (conftest.py builds a private
database per module, which the batch runner never looks at). Every name it creates carries
a random tag, so reruns and other modules never collide with it.
"""

import io
import json
import os
import secrets
import time
import uuid

import psycopg2
import psycopg2.extensions
import pytest

from conftest import rows, scalar  # noqa: F401  (re-exported for the batch tests)

WORKER_DB = os.environ.get("CELAEST_WORKER_DATABASE", "postgres")

# What the module changes with ALTER SYSTEM (the runner reads its own settings) and puts
# back afterwards: wide concurrency, no retries (a provider fault fails its task at once),
# short back-offs, and a failure threshold that a fault test cannot reach.
RUNNER_SETTINGS = {
    "celaest.worker_concurrency": "8",
    "celaest.max_retries": "0",
    "celaest.retry_base_delay": "10",
    "celaest.health_failure_threshold": "1000",
}


def tag():
    return secrets.token_hex(4)


# --------------------------------------------------------------------------- SQL helpers


def connect(dbname=WORKER_DB, **kwargs):
    conn = psycopg2.connect(dbname=dbname, application_name="celaest-it-batches", **kwargs)
    conn.autocommit = True
    return conn


# scalar() and rows() are the suite's own (conftest.py).


def as_json(value):
    """jsonb as a dict whichever jsonb loader is registered (json or Decimal-parsing)."""
    return json.loads(value) if isinstance(value, str) else value


# The mock is conftest.py's session-wide `mock_server` (started by mock_process.py); the
# batch tests read it through its chat_requests_containing().


# --------------------------------------------------------------------------- environment


class BatchEnv:
    """The worker database prepared for batches: one priced openai model (the prompt's
    preferred model), one pool key whose base_url is the mock, and one prompt
    `Echo {{word}}` with the declared variable `word`."""

    def __init__(self, mock):
        self.mock = mock
        self.tag = tag()
        self.admin = connect()
        self.orgs = []
        self.batches = []
        self.saved_settings = {}

    # -- setup / teardown
    def setup(self):
        with self.admin.cursor() as cur:
            cur.execute("SET client_min_messages = warning")
            cur.execute("CREATE EXTENSION IF NOT EXISTS celaest CASCADE")
        self.model_uuid = scalar(
            self.admin,
            "INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input,"
            " cost_per_1k_output, priority, capabilities) VALUES ('openai', %s, %s, 0.500000, 1.500000, 1000,"
            " '{\"text_generation\": true}') RETURNING id",
            ("bt-model-" + self.tag, "batch test model " + self.tag))
        self.model_id = "bt-model-" + self.tag
        self.key_id = self.add_key("openai", "bt-key-" + self.tag, "sk-good-batch-" + secrets.token_hex(12),
                                   {"base_url": self.mock.url("openai"), "priority": 1000})
        self.prompt_slug = "bt-echo-" + self.tag
        self.prompt_id = scalar(
            self.admin,
            "INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, user_prompt_template,"
            " variables, preferred_model_id, temperature, max_tokens) VALUES (%s, %s, 'test',"
            " 'You answer batch tests.', 'Echo {{word}}', '[\"word\"]', %s, 0.2, 64) RETURNING id",
            (self.prompt_slug, "batch echo " + self.tag, self.model_uuid))
        self.apply_runner_settings()

    def add_key(self, provider, name, secret, options):
        # The secret travels as COPY data, never in statement text (a failed statement's text
        # lands in the server log, which the secrecy tests scan).
        with self.admin.cursor() as cur:
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS pg_temp.bt_secret (s text)")
            cur.execute("TRUNCATE pg_temp.bt_secret")
            cur.copy_expert("COPY pg_temp.bt_secret FROM STDIN", io.StringIO(secret + "\n"))
            cur.execute("SELECT celaest.add_api_key(%s, %s, (SELECT s FROM pg_temp.bt_secret), %s)",
                        (provider, name, json.dumps(options)))
            key_id = cur.fetchone()[0]
            cur.execute("TRUNCATE pg_temp.bt_secret")
        return key_id

    def paced_deepseek_key(self, name, rpm):
        """A provider no other batch test uses: the deepseek model the mock knows, active, with
        every other deepseek key deactivated and one new key allowing `rpm` requests a minute.
        Returns (the model as a caller names it, its row id, the key id)."""
        model = "deepseek-chat"
        scalar(self.admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE provider = 'deepseek'")
        model_uuid = scalar(self.admin,
                            "SELECT id FROM celaest.ai_models WHERE provider = 'deepseek' AND model_id = %s", (model,))
        if model_uuid is None:
            model_uuid = scalar(
                self.admin,
                "INSERT INTO celaest.ai_models (provider, model_id, display_name, priority, capabilities)"
                " VALUES ('deepseek', %s, %s, 1, '{\"text_generation\": true}') RETURNING id", (model, "paced " + name))
        scalar(self.admin, "UPDATE celaest.ai_models SET is_active = true WHERE id = %s", (model_uuid,))
        key_id = self.add_key("deepseek", name, "sk-good-paced-" + secrets.token_hex(12),
                              {"base_url": self.mock.url("deepseek"), "rate_limit_rpm": rpm})
        return model, model_uuid, key_id

    def apply_runner_settings(self):
        for name, value in RUNNER_SETTINGS.items():
            self.saved_settings[name] = scalar(
                self.admin, "SELECT setting FROM pg_settings WHERE name = %s AND source = 'configuration file'"
                            " AND sourcefile LIKE '%%postgresql.auto.conf'", (name,))
            with self.admin.cursor() as cur:
                cur.execute("ALTER SYSTEM SET %s = %%s" % name, (value,))
        self.reload_and_settle()

    def restore_runner_settings(self):
        for name, value in self.saved_settings.items():
            with self.admin.cursor() as cur:
                if value is None:
                    cur.execute("ALTER SYSTEM RESET %s" % name)
                else:
                    cur.execute("ALTER SYSTEM SET %s = %%s" % name, (value,))
        scalar(self.admin, "SELECT pg_reload_conf()")

    def set_runner_setting(self, name, value):
        """ALTER SYSTEM SET (RESET for None) one setting, then reload and let the runner apply it."""
        with self.admin.cursor() as cur:
            if value is None:
                cur.execute("ALTER SYSTEM RESET %s" % name)
            else:
                cur.execute("ALTER SYSTEM SET %s = %%s" % name, (value,))
        self.reload_and_settle()

    def reload_and_settle(self):
        """pg_reload_conf() and wait until the batch runner has been round its loop twice
        since (it applies a reload when it wakes, and SIGHUP wakes it)."""
        scalar(self.admin, "SELECT pg_reload_conf()")
        time.sleep(0.2)
        before = self.worker("celaest batch runner")["runs"]
        deadline = time.time() + 10
        while self.worker("celaest batch runner")["runs"] < before + 2:
            assert time.time() < deadline, "the batch runner did not come round after a reload"
            time.sleep(0.05)

    def teardown(self):
        try:
            # Nothing of ours stays queued for the runner: blocked or unfinished batches end.
            for batch_id in self.batches:
                try:
                    scalar(self.admin, "SELECT celaest.cancel_batch(%s)", (batch_id,))
                except psycopg2.Error:
                    pass
            scalar(self.admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s", (self.key_id,))
            scalar(self.admin, "UPDATE celaest.ai_models SET is_active = false WHERE id = %s", (self.model_uuid,))
            scalar(self.admin, "UPDATE celaest.prompts_master SET is_active = false WHERE id = %s", (self.prompt_id,))
        finally:
            self.restore_runner_settings()
            self.admin.close()

    # -- per test
    def org(self, max_concurrent_tasks=8, max_batch_size=100, max_ai_requests=100000, license=True):
        """A fresh organization with one admin user and (by default) an active license of a
        plan of its own with these limits. Returns a dict: org_id, user_id, plan_code,
        license_id (None without a license)."""
        t = tag()
        org = {"org_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "plan_code": "bt-plan-" + t,
               "license_id": None}
        limits = {"max_users": 10, "max_ai_requests_per_month": max_ai_requests, "max_storage_gb": 1,
                  "max_concurrent_tasks": max_concurrent_tasks, "max_batch_size": max_batch_size}
        with self.admin.cursor() as cur:
            cur.execute("INSERT INTO celaest.subscription_plans (code, name, limits) VALUES (%s, %s, %s)",
                        (org["plan_code"], "batch plan " + t, json.dumps(limits)))
            cur.execute("INSERT INTO celaest.organizations (id, name, slug) VALUES (%s, %s, %s)",
                        (org["org_id"], "Batch Org " + t, "bt-org-" + t))
            cur.execute("INSERT INTO celaest.users_profile (id, organization_id, email, role)"
                        " VALUES (%s, %s, %s, 'admin')", (org["user_id"], org["org_id"], "bt-%s@example.test" % t))
        if license:
            issued = as_json(scalar(self.admin, "SELECT celaest.issue_license(%s, %s)",
                                    (org["org_id"], org["plan_code"])))
            org["license_id"] = issued["license_id"]
        self.orgs.append(org)
        return org

    def submit(self, org, inputs, conn=None, options=None, prompt=None, by_argument=False):
        """submit_batch as the organization's user: by default the way applications do it
        (celaest.user_id set in the session), or with p_user_id (by_argument)."""
        conn = conn or self.admin
        scalar(conn, "SELECT set_config('celaest.user_id', %s, false)", ("" if by_argument else org["user_id"],))
        try:
            batch_id = scalar(conn, "SELECT celaest.submit_batch(%s, %s::jsonb, %s, %s::jsonb)",
                              (prompt or self.prompt_slug, json.dumps(inputs),
                               org["user_id"] if by_argument else None, json.dumps(options or {})))
        finally:
            if conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                scalar(conn, "SELECT set_config('celaest.user_id', '', false)")
        self.batches.append(batch_id)
        return batch_id

    def status(self, batch_id, conn=None):
        return as_json(scalar(conn or self.admin, "SELECT celaest.batch_status(%s)", (batch_id,)))

    def wait(self, batch_id, timeout="30 seconds", conn=None):
        return as_json(scalar(conn or self.admin, "SELECT celaest.wait_batch(%s, %s::interval)",
                              (batch_id, timeout)))

    def tasks(self, batch_id, conn=None):
        return rows(conn or self.admin,
                    "SELECT * FROM celaest.processed_tasks WHERE batch_id = %s"
                    " ORDER BY (input_metadata->>'index')::int", (batch_id,))

    def batch_row(self, batch_id):
        return rows(self.admin, "SELECT * FROM celaest.task_batches WHERE id = %s", (batch_id,))[0]

    def ai_requests_used(self, org):
        return scalar(self.admin, "SELECT ai_requests_used FROM celaest.licenses WHERE id = %s",
                      (org["license_id"],))

    def counts(self, org):
        """Rows of the organization: (task_batches, processed_tasks)."""
        return (scalar(self.admin, "SELECT count(*) FROM celaest.task_batches WHERE organization_id = %s",
                       (org["org_id"],)),
                scalar(self.admin, "SELECT count(*) FROM celaest.processed_tasks WHERE organization_id = %s",
                       (org["org_id"],)))

    def workers(self):
        return {r["worker"]: r for r in rows(self.admin, "SELECT * FROM celaest.worker_status()")}

    def worker(self, name):
        return self.workers()[name]


# --------------------------------------------------------------------------- shared by the batch tests


@pytest.fixture(scope="module")
def env(mock_server):
    """A BatchEnv for the test module (imported by it as a fixture)."""
    environment = BatchEnv(mock_server)
    environment.setup()
    yield environment
    environment.teardown()


def words(t, n, extra=""):
    """n inputs of the prompt `Echo {{word}}`, each naming the test's tag."""
    return [{"word": "%s-%d%s" % (t, i, extra)} for i in range(n)]
