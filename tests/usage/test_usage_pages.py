"""The portal's usage page and the quota banner."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask

from tests.portal.conftest import Portal, en
from tests.usage.conftest import RECORD, Tenant
from webapp.billing.periods import SHANGHAI, month_start
from webapp.db import utcnow


def logged_in(app: Flask, tenant: Tenant, lang: str = "en") -> Portal:
    portal = Portal(app.test_client())
    portal.switch_language(lang)
    assert portal.login(tenant.owner.email).status_code == 302
    return portal


def table_rows(html: str, table_id: str) -> list[list[str]]:
    table = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return [
        re.findall(r"<td[^>]*>([^<]*)</td>", row)
        for row in re.findall(r"<tr data-[^>]*>(.*?)</tr>", table, flags=re.S)
    ]


def test_usage_page_shows_stats_and_both_charts(app: Flask, make_tenant: Any) -> None:
    tenant = make_tenant(plan="pro")
    now = utcnow()
    tenant.record("message", 12, at=now)
    tenant.record("image", 3, at=now)
    tenant.record("voice", 40, at=month_start(now) - timedelta(days=40))  # two months back
    portal = logged_in(app, tenant)

    html = portal.page("/usage")

    assert en("Usage") in html
    assert re.search(r'id="usage-used">\s*15 / 50,000', html)
    assert 'data-kind="image">' in html
    # Two inline SVG charts, rendered on the server, nothing fetched from elsewhere.
    assert html.count("<svg") == 2
    assert 'id="daily-chart"' in html and 'id="monthly-chart"' in html
    assert (
        "kozea.github.io" not in html
        and "<script" not in html.split("<main", 1)[1].split("</main>", 1)[0]
    )
    assert en("Monthly quota (right axis)") in html
    # Every point has a hover title, shown by the browser itself.
    today = now.astimezone(SHANGHAI).date()
    assert f"<title>{en('Messages')} · {today:%m-%d}: 12</title>" in html
    assert en("Quota %(n)s", n="50,000") in html  # the quota line of the monthly chart

    days = table_rows(html, "daily-table")
    assert len(days) == 30
    assert days[0] == [str(today), "12", "3", "0", "15"]
    months = table_rows(html, "monthly-table")
    assert len(months) == 12
    assert months[0][0] == f"{today:%Y-%m}" and months[0][-1] == "15"
    back = (month_start(now) - timedelta(days=40)).astimezone(SHANGHAI)
    assert [f"{back:%Y-%m}", "0", "0", "40", "40"] in months


def test_usage_page_filters_by_bot(app: Flask, make_tenant: Any, make_user: Any) -> None:
    tenant = make_tenant(plan="pro")
    front, back = tenant.add_bot("前台机器人"), tenant.add_bot("售后机器人")
    now = utcnow()
    tenant.record("message", 5, at=now, bot_id=front)
    tenant.record("message", 7, at=now, bot_id=back)
    tenant.record("message", 1, at=now)
    portal = logged_in(app, tenant)

    everything = portal.page("/usage")
    only_front = portal.page(f"/usage?bot={front}")

    assert table_rows(everything, "daily-table")[0][-1] == "13"
    assert table_rows(only_front, "daily-table")[0][-1] == "5"
    assert f'<option value="{front}" selected>' in only_front
    # The stats stay the organization's: the quota is shared by every bot.
    assert re.search(r'id="usage-used">\s*13 / 50,000', only_front)
    assert portal.page("/usage?bot=nonsense").count("<svg") == 2  # ignored: all bots

    stranger = make_tenant(plan="pro")
    their_bot = stranger.add_bot()
    assert portal.get(f"/usage?bot={their_bot}").status_code == 404


def test_usage_page_on_an_unlimited_plan(app: Flask, make_tenant: Any) -> None:
    tenant = make_tenant(plan="enterprise")
    tenant.record("voice", 1000, at=utcnow())
    html = logged_in(app, tenant).page("/usage")
    assert re.search(r'id="usage-used">\s*1,000 / ' + en("Unlimited"), html)
    assert en("Monthly quota (right axis)") not in html
    assert 'id="quota-banner"' not in html


def test_usage_page_needs_an_organization(app: Flask, make_user: Any) -> None:
    anonymous = app.test_client().get("/usage")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]

    portal = Portal(app.test_client())
    portal.login(make_user().email)
    response = portal.get("/usage")
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"


def test_quota_banner_from_80_percent(app: Flask, tenant: Tenant) -> None:
    portal = logged_in(app, tenant)
    tenant.api.post(RECORD, json={"kind": "message", "quantity": 799})
    assert 'id="quota-banner"' not in portal.page("/dashboard")

    tenant.api.post(RECORD, json={"kind": "message", "quantity": 1})
    html = portal.page("/dashboard")
    assert 'id="quota-banner"' in html and "alert-warning" in html
    # (Jinja's i18n leaves the msgid's apostrophe as it is; only the values are escaped.)
    assert "You have used 80% of this month's 1,000 messages." in html
    assert 'href="/plans" id="quota-banner-upgrade"' in html
    assert 'id="quota-banner"' in portal.page("/usage")

    tenant.api.post(RECORD, json={"kind": "message", "quantity": 200})
    html = portal.page("/dashboard")
    assert 'data-percent="100"' in html and "alert-danger" in html


def test_quota_banner_follows_the_current_organization(
    app: Flask, make_tenant: Any, make_user: Any
) -> None:
    person = make_user()
    busy, quiet = (
        make_tenant(owner=person, name="忙碌公司"),
        make_tenant(owner=person, name="安静公司"),
    )
    busy.record("message", 900, at=utcnow())
    portal = logged_in(app, busy)

    portal.post(f"/organizations/{busy.id}/switch")
    assert 'id="quota-banner"' in portal.page("/dashboard")
    portal.post(f"/organizations/{quiet.id}/switch")
    assert 'id="quota-banner"' not in portal.page("/dashboard")
    # Nor for pages seen logged out.
    assert 'id="quota-banner"' not in app.test_client().get("/login").get_data(as_text=True)


def test_quota_banner_speaks_chinese_by_default(app: Flask, tenant: Tenant) -> None:
    tenant.record("message", 1000, at=datetime.now(UTC))
    portal = Portal(app.test_client())
    portal.login(tenant.owner.email)
    html = portal.page("/dashboard")
    assert 'id="quota-banner"' in html and 'lang="zh-CN"' in html
