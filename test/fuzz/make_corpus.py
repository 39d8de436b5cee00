#!/usr/bin/env python3
"""Regenerates the decoder seed corpus (test/fuzz/corpus/decode_*, error_body) from the
mock provider (test/mock), whose replies follow PROVIDERS.md: every reply kind the mock
can give (success, JSON mode, blocked, empty, malformed, each error status, Retry-After,
health checks), written in the fuzz input format (status line, headers, blank line, body;
see fuzz_input.hpp). The hand-written seeds of the other targets are not touched.

    python3 test/fuzz/make_corpus.py
"""

import json
import os
import sys
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
KEY = "sk-good-fuzz-corpus"

sys.path.insert(0, os.path.join(ROOT, "test", "integration"))
from mock_process import private_mock  # noqa: E402  (the tests' one way to start the mock)

# Headers that say something to a decoder; transport noise (Date, Server) is left out.
KEEP = ("content-type", "retry-after", "retry-after-ms", "x-request-id", "request-id", "x-should-retry",
        "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens")


def chat_request(provider, text, json_mode):
    """(path, headers, body) of a valid chat request in the provider's own shape."""
    if provider in ("openai", "groq", "deepseek"):
        prefix = {"openai": "/openai/v1", "groq": "/groq/openai/v1", "deepseek": "/deepseek"}[provider]
        model = {"openai": "gpt-4o-mini", "groq": "llama-3.1-8b-instant", "deepseek": "deepseek-chat"}[provider]
        body = {"model": model, "messages": [{"role": "user", "content": text}]}
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        return prefix + "/chat/completions", {"Authorization": "Bearer " + KEY}, body
    if provider == "anthropic":
        body = {"model": "claude-3-5-haiku-latest", "max_tokens": 64,
                "messages": [{"role": "user", "content": text}]}
        if json_mode:
            body["messages"].append({"role": "assistant", "content": "{"})
        return "/anthropic/v1/messages", {"x-api-key": KEY, "anthropic-version": "2023-06-01"}, body
    if provider == "gemini":
        body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        if json_mode:
            body["generationConfig"] = {"responseMimeType": "application/json"}
        return "/gemini/v1beta/models/gemini-2.0-flash:generateContent", {"x-goog-api-key": KEY}, body
    body = {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": text}]}
    if json_mode:
        body["format"] = "json"
    return "/ollama/api/chat", {}, body


HEALTH = {"openai": "/openai/v1/models", "groq": "/groq/openai/v1/models", "deepseek": "/deepseek/models",
          "anthropic": "/anthropic/v1/models", "gemini": "/gemini/v1beta/models", "local": "/ollama/api/tags"}
TARGET = {"openai": "decode_openai", "groq": "decode_openai", "deepseek": "decode_openai",
          "anthropic": "decode_anthropic", "gemini": "decode_gemini", "local": "decode_ollama"}


def fetch(base, path, headers, body=None):
    data = None if body is None else json.dumps(body).encode()
    hdrs = dict(headers)
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, headers=hdrs, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def as_fuzz_input(status, headers, body):
    lines = ["%d" % status]
    for name in KEEP:
        value = headers.get(name)
        if value is not None:
            lines.append("%s: %s" % (name, value))
    return ("\n".join(lines) + "\n\n").encode() + body


def write(target, name, content):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(content)


def main():
    with private_mock() as port:
        base = "http://127.0.0.1:%d" % port
        cases = [("ok", "Say hello in three words", False), ("json", "Answer in json please", True),
                 ("blocked", "x [[mock:blocked]]", False), ("empty", "x [[mock:empty]]", False),
                 ("badjson", "json [[mock:badjson]]", True), ("malformed", "x [[mock:malformed]]", False),
                 ("retry_after", "x [[mock:429]] [[mock:retry-after=7]]", False)]
        cases += [("status_%d" % s, "x [[mock:%d]]" % s, False)
                  for s in (400, 401, 402, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 529)]
        good = {"Authorization": "Bearer " + KEY, "x-api-key": KEY, "anthropic-version": "2023-06-01",
                "x-goog-api-key": KEY}
        bad = {"Authorization": "Bearer sk-bad", "x-api-key": "sk-bad", "anthropic-version": "2023-06-01",
               "x-goog-api-key": "sk-bad"}
        for provider in TARGET:
            for name, text, json_mode in cases:
                path, headers, body = chat_request(provider, text, json_mode)
                content = as_fuzz_input(*fetch(base, path, headers, body))
                write(TARGET[provider], "%s_%s" % (provider, name), content)
                if not content.startswith(b"2"):
                    write("error_body", "%s_%s" % (provider, name), content)
            write(TARGET[provider], "%s_health" % provider, as_fuzz_input(*fetch(base, HEALTH[provider], good)))
            content = as_fuzz_input(*fetch(base, HEALTH[provider], bad))
            write(TARGET[provider], "%s_health_bad_key" % provider, content)
            if not content.startswith(b"2"):
                write("error_body", "%s_health_bad_key" % provider, content)


if __name__ == "__main__":
    main()
