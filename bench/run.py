"""`make bench`: the usage API under gunicorn on this machine, in one command.

1. A fresh PostgreSQL database `saas_bench` (127.0.0.1, user postgres), migrated.
2. Organizations on the enterprise plan (unlimited: the quota never refuses), each
   with an API key: one takes the write load, one holds the seeded history, one takes
   the batches, one has a bot with an FAQ and conversations for the messages, 16 more
   spread the write load in a diagnostic.
3. gunicorn `wsgi:app --preload` (2 sync workers) on a free port of 127.0.0.1.
4. usage_record.py: wrk, 64 connections: `GET /livez` (no database, no Redis: the
   framework's own ceiling) and `POST /api/v1/usage/record` back to back, then a
   consistency check (records = monthly counter = daily rollup).
5. usage_batch.py: events per second through `POST /api/v1/usage/records` (100 events
   per call) vs `POST /api/v1/usage/record`, 16 connections each; then the single
   record's statement alone from 1 to 16 clients (the database-only limit).
6. usage_reads.py: `GET /api/v1/usage/stats` and `/history` latency, sequential
   requests, at 10^4 and then 10^6 usage records of one organization.
7. messages.py: a customer's message, `POST /api/v1/conversations/{id}/messages` (API
   key, answer, metering, storage), 32 connections, against `GET /livez`; then stored
   messages = metered messages (skip with --skip-messages).
8. Diagnostics (skip with --quick): one variable changed at a time (concurrency,
   organizations, synchronous_commit, server shape), and the app's record statement
   run straight from a minimal client, without HTTP, Flask or SQLAlchemy.

Everything runs in one process and one run, so the ratios compare figures taken side by
side. Prints a Markdown report and writes it to bench/results/latest.md. Missed targets
are reported, not fatal; the exit status is non-zero only when something fails.
`--smoke` runs every step in a couple of minutes with figures that mean nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import messages, usage_batch, usage_reads, usage_record  # noqa: E402
from bench.harness import (  # noqa: E402
    DB_NAME,
    BenchError,
    Comparison,
    Load,
    ServerConfig,
    ensure_wrk,
    environment_lines,
    gunicorn,
    load_table,
    log,
    recreate_database,
    seed_organizations,
    use_project_venv,
    wait_for_endpoint,
    wait_for_quiet,
    write_report,
)

SPREAD_ORGS = 16
DEFAULT = ServerConfig()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured endpoint")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per endpoint")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--worker-class", default=DEFAULT.worker_class, choices=["gthread", "sync"])
    parser.add_argument("--workers", type=int, default=DEFAULT.workers)
    parser.add_argument("--threads", type=int, default=DEFAULT.threads)
    parser.add_argument(
        "--pool-size", type=int, default=0, help="SQLAlchemy pool per worker; 0 = the app's own"
    )
    parser.add_argument("--reads", type=int, default=500, help="sequential requests per read")
    parser.add_argument(
        "--no-idempotency", action="store_true", help="POST without an Idempotency-Key header"
    )
    parser.add_argument("--skip-reads", action="store_true")
    parser.add_argument("--skip-messages", action="store_true")
    parser.add_argument(
        "--quick", action="store_true", help="skip the diagnostics (about 2 minutes)"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="check that every step works: 2 s runs, 20 reads at 10^3 and 10^4 records, "
        "no waiting for a quiet machine (the figures mean nothing)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=int,
        default=180,
        help="seconds to wait, at most, for other work on the machine to finish first",
    )
    parser.add_argument(
        "--wait-for-api", type=int, default=0, help="seconds to wait for the record endpoint"
    )
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.warmup, args.reads, args.quiet_wait = 2, 1, 20, 0
    return args


def main() -> int:
    use_project_venv()
    args = parse_args()
    started = time.monotonic()
    config = ServerConfig(args.worker_class, args.workers, args.threads, args.pool_size or None)
    load = Load(ensure_wrk(), args.duration, args.warmup, args.connections, args.wrk_threads)
    idempotency = not args.no_idempotency
    # Diagnostics: shorter runs; the record statement alone: seconds per client count.
    short, db_seconds = (load.shorter(2, 1), 1) if args.smoke else (load.shorter(8, 2), 5)
    read_sizes = (10**3, 10**4) if args.smoke else usage_reads.SIZES

    log(f"fresh database {DB_NAME}")
    recreate_database()
    write, read, batches, talk, *spread = seed_organizations(
        [
            ("Bench write", 0),
            ("Bench read", usage_reads.BOTS_PER_ORG),
            ("Bench batch", 0),
            ("Bench messages", 1),
        ]
        + [(f"Bench spread {n}", 0) for n in range(1, SPREAD_ORGS + 1)]
    )
    log(f"seeded {4 + SPREAD_ORGS} organizations on the enterprise plan")
    talk_setup = None if args.skip_messages else messages.seed(talk)
    if talk_setup is not None:
        log(f"seeded {messages.FAQ_ENTRIES} FAQ entries and {messages.CONVERSATIONS} conversations")
    if args.wait_for_api:
        target = usage_record.record_target([write], idempotency)
        wait_for_endpoint(args.wait_for_api, target, config)

    busy = wait_for_quiet(args.quiet_wait)
    report = [
        "# Usage API benchmark",
        "",
        *environment_lines(config, load),
        f"- Before the run the CPUs were {busy:.0%} busy with other work. `CPUs busy`: both "
        "CPUs' use during a measurement; `CPU ms/req`: CPU time per request of the gunicorn "
        "processes and of PostgreSQL; `other CPU`: what processes other than the benchmark's "
        "took meanwhile (above ~10% the row is skewed).",
        "",
    ]

    log(f"write load: {config.label}")
    with gunicorn(config) as port:
        main_round = usage_record.measure(port, load, write, config.label, idempotency)
        counts = usage_record.consistency([write])
        batch_round = usage_batch.measure(port, load, batches)
        batch_counts = usage_record.consistency([batches])
        if talk_setup is not None:
            talk_round = messages.measure(port, load, talk_setup, config.label)
            talk_counts = messages.consistency(talk)
        reads = [] if args.skip_reads else usage_reads.section(port, read, args.reads, read_sizes)
    limit = usage_batch.database_limit(batches, db_seconds)
    report += [*usage_record.section(main_round, counts, load, idempotency), ""]
    report += [*usage_batch.section(batch_round, limit, batch_counts, load), ""]
    if talk_setup is not None:
        report += [*messages.section(talk_round, talk_counts, talk_setup), ""]
    report += reads

    status = 0
    if not args.quick:
        title = f"## What bounds the record endpoint ({short.seconds} s runs, one change at a time)"
        report += [title, ""]
        rounds: list[Comparison] = []
        try:
            usage_record.diagnostics(config, short, write, spread, idempotency, rounds)
        except BenchError as exc:  # keep what was measured; say what failed
            log(f"error: {exc}")
            report += [f"**A diagnostic failed:** {exc}", ""]
            status = 1
        report += [*load_table(rounds, usage_record.RATIO_HEADER), ""]
        try:
            report += [*usage_record.database_only(write, spread, (1, 2, 4, 64), db_seconds), ""]
        except BenchError as exc:
            log(f"error: {exc}")
            report += [f"**The database-only diagnostic failed:** {exc}", ""]
            status = 1

    report.append(f"Total run time: {time.monotonic() - started:.0f} s.")
    write_report(report)
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log(f"error: {exc}")
        sys.exit(1)
