"""A database connection that died under the pool (PostgreSQL restarted)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask

from tests.api import assert_error
from tests.portal.conftest import Portal


def test_a_lost_database_connection_is_a_503_then_the_pool_reconnects(
    app: Flask, committed_db: None, make_tenant: Any
) -> None:
    """Without pool_pre_ping, the request that meets a dead connection (PostgreSQL
    restarted) gets a 503 to retry, not a 500; the pool is invalidated and the next works."""
    tenant = make_tenant()
    headers = {"Authorization": f"Bearer {tenant.add_api_key()}"}
    client = app.test_client()
    assert client.get("/api/v1/usage/stats", headers=headers).status_code == 200
    _terminate_other_connections(app)

    lost = client.get("/api/v1/usage/stats", headers=headers)

    body = assert_error(lost, 503, "database_unavailable")
    assert lost.headers["Retry-After"] == "1"
    assert body["message"]
    assert client.get("/api/v1/usage/stats", headers=headers).status_code == 200


def _terminate_other_connections(app: Flask) -> None:
    admin = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    admin.dispose()


def kill_connection_after_view(app: Flask, endpoint: str, monkeypatch: Any) -> Any:
    """Make the view answer, then the database drop its connection: found only when the
    request ends its transaction. Returns the real view."""
    view = app.view_functions[endpoint]

    def then_the_connection_dies(*args: Any, **kwargs: Any) -> Any:
        response = view(*args, **kwargs)
        _terminate_other_connections(app)
        return response

    monkeypatch.setitem(app.view_functions, endpoint, then_the_connection_dies)
    return view


def test_a_connection_lost_before_teardown_is_a_503_not_a_server_error(
    app: Flask, committed_db: None, make_tenant: Any, monkeypatch: Any
) -> None:
    """The view ran its queries and answered; the database then drops the connection, which
    is only found when the request ends its transaction. That request answers the designed
    503 (the work it did was not committed), never an error outside the app's handlers."""
    tenant = make_tenant()
    headers = {"Authorization": f"Bearer {tenant.add_api_key()}"}
    client = app.test_client()
    view = kill_connection_after_view(app, "usage_api.Stats", monkeypatch)
    lost = client.get("/api/v1/usage/stats", headers=headers)

    body = assert_error(lost, 503, "database_unavailable")
    assert lost.headers["Retry-After"] == "1"
    assert body["message"]
    monkeypatch.setitem(app.view_functions, "usage_api.Stats", view)
    assert client.get("/api/v1/usage/stats", headers=headers).status_code == 200


def test_the_portal_answers_its_503_page_too(
    app: Flask, committed_db: None, make_tenant: Any, monkeypatch: Any
) -> None:
    tenant = make_tenant()
    portal = Portal(app.test_client())
    assert portal.login(tenant.owner.email).status_code == 302
    kill_connection_after_view(app, "usage.index", monkeypatch)
    lost = portal.get("/usage")
    assert lost.status_code == 503
    assert lost.mimetype == "text/html"
