"""HTTPS providers over HTTP/2 (issue 12 §2: "Use HTTP/2 multiplexing where the provider offers
it"). nginx with TLS and HTTP/2 stands in for a provider, under a throwaway CA that the
superuser setting celaest.http_ca_file names. A synchronous call negotiates HTTP/2, and a batch
whose calls are all in flight at once shares one connection instead of opening one per call."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from batch_env import BatchEnv, as_json, connect, scalar

CHAT_BODY = ('{"id":"chatcmpl-h2","object":"chat.completion","created":1764072000,"model":"gpt-4o-mini",'
             '"choices":[{"index":0,"message":{"role":"assistant","content":"over h2"},"finish_reason":"stop"}],'
             '"usage":{"prompt_tokens":8,"completion_tokens":3,"total_tokens":11}}')
BATCH = 24


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def h2_provider():
    for need in ("/usr/sbin/nginx", "/usr/lib/nginx/modules/ngx_http_echo_module.so", "/usr/bin/openssl"):
        assert os.path.exists(need), "%s is missing: scripts/install-deps.sh installs it" % need
    work = tempfile.mkdtemp(prefix="celaest-h2-")
    os.chmod(work, 0o755)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=celaest-h2-test",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", os.path.join(work, "key.pem"), "-out", os.path.join(work, "cert.pem")],
                   check=True, capture_output=True)
    for name in ("key.pem", "cert.pem"):
        os.chmod(os.path.join(work, name), 0o644)
    port = free_port()
    with open(os.path.join(work, "nginx.conf"), "w") as conf:
        conf.write("""
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
daemon off;
worker_processes 1;
pid {w}/nginx.pid;
error_log {w}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {w}/body; proxy_temp_path {w}/proxy; fastcgi_temp_path {w}/fastcgi;
    uwsgi_temp_path {w}/uwsgi; scgi_temp_path {w}/scgi;
    log_format calls '$connection $server_protocol $request_method $uri';
    access_log {w}/access.log calls;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {w}/cert.pem;
        ssl_certificate_key {w}/key.pem;
        default_type application/json;
        location = /v1/chat/completions {{
            echo_read_request_body;
            echo_sleep 0.5;
            echo -n '{body}';
        }}
        location = /v1/models {{
            echo -n '{{"object":"list","data":[]}}';
        }}
    }}
}}
""".format(w=work, port=port, body=CHAT_BODY))
    proc = subprocess.Popen(["/usr/sbin/nginx", "-p", work, "-c", os.path.join(work, "nginx.conf"),
                             "-e", os.path.join(work, "error.log")])
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None and time.time() < deadline, open(os.path.join(work, "error.log")).read()
            time.sleep(0.05)
    try:
        yield {"port": port, "ca_file": os.path.join(work, "cert.pem"), "log": os.path.join(work, "access.log")}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def calls(log):
    with open(log) as f:
        return [line.split() for line in f if "/v1/chat/completions" in line]


def test_https_calls_use_http2_and_a_batch_shares_one_connection(mock_server, h2_provider):
    env = BatchEnv(mock_server)
    env.setup()
    try:
        env.set_runner_setting("celaest.http_ca_file", h2_provider["ca_file"])
        env.set_runner_setting("celaest.worker_concurrency", str(BATCH))
        scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s RETURNING 1", (env.key_id,))
        env.key_id = env.add_key("openai", "h2-" + env.tag, "sk-good-h2-0123456789abcdef",
                                 {"base_url": "https://127.0.0.1:%d/v1" % h2_provider["port"], "priority": 100000})
        org = env.org(max_concurrent_tasks=BATCH, max_batch_size=BATCH)

        # A synchronous call: TLS verified against the configured CA, HTTP/2 negotiated.
        conn = connect()
        try:
            scalar(conn, "SELECT set_config('celaest.user_id', %s, false)", (org["user_id"],))
            result = as_json(scalar(conn, "SELECT celaest.ai_chat(%s::jsonb, %s)",
                                    (json.dumps([{"role": "user", "content": "h2 " + env.tag}]), env.model_id)))
        finally:
            conn.close()
        assert result["status"] == "completed" and result["output_text"] == "over h2", result
        assert [c[1] for c in calls(h2_provider["log"])] == ["HTTP/2.0"]

        # A batch with every call in flight at once: multiplexed, not a connection per call.
        before = len(calls(h2_provider["log"]))
        batch_id = env.submit(org, [{"word": "%s-%d" % (env.tag, i)} for i in range(BATCH)])
        status = env.wait(batch_id, timeout="30 seconds")
        assert status["status"] == "completed" and status["completed"] == BATCH, status
        batch_calls = calls(h2_provider["log"])[before:]
        assert len(batch_calls) == BATCH
        assert {c[1] for c in batch_calls} == {"HTTP/2.0"}
        connections = {c[0] for c in batch_calls}
        assert len(connections) <= 2, "%d connections for %d calls in flight" % (len(connections), BATCH)
    finally:
        try:
            env.set_runner_setting("celaest.http_ca_file", None)
        finally:
            env.teardown()


def test_an_untrusted_certificate_is_refused(mock_server, h2_provider):
    # Without the CA, the same provider is not trusted: the call fails on TLS and sends nothing.
    env = BatchEnv(mock_server)
    env.setup()
    try:
        scalar(env.admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s RETURNING 1", (env.key_id,))
        env.key_id = env.add_key("openai", "h2-untrusted-" + env.tag, "sk-good-h2-untrusted-0123456789",
                                 {"base_url": "https://127.0.0.1:%d/v1" % h2_provider["port"], "priority": 100000})
        checked = scalar_rows(env.admin, "SELECT key_id, healthy, error FROM celaest.check_api_keys(%s)", (env.key_id,))
        error = (checked[0][2] or "").lower()
        assert checked[0][1] is False and ("certificate" in error or "ssl" in error), checked
    finally:
        env.teardown()


def scalar_rows(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()
