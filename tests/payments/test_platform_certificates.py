"""WeChat Pay platform certificates (certificate mode) against forged serials.

A notify naming a Wechatpay-Serial we do not hold makes us download /v3/certificates
again (a rotation), but at most once per WECHATPAY_CERTIFICATE_REFRESH_SECONDS: a forger
sending notifies with random serials must not make us call the provider each time,
and each forged notify is rejected with nothing changed.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from tests.payments.support import Shop, shop_fixture  # noqa: F401
from webapp.extensions import db
from webapp.payments import wechat
from webapp.payments.models import PaymentEvent
from webapp.payments.sandbox import control


def _certificate_mode(app: Flask, tmp_path: Path) -> None:
    app.config["WECHATPAY_CERT_DIR"] = str(tmp_path / "wechatpay-certs")
    app.config["WECHATPAY_PUBLIC_KEY"] = None
    app.config["WECHATPAY_PUBLIC_KEY_ID"] = None
    with app.app_context():
        wechat.reset_client()


def _post_notify(shop: Shop, out_trade_no: str, **options: object) -> requests.Response:
    with shop.app.app_context():
        notify = control.wechat_notify(out_trade_no, **options)  # type: ignore[arg-type]
    return requests.post(
        f"{shop.url}/api/v1/payments/wechat/notify",
        data=notify.body.encode(),
        headers=notify.headers,
        timeout=30,
    )


def _notify_events_after(shop: Shop, event_id: int) -> list[tuple[str, str]]:
    with shop.app.app_context():
        rows = db.session.execute(
            sa.select(PaymentEvent.outcome, PaymentEvent.reason)
            .where(PaymentEvent.id > event_id, PaymentEvent.source == "notify")
            .order_by(PaymentEvent.id)
        )
        return [(outcome, reason) for outcome, reason in rows]


@pytest.fixture
def paid_in_certificate_mode(shop: Shop, app: Flask, tmp_path: Path) -> tuple[str, int]:
    """Certificate mode, and an order paid at the sandbox whose notify is not yet sent:
    its number and id."""
    _certificate_mode(app, tmp_path)
    created = shop.buyer().checkout("wechat")
    shop.pay(created["out_trade_no"], notify=False)
    return created["out_trade_no"], created["order_id"]


def test_random_serials_download_certificates_at_most_once_and_are_rejected(
    shop: Shop, paid_in_certificate_mode: tuple[str, int]
) -> None:
    out_trade_no, order_id = paid_in_certificate_mode
    before = shop.run(control.certificate_downloads)
    last_event = shop.run(lambda: db.session.scalar(sa.select(sa.func.max(PaymentEvent.id))))

    for _ in range(8):
        response = _post_notify(shop, out_trade_no, serial=secrets.token_hex(20).upper())
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "FAIL"
    # A serial that is not hex at all never reaches the provider.
    response = _post_notify(shop, out_trade_no, serial="NOT-A-SERIAL")
    assert response.status_code == 400

    assert shop.run(control.certificate_downloads) - before <= 1
    events = _notify_events_after(shop, last_event or 0)
    assert len(events) == 9
    assert all(outcome == "rejected" and "Wechatpay-Serial" in why for outcome, why in events)
    assert shop.order(order_id)["status"] == "pending"

    # The genuine notify (a serial we hold) still fulfils, without a download.
    downloads = shop.run(control.certificate_downloads)
    attempt = shop.run(control.send_notify, out_trade_no)
    assert (attempt.status, attempt.succeeded) == (204, True)
    assert shop.order(order_id)["status"] == "paid"
    assert shop.run(control.certificate_downloads) == downloads


def test_a_notify_signed_by_a_rotated_certificate_is_verified_after_one_download(
    shop: Shop, paid_in_certificate_mode: tuple[str, int], tmp_path: Path
) -> None:
    out_trade_no, order_id = paid_in_certificate_mode
    rotated = shop.run(control.rotate_platform_certificate)
    before = shop.run(control.certificate_downloads)

    attempt = shop.run(control.send_notify, out_trade_no)
    assert (attempt.status, attempt.succeeded) == (204, True)
    assert shop.order(order_id)["status"] == "paid"
    assert shop.run(control.certificate_downloads) == before + 1
    assert (tmp_path / "wechatpay-certs" / f"{rotated.serial_no}.pem").exists()
