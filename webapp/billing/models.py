from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
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
    """Every organization has exactly one current subscription.

    A paid period runs from `current_period_start` to `current_period_end`
    (whole calendar months, Asia/Shanghai). A prepaid move to a lower plan
    waits in `scheduled_plan` / `scheduled_months` until the period ends.
    """

    __tablename__ = "subscriptions"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), unique=True
    )
    plan_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("plans.id"), index=True)
    status: orm.Mapped[str] = orm.mapped_column(sa.String(16), default=SubscriptionStatus.ACTIVE)
    current_period_start: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime())
    # None for the free plan, which never ends.
    current_period_end: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime(), index=True)
    cancel_at_period_end: orm.Mapped[bool] = orm.mapped_column(default=False)
    scheduled_plan_id: orm.Mapped[int | None] = orm.mapped_column(sa.ForeignKey("plans.id"))
    scheduled_months: orm.Mapped[int | None]

    organization: orm.Mapped[Organization] = orm.relationship(back_populates="subscription")
    plan: orm.Mapped[Plan] = orm.relationship(foreign_keys=[plan_id])
    scheduled_plan: orm.Mapped[Plan | None] = orm.relationship(foreign_keys=[scheduled_plan_id])


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    CLOSED = "closed"


ORDER_STATUS_LABELS = {
    OrderStatus.PENDING: _l("Awaiting payment"),
    OrderStatus.PAID: _l("Paid"),
    OrderStatus.CLOSED: _l("Closed"),
}


class OrderKind(enum.StrEnum):
    NEW = "new"  # from free (or after the paid period ended)
    RENEWAL = "renewal"  # the current plan, extending the period
    UPGRADE = "upgrade"  # a higher plan now, crediting the unused days
    DOWNGRADE = "downgrade"  # a lower plan, starting when the paid period ends
    GRANT = "grant"  # given by an operator, nothing to pay


class Order(TimestampMixin, Base):
    """A purchase of `months` of `plan`. Every amount is integer fen, computed by the server.

    `amount_fen = list_price_fen - credit_fen`. An order is fulfilled at most
    once (`fulfilled_at`), by `billing.services.fulfil_order`.
    """

    __tablename__ = "orders"
    __table_args__ = (
        sa.CheckConstraint("months BETWEEN 1 AND 120", name="months_range"),
        sa.CheckConstraint("amount_fen >= 0 AND credit_fen >= 0", name="amounts_not_negative"),
        sa.CheckConstraint("amount_fen = list_price_fen - credit_fen", name="amount_adds_up"),
    )

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    plan_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("plans.id"))
    kind: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    months: orm.Mapped[int]
    list_price_fen: orm.Mapped[int] = orm.mapped_column(sa.BigInteger)
    credit_fen: orm.Mapped[int] = orm.mapped_column(sa.BigInteger, default=0)
    amount_fen: orm.Mapped[int] = orm.mapped_column(sa.BigInteger)
    currency: orm.Mapped[str] = orm.mapped_column(sa.String(3), default="CNY")
    status: orm.Mapped[str] = orm.mapped_column(
        sa.String(16), default=OrderStatus.PENDING, index=True
    )
    # The payment channel (wechat, alipay; manual for grants) and the provider's references.
    channel: orm.Mapped[str | None] = orm.mapped_column(sa.String(16))
    out_trade_no: orm.Mapped[str] = orm.mapped_column(sa.String(32), unique=True)
    provider_trade_no: orm.Mapped[str | None] = orm.mapped_column(sa.String(64))
    created_by_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    expires_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime())
    paid_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    closed_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    fulfilled_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())

    plan: orm.Mapped[Plan] = orm.relationship()
    organization: orm.Mapped[Organization] = orm.relationship()


class SentNotice(Base):
    """A notice (reminder, quota warning) that was sent: the unique key makes it once-only."""

    __tablename__ = "sent_notices"
    __table_args__ = (sa.UniqueConstraint("organization_id", "kind", "period_key"),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    kind: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    period_key: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    sent_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime())
