"""Provider orders (one per order and channel) and the audit trail of everything providers said."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from webapp.db import Base, UTCDateTime, utcnow


class Channel(enum.StrEnum):
    WECHAT = "wechat"
    ALIPAY = "alipay"


class ProviderOrder(Base):
    """The order as created at a provider: the QR `code_url` or the cashier `pay_url`.

    Creating again for the same order and channel returns this row, so the
    customer always sees the same provider order.
    """

    __tablename__ = "provider_orders"
    __table_args__ = (sa.UniqueConstraint("order_id", "channel"),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    order_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    channel: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    pay_url: orm.Mapped[str] = orm.mapped_column(sa.Text)
    created_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)
    closed_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())


class PaymentEvent(Base):
    """Every notify, query, create and close result, raw and as verified: the audit trail.

    Rejected notifies are kept here too, with the reason; they change nothing else.
    """

    __tablename__ = "payment_events"
    __table_args__ = (sa.Index("ix_payment_events_order_id_created_at", "order_id", "created_at"),)

    id: orm.Mapped[int] = orm.mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    order_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.ForeignKey("orders.id", ondelete="SET NULL")
    )
    channel: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    source: orm.Mapped[str] = orm.mapped_column(sa.String(16))  # notify, query, create, close
    out_trade_no: orm.Mapped[str | None] = orm.mapped_column(sa.String(64), index=True)
    verified: orm.Mapped[bool] = orm.mapped_column(default=False)
    # fulfilled, already_fulfilled, unpaid, closed, created, rejected, error
    outcome: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    reason: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="")
    raw: orm.Mapped[str] = orm.mapped_column(sa.Text, default="")
    details: orm.Mapped[dict[str, Any] | None] = orm.mapped_column(sa.JSON)
    created_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)
