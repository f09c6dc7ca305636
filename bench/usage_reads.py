"""`GET /usage/stats` and `/usage/history` latency as one organization's records grow.

Seeds the organization's `usage_records` with one `INSERT ... SELECT generate_series`
(spread over 365 days, 3 kinds, its bots and none), rebuilds its rollups from them,
`VACUUM ANALYZE`, and times sequential requests; then grows the records and does it
again. The reads should stay flat: they never touch `usage_records`.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bench.harness import Latency, Org, log, pg_cursor, sequential_latency, verdict

SHANGHAI = ZoneInfo("Asia/Shanghai")
STATS_PATH = "/api/v1/usage/stats"
HISTORY_PATH = "/api/v1/usage/history"
SIZES = (10**4, 10**6)
TARGET_READ_RATIO = 1.5
HISTORY_DAYS = 365
BOTS_PER_ORG = 3  # bots of the seeded organization (run.py creates them)

SEED_RECORDS_SQL = """
INSERT INTO usage_records (organization_id, bot_id, api_key_id, kind, quantity,
                           idempotency_key, period_start, used_after, created_at)
SELECT %(org)s,
       (%(bots)s::int[])[i %% (cardinality(%(bots)s::int[]) + 1)],  -- index 0 is NULL: no bot
       %(api_key)s,
       (ARRAY['message', 'image', 'voice'])[i %% 3 + 1],
       1,
       NULL,
       date_trunc('month', t AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai',
       0,
       t
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i,
     LATERAL (SELECT %(now)s::timestamptz
                     - make_interval(days => (i %% %(days)s)::int)
                     - make_interval(secs => (i * 7919 %% 86400)::int) AS t) AS moment
"""

REBUILD_ROLLUPS_SQL = [
    "DELETE FROM usage_daily WHERE organization_id = %(org)s",
    """
    INSERT INTO usage_daily (organization_id, day, bot_id, kind, quantity)
    SELECT organization_id, (created_at AT TIME ZONE 'Asia/Shanghai')::date,
           coalesce(bot_id, 0), kind, sum(quantity)
    FROM usage_records WHERE organization_id = %(org)s
    GROUP BY organization_id, 2, 3, kind
    """,
    "DELETE FROM usage_counters WHERE organization_id = %(org)s",
    """
    INSERT INTO usage_counters (organization_id, period_start, used)
    SELECT organization_id, period_start, sum(quantity)
    FROM usage_records WHERE organization_id = %(org)s
    GROUP BY organization_id, period_start
    """,
]


def grow_records(org: Org, total: int, now: datetime) -> dict[str, float]:
    """Bring the organization to `total` records (one statement), rebuild its rollups, analyze."""
    timings: dict[str, float] = {}
    with pg_cursor() as cursor:
        cursor.execute("SELECT count(*) FROM usage_records WHERE organization_id = %s", [org.id])
        have = int(cursor.fetchone()[0])
        started = time.perf_counter()
        if total > have:
            cursor.execute(
                SEED_RECORDS_SQL,
                {
                    "org": org.id,
                    "bots": org.bot_ids,
                    "api_key": org.api_key_id,
                    "first": have + 1,
                    "last": total,
                    "now": now,
                    "days": HISTORY_DAYS,
                },
            )
        timings["insert_s"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute("BEGIN")
        for statement in REBUILD_ROLLUPS_SQL:
            cursor.execute(statement, {"org": org.id})
        cursor.execute("COMMIT")
        timings["rollup_s"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute("VACUUM ANALYZE usage_records, usage_daily, usage_counters")
        # Write the new pages out now, not during the next measurements.
        cursor.execute("CHECKPOINT")
        timings["analyze_s"] = time.perf_counter() - started
        cursor.execute(
            """
            SELECT (SELECT count(*) FROM usage_records WHERE organization_id = %(org)s),
                   (SELECT count(*) FROM usage_daily WHERE organization_id = %(org)s),
                   (SELECT count(*) FROM usage_counters WHERE organization_id = %(org)s),
                   (SELECT count(*) FROM usage_records)
            """,
            {"org": org.id},
        )
        records, daily_rows, counter_rows, all_records = cursor.fetchone()
    timings.update(
        records=records, daily_rows=daily_rows, counter_rows=counter_rows, all_records=all_records
    )
    return timings


def read_queries(today: date) -> dict[str, str]:
    month_from = date(today.year - (today.month <= 11), (today.month - 12) % 12 + 1, 1)
    return {
        "GET /usage/stats": STATS_PATH,
        "GET /usage/history (day, 30 days)": (
            f"{HISTORY_PATH}?granularity=day&from={today - timedelta(days=29)}&to={today}"
        ),
        "GET /usage/history (month, 12 months)": (
            f"{HISTORY_PATH}?granularity=month&from={month_from}&to={today}"
        ),
    }


def measure_reads(port: int, org: Org, count: int, today: date) -> dict[str, Latency]:
    headers = {"X-API-Key": org.api_key}
    return {
        name: sequential_latency(port, path, headers, count)
        for name, path in read_queries(today).items()
    }


def power_of_ten(n: int) -> str:
    return f"10^{len(str(n)) - 1}" if str(n).strip("0") == "1" else f"{n:,}"


def section(port: int, org: Org, count: int, sizes: tuple[int, int] = SIZES) -> list[str]:
    """Measure at the smaller then the larger size; the Markdown part of the report."""
    now = datetime.now(UTC)
    today = now.astimezone(SHANGHAI).date()
    measured: dict[int, tuple[dict[str, float], dict[str, Latency]]] = {}
    for total in sizes:
        log(f"reads: seeding organization {org.id} to {total:,} records")
        seeded = grow_records(org, total, now)
        log(
            f"seeded in {seeded['insert_s']:.1f} s + rollups {seeded['rollup_s']:.1f} s"
            f" + vacuum analyze, checkpoint {seeded['analyze_s']:.1f} s; measuring"
        )
        measured[total] = (seeded, measure_reads(port, org, count, today))
    small_size, large_size = (power_of_ten(n) for n in sizes)
    small, large = measured[sizes[0]], measured[sizes[1]]
    lines = [
        f"## Reads at {small_size} and {large_size} usage records ({count} sequential "
        "requests each, one organization, API key)",
        "",
        f"| endpoint | p50 @{small_size} | p99 @{small_size} | p50 @{large_size} "
        f"| p99 @{large_size} | p50 ratio | p99 ratio |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    ok = True
    for name in small[1]:
        a, b = small[1][name], large[1][name]
        p50_ratio, p99_ratio = b.p50_ms / a.p50_ms, b.p99_ms / a.p99_ms
        ok = ok and p50_ratio <= TARGET_READ_RATIO
        lines.append(
            f"| {name} | {a.p50_ms:.2f} ms | {a.p99_ms:.2f} ms | {b.p50_ms:.2f} ms "
            f"| {b.p99_ms:.2f} ms | **{p50_ratio:.2f}** | {p99_ratio:.2f} |"
        )
    lines += [
        "",
        f"- {large_size} within {TARGET_READ_RATIO}x of {small_size} (p50): {verdict(ok)}",
    ]
    for total, (seeded, _latency) in measured.items():
        lines.append(
            f"- {total:,}: {seeded['records']:,} records of the organization "
            f"({seeded['all_records']:,} in the table) over {HISTORY_DAYS} days, 3 kinds, "
            f"{len(org.bot_ids)} bots + none; {seeded['daily_rows']:,} daily rollup rows, "
            f"{seeded['counter_rows']} month counters. Seeding took {seeded['insert_s']:.1f} s "
            f"(one INSERT ... SELECT generate_series), rollups {seeded['rollup_s']:.1f} s, "
            f"VACUUM ANALYZE + CHECKPOINT {seeded['analyze_s']:.1f} s"
        )
    return [*lines, ""]
