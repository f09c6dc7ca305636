"""What both sandbox gateways share: errors, clocks and money formatting."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import current_app

from webapp.payments.sandbox.keys import SandboxKeys, load_or_create_keys
from webapp.payments.sandbox.store import Store

SHANGHAI = ZoneInfo("Asia/Shanghai")
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


def parse_alipay_time(text: str) -> datetime | None:
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=SHANGHAI)
        except ValueError:
            continue
    return None


def parse_rfc3339(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def yuan_text(fen: int) -> str:
    """1990 → "19.90"."""
    return f"{fen // 100}.{fen % 100:02d}"
