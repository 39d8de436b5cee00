"""How long the ledger takes (README "The ledger"): from a rolled-back, cancelled or
terminated call's transaction end until its processed_tasks row is visible (the handoff to
the ledger writer), and from a committed call until licenses.ai_requests_used shows it (the
fold). Also: the share of an autocommit call during which a crash loses it (the answer has
arrived, the transaction has not committed yet).

    scripts/build.sh && scripts/cluster.sh /usr/bin/python3 test/bench/ledger/handoff.py [N]

Uses the `postgres` database (served by the launcher in scripts/cluster.sh) and the strict
mock provider (test/integration/mock_process.py). Prints percentiles in milliseconds.
"""
import json
import os
import secrets
import statistics
import sys
import time
import uuid

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "integration"))
from mock_process import private_mock  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def connect():
    conn = psycopg2.connect(dbname="postgres", application_name="celaest-ledger-bench")
    conn.autocommit = True
    return conn


def scalar(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
        return row[0] if row else None


def percentiles(values):
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return "median %.1f, p90 %.1f, p99 %.1f, max %.1f (n=%d)" % (
        statistics.median(values), pick(0.9), pick(0.99), values[-1], len(values))


def main():
    with private_mock() as port:
        admin = connect()
        scalar(admin, "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS celaest CASCADE; SELECT 1")
        deadline = time.time() + 30
        while not json.loads(json.dumps(scalar(admin, "SELECT celaest._ledger_state()")))["served"]:
            assert time.time() < deadline
            time.sleep(0.1)
        t = secrets.token_hex(4)
        model = "bench-model-" + t
        scalar(admin, "INSERT INTO celaest.ai_models (provider, model_id, display_name, cost_per_1k_input,"
                      " cost_per_1k_output, priority, capabilities) VALUES ('openai', %s, %s, 0.5, 1.5, 3000,"
                      " '{\"text_generation\": true}') RETURNING 1", (model, model))
        scalar(admin, "SELECT celaest.add_api_key('openai', %s, %s, %s)",
               ("bench-key-" + t, "sk-good-bench-" + secrets.token_hex(12),
                json.dumps({"base_url": "http://127.0.0.1:%d/openai/v1" % port})))
        org, user = str(uuid.uuid4()), str(uuid.uuid4())
        scalar(admin, "INSERT INTO celaest.subscription_plans (code, name, limits) VALUES (%s, %s,"
                      " '{\"max_users\": 10, \"max_ai_requests_per_month\": 10000000, \"max_storage_gb\": 1,"
                      "   \"max_concurrent_tasks\": 10, \"max_batch_size\": 10}') RETURNING 1", ("bench-" + t, t))
        scalar(admin, "INSERT INTO celaest.organizations (id, name, slug) VALUES (%s, %s, %s) RETURNING 1",
               (org, "Bench " + t, "bench-" + t))
        scalar(admin, "INSERT INTO celaest.users_profile (id, organization_id, email, role)"
                      " VALUES (%s, %s, %s, 'admin') RETURNING 1", (user, org, "bench-%s@example.test" % t))
        license_id = scalar(admin, "SELECT celaest.issue_license(%s, %s)", (org, "bench-" + t))["license_id"]

        caller = connect()
        scalar(caller, "SELECT set_config('celaest.user_id', %s, false)", (user,))
        messages = json.dumps([{"role": "user", "content": "bench " + t}])

        def visible(task_id):
            return scalar(admin, "SELECT count(*) FROM celaest.processed_tasks WHERE id = %s", (task_id,)) == 1

        handoff, fold, tail = [], [], []
        for _ in range(N):
            caller.autocommit = False
            task = scalar(caller, "SELECT celaest.ai_chat(%s::jsonb, %s)", (messages, model))
            caller.rollback()
            ended = time.perf_counter()
            while not visible(task["task_id"]):
                time.sleep(0.0002)
            handoff.append((time.perf_counter() - ended) * 1000)

            caller.autocommit = True
            used = scalar(admin, "SELECT ai_requests_used FROM celaest.licenses WHERE id = %s", (license_id,))
            started = time.perf_counter()
            task = scalar(caller, "SELECT celaest.ai_chat(%s::jsonb, %s)", (messages, model))
            committed = time.perf_counter()
            # Upper bound of the time from the provider's answer to the commit (the whole client
            # round trip but the HTTP exchange): what a crash at the wrong moment loses.
            tail.append((committed - started) * 1000 - task["ai_time_ms"])
            while scalar(admin, "SELECT ai_requests_used FROM celaest.licenses WHERE id = %s",
                         (license_id,)) <= used:
                time.sleep(0.0002)
            fold.append((time.perf_counter() - committed) * 1000)
        print("rolled back -> row written by the writer (ms): " + percentiles(handoff))
        print("committed -> ai_requests_used shows it (ms):    " + percentiles(fold))
        print("autocommit ai_chat round trip minus its HTTP exchange, an upper bound of the answer -> commit"
              " window a crash loses (ms): " + percentiles(tail))


if __name__ == "__main__":
    main()
