"""Reconciliation against the channels' trade bills, downloaded through the real SDKs from
the sandbox: a clean day has no difference, and a planted difference of each kind is
found (`flask payments bills`, and the daily job that mails the operator).

Each test gets a sandbox of its own (keys, trades, bills), so that the day's bill holds
only what the test did.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.payments.support import Shop, shop_fixture  # noqa: F401
from webapp.billing.models import Order
from webapp.billing.periods import SHANGHAI
from webapp.core.jobs import redis_connection
from webapp.db import utcnow
from webapp.extensions import db, mail
from webapp.payments import alipay, bills, refunds, tasks, wechat
from webapp.payments.models import Payment, PaymentDisposition, Refund, RefundStatus
from webapp.payments.sandbox import control


@pytest.fixture
def sandbox_instance(tmp_path: Path) -> Path:
    """A fresh sandbox for this test (overrides the session-wide one)."""
    return tmp_path


@pytest.fixture(autouse=True)
def refunds_succeed(shop: Shop) -> Iterator[None]:
    for channel in ("wechat", "alipay"):
        shop.run(control.set_refund_mode, channel, "succeed")
    yield


def today() -> date:
    return utcnow().astimezone(SHANGHAI).date()


def paid(shop: Shop, channel: str, *, notify: bool = True) -> dict[str, Any]:
    buyer = shop.buyer()
    created = buyer.checkout(channel)
    if channel == "alipay":
        shop.run(control.open_alipay_page, created["pay_url"])
    shop.pay(created["out_trade_no"], notify=notify)
    return created


def refund(shop: Shop, order_id: int, amount: int) -> dict[str, Any]:
    with shop.app.app_context():
        created = refunds.create_refund(order_id, "对账测试", amount)
        db.session.commit()
        refund_id = created.id
    shop.run(refunds.send_refund, refund_id)
    return next(r for r in shop.refunds(order_id) if r["id"] == refund_id)


def kinds(differences: list[bills.Difference]) -> set[tuple[str, str, str | None, str | None]]:
    return {(d.channel, d.kind, d.out_trade_no, d.out_refund_no) for d in differences}


def bill_events(shop: Shop) -> list[str]:
    """The outcomes of the bill downloads recorded so far, oldest first."""
    return [event["outcome"] for event in shop.events(None, "bill")]


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_a_clean_day_has_no_differences(shop: Shop, channel: str) -> None:
    first, second = paid(shop, channel), paid(shop, channel)
    refund(shop, first["order_id"], 5000)
    refund(shop, second["order_id"], 19900)
    earlier = len(bill_events(shop))  # a worker started by another test may have run the job
    result = shop.app.test_cli_runner().invoke(
        args=["payments", "bills", "--date", today().isoformat(), "--channel", channel]
    )
    assert result.exit_code == 0, result.output
    assert f"No differences on {today().isoformat()}." in result.output
    assert bill_events(shop)[earlier:] == ["downloaded"]


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_a_planted_difference_of_each_kind_is_found(shop: Shop, channel: str) -> None:
    unrecorded = paid(shop, channel, notify=False)  # paid there, never heard of here
    other_amount = paid(shop, channel)
    refunded_there = paid(shop, channel)
    refunded_here = paid(shop, channel)
    other_refund = paid(shop, channel)
    recorded_only = shop.buyer().order("pro", 1)  # never paid anywhere

    shop.run(control.set_refund_mode, channel, "pending")
    missing_here = refund(shop, refunded_there["order_id"], 3000)
    shop.run(control.settle_refund, channel, missing_here["out_refund_no"], "SUCCESS", notify=False)
    shop.run(control.set_refund_mode, channel, "succeed")
    amount_differs = refund(shop, other_refund["order_id"], 4000)

    with shop.app.app_context():
        payment = db.session.scalar(
            sa.select(Payment).where(Payment.order_id == other_amount["order_id"])
        )
        assert payment is not None
        payment.amount_fen = 19800
        db.session.add(
            Payment(
                order_id=recorded_only["id"],
                channel=channel,
                provider_trade_no="made-up",
                amount_fen=19900,
                disposition=PaymentDisposition.APPLIED,
                paid_at=utcnow(),
            )
        )
        kept = db.session.scalar(
            sa.select(Payment).where(Payment.order_id == refunded_here["order_id"])
        )
        assert kept is not None
        never_sent = Refund(
            order_id=refunded_here["order_id"],
            payment_id=kept.id,
            channel=channel,
            out_refund_no=refunds.new_out_refund_no(utcnow()),
            amount_fen=2000,
            status=RefundStatus.SUCCEEDED,
            reason="手工记录",
            succeeded_at=utcnow(),
        )
        db.session.add(never_sent)
        changed = db.session.get(Refund, amount_differs["id"])
        assert changed is not None
        changed.amount_fen = 4100
        db.session.commit()
        never_sent_no = never_sent.out_refund_no

    found = shop.run(bills.reconcile, today(), [channel])

    assert kinds(found) == {
        (channel, "paid_there_not_here", unrecorded["out_trade_no"], None),
        (channel, "payment_amount_differs", other_amount["out_trade_no"], None),
        (channel, "paid_here_not_there", recorded_only["out_trade_no"], None),
        (
            channel,
            "refund_there_not_here",
            refunded_there["out_trade_no"],
            missing_here["out_refund_no"],
        ),
        (channel, "refund_here_not_there", refunded_here["out_trade_no"], never_sent_no),
        (
            channel,
            "refund_amount_differs",
            other_refund["out_trade_no"],
            amount_differs["out_refund_no"],
        ),
    }
    amounts = {d.kind: (d.ours_fen, d.theirs_fen) for d in found}
    assert amounts["payment_amount_differs"] == (19800, 19900)
    assert amounts["refund_amount_differs"] == (4100, 4000)
    assert amounts["paid_there_not_here"] == (None, 19900)

    result = shop.app.test_cli_runner().invoke(
        args=["payments", "bills", "--date", today().isoformat(), "--channel", channel]
    )
    assert result.exit_code == 1
    for difference in found:
        assert difference.describe() in result.output


def test_a_bill_that_cannot_be_had_is_a_difference(shop: Shop, app: Flask) -> None:
    paid(shop, "wechat")
    app.config["WECHATPAY_GATEWAY"] = "http://127.0.0.1:9/unreachable"
    with app.app_context():
        wechat.reset_client()
    earlier = len(bill_events(shop))
    found = shop.run(bills.reconcile, today(), ["wechat"])
    assert kinds(found) == {("wechat", "bill_unavailable", None, None)}
    assert bill_events(shop)[earlier:] == ["error"]


def test_the_daily_job_mails_the_differences_to_the_operator_once(shop: Shop, app: Flask) -> None:
    unrecorded = paid(shop, "alipay", notify=False)
    app.config["OPERATOR_EMAIL"] = "finance@example.com"
    with app.app_context():
        redis_connection().delete(f"payments:bills-reported:{today().isoformat()}")
    try:
        with mail.record_messages() as outbox:
            found = shop.run(tasks.reconcile_bills, today())
            again = shop.run(tasks.reconcile_bills, today())
    finally:
        with app.app_context():
            redis_connection().delete(f"payments:bills-reported:{today().isoformat()}")
    assert (
        kinds(found)
        == kinds(again)
        == {("alipay", "paid_there_not_here", unrecorded["out_trade_no"], None)}
    )
    assert [message.recipients for message in outbox] == [["finance@example.com"]]
    assert unrecorded["out_trade_no"] in (outbox[0].body or "")


def test_the_bills_are_the_providers_formats(shop: Shop) -> None:
    """WeChat Pay: backtick-prefixed CSV with a summary, checked against its SHA1; Alipay:
    a zip of GBK CSV files."""
    order = paid(shop, "wechat")
    refund(shop, order["order_id"], 1000)
    alipay_order = paid(shop, "alipay")
    with shop.app.app_context():
        text = wechat.trade_bill(today())
        archive = alipay.trade_bill(today())
        assert wechat.trade_bill(today() - timedelta(days=3650)) is None
        assert alipay.trade_bill(today() - timedelta(days=3650)) is None
    assert text is not None and archive is not None
    lines = text.splitlines()
    assert lines[0].startswith("交易时间,公众账号ID,商户号")
    assert all(field.startswith("`") for field in lines[1].split(","))
    assert lines[-2].startswith("总交易单数") and lines[-1].startswith("`2,")
    assert [line.kind for line in bills.parse_wechat_bill(text)] == ["payment", "refund"]
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        names = sorted(bundle.namelist())
        assert len(names) == 2 and names[0].endswith("_业务明细(汇总).csv")
        detail = bundle.read(names[1]).decode("gbk")
    assert detail.startswith("#支付宝业务明细查询")
    assert alipay_order["out_trade_no"] in detail
    with pytest.raises(bills.BillError):
        bills.parse_wechat_bill(text.replace("`2,", "`3,", 1))


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (datetime(2026, 12, 7, 9, 59, tzinfo=SHANGHAI), date(2026, 12, 5)),
        (datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI), date(2026, 12, 6)),
    ],
)
def test_the_daily_job_reconciles_the_latest_day_whose_bills_are_ready(
    now: datetime, day: date
) -> None:
    assert bills.latest_billed_day(now) == day


def test_an_order_number_here_is_found_whatever_day_it_was_recorded(shop: Shop) -> None:
    """A payment recorded a second past midnight is no difference for the bill of the day
    the channel says it was paid."""
    created = paid(shop, "wechat")
    with shop.app.app_context():
        payment = db.session.scalar(
            sa.select(Payment).where(Payment.order_id == created["order_id"])
        )
        assert payment is not None
        payment.paid_at = utcnow() + timedelta(days=1)
        db.session.commit()
        assert db.session.get(Order, created["order_id"]) is not None
    assert shop.run(bills.reconcile, today(), ["wechat"]) == []
