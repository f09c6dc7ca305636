"""Events per second through `POST /usage/records` (batches) vs `POST /usage/record`, and
the single record against what PostgreSQL alone does with its statement.

- `measure`: on the same server, one after the other, 16 connections each: single records
  (a fresh `Idempotency-Key` per request) and batches of 100 message events (a fresh key
  per event), for one organization; events per second, latency per call.
- `database_limit`: the app's single-record statement straight from 1, 2, 4 and 16
  client connections (`usage_record.record_statement_alone`), without HTTP, Flask or
  SQLAlchemy; the limit is the best of them.
- `section`: the report, with the two targets (batch ≥ 10 × single in events/s with p99
  per call < 200 ms; single ≥ 0.6 × the database-only limit) and a consistency check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench.harness import Load, LoadResult, Org, Target, log, run_wrk, verdict
from bench.usage_record import (
    IDEMPOTENCY_HEADER,
    RECORD_BODY,
    RECORD_PATH,
    DbOnly,
    record_statement_alone,
)

BATCH_PATH = "/api/v1/usage/records"
EVENTS_PER_CALL = 100
CONNECTIONS = 16
DATABASE_CLIENTS = (1, 2, 4, 16)

TARGET_BATCH_RATIO = 10.0
TARGET_BATCH_P99_MS = 200.0
TARGET_SINGLE_RATIO = 0.6


def single_target(org: Org) -> Target:
    return Target(
        RECORD_PATH,
        method="POST",
        body=RECORD_BODY,
        api_keys=(org.api_key,),
        idempotency_header=IDEMPOTENCY_HEADER,
        expect=201,
    )


def batch_target(org: Org) -> Target:
    """100 message events per call; wrk.lua gives every event a fresh idempotency key."""
    check = {"events": [{"kind": "message", "idempotency_key": "bench-batch-check"}]}
    return Target(
        BATCH_PATH,
        method="POST",
        body=json.dumps(check),  # the check request's; under load wrk.lua builds each body
        api_keys=(org.api_key,),
        batch_events=EVENTS_PER_CALL,
        expect=201,
    )


@dataclass(frozen=True)
class BatchRound:
    single: LoadResult
    batch: LoadResult

    @property
    def single_events(self) -> float:
        return self.single.rps

    @property
    def batch_events(self) -> float:
        return self.batch.rps * EVENTS_PER_CALL

    @property
    def ratio(self) -> float:
        return self.batch_events / self.single_events


def measure(port: int, load: Load, org: Org) -> BatchRound:
    """Single records, then batches, on the same server, each warmed up first."""
    load = Load(load.wrk, load.seconds, load.warmup, CONNECTIONS, load.threads)
    single, batch = single_target(org), batch_target(org)
    single.check(port)
    batch.check(port)
    results = []
    for target in (single, batch):
        if load.warmup:
            run_wrk(port, load, target, load.warmup)
        log(f"{target.name}, {CONNECTIONS} connections")
        results.append(run_wrk(port, load, target, load.seconds))
    return BatchRound(*results)


def database_limit(org: Org, seconds: int) -> list[DbOnly]:
    runs = []
    for clients in DATABASE_CLIENTS:
        log(f"database only: the record statement, {clients} clients")
        runs.append(record_statement_alone([org], clients, seconds))
    return runs


def section(
    result: BatchRound, limit_runs: list[DbOnly], counts: dict[str, int], load: Load
) -> list[str]:
    limit = max(limit_runs, key=lambda run: run.tps)
    single_ratio = result.single_events / limit.tps
    batch_ok = (
        result.ratio >= TARGET_BATCH_RATIO
        and result.batch.p99_ms < TARGET_BATCH_P99_MS
        and result.batch.non_2xx == 0
    )
    consistent = counts["records"] == counts["counter"] == counts["daily"]
    lines = [
        f"## POST {BATCH_PATH} ({EVENTS_PER_CALL} events per call) vs POST {RECORD_PATH}, "
        f"{CONNECTIONS} connections",
        "",
        "| endpoint | calls/s | events/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | errors "
        "| CPU ms/event app + db | other CPU |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run, per_call in ((result.single, 1), (result.batch, EVENTS_PER_CALL)):
        events = run.requests * per_call
        lines.append(
            f"| {run.name} | {run.rps:,.0f} | {run.rps * per_call:,.0f} | {run.p50_ms:.1f} "
            f"| {run.p90_ms:.1f} | {run.p99_ms:.1f} | {run.max_ms:.1f} | {run.non_2xx} "
            f"| {run.errors} | {run.cpu.app * 1000 / max(events, 1):.3f} + "
            f"{run.cpu.db * 1000 / max(events, 1):.3f} | {run.foreign_cpu:.0%} |"
        )
    lines += [
        "",
        "| the single-record statement alone (no HTTP, Flask or SQLAlchemy), 1 organization "
        "| clients | tx/s | mean latency ms |",
        "|---|--:|--:|--:|",
        *(
            f"| prepared, one transaction per record | {run.clients} | {run.tps:,.0f} "
            f"| {run.latency_ms:.1f} |"
            for run in limit_runs
        ),
        "",
        f"- Batch vs single, events/s: **{result.ratio:.1f} ×** ({result.batch_events:,.0f} vs "
        f"{result.single_events:,.0f}); p99 per batch call **{result.batch.p99_ms:.0f} ms** "
        f"(targets ≥ {TARGET_BATCH_RATIO:.0f} × and < {TARGET_BATCH_P99_MS:.0f} ms): "
        f"{verdict(batch_ok)}",
        f"- Single record vs the database-only limit ({limit.tps:,.0f} tx/s, at "
        f"{limit.clients} clients): **{single_ratio:.2f} ×** (target ≥ {TARGET_SINGLE_RATIO}): "
        f"{verdict(single_ratio >= TARGET_SINGLE_RATIO)}",
        f"- {load.warmup} s warm-up then {load.seconds} s per endpoint; one organization takes "
        "all the load; every event has its own idempotency key",
        f"- After the load: {counts['rows']:,} records (sum {counts['records']:,}), month "
        f"counter {counts['counter']:,}, daily rollup {counts['daily']:,}: "
        + ("consistent" if consistent else "**INCONSISTENT**"),
    ]
    return lines
