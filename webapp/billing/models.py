from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask_babel import get_locale
from sqlalchemy import orm

from webapp.db import Base, TimestampMixin, UTCDateTime

if TYPE_CHECKING:
    from webapp.orgs.models import Organization


class Plan(Base):
    """A plan's price, limits and features are data, seeded by a migration.

    A `None` limit means unlimited.
    """

    __tablename__ = "plans"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    code: orm.Mapped[str] = orm.mapped_column(sa.String(32), unique=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    name_en: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    price_fen: orm.Mapped[int] = orm.mapped_column(sa.BigInteger)
    currency: orm.Mapped[str] = orm.mapped_column(sa.String(3), default="CNY")
    monthly_message_quota: orm.Mapped[int | None] = orm.mapped_column(sa.BigInteger)
    bot_limit: orm.Mapped[int | None]
    features: orm.Mapped[list[str]] = orm.mapped_column(sa.JSON, default=list)
    sort_order: orm.Mapped[int] = orm.mapped_column(default=0)
    is_public: orm.Mapped[bool] = orm.mapped_column(default=True)

    @property
    def display_name(self) -> str:
        locale = get_locale()
        return self.name if locale is None or locale.language == "zh" else self.name_en

    @property
    def limits(self) -> dict[str, Any]:
        return {"monthly_messages": self.monthly_message_quota, "bots": self.bot_limit}

    def has_feature(self, feature: str) -> bool:
        return feature in self.features


class SubscriptionStatus(enum.StrEnum):
    ACTIVE = "active"


class Subscription(TimestampMixin, Base):
    """Every organization has exactly one current subscription."""

    __tablename__ = "subscriptions"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), unique=True
    )
    plan_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("plans.id"), index=True)
    status: orm.Mapped[str] = orm.mapped_column(sa.String(16), default=SubscriptionStatus.ACTIVE)
    current_period_start: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime())
    # None for the free plan, which never ends.
    current_period_end: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    cancel_at_period_end: orm.Mapped[bool] = orm.mapped_column(default=False)

    organization: orm.Mapped[Organization] = orm.relationship(back_populates="subscription")
    plan: orm.Mapped[Plan] = orm.relationship()
