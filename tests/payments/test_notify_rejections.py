"""Notifies that must change nothing: forged, tampered, inconsistent, stale, malformed.

Each is POSTed over HTTP to the live server's notify endpoint, for an order that the
sandbox reports paid (so a wrongly accepted notify would fulfil it). Each must get
the provider's failure answer (WeChat Pay: 4xx `{"code": "FAIL"}`; Alipay: `fail`),
never a 5xx, leave the order pending and the subscription alone, and leave exactly
one `payment_events` row saying why. At the end the genuine notify still fulfils.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.payments.support import Shop, shop_fixture, wechat_key_mode_fixture  # noqa: F401
from webapp.extensions import db
from webapp.payments.models import PaymentEvent
from webapp.payments.sandbox import control
from webapp.payments.sandbox.common import current_keys, current_store
from webapp.payments.sandbox.keys import SandboxKeys, generate_keys
from webapp.payments.sandbox.wechatpay import signature_headers, signing_identity
from webapp.payments.settings import wechat_settings

HUGE = 2 * 1024 * 1024  # over MAX_CONTENT_LENGTH (1 MiB)
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def stranger() -> SandboxKeys:
    """Keys nobody knows: what a forger signs with."""
    return generate_keys()


@dataclass(frozen=True)
class Case:
    name: str
    # (out_trade_no, unknown_out_trade_no, stranger keys) → (headers, body)
    build: Callable[[str, str, SandboxKeys], tuple[dict[str, str], str | bytes]]
    status: int
    reason: str  # contained in the event's reason
    verified: bool = False
    about_order: bool = False  # the event names our order
    answer: str = "fail"  # Alipay's answer text


def _wechat(**options: Any) -> Callable[[str, str, SandboxKeys], tuple[dict[str, str], str]]:
    def build(
        out_trade_no: str, _unknown: str, _stranger: SandboxKeys
    ) -> tuple[dict[str, str], str]:
        notify = control.wechat_notify(out_trade_no, **options)
        return dict(notify.headers), notify.body

    return build


def _public_key_mode() -> bool:
    """Whether the merchant is in public-key mode (else certificate mode)."""
    return wechat_settings().public_key is not None


def _signed_wechat_body(body: str) -> tuple[dict[str, str], str]:
    """Any body, signed with the sandbox platform key as a genuine notify would be."""
    identity = signing_identity(current_keys(), current_store(), _public_key_mode())
    headers = signature_headers(identity, body)
    return {**headers, **JSON}, body


def _without(header: str) -> Callable[[str, str, SandboxKeys], tuple[dict[str, str], str]]:
    def build(
        out_trade_no: str, _unknown: str, _stranger: SandboxKeys
    ) -> tuple[dict[str, str], str]:
        notify = control.wechat_notify(out_trade_no)
        headers = {k: v for k, v in notify.headers.items() if k != header}
        return headers, notify.body

    return build


def _with_header(
    header: str, value: str
) -> Callable[[str, str, SandboxKeys], tuple[dict[str, str], str]]:
    def build(
        out_trade_no: str, _unknown: str, _stranger: SandboxKeys
    ) -> tuple[dict[str, str], str]:
        notify = control.wechat_notify(out_trade_no)
        return {**notify.headers, header: value}, notify.body

    return build


def _content_type(value: str) -> Callable[[str, str, SandboxKeys], tuple[dict[str, str], str]]:
    def build(
        out_trade_no: str, _unknown: str, _stranger: SandboxKeys
    ) -> tuple[dict[str, str], str]:
        notify = control.wechat_notify(out_trade_no)
        return {**notify.headers, "Content-Type": value}, notify.body

    return build


WECHAT_CASES = [
    Case(
        "forged signature",
        lambda otn, _u, keys: _wechat(signing_key=keys.platform_private_key)(otn, _u, keys),
        400,
        "bad signature",
    ),
    Case("body changed after signing", _wechat(tamper_body=True), 400, "bad signature"),
    Case("tampered ciphertext", _wechat(tamper_ciphertext=True), 400, "undecryptable"),
    Case("encrypted with another APIv3 key", _wechat(apiv3_key="k" * 32), 400, "undecryptable"),
    Case(
        "unknown Wechatpay-Serial",
        _wechat(serial="PUB_KEY_ID_0000000000000000000000000000"),
        400,
        "unverifiable",
    ),
    Case(
        "stale timestamp",
        _wechat(timestamp=int(time.time()) - 301),
        400,
        "stale timestamp",
    ),
    Case("timestamp from the future", _wechat(timestamp=int(time.time()) + 3600), 400, "stale"),
    Case("not a payment event", _wechat(event_type="REFUND.SUCCESS"), 400, "event type"),
    Case(
        "wrong amount",
        _wechat(transaction={"amount": {"total": 1}}),
        400,
        "amount 1 CNY != 19900 CNY",
        verified=True,
        about_order=True,
    ),
    Case(
        "wrong currency",
        _wechat(transaction={"amount": {"currency": "USD"}}),
        400,
        "amount 19900 USD != 19900 CNY",
        verified=True,
        about_order=True,
    ),
    Case(
        "wrong appid",
        _wechat(transaction={"appid": "wx0000000000000000"}),
        400,
        "appid does not match",
        verified=True,
        about_order=True,
    ),
    Case(
        "wrong mchid",
        _wechat(transaction={"mchid": "1234567890"}),
        400,
        "mchid does not match",
        verified=True,
        about_order=True,
    ),
    Case(
        "unknown out_trade_no",
        lambda _otn, unknown, keys: _wechat(public_key_mode=_public_key_mode())(
            unknown, unknown, keys
        ),
        400,
        "unknown out_trade_no",
        verified=True,
    ),
    Case("empty, no headers", lambda *_: ({}, ""), 415, "content type ''"),
    Case("empty JSON request, no headers", lambda *_: (dict(JSON), ""), 400, "Wechatpay-Timestamp"),
    Case(
        "signed, but not JSON",
        lambda *_: _signed_wechat_body("this is not json"),
        400,
        "unverifiable notify",
    ),
    Case("signed JSON array", lambda *_: _signed_wechat_body("[1, 2]"), 400, "unverifiable"),
    Case(
        "signed JSON without resource",
        lambda *_: _signed_wechat_body('{"event_type": "TRANSACTION.SUCCESS"}'),
        400,
        "bad signature or undecryptable",
    ),
    Case("no Wechatpay-Signature", _without("Wechatpay-Signature"), 400, "bad signature"),
    Case("no Wechatpay-Timestamp", _without("Wechatpay-Timestamp"), 400, "Wechatpay-Timestamp"),
    Case(
        "Wechatpay-Timestamp beyond a float",
        _with_header("Wechatpay-Timestamp", "9" * 400),
        400,
        "stale timestamp",
    ),
    Case("no Wechatpay-Nonce", _without("Wechatpay-Nonce"), 400, "bad signature"),
    Case("no Wechatpay-Serial", _without("Wechatpay-Serial"), 400, "unverifiable"),
    Case("no signature type", _without("Wechatpay-Signature-Type"), 400, "unverifiable"),
    Case("text/plain", _content_type("text/plain"), 415, "content type 'text/plain'"),
    Case("form-encoded", _content_type("application/x-www-form-urlencoded"), 415, "content type"),
    Case("NUL byte", lambda *_: (dict(JSON), "\x00"), 400, "Wechatpay-Timestamp"),
    Case("not UTF-8", lambda *_: (dict(JSON), b"\xff\xfe{"), 400, "Wechatpay-Timestamp"),
    Case("huge", lambda *_: (dict(JSON), "x" * HUGE), 413, "body too large"),
]


def _alipay(**options: Any) -> Callable[[str, str, SandboxKeys], tuple[dict[str, str], str]]:
    def build(
        out_trade_no: str, _unknown: str, _stranger: SandboxKeys
    ) -> tuple[dict[str, str], str]:
        notify = control.alipay_notify(out_trade_no, **options)
        return dict(notify.headers), notify.body

    return build


FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
ALIPAY_CASES = [
    Case(
        "forged signature",
        lambda otn, _u, keys: _alipay(signing_key=keys.alipay_private_key)(otn, _u, keys),
        400,
        "bad signature",
    ),
    Case("amount changed after signing", _alipay(tamper={"total_amount": "0.01"}), 400, "bad"),
    Case("no sign", _alipay(drop=("sign",)), 400, "missing sign"),
    Case("unknown sign_type", _alipay(tamper={"sign_type": "RSA"}), 400, "unverifiable"),
    Case(
        "wrong amount",
        _alipay(fields={"total_amount": "0.01"}),
        400,
        "total_amount '0.01' != 199.00",
        verified=True,
        about_order=True,
    ),
    Case(
        "amount that is no amount",
        _alipay(fields={"total_amount": "199.001"}),
        400,
        "total_amount '199.001'",
        verified=True,
        about_order=True,
    ),
    Case(
        "wrong app_id",
        _alipay(fields={"app_id": "2021999999999999"}),
        400,
        "app_id does not match",
        verified=True,
        about_order=True,
    ),
    Case(
        "another merchant's seller_id",
        _alipay(fields={"seller_id": "2088999999999999"}),
        400,
        "seller_id does not match",
        verified=True,
        about_order=True,
    ),
    Case(
        "unknown out_trade_no",
        lambda _otn, unknown, keys: _alipay()(unknown, unknown, keys),
        400,
        "unknown out_trade_no",
        verified=True,
    ),
    Case("empty, no content type", lambda *_: ({}, ""), 400, "missing sign"),
    Case("empty form", lambda *_: (dict(FORM), ""), 400, "missing sign"),
    Case("JSON", lambda *_: (dict(JSON), '{"sign": "x"}'), 400, "missing sign"),
    Case("garbage", lambda *_: (dict(FORM), "%%%&&&==="), 400, "missing sign"),
    Case("huge", lambda *_: (dict(FORM), "a=" + "x" * HUGE), 413, "body too large"),
]


def _events_after(shop: Shop, last_id: int) -> list[PaymentEvent]:
    with shop.app.app_context():
        events = list(
            db.session.scalars(
                sa.select(PaymentEvent).where(PaymentEvent.id > last_id).order_by(PaymentEvent.id)
            )
        )
        db.session.expunge_all()
        return events


def _last_event_id(shop: Shop) -> int:
    with shop.app.app_context():
        return db.session.scalar(sa.select(sa.func.max(PaymentEvent.id))) or 0


def _post(url: str, headers: dict[str, str], body: str | bytes) -> requests.Response:
    data = body.encode() if isinstance(body, str) else body
    return requests.post(url, data=data, headers=headers, timeout=30)


def _check_cases(
    shop: Shop, channel: str, cases: list[Case], stranger: SandboxKeys
) -> tuple[dict[str, Any], str]:
    """Pay an order at the sandbox (no notify), then post every case; returns the order."""
    buyer = shop.buyer()
    created = buyer.checkout(channel)
    out_trade_no, order_id = created["out_trade_no"], created["order_id"]
    if channel == "alipay":
        shop.run(control.open_alipay_page, created["pay_url"])
    shop.pay(out_trade_no, notify=False)
    url = f"{shop.url}/api/v1/payments/{channel}/notify"
    subscription = shop.subscription(buyer.organization_id)

    for case in cases:
        unknown = f"NOSUCH{time.time_ns()}"
        with shop.app.app_context():
            headers, body = case.build(out_trade_no, unknown, stranger)
        last_id = _last_event_id(shop)
        response = _post(url, headers, body)

        assert response.status_code == case.status, (case.name, response.text)
        if channel == "wechat":
            assert response.headers["Content-Type"] == "application/json", case.name
            answer = response.json()
            assert answer["code"] == "FAIL" and answer["message"], (case.name, answer)
        else:
            assert response.headers["Content-Type"].startswith("text/plain"), case.name
            assert response.text == case.answer, case.name
        events = _events_after(shop, last_id)
        assert len(events) == 1, (case.name, [(e.outcome, e.reason) for e in events])
        event = events[0]
        assert (event.channel, event.source, event.outcome) == (channel, "notify", "rejected")
        assert event.verified is case.verified, (case.name, event.reason)
        assert case.reason in event.reason, (case.name, event.reason)
        assert event.order_id == (order_id if case.about_order else None), case.name
        if case.name == "unknown out_trade_no":
            assert event.out_trade_no == unknown
        assert shop.order(order_id)["status"] == "pending", case.name
        assert shop.subscription(buyer.organization_id) == subscription, case.name
    return created, buyer.email


def test_wechat_rejections_change_nothing(
    shop: Shop, stranger: SandboxKeys, wechat_key_mode: str
) -> None:
    created, _email = _check_cases(shop, "wechat", WECHAT_CASES, stranger)
    # The genuine notify still fulfils the order.
    attempt = shop.run(control.send_notify, created["out_trade_no"])
    assert (attempt.status, attempt.succeeded) == (204, True)
    assert shop.order(created["order_id"])["status"] == "paid"


def test_alipay_rejections_change_nothing(shop: Shop, stranger: SandboxKeys) -> None:
    created, _email = _check_cases(shop, "alipay", ALIPAY_CASES, stranger)
    attempt = shop.run(control.send_notify, created["out_trade_no"])
    assert (attempt.status, attempt.response_body, attempt.succeeded) == (200, "success", True)
    assert shop.order(created["order_id"])["status"] == "paid"


@pytest.mark.parametrize("status", ["WAIT_BUYER_PAY", "TRADE_CLOSED"])
def test_alipay_notify_of_an_unpaid_trade_is_acknowledged_only(shop: Shop, status: str) -> None:
    """Genuine and consistent, but no payment: `success` (no resending), order unchanged."""
    buyer = shop.buyer()
    created = buyer.checkout("alipay")
    shop.run(control.open_alipay_page, created["pay_url"])
    with shop.app.app_context():
        notify = control.alipay_notify(created["out_trade_no"], fields={"trade_status": status})
    response = _post(f"{shop.url}/api/v1/payments/alipay/notify", notify.headers, notify.body)
    assert (response.status_code, response.text) == (200, "success")
    assert shop.order(created["order_id"])["status"] == "pending"
    assert [
        (e["outcome"], e["verified"]) for e in shop.events(created["out_trade_no"], "notify")
    ] == [("unpaid", True)]
    assert shop.subscription(buyer.organization_id)["plan"] == "free"


def test_alipay_notify_with_nul_is_refused_and_kept_for_audit(shop: Shop) -> None:
    """A NUL in the form (Alipay never sends one) fails verification: `fail`, a rejected
    payment event with the raw body (NUL made storable), and no change to the order."""
    buyer = shop.buyer()
    created = buyer.checkout("alipay")
    last_id = _last_event_id(shop)
    body = f"out_trade_no={created['out_trade_no']}&sign=%00"
    response = _post(f"{shop.url}/api/v1/payments/alipay/notify", FORM, body)
    assert response.status_code == 400
    assert response.text == "fail"
    events = _events_after(shop, last_id)
    assert [(event.source, event.outcome, event.verified) for event in events] == [
        ("notify", "rejected", False)
    ]
    assert shop.order(created["order_id"])["status"] == "pending"
