"""`make bench`: the usage API under gunicorn on this machine, in one command.

1. A fresh PostgreSQL database `saas_bench` (127.0.0.1, user postgres), migrated.
2. Organizations on the enterprise plan (unlimited: the quota never refuses), each
   with an API key: one takes the write load, one holds the seeded history, 16 more
   spread the write load in a diagnostic.
3. gunicorn `wsgi:app` (2 sync workers) on a free port of 127.0.0.1.
4. wrk, 64 connections: `GET /livez` (no database, no Redis: the framework's own
   ceiling) and `POST /api/v1/usage/record` back to back, then a consistency check
   (records = monthly counter = daily rollup).
5. `GET /api/v1/usage/stats` and `/history` latency, sequential requests, at 10^4
   and then 10^6 usage records of one organization, seeded with generate_series.
6. Diagnostics (skip with --quick): one variable changed at a time (concurrency,
   organizations, synchronous_commit, server shape), and the app's record statement
   run straight from a minimal client, without HTTP, Flask or SQLAlchemy.

Prints a Markdown report and writes it to bench/results/latest.md. Missed targets
are reported, not fatal; the exit status is non-zero only when something fails.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import psycopg2.extensions

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = ROOT / ".venv" / "bin"
RESULTS_DIR = BENCH_DIR / "results"
WRK_SCRIPT = BENCH_DIR / "wrk.lua"

DB_NAME = "saas_bench"
PG_DSN = os.environ.get("BENCH_PG_DSN", "host=127.0.0.1 port=5432 user=postgres")
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
)
SECRET_KEY = "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
SHANGHAI = ZoneInfo("Asia/Shanghai")

RECORD_PATH = "/api/v1/usage/record"
RECORD_BODY = json.dumps({"kind": "message", "quantity": 1})
IDEMPOTENCY_HEADER = "Idempotency-Key"
STATS_PATH = "/api/v1/usage/stats"
HISTORY_PATH = "/api/v1/usage/history"
BARE_PATH = "/livez"

TARGET_RATIO = 0.3
TARGET_P99_MS = 100.0
TARGET_READ_RATIO = 1.5
HISTORY_DAYS = 365
BOTS_PER_ORG = 3
SPREAD_ORGS = 16


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# --- configuration ------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    # Measured (see the diagnostics and bench/README.md): on 2 CPUs, two sync workers
    # record the most per second with the lowest p99; threads and more processes only
    # add contention (GIL, CPU, and the organization's hot counter row).
    worker_class: str = "sync"
    workers: int = 2
    threads: int = 1
    pool_size: int | None = None  # None: the app's own pool settings

    @property
    def label(self) -> str:
        shape = (
            f"sync × {self.workers}"
            if self.worker_class == "sync"
            else f"{self.worker_class} {self.workers} × {self.threads}"
        )
        if self.pool_size is not None:
            return f"{shape}, pool {self.pool_size}"
        return shape if self.worker_class == "sync" else f"{shape}, app pool (5 + 10 overflow)"


DEFAULT = ServerConfig()


def server_env(config: ServerConfig) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        APP_ENV="development",
        DATABASE_URL=DATABASE_URL,
        SECRET_KEY=SECRET_KEY,
        FLASK_RATELIMIT_ENABLED="false",
        REDIS_URL="",  # jobs run in-process; nothing on the hot path uses Redis
        FLASK_APP="wsgi",
        PYTHONDONTWRITEBYTECODE="1",
    )
    if config.pool_size is not None:
        env["FLASK_SQLALCHEMY_ENGINE_OPTIONS"] = json.dumps(
            {"pool_recycle": 1800, "pool_size": config.pool_size, "max_overflow": 0}
        )
    return env


# --- tools and database ---------------------------------------------------------


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    log("wrk is missing: installing Debian's package")
    if os.geteuid() != 0:
        raise BenchError("wrk is not installed; run `apt-get install -y wrk` as root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(install, env=env, check=True, stdout=subprocess.DEVNULL)
    wrk = shutil.which("wrk")
    if not wrk:
        raise BenchError("could not install wrk")
    return wrk


@contextmanager
def pg_cursor(dbname: str = DB_NAME) -> Iterator[psycopg2.extensions.cursor]:
    """An autocommit cursor (DROP/CREATE DATABASE and VACUUM refuse transaction blocks)."""
    import psycopg2  # from the project's .venv (see use_project_venv)

    try:
        connection = psycopg2.connect(f"{PG_DSN} dbname={dbname}")
    except psycopg2.OperationalError as exc:
        raise BenchError(
            f"PostgreSQL is not reachable ({PG_DSN}); start it (`make services`): {exc}"
        ) from exc
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


def recreate_database() -> None:
    with pg_cursor("postgres") as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{DB_NAME}"')


def migrate() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "db", "upgrade"],
        cwd=ROOT,
        env=server_env(ServerConfig()),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BenchError(f"flask db upgrade failed:\n{result.stdout}\n{result.stderr}")


@dataclass
class Org:
    id: int
    api_key: str
    api_key_id: int
    bot_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Accounts:
    write: Org  # takes the write load
    read: Org  # holds the seeded history
    spread: list[Org]  # more organizations, to spread the write load in a diagnostic


def seed_accounts(spread: int) -> Accounts:
    """One user owning enterprise organizations (unlimited: the quota never refuses)."""
    os.environ.update(server_env(ServerConfig()))
    sys.path.insert(0, str(ROOT))
    from webapp import create_app
    from webapp.auth.services import register_user
    from webapp.billing.services import grant_plan
    from webapp.bots.services import create_api_key, create_bot
    from webapp.extensions import db
    from webapp.orgs.services import create_organization, membership_for

    app = create_app("development")
    orgs = []
    with app.app_context():
        user = register_user("bench@example.com", "bench-password-0123456789", "Bench")
        names = [("Bench write", 0), ("Bench read", BOTS_PER_ORG)]
        names += [(f"Bench spread {n}", 0) for n in range(1, spread + 1)]
        for name, bots in names:
            organization = create_organization(user, name)
            grant_plan(organization.id, "enterprise", 12)
            membership = membership_for(user, organization.id)
            bot_ids = [create_bot(membership, f"bot {n}").id for n in range(1, bots + 1)]
            issued = create_api_key(membership, f"{name} key")
            orgs.append(Org(organization.id, issued.secret, issued.api_key.id, bot_ids))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return Accounts(orgs[0], orgs[1], orgs[2:])


# --- gunicorn -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_request(
    port: int, method: str, path: str, headers: dict[str, str] | None = None, body: str = ""
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextmanager
def gunicorn(config: ServerConfig) -> Iterator[int]:
    port = free_port()
    RESULTS_DIR.mkdir(exist_ok=True)
    command = [
        str(VENV_BIN / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(config.workers),
        "--worker-class",
        config.worker_class,
        "--threads",
        str(config.threads),
        "--backlog",
        "2048",
        "--log-level",
        "warning",
        "wsgi:app",
    ]
    with open(RESULTS_DIR / "gunicorn.log", "a") as server_log:
        server_log.write(f"\n=== {datetime.now(UTC).isoformat()} {config.label}\n")
        server_log.flush()
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=server_env(config),
            stdout=server_log,
            stderr=server_log,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                tail = (RESULTS_DIR / "gunicorn.log").read_text().strip().splitlines()[-3:]
                raise BenchError(
                    f"gunicorn exited ({process.returncode}): {' / '.join(tail)} "
                    "(bench/results/gunicorn.log)"
                )
            try:
                if http_request(port, "GET", BARE_PATH)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("gunicorn did not answer /livez within 30 s")
            time.sleep(0.2)
        yield port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- the machine -----------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_ticks() -> dict[int, tuple[int, str]]:
    """CPU ticks (user + system) and command line of every process now running."""
    ticks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        ticks[int(entry.name)] = (int(fields[11]) + int(fields[12]), cmdline)
    return ticks


def _category(cmdline: str, port: int) -> str:
    if "gunicorn" in cmdline and f"127.0.0.1:{port}" in cmdline:
        return "app"
    if cmdline.startswith("postgres:") and (
        DB_NAME in cmdline  # the backends serving saas_bench
        or any(aux in cmdline for aux in ("walwriter", "background writer", "checkpointer"))
    ):
        return "db"
    if cmdline.startswith("wrk") or "/wrk " in cmdline:
        return "wrk"
    return "other"


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds per category over a measurement (processes that exited meanwhile are lost)."""

    seconds: float
    app: float  # our gunicorn master and workers
    db: float  # PostgreSQL backends of saas_bench, WAL writer, background writer, checkpointer
    wrk: float
    other: float  # everything else on the machine: it skews the figures

    def share(self, cpu_seconds: float) -> float:
        return cpu_seconds / (self.seconds * (os.cpu_count() or 1))


@dataclass
class CpuMeter:
    port: int
    started: float = 0.0
    before: dict[int, tuple[int, str]] = field(default_factory=dict)

    def start(self) -> None:
        self.started, self.before = time.monotonic(), _process_ticks()

    def stop(self) -> CpuUse:
        elapsed = time.monotonic() - self.started
        used = dict.fromkeys(("app", "db", "wrk", "other"), 0)
        for pid, (ticks, cmdline) in _process_ticks().items():
            used[_category(cmdline, self.port)] += ticks - self.before.get(pid, (0, ""))[0]
        return CpuUse(elapsed, **{k: v / CLOCK_TICKS for k, v in used.items()})


def cpu_busy(seconds: float = 2.0) -> float:
    """The share of all CPUs busy over `seconds` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = values[3] + values[4]
        return sum(values) - idle, sum(values)

    busy_a, total_a = sample()
    time.sleep(seconds)
    busy_b, total_b = sample()
    return (busy_b - busy_a) / max(total_b - total_a, 1)


def wait_for_quiet(max_wait: int, threshold: float = 0.15) -> float:
    """Wait (bounded) until the machine is mostly idle: others' CPU use skews every figure."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy > threshold and time.monotonic() < deadline:
        log(f"the machine is {busy:.0%} busy with other work; waiting for it to calm down")
        time.sleep(8)
        busy = cpu_busy()
    return busy


# --- wrk ------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors and timeouts
    non_2xx: int
    cpu: CpuUse

    @property
    def foreign_cpu(self) -> float:
        return self.cpu.share(self.cpu.other)

    def cpu_ms(self, cpu_seconds: float) -> float:
        """CPU milliseconds per request."""
        return cpu_seconds * 1000 / max(self.requests, 1)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def run_wrk(
    wrk: str,
    port: int,
    path: str,
    seconds: int,
    connections: int,
    threads: int,
    extra_env: dict[str, str],
) -> LoadResult:
    env = dict(os.environ, BENCH_METHOD="GET", BENCH_BODY="", BENCH_API_KEY="")
    env.update(extra_env)
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}{path}",
    ]
    meter = CpuMeter(port)
    meter.start()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    cpu = meter.stop()
    if result.returncode != 0:
        raise BenchError(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise BenchError(f"wrk printed no summary:\n{result.stdout}\n{result.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return LoadResult(
        name=f"{extra_env.get('BENCH_METHOD', 'GET')} {path}",
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=data["connect_errors"]
        + data["read_errors"]
        + data["write_errors"]
        + data["timeouts"],
        non_2xx=data["non_2xx"],
        cpu=cpu,
    )


def record_env(orgs: list[Org], idempotency: bool) -> dict[str, str]:
    env = {
        "BENCH_METHOD": "POST",
        "BENCH_BODY": RECORD_BODY,
        "BENCH_API_KEYS": ",".join(org.api_key for org in orgs),
    }
    if idempotency:
        env["BENCH_IDEMPOTENCY_HEADER"] = IDEMPOTENCY_HEADER
    return env


def check_record_endpoint(port: int, org: Org) -> None:
    status, body = http_request(
        port,
        "POST",
        RECORD_PATH,
        {"X-API-Key": org.api_key, "Content-Type": "application/json"},
        RECORD_BODY,
    )
    if status != 201:
        raise BenchError(f"POST {RECORD_PATH} answered {status}, not 201: {body[:500]!r}")


def wait_for_record_endpoint(wait_seconds: int, org: Org, config: ServerConfig) -> None:
    """Poll until the usage API serves POST /usage/record (it may still be being written)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with gunicorn(config) as port:
                check_record_endpoint(port, org)
                return
        except BenchError as exc:
            if time.monotonic() > deadline:
                raise
            log(f"record endpoint not ready ({exc}); retrying in 30 s")
            time.sleep(30)


@dataclass(frozen=True)
class Load:
    """How wrk drives the server: the same for every measured pair."""

    wrk: str
    seconds: int
    warmup: int
    connections: int
    threads: int
    idempotency: bool

    def shorter(self, seconds: int, warmup: int) -> Load:
        return Load(self.wrk, seconds, warmup, self.connections, self.threads, self.idempotency)


@dataclass(frozen=True)
class WriteRound:
    label: str
    bare: LoadResult | None
    record: LoadResult

    @property
    def ratio(self) -> float | None:
        return None if self.bare is None else self.record.rps / self.bare.rps


def measure_pair(
    port: int, load: Load, orgs: list[Org], label: str, *, bare: bool = True
) -> WriteRound:
    """`GET /livez` then `POST /usage/record`, back to back on the same server."""
    check_record_endpoint(port, orgs[0])
    write_env = record_env(orgs, load.idempotency)
    args = (load.connections, load.threads)
    if load.warmup:
        if bare:
            run_wrk(load.wrk, port, BARE_PATH, load.warmup, *args, {})
        run_wrk(load.wrk, port, RECORD_PATH, load.warmup, *args, write_env)
    bare_result = run_wrk(load.wrk, port, BARE_PATH, load.seconds, *args, {}) if bare else None
    record = run_wrk(load.wrk, port, RECORD_PATH, load.seconds, *args, write_env)
    return WriteRound(label, bare_result, record)


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


def set_synchronous_commit(value: str | None) -> None:
    """For the bench database only; new connections pick it up (gunicorn is restarted)."""
    with pg_cursor() as cursor:
        if value is None:
            cursor.execute(f'ALTER DATABASE "{DB_NAME}" RESET synchronous_commit')
        else:
            cursor.execute(f'ALTER DATABASE "{DB_NAME}" SET synchronous_commit = {value}')


def diagnostics(
    config: ServerConfig, load: Load, accounts: Accounts, rounds: list[WriteRound]
) -> None:
    """Short runs that show what bounds the record endpoint: one variable changed at a time."""
    short = load.shorter(8, 2)
    with gunicorn(config) as port:
        log("diagnostic: 2 connections (no queueing)")
        low = Load(load.wrk, 8, 2, 2, 2, load.idempotency)
        rounds.append(measure_pair(port, low, [accounts.write], "2 connections, 1 organization"))
        log(f"diagnostic: the load spread over {len(accounts.spread)} organizations")
        rounds.append(
            measure_pair(
                port,
                short,
                accounts.spread,
                f"{load.connections} connections over {len(accounts.spread)} organizations",
                bare=False,
            )
        )
    log("diagnostic: synchronous_commit = off")
    set_synchronous_commit("off")
    try:
        with gunicorn(config) as port:
            rounds.append(
                measure_pair(port, short, [accounts.write], "synchronous_commit = off", bare=False)
            )
    finally:
        set_synchronous_commit(None)
    for shape in SHAPES:
        log(f"diagnostic: {shape.label}")
        with gunicorn(shape) as port:
            rounds.append(measure_pair(port, short, [accounts.write], shape.label))


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
    import threading

    import psycopg2

    from webapp.bots.services import api_key_parts
    from webapp.usage.models import UsageKind
    from webapp.usage.services import (
        EXECUTE_RECORD_WITH_KEY,
        PREPARE_RECORD_WITH_KEY,
        record_parameters,
    )

    keys = [api_key_parts(org.api_key) for org in orgs]
    counts: list[int] = [0] * clients
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        connection = psycopg2.connect(f"{PG_DSN} dbname={DB_NAME}")
        with connection.cursor() as cursor:
            cursor.execute(PREPARE_RECORD_WITH_KEY)
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
                cursor.execute(EXECUTE_RECORD_WITH_KEY, parameters)
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


def database_only(accounts: Accounts, clients: tuple[int, ...], seconds: int) -> list[str]:
    runs = []
    for orgs in ([accounts.write], accounts.spread):
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


def write_report(report: list[str]) -> None:
    text = "\n".join(report) + "\n"
    print(text)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "latest.md").write_text(text)
    log(f"written to {RESULTS_DIR / 'latest.md'}; database {DB_NAME} kept for inspection")


SHAPES = [
    ServerConfig("sync", 4, 1),
    ServerConfig("gthread", 1, 8),  # what `make run` starts
    ServerConfig("gthread", 2, 16),
    ServerConfig("gthread", 2, 16, 16),
]


# --- reads at 10^4 and 10^6 records -----------------------------------------------

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


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    mean_ms: float


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def measure_reads(port: int, org: Org, count: int, today: date) -> dict[str, Latency]:
    results: dict[str, Latency] = {}
    headers = {"X-API-Key": org.api_key}
    for name, path in read_queries(today).items():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        samples = []
        for n in range(count + count // 10):  # the first tenth warms up
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise BenchError(f"GET {path} answered {response.status}: {body[:500]!r}")
            if response.getheader("Connection", "").lower() == "close" or response.will_close:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            if n >= count // 10:
                samples.append(elapsed)
        connection.close()
        results[name] = Latency(
            percentile(samples, 0.50), percentile(samples, 0.99), statistics.fmean(samples)
        )
    return results


# --- report -------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def environment_lines(config: ServerConfig, args: argparse.Namespace) -> list[str]:
    with pg_cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), current_setting('synchronous_commit')"
        )
        pg_version, sync_commit = cursor.fetchone()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return [
        f"- Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit or '?'} (+ working tree)",
        f"- Machine: {os.cpu_count()} CPUs ({cpu}); PostgreSQL {pg_version}, "
        f"synchronous_commit={sync_commit}; Python {platform.python_version()}",
        f"- Server: gunicorn `wsgi:app`, {config.label}; rate limiting off; no Redis",
        f"- Load: wrk -t{args.wrk_threads} -c{args.connections}, {args.warmup} s warm-up then "
        f"{args.duration} s per endpoint, on the same machine (wrk, gunicorn and PostgreSQL "
        "share the 2 CPUs)",
    ]


def write_table(rounds: list[WriteRound]) -> list[str]:
    lines = [
        "| run | endpoint | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | errors |"
        " CPUs busy | CPU ms/req app + db | other CPU | record/bare |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rounds:
        rows = [(r.bare, ""), (r.record, "" if r.ratio is None else f"**{r.ratio:.2f}**")]
        for result, ratio in rows:
            if result is None:
                continue
            cpu = result.cpu
            lines.append(
                f"| {r.label} | {result.name} | {result.rps:,.0f} | {result.p50_ms:.1f} "
                f"| {result.p90_ms:.1f} | {result.p99_ms:.1f} | {result.max_ms:.1f} "
                f"| {result.non_2xx} | {result.errors} "
                f"| {result.cpu.share(cpu.app + cpu.db + cpu.wrk + cpu.other):.0%} "
                f"| {result.cpu_ms(cpu.app):.2f} + {result.cpu_ms(cpu.db):.2f} "
                f"| {result.foreign_cpu:.0%} | {ratio} |"
            )
    return lines


def reads_section(port: int, org: Org, count: int) -> list[str]:
    now = datetime.now(UTC)
    today = now.astimezone(SHANGHAI).date()
    sizes: dict[int, tuple[dict[str, float], dict[str, Latency]]] = {}
    for total in (10**4, 10**6):
        log(f"reads: seeding organization {org.id} to {total:,} records")
        seeded = grow_records(org, total, now)
        log(
            f"seeded in {seeded['insert_s']:.1f} s + rollups {seeded['rollup_s']:.1f} s"
            f" + vacuum analyze, checkpoint {seeded['analyze_s']:.1f} s; measuring"
        )
        sizes[total] = (seeded, measure_reads(port, org, count, today))
    small, large = sizes[10**4], sizes[10**6]
    lines = [
        f"## Reads at 10^4 and 10^6 usage records ({count} sequential requests each, "
        "one organization, API key)",
        "",
        "| endpoint | p50 @10^4 | p99 @10^4 | p50 @10^6 | p99 @10^6 | p50 ratio | p99 ratio |",
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
    lines += ["", f"- 10^6 within {TARGET_READ_RATIO}x of 10^4 (p50): {verdict(ok)}"]
    for total, (seeded, _latency) in sizes.items():
        lines.append(
            f"- {total:,}: {seeded['records']:,} records of the organization "
            f"({seeded['all_records']:,} in the table) over {HISTORY_DAYS} days, 3 kinds, "
            f"{BOTS_PER_ORG} bots + none; {seeded['daily_rows']:,} daily rollup rows, "
            f"{seeded['counter_rows']} month counters. Seeding took {seeded['insert_s']:.1f} s "
            f"(one INSERT ... SELECT generate_series), rollups {seeded['rollup_s']:.1f} s, "
            f"VACUUM ANALYZE + CHECKPOINT {seeded['analyze_s']:.1f} s"
        )
    return [*lines, ""]


def use_project_venv() -> None:
    """Run under the project's .venv (psycopg2, the app), whatever python started us."""
    venv = ROOT / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        if not (VENV_BIN / "python").exists():
            raise BenchError("no .venv: run `make bench` (it sets the environment up)")
        os.execv(str(VENV_BIN / "python"), [str(VENV_BIN / "python"), __file__, *sys.argv[1:]])


def main() -> int:
    use_project_venv()
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
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
    parser.add_argument(
        "--quick", action="store_true", help="skip the diagnostics (about 2 minutes)"
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

    started = time.monotonic()
    config = ServerConfig(args.worker_class, args.workers, args.threads, args.pool_size or None)
    load = Load(
        ensure_wrk(),
        args.duration,
        args.warmup,
        args.connections,
        args.wrk_threads,
        not args.no_idempotency,
    )
    log(f"fresh database {DB_NAME}")
    recreate_database()
    migrate()
    accounts = seed_accounts(spread=SPREAD_ORGS)
    log(f"seeded {2 + SPREAD_ORGS} organizations on the enterprise plan")
    if args.wait_for_api:
        wait_for_record_endpoint(args.wait_for_api, accounts.write, config)

    busy = wait_for_quiet(args.quiet_wait)
    report = [
        "# Usage API benchmark",
        "",
        *environment_lines(config, args),
        f"- Before the run the CPUs were {busy:.0%} busy with other work. `CPUs busy`: both "
        "CPUs' use during a measurement; `CPU ms/req`: CPU time per request of the gunicorn "
        "processes and of PostgreSQL; `other CPU`: what processes other than the benchmark's "
        "took meanwhile (above ~10% the row is skewed).",
        "",
    ]

    log(f"write load: {config.label}")
    with gunicorn(config) as port:
        main_round = measure_pair(port, load, [accounts.write], config.label)
        counts = consistency([accounts.write])
        reads = [] if args.skip_reads else reads_section(port, accounts.read, args.reads)
    consistent = counts["records"] == counts["counter"] == counts["daily"]
    record = main_round.record
    ratio = main_round.ratio or 0.0
    report += [
        f"## POST {RECORD_PATH} vs GET {BARE_PATH}, {args.connections} connections",
        "",
        *write_table([main_round]),
        "",
        f"- Throughput record/bare: **{ratio:.2f}** (target ≥ {TARGET_RATIO}): "
        f"{verdict(ratio >= TARGET_RATIO)}",
        f"- Record p99: **{record.p99_ms:.1f} ms** (target < {TARGET_P99_MS:.0f} ms): "
        f"{verdict(record.p99_ms < TARGET_P99_MS and record.non_2xx == 0)}",
        f"- Each record: body `{RECORD_BODY}`, `X-API-Key`, "
        + ("no idempotency key" if args.no_idempotency else f"a fresh `{IDEMPOTENCY_HEADER}`")
        + "; one organization takes all the load, so its month counter and today's rollup "
        "row are single hot rows",
        f"- After the load: {counts['rows']:,} records (sum {counts['records']:,}), month "
        f"counter {counts['counter']:,}, daily rollup {counts['daily']:,}: "
        + ("consistent" if consistent else "**INCONSISTENT**"),
    ]
    if record.non_2xx or record.errors:
        report.append(f"- **{record.non_2xx} non-2xx answers, {record.errors} socket errors**")
    report += ["", *reads]

    status = 0
    if not args.quick:
        report += ["## What bounds the record endpoint (8 s runs, one change at a time)", ""]
        rounds: list[WriteRound] = []
        try:
            diagnostics(config, load, accounts, rounds)
        except BenchError as exc:  # keep what was measured; say what failed
            log(f"error: {exc}")
            report += [f"**A diagnostic failed:** {exc}", ""]
            status = 1
        report += [*write_table(rounds), ""]
        try:
            report += [*database_only(accounts, (1, 2, 4, 64), 5), ""]
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
