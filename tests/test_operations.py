"""Operators' side: configuration safety, health check, worker, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import jwt
import pytest
from flask import current_app
from flask_jwt_extended import create_access_token
from redis import Redis
from rq import Queue

from webapp import create_app
from webapp.auth.models import User
from webapp.config import ConfigurationError
from webapp.extensions import db

ROOT = Path(__file__).resolve().parent.parent
STRONG_SECRET = "x" * 48
POSTGRES = {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg2://postgres@127.0.0.1/unused"}


def report_app_env() -> str:
    """A job for the worker test: proves jobs run inside the application context."""
    return str(current_app.config["APP_ENV"])


@pytest.mark.parametrize(
    "secret", ["", "dev", "development-only-secret-key-do-not-deploy", "short"]
)
def test_production_refuses_weak_secret_key(secret):
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        create_app("production", SECRET_KEY=secret, PAYMENTS_MODE="live", **POSTGRES)


def test_production_refuses_a_weak_separate_jwt_key():
    with pytest.raises(ConfigurationError, match="JWT_SECRET_KEY"):
        create_app(
            "production",
            SECRET_KEY=STRONG_SECRET,
            JWT_SECRET_KEY="short",
            PAYMENTS_MODE="live",
            **POSTGRES,
        )


def test_production_refuses_payment_sandbox():
    with pytest.raises(ConfigurationError, match="sandbox"):
        create_app("production", SECRET_KEY=STRONG_SECRET, PAYMENTS_MODE="sandbox", **POSTGRES)


def test_production_cookies_are_secure():
    app = create_app("production", SECRET_KEY=STRONG_SECRET, PAYMENTS_MODE="live", **POSTGRES)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_unknown_app_env_is_refused():
    with pytest.raises(ConfigurationError, match="APP_ENV"):
        create_app("staging")


def test_flask_prefixed_environment_overrides_settings(monkeypatch):
    monkeypatch.setenv("FLASK_LOGIN_LIMIT_PER_IP", "3 per minute")
    app = create_app("testing")
    assert app.config["LOGIN_LIMIT_PER_IP"] == "3 per minute"


def test_healthz_reports_database_and_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok"},
    }


def test_healthz_is_degraded_when_redis_is_unreachable(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["checks"] == {"database": "ok", "redis": "unreachable"}


def test_worker_runs_jobs_inside_the_app_context(app):
    """A real worker process (`python worker.py --burst`) takes a job off Redis and runs it."""
    queue_name = f"test-{uuid4().hex}"
    connection = Redis.from_url(app.config["REDIS_URL"])
    job = Queue(queue_name, connection=connection).enqueue(report_app_env)
    env = {**os.environ, "APP_ENV": "testing", "PYTHONPATH": str(ROOT)}
    finished = subprocess.run(
        [sys.executable, "worker.py", "--burst", queue_name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value() == "testing"


def test_create_admin_command_creates_a_platform_admin(app):
    result = app.test_cli_runner().invoke(
        args=["create-admin", "Root@Example.com", "--password", "a-long-password", "--name", "Ops"]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        admin = db.session.scalar(db.select(User).where(User.email == "root@example.com"))
        assert admin is not None
        assert admin.is_platform_admin is True
        assert admin.name == "Ops"


def test_create_admin_command_rejects_a_weak_password(app):
    result = app.test_cli_runner().invoke(
        args=["create-admin", "weak@example.com", "--password", "short"]
    )
    assert result.exit_code != 0
    assert "密码长度" in result.output  # the default locale, zh_CN
    with app.app_context():
        assert db.session.scalar(db.select(User).where(User.email == "weak@example.com")) is None


def test_livez_answers_without_touching_dependencies(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")
    response = client.get("/livez")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_production_refuses_sqlite():
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        create_app(
            "production",
            SECRET_KEY=STRONG_SECRET,
            PAYMENTS_MODE="live",
            SQLALCHEMY_DATABASE_URI="sqlite:///x.db",
        )


def test_jwt_key_follows_the_overridden_secret_key():
    """Tokens are signed with the SECRET_KEY in force, not a default read at import."""
    app = create_app("testing", SECRET_KEY=STRONG_SECRET)
    with app.app_context():
        assert app.config["JWT_SECRET_KEY"] is None
        token = create_access_token(identity="1")
        assert jwt.decode(token, STRONG_SECRET, algorithms=["HS256"])["sub"] == "1"


def test_jobs_run_in_process_when_redis_is_down(app, monkeypatch):
    """The transaction is committed by then: a mail job is done here (on the job thread, as
    without Redis) rather than lost."""
    from webapp.core.jobs import wait_for_jobs
    from webapp.core.mail import send_mail
    from webapp.extensions import mail

    unreachable = "redis://127.0.0.1:1/0"
    monkeypatch.setitem(app.config, "REDIS_URL", unreachable)
    # setitem, so that the unreachable connection does not outlive the test
    monkeypatch.setitem(app.extensions, "redis", Redis.from_url(unreachable))
    with app.test_request_context(), mail.record_messages() as outbox:
        send_mail("ops@example.com", "subject", "body")
        db.session.commit()
        wait_for_jobs(app)
    assert [message.recipients for message in outbox] == [["ops@example.com"]]


def test_the_api_answers_browsers_only_from_cors_origins():
    app = create_app("testing", CORS_ORIGINS=["https://shop.example.com"])
    client = app.test_client()
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-API-Key, Content-Type",
    }
    allowed = client.options(
        "/api/v1/usage/record", headers={"Origin": "https://shop.example.com", **preflight}
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "x-api-key" in allowed.headers["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    other = client.options(
        "/api/v1/usage/record", headers={"Origin": "https://evil.example.com", **preflight}
    )
    assert "Access-Control-Allow-Origin" not in other.headers
    portal = client.get("/login", headers={"Origin": "https://shop.example.com"})
    assert "Access-Control-Allow-Origin" not in portal.headers


def test_without_cors_origins_no_browser_origin_is_allowed(client):
    response = client.options(
        "/api/v1/usage/record",
        headers={"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers
