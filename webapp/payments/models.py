"""Provider orders (one per order and channel) and the audit trail of everything providers said."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from webapp.db import Base, TimestampMixin, UTCDateTime, utcnow


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
    """Every notify, query, create, close, refund and bill exchange, raw and as verified:
    the audit trail.

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
    # notify, query, create, close; refund, refund_query, refund_notify; bill
    source: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    out_trade_no: orm.Mapped[str | None] = orm.mapped_column(sa.String(64), index=True)
    out_refund_no: orm.Mapped[str | None] = orm.mapped_column(sa.String(64), index=True)
    verified: orm.Mapped[bool] = orm.mapped_column(default=False)
    # fulfilled, already_fulfilled, duplicate, superseded, already_recorded, unpaid, closed,
    # created, rejected, error; refunds: pending, succeeded, failed, already_settled
    outcome: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    reason: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="")
    raw: orm.Mapped[str] = orm.mapped_column(sa.Text, default="")
    details: orm.Mapped[dict[str, Any] | None] = orm.mapped_column(sa.JSON)
    created_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)


class PaymentDisposition(enum.StrEnum):
    APPLIED = "applied"  # it paid for the order, which was fulfilled
    DUPLICATE = "duplicate"  # the order was already paid through another channel
    SUPERSEDED = "superseded"  # the order was closed, or no longer applicable, when paid


class Payment(Base):
    """Money received for an order at one channel: a verified, paid trade.

    An order has one provider trade per channel (the same `out_trade_no`), so at
    most one payment per channel: two when a customer paid with both. Refunds go
    back through the channel that holds the money.
    """

    __tablename__ = "payments"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "channel"),
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
    )

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    order_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    channel: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    # WeChat Pay's transaction_id, Alipay's trade_no.
    provider_trade_no: orm.Mapped[str | None] = orm.mapped_column(sa.String(64))
    amount_fen: orm.Mapped[int] = orm.mapped_column(sa.BigInteger)
    disposition: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    # When the provider says it was paid (the bill's date), else when we learnt it.
    paid_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), index=True)
    created_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)


class RefundStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundReason(enum.StrEnum):
    """The reasons the system refunds by itself; operators give their own text."""

    DUPLICATE_PAYMENT = "duplicate_payment"
    SUPERSEDED = "superseded"


class Refund(TimestampMixin, Base):
    """Money sent back through the channel of one payment.

    The row exists (pending) before the provider is asked, so its notify always
    finds it. Non-failed refunds of a payment never add up to more than the
    payment: they are created under the order's row lock.
    """

    __tablename__ = "refunds"
    __table_args__ = (sa.CheckConstraint("amount_fen > 0", name="amount_positive"),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    order_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    payment_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    channel: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    # WeChat Pay's out_refund_no, Alipay's out_request_no.
    out_refund_no: orm.Mapped[str] = orm.mapped_column(sa.String(64), unique=True)
    amount_fen: orm.Mapped[int] = orm.mapped_column(sa.BigInteger)
    status: orm.Mapped[str] = orm.mapped_column(
        sa.String(16), default=RefundStatus.PENDING, index=True
    )
    reason: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    # WeChat Pay's refund_id (Alipay has none: the payment's trade_no identifies it).
    provider_refund_no: orm.Mapped[str | None] = orm.mapped_column(sa.String(64))
    failure_reason: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="")
    # The provider accepted the request (WeChat Pay: it has a refund_id for it).
    accepted_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    succeeded_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime(), index=True)
    failed_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())

    payment: orm.Mapped[Payment] = orm.relationship()
