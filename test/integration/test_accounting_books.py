"""Accounting truth, end to end (issue 10 item 6): thousands of mixed AI calls through the
strict mock provider, then three books that must agree exactly, per key:

1. the mock's own books (GET /_mock/books): every chat request it received with the key, and
   the tokens it reported in replies the client received (test/mock/README.md, "Control API");
2. the ledger, `processed_tasks`: the attempts listed in `metadata->'attempts'` with the key,
   and the tokens of the tasks whose final attempt used it;
3. the counters: `ai_api_pool.usage_count` / `tokens_used` of the key, and the license's
   `ai_requests_used` (one per call that reached a provider = one per task).

The mix (SCENARIOS): successes on four providers and several models, JSON mode, run_prompt,
429 with Retry-After, 500 (recovering and not), 401 on one key, broken bodies (malformed,
truncated), hangs cut by timeout_ms, and what the caller's transaction does after the call:
rollback, an error later in the transaction, a savepoint rolled back, a statement cancelled
after the answer arrived (57014, the signal statement_timeout sends), a backend terminated
(pg_terminate_backend) in the statement after the answer or idle in its transaction.

Runs in `postgres`, the database the launcher serves in the test cluster (scripts/cluster.sh),
so its ledger writer folds the counters and writes the records of transactions that did not
commit, as in production; everything the module creates there carries a random tag and is
switched off afterwards (the keys of the four providers that were active are set aside for
the module and restored).

The same runs again in a database the launcher does not serve (`celaest_it_books_unserved`,
as without shared_preload_libraries): no writer; the charges are made at each call's commit and
the records of transactions that did not commit are written by the backend's next call, or from
the spool by a later backend's first call (BooksDb.settle makes that call before comparing).

Run once serially and once from 8 sessions at a time (pgbench-style: one connection per
thread, each taking the next call). Each run uses its own fresh keys, so the books of one run
are not mixed with another's. Counters may trail the ledger by up to 1 s (API.md, "The
ledger"): the comparison waits for them up to FOLD_WAIT_S.

Sizes: CELAEST_BOOKS_CALLS (default 2000 per run), CELAEST_BOOKS_SESSIONS (default 8).
"""
import json
import os
import random
import threading
import time
import uuid

import socket
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.extensions
import pytest

from batch_env import as_json, tag
from conftest import add_key, connect, create_database, new_secret, rows, scalar

LEDGER_DB = os.environ.get("CELAEST_WORKER_DATABASE", "postgres")

CALLS = int(os.environ.get("CELAEST_BOOKS_CALLS", "2000"))
SESSIONS = int(os.environ.get("CELAEST_BOOKS_SESSIONS", "8"))
FOLD_WAIT_S = 5.0

# Fresh keys per run: provider -> how many. The first openai key is the one a queued 401 hits.
KEYS_PER_PROVIDER = {"openai": 3, "anthropic": 2, "gemini": 2, "groq": 1}

# Every connection: quick retries, a Retry-After capped low, no key marked unhealthy by a run
# of 500s (the healer below revives the keys a 401 took out), a per-request bound generous
# enough for a busy mock.
SESSION_SETTINGS = {"max_retries": 1, "retry_base_delay": 5, "retry_max_delay": 60,
                    "health_failure_threshold": 1000, "http_timeout": 8000}

# (scenario, weight). A scenario is how the call is made plus what its transaction does.
SCENARIOS = [
    ("ok", 30), ("json", 8), ("prompt", 8), ("429", 6), ("500_then_ok", 5), ("500", 2),
    ("401", 3), ("malformed", 3), ("truncated", 2), ("hang", 2),
    ("rollback", 9), ("error_after", 4), ("savepoint", 3),
    ("cancel_after", 3), ("terminate_after", 2), ("terminate_idle", 2),
]
CHAT_PROVIDERS = ("openai", "anthropic", "gemini", "groq")


def messages(text, system="Be brief."):
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


class Run:
    """One run's keys, plan and client-side tally."""

    def __init__(self, db, name, calls):
        self.db = db
        self.name = name
        self.calls = calls
        self.lock = threading.Lock()
        self.outcomes = {}      # scenario -> {outcome: n}
        self.unexpected = []    # (i, scenario, error) the scenario did not plan for
        self.not_sent = 0       # calls refused with LC020 before any request (API.md)
        rng = random.Random("books-%s" % name)
        names = [s for s, w in SCENARIOS for _ in range(w)]
        self.plan = [rng.choice(names) for _ in range(calls)]
        # The plan always holds every scenario at least once.
        for k, (scenario, _) in enumerate(SCENARIOS):
            self.plan[k * 7 % calls] = scenario

    def tally(self, scenario, outcome):
        with self.lock:
            by = self.outcomes.setdefault(scenario, {})
            by[outcome] = by.get(outcome, 0) + 1
            if outcome == "LC020":
                self.not_sent += 1


UNSERVED_DB = "celaest_it_books_unserved"


class BooksDb:
    """The database set up for the books: per provider a tagged, priced model; an
    organization, user, plan and license of their own; a prompt. The keys come per run.
    Served: `postgres`, where a ledger writer runs. Unserved: a database of its own that
    celaest.databases leaves out (as one without shared_preload_libraries): the calls' charges
    are made at their commit, and a record whose transaction did not commit is written by the
    backend's next call or, once the backend has exited, by the first call of a later one."""

    def __init__(self, mock, served=True):
        self.served = served
        self.name = LEDGER_DB if served else UNSERVED_DB
        if not served:
            create_database(self.name)
        self.mock = mock
        self.tag = tag()
        self.conns = []
        self.admin = connect(self.name)
        with self.admin.cursor() as cur:
            cur.execute("SET client_min_messages = warning")
            cur.execute("CREATE EXTENSION IF NOT EXISTS celaest CASCADE")
        self.model_ids = {}
        self.model_uuids = []
        for provider in KEYS_PER_PROVIDER:
            model_id = "books-%s-%s" % (self.tag, provider)
            self.model_uuids.append(scalar(
                self.admin, "INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input,"
                            " cost_per_1k_output, priority, capabilities) VALUES (%s, %s, %s, 0.150000, 0.600000,"
                            " 5, '{\"text_generation\": true, \"json_mode\": true}') RETURNING id",
                (provider, model_id, model_id)))
            self.model_ids[provider] = model_id
        self.org_id, self.user_id = str(uuid.uuid4()), str(uuid.uuid4())
        plan = "books-plan-" + self.tag
        scalar(self.admin, "INSERT INTO celaest.subscription_plans (code, name, limits) VALUES (%s, %s, %s)",
               (plan, plan, json.dumps({"max_users": 10, "max_ai_requests_per_month": 1000000, "max_storage_gb": 1,
                                        "max_concurrent_tasks": 64, "max_batch_size": 100})))
        scalar(self.admin, "INSERT INTO celaest.organizations (id, name, slug) VALUES (%s, %s, %s)",
               (self.org_id, "Books " + self.tag, "books-" + self.tag))
        scalar(self.admin, "INSERT INTO celaest.users_profile (id, organization_id, email, role)"
                           " VALUES (%s, %s, %s, 'admin')", (self.user_id, self.org_id, "books-%s@example.test" % self.tag))
        self.license_id = as_json(scalar(self.admin, "SELECT celaest.issue_license(%s, %s)",
                                         (self.org_id, plan)))["license_id"]
        self.prompt = "books-note-" + self.tag
        self.prompt_uuid = scalar(
            self.admin, "INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, user_prompt_template,"
                        " variables, preferred_model_id, temperature, max_tokens, is_default) VALUES (%s, %s, 'test',"
                        " 'You write for {{company}}.', 'Write a note about {{topic}}.', '[\"company\", \"topic\"]',"
                        " (SELECT id FROM celaest.ai_models WHERE model_id = %s), 0.30, 200, true) RETURNING id",
            (self.prompt, self.prompt, self.model_ids["anthropic"]))
        # Only this module's keys serve the four providers while it runs.
        self.set_aside = [str(k) for k in [r["id"] for r in rows(
            self.admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE is_active"
                        " AND provider = ANY(%s::celaest.ai_provider[]) RETURNING id", (list(KEYS_PER_PROVIDER),))]]
        self.own_keys = []
        if not served:
            # The spool's drainer: another organization calling another provider with a key of
            # its own, so that its call is in none of the books compared.
            self.drain_org, self.drain_user = str(uuid.uuid4()), str(uuid.uuid4())
            scalar(self.admin, "INSERT INTO celaest.organizations (id, name, slug) VALUES (%s, %s, %s)",
                   (self.drain_org, "Books drain " + self.tag, "books-drain-" + self.tag))
            scalar(self.admin, "INSERT INTO celaest.users_profile (id, organization_id, email, role)"
                               " VALUES (%s, %s, %s, 'admin')",
                   (self.drain_user, self.drain_org, "books-drain-%s@example.test" % self.tag))
            scalar(self.admin, "SELECT celaest.issue_license(%s, %s)", (self.drain_org, plan))
            self.drain_model = "books-drain-" + self.tag
            scalar(self.admin, "INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input,"
                               " cost_per_1k_output, priority, capabilities) VALUES ('deepseek', %s, %s, 0.1, 0.2,"
                               " 5, '{\"text_generation\": true}') RETURNING id", (self.drain_model, self.drain_model))
            add_key(self.admin, "deepseek", "books-drain-" + self.tag, new_secret("books-drain"),
                    {"base_url": self.mock.url("deepseek")})

    def settle(self):
        """Unserved: once every session of the run has exited (their pending records spooled),
        a new backend's first AI call writes the spool and charges it."""
        if self.served:
            return
        deadline = time.monotonic() + 30
        while scalar(self.admin, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                 " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"):
            assert time.monotonic() < deadline, rows(self.admin, "SELECT pid, state, query FROM pg_stat_activity"
                                                                 " WHERE datname = current_database()")
            time.sleep(0.05)
        # A backend's first call writes up to 1,000 spooled records.
        for _ in range(10):
            spooled = scalar(self.admin, "SELECT (celaest._ledger_state()->>'records_spooled')::int")
            if spooled == 0:
                break
            print("unserved: %d records in the spool" % spooled)
            conn = connect(self.name)
            try:
                scalar(conn, "SELECT set_config('celaest.user_id', %s, false)", (self.drain_user,))
                result = as_json(scalar(conn, "SELECT celaest.ai_chat('[{\"role\": \"user\", \"content\":"
                                              " \"drain\"}]', %s)", (self.drain_model,)))
                assert result["status"] == "completed", result
            finally:
                conn.close()
        assert scalar(self.admin, "SELECT (celaest._ledger_state()->>'records_spooled')::int") == 0

    def connect(self, **settings):
        conn = connect(self.name)
        self.conns.append(conn)
        values = {"user_id": self.user_id, "retry_base_delay": "10"}
        for provider in KEYS_PER_PROVIDER:
            values["%s_base_url" % provider] = self.mock.url(provider)
        values.update({k: str(v) for k, v in settings.items()})
        with conn.cursor() as cur:
            for name, value in values.items():
                cur.execute("SELECT set_config(%s, %s, false)", ("celaest." + name, value))
        return conn

    def license_used(self, conn):
        return scalar(conn, "SELECT ai_requests_used FROM celaest.licenses WHERE id = %s", (self.license_id,))

    def wait_until_served(self):
        """With the ledger (issue 10), calls charge it once its writer has started."""
        if not scalar(self.admin, "SELECT to_regproc('celaest._ledger_state') IS NOT NULL"):
            return
        if not self.served:
            assert not as_json(scalar(self.admin, "SELECT celaest._ledger_state()"))["served"]
            return
        deadline = time.monotonic() + 30
        while not as_json(scalar(self.admin, "SELECT celaest._ledger_state()"))["served"]:
            assert time.monotonic() < deadline, "no ledger writer serves %s" % self.name
            time.sleep(0.1)

    def teardown(self):
        for conn in self.conns:
            if not conn.closed:
                conn.close()
        admin = self.admin
        scalar(admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = ANY(%s::uuid[])", (self.own_keys,))
        scalar(admin, "UPDATE celaest.ai_api_pool SET is_active = true WHERE id = ANY(%s::uuid[])", (self.set_aside,))
        scalar(admin, "UPDATE celaest.prompts_master SET is_active = false WHERE id = %s", (self.prompt_uuid,))
        scalar(admin, "UPDATE celaest.ai_models SET is_active = false WHERE id = ANY(%s::uuid[])", (self.model_uuids,))
        admin.close()
        if not self.served:
            dropper = connect("postgres")
            scalar(dropper, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name)
            dropper.close()


@pytest.fixture(scope="module", params=["served", "unserved"])
def books_db(request, mock_server):
    database = BooksDb(mock_server, served=request.param == "served")
    try:
        database.wait_until_served()
        yield database
    finally:
        database.teardown()


@pytest.fixture
def books_env(books_db, mock):
    yield {"admin": books_db.admin, "prompt": books_db.prompt}


def closed_port_url(url):
    """`url` with its port replaced by one nothing listens on: connections are refused."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, "127.0.0.1:%d" % port, parts.path, parts.query, parts.fragment))


def fresh_keys(db, admin, run_name):
    """Sets the previous run's keys aside, adds fresh ones; {key_id: (provider, secret)}.

    One more openai key points at a port nothing listens on: its requests never go out
    (connection refused), so the mock never sees them, and neither may its usage_count nor the
    ledger's attempts that count (the call fails over to another key)."""
    scalar(admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = ANY(%s::uuid[])", (db.own_keys,))
    keys = {}
    for provider, count in KEYS_PER_PROVIDER.items():
        for n in range(count):
            secret = new_secret("books-%s-%s-%d" % (run_name, provider, n))
            key_id = add_key(admin, provider, "books-%s-%s-%s-%d" % (db.tag, run_name, provider, n), secret,
                             {"base_url": db.mock.url(provider)})
            keys[str(key_id)] = (provider, secret)
            db.own_keys.append(str(key_id))
    secret = new_secret("books-%s-refused" % run_name)
    key_id = add_key(admin, "openai", "books-%s-%s-refused" % (db.tag, run_name), secret,
                     {"base_url": closed_port_url(db.mock.url("openai"))})
    keys[str(key_id)] = ("openai", secret)
    db.own_keys.append(str(key_id))
    return keys


def session(db):
    conn = db.connect(**SESSION_SETTINGS)
    return conn


# --------------------------------------------------------------------------- one call


def call_sql(db, run, i, scenario, prompt_slug, flaky_secret):
    """(function, args, text) of call i: the statement that reaches a provider."""
    tag = "books %s %d" % (run.name, i)
    provider = CHAT_PROVIDERS[i % len(CHAT_PROVIDERS)]
    model = db.model_ids[provider]
    options = {"provider": provider}
    text = tag
    if scenario == "json":
        provider = ("openai", "gemini")[i % 2]
        model, options = db.model_ids[provider], {"provider": provider, "json": True}
        text = tag + " reply in json"
    elif scenario == "prompt":
        return ("run_prompt", (prompt_slug, {"company": "Books & Co", "topic": tag}, {}))
    elif scenario == "429":
        provider, model, options = "openai", db.model_ids["openai"], {"provider": "openai"}
        text = tag + " [[mock:429]][[mock:retry-after=0.005]][[mock:fail-then-ok=1]]"
    elif scenario == "500_then_ok":
        text = tag + " [[mock:500]][[mock:fail-then-ok=1]]"
    elif scenario == "500":
        text = tag + " [[mock:500]]"
    elif scenario == "401":
        provider, model, options = "openai", db.model_ids["openai"], {"provider": "openai"}
        db.mock.fault(provider="openai", status=401, count=1, key_prefix=flaky_secret, endpoint="chat")
    elif scenario == "malformed":
        text = tag + " [[mock:malformed]]"
    elif scenario == "truncated":
        text = tag + " [[mock:truncated]]"
    elif scenario == "hang":
        # timeout_ms leaves room to connect and send even on a loaded machine: a transfer cut
        # before the request reached the mock is counted by CELAEST (an attempt with the key)
        # but never billed by the provider (seen once at load average 6 with 40 ms).
        text = tag + " [[mock:hang=0.6]]"
        options["timeout_ms"] = 250
    elif scenario in ("rollback", "error_after", "savepoint") and i % 3 == 0:
        text = tag + " [[mock:500]][[mock:fail-then-ok=1]]"  # a failed attempt rolled back too
    return ("ai_chat", (messages(text), model, options))


def statement(function, args):
    if function == "ai_chat":
        msgs, model, options = args
        return ("SELECT celaest.ai_chat(%s::jsonb, %s, NULL, %s::jsonb)",
                (json.dumps(msgs), model, json.dumps(options)))
    prompt, variables, options = args
    return ("SELECT celaest.run_prompt(%s, %s::jsonb, NULL, %s::jsonb)",
            (prompt, json.dumps(variables), json.dumps(options)))


def wait_for(watcher, pid, condition, thread=None, timeout=20):
    """Polls pg_stat_activity until the backend `pid` is in `condition` (SQL over wait_event,
    state); False if it never is (or the statement in `thread` ended first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (thread and not thread.is_alive()):
        if scalar(watcher, "SELECT count(*) FROM pg_stat_activity WHERE pid = %%s AND %s" % condition, (pid,)):
            return True
        time.sleep(0.003)
    return False


def in_thread(target):
    box = {}

    def run():
        try:
            box["value"] = target()
        except BaseException as error:  # noqa: B036 -- handed back to the caller
            box["error"] = error
    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def make_call(db, run, i, scenario, conn, watcher, prompt_slug, flaky_secret):
    """Makes call i; returns the session to use next (a terminated one is replaced)."""
    function, args = call_sql(db, run, i, scenario, prompt_slug, flaky_secret)
    sql, params = statement(function, args)
    try:
        if scenario in ("rollback", "error_after", "savepoint"):
            with conn.cursor() as cur:
                cur.execute("BEGIN")
                if scenario == "savepoint":
                    cur.execute("SAVEPOINT books")
                cur.execute(sql, params)
                if scenario == "error_after":
                    cur.execute("SELECT 1 / (random() * 0)::int")
                if scenario == "savepoint":
                    cur.execute("ROLLBACK TO SAVEPOINT books")
                    cur.execute("COMMIT")
                else:
                    cur.execute("ROLLBACK")
            run.tally(scenario, "ok")
            return conn
        if scenario in ("cancel_after", "terminate_after", "terminate_idle"):
            return stop_after_the_answer(db, run, scenario, conn, watcher, sql, params)
        result = scalar(conn, sql, params)
        run.tally(scenario, result["status"] + (":" + result["error_code"] if result.get("error_code") else ""))
        return conn
    except psycopg2.Error as error:
        if scenario == "error_after" and error.pgcode == "22012":
            run.tally(scenario, "22012")
        elif error.pgcode == "LC020":
            # Every key of the call's models was cooling down or unhealthy at that moment
            # (429s and 401s of other calls): nothing reached a provider, nothing is owed.
            run.tally(scenario, "LC020")
        else:
            run.unexpected.append((i, scenario, error.pgcode, str(error).strip()[:300]))
        if conn.closed:
            return session(db)
        end_transaction(conn)
        return conn


def end_transaction(conn):
    """ROLLBACK of a transaction opened by hand (conn.rollback() does nothing in autocommit)."""
    if conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        with conn.cursor() as cur:
            cur.execute("ROLLBACK")


def stop_after_the_answer(db, run, scenario, conn, watcher, sql, params):
    """The call answers, then its statement is cancelled or its backend terminated: in the
    same statement (pg_sleep after the call: the target list is evaluated left to right) or
    idle in the transaction the call ran in."""
    victim = conn if scenario == "cancel_after" else session(db)
    pid = victim.get_backend_pid()
    if scenario == "terminate_idle":
        try:
            victim.autocommit = False
            scalar(victim, sql, params)                   # the transaction stays open
            assert wait_for(watcher, pid, "state = 'idle in transaction'")
            scalar(watcher, "SELECT pg_terminate_backend(%s)", (pid,))
            try:
                scalar(victim, "SELECT 1")
                run.unexpected.append((None, scenario, None, "the backend survived pg_terminate_backend"))
            except psycopg2.Error:
                run.tally(scenario, "terminated")
        finally:
            victim.close()
        return conn
    sleeping = sql + ", pg_sleep(30)"
    thread, box = in_thread(lambda: scalar(victim, sleeping, params))
    if not wait_for(watcher, pid, "wait_event = 'PgSleep'", thread):
        thread.join(30)
        if getattr(box.get("error"), "pgcode", None) == "LC020":
            run.tally(scenario, "LC020")  # nothing was sent (see make_call)
        else:
            run.unexpected.append((None, scenario, None, "the call never reached pg_sleep: %r" % (box,)))
        if victim is not conn:
            victim.close()
        return conn
    signal = "pg_cancel_backend" if scenario == "cancel_after" else "pg_terminate_backend"
    scalar(watcher, "SELECT %s(%%s)" % signal, (pid,))
    thread.join(30)
    error = box.get("error")
    if scenario == "cancel_after":
        if isinstance(error, psycopg2.Error) and error.pgcode == "57014":
            run.tally(scenario, "57014")
        else:
            run.unexpected.append((None, scenario, getattr(error, "pgcode", None), repr(error)[:300]))
        return victim
    if isinstance(error, psycopg2.Error):
        run.tally(scenario, "terminated")
    else:
        run.unexpected.append((None, scenario, None, "not terminated: %r" % (box,)))
    victim.close()
    return conn


# --------------------------------------------------------------------------- the books


def mock_books(mock, secrets):
    """{secret: (requests, tokens_in, tokens_out)} once the mock has answered everything."""
    deadline = time.monotonic() + 10
    books = mock._call("GET", "/_mock/books")
    while books["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
        books = mock._call("GET", "/_mock/books")
    assert books["in_flight"] == 0, books
    out = {}
    for secret in secrets:
        b = books["keys"].get(secret, {"requests": 0, "tokens_input": 0, "tokens_output": 0})
        out[secret] = (b["requests"], b["tokens_input"], b["tokens_output"])
    return out


# An attempt a provider may bill: it went out (not refused by the outbound guard, not a refused
# or unreachable connection, which the task's attempts mark "sent": false).
SENT = "a->>'outcome' IS DISTINCT FROM 'blocked_destination' AND a->>'sent' IS DISTINCT FROM 'false'"


def ledger_books(conn, key_ids):
    """{key_id: (attempts, tokens_in, tokens_out)} from processed_tasks, the tasks' count (a
    task for every call that made an attempt, sent or refused) and the count of those that
    reached a provider (what the license charges: API.md, one unit per call that reached a
    provider; a call whose every attempt went to the key nothing listens on is charged
    nothing)."""
    attempts = {r["key"]: r["n"] for r in rows(
        conn, "SELECT a->>'api_key_id' AS key, count(*) AS n FROM celaest.processed_tasks t,"
              " jsonb_array_elements(t.metadata->'attempts') a"
              " WHERE a->>'api_key_id' = ANY(%s) AND " + SENT +
              " GROUP BY 1", (key_ids,))}
    tokens = {str(r["key"]): (r["tin"], r["tout"]) for r in rows(
        conn, "SELECT api_key_id AS key, sum(tokens_input) AS tin, sum(tokens_output) AS tout"
              " FROM celaest.processed_tasks WHERE api_key_id = ANY(%s::uuid[]) GROUP BY 1", (key_ids,))}
    tasks = scalar(conn, "SELECT count(*) FROM celaest.processed_tasks t WHERE EXISTS ("
                         " SELECT 1 FROM jsonb_array_elements(t.metadata->'attempts') a"
                         " WHERE a->>'api_key_id' = ANY(%s))", (key_ids,))
    charged = scalar(conn, "SELECT count(*) FROM celaest.processed_tasks t WHERE EXISTS ("
                           " SELECT 1 FROM jsonb_array_elements(t.metadata->'attempts') a"
                           " WHERE a->>'api_key_id' = ANY(%s) AND " + SENT + ")", (key_ids,))
    return {k: (attempts.get(k, 0),) + tuple(int(x) for x in tokens.get(k, (0, 0))) for k in key_ids}, tasks, charged


def counter_books(conn, db, key_ids):
    keys = {str(r["id"]): (r["usage_count"], r["tokens_used"]) for r in rows(
        conn, "SELECT id, usage_count, tokens_used FROM celaest.ai_api_pool WHERE id = ANY(%s::uuid[])", (key_ids,))}
    return keys, db.license_used(conn)


def compare(db, run, keys, used_before, conn):
    """The three books, per key, once the counters have had time to fold (FOLD_WAIT_S)."""
    key_ids = list(keys)
    db.settle()
    mock = mock_books(db.mock, [secret for _, secret in keys.values()])
    deadline = time.monotonic() + FOLD_WAIT_S
    while True:
        ledger, tasks, charged = ledger_books(conn, key_ids)
        counters, used = counter_books(conn, db, key_ids)
        table = []
        agree = used - used_before == charged
        for key_id, (provider, secret) in sorted(keys.items(), key=lambda kv: kv[1]):
            m, l, c = mock[secret], ledger[key_id], counters[key_id]
            row_agrees = m == l and c == (m[0], m[1] + m[2])
            agree = agree and row_agrees
            table.append("%-9s %s  mock %-18s ledger %-18s counters %-14s %s" % (
                provider, key_id[:8], m, l, c, "" if row_agrees else "<-- differ"))
        if agree or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    report = "\n".join(
        ["run %s: %d calls; calls per scenario and outcome:" % (run.name, run.calls)]
        + ["  %-16s %s" % (s, run.outcomes.get(s, {})) for s, _ in SCENARIOS]
        + ["books per key (requests/attempts, tokens in, tokens out | usage_count, tokens_used):"]
        + ["  " + line for line in table]
        + ["license: ai_requests_used +%d, tasks %d (%d reached a provider), calls %d (%d refused with LC020"
           " before any request)" % (used - used_before, tasks, charged, run.calls, run.not_sent)])
    missing = missing_by_scenario(conn, run)
    if missing:
        report += "\ncalls with no task, by scenario: %s" % missing
    print(report)
    assert not run.unexpected, "calls that ended unplanned:\n%s\n%s" % (
        "\n".join(map(str, run.unexpected[:20])), report)
    # Every call that reached a provider is a task.
    assert tasks == run.calls - run.not_sent, report
    # The refused key was tried (its attempts are in the tasks, marked not sent).
    unsent = scalar(conn, "SELECT count(*) FROM celaest.processed_tasks t, jsonb_array_elements(t.metadata->'attempts') a"
                          " WHERE a->>'api_key_id' = ANY(%s) AND a->>'sent' = 'false'", (key_ids,))
    assert run.calls < 200 or unsent > 0, report
    assert agree, report
    # A task's tokens are what all its attempts reported (API.md: the tokens the provider
    # reported; an attempt retried after a billed 200 counts too), the same figures the keys'
    # tokens_used were charged.
    uneven = rows(conn, "SELECT t.id, t.tokens_input + t.tokens_output AS task_tokens,"
                        "       (SELECT coalesce(sum((a->>'tokens')::bigint), 0)"
                        "          FROM jsonb_array_elements(t.metadata->'attempts') a) AS attempt_tokens"
                        "  FROM celaest.processed_tasks t WHERE EXISTS ("
                        "   SELECT 1 FROM jsonb_array_elements(t.metadata->'attempts') a WHERE a->>'api_key_id' = ANY(%s))"
                        "   AND t.tokens_input + t.tokens_output <> (SELECT coalesce(sum((a->>'tokens')::bigint), 0)"
                        "          FROM jsonb_array_elements(t.metadata->'attempts') a)", (key_ids,))
    assert not uneven, (uneven[:10], report)
    assert sum(m[0] for m in mock.values()) >= run.calls - run.not_sent, report
    assert run.not_sent < run.calls // 20, report


def missing_by_scenario(conn, run):
    """{scenario: calls of this run with no task} (found by the call's tag in the task's input)."""
    recorded = {int(r["i"]) for r in rows(
        conn, "SELECT (regexp_match(input_text, %s))[1] AS i FROM celaest.processed_tasks"
              " WHERE organization_id = %s AND input_text ~ %s",
        (r"books %s (\d+)" % run.name, run.db.org_id, r"books %s \d+" % run.name))}
    missing = {}
    for i, scenario in enumerate(run.plan):
        if i not in recorded:
            missing[scenario] = missing.get(scenario, 0) + 1
    return missing


def heal(admin, key_ids):
    """A 401 marks its key unhealthy (API.md): bring it back for the next calls."""
    scalar(admin, "UPDATE celaest.ai_api_pool SET is_healthy = true, consecutive_failures = 0"
                  " WHERE id = ANY(%s::uuid[]) AND NOT is_healthy", (key_ids,))


def prepare(db, books_env, run_name, calls):
    admin = books_env["admin"]
    keys = fresh_keys(db, admin, run_name)
    flaky = next(secret for provider, secret in keys.values() if provider == "openai")
    run = Run(db, run_name, calls)
    return admin, keys, flaky, run


# --------------------------------------------------------------------------- the runs


def test_three_books_agree_serial(books_db, mock, books_env):
    db = books_db
    admin, keys, flaky, run = prepare(db, books_env, "serial", CALLS)
    used_before = db.license_used(admin)
    conn, watcher = session(db), connect(db.name)
    started = time.monotonic()
    for i, scenario in enumerate(run.plan):
        conn = make_call(db, run, i, scenario, conn, watcher, books_env["prompt"], flaky)
        heal(admin, list(keys))
    print("serial run: %d calls in %.1f s" % (run.calls, time.monotonic() - started))
    conn.close()
    watcher.close()
    compare(db, run, keys, used_before, admin)


def test_three_books_agree_concurrent(books_db, mock, books_env):
    db = books_db
    admin, keys, flaky, run = prepare(db, books_env, "concurrent", CALLS)
    used_before = db.license_used(admin)
    next_call = iter(range(run.calls))
    take = threading.Lock()
    done = threading.Event()

    def healer():
        own = connect(db.name)
        while not done.wait(0.05):
            heal(own, list(keys))
        own.close()

    def worker():
        conn, watcher = session(db), connect(db.name)
        try:
            while True:
                with take:
                    i = next(next_call, None)
                if i is None:
                    break
                conn = make_call(db, run, i, run.plan[i], conn, watcher, books_env["prompt"], flaky)
        except BaseException as error:  # noqa: B036 -- reported with the books
            run.unexpected.append((None, "worker", None, repr(error)[:300]))
        finally:
            conn.close()
            watcher.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(SESSIONS)] + [threading.Thread(target=healer)]
    for t in threads:
        t.start()
    for t in threads[:-1]:
        t.join(300)
    done.set()
    threads[-1].join(10)
    print("concurrent run: %d calls from %d sessions in %.1f s" % (run.calls, SESSIONS, time.monotonic() - started))
    compare(db, run, keys, used_before, admin)
