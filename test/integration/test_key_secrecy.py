"""No plaintext API key anywhere: not in any table or view of the extension, not in an error
message, a NOTICE, a result, pg_stat_activity or the server log, even when a provider echoes
the key back in its error body.

A module fixture first exercises every path that handles a secret (calls on every provider,
auth failures with an echoing provider, raised failures, health checks, rotation, LC040,
a wrong encryption key, debug logging), collecting everything the client saw; the tests then
search all of it, and the database, for every secret this test session created.
"""

import json
import os
import threading
import time

import psycopg2
import pytest

import conftest
from conftest import PROVIDERS, add_key, new_secret, rotate_key, rows, scalar


def fragments(secret):
    """The full secret and its unique core (the random part without the hinted last four)."""
    return [secret, secret.rsplit("-", 1)[-1][:-4]]


def leaks(text, secrets):
    text = text or ""
    return [s for s in secrets for f in fragments(s) if f and f in text]


def echo_body(secret, server_error=False):
    # What a careless provider (or proxy) might answer: the whole key in the message.
    if server_error:
        return {"error": {"message": "The server had an error with key %s" % secret, "type": "server_error",
                          "param": None, "code": None}}
    return {"error": {"message": "Incorrect API key provided: %s. Check your key." % secret,
                      "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}


class Seen:
    """Everything a client saw."""

    def __init__(self):
        self.results, self.errors, self.notices = [], [], []

    def error(self, exc):
        diag = exc.diag
        self.errors.append(" | ".join(str(x) for x in (exc.pgcode, exc.pgerror, diag.message_primary,
                                                        diag.message_detail, diag.message_hint, diag.context)))
        return exc


@pytest.fixture(scope="module")
def exercised(db, mock_server):
    mock = mock_server
    mock.reset()
    seen = Seen()
    conn = db.connect()
    scalar(conn, "SET client_min_messages = debug5")
    module_secrets = list(db.secrets.values())

    def expect_error(fn, *args, **kwargs):
        with pytest.raises(psycopg2.Error) as exc:
            fn(*args, **kwargs)
        return seen.error(exc.value)

    # 1. A successful call and a prompt on every provider, with debug logging to the server log.
    scalar(conn, "SET log_min_messages = debug5")
    for provider in PROVIDERS:
        seen.results.append(db.ai_chat(conn, [{"role": "user", "content": "secrecy %s" % provider}], None,
                                       {"provider": provider}))
    scalar(conn, "RESET log_min_messages")

    # 2. A provider that echoes the whole key in a 401, on a key of its own.
    scalar(conn, "UPDATE celaest.ai_api_pool SET is_active = false WHERE provider = 'openai'")
    echoed = new_secret("openai-echoed")
    module_secrets.append(echoed)
    echoed_id = add_key(conn, "openai", "echoed", echoed, {"priority": 5})
    mock.fault(provider="openai", status=401, count=1, body=echo_body(echoed))
    result = db.ai_chat(conn, [{"role": "user", "content": "echo my key"}], None, {"provider": "openai"})
    seen.results.append(result)
    assert result["status"] == "failed" and result["error_code"] == "auth_failed"
    assert "Incorrect API key provided" in result["error_message"]

    # 3. The same with raise: the failure travels in an ERROR (message and DETAIL).
    rotate_key(conn, echoed_id, echoed)  # healthy again, same secret
    mock.fault(provider="openai", status=500, count=3, body=echo_body(echoed, server_error=True))
    expect_error(db.ai_chat, conn, [{"role": "user", "content": "raise with my key"}], None,
                 {"provider": "openai", "raise": True})
    assert seen.errors[-1].startswith("LC021")

    # 4. Health checks, with one answer echoing the key.
    mock.fault(provider="openai", status=401, count=1, endpoint="models", body=echo_body(echoed))
    checked = rows(conn, "SELECT key_id, provider::text, healthy, status_code, latency_ms, error"
                         " FROM celaest.check_api_keys()")
    seen.results.append([dict(r, key_id=str(r["key_id"])) for r in checked])
    assert any(r["status_code"] == 401 for r in checked), checked

    # 5. Rotation, then calls with the rotated key, including a bad one.
    rotated = new_secret("openai-rotated")
    module_secrets.append(rotated)
    rotate_key(conn, echoed_id, rotated)
    seen.results.append(db.ai_chat(conn, [{"role": "user", "content": "after rotation"}], None,
                                   {"provider": "openai"}))
    bad = new_secret("anthropic-bad", valid=False)
    module_secrets.append(bad)
    scalar(conn, "UPDATE celaest.ai_api_pool SET is_active = false WHERE provider = 'anthropic'")
    add_key(conn, "anthropic", "bad", bad)
    seen.results.append(db.ai_chat(conn, [{"role": "user", "content": "bad key"}], None, {"provider": "anthropic"}))
    expect_error(db.ai_chat, conn, [{"role": "user", "content": "no key left"}], None, {"provider": "anthropic"})

    # 6. No encryption key, then a wrong one.
    other = db.connect()
    scalar(other, "SET client_min_messages = debug5")
    scalar(other, "SET celaest.encryption_key = ''")
    expect_error(db.ai_chat, other, [{"role": "user", "content": "no encryption key"}], None, {"provider": "groq"})
    expect_error(add_key, other, "groq", "lc040", new_secret("groq-lc040"))
    scalar(other, "SET celaest.encryption_key = 'wrong-encryption-key'")
    expect_error(db.ai_chat, other, [{"role": "user", "content": "wrong encryption key"}], None,
                 {"provider": "groq"})
    expect_error(rows, other, "SELECT * FROM celaest.check_api_keys()")
    scalar(other, "RESET celaest.encryption_key")

    # 7. Views an operator reads.
    for view in ("v_api_pool_status", "v_active_licenses", "v_daily_task_metrics"):
        seen.results.append([dict(r) for r in rows(conn, "SELECT * FROM celaest.%s" % view)])

    seen.notices = list(conn.notices) + list(other.notices)
    seen.conn = conn
    seen.secrets = module_secrets
    seen.echoed_id = echoed_id
    seen.rotated = rotated
    return seen


def all_secrets(seen):
    return sorted(set(seen.secrets) | set(conftest.ALL_SECRETS))


def test_the_paths_were_exercised(exercised):
    # The scans below mean something only if the secrets were used and errors were seen.
    assert len(exercised.errors) >= 6, exercised.errors
    assert any("LC040" in e for e in exercised.errors)
    assert any("LC020" in e for e in exercised.errors)
    assert [r["status"] for r in exercised.results[:len(PROVIDERS)]] == ["completed"] * len(PROVIDERS)


def test_no_secret_in_any_table(db, exercised):
    conn = exercised.conn
    relations = [r["relname"] for r in rows(
        conn, "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
              " WHERE n.nspname = 'celaest' AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY 1")]
    bytea_columns = rows(conn, "SELECT c.relname, a.attname FROM pg_class c"
                               " JOIN pg_namespace n ON n.oid = c.relnamespace"
                               " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
                               " WHERE n.nspname = 'celaest' AND c.relkind IN ('r', 'p', 'v', 'm')"
                               "   AND a.atttypid = 'bytea'::regtype")
    assert {"ai_api_pool", "processed_tasks", "audit_logs", "license_usage_log", "v_api_pool_status"} <= \
        set(relations)
    assert {("ai_api_pool", "key_value_encrypted")} <= {(c["relname"], c["attname"]) for c in bytea_columns}
    assert scalar(conn, "SELECT count(*) FROM celaest.audit_logs") > 0  # pool changes were audited
    needles = sorted({f for s in all_secrets(exercised) for f in fragments(s)})
    found = []
    for rel in relations:
        # The whole row as text: every text, varchar, jsonb, array... column at once (secrets are
        # [a-z0-9-] only, so the row literal's quoting cannot hide them).
        hits = rows(conn, 'SELECT DISTINCT f FROM celaest."%s" AS t, unnest(%%s::text[]) AS f'
                          ' WHERE strpos(t::text, f) > 0' % rel, (needles,))
        found += [(rel, h["f"]) for h in hits]
    for col in bytea_columns:
        hits = rows(conn, 'SELECT DISTINCT f FROM celaest."%s" AS t, unnest(%%s::text[]) AS f'
                          ' WHERE position(convert_to(f, \'UTF8\') IN t."%s") > 0'
                    % (col["relname"], col["attname"]), (needles,))
        found += [(col["relname"] + "." + col["attname"], h["f"]) for h in hits]
    assert found == []


def test_scan_finds_a_planted_secret(db, exercised):
    # The scan above can fail: a plaintext planted in a note and in a bytea column is found.
    conn = exercised.conn
    planted = new_secret("planted")
    try:
        scalar(conn, "UPDATE celaest.ai_api_pool SET notes = %s WHERE id = %s", (planted, exercised.echoed_id))
        assert scalar(conn, 'SELECT count(*) FROM celaest.ai_api_pool AS t WHERE strpos(t::text, %s) > 0',
                      (planted.rsplit("-", 1)[-1][:-4],)) == 1
        assert scalar(conn, "SELECT count(*) FROM celaest.ai_api_pool WHERE position(convert_to(%s, 'UTF8') IN"
                            " convert_to(notes, 'UTF8')) > 0", (planted,)) == 1
    finally:
        scalar(conn, "UPDATE celaest.ai_api_pool SET notes = NULL WHERE id = %s", (exercised.echoed_id,))
        conftest.ALL_SECRETS.remove(planted)


def test_secret_stored_only_encrypted(db, exercised):
    # The positive control for the scan above: the ciphertext decrypts to the secret.
    conn = exercised.conn
    assert scalar(conn, "SELECT pgp_sym_decrypt(key_value_encrypted, current_setting('celaest.encryption_key'))"
                        " FROM celaest.ai_api_pool WHERE id = %s", (exercised.echoed_id,)) == exercised.rotated


def test_no_secret_in_errors_notices_or_results(exercised):
    secrets = all_secrets(exercised)
    for error in exercised.errors:
        assert leaks(error, secrets) == [], error
    for notice in exercised.notices:
        assert leaks(notice, secrets) == [], notice
    for result in exercised.results:
        text = json.dumps(result, default=str)
        assert leaks(text, secrets) == [], text


def test_echoed_key_is_redacted_in_the_task(db, exercised):
    task = rows(exercised.conn, "SELECT error_code, error_message FROM celaest.processed_tasks"
                                " WHERE api_key_id = %s AND error_code = 'auth_failed'", (exercised.echoed_id,))
    assert task, "the echoing 401 was recorded"
    assert task[0]["error_message"] == "Incorrect API key provided: ***. Check your key."


def test_no_secret_in_pg_stat_activity_during_a_call(db, mock):
    caller = db.connect()
    watcher = db.connect()
    done = {}

    def call():
        try:
            done["result"] = db.ai_chat(caller, [{"role": "user", "content": "slow [[mock:sleep=600]]"}], None,
                                        {"provider": "gemini"})
        except psycopg2.Error as e:
            done["error"] = e

    thread = threading.Thread(target=call)
    thread.start()
    snapshots = []
    deadline = time.monotonic() + 3
    while thread.is_alive() and time.monotonic() < deadline:
        snapshots.append(json.dumps(rows(watcher, "SELECT * FROM pg_stat_activity"), default=str))
        time.sleep(0.05)
    thread.join(5)
    assert done.get("result", {}).get("status") == "completed", done
    assert any("celaest.ai_chat" in s for s in snapshots), "the call was seen running"
    for snapshot in snapshots:
        assert leaks(snapshot, conftest.ALL_SECRETS) == []


def test_no_secret_in_the_server_log(exercised):
    path = os.environ.get("CELAEST_SERVER_LOG")
    if not path or not os.access(path, os.R_OK):
        pytest.skip("CELAEST_SERVER_LOG not readable here")
    with open(path, encoding="utf-8", errors="replace") as f:
        log = f.read()
    # The log is the live one, and it saw our failures and debug output.
    assert "AI call failed after" in log
    assert "celaest.encryption_key is not set" in log
    found = leaks(log, all_secrets(exercised))
    assert found == [], "secrets in %s: %s" % (path, found)
