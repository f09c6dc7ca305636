"""In Chromium: the usage page's charts render from the app alone (no outside requests).

The screenshots are saved as test-artifacts/usage-page.png (all bots) and
test-artifacts/usage-page-bot.png (one bot). The usage fixtures come from
tests/usage; this file lives here to share the one Chromium of the session.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, expect

from tests.factories import DEFAULT_PASSWORD
from tests.usage import conftest as usage_fixtures
from webapp.billing.periods import SHANGHAI
from webapp.db import utcnow
from webapp.extensions import db
from webapp.usage.models import UsageKind
from webapp.usage.services import MAX_QUANTITY, record_usage


def seed(
    app: Flask, organization_id: int, day: date, kind: str, total: int, bot: int | None
) -> None:
    """`total` messages at noon of a Shanghai day, in calls of at most 1,000."""
    at = datetime(day.year, day.month, day.day, 12, tzinfo=SHANGHAI).astimezone(UTC)
    at = min(at, utcnow())
    with app.app_context():
        while total > 0:
            quantity = min(total, MAX_QUANTITY)
            record_usage(organization_id, UsageKind(kind), quantity, bot_id=bot, now=at)
            total -= quantity
        db.session.commit()


make_tenant = usage_fixtures.make_tenant  # the fixture, for this module's test


@pytest.mark.browser
def test_usage_page_draws_its_charts_offline(
    app: Flask,
    live_server: str,
    make_tenant: Any,
    new_context: Callable[[], BrowserContext],
    artifacts_dir: Path,
) -> None:
    tenant = make_tenant(plan="pro", name="图表测试公司")
    front, back = tenant.add_bot("前台机器人"), tenant.add_bot("售后机器人")
    today = utcnow().astimezone(SHANGHAI).date()
    for i in range(30):
        day = today - timedelta(days=i)
        seed(app, tenant.id, day, "message", 600 + i * 137 % 500, front)
        seed(app, tenant.id, day, "message", 200 + i * 71 % 300, back)
        seed(app, tenant.id, day, "image", 80 + i * 53 % 150, front)
        seed(app, tenant.id, day, "voice", 30 + i * 29 % 90, None)
    first_of_month = today.replace(day=1)
    for months_back in range(1, 12):
        index = first_of_month.year * 12 + first_of_month.month - 1 - months_back
        day = date(index // 12, index % 12 + 1, 15)
        if day < today - timedelta(days=45):  # the recent days are seeded above
            seed(app, tenant.id, day, "message", 12000 + months_back * 1700 % 9000, front)
            seed(app, tenant.id, day, "image", 2500 + months_back * 900 % 3000, front)
            seed(app, tenant.id, day, "voice", 900 + months_back * 400 % 1500, None)

    context = new_context()
    page = context.new_page()
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if not request.url.startswith((live_server, "data:"))
            else None
        ),
    )
    page.goto(f"{live_server}/login")
    form = page.locator("main form")
    form.locator("input[name=email]").fill(tenant.owner.email)
    form.locator("input[name=password]").fill(DEFAULT_PASSWORD)
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{live_server}/dashboard")

    page.locator("#nav-usage").click()
    expect(page).to_have_url(f"{live_server}/usage")
    daily, monthly = page.locator("#daily-chart svg"), page.locator("#monthly-chart svg")
    expect(daily).to_be_visible()
    expect(monthly).to_be_visible()
    # Drawn at the page's width, with one line per kind plus the running total and quota.
    box = daily.bounding_box()
    assert box is not None and box["width"] > 800
    expect(page.locator("#daily-chart .legend")).to_have_count(5)
    expect(page.locator("#monthly-chart .legend")).to_have_count(3)
    expect(page.locator("#monthly-chart .bar")).to_have_count(3 * 12)
    expect(page.locator("#monthly-chart .axis.y .major")).to_have_count(2)  # the quota guide
    page.screenshot(path=str(artifacts_dir / "usage-page.png"), full_page=True)

    page.locator("#bot").select_option(str(back))
    page.locator("#bot-filter-submit").click()
    expect(page).to_have_url(f"{live_server}/usage?bot={back}")
    expect(page.locator("#daily-chart svg")).to_be_visible()
    first_row = page.locator(f'#daily-table tr[data-day="{today.isoformat()}"] td').last
    expect(first_row).to_have_text(str(200 + 0 * 71 % 300), use_inner_text=False)
    page.screenshot(path=str(artifacts_dir / "usage-page-bot.png"), full_page=True)

    assert outside == []
