"""WeChat Pay refund notifies at /api/v1/payments/wechat/refund-notify, over HTTP.

A genuine one moves a pending refund on once; a replay changes nothing (and is
acknowledged, so WeChat Pay stops). Forged, tampered, stale and mismatched ones get
`{"code": "FAIL"}` (4xx), leave the refund pending and leave one rejected
`payment_events` row saying why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.payments.support import Shop, shop_fixture, wechat_key_mode_fixture  # noqa: F401
from webapp.errors import AppError
from webapp.extensions import db
from webapp.payments import refunds
from webapp.payments.models import PaymentEvent, Refund
from webapp.payments.sandbox import control
from webapp.payments.sandbox.keys import generate_keys

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def pending_refund(shop: Shop) -> Any:
    """A paid WeChat Pay order with a refund WeChat Pay is still processing."""
    shop.run(control.set_refund_mode, "wechat", "pending")
    try:
        buyer = shop.buyer()
        created = buyer.checkout("wechat")
        shop.pay(created["out_trade_no"])
        with shop.app.app_context():
            refund = refunds.create_refund(created["order_id"], "客户取消", 19900)
            db.session.commit()
            refund_id = refund.id
        shop.run(refunds.send_refund, refund_id)
        (row,) = shop.refunds(created["order_id"])
        assert row["status"] == "pending"
        yield {**row, "order_id": created["order_id"], "out_trade_no": created["out_trade_no"]}
    finally:
        shop.run(control.set_refund_mode, "wechat", "succeed")


def _post(shop: Shop, headers: dict[str, str], body: str | bytes) -> requests.Response:
    data = body.encode() if isinstance(body, str) else body
    return requests.post(
        f"{shop.url}/api/v1/payments/wechat/refund-notify", data=data, headers=headers, timeout=30
    )


def _refund_state(shop: Shop, refund_id: int) -> tuple[str, Any]:
    with shop.app.app_context():
        refund = db.session.get(Refund, refund_id)
        assert refund is not None
        return refund.status, refund.succeeded_at


def _last_event_id(shop: Shop) -> int:
    with shop.app.app_context():
        return db.session.scalar(sa.select(sa.func.max(PaymentEvent.id))) or 0


def _events_after(shop: Shop, event_id: int) -> list[PaymentEvent]:
    with shop.app.app_context():
        events = list(
            db.session.scalars(
                sa.select(PaymentEvent).where(PaymentEvent.id > event_id).order_by(PaymentEvent.id)
            )
        )
        db.session.expunge_all()
        return events


def test_a_genuine_notify_settles_the_refund_once_and_a_replay_changes_nothing(
    shop: Shop, wechat_key_mode: str, pending_refund: dict[str, Any]
) -> None:
    """In both key modes (the mode is set before the refund is made)."""
    with shop.app.app_context():
        delivery = control.settle_refund("wechat", pending_refund["out_refund_no"], "SUCCESS")
    assert delivery is not None
    attempts = delivery.wait(15)
    assert [(a.status, a.url) for a in attempts] == [
        (204, f"{shop.url}/api/v1/payments/wechat/refund-notify")
    ]
    status, succeeded_at = _refund_state(shop, pending_refund["id"])
    assert status == "succeeded" and succeeded_at is not None
    assert ("refund_notify", "succeeded", True) in shop.refund_events(
        pending_refund["out_refund_no"]
    )

    with shop.app.app_context():
        replay = control.wechat_refund_notify(pending_refund["out_refund_no"])
    for _ in range(2):
        response = _post(shop, replay.headers, replay.body)
        assert (response.status_code, response.text) == (204, "")
    assert _refund_state(shop, pending_refund["id"]) == (status, succeeded_at)
    outcomes = [
        outcome
        for source, outcome, _verified in shop.refund_events(pending_refund["out_refund_no"])
        if source == "refund_notify"
    ]
    assert outcomes == ["succeeded", "already_settled", "already_settled"]


def test_an_abnormal_refund_fails_with_the_reason(
    shop: Shop, pending_refund: dict[str, Any]
) -> None:
    with shop.app.app_context():
        delivery = control.settle_refund("wechat", pending_refund["out_refund_no"], "ABNORMAL")
    assert delivery is not None and delivery.wait(15)[-1].status == 204
    (refund,) = shop.refunds(pending_refund["order_id"])
    assert refund["status"] == "failed" and "ABNORMAL" in refund["failure_reason"]


def test_a_succeeded_refund_never_goes_back(shop: Shop, pending_refund: dict[str, Any]) -> None:
    """Genuine notifies saying closed or abnormal, a poll and a retry change nothing."""
    number = pending_refund["out_refund_no"]
    with shop.app.app_context():
        genuine = control.wechat_refund_notify(number)
    assert _post(shop, genuine.headers, genuine.body).status_code == 204
    settled = _refund_state(shop, pending_refund["id"])
    assert settled[0] == "succeeded"

    for status in ("CLOSED", "ABNORMAL"):
        with shop.app.app_context():
            later = control.wechat_refund_notify(
                number, event_type=f"REFUND.{status}", resource={"refund_status": status}
            )
        assert _post(shop, later.headers, later.body).status_code == 204
        assert _refund_state(shop, pending_refund["id"]) == settled
    shop.run(refunds.check_refund, pending_refund["id"])
    with shop.app.app_context(), pytest.raises(AppError) as raised:
        refunds.retry_refund(pending_refund["id"])
    assert raised.value.error == "refund_not_failed"
    assert _refund_state(shop, pending_refund["id"]) == settled
    outcomes = [o for s, o, _v in shop.refund_events(number) if s == "refund_notify"]
    assert outcomes == ["succeeded", "already_settled", "already_settled"]


@dataclass(frozen=True)
class Case:
    name: str
    options: dict[str, Any]
    reason: str
    status: int = 400
    verified: bool = False


STRANGER = generate_keys()
CASES = [
    Case("forged signature", {"signing_key": STRANGER.platform_private_key}, "bad signature"),
    Case("body changed after signing", {"tamper_body": True}, "bad signature"),
    Case("tampered ciphertext", {"tamper_ciphertext": True}, "undecryptable"),
    Case("encrypted with another APIv3 key", {"apiv3_key": "k" * 32}, "undecryptable"),
    Case("stale timestamp", {"timestamp": int(time.time()) - 301}, "stale timestamp"),
    Case("from the future", {"timestamp": int(time.time()) + 3600}, "stale timestamp"),
    Case("a payment event", {"event_type": "TRANSACTION.SUCCESS"}, "event type"),
    Case("closed, yet its status success", {"event_type": "REFUND.CLOSED"}, "refund status"),
    Case(
        "other refund amount",
        {"resource": {"amount": {"refund": 1}}},
        "refund amount",
        verified=True,
    ),
    Case("other total", {"resource": {"amount": {"total": 1}}}, "total amount", verified=True),
    Case("other merchant", {"resource": {"mchid": "1900000001"}}, "mchid", verified=True),
    Case(
        "other order",
        {"resource": {"out_trade_no": "20990101000000000000000001"}},
        "out_trade_no",
        verified=True,
    ),
    Case(
        "other transaction",
        {"resource": {"transaction_id": "4200000000000000000000000001"}},
        "transaction_id",
        verified=True,
    ),
    Case(
        "unknown refund",
        {"resource": {"out_refund_no": "R2099010100000000000000001"}},
        "unknown out_refund_no",
        verified=True,
    ),
]


def test_forged_tampered_stale_or_mismatched_refund_notifies_change_nothing(
    shop: Shop, pending_refund: dict[str, Any]
) -> None:
    number = pending_refund["out_refund_no"]
    for case in CASES:
        last = _last_event_id(shop)
        with shop.app.app_context():
            notify = control.wechat_refund_notify(number, **case.options)
        response = _post(shop, notify.headers, notify.body)
        assert response.status_code == case.status, (case.name, response.text)
        assert response.json()["code"] == "FAIL", case.name
        events = _events_after(shop, last)
        assert [(e.source, e.outcome, e.verified) for e in events] == [
            ("refund_notify", "rejected", case.verified)
        ], case.name
        assert case.reason in events[0].reason, (case.name, events[0].reason)
        assert _refund_state(shop, pending_refund["id"]) == ("pending", None), case.name

    headers = {**dict(control_headers(shop, number)), "Content-Type": "text/plain"}
    wrong_type = _post(shop, headers, "{}")
    assert wrong_type.status_code == 415
    huge = _post(shop, {**control_headers(shop, number), **JSON}, b"x" * (2 * 1024 * 1024))
    assert huge.status_code == 413
    assert _refund_state(shop, pending_refund["id"]) == ("pending", None)

    # The genuine one still settles it.
    with shop.app.app_context():
        genuine = control.wechat_refund_notify(number)
    assert _post(shop, genuine.headers, genuine.body).status_code == 204
    assert _refund_state(shop, pending_refund["id"])[0] == "succeeded"


def control_headers(shop: Shop, number: str) -> dict[str, str]:
    with shop.app.app_context():
        return dict(control.wechat_refund_notify(number).headers)
