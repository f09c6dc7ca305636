from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from webapp.db import Base, TimestampMixin, UTCDateTime, utcnow

BOT_NAME_MAX_LENGTH = 100
BOT_TEXT_MAX_LENGTH = 500
API_KEY_NAME_MAX_LENGTH = 100
PUBLISHABLE_KEY_PREFIX = "pk"
DEFAULT_ANSWER_THRESHOLD = 0.83
DEFAULT_SUGGEST_THRESHOLD = 0.02
WIDGET_TITLE_MAX_LENGTH = 60
LOGO_URL_MAX_LENGTH = 500
DEFAULT_WIDGET_COLOR = "#1677ff"
MAX_ALLOWED_ORIGINS = 20
# A customer who writes one of these (in a short message) is handed to a person.
DEFAULT_HANDOFF_WORDS = ("人工", "转人工", "找客服")
MAX_HANDOFF_WORDS = 20
HANDOFF_WORD_MAX_LENGTH = 10
# Widget messages per bot per day (Asia/Shanghai) unless the owner sets a cap: this share of
# the plan's monthly quota (none on plans without a quota).
DEFAULT_WIDGET_CAP_SHARE = 0.2
MAX_WIDGET_DAILY_CAP = 10_000_000


def new_publishable_key() -> str:
    """The widget's key: public by design (it sits in the embedding page), so stored as is."""
    return f"{PUBLISHABLE_KEY_PREFIX}_{secrets.token_urlsafe(18)}"


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
    # Answering (webapp.kb.engines.decide): from `answer_threshold` the bot answers; from
    # `suggest_threshold` it offers the closest questions; below, it says `fallback_text`
    # and asks for a person.
    answer_threshold: orm.Mapped[float] = orm.mapped_column(default=DEFAULT_ANSWER_THRESHOLD)
    suggest_threshold: orm.Mapped[float] = orm.mapped_column(default=DEFAULT_SUGGEST_THRESHOLD)
    fallback_text: orm.Mapped[str] = orm.mapped_column(sa.String(BOT_TEXT_MAX_LENGTH), default="")
    handoff_words: orm.Mapped[list[str]] = orm.mapped_column(
        sa.JSON, default=lambda: list(DEFAULT_HANDOFF_WORDS)
    )
    # Bumped by every change to the bot's FAQ: answer indexes rebuild when it moves.
    knowledge_version: orm.Mapped[int] = orm.mapped_column(default=0)
    # The web widget: its key, the sites allowed to embed it, and its branding.
    publishable_key: orm.Mapped[str] = orm.mapped_column(
        sa.String(40), unique=True, default=new_publishable_key
    )
    allowed_origins: orm.Mapped[list[str]] = orm.mapped_column(sa.JSON, default=list)
    widget_title: orm.Mapped[str] = orm.mapped_column(
        sa.String(WIDGET_TITLE_MAX_LENGTH), default=""
    )
    widget_color: orm.Mapped[str] = orm.mapped_column(sa.String(7), default=DEFAULT_WIDGET_COLOR)
    widget_logo_url: orm.Mapped[str] = orm.mapped_column(sa.String(LOGO_URL_MAX_LENGTH), default="")
    show_powered_by: orm.Mapped[bool] = orm.mapped_column(default=True)
    # Widget messages a day; None: the default (DEFAULT_WIDGET_CAP_SHARE of the plan's quota).
    widget_daily_cap: orm.Mapped[int | None]


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
