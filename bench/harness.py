"""The shared harness of `make bench`: database, gunicorn, wrk, CPU accounting, the report.

A benchmark module (`usage_record.py`, `usage_reads.py`, ...) uses it to
- seed organizations with API keys: `seed_organizations([("Name", bots), ...])`;
- serve the app: `with gunicorn(ServerConfig()) as port:` (waits for `/livez`);
- drive an endpoint with wrk next to the bare endpoint, in the same run:
  `measure_against_bare(port, load, Target(...), label)` gives a `Comparison` with
  throughput, latency, CPU per request and the ratio to `GET /livez`;
- time sequential requests: `sequential_latency(port, path, headers, count)`;
- print its part of the Markdown report: `load_table(...)`, `verdict(...)`.

How to add one: docs/benchmarks.md ("Adding a benchmark").
"""

from __future__ import annotations

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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg2.extensions

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = ROOT / ".venv" / "bin"
RESULTS_DIR = BENCH_DIR / "results"
WRK_SCRIPT = BENCH_DIR / "wrk.lua"

DB_NAME = os.environ.get("BENCH_DB_NAME", "saas_bench")  # recreated on every run
PG_DSN = os.environ.get("BENCH_PG_DSN", "host=127.0.0.1 port=5432 user=postgres")
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
)
SECRET_KEY = "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


def use_project_venv() -> None:
    """Run under the project's .venv (psycopg2, the app), whatever python started us."""
    venv = ROOT / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        if not (VENV_BIN / "python").exists():
            raise BenchError("no .venv: run `make bench` (it sets the environment up)")
        script = str(Path(sys.argv[0]).resolve())
        os.execv(str(VENV_BIN / "python"), [str(VENV_BIN / "python"), script, *sys.argv[1:]])


# --- configuration ------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    # Measured (see the diagnostics and docs/benchmarks.md): on 2 CPUs, two sync workers
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
    """A fresh `saas_bench`, migrated (the migration seeds the plans)."""
    with pg_cursor("postgres") as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{DB_NAME}"')
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


def seed_organizations(specs: list[tuple[str, int]], plan: str = "enterprise") -> list[Org]:
    """One user owning an organization per (name, number of bots), each with an API key.

    The enterprise plan is unlimited, so the quota never refuses a request under load."""
    os.environ.update(server_env(ServerConfig()))
    if str(ROOT) not in sys.path:
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
        for name, bots in specs:
            organization = create_organization(user, name)
            grant_plan(organization.id, plan, 12)
            membership = membership_for(user, organization.id)
            bot_ids = [create_bot(membership, f"bot {n}").id for n in range(1, bots + 1)]
            issued = create_api_key(membership, f"{name} key")
            orgs.append(Org(organization.id, issued.secret, issued.api_key.id, bot_ids))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return orgs


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
    """gunicorn `wsgi:app` on a free port of 127.0.0.1, once it answers `/livez`."""
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
        "--preload",  # as deployed: the sentence encoder is loaded once, before the fork
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
                if http_request(port, "GET", BARE.path)[0] == 200:
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
class Target:
    """One endpoint as wrk drives it (wrk.lua reads these from its environment)."""

    path: str  # with `paths`: what the report calls them, e.g. `/conversations/{id}`
    method: str = "GET"
    body: str = ""  # JSON, sent with Content-Type: application/json
    api_keys: tuple[str, ...] = ()  # sent as X-API-Key, one after the other, request by request
    idempotency_header: str | None = None  # when set, a fresh value on every request
    batch_events: int = 0  # when set, each request's body is a usage batch of that many events
    paths: tuple[str, ...] = ()  # when set, the request paths in turn (instead of `path`)
    bodies: tuple[str, ...] = ()  # when set, the JSON bodies in turn (instead of `body`)
    expect: int = 200  # the status of the check request sent before the load

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def first_path(self) -> str:
        return self.paths[0] if self.paths else self.path

    def wrk_env(self) -> dict[str, str]:
        env = {
            "BENCH_METHOD": self.method,
            "BENCH_BODY": self.body,
            "BENCH_API_KEYS": ",".join(self.api_keys),
        }
        if self.idempotency_header:
            env["BENCH_IDEMPOTENCY_HEADER"] = self.idempotency_header
        if self.batch_events:
            env["BENCH_BATCH_EVENTS"] = str(self.batch_events)
        if self.paths:
            env["BENCH_PATHS"] = ",".join(self.paths)
        if self.bodies:
            RESULTS_DIR.mkdir(exist_ok=True)
            bodies = RESULTS_DIR / "wrk-bodies.jsonl"  # too large for the environment
            bodies.write_text("\n".join(self.bodies) + "\n")
            env["BENCH_BODIES_FILE"] = str(bodies)
        return env

    def check(self, port: int) -> None:
        """One request as wrk will send it (first key, no idempotency key): is it served?"""
        headers = {"X-API-Key": self.api_keys[0]} if self.api_keys else {}
        request_body = self.bodies[0] if self.bodies else self.body
        if request_body:
            headers["Content-Type"] = "application/json"
        status, body = http_request(port, self.method, self.first_path, headers, request_body)
        if status != self.expect:
            raise BenchError(f"{self.name} answered {status}, not {self.expect}: {body[:500]!r}")


BARE = Target("/livez")  # no database, no Redis: what Flask + gunicorn cost alone


@dataclass(frozen=True)
class Load:
    """How wrk drives the server: the same for every measured pair."""

    wrk: str
    seconds: int
    warmup: int
    connections: int
    threads: int

    def shorter(self, seconds: int, warmup: int) -> Load:
        return Load(self.wrk, seconds, warmup, self.connections, self.threads)


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


def run_wrk(port: int, load: Load, target: Target, seconds: int) -> LoadResult:
    env = dict(os.environ, **target.wrk_env())
    command = [
        load.wrk,
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}{target.first_path}",
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
        name=target.name,
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


@dataclass(frozen=True)
class Comparison:
    """An endpoint under load and, measured just before it on the same server, the bare one."""

    label: str
    bare: LoadResult | None
    measured: LoadResult

    @property
    def ratio(self) -> float | None:
        return None if self.bare is None else self.measured.rps / self.bare.rps


def measure_against_bare(
    port: int, load: Load, target: Target, label: str, *, bare: bool = True
) -> Comparison:
    """`GET /livez` then `target`, back to back on the same server (each warmed up first)."""
    target.check(port)
    if load.warmup:
        if bare:
            run_wrk(port, load, BARE, load.warmup)
        run_wrk(port, load, target, load.warmup)
    bare_result = run_wrk(port, load, BARE, load.seconds) if bare else None
    return Comparison(label, bare_result, run_wrk(port, load, target, load.seconds))


def wait_for_endpoint(wait_seconds: int, target: Target, config: ServerConfig) -> None:
    """Poll until a fresh server serves `target` (it may still be being written)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with gunicorn(config) as port:
                target.check(port)
                return
        except BenchError as exc:
            if time.monotonic() > deadline:
                raise
            log(f"{target.name} not ready ({exc}); retrying in 30 s")
            time.sleep(30)


# --- sequential requests ------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    mean_ms: float


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def sequential_latency(port: int, path: str, headers: dict[str, str], count: int) -> Latency:
    """`count` GETs one after the other on a kept-alive connection, after a tenth as warm-up."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    samples = []
    for n in range(count + count // 10):
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
    return Latency(percentile(samples, 0.50), percentile(samples, 0.99), statistics.fmean(samples))


# --- report -------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def environment_lines(config: ServerConfig, load: Load) -> list[str]:
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
        f"- Load: wrk -t{load.threads} -c{load.connections}, {load.warmup} s warm-up then "
        f"{load.seconds} s per endpoint, on the same machine (wrk, gunicorn and PostgreSQL "
        "share the 2 CPUs)",
    ]


def load_table(rounds: list[Comparison], ratio_header: str = "÷ bare") -> list[str]:
    """One row per wrk run: throughput, latency, errors, CPU per request, the ratio to bare."""
    lines = [
        "| run | endpoint | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | errors |"
        f" CPUs busy | CPU ms/req app + db | other CPU | {ratio_header} |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rounds:
        rows = [(r.bare, ""), (r.measured, "" if r.ratio is None else f"**{r.ratio:.2f}**")]
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


def write_report(report: list[str]) -> None:
    text = "\n".join(report) + "\n"
    print(text)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "latest.md").write_text(text)
    log(f"written to {RESULTS_DIR / 'latest.md'}; database {DB_NAME} kept for inspection")
