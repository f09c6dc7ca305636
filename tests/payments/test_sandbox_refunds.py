"""The sandbox speaks the providers' refund protocols to the real SDKs over HTTP: signed
requests only, amounts checked, idempotent numbers, signed answers, signed and
encrypted WeChat Pay refund notifies, and the refund modes (insufficient balance,
processing until settled) that tests and `make run` use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from tests.payments.conftest import NotifySink
from tests.payments.test_sandbox_protocol import (
    CSRF_FIELD,
    create_wechat_trade,
    new_out_trade_no,
    page_pay,
    wait_for_acknowledgement,
)
from webapp.db import utcnow
from webapp.payments import alipay, wechat
from webapp.payments.refunds import new_out_refund_no
from webapp.payments.sandbox import control
from webapp.payments.sandbox.common import current_keys
from webapp.payments.sandbox.keys import generate_keys


@pytest.fixture
def ctx(app: Flask, payments_live_server: str) -> Iterator[str]:
    with app.app_context():
        for channel in ("wechat", "alipay"):
            control.set_refund_mode(channel, "succeed")
        yield payments_live_server
        for channel in ("wechat", "alipay"):
            control.set_refund_mode(channel, "succeed")


def paid_wechat_trade(notify_url: str, amount_fen: int = 9900) -> dict[str, Any]:
    out_trade_no, _code_url = create_wechat_trade(notify_url, amount_fen)
    control.pay_trade(out_trade_no, notify=False)
    trade = control.trade(out_trade_no, "wechat")
    assert trade is not None
    return {"out_trade_no": out_trade_no, "transaction_id": trade.transaction_id}


def wechat_refund(
    number: str, transaction_id: str, refund: int, total: int = 9900, **extra: Any
) -> tuple[int, Any]:
    code, body = wechat.client().refund(
        out_refund_no=number,
        amount={"refund": refund, "total": total, "currency": "CNY"},
        transaction_id=transaction_id,
        **extra,
    )
    return code, json.loads(body)


def test_wechat_refunds_query_and_notify(ctx: str, notify_sink: NotifySink) -> None:
    trade = paid_wechat_trade(notify_sink.url)
    number = new_out_refund_no(utcnow())
    code, answer = wechat_refund(number, trade["transaction_id"], 3000, notify_url=notify_sink.url)
    assert code == 200
    assert (answer["status"], answer["out_refund_no"], answer["amount"]["refund"]) == (
        "SUCCESS",
        number,
        3000,
    )
    assert answer["refund_id"].startswith("50") and answer["success_time"]

    attempts = wait_for_acknowledgement(number)
    assert attempts and attempts[-1].status == 200
    (received,) = notify_sink.received
    event = wechat.client().callback(received.headers, received.body)
    assert event["event_type"] == "REFUND.SUCCESS"
    assert json.loads(received.body)["resource"]["original_type"] == "refund"
    resource = event["resource"]
    assert {key: resource[key] for key in ("refund_status", "out_refund_no", "out_trade_no")} == {
        "refund_status": "SUCCESS",
        "out_refund_no": number,
        "out_trade_no": trade["out_trade_no"],
    }
    assert resource["mchid"] == current_keys().wechat_mchid
    assert resource["amount"] == {
        "payer_refund": 3000,
        "payer_total": 9900,
        "refund": 3000,
        "total": 9900,
    }

    # The same number again is the same refund; with another amount it is refused.
    again = wechat_refund(number, trade["transaction_id"], 3000)
    assert again == (200, {**answer, "create_time": again[1]["create_time"]})
    assert wechat_refund(number, trade["transaction_id"], 3001)[1]["code"] == "INVALID_REQUEST"
    # Never more than the trade.
    too_much = wechat_refund(new_out_refund_no(utcnow()), trade["transaction_id"], 6901)
    assert (too_much[0], too_much[1]["code"]) == (400, "INVALID_REQUEST")
    assert wechat_refund(new_out_refund_no(utcnow()), trade["transaction_id"], 6900)[0] == 200
    # The total must be the trade's; the trade must exist and be paid.
    assert wechat_refund(new_out_refund_no(utcnow()), trade["transaction_id"], 1, 9901)[0] == 400
    assert wechat_refund(new_out_refund_no(utcnow()), "4200000000000000000000000000", 1)[0] == 404
    unpaid, _url = create_wechat_trade(notify_sink.url)
    code, body = wechat.client().refund(
        out_refund_no=new_out_refund_no(utcnow()),
        amount={"refund": 1, "total": 9900, "currency": "CNY"},
        out_trade_no=unpaid,
    )
    assert (code, json.loads(body)["code"]) == (400, "INVALID_REQUEST")

    assert wechat.query(trade["out_trade_no"]).trade_state == "REFUND"  # type: ignore[union-attr]
    queried = wechat.query_refund(number)
    assert queried is not None and (queried.status, queried.refund_fen) == ("SUCCESS", 3000)
    assert wechat.query_refund("R-unknown") is None


def test_wechat_refund_modes(ctx: str, notify_sink: NotifySink) -> None:
    trade = paid_wechat_trade(notify_sink.url)
    control.set_refund_mode("wechat", "insufficient_balance")
    number = new_out_refund_no(utcnow())
    code, answer = wechat_refund(number, trade["transaction_id"], 100)
    assert (code, answer["code"]) == (403, "NOT_ENOUGH")
    assert control.refund("wechat", number) is None  # nothing recorded: send it again later

    control.set_refund_mode("wechat", "pending")
    code, answer = wechat_refund(number, trade["transaction_id"], 100, notify_url=notify_sink.url)
    assert (code, answer["status"]) == (200, "PROCESSING")
    assert notify_sink.received == []
    delivery = control.settle_refund("wechat", number, "ABNORMAL")
    assert delivery is not None and delivery.wait(15)
    event = wechat.client().callback(notify_sink.received[0].headers, notify_sink.received[0].body)
    assert (event["event_type"], event["resource"]["refund_status"]) == (
        "REFUND.ABNORMAL",
        "ABNORMAL",
    )
    # An abnormal refund gives its amount back: the whole trade can be refunded again.
    control.set_refund_mode("wechat", "succeed")
    assert wechat_refund(new_out_refund_no(utcnow()), trade["transaction_id"], 9900)[0] == 200
    with pytest.raises(control.SandboxError):
        control.settle_refund("wechat", number, "SUCCESS")  # it is over


def test_wechat_refund_requests_must_be_signed(ctx: str) -> None:
    unsigned = requests.post(
        ctx + "/sandbox/wechatpay/v3/refund/domestic/refunds",
        json={"out_refund_no": "R1", "out_trade_no": "X1", "amount": {"refund": 1, "total": 1}},
        timeout=10,
    )
    assert (unsigned.status_code, unsigned.json()["code"]) == (401, "SIGN_ERROR")
    stranger = generate_keys()
    forged = requests.get(
        ctx + "/sandbox/wechatpay/v3/bill/tradebill?bill_date=2026-01-01",
        headers={"Authorization": f'WECHATPAY2-SHA256-RSA2048 mchid="{stranger.wechat_mchid}"'},
        timeout=10,
    )
    assert forged.status_code == 401


def paid_alipay_trade(notify_url: str, amount: str = "99.00") -> str:
    out_trade_no, url = page_pay(notify_url, notify_url, amount)
    control.open_alipay_page(url)
    control.pay_trade(out_trade_no, notify=False, channel="alipay")
    return out_trade_no


def alipay_refund(out_trade_no: str, number: str, amount: str) -> dict[str, Any]:
    return dict(
        alipay.client().api_alipay_trade_refund(
            refund_amount=amount, out_trade_no=out_trade_no, out_request_no=number
        )
    )


def test_alipay_refunds_are_idempotent_per_request_number(
    ctx: str, notify_sink: NotifySink
) -> None:
    out_trade_no = paid_alipay_trade(notify_sink.url)
    done = alipay_refund(out_trade_no, "A1", "10.00")
    assert (done["code"], done["fund_change"], done["refund_fee"]) == ("10000", "Y", "10.00")
    assert done["send_back_fee"] == "10.00" and done["gmt_refund_pay"]
    repeat = alipay_refund(out_trade_no, "A1", "10.00")
    assert (repeat["code"], repeat["fund_change"], repeat["refund_fee"]) == ("10000", "N", "10.00")
    assert alipay_refund(out_trade_no, "A1", "11.00")["sub_code"] == "ACQ.DISCORDANT_REPEAT_REQUEST"
    assert (
        alipay_refund(out_trade_no, "A2", "89.01")["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    )
    assert alipay_refund("nobody-" + new_out_trade_no(), "A3", "1.00")["sub_code"] == (
        "ACQ.TRADE_NOT_EXIST"
    )

    queried = alipay.query_refund(out_trade_no, "A1")
    assert (queried.succeeded, queried.refund_fen) == (True, 1000)
    assert alipay.query_refund(out_trade_no, "A-unknown").succeeded is False

    assert alipay_refund(out_trade_no, "A4", "89.00")["fund_change"] == "Y"
    closed = alipay.query(out_trade_no)
    assert closed is not None and closed.trade_status == "TRADE_CLOSED"  # refunded in full
    assert alipay_refund(out_trade_no, "A5", "0.01")["sub_code"] == "ACQ.TRADE_STATUS_ERROR"


def test_alipay_refund_modes(ctx: str, notify_sink: NotifySink) -> None:
    out_trade_no = paid_alipay_trade(notify_sink.url)
    control.set_refund_mode("alipay", "insufficient_balance")
    refused = alipay_refund(out_trade_no, "B1", "5.00")
    assert (refused["code"], refused["sub_code"]) == ("40004", "ACQ.SELLER_BALANCE_NOT_ENOUGH")
    control.set_refund_mode("alipay", "pending")
    waiting = alipay_refund(out_trade_no, "B1", "5.00")
    assert (waiting["code"], waiting["fund_change"]) == ("10000", "N")
    assert alipay.query_refund(out_trade_no, "B1").succeeded is False
    control.settle_refund("alipay", "B1")
    assert alipay.query_refund(out_trade_no, "B1").succeeded is True


def test_the_console_switches_modes_and_settles_refunds(ctx: str, notify_sink: NotifySink) -> None:
    """/sandbox/refunds, as a person uses it in a browser (forms with CSRF tokens)."""
    trade = paid_wechat_trade(notify_sink.url)
    browser = requests.Session()
    page = browser.get(ctx + "/sandbox/refunds", timeout=10)
    assert page.status_code == 200 and 'id="refund-mode-wechat"' in page.text
    token = CSRF_FIELD.search(page.text)
    assert token is not None
    changed = browser.post(
        ctx + "/sandbox/refunds/mode",
        data={"csrf_token": token.group(1), "channel": "wechat", "mode": "pending"},
        allow_redirects=False,
        timeout=10,
    )
    assert changed.status_code == 302
    assert (
        browser.post(
            ctx + "/sandbox/refunds/mode", data={"channel": "wechat"}, timeout=10
        ).status_code
        == 400
    )

    number = new_out_refund_no(utcnow())
    code, answer = wechat_refund(number, trade["transaction_id"], 500, notify_url=notify_sink.url)
    assert (code, answer["status"]) == (200, "PROCESSING")
    page = browser.get(ctx + "/sandbox/refunds", timeout=10)
    assert f'data-out-refund-no="{number}" data-status="PROCESSING"' in page.text
    settled = browser.post(
        f"{ctx}/sandbox/refunds/wechat/{number}/settle",
        data={"csrf_token": token.group(1), "status": "SUCCESS"},
        allow_redirects=False,
        timeout=10,
    )
    assert settled.status_code == 302
    record = control.refund("wechat", number)
    assert record is not None and record.status == "SUCCESS"
    assert wait_for_acknowledgement(number)[-1].status == 200
