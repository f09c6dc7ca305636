"""Money the order cannot use goes back: an order paid through both channels (two tabs),
and a payment that arrives for an order closed or superseded meanwhile.

Everything runs through the real SDKs against the sandbox on 127.0.0.1, with real
commits: the notify (or the close-and-query after the first payment) records the
second payment, a job asks its channel for a full refund, and the managers are mailed.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from tests.payments.support import Buyer, Shop, shop_fixture  # noqa: F401
from webapp.billing.models import Order, OrderStatus
from webapp.billing.periods import add_months
from webapp.db import utcnow
from webapp.extensions import db, mail
from webapp.payments.sandbox import control

PRICE = 19900


def _both_paid(shop: Shop, buyer: Buyer) -> dict[str, Any]:
    """A pro order started with both channels and paid in both tabs, no notify yet."""
    order = buyer.order("pro", 1)
    buyer.start("wechat", order["id"])
    alipay_start = buyer.start("alipay", order["id"])
    shop.run(control.open_alipay_page, alipay_start["pay_url"])
    shop.pay(order["out_trade_no"], notify=False, channel="wechat")
    shop.pay(order["out_trade_no"], notify=False, channel="alipay")
    return order


def _notify(shop: Shop, out_trade_no: str, channel: str) -> tuple[int, str]:
    with shop.app.app_context():
        builder: Any = control.wechat_notify if channel == "wechat" else control.alipay_notify
        notify = builder(out_trade_no)
    response = requests.post(
        f"{shop.url}/api/v1/payments/{channel}/notify",
        data=notify.body.encode(),
        headers=notify.headers,
        timeout=30,
    )
    return response.status_code, response.text


ACCEPTED = {"wechat": (204, ""), "alipay": (200, "success")}


@pytest.mark.parametrize("arrival", ["wechat_first", "alipay_first", "concurrent"])
def test_an_order_paid_through_both_channels_is_applied_once_and_refunded_once(
    shop: Shop, arrival: str
) -> None:
    buyer = shop.buyer()
    owner = buyer.email
    order = _both_paid(shop, buyer)
    number = order["out_trade_no"]
    first, second = ("alipay", "wechat") if arrival == "alipay_first" else ("wechat", "alipay")

    with mail.record_messages() as outbox:
        if arrival == "concurrent":
            answers: dict[str, tuple[int, str]] = {}
            barrier = threading.Barrier(2)

            def post(channel: str) -> None:
                barrier.wait(timeout=30)
                answers[channel] = _notify(shop, number, channel)

            threads = [threading.Thread(target=post, args=(c,)) for c in ("wechat", "alipay")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert answers == ACCEPTED
        else:
            assert _notify(shop, number, first) == ACCEPTED[first]
            assert _notify(shop, number, second) == ACCEPTED[second]
        # Notifies repeat: nothing more happens.
        assert _notify(shop, number, first) == ACCEPTED[first]
        assert _notify(shop, number, second) == ACCEPTED[second]

    subscription = shop.subscription(buyer.organization_id)
    assert subscription["plan"] == "pro"
    assert subscription["end"] == add_months(subscription["start"], 1)  # extended once

    payments = shop.payments(order["id"])
    applied = [p for p in payments if p["disposition"] == "applied"]
    duplicate = [p for p in payments if p["disposition"] == "duplicate"]
    assert len(applied) == 1 and len(duplicate) == 1
    assert applied[0]["amount_fen"] == duplicate[0]["amount_fen"] == PRICE
    if arrival != "concurrent":
        assert (applied[0]["channel"], duplicate[0]["channel"]) == (first, second)

    refunds = shop.refunds(order["id"])
    assert [(r["channel"], r["amount_fen"], r["status"], r["reason"]) for r in refunds] == [
        (duplicate[0]["channel"], PRICE, "succeeded", "duplicate_payment")
    ]
    # The money went back at the channel, once.
    with shop.app.app_context():
        at_channel = control.refund(refunds[0]["channel"], refunds[0]["out_refund_no"])
    assert at_channel is not None and (at_channel.amount, at_channel.status) == (PRICE, "SUCCESS")
    assert at_channel.reason == "重复支付，退回多付的一笔"  # what the payer's app shows

    answer = buyer.api.get(f"/api/v1/payments/orders/{order['id']}")
    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["status"], body["refunded_fen"]) == ("paid", PRICE)
    assert [
        {key: refund[key] for key in ("amount_fen", "status", "reason")}
        for refund in body["refunds"]
    ] == [{"amount_fen": PRICE, "status": "succeeded", "reason": "duplicate_payment"}]
    assert body["refunds"][0]["created_at"]

    told = [m for m in outbox if number in (m.subject or "")]
    assert [m.recipients for m in told] == [[owner]]
    assert "¥199.00" in (told[0].body or "")


def test_the_second_payment_is_found_when_its_notify_never_comes(shop: Shop) -> None:
    """Paid in both tabs, only WeChat Pay's notify arrives: closing the Alipay trade fails
    (it is paid), so Alipay is asked, and that payment is recorded and refunded."""
    buyer = shop.buyer()
    order = _both_paid(shop, buyer)
    assert _notify(shop, order["out_trade_no"], "wechat") == ACCEPTED["wechat"]
    assert [(p["channel"], p["disposition"]) for p in shop.payments(order["id"])] == [
        ("wechat", "applied"),
        ("alipay", "duplicate"),
    ]
    assert [(r["channel"], r["status"]) for r in shop.refunds(order["id"])] == [
        ("alipay", "succeeded")
    ]


def _close(shop: Shop, order_id: int) -> None:
    with shop.app.app_context():
        order = db.session.get(Order, order_id)
        assert order is not None
        order.status, order.closed_at = OrderStatus.CLOSED, utcnow()
        db.session.commit()


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_a_payment_for_a_closed_order_is_refunded_not_applied(shop: Shop, channel: str) -> None:
    buyer = shop.buyer()
    created = buyer.checkout(channel)
    if channel == "alipay":
        shop.run(control.open_alipay_page, created["pay_url"])
    shop.pay(created["out_trade_no"], notify=False)
    _close(shop, created["order_id"])

    with mail.record_messages() as outbox:
        attempt = shop.run(control.send_notify, created["out_trade_no"])
    assert attempt.succeeded

    assert shop.order(created["order_id"])["status"] == "closed"
    assert shop.subscription(buyer.organization_id)["plan"] == "free"
    assert [(p["channel"], p["disposition"]) for p in shop.payments(created["order_id"])] == [
        (channel, "superseded")
    ]
    assert [
        (r["amount_fen"], r["status"], r["reason"]) for r in shop.refunds(created["order_id"])
    ] == [(PRICE, "succeeded", "superseded")]
    assert [e["outcome"] for e in shop.events(created["out_trade_no"], "notify")] == ["superseded"]
    assert [m.recipients for m in outbox if created["out_trade_no"] in (m.subject or "")] == [
        [buyer.email]
    ]
    # The channel resends: recorded once, refunded once.
    if channel == "wechat":
        assert shop.run(control.send_notify, created["out_trade_no"]).succeeded
        assert len(shop.refunds(created["order_id"])) == 1


def test_a_credited_order_paid_after_the_period_changed_is_refunded(shop: Shop) -> None:
    """Two upgrades priced against the same Pro period; the first is paid and applied, so
    the second's credit is spent: paid anyway, it is superseded and refunded in full."""
    buyer = shop.buyer(plan="pro", months=3)
    first = buyer.order("enterprise", 1)
    second = buyer.order("enterprise", 1)
    assert first["credit_fen"] == second["credit_fen"] > 0
    paid_first = buyer.start("wechat", first["id"])
    shop.pay(paid_first["out_trade_no"])
    after_first = shop.subscription(buyer.organization_id)
    assert after_first["plan"] == "enterprise"

    paid_second = buyer.start("wechat", second["id"])
    shop.pay(paid_second["out_trade_no"])

    assert shop.subscription(buyer.organization_id) == after_first
    assert shop.order(second["id"])["status"] == "closed"
    assert [(r["amount_fen"], r["status"], r["reason"]) for r in shop.refunds(second["id"])] == [
        (second["amount_fen"], "succeeded", "superseded")
    ]
