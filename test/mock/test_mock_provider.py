#!/usr/bin/env python3
"""Self-test of the CELAEST mock provider (stdlib only).

    python3 -m unittest test/mock/test_mock_provider.py -v
    python3 test/mock/test_mock_provider.py

Starts mock_provider.py on port 0 in a subprocess and talks HTTP to it.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "sk-good-test-0001"
BAD = "sk-bad-test-0001"
OPENAI_FAMILY = ("openai", "groq", "deepseek")
ALL = OPENAI_FAMILY + ("anthropic", "gemini", "local")
BASE = {"openai": "/openai/v1", "groq": "/groq/openai/v1", "deepseek": "/deepseek",
        "anthropic": "/anthropic", "gemini": "/gemini/v1beta", "local": "/ollama"}
HEALTH = {"openai": "/models", "groq": "/models", "deepseek": "/models",
          "anthropic": "/v1/models", "gemini": "/models", "local": "/api/tags"}
MODEL = {"openai": "gpt-4o-mini", "groq": "llama-3.1-8b-instant", "deepseek": "deepseek-chat",
         "anthropic": "claude-sonnet-4-5-20250929", "gemini": "gemini-2.5-flash",
         "local": "llama3.2"}

SERVER = {}


def setUpModule():
    tmp = tempfile.mkdtemp(prefix="mockprov")
    port_file = os.path.join(tmp, "port")
    SERVER["log"] = os.path.join(tmp, "mock.log")
    SERVER["proc"] = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "mock_provider.py"), "--port", "0",
         "--host", "127.0.0.1", "--port-file", port_file, "--log", SERVER["log"]])
    deadline = time.time() + 15
    while not os.path.exists(port_file):
        if time.time() > deadline or SERVER["proc"].poll() is not None:
            raise RuntimeError("mock provider did not start")
        time.sleep(0.05)
    with open(port_file) as f:
        SERVER["port"] = int(f.read())


def tearDownModule():
    proc = SERVER.get("proc")
    if proc:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- helpers


class Resp:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers            # lower-case names
        self.raw = raw
        try:
            self.json = json.loads(raw)
        except ValueError:
            self.json = None


def request(method, path, body=None, headers=None, raw=None, timeout=10, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", SERVER["port"], timeout=timeout)
    h = dict(headers or {})
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        if conn is None:
            c.close()


def auth(p, key=KEY):
    if p in OPENAI_FAMILY:
        return {"Authorization": "Bearer " + key}
    if p == "anthropic":
        return {"x-api-key": key, "anthropic-version": "2023-06-01"}
    if p == "gemini":
        return {"x-goog-api-key": key}
    return {}


def chat_req(p, text, model=None, json_mode=False, max_out=None, system="be brief"):
    """(path, body) of a minimal valid chat request for provider p."""
    model = model or MODEL[p]
    if json_mode:
        system = "answer in JSON"
    if p in OPENAI_FAMILY:
        body = {"model": model, "messages": [{"role": "system", "content": system},
                                             {"role": "user", "content": text}]}
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        if max_out:
            body["max_tokens"] = max_out
        return BASE[p] + "/chat/completions", body
    if p == "anthropic":
        body = {"model": model, "max_tokens": max_out or 256, "system": system,
                "messages": [{"role": "user", "content": text}]}
        return BASE[p] + "/v1/messages", body
    if p == "gemini":
        body = {"systemInstruction": {"parts": [{"text": system}]},
                "contents": [{"role": "user", "parts": [{"text": text}]}]}
        gc = {}
        if json_mode:
            gc["responseMimeType"] = "application/json"
        if max_out:
            gc["maxOutputTokens"] = max_out
        if gc:
            body["generationConfig"] = gc
        return "%s/models/%s:generateContent" % (BASE[p], model), body
    body = {"model": model, "stream": False,
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": text}]}
    if json_mode:
        body["format"] = "json"
    if max_out:
        body["options"] = {"num_predict": max_out}
    return BASE[p] + "/api/chat", body


def chat(p, text="hello mock world", key=KEY, **kw):
    path, body = chat_req(p, text, **{k: v for k, v in kw.items() if k != "timeout"})
    return request("POST", path, body, auth(p, key), timeout=kw.get("timeout", 10))


def reply_text(p, body):
    if p in OPENAI_FAMILY:
        return body["choices"][0]["message"]["content"]
    if p == "anthropic":
        return "".join(b["text"] for b in body["content"] if b["type"] == "text")
    if p == "gemini":
        return "".join(x.get("text", "") for x in body["candidates"][0]["content"]
                       .get("parts", []))
    return body["message"]["content"]


def finish(p, body):
    return {"anthropic": lambda b: b["stop_reason"],
            "gemini": lambda b: b["candidates"][0]["finishReason"],
            "local": lambda b: b["done_reason"]}.get(
        p, lambda b: b["choices"][0]["finish_reason"])(body)


def usage(p, body):
    if p in OPENAI_FAMILY:
        return body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]
    if p == "anthropic":
        return body["usage"]["input_tokens"], body["usage"]["output_tokens"]
    if p == "gemini":
        u = body["usageMetadata"]
        return u["promptTokenCount"], u.get("candidatesTokenCount", 0)
    return body["prompt_eval_count"], body["eval_count"]


def error_kind(p, body):
    """The provider's machine-readable error kind, checking the error shape on the way."""
    if p in OPENAI_FAMILY:
        err = body["error"]
        expected = {"message", "type", "code"} | ({"param"} if p != "groq" else set())
        assert expected <= set(err), err
        assert p != "groq" or "param" not in err, err
        return err["code"] or err["type"]
    if p == "anthropic":
        assert body["type"] == "error" and body["request_id"].startswith("req_"), body
        assert set(body["error"]) == {"type", "message"}, body
        return body["error"]["type"]
    if p == "gemini":
        err = body["error"]
        assert {"code", "message", "status", "details"} <= set(err), err
        return err["status"]
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    return body["error"]


class MockTest(unittest.TestCase):
    def setUp(self):
        self.assertEqual(request("POST", "/_mock/reset").status, 200)

    def assertError(self, p, r, status, kind=None, contains=None):
        self.assertEqual(r.status, status, r.raw)
        self.assertIsNotNone(r.json, r.raw)
        k = error_kind(p, r.json)
        if kind is not None:
            self.assertEqual(k, kind, r.raw)
        if contains is not None:
            self.assertIn(contains, r.raw.decode())

    def fault(self, **spec):
        r = request("POST", "/_mock/fault", spec)
        self.assertEqual(r.status, 200, r.raw)
        return r.json

    def requests(self, provider=None):
        q = "?provider=" + provider if provider else ""
        return request("GET", "/_mock/requests" + q).json


# --------------------------------------------------------------------------- success


class SuccessShapes(MockTest):
    def test_reply_text_and_usage_all_providers(self):
        for p in ALL:
            with self.subTest(p=p):
                r = chat(p, "hello mock world")
                self.assertEqual(r.status, 200, r.raw)
                self.assertEqual(r.headers["content-length"], str(len(r.raw)))
                self.assertEqual(reply_text(p, r.json), "mock reply from %s to: hello mock world"
                                 % p)
                # input: "be brief" (2) + "hello mock world" (3) + 3; output: 8 words
                self.assertEqual(usage(p, r.json), (8, 8))

    def test_openai_shape_and_headers(self):
        r = chat("openai")
        b = r.json
        self.assertRegex(r.headers["x-request-id"], r"^req_\d+$")
        for h in ("limit", "remaining", "reset"):
            for w in ("requests", "tokens"):
                self.assertIn("x-ratelimit-%s-%s" % (h, w), r.headers)
        self.assertEqual(b["object"], "chat.completion")
        self.assertTrue(b["id"].startswith("chatcmpl-"))
        self.assertEqual(b["model"], "gpt-4o-mini")
        self.assertEqual(b["choices"][0]["finish_reason"], "stop")
        self.assertEqual(b["choices"][0]["message"]["role"], "assistant")
        self.assertEqual(b["usage"]["total_tokens"], 16)
        self.assertIn("cached_tokens", b["usage"]["prompt_tokens_details"])

    def test_groq_and_deepseek_specifics(self):
        g = chat("groq")
        self.assertRegex(g.headers["x-request-id"], r"^req_\d+$")
        self.assertIn("x-ratelimit-remaining-tokens", g.headers)
        self.assertEqual(g.json["x_groq"]["id"], g.headers["x-request-id"])
        d = chat("deepseek")
        self.assertNotIn("x-request-id", d.headers)
        self.assertNotIn("x-ratelimit-limit-requests", d.headers)
        self.assertTrue(d.json["id"].startswith("chatcmpl-"))
        self.assertEqual(d.json["usage"]["prompt_cache_miss_tokens"], 8)
        # DeepSeek's /v1 alias
        r = request("POST", "/deepseek/v1/chat/completions", chat_req("deepseek", "x")[1],
                    auth("deepseek"))
        self.assertEqual(r.status, 200, r.raw)
        r = chat("deepseek", model="deepseek-reasoner")
        self.assertIn("reasoning_content", r.json["choices"][0]["message"])

    def test_anthropic_shape_and_headers(self):
        r = chat("anthropic")
        b = r.json
        self.assertRegex(r.headers["request-id"], r"^req_\d+$")
        self.assertIn("anthropic-ratelimit-requests-remaining", r.headers)
        self.assertEqual((b["type"], b["role"], b["stop_reason"]), ("message", "assistant",
                                                                    "end_turn"))
        self.assertTrue(b["id"].startswith("msg_"))
        self.assertEqual(b["content"][0]["type"], "text")
        for k in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            self.assertEqual(b["usage"][k], 0)

    def test_gemini_shape_and_query_key(self):
        path, body = chat_req("gemini", "hello mock world")
        r = request("POST", path + "?key=" + KEY, body)
        self.assertEqual(r.status, 200, r.raw)
        b = r.json
        self.assertEqual(b["candidates"][0]["content"]["role"], "model")
        self.assertEqual(b["candidates"][0]["finishReason"], "STOP")
        self.assertTrue(b["responseId"])
        self.assertEqual(b["usageMetadata"]["totalTokenCount"], 16)
        self.assertNotIn("retry-after", r.headers)

    def test_ollama_shape_and_load(self):
        b = chat("local").json
        self.assertIs(b["done"], True)
        self.assertEqual(b["done_reason"], "stop")
        self.assertEqual(b["message"]["role"], "assistant")
        r = request("POST", "/ollama/api/chat", {"model": "llama3.2", "stream": False,
                                                 "messages": []})
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual((r.json["done_reason"], r.json["message"]["content"]), ("load", ""))
        self.assertNotIn("eval_count", r.json)

    def test_json_mode_all_providers(self):
        for p in ALL:
            with self.subTest(p=p):
                r = chat(p, "give me json please", json_mode=True)
                self.assertEqual(r.status, 200, r.raw)
                self.assertEqual(json.loads(reply_text(p, r.json)),
                                 {"ok": True, "provider": p, "echo": "give me json please"})

    def test_anthropic_prefill_is_continued(self):
        path, body = chat_req("anthropic", "data please", json_mode=True)
        body["messages"].append({"role": "assistant", "content": "{"})
        r = request("POST", path, body, auth("anthropic"))
        self.assertEqual(r.status, 200, r.raw)
        text = reply_text("anthropic", r.json)
        self.assertFalse(text.startswith("{"))
        self.assertEqual(json.loads("{" + text)["echo"], "data please")

    def test_echo_is_first_40_chars_without_directives(self):
        text = "[[mock:sleep=1]] " + "abcdefghij" * 6
        r = chat("openai", text)
        self.assertEqual(reply_text("openai", r.json),
                         "mock reply from openai to: " + ("abcdefghij" * 4))

    def test_output_cap_gives_length_finish(self):
        expect = {"openai": "length", "groq": "length", "deepseek": "length",
                  "anthropic": "max_tokens", "gemini": "MAX_TOKENS", "local": "length"}
        for p in ALL:
            with self.subTest(p=p):
                r = chat(p, "hello mock world", max_out=3)
                self.assertEqual(r.status, 200, r.raw)
                self.assertEqual(finish(p, r.json), expect[p])
                self.assertEqual(reply_text(p, r.json), "mock reply from")
                self.assertEqual(usage(p, r.json)[1], 3)

    def test_health_checks(self):
        for p in ALL:
            with self.subTest(p=p):
                r = request("GET", BASE[p] + HEALTH[p], headers=auth(p))
                self.assertEqual(r.status, 200, r.raw)
                listing = r.json.get("data") or r.json.get("models")
                self.assertTrue(listing)
                if p != "local":
                    bad = request("GET", BASE[p] + HEALTH[p], headers=auth(p, BAD))
                    self.assertIn(bad.status, (400, 401), bad.raw)
                    error_kind(p, bad.json)
        r = request("GET", "/gemini/v1beta/models/gemini-2.5-pro", headers=auth("gemini"))
        self.assertEqual(r.json["name"], "models/gemini-2.5-pro")

    def test_keep_alive_and_content_length(self):
        conn = http.client.HTTPConnection("127.0.0.1", SERVER["port"], timeout=10)
        path, body = chat_req("openai", "one")
        first = request("POST", path, body, auth("openai"), conn=conn)
        sock = conn.sock
        second = request("GET", "/ollama/api/tags", conn=conn)
        self.assertIs(conn.sock, sock)  # same TCP connection reused
        for r in (first, second):
            self.assertEqual(r.status, 200)
            self.assertEqual(int(r.headers["content-length"]), len(r.raw))
        err = request("POST", path, {"model": "x"}, auth("openai"), conn=conn)
        self.assertEqual(err.status, 400)
        self.assertEqual(int(err.headers["content-length"]), len(err.raw))
        conn.close()

    def test_unknown_paths_are_404_in_provider_shape(self):
        expect = {"openai": None, "groq": None, "deepseek": None, "anthropic": "not_found_error",
                  "gemini": "NOT_FOUND", "local": None}
        for p in ALL:
            with self.subTest(p=p):
                r = request("POST", BASE[p] + "/nope", {"a": 1}, auth(p))
                self.assertError(p, r, 404, expect[p])
        r = request("GET", "/elsewhere/v1/models")
        self.assertEqual(r.status, 404)
        r = request("GET", "/openai/v1/chat/completions", headers=auth("openai"))
        self.assertEqual(r.status, 404)


# --------------------------------------------------------------------------- rejections


class OpenAIFamilyRejections(MockTest):
    def post(self, p, body, key=KEY, headers=None):
        h = auth(p, key)
        h.update(headers or {})
        return request("POST", BASE[p] + "/chat/completions", body, h)

    def valid(self, p="openai", **extra):
        body = chat_req(p, "hello")[1]
        body.update(extra)
        return body

    def test_auth(self):
        for p in OPENAI_FAMILY:
            with self.subTest(p=p):
                r = request("POST", BASE[p] + "/chat/completions", self.valid(p))
                self.assertError(p, r, 401)
                r = self.post(p, self.valid(p), key=BAD)
                self.assertError(p, r, 401)
                self.assertNotIn(BAD, r.raw.decode())  # keys never echoed in full
                self.assertEqual(self.post(p, self.valid(p), key="other-key").status, 401)
        self.assertError("openai", self.post("openai", self.valid(), key=BAD), 401,
                         "invalid_api_key")
        self.assertError("groq", self.post("groq", self.valid("groq"), key=BAD), 401,
                         "invalid_api_key", "Invalid API Key")
        r = self.post("deepseek", self.valid("deepseek"), key=BAD)
        self.assertEqual(r.json["error"]["type"], "authentication_error")

    def test_content_type_and_malformed_json(self):
        for p in OPENAI_FAMILY:
            with self.subTest(p=p):
                r = request("POST", BASE[p] + "/chat/completions",
                            raw=json.dumps(self.valid(p)).encode(),
                            headers=dict(auth(p), **{"Content-Type": "text/plain"}))
                self.assertError(p, r, 400, "invalid_request_error")
                r = request("POST", BASE[p] + "/chat/completions", raw=b'{"model": "x",',
                            headers=dict(auth(p), **{"Content-Type": "application/json"}))
                self.assertError(p, r, 400, "invalid_request_error", "parse the JSON body")
                r = self.post(p, [1, 2])
                self.assertError(p, r, 400)
        ok = request("POST", "/openai/v1/chat/completions", raw=json.dumps(self.valid()).encode(),
                     headers=dict(auth("openai"),
                                  **{"Content-Type": "application/json; charset=utf-8"}))
        self.assertEqual(ok.status, 200, ok.raw)
        r = request("POST", "/openai/v1/chat/completions",
                    raw=b'{"model":"m","temperature":NaN,"messages":[]}',
                    headers=dict(auth("openai"), **{"Content-Type": "application/json"}))
        self.assertEqual(r.status, 400)

    def test_messages_and_model(self):
        cases = [
            ({"messages": [{"role": "user", "content": "x"}]}, "model"),
            ({"model": "m"}, "messages"),
            ({"model": "m", "messages": []}, "empty array"),
            ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "robot"),
            ({"model": "m", "messages": [{"role": "user", "content": {"a": 1}}]}, "content"),
            ({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "x"}}]}]}, "content[0]"),
            ({"model": "m", "messages": [{"role": "user"}]}, "content"),
            ({"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]},
             "stream"),
        ]
        for p in OPENAI_FAMILY:
            for body, word in cases:
                with self.subTest(p=p, body=body):
                    self.assertError(p, self.post(p, body), 400, contains=word)
        extra_prop = {"model": "m", "messages": [{"role": "user", "content": "x", "foo": 1}]}
        for p in ("openai", "groq"):
            self.assertError(p, self.post(p, extra_prop), 400, contains="foo")
        self.assertEqual(self.post("deepseek", extra_prop).status, 200)  # lenient
        parts = {"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi"}, {"type": "text", "text": "there"}]}]}
        r = self.post("openai", parts)
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual(reply_text("openai", r.json), "mock reply from openai to: hi there")

    def test_temperature_and_top_p(self):
        for p in OPENAI_FAMILY:
            with self.subTest(p=p):
                self.assertError(p, self.post(p, self.valid(p, temperature=2.5)), 400,
                                 contains="temperature")
                self.assertError(p, self.post(p, self.valid(p, temperature=-0.1)), 400)
                self.assertError(p, self.post(p, self.valid(p, temperature="hot")), 400)
                self.assertError(p, self.post(p, self.valid(p, top_p=1.5)), 400)
                self.assertEqual(self.post(p, self.valid(p, temperature=2)).status, 200)
                self.assertEqual(self.post(p, self.valid(p, temperature=0)).status, 200)

    def test_json_object_needs_the_word_json(self):
        body = {"model": "gpt-4o-mini", "response_format": {"type": "json_object"},
                "messages": [{"role": "user", "content": "give me an object"}]}
        for p in ("openai", "groq"):
            with self.subTest(p=p):
                self.assertError(p, self.post(p, body), 400, contains="'json'")
        body["messages"][0]["content"] = "give me a JSON object"
        self.assertEqual(self.post("openai", body).status, 200)
        # DeepSeek does not refuse: blank content with finish "stop" instead.
        body["messages"][0]["content"] = "give me an object"
        r = self.post("deepseek", body)
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual((reply_text("deepseek", r.json), finish("deepseek", r.json)),
                         ("", "stop"))
        self.assertError("openai", self.post("openai", self.valid(
            response_format={"type": "xml"})), 400)

    def test_reasoning_models(self):
        for model in ("o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-nano"):
            with self.subTest(model=model):
                self.assertError("openai", self.post("openai", self.valid(
                    model=model, max_tokens=100)), 400, "unsupported_parameter")
                self.assertError("openai", self.post("openai", self.valid(
                    model=model, temperature=0.2)), 400, "unsupported_value")
                r = self.post("openai", self.valid(model=model, temperature=1,
                                                   max_completion_tokens=100))
                self.assertEqual(r.status, 200, r.raw)
        self.assertEqual(self.post("openai", self.valid(model="gpt-4o", max_tokens=100,
                                                        temperature=0.2)).status, 200)

    def test_openai_unknown_argument(self):
        self.assertError("openai", self.post("openai", self.valid(frobnicate=1)), 400,
                         contains="Unrecognized request argument supplied: frobnicate")

    def test_groq_unsupported_fields(self):
        cases = [{"logprobs": True}, {"logit_bias": {"50256": -100}}, {"top_logprobs": 2},
                 {"n": 2}]
        for extra in cases:
            with self.subTest(extra=extra):
                self.assertError("groq", self.post("groq", self.valid("groq", **extra)), 400)
        body = self.valid("groq")
        body["messages"][1]["name"] = "alice"
        self.assertError("groq", self.post("groq", body), 400, contains="name")
        self.assertEqual(self.post("groq", self.valid("groq", n=1)).status, 200)
        self.assertEqual(self.post("openai", body).status, 200)  # OpenAI accepts name

    def test_unknown_model_is_404(self):
        for p in OPENAI_FAMILY:
            with self.subTest(p=p):
                self.assertError(p, self.post(p, self.valid(p, model="gpt-missing")), 404,
                                 "model_not_found")


class AnthropicRejections(MockTest):
    def post(self, body, headers=None):
        return request("POST", "/anthropic/v1/messages", body,
                       headers if headers is not None else auth("anthropic"))

    def body(self, messages=None, **extra):
        b = {"model": "claude-sonnet-4-5", "max_tokens": 100,
             "messages": messages or [{"role": "user", "content": "hi"}]}
        b.update(extra)
        return b

    def test_auth_and_version(self):
        self.assertError("anthropic", self.post(self.body(), {"anthropic-version": "2023-06-01"}),
                         401, "authentication_error")
        self.assertError("anthropic", self.post(self.body(), auth("anthropic", BAD)), 401,
                         "authentication_error")
        self.assertError("anthropic", self.post(self.body(), {"x-api-key": KEY}), 400,
                         "invalid_request_error", "anthropic-version")
        r = self.post(self.body(), {"x-api-key": KEY, "anthropic-version": "2099-01-01"})
        self.assertError("anthropic", r, 400, "invalid_request_error")
        r = self.post(self.body(), {"Authorization": "Bearer " + KEY,
                                    "anthropic-version": "2023-06-01"})
        self.assertError("anthropic", r, 401)

    def test_request_rules(self):
        u = lambda t="hi": {"role": "user", "content": t}  # noqa: E731
        a = lambda t="ok": {"role": "assistant", "content": t}  # noqa: E731
        no_max = self.body()
        del no_max["max_tokens"]
        cases = [
            (no_max, "max_tokens"),
            (self.body(max_tokens=0), "max_tokens"),
            (self.body([{"role": "system", "content": "x"}, u()]), "system"),
            (self.body([{"role": "tool", "content": "x"}]), "role"),
            (self.body([a(), u()]), "first message"),
            (self.body([u(), u()]), "alternate"),
            (self.body([u(), a(), a()]), "alternate"),
            (self.body([u("")]), "non-empty"),
            (self.body([{"role": "user", "content": []}]), "non-empty"),
            (self.body([u("   ")]), "non-empty"),
            (self.body([{"role": "user", "content": [{"type": "text", "text": ""}]}]),
             "non-whitespace"),
            (self.body([u(), a("{ ")]), "trailing whitespace"),
            (self.body(temperature=1.5), "temperature"),
            (self.body(temperature=0.5, top_p=0.9), "top_p"),
            (self.body(response_format={"type": "json_object"}), "Extra inputs"),
            (self.body(stream=True), "stream"),
            (self.body(model="claude-opus-4-6", messages=[u(), a("{")]), "prefill"),
            (self.body(system=[{"type": "text", "text": ""}]), "non-whitespace"),
        ]
        for body, word in cases:
            with self.subTest(body=body):
                self.assertError("anthropic", self.post(body), 400, "invalid_request_error",
                                 word)
        for ok in (self.body([u(), a(), u("again")]), self.body(temperature=1),
                   self.body(top_p=0.5), self.body(system=[{"type": "text", "text": "s"}]),
                   self.body([u(), a("{")]),
                   self.body([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])):
            with self.subTest(ok=ok):
                self.assertEqual(self.post(ok).status, 200)

    def test_unknown_model_is_404(self):
        self.assertError("anthropic", self.post(self.body(model="claude-missing")), 404,
                         "not_found_error")


class GeminiRejections(MockTest):
    PATH = "/gemini/v1beta/models/gemini-2.5-flash:generateContent"

    def post(self, body, headers=None, path=None):
        return request("POST", path or self.PATH, body,
                       headers if headers is not None else auth("gemini"))

    def body(self, **extra):
        b = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        b.update(extra)
        return b

    def test_auth(self):
        self.assertError("gemini", self.post(self.body(), {}), 403, "PERMISSION_DENIED")
        r = self.post(self.body(), auth("gemini", BAD))
        self.assertError("gemini", r, 400, "INVALID_ARGUMENT")
        self.assertIn("API_KEY_INVALID", [d.get("reason") for d in r.json["error"]["details"]])
        r = request("POST", self.PATH + "?key=" + BAD, self.body())
        self.assertError("gemini", r, 400, "INVALID_ARGUMENT", "API_KEY_INVALID")
        self.assertError("gemini", self.post(self.body(), {"Authorization": "Bearer " + KEY}),
                         403, "PERMISSION_DENIED")

    def test_request_rules(self):
        user = {"role": "user", "parts": [{"text": "hi"}]}
        cases = [
            ({"contents": []}, "contents is not specified"),
            ({}, "contents is not specified"),
            ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
             "Please use a valid role: user, model."),
            ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]},
             "Please use a valid role: user, model."),
            ({"contents": [{"role": "user", "parts": []}]}, "parts must not be empty"),
            ({"contents": [{"role": "user"}]}, "parts must not be empty"),
            ({"contents": [{"role": "user", "parts": [{}]}]}, "oneof field 'data'"),
            ({"contents": [user], "generationConfig": {"max_tokens": 5}},
             'Unknown name \\"max_tokens\\"'),
            ({"contents": [user], "generationConfig": {"max_output_tokens": 5}},
             "max_output_tokens"),
            ({"contents": [user], "generationConfig": {"temperature": 3}}, "temperature"),
            ({"contents": [user], "generationConfig": {"topP": 2}}, "topP"),
            ({"contents": [user], "generationConfig": {"responseMimeType": "text/csv"}},
             "mimetypes"),
            ({"contents": [user], "messages": []}, 'Unknown name \\"messages\\"'),
        ]
        for body, word in cases:
            with self.subTest(body=body):
                self.assertError("gemini", self.post(body), 400, "INVALID_ARGUMENT", word)
        ok = self.body(generationConfig={"temperature": 0.2, "topP": 0.9, "topK": 40,
                                         "maxOutputTokens": 100, "stopSequences": ["END"],
                                         "responseMimeType": "application/json",
                                         "candidateCount": 1},
                       system_instruction={"parts": [{"text": "s"}]})
        self.assertEqual(self.post(ok).status, 200)
        multi = {"contents": [user, {"role": "model", "parts": [{"text": "x"}]}, user]}
        self.assertEqual(self.post(multi).status, 200)

    def test_unknown_model_and_stream(self):
        r = self.post(self.body(), path="/gemini/v1beta/models/gemini-missing:generateContent")
        self.assertError("gemini", r, 404, "NOT_FOUND", "models/gemini-missing is not found")
        r = self.post(self.body(), path="/gemini/v1beta/models/x:streamGenerateContent")
        self.assertError("gemini", r, 400)


class OllamaRejections(MockTest):
    def post(self, body):
        return request("POST", "/ollama/api/chat", body)

    def body(self, **extra):
        b = {"model": "llama3.2", "stream": False,
             "messages": [{"role": "user", "content": "hi"}]}
        b.update(extra)
        return b

    def test_request_rules(self):
        no_stream = self.body()
        del no_stream["stream"]
        no_model = self.body()
        del no_model["model"]
        cases = [
            (no_model, "model is required"),
            (no_stream, "mock: stream must be false"),
            (self.body(stream=True), "mock: stream must be false"),
            (self.body(options={"max_tokens": 5}), "max_tokens"),
            (self.body(messages=[{"role": "user", "content": [{"type": "text"}]}]),
             "of type string"),
            (self.body(format="yaml"), "format"),
        ]
        for body, word in cases:
            with self.subTest(body=body):
                self.assertError("local", self.post(body), 400, contains=word)
        self.assertEqual(self.post(self.body(options={"temperature": 0.1, "num_ctx": 4096,
                                                      "seed": 7, "top_p": 0.9})).status, 200)
        r = request("POST", "/ollama/api/chat", raw=b"{oops",
                    headers={"Content-Type": "application/json"})
        self.assertError("local", r, 400)

    def test_unknown_model_is_404(self):
        self.assertError("local", self.post(self.body(model="missing-model")), 404,
                         "model 'missing-model' not found")


# --------------------------------------------------------------------------- faults


class Directives(MockTest):
    def test_status_directives_in_provider_shape(self):
        expect = {
            429: {"openai": "rate_limit_exceeded", "anthropic": "rate_limit_error",
                  "gemini": "RESOURCE_EXHAUSTED"},
            500: {"openai": "server_error", "anthropic": "api_error", "gemini": "INTERNAL"},
            503: {"openai": "server_error", "anthropic": "api_error", "gemini": "UNAVAILABLE"},
            529: {"anthropic": "overloaded_error"},
            401: {"openai": "invalid_api_key", "anthropic": "authentication_error",
                  "gemini": "UNAUTHENTICATED"},
        }
        for status, kinds in expect.items():
            for p in ALL:
                with self.subTest(status=status, p=p):
                    r = chat(p, "fail please [[mock:%d]]" % status)
                    self.assertError(p, r, status, kinds.get(p))
        r = chat("anthropic", "x [[mock:529]]")
        self.assertEqual(r.headers["x-should-retry"], "true")

    def test_retry_after(self):
        for p in ("openai", "groq", "anthropic", "local"):
            with self.subTest(p=p):
                r = chat(p, "slow down [[mock:429]] [[mock:retry-after=1]]")
                self.assertEqual(r.status, 429)
                self.assertEqual(r.headers["retry-after"], "1")
        self.assertEqual(chat("openai", "x [[mock:429]][[mock:retry-after=2]]")
                         .headers["retry-after-ms"], "2000")
        r = chat("gemini", "slow down [[mock:429]] [[mock:retry-after=1]]")
        self.assertEqual(r.status, 429)
        self.assertNotIn("retry-after", r.headers)
        delays = [d["retryDelay"] for d in r.json["error"]["details"]
                  if d["@type"].endswith("google.rpc.RetryInfo")]
        self.assertEqual(delays, ["1s"])

    def test_malformed_and_truncated(self):
        for p in ALL:
            with self.subTest(p=p):
                r = chat(p, "x [[mock:malformed]]")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.headers["content-type"], "application/json")
                self.assertIsNone(r.json)
                path, body = chat_req(p, "x [[mock:truncated]]")
                with self.assertRaises(http.client.IncompleteRead):
                    request("POST", path, body, auth(p))

    def test_hang_and_sleep(self):
        t0 = time.monotonic()
        r = chat("openai", "x [[mock:sleep=250]]")
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        t0 = time.monotonic()
        with self.assertRaises((socket.timeout, TimeoutError)):
            chat("anthropic", "x [[mock:hang]]", timeout=1)
        self.assertLess(time.monotonic() - t0, 5)
        r = chat("gemini", "x [[mock:hang=0.3]]")
        self.assertEqual(r.status, 200)

    def test_blocked(self):
        r = chat("openai", "bad thing [[mock:blocked]]").json
        self.assertEqual(r["choices"][0]["finish_reason"], "content_filter")
        r = chat("anthropic", "bad thing [[mock:blocked]]").json
        self.assertEqual((r["stop_reason"], r["content"]), ("refusal", []))
        r = chat("gemini", "bad thing [[mock:blocked]]")
        self.assertEqual(r.status, 200)
        self.assertNotIn("candidates", r.json)
        self.assertEqual(r.json["promptFeedback"]["blockReason"], "SAFETY")
        self.assertEqual(r.json["usageMetadata"]["totalTokenCount"],
                         r.json["usageMetadata"]["promptTokenCount"])

    def test_empty(self):
        for p in ALL:
            with self.subTest(p=p):
                r = chat(p, "x [[mock:empty]]")
                self.assertEqual(r.status, 200)
                self.assertEqual(reply_text(p, r.json), "")
                self.assertIn(finish(p, r.json), ("stop", "end_turn", "STOP"))
                self.assertEqual(usage(p, r.json)[1], 0)
        self.assertNotIn("candidatesTokenCount", chat("gemini", "[[mock:empty]]")
                         .json["usageMetadata"])

    def test_badjson(self):
        for p in ("openai", "deepseek", "anthropic", "gemini", "local"):
            with self.subTest(p=p):
                r = chat(p, "json [[mock:badjson]]", json_mode=True)
                self.assertEqual(r.status, 200)
                with self.assertRaises(ValueError):
                    json.loads(reply_text(p, r.json))
        # Groq validates JSON mode itself: the miss is a 400, never bad text.
        r = chat("groq", "json [[mock:badjson]]", json_mode=True)
        self.assertError("groq", r, 400, "json_validate_failed")

    def test_fail_then_ok(self):
        text = "flaky [[mock:fail-then-ok=2]]"
        statuses = [chat("openai", text).status for _ in range(4)]
        self.assertEqual(statuses, [503, 503, 200, 200])
        other = "flaky too [[mock:fail-then-ok=1]]"
        self.assertEqual([chat("anthropic", other).status for _ in range(2)], [503, 200])
        mixed = "flaky 429 [[mock:fail-then-ok=1]] [[mock:429]]"
        self.assertEqual([chat("gemini", mixed).status for _ in range(2)], [429, 200])

    def test_unknown_directive_is_refused(self):
        self.assertError("openai", chat("openai", "x [[mock:explode]]"), 400,
                         contains="unknown directive")

    def test_directive_only_in_last_user_message(self):
        path, body = chat_req("openai", "fine now")
        body["messages"].insert(1, {"role": "user", "content": "[[mock:500]]"})
        body["messages"].insert(2, {"role": "assistant", "content": "ok"})
        self.assertEqual(request("POST", path, body, auth("openai")).status, 200)


# --------------------------------------------------------------------------- control API


class ControlAPI(MockTest):
    def test_health(self):
        r = request("GET", "/_mock/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["providers"]["local"], "/ollama")

    def test_fault_queue(self):
        q = self.fault(provider="openai", status=500, count=2, retry_after=1)
        self.assertEqual(q["remaining"], 2)
        self.assertEqual(len(request("GET", "/_mock/faults").json), 1)
        self.assertEqual(chat("groq").status, 200)           # other providers unaffected
        for _ in range(2):
            r = chat("openai")
            self.assertError("openai", r, 500, "server_error")
            self.assertEqual(r.headers["retry-after"], "1")
        self.assertEqual(chat("openai").status, 200)
        self.assertEqual(request("GET", "/_mock/faults").json, [])

    def test_fault_applies_before_auth_and_to_health_checks(self):
        self.fault(provider="anthropic", status=529)
        r = request("GET", "/anthropic/v1/models", headers=auth("anthropic", BAD))
        self.assertError("anthropic", r, 529, "overloaded_error")

    def test_fault_raw_body(self):
        html = "<html><body>502 Bad Gateway</body></html>"
        self.fault(provider="gemini", status=502, body=html)
        r = chat("gemini")
        self.assertEqual((r.status, r.raw.decode()), (502, html))
        self.assertTrue(r.headers["content-type"].startswith("text/html"))

    def test_fault_filters(self):
        self.fault(provider="openai", status=429, endpoint="models")
        self.assertEqual(chat("openai").status, 200)
        self.assertEqual(request("GET", "/openai/v1/models", headers=auth("openai")).status, 429)
        self.fault(provider="*", status=503, key_prefix="sk-good-b")
        self.assertEqual(chat("deepseek", key="sk-good-a").status, 200)
        self.assertEqual(chat("deepseek", key="sk-good-b").status, 503)
        self.fault(provider="ollama", status=500, model="llama-b")
        self.assertEqual(chat("local", model="llama-a").status, 200)
        self.assertEqual(chat("local", model="llama-b").status, 500)
        self.fault(provider="gemini", status=500, model="gemini-b")
        self.assertEqual(chat("gemini", model="gemini-b").status, 500)

    def test_fault_kinds(self):
        self.fault(provider="openai", kind="malformed")
        r = chat("openai")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.json)
        self.fault(provider="anthropic", kind="truncated")
        with self.assertRaises(http.client.IncompleteRead):
            chat("anthropic")
        self.fault(provider="gemini", kind="blocked")
        self.assertIn("promptFeedback", chat("gemini").json)
        self.fault(provider="groq", kind="sleep", delay_ms=200)
        t0 = time.monotonic()
        self.assertEqual(chat("groq").status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)

    def test_insufficient_system_resource_is_deepseeks(self):
        self.fault(provider="deepseek", kind="insufficient_system_resource")
        r = chat("deepseek", "tell me about the weather today")
        self.assertEqual(r.status, 200)
        choice = r.json["choices"][0]
        self.assertEqual(choice["finish_reason"], "insufficient_system_resource")
        full = "mock reply from deepseek to: tell me about the weather today"
        self.assertEqual(choice["message"]["content"], " ".join(full.split()[:len(full.split()) // 2]))
        self.assertEqual(r.json["usage"]["completion_tokens"], len(full.split()) // 2)
        self.assertGreater(r.json["usage"]["prompt_tokens"], 0)
        self.assertEqual(chat("deepseek").json["choices"][0]["finish_reason"], "stop")
        self.assertEqual(request("POST", "/_mock/fault", {"provider": "openai",
                                                          "kind": "insufficient_system_resource"}).status, 400)

    def test_content_faults_wait_for_a_valid_chat(self):
        self.fault(provider="anthropic", kind="empty")
        self.assertEqual(request("GET", "/anthropic/v1/models", headers=auth("anthropic"))
                         .status, 200)
        self.assertEqual(request("POST", "/anthropic/v1/messages", {"model": "c"},
                                 auth("anthropic")).status, 400)
        r = chat("anthropic")
        self.assertEqual((r.status, r.json["content"]), (200, []))
        self.assertEqual(chat("anthropic").json["content"][0]["type"], "text")

    def test_bad_fault_specs(self):
        for spec in ({"provider": "openai", "status": 200}, {"provider": "nobody", "status": 500},
                     {"provider": "openai", "status": 500, "count": 0},
                     {"provider": "openai", "kind": "explode"}, [1]):
            with self.subTest(spec=spec):
                self.assertEqual(request("POST", "/_mock/fault", spec).status, 400)

    def test_recorded_requests(self):
        chat("openai", "record me")
        path, body = chat_req("gemini", "q")
        request("POST", path + "?key=" + KEY, body)
        request("POST", "/ollama/api/chat", raw=b"not json",
                headers={"Content-Type": "application/json"})
        recs = self.requests()
        self.assertEqual([r["provider"] for r in recs], ["openai", "gemini", "local"])
        o = recs[0]
        for k in ("provider", "method", "path", "query", "headers", "body", "status_returned",
                  "ts"):
            self.assertIn(k, o)
        self.assertEqual((o["method"], o["path"], o["status_returned"]),
                         ("POST", "/openai/v1/chat/completions", 200))
        self.assertEqual(o["headers"]["authorization"], "Bearer " + KEY)
        self.assertTrue(all(k == k.lower() for k in o["headers"]))
        self.assertEqual(o["body"]["messages"][1]["content"], "record me")
        self.assertEqual(recs[1]["query"], {"key": KEY})
        self.assertEqual((recs[2]["body"], recs[2]["status_returned"]), ("not json", 400))
        self.assertEqual(len(self.requests("ollama")), 1)

    def test_stats_and_reset(self):
        chat("openai")
        chat("openai", "[[mock:429]]")
        chat("anthropic")
        self.fault(provider="groq", status=500)
        chat("openai", "fail-then-ok text [[mock:fail-then-ok=1]]")
        s = request("GET", "/_mock/stats").json
        self.assertEqual(s["total"], 4)
        self.assertEqual(s["by_provider"]["openai"],
                         {"total": 3, "200": 1, "429": 1, "503": 1})
        self.assertEqual(s["by_provider"]["anthropic"]["200"], 1)
        self.assertEqual(s["faults_queued"], 1)
        request("POST", "/_mock/reset")
        s = request("GET", "/_mock/stats").json
        self.assertEqual((s["total"], s["faults_queued"]), (0, 0))
        self.assertEqual(self.requests(), [])
        self.assertEqual(chat("openai", "fail-then-ok text [[mock:fail-then-ok=1]]").status,
                         503)  # counter restarted too

    def test_books_bill_every_chat_request_and_the_tokens_delivered(self):
        # Every chat request is billed to the key it presents, whatever the answer; tokens only
        # from a whole 2xx body the client received. Health checks are not billed.
        ok = {p: chat(p, key=KEY + "-" + p) for p in ALL}
        self.assertEqual(chat("openai", "[[mock:429]][[mock:retry-after=1]]", key="sk-good-b").status, 429)
        self.assertEqual(chat("openai", key="sk-bad-b").status, 401)
        self.assertEqual(chat("anthropic", "[[mock:malformed]]", key="sk-good-b").status, 200)
        request("GET", BASE["openai"] + HEALTH["openai"], headers=auth("openai", "sk-good-b"))
        with self.assertRaises(OSError):  # the client gives up before the reply: no tokens
            chat("groq", "[[mock:hang=0.6]]", key="sk-good-b", timeout=0.2)
        deadline = time.time() + 5
        while request("GET", "/_mock/books").json["in_flight"] and time.time() < deadline:
            time.sleep(0.05)
        books = request("GET", "/_mock/books").json
        self.assertEqual(books["in_flight"], 0)
        for p in ALL:
            book = books["keys"][(KEY + "-" + p) if p != "local" else "(no key)"]
            u = ok[p].json
            if p in OPENAI_FAMILY:
                used = (u["usage"]["prompt_tokens"], u["usage"]["completion_tokens"])
            elif p == "anthropic":
                used = (u["usage"]["input_tokens"], u["usage"]["output_tokens"])
            elif p == "gemini":
                used = (u["usageMetadata"]["promptTokenCount"], u["usageMetadata"]["candidatesTokenCount"])
            else:
                used = (u["prompt_eval_count"], u["eval_count"])
            self.assertEqual((book["requests"], book["tokens_input"], book["tokens_output"]), (1,) + used, p)
        self.assertEqual(books["keys"]["sk-good-b"], {"requests": 3, "tokens_input": 0, "tokens_output": 0,
                                                      "replies_with_usage": 0})
        self.assertEqual(books["keys"]["sk-bad-b"]["requests"], 1)
        request("POST", "/_mock/reset")
        self.assertEqual(request("GET", "/_mock/books").json, {"in_flight": 0, "keys": {}})

    def test_key_prefixes(self):
        self.assertEqual(chat("openai", key="AIza-real-looking").status, 401)
        r = request("POST", "/_mock/keys", {"valid_prefixes": ["sk-good", "AIza"]})
        self.assertEqual(r.json["valid_prefixes"], ["sk-good", "AIza"])
        self.assertEqual(chat("openai", key="AIza-real-looking").status, 200)
        request("POST", "/_mock/keys", {"invalid_prefixes": ["sk-good-revoked"]})
        self.assertEqual(chat("anthropic", key="sk-good-revoked-1").status, 401)
        request("POST", "/_mock/reset")
        self.assertEqual(chat("openai", key="AIza-real-looking").status, 401)

    def test_unknown_control_endpoint(self):
        self.assertEqual(request("GET", "/_mock/nothing").status, 404)


class Concurrency(MockTest):
    def test_parallel_requests(self):
        import threading
        results = []

        def worker(i):
            p = ALL[i % len(ALL)]
            results.append(chat(p, "parallel %d [[mock:sleep=100]]" % i).status)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(24)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [200] * 24)
        self.assertLess(time.monotonic() - t0, 2.0)  # served concurrently, not 2.4 s serially
        self.assertEqual(request("GET", "/_mock/stats").json["total"], 24)


if __name__ == "__main__":
    unittest.main(verbosity=2)
