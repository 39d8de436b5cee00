"""Gemini (generativelanguage v1beta) codec (PROVIDERS.md §1-4)."""

from urllib.parse import unquote

from mock_core import Chat, Provider, Reply, in_range, is_int

# status -> (RPC status, default message)
_ERRORS = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and "
                                "billing details."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
                      "https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}

TOP_LEVEL = {  # accepted spellings -> canonical name
    "contents": "contents", "systemInstruction": "systemInstruction",
    "system_instruction": "systemInstruction", "generationConfig": "generationConfig",
    "generation_config": "generationConfig", "safetySettings": "safetySettings",
    "safety_settings": "safetySettings", "tools": "tools", "toolConfig": "toolConfig",
    "tool_config": "toolConfig", "cachedContent": "cachedContent",
    "cached_content": "cachedContent"}
GENERATION_CONFIG = frozenset((
    "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "responseMimeType",
    "responseSchema", "responseJsonSchema", "responseModalities", "candidateCount", "seed",
    "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs",
    "enableEnhancedCivicAnswers", "speechConfig", "thinkingConfig", "mediaResolution"))
MIME_TYPES = ("text/plain", "application/json", "application/xml", "application/yaml",
              "text/x.enum")
PART_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse",
             "executableCode", "codeExecutionResult")
PART_META = ("thought", "thoughtSignature", "videoMetadata")
MODELS = (("gemini-2.5-flash", "Gemini 2.5 Flash"), ("gemini-2.5-pro", "Gemini 2.5 Pro"),
          ("gemini-2.0-flash", "Gemini 2.0 Flash"))


class Gemini(Provider):
    name = "gemini"
    prefix = "/gemini/v1beta"

    def route(self, method, sub):
        if sub == "/models":
            return ("models", {}) if method == "GET" else None
        if not sub.startswith("/models/"):
            return None
        model, sep, verb = sub[len("/models/"):].partition(":")
        model = unquote(model)
        if not model or "/" in model:
            return None
        if method == "GET" and not sep:
            return ("models", {"model": model})
        if method == "POST" and verb in ("generateContent", "streamGenerateContent"):
            return ("chat", {"model": model, "verb": verb})
        return None

    def presented_key(self, headers, query):
        return headers.get("x-goog-api-key") or query.get("key") or None

    def check_auth(self, headers, query, rid):
        key = self.presented_key(headers, query)
        if key is None:
            self.reject(403, "Method doesn't allow unregistered callers (callers without "
                        "established identity). Please use API Key or other form of API "
                        "consumer identity to call this API.", rid=rid)
        if not self.state.key_valid(key):
            msg = "API key not valid. Please pass a valid API key."
            self.reject(400, msg, rid=rid, details=[
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                 "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                 "metadata": {"service": "generativelanguage.googleapis.com"}},
                {"@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                 "locale": "en-US", "message": msg}])

    def error(self, status, message=None, rid=0, retry_after=None, **kw):
        rpc, default = _ERRORS.get(
            status, ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION",
                     "mock: injected HTTP %d" % status))
        details = list(kw.get("details", []))
        if status == 429:
            details.append({"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                            "violations": [{"quotaMetric": "generativelanguage.googleapis.com/"
                                            "generate_content_free_tier_requests",
                                            "quotaId": "GenerateRequestsPerMinutePerProject"
                                            "PerModel-FreeTier"}]})
        if retry_after is not None:
            # Gemini sends no Retry-After header: the delay travels as RetryInfo.
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": "%ss" % retry_after})
        body = {"error": {"code": status, "message": message or default, "status": rpc,
                          "details": details}}
        return Reply(status, body)

    def not_found(self, method, path, rid):
        return self.error(404, "mock: no route for %s %s" % (method, path), rid=rid)

    def bad_json(self, detail, rid):
        return self.error(400, "Invalid JSON payload received. %s" % detail, rid=rid)

    def model_of(self, body, params):
        return params.get("model")

    # ------------------------------------------------------------- validation
    def invalid(self, message, rid, field_path=None):
        details = []
        if field_path:
            details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [{"field": field_path,
                                                 "description": message}]})
        self.reject(400, message, rid=rid, details=details)

    def unknown_name(self, name, at, rid):
        where = " at '%s'" % at if at else ""
        self.invalid('Invalid JSON payload received. Unknown name "%s"%s: Cannot find field.'
                     % (name, where), rid, field_path=at or None)

    def check_parts(self, parts, where, rid):
        if not isinstance(parts, list) or not parts:
            self.invalid("* GenerateContentRequest.%s.parts: contents.parts must not be empty."
                         "\n" % where, rid, field_path=where + ".parts")
        texts = []
        for j, p in enumerate(parts):
            at = "%s.parts[%d]" % (where, j)
            if not isinstance(p, dict):
                self.invalid("Invalid JSON payload received. Expected an object at '%s'." % at,
                             rid, field_path=at)
            for k in p:
                if k not in PART_DATA and k not in PART_META:
                    self.unknown_name(k, at, rid)
            data = [k for k in PART_DATA if k in p]
            if len(data) != 1:
                self.invalid("* GenerateContentRequest.%s.data: required oneof field 'data' "
                             "must have one initialized field\n" % at, rid,
                             field_path=at + ".data")
            if "text" in p:
                if not isinstance(p["text"], str):
                    self.invalid("Invalid value at '%s.text' (TYPE_STRING)" % at, rid,
                                 field_path=at + ".text")
                if not p.get("thought"):
                    texts.append(p["text"])
        return " ".join(texts)

    def check_generation_config(self, gc, rid):
        if not isinstance(gc, dict):
            self.invalid("Invalid value at 'generation_config': expected an object", rid)
        for k in gc:
            if k not in GENERATION_CONFIG:
                self.unknown_name(k, "generation_config", rid)
        checks = (("temperature", lambda v: in_range(v, 0, 2), "must be between 0 and 2"),
                  ("topP", lambda v: in_range(v, 0, 1), "must be between 0 and 1"),
                  ("topK", lambda v: is_int(v) and v > 0, "must be a positive integer"),
                  ("maxOutputTokens", lambda v: is_int(v) and v > 0,
                   "must be a positive integer"),
                  ("candidateCount", lambda v: is_int(v) and 1 <= v <= 8,
                   "must be between 1 and 8"),
                  ("stopSequences", lambda v: isinstance(v, list) and len(v) <= 5
                   and all(isinstance(s, str) for s in v), "must be at most 5 strings"))
        for name, ok, what in checks:
            if name in gc and not ok(gc[name]):
                self.invalid("* GenerateContentRequest.generation_config.%s: %s\n"
                             % (name, what), rid, field_path="generation_config." + name)
        mime = gc.get("responseMimeType")
        if mime is not None and mime not in MIME_TYPES:
            self.invalid("* GenerateContentRequest.generation_config.response_mime_type: "
                         "allowed mimetypes are `text/plain`, `application/json`, "
                         "`application/xml`, `application/yaml` and `text/x.enum`.\n", rid)
        if ("responseSchema" in gc or "responseJsonSchema" in gc) and mime != "application/json" \
                and mime != "text/x.enum":
            self.invalid("* GenerateContentRequest.generation_config.response_schema: "
                         "response_mime_type must be application/json or text/x.enum when "
                         "response_schema is set.\n", rid)

    def parse_chat(self, body, params, rid):
        if params.get("verb") == "streamGenerateContent":
            self.reject(400, "mock: streamGenerateContent is not used by CELAEST", rid=rid)
        req = {}
        for k, v in body.items():
            if k not in TOP_LEVEL:
                self.unknown_name(k, None, rid)
            req[TOP_LEVEL[k]] = v
        contents = req.get("contents")
        if not contents:
            self.invalid("* GenerateContentRequest.contents: contents is not specified\n", rid,
                         field_path="contents")
        if not isinstance(contents, list):
            self.invalid("Invalid value at 'contents': expected a list", rid)
        texts, last_user = [], ""
        si = req.get("systemInstruction")
        if si is not None:
            if not isinstance(si, dict):
                self.invalid("Invalid value at 'system_instruction': expected an object", rid)
            for k in si:
                if k not in ("parts", "role"):
                    self.unknown_name(k, "system_instruction", rid)
            texts.append(self.check_parts(si.get("parts"), "system_instruction", rid))
        for i, c in enumerate(contents):
            where = "contents[%d]" % i
            if not isinstance(c, dict):
                self.invalid("Invalid value at '%s': expected an object" % where, rid)
            for k in c:
                if k not in ("parts", "role"):
                    self.unknown_name(k, where, rid)
            role = c.get("role", "user")
            if role not in ("user", "model"):
                self.invalid("Please use a valid role: user, model.", rid)
            text = self.check_parts(c.get("parts"), where, rid)
            texts.append(text)
            if role == "user":
                last_user = text
        gc = req.get("generationConfig")
        if gc is not None:
            self.check_generation_config(gc, rid)
        gc = gc or {}
        model = params["model"]
        if self.is_missing_model(model):
            self.reject(404, "models/%s is not found for API version v1beta, or is not "
                        "supported for generateContent. Call ListModels to see the list of "
                        "available models and their supported methods." % model, rid=rid)
        return Chat(model=model, texts=texts, last_user=last_user,
                    json_mode=gc.get("responseMimeType") == "application/json",
                    json_word=any("json" in t.lower() for t in texts),
                    max_out=gc.get("maxOutputTokens"))

    # ---------------------------------------------------------------- replies
    def success(self, chat, out, rid):
        usage = {"promptTokenCount": out.tokens_in}
        if out.tokens_out:
            usage["candidatesTokenCount"] = out.tokens_out
        usage["totalTokenCount"] = out.tokens_in + out.tokens_out
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": out.tokens_in}]
        body = {}
        if out.finish == "blocked":
            # A blocked prompt is a 200 with no candidates.
            body["promptFeedback"] = {"blockReason": "SAFETY", "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
                 "blocked": True}]}
        else:
            content = {"role": "model"}
            if out.text:
                content["parts"] = [{"text": out.text}]
            body["candidates"] = [{
                "content": content,
                "finishReason": "MAX_TOKENS" if out.finish == "length" else "STOP",
                "index": 0}]
        body["usageMetadata"] = usage
        body["modelVersion"] = chat.model
        body["responseId"] = "mockresp%d" % rid
        return Reply(200, body)

    def model_list(self, rid, model=None):
        def info(mid, name):
            return {"name": "models/" + mid, "version": "001", "displayName": name,
                    "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                    "supportedGenerationMethods": ["generateContent", "countTokens"]}
        if model is not None:
            if self.is_missing_model(model):
                return self.error(404, "models/%s is not found for API version v1beta"
                                  % model, rid=rid)
            return Reply(200, info(model, model))
        return Reply(200, {"models": [info(m, n) for m, n in MODELS]})
