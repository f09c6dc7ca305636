"""Fixtures: a PostgreSQL schema built once from the migrations, every test in a
transaction that is rolled back, and clients for the portal and the API.

PostgreSQL and Redis are required: if they are not reachable the run fails
(`make test` starts them); nothing is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from redis import Redis
from sqlalchemy.engine import make_url

from tests.factories import DEFAULT_PASSWORD, UserFactory
from webapp import create_app
from webapp.auth.models import User
from webapp.extensions import db, limiter
from webapp.orgs import services as org_services
from webapp.orgs.models import Organization, OrganizationMember

os.environ.setdefault("APP_ENV", "testing")


def _recreate_database(url: str) -> None:
    target = make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


@contextmanager
def sqlite_owner(tmp_path: Path) -> Iterator[OrganizationMember]:
    """The embedded default (`make run`): an app on a new SQLite file, migrated from scratch,
    inside a request context, and the owner of one organization there (free plan)."""
    sqlite_app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/a.db")
    with sqlite_app.test_request_context():
        upgrade()
        owner = User(email="sqlite@example.com", password_hash="x")
        db.session.add(owner)
        db.session.flush()
        organization = org_services.create_organization(owner, "嵌入式公司")
        yield org_services.membership_for(owner, organization.id)


@pytest.fixture(scope="session")
def app() -> Iterator[Flask]:
    app = create_app("testing")
    _recreate_database(app.config["SQLALCHEMY_DATABASE_URI"])
    Redis.from_url(app.config["REDIS_URL"]).ping()
    with app.app_context():
        upgrade()
    yield app


@pytest.fixture(autouse=True)
def isolated_db(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run the test inside one outer transaction that is rolled back afterwards.

    Flask-SQLAlchemy's session asks `db.engines` for its bind, so the test's
    connection stands in for the engine; `create_savepoint` turns every
    `commit()` in the code under test into a savepoint release.
    """
    if "committed_db" in request.fixturenames:  # live_server and friends request it
        yield  # the live server (or a concurrency test) commits for real, from its own threads
        return
    app: Flask = request.getfixturevalue("app")
    # No app context stays pushed during the test: each request must get its own,
    # with a fresh session and `g`, as in production.
    with app.app_context():
        engines = db.engines
        engine = engines[None]
        connection = engine.connect()
        transaction = connection.begin()
        factory_options = db.session.session_factory.kw
        factory_options["join_transaction_mode"] = "create_savepoint"
        engines[None] = connection  # type: ignore[assignment]
        limiter.reset()
    try:
        yield
    finally:
        with app.app_context():
            db.session.remove()
            engines[None] = engine
            factory_options.pop("join_transaction_mode")
            transaction.rollback()
            connection.close()


# Rows newer than the test are deleted in this order; dependent rows go by ON DELETE CASCADE.
COMMITTED_MODELS = (Organization, User)


@pytest.fixture
def committed_db(app: Flask) -> Iterator[None]:
    """Real commits, for tests where several sessions, threads, a live server or another
    process must see each other's work (`isolated_db` steps aside). The organizations
    and users created meanwhile are deleted afterwards."""
    with app.app_context():
        last_ids = {
            model: db.session.scalar(sa.select(sa.func.max(model.id))) or 0
            for model in COMMITTED_MODELS
        }
    try:
        yield
    finally:
        with app.app_context():
            for model, last_id in last_ids.items():
                db.session.execute(sa.delete(model).where(model.id > last_id))
            db.session.commit()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class ApiClient:
    """A test client for /api/v1 that sends a Bearer token once logged in."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token: str | None = None
        self.refresh_token: str | None = None

    def login(self, email: str, password: str = DEFAULT_PASSWORD) -> ApiClient:
        response = self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        self.token, self.refresh_token = body["access_token"], body["refresh_token"]
        return self

    def open(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.open("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.open("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.open("DELETE", path, **kwargs)


@pytest.fixture
def make_user(app: Flask) -> Any:
    """Create (and commit) a user; returns it, detached-safe (id and email loaded)."""

    def make(**fields: Any) -> Any:
        with app.app_context():
            user = UserFactory(**fields)
            db.session.commit()
            return db.session.get(type(user), user.id)

    return make


@pytest.fixture
def user(make_user: Any) -> Any:
    return make_user()


@pytest.fixture
def api_client(app: Flask, user: Any) -> ApiClient:
    """An API client logged in as `user`."""
    return ApiClient(app.test_client()).login(user.email)


@pytest.fixture
def make_api_client(app: Flask, make_user: Any) -> Any:
    """Another API client, logged in as a new user (or the one given)."""

    def make(user: Any = None) -> ApiClient:
        return ApiClient(app.test_client()).login((user or make_user()).email)

    return make


@pytest.fixture
def org(api_client: ApiClient) -> dict[str, Any]:
    """An organization owned by `user` (created through the API)."""
    response = api_client.post("/api/v1/organizations", json={"name": "测试公司"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


class PortalAuth:
    """Logs the portal `client` in and out (flaskr's `auth` fixture)."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, email: str, password: str = DEFAULT_PASSWORD) -> Any:
        return self.client.post("/login", data={"email": email, "password": password})

    def logout(self) -> Any:
        return self.client.post("/logout")


@pytest.fixture
def auth(client: FlaskClient) -> PortalAuth:
    return PortalAuth(client)
