"""Feature flags bucket exactly as Unleash's gradual rollout: the extension's buckets against
an independent Python MurmurHash3 (murmur3_reference.py) over 10,000 subjects, the rollout
kept when the percentage rises, a disabled flag off for everyone, and the distribution."""
import pytest

from conftest import connect, create_database, scalar
from murmur3_reference import check_vectors, unleash_bucket

N = 10000
FLAG = "it.gradual-rollout"


@pytest.fixture(scope="module")
def flags_conn():
    name = "celaest_it_feature_flags"
    create_database(name)
    conn = connect(name)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE subjects AS SELECT i, gen_random_uuid()::text AS id"
                    " FROM generate_series(1, %s) AS i", (N,))
        cur.execute("INSERT INTO celaest.feature_flags (flag_key, name, is_enabled, target_type, target_percentage)"
                    " VALUES (%s, 'IT rollout', true, 'percentage', 10)", (FLAG,))
    yield conn
    conn.close()
    admin = connect("postgres")
    with admin.cursor() as cur:
        cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    admin.close()


def rows(conn, sql, params=None):
    """Plain tuples (conftest.rows gives dicts)."""
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def enabled_ids(conn):
    return {r[0] for r in rows(conn, "SELECT id FROM subjects WHERE celaest.is_feature_enabled(%s, id::uuid)", (FLAG,))}


def test_the_reference_matches_the_published_vectors():
    check_vectors()


@pytest.mark.parametrize("flag", [FLAG, "checkout", "a-much-longer-flag-key.with.dots_and_underscores"])
def test_buckets_equal_the_reference_murmur3(flags_conn, flag):
    ours = dict(rows(flags_conn, "SELECT id, celaest._unleash_bucket(%s, id) FROM subjects", (flag,)))
    assert len(ours) == N
    mismatches = [(i, b, unleash_bucket(flag, i)) for i, b in ours.items() if b != unleash_bucket(flag, i)]
    assert mismatches == []


def test_organization_is_the_subject_without_a_user(flags_conn):
    org = scalar(flags_conn, "SELECT gen_random_uuid()::text")
    expected = unleash_bucket(FLAG, org) <= 10
    assert scalar(flags_conn, "SELECT celaest.is_feature_enabled(%s, NULL, %s)", (FLAG, org)) is expected


def test_rollout_follows_the_reference_and_raising_it_keeps_everyone_in(flags_conn):
    ids = [r[0] for r in rows(flags_conn, "SELECT id FROM subjects")]
    at_10 = enabled_ids(flags_conn)
    assert at_10 == {i for i in ids if unleash_bucket(FLAG, i) <= 10}
    assert abs(len(at_10) * 100 / N - 10) <= 2

    scalar(flags_conn, "UPDATE celaest.feature_flags SET target_percentage = 20 WHERE flag_key = %s RETURNING 1", (FLAG,))
    at_20 = enabled_ids(flags_conn)
    assert at_10 <= at_20                       # nobody who had it loses it
    assert at_20 == {i for i in ids if unleash_bucket(FLAG, i) <= 20}
    assert abs(len(at_20) * 100 / N - 20) <= 2

    scalar(flags_conn, "UPDATE celaest.feature_flags SET is_enabled = false WHERE flag_key = %s RETURNING 1", (FLAG,))
    assert enabled_ids(flags_conn) == set()
    scalar(flags_conn, "UPDATE celaest.feature_flags SET is_enabled = true, target_percentage = 10"
                       " WHERE flag_key = %s RETURNING 1", (FLAG,))


@pytest.mark.parametrize("percent", [1, 5, 25, 50, 75, 99])
def test_distribution_is_within_two_points_of_the_target(flags_conn, percent):
    count = scalar(flags_conn, "SELECT count(*) FROM subjects WHERE celaest._unleash_bucket(%s, id) <= %s",
                   (FLAG, percent))
    assert abs(count * 100 / N - percent) <= 2
