"""Usage fixtures: an organization on a chosen plan, its bots and API keys, and a committed mode.

Most tests run in the root fixture's rolled-back transaction. Tests that ask for
`committed_db` (concurrency, where several threads must see each other's
commits) commit for real: the root `isolated_db` steps aside for them, and
`committed_db` deletes the organizations and users created meanwhile (their
usage, bots, keys and notices go with them by ON DELETE CASCADE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import ApiClient
from webapp.auth.models import User
from webapp.billing.models import Subscription
from webapp.billing.services import plan_by_code
from webapp.bots import services as bot_services
from webapp.extensions import db
from webapp.orgs import services as org_services
from webapp.usage.models import UsageCounter, UsageDaily, UsageKind, UsageRecord
from webapp.usage.services import record_usage

RECORD = "/api/v1/usage/record"
BATCH = "/api/v1/usage/records"
STATS = "/api/v1/usage/stats"
HISTORY = "/api/v1/usage/history"


@dataclass
class Tenant:
    """An organization, its owner, and helpers that act on it directly in the database."""

    app: Flask
    id: int
    owner: Any
    api: ApiClient  # the owner's JWT client

    def _owner_membership(self) -> Any:
        user = db.session.get(User, self.owner.id)
        assert user is not None
        return org_services.membership_for(user, self.id)

    def set_plan(self, code: str) -> None:
        with self.app.app_context():
            subscription = db.session.scalar(
                sa.select(Subscription).where(Subscription.organization_id == self.id)
            )
            assert subscription is not None
            subscription.plan_id = plan_by_code(code).id
            db.session.commit()

    def add_bot(self, name: str = "客服机器人", *, enabled: bool = True) -> int:
        with self.app.app_context():
            bot = bot_services.create_bot(self._owner_membership(), name)
            bot.is_enabled = enabled
            db.session.commit()
            return bot.id

    def add_api_key(self, bot_id: int | None = None) -> str:
        with self.app.app_context():
            issued = bot_services.create_api_key(self._owner_membership(), "key", bot_id)
            db.session.commit()
            return issued.secret

    def record(
        self, kind: str = "message", quantity: int = 1, *, at: datetime, bot_id: int | None = None
    ) -> None:
        """Usage at another time (past days and months), straight through the service."""
        with self.app.app_context():
            record_usage(self.id, UsageKind(kind), quantity, bot_id=bot_id, now=at)
            db.session.commit()

    def counts(self) -> tuple[int, int, int]:
        """(counter total over all months, number of records, sum of the daily rollup)."""
        with self.app.app_context():
            used = db.session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(UsageCounter.used), 0)).where(
                    UsageCounter.organization_id == self.id
                )
            )
            records = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(UsageRecord)
                .where(UsageRecord.organization_id == self.id)
            )
            daily = db.session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(UsageDaily.quantity), 0)).where(
                    UsageDaily.organization_id == self.id
                )
            )
            return int(used or 0), int(records or 0), int(daily or 0)


@pytest.fixture
def make_tenant(app: Flask, make_user: Any) -> Any:
    """A new owner with one organization (free plan), created and committed directly."""

    def make(plan: str = "free", owner: Any = None, name: str = "用量测试公司") -> Tenant:
        owner = owner or make_user()
        with app.app_context():
            user = db.session.get(User, owner.id)
            assert user is not None
            organization = org_services.create_organization(user, name)
            db.session.commit()
            organization_id = organization.id
        tenant = Tenant(app, organization_id, owner, ApiClient(app.test_client()))
        tenant.api.login(owner.email)
        if plan != "free":
            tenant.set_plan(plan)
        return tenant

    return make


@pytest.fixture
def tenant(make_tenant: Any) -> Tenant:
    return make_tenant()


def key_headers(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
