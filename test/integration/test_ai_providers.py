"""Every provider through run_prompt and ai_chat against the strict mock: the result jsonb,
the processed_tasks row, the key and license counters, and what the provider received."""

import json
import uuid
from decimal import Decimal

import psycopg2
import pytest

from conftest import (MODELS, PROVIDERS, expected_cost, mock_reply, mock_words, one, rows, scalar)

RESULT_KEYS = {"task_id", "status", "output_text", "output_json", "provider", "model", "tokens_input",
               "tokens_output", "cost_usd", "execution_time_ms", "ai_time_ms", "retry_count", "error_code",
               "error_message"}


def provider_request_id(provider, record):
    """The id the mock sent for request `record` (header or body, per provider)."""
    n = record["id"]
    return {"openai": "req_%d" % n, "groq": "req_%d" % n, "anthropic": "req_%d" % n,
            "deepseek": "chatcmpl-mock%d" % n, "gemini": "mockresp%d" % n, "local": None}[provider]


def check_wire(provider, record, secret, model_id, system, turns, temperature, max_tokens):
    """The request the mock recorded has the provider's own path, auth and body shape.
    `turns` are (role, content) pairs after the system prompt, roles user/assistant."""
    headers, body = record["headers"], record["body"]
    assert record["method"] == "POST"
    assert record["status_returned"] == 200
    assert headers["content-type"].startswith("application/json")
    assert record["query"] == {}, "no key or anything else in the URL"
    if provider in ("openai", "groq", "deepseek"):
        assert record["path"] == {"openai": "/openai/v1/chat/completions",
                                  "groq": "/groq/openai/v1/chat/completions",
                                  "deepseek": "/deepseek/chat/completions"}[provider]
        assert headers["authorization"] == "Bearer " + secret
        assert body["model"] == model_id
        expected = ([{"role": "system", "content": system}] if system else []) + \
                   [{"role": r, "content": c} for r, c in turns]
        assert body["messages"] == expected
        assert body["temperature"] == pytest.approx(temperature)
        assert body["max_tokens"] == max_tokens
        assert "stream" not in body or body["stream"] is False
    elif provider == "anthropic":
        assert record["path"] == "/anthropic/v1/messages"
        assert headers["x-api-key"] == secret
        assert headers["anthropic-version"] == "2023-06-01"
        assert "authorization" not in headers
        assert body["model"] == model_id
        system_value = body.get("system")
        if isinstance(system_value, list):
            system_value = "".join(block["text"] for block in system_value)
        assert system_value == system
        assert body["messages"] == [{"role": r, "content": c} for r, c in turns] or \
            [(m["role"], m["content"] if isinstance(m["content"], str) else "".join(b["text"] for b in m["content"]))
             for m in body["messages"]] == list(turns)
        assert all(m["role"] != "system" for m in body["messages"])
        assert body["max_tokens"] == max_tokens
        assert body["temperature"] == pytest.approx(temperature)
    elif provider == "gemini":
        assert record["path"] == "/gemini/v1beta/models/%s:generateContent" % model_id
        assert headers["x-goog-api-key"] == secret
        assert "authorization" not in headers
        assert body["systemInstruction"]["parts"] == [{"text": system}]
        assert body["contents"] == [{"role": "model" if r == "assistant" else "user", "parts": [{"text": c}]}
                                    for r, c in turns]
        assert body["generationConfig"]["temperature"] == pytest.approx(temperature)
        assert body["generationConfig"]["maxOutputTokens"] == max_tokens
    elif provider == "local":
        assert record["path"] == "/ollama/api/chat"
        assert body["stream"] is False
        assert body["model"] == model_id
        assert body["messages"] == [{"role": "system", "content": system}] + \
            [{"role": r, "content": c} for r, c in turns]
        assert body["options"]["temperature"] == pytest.approx(temperature)
        assert body["options"]["num_predict"] == max_tokens
    else:
        raise AssertionError(provider)


def check_success(db, conn, mock, provider, result, *, input_text, input_type, all_texts, last_user,
                  before, prompt_id=None, request_id=None):
    """Result jsonb, processed_tasks row and counters of one successful call."""
    model = db.models[provider]
    assert RESULT_KEYS <= set(result), RESULT_KEYS - set(result)
    expected_in = mock_words(*all_texts)
    expected_text = mock_reply(provider, last_user)
    expected_out = len(expected_text.split())
    cost = expected_cost(expected_in, expected_out, model["price_in"], model["price_out"])
    assert result["status"] == "completed", result
    assert result["output_text"] == expected_text
    assert result["output_json"] is None
    assert result["provider"] == provider
    assert result["model"] == model["model_id"]
    assert result["tokens_input"] == expected_in
    assert result["tokens_output"] == expected_out
    assert result["cost_usd"] == cost
    assert result["retry_count"] == 0
    assert result["error_code"] is None and result["error_message"] is None
    assert 0 <= result["ai_time_ms"] <= result["execution_time_ms"] < 10000

    task = db.task(conn, result["task_id"])
    assert task["organization_id"] == db.org_id
    assert task["user_id"] == db.user_id
    assert task["license_id"] == db.license_id
    assert task["model_id"] == model["id"]
    assert task["api_key_id"] == db.keys[provider]
    assert task["prompt_id"] == prompt_id
    assert task["batch_id"] is None
    assert task["input_type"] == input_type
    assert task["input_text"] == input_text
    assert task["output_raw"] == expected_text
    assert task["output_json"] is None
    assert task["status"] == "completed"
    assert task["error_code"] is None and task["error_message"] is None
    assert task["retry_count"] == 0
    assert task["tokens_input"] == expected_in
    assert task["tokens_output"] == expected_out
    assert task["tokens_total"] == expected_in + expected_out
    assert task["cost_usd"] == cost
    assert task["cost_usd"].as_tuple().exponent == -6
    assert task["execution_time_ms"] == result["execution_time_ms"]
    assert task["ai_time_ms"] == result["ai_time_ms"]
    assert task["queue_time_ms"] == 0
    assert task["request_id"] == request_id
    assert task["user_agent"] == "celaest-it/1.0"
    assert str(task["ip_address"]) == "192.0.2.7"
    assert task["started_at"] is not None and task["completed_at"] is not None
    assert before["now"] <= task["started_at"] <= task["completed_at"]
    assert task["input_metadata"]["options"] is not None

    records = mock.chat_requests(provider)
    assert len(records) == 1, records
    meta = task["metadata"]
    assert meta["finish_reason"] == {"anthropic": "end_turn", "gemini": "STOP"}.get(provider, "stop")
    assert meta.get("provider_request_id") == provider_request_id(provider, records[0])
    assert meta["provider"] == provider

    key = db.key(conn, db.keys[provider])
    assert key["usage_count"] == before["key"]["usage_count"] + 1
    assert key["tokens_used"] == before["key"]["tokens_used"] + expected_in + expected_out
    assert key["last_used_at"] is not None and key["last_used_at"] >= before["now"]
    assert key["consecutive_failures"] == 0 and key["is_healthy"]
    assert db.license_used(conn) == before["license"] + 1
    # API.md: the per-call paths write no license_usage_log row (the period's close sums them).
    usage = scalar(conn, "SELECT count(*) FROM celaest.license_usage_log"
                         " WHERE license_id = %s AND metric = 'ai_requests' AND created_at >= %s",
                   (db.license_id, before["now"]))
    assert usage == 0
    return records[0]


def snapshot(db, conn, provider):
    return {"now": scalar(conn, "SELECT clock_timestamp()"), "key": db.key(conn, db.keys[provider]),
            "license": db.license_used(conn)}


@pytest.fixture
def tagged(db):
    """A connection that also records a user agent and client address."""
    c = db.connect(user_agent="celaest-it/1.0", client_ip="192.0.2.7")
    yield c
    c.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_ai_chat_each_provider(db, mock, tagged, provider):
    system = "You are a terse assistant for integration tests."
    last = "Summarize the CELAEST %s check %s please" % (provider, uuid.uuid4().hex[:6])
    turns = [("user", "What is two plus two?"), ("assistant", "Four, of course."), ("user", last)]
    messages = [{"role": "system", "content": system}] + [{"role": r, "content": c} for r, c in turns]
    before = snapshot(db, tagged, provider)
    request_id = "req-it-%s" % uuid.uuid4().hex[:8]
    result = db.ai_chat(tagged, messages, MODELS[provider][0],
                        {"temperature": 0.5, "max_tokens": 100, "request_id": request_id})
    record = check_success(db, tagged, mock, provider, result, input_text=last, input_type="chat",
                           all_texts=[system] + [c for _, c in turns], last_user=last, before=before,
                           request_id=request_id)
    check_wire(provider, record, db.secrets[provider], MODELS[provider][0], system, turns, 0.5, 100)
    task = db.task(tagged, result["task_id"])
    assert task["input_metadata"]["messages"] == messages


@pytest.fixture(scope="module")
def prompts(db):
    """One prompt per provider, preferring that provider's model."""
    conn = db.connect()
    ids = {}
    for provider in PROVIDERS:
        ids[provider] = scalar(
            conn, "INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, user_prompt_template,"
                  " variables, preferred_model_id, temperature, max_tokens, is_default)"
                  " VALUES (%s, %s, 'test', 'You write for {{company}}.',"
                  " 'Write a {{tone}} note about {{topic}} for {{company}}.', '[\"company\", \"tone\", \"topic\"]',"
                  " %s, 0.30, 200, true) RETURNING id",
            ("it-note-" + provider, "note " + provider, db.models[provider]["id"]))
    conn.close()
    return ids


@pytest.mark.parametrize("provider", PROVIDERS)
def test_run_prompt_each_provider(db, mock, tagged, prompts, provider):
    variables = {"company": "Acme & Sons", "tone": "short", "topic": "invoices %s" % provider,
                 "unused": "extra variables are ignored"}
    system = "You write for Acme & Sons."
    user = "Write a short note about invoices %s for Acme & Sons." % provider
    before = snapshot(db, tagged, provider)
    stats_before = one(tagged, "SELECT usage_count, avg_response_time_ms, success_rate FROM celaest.prompts_master"
                               " WHERE id = %s", (prompts[provider],))
    # No model option: the prompt's preferred model routes the call to this provider.
    result = db.run_prompt(tagged, "it-note-" + provider, variables)
    record = check_success(db, tagged, mock, provider, result, input_text=user, input_type="prompt",
                           all_texts=[system, user], last_user=user, before=before, prompt_id=prompts[provider])
    check_wire(provider, record, db.secrets[provider], MODELS[provider][0], system, [("user", user)], 0.3, 200)
    task = db.task(tagged, result["task_id"])
    assert task["input_metadata"]["variables"] == variables
    assert task["input_metadata"]["prompt"] == "it-note-%s@1" % provider
    stats = one(tagged, "SELECT usage_count, avg_response_time_ms, success_rate FROM celaest.prompts_master"
                        " WHERE id = %s", (prompts[provider],))
    assert stats["usage_count"] == stats_before["usage_count"] + 1
    assert stats["success_rate"] == Decimal("100.00")
    assert stats["avg_response_time_ms"] is not None and stats["avg_response_time_ms"] >= 0


def test_model_option_overrides_preferred_model(db, mock, conn, prompts):
    result = db.run_prompt(conn, "it-note-openai", {"company": "A", "tone": "b", "topic": "c"},
                           {"model": MODELS["gemini"][0]})
    assert result["status"] == "completed"
    assert result["provider"] == "gemini"
    assert [r["provider"] for r in mock.chat_requests()] == ["gemini"]


def test_default_model_without_option_or_preference(db, mock, conn):
    result = db.ai_chat(conn, [{"role": "user", "content": "which model is the default"}])
    assert (result["status"], result["provider"], result["model"]) == ("completed", "openai", "gpt-4o-mini")
    body = mock.chat_requests("openai")[0]["body"]
    # Nothing asked: no sampling fields invented.
    assert "temperature" not in body and "top_p" not in body and "max_tokens" not in body


def test_options_pass_through(db, mock, conn):
    result = db.ai_chat(conn, [{"role": "user", "content": "sampling options please"}], "gpt-4o-mini",
                        {"temperature": 1.5, "top_p": 0.25, "max_tokens": 3})
    body = mock.chat_requests("openai")[0]["body"]
    assert body["temperature"] == pytest.approx(1.5)
    assert body["top_p"] == pytest.approx(0.25)
    assert body["max_tokens"] == 3
    # The mock cuts the reply at 3 words and says so.
    assert result["status"] == "completed"
    assert result["output_text"] == "mock reply from"
    assert result["tokens_output"] == 3
    task = db.task(conn, result["task_id"])
    assert task["metadata"]["finish_reason"] == "length"


def test_invalid_options_refused_before_anything(db, mock, conn):
    used = db.license_used(conn)
    for options in ({"temperature": 3}, {"max_tokens": 0}, {"json": "maybe"}, {"provider": "nope"}):
        with pytest.raises(psycopg2.Error) as exc:
            db.ai_chat(conn, [{"role": "user", "content": "x"}], None, options)
        assert exc.value.pgcode == "22023", options
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(conn, [{"role": "user", "content": "x"}], "no-such-model")
    assert exc.value.pgcode == "22023"
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(conn, [{"role": "robot", "content": "x"}])
    assert exc.value.pgcode == "22023"
    assert db.license_used(conn) == used
    assert mock.requests() == []


def test_request_id_from_setting(db, mock):
    c = db.connect(request_id="corr-from-guc")
    result = db.ai_chat(c, [{"role": "user", "content": "correlate me"}])
    assert db.task(c, result["task_id"])["request_id"] == "corr-from-guc"
    # The option wins over the setting.
    result = db.ai_chat(c, [{"role": "user", "content": "correlate me"}], None, {"request_id": "corr-opt"})
    assert db.task(c, result["task_id"])["request_id"] == "corr-opt"


def test_model_without_price_costs_zero(db, mock, conn):
    mid = db.add_model(conn, "groq", "it-free-model", -100, None, None)
    result = db.ai_chat(conn, [{"role": "user", "content": "free of charge"}], "it-free-model")
    assert result["status"] == "completed" and result["model"] == "it-free-model"
    assert result["tokens_input"] > 0 and result["cost_usd"] == 0
    assert db.task(conn, result["task_id"])["cost_usd"] == 0
    assert db.task(conn, result["task_id"])["model_id"] == mid


# ------------------------------------------------------------------ prompt versions and rendering


@pytest.fixture(scope="module")
def versions(db):
    conn = db.connect()
    common = ("INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, user_prompt_template,"
              " variables, version, is_default) VALUES ('it-versioned', 'versioned', 'test', %s, %s, %s, %s, %s)"
              " RETURNING id")
    v1 = scalar(conn, common, ("System v1.", "Version one says {{word}}.", '["word"]', 1, True))
    v2 = scalar(conn, common, ("System v2.", "Version two says {{word}} and {{other}}.", '["word", "other"]', 2,
                               False))
    conn.close()
    return {1: v1, 2: v2}


def test_slug_uses_the_default_version(db, mock, conn, versions):
    result = db.run_prompt(conn, "it-versioned", {"word": "hello", "other": "x"})
    task = db.task(conn, result["task_id"])
    assert task["prompt_id"] == versions[1]
    assert task["input_text"] == "Version one says hello."
    body = mock.chat_requests("openai")[0]["body"]
    assert body["messages"] == [{"role": "system", "content": "System v1."},
                                {"role": "user", "content": "Version one says hello."}]


def test_slug_at_version(db, mock, conn, versions):
    result = db.run_prompt(conn, "it-versioned@2", {"word": "hello", "other": "world"})
    task = db.task(conn, result["task_id"])
    assert task["prompt_id"] == versions[2]
    assert task["input_text"] == "Version two says hello and world."
    assert mock.chat_requests("openai")[0]["body"]["messages"][0] == {"role": "system", "content": "System v2."}


def test_unknown_prompt_or_version(db, mock, conn, versions):
    for reference in ("it-versioned@9", "no-such-prompt", "it-versioned@x"):
        with pytest.raises(psycopg2.Error) as exc:
            db.run_prompt(conn, reference, {"word": "a", "other": "b"})
        assert exc.value.pgcode == "22023", reference
    assert mock.requests() == []


def test_variables_inserted_verbatim(db, mock, conn, versions):
    tricky = "{{other}} \"quoted\" \\ back$lash $1 <tag> ñandú 😀\nsecond line"
    result = db.run_prompt(conn, "it-versioned@2", {"word": tricky, "other": "OTHER"})
    expected = "Version two says %s and OTHER." % tricky
    assert db.task(conn, result["task_id"])["input_text"] == expected
    assert mock.chat_requests("openai")[0]["body"]["messages"][1]["content"] == expected


def test_missing_variable_is_lc030_and_nothing_is_recorded(db, mock, conn, versions):
    tasks, used = db.task_count(conn), db.license_used(conn)
    key_before = db.key(conn, db.keys["openai"])
    with pytest.raises(psycopg2.Error) as exc:
        db.run_prompt(conn, "it-versioned@2", {"word": "only one"})
    assert exc.value.pgcode == "LC030"
    assert "other" in exc.value.pgerror
    assert db.task_count(conn) == tasks
    assert db.license_used(conn) == used
    assert db.key(conn, db.keys["openai"])["usage_count"] == key_before["usage_count"]
    assert mock.requests() == []
    # The same connection works afterwards.
    assert db.run_prompt(conn, "it-versioned@2", {"word": "a", "other": "b"})["status"] == "completed"


# ------------------------------------------------------------------ JSON mode


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "local", "deepseek"])
def test_json_mode_valid(db, mock, conn, provider):
    ask = "Return json for the %s check" % provider
    result = db.ai_chat(conn, [{"role": "system", "content": "Answer in JSON only."},
                               {"role": "user", "content": ask}], MODELS[provider][0], {"json": True})
    assert result["status"] == "completed", result
    expected = {"ok": True, "provider": provider, "echo": ask[:40]}
    assert result["output_json"] == expected
    task = db.task(conn, result["task_id"])
    assert task["output_json"] == expected
    assert json.loads(task["output_raw"]) == expected
    body = mock.chat_requests(provider)[0]["body"]
    if provider in ("openai", "deepseek"):
        assert body["response_format"] == {"type": "json_object"}
    elif provider == "gemini":
        assert body["generationConfig"]["responseMimeType"] == "application/json"
    elif provider == "local":
        assert body["format"] == "json"


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "local"])
def test_json_mode_invalid_output(db, mock, conn, provider):
    result = db.ai_chat(conn, [{"role": "system", "content": "Answer in JSON only."},
                               {"role": "user", "content": "json please [[mock:badjson]]"}],
                        MODELS[provider][0], {"json": True})
    assert result["status"] == "failed"
    assert result["error_code"] == "invalid_json_output"
    assert result["output_json"] is None
    assert result["retry_count"] == 0
    task = db.task(conn, result["task_id"])
    assert task["output_json"] is None
    assert task["error_code"] == "invalid_json_output"
    # The text is kept, and the tokens are still accounted.
    assert "Here is the JSON" in task["output_raw"]
    assert task["tokens_output"] > 0 and task["cost_usd"] > 0


def test_json_mode_groq_server_side_validation(db, mock, conn):
    # Groq validates JSON mode itself: a miss is its 400 json_validate_failed, recorded as the
    # same invalid_json_output as a local parse failure, and not retried.
    result = db.ai_chat(conn, [{"role": "user", "content": "json please [[mock:badjson]]"}],
                        MODELS["groq"][0], {"json": True})
    assert result["status"] == "failed"
    assert result["error_code"] == "invalid_json_output"
    assert result["retry_count"] == 0 and result["output_json"] is None
    task = db.task(conn, result["task_id"])
    assert task["metadata"]["http_status"] == 400
    assert len(mock.chat_requests("groq")) == 1


DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "deepseek": "https://api.deepseek.com",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
    "local": "http://localhost:11434",
}


def test_base_url_settings_default_to_the_public_endpoints(db, conn):
    settings = {r["name"]: r for r in rows(conn, "SELECT name, boot_val, reset_val, context FROM pg_settings"
                                                 " WHERE name LIKE 'celaest.%%_base_url'")}
    for provider, url in DEFAULT_BASE_URLS.items():
        row = settings["celaest.%s_base_url" % provider]
        assert (row["boot_val"], row["reset_val"], row["context"]) == (url, url, "superuser"), row
    # This connection points at the mock; RESET goes back to the public endpoint.
    scalar(conn, "RESET celaest.groq_base_url")
    assert scalar(conn, "SHOW celaest.groq_base_url") == DEFAULT_BASE_URLS["groq"]


def test_declared_variable_missing_is_lc030(db, mock, conn):
    scalar(conn, "INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, user_prompt_template,"
                 " variables, is_default) VALUES ('it-declared', 'declared', 'test', 'Plain system.',"
                 " 'Uses {{a}} only.', '[\"a\", \"b\"]', true)")
    with pytest.raises(psycopg2.Error) as exc:
        db.run_prompt(conn, "it-declared", {"a": "x"})
    assert exc.value.pgcode == "LC030" and "b" in exc.value.diag.message_primary
    assert mock.requests() == []
    assert db.run_prompt(conn, "it-declared", {"a": "x", "b": "y"})["status"] == "completed"


def test_prompt_statistics_count_failures(db, mock, conn):
    pid = scalar(conn, "INSERT INTO celaest.prompts_master (slug, name, category, system_prompt,"
                       " user_prompt_template, is_default) VALUES ('it-stats', 'stats', 'test', 'S.', '{{q}}', true)"
                       " RETURNING id")
    assert db.run_prompt(conn, "it-stats", {"q": "fine [[mock:sleep=100]]"})["status"] == "completed"
    failed = db.run_prompt(conn, "it-stats", {"q": "broken [[mock:400]]"})
    assert failed["status"] == "failed" and failed["error_code"] == "bad_request"
    assert db.task(conn, failed["task_id"])["prompt_id"] == pid
    stats = one(conn, "SELECT usage_count, avg_response_time_ms, success_rate FROM celaest.prompts_master"
                      " WHERE id = %s", (pid,))
    assert stats["usage_count"] == 2
    assert stats["success_rate"] == Decimal("50.00")
    times = [r["execution_time_ms"] for r in rows(conn, "SELECT execution_time_ms FROM celaest.processed_tasks"
                                                        " WHERE prompt_id = %s", (pid,))]
    assert abs(stats["avg_response_time_ms"] - sum(times) / 2) <= 1
    assert max(times) >= 100


def test_local_without_any_pool_key_is_called_keyless(db, mock, conn):
    # A local Ollama needs no key: with no local key in the pool at all, it is called without one.
    scalar(conn, "DELETE FROM celaest.ai_api_pool WHERE provider = 'local'")
    try:
        result = db.ai_chat(conn, [{"role": "user", "content": "keyless ollama"}], MODELS["local"][0])
        assert result["status"] == "completed" and result["provider"] == "local"
        assert db.task(conn, result["task_id"])["api_key_id"] is None
        record = mock.chat_requests("local")[0]
        assert "authorization" not in record["headers"]
        assert record["body"]["stream"] is False
        # Other providers are never called keyless.
        scalar(conn, "UPDATE celaest.ai_api_pool SET is_active = false WHERE provider = 'groq'")
        with pytest.raises(psycopg2.Error) as exc:
            db.ai_chat(conn, [{"role": "user", "content": "keyless groq"}], None, {"provider": "groq"})
        assert exc.value.pgcode == "LC020"
    finally:
        from conftest import add_key, new_secret
        secret = new_secret("local")
        key_id = add_key(conn, "local", "local-primary", secret)
        db.seeded_keys[db.seeded_keys.index(db.keys["local"])] = key_id
        db.keys["local"], db.secrets["local"] = key_id, secret


def test_explicit_user_argument(db, mock):
    # A service caller (here a superuser: a trusted backend) acting for nobody may name the user.
    service = db.connect(user=False)
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(service, [{"role": "user", "content": "who am i"}])
    assert exc.value.pgcode == "42501"
    result = scalar(service, "SELECT celaest.ai_chat('[{\"role\": \"user\", \"content\": \"as a user\"}]',"
                             " NULL, %s)", (db.user_id,))
    assert result["status"] == "completed"
    assert db.task(service, result["task_id"])["user_id"] == db.user_id
    with pytest.raises(psycopg2.Error) as exc:
        scalar(service, "SELECT celaest.ai_chat('[{\"role\": \"user\", \"content\": \"x\"}]', NULL, %s)",
               (str(uuid.uuid4()),))
    assert exc.value.pgcode == "42501"


def test_an_anonymous_session_may_not_act_as_a_given_user(db, mock):
    """Issue 11: an end-user role (or one with no level) with no identity of its own may not name
    the user it acts for, by argument or by celaest.user_id; nothing is written or charged."""
    admin = db.connect(user=False)
    role = "it_anon_" + uuid.uuid4().hex[:6]
    scalar(admin, "CREATE ROLE %s NOLOGIN" % role)
    tasks, used = db.task_count(admin), db.license_used(admin)
    try:
        for level in (None, "authenticated", "readonly"):
            if level:
                scalar(admin, "SELECT celaest.grant_access(%s, %s)", (role, level))
            anonymous = db.connect(user=False)
            scalar(anonymous, "SET ROLE %s" % role)
            with pytest.raises(psycopg2.Error) as exc:
                scalar(anonymous, "SELECT celaest.ai_chat('[{\"role\": \"user\", \"content\": \"x\"}]',"
                                  " NULL, %s)", (db.user_id,))
            assert exc.value.pgcode == "42501", level
            assert "ai_chat" in exc.value.pgerror and db.user_id not in exc.value.pgerror
            if level == "authenticated":
                scalar(anonymous, "SELECT set_config('celaest.user_id', %s, false)", (db.user_id,))
                with pytest.raises(psycopg2.Error) as exc:
                    db.ai_chat(anonymous, [{"role": "user", "content": "x"}])
                assert exc.value.pgcode == "42501"
                assert db.user_id not in exc.value.pgerror
        assert db.task_count(admin) == tasks and db.license_used(admin) == used
    finally:
        scalar(admin, "SELECT celaest.revoke_access(%s)", (role,))
        scalar(admin, "DROP ROLE %s" % role)
