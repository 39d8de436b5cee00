"""The ledger after a crash (README "The ledger", issue 10 item 5): a backend killed with
SIGKILL makes the postmaster reset shared memory, and with it the charges the writer had not
folded yet. The writer's first pass after the restart rebuilds licenses.ai_requests_used and
ai_api_pool usage_count/tokens_used from processed_tasks, so the counters equal the ledger.

Runs in its own cluster (scripts/test.sh), since a crash restarts the whole server; needs
superuser (the SIGKILL is sent by the server's own user, through COPY ... TO PROGRAM).
"""
import json
import os
import secrets
import sys
import threading
import time
import uuid

import psycopg2
import psycopg2.extras

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from mock_process import private_mock  # noqa: E402

DB = "postgres"


def connect(retry_s=0.0):
    deadline = time.time() + retry_s
    while True:
        try:
            conn = psycopg2.connect(dbname=DB, application_name="celaest-ledger-crash")
            conn.autocommit = True
            return conn
        except psycopg2.OperationalError:
            if time.time() >= deadline:
                raise
            time.sleep(0.2)


def scalar(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
        return row[0] if row else None


def state(conn):
    value = scalar(conn, "SELECT celaest._ledger_state()")
    return json.loads(value) if isinstance(value, str) else value


def wait_served(conn, timeout_s=30):
    deadline = time.time() + timeout_s
    while not state(conn)["served"]:
        assert time.time() < deadline, "no ledger writer serves %s" % DB
        time.sleep(0.1)


def test_counters_are_rebuilt_from_processed_tasks_after_a_crash():
    with private_mock() as port:
        base_url = "http://127.0.0.1:%d/openai/v1" % port
        admin = connect()
        scalar(admin, "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS celaest CASCADE; SELECT 1")
        wait_served(admin)
        t = secrets.token_hex(4)
        model = "crash-model-" + t
        model_row = scalar(admin, "INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input,"
                                  " cost_per_1k_output, priority, capabilities) VALUES ('openai', %s, %s, 0.5, 1.5,"
                                  " 3000, '{\"text_generation\": true}') RETURNING id", (model, model))
        # run_prompt's statistics live in shared memory until folded: rebuilt too.
        slug = "crash-prompt-" + t
        prompt_id = scalar(admin, "INSERT INTO celaest.prompts_master (slug, name, category, system_prompt,"
                                  " user_prompt_template, variables, preferred_model_id, temperature, max_tokens)"
                                  " VALUES (%s, %s, 'test', 'Be brief.', 'Say {{topic}}.', '[\"topic\"]', %s, 0.3,"
                                  " 50) RETURNING id", (slug, slug, model_row))
        scalar(admin, "UPDATE celaest.ai_api_pool SET is_active = false WHERE provider = 'openai' RETURNING 1")
        key_id = scalar(admin, "SELECT celaest.add_api_key('openai', %s, %s, %s)",
                        ("crash-key-" + t, "sk-good-crash-" + secrets.token_hex(12),
                         json.dumps({"base_url": base_url})))
        org, user = str(uuid.uuid4()), str(uuid.uuid4())
        scalar(admin, "INSERT INTO celaest.subscription_plans (code, name, limits) VALUES (%s, %s, %s) RETURNING 1",
               ("crash-" + t, "crash " + t, json.dumps({"max_users": 10, "max_ai_requests_per_month": 100000,
                                                         "max_storage_gb": 1, "max_concurrent_tasks": 10,
                                                         "max_batch_size": 10})))
        scalar(admin, "INSERT INTO celaest.organizations (id, name, slug) VALUES (%s, %s, %s) RETURNING 1",
               (org, "Crash " + t, "crash-" + t))
        scalar(admin, "INSERT INTO celaest.users_profile (id, organization_id, email, role)"
                      " VALUES (%s, %s, %s, 'admin') RETURNING 1", (user, org, "crash-%s@example.test" % t))
        license_id = json.loads(json.dumps(scalar(admin, "SELECT celaest.issue_license(%s, %s)",
                                                  (org, "crash-" + t))))["license_id"]

        # The writer cannot fold while the two rows are locked (it skips locked rows): every
        # charge stays in shared memory, which the crash then loses.
        holder = connect()
        holder.autocommit = False
        scalar(holder, "SELECT 1 FROM celaest.licenses WHERE id = %s FOR NO KEY UPDATE", (license_id,))
        scalar(holder, "SELECT 1 FROM celaest.ai_api_pool WHERE id = %s FOR NO KEY UPDATE", (key_id,))
        scalar(holder, "SELECT 1 FROM celaest.prompts_master WHERE id = %s FOR NO KEY UPDATE", (prompt_id,))

        calls = 12

        def caller(index):
            conn = connect()
            scalar(conn, "SELECT set_config('celaest.user_id', %s, false)", (user,))
            for i in range(calls):
                conn.autocommit = i % 3 != 0  # every third call in a transaction rolled back
                if i % 2:
                    scalar(conn, "SELECT celaest.run_prompt(%s, %s::jsonb)",
                           (slug, json.dumps({"topic": "crash %d %d %s" % (index, i, t)})))
                else:
                    scalar(conn, "SELECT celaest.ai_chat(%s::jsonb, %s)",
                           (json.dumps([{"role": "user", "content": "crash %d %d %s" % (index, i, t)}]), model))
                if not conn.autocommit:
                    conn.rollback()
            conn.close()

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        deadline = time.time() + 10
        while scalar(admin, "SELECT count(*) FROM celaest.processed_tasks WHERE organization_id = %s",
                     (org,)) < 4 * calls:
            assert time.time() < deadline, "the rolled-back calls' records were not written"
            time.sleep(0.05)
        before = state(admin)
        assert before["requests_unfolded"] >= 4 * calls, before
        assert scalar(admin, "SELECT ai_requests_used FROM celaest.licenses WHERE id = %s", (license_id,)) == 0

        victim = connect()
        victim_pid = victim.get_backend_pid()
        try:
            scalar(admin, "COPY (SELECT 1) TO PROGRAM 'kill -9 %s'" % int(victim_pid))
        except psycopg2.Error:
            pass  # the server may already be restarting
        for conn in (admin, holder, victim):
            try:
                conn.close()
            except psycopg2.Error:
                pass

        time.sleep(1.0)
        admin = connect(retry_s=60)
        wait_served(admin)
        tasks = scalar(admin, "SELECT count(*) FROM celaest.processed_tasks WHERE organization_id = %s", (org,))
        used = scalar(admin, "SELECT ai_requests_used FROM celaest.licenses WHERE id = %s", (license_id,))
        assert tasks == 4 * calls and used == tasks, (tasks, used)
        expected = scalar(admin,
                          "SELECT jsonb_build_object('n', count(*), 'tokens', COALESCE(sum((a->>'tokens')::bigint), 0))"
                          "  FROM celaest.processed_tasks AS t, jsonb_array_elements(t.metadata->'attempts') AS a"
                          " WHERE a->>'api_key_id' = %s", (str(key_id),))
        key = scalar(admin, "SELECT jsonb_build_object('n', usage_count, 'tokens', tokens_used)"
                            "  FROM celaest.ai_api_pool WHERE id = %s", (key_id,))
        assert key == expected and key["n"] == 4 * calls, (key, expected)
        # The prompt's statistics: one use per run_prompt call, the average of their times.
        truth = scalar(admin, "SELECT jsonb_build_object('n', count(*), 'avg', avg(execution_time_ms)::float8,"
                              " 'ok', count(*) FILTER (WHERE status = 'completed'))"
                              " FROM celaest.processed_tasks WHERE prompt_id = %s", (prompt_id,))
        prompt = scalar(admin, "SELECT jsonb_build_object('n', usage_count, 'avg', avg_response_time_ms,"
                               " 'rate', success_rate::float8) FROM celaest.prompts_master WHERE id = %s", (prompt_id,))
        assert truth["n"] == 4 * (calls // 2) == prompt["n"], (truth, prompt)
        assert abs(prompt["avg"] - truth["avg"]) <= 1 and prompt["rate"] == 100.0 * truth["ok"] / truth["n"], (
            truth, prompt)
        # Later passes change nothing: the rebuild is not counted twice.
        time.sleep(1.0)
        assert scalar(admin, "SELECT ai_requests_used FROM celaest.licenses WHERE id = %s", (license_id,)) == used
        assert scalar(admin, "SELECT usage_count FROM celaest.prompts_master WHERE id = %s", (prompt_id,)) == prompt["n"]
        print("\n%d calls' charges lost with shared memory, rebuilt: license %d, key %s, prompt %s" % (
            before["requests_unfolded"], used, key, prompt))
        admin.close()
