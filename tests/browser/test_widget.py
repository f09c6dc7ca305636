"""In Chromium: the widget embedded in a page of another origin answers, hands off, and
shows the reply an agent types in the inbox.

The host page is served by a second HTTP server on 127.0.0.1 (another port: another
origin), which the bot allows; the script comes from the live server. Screenshots:
test-artifacts/widget-answers.png, widget-inbox.png and widget-agent-reply.png.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, expect

from tests.conversations import embed
from tests.factories import DEFAULT_PASSWORD
from tests.kb import add_tea_faq
from tests.usage import conftest as usage_fixtures

make_tenant = usage_fixtures.make_tenant  # the fixture, for this module's test

HOST_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>茶叶小店</title>
<style>button {{ background: red; }} div {{ font-size: 40px; }}</style></head>
<body><h1>茶叶小店</h1><p>欢迎选购。</p>
<script src="{script}" data-bot="{key}" defer></script>
</body></html>
"""


@pytest.fixture
def host_site() -> Iterator[Callable[[str], str]]:
    """Serves one HTML page from its own port; give it the page, get its origin."""
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get("page", b"")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="host-site", daemon=True)
    thread.start()

    def serve(html: str) -> str:
        pages["page"] = html.encode()
        return f"http://127.0.0.1:{server.server_port}"

    try:
        yield serve
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def tea_shop(
    make_tenant: Any, live_server: str, host_site: Callable[[str], str], **settings: Any
) -> tuple[Any, str]:
    """A tea shop whose bot (the tea FAQ, these settings) is embedded on the host site."""
    tenant = make_tenant(name="茶叶小店")
    bot_id = tenant.add_bot("小茶")
    add_tea_faq(tenant.api, bot_id)
    tenant.api.patch(f"/api/v1/bots/{bot_id}", json=settings)
    host_origin = host_site("")
    key = embed(tenant, bot_id, [host_origin])
    host_site(HOST_PAGE.format(script=f"{live_server}/widget.js", key=key))
    return tenant, host_origin


@pytest.mark.browser
def test_widget_on_another_site_answers_hands_off_and_shows_the_agent(
    app: Flask,
    live_server: str,
    make_tenant: Any,
    host_site: Callable[[str], str],
    new_context: Callable[[], BrowserContext],
    artifacts_dir: Path,
) -> None:
    tenant, host_origin = tea_shop(  # suggestions only when fairly sure: a stranger hands off
        make_tenant,
        live_server,
        host_site,
        greeting="您好，我是小茶，有什么可以帮您？",
        suggest_threshold=0.5,
    )

    visitor = new_context().new_page()
    visitor.goto(host_origin + "/")
    visitor.locator(".launcher").click()  # Playwright's CSS reaches into the open shadow root
    expect(visitor.locator(".msg.bot").first).to_have_text("您好，我是小茶，有什么可以帮您？")

    visitor.locator("textarea.input").fill("请问下单后多久发货？")
    visitor.locator("textarea.input").press("Enter")
    expect(visitor.locator(".msg.customer").last).to_have_text("请问下单后多久发货？")
    expect(visitor.locator(".msg.bot").last).to_have_text("现货商品付款后48小时内发货。")

    visitor.locator("textarea.input").fill("你们的老板是谁？")
    visitor.locator("button.send").click()
    expect(visitor.locator(".notice")).to_contain_text("人工客服")
    expect(visitor.locator(".msg.bot")).to_have_count(3)  # greeting, answer, fallback
    visitor.screenshot(path=str(artifacts_dir / "widget-answers.png"))

    agent = new_context().new_page()
    agent.goto(f"{live_server}/login")
    agent.locator("input[name=email]").fill(tenant.owner.email)
    agent.locator("input[name=password]").fill(DEFAULT_PASSWORD)
    agent.locator("main form button[type=submit]").click()
    agent.locator("#nav-inbox").click()
    expect(agent.locator("#needs-human-count")).to_have_text("1")
    agent.locator("#conversations tr[data-status=needs_human] a").first.click()
    expect(agent.locator("#transcript")).to_contain_text("你们的老板是谁？")
    agent.locator("#reply-form textarea[name=text]").fill("您好，我是店长小李，请问有什么事？")
    agent.locator("#reply-form button[type=submit]").click()
    expect(agent.locator("#transcript [data-role=agent]")).to_contain_text("店长小李")
    agent.screenshot(path=str(artifacts_dir / "widget-inbox.png"), full_page=True)

    reply = visitor.locator(".msg.agent")
    expect(reply).to_contain_text("您好，我是店长小李，请问有什么事？", timeout=10_000)
    visitor.screenshot(path=str(artifacts_dir / "widget-agent-reply.png"))

    # A reload resumes the same conversation from localStorage.
    visitor.reload()
    visitor.locator(".launcher").click()
    expect(visitor.locator(".msg.agent")).to_contain_text("店长小李")
    expect(visitor.locator(".msg.customer")).to_have_count(2)


@pytest.mark.browser
def test_on_a_phone_the_visitor_taps_a_suggestion(
    app: Flask,
    live_server: str,
    make_tenant: Any,
    host_site: Callable[[str], str],
    new_context: Callable[[], BrowserContext],
    artifacts_dir: Path,
) -> None:
    """An unsure bot offers buttons (the thresholds make it unsure); a tap answers."""
    _tenant, host_origin = tea_shop(
        make_tenant, live_server, host_site, answer_threshold=0.99, suggest_threshold=0.01
    )
    phone = {"width": 375, "height": 700}

    visitor = new_context().new_page()
    visitor.set_viewport_size(phone)
    visitor.goto(host_origin + "/")
    visitor.locator(".launcher").click()
    visitor.locator("textarea.input").fill("我想把买的东西退回去，要怎么弄")
    visitor.locator("textarea.input").press("Enter")

    offer = visitor.locator(".msg.bot").first  # no greeting: the first reply is the offer
    expect(offer).to_contain_text("您是不是想问")
    buttons = offer.locator(".suggestions button")
    expect(buttons.first).to_be_visible()
    assert 1 <= buttons.count() <= 3
    for index in range(buttons.count()):
        box = buttons.nth(index).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= phone["width"]
    visitor.screenshot(path=str(artifacts_dir / "widget-suggestions-phone.png"))

    offer.locator(".suggestions button", has_text="退货流程是什么？").click()

    expect(visitor.locator(".msg.customer").last).to_have_text("退货流程是什么？")
    expect(visitor.locator(".msg.bot").last).to_have_text("在订单页申请退货，审核通过后寄回商品。")
    expect(visitor.locator(".notice")).to_have_count(0)  # no handoff
    visitor.screenshot(path=str(artifacts_dir / "widget-suggestion-picked-phone.png"))

    # A newer offer switches the earlier buttons off: only the latest can be picked.
    visitor.locator("textarea.input").fill("发票怎么弄呢")
    visitor.locator("textarea.input").press("Enter")
    expect(visitor.locator(".msg.bot .suggestions")).to_have_count(2)
    expect(offer.locator(".suggestions button").first).to_be_disabled()
