"""Ollama codec (/api/chat, /api/tags) (PROVIDERS.md §1-4)."""

import time

from mock_core import Chat, Provider, Reply, is_int

_MESSAGES = {
    400: "bad request",
    401: "unauthorized",
    404: "not found",
    429: "too many requests",
    500: "mock: internal server error",
    503: "server busy, please try again.  maximum pending requests exceeded",
}

OPTIONS = frozenset((
    "num_keep", "seed", "num_predict", "top_k", "top_p", "min_p", "typical_p",
    "repeat_last_n", "temperature", "repeat_penalty", "presence_penalty",
    "frequency_penalty", "penalize_newline", "stop", "numa", "num_ctx", "num_batch",
    "num_gpu", "main_gpu", "use_mmap", "num_thread", "tfs_z", "mirostat", "mirostat_tau",
    "mirostat_eta"))
MESSAGE_FIELDS = frozenset(("role", "content", "images", "tool_calls", "thinking",
                            "tool_name"))
MODELS = ("llama3.2:latest", "qwen2.5:7b")


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())


class Ollama(Provider):
    name = "local"
    prefix = "/ollama"

    def route(self, method, sub):
        if method == "POST" and sub == "/api/chat":
            return ("chat", {})
        if method == "GET" and sub == "/api/tags":
            return ("models", {})
        return None

    def presented_key(self, headers, query):
        auth = headers.get("authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def check_auth(self, headers, query, rid):
        pass  # local Ollama takes no key

    def error(self, status, message=None, rid=0, retry_after=None, **kw):
        msg = message or _MESSAGES.get(status, "mock: injected HTTP %d" % status)
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        return Reply(status, {"error": msg}, headers)

    def not_found(self, method, path, rid):
        return self.error(404, "404 page not found", rid=rid)

    def bad_json(self, detail, rid):
        return self.error(400, "invalid character in JSON body: %s" % detail, rid=rid)

    def parse_chat(self, body, params, rid):
        model = body.get("model")
        if not isinstance(model, str) or not model:
            self.reject(400, "model is required", rid=rid)
        if body.get("stream", True) is not False:
            # The real server would stream NDJSON here; make the mistake visible instead.
            self.reject(400, "mock: stream must be false", rid=rid)
        options = body.get("options")
        max_out = None
        if options is not None:
            if not isinstance(options, dict):
                self.reject(400, "json: cannot unmarshal %s into Go struct field "
                            "ChatRequest.options of type map[string]interface {}"
                            % type(options).__name__, rid=rid)
            for k in options:
                if k not in OPTIONS:
                    self.reject(400, "mock: unknown option '%s'" % k, rid=rid)
            if "num_predict" in options:
                if not is_int(options["num_predict"]):
                    self.reject(400, "option \"num_predict\" must be of type integer", rid=rid)
                if options["num_predict"] > 0:
                    max_out = options["num_predict"]
        fmt = body.get("format")
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            self.reject(400, "invalid format: expected \"json\" or a JSON schema", rid=rid)
        msgs = body.get("messages") or []
        if not isinstance(msgs, list):
            self.reject(400, "json: cannot unmarshal %s into Go struct field "
                        "ChatRequest.messages of type []api.Message"
                        % type(msgs).__name__, rid=rid)
        texts, last_user = [], ""
        for i, m in enumerate(msgs):
            if not isinstance(m, dict):
                self.reject(400, "json: cannot unmarshal into Go struct field "
                            "ChatRequest.messages of type api.Message", rid=rid)
            for k in m:
                if k not in MESSAGE_FIELDS:
                    self.reject(400, "mock: unknown message field '%s' in messages[%d]"
                                % (k, i), rid=rid)
            if m.get("role") not in ("system", "user", "assistant", "tool"):
                self.reject(400, "mock: invalid role %r in messages[%d]" % (m.get("role"), i),
                            rid=rid)
            content = m.get("content", "")
            if not isinstance(content, str):
                self.reject(400, "json: cannot unmarshal %s into Go struct field "
                            "Message.messages.content of type string"
                            % type(content).__name__, rid=rid)
            texts.append(content)
            if m["role"] == "user":
                last_user = content
        if self.is_missing_model(model):
            self.reject(404, "model '%s' not found" % model, rid=rid)
        return Chat(model=model, texts=texts, last_user=last_user,
                    json_mode=fmt == "json" or isinstance(fmt, dict),
                    json_word=any("json" in t.lower() for t in texts),
                    max_out=max_out, load_only=not msgs)

    def success(self, chat, out, rid):
        body = {"model": chat.model, "created_at": _now(),
                "message": {"role": "assistant", "content": ""}}
        if chat.load_only:
            # messages [] only loads the model: no counts.
            body.update({"done_reason": "load", "done": True})
            return Reply(200, body)
        body["message"]["content"] = out.text
        body.update({
            "done_reason": "length" if out.finish == "length" else "stop",
            "done": True,
            "total_duration": 123456789,
            "load_duration": 1234567,
            "prompt_eval_count": out.tokens_in,
            "prompt_eval_duration": 2345678,
            "eval_count": out.tokens_out,
            "eval_duration": 3456789,
        })
        return Reply(200, body)

    def model_list(self, rid, model=None):
        models = [{"name": m, "model": m, "modified_at": "2025-01-01T00:00:00Z",
                   "size": 2019393189, "digest": "%064x" % (i + 1),
                   "details": {"parent_model": "", "format": "gguf", "family": "llama",
                               "families": ["llama"], "parameter_size": "3.2B",
                               "quantization_level": "Q4_K_M"}}
                  for i, m in enumerate(MODELS)]
        return Reply(200, {"models": models})
