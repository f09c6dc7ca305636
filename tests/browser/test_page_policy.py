"""In Chromium, under the Content-Security-Policy: /docs (Swagger UI) renders, and the
portal's confirmations and the key's copy button work without inline script (issue 12,
item 3). Any CSP violation a page reports fails the test (see `new_context`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Dialog, expect

from tests.factories import DEFAULT_PASSWORD


@pytest.mark.browser
def test_docs_and_portal_scripts_work_under_the_policy(
    live_server: str, make_user: Any, new_context: Callable[[], BrowserContext]
) -> None:
    page = new_context().new_page()
    page.goto(f"{live_server}/docs")
    expect(page.locator(".opblock").first).to_be_visible()  # Swagger UI ran and read the spec

    user = make_user()
    page.goto(f"{live_server}/login")
    page.locator("input[name=email]").fill(user.email)
    page.locator("input[name=password]").fill(DEFAULT_PASSWORD)
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(f"{live_server}/dashboard")
    page.locator("#create-first-org").click()
    page.locator("main form input[name=name]").fill("策略测试公司")
    page.locator("main form button[type=submit]").click()
    page.goto(f"{live_server}/bots")
    page.locator("#create-bot-form input[name=name]").fill("小茶")
    page.locator("#create-bot-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r".*/bots/\d+$"))
    bot_url = page.url

    questions: list[str] = []

    def decline(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", decline)
    page.locator("#delete-bot button[type=submit]").click()
    expect(page).to_have_url(bot_url)  # declined: nothing was posted
    assert len(questions) == 1 and questions[0]

    page.goto(f"{live_server}/api-keys")
    page.locator("#api-key-form input[name=name]").fill("官网")
    page.locator("#api-key-form button[type=submit]").click()
    key = page.locator("#new-api-key-value").input_value()
    assert key.startswith("sk_")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page.locator("#copy-api-key").click()
    expect(page.locator("#copy-api-key")).not_to_have_text(re.compile("^(复制|Copy)$"))
    assert page.evaluate("navigator.clipboard.readText()") == key
