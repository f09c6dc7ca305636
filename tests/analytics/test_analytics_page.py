"""The analytics page: charts and tables with `analytics` in the plan, else an upgrade prompt."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask

from tests.analytics.test_analytics import add_conversation, add_message
from tests.portal.conftest import Portal, en
from tests.usage.conftest import Tenant
from tests.usage.test_usage_pages import logged_in, table_rows
from webapp.billing.periods import SHANGHAI, day_bounds
from webapp.db import utcnow
from webapp.extensions import db


def seed(app: Flask, tenant: Tenant, bot_id: int) -> None:
    """Today (Beijing time) at 09:xx: 3 customer messages, 1 answered; one handed-off chat."""
    today = utcnow().astimezone(SHANGHAI).date()
    nine = day_bounds(today)[0] + timedelta(hours=9)
    with app.app_context():
        conversation = add_conversation(tenant.id, bot_id, nine, handed_off=True)
        add_message(conversation, nine)
        add_message(conversation, nine + timedelta(minutes=1), "fallback", "可以寄到海外吗？")
        add_message(conversation, nine + timedelta(minutes=2), "fallback", "可以寄到海外吗")
        db.session.commit()


def test_pro_plan_sees_charts_and_tables(app: Flask, make_tenant: Any) -> None:
    tenant = make_tenant(plan="pro")
    bot_id = tenant.add_bot()
    seed(app, tenant, bot_id)
    portal = logged_in(app, tenant)

    html = portal.page("/analytics")

    assert 'id="nav-analytics"' in html
    main = html.split("<main", 1)[1].split("</main>", 1)[0]
    assert main.count("<svg") == 3
    assert 'id="analytics-daily-chart"' in html and 'id="analytics-hours-chart"' in html
    assert 'id="analytics-rates-chart"' in html
    assert "<script" not in main and "kozea.github.io" not in html
    today = utcnow().astimezone(SHANGHAI).date()
    assert f"<title>{en('Customer messages')} · {today:%m-%d}: 3</title>" in html
    days = table_rows(html, "analytics-daily-table")
    # 3 questions, 1 answered; no offers; the one conversation handed off.
    assert len(days) == 30 and days[0] == [str(today), "3", "1", "33.3%", "—", "100.0%"]
    assert all(row[1:] == ["0", "0", "—", "—", "—"] for row in days[1:])
    hours = table_rows(html, "analytics-hours-table")
    assert len(hours) == 24 and hours[9] == ["09:00", "3"] and hours[8] == ["08:00", "0"]
    assert 'id="analytics-messages">3<' in html
    assert 'id="analytics-resolution">33.3%<' in html
    assert 'id="analytics-pick-rate">—<' in html
    assert 'id="analytics-handoff">100.0%<' in html
    unanswered = html.split('id="analytics-unanswered"', 1)[1].split("</table>", 1)[0]
    assert '<tr data-count="2"><td>可以寄到海外吗' in unanswered


def test_range_and_bot_filters(app: Flask, make_tenant: Any) -> None:
    tenant = make_tenant(plan="enterprise")
    front, back = tenant.add_bot("前台"), tenant.add_bot("售后")
    seed(app, tenant, front)
    portal = logged_in(app, tenant)
    today = utcnow().astimezone(SHANGHAI).date()
    week_ago = today - timedelta(days=6)

    week = portal.page(f"/analytics?from={week_ago}&to={today}")
    other_bot = portal.page(f"/analytics?bot={back}")

    assert len(table_rows(week, "analytics-daily-table")) == 7
    assert f'value="{week_ago}"' in week
    assert 'id="analytics-messages">0<' in other_bot
    assert f'<option value="{back}" selected>' in other_bot
    assert 'id="analytics-no-unanswered"' in other_bot
    backwards = portal.page(f"/analytics?from={today}&to={week_ago}")
    assert en("The start day must not be after the end day.") in backwards
    assert len(table_rows(backwards, "analytics-daily-table")) == 30  # the default instead
    assert len(table_rows(portal.page("/analytics?from=nonsense"), "analytics-daily-table")) == 30
    assert len(table_rows(portal.page("/analytics?to=0001-01-01"), "analytics-daily-table")) == 30

    stranger = make_tenant(plan="pro")
    assert portal.get(f"/analytics?bot={stranger.add_bot()}").status_code == 404


def test_free_plan_sees_an_upgrade_prompt_and_no_data(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    seed(app, tenant, bot_id)

    html = logged_in(app, tenant).page("/analytics")

    assert 'id="analytics-upgrade"' in html
    assert 'href="/plans" id="analytics-upgrade-link"' in html
    assert en("Analytics are not in your plan") in html
    assert "<svg" not in html and "可以寄到海外吗" not in html
    assert 'id="analytics-messages"' not in html


def test_analytics_page_needs_a_login_and_an_organization(app: Flask, make_user: Any) -> None:
    anonymous = app.test_client().get("/analytics")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]

    portal = Portal(app.test_client())
    portal.login(make_user().email)
    response = portal.get("/analytics")
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
