"""Plans and subscriptions."""

from __future__ import annotations

import sqlalchemy as sa

from webapp.billing.models import Plan, Subscription
from webapp.db import utcnow
from webapp.errors import NotFound
from webapp.extensions import db
from webapp.orgs.models import Organization

FREE_PLAN_CODE = "free"


def public_plans() -> list[Plan]:
    return list(db.session.scalars(sa.select(Plan).where(Plan.is_public).order_by(Plan.sort_order)))


def plan_by_code(code: str) -> Plan:
    plan = db.session.scalar(sa.select(Plan).where(Plan.code == code))
    if plan is None:
        raise NotFound(f"No plan {code!r}.", error="plan_not_found")
    return plan


def start_free_subscription(organization: Organization) -> Subscription:
    subscription = Subscription(
        organization=organization,
        plan=plan_by_code(FREE_PLAN_CODE),
        current_period_start=utcnow(),
        current_period_end=None,
    )
    db.session.add(subscription)
    return subscription
