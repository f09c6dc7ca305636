"""Usage metering: raw records, a per-month counter for quota checks, a daily rollup.

- `usage_records` keeps every metered call (audit, idempotency). It only grows;
  nothing reads it on the hot path except the idempotency lookup (unique index).
  An idempotency key is unique within its organization and scope: `api` for the keys
  clients send to the usage API, `conversation:<id>` for the keys of customer
  messages. A client's key can therefore never answer for a message, whatever it
  looks like.
- `usage_counters` holds one row per organization and calendar month (Asia/Shanghai):
  the quota is checked and consumed there by one conditional UPDATE.
- `usage_daily` is the rollup that stats and history read, so their cost follows
  the number of days asked for, not the number of records.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy import orm

from webapp.db import Base, UTCDateTime, utcnow

IDEMPOTENCY_KEY_MAX_LENGTH = 255
API_SCOPE = "api"  # the idempotency scope of keys sent to the usage API


class UsageKind(enum.StrEnum):
    MESSAGE = "message"
    IMAGE = "image"
    VOICE = "voice"

    @property
    def required_feature(self) -> str | None:
        """The plan feature a kind needs; plain messages need none."""
        return None if self is UsageKind.MESSAGE else self.value


class UsageRecord(Base):
    __tablename__ = "usage_records"
    __table_args__ = (
        sa.UniqueConstraint(
            "organization_id",
            "idempotency_scope",
            "idempotency_key",
            name="uq_usage_records_idempotency",
        ),
        sa.Index("ix_usage_records_organization_id_created_at", "organization_id", "created_at"),
    )

    id: orm.Mapped[int] = orm.mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    bot_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.ForeignKey("bots.id", ondelete="SET NULL")
    )
    api_key_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.ForeignKey("api_keys.id", ondelete="SET NULL")
    )
    kind: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    quantity: orm.Mapped[int]
    idempotency_scope: orm.Mapped[str] = orm.mapped_column(
        sa.String(64), default=API_SCOPE, server_default=API_SCOPE
    )
    idempotency_key: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(IDEMPOTENCY_KEY_MAX_LENGTH)
    )
    period_start: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime())
    # The month's counter right after this record: replays answer with it.
    used_after: orm.Mapped[int] = orm.mapped_column(sa.BigInteger, default=0)
    created_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)


class UsageCounter(Base):
    __tablename__ = "usage_counters"

    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    period_start: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), primary_key=True)
    used: orm.Mapped[int] = orm.mapped_column(sa.BigInteger, default=0)


class UsageDaily(Base):
    """Per organization, Shanghai day, bot (0 = none) and kind: the sum of quantities."""

    __tablename__ = "usage_daily"
    __table_args__ = (sa.UniqueConstraint("organization_id", "day", "bot_id", "kind"),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    day: orm.Mapped[date]
    # No foreign key: the rollup outlives deleted bots; 0 means "no bot".
    bot_id: orm.Mapped[int] = orm.mapped_column(default=0)
    kind: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    quantity: orm.Mapped[int] = orm.mapped_column(sa.BigInteger, default=0)
