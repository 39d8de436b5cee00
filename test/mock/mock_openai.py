"""OpenAI-compatible codecs: openai, groq, deepseek (PROVIDERS.md §1-4)."""

import json
import time

from mock_core import Chat, Provider, Rejected, Reply, in_range, is_int, is_number, mask_key

# status -> (type, code, default message)
_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Invalid API Key"),
    402: ("invalid_request_error", "insufficient_balance", "Insufficient Balance"),
    403: ("permission_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", None, "Not found."),
    408: ("timeout", None, "Request timed out."),
    409: ("conflict", None, "Conflict."),
    413: ("invalid_request_error", "request_too_large", "Request Entity Too Large"),
    422: ("invalid_request_error", None, "Invalid parameters."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached on requests per min (RPM): Limit 60, Used 60, Requested 1. "
          "Please try again in 1s."),
    500: ("server_error", None,
          "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

TEXT_ROLES = ("system", "user", "assistant", "tool")
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def _text_of(content):
    """A message's text: a string, or the joined text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _is_json(text):
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


class OpenAIFamily(Provider):
    roles = TEXT_ROLES
    has_param = True               # error bodies carry "param" (Groq drops it)
    request_id_header = True       # x-request-id (DeepSeek: body id only)
    rate_headers = True            # x-ratelimit-* on every reply
    strict_args = False            # unknown top-level arguments -> 400
    strict_message_props = True    # unknown message properties -> 400
    json_word_required = True      # json_object without "json" in a message -> 400
    models = ()
    message_props = ("role", "content", "name", "tool_calls", "tool_call_id", "refusal",
                     "function_call")

    # ---------------------------------------------------------------- routing
    def route(self, method, sub):
        if method == "POST" and sub == "/chat/completions":
            return ("chat", {})
        if method == "GET" and sub == "/models":
            return ("models", {})
        return None

    # ------------------------------------------------------------------- auth
    def presented_key(self, headers, query):
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None

    def check_auth(self, headers, query, rid):
        key = self.presented_key(headers, query)
        if key is None:
            self.reject(401, self.missing_key_message(), rid=rid, code=None)
        if not self.state.key_valid(key):
            self.reject(401, self.bad_key_message(key), rid=rid)

    def missing_key_message(self):
        return ("You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")

    def bad_key_message(self, key):
        return "Invalid API Key"

    # ----------------------------------------------------------------- errors
    def error(self, status, message=None, rid=0, retry_after=None, **kw):
        etype, code, default = _ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None,
                     "mock: injected HTTP %d" % status))
        err = {"message": message or default, "type": kw.get("type", etype)}
        if self.has_param:
            err["param"] = kw.get("param")
        err["code"] = kw.get("code", code)
        body = {"error": err}
        err.update(kw.get("extra", {}))
        headers = self.headers(rid)
        if retry_after is not None:
            headers["retry-after"] = retry_after
            headers["retry-after-ms"] = str(int(float(retry_after) * 1000))
        return Reply(status, body, headers)

    def not_found(self, method, path, rid):
        return self.error(404, "Invalid URL (%s %s)" % (method, path), rid=rid)

    def bad_json(self, detail, rid):
        return self.error(400, "We could not parse the JSON body of your request. (HINT: This "
                          "likely means you aren't using your HTTP library correctly. The "
                          "OpenAI API expects a JSON payload, but what was sent was not valid "
                          "JSON.) [%s]" % detail, rid=rid)

    def bad_content_type(self, ctype, rid):
        return self.bad_json("Content-Type was %r, not application/json" % ctype, rid)

    def headers(self, rid):
        h = {}
        if self.request_id_header:
            h["x-request-id"] = "req_%d" % rid
        if self.rate_headers:
            h.update({
                "x-ratelimit-limit-requests": "10000",
                "x-ratelimit-remaining-requests": "9999",
                "x-ratelimit-reset-requests": "6ms",
                "x-ratelimit-limit-tokens": "200000",
                "x-ratelimit-remaining-tokens": "199000",
                "x-ratelimit-reset-tokens": "300ms",
            })
        return h

    # ------------------------------------------------------------- validation
    known_args = frozenset((
        "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens",
        "n", "stop", "stream", "stream_options", "presence_penalty", "frequency_penalty",
        "logit_bias", "logprobs", "top_logprobs", "user", "seed", "response_format",
        "tools", "tool_choice", "parallel_tool_calls", "store", "metadata",
        "reasoning_effort", "service_tier", "modalities", "audio", "prediction",
        "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier",
        "functions", "function_call"))

    def invalid(self, message, rid, param=None, code=None):
        self.reject(400, message, rid=rid, param=param, code=code)

    def parse_chat(self, body, params, rid):
        if self.strict_args:
            for k in body:
                if k not in self.known_args:
                    self.invalid("Unrecognized request argument supplied: %s" % k, rid, param=k)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            self.invalid("you must provide a model parameter", rid, param="model")
        if body.get("stream"):
            raise Rejected(self.stream_refused(rid))
        msgs = body.get("messages")
        if not isinstance(msgs, list):
            self.invalid("Missing required parameter: 'messages'.", rid, param="messages",
                         code="missing_required_parameter")
        if not msgs:
            self.invalid("Invalid 'messages': empty array. Expected an array with minimum "
                         "length 1, but got an empty array instead.", rid, param="messages",
                         code="empty_array")
        texts, last_user = [], None
        for i, m in enumerate(msgs):
            where = "messages[%d]" % i
            if not isinstance(m, dict):
                self.invalid("Invalid type for '%s': expected an object." % where, rid,
                             param=where, code="invalid_type")
            role = m.get("role")
            if role not in self.roles:
                self.invalid("Invalid value: '%s'. Supported values are: %s." % (
                    role, ", ".join("'%s'" % r for r in self.roles)), rid,
                    param=where + ".role", code="invalid_value")
            for k in m:
                if self.strict_message_props and k not in self.message_props:
                    self.invalid("'%s' : property '%s' is unsupported" % (where, k), rid,
                                 param=where + "." + k)
            self.check_message(m, where, rid)
            content = m.get("content")
            if content is None and not (role == "assistant" and m.get("tool_calls")):
                self.invalid("Missing required parameter: '%s.content'." % where, rid,
                             param=where + ".content", code="missing_required_parameter")
            if isinstance(content, list):
                for j, part in enumerate(content):
                    if not (isinstance(part, dict) and part.get("type") == "text"
                            and isinstance(part.get("text"), str)):
                        self.invalid("Invalid content part '%s.content[%d]': expected "
                                     "{\"type\":\"text\",\"text\":string}." % (where, j), rid,
                                     param="%s.content[%d]" % (where, j), code="invalid_type")
            elif content is not None and not isinstance(content, str):
                self.invalid("Invalid type for '%s.content': expected one of a string or "
                             "array of objects." % where, rid, param=where + ".content",
                             code="invalid_type")
            text = _text_of(content)
            texts.append(text)
            if role == "user":
                last_user = text
        temp = body.get("temperature")
        if temp is not None and not in_range(temp, 0, 2):
            if not is_number(temp):
                self.invalid("Invalid type for 'temperature': expected a decimal, but got %s "
                             "instead." % type(temp).__name__, rid, param="temperature",
                             code="invalid_type")
            side, bound = ("above maximum", "<= 2") if temp > 2 else ("below minimum", ">= 0")
            self.invalid("Invalid 'temperature': decimal %s value. Expected a value %s, but "
                         "got %s instead." % (side, bound, temp), rid, param="temperature",
                         code="decimal_%s_value" % side.replace(" ", "_").replace(
                             "maximum", "max").replace("minimum", "min"))
        top_p = body.get("top_p")
        if top_p is not None and not in_range(top_p, 0, 1):
            self.invalid("Invalid 'top_p': expected a number between 0 and 1.", rid,
                         param="top_p", code="invalid_value")
        max_out = None
        for name in ("max_tokens", "max_completion_tokens"):
            v = body.get(name)
            if v is not None:
                if not is_int(v) or v < 1:
                    self.invalid("Invalid '%s': integer below minimum value. Expected a value "
                                 ">= 1." % name, rid, param=name, code="integer_below_min_value")
                max_out = v
        self.check_model_rules(body, model, rid)
        json_word = any("json" in t.lower() for t in texts)
        rf = body.get("response_format")
        json_mode = False
        if rf is not None:
            if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object",
                                                                  "json_schema"):
                self.invalid("Invalid 'response_format.type': expected 'text', 'json_object' "
                             "or 'json_schema'.", rid, param="response_format.type",
                             code="invalid_value")
            json_mode = rf["type"] != "text"
            if rf["type"] == "json_object" and not json_word and self.json_word_required:
                self.invalid("'messages' must contain the word 'json' in some form, to use "
                             "'response_format' of type 'json_object'.", rid,
                             param="messages")
        if self.is_missing_model(model):
            self.reject(404, "The model `%s` does not exist or you do not have access to it."
                        % model, rid=rid, code="model_not_found")
        return Chat(model=model, texts=texts, last_user=last_user or "", json_mode=json_mode,
                    json_word=json_word, max_out=max_out)

    def check_message(self, m, where, rid):
        pass

    def check_model_rules(self, body, model, rid):
        pass

    # ---------------------------------------------------------------- replies
    def usage(self, out):
        return {"prompt_tokens": out.tokens_in, "completion_tokens": out.tokens_out,
                "total_tokens": out.tokens_in + out.tokens_out}

    def message(self, chat, out):
        return {"role": "assistant", "content": None if out.finish == "blocked" else out.text}

    def completion(self, chat, out, rid):
        finish = {"blocked": "content_filter"}.get(out.finish, out.finish)
        return {
            "id": "chatcmpl-mock%d" % rid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": chat.model,
            "choices": [{"index": 0, "message": self.message(chat, out), "logprobs": None,
                         "finish_reason": finish}],
            "usage": self.usage(out),
            "system_fingerprint": "fp_mock",
        }

    def success(self, chat, out, rid):
        return Reply(200, self.completion(chat, out, rid), self.headers(rid))

    def model_list(self, rid, model=None):
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": self.name}
                for m in self.models]
        return Reply(200, {"object": "list", "data": data}, self.headers(rid))


class OpenAI(OpenAIFamily):
    name = "openai"
    prefix = "/openai/v1"
    roles = ("system", "developer", "user", "assistant", "tool")
    strict_args = True
    models = ("gpt-4o-mini", "gpt-4o", "o4-mini", "gpt-5-mini")
    message_props = OpenAIFamily.message_props + ("audio",)

    def bad_key_message(self, key):
        return ("Incorrect API key provided: %s. You can find your API key at "
                "https://platform.openai.com/account/api-keys." % mask_key(key))

    def check_model_rules(self, body, model, rid):
        if not model.startswith(REASONING_PREFIXES):
            return
        if "max_tokens" in body:
            self.invalid("Unsupported parameter: 'max_tokens' is not supported with this "
                         "model. Use 'max_completion_tokens' instead.", rid,
                         param="max_tokens", code="unsupported_parameter")
        temp = body.get("temperature")
        if temp is not None and temp != 1:
            self.invalid("Unsupported value: 'temperature' does not support %s with this "
                         "model. Only the default (1) value is supported." % temp, rid,
                         param="temperature", code="unsupported_value")

    def usage(self, out):
        u = super().usage(out)
        u["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        u["completion_tokens_details"] = {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}
        return u

    def message(self, chat, out):
        m = super().message(chat, out)
        m["refusal"] = None
        m["annotations"] = []
        return m


class Groq(OpenAIFamily):
    name = "groq"
    prefix = "/groq/openai/v1"
    has_param = False
    models = ("llama-3.1-8b-instant", "llama-3.3-70b-versatile", "openai/gpt-oss-20b")

    def check_message(self, m, where, rid):
        if "name" in m:
            self.invalid("'%s' : property 'name' is unsupported" % where, rid)

    def check_model_rules(self, body, model, rid):
        for k in ("logprobs", "logit_bias", "top_logprobs"):
            if body.get(k) not in (None, False):
                self.invalid("'%s' : property '%s' is unsupported" % (k, k), rid)
        n = body.get("n")
        if n is not None and n != 1:
            self.invalid("'n' : number must be at most 1", rid)

    def headers(self, rid):
        h = super().headers(rid)
        h["x-ratelimit-limit-requests"] = "14400"      # Groq: per day
        h["x-ratelimit-remaining-requests"] = "14399"
        h["x-ratelimit-reset-requests"] = "6m0s"
        h["x-ratelimit-limit-tokens"] = "6000"
        h["x-ratelimit-remaining-tokens"] = "5900"
        h["x-ratelimit-reset-tokens"] = "1s"
        return h

    def error(self, status, message=None, rid=0, retry_after=None, **kw):
        # Groq sends retry-after on 429 only; no retry-after-ms.
        r = super().error(status, message, rid, None, **kw)
        if retry_after is not None and status == 429:
            r.headers["retry-after"] = retry_after
        return r

    def completion(self, chat, out, rid):
        c = super().completion(chat, out, rid)
        c["usage"].update({"queue_time": 0.01, "prompt_time": 0.001, "completion_time": 0.002,
                           "total_time": 0.003})
        c["x_groq"] = {"id": "req_%d" % rid}
        return c

    def success(self, chat, out, rid):
        # Groq validates JSON mode server-side: a miss is a 400, never bad text.
        if chat.json_mode and out.finish != "blocked" and not _is_json(out.text):
            return self.error(400, "Failed to generate JSON. Please adjust your prompt. See "
                              "'failed_generation' for more details.", rid=rid,
                              code="json_validate_failed",
                              extra={"failed_generation": out.text})
        return super().success(chat, out, rid)

    def model_list(self, rid, model=None):
        r = super().model_list(rid)
        for m in r.body["data"]:
            m.update({"active": True, "context_window": 131072})
        return r


class DeepSeek(OpenAIFamily):
    name = "deepseek"
    prefix = "/deepseek"
    request_id_header = False
    rate_headers = False
    strict_message_props = False
    json_word_required = False   # DeepSeek answers blank content instead (see success)
    models = ("deepseek-chat", "deepseek-reasoner")

    def route(self, method, sub):
        # "/v1" also works on DeepSeek; it is not a model version.
        if sub.startswith("/v1/"):
            sub = sub[3:]
        return super().route(method, sub)

    def missing_key_message(self):
        return "Authentication Fails, no api key provided"

    def bad_key_message(self, key):
        return "Authentication Fails, Your api key: %s is invalid" % mask_key(key)

    def error(self, status, message=None, rid=0, retry_after=None, **kw):
        if status == 401:
            kw.setdefault("type", "authentication_error")
            kw.setdefault("code", "invalid_request_error")
        if status == 503 and message is None:
            message = "Server overloaded, please retry shortly."
        return super().error(status, message, rid, retry_after, **kw)

    def message(self, chat, out):
        m = super().message(chat, out)
        if "reasoner" in chat.model:
            m["reasoning_content"] = "mock reasoning."
        return m

    def usage(self, out):
        u = super().usage(out)
        u["prompt_cache_hit_tokens"] = 0
        u["prompt_cache_miss_tokens"] = out.tokens_in
        return u

    def completion(self, chat, out, rid):
        c = super().completion(chat, out, rid)
        if chat.json_mode and not chat.json_word:
            # DeepSeek JSON mode without "json" in the prompt: blank content, "stop".
            c["choices"][0]["message"]["content"] = ""
            c["choices"][0]["finish_reason"] = "stop"
            c["usage"]["completion_tokens"] = 0
            c["usage"]["total_tokens"] = out.tokens_in
        return c
