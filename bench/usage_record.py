"""`POST /api/v1/usage/record` under wrk, against the bare `GET /livez`, and what bounds it.

- `measure`: record vs bare on the same server (64 connections by default), one
  organization taking all the load; `consistency` then checks that records, the month
  counter and the daily rollup agree; `section` prints it with the targets.
- `diagnostics`: one change at a time (2 connections, 16 organizations,
  `synchronous_commit = off`, other gunicorn shapes).
- `database_only`: the app's own record statement, prepared, straight from 1..64
  client connections, without HTTP, Flask or SQLAlchemy.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.harness import (
    BARE,
    DB_NAME,
    PG_DSN,
    BenchError,
    Comparison,
    Load,
    Org,
    ServerConfig,
    Target,
    gunicorn,
    load_table,
    log,
    measure_against_bare,
    pg_cursor,
    verdict,
)

RECORD_PATH = "/api/v1/usage/record"
RECORD_BODY = json.dumps({"kind": "message", "quantity": 1})
IDEMPOTENCY_HEADER = "Idempotency-Key"
RATIO_HEADER = "record/bare"

TARGET_RATIO = 0.3
TARGET_P99_MS = 100.0

SHAPES = [
    ServerConfig("sync", 4, 1),
    ServerConfig("gthread", 1, 8),  # what `make run` starts
    ServerConfig("gthread", 2, 16),
    ServerConfig("gthread", 2, 16, 16),
]


def record_target(orgs: list[Org], idempotency: bool) -> Target:
    """A message per request, with the organizations' API keys in turn."""
    return Target(
        RECORD_PATH,
        method="POST",
        body=RECORD_BODY,
        api_keys=tuple(org.api_key for org in orgs),
        idempotency_header=IDEMPOTENCY_HEADER if idempotency else None,
        expect=201,
    )


def measure(port: int, load: Load, org: Org, label: str, idempotency: bool) -> Comparison:
    return measure_against_bare(port, load, record_target([org], idempotency), label)


def consistency(orgs: list[Org]) -> dict[str, int]:
    """After the load: every record counted once in the counter and in the rollup."""
    with pg_cursor() as cursor:
        cursor.execute(
            """
            SELECT (SELECT coalesce(sum(quantity), 0) FROM usage_records
                     WHERE organization_id = ANY(%(orgs)s)),
                   (SELECT coalesce(sum(used), 0) FROM usage_counters
                     WHERE organization_id = ANY(%(orgs)s)),
                   (SELECT coalesce(sum(quantity), 0) FROM usage_daily
                     WHERE organization_id = ANY(%(orgs)s)),
                   (SELECT count(*) FROM usage_records WHERE organization_id = ANY(%(orgs)s))
            """,
            {"orgs": [org.id for org in orgs]},
        )
        records, counter, daily, rows = cursor.fetchone()
    return {"records": int(records), "counter": int(counter), "daily": int(daily), "rows": rows}


def section(main: Comparison, counts: dict[str, int], load: Load, idempotency: bool) -> list[str]:
    record = main.measured
    ratio = main.ratio or 0.0
    consistent = counts["records"] == counts["counter"] == counts["daily"]
    lines = [
        f"## POST {RECORD_PATH} vs GET {BARE.path}, {load.connections} connections",
        "",
        *load_table([main], RATIO_HEADER),
        "",
        f"- Throughput record/bare: **{ratio:.2f}** (target ≥ {TARGET_RATIO}): "
        f"{verdict(ratio >= TARGET_RATIO)}",
        f"- Record p99: **{record.p99_ms:.1f} ms** (target < {TARGET_P99_MS:.0f} ms): "
        f"{verdict(record.p99_ms < TARGET_P99_MS and record.non_2xx == 0)}",
        f"- Each record: body `{RECORD_BODY}`, `X-API-Key`, "
        + (f"a fresh `{IDEMPOTENCY_HEADER}`" if idempotency else "no idempotency key")
        + "; one organization takes all the load, so its month counter and today's rollup "
        "row are single hot rows",
        f"- After the load: {counts['rows']:,} records (sum {counts['records']:,}), month "
        f"counter {counts['counter']:,}, daily rollup {counts['daily']:,}: "
        + ("consistent" if consistent else "**INCONSISTENT**"),
    ]
    if record.non_2xx or record.errors:
        lines.append(f"- **{record.non_2xx} non-2xx answers, {record.errors} socket errors**")
    return lines


# --- diagnostics ----------------------------------------------------------------------


def set_synchronous_commit(value: str | None) -> None:
    """For the bench database only; new connections pick it up (gunicorn is restarted)."""
    with pg_cursor() as cursor:
        if value is None:
            cursor.execute(f'ALTER DATABASE "{DB_NAME}" RESET synchronous_commit')
        else:
            cursor.execute(f'ALTER DATABASE "{DB_NAME}" SET synchronous_commit = {value}')


def diagnostics(
    config: ServerConfig,
    short: Load,
    write: Org,
    spread: list[Org],
    idempotency: bool,
    rounds: list[Comparison],
) -> None:
    """Short runs that show what bounds the record endpoint: one variable changed at a time.

    Appends to `rounds` as it goes, so what was measured survives a later failure."""
    one, many = record_target([write], idempotency), record_target(spread, idempotency)
    with gunicorn(config) as port:
        log("diagnostic: 2 connections (no queueing)")
        low = Load(short.wrk, short.seconds, short.warmup, 2, 2)
        rounds.append(measure_against_bare(port, low, one, "2 connections, 1 organization"))
        log(f"diagnostic: the load spread over {len(spread)} organizations")
        label = f"{short.connections} connections over {len(spread)} organizations"
        rounds.append(measure_against_bare(port, short, many, label, bare=False))
    log("diagnostic: synchronous_commit = off")
    set_synchronous_commit("off")
    try:
        with gunicorn(config) as port:
            label = "synchronous_commit = off"
            rounds.append(measure_against_bare(port, short, one, label, bare=False))
    finally:
        set_synchronous_commit(None)
    for shape in SHAPES:
        log(f"diagnostic: {shape.label}")
        with gunicorn(shape) as port:
            rounds.append(measure_against_bare(port, short, one, shape.label))


@dataclass(frozen=True)
class DbOnly:
    orgs: int
    clients: int
    tps: float
    latency_ms: float


def record_statement_alone(orgs: list[Org], clients: int, seconds: int) -> DbOnly:
    """The app's record statement (prepared, one transaction per record, as the app runs it)
    from `clients` connections, without HTTP, Flask or SQLAlchemy: what PostgreSQL does with
    it on this machine. Each client is a thread (psycopg2 releases the GIL while it waits)."""
    import psycopg2

    from webapp.bots.services import api_key_parts
    from webapp.usage.models import UsageKind
    from webapp.usage.services import RECORD_WITH_KEY, record_parameters

    keys = [api_key_parts(org.api_key) for org in orgs]
    counts: list[int] = [0] * clients
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        connection = psycopg2.connect(f"{PG_DSN} dbname={DB_NAME}")
        with connection.cursor() as cursor:
            cursor.execute(RECORD_WITH_KEY.prepare)
            while time.monotonic() < deadline:
                key = keys[counts[number] % len(keys)]
                assert key is not None
                parameters = record_parameters(
                    key,
                    UsageKind.MESSAGE,
                    1,
                    None,
                    f"db-{number}-{counts[number]}",
                    datetime.now(UTC),
                )
                cursor.execute(RECORD_WITH_KEY.execute, parameters)
                if cursor.fetchone() is None:
                    raise BenchError("the record statement refused a record")
                connection.commit()
                counts[number] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    total = sum(counts)
    if total == 0:
        raise BenchError("the record statement ran no transaction")
    return DbOnly(len(orgs), clients, total / elapsed, 1000 * clients * elapsed / total)


def database_only(
    write: Org, spread: list[Org], clients: tuple[int, ...], seconds: int
) -> list[str]:
    runs = []
    for orgs in ([write], spread):
        for n in clients:
            log(f"database only: the record statement, {len(orgs)} organization(s), {n} clients")
            runs.append(record_statement_alone(orgs, n, seconds))
    lines = [
        "| the record statement alone (no HTTP, Flask or SQLAlchemy) | organizations | clients "
        "| tx/s | mean latency ms |",
        "|---|--:|--:|--:|--:|",
    ]
    for run in runs:
        lines.append(
            f"| prepared, one transaction per record | {run.orgs} | {run.clients} "
            f"| {run.tps:,.0f} | {run.latency_ms:.1f} |"
        )
    return lines
