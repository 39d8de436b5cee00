"""Shared pieces of the CELAEST mock provider.

Replies, the provider base class, fault directives and the server-wide state
(recorded requests, queued faults, key rules, statistics).  Standard library only.
"""

import json
import re
import threading
import time
from dataclasses import dataclass, field, fields

# --------------------------------------------------------------------------
# Replies and errors


@dataclass
class Reply:
    """One HTTP answer. `body` is a dict/list (sent as JSON) or str/bytes (raw)."""

    status: int
    body: object = None
    headers: dict = field(default_factory=dict)
    content_type: str = "application/json"

    def payload(self):
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        if self.body is None:
            return b""
        return json.dumps(self.body).encode("utf-8")


class Rejected(Exception):
    """Raised by a validator; carries the provider-shaped error reply."""

    def __init__(self, reply):
        super().__init__(reply.status)
        self.reply = reply


# --------------------------------------------------------------------------
# Request model shared by the codecs


@dataclass
class Chat:
    """A validated chat request, reduced to what the mock needs."""

    model: str
    texts: list            # every input text (system + all messages)
    last_user: str         # text of the last user message
    json_mode: bool = False
    json_word: bool = False  # some message contains "json" (any case)
    max_out: int = None    # output cap in tokens (words), if any
    prefill: str = ""      # Anthropic: final assistant turn the reply continues
    load_only: bool = False  # Ollama: messages [] only loads the model


@dataclass
class Outcome:
    """What the mock model 'generated'."""

    text: str
    finish: str            # "stop" | "length" | "blocked" | "insufficient_system_resource"
    tokens_in: int
    tokens_out: int


def words(text):
    return len(text.split())


DIRECTIVE_RE = re.compile(r"\[\[mock:([^\]]*)\]\]")


def strip_directives(text):
    return DIRECTIVE_RE.sub("", text).strip()


def echo_of(chat):
    return strip_directives(chat.last_user)[:40]


def generate(provider, chat, fx):
    """Deterministic reply text, finish reason and usage for `chat`."""
    tokens_in = sum(words(t) for t in chat.texts) + 3
    if fx.blocked:
        return Outcome("", "blocked", tokens_in, 0)
    if fx.empty:
        return Outcome("", "stop", tokens_in, 0)
    echo = echo_of(chat)
    if fx.insufficient_system_resource:
        # DeepSeek ran out of capacity mid-reply: a 200 with the words generated so far, and
        # their usage (PROVIDERS §3, a transient finish_reason).
        text = ("mock reply from %s to: %s" % (provider, echo)).split()
        text = " ".join(text[:max(1, len(text) // 2)])
        return Outcome(text, "insufficient_system_resource", tokens_in, words(text))
    if chat.json_mode:
        if fx.badjson:
            text = "Sure! Here is the JSON you asked for: ok=true"
        else:
            text = json.dumps({"ok": True, "provider": provider, "echo": echo},
                              separators=(",", ":"))
        if chat.prefill and text.startswith(chat.prefill):
            text = text[len(chat.prefill):]
    else:
        text = "mock reply from %s to: %s" % (provider, echo)
    finish = "stop"
    if chat.max_out is not None and words(text) > chat.max_out:
        text = " ".join(text.split()[:chat.max_out])
        finish = "length"
    return Outcome(text, finish, tokens_in, words(text))


def mask_key(key):
    if len(key) <= 10:
        return "***"
    return key[:6] + "***" + key[-4:]


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def in_range(v, lo, hi):
    return is_number(v) and lo <= v <= hi


# --------------------------------------------------------------------------
# Fault effects: from a message directive or from the control API


@dataclass
class Effects:
    status: int = None         # reply with this error status
    retry_after: str = None    # seconds, on error replies
    message: str = None        # custom error message (control API)
    raw_body: str = None       # verbatim error body (control API)
    content_type: str = None   # for raw_body
    sleep_ms: int = 0          # added latency
    hang_s: float = 0          # sleep this long before answering
    malformed: bool = False    # 200 with broken JSON
    truncated: bool = False    # Content-Length larger than the body, then close
    blocked: bool = False      # provider's safety-block shape
    empty: bool = False        # empty content, normal finish
    badjson: bool = False      # JSON mode but the text is not JSON
    insufficient_system_resource: bool = False  # DeepSeek only: a reply cut short, 200 with usage
    fail_then_ok: int = None   # first N identical requests fail

    def merge(self, other):
        """Fields set in `other` win."""
        if other is None:
            return self
        for f in fields(self):
            v = getattr(other, f.name)
            if v not in (None, False, 0):
                setattr(self, f.name, v)
        return self


HANG_SECONDS = 60
STARTED = time.time()


def parse_directives(text):
    """Effects named by `[[mock:...]]` directives in `text`; ValueError if unknown."""
    fx = Effects()
    for raw in DIRECTIVE_RE.findall(text):
        d = raw.strip().lower()
        name, _, arg = d.partition("=")
        try:
            if re.fullmatch(r"[45]\d\d", d):
                fx.status = int(d)
            elif d in ("malformed", "truncated", "blocked", "empty", "badjson"):
                setattr(fx, d, True)
            elif name == "hang":
                fx.hang_s = float(arg) if arg else HANG_SECONDS
            elif name == "sleep" and arg:
                fx.sleep_ms = int(arg)
            elif name == "fail-then-ok" and arg:
                fx.fail_then_ok = int(arg)
            elif name == "retry-after" and arg:
                float(arg)
                fx.retry_after = arg
            else:
                raise ValueError(raw)
        except ValueError:
            raise ValueError("mock: unknown directive [[mock:%s]]" % raw) from None
    return fx


# --------------------------------------------------------------------------
# Provider base class


class Provider:
    """One provider codec: routing, auth, validation, reply and error shapes."""

    name = ""
    prefix = ""

    def __init__(self, state):
        self.state = state

    # -- routing: return (endpoint, params) or None; endpoint "chat" | "models"
    def route(self, method, sub):
        raise NotImplementedError

    # -- the API key the request presents (None if none)
    def presented_key(self, headers, query):
        return None

    # -- raise Rejected if the request is not authorised
    def check_auth(self, headers, query, rid):
        pass

    def error(self, status, message=None, rid=0, retry_after=None, **kw):
        raise NotImplementedError

    def parse_chat(self, body, params, rid):
        raise NotImplementedError

    def success(self, chat, out, rid):
        raise NotImplementedError

    def model_list(self, rid, model=None):
        raise NotImplementedError

    def not_found(self, method, path, rid):
        return self.error(404, "mock: no route for %s %s" % (method, path), rid=rid)

    def bad_json(self, detail, rid):
        return self.error(400, "mock: could not parse the JSON body: %s" % detail, rid=rid)

    def bad_content_type(self, ctype, rid):
        return self.error(400, "mock: Content-Type must be application/json, got %r" % ctype,
                          rid=rid)

    def stream_refused(self, rid):
        return self.error(400, "mock: stream must be false (CELAEST never streams)", rid=rid)

    def reject(self, status, message=None, rid=0, **kw):
        raise Rejected(self.error(status, message, rid=rid, **kw))

    def model_of(self, body, params):
        """The model a request names, for fault filters (best effort)."""
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            return body["model"]
        return params.get("model")

    @staticmethod
    def is_missing_model(model):
        return "missing" in model


# --------------------------------------------------------------------------
# Server-wide state


DEFAULT_VALID = ("sk-good",)
DEFAULT_INVALID = ("sk-bad",)
FAULT_KINDS = ("error", "malformed", "truncated", "hang", "sleep",
               "blocked", "empty", "badjson", "insufficient_system_resource")


@dataclass
class QueuedFault:
    id: int
    provider: str        # a provider name or "*"
    count: int
    endpoint: str        # "chat" | "models" | "any"
    key_prefix: str
    model: str
    effects: Effects

    @property
    def early(self):
        """Status and transport faults hit before auth; content faults after validation."""
        fx = self.effects
        return not (fx.blocked or fx.empty or fx.badjson or fx.insufficient_system_resource)

    def matches(self, provider, endpoint, key, model, early):
        return (self.count > 0
                and self.early == early
                and self.provider in ("*", provider)
                and self.endpoint in ("any", endpoint)
                and (not self.key_prefix or (key or "").startswith(self.key_prefix))
                and (not self.model or self.model == model))

    def describe(self):
        d = {"id": self.id, "provider": self.provider, "remaining": self.count,
             "endpoint": self.endpoint}
        if self.key_prefix:
            d["key_prefix"] = self.key_prefix
        if self.model:
            d["model"] = self.model
        d["effects"] = {f.name: getattr(self.effects, f.name) for f in fields(Effects)
                        if getattr(self.effects, f.name) not in (None, False, 0)}
        return d


NO_KEY = "(no key)"


def _empty_book():
    return {"requests": 0, "tokens_input": 0, "tokens_output": 0, "replies_with_usage": 0}


def reported_usage(body):
    """(input, output) tokens a provider's success body reports, or None: the openai family's
    `usage`, Anthropic's `usage`, Gemini's `usageMetadata`, Ollama's eval counts."""
    if not isinstance(body, dict):
        return None
    usage = body.get("usage")
    if isinstance(usage, dict):
        if "prompt_tokens" in usage:
            return usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        if "input_tokens" in usage:
            return usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    meta = body.get("usageMetadata")
    if isinstance(meta, dict):
        return meta.get("promptTokenCount", 0), meta.get("candidatesTokenCount", 0)
    if "prompt_eval_count" in body or "eval_count" in body:
        return body.get("prompt_eval_count", 0), body.get("eval_count", 0)
    return None


class State:
    def __init__(self, max_records=10000):
        self.lock = threading.Lock()
        self.in_flight = 0  # chat requests booked whose reply is not sent yet (not reset)
        self.max_records = max_records
        self.seq = 0        # request ids stay unique across resets
        self.fault_seq = 0
        self.reset()

    def reset(self):
        with self.lock:
            self.records = []
            self.stats = {}
            self.books = {}
            self.faults = []
            self.fail_counts = {}
            self.valid_prefixes = list(DEFAULT_VALID)
            self.invalid_prefixes = list(DEFAULT_INVALID)

    def next_id(self):
        with self.lock:
            self.seq += 1
            return self.seq

    # -- keys
    def key_valid(self, key):
        if not key:
            return False
        with self.lock:
            if any(key.startswith(p) for p in self.invalid_prefixes):
                return False
            return any(key.startswith(p) for p in self.valid_prefixes)

    def set_keys(self, valid=None, invalid=None):
        with self.lock:
            if valid is not None:
                self.valid_prefixes = list(valid)
            if invalid is not None:
                self.invalid_prefixes = list(invalid)
            return {"valid_prefixes": self.valid_prefixes,
                    "invalid_prefixes": self.invalid_prefixes}

    # -- faults
    def add_fault(self, spec):
        """Queue a fault from a control-API dict; ValueError on a bad spec."""
        if not isinstance(spec, dict):
            raise ValueError("fault spec must be a JSON object")
        provider = spec.get("provider", "*")
        kind = spec.get("kind", "error")
        if kind not in FAULT_KINDS:
            raise ValueError("kind must be one of %s" % ", ".join(FAULT_KINDS))
        endpoint = spec.get("endpoint", "any")
        if endpoint not in ("chat", "models", "any"):
            raise ValueError("endpoint must be chat, models or any")
        count = spec.get("count", 1)
        if not is_int(count) or count < 1:
            raise ValueError("count must be a positive integer")
        fx = Effects()
        status = spec.get("status")
        if kind == "error":
            if not is_int(status) or not 400 <= status <= 599:
                raise ValueError("status must be an integer 400-599")
            fx.status = status
        elif kind == "hang":
            fx.hang_s = float(spec.get("seconds", HANG_SECONDS))
        elif kind == "sleep":
            pass
        elif kind == "insufficient_system_resource" and provider != "deepseek":
            raise ValueError("insufficient_system_resource is DeepSeek's (provider deepseek)")
        else:
            setattr(fx, kind, True)
            if endpoint == "any":
                endpoint = "chat"   # blocked/empty/badjson only mean something for a chat
        if "retry_after" in spec:
            fx.retry_after = str(spec["retry_after"])
        if "delay_ms" in spec:
            fx.sleep_ms = int(spec["delay_ms"])
        if kind == "sleep" and not fx.sleep_ms:
            raise ValueError("kind sleep needs delay_ms")
        if "body" in spec:
            if kind != "error":
                raise ValueError("body is only for kind error")
            fx.raw_body = spec["body"] if isinstance(spec["body"], str) \
                else json.dumps(spec["body"])
            fx.content_type = spec.get("content_type")
        if "message" in spec:
            fx.message = str(spec["message"])
        with self.lock:
            self.fault_seq += 1
            q = QueuedFault(self.fault_seq, provider, count, endpoint,
                            spec.get("key_prefix", ""), spec.get("model", ""), fx)
            self.faults.append(q)
            return q.describe()

    def take_fault(self, provider, endpoint, key, model, early=True):
        with self.lock:
            for q in self.faults:
                if q.matches(provider, endpoint, key, model, early):
                    q.count -= 1
                    if q.count == 0:
                        self.faults.remove(q)
                    return q.effects
        return None

    def list_faults(self):
        with self.lock:
            return [q.describe() for q in self.faults]

    def should_fail(self, text, n):
        """fail-then-ok: True for the first `n` requests carrying `text`."""
        with self.lock:
            seen = self.fail_counts.get(text, 0) + 1
            self.fail_counts[text] = seen
            return seen <= n

    # -- recording
    def record(self, rec):
        with self.lock:
            self.records.append(rec)
            if len(self.records) > self.max_records:
                del self.records[: len(self.records) - self.max_records]
            by = self.stats.setdefault(rec["provider"] or "unknown", {"total": 0})
            by["total"] += 1
            key = str(rec["status_returned"])
            by[key] = by.get(key, 0) + 1

    # -- the books: what a provider would bill, per key
    def book_request(self, key):
        """A chat request received with `key`: billed once, whatever the answer (API.md: every
        request sent with a key counts once in that key's usage). Also counts it in flight
        until book_reply() or book_done()."""
        with self.lock:
            entry = self.books.setdefault(key or NO_KEY, _empty_book())
            entry["requests"] += 1
            self.in_flight += 1

    def book_reply(self, key, tokens_in, tokens_out):
        """Tokens reported in a reply the client received whole."""
        with self.lock:
            entry = self.books.setdefault(key or NO_KEY, _empty_book())
            entry["tokens_input"] += tokens_in
            entry["tokens_output"] += tokens_out
            entry["replies_with_usage"] += 1

    def book_done(self):
        with self.lock:
            self.in_flight -= 1

    def books_view(self):
        with self.lock:
            return {"in_flight": self.in_flight,
                    "keys": {k: dict(v) for k, v in self.books.items()}}

    def snapshot(self, provider=None):
        with self.lock:
            return [r for r in self.records if provider in (None, r["provider"])]

    def stats_view(self):
        with self.lock:
            return {"total": sum(v["total"] for v in self.stats.values()),
                    "by_provider": {k: dict(v) for k, v in self.stats.items()},
                    "faults_queued": len(self.faults),
                    "uptime_s": round(time.time() - STARTED, 3)}

