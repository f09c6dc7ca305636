"""The knowledge base: FAQ entries per bot, and answering a question from them.

Any member may read a bot's entries; owners and admins change them. Every
change bumps the bot's `knowledge_version` in the same transaction, which is
what tells each process's answer index to rebuild (see `webapp.kb.engines`).
Saving an entry stores the sentence vectors of its new texts (`entry_saved`); an
import leaves that to a job (`webapp.kb.tasks.embed_bot`).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from flask_babel import gettext as _

from webapp.bots.models import Bot
from webapp.bots.services import bot_of
from webapp.errors import AppError, NotFound
from webapp.extensions import db
from webapp.kb.answering import answer_engine, uses_vectors
from webapp.kb.engines import Answer
from webapp.kb.models import (
    ANSWER_MAX_LENGTH,
    MAX_SIMILAR_QUESTIONS,
    QUESTION_MAX_LENGTH,
    FaqEntry,
)
from webapp.kb.vectors import store_vectors
from webapp.orgs.models import OrganizationMember


def entries_of(bot_id: int, search: str | None = None) -> sa.Select[FaqEntry]:
    """A bot's entries, oldest first; `search` matches question, answer or similar phrasings."""
    query = sa.select(FaqEntry).where(FaqEntry.bot_id == bot_id).order_by(FaqEntry.id)
    if search and (search := search.strip()):
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            sa.or_(
                FaqEntry.question.ilike(pattern, escape="\\"),
                FaqEntry.answer.ilike(pattern, escape="\\"),
                sa.cast(FaqEntry.similar_questions, sa.Text).ilike(pattern, escape="\\"),
            )
        )
    return query


def entry_of(
    organization_id: int, bot_id: int, entry_id: int, *, for_update: bool = False
) -> FaqEntry:
    """An entry of this organization's bot, or 404 (also for another organization's).
    `for_update` locks its row until the transaction ends, for changes computed from it:
    FOR NO KEY UPDATE, the lock an UPDATE takes, so rows that only point at the entry
    (a customer's pick inserts a message referencing it) are not held up by it."""
    query = sa.select(FaqEntry).where(
        FaqEntry.id == entry_id,
        FaqEntry.bot_id == bot_id,
        FaqEntry.organization_id == organization_id,
    )
    if for_update:
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    entry = db.session.scalar(query)
    if entry is None:
        raise NotFound(_("FAQ entry not found."), error="faq_entry_not_found")
    return entry


def clean_question(question: str) -> str:
    question = question.strip()
    if not question:
        raise AppError(_("A question is required."), error="validation_error", status=422)
    if len(question) > QUESTION_MAX_LENGTH:
        raise AppError(
            _("A question has at most %(n)d characters.", n=QUESTION_MAX_LENGTH),
            error="validation_error",
            status=422,
        )
    return question


def clean_answer(answer: str) -> str:
    answer = answer.strip()
    if not answer:
        raise AppError(_("An answer is required."), error="validation_error", status=422)
    if len(answer) > ANSWER_MAX_LENGTH:
        raise AppError(
            _("An answer has at most %(n)d characters.", n=ANSWER_MAX_LENGTH),
            error="validation_error",
            status=422,
        )
    return answer


def clean_similar(similar: Iterable[str], question: str) -> list[str]:
    """Trimmed, without blanks, repeats or the question itself; at most 20 of them."""
    kept: list[str] = []
    for phrasing in similar:
        phrasing = phrasing.strip()
        if phrasing and phrasing != question and phrasing not in kept:
            kept.append(clean_question(phrasing))
    if len(kept) > MAX_SIMILAR_QUESTIONS:
        raise AppError(
            _("At most %(n)d similar questions per entry.", n=MAX_SIMILAR_QUESTIONS),
            error="validation_error",
            status=422,
        )
    return kept


def knowledge_changed(bot_id: int) -> None:
    """Bump the bot's knowledge version (atomically, so concurrent changes never share one)."""
    db.session.execute(
        sa.update(Bot)
        .where(Bot.id == bot_id)
        .values(knowledge_version=Bot.knowledge_version + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.expire_all()


def entry_saved(entry: FaqEntry) -> None:
    """Store the vectors of the entry's new texts, in this transaction (a few milliseconds
    per text), when the engine uses them: the bot answers with them from the next question."""
    if uses_vectors():
        store_vectors([entry])


def new_entry(
    bot: Bot, question: str, answer: str, similar: Iterable[str] = (), is_enabled: bool = True
) -> FaqEntry:
    """A validated entry for `bot`, added to the session (the caller bumps the version)."""
    question = clean_question(question)
    entry = FaqEntry(
        organization_id=bot.organization_id,
        bot_id=bot.id,
        question=question,
        answer=clean_answer(answer),
        similar_questions=clean_similar(similar, question),
        is_enabled=is_enabled,
    )
    db.session.add(entry)
    return entry


def create_entry(
    actor: OrganizationMember,
    bot_id: int,
    question: str,
    answer: str,
    similar: Iterable[str] = (),
    is_enabled: bool = True,
) -> FaqEntry:
    actor.require_manager()
    bot = bot_of(actor.organization_id, bot_id)
    entry = new_entry(bot, question, answer, similar, is_enabled)
    db.session.flush()
    entry_saved(entry)
    knowledge_changed(bot.id)
    return entry


def update_entry(
    actor: OrganizationMember, bot_id: int, entry_id: int, **changes: object
) -> FaqEntry:
    """Change question, answer, similar_questions or is_enabled (only those given)."""
    actor.require_manager()
    entry = entry_of(actor.organization_id, bot_id, entry_id, for_update=True)
    if isinstance(question := changes.get("question"), str):
        entry.question = clean_question(question)
    if isinstance(answer := changes.get("answer"), str):
        entry.answer = clean_answer(answer)
    similar = changes.get("similar_questions")
    if isinstance(similar, list):
        entry.similar_questions = clean_similar(similar, entry.question)
    else:  # a new question may now repeat one of the similar phrasings
        entry.similar_questions = clean_similar(entry.similar_questions, entry.question)
    if isinstance(enabled := changes.get("is_enabled"), bool):
        entry.is_enabled = enabled
    db.session.flush()
    entry_saved(entry)
    knowledge_changed(bot_id)
    return entry_of(actor.organization_id, bot_id, entry_id)


def add_similar_question(
    actor: OrganizationMember, bot_id: int, entry_id: int, phrasing: str
) -> FaqEntry:
    """Teach an entry one more way customers ask it (the learning loop). A phrasing the entry
    already has, or its question, changes nothing. The entry is locked while its list grows,
    so that concurrent additions all stay (each appends to the list the one before wrote)."""
    actor.require_manager()
    entry = entry_of(actor.organization_id, bot_id, entry_id, for_update=True)
    phrasing = clean_question(phrasing)
    if phrasing == entry.question or phrasing in entry.similar_questions:
        return entry
    entry.similar_questions = clean_similar([*entry.similar_questions, phrasing], entry.question)
    db.session.flush()
    entry_saved(entry)  # one text, one vector
    knowledge_changed(bot_id)
    return entry_of(actor.organization_id, bot_id, entry_id)


def delete_entry(actor: OrganizationMember, bot_id: int, entry_id: int) -> None:
    actor.require_manager()
    entry = entry_of(actor.organization_id, bot_id, entry_id)
    db.session.delete(entry)
    db.session.flush()
    knowledge_changed(bot_id)


def answer_question(bot: Bot, question: str) -> Answer:
    """What the bot answers to `question` (nothing is stored or metered here)."""
    return answer_engine().answer(bot, question)
