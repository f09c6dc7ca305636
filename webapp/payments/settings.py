"""Where each payment channel's keys and gateway come from.

Live mode takes everything from the configuration (design §6). Sandbox mode
fills whatever is unset from the sandbox's generated keys and points the
gateways at the sandbox blueprint of this same app. `WECHATPAY_GATEWAY` and
`ALIPAY_GATEWAY` override the provider URL in every mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from webapp.config import ConfigurationError
from webapp.payments.sandbox.keys import SandboxKeys, load_or_create_keys

SANDBOX_PREFIX = "/sandbox"
WECHAT_SANDBOX_PATH = SANDBOX_PREFIX + "/wechatpay"
ALIPAY_SANDBOX_PATH = SANDBOX_PREFIX + "/alipay/gateway.do"
ALIPAY_LIVE_GATEWAY = "https://openapi.alipay.com/gateway.do"
SANDBOX_SELLER_ID = "2088721000000001"  # the sandbox merchant's PID


@dataclass(frozen=True)
class WechatSettings:
    mchid: str
    appid: str
    apiv3_key: str
    private_key: str
    cert_serial_no: str
    public_key: str | None  # public-key mode when set (with public_key_id) ...
    public_key_id: str | None
    cert_dir: str | None  # ... else platform-certificate mode
    gateway: str | None  # None: the SDK's own (live) URL
    notify_url: str
    refund_notify_url: str


@dataclass(frozen=True)
class AlipaySettings:
    appid: str
    app_private_key: str
    alipay_public_key: str
    sign_type: str
    gateway: str
    notify_url: str
    seller_id: str | None  # checked on every notify and query when known


def is_sandbox() -> bool:
    return bool(current_app.config["PAYMENTS_MODE"] == "sandbox")


def sandbox_keys() -> SandboxKeys:
    return load_or_create_keys(current_app.instance_path)


def read_key(value: str) -> str:
    """A key given as PEM text (or bare base64), or as the path of a PEM file."""
    text = value.strip()
    if "-----BEGIN" not in text and len(text) < 1024 and Path(text).is_file():
        return Path(text).read_text()
    return text


def _setting(name: str, sandbox_value: str | None) -> str:
    value = current_app.config.get(name)
    if value:
        return read_key(str(value)) if "KEY" in name else str(value)
    if sandbox_value is not None and is_sandbox():
        return sandbox_value
    raise ConfigurationError(
        f"{name} is not set (PAYMENTS_MODE={current_app.config['PAYMENTS_MODE']})."
    )


def wechat_settings() -> WechatSettings:
    config = current_app.config
    keys = sandbox_keys() if is_sandbox() else None
    base_url = config["BASE_URL"]
    certificate_mode = bool(config.get("WECHATPAY_CERT_DIR")) and not config.get(
        "WECHATPAY_PUBLIC_KEY"
    )
    public_key = public_key_id = None
    if not certificate_mode:
        public_key = _setting("WECHATPAY_PUBLIC_KEY", keys.platform_public_key if keys else None)
        public_key_id = _setting(
            "WECHATPAY_PUBLIC_KEY_ID", keys.platform_public_key_id if keys else None
        )
    return WechatSettings(
        mchid=_setting("WECHATPAY_MCHID", keys.wechat_mchid if keys else None),
        appid=_setting("WECHATPAY_APPID", keys.wechat_appid if keys else None),
        apiv3_key=_setting("WECHATPAY_APIV3_KEY", keys.wechat_apiv3_key if keys else None),
        private_key=_setting("WECHATPAY_PRIVATE_KEY", keys.merchant_private_key if keys else None),
        cert_serial_no=_setting(
            "WECHATPAY_CERT_SERIAL_NO", keys.merchant_serial_no if keys else None
        ),
        public_key=public_key,
        public_key_id=public_key_id,
        cert_dir=config.get("WECHATPAY_CERT_DIR") if certificate_mode else None,
        gateway=config.get("WECHATPAY_GATEWAY")
        or (base_url + WECHAT_SANDBOX_PATH if keys else None),
        notify_url=base_url + "/api/v1/payments/wechat/notify",
        refund_notify_url=base_url + "/api/v1/payments/wechat/refund-notify",
    )


def alipay_settings() -> AlipaySettings:
    config = current_app.config
    keys = sandbox_keys() if is_sandbox() else None
    base_url = config["BASE_URL"]
    return AlipaySettings(
        appid=_setting("ALIPAY_APPID", keys.alipay_appid if keys else None),
        app_private_key=_setting(
            "ALIPAY_APP_PRIVATE_KEY", keys.alipay_app_private_key if keys else None
        ),
        alipay_public_key=_setting("ALIPAY_PUBLIC_KEY", keys.alipay_public_key if keys else None),
        sign_type=config["ALIPAY_SIGN_TYPE"],
        gateway=config.get("ALIPAY_GATEWAY")
        or (base_url + ALIPAY_SANDBOX_PATH if keys else ALIPAY_LIVE_GATEWAY),
        notify_url=base_url + "/api/v1/payments/alipay/notify",
        seller_id=config.get("ALIPAY_SELLER_ID") or (SANDBOX_SELLER_ID if keys else None),
    )
