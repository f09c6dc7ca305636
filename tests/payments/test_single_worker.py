"""Development: the app and its payment sandbox served by ONE single-threaded worker
(issue 12, item 11).

The payment clients call the sandbox over HTTP from inside requests (starting a payment,
`refresh=1`). When the sandbox was answered by the app's own workers, that call waited
for the very worker making it: with one worker it always timed out, and with a few the
server stalled. The sandbox's gateways now have a server of their own, and its notifies
go out from their own threads, so one worker checks out, is notified and refreshes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from werkzeug.serving import make_server

from tests.payments.conftest import FAST_RETRY_DELAYS, _reset_clients
from tests.payments.support import Shop, _last_event_id
from webapp.extensions import db
from webapp.payments.models import PaymentEvent
from webapp.payments.sandbox import control

TIMEOUT_SECONDS = 3  # the SDKs' timeout here: a call that waits on its own worker fails


@pytest.fixture
def one_worker(
    app: Flask, committed_db: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    """The app on 127.0.0.1 served by a single thread (BASE_URL points at it)."""
    saved_config, saved_instance_path = dict(app.config), app.instance_path
    app.instance_path = str(tmp_path_factory.mktemp("one-worker-sandbox"))
    app.config["SANDBOX_NOTIFY_RETRY_DELAYS"] = FAST_RETRY_DELAYS
    app.config["PAYMENT_HTTP_TIMEOUT_SECONDS"] = TIMEOUT_SECONDS
    server = make_server("127.0.0.1", 0, app, threaded=False)
    app.config["BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    _reset_clients(app)
    last_event = _last_event_id(app)
    thread = threading.Thread(target=server.serve_forever, name="one-worker", daemon=True)
    thread.start()
    try:
        yield Shop(app, app.config["BASE_URL"])
    finally:
        control.stop_deliveries()
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.session.execute(sa.delete(PaymentEvent).where(PaymentEvent.id > last_event))
            db.session.commit()
        app.config.clear()
        app.config.update(saved_config)
        app.instance_path = saved_instance_path
        _reset_clients(app)


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_one_worker_checks_out_is_notified_and_refreshes(one_worker: Shop, channel: str) -> None:
    buyer = one_worker.buyer()
    order = buyer.order("pro")
    headers = {"Authorization": f"Bearer {buyer.api.token}"}

    started_at = time.monotonic()
    created = requests.post(
        f"{one_worker.url}/api/v1/payments/{channel}/create",
        json={"order_id": order["id"]},
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert time.monotonic() - started_at < TIMEOUT_SECONDS  # nobody waited on a timeout
    if channel == "alipay":  # the browser is still sent to BASE_URL's cashier, and opens it
        pay_url = created.json()["pay_url"]
        assert pay_url.startswith(f"{one_worker.url}/sandbox/alipay/")
        assert requests.get(pay_url, timeout=30).status_code == 200

    out_trade_no = created.json()["out_trade_no"]
    one_worker.pay(out_trade_no, notify=False)  # paid at the provider, no notify yet
    started_at = time.monotonic()
    refreshed = requests.get(
        f"{one_worker.url}/api/v1/payments/orders/{order['id']}",
        params={"refresh": "1"},
        headers=headers,
        timeout=30,
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["status"] == "paid"
    assert time.monotonic() - started_at < TIMEOUT_SECONDS


def test_the_sandbox_notify_reaches_the_one_worker(one_worker: Shop) -> None:
    buyer = one_worker.buyer()
    order = buyer.order("pro")
    created = requests.post(
        f"{one_worker.url}/api/v1/payments/wechat/create",
        json={"order_id": order["id"]},
        headers={"Authorization": f"Bearer {buyer.api.token}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    attempts = one_worker.pay(created.json()["out_trade_no"])  # delivered from its thread
    assert attempts and attempts[-1].succeeded
    assert one_worker.order(order["id"])["status"] == "paid"


def test_the_gateway_server_serves_only_the_sandbox(one_worker: Shop) -> None:
    with one_worker.app.test_request_context():
        from webapp.payments.sandbox.server import gateway_base_url

        base = gateway_base_url()
    assert base != one_worker.url
    assert requests.get(f"{base}/api/v1/subscriptions/plans", timeout=5).status_code == 404
    assert requests.get(f"{base}/livez", timeout=5).status_code == 404
    answer = requests.get(f"{base}/sandbox/wechatpay/v3/certificates", timeout=5)
    assert answer.status_code == 401  # the sandbox itself: unsigned calls are refused
    assert Path(one_worker.app.instance_path).exists()
