"""Billing fixtures and helpers: organizations put on a plan at a controlled time,
CSRF-aware portal clients, and a `committed_db` for tests that need real commits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask

from tests.factories import UserFactory

# The portal's CSRF-aware browser fixtures, for the billing pages.
from tests.portal.conftest import logged_in, make_portal, portal  # noqa: F401
from webapp.billing import services
from webapp.billing.models import Order, Subscription
from webapp.billing.periods import SHANGHAI
from webapp.extensions import db
from webapp.orgs import services as orgs_services
from webapp.orgs.models import OrganizationMember, Role


def sh(*parts: int) -> datetime:
    """A moment given in Shanghai wall-clock time, as UTC."""
    return datetime(*parts, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


def new_member(organization_id: int | None = None, role: Role = Role.OWNER) -> OrganizationMember:
    """A new user, owner of a new organization (or `role` in an existing one). Flushes only."""
    user = UserFactory()
    if organization_id is None:
        organization = orgs_services.create_organization(user, "计费测试公司")
        return orgs_services.membership_for(user, organization.id)
    membership = OrganizationMember(organization_id=organization_id, user=user, role=role)
    db.session.add(membership)
    db.session.flush()
    return membership


def put_on_plan(
    organization_id: int,
    plan_code: str,
    start: datetime,
    end: datetime | None,
    *,
    cancel: bool = False,
    scheduled: tuple[str, int] | None = None,
) -> Subscription:
    """Set the organization's subscription as if it had been bought (flushes only)."""
    subscription = services.subscription_of(organization_id)
    subscription.plan = services.plan_by_code(plan_code)
    subscription.current_period_start = start
    subscription.current_period_end = end
    subscription.cancel_at_period_end = cancel
    if scheduled is not None:
        subscription.scheduled_plan = services.plan_by_code(scheduled[0])
        subscription.scheduled_months = scheduled[1]
    db.session.flush()
    return subscription


def subscription_state(organization_id: int) -> dict[str, Any]:
    """The subscription row as stored (pending changes flushed, then read back)."""
    db.session.flush()
    db.session.expire_all()
    subscription = services.subscription_of(organization_id)
    return {
        "plan": subscription.plan.code,
        "start": subscription.current_period_start,
        "end": subscription.current_period_end,
        "cancel": subscription.cancel_at_period_end,
        "scheduled": (
            (subscription.scheduled_plan.code, subscription.scheduled_months)
            if subscription.scheduled_plan
            else None
        ),
    }


def orders_of(organization_id: int) -> list[Order]:
    db.session.flush()
    db.session.expire_all()
    return list(db.session.scalars(services.orders_of(organization_id)))


@pytest.fixture
def in_app(app: Flask) -> Callable[..., Any]:
    """Run `func(*args)` in a fresh app context, commit, and return its result."""

    def run(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with app.app_context():
            result = func(*args, **kwargs)
            db.session.commit()
            return result

    return run
