"""Jobs without Redis (`make run`): they run on a thread of the web process, after the
response, each with its own session, next to the requests on the same SQLite file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from tests.portal.conftest import Portal
from webapp import create_app
from webapp.auth.models import User
from webapp.core import mail as mail_module
from webapp.core.jobs import wait_for_jobs
from webapp.extensions import db


@pytest.fixture
def embedded_app(tmp_path: Path) -> Flask:
    """The embedded default: SQLite, no Redis."""
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/a.db", REDIS_URL="")
    with app.app_context():
        upgrade()
        db.session.add(User(email="user@example.com", password_hash="x"))
        db.session.commit()
    return app


def _emails(app: Flask) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(sa.select(User.email)))


def test_a_request_returns_before_its_slow_job_has_run(
    embedded_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_delivery(to: str, subject: str, body: str) -> None:
        db.session.add(User(email="job@example.com", password_hash="x"))
        db.session.flush()  # the job now holds SQLite's write lock
        started.set()
        assert release.wait(10)
        db.session.commit()

    monkeypatch.setattr(mail_module, "deliver_mail", slow_delivery)
    response = Portal(embedded_app.test_client()).submit(
        "/forgot-password", {"email": "user@example.com"}
    )

    assert response.status_code == 302
    assert started.wait(10)
    assert "job@example.com" not in _emails(embedded_app)
    # A request writing meanwhile waits for the job's commit instead of failing.
    written: list[str] = []

    def write() -> None:
        with embedded_app.app_context():
            db.session.add(User(email="request@example.com", password_hash="x"))
            db.session.commit()
            written.append("request@example.com")

    writer = threading.Thread(target=write)
    writer.start()
    release.set()
    writer.join(30)
    wait_for_jobs(embedded_app)
    assert written == ["request@example.com"]
    assert {"job@example.com", "request@example.com"} <= _emails(embedded_app)


def test_a_failing_job_is_logged_and_the_next_one_runs(
    embedded_app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    delivered: list[str] = []

    def flaky_delivery(to: str, subject: str, body: str) -> None:
        if not delivered:
            delivered.append("failed")
            raise RuntimeError("SMTP is down")
        delivered.append(to)

    monkeypatch.setattr(mail_module, "deliver_mail", flaky_delivery)
    portal = Portal(embedded_app.test_client())
    for _ in range(2):
        assert portal.submit("/forgot-password", {"email": "user@example.com"}).status_code == 302
    wait_for_jobs(embedded_app)

    assert delivered == ["failed", "user@example.com"]
    assert "in-process job flaky_delivery failed" in caplog.text
