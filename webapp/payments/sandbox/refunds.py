"""How the sandbox's refunds behave, shared by both gateways.

Each channel has a refund mode (kept in the sandbox store, so every process sees it),
set from the sandbox console page or `control.set_refund_mode`:

- `succeed` (default): the refund is done at once (WeChat Pay still sends its
  REFUND.SUCCESS notify);
- `pending`: accepted and left PROCESSING until settled (`control.settle_refund` or
  the console): SUCCESS, or for WeChat Pay CLOSED / ABNORMAL;
- `insufficient_balance`: refused as the providers refuse a merchant without funds
  (WeChat Pay 403 NOT_ENOUGH, Alipay ACQ.SELLER_BALANCE_NOT_ENOUGH); nothing is
  recorded, so the same number may be sent again once the mode changes.
"""

from __future__ import annotations

import enum

from webapp.payments.sandbox.common import SandboxError, alipay_time, now, rfc3339
from webapp.payments.sandbox.crypto import random_digits
from webapp.payments.sandbox.store import RefundRecord, Store

FINAL_STATES = {
    "wechat": ("SUCCESS", "CLOSED", "ABNORMAL"),
    "alipay": ("SUCCESS",),
}


class RefundMode(enum.StrEnum):
    SUCCEED = "succeed"
    PENDING = "pending"
    INSUFFICIENT_BALANCE = "insufficient_balance"


def refund_mode(store: Store, channel: str) -> RefundMode:
    return RefundMode(store.setting(f"refund_mode.{channel}", RefundMode.SUCCEED))


def set_refund_mode(store: Store, channel: str, mode: RefundMode) -> None:
    if channel not in FINAL_STATES:
        raise SandboxError(f"unknown channel {channel}")
    store.set_setting(f"refund_mode.{channel}", RefundMode(mode))


def new_refund_id() -> str:
    return "50" + random_digits(27)


def settle(store: Store, channel: str, out_refund_no: str, status: str) -> RefundRecord:
    """Finish a PROCESSING refund: SUCCESS (the trade shows it: WeChat Pay REFUND, Alipay
    closes a trade refunded in full), or a failure that releases its amount."""
    if status not in FINAL_STATES.get(channel, ()):
        raise SandboxError(f"{channel} refunds do not end {status}")
    moment = now()
    if not store.settle_refund(
        channel, out_refund_no, status, rfc3339(moment) if status == "SUCCESS" else None
    ):
        raise SandboxError(f"{channel} refund {out_refund_no} is not processing")
    record = store.refund(channel, out_refund_no)
    assert record is not None
    if status == "SUCCESS":
        if channel == "wechat":
            store.mark_wechat_trade_refunded(record.out_trade_no)
        elif store.refunded(channel, record.out_trade_no, ("SUCCESS",)) >= record.total:
            store.close_refunded_alipay_trade(record.out_trade_no, alipay_time(moment))
    return record
