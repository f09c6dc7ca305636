"""The widget's daily cap: how many visitor messages a bot takes per day (Asia/Shanghai).

The publishable key is public, so anyone can talk to a bot through its widget, and
every message counts against the organization's monthly quota. The cap (the owner's,
or by default 20% of the plan's monthly quota; `bots.services.widget_daily_limit`)
keeps one day of abuse from spending the month. Like the month's counter
(`webapp/usage/services.py`), it is checked and consumed by one conditional upsert
on the bot's row for the day, so concurrent messages never go past it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from webapp.billing.periods import SHANGHAI
from webapp.bots.models import Bot
from webapp.bots.services import widget_daily_limit
from webapp.conversations.models import WidgetDailyCount
from webapp.db import utcnow
from webapp.errors import AppError
from webapp.extensions import db

# One more message, only while the day's count stays within the cap (NULL: none). The
# upsert locks the row, so checking and counting are one atomic step.
_COUNT = sa.text(
    "INSERT INTO widget_daily_counts (bot_id, day, used) SELECT :bot_id, :day, 1 "
    "WHERE :cap IS NULL OR :cap >= 1 "
    "ON CONFLICT (bot_id, day) DO UPDATE SET used = widget_daily_counts.used + 1 "
    "WHERE :cap IS NULL OR widget_daily_counts.used + 1 <= :cap "
    "RETURNING used"
).bindparams(sa.bindparam("day", type_=sa.Date()), sa.bindparam("cap", type_=sa.Integer()))


class WidgetCapReached(AppError):
    status = 429
    error = "widget_daily_cap_reached"


def _reached(now: datetime) -> WidgetCapReached:
    today = now.astimezone(SHANGHAI)
    midnight = datetime.combine(today.date() + timedelta(days=1), datetime.min.time(), SHANGHAI)
    return WidgetCapReached(
        _("This chat has taken all the messages it can today; please come back tomorrow."),
        headers={"Retry-After": str(max(int((midnight - today).total_seconds()), 1))},
    )


def used_today(bot_id: int, now: datetime | None = None) -> int:
    day = (now or utcnow()).astimezone(SHANGHAI).date()
    used = db.session.scalar(
        sa.select(WidgetDailyCount.used).where(
            WidgetDailyCount.bot_id == bot_id, WidgetDailyCount.day == day
        )
    )
    return used or 0


def refuse_over_cap(bot: Bot, now: datetime | None = None) -> None:
    """Refuse before answering when the day's cap is already used up (a read, no lock)."""
    now = now or utcnow()
    limit = widget_daily_limit(bot)
    if limit is not None and used_today(bot.id, now) >= limit:
        raise _reached(now)


def count_widget_message(bot: Bot, now: datetime | None = None) -> int:
    """Count one widget message against the bot's cap for today, or raise (the caller's
    rollback then leaves nothing stored or metered). The last step before the commit."""
    now = now or utcnow()
    used = db.session.scalar(
        _COUNT,
        {
            "bot_id": bot.id,
            "day": now.astimezone(SHANGHAI).date(),
            "cap": widget_daily_limit(bot),
        },
    )
    if used is None:
        raise _reached(now)
    return int(used)
