"""Portal: the analytics page (plans with `analytics`; others see an upgrade prompt)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, render_template, request
from flask_login import login_required
from werkzeug.wrappers import Response

from webapp.analytics import charts, services
from webapp.billing.services import plan_of
from webapp.bots.services import bot_of, bots_of
from webapp.errors import AppError
from webapp.extensions import db
from webapp.portal import bot_arg, current_membership, no_organization

bp = Blueprint("analytics", __name__)


def _date_arg(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


@bp.get("/analytics")
@login_required
def index() -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    organization_id = membership.organization_id
    if not plan_of(organization_id).has_feature(services.FEATURE):
        return render_template("analytics/upgrade.html")
    bot = bot_of(organization_id, bot_id) if (bot_id := bot_arg()) is not None else None
    try:
        numbers = services.analytics(organization_id, _date_arg("from"), _date_arg("to"), bot_id)
    except AppError as exc:  # a range backwards or too long: the default one instead
        flash(exc.message, "warning")
        numbers = services.analytics(organization_id, bot_id=bot_id)
    return render_template(
        "analytics/index.html",
        numbers=numbers,
        bots=db.session.scalars(bots_of(organization_id)).all(),
        bot=bot,
        daily_chart=charts.daily_chart(numbers.days),
        rates_chart=charts.rates_chart(numbers.days),
        hours_chart=charts.hours_chart(numbers.hours),
    )
