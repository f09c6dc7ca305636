"""Period maths, table-driven: month ends, leap years, Shanghai time, proration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from webapp.billing.periods import (
    SHANGHAI,
    add_months,
    month_start,
    next_month_start,
    unused_credit_fen,
)


def sh(*parts: int) -> datetime:
    """A moment given in Shanghai wall-clock time."""
    return datetime(*parts, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.mark.parametrize(
    ("start", "months", "anchor", "expected"),
    [
        (sh(2026, 1, 15, 10), 1, None, sh(2026, 2, 15, 10)),
        (sh(2026, 1, 31, 10), 1, None, sh(2026, 2, 28, 10)),  # clamped
        (sh(2028, 1, 31, 10), 1, None, sh(2028, 2, 29, 10)),  # leap year
        (sh(2026, 2, 28, 10), 1, 31, sh(2026, 3, 31, 10)),  # back to the anchor day
        (sh(2026, 1, 31, 10), 3, None, sh(2026, 4, 30, 10)),
        (sh(2026, 11, 30, 0), 2, None, sh(2027, 1, 30, 0)),  # across the year
        (sh(2026, 3, 31, 23, 30), 12, None, sh(2027, 3, 31, 23, 30)),
        (sh(2024, 2, 29, 8), 12, None, sh(2025, 2, 28, 8)),  # leap day, next year
        (sh(2026, 5, 1, 0), 0, None, sh(2026, 5, 1, 0)),
    ],
)
def test_add_months_clamps_to_month_end(start, months, anchor, expected):
    assert add_months(start, months, anchor) == expected


def test_add_months_uses_shanghai_calendar_not_utc():
    # 2026-01-31 20:00 UTC is already 1 February in Shanghai.
    moment = datetime(2026, 1, 31, 20, tzinfo=UTC)
    assert add_months(moment, 1) == sh(2026, 3, 1, 4)


@pytest.mark.parametrize(
    ("moment", "start", "following"),
    [
        (sh(2026, 2, 14, 12), sh(2026, 2, 1), sh(2026, 3, 1)),
        (sh(2026, 12, 31, 23, 59), sh(2026, 12, 1), sh(2027, 1, 1)),
        (
            datetime(2026, 4, 30, 16, 0, tzinfo=UTC),
            sh(2026, 5, 1),
            sh(2026, 6, 1),
        ),  # Shanghai midnight
        (datetime(2026, 4, 30, 15, 59, tzinfo=UTC), sh(2026, 4, 1), sh(2026, 5, 1)),
    ],
)
def test_calendar_month_boundaries_are_shanghai_midnight(moment, start, following):
    assert month_start(moment) == start
    assert next_month_start(moment) == following


@pytest.mark.parametrize(
    ("paid", "start", "end", "now", "credit"),
    [
        (19900, sh(2026, 4, 1), sh(2026, 5, 1), sh(2026, 4, 16), 9950),  # half of 30 days
        (19900, sh(2026, 4, 1), sh(2026, 5, 1), sh(2026, 4, 1), 19900),  # unused
        (19900, sh(2026, 4, 1), sh(2026, 5, 1), sh(2026, 3, 20), 19900),  # before the start
        (19900, sh(2026, 4, 1), sh(2026, 5, 1), sh(2026, 5, 1), 0),  # over
        (19900, sh(2026, 4, 1), sh(2026, 5, 1), sh(2026, 6, 1), 0),
        (19900, sh(2026, 4, 1), sh(2026, 5, 1), sh(2026, 4, 21), 6634),  # 6633.33 rounds up
        (
            100,
            sh(2026, 4, 1),
            sh(2026, 5, 1),
            sh(2026, 4, 30, 23, 59, 59),
            1,
        ),  # a second left: 1 fen
        (0, sh(2026, 4, 1), sh(2026, 5, 1), sh(2026, 4, 10), 0),  # free plan
        (59700, sh(2026, 1, 31), sh(2026, 4, 30), sh(2026, 3, 16, 12), 29850),  # 44.5 of 89 days
    ],
)
def test_unused_credit_rounds_in_the_customers_favour(paid, start, end, now, credit):
    assert unused_credit_fen(paid, start, end, now) == credit
