"""Calendar arithmetic for billing periods and quotas.

Periods are whole calendar months in Asia/Shanghai (the customers' clock).
Adding months clamps to the month's end (Jan 31 + 1 month = Feb 28/29) but
remembers the anchor day, so a period that started on the 31st comes back to
the 31st whenever the month has one.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
MICROSECOND = timedelta(microseconds=1)


def add_months(moment: datetime, months: int, anchor_day: int | None = None) -> datetime:
    local = moment.astimezone(SHANGHAI)
    month_index = local.month - 1 + months
    year, month = local.year + month_index // 12, month_index % 12 + 1
    day = min(anchor_day or local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(UTC)


def month_start(moment: datetime) -> datetime:
    """The start of the calendar month (Asia/Shanghai) that contains `moment`, in UTC."""
    local = moment.astimezone(SHANGHAI)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def next_month_start(moment: datetime) -> datetime:
    return add_months(month_start(moment), 1)


def unused_credit_fen(paid_fen: int, start: datetime, end: datetime, now: datetime) -> int:
    """The unpaid-for remainder of a period, rounded up to the fen (the customer's favour)."""
    if paid_fen <= 0 or now >= end:
        return 0
    total = (end - start) // MICROSECOND
    remaining = (end - max(now, start)) // MICROSECOND
    return min(paid_fen, -(-paid_fen * remaining // total))  # exact integer ceiling


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The start of a Shanghai calendar day and of the next one, in UTC."""
    start = datetime.combine(day, time.min, SHANGHAI)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)
