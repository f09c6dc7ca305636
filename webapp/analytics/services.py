"""Conversation analytics, aggregated in the database (GROUP BY), never row by row.

Days and hours are Asia/Shanghai. The bucketing is the one place where the SQL
differs by database: PostgreSQL converts with `timezone()`, SQLite (the embedded
default, which stores naive UTC text) shifts by eight hours, Shanghai having had
no daylight saving time since 1991. Messages are read through their
(organization_id, created_at) index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from flask_babel import gettext as _

from webapp.billing.periods import SHANGHAI, day_bounds
from webapp.billing.services import plan_of
from webapp.bots.services import bot_of
from webapp.conversations.models import (
    QUESTION_OUTCOMES,
    Conversation,
    Message,
    MessageKind,
    MessageRole,
    Outcome,
)
from webapp.db import utcnow
from webapp.errors import AppError, Forbidden
from webapp.extensions import db

FEATURE = "analytics"
DEFAULT_DAYS = 30
MAX_DAYS = 366
# Far enough out for any real question, and clear of date.min/max in UTC arithmetic.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(9998, 12, 31)
TOP_UNANSWERED = 10
HOURS = 24
# Dropped before grouping questions, so "退货?" and "退货？ " count as one.
IGNORED_CHARACTERS = (
    " ",
    "\u3000",
    "\t",
    "\n",
    "?",
    "？",
    "!",
    "！",
    ".",
    "。",
    ",",
    "，",
    "~",
    "～",
)


_SQLITE_SHIFT: sa.ColumnClause[str] = sa.literal_column("'+8 hours'")


def _share(part: int, whole: int) -> float | None:
    """part / whole, at most 1 (None: nothing to share). A customer may pick twice from
    one offer, so picks can outnumber the questions they answer."""
    return min(part / whole, 1.0) if whole else None


@dataclass(frozen=True)
class DayCount:
    day: date
    messages: int  # customer messages
    answered: int  # of which the bot answered from the knowledge base
    questions: int = 0  # customer questions the bot handled (QUESTION_OUTCOMES)
    unsure: int = 0  # of which it was unsure of, and offered suggestions
    picked: int = 0  # suggestions picked
    conversations: int = 0  # conversations started this day
    handoffs: int = 0  # of those, handed to a person

    @property
    def resolved(self) -> int:
        """Questions the bot resolved: answered directly, or by a picked suggestion."""
        return self.answered + self.picked

    @property
    def resolution_rate(self) -> float | None:
        return _share(self.resolved, self.questions)

    @property
    def pick_rate(self) -> float | None:
        """Of the questions the bot was unsure of, how many ended in a pick."""
        return _share(self.picked, self.unsure)

    @property
    def handoff_rate(self) -> float | None:
        return _share(self.handoffs, self.conversations)


@dataclass(frozen=True)
class UnansweredQuestion:
    text: str  # one customer's wording of it
    count: int


@dataclass(frozen=True)
class Analytics:
    start: date  # inclusive, Asia/Shanghai
    end: date  # inclusive
    days: list[DayCount]  # every day of the range, zeros included
    outcomes: dict[str, int]  # customer messages by outcome
    conversations: int  # started in the range
    handoffs: int  # of those, handed to a person
    unanswered: list[UnansweredQuestion]  # most asked first
    hours: list[int]  # customer messages by hour of day, 0-23

    @property
    def messages(self) -> int:
        return sum(self.outcomes.values())

    @property
    def answered_share(self) -> float | None:
        """Answered by the bot, of all customer messages (None: no messages)."""
        return self.outcomes[Outcome.ANSWERED] / self.messages if self.messages else None

    @property
    def questions(self) -> int:
        return sum(self.outcomes[outcome] for outcome in QUESTION_OUTCOMES)

    @property
    def resolution_rate(self) -> float | None:
        """Answered or resolved by a pick, of the customers' questions."""
        resolved = self.outcomes[Outcome.ANSWERED] + self.outcomes[Outcome.PICKED]
        return _share(resolved, self.questions)

    @property
    def pick_rate(self) -> float | None:
        return _share(self.outcomes[Outcome.PICKED], self.outcomes[Outcome.UNSURE])

    @property
    def handoff_rate(self) -> float | None:
        return self.handoffs / self.conversations if self.conversations else None


def default_range(today: date | None = None) -> tuple[date, date]:
    """The last 30 days, today (Asia/Shanghai) included."""
    today = today or utcnow().astimezone(SHANGHAI).date()
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def require_analytics(organization_id: int) -> None:
    if not plan_of(organization_id).has_feature(FEATURE):
        raise Forbidden(
            _("Analytics are not in your plan; upgrade to use them."),
            error="feature_not_in_plan",
        )


def shanghai_bucket(column: Any, unit: Literal["day", "hour"]) -> sa.ColumnElement[Any]:
    """The Asia/Shanghai day (a date) or hour (0-23) of a UTC timestamp column."""
    # Constants inline, not bound: GROUP BY must repeat the select's expression exactly.
    if db.session.get_bind().dialect.name == "postgresql":
        local = sa.func.timezone(sa.literal_column(f"'{SHANGHAI.key}'"), column)
        if unit == "day":
            return sa.cast(local, sa.Date)
        return sa.cast(sa.extract("hour", local), sa.Integer)
    if unit == "day":
        return sa.type_coerce(sa.func.date(column, _SQLITE_SHIFT), sa.Date)
    return sa.cast(sa.func.strftime(sa.literal_column("'%H'"), column, _SQLITE_SHIFT), sa.Integer)


def analytics(
    organization_id: int,
    start: date | None = None,
    end: date | None = None,
    bot_id: int | None = None,
) -> Analytics:
    """The numbers of the days from `start` to `end` (inclusive), of one bot or all.

    Without `end`: up to today; without `start`: the 30 days that end with `end`.
    """
    require_analytics(organization_id)
    end = end or utcnow().astimezone(SHANGHAI).date()
    if not FIRST_DAY <= end <= LAST_DAY or (start is not None and start < FIRST_DAY):
        raise AppError(
            _("Ask for days from %(first)s to %(last)s.", first=FIRST_DAY, last=LAST_DAY),
            error="validation_error",
            status=422,
        )
    start = start or default_range(end)[0]
    if start > end:
        raise AppError(
            _("The start day must not be after the end day."), error="validation_error", status=422
        )
    if (end - start).days >= MAX_DAYS:
        raise AppError(
            _("Ask for at most %(n)d days.", n=MAX_DAYS), error="validation_error", status=422
        )
    if bot_id is not None:
        bot_of(organization_id, bot_id)
    since, until = day_bounds(start)[0], day_bounds(end)[1]

    def customer_messages(*columns: Any) -> sa.Select[Any]:
        query = sa.select(*columns).where(
            Message.organization_id == organization_id,
            Message.created_at >= since,
            Message.created_at < until,
            Message.role == MessageRole.CUSTOMER.value,
        )
        return query if bot_id is None else query.where(Message.bot_id == bot_id)

    count = sa.func.count().label("n")
    day = shanghai_bucket(Message.created_at, "day").label("day")
    per_day: dict[date, dict[str, int]] = {}
    outcomes = {outcome.value: 0 for outcome in Outcome}
    for bucket, outcome, n in db.session.execute(
        customer_messages(day, Message.outcome, count).group_by(day, Message.outcome)
    ):
        per_day.setdefault(bucket, {})[outcome] = int(n)
        if outcome in outcomes:
            outcomes[outcome] += int(n)
    started_day = shanghai_bucket(Conversation.created_at, "day").label("day")
    started = (
        sa.select(started_day, count, sa.func.count(Conversation.handoff_at))
        .where(
            Conversation.organization_id == organization_id,
            Conversation.created_at >= since,
            Conversation.created_at < until,
        )
        .group_by(started_day)
    )
    if bot_id is not None:
        started = started.where(Conversation.bot_id == bot_id)
    conversations_per_day = {
        bucket: (int(n), int(handoffs)) for bucket, n, handoffs in db.session.execute(started)
    }
    days = []
    for offset in range((end - start).days + 1):
        this_day = start + timedelta(days=offset)
        counts = per_day.get(this_day, {})
        conversations_started, handed_off = conversations_per_day.get(this_day, (0, 0))
        days.append(
            DayCount(
                this_day,
                sum(counts.values()),
                counts.get(Outcome.ANSWERED.value, 0),
                questions=sum(counts.get(outcome.value, 0) for outcome in QUESTION_OUTCOMES),
                unsure=counts.get(Outcome.UNSURE.value, 0),
                picked=counts.get(Outcome.PICKED.value, 0),
                conversations=conversations_started,
                handoffs=handed_off,
            )
        )

    hour = shanghai_bucket(Message.created_at, "hour").label("hour")
    hours = [0] * HOURS
    for bucket, n in db.session.execute(customer_messages(hour, count).group_by(hour)):
        hours[int(bucket)] = int(n)

    key: sa.ColumnElement[str] = sa.func.lower(Message.text)
    for character in IGNORED_CHARACTERS:
        key = sa.func.replace(key, character, "")
    fallbacks = (
        customer_messages(key.label("question"), Message.text)
        .where(Message.outcome == Outcome.FALLBACK.value, Message.kind == MessageKind.TEXT.value)
        .subquery()
    )
    unanswered_rows = db.session.execute(
        sa.select(sa.func.min(fallbacks.c.text), count)
        .group_by(fallbacks.c.question)
        .order_by(count.desc(), fallbacks.c.question)
        .limit(TOP_UNANSWERED)
    )
    unanswered = [UnansweredQuestion(str(text), int(n)) for text, n in unanswered_rows]

    conversations = sum(n for n, _handoffs in conversations_per_day.values())
    handoffs = sum(handoffs for _n, handoffs in conversations_per_day.values())
    return Analytics(
        start=start,
        end=end,
        days=days,
        outcomes=outcomes,
        conversations=int(conversations),
        handoffs=int(handoffs),
        unanswered=unanswered,
        hours=hours,
    )
