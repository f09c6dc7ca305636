"""The learning loop: the questions a bot was unsure or lost on, and teaching it with them.

Conversations record each such question as it is stored (`record_question`): one item per
bot and compacted wording, counted by an upsert (INSERT ... ON CONFLICT DO UPDATE), so
concurrent askers add up without a lost update. What helps the owner decide is kept on the
item: the bot's closest entries when last asked, the entry a customer picked from the
suggestions (`propose_entry`), and an agent's reply in the inbox (`propose_answer`).

Any member may read the list; owners and admins teach the bot with an item (one more
phrasing of an entry, or a new entry, through the knowledge base's services) or dismiss it.
A learned question that the bot is unsure of again comes back; a dismissed one only counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from flask_babel import gettext as _

from webapp.bots.services import bot_of
from webapp.core.sql import upsert_insert
from webapp.db import utcnow
from webapp.errors import Conflict, NotFound
from webapp.extensions import db
from webapp.kb import services as kb
from webapp.kb.models import ANSWER_MAX_LENGTH, QUESTION_MAX_LENGTH, FaqEntry
from webapp.kb.text import compact
from webapp.learning.models import LearningItem, LearningStatus
from webapp.orgs.models import OrganizationMember

MAX_CANDIDATES = 5
Sort = Literal["frequent", "recent"]


def question_key(text: str) -> str | None:
    """The item a question belongs to; None for one that cannot become a phrasing."""
    key = compact(text)[:QUESTION_MAX_LENGTH]
    return key if key and len(text.strip()) <= QUESTION_MAX_LENGTH else None


def record_question(
    organization_id: int,
    bot_id: int,
    text: str,
    candidates: Sequence[int] = (),
    now: datetime | None = None,
) -> None:
    """Count a question the bot was unsure or lost on (the caller stores the message)."""
    key = question_key(text)
    if key is None:
        return
    now = now or utcnow()
    db.session.execute(
        _count_question(),
        {
            "organization_id": organization_id,
            "bot_id": bot_id,
            "question_key": key,
            "text": text.strip(),
            "count": 1,
            "first_seen_at": now,
            "last_seen_at": now,
            "status": LearningStatus.OPEN.value,
            "candidates": list(candidates[:MAX_CANDIDATES]),
        },
    )


_COUNT_QUESTION: dict[str, sa.Insert] = {}  # per database dialect


def _count_question() -> sa.Insert:
    """The upsert that counts a question, built once per dialect (building it costs more
    than running it: its `excluded` alone is a few milliseconds of Python)."""
    dialect = db.session.get_bind().dialect.name
    statement = _COUNT_QUESTION.get(dialect)
    if statement is None:
        insert = upsert_insert(LearningItem)
        reopened = sa.case(
            (LearningItem.status == LearningStatus.LEARNED.value, LearningStatus.OPEN.value),
            else_=LearningItem.status,
        )
        statement = _COUNT_QUESTION[dialect] = insert.on_conflict_do_update(
            index_elements=["bot_id", "question_key"],
            set_={
                "count": LearningItem.count + 1,
                "text": insert.excluded.text,
                "last_seen_at": insert.excluded.last_seen_at,
                "candidates": insert.excluded.candidates,
                "status": reopened,
            },
        )
    return statement


def _open_item(bot_id: int, text: str) -> sa.Update | None:
    key = question_key(text)
    if key is None:
        return None
    return (
        sa.update(LearningItem)
        .where(
            LearningItem.bot_id == bot_id,
            LearningItem.question_key == key,
            LearningItem.status == LearningStatus.OPEN.value,
        )
        .execution_options(synchronize_session=False)
    )


def propose_entry(bot_id: int, text: str, entry_id: int) -> None:
    """A customer asked `text`, was offered suggestions and picked `entry_id`."""
    update = _open_item(bot_id, text)
    if update is not None:
        db.session.execute(update.values(proposed_entry_id=entry_id))


def propose_answer(bot_id: int, text: str, answer: str) -> None:
    """An agent answered `text` in the inbox: a new entry's answer, if the owner wants one."""
    update = _open_item(bot_id, text)
    if update is not None and answer.strip():
        db.session.execute(update.values(proposed_answer=answer.strip()[:ANSWER_MAX_LENGTH]))


# --- the list, and what owners and admins do with it --------------------------------------


def items_of(
    organization_id: int,
    bot_id: int,
    status: LearningStatus = LearningStatus.OPEN,
    sort: Sort = "frequent",
) -> sa.Select[LearningItem]:
    """A bot's items with this status: most asked first (then latest), or latest first."""
    bot = bot_of(organization_id, bot_id)
    query = sa.select(LearningItem).where(
        LearningItem.bot_id == bot.id, LearningItem.status == status.value
    )
    if sort == "frequent":
        return query.order_by(
            LearningItem.count.desc(), LearningItem.last_seen_at.desc(), LearningItem.id.desc()
        )
    return query.order_by(LearningItem.last_seen_at.desc(), LearningItem.id.desc())


def open_count(bot_id: int) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(LearningItem)
            .where(LearningItem.bot_id == bot_id, LearningItem.status == LearningStatus.OPEN.value)
        )
        or 0
    )


def item_of(
    organization_id: int, bot_id: int, item_id: int, *, for_update: bool = False
) -> LearningItem:
    """An item of this organization's bot, or 404 (also for another organization's)."""
    bot = bot_of(organization_id, bot_id)
    query = sa.select(LearningItem).where(LearningItem.id == item_id, LearningItem.bot_id == bot.id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    item = db.session.scalar(query)
    if item is None:
        raise NotFound(_("Question to learn not found."), error="learning_item_not_found")
    return item


def entry_questions(bot_id: int, items: Sequence[LearningItem]) -> dict[int, str]:
    """The questions of the entries the items point at that still exist, in one query."""
    ids = {entry_id for item in items for entry_id in item.candidates}
    ids |= {item.proposed_entry_id for item in items if item.proposed_entry_id is not None}
    rows = db.session.execute(
        sa.select(FaqEntry.id, FaqEntry.question).where(
            FaqEntry.bot_id == bot_id, FaqEntry.id.in_(ids)
        )
    )
    return {entry_id: question for entry_id, question in rows}


def choices(item: LearningItem, questions: dict[int, str]) -> list[tuple[int, str]]:
    """The entries to offer for "add as a similar question", the proposed one first."""
    ids = [item.proposed_entry_id] if item.proposed_entry_id is not None else []
    ids += [entry_id for entry_id in item.candidates if entry_id not in ids]
    return [(entry_id, questions[entry_id]) for entry_id in ids if entry_id in questions]


def _unresolved(actor: OrganizationMember, bot_id: int, item_id: int) -> LearningItem:
    actor.require_manager()
    item = item_of(actor.organization_id, bot_id, item_id, for_update=True)
    if item.status == LearningStatus.LEARNED:
        raise Conflict(_("This question has been learned already."), error="already_learned")
    return item


def _learned(item: LearningItem, entry: FaqEntry) -> LearningItem:
    item.status = LearningStatus.LEARNED.value
    item.learned_entry_id = entry.id
    item.resolved_at = utcnow()
    db.session.flush()
    return item


def learn_as_similar(
    actor: OrganizationMember,
    bot_id: int,
    item_id: int,
    entry_id: int,
    phrasing: str | None = None,
) -> LearningItem:
    """Add the question (or the owner's edit of it) as a similar question of an entry."""
    item = _unresolved(actor, bot_id, item_id)
    entry = kb.add_similar_question(actor, bot_id, entry_id, phrasing or item.text)
    return _learned(item, entry)


def learn_as_entry(
    actor: OrganizationMember,
    bot_id: int,
    item_id: int,
    answer: str,
    question: str | None = None,
) -> LearningItem:
    """Make a new entry of the question (or the owner's edit of it) and an answer."""
    item = _unresolved(actor, bot_id, item_id)
    entry = kb.create_entry(actor, bot_id, question or item.text, answer)
    return _learned(item, entry)


def dismiss(actor: OrganizationMember, bot_id: int, item_id: int) -> LearningItem:
    """Not worth an answer: off the list; asking it again only counts."""
    item = _unresolved(actor, bot_id, item_id)
    if item.status != LearningStatus.DISMISSED:
        item.status = LearningStatus.DISMISSED.value
        item.resolved_at = utcnow()
    db.session.flush()
    return item
