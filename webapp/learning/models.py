"""Questions to learn from: one row per bot and wording (normalised), counted as customers ask."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from webapp.db import Base, UTCDateTime, utcnow
from webapp.kb.models import ANSWER_MAX_LENGTH, QUESTION_MAX_LENGTH


class LearningStatus(enum.StrEnum):
    OPEN = "open"  # waiting for an owner or admin
    LEARNED = "learned"  # added to the knowledge base (a similar question, or a new entry)
    DISMISSED = "dismissed"  # not worth an answer; asking again only counts


class LearningItem(Base):
    __tablename__ = "learning_items"
    __table_args__ = (
        sa.UniqueConstraint("bot_id", "question_key"),
        sa.Index(
            "ix_learning_items_bot_id_status_last_seen_at", "bot_id", "status", "last_seen_at"
        ),
    )

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    bot_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("bots.id", ondelete="CASCADE"))
    # The question compacted (webapp.kb.text.compact): wordings that differ only in case,
    # spaces or punctuation are one item.
    question_key: orm.Mapped[str] = orm.mapped_column(sa.String(QUESTION_MAX_LENGTH))
    text: orm.Mapped[str] = orm.mapped_column(sa.String(QUESTION_MAX_LENGTH))  # latest wording
    count: orm.Mapped[int] = orm.mapped_column(default=1)
    first_seen_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)
    status: orm.Mapped[str] = orm.mapped_column(sa.String(16), default=LearningStatus.OPEN.value)
    # The entry a customer picked from the suggestions the question got, if any.
    proposed_entry_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.ForeignKey("faq_entries.id", ondelete="SET NULL")
    )
    # The bot's closest entries when it was last asked, best first (ids; some may be gone).
    candidates: orm.Mapped[list[int]] = orm.mapped_column(sa.JSON, default=list)
    # An agent's reply in the inbox after the question: a new entry's answer, pre-filled.
    proposed_answer: orm.Mapped[str | None] = orm.mapped_column(sa.String(ANSWER_MAX_LENGTH))
    learned_entry_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.ForeignKey("faq_entries.id", ondelete="SET NULL")
    )
    resolved_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
