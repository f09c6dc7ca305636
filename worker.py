"""RQ worker with its scheduler: `python worker.py [queue ...]`.

Jobs are plain functions in each feature's `tasks.py`, taking ids only; each
runs inside an application context (see `AppContextWorker`).
"""

from __future__ import annotations

import sys

from redis import Redis
from rq import Queue, Worker
from rq.job import Job

from webapp import create_app

app = create_app()


class AppContextWorker(Worker):
    """Runs every job inside the Flask application context (database, config, mail)."""

    def perform_job(self, job: Job, queue: Queue) -> bool:
        with app.app_context():
            return super().perform_job(job, queue)


def main(queue_names: list[str]) -> None:
    redis_url = app.config["REDIS_URL"]
    if not redis_url:
        sys.exit("REDIS_URL is not set; the worker needs Redis.")
    connection = Redis.from_url(redis_url)
    queues = [Queue(name, connection=connection) for name in queue_names or app.config["RQ_QUEUES"]]
    AppContextWorker(queues, connection=connection).work(with_scheduler=True)


if __name__ == "__main__":
    main(sys.argv[1:])
