"""A batch through a server crash (issue 12 §4, README "Exactly once after a crash"): kill -9 of
the batch runner, or of any other backend, or an immediate stop of the server and a start
(`pg_ctlcluster … stop -m immediate`: no checkpoint, the WAL replayed at start), while tasks
are on the wire. The postmaster resets
shared memory and restarts every worker. Afterwards every task has ended exactly once: none
left pending or processing, none sent twice (celaest.retry_after_crash is off), the calls that
were on the wire failed as `interrupted`, and the three books agree: the provider's count of
requests per key, processed_tasks (answered and interrupted attempts), and the counters
(licenses.ai_requests_used, ai_api_pool.usage_count).

Runs in its own cluster (scripts/test.sh), like test_ledger_crash.py.
"""
import json
import os
import secrets
import subprocess
import time
import urllib.request
import uuid

import pytest

from test_ledger_crash import connect, scalar, wait_served
from mock_process import private_mock

TASKS = 16
IN_FLIGHT = 8  # max_concurrent_tasks: the other half waits in the queue when the crash comes


def mock_requests(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/_mock/requests" % port, timeout=10) as resp:
        return json.loads(resp.read())


def prepare(admin, port, t):
    scalar(admin, "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS celaest CASCADE; SELECT 1")
    wait_served(admin)
    model = "batch-crash-" + t
    model_uuid = scalar(admin, "INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input,"
                               " cost_per_1k_output, priority, capabilities) VALUES ('openai', %s, %s, 0.5, 1.5, 3000,"
                               " '{\"text_generation\": true}') RETURNING id", (model, model))
    scalar(admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE provider = 'openai' RETURNING 1")
    key_id = scalar(admin, "SELECT celaest.add_api_key('openai', %s, %s, %s)",
                    ("batch-crash-" + t, "sk-good-batch-crash-" + secrets.token_hex(12),
                     json.dumps({"base_url": "http://127.0.0.1:%d/openai/v1" % port})))
    org, user = str(uuid.uuid4()), str(uuid.uuid4())
    scalar(admin, "INSERT INTO celaest.subscription_plans (code, name, limits) VALUES (%s, %s, %s) RETURNING 1",
           ("batch-crash-" + t, "batch crash " + t,
            json.dumps({"max_users": 10, "max_ai_requests_per_month": 100000, "max_storage_gb": 1,
                        "max_concurrent_tasks": IN_FLIGHT, "max_batch_size": 100})))
    scalar(admin, "INSERT INTO celaest.organizations (id, name, slug) VALUES (%s, %s, %s) RETURNING 1",
           (org, "Batch crash " + t, "batch-crash-" + t))
    scalar(admin, "INSERT INTO celaest.users_profile (id, organization_id, email, role)"
                  " VALUES (%s, %s, %s, 'admin') RETURNING 1", (user, org, "batch-crash-%s@example.test" % t))
    license_id = scalar(admin, "SELECT celaest.issue_license(%s, %s)", (org, "batch-crash-" + t))["license_id"]
    slug = "batch-crash-" + t
    scalar(admin, "INSERT INTO celaest.prompts_master (slug, name, category, system_prompt, user_prompt_template,"
                  " variables, preferred_model_id, temperature, max_tokens) VALUES (%s, %s, 'test',"
                  " 'You answer crash tests.', 'Echo {{word}}', '[\"word\"]', %s, 0.2, 64) RETURNING id",
           (slug, slug, model_uuid))
    return dict(key_id=key_id, org=org, user=user, license_id=license_id, slug=slug, model_uuid=model_uuid)


def kill_9(admin, pid):
    try:
        scalar(admin, "COPY (SELECT 1) TO PROGRAM 'kill -9 %s'" % int(pid))
    except Exception:
        pass  # the server may already be restarting
    try:
        admin.close()
    except Exception:
        pass


def immediate_stop_and_start():
    """The cluster of scripts/cluster.sh (pg_virtualenv's 15/regress): stopped as a crash would
    stop it, then started again."""
    version = os.environ.get("CELAEST_PG_VERSION", "15")
    subprocess.run(["pg_ctlcluster", "--mode", "immediate", version, "regress", "stop"], check=True)
    subprocess.run(["pg_ctlcluster", version, "regress", "start"], check=True)


def runner_pid(admin):
    deadline = time.time() + 30
    while True:
        pid = scalar(admin, "SELECT pid FROM celaest.worker_status() WHERE worker = 'celaest batch runner'"
                            " AND database = current_database() AND pid IS NOT NULL")
        if pid:
            return pid
        assert time.time() < deadline, "no batch runner"
        time.sleep(0.1)


@pytest.mark.parametrize("victim", ["runner", "backend", "immediate stop"])
def test_a_batch_ends_exactly_once_after_kill_9(victim):
    with private_mock() as port:
        t = secrets.token_hex(4)
        admin = connect()
        env = prepare(admin, port, t)
        words = [{"word": "%s-%02d [[mock:sleep=1500]]" % (t, i)} for i in range(TASKS)]
        scalar(admin, "SELECT set_config('celaest.user_id', %s, false)", (env["user"],))
        batch_id = scalar(admin, "SELECT celaest.submit_batch(%s, %s::jsonb)", (env["slug"], json.dumps(words)))

        def on_the_wire():
            return [r for r in mock_requests(port) if r["method"] == "POST" and t in json.dumps(r["body"])]

        deadline = time.time() + 15
        while len(on_the_wire()) < IN_FLIGHT:
            assert time.time() < deadline, scalar(admin, "SELECT celaest.batch_status(%s)", (batch_id,))
            time.sleep(0.02)
        bystander = connect()
        if victim == "immediate stop":
            admin.close()
            bystander.close()
            immediate_stop_and_start()
        else:
            pid = runner_pid(admin) if victim == "runner" else bystander.get_backend_pid()
            kill_9(admin, pid)
            try:
                bystander.close()
            except Exception:
                pass

        time.sleep(1.0)
        admin = connect(retry_s=60)
        wait_served(admin)
        deadline = time.time() + 60
        while scalar(admin, "SELECT celaest.batch_status(%s) ->> 'status'", (batch_id,)) not in (
                "completed", "failed", "cancelled"):
            assert time.time() < deadline, scalar(admin, "SELECT celaest.batch_status(%s)", (batch_id,))
            time.sleep(0.1)
        time.sleep(1.5)  # the ledger writer folds within a second

        tasks = {r[0]: r[1:] for r in _rows(admin,
                 "SELECT input_metadata->'variables'->>'word', status::text, metadata->>'interrupted',"
                 "       jsonb_array_length(coalesce(metadata->'attempts', '[]'))"
                 "  FROM celaest.processed_tasks WHERE batch_id = %s", (batch_id,))}
        assert len(tasks) == TASKS
        statuses = [s for s, _, _ in tasks.values()]
        assert all(s in ("completed", "failed") for s in statuses), tasks
        sent = on_the_wire()
        per_task = {w["word"]: sum(1 for r in sent if w["word"] in json.dumps(r["body"])) for w in words}
        # Exactly once: each task reached the provider once, whether or not its answer survived.
        assert all(n == 1 for n in per_task.values()), per_task
        interrupted = [w for w, (s, flag, _) in tasks.items() if flag == "true"]
        assert len(interrupted) == IN_FLIGHT, tasks
        assert all(tasks[w][0] == "failed" for w in interrupted), tasks
        assert statuses.count("completed") == TASKS - IN_FLIGHT, tasks
        # The books: the provider saw TASKS requests with the key; the license and the key count
        # each once (an interrupted request is recorded on its task and counted by the recovery).
        used = scalar(admin, "SELECT ai_requests_used FROM celaest.licenses WHERE id = %s", (env["license_id"],))
        usage = scalar(admin, "SELECT usage_count FROM celaest.ai_api_pool WHERE id = %s", (env["key_id"],))
        recorded = scalar(admin,
                          "SELECT count(*) FROM celaest.processed_tasks AS t,"
                          " jsonb_array_elements(COALESCE(t.metadata->'attempts', '[]') ||"
                          "                      COALESCE(t.metadata->'interrupted_attempts', '[]')) AS a"
                          " WHERE t.batch_id = %s AND a->>'api_key_id' = %s", (batch_id, str(env["key_id"])))
        assert (used, usage, recorded, len(sent)) == (TASKS, TASKS, TASKS, TASKS), (used, usage, recorded, tasks)
        assert all(tasks[w][2] == 0 for w in interrupted)  # no answer, so no attempt with one
        # Nothing of this test routes later calls: its model and key go inactive.
        scalar(admin, "UPDATE celaest.ai_models SET is_active = false WHERE id = %s RETURNING 1", (env["model_uuid"],))
        scalar(admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE id = %s RETURNING 1", (env["key_id"],))
        admin.close()


def _rows(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()
