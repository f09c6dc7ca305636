"""Billing jobs (in-process and through the real worker, with its cron scheduler)
and the operators' `flask billing` commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue
from rq.cron import CronScheduler, get_cron_job_ids
from rq.exceptions import NoSuchJobError, StopRequested
from rq.job import Job

import worker
from tests.billing.conftest import new_member, orders_of, put_on_plan, subscription_state
from webapp.billing import services, tasks
from webapp.billing.models import Order, SentNotice
from webapp.billing.periods import add_months
from webapp.db import utcnow
from webapp.extensions import db, mail
from webapp.orgs.models import Role

ROOT = Path(__file__).resolve().parents[2]


def worker_env() -> dict[str, str]:
    return {**os.environ, "APP_ENV": "testing", "PYTHONPATH": str(ROOT)}


def start_worker(queue_name: str) -> subprocess.Popen[str]:
    """`python worker.py QUEUE`, long-running (with its schedulers); stderr is kept."""
    return subprocess.Popen(
        [sys.executable, "worker.py", queue_name],
        cwd=ROOT,
        env=worker_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


# --- end of periods -----------------------------------------------------------------


def test_end_finished_periods_job_is_idempotent(app):
    now = utcnow()
    with app.app_context():
        expired = new_member().organization_id
        put_on_plan(
            expired, "pro", add_months(now, -1) - timedelta(hours=1), now - timedelta(hours=1)
        )
        scheduled = new_member().organization_id
        ended = now - timedelta(minutes=1)
        put_on_plan(scheduled, "enterprise", add_months(ended, -1), ended, scheduled=("pro", 1))
        active = new_member().organization_id
        put_on_plan(active, "pro", now - timedelta(days=1), now + timedelta(days=29), cancel=True)
        free = new_member().organization_id
        db.session.commit()
        untouched = {org: subscription_state(org) for org in (active, free)}

        assert tasks.end_finished_periods() == 2

        first = {org: subscription_state(org) for org in (expired, scheduled, active, free)}
        assert first[expired] == {
            "plan": "free",
            "start": now - timedelta(hours=1),
            "end": None,
            "cancel": False,
            "scheduled": None,
        }
        assert first[scheduled] == {
            "plan": "pro",
            "start": ended,
            "end": add_months(ended, 1),
            "cancel": False,
            "scheduled": None,
        }
        assert {org: first[org] for org in (active, free)} == untouched

        assert tasks.end_finished_periods() == 0
        assert {org: subscription_state(org) for org in first} == first


def test_end_finished_periods_through_the_worker(app, committed_db):
    """The job, queued in Redis, run by a real `python worker.py --burst`, commits."""
    now = utcnow()
    with app.app_context():
        org_id = new_member().organization_id
        put_on_plan(org_id, "pro", add_months(now, -1), now - timedelta(seconds=1))
        db.session.commit()
    queue_name = f"test-{uuid4().hex}"
    job = Queue(queue_name, connection=Redis.from_url(app.config["REDIS_URL"])).enqueue(
        tasks.end_finished_periods
    )

    finished = subprocess.run(
        [sys.executable, "worker.py", "--burst", queue_name],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert finished.returncode == 0, finished.stderr
    job.refresh()
    assert job.get_status() == "finished", finished.stderr
    assert job.return_value() >= 1
    with app.app_context():
        state = subscription_state(org_id)
    assert (state["plan"], state["end"]) == ("free", None)


# --- renewal reminders ---------------------------------------------------------------


def test_renewal_reminders_go_out_once_7_days_and_1_day_before(app):
    now = utcnow()
    end = now + timedelta(days=6)
    with mail.record_messages() as outbox, app.app_context():
        owner = new_member()
        org_id = owner.organization_id
        new_member(org_id, Role.ADMIN)
        new_member(org_id, Role.MEMBER)
        put_on_plan(org_id, "pro", add_months(end, -1), end)
        cancelled = new_member().organization_id
        put_on_plan(cancelled, "pro", add_months(end, -1), end, cancel=True)
        later = new_member().organization_id
        put_on_plan(later, "enterprise", now, now + timedelta(days=7, hours=1))
        db.session.commit()
        managers = sorted(db.session.scalars(owner.manager_emails(org_id)))
        assert len(managers) == 2

        assert tasks.send_renewal_reminders() == 1
        assert sorted(m.recipients[0] for m in outbox) == managers
        assert all("专业版" in m.subject for m in outbox)
        assert all("/plans" in (m.body or "") for m in outbox)

        assert tasks.send_renewal_reminders() == 0  # once per period end
        assert len(outbox) == 2

        one_day_before = end - timedelta(hours=20)
        assert services.send_renewal_reminders(now=one_day_before) == 2  # and `later`'s 7 days
        db.session.commit()
        assert len(outbox) == 5
        assert sorted(m.recipients[0] for m in outbox[2:4]) == managers  # the 1-day one
        assert services.send_renewal_reminders(now=one_day_before + timedelta(hours=1)) == 0
        db.session.commit()
        assert len(outbox) == 5

        notices = db.session.execute(
            sa.select(SentNotice.organization_id, SentNotice.kind).order_by(
                SentNotice.organization_id, SentNotice.kind
            )
        ).all()
        assert notices == [(org_id, "renewal_1d"), (org_id, "renewal_7d"), (later, "renewal_7d")]


def test_a_renewed_period_is_reminded_again(app):
    now = utcnow()
    end = now + timedelta(days=6)
    with mail.record_messages() as outbox, app.app_context():
        owner = new_member()
        put_on_plan(owner.organization_id, "pro", add_months(end, -1), end)
        db.session.commit()
        assert tasks.send_renewal_reminders() == 1
        order = services.create_order(owner, "pro", 1)
        services.fulfil_order(order.id)
        db.session.commit()

        assert tasks.send_renewal_reminders() == 0  # the new end is a month away
        assert services.send_renewal_reminders(now=add_months(end, 1) - timedelta(days=3)) == 1
        db.session.commit()
        assert len(outbox) == 2


# --- the cron scheduler in worker.py ----------------------------------------------------


def test_worker_schedules_the_periodic_jobs():
    connection = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"))
    scheduler = worker.build_cron(connection, "default", os.getpid())

    assert {(job.func_name, job.interval, job.queue_name) for job in scheduler.get_jobs()} == {
        ("webapp.billing.tasks.end_finished_periods", 300, "default"),
        ("webapp.billing.tasks.send_renewal_reminders", 3600, "default"),
        ("webapp.payments.tasks.close_expired_orders", 300, "default"),
        ("webapp.payments.tasks.reconcile_pending_orders", 86400, "default"),
        ("webapp.payments.tasks.poll_pending_refunds", 600, "default"),
        ("webapp.payments.tasks.reconcile_bills", 86400, "default"),
        ("webapp.kb.tasks.embed_missing", 600, "default"),
    }
    orphan = worker.build_cron(connection, "default", os.getpid() + 1_000_000)
    with pytest.raises(StopRequested):
        orphan.heartbeat()  # the worker that started it is gone


def test_python_worker_py_runs_the_cron_jobs_and_stops_cleanly(app, committed_db):
    """`python worker.py QUEUE`: the cron child enqueues both jobs at start, the worker
    runs them, and SIGTERM stops both processes."""
    connection = Redis.from_url(app.config["REDIS_URL"])
    queue_name = f"test-{uuid4().hex}"
    process = start_worker(queue_name)
    names = [
        f"webapp.billing.tasks.{name}"
        for name in ("end_finished_periods", "send_renewal_reminders")
    ]

    def finished_jobs() -> dict[str, Any]:
        found = {}
        for name in names:
            for job_id in get_cron_job_ids(name, connection):
                try:
                    job = Job.fetch(job_id, connection=connection)
                except NoSuchJobError:  # the history is shared by every run; old jobs expire
                    continue
                if job.origin == queue_name and job.get_status() == "finished":
                    found[name] = job.return_value()
        return found

    def our_schedulers() -> list[CronScheduler]:
        return [
            s
            for s in CronScheduler.all(connection)
            if any(job.queue_name == queue_name for job in s.get_jobs())
        ]

    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (len(finished_jobs()) < 2 or not our_schedulers()):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.5)
        assert set(finished_jobs()) == set(names)
        assert len(our_schedulers()) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=60)

    assert returncode == 0
    assert our_schedulers() == []  # the cron child stopped and unregistered


# --- flask billing ... ---------------------------------------------------------------


def invoke(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["billing", *args])


def test_grant_gives_months_of_a_plan(app):
    with app.app_context():
        org_id = new_member().organization_id
        db.session.commit()
    before = utcnow()

    result = invoke(app, "grant", str(org_id), "pro", "--months", "3")

    assert result.exit_code == 0, result.output
    assert f"organization {org_id}" in result.output and "pro" in result.output
    with app.app_context():
        state = subscription_state(org_id)
        [order] = orders_of(org_id)
        assert state["plan"] == "pro"
        assert before <= state["start"] <= utcnow()
        assert state["end"] == add_months(state["start"], 3)
        assert (order.kind, order.plan.code, order.months) == ("grant", "pro", 3)
        assert (order.amount_fen, order.status, order.channel) == (0, "paid", "manual")


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["{org}", "free", "--months", "1"], 1),
        (["{org}", "platinum"], 1),
        (["999999999", "pro"], 1),
        (["{org}", "pro", "--months", "0"], 2),
        (["{org}", "pro", "--months", "121"], 2),
    ],
)
def test_grant_refuses_bad_requests(app, args, exit_code):
    with app.app_context():
        org_id = new_member().organization_id
        db.session.commit()

    result = invoke(app, "grant", *[a.format(org=org_id) for a in args])

    assert result.exit_code == exit_code, result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0
        assert subscription_state(org_id)["plan"] == "free"


def test_ending_soon_lists_paid_periods_ending_within_the_days(app):
    now = utcnow()
    with app.app_context():
        soon = new_member().organization_id
        put_on_plan(soon, "pro", now, now + timedelta(days=3))
        cancelled = new_member().organization_id
        put_on_plan(cancelled, "enterprise", now, now + timedelta(days=2), cancel=True)
        later = new_member().organization_id
        put_on_plan(later, "pro", now, now + timedelta(days=10))
        new_member()  # free: never ends
        db.session.commit()

    week = invoke(app, "ending-soon")
    fortnight = invoke(app, "ending-soon", "--days", "14")
    tomorrow = invoke(app, "ending-soon", "--days", "1")

    assert week.exit_code == fortnight.exit_code == tomorrow.exit_code == 0
    week_rows = [line.split("\t") for line in week.output.splitlines()[1:]]
    assert [(row[0], row[2], row[4], row[5]) for row in week_rows] == [
        (str(cancelled), "enterprise", "yes", "free"),
        (str(soon), "pro", "no", "free"),
    ]
    assert [line.split("\t")[0] for line in fortnight.output.splitlines()[1:]] == [
        str(cancelled),
        str(soon),
        str(later),
    ]
    assert "No paid period ends within 1 day(s)." in tomorrow.output
