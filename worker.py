"""RQ worker with its schedulers: `python worker.py [--burst] [--no-cron] [queue ...]`.

Jobs are plain functions in each feature's `tasks.py`, taking ids only; each
runs inside an application context (see `AppContextWorker`).

Periodic jobs (`CRON_JOBS`) are enqueued by rq's `CronScheduler`, run in a child
process next to the worker so that `python worker.py` stays the one command; delayed
jobs (`enqueue_in`) are moved to their queue by rq's own scheduler, another child.
Both children die with the worker, even when it is killed (SIGKILL): the kernel sends
them SIGTERM (`die_with_parent`), they stop and release their Redis locks; a lock
left by a child killed outright expires within a minute.
Every periodic job is idempotent, so running more than one worker (each with
its scheduler) only repeats work that finds nothing left to do; pass
`--no-cron` to extra workers to spare them the repeats.
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from redis import Redis
from rq import Queue, Worker
from rq.cron import CronScheduler
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.scheduler import RQScheduler

from webapp import create_app
from webapp.billing import tasks as billing_tasks
from webapp.extensions import db
from webapp.kb import tasks as kb_tasks
from webapp.kb.answering import preload
from webapp.payments import tasks as payments_tasks

app = create_app()
preload(app)  # each job's work horse is forked from here: the encoder loads once

# (job, seconds between runs). Interval jobs also run as soon as the scheduler starts,
# which catches up on whatever fell due while no worker was running.
CRON_JOBS: list[tuple[Callable[..., Any], int]] = [
    (billing_tasks.end_finished_periods, 5 * 60),
    (billing_tasks.send_renewal_reminders, 60 * 60),
    (payments_tasks.close_expired_orders, 5 * 60),
    (payments_tasks.reconcile_pending_orders, 24 * 60 * 60),
    (payments_tasks.poll_pending_refunds, 10 * 60),
    (payments_tasks.reconcile_bills, 24 * 60 * 60),
    (kb_tasks.embed_missing, 10 * 60),
]
CRON_STOP_TIMEOUT = 10


PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def die_with_parent(parent_pid: int) -> None:
    """In a child process: get SIGTERM when the parent dies, however it dies (Linux).

    If the parent is already gone (it died before this ran), stop now."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


class SupervisedScheduler(RQScheduler):
    """rq's scheduler for delayed jobs, in its forked child, dying with the worker."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parent_pid = os.getpid()

    def work(self) -> None:  # runs in the child
        die_with_parent(self.parent_pid)
        super().work()


class AppContextWorker(Worker):
    """Runs every job inside the Flask application context (database, config, mail)."""

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        with app.app_context():
            # The job runs in a forked work horse: never reuse the parent's connections.
            db.engine.dispose(close=False)
            return super().perform_job(job, queue, execution)

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = None,
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """rq's own (rq offers no hook for the scheduler class), with `SupervisedScheduler`
        in the child; a burst run has no child and moves the jobs that are due itself."""
        if burst:
            super()._start_scheduler(burst, logging_level, date_format, log_format)
            return
        self.scheduler = SupervisedScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        if self.scheduler.acquire_locks():
            self.scheduler.start()


class WorkerCronScheduler(CronScheduler):
    """rq's CronScheduler, stopping once the worker that started it is gone (even killed)."""

    def __init__(self, connection: Redis, parent_pid: int) -> None:
        super().__init__(connection=connection)
        self.parent_pid = parent_pid

    def heartbeat(self) -> None:  # called on every loop, at least once a minute
        if os.getppid() != self.parent_pid:
            raise StopRequested()
        super().heartbeat()


def build_cron(connection: Redis, queue_name: str, parent_pid: int) -> CronScheduler:
    scheduler = WorkerCronScheduler(connection, parent_pid)
    for func, interval in CRON_JOBS:
        scheduler.register(func, queue_name, interval=interval)
    return scheduler


def run_cron(redis_url: str, queue_name: str, parent_pid: int) -> None:
    """The child process: enqueue the periodic jobs until told to stop (SIGTERM/SIGINT)."""
    scheduler = build_cron(Redis.from_url(redis_url), queue_name, parent_pid)
    die_with_parent(parent_pid)  # after build_cron: its signal handlers come with start()
    scheduler.start()


def start_cron(redis_url: str, queue_name: str) -> multiprocessing.Process:
    process = multiprocessing.Process(
        target=run_cron,
        args=(redis_url, queue_name, os.getpid()),
        name="rq-cron",
        daemon=True,
    )
    process.start()
    return process


def stop_cron(process: multiprocessing.Process) -> None:
    if process.is_alive():
        process.terminate()  # SIGTERM: the scheduler unregisters itself and exits
    process.join(CRON_STOP_TIMEOUT)
    if process.is_alive():
        process.kill()
        process.join()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("queues", nargs="*", help="queues to serve (default: RQ_QUEUES)")
    parser.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    parser.add_argument(
        "--no-cron", action="store_true", help="do not enqueue the periodic jobs from this worker"
    )
    args = parser.parse_args(argv)
    redis_url = app.config["REDIS_URL"]
    if not redis_url:
        sys.exit("REDIS_URL is not set; the worker needs Redis.")
    connection = Redis.from_url(redis_url)
    queue_names = args.queues or app.config["RQ_QUEUES"]
    queues = [Queue(name, connection=connection) for name in queue_names]
    # A burst run drains the queues and exits: periodic jobs belong to long-running workers.
    cron = None if args.burst or args.no_cron else start_cron(redis_url, queue_names[0])
    try:
        AppContextWorker(queues, connection=connection).work(burst=args.burst, with_scheduler=True)
    finally:
        if cron is not None:
            stop_cron(cron)


if __name__ == "__main__":
    main(sys.argv[1:])
