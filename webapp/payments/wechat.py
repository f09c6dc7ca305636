"""WeChat Pay (APIv3, Native) through the `wechatpayv3` SDK, exactly as a live merchant uses it.

Only the gateway URL differs between live and sandbox: the SDK hard-codes
https://api.mch.weixin.qq.com, so `client()` sets `WECHATPAY_GATEWAY` on it in
this one place.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app
from wechatpayv3 import WeChatPay, WeChatPayType

from webapp.billing.periods import SHANGHAI
from webapp.payments.settings import settings_source, wechat_settings

EXTENSION_KEY = "wechatpay_client"


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


def verify_notify(headers: dict[str, str], body: str) -> WechatTrade:
    """Check a payment notify's signature and freshness and decrypt it, or raise NotifyRejected."""
    try:
        timestamp = int(headers.get("Wechatpay-Timestamp", ""))
    except ValueError:
        raise NotifyRejected("missing or malformed Wechatpay-Timestamp") from None
    if abs(time.time() - timestamp) > current_app.config["PAYMENT_NOTIFY_MAX_AGE_SECONDS"]:
        raise NotifyRejected("stale timestamp")
    settings = wechat_settings()
    if settings.public_key_id and headers.get("Wechatpay-Serial") != settings.public_key_id:
        # In public-key mode an unknown serial is forged: don't let the SDK go and
        # download certificates because of it.
        raise NotifyRejected("unverifiable notify: unknown Wechatpay-Serial")
    try:
        result = client().callback(headers, body)
    except Exception as exc:  # the SDK raises bare Exception for unknown algorithms
        raise NotifyRejected(f"unverifiable notify: {exc}") from None
    if not result:
        raise NotifyRejected("bad signature or undecryptable resource")
    if result.get("event_type") != "TRANSACTION.SUCCESS":
        raise NotifyRejected(f"unexpected event type {result.get('event_type')!r}")
    resource = result.get("resource")
    if not isinstance(resource, dict):
        raise NotifyRejected("no resource in notify")
    return _trade(resource)
