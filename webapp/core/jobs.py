"""Background jobs: RQ when Redis is configured, otherwise a thread of the web process.

`enqueue_after_commit` is how request code hands work to a job: the job is
queued only once the transaction commits, so a rolled-back request never
mails a link to something that does not exist, and slow work (SMTP, provider
calls, embedding an import) stays off the request path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from webapp.extensions import db

log = logging.getLogger(__name__)

PENDING_JOBS = "pending_jobs"
IN_PROCESS_JOBS = "in_process_jobs"


class InProcessJobs:
    """The jobs of a process without Redis: one thread runs them in order, so a request
    returns at once and jobs never run side by side (SQLite has one writer at a time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pending: set[Future[None]] = set()

    def submit(self, app: Flask, func: Callable[..., Any], args: Any, kwargs: Any) -> None:
        with self._lock:
            if self._executor is None:  # created on first use: in the worker, after the fork
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobs")
            future = self._executor.submit(_run_job, app, func, args, kwargs)
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def wait(self) -> None:
        """Until every job is done, including the jobs those jobs queued."""
        while True:
            with self._lock:
                pending = {future for future in self._pending if not future.done()}
            if not pending:
                return
            wait_for(pending)


def _run_job(app: Flask, func: Callable[..., Any], args: Any, kwargs: Any) -> None:
    """In a fresh app context, so with its own session, as in the worker."""
    with app.app_context():
        try:
            func(*args, **kwargs)
        except Exception:
            log.exception("in-process job %s failed", func.__name__)


def _run_in_process(func: Callable[..., Any], args: Any, kwargs: Any) -> None:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    app.extensions[IN_PROCESS_JOBS].submit(app, func, args, kwargs)


def wait_for_jobs(app: Flask | None = None) -> None:
    """Wait for the jobs running in this process (without Redis; of the current app by
    default): for commands that must not exit before their jobs, and tests."""
    (app or current_app).extensions[IN_PROCESS_JOBS].wait()


def redis_connection() -> Redis:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    connection: Redis | None = app.extensions.get("redis")
    if connection is None:
        connection = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=2)
        app.extensions["redis"] = connection
    return connection


def _queue() -> Queue:
    return Queue(
        current_app.config["RQ_QUEUES"][0],
        connection=redis_connection(),
        is_async=current_app.config["RQ_ASYNC"],
        default_timeout=current_app.config["RQ_JOB_TIMEOUT"],
    )


def enqueue(func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Queue a job (arguments must be ids and plain values) on Redis or, without Redis,
    on this process's job thread."""
    config = current_app.config
    if not config["REDIS_URL"]:
        _run_in_process(func, args, kwargs)
    elif config["RQ_ASYNC"]:
        _queue().enqueue(func, *args, **kwargs)
    else:
        # RQ_ASYNC off (tests): RQ runs the job now, here. In a fresh app context, so with
        # its own session as in the worker (this may be a commit hook, where the request's
        # session can't run SQL).
        with current_app.app_context():
            _queue().enqueue(func, *args, **kwargs)


def schedule(delay: timedelta, func: Callable[..., Any], *args: Any) -> bool:
    """Run a job after `delay` (the worker's scheduler). Without Redis there is no
    worker to wait: returns False and the caller relies on on-demand checks instead."""
    if not current_app.config["REDIS_URL"]:
        return False
    _queue().enqueue_in(delay, func, *args)
    return True


def enqueue_after_commit(func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    db.session.info.setdefault(PENDING_JOBS, []).append((func, args, kwargs))


def _run_pending_jobs(session: Session) -> None:
    """After the commit: nothing may fail the request now, so every job is on its own."""
    for func, args, kwargs in session.info.pop(PENDING_JOBS, []):
        try:
            try:
                enqueue(func, *args, **kwargs)
            except RedisError:
                # Degrade to doing the work in this process rather than losing it.
                log.exception("Redis unreachable; running %s in-process", func.__name__)
                _run_in_process(func, args, kwargs)
        except Exception:
            log.exception("job %s failed after the commit", func.__name__)


def _drop_pending_jobs(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:  # the whole transaction, not a savepoint
        session.info.pop(PENDING_JOBS, None)


def register_jobs(app: Flask) -> None:
    app.extensions[IN_PROCESS_JOBS] = InProcessJobs()
    if not event.contains(Session, "after_commit", _run_pending_jobs):
        event.listen(Session, "after_commit", _run_pending_jobs)
        event.listen(Session, "after_soft_rollback", _drop_pending_jobs)
