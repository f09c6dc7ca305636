"""The knowledge base: per-bot FAQ entries that the answer engines retrieve from."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import orm

from webapp.db import Base, TimestampMixin

QUESTION_MAX_LENGTH = 500
ANSWER_MAX_LENGTH = 5000
MAX_SIMILAR_QUESTIONS = 20


class FaqEntry(TimestampMixin, Base):
    __tablename__ = "faq_entries"
    __table_args__ = (sa.Index("ix_faq_entries_bot_id_id", "bot_id", "id"),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    bot_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("bots.id", ondelete="CASCADE"))
    question: orm.Mapped[str] = orm.mapped_column(sa.String(QUESTION_MAX_LENGTH))
    answer: orm.Mapped[str] = orm.mapped_column(sa.Text)
    # Other ways customers ask the same thing; each is matched like the question.
    similar_questions: orm.Mapped[list[str]] = orm.mapped_column(sa.JSON, default=list)
    is_enabled: orm.Mapped[bool] = orm.mapped_column(default=True)


class FaqVector(Base):
    """The sentence vector of one text of an entry (its question, a similar question or
    its answer) under one model, keyed by the text's digest: an unchanged text is never
    embedded again, and a changed one gets a new row (see `webapp.kb.vectors`)."""

    __tablename__ = "faq_vectors"
    __table_args__ = (sa.UniqueConstraint("entry_id", "model", "digest"),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    entry_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("faq_entries.id", ondelete="CASCADE")
    )
    model: orm.Mapped[str] = orm.mapped_column(sa.String(40))
    digest: orm.Mapped[bytes] = orm.mapped_column(sa.LargeBinary(16))
    vector: orm.Mapped[bytes] = orm.mapped_column(sa.LargeBinary)  # float32, little-endian
