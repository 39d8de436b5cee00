"""The part of test/bench/health_bench.sh that runs inside the cluster (PG* set). Not meant to be
run by hand. Expects BENCH_PORT, BENCH_WORK (holding bare_multi), BENCH_KEYS, BENCH_ROUNDS,
BENCH_CHECK_CPU.

Two pools are timed: the keys as add_api_key encrypts them now, and the same keys re-encrypted
at pgcrypto's default S2K count (what add_api_key wrote before, and what older pools hold until
rotate_api_key), since decryption is most of a new session's work on a big pool."""
import os
import re
import subprocess
import sys
import time

import psycopg2

PORT = os.environ["BENCH_PORT"]
WORK = os.environ["BENCH_WORK"]
KEYS = int(os.environ["BENCH_KEYS"])
ROUNDS = int(os.environ["BENCH_ROUNDS"])
CPU = os.environ["BENCH_CHECK_CPU"]


def connect():
    conn = psycopg2.connect("")
    conn.autocommit = True
    return conn


def setup():
    with connect() as conn, conn.cursor() as cur:
        cur.execute("SET client_min_messages = warning")
        cur.execute("CREATE EXTENSION IF NOT EXISTS celaest CASCADE")
        cur.execute("DELETE FROM celaest.ai_api_pool WHERE key_name LIKE 'health-bench-%'")
        cur.execute("UPDATE celaest.ai_api_pool SET is_active = false WHERE is_active")
        cur.execute(
            "SELECT count(celaest.add_api_key('openai', 'health-bench-' || i, 'sk-health-bench-' || md5(i::text),"
            "       jsonb_build_object('base_url', %s)))"
            "  FROM generate_series(1, %s) i",
            ("http://127.0.0.1:%s/v1" % PORT, KEYS))


def reencrypt_at_default_s2k():
    with connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
                    " WHERE e.extname = 'pgcrypto'")
        schema = cur.fetchone()[0]
        cur.execute(
            "UPDATE celaest.ai_api_pool SET key_value_encrypted = {0}.pgp_sym_encrypt("
            "  {0}.pgp_sym_decrypt(key_value_encrypted, current_setting('celaest.encryption_key')),"
            "  current_setting('celaest.encryption_key'))"
            " WHERE key_name LIKE 'health-bench-%'".format(schema))


def bare_floor():
    out = subprocess.run(["taskset", "-c", CPU, os.path.join(WORK, "bare_multi"),
                          "http://127.0.0.1:%s/v1/models" % PORT, "-", str(KEYS)],
                         check=True, capture_output=True, text=True).stdout.split()
    if int(out[1]) != KEYS:
        sys.exit("health_bench: bare_multi got %s of %d answers" % (out[1], KEYS))
    return float(out[0])


def check_in_new_session():
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            subprocess.run(["taskset", "-pc", CPU, str(cur.fetchone()[0])], check=True, capture_output=True)
            started = time.perf_counter()
            cur.execute("SELECT count(*), count(*) FILTER (WHERE healthy) FROM celaest.check_api_keys()")
            seconds = time.perf_counter() - started
            total, healthy = cur.fetchone()
    finally:
        conn.close()
    if (total, healthy) != (KEYS, KEYS):
        sys.exit("health_bench: %s keys checked, %s healthy (expected %d)" % (total, healthy, KEYS))
    return seconds


def descriptor_errors():
    log = os.environ.get("CELAEST_SERVER_LOG")
    if not log or not os.path.exists(log):
        return "server log not found"
    with open(log, errors="replace") as f:
        found = [line for line in f if re.search(r"out of file descriptors|Too many open files", line)]
    return "%d descriptor errors in the server log" % len(found)


def rounds(label):
    print("%s\nround  bare_multi(s)  check_api_keys(s)  ratio" % label)
    best_bare, best_check = 1e9, 1e9
    for r in range(1, ROUNDS + 1):
        bare = bare_floor()
        check = check_in_new_session()
        best_bare, best_check = min(best_bare, bare), min(best_check, check)
        print("%5d  %13.3f  %17.3f  %5.2f" % (r, bare, check, check / bare))
    print("best:  %13.3f  %17.3f  %5.2f\n" % (best_bare, best_check, best_check / best_bare))


setup()
rounds("keys as add_api_key encrypts them (s2k-count 1024)")
reencrypt_at_default_s2k()
rounds("the same keys at pgcrypto's default S2K count (older ciphertexts)")
print(descriptor_errors())
