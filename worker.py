"""RQ worker with its schedulers: `python worker.py [--burst] [--no-cron] [queue ...]`.

Jobs are plain functions in each feature's `tasks.py`, taking ids only; each
runs inside an application context (see `AppContextWorker`).

Periodic jobs (`CRON_JOBS`) are enqueued by rq's `CronScheduler`, run in a child
process next to the worker so that `python worker.py` stays the one command.
Every periodic job is idempotent, so running more than one worker (each with
its scheduler) only repeats work that finds nothing left to do; pass
`--no-cron` to extra workers to spare them the repeats.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from collections.abc import Callable
from typing import Any

from redis import Redis
from rq import Queue, Worker
from rq.cron import CronScheduler
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job

from webapp import create_app
from webapp.billing import tasks as billing_tasks
from webapp.extensions import db
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
]
CRON_STOP_TIMEOUT = 10


class AppContextWorker(Worker):
    """Runs every job inside the Flask application context (database, config, mail)."""

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        with app.app_context():
            # The job runs in a forked work horse: never reuse the parent's connections.
            db.engine.dispose(close=False)
            return super().perform_job(job, queue, execution)


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
    build_cron(Redis.from_url(redis_url), queue_name, parent_pid).start()


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
