"""Alipay (RSA2) through `python-alipay-sdk`, exactly as a live merchant uses it.

Only the gateway URL differs between live and sandbox: the SDK hard-codes it,
so `client()` sets `ALIPAY_GATEWAY` on it in this one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from alipay import AliPay, AliPayConfig
from flask import current_app

from webapp.billing.periods import SHANGHAI
from webapp.payments.settings import alipay_settings
from webapp.payments.wechat import NotifyRejected, ProviderError

EXTENSION_KEY = "alipay_client"
PAID_STATES = ("TRADE_SUCCESS", "TRADE_FINISHED")


@dataclass(frozen=True)
class AlipayTrade:
    out_trade_no: str
    trade_status: str  # WAIT_BUYER_PAY, TRADE_CLOSED, TRADE_SUCCESS, TRADE_FINISHED
    app_id: str
    total_amount: str  # yuan, as a decimal string: compared exactly with amount_fen
    trade_no: str | None
    seller_id: str | None
    raw: dict[str, Any]
    notified: bool = False  # from a verified notify (which always names app and seller)

    @property
    def is_paid(self) -> bool:
        return self.trade_status in PAID_STATES

    @property
    def provider_trade_no(self) -> str | None:
        return self.trade_no


def yuan(amount_fen: int) -> str:
    """19900 → "199.00": integer arithmetic, no floats."""
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def fen(total_amount: str) -> int | None:
    """ "199.00" → 19900; None for anything that is not an exact amount in yuan."""
    try:
        value = Decimal(total_amount)
    except (InvalidOperation, TypeError):
        return None
    cents = value * 100
    if not value.is_finite() or cents != cents.to_integral_value() or value < 0:
        return None
    return int(cents)


def client() -> AliPay:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cached: AliPay | None = app.extensions.get(EXTENSION_KEY)
    if cached is not None:
        return cached
    settings = alipay_settings()
    pay = AliPay(
        appid=settings.appid,
        app_notify_url=settings.notify_url,
        app_private_key_string=settings.app_private_key,
        alipay_public_key_string=settings.alipay_public_key,
        sign_type=settings.sign_type,
        config=AliPayConfig(timeout=app.config["PAYMENT_HTTP_TIMEOUT_SECONDS"]),
    )
    # The one override: the SDK hard-codes the live (or its own sandbox) gateway URL.
    pay._gateway = settings.gateway
    app.extensions[EXTENSION_KEY] = pay
    return pay


def reset_client() -> None:
    current_app.extensions.pop(EXTENSION_KEY, None)


def page_pay_url(
    out_trade_no: str, subject: str, amount_fen: int, expires_at: datetime, return_url: str
) -> str:
    """The cashier URL to send the browser to (a signed GET on the gateway)."""
    signed = client().api_alipay_trade_page_pay(
        subject=subject[:256],
        out_trade_no=out_trade_no,
        total_amount=yuan(amount_fen),
        return_url=return_url,
        time_expire=f"{expires_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}",
    )
    return f"{alipay_settings().page_gateway}?{signed}"


def _server_call(method: str, **kwargs: Any) -> dict[str, Any]:
    try:
        result = getattr(client(), method)(**kwargs)
    except Exception as exc:  # the SDK raises its own and urllib errors
        raise ProviderError(f"Alipay request failed: {exc}") from exc
    return dict(result)


def query(out_trade_no: str) -> AlipayTrade | None:
    result = _server_call("api_alipay_trade_query", out_trade_no=out_trade_no)
    if result.get("code") != "10000":
        if result.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            return None
        raise ProviderError(f"Alipay query failed: {result.get('sub_msg') or result.get('msg')}")
    return _trade(result)


def close(out_trade_no: str) -> None:
    result = _server_call("api_alipay_trade_close", out_trade_no=out_trade_no)
    if result.get("code") != "10000" and result.get("sub_code") != "ACQ.TRADE_NOT_EXIST":
        raise ProviderError(f"Alipay close failed: {result.get('sub_msg') or result.get('msg')}")


def _trade(data: dict[str, Any], *, notified: bool = False) -> AlipayTrade:
    return AlipayTrade(
        out_trade_no=str(data.get("out_trade_no", "")),
        trade_status=str(data.get("trade_status", "")),
        app_id=str(data.get("app_id") or data.get("auth_app_id") or ""),
        total_amount=str(data.get("total_amount", "")),
        trade_no=data.get("trade_no"),
        seller_id=data.get("seller_id"),
        raw=data,
        notified=notified,
    )


def verify_notify(form: dict[str, str]) -> AlipayTrade:
    """Check an async notify's RSA2 signature, or raise NotifyRejected."""
    data = dict(form)
    signature = data.pop("sign", None)
    if not signature:
        raise NotifyRejected("missing sign")
    try:
        verified = client().verify(data, signature)
    except Exception as exc:  # malformed base64, unknown sign_type
        raise NotifyRejected(f"unverifiable notify: {exc}") from None
    if not verified:
        raise NotifyRejected("bad signature")
    return _trade(form, notified=True)
