"""End to end in Chromium: buy Pro with WeChat Pay and with Alipay in the payment sandbox.

A new user signs up, creates an organization and orders Pro. WeChat Pay: the order
page shows the QR code; its link (what scanning does) opens the sandbox, which pays;
the order page notices by itself, and the usage page shows the new limit. Alipay:
the browser goes to the cashier, pays, and comes back to the return page, which
shows the order paid. Elements are picked by id so the test holds in any language.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.test_signup_invite_flow import sign_up
from tests.payments.conftest import (  # noqa: F401  (the sandbox's live server)
    payments_live_server,
    sandbox_instance,
)
from tests.payments.support import Shop, shop_fixture  # noqa: F401


def new_customer(page: Page, base_url: str, label: str) -> None:
    """Sign up, create an organization, and order one month of Pro: ends on the order page."""
    run = uuid.uuid4().hex[:12]
    page.goto(f"{base_url}/signup")
    sign_up(page, f"Buyer {label}", f"checkout-{label}-{run}@example.com")
    expect(page).to_have_url(f"{base_url}/dashboard")
    page.locator("#create-first-org").click()
    page.locator("main form input[name=name]").fill(f"浏览器支付公司 {run}")
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(f"{base_url}/dashboard")

    page.goto(f"{base_url}/billing/checkout?plan=pro")
    page.locator("#checkout-form select[name=plan]").select_option("pro")
    page.locator("#checkout-form select[name=months]").select_option("1")
    page.locator("#create-order").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(base_url)}/billing/orders/\d+$"))
    expect(page.locator("#order-status")).to_have_attribute("data-status", "pending")
    expect(page.locator("#order-plan")).to_have_attribute("data-plan", "pro")


@pytest.mark.browser
def test_buy_pro_with_wechat_pay(
    shop: Shop, new_context: Callable[[], BrowserContext], artifacts_dir: Path
) -> None:
    context = new_context()
    page = context.new_page()
    new_customer(page, shop.url, "wechat")
    order_url = page.url
    expect(page.locator("#pay-alipay")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "checkout_order_page.png"), full_page=True)

    page.locator("#pay-wechat").click()
    expect(page).to_have_url(f"{order_url}/wechat")
    expect(page.locator("#wechat-qr svg")).to_be_visible()
    expect(page.locator("#order-status")).to_have_attribute("data-status", "pending")
    code_url = page.locator("#wechat-code-url").get_attribute("href")
    assert code_url and code_url.startswith(f"{shop.url}/sandbox/wechatpay/scan/")
    page.screenshot(path=str(artifacts_dir / "checkout_wechat_qr.png"), full_page=True)

    # "Scanning": the phone opens the link and pays in the sandbox.
    phone = context.new_page()
    phone.goto(code_url)
    expect(phone.locator("#sandbox-provider")).to_have_attribute("data-provider", "wechat")
    phone.locator("#sandbox-pay").click()
    expect(phone.locator("#sandbox-result")).to_have_attribute("data-result", "paid")
    phone.screenshot(path=str(artifacts_dir / "checkout_wechat_sandbox_paid.png"), full_page=True)

    # The QR page notices by itself and lands on the paid order.
    expect(page).to_have_url(order_url, timeout=20_000)
    expect(page.locator("#order-status")).to_have_attribute("data-status", "paid")
    expect(page.locator("#pay-options")).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "checkout_wechat_paid.png"), full_page=True)

    page.goto(f"{shop.url}/billing")
    expect(page.locator("#current-plan")).to_have_attribute("data-plan", "pro")
    page.goto(f"{shop.url}/usage")
    expect(page.locator("#usage-used")).to_contain_text("50,000")
    page.screenshot(path=str(artifacts_dir / "checkout_wechat_usage.png"), full_page=True)


@pytest.mark.browser
def test_buy_pro_with_alipay(
    shop: Shop, new_context: Callable[[], BrowserContext], artifacts_dir: Path
) -> None:
    page = new_context().new_page()
    new_customer(page, shop.url, "alipay")
    order_url = page.url

    page.locator("#pay-alipay").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(shop.url)}/sandbox/alipay/gateway\.do\?"))
    expect(page.locator("#sandbox-provider")).to_have_attribute("data-provider", "alipay")
    expect(page.locator("#sandbox-amount")).to_contain_text("199.00")
    page.screenshot(path=str(artifacts_dir / "checkout_alipay_cashier.png"), full_page=True)
    page.locator("#sandbox-pay").click()

    expect(page).to_have_url(re.compile(rf"{re.escape(order_url)}/return\?"))
    expect(page.locator("#order-status")).to_have_attribute("data-status", "paid")
    expect(page.locator("#payment-paid")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "checkout_alipay_return.png"), full_page=True)

    page.goto(f"{shop.url}/usage")
    expect(page.locator("#usage-used")).to_contain_text("50,000")
