"""ROI against an independent computation.

A generator writes tasks for organizations in five time zones (UTC; New York and Madrid,
whose DST starts inside the range; Auckland at UTC+13, whose DST ends inside it; Kolkata at
UTC+5:30), with empty days, all-failed days, single-task days, tasks exactly at local
midnight (and a microsecond before), prompts with and without manual minutes and tasks in
every status that does not hold a concurrency slot. Every figure of every roi_metrics row
that aggregate_roi writes (daily, weekly, monthly) is compared with a plain Python
computation of API.md's definitions, written here without looking at the SQL.
"""
import datetime as dt
import math
import random
import uuid
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import psycopg2
import psycopg2.extras
import pytest

from conftest import connect, create_database, scalar

FROM = dt.date(2025, 2, 24)     # a Monday
TO = dt.date(2025, 4, 13)       # a Sunday: seven ISO weeks
DEFAULT_MINUTES = Decimal("4")
DEFAULT_RATE = Decimal("30")

ORGS = [
    # name, settings
    ("utc", {}),
    ("new_york", {"timezone": "America/New_York"}),                 # DST starts 2025-03-09
    ("madrid", {"timezone": "Europe/Madrid", "roi": {"hourly_rate": "55.5"}}),  # DST 2025-03-30
    ("auckland", {"timezone": "Pacific/Auckland"}),                 # UTC+13 until 2025-04-06
    ("kolkata", {"timezone": "Asia/Kolkata", "roi": {"hourly_rate": "not a number"}}),
]

PROMPTS = [
    # slug, metadata: manual minutes 12, 7.5, invalid (-> default), absent (-> default)
    ("roi-twelve", {"manual_minutes": 12}),
    ("roi-seven-and-a-half", {"manual_minutes": "7.5"}),
    ("roi-invalid", {"manual_minutes": "ten"}),
    ("roi-none", {}),
]
PROMPT_MINUTES = {"roi-twelve": Decimal(12), "roi-seven-and-a-half": Decimal("7.5")}


def rows(conn, sql, params=None):
    """Plain tuples (conftest.rows gives dicts)."""
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def half_up(value, places=0):
    return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def percentile_cont(values, fraction):
    """PostgreSQL's percentile_cont, in the same double-precision steps."""
    ordered = sorted(float(v) for v in values)
    position = fraction * float(len(ordered) - 1)
    first_row, second_row = math.floor(position), math.ceil(position)
    first = ordered[first_row]
    if second_row == first_row:
        return first
    return first + (ordered[second_row] - first) * (position - first_row)


def local_date(instant, zone):
    return instant.astimezone(ZoneInfo(zone)).date()


def period_start(period_type, day):
    if period_type == "daily":
        return day
    if period_type == "weekly":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def period_end(period_type, start):
    if period_type == "daily":
        return start
    if period_type == "weekly":
        return start + dt.timedelta(days=6)
    following = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


def periods(period_type, first, last):
    start = period_start(period_type, first)
    out = []
    while start <= last:
        out.append(start)
        start = period_end(period_type, start) + dt.timedelta(days=1)
    return out


# --------------------------------------------------------------------------- generator


class World:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.orgs = {}          # name -> dict(id, zone, rate)
        self.prompts = {}       # slug -> id
        self.users = []         # dict(id, org, created_at)
        self.tasks = []         # dict(...)

    def generate(self):
        rng = self.rng
        for name, settings in ORGS:
            rate = settings.get("roi", {}).get("hourly_rate")
            try:
                rate = Decimal(rate) if rate is not None and Decimal(rate) >= 0 else DEFAULT_RATE
            except Exception:
                rate = DEFAULT_RATE
            self.orgs[name] = {"id": str(uuid.uuid4()), "zone": settings.get("timezone", "UTC"),
                               "rate": rate, "settings": settings}
        for slug, _ in PROMPTS:
            self.prompts[slug] = str(uuid.uuid4())
        prompt_choices = list(self.prompts) + [None]
        for name, org in self.orgs.items():
            zone = ZoneInfo(org["zone"])
            users = []
            for _ in range(6):
                # New users: some at exactly local midnight, some before the range.
                day = FROM + dt.timedelta(days=rng.randrange(-10, (TO - FROM).days + 5))
                at_midnight = rng.random() < 0.3
                local = dt.datetime.combine(day, dt.time(0, 0) if at_midnight else
                                            dt.time(rng.randrange(24), rng.randrange(60)), zone)
                user = {"id": str(uuid.uuid4()), "org": name, "created_at": local}
                users.append(user)
                self.users.append(user)
            day = FROM - dt.timedelta(days=3)
            index = 0
            while day <= TO + dt.timedelta(days=3):
                kind = index % 9
                starts = []
                if kind == 0:
                    pass                                            # empty day
                elif kind == 1:
                    starts = [("failed", self._random_time(day, zone)) for _ in range(rng.randrange(1, 5))]
                elif kind == 2:
                    starts = [("completed", self._random_time(day, zone))]  # single task
                else:
                    for _ in range(rng.choice([2, 3, 11, 20, 21, 40, 101]) if kind == 3 else rng.randrange(0, 30)):
                        status = rng.choices(["completed", "failed", "pending", "cancelled"], [70, 15, 10, 5])[0]
                        starts.append((status, self._random_time(day, zone)))
                if index % 3 == 0 or day in (dt.date(2025, 3, 9), dt.date(2025, 3, 30), dt.date(2025, 4, 6)):
                    midnight = dt.datetime.combine(day, dt.time(0, 0), zone)
                    starts.append(("completed", midnight))
                    starts.append(("completed", midnight - dt.timedelta(microseconds=1)))
                    starts.append(("failed", dt.datetime.combine(day, dt.time(2, 30), zone)))
                for status, created_at in starts:
                    self.tasks.append(self._task(name, rng.choice(users)["id"], rng.choice(prompt_choices),
                                                 status, created_at))
                day += dt.timedelta(days=1)
                index += 1

    def _random_time(self, day, zone):
        rng = self.rng
        return dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60), rng.randrange(60),
                                                rng.randrange(1000000)), zone)

    def _task(self, org, user, prompt, status, created_at):
        rng = self.rng
        done = status in ("completed", "failed")
        execution = rng.choice([None] + [rng.randrange(50, 90000) for _ in range(9)]) if done else None
        ai_time = None if execution is None or rng.random() < 0.1 else rng.randrange(0, execution + 1)
        return {
            "org": org, "user": user, "prompt": prompt, "status": status,
            "created_at": created_at.astimezone(dt.timezone.utc),
            "tokens_input": rng.randrange(0, 5000) if done else 0,
            "tokens_output": rng.randrange(0, 3000) if done else 0,
            "cost": Decimal(rng.randrange(0, 200000)).scaleb(-6) if done else Decimal(0),
            "execution": execution, "ai_time": ai_time,
        }

    def load(self, conn):
        with conn.cursor() as cur:
            cur.execute("SELECT celaest.config_set('roi.manual_minutes_per_task', %s::jsonb)", (str(DEFAULT_MINUTES),))
            cur.execute("SELECT celaest.config_set('roi.hourly_rate', %s::jsonb)", (str(DEFAULT_RATE),))
            for name, org in self.orgs.items():
                cur.execute("INSERT INTO celaest.organizations (id, name, slug, settings) VALUES (%s, %s, %s, %s)",
                            (org["id"], "ROI " + name, "roi-" + name, psycopg2.extras.Json(org["settings"])))
            for slug, metadata in PROMPTS:
                cur.execute("INSERT INTO celaest.prompts_master (id, slug, name, category, system_prompt, user_prompt_template, metadata)"
                            " VALUES (%s, %s, %s, 'roi', 'x', 'x', %s)",
                            (self.prompts[slug], slug, slug, psycopg2.extras.Json(metadata)))
            psycopg2.extras.execute_values(
                cur, "INSERT INTO celaest.users_profile (id, organization_id, email, created_at) VALUES %s",
                [(u["id"], self.orgs[u["org"]]["id"], "roi-%s@example.test" % u["id"][:8], u["created_at"])
                 for u in self.users])
            psycopg2.extras.execute_values(
                cur, "INSERT INTO celaest.processed_tasks (organization_id, user_id, prompt_id, status, created_at,"
                     " tokens_input, tokens_output, cost_usd, execution_time_ms, ai_time_ms) VALUES %s",
                [(self.orgs[t["org"]]["id"], t["user"], self.prompts.get(t["prompt"]), t["status"], t["created_at"],
                  t["tokens_input"], t["tokens_output"], t["cost"], t["execution"], t["ai_time"])
                 for t in self.tasks], page_size=1000)

    # ----------------------------------------------------------------------- reference

    def expected(self, period_type, first, last):
        """{(org id, period_start): figures} by API.md's definitions."""
        out = {}
        starts = periods(period_type, first, last)
        for name, org in self.orgs.items():
            zone = org["zone"]
            for start in starts:
                end = period_end(period_type, start)
                tasks = [t for t in self.tasks if t["org"] == name
                         and start <= local_date(t["created_at"], zone) <= end]
                completed = [t for t in tasks if t["status"] == "completed"]
                failed = [t for t in tasks if t["status"] == "failed"]
                finished = len(completed) + len(failed)
                times = [t["execution"] for t in completed if t["execution"] is not None]
                manual = sum((PROMPT_MINUTES.get(t["prompt"], DEFAULT_MINUTES) for t in completed), Decimal(0))
                manual_minutes = int(half_up(manual))
                ai_ms = sum(t["ai_time"] for t in completed if t["ai_time"] is not None)
                cost_ai = half_up(sum((t["cost"] for t in tasks), Decimal(0)), 2)
                cost_manual = half_up(Decimal(manual_minutes) * org["rate"] / 60, 2)
                total_tokens = sum(t["tokens_input"] + t["tokens_output"] for t in tasks)
                out[(org["id"], start)] = {
                    "period_end": end,
                    "tasks_completed": len(completed),
                    "tasks_failed": len(failed),
                    "success_rate": half_up(Decimal(len(completed) * 100) / finished, 2) if finished else None,
                    "manual_equivalent_minutes": manual_minutes,
                    "time_saved_minutes": int(half_up(Decimal(manual_minutes) - Decimal(ai_ms) / 60000)),
                    "cost_ai": cost_ai,
                    "cost_manual_equivalent": cost_manual,
                    "money_saved": cost_manual - cost_ai,
                    "total_tokens": total_tokens,
                    "avg_tokens_per_task": int(half_up(Decimal(total_tokens) / finished)) if finished else None,
                    "avg_execution_time_ms": int(half_up(Decimal(sum(times)) / len(times))) if times else None,
                    "p95_execution_time_ms": int(half_up(percentile_cont(times, 0.95))) if times else None,
                    "p99_execution_time_ms": int(half_up(percentile_cont(times, 0.99))) if times else None,
                    "active_users_count": len({t["user"] for t in tasks}),
                    "new_users_count": sum(1 for u in self.users if u["org"] == name
                                           and start <= local_date(u["created_at"], zone) <= end),
                }
        return out


FIELDS = ["period_end", "tasks_completed", "tasks_failed", "success_rate", "manual_equivalent_minutes",
          "time_saved_minutes", "cost_ai", "cost_manual_equivalent", "money_saved", "total_tokens",
          "avg_tokens_per_task", "avg_execution_time_ms", "p95_execution_time_ms", "p99_execution_time_ms",
          "active_users_count", "new_users_count"]


def world_in_database(name, seed):
    """A generated World loaded into a database of its own (dropped when the generator ends)."""
    create_database(name)
    conn = connect(name)
    w = World(seed=seed)
    w.generate()
    w.load(conn)
    w.conn = conn
    yield w
    conn.close()
    admin = connect("postgres")
    with admin.cursor() as cur:
        cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    admin.close()


@pytest.fixture(scope="module")
def world():
    yield from world_in_database("celaest_it_roi", 20251207)


def stored(conn, period_type):
    result = {}
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("SELECT * FROM celaest.roi_metrics WHERE period_type = %s", (period_type,))
        for r in cur.fetchall():
            result[(str(r["organization_id"]), r["period_start"])] = r
    return result


def compare(expected, actual):
    mismatches = []
    for key, figures in expected.items():
        row = actual.get(key)
        if row is None:
            mismatches.append((key, "missing row"))
            continue
        for field in FIELDS:
            if row[field] != figures[field]:
                mismatches.append((key, field, row[field], figures[field]))
    extra = set(actual) - set(expected)
    return mismatches, extra


@pytest.mark.parametrize("period_type,first,last", [
    ("daily", FROM, TO),
    ("weekly", FROM + dt.timedelta(days=2), TO - dt.timedelta(days=4)),   # from a Wednesday: whole weeks
    ("monthly", FROM, TO),
])
def test_every_figure_equals_the_independent_computation(world, period_type, first, last):
    count = scalar(world.conn, "SELECT celaest.aggregate_roi(%s, %s, %s)", (period_type, first, last))
    expected = world.expected(period_type, first, last)
    assert count == len(expected)
    mismatches, extra = compare(expected, stored(world.conn, period_type))
    assert mismatches[:20] == [] and not extra
    # The generator really produced the edge cases it promises.
    figures = list(expected.values())
    assert any(f["tasks_completed"] == 0 and f["tasks_failed"] == 0 for f in figures) or period_type != "daily"
    if period_type == "daily":
        assert any(f["tasks_failed"] > 0 and f["tasks_completed"] == 0 for f in figures)
        assert any(f["tasks_completed"] == 1 and f["tasks_failed"] == 0 for f in figures)
        assert any(f["p95_execution_time_ms"] is not None and f["p95_execution_time_ms"] != f["p99_execution_time_ms"]
                   for f in figures)


def test_a_second_run_is_idempotent(world):
    world.conn.cursor().execute("SELECT celaest.aggregate_roi('daily', %s, %s)", (FROM, TO))
    before = rows(world.conn, "SELECT id, updated_at FROM celaest.roi_metrics WHERE period_type = 'daily' ORDER BY id")
    count = scalar(world.conn, "SELECT celaest.aggregate_roi('daily', %s, %s)", (FROM, TO))
    after = rows(world.conn, "SELECT id, updated_at FROM celaest.roi_metrics WHERE period_type = 'daily' ORDER BY id")
    assert before == after
    assert count == len(world.orgs) * ((TO - FROM).days + 1)


def test_one_organization_and_a_session_time_zone_change_nothing(world):
    org = world.orgs["auckland"]
    conn = connect(world.conn.info.dbname)
    try:
        with conn.cursor() as cur:
            cur.execute("SET TimeZone = 'America/Los_Angeles'")
            cur.execute("DELETE FROM celaest.roi_metrics WHERE organization_id = %s", (org["id"],))
            cur.execute("SELECT celaest.aggregate_roi('daily', %s, %s, %s)", (FROM, TO, org["id"]))
        expected = {k: v for k, v in world.expected("daily", FROM, TO).items() if k[0] == org["id"]}
        actual = {k: v for k, v in stored(conn, "daily").items() if k[0] == org["id"]}
        mismatches, extra = compare(expected, actual)
        assert mismatches[:20] == [] and not extra
    finally:
        conn.close()


def test_roi_summary_follows_the_same_rules(world):
    org = world.orgs["new_york"]
    first, last = dt.date(2025, 3, 5), dt.date(2025, 3, 12)        # across the DST change
    summary = scalar(world.conn, "SELECT celaest.roi_summary(%s, %s, %s)", (org["id"], first, last))
    # One 'period' over the range: the reference over its days.
    tasks = [t for t in world.tasks if t["org"] == "new_york"
             and first <= local_date(t["created_at"], org["zone"]) <= last]
    completed = [t for t in tasks if t["status"] == "completed"]
    times = [t["execution"] for t in completed if t["execution"] is not None]
    assert summary["tasks_completed"] == len(completed)
    assert summary["tasks_failed"] == sum(1 for t in tasks if t["status"] == "failed")
    assert Decimal(str(summary["cost_ai"])) == half_up(sum((t["cost"] for t in tasks), Decimal(0)), 2)
    assert summary["p95_execution_time_ms"] == int(half_up(percentile_cont(times, 0.95)))
    assert summary["p99_execution_time_ms"] == int(half_up(percentile_cont(times, 0.99)))
    assert summary["active_users_count"] == len({t["user"] for t in tasks})
    assert summary["timezone"] == "America/New_York"


def test_an_unknown_time_zone_is_refused_by_name(world):
    conn = world.conn
    org = str(uuid.uuid4())
    with conn.cursor() as cur:
        cur.execute("INSERT INTO celaest.organizations (id, name, slug, settings)"
                    " VALUES (%s, 'Nowhere', 'roi-nowhere', '{\"timezone\": \"Mars/Olympus_Mons\"}')", (org,))
    try:
        for call in ("SELECT celaest.aggregate_roi('daily', %s, %s)", "SELECT celaest.roi_summary(%s::uuid, %s, %s)"):
            args = (FROM, TO) if "aggregate" in call else (org, FROM, TO)
            with pytest.raises(psycopg2.Error) as error:
                scalar(conn, call, args)
            assert error.value.pgcode == "22023"
            assert "Mars/Olympus_Mons" in error.value.pgerror
    finally:
        with conn.cursor() as cur:
            cur.execute("UPDATE celaest.organizations SET settings = '{}', deleted_at = now() WHERE id = %s", (org,))


def test_refresh_recent_writes_each_organizations_yesterday_and_today(world):
    conn = world.conn
    count = scalar(conn, "SELECT celaest._roi_refresh_recent()")
    assert count == 2 * len(world.orgs)
    now = dt.datetime.now(dt.timezone.utc)
    for org in world.orgs.values():
        today = now.astimezone(ZoneInfo(org["zone"])).date()
        days = {r[0] for r in rows(conn, "SELECT period_start FROM celaest.roi_metrics WHERE organization_id = %s"
                                         " AND period_type = 'daily' AND period_start > %s", (org["id"], TO))}
        assert days == {today - dt.timedelta(days=1), today}
