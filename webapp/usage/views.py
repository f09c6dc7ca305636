"""Portal: the usage page (charts of the last 30 days and 12 months) and the quota banner.

Both read only `usage_counters` and the `usage_daily` rollup, like the API.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from webapp.billing.periods import SHANGHAI
from webapp.bots.services import bot_of, bots_of
from webapp.db import utcnow
from webapp.extensions import db
from webapp.portal import bot_arg, current_membership, no_organization
from webapp.usage import charts, services

bp = Blueprint("usage", __name__)

DAYS_SHOWN = 30
MONTHS_SHOWN = 12
BANNER_PERCENT = 80


@bp.app_context_processor
def inject_quota_banner() -> dict[str, Any]:
    """`quota_banner` (the month's stats) once an organization has used 80% of its quota."""
    if not current_user or not current_user.is_authenticated:
        return {}
    membership = current_membership()
    if membership is None:
        return {}
    stats = services.usage_stats(membership.organization_id)
    if stats.percent_used is None or stats.percent_used < BANNER_PERCENT:
        return {}
    return {"quota_banner": stats}


def _months_before(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


@bp.get("/usage")
@login_required
def index() -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    organization_id = membership.organization_id
    bot = bot_of(organization_id, bot_id) if (bot_id := bot_arg()) is not None else None
    stats = services.usage_stats(organization_id)
    today = utcnow().astimezone(SHANGHAI).date()
    since = today - timedelta(days=DAYS_SHOWN - 1)
    # From the first of since's month, so the chart's month-to-date line starts right.
    days = services.usage_history(organization_id, since.replace(day=1), today, "day", bot_id)
    months = services.usage_history(
        organization_id, _months_before(today, MONTHS_SHOWN - 1), today, "month", bot_id
    )
    quota = stats.limit
    return render_template(
        "usage/index.html",
        stats=stats,
        bots=db.session.scalars(bots_of(organization_id)).all(),
        bot=bot,
        days=[point for point in days if point.period >= since],
        months=months,
        daily_chart=charts.daily_chart(days, since, quota),
        monthly_chart=charts.monthly_chart(months, quota),
        kind_labels=charts.kind_labels(),
    )
