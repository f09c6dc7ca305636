"""Python-only controls of the payment sandbox, for tests and operators (never over HTTP).

Call them inside an app context (they use `current_app.instance_path` and config):

    delivery = pay_trade(out_trade_no)        # a person paid (either channel)
    delivery.wait(10)                         # the notify attempts, once acknowledged
    send_notify(out_trade_no)                 # one more (duplicate) notify, now
    wechat_notify(out_trade_no, transaction={"amount": {"total": 1}}).post()
    alipay_notify(out_trade_no, fields={"total_amount": "0.01"}).post()
    rotate_platform_certificate()             # WeChat Pay certificate mode
    certificate_downloads()                   # how often /v3/certificates was called
    set_refund_mode("wechat", "pending")      # or "succeed", "insufficient_balance"
    settle_refund("wechat", out_refund_no, "SUCCESS")  # or CLOSED, ABNORMAL; with notify
    wechat_refund_notify(out_refund_no, resource={"amount": {"refund": 1}}).post()

The evil-twin builders return the message without sending it: `.post()` sends it
to the trade's notify_url (or another URL), or hand `.headers`/`.body` to a test
client.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from webapp.payments.sandbox import alipay, refunds, wechatpay, wechatpay_refunds
from webapp.payments.sandbox.common import (
    SandboxError,
    alipay_time,
    current_keys,
    current_store,
    now,
    rfc3339,
)
from webapp.payments.sandbox.notify import Delivery, stop_deliveries
from webapp.payments.sandbox.store import (
    AlipayTradeRecord,
    CertificateRecord,
    NotifyAttempt,
    RefundRecord,
    WechatTradeRecord,
)

# The evil-twin builders, under the names tests use.
wechat_notify = wechatpay.build_notify
alipay_notify = alipay.build_notify
open_alipay_page = alipay.open_trade
wechat_refund_notify = wechatpay_refunds.build_refund_notify

__all__ = [
    "SandboxError",
    "alipay_notify",
    "certificate_downloads",
    "expire_trade",
    "notify_attempts",
    "open_alipay_page",
    "pay_trade",
    "refund",
    "rotate_platform_certificate",
    "send_notify",
    "set_refund_mode",
    "settle_refund",
    "stop_deliveries",
    "trade",
    "wechat_notify",
    "wechat_refund_notify",
]


def trade(
    out_trade_no: str, channel: str | None = None
) -> WechatTradeRecord | AlipayTradeRecord | None:
    """The trade at `channel`, or at whichever knows it (WeChat Pay first): an order has
    the same out_trade_no at both."""
    store = current_store()
    if channel == "alipay":
        return store.alipay_trade(out_trade_no)
    wechat_trade = store.wechat_trade(out_trade_no)
    return wechat_trade if wechat_trade is not None or channel else store.alipay_trade(out_trade_no)


def pay_trade(
    out_trade_no: str, *, notify: bool = True, channel: str | None = None
) -> Delivery | None:
    """A person pays the trade (at `channel`, or whichever knows it): it becomes
    SUCCESS/TRADE_SUCCESS and the notify is delivered in the background with retries;
    returns that delivery (None without a notify). Raises SandboxError if the trade is
    unknown, paid, closed or expired."""
    found = trade(out_trade_no, channel)
    if isinstance(found, WechatTradeRecord):
        return wechatpay.pay(out_trade_no, notify=notify)
    if isinstance(found, AlipayTradeRecord):
        return alipay.pay(out_trade_no, notify=notify)
    raise SandboxError(f"unknown trade {out_trade_no}")


def send_notify(
    out_trade_no: str, url: str | None = None, *, channel: str | None = None
) -> NotifyAttempt:
    """Deliver a paid trade's notify once more, synchronously (duplicates), and record it."""
    if isinstance(trade(out_trade_no, channel), WechatTradeRecord):
        return wechatpay.send_notify(out_trade_no, url)
    return alipay.send_notify(out_trade_no, url)


def notify_attempts(out_trade_no: str | None = None) -> list[NotifyAttempt]:
    return current_store().attempts(out_trade_no)


def expire_trade(out_trade_no: str, at: datetime | None = None) -> None:
    """Move the trade's time_expire to `at` (default: a minute ago)."""
    moment = at or now() - timedelta(minutes=1)
    store = current_store()
    if store.set_wechat_time_expire(out_trade_no, rfc3339(moment)):
        return
    if not store.set_alipay_time_expire(out_trade_no, alipay_time(moment)):
        raise SandboxError(f"unknown trade {out_trade_no}")


def rotate_platform_certificate(*, new_key: bool = True) -> CertificateRecord:
    """A new WeChat Pay platform certificate (for a new key pair, or the same key):
    /v3/certificates serves it besides the old ones and certificate-mode answers and
    notifies are signed with it from now on."""
    return wechatpay.rotate_platform_certificate(current_keys(), current_store(), new_key=new_key)


def certificate_downloads() -> int:
    """How many times /v3/certificates has been called (WeChat Pay certificate mode)."""
    return wechatpay.certificate_downloads(current_store())


def set_refund_mode(channel: str, mode: str) -> None:
    """How the channel answers refund requests from now on (see `sandbox.refunds`)."""
    refunds.set_refund_mode(current_store(), channel, refunds.RefundMode(mode))


def refund(channel: str, out_refund_no: str) -> RefundRecord | None:
    return current_store().refund(channel, out_refund_no)


def settle_refund(
    channel: str, out_refund_no: str, status: str = "SUCCESS", *, notify: bool = True
) -> Delivery | None:
    """End a processing refund (WeChat Pay: SUCCESS, CLOSED or ABNORMAL, its notify sent
    in the background unless `notify` is False; Alipay: SUCCESS, no notify)."""
    if channel == "wechat":
        return wechatpay_refunds.settle_and_notify(
            current_keys(), current_store(), out_refund_no, status, notify=notify
        )[1]
    refunds.settle(current_store(), channel, out_refund_no, status)
    return None
