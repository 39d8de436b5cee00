#!/usr/bin/env python3
"""Loopback HTTP server for the client tests (Python standard library only).

Prints "<port>\\n" on stdout once listening; exits when its stdin closes, so it cannot
outlive the test process that started it. With --tls CERT KEY it serves HTTPS instead.

Every response carries X-Conn-Id: a number per accepted TCP connection, so a test can see
whether requests shared a connection.
"""
import gzip
import itertools
import ssl
import sys
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_conn_ids = itertools.count(1)
_conn_lock = threading.Lock()


class _GateGroup:
    """The requests of one /gate group: a barrier they pass `size` at a time, and how many
    of them the server has held at once."""

    def __init__(self, size):
        self.barrier = threading.Barrier(size)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0


_gate_groups = {}
_gate_lock = threading.Lock()


def _gate_group(name, size=1):
    with _gate_lock:
        return _gate_groups.setdefault(name, _GateGroup(size))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall

    def setup(self):
        super().setup()
        with _conn_lock:
            self.conn_id = next(_conn_ids)

    def log_message(self, *args):
        pass

    def reply(self, status=200, body=b"", headers=(), content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Conn-Id", str(self.conn_id))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def dispatch(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        route = getattr(self, "route_" + url.path.strip("/").replace("-", "_"), None)
        if route is None:
            self.reply(404, b"no such route")
        else:
            route(query, body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = dispatch

    # --- routes ---

    def route_ok(self, query, body):
        self.reply(200, b"hello")

    def route_echo(self, query, body):
        lines = ["method=" + self.command, "path=" + self.path]
        lines += ["header:%s=%s" % (k, v) for k, v in self.headers.items()]
        lines.append("body=" + body.decode("utf-8", "replace"))
        self.reply(200, "\n".join(lines).encode())

    def route_slow(self, query, body):
        time.sleep(int(query.get("ms", "100")) / 1000.0)
        self.reply(200, query.get("id", "").encode())

    def route_gate(self, query, body):
        # Answered only once `n` requests of `group` are here together: parallelism shown
        # by the server, not inferred from a clock a loaded machine can stretch. A request
        # left waiting gives up after `wait_ms` and answers "alone".
        group = _gate_group(query["group"], int(query["n"]))
        with group.lock:
            group.in_flight += 1
            group.peak = max(group.peak, group.in_flight)
        try:
            group.barrier.wait(timeout=int(query.get("wait_ms", "5000")) / 1000.0)
            answer = query.get("id", "").encode()
        except threading.BrokenBarrierError:
            answer = b"alone"
        with group.lock:
            # Before the reply: the client may start its next request as soon as it reads this one.
            group.in_flight -= 1
        self.reply(200, answer)

    def route_gate_peak(self, query, body):
        self.reply(200, str(_gate_group(query["group"]).peak).encode())

    def route_hang(self, query, body):
        time.sleep(30)  # never answers within any test's patience
        self.close_connection = True

    def route_big(self, query, body):
        self.reply(200, b"x" * int(query["n"]))

    def route_gzip(self, query, body):
        self.reply(200, gzip.compress(b"a" * int(query["n"])), [("Content-Encoding", "gzip")])

    def route_truncated(self, query, body):
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(b"0123456789")
        self.wfile.flush()
        self.close_connection = True  # 90 bytes short

    def route_interim(self, query, body):
        # An unsolicited interim response first: its headers must not reach the caller.
        self.wfile.write(b"HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n")
        self.reply(200, b"final", [("X-Final", "yes")])

    def route_headers(self, query, body):
        self.reply(200, b"", [("X-Mixed-Case", "first"), ("x-mixed-case", "second"), ("Retry-After", "7")])

    def route_header_flood(self, query, body):
        self.send_response(200)
        for i in range(int(query["n"])):
            self.send_header("X-Flood-%d" % i, "y" * 50)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def route_status(self, query, body):
        self.reply(int(query["code"]), b'{"error":"x"}', [("Retry-After", query.get("retry", "2"))])

    def route_drip(self, query, body):
        # Data keeps flowing, slowly: aborting must not wait for the end.
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b"d")
                self.wfile.flush()
                time.sleep(0.01)
        except OSError:
            pass
        self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many parallel connects must not overflow the backlog

    def handle_error(self, request, client_address):
        pass  # clients hanging up mid-response is what several tests do on purpose


def main():
    server = Server(("127.0.0.1", 0), Handler)
    if len(sys.argv) == 4 and sys.argv[1] == "--tls":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdout.write("%d\n" % server.server_address[1])
    sys.stdout.flush()
    sys.stdin.read()  # until the test process goes away
    os._exit(0)


if __name__ == "__main__":
    main()
