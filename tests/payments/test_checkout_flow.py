"""Checkout end to end, both channels, over HTTP against the sandbox on 127.0.0.1.

order → create (the real SDK calls the sandbox) → a person pays at the sandbox →
the sandbox's notify reaches our notify endpoint → order paid → subscription
changed → the usage limit is raised. Then the orderings that must still fulfil
exactly once: duplicate notifies, notify after a poll, poll after a notify, and
ten identical notifies at once.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from tests.payments.support import Shop, shop_fixture, wechat_key_mode_fixture  # noqa: F401
from webapp.billing.periods import SHANGHAI, add_months
from webapp.payments.sandbox import control

PRO_LIMIT = 50_000
FREE_LIMIT = 1_000
THREADS = 10


def test_wechat_pay_end_to_end(shop: Shop, wechat_key_mode: str) -> None:
    buyer = shop.buyer()
    assert buyer.usage_limit() == FREE_LIMIT
    order = buyer.order("pro", 1)
    assert (order["status"], order["amount_fen"]) == ("pending", 19900)

    created = buyer.start("wechat", order["id"])
    assert created["order_id"] == order["id"]
    assert created["out_trade_no"] == order["out_trade_no"]
    assert (created["amount_fen"], created["currency"], created["channel"]) == (
        19900,
        "CNY",
        "wechat",
    )
    assert created["expires_at"] == order["expires_at"]
    assert created["code_url"].startswith(shop.url + "/sandbox/wechatpay/scan/")
    assert "pay_url" not in created
    # Asking again: the same provider order.
    assert buyer.start("wechat", order["id"])["code_url"] == created["code_url"]

    attempts = shop.pay(created["out_trade_no"])
    assert [(a.status, a.response_body) for a in attempts] == [(204, "")]
    assert attempts[0].url == shop.url + "/api/v1/payments/wechat/notify"

    state = shop.order(order["id"])
    assert state["status"] == "paid" and state["fulfilled"] and state["channel"] == "wechat"
    assert state["provider_trade_no"].startswith("4200")
    assert shop.subscription(buyer.organization_id)["plan"] == "pro"
    assert buyer.usage_limit() == PRO_LIMIT
    answer = buyer.api.get(f"/api/v1/payments/orders/{order['id']}")
    assert answer.status_code == 200
    assert (answer.get_json()["status"], answer.get_json()["period"]) == ("paid", None)

    notifies = shop.events(created["out_trade_no"], "notify")
    assert notifies == [
        {
            "channel": "wechat",
            "source": "notify",
            "outcome": "fulfilled",
            "verified": True,
            "reason": "",
            "order_id": order["id"],
        }
    ]
    creates = shop.events(created["out_trade_no"], "create")
    assert [(e["outcome"], e["verified"]) for e in creates] == [("created", True)]


def test_alipay_end_to_end(shop: Shop) -> None:
    buyer = shop.buyer()
    order = buyer.order("pro", 2)
    created = buyer.start("alipay", order["id"])
    assert (created["amount_fen"], created["channel"]) == (39800, "alipay")
    assert created["pay_url"].startswith(shop.url + "/sandbox/alipay/gateway.do?")
    assert "code_url" not in created
    assert buyer.start("alipay", order["id"])["pay_url"] == created["pay_url"]

    # The browser opens the cashier (Alipay learns of the trade), the person pays.
    trade = shop.run(control.open_alipay_page, created["pay_url"])
    assert trade.return_url == f"{shop.url}/billing/orders/{order['id']}/return"
    attempts = shop.pay(created["out_trade_no"])
    assert [(a.status, a.response_body) for a in attempts] == [(200, "success")]

    state = shop.order(order["id"])
    assert (state["status"], state["channel"], state["fulfilled"]) == ("paid", "alipay", True)
    subscription = shop.subscription(buyer.organization_id)
    assert subscription["plan"] == "pro"
    assert subscription["end"] == add_months(subscription["start"], 2)
    assert buyer.usage_limit() == PRO_LIMIT
    assert [
        (e["outcome"], e["verified"]) for e in shop.events(order["out_trade_no"], "notify")
    ] == [("fulfilled", True)]


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_duplicate_notifies_fulfil_once(shop: Shop, channel: str) -> None:
    buyer = shop.buyer()
    created = buyer.checkout(channel)
    if channel == "alipay":
        shop.run(control.open_alipay_page, created["pay_url"])
    shop.pay(created["out_trade_no"])
    after_first = shop.subscription(buyer.organization_id)

    for _ in range(3):
        attempt = shop.run(control.send_notify, created["out_trade_no"])
        assert attempt.succeeded, attempt
        assert attempt.status == (204 if channel == "wechat" else 200)

    assert shop.subscription(buyer.organization_id) == after_first
    outcomes = [e["outcome"] for e in shop.events(created["out_trade_no"], "notify")]
    assert outcomes == ["fulfilled", "already_fulfilled", "already_fulfilled", "already_fulfilled"]


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_notify_after_poll(shop: Shop, channel: str) -> None:
    """Paid, the notify delayed: a refresh finds it first; the late notify changes nothing."""
    buyer = shop.buyer()
    created = buyer.checkout(channel)
    order_id = created["order_id"]
    if channel == "alipay":
        shop.run(control.open_alipay_page, created["pay_url"])
    shop.pay(created["out_trade_no"], notify=False)
    assert shop.order(order_id)["status"] == "pending"

    refreshed = buyer.api.get(f"/api/v1/payments/orders/{order_id}?refresh=1")
    assert refreshed.status_code == 200
    assert refreshed.get_json()["status"] == "paid"
    assert refreshed.get_json()["channel"] == channel
    after_poll = shop.subscription(buyer.organization_id)
    assert after_poll["plan"] == "pro"

    attempt = shop.run(control.send_notify, created["out_trade_no"])
    assert attempt.succeeded
    assert shop.subscription(buyer.organization_id) == after_poll
    assert [e["outcome"] for e in shop.events(created["out_trade_no"], "query")][-1] == "fulfilled"
    assert [e["outcome"] for e in shop.events(created["out_trade_no"], "notify")] == [
        "already_fulfilled"
    ]


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_poll_after_notify(shop: Shop, channel: str) -> None:
    buyer = shop.buyer()
    created = buyer.checkout(channel)
    order_id = created["order_id"]
    if channel == "alipay":
        shop.run(control.open_alipay_page, created["pay_url"])
    shop.pay(created["out_trade_no"])
    after_notify = shop.subscription(buyer.organization_id)
    queries_before = len(shop.events(created["out_trade_no"], "query"))

    refreshed = buyer.api.get(f"/api/v1/payments/orders/{order_id}?refresh=1")
    assert refreshed.get_json()["status"] == "paid"
    assert shop.subscription(buyer.organization_id) == after_notify
    # Fulfilled already: the providers are not even asked.
    assert len(shop.events(created["out_trade_no"], "query")) == queries_before


def _post_concurrently(url: str, headers: dict[str, str], body: str) -> list[tuple[int, str]]:
    barrier = threading.Barrier(THREADS)
    answers: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            barrier.wait(timeout=30)
            response = requests.post(url, data=body.encode(), headers=headers, timeout=30)
            answers.append((response.status_code, response.text))
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return answers


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_ten_concurrent_notifies_fulfil_once(shop: Shop, channel: str) -> None:
    """A renewal: fulfilled twice would extend the paid period twice."""
    buyer = shop.buyer(plan="pro", months=1)
    before = shop.subscription(buyer.organization_id)
    order = buyer.order("pro", 1)
    assert order["kind"] == "renewal"
    created = buyer.start(channel, order["id"])
    if channel == "alipay":
        shop.run(control.open_alipay_page, created["pay_url"])
    shop.pay(created["out_trade_no"], notify=False)
    builder: Any = control.wechat_notify if channel == "wechat" else control.alipay_notify
    with shop.app.app_context():
        notify = builder(created["out_trade_no"])
        headers, body = dict(notify.headers), notify.body

    answers = _post_concurrently(f"{shop.url}/api/v1/payments/{channel}/notify", headers, body)

    expected = (204, "") if channel == "wechat" else (200, "success")
    assert answers == [expected] * THREADS
    outcomes = sorted(e["outcome"] for e in shop.events(created["out_trade_no"], "notify"))
    assert outcomes == ["already_fulfilled"] * (THREADS - 1) + ["fulfilled"]
    after = shop.subscription(buyer.organization_id)
    assert after["plan"] == "pro"
    assert after["start"] == before["start"]
    assert before["end"] is not None
    anchor = before["start"].astimezone(SHANGHAI).day
    assert after["end"] == add_months(before["end"], 1, anchor)  # one month more, not two
    assert shop.order(order["id"])["status"] == "paid"


def test_switching_channel_while_unpaid(shop: Shop) -> None:
    """Both provider orders stay open; the one that is paid fulfils the order."""
    buyer = shop.buyer()
    order = buyer.order("pro", 1)
    wechat_order = buyer.start("wechat", order["id"])
    alipay_order = buyer.start("alipay", order["id"])
    assert wechat_order["out_trade_no"] == alipay_order["out_trade_no"]
    assert set(shop.provider_orders(order["id"])) == {"wechat", "alipay"}

    shop.pay(wechat_order["out_trade_no"])
    state = shop.order(order["id"])
    assert (state["status"], state["channel"]) == ("paid", "wechat")
    again = buyer.api.post("/api/v1/payments/alipay/create", json={"order_id": order["id"]})
    assert again.status_code == 409
    assert again.get_json()["error"] == "order_not_payable"
