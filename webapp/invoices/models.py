"""发票 requests: an organization asks for an invoice of a paid order; an operator issues
(uploads the PDF) or rejects it."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from webapp.db import Base, TimestampMixin, UTCDateTime

TITLE_MAX_LENGTH = 100
BANK_NAME_MAX_LENGTH = 100
BANK_ACCOUNT_MAX_LENGTH = 40
ADDRESS_MAX_LENGTH = 200
PHONE_MAX_LENGTH = 30


class InvoiceType(enum.StrEnum):
    NORMAL = "normal"  # 增值税普通发票
    SPECIAL = "special"  # 增值税专用发票: also the buyer's bank and registered address


class InvoiceStatus(enum.StrEnum):
    REQUESTED = "requested"
    ISSUED = "issued"
    REJECTED = "rejected"


ACTIVE_STATUSES = (InvoiceStatus.REQUESTED, InvoiceStatus.ISSUED)
_ACTIVE = sa.text("status IN ('requested', 'issued')")


class InvoiceRequest(TimestampMixin, Base):
    """One request for a 发票 of one order; a rejected one may be followed by another."""

    __tablename__ = "invoice_requests"
    __table_args__ = (
        # One active (requested or issued) request per order, whatever the races.
        sa.Index(
            "uq_invoice_requests_order_id_active",
            "order_id",
            unique=True,
            postgresql_where=_ACTIVE,
            sqlite_where=_ACTIVE,
        ),
    )

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    order_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    requested_by_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    type: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    title: orm.Mapped[str] = orm.mapped_column(sa.String(TITLE_MAX_LENGTH))
    tax_id: orm.Mapped[str] = orm.mapped_column(sa.String(20))
    email: orm.Mapped[str] = orm.mapped_column(sa.String(254))
    bank_name: orm.Mapped[str] = orm.mapped_column(sa.String(BANK_NAME_MAX_LENGTH), default="")
    bank_account: orm.Mapped[str] = orm.mapped_column(
        sa.String(BANK_ACCOUNT_MAX_LENGTH), default=""
    )
    registered_address: orm.Mapped[str] = orm.mapped_column(
        sa.String(ADDRESS_MAX_LENGTH), default=""
    )
    registered_phone: orm.Mapped[str] = orm.mapped_column(sa.String(PHONE_MAX_LENGTH), default="")
    amount_fen: orm.Mapped[int] = orm.mapped_column(sa.BigInteger)
    status: orm.Mapped[str] = orm.mapped_column(
        sa.String(16), default=InvoiceStatus.REQUESTED, index=True
    )
    reject_reason: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="")
    # The issued 发票, as the operator uploaded it; loaded only when downloaded.
    pdf: orm.Mapped[bytes | None] = orm.mapped_column(sa.LargeBinary, deferred=True)
    issued_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    rejected_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
