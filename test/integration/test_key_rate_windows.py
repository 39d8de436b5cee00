"""The key rate windows in shared memory hold for more keys than the old table's 1,024 slots.

The old table never freed a slot: after 1,024 distinct keys, a new key had no window and went
unthrottled. Here 1,100 keys with rate_limit_rpd = 1 each take exactly one call, and then no key
has room: the next call is LC020. (A day window rather than a minute one: the 1,100 calls take
seconds and must not straddle the window's end; a minute boundary comes every minute, a day's
end is avoided below.)"""

import datetime
import io
import json
import time

import psycopg2
import pytest

from conftest import new_secret, scalar

KEYS = 1100
PROVIDER = "groq"


def wait_for_same_utc_day(margin_s=120):
    now = datetime.datetime.now(datetime.timezone.utc)
    left = 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
    if left < margin_s:
        time.sleep(left + 1)


def add_keys(conn, count, options):
    """count keys of PROVIDER named window-<n>, their secrets passed as COPY data."""
    secrets = [new_secret("window-%d" % n) for n in range(count)]
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE window_secrets (n int, s text)")
        cur.copy_expert("COPY window_secrets FROM STDIN",
                        io.StringIO("".join("%d\t%s\n" % (n, s) for n, s in enumerate(secrets))))
        cur.execute("SELECT count(celaest.add_api_key(%s, 'window-' || n, s, %s::jsonb)) FROM window_secrets",
                    (PROVIDER, json.dumps(options)))
        added = cur.fetchone()[0]
        cur.execute("DROP TABLE window_secrets")
    return added


def test_more_keys_than_the_old_table_are_all_throttled(db, mock, conn):
    scalar(conn, "UPDATE celaest.ai_api_pool SET is_active = false WHERE provider = %s", (PROVIDER,))
    wait_for_same_utc_day()
    assert add_keys(conn, KEYS, {"rate_limit_rpd": 1}) == KEYS

    # One statement, one call per key: each call takes a key with room, so every key is used.
    started = time.monotonic()
    completed = scalar(conn, """
        SELECT count(*) FILTER (WHERE r->>'status' = 'completed')
          FROM generate_series(1, %s) AS g,
               LATERAL celaest.ai_chat(jsonb_build_array(jsonb_build_object('role', 'user',
                                                                            'content', 'window call ' || g)),
                                       NULL, NULL, %s::jsonb) AS r""", (KEYS, json.dumps({"provider": PROVIDER})))
    elapsed = time.monotonic() - started
    assert completed == KEYS, elapsed

    uses = scalar(conn, "SELECT jsonb_object_agg(usage_count, keys) FROM (SELECT usage_count, count(*) AS keys"
                        "  FROM celaest.ai_api_pool WHERE provider = %s AND key_name LIKE 'window-%%'"
                        "  GROUP BY usage_count) s", (PROVIDER,))
    assert uses == {"1": KEYS}, uses  # no key took a second call: none went unthrottled

    # Every key has had its one request of the day: a second call on any of them is refused.
    with pytest.raises(psycopg2.Error) as exc:
        db.ai_chat(conn, [{"role": "user", "content": "one too many"}], None, {"provider": PROVIDER})
    assert exc.value.pgcode == "LC020"
    assert len(mock.chat_requests(PROVIDER)) == KEYS


def test_each_concern_has_its_own_segment(db, conn):
    """Key windows, license in-flight counts, license terms, synchronous calls in flight, the ledger's counters, the
    workers registry, cache generations and batch-end announcements are separate segments, each with its own lock: one concern never waits on another's."""
    if "celaest" not in scalar(conn, "SELECT current_setting('shared_preload_libraries')"):
        pytest.skip("not preloaded: no shared memory")
    names = scalar(conn, "SELECT array_agg(name ORDER BY name) FROM pg_shmem_allocations WHERE name LIKE 'celaest%%'")
    assert names == ["celaest batch ends", "celaest cache generations", "celaest key rate windows", "celaest ledger counters",
                     "celaest license in-flight counts", "celaest license terms",
                     "celaest synchronous calls in flight", "celaest workers"]
