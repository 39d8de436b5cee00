"""Anthropic Messages API codec (PROVIDERS.md §1-4)."""

import re

from mock_core import Chat, Provider, Rejected, Reply, in_range, is_int

VERSIONS = ("2023-06-01", "2023-01-01")

# status -> (error type, default message)
_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified "
                              "resource."),
    404: ("not_found_error", "Not found."),
    409: ("conflict_error", "Conflict."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "This request would exceed the rate limit for your organization "
                              "of 50 requests per minute."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}

KNOWN_FIELDS = frozenset((
    "model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k",
    "stop_sequences", "stream", "metadata", "tools", "tool_choice", "thinking",
    "output_config", "service_tier", "container", "mcp_servers", "context_management"))
BLOCK_TYPES = frozenset((
    "text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
    "search_result", "server_tool_use", "web_search_tool_result"))
MODELS = (("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"),
          ("claude-haiku-4-5-20251001", "Claude Haiku 4.5"),
          ("claude-opus-4-6", "Claude Opus 4.6"))


def model_version(model):
    """(major, minor) from ids like claude-sonnet-4-5-2025..., claude-3-5-haiku, 4.6."""
    m = re.search(r"-(\d{1,2})(?:[-.](\d{1,2}))?(?=-|$)", model)
    if not m:
        return (0, 0)
    return (int(m.group(1)), int(m.group(2) or 0))


def _blocks_text(content):
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content
                   if isinstance(b, dict) and b.get("type") == "text")


class Anthropic(Provider):
    name = "anthropic"
    prefix = "/anthropic"

    def route(self, method, sub):
        if method == "POST" and sub == "/v1/messages":
            return ("chat", {})
        if method == "GET" and sub == "/v1/models":
            return ("models", {})
        return None

    def presented_key(self, headers, query):
        return headers.get("x-api-key") or None

    def check_auth(self, headers, query, rid):
        key = self.presented_key(headers, query)
        if key is None:
            self.reject(401, "x-api-key header is required", rid=rid)
        if not self.state.key_valid(key):
            self.reject(401, "invalid x-api-key", rid=rid)
        version = headers.get("anthropic-version")
        if not version:
            self.reject(400, "anthropic-version: header is required", rid=rid)
        if version not in VERSIONS:
            self.reject(400, "anthropic-version: invalid version %r" % version, rid=rid)

    def headers(self, rid):
        return {
            "request-id": "req_%d" % rid,
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z",
            "anthropic-ratelimit-tokens-limit": "40000",
            "anthropic-ratelimit-tokens-remaining": "39000",
            "anthropic-ratelimit-tokens-reset": "2030-01-01T00:00:00Z",
            "anthropic-ratelimit-input-tokens-limit": "30000",
            "anthropic-ratelimit-input-tokens-remaining": "29000",
            "anthropic-ratelimit-input-tokens-reset": "2030-01-01T00:00:00Z",
            "anthropic-ratelimit-output-tokens-limit": "10000",
            "anthropic-ratelimit-output-tokens-remaining": "9900",
            "anthropic-ratelimit-output-tokens-reset": "2030-01-01T00:00:00Z",
        }

    def error(self, status, message=None, rid=0, retry_after=None, **kw):
        etype, default = _ERRORS.get(
            status, ("api_error" if status >= 500 else "invalid_request_error",
                     "mock: injected HTTP %d" % status))
        body = {"type": "error", "error": {"type": etype, "message": message or default},
                "request_id": "req_%d" % rid}
        headers = self.headers(rid)
        retryable = status in (408, 409, 429) or status >= 500
        headers["x-should-retry"] = "true" if retryable else "false"
        if retry_after is not None:
            headers["retry-after"] = retry_after
        return Reply(status, body, headers)

    def not_found(self, method, path, rid):
        return self.error(404, "Not Found", rid=rid)

    def bad_json(self, detail, rid):
        return self.error(400, "There was an error parsing the body: %s" % detail, rid=rid)

    # ------------------------------------------------------------- validation
    def invalid(self, message, rid):
        self.reject(400, message, rid=rid)

    def check_text_blocks(self, blocks, where, rid):
        for j, b in enumerate(blocks):
            if not isinstance(b, dict) or b.get("type") not in BLOCK_TYPES:
                self.invalid("%s.%d.type: Input tag %r found using 'type' does not match any "
                             "of the expected tags" % (where, j, b.get("type") if
                                                       isinstance(b, dict) else None), rid)
            if b["type"] == "text":
                if not isinstance(b.get("text"), str):
                    self.invalid("%s.%d.text: Field required" % (where, j), rid)
                if not b["text"].strip():
                    self.invalid("messages: text content blocks must contain non-whitespace "
                                 "text", rid)

    def parse_chat(self, body, params, rid):
        for k in body:
            if k not in KNOWN_FIELDS:
                self.invalid("%s: Extra inputs are not permitted" % k, rid)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            self.invalid("model: Field required", rid)
        if body.get("stream"):
            raise Rejected(self.stream_refused(rid))
        if "max_tokens" not in body:
            self.invalid("max_tokens: Field required", rid)
        max_tokens = body["max_tokens"]
        if not is_int(max_tokens) or max_tokens < 1:
            self.invalid("max_tokens: Input should be a valid integer greater than or equal "
                         "to 1", rid)
        texts, system_text = [], ""
        system = body.get("system")
        if system is not None:
            if isinstance(system, list):
                self.check_text_blocks(system, "system", rid)
            elif not isinstance(system, str):
                self.invalid("system: Input should be a valid string or list of text blocks",
                             rid)
            system_text = _blocks_text(system)
            texts.append(system_text)
        msgs = body.get("messages")
        if not isinstance(msgs, list):
            self.invalid("messages: Field required", rid)
        if not msgs:
            self.invalid("messages: at least one message is required", rid)
        last_user, prev_role, prefill = "", None, ""
        for i, m in enumerate(msgs):
            final = i == len(msgs) - 1
            if not isinstance(m, dict):
                self.invalid("messages.%d: Input should be a valid dictionary" % i, rid)
            role = m.get("role")
            if role == "system":
                self.invalid('messages: Unexpected role "system". The Messages API accepts a '
                             'top-level `system` parameter, not "system" as an input message '
                             'role.', rid)
            if role not in ("user", "assistant"):
                self.invalid("messages.%d.role: Input should be 'user' or 'assistant'" % i, rid)
            if i == 0 and role != "user":
                self.invalid('messages: first message must use the "user" role', rid)
            if role == prev_role:
                self.invalid('messages: roles must alternate between "user" and "assistant", '
                             'but found multiple "%s" roles in a row' % role, rid)
            prev_role = role
            content = m.get("content")
            if isinstance(content, list):
                self.check_text_blocks(content, "messages.%d.content" % i, rid)
            elif not isinstance(content, str):
                self.invalid("messages.%d.content: Input should be a valid string or list"
                             % i, rid)
            text = _blocks_text(content)
            empty = (not content) or (isinstance(content, str) and not content.strip())
            if empty and not (final and role == "assistant"):
                self.invalid("messages.%d: all messages must have non-empty content except "
                             "for the optional final assistant message" % i, rid)
            if final and role == "assistant":
                if text != text.rstrip():
                    self.invalid("messages: final assistant content cannot end with trailing "
                                 "whitespace", rid)
                if text and model_version(model) >= (4, 6):
                    self.invalid("This model does not support assistant message prefill. The "
                                 "conversation must end with a user message.", rid)
                prefill = text
            texts.append(text)
            if role == "user":
                last_user = text
        temp, top_p, top_k = body.get("temperature"), body.get("top_p"), body.get("top_k")
        if temp is not None and not in_range(temp, 0, 1):
            self.invalid("temperature: Input should be less than or equal to 1"
                         if isinstance(temp, (int, float)) and temp > 1 else
                         "temperature: Input should be a number between 0 and 1", rid)
        if top_p is not None and not in_range(top_p, 0, 1):
            self.invalid("top_p: Input should be a number between 0 and 1", rid)
        if top_k is not None and (not is_int(top_k) or top_k < 0):
            self.invalid("top_k: Input should be a non-negative integer", rid)
        if temp is not None and top_p is not None:
            self.invalid("`temperature` and `top_p` cannot both be specified for this model. "
                         "Please use only one.", rid)
        stops = body.get("stop_sequences")
        if stops is not None and not (isinstance(stops, list)
                                      and all(isinstance(s, str) for s in stops)):
            self.invalid("stop_sequences: Input should be a valid list of strings", rid)
        if self.is_missing_model(model):
            self.reject(404, "model: %s" % model, rid=rid)
        fmt = (body.get("output_config") or {}).get("format") \
            if isinstance(body.get("output_config"), dict) else None
        json_mode = (isinstance(fmt, dict) and fmt.get("type") == "json_schema") \
            or prefill.startswith("{") or "json" in system_text.lower()
        return Chat(model=model, texts=texts, last_user=last_user, json_mode=json_mode,
                    json_word=any("json" in t.lower() for t in texts), max_out=max_tokens,
                    prefill=prefill)

    # ---------------------------------------------------------------- replies
    def success(self, chat, out, rid):
        stop = {"stop": "end_turn", "length": "max_tokens", "blocked": "refusal"}[out.finish]
        content = [{"type": "text", "text": out.text}] if out.text else []
        body = {
            "id": "msg_mock%d" % rid,
            "type": "message",
            "role": "assistant",
            "model": chat.model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": out.tokens_in, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": out.tokens_out,
                      "service_tier": "standard"},
        }
        return Reply(200, body, self.headers(rid))

    def model_list(self, rid, model=None):
        data = [{"type": "model", "id": mid, "display_name": name,
                 "created_at": "2025-09-29T00:00:00Z"} for mid, name in MODELS]
        return Reply(200, {"data": data, "has_more": False, "first_id": data[0]["id"],
                           "last_id": data[-1]["id"]}, self.headers(rid))
