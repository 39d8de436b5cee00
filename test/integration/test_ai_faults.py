"""Every fault the mock can inject, through ai_chat/run_prompt: the final status, error_code,
retry count, the attempts the provider saw, key health and what was consumed."""

import json
import socket
import threading
import time
import uuid
from decimal import ROUND_HALF_UP, Decimal

import psycopg2
import psycopg2.errors
import pytest

from conftest import MODELS, PROVIDERS, expected_cost, one, scalar


def say(text):
    """A user message unique to this test run (fail-then-ok counts per text)."""
    return [{"role": "user", "content": "%s #%s" % (text, uuid.uuid4().hex[:8])}]


def attempts_of(task):
    return task["metadata"]["attempts"]


# ------------------------------------------------------------------ retryable, then success


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_429_retry_after_then_success(db, mock, conn, provider):
    key_id, _ = db.only_key(conn, provider, "ratelimited")
    started = time.monotonic()
    result = db.ai_chat(conn, say("[[mock:fail-then-ok=1]] [[mock:429]] [[mock:retry-after=1]]"),
                        MODELS[provider][0], {"provider": provider})
    elapsed = time.monotonic() - started
    assert result["status"] == "completed", result
    assert result["retry_count"] == 1
    assert result["provider"] == provider
    statuses = [r["status_returned"] for r in mock.chat_requests(provider)]
    assert statuses == [429, 200]
    # The provider's delay was honoured (1 s), not the 10 ms base delay.
    assert 1.0 <= elapsed < 3.0
    task = db.task(conn, result["task_id"])
    assert task["retry_count"] == 1 and task["api_key_id"] == key_id
    assert [a["http_status"] for a in attempts_of(task)] == [429, 200]
    assert [a["outcome"] for a in attempts_of(task)] == ["rate_limited", "ok"]
    # A rate limit is not a key failure.
    key = db.key(conn, key_id)
    assert key["is_healthy"] and key["consecutive_failures"] == 0


def test_429_moves_to_another_key_without_waiting(db, mock, conn):
    from conftest import add_key, new_secret
    limited_id, limited_secret = db.only_key(conn, "openai", "limited", options={"priority": 10})
    spare_secret = new_secret("openai-spare")
    spare_id = add_key(conn, "openai", "spare", spare_secret, {"priority": 0})
    mock.fault(provider="openai", status=429, retry_after=5, count=1, key_prefix=limited_secret)
    started = time.monotonic()
    result = db.ai_chat(conn, say("rate limited key"), None, {"provider": "openai"})
    elapsed = time.monotonic() - started
    assert result["status"] == "completed", result
    assert result["retry_count"] == 1
    task = db.task(conn, result["task_id"])
    assert [a["api_key_id"] for a in attempts_of(task)] == [limited_id, spare_id]
    # The 5 s Retry-After binds the limited key, not the call: the spare key answered at once.
    assert elapsed < 1.5, elapsed
    # And the limited key stays off for the other calls until its delay has passed.
    again = db.ai_chat(conn, say("while cooling"), None, {"provider": "openai"})
    assert db.task(conn, again["task_id"])["api_key_id"] == spare_id
    # v_api_pool_status shows it cooling down until about the end of the Retry-After (issue 12 §7).
    pool = one(conn, "SELECT keys_cooling_down, extract(epoch FROM cooldown_ends_at - now())::float8 AS left_s"
                     " FROM celaest.v_api_pool_status WHERE provider = 'openai'")
    assert pool["keys_cooling_down"] == 1 and 2.0 < pool["left_s"] <= 5.5, pool


def test_429_without_retry_after_retries_the_same_key(db, mock, conn):
    key_id, _ = db.only_key(conn, "openai", "ratelimited-nohint")
    used = db.license_used(conn)
    result = db.ai_chat(conn, say("[[mock:fail-then-ok=2]] [[mock:429]]"), None, {"provider": "openai"})
    assert result["status"] == "completed", result
    assert result["retry_count"] == 2
    assert [r["status_returned"] for r in mock.chat_requests("openai")] == [429, 429, 200]
    assert db.task(conn, result["task_id"])["api_key_id"] == key_id
    # Retries are part of one unit.
    assert db.license_used(conn) == used + 1


@pytest.mark.parametrize("provider,status,code", [("openai", 500, "server_error"), ("deepseek", 503, "overloaded"),
                                                  ("anthropic", 529, "overloaded"), ("local", 500, "server_error")])
def test_server_errors_retried_then_success(db, mock, conn, provider, status, code):
    before = db.key(conn, db.keys[provider])
    used = db.license_used(conn)
    result = db.ai_chat(conn, say("[[mock:fail-then-ok=2]] [[mock:%d]]" % status), MODELS[provider][0],
                        {"provider": provider})
    assert result["status"] == "completed", result
    assert result["retry_count"] == 2
    assert result["error_code"] is None
    assert [r["status_returned"] for r in mock.chat_requests(provider)] == [status, status, 200]
    task = db.task(conn, result["task_id"])
    assert task["retry_count"] == 2
    assert [a["outcome"] for a in attempts_of(task)] == [code, code, "ok"]
    # Cost from the successful attempt's tokens only.
    m = db.models[provider]
    assert task["cost_usd"] == expected_cost(task["tokens_input"], task["tokens_output"], m["price_in"], m["price_out"])
    key = db.key(conn, db.keys[provider])
    # Three requests with the key; the success reset its failure count.
    assert key["usage_count"] == before["usage_count"] + 3
    assert key["tokens_used"] == before["tokens_used"] + task["tokens_input"] + task["tokens_output"]
    assert key["consecutive_failures"] == 0 and key["is_healthy"]
    assert db.license_used(conn) == used + 1


def test_retries_exhausted_fall_back_to_next_model_by_priority(db, mock, conn):
    # openai candidates: gpt-4o-mini (default), then gpt-4o (priority 55) before gpt-4.1 (5).
    low = db.add_model(conn, "openai", "gpt-4.1", 5, "1.000000", "2.000000")
    high = db.add_model(conn, "openai", "gpt-4o", 55, "0.250000", "1.000000")
    mock.fault(provider="openai", status=503, count=3, model="gpt-4o-mini")
    used = db.license_used(conn)
    result = db.ai_chat(conn, say("fall back please"), None, {"provider": "openai"})
    assert result["status"] == "completed", result
    assert result["model"] == "gpt-4o"
    assert result["retry_count"] == 3  # max_retries (2) + 1 on the first model, then one success
    sent = [(r["body"]["model"], r["status_returned"]) for r in mock.chat_requests("openai")]
    assert sent == [("gpt-4o-mini", 503)] * 3 + [("gpt-4o", 200)]
    task = db.task(conn, result["task_id"])
    assert task["model_id"] == high
    assert task["model_id"] != low
    assert task["cost_usd"] == expected_cost(task["tokens_input"], task["tokens_output"], "0.250000", "1.000000")
    assert [a["model"] for a in attempts_of(task)] == ["gpt-4o-mini"] * 3 + ["gpt-4o"]
    assert db.license_used(conn) == used + 1


def test_json_calls_fall_back_only_to_models_with_json_mode(db, mock, conn):
    # API.md: fall back "through active models of the same capability". After the default
    # (gpt-4o-mini) fails, a JSON call skips the higher-priority model without json_mode.
    tag = uuid.uuid4().hex[:6]
    plain, with_json = "plain-%s" % tag, "json-%s" % tag
    db.add_model(conn, "openai", plain, 60)
    scalar(conn, "INSERT INTO celaest.ai_models (provider, model_id, display_name, priority, capabilities)"
                 " VALUES ('openai', %s, %s, 6, '{\"text_generation\": true, \"json_mode\": true}')",
           (with_json, with_json))
    mock.fault(provider="openai", status=503, count=3, model="gpt-4o-mini")
    result = db.ai_chat(conn, say('Answer {"ok": true} as JSON'), None, {"provider": "openai", "json": True})
    assert [r["body"]["model"] for r in mock.chat_requests("openai")] == ["gpt-4o-mini"] * 3 + [with_json]
    assert result["model"] == with_json, result
    # Without JSON mode the same failure falls back by priority alone.
    mock.reset()
    mock.fault(provider="openai", status=503, count=3, model="gpt-4o-mini")
    result = db.ai_chat(conn, say("plain text please"), None, {"provider": "openai"})
    assert result["model"] == plain, result


def test_a_named_model_does_not_fall_back_to_another(db, mock, conn):
    # API.md "Routing and failover": another model only when the caller named none or asked.
    # A call naming gpt-4o-mini that gets 500s ends failed; it is not answered by another model.
    mock.fault(provider="openai", status=500, count=3, model="gpt-4o-mini")
    result = db.ai_chat(conn, say("named, no fallback"), "gpt-4o-mini")
    assert result["status"] == "failed", result
    assert result["model"] == "gpt-4o-mini" and result["error_code"] == "server_error"
    others = [p for p in PROVIDERS if p != "openai"]
    assert all(not mock.chat_requests(p) for p in others)
    assert [r["body"]["model"] for r in mock.chat_requests("openai")] == ["gpt-4o-mini"] * 3


def test_a_named_model_falls_back_when_asked(db, mock, conn):
    # fallback_models: tried in the caller's order, after the named model.
    mock.fault(provider="openai", status=500, count=3, model="gpt-4o-mini")
    groq, deepseek = MODELS["groq"][0], MODELS["deepseek"][0]
    result = db.ai_chat(conn, say("named, explicit list"), "gpt-4o-mini",
                        {"fallback_models": [deepseek, groq]})
    assert result["status"] == "completed", result
    assert (result["provider"], result["model"]) == ("deepseek", deepseek)
    assert not mock.chat_requests("groq")
    # fallback: true → the catalogue by priority (groq is the next after openai).
    mock.reset()
    mock.fault(provider="openai", status=500, count=3, model="gpt-4o-mini")
    result = db.ai_chat(conn, say("named, fallback on"), "gpt-4o-mini", {"fallback": True})
    assert (result["status"], result["provider"]) == ("completed", "groq"), result
    # An unknown model in the list is the caller's error, before anything is sent.
    mock.reset()
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(conn, say("bad list"), "gpt-4o-mini", {"fallback_models": ["no-such-model"]})
    assert exc.value.pgcode == "22023" and "no-such-model" in exc.value.pgerror
    assert not mock.chat_requests()


def test_no_model_named_but_fallback_false_stays_on_the_first_choice(db, mock, conn):
    mock.fault(provider="openai", status=500, count=3, model="gpt-4o-mini")
    result = db.ai_chat(conn, say("default model, no fallback"), None, {"fallback": False})
    assert (result["status"], result["model"]) == ("failed", "gpt-4o-mini"), result
    assert all(not mock.chat_requests(p) for p in PROVIDERS if p != "openai")


def test_max_retries_setting(db, mock):
    c = db.connect(max_retries=0)
    result = db.ai_chat(c, say("[[mock:500]]"), None, {"provider": "groq"})
    assert result["status"] == "failed" and result["retry_count"] == 0
    assert result["error_code"] == "server_error"
    assert len(mock.chat_requests("groq")) == 1


def test_retries_exhausted_without_fallback_fails(db, mock, conn):
    tasks, used = db.task_count(conn), db.license_used(conn)
    result = db.ai_chat(conn, say("[[mock:503]]"), None, {"provider": "deepseek"})
    assert result["status"] == "failed"
    assert result["error_code"] == "overloaded"
    assert result["retry_count"] == 2
    assert result["output_text"] is None and result["error_message"]
    assert len(mock.chat_requests("deepseek")) == 3
    task = db.task(conn, result["task_id"])
    assert (task["status"], task["error_code"], task["retry_count"]) == ("failed", "overloaded", 2)
    assert task["tokens_input"] == 0 and task["cost_usd"] == 0
    assert task["api_key_id"] == db.keys["deepseek"]
    assert db.task_count(conn) == tasks + 1
    # It reached the provider: one unit consumed.
    assert db.license_used(conn) == used + 1
    # Three failures in a row reach the default threshold (3): the key is unhealthy now.
    key = db.key(conn, db.keys["deepseek"])
    assert key["consecutive_failures"] == 3 and not key["is_healthy"]


def test_raise_option_is_lc021(db, mock, conn):
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(conn, say("[[mock:500]]"), None, {"provider": "groq", "raise": True})
    assert exc.value.pgcode == "LC021"
    assert "server_error" in exc.value.pgerror
    assert exc.value.diag.message_detail  # the provider's message
    assert len(mock.chat_requests("groq")) == 3
    # raise: "true" as text too; and the connection is fine afterwards.
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(conn, say("[[mock:400]]"), None, {"provider": "groq", "raise": "true"})
    assert exc.value.pgcode == "LC021"
    assert db.ai_chat(conn, say("fine again"), None, {"provider": "groq"})["status"] == "completed"


# ------------------------------------------------------------------ key failures


def test_a_failing_key_gives_way_to_the_next_key_before_any_other_model(db, mock, conn):
    # The acceptance case (API.md "Routing and failover"): a failing key of higher priority and
    # a good key below it. The 500 moves the call to the good key at once, without a back-off
    # retry on the failing key and without another provider's model.
    from conftest import add_key, new_secret
    failing_id, failing_secret = db.only_key(conn, "openai", "failing", options={"priority": 10})
    good_secret = new_secret("openai-good-below")
    good_id = add_key(conn, "openai", "openai-good-below", good_secret, {"priority": 0})
    mock.fault(provider="openai", status=500, count=5, key_prefix=failing_secret)
    result = db.ai_chat(conn, say("keys before models"), None, {"provider": "openai"})
    assert result["status"] == "completed", result
    assert (result["provider"], result["model"]) == ("openai", "gpt-4o-mini")
    task = db.task(conn, result["task_id"])
    assert [a["api_key_id"] for a in attempts_of(task)] == [failing_id, good_id]
    assert [r["status_returned"] for r in mock.chat_requests("openai")] == [500, 200]
    assert all(not mock.chat_requests(p) for p in PROVIDERS if p != "openai")


def test_timeout_ms_bounds_the_whole_call_retries_included(db, mock, conn):
    # Every attempt is answered 500 after 300 ms; back-off 100 ms. With timeout_ms = 1000 the
    # call ends failed within about a second, whatever max_retries would allow.
    c = db.connect(max_retries=10, retry_base_delay="100ms", retry_max_delay="100ms")
    mock.fault(provider="groq", status=500, count=50, delay_ms=300)
    started = time.time()
    result = db.ai_chat(c, say("bounded"), None, {"provider": "groq", "timeout_ms": 1000})
    elapsed = time.time() - started
    assert result["status"] == "failed", result
    assert elapsed < 1.6, elapsed
    assert 2 <= len(mock.chat_requests("groq")) <= 4


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "groq"])
def test_invalid_key_marked_unhealthy_and_another_key_used(db, mock, conn, provider):
    bad_id, _ = db.only_key(conn, provider, "revoked", valid=False, options={"priority": 10})
    from conftest import add_key, new_secret
    good_secret = new_secret(provider + "-backup")
    good_id = add_key(conn, provider, provider + "-backup", good_secret, {"priority": 0})
    result = db.ai_chat(conn, say("auth fallback"), None, {"provider": provider})
    assert result["status"] == "completed", result
    assert result["retry_count"] == 1
    task = db.task(conn, result["task_id"])
    assert task["api_key_id"] == good_id
    assert [a["api_key_id"] for a in attempts_of(task)] == [bad_id, good_id]
    assert attempts_of(task)[0]["outcome"] in ("auth_failed", "forbidden")
    # Gemini answers a bad key with 400 API_KEY_INVALID, the others with 401.
    statuses = [r["status_returned"] for r in mock.chat_requests(provider)]
    assert statuses == [400 if provider == "gemini" else 401, 200]
    bad = db.key(conn, bad_id)
    assert not bad["is_healthy"] and bad["consecutive_failures"] == 1  # definitive: at once
    good = db.key(conn, good_id)
    assert good["is_healthy"] and good["usage_count"] == 1
    # The next call goes straight to the healthy key.
    mock.reset()
    assert db.ai_chat(conn, say("again"), None, {"provider": provider})["status"] == "completed"
    assert [r["status_returned"] for r in mock.chat_requests(provider)] == [200]


def test_only_invalid_key_fails_with_auth_failed(db, mock, conn):
    bad_id, _ = db.only_key(conn, "openai", "revoked-alone", valid=False)
    used = db.license_used(conn)
    result = db.ai_chat(conn, say("no good key"), None, {"provider": "openai"})
    assert result["status"] == "failed"
    assert result["error_code"] == "auth_failed"
    assert result["retry_count"] == 0
    assert len(mock.chat_requests("openai")) == 1
    assert not db.key(conn, bad_id)["is_healthy"]
    assert db.license_used(conn) == used + 1
    # Now no usable key is left: LC020, and nothing consumed.
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(conn, say("no key at all"), None, {"provider": "openai"})
    assert exc.value.pgcode == "LC020"
    assert db.license_used(conn) == used + 1


def test_transient_failures_mark_unhealthy_after_threshold(db, mock):
    c = db.connect(health_failure_threshold=2, max_retries=0)
    key_id, _ = db.only_key(c, "groq", "flaky")
    result = db.ai_chat(c, say("[[mock:500]]"), None, {"provider": "groq"})
    assert result["status"] == "failed"
    key = db.key(c, key_id)
    assert key["consecutive_failures"] == 1 and key["is_healthy"]
    # A success resets the count.
    assert db.ai_chat(c, say("ok"), None, {"provider": "groq"})["status"] == "completed"
    assert db.key(c, key_id)["consecutive_failures"] == 0
    db.ai_chat(c, say("[[mock:500]]"), None, {"provider": "groq"})
    db.ai_chat(c, say("[[mock:502]]"), None, {"provider": "groq"})
    key = db.key(c, key_id)
    assert key["consecutive_failures"] == 2 and not key["is_healthy"]
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(c, say("key is out"), None, {"provider": "groq"})
    assert exc.value.pgcode == "LC020"


# ------------------------------------------------------------------ a spent daily quota (Gemini)


def gemini_daily_quota_body():
    """Gemini's 429 for a spent per-day quota (PROVIDERS §4), RetryInfo included."""
    return {"error": {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED",
                      "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                   "violations": [{"quotaMetric": "generativelanguage.googleapis.com/"
                                                                  "generate_content_free_tier_requests",
                                                   "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
                                  {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}


def cooling_until(conn, key_id):
    """The end of the key's cool-down (shared memory), or None."""
    return scalar(conn, "SELECT to_timestamp((celaest._api_key_cooldowns()->>%s)::float8 / 1000)", (key_id,))


NEXT_PACIFIC_MIDNIGHT = ("SELECT (date_trunc('day', now() AT TIME ZONE 'America/Los_Angeles') + interval '1 day')"
                         " AT TIME ZONE 'America/Los_Angeles'")


def test_a_spent_daily_quota_moves_to_the_next_key_and_cools_the_key_until_midnight_pacific(db, mock, conn):
    from conftest import add_key, new_secret
    spent_id, spent_secret = db.only_key(conn, "gemini", "daily-spent", options={"priority": 10})
    spare_id = add_key(conn, "gemini", "daily-spare", new_secret("gemini-daily-spare"), {"priority": 0})
    mock.fault(provider="gemini", status=429, count=1, endpoint="chat", key_prefix=spent_secret,
               body=gemini_daily_quota_body())
    started = time.monotonic()
    result = db.ai_chat(conn, say("daily quota"), MODELS["gemini"][0], {"provider": "gemini"})
    assert result["status"] == "completed", result
    assert time.monotonic() - started < 1.5, "the spare key at once, no back-off"
    task = db.task(conn, result["task_id"])
    assert [(a["api_key_id"], a["http_status"], a["outcome"]) for a in attempts_of(task)] == \
        [(spent_id, 429, "daily_quota_exhausted"), (spare_id, 200, "ok")]
    # A quota, not a bad key.
    spent = db.key(conn, spent_id)
    assert spent["is_healthy"] and spent["consecutive_failures"] == 0
    # Cooling down until the quota resets (midnight Pacific time), not for RetryInfo's 37 s:
    # the other calls go to the spare key.
    assert cooling_until(conn, spent_id) == scalar(conn, NEXT_PACIFIC_MIDNIGHT)
    for _ in range(2):
        again = db.ai_chat(conn, say("after the quota"), MODELS["gemini"][0], {"provider": "gemini"})
        assert db.task(conn, again["task_id"])["api_key_id"] == spare_id
    assert len([r for r in mock.chat_requests("gemini") if spent_secret in json.dumps(r["headers"])]) == 1


def test_a_spent_daily_quota_on_the_only_key_fails_the_call_without_retries(db, mock, conn):
    key_id, secret = db.only_key(conn, "gemini", "daily-only")
    mock.fault(provider="gemini", status=429, count=5, endpoint="chat", key_prefix=secret,
               body=gemini_daily_quota_body())
    result = db.ai_chat(conn, say("daily quota, one key"), MODELS["gemini"][0], {"provider": "gemini"})
    assert result["status"] == "failed", result
    assert result["error_code"] == "daily_quota_exhausted"
    assert result["retry_count"] == 0
    assert [r["status_returned"] for r in mock.chat_requests("gemini")] == [429]
    key = db.key(conn, key_id)
    assert key["is_healthy"] and key["consecutive_failures"] == 0
    # Until the quota resets, no call sends the key: nothing usable (LC020), nothing charged.
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(conn, say("still spent"), MODELS["gemini"][0], {"provider": "gemini"})
    assert exc.value.pgcode == "LC020"
    assert len(mock.chat_requests("gemini")) == 1


# ------------------------------------------------------------------ usage of retried attempts


def test_insufficient_system_resource_is_retried_and_every_attempts_usage_is_billed(db, mock, conn):
    key_id, secret = db.only_key(conn, "deepseek", "no-capacity")
    before = db.key(conn, key_id)
    mock.fault(provider="deepseek", kind="insufficient_system_resource", count=1)
    result = db.ai_chat(conn, say("cut short, then whole"), MODELS["deepseek"][0], {"provider": "deepseek"})
    assert result["status"] == "completed", result
    assert result["retry_count"] == 1
    replies = mock.chat_requests("deepseek")
    assert [r["status_returned"] for r in replies] == [200, 200]
    books = mock._call("GET", "/_mock/books")["keys"][secret]
    assert books["requests"] == 2 and books["replies_with_usage"] == 2
    task = db.task(conn, result["task_id"])
    assert [a["outcome"] for a in attempts_of(task)] == ["overloaded", "ok"]
    # The task's tokens are both attempts' (what the provider bills), and so is its cost.
    assert (task["tokens_input"], task["tokens_output"]) == (books["tokens_input"], books["tokens_output"])
    assert sum(a["tokens"] for a in attempts_of(task)) == task["tokens_input"] + task["tokens_output"]
    m = db.models["deepseek"]
    assert task["cost_usd"] == expected_cost(books["tokens_input"], books["tokens_output"], m["price_in"], m["price_out"])
    # ai_chat's answer says what the row says.
    assert (result["tokens_input"], result["tokens_output"]) == (task["tokens_input"], task["tokens_output"])
    assert Decimal(str(result["cost_usd"])) == task["cost_usd"]
    # The key's books agree.
    key = db.key(conn, key_id)
    assert key["usage_count"] == before["usage_count"] + 2
    assert key["tokens_used"] == before["tokens_used"] + task["tokens_input"] + task["tokens_output"]


def test_fallback_after_a_billed_failure_prices_each_attempt_at_its_own_model(db, mock, conn):
    # DeepSeek out of capacity (no retries left), then the next model: each attempt's tokens at
    # its own model's prices, summed, rounded once.
    c = db.connect(max_retries=0)
    ds_id, ds_secret = db.only_key(c, "deepseek", "no-capacity-fallback")
    mock.fault(provider="deepseek", kind="insufficient_system_resource", count=1)
    result = db.ai_chat(c, say("fall back after a billed failure"), MODELS["deepseek"][0],
                        {"fallback_models": [MODELS["gemini"][0]]})
    assert result["status"] == "completed", result
    task = db.task(c, result["task_id"])
    attempts = attempts_of(task)
    assert [(a["model"], a["outcome"]) for a in attempts] == \
        [(MODELS["deepseek"][0], "overloaded"), (MODELS["gemini"][0], "ok")]
    ds = mock._call("GET", "/_mock/books")["keys"][ds_secret]
    gemini_in = task["tokens_input"] - ds["tokens_input"]
    gemini_out = task["tokens_output"] - ds["tokens_output"]
    assert gemini_in + gemini_out == attempts[1]["tokens"] and ds["tokens_input"] + ds["tokens_output"] == attempts[0]["tokens"]
    d, g = db.models["deepseek"], db.models["gemini"]
    exact = (ds["tokens_input"] * Decimal(d["price_in"]) + ds["tokens_output"] * Decimal(d["price_out"])
             + gemini_in * Decimal(g["price_in"]) + gemini_out * Decimal(g["price_out"])) / 1000
    assert task["cost_usd"] == exact.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    assert Decimal(str(result["cost_usd"])) == task["cost_usd"]


# ------------------------------------------------------------------ broken replies


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "local"])
def test_malformed_json_body(db, mock, conn, provider):
    result = db.ai_chat(conn, say("[[mock:malformed]]"), MODELS[provider][0], {"provider": provider})
    assert result["status"] == "failed"
    assert result["error_code"] == "malformed_response"
    assert result["retry_count"] == 0
    assert len(mock.chat_requests(provider)) == 1
    task = db.task(conn, result["task_id"])
    assert task["error_code"] == "malformed_response" and task["output_raw"] is None
    # The key did its job: no failure counted against it.
    assert db.key(conn, db.keys[provider])["consecutive_failures"] == 0


def test_truncated_body(db, mock, conn):
    result = db.ai_chat(conn, say("[[mock:truncated]]"), None, {"provider": "openai"})
    assert result["status"] == "failed"
    assert result["error_code"] == "connection_failed"
    # A transfer cut short is transient: retried (max_retries = 2), then given up.
    assert result["retry_count"] == 2
    assert [r["status_returned"] for r in mock.chat_requests("openai")] == [200, 200, 200]


def test_truncated_then_success(db, mock, conn):
    mock.fault(provider="anthropic", kind="truncated", count=1)
    result = db.ai_chat(conn, say("cut once"), None, {"provider": "anthropic"})
    assert result["status"] == "completed" and result["retry_count"] == 1


def test_hang_hits_http_timeout(db, mock):
    c = db.connect(http_timeout=300, max_retries=0)
    started = time.monotonic()
    result = db.ai_chat(c, say("[[mock:hang=3]]"), None, {"provider": "openai"})
    elapsed = time.monotonic() - started
    assert result["status"] == "failed"
    assert result["error_code"] == "timeout"
    assert result["retry_count"] == 0
    assert 0.25 <= elapsed < 1.5
    task = db.task(c, result["task_id"])
    assert task["error_code"] == "timeout" and 250 <= task["ai_time_ms"] < 1500


def test_timeout_ms_bounds_the_call_and_a_hang_within_it_is_retried(db, mock):
    # celaest.http_timeout bounds each request (200 ms); the timeout_ms option bounds the whole
    # call (3 s): the first request hangs, times out, and the retry answers within the call.
    c = db.connect(http_timeout=200)
    mock.fault(provider="openai", kind="hang", seconds=3, count=1)  # only the first request hangs
    started = time.monotonic()
    result = db.ai_chat(c, say("hang once"), None, {"provider": "openai", "timeout_ms": 3000})
    assert result["status"] == "completed", result
    assert result["retry_count"] == 1
    assert time.monotonic() - started < 1.5
    task = db.task(c, result["task_id"])
    assert [a["outcome"] for a in attempts_of(task)] == ["timeout", "ok"]


def test_a_hang_that_outlasts_timeout_ms_ends_the_call(db, mock, conn):
    # API.md: timeout_ms is the whole call, retries included: a request that hangs past it
    # leaves no time for a retry.
    mock.fault(provider="openai", kind="hang", seconds=3, count=1)
    started = time.monotonic()
    result = db.ai_chat(conn, say("hang past the call"), None, {"provider": "openai", "timeout_ms": 200})
    assert (result["status"], result["error_code"]) == ("failed", "timeout"), result
    assert time.monotonic() - started < 1.0
    assert len(mock.chat_requests("openai")) == 1


def test_refused_connection(db, mock, conn):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on `port` now.
    key_id, _ = db.only_key(conn, "openai", "nowhere",
                            options={"base_url": "http://127.0.0.1:%d/openai/v1" % port})
    used = db.license_used(conn)
    started = time.monotonic()
    result = db.ai_chat(conn, say("anyone there"), None, {"provider": "openai"})
    assert result["status"] == "failed"
    assert result["error_code"] == "connection_failed"
    assert result["retry_count"] == 2
    assert time.monotonic() - started < 2.0
    assert mock.requests() == []
    task = db.task(conn, result["task_id"])
    assert task["api_key_id"] == key_id
    assert "127.0.0.1" in task["error_message"] or "connect" in task["error_message"].lower()
    # Nothing reached a provider: recorded, not charged (API.md "The ledger"); the key's health
    # still counts the failures.
    assert db.license_used(conn) == used
    assert db.key(conn, key_id)["consecutive_failures"] == 3


def test_key_base_url_overrides_setting(db, mock, conn):
    # The setting points somewhere dead; the key's own base_url points at the mock.
    c = db.connect(groq_base_url="http://127.0.0.1:9/nowhere")
    db.only_key(c, "groq", "own-url", options={"base_url": mock.url("groq")})
    result = db.ai_chat(c, say("per-key url"), None, {"provider": "groq"})
    assert result["status"] == "completed"
    assert [r["path"] for r in mock.chat_requests("groq")] == ["/groq/openai/v1/chat/completions"]


@pytest.mark.parametrize("provider,code,finish", [("openai", "content_blocked", "content_filter"),
                                                  ("groq", "content_blocked", "content_filter"),
                                                  ("anthropic", "content_blocked", "refusal"),
                                                  ("gemini", "content_blocked", None),
                                                  ("local", "empty_output", "stop")])
def test_blocked_content(db, mock, conn, provider, code, finish):
    key_before = db.key(conn, db.keys[provider])
    result = db.ai_chat(conn, say("[[mock:blocked]]"), MODELS[provider][0], {"provider": provider})
    assert result["status"] == "failed"
    assert result["error_code"] == code
    assert result["retry_count"] == 0
    assert result["output_text"] is None
    assert len(mock.chat_requests(provider)) == 1
    task = db.task(conn, result["task_id"])
    assert task["error_code"] == code
    if finish:
        assert task["metadata"]["finish_reason"] == finish
    # The prompt was still billed by the provider: input tokens and their cost are recorded.
    assert task["tokens_input"] > 0
    m = db.models[provider]
    assert task["cost_usd"] == expected_cost(task["tokens_input"], task["tokens_output"], m["price_in"], m["price_out"])
    # ... and by the key's counters, which agree with the task.
    key = db.key(conn, db.keys[provider])
    assert key["usage_count"] == key_before["usage_count"] + 1
    assert key["tokens_used"] == key_before["tokens_used"] + task["tokens_input"] + task["tokens_output"]


def test_unknown_model_falls_through_to_next(db, mock, conn):
    db.add_model(conn, "anthropic", "claude-missing-model", 100)
    result = db.ai_chat(conn, say("which claude"), None, {"provider": "anthropic"})
    assert result["status"] == "completed"
    assert result["model"] == MODELS["anthropic"][0]
    assert [r["status_returned"] for r in mock.chat_requests("anthropic")] == [404, 200]
    assert result["retry_count"] == 1


# ------------------------------------------------------------------ refusals before any provider


def test_no_usable_key_is_lc020_and_consumes_nothing(db, mock, conn):
    scalar(conn, "UPDATE celaest.ai_api_pool SET is_active = false WHERE provider = 'gemini'")
    tasks, used = db.task_count(conn), db.license_used(conn)
    logged = scalar(conn, "SELECT count(*) FROM celaest.license_usage_log")
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(conn, say("no key"), None, {"provider": "gemini"})
    assert exc.value.pgcode == "LC020"
    assert db.task_count(conn) == tasks
    assert db.license_used(conn) == used
    assert scalar(conn, "SELECT count(*) FROM celaest.license_usage_log") == logged
    assert mock.requests() == []
    # Unhealthy or expired keys are not usable either.
    scalar(conn, "UPDATE celaest.ai_api_pool SET is_active = true, is_healthy = false WHERE provider = 'gemini'")
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(conn, say("unhealthy"), None, {"provider": "gemini"})
    assert exc.value.pgcode == "LC020"
    scalar(conn, "UPDATE celaest.ai_api_pool SET is_healthy = true, expires_at = now() - interval '1 minute'"
                 " WHERE provider = 'gemini'")
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(conn, say("expired"), None, {"provider": "gemini"})
    assert exc.value.pgcode == "LC020"
    assert db.license_used(conn) == used and mock.requests() == []
    scalar(conn, "UPDATE celaest.ai_api_pool SET expires_at = NULL WHERE provider = 'gemini'")


def test_without_keys_the_next_provider_is_used(db, mock, conn):
    # No key for the default model's provider: routing moves to the next model by priority.
    scalar(conn, "UPDATE celaest.ai_api_pool SET is_active = false WHERE provider = 'openai'")
    result = db.ai_chat(conn, say("route around"))
    assert result["status"] == "completed"
    assert result["provider"] == "groq"  # priority 50, after openai's 60
    assert mock.requests("openai") == []


def test_inactive_model_is_lc020(db, mock, conn):
    scalar(conn, "UPDATE celaest.ai_models SET is_active = false WHERE model_id = 'deepseek-chat'")
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(conn, say("inactive"), "deepseek-chat")
    assert exc.value.pgcode == "LC020"


def test_no_license_is_refused_and_consumes_nothing(db, mock, conn):
    # A user of another organization without any license.
    org = scalar(conn, "INSERT INTO celaest.organizations (name, slug) VALUES ('No License', %s) RETURNING id",
                 ("nolic-" + uuid.uuid4().hex[:6],))
    user = str(uuid.uuid4())
    # An operator: a viewer may run no AI call at all (issue 11), whatever its license.
    scalar(conn, "INSERT INTO celaest.users_profile (id, organization_id, email, role) VALUES (%s, %s, %s, 'operator')",
           (user, org, "nolic-%s@example.test" % user[:6]))
    c = db.connect(user_id=user)
    tasks = db.task_count(c)
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(c, say("unlicensed"))
    assert exc.value.pgcode == "LC001"
    assert db.task_count(c) == tasks and mock.requests() == []


def test_exhausted_quota_is_lc010_and_nothing_reaches_a_provider(db, mock, conn):
    limit = db.license_used(conn)
    scalar(conn, "UPDATE celaest.licenses SET custom_limits = %s WHERE id = %s",
           ('{"max_ai_requests_per_month": %d}' % limit, db.license_id))
    try:
        with pytest.raises(psycopg2.Error) as exc:
            db.ai_chat(conn, say("over quota"))
        assert exc.value.pgcode == "LC010"
        assert db.license_used(conn) == limit and mock.requests() == []
    finally:
        scalar(conn, "UPDATE celaest.licenses SET custom_limits = NULL WHERE id = %s", (db.license_id,))


# ------------------------------------------------------------------ cancellation


def test_statement_timeout_cancels_a_hanging_call(db, mock, conn):
    tasks, used = db.task_count(conn), db.license_used(conn)
    scalar(conn, "SET statement_timeout = 300")
    started = time.monotonic()
    with pytest.raises(psycopg2.errors.QueryCanceled) as exc:
        db.ai_chat(conn, say("[[mock:hang=5]]"), None, {"provider": "openai"})
    elapsed = time.monotonic() - started
    assert exc.value.pgcode == "57014"
    assert elapsed < 1.0, elapsed
    assert len(mock.chat_requests("openai")) == 1
    scalar(conn, "SET statement_timeout = 0")
    # The same connection keeps working, for SQL and for provider calls.
    assert scalar(conn, "SELECT 41 + 1") == 42
    result = db.ai_chat(conn, say("after the cancel"), None, {"provider": "openai"})
    assert result["status"] == "completed"
    # The cancelled call rolled back: no task, no unit.
    assert db.task_count(conn) == tasks + 1
    assert db.license_used(conn) == used + 1


def test_pg_cancel_backend_interrupts_a_call(db, mock, conn):
    pid = scalar(conn, "SELECT pg_backend_pid()")
    other = db.connect()
    outcome = {}

    def call():
        started = time.monotonic()
        try:
            db.ai_chat(conn, say("[[mock:hang=5]]"), None, {"provider": "anthropic"})
        except psycopg2.Error as e:
            outcome["code"] = e.pgcode
        outcome["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 3
    while not mock.chat_requests("anthropic") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert scalar(other, "SELECT pg_cancel_backend(%s)", (pid,))
    thread.join(5)
    assert outcome.get("code") == "57014"
    assert outcome["elapsed"] < 1.5
    assert db.ai_chat(conn, say("still alive"), None, {"provider": "anthropic"})["status"] == "completed"
    other.close()


def test_cancel_during_retry_backoff(db, mock, conn):
    db.only_key(conn, "groq", "backoff")
    scalar(conn, "SET statement_timeout = 400")
    started = time.monotonic()
    with pytest.raises(psycopg2.errors.QueryCanceled):
        # Retry-After: 5 s of back-off, interrupted by the statement timeout.
        db.ai_chat(conn, say("[[mock:429]] [[mock:retry-after=5]]"), None, {"provider": "groq"})
    assert [r["status_returned"] for r in mock.chat_requests("groq")] == [429]
    assert time.monotonic() - started < 1.2
    scalar(conn, "SET statement_timeout = 0")
    assert scalar(conn, "SELECT 1") == 1


def test_oversized_response_is_refused(db, mock):
    c = db.connect()
    scalar(c, "SET celaest.max_response_size = 16")  # kB
    mock.fault(provider="openai", status=500, count=1, body="x" * 40000, content_type="text/plain")
    result = db.ai_chat(c, say("huge reply"), None, {"provider": "openai"})
    assert result["status"] == "failed"
    assert result["error_code"] == "response_too_large"
    assert result["retry_count"] == 0
    assert len(mock.chat_requests("openai")) == 1


def test_proxy_html_error_page(db, mock, conn):
    mock.fault(provider="groq", status=502, count=3,
               body="<html><body><h1>502 Bad Gateway</h1>\n<p>cloudflare</p></body></html>")
    result = db.ai_chat(conn, say("behind a proxy"), None, {"provider": "groq"})
    assert result["status"] == "failed"
    assert result["error_code"] == "overloaded"
    assert result["retry_count"] == 2
    assert "502 Bad Gateway" in result["error_message"]
    assert "\n" not in result["error_message"] and len(result["error_message"]) <= 1000
