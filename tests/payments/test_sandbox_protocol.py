"""The payment sandbox speaks the providers' protocols: the real SDKs, through the
merchant-side clients (webapp.payments.wechat / .alipay), over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from alipay import AliPay
from cryptography import x509
from flask import Flask
from wechatpayv3.utils import build_authorization, load_private_key, rsa_sign

from tests.payments.conftest import NotifySink
from webapp import create_app
from webapp.billing.periods import SHANGHAI
from webapp.payments import alipay, wechat
from webapp.payments.sandbox import alipay as sandbox_alipay
from webapp.payments.sandbox import control
from webapp.payments.sandbox.common import current_keys
from webapp.payments.sandbox.keys import SandboxKeys, generate_keys, new_platform_certificate
from webapp.payments.sandbox.store import NotifyAttempt
from webapp.payments.wechat import NotifyRejected, ProviderError

CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def new_out_trade_no() -> str:
    return f"{datetime.now(SHANGHAI):%Y%m%d%H%M%S}{secrets.token_hex(6)}"


def in_minutes(minutes: int) -> datetime:
    return datetime.now(SHANGHAI) + timedelta(minutes=minutes)


@pytest.fixture
def ctx(app: Flask, payments_live_server: str) -> Iterator[str]:
    """An app context for the merchant-side calls; yields the live server's base URL."""
    with app.app_context():
        yield payments_live_server


@pytest.fixture(scope="module")
def stranger_keys() -> SandboxKeys:
    """Keys of nobody the sandbox knows (forged signatures)."""
    return generate_keys()


def form_action(html: str, suffix: str) -> str:
    match = re.search(r'action="([^"]*' + re.escape(suffix) + r')"', html)
    assert match, f"no form posting to …{suffix}"
    return match.group(1)


def submit(session: requests.Session, page_url: str, html: str, suffix: str) -> requests.Response:
    """Press a sandbox page's button as a browser does (with the page's CSRF token)."""
    token = CSRF_FIELD.search(html)
    assert token
    action = form_action(html, suffix)
    parts = urlsplit(page_url)
    return session.post(
        f"{parts.scheme}://{parts.netloc}{action}",
        data={"csrf_token": token.group(1)},
        allow_redirects=False,
        timeout=10,
    )


def wait_for_acknowledgement(out_trade_no: str, timeout: float = 15) -> list[NotifyAttempt]:
    """The recorded notify attempts, once the merchant acknowledged one (or time is up)."""
    deadline = time.monotonic() + timeout
    attempts = control.notify_attempts(out_trade_no)
    while not (attempts and attempts[-1].succeeded) and time.monotonic() < deadline:
        time.sleep(0.05)
        attempts = control.notify_attempts(out_trade_no)
    return attempts


def create_wechat_trade(notify_url: str, amount_fen: int = 9900) -> tuple[str, str]:
    """A Native order created through the SDK with our own notify_url (the merchant's
    create_native_order always uses the app's notify endpoint)."""
    out_trade_no = new_out_trade_no()
    code, body = wechat.client().pay(
        description="专业版 · 1 个月",
        out_trade_no=out_trade_no,
        amount={"total": amount_fen, "currency": "CNY"},
        time_expire=in_minutes(30).isoformat(timespec="seconds"),
        notify_url=notify_url,
    )
    assert code == 200, body
    return out_trade_no, json.loads(body)["code_url"]


# --- WeChat Pay ---------------------------------------------------------------------------


def test_native_order_query_pay_and_close(ctx: str) -> None:
    out_trade_no = new_out_trade_no()
    expires = in_minutes(30)
    code_url = wechat.create_native_order(out_trade_no, "专业版 · 1 个月", 9900, expires)
    assert code_url.startswith(ctx + "/sandbox/wechatpay/scan/")

    trade = wechat.query(out_trade_no)
    assert trade is not None
    assert (trade.trade_state, trade.total_fen, trade.currency) == ("NOTPAY", 9900, "CNY")
    keys = current_keys()
    assert (trade.mchid, trade.appid) == (keys.wechat_mchid, keys.wechat_appid)
    assert trade.transaction_id is None and not trade.is_paid

    # The same order again: the same code_url. Another amount: refused.
    assert wechat.create_native_order(out_trade_no, "专业版 · 1 个月", 9900, expires) == code_url
    with pytest.raises(ProviderError, match="INVALID_REQUEST"):
        wechat.create_native_order(out_trade_no, "专业版 · 1 个月", 100, expires)

    assert control.pay_trade(out_trade_no, notify=False) is None
    paid = wechat.query(out_trade_no)
    assert paid is not None and paid.is_paid
    assert paid.transaction_id and paid.transaction_id.startswith("4200")
    assert paid.raw["amount"] == {
        "currency": "CNY",
        "payer_currency": "CNY",
        "payer_total": 9900,
        "total": 9900,
    }
    assert paid.raw["trade_type"] == "NATIVE"
    assert paid.raw["success_time"].endswith("+08:00")
    with pytest.raises(ProviderError, match="ORDERPAID"):
        wechat.close(out_trade_no)
    with pytest.raises(control.SandboxError):
        control.pay_trade(out_trade_no)

    assert wechat.query(new_out_trade_no()) is None


def test_close_then_query_and_recreate(ctx: str) -> None:
    out_trade_no = new_out_trade_no()
    expires = in_minutes(30)
    wechat.create_native_order(out_trade_no, "基础版", 1990, expires)
    wechat.close(out_trade_no)
    wechat.close(out_trade_no)  # closing twice is fine
    trade = wechat.query(out_trade_no)
    assert trade is not None and trade.trade_state == "CLOSED"
    with pytest.raises(ProviderError, match="ORDER_CLOSED"):
        wechat.create_native_order(out_trade_no, "基础版", 1990, expires)
    with pytest.raises(control.SandboxError):
        control.pay_trade(out_trade_no)
    with pytest.raises(ProviderError, match="ORDER_NOT_EXIST"):
        wechat.close(new_out_trade_no())


def test_native_order_parameters_are_validated(ctx: str) -> None:
    pay = wechat.client().pay
    base = {
        "description": "基础版",
        "out_trade_no": new_out_trade_no(),
        "amount": {"total": 100, "currency": "CNY"},
    }
    for changes, code in (
        ({"amount": {"total": 0}}, "PARAM_ERROR"),
        ({"amount": {"total": 100, "currency": "USD"}}, "PARAM_ERROR"),
        ({"out_trade_no": "a/b"}, "PARAM_ERROR"),
        ({"time_expire": "tomorrow"}, "PARAM_ERROR"),
        ({"appid": "wx0000000000000000"}, "APPID_MCHID_NOT_MATCH"),
        ({"mchid": "1234567890"}, "MCH_NOT_EXISTS"),
    ):
        status, body = pay(**{**base, **changes})
        assert status == 400, (changes, body)
        assert f'"code":"{code}"' in body, (changes, body)


def test_scan_page_cancel_and_pay(ctx: str, notify_sink: NotifySink) -> None:
    out_trade_no, code_url = create_wechat_trade(notify_sink.url, amount_fen=12345)
    browser = requests.Session()
    page = browser.get(code_url, timeout=10)
    assert page.status_code == 200
    html = page.text
    assert "¥123.45" in html and "专业版 · 1 个月" in html and out_trade_no in html
    assert 'id="sandbox-pay"' in html and 'id="sandbox-cancel"' in html and "沙箱" in html

    cancelled = submit(browser, code_url, html, "/cancel")
    assert cancelled.status_code == 200 and 'data-result="cancelled"' in cancelled.text
    trade = wechat.query(out_trade_no)
    assert trade is not None and trade.trade_state == "NOTPAY"

    # Without the page's CSRF token the button does nothing.
    assert browser.post(code_url + "/pay", timeout=10).status_code == 400

    paid = submit(browser, code_url, browser.get(code_url, timeout=10).text, "/pay")
    assert paid.status_code == 200 and 'data-result="paid"' in paid.text
    trade = wechat.query(out_trade_no)
    assert trade is not None and trade.is_paid
    again = browser.get(code_url, timeout=10).text
    assert 'data-result="already-paid"' in again and 'id="sandbox-pay"' not in again

    assert [a.status for a in wait_for_acknowledgement(out_trade_no)] == [200]
    assert len(notify_sink.received) == 1
    notified = wechat.verify_notify(notify_sink.received[0].headers, notify_sink.received[0].body)
    assert notified.out_trade_no == out_trade_no and notified.total_fen == 12345


def test_expired_trade_cannot_be_paid(ctx: str) -> None:
    out_trade_no = new_out_trade_no()
    code_url = wechat.create_native_order(out_trade_no, "基础版", 1990, in_minutes(30))
    control.expire_trade(out_trade_no)
    page = requests.get(code_url, timeout=10)
    assert 'data-result="expired"' in page.text and 'id="sandbox-pay"' not in page.text
    with pytest.raises(control.SandboxError, match="expired"):
        control.pay_trade(out_trade_no)
    trade = wechat.query(out_trade_no)  # WeChat Pay says NOTPAY until the order is closed
    assert trade is not None and trade.trade_state == "NOTPAY"
    wechat.close(out_trade_no)
    closed = wechat.query(out_trade_no)
    assert closed is not None and closed.trade_state == "CLOSED"


def _raw_get(base_url: str, path: str, authorization: str) -> requests.Response:
    return requests.get(
        base_url + "/sandbox/wechatpay" + path,
        headers={"Authorization": authorization, "Accept": "application/json"},
        timeout=10,
    )


def test_requests_not_signed_by_the_merchant_are_refused(
    ctx: str, app: Flask, stranger_keys: SandboxKeys
) -> None:
    keys = current_keys()
    path = f"/v3/pay/transactions/out-trade-no/{new_out_trade_no()}?mchid={keys.wechat_mchid}"
    merchant_key = load_private_key(keys.merchant_private_key)

    genuine = build_authorization(
        path, "GET", keys.wechat_mchid, keys.merchant_serial_no, merchant_key
    )
    assert _raw_get(ctx, path, genuine).status_code == 404  # authentic: ORDER_NOT_EXIST

    forged = build_authorization(
        path,
        "GET",
        keys.wechat_mchid,
        keys.merchant_serial_no,
        load_private_key(stranger_keys.merchant_private_key),
    )
    other_path = path.replace("out-trade-no/", "out-trade-no/X")
    stale_stamp = str(int(time.time()) - 600)
    stale_signature = rsa_sign(merchant_key, f"GET\n{path}\n{stale_stamp}\nNONCE\n\n")
    stale = (
        f'WECHATPAY2-SHA256-RSA2048 mchid="{keys.wechat_mchid}",nonce_str="NONCE",'
        f'signature="{stale_signature}",timestamp="{stale_stamp}",'
        f'serial_no="{keys.merchant_serial_no}"'
    )
    for target, authorization in (
        (path, forged),
        (other_path, genuine),  # signed for another path
        (path, genuine.replace(keys.merchant_serial_no, "ABCDEF")),
        (path, genuine.replace(keys.wechat_mchid, "1900000000", 1)),
        (path, stale),
        (path, "Bearer x"),
    ):
        response = _raw_get(ctx, target, authorization)
        assert response.status_code == 401, authorization
        assert response.json()["code"] == "SIGN_ERROR"

    # Through the SDK with the wrong merchant key: the merchant side sees a refusal.
    app.config["WECHATPAY_PRIVATE_KEY"] = stranger_keys.merchant_private_key
    wechat.reset_client()
    with pytest.raises(ProviderError, match="SIGN_ERROR"):
        wechat.query(new_out_trade_no())


def test_the_sdk_checks_the_sandbox_signature(
    ctx: str, app: Flask, stranger_keys: SandboxKeys
) -> None:
    """A merchant holding another platform public key refuses the sandbox's answers."""
    app.config["WECHATPAY_PUBLIC_KEY"] = stranger_keys.platform_public_key
    app.config["WECHATPAY_PUBLIC_KEY_ID"] = current_keys().platform_public_key_id
    wechat.reset_client()
    with pytest.raises(ProviderError, match="failed to verify the signature"):
        wechat.create_native_order(new_out_trade_no(), "基础版", 1990, in_minutes(30))


def test_answers_are_signed_with_the_identity_the_merchant_uses(ctx: str) -> None:
    keys = current_keys()
    path = f"/v3/pay/transactions/out-trade-no/{new_out_trade_no()}?mchid={keys.wechat_mchid}"
    authorization = build_authorization(
        path,
        "GET",
        keys.wechat_mchid,
        keys.merchant_serial_no,
        load_private_key(keys.merchant_private_key),
    )
    url = ctx + "/sandbox/wechatpay" + path
    public_key_mode = requests.get(
        url,
        headers={"Authorization": authorization, "Wechatpay-Serial": keys.platform_public_key_id},
        timeout=10,
    )
    certificate_mode = requests.get(url, headers={"Authorization": authorization}, timeout=10)
    assert public_key_mode.headers["Wechatpay-Serial"] == keys.platform_public_key_id
    assert re.fullmatch(r"[0-9A-F]+", certificate_mode.headers["Wechatpay-Serial"])
    for response in (public_key_mode, certificate_mode):
        assert response.headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
        assert response.headers["Content-Type"].startswith("application/json")


def test_certificate_mode_follows_a_rotation(ctx: str, app: Flask, tmp_path: Path) -> None:
    cert_dir = tmp_path / "wechatpay-certs"
    app.config["WECHATPAY_CERT_DIR"] = str(cert_dir)
    app.config["WECHATPAY_PUBLIC_KEY"] = None
    app.config["WECHATPAY_PUBLIC_KEY_ID"] = None
    wechat.reset_client()

    out_trade_no = new_out_trade_no()
    wechat.create_native_order(out_trade_no, "基础版", 1990, in_minutes(30))
    trade = wechat.query(out_trade_no)
    assert trade is not None and trade.trade_state == "NOTPAY"
    assert wechat.client()._core._public_key_id is None  # really certificate mode

    rotated = control.rotate_platform_certificate()
    assert not (cert_dir / f"{rotated.serial_no}.pem").exists()
    trade = wechat.query(out_trade_no)  # signed by the new certificate: the SDK fetches it
    assert trade is not None and trade.trade_state == "NOTPAY"
    assert (cert_dir / f"{rotated.serial_no}.pem").read_text() == rotated.certificate
    serials = {format(c.serial_number, "X") for c in wechat.client()._core._certificates}
    assert {current_keys().platform_certificate_serial, rotated.serial_no} <= serials

    # The notify of a trade created in certificate mode is signed by the newest certificate.
    same_key = control.rotate_platform_certificate(new_key=False)
    assert same_key.private_key == rotated.private_key
    control.pay_trade(out_trade_no, notify=False)
    notify = control.wechat_notify(out_trade_no)
    assert notify.headers["Wechatpay-Serial"] == same_key.serial_no
    notified = wechat.verify_notify(notify.headers, notify.body)
    assert notified.is_paid and notified.out_trade_no == out_trade_no


def test_notify_is_delivered_and_retried(ctx: str, notify_sink: NotifySink) -> None:
    notify_sink.answers = [(500, "busy"), (503, "")]
    notify_sink.default = (204, "")
    out_trade_no, _code_url = create_wechat_trade(notify_sink.url, amount_fen=2990)
    delivery = control.pay_trade(out_trade_no)
    assert delivery is not None
    attempts = delivery.wait(15)
    assert [a.status for a in attempts] == [500, 503, 204]
    assert [a.succeeded for a in attempts] == [False, False, True]
    assert [a.response_body for a in attempts[:1]] == ["busy"]
    assert [a.attempt for a in control.notify_attempts(out_trade_no)] == [1, 2, 3]

    assert len(notify_sink.received) == 3
    bodies = notify_sink.json_bodies()
    assert len({body["id"] for body in bodies}) == 1  # the same notify, delivered again
    for received in notify_sink.received:
        assert received.headers["Content-Type"] == "application/json"
        trade = wechat.verify_notify(received.headers, received.body)
        assert trade.out_trade_no == out_trade_no and trade.is_paid
        assert trade.total_fen == 2990 and trade.transaction_id
    first = bodies[0]
    assert first["event_type"] == "TRANSACTION.SUCCESS"
    assert first["resource_type"] == "encrypt-resource"
    resource = first["resource"]
    assert isinstance(resource, dict)
    assert resource["algorithm"] == "AEAD_AES_256_GCM"
    assert resource["associated_data"] == "transaction"
    assert len(resource["nonce"]) == 12

    # A duplicate on demand: recorded as the 4th attempt.
    duplicate = control.send_notify(out_trade_no)
    assert (duplicate.attempt, duplicate.status, duplicate.succeeded) == (4, 204, True)
    assert len(notify_sink.received) == 4


def test_notify_retries_are_bounded(ctx: str, notify_sink: NotifySink) -> None:
    notify_sink.default = (500, "")
    out_trade_no, _code_url = create_wechat_trade(notify_sink.url)
    delivery = control.pay_trade(out_trade_no)
    assert delivery is not None
    attempts = delivery.wait(15)
    assert len(attempts) == 4 and not delivery.succeeded  # the first + 3 fast retries


def test_wechat_evil_twins(ctx: str, stranger_keys: SandboxKeys) -> None:
    out_trade_no = new_out_trade_no()
    wechat.create_native_order(out_trade_no, "基础版", 1990, in_minutes(30))
    control.pay_trade(out_trade_no, notify=False)

    genuine = control.wechat_notify(out_trade_no)
    trade = wechat.verify_notify(genuine.headers, genuine.body)
    assert (trade.out_trade_no, trade.total_fen, trade.is_paid) == (out_trade_no, 1990, True)

    for twin, reason in (
        (control.wechat_notify(out_trade_no, tamper_ciphertext=True), "undecryptable"),
        (control.wechat_notify(out_trade_no, apiv3_key="k" * 32), "undecryptable"),
        (
            control.wechat_notify(out_trade_no, signing_key=stranger_keys.platform_private_key),
            "bad signature",
        ),
        (control.wechat_notify(out_trade_no, tamper_body=True), "bad signature"),
        (control.wechat_notify(out_trade_no, timestamp=int(time.time()) - 3600), "stale"),
        (control.wechat_notify(out_trade_no, event_type="REFUND.SUCCESS"), "event type"),
    ):
        with pytest.raises(NotifyRejected, match=reason):
            wechat.verify_notify(twin.headers, twin.body)

    # Authentic but inconsistent: for the merchant's own checks.
    keys = current_keys()
    for changes, field_name, value in (
        ({"amount": {"total": 1}}, "total_fen", 1),
        ({"appid": "wx0000000000000000"}, "appid", "wx0000000000000000"),
        ({"mchid": "1234567890"}, "mchid", "1234567890"),
    ):
        twin = control.wechat_notify(out_trade_no, transaction=changes)
        assert getattr(wechat.verify_notify(twin.headers, twin.body), field_name) == value
    unknown = new_out_trade_no()
    twin = control.wechat_notify(unknown)
    made_up = wechat.verify_notify(twin.headers, twin.body)
    assert (made_up.out_trade_no, made_up.mchid, made_up.is_paid) == (
        unknown,
        keys.wechat_mchid,
        True,
    )


# --- Alipay ----------------------------------------------------------------------------------


def page_pay(notify_url: str, return_url: str, amount: str = "99.00") -> tuple[str, str]:
    """A page.pay URL made by the SDK with our own notify_url (the merchant's page_pay_url
    always uses the app's notify endpoint)."""
    out_trade_no = new_out_trade_no()
    signed = alipay.client().api_alipay_trade_page_pay(
        subject="专业版 · 1 个月",
        out_trade_no=out_trade_no,
        total_amount=amount,
        return_url=return_url,
        notify_url=notify_url,
        time_expire=f"{in_minutes(30):%Y-%m-%d %H:%M:%S}",
    )
    return out_trade_no, f"{alipay.client()._gateway}?{signed}"


def test_page_pay_url_opens_the_cashier(ctx: str) -> None:
    out_trade_no = new_out_trade_no()
    return_url = ctx + "/billing"
    url = alipay.page_pay_url(out_trade_no, "专业版 · 1 个月", 9900, in_minutes(30), return_url)
    assert url.startswith(ctx + "/sandbox/alipay/gateway.do?")
    assert alipay.query(out_trade_no) is None  # Alipay learns of it when the buyer arrives

    browser = requests.Session()
    page = browser.get(url, timeout=10)
    assert page.status_code == 200
    assert "¥99.00" in page.text and "专业版 · 1 个月" in page.text and "沙箱" in page.text
    assert 'id="sandbox-pay"' in page.text and 'id="sandbox-cancel"' in page.text
    trade = alipay.query(out_trade_no)
    assert trade is not None
    assert (trade.trade_status, trade.total_amount, trade.is_paid) == (
        "WAIT_BUYER_PAY",
        "99.00",
        False,
    )
    assert trade.trade_no and trade.raw["buyer_user_id"].startswith("2088")

    cancelled = submit(browser, url, page.text, "/cancel")
    assert cancelled.status_code == 200 and 'data-result="cancelled"' in cancelled.text
    assert f'href="{return_url}"' in cancelled.text  # back, without payment parameters
    trade = alipay.query(out_trade_no)
    assert trade is not None and trade.trade_status == "WAIT_BUYER_PAY"

    # The same order again is fine; another amount is refused by the cashier.
    assert browser.get(url, timeout=10).status_code == 200
    changed = alipay.page_pay_url(out_trade_no, "专业版 · 1 个月", 100, in_minutes(30), return_url)
    refused = browser.get(changed, timeout=10)
    assert refused.status_code == 400 and "ACQ.CONTEXT_INCONSISTENT" in refused.text

    alipay.close(out_trade_no)
    trade = alipay.query(out_trade_no)
    assert trade is not None and trade.trade_status == "TRADE_CLOSED"
    with pytest.raises(ProviderError, match="交易状态不合法"):
        alipay.close(out_trade_no)
    alipay.close(new_out_trade_no())  # unknown to Alipay: nothing to close


def test_cashier_pay_notifies_and_returns(ctx: str, notify_sink: NotifySink) -> None:
    notify_sink.answers = [(200, "fail"), (200, "success\n")]  # only the exact text counts
    notify_sink.default = (200, "success")
    return_url = ctx + "/payments/return?order=7"
    out_trade_no, url = page_pay(notify_sink.url, return_url, amount="0.01")
    browser = requests.Session()
    page = browser.get(url, timeout=10)
    paid = submit(browser, url, page.text, "/pay")
    assert paid.status_code == 302
    location = paid.headers["Location"]
    assert location.startswith(return_url + "&")
    returned = dict(parse_qsl(urlsplit(location).query))
    assert returned["order"] == "7"
    del returned["order"]
    assert returned["method"] == "alipay.trade.page.pay.return"
    assert (returned["out_trade_no"], returned["total_amount"]) == (out_trade_no, "0.01")
    signature = returned.pop("sign")
    assert alipay.client().verify(returned, signature)

    trade = alipay.query(out_trade_no)
    assert trade is not None and trade.is_paid and trade.raw["send_pay_date"]
    with pytest.raises(ProviderError, match="交易状态不合法"):
        alipay.close(out_trade_no)

    attempts = wait_for_acknowledgement(out_trade_no)
    assert len(notify_sink.received) == 3
    assert [(a.response_body, a.succeeded) for a in attempts] == [
        ("fail", False),
        ("success\n", False),
        ("success", True),
    ]
    received = notify_sink.received[-1]
    assert received.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    form = dict(parse_qsl(received.body, keep_blank_values=True))
    assert form["notify_type"] == "trade_status_sync" and form["sign_type"] == "RSA2"
    notified = alipay.verify_notify(form)
    assert notified.out_trade_no == out_trade_no and notified.is_paid
    assert (notified.total_amount, notified.app_id) == ("0.01", current_keys().alipay_appid)
    assert alipay.fen(form["receipt_amount"]) == 1 and form["trade_no"] == trade.trade_no


def test_precreate_qr_code_is_a_cashier_link(ctx: str, notify_sink: NotifySink) -> None:
    notify_sink.default = (200, "success")
    out_trade_no = new_out_trade_no()
    result = alipay.client().api_alipay_trade_precreate(
        subject="基础版",
        out_trade_no=out_trade_no,
        total_amount="19.90",
        notify_url=notify_sink.url,
    )
    assert result["code"] == "10000"
    assert result["qr_code"].startswith(ctx + "/sandbox/alipay/cashier/")
    assert alipay.query(out_trade_no) is None  # not scanned yet
    page = requests.get(result["qr_code"], timeout=10)
    assert page.status_code == 200 and "¥19.90" in page.text
    trade = alipay.query(out_trade_no)
    assert trade is not None and trade.trade_status == "WAIT_BUYER_PAY"
    delivery = control.pay_trade(out_trade_no)
    assert delivery is not None and delivery.wait(10)[-1].succeeded
    form = dict(parse_qsl(notify_sink.received[-1].body))
    assert alipay.verify_notify(form).total_amount == "19.90"


def test_expired_alipay_trade_is_closed(ctx: str) -> None:
    out_trade_no = new_out_trade_no()
    url = alipay.page_pay_url(out_trade_no, "基础版", 1990, in_minutes(30), ctx + "/")
    control.open_alipay_page(url)
    control.expire_trade(out_trade_no)
    trade = alipay.query(out_trade_no)
    assert trade is not None and trade.trade_status == "TRADE_CLOSED"
    page = requests.get(url, timeout=10)
    assert 'data-result="expired"' in page.text and 'id="sandbox-pay"' not in page.text
    with pytest.raises(control.SandboxError):
        control.pay_trade(out_trade_no)


def test_alipay_requests_not_signed_by_the_app_are_refused(
    ctx: str, app: Flask, stranger_keys: SandboxKeys
) -> None:
    keys = current_keys()
    gateway = ctx + "/sandbox/alipay/gateway.do"

    def client(appid: str, private_key: str) -> AliPay:
        forged = AliPay(
            appid=appid,
            app_private_key_string=private_key,
            alipay_public_key_string=keys.alipay_public_key,
        )
        forged._gateway = gateway
        return forged

    for forged, sub_code in (
        (client(keys.alipay_appid, stranger_keys.alipay_app_private_key), "invalid-signature"),
        (client("2021999999999999", keys.alipay_app_private_key), "invalid-app-id"),
    ):
        signed = forged.sign_data(forged.build_body("alipay.trade.query", {"out_trade_no": "x1"}))
        answer = requests.get(f"{gateway}?{signed}", timeout=10).json()
        assert answer["alipay_trade_query_response"]["sub_code"] == f"isv.{sub_code}"
        assert "sign" not in answer
        # The cashier refuses such a page.pay too.
        page_url = f"{gateway}?" + forged.api_alipay_trade_page_pay(
            subject="x", out_trade_no=new_out_trade_no(), total_amount="1.00"
        )
        page = requests.get(page_url, timeout=10)
        assert page.status_code == 400 and f"isv.{sub_code}" in page.text

    # A tampered parameter breaks the signature as well.
    signed = alipay.client().sign_data(
        alipay.client().build_body("alipay.trade.query", {"out_trade_no": "x1"})
    )
    tampered = signed.replace("x1", "x2")
    answer = requests.get(f"{gateway}?{tampered}", timeout=10).json()
    assert answer["alipay_trade_query_response"]["sub_code"] == "isv.invalid-signature"

    # Through the merchant side: wrong keys either way end in a ProviderError.
    app.config["ALIPAY_APP_PRIVATE_KEY"] = stranger_keys.alipay_app_private_key
    alipay.reset_client()
    with pytest.raises(ProviderError):
        alipay.query(new_out_trade_no())
    app.config["ALIPAY_APP_PRIVATE_KEY"] = None
    app.config["ALIPAY_PUBLIC_KEY"] = stranger_keys.alipay_public_key
    alipay.reset_client()
    with pytest.raises(ProviderError):  # the SDK refuses the sandbox's signed answer
        alipay.query(new_out_trade_no())


def test_alipay_answers_survive_the_sdks_brace_matching(ctx: str) -> None:
    """The SDK cuts the signed object out of the raw text by counting braces."""
    keys = current_keys()
    content = {"code": "10000", "msg": "Success", "subject": "套餐 {专业} }{", "n": 1}
    response = sandbox_alipay.signed_answer(keys, "alipay.trade.query", content)
    text = response.get_data(as_text=True)
    result = alipay.client()._verify_and_return_sync_response(text, "alipay_trade_query_response")
    assert result == content


def test_alipay_evil_twins(ctx: str, stranger_keys: SandboxKeys) -> None:
    out_trade_no = new_out_trade_no()
    url = alipay.page_pay_url(out_trade_no, "基础版", 1990, in_minutes(30), ctx + "/")
    control.open_alipay_page(url)
    control.pay_trade(out_trade_no, notify=False)

    genuine = control.alipay_notify(out_trade_no)
    assert alipay.verify_notify(genuine.form).total_amount == "19.90"
    for twin, reason in (
        (control.alipay_notify(out_trade_no, signing_key=stranger_keys.alipay_private_key), "bad"),
        (control.alipay_notify(out_trade_no, tamper={"total_amount": "0.01"}), "bad"),
        (control.alipay_notify(out_trade_no, drop=("sign",)), "missing sign"),
        (control.alipay_notify(out_trade_no, tamper={"sign_type": "RSA"}), "unverifiable"),
    ):
        with pytest.raises(NotifyRejected, match=reason):
            alipay.verify_notify(twin.form)

    for fields, attribute, value in (
        ({"total_amount": "0.01"}, "total_amount", "0.01"),
        ({"app_id": "2021999999999999"}, "app_id", "2021999999999999"),
        ({"trade_status": "TRADE_CLOSED"}, "trade_status", "TRADE_CLOSED"),
    ):
        twin = control.alipay_notify(out_trade_no, fields=fields)
        assert getattr(alipay.verify_notify(twin.form), attribute) == value
    unknown = new_out_trade_no()
    made_up = alipay.verify_notify(control.alipay_notify(unknown).form)
    assert made_up.out_trade_no == unknown and made_up.is_paid


# --- registration ------------------------------------------------------------------------------


def test_the_sandbox_exists_only_in_sandbox_mode() -> None:
    live = create_app("testing", PAYMENTS_MODE="live")
    assert not any(rule.rule.startswith("/sandbox") for rule in live.url_map.iter_rules())
    assert live.test_client().get("/sandbox/alipay/gateway.do").status_code == 404


def test_rotation_helper_makes_valid_certificates() -> None:
    private_key, certificate, serial = new_platform_certificate()
    loaded = x509.load_pem_x509_certificate(certificate.encode())
    assert format(loaded.serial_number, "X") == serial and "PRIVATE KEY" in private_key
