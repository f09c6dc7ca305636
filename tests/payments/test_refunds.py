"""Refunds through the real SDKs against the sandbox over HTTP, with real commits: what
operators do (`flask payments refund | refunds | retry-refund`), what the channels answer
(at once, later, or no: insufficient balance, closed), polling, and concurrency.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result

from tests.payments.support import Shop, shop_fixture  # noqa: F401
from webapp.db import utcnow
from webapp.errors import AppError
from webapp.extensions import db
from webapp.payments import refunds, tasks
from webapp.payments.models import Refund
from webapp.payments.sandbox import control

PRICE = 19900
THREADS = 20
SHARE = 1500  # 13 of them fit in 19900, 20 do not


def paid_order(shop: Shop, channel: str, plan: str = "pro", months: int = 1) -> dict[str, Any]:
    buyer = shop.buyer()
    created = buyer.checkout(channel, plan, months)
    if channel == "alipay":
        shop.run(control.open_alipay_page, created["pay_url"])
    shop.pay(created["out_trade_no"])
    assert shop.order(created["order_id"])["status"] == "paid"
    return {**created, "buyer": buyer}


def cli(shop: Shop, *args: str) -> Result:
    return shop.app.test_cli_runner().invoke(args=list(args))


def set_mode(shop: Shop, channel: str, mode: str) -> None:
    shop.run(control.set_refund_mode, channel, mode)


@pytest.fixture(autouse=True)
def refunds_succeed(shop: Shop) -> Any:
    """Every test starts and ends with both channels refunding at once."""
    for channel in ("wechat", "alipay"):
        set_mode(shop, channel, "succeed")
    yield
    for channel in ("wechat", "alipay"):
        set_mode(shop, channel, "succeed")


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_an_operator_refunds_part_then_the_rest_never_more(shop: Shop, channel: str) -> None:
    paid = paid_order(shop, channel)
    order_id = paid["order_id"]
    before = shop.subscription(paid["buyer"].organization_id)

    partial = cli(
        shop,
        "payments",
        "refund",
        str(order_id),
        "--amount-fen",
        "5000",
        "--reason",
        "客户要求部分退款",
    )
    assert partial.exit_code == 0, partial.output
    assert "succeeded" in partial.output

    too_much = cli(
        shop, "payments", "refund", str(order_id), "--amount-fen", "15000", "--reason", "再退"
    )
    assert too_much.exit_code != 0
    assert "14900" in too_much.output

    rest = cli(shop, "payments", "refund", str(order_id), "--reason", "余额全退")
    assert rest.exit_code == 0, rest.output
    nothing_left = cli(shop, "payments", "refund", str(order_id), "--reason", "再退")
    assert nothing_left.exit_code != 0

    found = shop.refunds(order_id)
    assert [(r["channel"], r["amount_fen"], r["status"]) for r in found] == [
        (channel, 5000, "succeeded"),
        (channel, 14900, "succeeded"),
    ]
    assert found[0]["out_refund_no"] != found[1]["out_refund_no"]
    with shop.app.app_context():
        at_channel = [control.refund(channel, r["out_refund_no"]) for r in found]
    assert [(r.amount, r.status) for r in at_channel if r] == [
        (5000, "SUCCESS"),
        (14900, "SUCCESS"),
    ]
    # Settled once: by the channel's answer or (WeChat Pay) its notify, whichever came first.
    settled = [e for e in shop.refund_events(found[0]["out_refund_no"]) if e[1] == "succeeded"]
    assert len(settled) == 1 and settled[0][0] in ("refund", "refund_notify") and settled[0][2]
    # A refund alone leaves the plan as it was.
    assert shop.subscription(paid["buyer"].organization_id) == before

    body = paid["buyer"].api.get(f"/api/v1/payments/orders/{order_id}").get_json()
    assert body["refunded_fen"] == PRICE
    assert [(r["amount_fen"], r["status"], r["reason"]) for r in body["refunds"]] == [
        (5000, "succeeded", "客户要求部分退款"),
        (14900, "succeeded", "余额全退"),
    ]

    listed = cli(shop, "payments", "refunds", "--status", "succeeded")
    assert listed.exit_code == 0
    assert found[0]["out_refund_no"] in listed.output and paid["out_trade_no"] in listed.output


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_twenty_concurrent_partial_refunds_never_exceed_what_was_paid(
    shop: Shop, channel: str
) -> None:
    paid = paid_order(shop, channel)
    order_id = paid["order_id"]
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def refund() -> None:
        try:
            with shop.app.app_context():
                barrier.wait(timeout=30)
                try:
                    created = refunds.create_refund(order_id, "并发退款", SHARE)
                    db.session.commit()
                except AppError as exc:
                    db.session.rollback()
                    outcomes.append(exc.error)
                    return
                refunds.send_refund(created.id)
                outcomes.append(refunds.get_refund(created.id).status)
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=refund) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    fits = PRICE // SHARE
    assert sorted(outcomes) == sorted(
        ["succeeded"] * fits + ["refund_exceeds_payment"] * (THREADS - fits)
    )
    found = shop.refunds(order_id)
    assert sum(r["amount_fen"] for r in found if r["status"] != "failed") == fits * SHARE <= PRICE
    with shop.app.app_context():
        at_channel = [control.refund(channel, r["out_refund_no"]) for r in found]
    assert sum(r.amount for r in at_channel if r and r.status == "SUCCESS") == fits * SHARE


@pytest.mark.parametrize(
    ("channel", "reason"),
    [("wechat", "NOT_ENOUGH"), ("alipay", "ACQ.SELLER_BALANCE_NOT_ENOUGH")],
)
def test_a_refused_refund_fails_with_the_channels_reason_and_is_retried(
    shop: Shop, channel: str, reason: str
) -> None:
    paid = paid_order(shop, channel)
    order_id = paid["order_id"]
    set_mode(shop, channel, "insufficient_balance")

    refused = cli(shop, "payments", "refund", str(order_id), "--reason", "客户取消")
    assert refused.exit_code == 1
    (failed,) = shop.refunds(order_id)
    assert failed["status"] == "failed" and reason in failed["failure_reason"]
    assert f"retry-refund {failed['id']}" in refused.output
    body = paid["buyer"].api.get(f"/api/v1/payments/orders/{order_id}").get_json()
    assert body["refunded_fen"] == 0
    assert [r["status"] for r in body["refunds"]] == ["failed"]

    set_mode(shop, channel, "succeed")  # the merchant topped up
    retried = cli(shop, "payments", "retry-refund", str(failed["id"]))
    assert retried.exit_code == 0, retried.output
    # Refused, never accepted: the same number again, as both channels want it.
    (done,) = shop.refunds(order_id)
    assert (done["out_refund_no"], done["status"]) == (failed["out_refund_no"], "succeeded")
    again = cli(shop, "payments", "retry-refund", str(failed["id"]))
    assert again.exit_code != 0


def test_a_wechat_refund_closed_later_is_retried_under_a_new_number(shop: Shop) -> None:
    paid = paid_order(shop, "wechat")
    order_id = paid["order_id"]
    set_mode(shop, "wechat", "pending")
    assert cli(shop, "payments", "refund", str(order_id), "--reason", "客户取消").exit_code == 0
    (pending,) = shop.refunds(order_id)
    assert pending["status"] == "pending"

    with shop.app.app_context():
        delivery = control.settle_refund("wechat", pending["out_refund_no"], "CLOSED")
    assert delivery is not None and delivery.wait(15)[-1].status == 204
    (closed,) = shop.refunds(order_id)
    assert closed["status"] == "failed" and "CLOSED" in closed["failure_reason"]

    set_mode(shop, "wechat", "succeed")
    assert cli(shop, "payments", "retry-refund", str(closed["id"])).exit_code == 0
    old, new = shop.refunds(order_id)
    assert (old["status"], new["status"]) == ("failed", "succeeded")
    assert new["out_refund_no"] != old["out_refund_no"] and new["amount_fen"] == PRICE


def test_an_abnormal_wechat_refund_is_retried_only_once_handled_in_the_merchant_platform(
    shop: Shop,
) -> None:
    """An ABNORMAL refund's money may still sit with WeChat Pay: a new refund would pay twice."""
    paid = paid_order(shop, "wechat")
    order_id = paid["order_id"]
    set_mode(shop, "wechat", "pending")
    assert cli(shop, "payments", "refund", str(order_id), "--reason", "客户取消").exit_code == 0
    (pending,) = shop.refunds(order_id)
    with shop.app.app_context():
        delivery = control.settle_refund("wechat", pending["out_refund_no"], "ABNORMAL")
    assert delivery is not None and delivery.wait(15)[-1].status == 204
    set_mode(shop, "wechat", "succeed")

    refused = cli(shop, "payments", "retry-refund", str(pending["id"]))
    assert refused.exit_code != 0 and "--abnormal-handled" in refused.output
    (abnormal,) = shop.refunds(order_id)
    assert abnormal["status"] == "failed"

    retried = cli(shop, "payments", "retry-refund", str(pending["id"]), "--abnormal-handled")
    assert retried.exit_code == 0, retried.output
    old, new = shop.refunds(order_id)
    assert (old["status"], new["status"]) == ("failed", "succeeded")
    assert new["out_refund_no"] != old["out_refund_no"]


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_a_pending_refund_is_polled_until_the_channel_has_done_it(shop: Shop, channel: str) -> None:
    paid = paid_order(shop, channel)
    order_id = paid["order_id"]
    set_mode(shop, channel, "pending")
    assert cli(shop, "payments", "refund", str(order_id), "--reason", "稍后到账").exit_code == 0
    (pending,) = shop.refunds(order_id)
    assert pending["status"] == "pending"

    shop.run(refunds.poll_refund, pending["id"], 1)
    assert shop.refunds(order_id)[0]["status"] == "pending"

    shop.run(control.settle_refund, channel, pending["out_refund_no"], "SUCCESS", notify=False)
    with shop.app.app_context():  # the sweep asks about refunds pending for a minute
        refund = db.session.get(Refund, pending["id"])
        assert refund is not None
        refund.created_at = utcnow() - timedelta(minutes=2)
        db.session.commit()
    counts = shop.run(tasks.poll_pending_refunds)
    assert counts["succeeded"] >= 1 and counts["errors"] == 0
    assert shop.refunds(order_id)[0]["status"] == "succeeded"
    assert ("refund_query", "succeeded", True) in shop.refund_events(pending["out_refund_no"])


def test_a_refund_never_sent_is_sent_by_the_poller(shop: Shop) -> None:
    """The process died between writing the refund and asking WeChat Pay: the query
    finds nothing there, so it is sent (under its number) and done."""
    paid = paid_order(shop, "wechat")
    with shop.app.app_context():
        created = refunds.create_refund(paid["order_id"], "补发", 100)
        db.session.commit()
        refund_id = created.id
    shop.run(refunds.poll_refund, refund_id, 1)
    (done,) = shop.refunds(paid["order_id"])
    assert (done["amount_fen"], done["status"]) == (100, "succeeded")


def test_what_cannot_be_refunded(shop: Shop) -> None:
    buyer = shop.buyer(plan="pro")  # a grant: nothing was paid
    with shop.app.app_context():
        granted = db.session.scalar(
            sa.text("SELECT id FROM orders WHERE organization_id = :org"),
            {"org": buyer.organization_id},
        )
    assert cli(shop, "payments", "refund", str(granted), "--reason", "x").exit_code != 0
    assert cli(shop, "payments", "refund", "999999999", "--reason", "x").exit_code != 0
    paid = paid_order(shop, "wechat")
    assert cli(shop, "payments", "refund", str(paid["order_id"]), "--reason", "  ").exit_code != 0
    assert cli(shop, "payments", "retry-refund", "999999999").exit_code != 0
    assert shop.refunds(paid["order_id"]) == []


def test_refund_with_end_plan_takes_the_period_back(shop: Shop) -> None:
    paid = paid_order(shop, "alipay", "pro", 2)
    organization_id = paid["buyer"].organization_id
    assert shop.subscription(organization_id)["plan"] == "pro"
    result = cli(
        shop, "payments", "refund", str(paid["order_id"]), "--reason", "退订", "--end-plan"
    )
    assert result.exit_code == 0, result.output
    assert f"Organization {organization_id} is now on free" in result.output
    assert shop.subscription(organization_id)["plan"] == "free"
    assert paid["buyer"].usage_limit() == 1_000
    assert [(r["amount_fen"], r["status"]) for r in shop.refunds(paid["order_id"])] == [
        (2 * PRICE, "succeeded")
    ]
