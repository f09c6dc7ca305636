"""What both sandbox gateways share: errors, clocks and money formatting."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from flask import current_app

from webapp.billing.periods import SHANGHAI
from webapp.payments.sandbox.keys import SandboxKeys, load_or_create_keys
from webapp.payments.sandbox.store import Store

SANDBOX_PREFIX = "/sandbox"
WECHAT_SANDBOX_PATH = SANDBOX_PREFIX + "/wechatpay"
ALIPAY_SANDBOX_PATH = SANDBOX_PREFIX + "/alipay/gateway.do"
SANDBOX_SELLER_ID = "2088721000000001"  # the sandbox merchant's PID


class SandboxError(Exception):
    """A sandbox operation that the real provider would refuse too (paid, closed, expired...)."""


def current_keys() -> SandboxKeys:
    return load_or_create_keys(current_app.instance_path)


def current_store() -> Store:
    return Store.current()


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """WeChat Pay's time format: 2018-06-08T10:34:56+08:00."""
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


def alipay_time(moment: datetime) -> str:
    """Alipay's time format: 2018-06-08 10:34:56 (Asia/Shanghai)."""
    return f"{moment.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}"


def fen_of(yuan: str) -> int:
    """ "199.00" → 19900, for amounts the gateway has already validated."""
    return int(Decimal(yuan) * 100)
