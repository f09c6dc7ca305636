"""Portal pages for paying: the buttons on the order page, the WeChat Pay QR page and its
status endpoint, the Alipay redirect and the return page (which believes the
database and the provider, never the return URL's parameters)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask

from tests.payments.support import Buyer, Shop, shop_fixture  # noqa: F401
from tests.payments.test_expiry_and_jobs import expire
from tests.portal.conftest import Portal
from webapp.orgs.models import Role
from webapp.payments import tasks, wechat
from webapp.payments.sandbox import control
from webapp.payments.views import qr_svg


def portal_for(shop: Shop, email: str) -> Portal:
    portal = Portal(shop.app.test_client())
    assert portal.login(email).status_code == 302
    return portal


def member_portal(shop: Shop, buyer: Buyer, role: str) -> Portal:
    return portal_for(shop, shop.add_member(buyer, role))


def order_path(order_id: int) -> str:
    return f"/billing/orders/{order_id}"


def pay(portal: Portal, order_id: int, channel: str, *, own: bool = True) -> Any:
    """Press the button (with the order page's CSRF token; a stranger's from any page)."""
    page = order_path(order_id) if own else None
    return portal.post(f"{order_path(order_id)}/pay/{channel}", page=page)


def test_owners_see_the_pay_buttons_of_a_pending_order(shop: Shop) -> None:
    buyer = shop.buyer()
    order = buyer.order()
    owner = portal_for(shop, buyer.email)
    page = owner.page(order_path(order["id"]))
    assert 'id="pay-wechat"' in page and 'id="pay-alipay"' in page
    assert f'action="{order_path(order["id"])}/pay/wechat"' in page

    member = member_portal(shop, buyer, Role.MEMBER)
    member_page = member.page(order_path(order["id"]))
    assert 'id="pay-wechat"' not in member_page and 'id="pay-options"' not in member_page
    refused = pay(member, order["id"], "wechat")
    assert refused.status_code == 403
    assert shop.provider_orders(order["id"]) == {}

    admin = member_portal(shop, buyer, Role.ADMIN)
    assert 'id="pay-alipay"' in admin.page(order_path(order["id"]))


def test_strangers_get_404(shop: Shop) -> None:
    buyer = shop.buyer()
    order = buyer.order()
    stranger = portal_for(shop, shop.buyer().email)
    for path in ("", "/wechat", "/status", "/return"):
        assert stranger.get(order_path(order["id"]) + path).status_code == 404
    assert pay(stranger, order["id"], "alipay", own=False).status_code == 404
    assert shop.provider_orders(order["id"]) == {}


def test_pay_needs_the_csrf_token(shop: Shop) -> None:
    buyer = shop.buyer()
    order = buyer.order()
    owner = portal_for(shop, buyer.email)
    response = owner.client.post(f"{order_path(order['id'])}/pay/wechat")
    assert response.status_code == 400
    assert shop.provider_orders(order["id"]) == {}


def test_wechat_pay_shows_the_qr_code_and_follows_the_payment(shop: Shop) -> None:
    buyer = shop.buyer()
    order = buyer.order()
    owner = portal_for(shop, buyer.email)

    started = pay(owner, order["id"], "wechat")
    assert started.status_code == 302
    assert started.headers["Location"] == f"{order_path(order['id'])}/wechat"
    page = owner.page(f"{order_path(order['id'])}/wechat")

    link = re.search(r'id="wechat-code-url"[^>]*>([^<]+)</a>', page)
    href = re.search(r'href="([^"]+)" id="wechat-code-url"', page)
    assert link and href and link.group(1) == href.group(1)
    code_url = href.group(1)
    assert code_url.startswith(shop.url + "/sandbox/wechatpay/scan/")
    with shop.app.app_context():
        assert str(qr_svg(code_url)) in page  # the QR code of exactly that link
    assert "<svg" in page and 'class="qr-code"' in page
    assert 'data-status="pending"' in page
    assert f"{order_path(order['id'])}/status" in page  # the page polls it
    assert 'id="sandbox-hint"' in page

    # The same QR code when the button is pressed again.
    pay(owner, order["id"], "wechat")
    assert code_url in owner.page(f"{order_path(order['id'])}/wechat")

    status = owner.get(f"{order_path(order['id'])}/status")
    assert status.status_code == 200
    assert status.get_json()["status"] == "pending"

    # Paid, the notify not (yet) in: the status endpoint asks WeChat Pay and fulfils.
    shop.pay(order["out_trade_no"], notify=False)
    status = owner.get(f"{order_path(order['id'])}/status")
    assert status.get_json()["status"] == "paid"
    assert shop.subscription(buyer.organization_id)["plan"] == "pro"

    # The page's reload lands on the order page, which says so and offers no buttons.
    reloaded = owner.get(f"{order_path(order['id'])}/wechat")
    assert reloaded.status_code == 302
    assert reloaded.headers["Location"] == order_path(order["id"])
    order_page = owner.page(order_path(order["id"]))
    assert 'data-status="paid"' in order_page and 'id="pay-wechat"' not in order_page


def test_members_may_watch_the_status(shop: Shop) -> None:
    buyer = shop.buyer()
    created = buyer.checkout("wechat")
    member = member_portal(shop, buyer, Role.MEMBER)
    shop.pay(created["out_trade_no"])
    assert member.get(f"{order_path(created['order_id'])}/status").get_json()["status"] == "paid"


def test_alipay_redirects_to_the_cashier_and_the_return_page_asks_alipay(shop: Shop) -> None:
    buyer = shop.buyer()
    order = buyer.order()
    owner = portal_for(shop, buyer.email)

    started = pay(owner, order["id"], "alipay")
    assert started.status_code == 302
    pay_url = started.headers["Location"]
    assert pay_url.startswith(shop.url + "/sandbox/alipay/gateway.do?")
    trade = shop.run(control.open_alipay_page, pay_url)
    return_url = f"{shop.url}{order_path(order['id'])}/return"
    assert trade.return_url == return_url

    # Someone types the parameters of a successful payment: the page is not fooled.
    forged = (
        urlsplit(return_url).path
        + f"?out_trade_no={order['out_trade_no']}&trade_status=TRADE_SUCCESS"
        + "&total_amount=199.00&sign=forged"
    )
    page = owner.page(forged)
    assert 'data-status="pending"' in page and 'id="payment-pending"' in page
    assert f"{order_path(order['id'])}/status" in page
    assert shop.order(order["id"])["status"] == "pending"

    shop.pay(order["out_trade_no"], notify=False)
    page = owner.page(urlsplit(return_url).path)
    assert 'data-status="paid"' in page and 'id="payment-paid"' in page
    assert shop.order(order["id"])["status"] == "paid"
    assert shop.subscription(buyer.organization_id)["plan"] == "pro"


def test_the_return_page_of_a_closed_order(shop: Shop) -> None:
    buyer = shop.buyer()
    created = buyer.checkout("alipay")
    expire(shop, created["order_id"])
    shop.run(tasks.close_expired_orders)
    owner = portal_for(shop, buyer.email)
    page = owner.page(f"{order_path(created['order_id'])}/return")
    assert 'data-status="closed"' in page and 'id="payment-closed"' in page
    order_page = owner.page(order_path(created["order_id"]))
    assert 'id="pay-options"' not in order_page
    # The QR page of a closed order leads back to the order.
    assert owner.get(f"{order_path(created['order_id'])}/wechat").status_code == 302


def test_an_expired_pending_order_offers_no_payment(shop: Shop) -> None:
    buyer = shop.buyer()
    order = buyer.order()
    expire(shop, order["id"])
    owner = portal_for(shop, buyer.email)
    page = owner.page(order_path(order["id"]))
    assert 'id="pay-options"' not in page and 'id="order-expired"' in page
    refused = pay(owner, order["id"], "wechat")
    assert refused.status_code == 302 and refused.headers["Location"] == order_path(order["id"])
    assert shop.provider_orders(order["id"]) == {}


def test_provider_down_is_flashed_and_recorded(shop: Shop, app: Flask) -> None:
    buyer = shop.buyer()
    order = buyer.order()
    owner = portal_for(shop, buyer.email)
    app.config["WECHATPAY_GATEWAY"] = "http://127.0.0.1:9/unreachable"
    with app.app_context():
        wechat.reset_client()
    response = pay(owner, order["id"], "wechat")
    assert response.status_code == 302 and response.headers["Location"] == order_path(order["id"])
    page = owner.page(order_path(order["id"]))
    assert "alert-danger" in page
    assert [(e["source"], e["outcome"]) for e in shop.events(order["out_trade_no"])] == [
        ("create", "error")
    ]
    assert shop.order(order["id"])["status"] == "pending"


@pytest.mark.parametrize("path", ["/wechat", "/status", "/return"])
def test_pages_need_a_login(shop: Shop, path: str) -> None:
    buyer = shop.buyer()
    order = buyer.order()
    response = shop.app.test_client().get(order_path(order["id"]) + path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
