from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from webapp.db import Base, TimestampMixin, UTCDateTime, utcnow

BOT_NAME_MAX_LENGTH = 100
BOT_TEXT_MAX_LENGTH = 500
API_KEY_NAME_MAX_LENGTH = 100


class Bot(TimestampMixin, Base):
    __tablename__ = "bots"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: orm.Mapped[str] = orm.mapped_column(sa.String(BOT_NAME_MAX_LENGTH))
    description: orm.Mapped[str] = orm.mapped_column(sa.String(BOT_TEXT_MAX_LENGTH), default="")
    greeting: orm.Mapped[str] = orm.mapped_column(sa.String(BOT_TEXT_MAX_LENGTH), default="")
    is_enabled: orm.Mapped[bool] = orm.mapped_column(default=True)


class ApiKey(Base):
    """A secret for bots: `sk_<prefix>_<secret>`, shown once; only a hash of it is stored."""

    __tablename__ = "api_keys"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    # Bound to one bot, or None for any bot of the organization.
    bot_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.ForeignKey("bots.id", ondelete="CASCADE"), index=True
    )
    name: orm.Mapped[str] = orm.mapped_column(sa.String(API_KEY_NAME_MAX_LENGTH))
    prefix: orm.Mapped[str] = orm.mapped_column(sa.String(16), unique=True)
    secret_hash: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    created_by_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    revoked_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())

    bot: orm.Mapped[Bot | None] = orm.relationship()
