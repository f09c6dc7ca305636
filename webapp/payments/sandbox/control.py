"""Python-only controls of the payment sandbox, for tests and operators (never over HTTP).

Call them inside an app context (they use `current_app.instance_path` and config):

    delivery = pay_trade(out_trade_no)        # a person paid (either channel)
    delivery.wait(10)                         # the notify attempts, once acknowledged
    send_notify(out_trade_no)                 # one more (duplicate) notify, now
    wechat_notify(out_trade_no, transaction={"amount": {"total": 1}}).post()
    alipay_notify(out_trade_no, fields={"total_amount": "0.01"}).post()
    rotate_platform_certificate()             # WeChat Pay certificate mode

The evil-twin builders return the message without sending it: `.post()` sends it
to the trade's notify_url (or another URL), or hand `.headers`/`.body` to a test
client.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from webapp.payments.sandbox import alipay, wechatpay
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
    WechatTradeRecord,
)

# The evil-twin builders, under the names tests use.
wechat_notify = wechatpay.build_notify
alipay_notify = alipay.build_notify
open_alipay_page = alipay.open_trade

__all__ = [
    "SandboxError",
    "alipay_notify",
    "expire_trade",
    "notify_attempts",
    "open_alipay_page",
    "pay_trade",
    "rotate_platform_certificate",
    "send_notify",
    "stop_deliveries",
    "trade",
    "wechat_notify",
]


def trade(out_trade_no: str) -> WechatTradeRecord | AlipayTradeRecord | None:
    store = current_store()
    return store.wechat_trade(out_trade_no) or store.alipay_trade(out_trade_no)


def pay_trade(out_trade_no: str, *, notify: bool = True) -> Delivery | None:
    """A person pays the trade (WeChat Pay or Alipay): it becomes SUCCESS/TRADE_SUCCESS and
    the notify is delivered in the background with retries; returns that delivery (None
    without a notify). Raises SandboxError if the trade is unknown, paid, closed or expired."""
    store = current_store()
    if store.wechat_trade(out_trade_no) is not None:
        return wechatpay.pay(out_trade_no, notify=notify)
    if store.alipay_trade(out_trade_no) is not None:
        return alipay.pay(out_trade_no, notify=notify)
    raise SandboxError(f"unknown trade {out_trade_no}")


def send_notify(out_trade_no: str, url: str | None = None) -> NotifyAttempt:
    """Deliver a paid trade's notify once more, synchronously (duplicates), and record it."""
    if current_store().wechat_trade(out_trade_no) is not None:
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
