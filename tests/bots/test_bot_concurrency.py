"""The plan's bot limit holds under concurrent creation (real PostgreSQL, real commits)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from flask import Flask

from tests.bots import BOTS
from tests.factories import DEFAULT_PASSWORD, UserFactory
from webapp.bots.models import Bot
from webapp.extensions import db
from webapp.orgs import services as orgs_services

THREADS = 10


def test_concurrent_creations_never_exceed_the_bot_limit(app: Flask, committed_db: None) -> None:
    with app.app_context():
        owner = UserFactory()
        organization = orgs_services.create_organization(owner, "并发测试公司")  # free: 1 bot
        db.session.commit()
        organization_id, email = organization.id, owner.email
    login = app.test_client().post(
        "/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD}
    )
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    start = threading.Barrier(THREADS)

    def create(n: int) -> tuple[int, Any]:
        client = app.test_client()  # each request runs in its own app context and session
        start.wait()
        response = client.post(BOTS, json={"name": f"机器人 {n}"}, headers=headers)
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(create, range(THREADS)))

    statuses = sorted(status for status, _body in results)
    assert statuses == [201] + [403] * (THREADS - 1), results
    assert all(body["error"] == "plan_limit_reached" for status, body in results if status == 403)
    with app.app_context():
        count = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Bot)
            .where(Bot.organization_id == organization_id)
        )
    assert count == 1
