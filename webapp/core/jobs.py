"""Background jobs: RQ when Redis is configured, otherwise run in-process.

`enqueue_after_commit` is how request code hands work to a job: the job is
queued only once the transaction commits, so a rolled-back request never
mails a link to something that does not exist, and slow work (SMTP, provider
calls) stays off the request path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
    )


def enqueue(func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Queue a job (arguments must be ids and plain values) or, without Redis, run it now."""
    config = current_app.config
    if config["REDIS_URL"] and config["RQ_ASYNC"]:
        _queue().enqueue(func, *args, **kwargs)
        return
    # The job runs here and now: in a fresh app context, so with its own session as in
    # the worker (this may be a commit hook, where the request's session can't run SQL).
    with current_app.app_context():
        if config["REDIS_URL"]:
            _queue().enqueue(func, *args, **kwargs)  # RQ_ASYNC off (tests): RQ runs it now
        else:
            func(*args, **kwargs)


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
                # Degrade to doing the work here rather than losing it.
                log.exception("Redis unreachable; running %s in-process", func.__name__)
                with current_app.app_context():
                    func(*args, **kwargs)
        except Exception:
            log.exception("job %s failed after the commit", func.__name__)


def _drop_pending_jobs(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:  # the whole transaction, not a savepoint
        session.info.pop(PENDING_JOBS, None)


def register_jobs(app: Flask) -> None:
    if not event.contains(Session, "after_commit", _run_pending_jobs):
        event.listen(Session, "after_commit", _run_pending_jobs)
        event.listen(Session, "after_soft_rollback", _drop_pending_jobs)
