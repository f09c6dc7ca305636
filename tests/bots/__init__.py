"""Tests of bots and API keys (API, portal, concurrency), plus helpers shared by their modules."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask

from tests.conftest import ApiClient
from webapp.billing.models import Plan, Subscription
from webapp.bots.models import ApiKey, Bot
from webapp.extensions import db

BOTS = "/api/v1/bots"
KEYS = "/api/v1/api-keys"


def create_bot(client: ApiClient, name: str = "售前客服", **fields: Any) -> dict[str, Any]:
    response = client.post(BOTS, json={"name": name, **fields})
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def create_key(
    client: ApiClient, name: str = "官网挂件", bot_id: int | None = None
) -> dict[str, Any]:
    response = client.post(KEYS, json={"name": name, "bot_id": bot_id})
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def key_headers(key: str, scheme: str = "bearer") -> dict[str, str]:
    """How a bot presents its key: `Authorization: Bearer sk_...` or `X-API-Key: sk_...`."""
    return {"Authorization": f"Bearer {key}"} if scheme == "bearer" else {"X-API-Key": key}


def set_plan(app: Flask, organization_id: int, code: str) -> None:
    """Put the organization on a plan directly (no order, no period)."""
    with app.app_context():
        subscription = db.session.scalar(
            sa.select(Subscription).where(Subscription.organization_id == organization_id)
        )
        assert subscription is not None
        subscription.plan_id = db.session.scalar(sa.select(Plan.id).where(Plan.code == code))
        db.session.commit()


def bot_names(app: Flask, organization_id: int) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(Bot.name).where(Bot.organization_id == organization_id).order_by(Bot.id)
            )
        )


def api_key_row(app: Flask, api_key_id: int) -> ApiKey | None:
    with app.app_context():
        return db.session.get(ApiKey, api_key_id)
