"""The API-key pool: add/rotate/check_api_keys, encryption, usage counters, rate windows,
priority and weight, expiry, and LC040 without an encryption key."""

import collections
import socket
import threading
import datetime
import time
import uuid

import psycopg2
import pytest

from conftest import add_key, new_secret, one, rotate_key, rows, scalar


def say(text):
    return [{"role": "user", "content": "%s #%s" % (text, uuid.uuid4().hex[:8])}]


def chat(db, conn, provider, text="pool call"):
    return db.ai_chat(conn, say(text), None, {"provider": provider})


def deactivate(conn, provider):
    scalar(conn, "UPDATE celaest.ai_api_pool SET is_active = false WHERE provider = %s", (provider,))


def test_add_api_key_stores_only_ciphertext(db, mock, conn):
    secret = new_secret("stored")
    key_id = add_key(conn, "openai", "stored-key", secret,
                     {"priority": 7, "weight": 3, "rate_limit_rpm": 11, "rate_limit_tpm": 22222,
                      "rate_limit_rpd": 333, "expires_at": "2099-01-02T03:04:05Z",
                      "base_url": "http://127.0.0.1:1/openai/v1"})
    row = one(conn, "SELECT provider::text, key_name, key_hint, priority, weight, rate_limit_rpm, rate_limit_tpm,"
                    " rate_limit_rpd, expires_at, metadata, is_active, is_healthy, usage_count, tokens_used,"
                    " key_value_encrypted, position(convert_to(%s, 'UTF8') IN key_value_encrypted) AS plain_at,"
                    " pgp_sym_decrypt(key_value_encrypted, current_setting('celaest.encryption_key')) AS decrypted"
                    " FROM celaest.ai_api_pool WHERE id = %s", (secret, key_id))
    assert row["provider"] == "openai" and row["key_name"] == "stored-key"
    assert row["key_hint"] == secret[-4:]
    assert (row["priority"], row["weight"], row["rate_limit_rpm"], row["rate_limit_tpm"], row["rate_limit_rpd"]) == \
        (7, 3, 11, 22222, 333)
    assert row["expires_at"] == datetime.datetime(2099, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    # A superuser set this base URL: the outbound guard trusts it, and says so (issue 11).
    assert row["metadata"] == {"base_url": "http://127.0.0.1:1/openai/v1", "base_url_by_superuser": True}
    assert row["is_active"] and row["is_healthy"] and row["usage_count"] == 0 and row["tokens_used"] == 0
    assert row["plain_at"] == 0
    assert bytes(row["key_value_encrypted"])[:1] in (b"\xc3", b"\x8c", b"\xc1")  # an OpenPGP packet
    assert row["decrypted"] == secret
    # Decrypting with another key fails: it really is encrypted under the setting.
    with pytest.raises(psycopg2.Error):
        scalar(conn, "SELECT pgp_sym_decrypt(key_value_encrypted, 'not-the-key') FROM celaest.ai_api_pool"
                     " WHERE id = %s", (key_id,))


def test_add_api_key_defaults_and_validation(db, mock, conn):
    key_id = add_key(conn, "groq", "defaults", new_secret("defaults"))
    row = db.key(conn, key_id)
    assert (row["priority"], row["weight"], row["rate_limit_rpm"], row["expires_at"], row["metadata"]) == \
        (0, 100, None, None, {})
    for options in ({"priority": "high"}, {"weight": -1}, {"rate_limit_rpm": 0}, {"base_url": "ftp://x"}):
        with pytest.raises(psycopg2.Error) as exc:
            add_key(conn, "groq", "bad", new_secret("bad-option"), options)
        assert exc.value.pgcode == "22023", options
    for secret in ("", "   ", "sk-good-line\\nbreak"):
        with pytest.raises(psycopg2.Error) as exc:
            add_key(conn, "groq", "bad", secret)
        assert exc.value.pgcode == "22023"


def test_usage_counters(db, mock, conn):
    key_id, _ = db.only_key(conn, "deepseek", "counted")
    before = scalar(conn, "SELECT clock_timestamp()")
    results = [chat(db, conn, "deepseek") for _ in range(3)]
    after = scalar(conn, "SELECT clock_timestamp()")
    assert all(r["status"] == "completed" for r in results)
    key = db.key(conn, key_id)
    assert key["usage_count"] == 3
    assert key["tokens_used"] == sum(r["tokens_input"] + r["tokens_output"] for r in results)
    assert before <= key["last_used_at"] <= after
    assert all(db.task(conn, r["task_id"])["api_key_id"] == key_id for r in results)
    pool = one(conn, "SELECT * FROM celaest.v_api_pool_status WHERE provider = 'deepseek'")
    assert "key_value_encrypted" not in pool


def wait_for_fresh_minute(margin_s=8):
    """Rate windows are fixed UTC minutes: start a window test well inside one."""
    into = time.time() % 60
    if into > 60 - margin_s:
        time.sleep(60 - into + 0.2)


def test_rpm_window_moves_to_another_key(db, mock, conn):
    deactivate(conn, "groq")
    wait_for_fresh_minute()
    limited = add_key(conn, "groq", "rpm-limited", new_secret("rpm"), {"priority": 10, "rate_limit_rpm": 2})
    spare = add_key(conn, "groq", "spare", new_secret("spare"), {"priority": 0})
    used = [db.task(conn, chat(db, conn, "groq")["task_id"])["api_key_id"] for _ in range(4)]
    assert used == [limited, limited, spare, spare]
    assert db.key(conn, limited)["usage_count"] == 2


def test_rpm_window_exhausted_is_lc020(db, mock, conn):
    wait_for_fresh_minute()
    limited, _ = db.only_key(conn, "gemini", "rpm-only", options={"rate_limit_rpm": 2})
    assert chat(db, conn, "gemini")["status"] == "completed"
    assert chat(db, conn, "gemini")["status"] == "completed"
    used, tasks = db.license_used(conn), db.task_count(conn)
    with pytest.raises(psycopg2.Error) as exc:
        chat(db, conn, "gemini")
    assert exc.value.pgcode == "LC020"
    assert db.license_used(conn) == used and db.task_count(conn) == tasks
    assert len(mock.chat_requests("gemini")) == 2
    # The window is shared by every session, not per connection.
    other = db.connect()
    with pytest.raises(psycopg2.Error) as exc:
        chat(db, other, "gemini")
    assert exc.value.pgcode == "LC020"


def test_rpd_window(db, mock, conn):
    limited, _ = db.only_key(conn, "anthropic", "rpd-only", options={"rate_limit_rpd": 1})
    assert chat(db, conn, "anthropic")["status"] == "completed"
    with pytest.raises(psycopg2.Error) as exc:
        chat(db, conn, "anthropic")
    assert exc.value.pgcode == "LC020"


def test_tpm_window(db, mock, conn):
    wait_for_fresh_minute()
    limited, _ = db.only_key(conn, "local", "tpm-only", options={"rate_limit_tpm": 10})
    first = chat(db, conn, "local")
    assert first["status"] == "completed"
    assert first["tokens_input"] + first["tokens_output"] >= 10
    with pytest.raises(psycopg2.Error) as exc:
        chat(db, conn, "local")
    assert exc.value.pgcode == "LC020"


def test_priority_first(db, mock, conn):
    deactivate(conn, "openai")
    high = add_key(conn, "openai", "high", new_secret("high"), {"priority": 5, "weight": 1})
    add_key(conn, "openai", "low", new_secret("low"), {"priority": 1, "weight": 1000})
    used = {db.task(conn, chat(db, conn, "openai")["task_id"])["api_key_id"] for _ in range(8)}
    assert used == {high}


def test_weight_zero_takes_no_share(db, mock, conn):
    deactivate(conn, "openai")
    active = add_key(conn, "openai", "weighted", new_secret("w100"), {"weight": 100})
    add_key(conn, "openai", "idle", new_secret("w0"), {"weight": 0})
    used = {db.task(conn, chat(db, conn, "openai")["task_id"])["api_key_id"] for _ in range(8)}
    assert used == {active}


def test_weights_share_the_load(db, mock, conn):
    deactivate(conn, "openai")
    heavy = add_key(conn, "openai", "heavy", new_secret("w3"), {"weight": 300})
    light = add_key(conn, "openai", "light", new_secret("w1"), {"weight": 100})
    counts = collections.Counter(db.task(conn, chat(db, conn, "openai")["task_id"])["api_key_id"]
                                 for _ in range(80))
    # Expected 60/20; the bounds are > 5 standard deviations wide.
    assert set(counts) == {heavy, light}
    assert 40 <= counts[heavy] <= 76, counts
    # The Authorization header carried the secret of the key the task names.
    auth = collections.Counter(r["headers"]["authorization"] for r in mock.chat_requests("openai"))
    assert sorted(auth.values()) == sorted(counts.values())


def test_expired_and_inactive_keys_skipped(db, mock, conn):
    deactivate(conn, "groq")
    add_key(conn, "groq", "expired", new_secret("expired"), {"priority": 9, "expires_at": "2001-01-01T00:00:00Z"})
    inactive = add_key(conn, "groq", "inactive", new_secret("inactive"), {"priority": 8})
    scalar(conn, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s", (inactive,))
    unhealthy = add_key(conn, "groq", "unhealthy", new_secret("unhealthy"), {"priority": 7})
    scalar(conn, "UPDATE celaest.ai_api_pool SET is_healthy = false WHERE id = %s", (unhealthy,))
    usable = add_key(conn, "groq", "usable", new_secret("usable"), {"priority": 0})
    result = chat(db, conn, "groq")
    assert db.task(conn, result["task_id"])["api_key_id"] == usable


def test_rotate_api_key(db, mock, conn):
    key_id, old_secret = db.only_key(conn, "anthropic", "to-rotate", valid=False)
    first = chat(db, conn, "anthropic")
    assert first["status"] == "failed" and first["error_code"] == "auth_failed"
    assert not db.key(conn, key_id)["is_healthy"]
    new = new_secret("anthropic-rotated")
    rotate_key(conn, key_id, new)
    key = db.key(conn, key_id)
    assert key["is_healthy"] and key["consecutive_failures"] == 0
    assert key["key_hint"] == new[-4:]
    assert scalar(conn, "SELECT pgp_sym_decrypt(key_value_encrypted, current_setting('celaest.encryption_key'))"
                        " FROM celaest.ai_api_pool WHERE id = %s", (key_id,)) == new
    mock.reset()
    # Same connection: the backend's decrypted-key cache must not serve the old secret.
    result = chat(db, conn, "anthropic")
    assert result["status"] == "completed"
    assert db.task(conn, result["task_id"])["api_key_id"] == key_id
    assert [r["headers"]["x-api-key"] for r in mock.chat_requests("anthropic")] == [new]
    with pytest.raises(psycopg2.Error) as exc:
        rotate_key(conn, str(uuid.uuid4()), new_secret("nobody"))
    assert exc.value.pgcode == "P0002"


def test_check_api_keys_marks_bad_key_and_recovers_after_rotation(db, mock, conn):
    deactivate(conn, "openai")
    good = add_key(conn, "openai", "check-good", new_secret("check-good"))
    bad = add_key(conn, "openai", "check-bad", new_secret("check-bad", valid=False))
    before = scalar(conn, "SELECT clock_timestamp()")
    checked = {r["key_id"]: r for r in rows(conn, "SELECT * FROM celaest.check_api_keys()")}
    # Every active key of every provider was checked, concurrently, against the mock.
    active = {r["id"] for r in rows(conn, "SELECT id FROM celaest.ai_api_pool WHERE is_active")}
    assert set(checked) == active
    assert checked[good]["healthy"] is True and checked[good]["status_code"] == 200
    assert checked[good]["error"] is None and checked[good]["latency_ms"] >= 0
    assert checked[bad]["healthy"] is False and checked[bad]["status_code"] == 401
    assert "auth" in checked[bad]["error"] or "API key" in checked[bad]["error"]
    assert checked[bad]["provider"] == "openai"
    health_paths = {r["path"] for r in mock.requests() if r["method"] == "GET"}
    assert {"/openai/v1/models", "/groq/openai/v1/models", "/deepseek/models", "/anthropic/v1/models",
            "/gemini/v1beta/models", "/ollama/api/tags"} <= health_paths
    bad_row, good_row = db.key(conn, bad), db.key(conn, good)
    assert not bad_row["is_healthy"] and bad_row["last_health_check"] >= before
    assert good_row["is_healthy"] and good_row["last_health_check"] >= before
    # A call now uses only the good key.
    result = chat(db, conn, "openai")
    assert db.task(conn, result["task_id"])["api_key_id"] == good
    # Rotation to a valid secret, then a check of that one key: healthy again.
    rotate_key(conn, bad, new_secret("check-fixed"))
    mock.reset()
    checked = rows(conn, "SELECT * FROM celaest.check_api_keys(%s)", (bad,))
    assert len(checked) == 1 and checked[0]["healthy"] is True and checked[0]["status_code"] == 200
    assert [r["path"] for r in mock.requests()] == ["/openai/v1/models"]
    assert db.key(conn, bad)["is_healthy"]


def test_check_api_keys_counts_transient_failures(db, mock):
    c = db.connect(health_failure_threshold=2)
    key_id, _ = db.only_key(c, "deepseek", "check-flaky")
    mock.fault(provider="deepseek", status=503, count=2, endpoint="models")
    first = rows(c, "SELECT * FROM celaest.check_api_keys(%s)", (key_id,))[0]
    assert first["healthy"] is False and first["status_code"] == 503
    assert db.key(c, key_id)["is_healthy"] and db.key(c, key_id)["consecutive_failures"] == 1
    rows(c, "SELECT * FROM celaest.check_api_keys(%s)", (key_id,))
    assert not db.key(c, key_id)["is_healthy"]
    assert rows(c, "SELECT * FROM celaest.check_api_keys(%s)", (key_id,))[0]["healthy"] is True
    key = db.key(c, key_id)
    assert key["is_healthy"] and key["consecutive_failures"] == 0


def test_missing_encryption_key_is_lc040(db, mock):
    c = db.connect()
    # This backend has decrypted the key before: its cache must not bypass the setting.
    assert chat(db, c, "openai")["status"] == "completed"
    used, tasks = db.license_used(c), db.task_count(c)
    scalar(c, "SET celaest.encryption_key = ''")
    with pytest.raises(psycopg2.Error) as exc:
        add_key(c, "openai", "no-encryption", new_secret("lc040"))
    assert exc.value.pgcode == "LC040"
    with pytest.raises(psycopg2.Error) as exc:
        rotate_key(c, db.keys["openai"], new_secret("lc040-rotate"))
    assert exc.value.pgcode == "LC040"
    mock.reset()
    with pytest.raises(psycopg2.Error) as exc:
        chat(db, c, "openai")
    assert exc.value.pgcode == "LC040"
    with pytest.raises(psycopg2.Error) as exc:
        rows(c, "SELECT * FROM celaest.check_api_keys()")
    assert exc.value.pgcode == "LC040"
    assert mock.requests() == []
    assert db.license_used(c) == used and db.task_count(c) == tasks
    scalar(c, "RESET celaest.encryption_key")
    assert chat(db, c, "openai")["status"] == "completed"


def test_wrong_encryption_key_does_not_use_cached_plaintext(db, mock):
    c = db.connect()
    assert chat(db, c, "groq")["status"] == "completed"
    scalar(c, "SET celaest.encryption_key = 'some-other-key'")
    with pytest.raises(psycopg2.Error) as exc:
        chat(db, c, "groq")
    assert exc.value.pgcode != "LC040"
    assert "some-other-key" not in exc.value.pgerror
    scalar(c, "RESET celaest.encryption_key")
    assert chat(db, c, "groq")["status"] == "completed"


def test_key_functions_are_not_public(db, mock, conn):
    role = "it_app_" + uuid.uuid4().hex[:6]
    scalar(conn, "CREATE ROLE %s" % role)
    try:
        scalar(conn, "SET ROLE %s" % role)
        for sql in ("SELECT celaest.add_api_key('openai', 'x', 'sk-good-x-123456789')",
                    "SELECT celaest.rotate_api_key('%s', 'sk-good-x-123456789')" % db.keys["openai"],
                    "SELECT * FROM celaest.check_api_keys()",
                    "SELECT key_value_encrypted FROM celaest.ai_api_pool"):
            with pytest.raises(psycopg2.Error) as exc:
                scalar(conn, sql)
            assert exc.value.pgcode == "42501", sql
        with pytest.raises(psycopg2.Error) as exc:
            scalar(conn, "SHOW celaest.encryption_key")
        assert exc.value.pgcode == "42501"
        assert scalar(conn, "SELECT count(*) FROM pg_settings WHERE name = 'celaest.encryption_key'") == 0
    finally:
        scalar(conn, "RESET ROLE")
        scalar(conn, "DROP ROLE %s" % role)


def make_org(conn, tag):
    """Another organization with its own user and active license; returns the user id."""
    org = scalar(conn, "INSERT INTO celaest.organizations (name, slug) VALUES (%s, %s) RETURNING id",
                 ("Org " + tag, "org-" + tag))
    user = str(uuid.uuid4())
    scalar(conn, "INSERT INTO celaest.users_profile (id, organization_id, email, role) VALUES (%s, %s, %s, 'admin')",
           (user, org, "%s@example.test" % tag))
    scalar(conn, "SELECT celaest.issue_license(%s, 'it-pro')", (org,))
    return user


def test_rpm_window_exact_under_concurrency(db, mock, conn):
    wait_for_fresh_minute()
    key_id, _ = db.only_key(conn, "deepseek", "concurrent", options={"rate_limit_rpm": 3})
    # Six organizations, so that no license row is shared between the calls.
    users = [make_org(conn, "rpm-%s-%d" % (uuid.uuid4().hex[:6], i)) for i in range(6)]
    conns = [db.connect(user_id=u) for u in users]
    barrier = threading.Barrier(len(conns))
    outcomes = [None] * len(conns)

    def call(i):
        barrier.wait()
        try:
            r = db.ai_chat(conns[i], say("concurrent [[mock:sleep=500]]"), None, {"provider": "deepseek"})
            outcomes[i] = r["status"]
        except psycopg2.Error as e:
            outcomes[i] = e.pgcode

    started = time.monotonic()
    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - started
    assert sorted(outcomes) == ["LC020"] * 3 + ["completed"] * 3, outcomes
    assert db.key(conn, key_id)["usage_count"] == 3
    assert len(mock.chat_requests("deepseek")) == 3
    # Different organizations do not wait for each other: three 500 ms calls ran side by side
    # (one after the other would take over 1.5 s).
    assert elapsed < 1.2, elapsed
    for c in conns:
        c.close()


def test_check_api_keys_429_neither_counts_nor_resets_the_failures(db, mock):
    # The call path does not count a 429 against a key (it authenticated; only its rate or its
    # day's quota is spent): neither does a health check. 5xx still counts, as on the call path.
    c = db.connect(health_failure_threshold=2)
    key_id, _ = db.only_key(c, "groq", "check-limited")
    scalar(c, "UPDATE celaest.ai_api_pool SET consecutive_failures = 1 WHERE id = %s RETURNING 1", (key_id,))
    mock.fault(provider="groq", status=429, count=3, endpoint="models", retry_after=30)
    for _ in range(3):
        row = rows(c, "SELECT * FROM celaest.check_api_keys(%s)", (key_id,))[0]
        # The row still says what the check found.
        assert row["healthy"] is False and row["status_code"] == 429, row
        assert row["error"].startswith("rate_limited"), row
        key = db.key(c, key_id)
        assert key["is_healthy"] and key["consecutive_failures"] == 1, key
        assert key["last_health_check"] is not None
    mock.fault(provider="groq", status=503, count=1, endpoint="models")
    rows(c, "SELECT * FROM celaest.check_api_keys(%s)", (key_id,))
    key = db.key(c, key_id)
    assert not key["is_healthy"] and key["consecutive_failures"] == 2, key


def test_check_api_keys_gemini_daily_quota_leaves_the_key_healthy(db, mock):
    c = db.connect(health_failure_threshold=1)
    key_id, _ = db.only_key(c, "gemini", "check-daily")
    body = {"error": {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED",
                      "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                   "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}
    mock.fault(provider="gemini", status=429, count=1, endpoint="models", body=body)
    row = rows(c, "SELECT * FROM celaest.check_api_keys(%s)", (key_id,))[0]
    assert row["healthy"] is False and row["status_code"] == 429 and row["error"].startswith("daily_quota_exhausted")
    key = db.key(c, key_id)
    assert key["is_healthy"] and key["consecutive_failures"] == 0, key


def test_check_api_keys_obeys_max_response_size(db, mock):
    # A health check is a provider request like any other: celaest.max_response_size caps its
    # response too (it used to be left at the client's 8 MB default).
    c = db.connect()
    key_id, _ = db.only_key(c, "openai", "check-oversized")
    scalar(c, "SET celaest.max_response_size = 16")  # kB
    mock.fault(provider="openai", status=500, count=1, endpoint="models", body="x" * 40000,
               content_type="text/plain")
    row = rows(c, "SELECT * FROM celaest.check_api_keys(%s)", (key_id,))[0]
    assert row["healthy"] is False and row["status_code"] is None
    assert row["error"].startswith("too large:"), row["error"]
    assert "16384" in row["error"]
    key = db.key(c, key_id)
    assert key["is_healthy"] and key["consecutive_failures"] == 1  # not the key's fault: transient
    # The same body under a larger setting is read as the 500 it is.
    scalar(c, "SET celaest.max_response_size = 1024")
    mock.fault(provider="openai", status=500, count=1, endpoint="models", body="x" * 40000,
               content_type="text/plain")
    row = rows(c, "SELECT * FROM celaest.check_api_keys(%s)", (key_id,))[0]
    assert row["healthy"] is False and row["status_code"] == 500
    assert [r["path"] for r in mock.requests()].count("/openai/v1/models") == 2


def test_check_api_keys_unreachable_key(db, mock, conn):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key_id, _ = db.only_key(conn, "gemini", "unreachable",
                            options={"base_url": "http://127.0.0.1:%d/gemini/v1beta" % port})
    row = rows(conn, "SELECT * FROM celaest.check_api_keys(%s)", (key_id,))[0]
    assert row["healthy"] is False and row["status_code"] is None
    assert row["error"] and "connect" in row["error"].lower()
    key = db.key(conn, key_id)
    assert key["is_healthy"] and key["consecutive_failures"] == 1  # transient, below the threshold
    assert mock.requests() == []


def test_check_api_keys_gemini_and_anthropic_bad_keys(db, mock, conn):
    results = {}
    for provider in ("gemini", "anthropic"):
        key_id, _ = db.only_key(conn, provider, "check-bad", valid=False)
        results[provider] = (key_id, rows(conn, "SELECT * FROM celaest.check_api_keys(%s)", (key_id,))[0])
    gemini_id, gemini = results["gemini"]
    assert gemini["healthy"] is False and gemini["status_code"] == 400  # API_KEY_INVALID
    anthropic_id, anthropic = results["anthropic"]
    assert anthropic["healthy"] is False and anthropic["status_code"] == 401
    for key_id in (gemini_id, anthropic_id):
        assert not db.key(conn, key_id)["is_healthy"]  # a rejected key is definitive
    sent = {r["path"]: r["headers"] for r in mock.requests()}
    assert "x-goog-api-key" in sent["/gemini/v1beta/models"]
    assert sent["/anthropic/v1/models"]["anthropic-version"] == "2023-06-01"


def test_calls_of_one_organization_run_side_by_side(db, mock, conn):
    conns = [db.connect() for _ in range(3)]
    barrier = threading.Barrier(len(conns))

    def call(c):
        barrier.wait()
        db.ai_chat(c, say("same org [[mock:sleep=500]]"), None, {"provider": "groq"})

    started = time.monotonic()
    threads = [threading.Thread(target=call, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert time.monotonic() - started < 1.2


def test_check_api_keys_deactivates_expired_keys(db, mock, conn):
    # The sweep retires a key past expires_at (it is deactivated, not checked); a key that
    # expires later stays active and is checked.
    expired = add_key(conn, "groq", "sweep-expired", new_secret("sweep-expired"))
    later = add_key(conn, "groq", "sweep-later", new_secret("sweep-later"))
    scalar(conn, "UPDATE celaest.ai_api_pool SET expires_at = now() - interval '1 second' WHERE id = %s", (expired,))
    scalar(conn, "UPDATE celaest.ai_api_pool SET expires_at = now() + interval '1 day' WHERE id = %s", (later,))
    checked = {r["key_id"] for r in rows(conn, "SELECT * FROM celaest.check_api_keys()")}
    assert later in checked and expired not in checked
    assert not db.key(conn, expired)["is_active"] and db.key(conn, later)["is_active"]
    assert db.key(conn, expired)["last_health_check"] is None


def test_add_api_key_encrypts_with_the_cheap_s2k_count(db, mock, conn):
    # OpenPGP symmetric-key packet (RFC 4880 5.3): version 4, cipher, S2K type 3 (iterated and
    # salted), hash, 8-byte salt, then the coded count c: (16 + (c & 15)) << ((c >> 4) + 6)
    # octets hashed, so 1,024 is c = 0.
    key_id = add_key(conn, "openai", "s2k-count", new_secret("s2k-count"))
    packet = bytes(scalar(conn, "SELECT key_value_encrypted FROM celaest.ai_api_pool WHERE id = %s", (key_id,)))
    assert packet[0] in (0xC3, 0x8C), packet[:4].hex()  # tag 3, new or old packet format
    body = packet[2:]  # one length octet: the packet is short
    assert body[0] == 4 and body[2] == 3 and body[12] == 0, packet[:16].hex()
