from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.bots import create_bot, create_key
from tests.conftest import ApiClient
from tests.portal.conftest import logged_in, make_portal, portal  # noqa: F401  (portal fixtures)
from webapp.auth.models import User
from webapp.extensions import db
from webapp.orgs.models import Organization


@pytest.fixture
def bot(api_client: ApiClient, org: dict[str, Any]) -> dict[str, Any]:
    """A bot of `org` (the free plan's only one)."""
    return create_bot(api_client, "售前客服", description="回答售前问题", greeting="您好！")


@pytest.fixture
def api_key(api_client: ApiClient, org: dict[str, Any]) -> dict[str, Any]:
    """An API key of `org`, not bound to a bot; `key` holds the full secret."""
    return create_key(api_client, "官网挂件")


# Rows newer than the test are deleted in this order; bots, keys, members and
# subscriptions go with their organization by ON DELETE CASCADE.
COMMITTED_MODELS: tuple[type[Organization] | type[User], ...] = (Organization, User)


@pytest.fixture
def committed_db(app: Flask) -> Iterator[None]:
    """Real commits (the root `isolated_db` steps aside), for several sessions at once.

    Deletes the organizations and users created meanwhile.
    """
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
