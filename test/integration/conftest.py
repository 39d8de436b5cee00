"""Fixtures for the CELAEST integration tests (pytest + psycopg2).

Runs inside scripts/cluster.sh: PG* variables point at a throwaway cluster with
shared_preload_libraries=celaest and celaest.encryption_key set, and CELAEST_MOCK_PORT names
the strict mock provider (test/mock). Without CELAEST_MOCK_PORT a private mock is started.

Each test module gets a fresh database (never `postgres`, where the background workers run)
with `CREATE EXTENSION celaest CASCADE`, one organization, one user, a plan and an active
license, one priced model per provider and one valid pool key per provider. Connections from
`db.connect()` point every provider at the mock and keep retries fast.

Secrets reach the server only through COPY data (add_key/rotate_key below), never in
statement text: a statement that fails is written to the server log with its text, and the
secrecy tests read that log.
"""

import io
import json
import os
import re
import secrets as _secrets
import urllib.error
import urllib.request
import uuid
from decimal import ROUND_HALF_UP, Decimal

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pytest

from mock_process import mock_port

# Decimal for every jsonb number: cost_usd is compared exactly.
psycopg2.extras.register_default_jsonb(globally=True, loads=lambda s: json.loads(s, parse_float=Decimal))

PROVIDERS = ("openai", "groq", "deepseek", "anthropic", "gemini", "local")

# Mock base URL path per ai_provider label (test/mock/README.md).
MOCK_PREFIX = {
    "openai": "/openai/v1",
    "groq": "/groq/openai/v1",
    "deepseek": "/deepseek",
    "anthropic": "/anthropic",
    "gemini": "/gemini/v1beta",
    "local": "/ollama",
}

# One model per provider: (model_id, price in, price out per 1k, priority). Prices with six
# decimals so that round(..., 6) really rounds; openai's is the default model.
MODELS = {
    "openai": ("gpt-4o-mini", "0.150000", "0.600000", 60),
    "groq": ("llama-3.1-8b-instant", "0.050000", "0.080000", 50),
    "deepseek": ("deepseek-chat", "0.270000", "1.100000", 40),
    "anthropic": ("claude-3-5-haiku-latest", "0.800000", "4.000000", 30),
    "gemini": ("gemini-2.0-flash", "0.123457", "0.987651", 20),
    "local": ("llama3.2", "0.000333", "0.000777", 10),
}

# Every secret any fixture or test stored in a pool, for the secrecy scans.
ALL_SECRETS = []


def new_secret(tag, valid=True):
    value = "%s-%s-%s" % ("sk-good" if valid else "sk-bad", tag, _secrets.token_hex(12))
    ALL_SECRETS.append(value)
    return value


def expected_cost(tokens_in, tokens_out, price_in, price_out):
    """API.md: round((in x price_in + out x price_out) / 1000, 6), half away from zero."""
    if price_in is None and price_out is None:
        return Decimal("0")
    total = tokens_in * Decimal(price_in or 0) + tokens_out * Decimal(price_out or 0)
    return (total / 1000).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def mock_words(*texts):
    """The mock's input token count: whitespace words of every input text, plus 3."""
    return sum(len(t.split()) for t in texts) + 3


def mock_reply(provider, last_user):
    echo = re.sub(r"\[\[mock:[^\]]*\]\]", "", last_user).strip()[:40]
    return "mock reply from %s to: %s" % (provider, echo)


# --------------------------------------------------------------------------- mock provider


class Mock:
    """Client of the mock's control API."""

    def __init__(self, port):
        self.port = int(port)
        self.base = "http://127.0.0.1:%d" % self.port

    def url(self, provider):
        return self.base + MOCK_PREFIX[provider]

    def _call(self, method, path, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise AssertionError("mock %s %s -> %s %s" % (method, path, e.code, e.read()[:300]))

    def reset(self):
        return self._call("POST", "/_mock/reset", {})

    def requests(self, provider=None):
        return self._call("GET", "/_mock/requests" + ("?provider=%s" % provider if provider else ""))

    def chat_requests(self, provider=None):
        return [r for r in self.requests(provider) if r["method"] == "POST"]

    def fault(self, **spec):
        return self._call("POST", "/_mock/fault", spec)

    def faults(self):
        return self._call("GET", "/_mock/faults")

    def keys(self, valid=None, invalid=None):
        spec = {}
        if valid is not None:
            spec["valid_prefixes"] = valid
        if invalid is not None:
            spec["invalid_prefixes"] = invalid
        return self._call("POST", "/_mock/keys", spec)

    def stats(self):
        return self._call("GET", "/_mock/stats")

    def chat_requests_containing(self, text, provider="openai"):
        """Recorded chat requests whose body mentions `text` (e.g. a test's tag)."""
        return [r for r in self.chat_requests(provider) if text in json.dumps(r["body"])]


@pytest.fixture(scope="session")
def mock_server():
    """The mock for the whole session: CELAEST_MOCK_PORT's, or a private one (mock_process.py)."""
    with mock_port() as port:
        client = Mock(port)
        client._call("GET", "/_mock/health")
        yield client


@pytest.fixture
def mock(mock_server):
    """The mock, reset (records, faults, counters, key rules) before the test."""
    mock_server.reset()
    yield mock_server
    mock_server.reset()


# --------------------------------------------------------------------------- server crashes


# What the postmaster logs when a backend or worker dies of a signal (a segfault, an abort)
# or, on Windows, of an exception. Any such line fails the run.
CRASH_PATTERN = re.compile(r"terminated by signal|was terminated by exception")


class ServerLog:
    """The part of the server log (CELAEST_SERVER_LOG, set by scripts/cluster.sh) written
    since this session started, read in steps so a crash is blamed on the test it happened in."""

    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0

    def new_crash_lines(self):
        if not os.path.exists(self.path):
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read()
            self.offset = f.tell()
        return [line for line in text.decode("utf-8", "replace").splitlines() if CRASH_PATTERN.search(line)]


@pytest.fixture(scope="session", autouse=True)
def server_log():
    """Fails the session if a server process crashed after the last test's check (a
    background worker, or a backend that died late). None outside scripts/cluster.sh."""
    path = os.environ.get("CELAEST_SERVER_LOG")
    log = ServerLog(path) if path else None
    yield log
    if log:
        crashes = log.new_crash_lines()
        assert not crashes, "a server process crashed (see %s):\n%s" % (path, "\n".join(crashes))


@pytest.fixture(autouse=True)
def _no_crash_during_test(server_log):
    """Fails the test during which a server process crashed."""
    yield
    if server_log:
        crashes = server_log.new_crash_lines()
        assert not crashes, "a server process crashed during this test (see %s):\n%s" % (
            server_log.path, "\n".join(crashes))


# --------------------------------------------------------------------------- database


def connect(dbname, **kwargs):
    conn = psycopg2.connect(dbname=dbname, application_name="celaest-it", **kwargs)
    conn.autocommit = True
    return conn


def create_database(name):
    """A new database `name` (dropped first if it exists) with celaest installed."""
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
        cur.execute("CREATE EXTENSION celaest CASCADE")
    conn.close()


def scalar(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        if cur.description is None:
            return None
        row = cur.fetchone()
        return None if row is None else row[0]


def rows(conn, sql, params=None):
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def one(conn, sql, params=None):
    result = rows(conn, sql, params)
    assert len(result) == 1, result
    return result[0]


def _stage_secret(conn, secret):
    """Puts the secret in a temporary table through COPY data, outside any statement text."""
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS pg_temp.it_secret (s text)")
        cur.execute("TRUNCATE pg_temp.it_secret")
        cur.copy_expert("COPY pg_temp.it_secret FROM STDIN", io.StringIO(secret + "\n"))


def _unstage_secret(conn):
    with conn.cursor() as cur:
        cur.execute("TRUNCATE pg_temp.it_secret")


def add_key(conn, provider, name, secret, options=None):
    """celaest.add_api_key with the secret passed by COPY; returns the key id."""
    _stage_secret(conn, secret)
    try:
        return scalar(conn, "SELECT celaest.add_api_key(%s, %s, (SELECT s FROM pg_temp.it_secret), %s)",
                      (provider, name, json.dumps(options or {})))
    finally:
        if not conn.closed and conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            _unstage_secret(conn)


def rotate_key(conn, key_id, secret):
    _stage_secret(conn, secret)
    try:
        scalar(conn, "SELECT celaest.rotate_api_key(%s, (SELECT s FROM pg_temp.it_secret))", (key_id,))
    finally:
        if not conn.closed and conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            _unstage_secret(conn)


class Db:
    """A test module's database and the rows seeded in it."""

    def __init__(self, name, mock_server):
        self.name = name
        self.mock = mock_server
        self.conns = []
        self.models = {}       # provider -> {"id", "model_id", "price_in", "price_out"}
        self.keys = {}         # provider -> key id
        self.secrets = {}      # provider -> secret of that key
        self.seeded_keys = []
        self.seeded_models = []

    def connect(self, user=True, **settings):
        """A connection with every provider pointed at the mock, fast retries, and the seeded
        user acting. Extra keyword arguments are further `SET celaest.<name>` values."""
        conn = connect(self.name)
        self.conns.append(conn)
        values = {"retry_base_delay": "10"}
        for provider in PROVIDERS:
            values["%s_base_url" % provider] = self.mock.url(provider)
        if user:
            values["user_id"] = self.user_id
        values.update({k: str(v) for k, v in settings.items()})
        with conn.cursor() as cur:
            for name, value in values.items():
                cur.execute("SELECT set_config(%s, %s, false)", ("celaest." + name, value))
        return conn

    # -- calls
    def ai_chat(self, conn, messages, model=None, options=None):
        return scalar(conn, "SELECT celaest.ai_chat(%s::jsonb, %s, NULL, %s::jsonb)",
                      (json.dumps(messages), model, json.dumps(options or {})))

    def run_prompt(self, conn, prompt, variables=None, options=None):
        return scalar(conn, "SELECT celaest.run_prompt(%s, %s::jsonb, NULL, %s::jsonb)",
                      (prompt, json.dumps(variables or {}), json.dumps(options or {})))

    # -- reads
    def task(self, conn, task_id):
        return one(conn, "SELECT * FROM celaest.processed_tasks WHERE id = %s", (task_id,))

    def task_count(self, conn):
        return scalar(conn, "SELECT count(*) FROM celaest.processed_tasks")

    def license_used(self, conn):
        return scalar(conn, "SELECT ai_requests_used FROM celaest.licenses WHERE id = %s", (self.license_id,))

    def key(self, conn, key_id):
        return one(conn, "SELECT id, is_active, is_healthy, consecutive_failures, usage_count, tokens_used,"
                         " last_used_at, last_health_check, key_hint, priority, weight, rate_limit_rpm,"
                         " rate_limit_tpm, rate_limit_rpd, expires_at, metadata"
                         " FROM celaest.ai_api_pool WHERE id = %s", (key_id,))

    def only_key(self, conn, provider, tag="only", valid=True, options=None):
        """Deactivates every key of the provider and adds one fresh key; returns (id, secret).
        The autouse cleanup reactivates the seeded keys after the test."""
        scalar(conn, "UPDATE celaest.ai_api_pool SET is_active = false WHERE provider = %s", (provider,))
        secret = new_secret("%s-%s" % (provider, tag), valid)
        return add_key(conn, provider, "%s-%s" % (provider, tag), secret, options), secret

    def add_model(self, conn, provider, model_id, priority, price_in="0.100000", price_out="0.200000",
                  is_active=True):
        return scalar(conn, "INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input,"
                            " cost_per_1k_output, priority, is_active) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                            " RETURNING id", (provider, model_id, model_id, price_in, price_out, priority, is_active))

    def restore(self):
        """Back to the seeded pool and catalog: seeded keys active, healthy and with their
        secrets; other keys inactive; models added by a test removed."""
        conn = connect(self.name)
        try:
            scalar(conn, "UPDATE celaest.ai_api_pool SET is_active = (id = ANY(%s::uuid[])), is_healthy = true,"
                         " consecutive_failures = 0", (self.seeded_keys,))
            scalar(conn, "UPDATE celaest.prompts_master SET preferred_model_id = NULL"
                         " WHERE preferred_model_id <> ALL(%s::uuid[])", (self.seeded_models,))
            scalar(conn, "UPDATE celaest.ai_models SET is_active = (id = ANY(%s::uuid[]))", (self.seeded_models,))
        finally:
            conn.close()


def _has_function(conn, name):
    return scalar(conn, "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                        " WHERE n.nspname = 'celaest' AND p.proname = %s", (name,)) > 0


def seed(db):
    conn = connect(db.name)
    db.org_id = str(uuid.uuid4())
    db.user_id = str(uuid.uuid4())
    with conn.cursor() as cur:
        cur.execute("INSERT INTO celaest.organizations (id, name, slug) VALUES (%s, 'Integration Org', %s)",
                    (db.org_id, "it-" + db.org_id[:8]))
        cur.execute("INSERT INTO celaest.users_profile (id, organization_id, email, role)"
                    " VALUES (%s, %s, %s, 'admin')", (db.user_id, db.org_id, "it-%s@example.test" % db.user_id[:8]))
        cur.execute("INSERT INTO celaest.subscription_plans (code, name, limits) VALUES ('it-pro', 'IT Pro',"
                    " '{\"max_users\": 10, \"max_ai_requests_per_month\": 100000, \"max_storage_gb\": 1,"
                    "   \"max_concurrent_tasks\": 10, \"max_batch_size\": 100}') RETURNING id")
        db.plan_id = cur.fetchone()[0]
    if _has_function(conn, "issue_license"):
        issued = scalar(conn, "SELECT celaest.issue_license(%s, 'it-pro')", (db.org_id,))
        db.license_id = issued["license_id"]
    else:
        db.license_id = scalar(
            conn, "INSERT INTO celaest.licenses (organization_id, plan_id, license_key, status,"
                  " current_period_start, current_period_end) VALUES (%s, %s, %s, 'active', now(),"
                  " now() + interval '1 month') RETURNING id", (db.org_id, db.plan_id, _secrets.token_hex(32)))
    for provider in PROVIDERS:
        model_id, price_in, price_out, priority = MODELS[provider]
        mid = scalar(conn, "INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input,"
                           " cost_per_1k_output, priority, is_default, capabilities) VALUES"
                           " (%s, %s, %s, %s, %s, %s, %s, '{\"text_generation\": true, \"json_mode\": true}')"
                           " RETURNING id", (provider, model_id, model_id, price_in, price_out, priority,
                                             provider == "openai"))
        db.models[provider] = {"id": mid, "model_id": model_id, "price_in": price_in, "price_out": price_out}
        db.seeded_models.append(mid)
        secret = new_secret(provider)
        db.secrets[provider] = secret
        db.keys[provider] = add_key(conn, provider, provider + "-primary", secret)
        db.seeded_keys.append(db.keys[provider])
    conn.close()


@pytest.fixture(scope="module")
def db(request, mock_server):
    name = "celaest_it_" + re.sub(r"\W", "_", request.module.__name__.rsplit(".", 1)[-1])[:40]
    create_database(name)
    database = Db(name, mock_server)
    seed(database)
    yield database
    for c in database.conns:
        if not c.closed:
            c.close()
    admin = connect("postgres")
    with admin.cursor() as cur:
        cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    admin.close()


@pytest.fixture(autouse=True)
def _restore_pool(request):
    """After each test that used the module database: the seeded pool and catalog again."""
    yield
    if "db" in request.fixturenames:
        request.getfixturevalue("db").restore()


@pytest.fixture
def conn(db):
    c = db.connect()
    yield c
    c.close()


def sqlstate(exc_info):
    return exc_info.value.pgcode
