#!/usr/bin/env python3
"""CELAEST mock AI provider: one strict local stand-in for all six providers.

    python3 test/mock/mock_provider.py --port 0 --port-file /tmp/x.port [--host 127.0.0.1]
                                       [--log FILE]

Base URLs (P = the port):
    openai     http://127.0.0.1:P/openai/v1         POST /chat/completions, GET /models
    groq       http://127.0.0.1:P/groq/openai/v1    POST /chat/completions, GET /models
    deepseek   http://127.0.0.1:P/deepseek          POST [/v1]/chat/completions, GET /models
    anthropic  http://127.0.0.1:P/anthropic         POST /v1/messages, GET /v1/models
    gemini     http://127.0.0.1:P/gemini/v1beta     POST /models/{m}:generateContent, GET /models
    local      http://127.0.0.1:P/ollama            POST /api/chat, GET /api/tags

Control API: GET /_mock/health, GET /_mock/requests[?provider=P], GET /_mock/stats, GET /_mock/books,
GET /_mock/faults, POST /_mock/fault, POST /_mock/keys, POST /_mock/reset.
See README.md next to this file for directives and fault specs.
"""

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mock_anthropic import Anthropic  # noqa: E402
from mock_core import Effects, Rejected, Reply, State, generate, parse_directives, reported_usage  # noqa: E402
from mock_gemini import Gemini  # noqa: E402
from mock_ollama import Ollama  # noqa: E402
from mock_openai import DeepSeek, Groq, OpenAI  # noqa: E402

PROVIDER_CLASSES = (OpenAI, Groq, DeepSeek, Anthropic, Gemini, Ollama)
ALIASES = {"ollama": "local"}
REASONS = {529: "Site Overloaded", 498: "Flex Tier Capacity Exceeded", 499: "Client Closed"}


def _reject_constant(name):
    raise ValueError("invalid JSON constant %s" % name)


def parse_json(raw):
    """Strict JSON: UTF-8, no NaN/Infinity. Leading whitespace is fine."""
    return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, addr, log_file=None):
        super().__init__(addr, Handler)
        self.state = State()
        self.providers = [cls(self.state) for cls in PROVIDER_CLASSES]
        self.by_name = {p.name: p for p in self.providers}
        self.log_file = log_file
        self.log_lock = threading.Lock()

    def log(self, line):
        if self.log_file is None:
            return
        with self.log_lock:
            self.log_file.write(time.strftime("%Y-%m-%dT%H:%M:%S ") + line + "\n")
            self.log_file.flush()

    def handle_error(self, request, client_address):
        # A client that hangs up on purpose (a cancelled call, an oversized reply it refused)
        # is part of the tests, not a mock failure: keep the log free of its traceback.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)

    def provider_for(self, path):
        for p in self.providers:
            if path == p.prefix or path.startswith(p.prefix + "/"):
                return p, path[len(p.prefix):]
        return None, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY every reply on a
    # kept-alive connection waits ~40 ms for the client's delayed ACK (Nagle).
    disable_nagle_algorithm = True
    server_version = "celaest-mock/1.0"
    sys_version = ""
    timeout = 300  # idle keep-alive connections

    def version_string(self):
        return self.server_version

    # ------------------------------------------------------------ plumbing
    def log_message(self, fmt, *args):
        self.server.log("%s %s" % (self.address_string(), fmt % args))

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, reply, fx=None):
        fx = fx or Effects()
        data = reply.payload()
        if fx.malformed and reply.status < 400:
            data = data[: max(1, len(data) * 2 // 3)] + b'",,}'
        self.send_response(reply.status, REASONS.get(reply.status))
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", reply.content_type)
        if fx.truncated:
            self.send_header("Content-Length", str(len(data) + 64))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_plain(self, status, obj):
        self.send(Reply(status, obj))

    # ----------------------------------------------------------- dispatch
    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def dispatch(self, method):
        url = urlsplit(self.path)
        try:
            raw = self.read_body()
        except ValueError:
            self.close_connection = True
            self.send_plain(400, {"error": "mock: bad Content-Length or chunked framing"})
            return
        if url.path.startswith("/_mock/"):
            self.control(method, url.path, dict(parse_qsl(url.query)), raw)
            return
        state = self.server.state
        rid = state.next_id()
        provider, sub = self.server.provider_for(url.path)
        headers = self.lower_headers()
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        body, body_error = None, None
        if raw:
            try:
                body = parse_json(raw)
            except ValueError as e:
                body_error = str(e)
        fx = None
        # The books (GET /_mock/books): a chat request is billed to its key on arrival,
        # before any reply can reach the client.
        billed_key = None
        route = provider.route(method, sub) if provider is not None else None
        if route is not None and route[0] == "chat":
            billed_key = provider.presented_key(headers, query) or ""
            state.book_request(billed_key)
        try:
            if provider is None:
                reply = Reply(404, {"error": "mock: no provider at %s" % url.path})
            else:
                request = (method, url.path, sub, headers, query, body, body_error)
                reply, fx = self.handle_provider(provider, request, rid)
        except Exception:  # a mock bug: answer 500 and log it, never die
            self.server.log(traceback.format_exc())
            reply = provider.error(500, "mock internal error", rid=rid) if provider else \
                Reply(500, {"error": "mock internal error"})
        # Record before answering: once a client has its reply, the record is visible.
        state.record({
            "id": rid,
            "provider": provider.name if provider else None,
            "method": method,
            "path": url.path,
            "query": query,
            "headers": headers,
            "body": raw.decode("utf-8", "replace") if body_error else body,
            "status_returned": reply.status,
            "ts": time.time(),
        })
        delay = (fx.sleep_ms / 1000.0 + fx.hang_s) if fx else 0
        try:
            if delay:
                time.sleep(delay)
            self.answer_and_book(reply, fx, billed_key)
        finally:
            if billed_key is not None:
                state.book_done()

    def answer_and_book(self, reply, fx, billed_key):
        """Sends the reply; for a billed request, books the tokens it reports if the client
        receives them: a whole, well-formed 2xx body sent to a client still connected (one
        that timed out and hung up, as a hang cut by timeout_ms does, is told nothing)."""
        usage = None
        if billed_key is not None and 200 <= reply.status < 300 and \
                not (fx and (fx.malformed or fx.truncated)):
            usage = reported_usage(reply.body)
        if usage is not None and self.client_gone():
            usage = None
        try:
            self.send(reply, fx)
        except OSError:  # the client went away (timeout, hang test)
            self.close_connection = True
            return
        if usage is not None:
            self.server.state.book_reply(billed_key, *usage)

    def client_gone(self):
        """True if the client closed its side (a FIN or a reset is waiting to be read)."""
        sock = self.connection
        try:
            sock.setblocking(False)
            try:
                return sock.recv(1, socket.MSG_PEEK) == b""
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                return True
        finally:
            sock.settimeout(self.timeout)

    def lower_headers(self):
        out = {}
        for k, v in self.headers.items():
            k = k.lower()
            out[k] = out[k] + ", " + v if k in out else v
        return out

    # ----------------------------------------------------- provider flow
    def handle_provider(self, p, request, rid):
        """Returns (reply, effects) for one provider request."""
        method, path, sub, headers, query, body, body_error = request
        route = p.route(method, sub)
        if route is None:
            return p.not_found(method, path, rid), None
        endpoint, params = route
        key = p.presented_key(headers, query)
        ctl = self.server.state.take_fault(p.name, endpoint, key, p.model_of(body, params))
        if ctl is not None and (ctl.status or ctl.raw_body is not None):
            return self.fault_reply(p, ctl, rid), ctl
        try:
            p.check_auth(headers, query, rid)
            if endpoint == "models":
                return p.model_list(rid, params.get("model")), ctl
            reply, fx = self.chat(p, headers, params, body, body_error, rid, key)
            return reply, (fx or Effects()).merge(ctl)
        except Rejected as r:
            return r.reply, ctl

    def fault_reply(self, p, fx, rid):
        if fx.raw_body is not None:
            ctype = fx.content_type
            if ctype is None:
                try:
                    json.loads(fx.raw_body)
                    ctype = "application/json"
                except ValueError:
                    ctype = "text/html"
            headers = {"retry-after": fx.retry_after} if fx.retry_after else {}
            return Reply(fx.status or 500, fx.raw_body, headers, ctype)
        return p.error(fx.status, fx.message, rid=rid, retry_after=fx.retry_after)

    def chat(self, p, headers, params, body, body_error, rid, key):
        """Validate a chat request and answer it; returns (reply, effects)."""
        ctype = headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            return p.bad_content_type(ctype, rid), None
        if body_error is not None or body is None:
            return p.bad_json(body_error or "empty body", rid), None
        if not isinstance(body, dict):
            return p.bad_json("the body must be a JSON object", rid), None
        chat = p.parse_chat(body, params, rid)
        try:
            fx = parse_directives(chat.last_user)
        except ValueError as e:
            return p.error(400, str(e), rid=rid), None
        fx.merge(self.server.state.take_fault(p.name, "chat", key, chat.model, early=False))
        if fx.fail_then_ok is not None:
            if self.server.state.should_fail(chat.last_user, fx.fail_then_ok):
                fx.status = fx.status or 503
            else:
                fx.status = None
        if fx.status:
            return p.error(fx.status, fx.message, rid=rid, retry_after=fx.retry_after), fx
        return p.success(chat, generate(p.name, chat, fx), rid), fx

    # --------------------------------------------------------- control API
    def control(self, method, path, query, raw):
        state = self.server.state
        try:
            body = parse_json(raw) if raw else {}
        except ValueError as e:
            self.send_plain(400, {"error": "bad JSON: %s" % e})
            return
        provider = ALIASES.get(query.get("provider"), query.get("provider"))
        if method == "GET" and path == "/_mock/health":
            self.send_plain(200, {"ok": True, "providers": {
                p.name: p.prefix for p in self.server.providers}})
        elif method == "GET" and path == "/_mock/requests":
            self.send_plain(200, state.snapshot(provider))
        elif method == "GET" and path == "/_mock/books":
            self.send_plain(200, state.books_view())
        elif method == "GET" and path == "/_mock/stats":
            self.send_plain(200, state.stats_view())
        elif method == "GET" and path == "/_mock/faults":
            self.send_plain(200, state.list_faults())
        elif method == "POST" and path == "/_mock/reset":
            state.reset()
            self.send_plain(200, {"ok": True})
        elif method == "POST" and path == "/_mock/fault":
            if isinstance(body, dict) and "provider" in body:
                body["provider"] = ALIASES.get(body["provider"], body["provider"])
                if body["provider"] not in self.server.by_name and body["provider"] != "*":
                    self.send_plain(400, {"error": "unknown provider %r" % body["provider"]})
                    return
            try:
                self.send_plain(200, state.add_fault(body))
            except (ValueError, TypeError) as e:
                self.send_plain(400, {"error": str(e)})
        elif method == "POST" and path == "/_mock/keys":
            if not isinstance(body, dict):
                self.send_plain(400, {"error": "expected a JSON object"})
                return
            self.send_plain(200, state.set_keys(body.get("valid_prefixes"),
                                                body.get("invalid_prefixes")))
        else:
            self.send_plain(404, {"error": "mock: no control endpoint %s %s" % (method, path)})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--log", help="append an access/error log to this file")
    args = ap.parse_args(argv)

    log_file = open(args.log, "a", encoding="utf-8") if args.log else None
    if ":" in args.host:
        MockServer.address_family = socket.AF_INET6
    server = MockServer((args.host, args.port), log_file)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    server.log("listening on %s:%d" % (args.host, port))

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if log_file:
            log_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
