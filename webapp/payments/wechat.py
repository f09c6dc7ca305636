"""WeChat Pay (APIv3, Native) through the `wechatpayv3` SDK, exactly as a live merchant uses it.

Only the gateway URL differs between live and sandbox: the SDK hard-codes
https://api.mch.weixin.qq.com, so `client()` sets `WECHATPAY_GATEWAY` on it in
this one place.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from flask import current_app
from wechatpayv3 import WeChatPay, WeChatPayType

from webapp.billing.periods import SHANGHAI
from webapp.payments.settings import settings_source, wechat_settings

EXTENSION_KEY = "wechatpay_client"
# Certificate mode: when this process last downloaded the platform certificates for a
# notify naming a serial we do not hold (time.monotonic()); dropped with the client.
REFRESHED_KEY = "wechatpay_certificates_refreshed"
HEX_SERIAL = re.compile(r"[0-9A-Fa-f]{1,64}")
_refresh_lock = threading.Lock()


class ProviderError(Exception):
    """The provider refused or could not be reached; the message is safe to show."""


class NotifyRejected(Exception):
    """A notify that failed verification; `reason` is logged and kept for audit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WechatTrade:
    """What WeChat Pay says about one of our orders (from a query or a verified notify)."""

    out_trade_no: str
    trade_state: str  # SUCCESS, NOTPAY, CLOSED, REFUND, USERPAYING, PAYERROR, REVOKED
    mchid: str
    appid: str
    total_fen: int | None
    currency: str | None
    transaction_id: str | None
    raw: dict[str, Any]

    @property
    def is_paid(self) -> bool:
        return self.trade_state == "SUCCESS"

    @property
    def provider_trade_no(self) -> str | None:
        return self.transaction_id

    @property
    def paid_at(self) -> datetime | None:
        """When WeChat Pay says it was paid (`success_time`)."""
        return parse_rfc3339(str(self.raw.get("success_time") or ""))


class RefundRefused(Exception):
    """The provider refused a refund request (not a passing fault); `reason` is its word."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WechatRefund:
    """What WeChat Pay says about one refund (its answer, a query or a verified notify)."""

    out_refund_no: str
    refund_id: str | None
    status: str  # SUCCESS, PROCESSING, CLOSED, ABNORMAL
    out_trade_no: str
    transaction_id: str | None
    refund_fen: int | None
    total_fen: int | None
    succeeded_at: datetime | None
    mchid: str | None  # notifies name the merchant; answers and queries do not
    raw: dict[str, Any]


def parse_rfc3339(text: str) -> datetime | None:
    """WeChat Pay's times (2018-06-08T10:34:56+08:00); None unless a zoned time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def client() -> WeChatPay:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cached: WeChatPay | None = app.extensions.get(EXTENSION_KEY)
    if cached is not None:
        return cached
    settings = wechat_settings()
    source = settings_source()
    if settings.cert_dir and source is not None:
        # The SDK's first certificate download ignores the gateway override.
        source.install_platform_certificate(Path(settings.cert_dir))
    timeout = app.config["PAYMENT_HTTP_TIMEOUT_SECONDS"]
    pay = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=settings.mchid,
        private_key=settings.private_key,
        cert_serial_no=settings.cert_serial_no,
        appid=settings.appid,
        apiv3_key=settings.apiv3_key,
        notify_url=settings.notify_url,
        cert_dir=settings.cert_dir,
        public_key=settings.public_key,
        public_key_id=settings.public_key_id,
        timeout=(timeout, timeout),
    )
    if settings.gateway:
        # The one override: the SDK hard-codes the live API base URL.
        pay._core._gate_way = settings.gateway.rstrip("/")
    app.extensions[EXTENSION_KEY] = pay
    return pay


def reset_client() -> None:
    """Forget the cached client (after a configuration change)."""
    current_app.extensions.pop(EXTENSION_KEY, None)
    current_app.extensions.pop(REFRESHED_KEY, None)


def _call(operation: Any, *args: Any, **kwargs: Any) -> tuple[int, Any]:
    try:
        result: tuple[int, Any] = operation(*args, **kwargs)
        return result
    except Exception as exc:  # the SDK raises bare Exception (network, bad signature)
        raise ProviderError(f"WeChat Pay request failed: {exc}") from exc


def _error_message(body: Any) -> str:
    try:
        data = json.loads(body)
        return f"{data.get('code')}: {data.get('message')}"
    except (TypeError, ValueError):
        return str(body)[:200]


def create_native_order(
    out_trade_no: str, description: str, amount_fen: int, expires_at: datetime
) -> str:
    """Create the Native order; returns the `code_url` to show as a QR code."""
    code, body = _call(
        client().pay,
        description=description[:127],
        out_trade_no=out_trade_no,
        amount={"total": amount_fen, "currency": "CNY"},
        time_expire=expires_at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
    )
    if code != 200:
        raise ProviderError(f"WeChat Pay refused the order: {_error_message(body)}")
    code_url = json.loads(body).get("code_url")
    if not code_url:
        raise ProviderError("WeChat Pay answered without a code_url.")
    return str(code_url)


def _trade(data: dict[str, Any]) -> WechatTrade:
    amount = data.get("amount") or {}
    total = amount.get("total")
    return WechatTrade(
        out_trade_no=str(data.get("out_trade_no", "")),
        trade_state=str(data.get("trade_state", "")),
        mchid=str(data.get("mchid", "")),
        appid=str(data.get("appid", "")),
        total_fen=total if isinstance(total, int) else None,
        currency=amount.get("currency"),
        transaction_id=data.get("transaction_id"),
        raw=data,
    )


def query(out_trade_no: str) -> WechatTrade | None:
    """The provider's view of an order; None if it does not know it."""
    code, body = _call(client().query, out_trade_no=out_trade_no)
    if code == 404:
        return None
    if code != 200:
        raise ProviderError(f"WeChat Pay query failed: {_error_message(body)}")
    return _trade(json.loads(body))


def close(out_trade_no: str) -> None:
    code, body = _call(client().close, out_trade_no=out_trade_no)
    if code not in (200, 204):
        raise ProviderError(f"WeChat Pay close failed: {_error_message(body)}")


def _verified_event(
    headers: dict[str, str], body: str, event_types: tuple[str, ...]
) -> tuple[str, dict[str, Any]]:
    """A notify's signature and freshness checked, its resource decrypted: its event type
    and resource; else NotifyRejected."""
    try:
        timestamp = int(headers.get("Wechatpay-Timestamp", ""))
    except ValueError:
        raise NotifyRejected("missing or malformed Wechatpay-Timestamp") from None
    # In integers: a timestamp of hundreds of digits is too large for a float.
    if abs(int(time.time()) - timestamp) > current_app.config["PAYMENT_NOTIFY_MAX_AGE_SECONDS"]:
        raise NotifyRejected("stale timestamp")
    settings = wechat_settings()
    serial = headers.get("Wechatpay-Serial", "")
    if settings.public_key_id and serial != settings.public_key_id:
        # In public-key mode an unknown serial is forged: don't let the SDK go and
        # download certificates because of it.
        raise NotifyRejected("unverifiable notify: unknown Wechatpay-Serial")
    if not settings.public_key_id and not _holds_platform_certificate(serial):
        raise NotifyRejected("unverifiable notify: unknown Wechatpay-Serial")
    try:
        result = client().callback(headers, body)
    except Exception as exc:  # the SDK raises bare Exception for unknown algorithms
        raise NotifyRejected(f"unverifiable notify: {exc}") from None
    if not result:
        raise NotifyRejected("bad signature or undecryptable resource")
    if result.get("event_type") not in event_types:
        raise NotifyRejected(f"unexpected event type {result.get('event_type')!r}")
    resource = result.get("resource")
    if not isinstance(resource, dict):
        raise NotifyRejected("no resource in notify")
    return str(result["event_type"]), resource


def _holds_platform_certificate(serial: str) -> bool:
    """Certificate mode: whether we hold the platform certificate `serial` names.

    An unknown serial may be a rotation, so the certificates are downloaded again, but
    at most once per WECHATPAY_CERTIFICATE_REFRESH_SECONDS in this process: anyone can
    send notifies with random serials, and the SDK would download on every one. The
    download fills a copy of the SDK's list, swapped in whole, so a failed one keeps
    the certificates we had and concurrent verifications never see an empty list.
    """
    if not HEX_SERIAL.fullmatch(serial):
        return False
    number = int(serial, 16)
    core = client()._core
    if any(certificate.serial_number == number for certificate in core._certificates):
        return True
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    interval = app.config["WECHATPAY_CERTIFICATE_REFRESH_SECONDS"]
    with _refresh_lock:
        last: float | None = app.extensions.get(REFRESHED_KEY)
        now = time.monotonic()
        if last is not None and now - last < interval:
            return False
        app.extensions[REFRESHED_KEY] = now
        fresh = copy.copy(core)
        fresh._certificates = []
        try:
            fresh._update_certificates()
        except Exception:  # the SDK raises bare Exception; a failed download finds nothing
            return False
        if fresh._certificates:
            core._certificates = fresh._certificates
    return any(certificate.serial_number == number for certificate in core._certificates)


def verify_notify(headers: dict[str, str], body: str) -> WechatTrade:
    """Check a payment notify's signature and freshness and decrypt it, or raise NotifyRejected."""
    _event_type, resource = _verified_event(headers, body, ("TRANSACTION.SUCCESS",))
    return _trade(resource)


REFUND_EVENTS = ("REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED")


def verify_refund_notify(headers: dict[str, str], body: str) -> WechatRefund:
    """Check a refund notify exactly as a payment notify, or raise NotifyRejected. The
    event (REFUND.SUCCESS) and the resource's status (SUCCESS) must say the same."""
    event_type, resource = _verified_event(headers, body, REFUND_EVENTS)
    status = str(resource.get("refund_status", ""))
    if event_type != f"REFUND.{status}":
        raise NotifyRejected(f"event {event_type!r} with refund status {status!r}")
    return _refund(resource, status=status)


# --- refunds ----------------------------------------------------------------------


def _refund(data: dict[str, Any], *, status: str | None = None) -> WechatRefund:
    amount = data.get("amount") or {}
    refund, total = amount.get("refund"), amount.get("total")
    refund_id = data.get("refund_id")
    return WechatRefund(
        out_refund_no=str(data.get("out_refund_no", "")),
        refund_id=str(refund_id) if refund_id else None,
        status=status if status is not None else str(data.get("status", "")),
        out_trade_no=str(data.get("out_trade_no", "")),
        transaction_id=data.get("transaction_id"),
        refund_fen=refund if isinstance(refund, int) else None,
        total_fen=total if isinstance(total, int) else None,
        succeeded_at=parse_rfc3339(str(data.get("success_time") or "")),
        mchid=data.get("mchid"),
        raw=data,
    )


def _refund_answer(code: int, body: Any, doing: str) -> WechatRefund:
    """A refund answer: the refund, RefundRefused (a business refusal), or ProviderError."""
    if code == 200:
        return _refund(json.loads(body))
    if code in (401, 429) or code >= 500:  # our signature, the rate limit, their trouble
        raise ProviderError(f"WeChat Pay {doing} failed: {_error_message(body)}")
    raise RefundRefused(_error_message(body))


def request_refund(
    out_refund_no: str,
    out_trade_no: str,
    transaction_id: str | None,
    refund_fen: int,
    total_fen: int,
    reason: str,
) -> WechatRefund:
    """Ask for a refund of `refund_fen` of a paid transaction (idempotent per out_refund_no)."""
    code, body = _call(
        client().refund,
        out_refund_no=out_refund_no,
        amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"},
        transaction_id=transaction_id,
        out_trade_no=out_trade_no,
        reason=reason[:80],
        notify_url=wechat_settings().refund_notify_url,
    )
    return _refund_answer(code, body, "refund")


def query_refund(out_refund_no: str) -> WechatRefund | None:
    """The provider's view of a refund; None if it never received it."""
    code, body = _call(client().query_refund, out_refund_no=out_refund_no)
    if code == 404:
        return None
    return _refund_answer(code, body, "refund query")


# --- bills ---------------------------------------------------------------------------


def trade_bill(bill_date: date) -> str | None:
    """The day's trade bill (all payments and refunds) as CSV text; None if the day
    had none. The download is checked against the SHA1 the bill request gave."""
    code, body = _call(client().trade_bill, bill_date=bill_date.isoformat(), tar_type="GZIP")
    if code == 400 and "NO_STATEMENT_EXIST" in str(body):
        return None
    if code != 200:
        raise ProviderError(f"WeChat Pay bill request failed: {_error_message(body)}")
    answer = json.loads(body)
    code, content = _call(client().download_bill, url=str(answer.get("download_url", "")))
    if code != 200 or not isinstance(content, bytes):
        raise ProviderError(f"WeChat Pay bill download failed: {_error_message(content)}")
    try:
        raw = gzip.decompress(content)
    except (OSError, EOFError) as exc:
        raise ProviderError(f"WeChat Pay bill download is not gzip: {exc}") from None
    if (
        answer.get("hash_type") != "SHA1"
        or hashlib.sha1(raw).hexdigest() != str(answer.get("hash_value", "")).lower()
    ):
        raise ProviderError("WeChat Pay bill download does not match its SHA1 hash")
    return raw.decode("utf-8-sig")
