"""RQ worker with its scheduler: `python worker.py [--burst] [queue ...]`.

Jobs are plain functions in each feature's `tasks.py`, taking ids only; each
runs inside an application context (see `AppContextWorker`).
"""

from __future__ import annotations

import argparse
import sys

from redis import Redis
from rq import Queue, Worker
from rq.executions import Execution
from rq.job import Job

from webapp import create_app
from webapp.extensions import db

app = create_app()


class AppContextWorker(Worker):
    """Runs every job inside the Flask application context (database, config, mail)."""

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        with app.app_context():
            # The job runs in a forked work horse: never reuse the parent's connections.
            db.engine.dispose(close=False)
            return super().perform_job(job, queue, execution)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("queues", nargs="*", help="queues to serve (default: RQ_QUEUES)")
    parser.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    args = parser.parse_args(argv)
    redis_url = app.config["REDIS_URL"]
    if not redis_url:
        sys.exit("REDIS_URL is not set; the worker needs Redis.")
    connection = Redis.from_url(redis_url)
    queue_names = args.queues or app.config["RQ_QUEUES"]
    queues = [Queue(name, connection=connection) for name in queue_names]
    AppContextWorker(queues, connection=connection).work(burst=args.burst, with_scheduler=True)


if __name__ == "__main__":
    main(sys.argv[1:])
