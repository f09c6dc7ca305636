"""Conversations between a bot's customers, the bot and the organization's agents."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from webapp.db import Base, TimestampMixin, UTCDateTime, utcnow

EXTERNAL_USER_ID_MAX_LENGTH = 128
MESSAGE_TEXT_MAX_LENGTH = 2000
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
ATTACHMENT_FILENAME_MAX_LENGTH = 255


class ConversationStatus(enum.StrEnum):
    OPEN = "open"  # the bot answers
    NEEDS_HUMAN = "needs_human"  # flagged for a person (the bot could not answer)
    CLOSED = "closed"


class Channel(enum.StrEnum):
    API = "api"
    WIDGET = "widget"
    WECHAT = "wechat"
    APP = "app"
    OTHER = "other"


class MessageRole(enum.StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"


class MessageKind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VOICE = "voice"


class Outcome(enum.StrEnum):
    """What became of a customer's message."""

    ANSWERED = "answered"  # the bot answered from the knowledge base
    UNSURE = "unsure"  # the bot offered the closest questions ("您是不是想问") and kept the chat
    PICKED = "picked"  # the customer picked an offered question; the bot answered with its entry
    FALLBACK = "fallback"  # the bot could not: fallback text, and a person was asked for
    ASKED_FOR_HUMAN = "asked_for_human"  # the customer wrote a handoff word: a person was asked for
    AGENT = "agent"  # an agent has the conversation; the bot stayed quiet


# Outcomes after which the conversation waits for a person.
HANDOFF_OUTCOMES = frozenset({Outcome.FALLBACK, Outcome.ASKED_FOR_HUMAN})
# Outcomes of a customer's own question (a pick answers an earlier one; an agent had the chat).
QUESTION_OUTCOMES = frozenset(
    {Outcome.ANSWERED, Outcome.UNSURE, Outcome.FALLBACK, Outcome.ASKED_FOR_HUMAN}
)


class Conversation(TimestampMixin, Base):
    __tablename__ = "conversations"
    __table_args__ = (
        sa.Index(
            "ix_conversations_organization_id_status_last_message_at",
            "organization_id",
            "status",
            "last_message_at",
        ),
        sa.Index("ix_conversations_bot_id_created_at", "bot_id", "created_at"),
    )

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    bot_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("bots.id", ondelete="CASCADE"))
    external_user_id: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(EXTERNAL_USER_ID_MAX_LENGTH)
    )
    channel: orm.Mapped[str] = orm.mapped_column(sa.String(16), default=Channel.API.value)
    status: orm.Mapped[str] = orm.mapped_column(
        sa.String(16), default=ConversationStatus.OPEN.value
    )
    # Widget conversations: a hash of the visitor's secret, the only key to this conversation.
    visitor_token_hash: orm.Mapped[str | None] = orm.mapped_column(sa.String(64))
    handoff_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    # Set by an agent's first reply: from then on the bot stays quiet until returned to it.
    agent_joined_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    closed_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    # Unsure or lost answers in a row; the bot hands off at HANDOFF_AFTER_MISSES.
    bot_misses: orm.Mapped[int] = orm.mapped_column(default=0)
    last_message_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        sa.UniqueConstraint("conversation_id", "idempotency_key"),
        sa.Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        sa.Index("ix_messages_organization_id_created_at", "organization_id", "created_at"),
    )

    id: orm.Mapped[int] = orm.mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    conversation_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("conversations.id", ondelete="CASCADE")
    )
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    bot_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("bots.id", ondelete="CASCADE"))
    role: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    kind: orm.Mapped[str] = orm.mapped_column(sa.String(16), default=MessageKind.TEXT.value)
    text: orm.Mapped[str] = orm.mapped_column(sa.Text, default="")
    # Customer messages: what became of them (and a pick, which entry). Bot replies: how
    # sure, from which entry, and the questions offered when unsure.
    outcome: orm.Mapped[str | None] = orm.mapped_column(sa.String(16))
    confidence: orm.Mapped[float | None]
    suggestions: orm.Mapped[list[dict[str, Any]] | None] = orm.mapped_column(sa.JSON)
    faq_entry_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.ForeignKey("faq_entries.id", ondelete="SET NULL")
    )
    author_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    # A bot reply points at the customer message it answers.
    reply_to_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
        index=True,
    )
    idempotency_key: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    created_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)

    attachment: orm.Mapped[Attachment | None] = orm.relationship(
        back_populates="message", lazy="selectin", uselist=False
    )


class Attachment(Base):
    """An uploaded image or voice clip; kept in the database so web processes stay stateless."""

    __tablename__ = "attachments"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    message_id: orm.Mapped[int] = orm.mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
        unique=True,
    )
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    content_type: orm.Mapped[str] = orm.mapped_column(sa.String(100))
    filename: orm.Mapped[str] = orm.mapped_column(
        sa.String(ATTACHMENT_FILENAME_MAX_LENGTH), default=""
    )
    size: orm.Mapped[int]
    data: orm.Mapped[bytes] = orm.mapped_column(sa.LargeBinary, deferred=True)

    message: orm.Mapped[Message] = orm.relationship(back_populates="attachment")


class WidgetDailyCount(Base):
    """Widget messages a bot took on a day (Asia/Shanghai): what its daily cap is checked on."""

    __tablename__ = "widget_daily_counts"

    bot_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("bots.id", ondelete="CASCADE"), primary_key=True
    )
    day: orm.Mapped[date] = orm.mapped_column(primary_key=True)
    used: orm.Mapped[int]
