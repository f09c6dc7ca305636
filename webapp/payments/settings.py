"""Where each payment channel's keys and gateway come from.

Live mode takes everything from the configuration (design §6). In sandbox mode
the payment sandbox, when the app factory registers it, registers a
`SettingsSource` that fills whatever is unset with its generated keys and
gateways on this same app; this module never imports the sandbox.
`WECHATPAY_GATEWAY` and `ALIPAY_GATEWAY` override the provider URL in every mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from flask import Flask, current_app

from webapp.config import ConfigurationError

ALIPAY_LIVE_GATEWAY = "https://openapi.alipay.com/gateway.do"
SETTINGS_SOURCE = "payment_settings_source"  # its key in app.extensions


class SettingsSource(Protocol):
    """What fills the channel settings the configuration leaves unset."""

    def defaults(self) -> Mapping[str, str]:
        """Values by configuration name (WECHATPAY_MCHID, ALIPAY_GATEWAY, ...)."""
        ...

    def install_platform_certificate(self, cert_dir: Path) -> None:
        """Certificate mode: put the WeChat Pay platform certificate an operator would have
        downloaded into an empty WECHATPAY_CERT_DIR."""
        ...


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


@dataclass(frozen=True)
class AlipaySettings:
    appid: str
    app_private_key: str
    alipay_public_key: str
    sign_type: str
    gateway: str  # the SDK's calls
    page_gateway: str  # where the browser is sent to pay (the same, but in the sandbox)
    notify_url: str
    seller_id: str | None  # checked on every notify and query when known


def is_sandbox() -> bool:
    return bool(current_app.config["PAYMENTS_MODE"] == "sandbox")


def register_settings_source(app: Flask, source: SettingsSource) -> None:
    app.extensions[SETTINGS_SOURCE] = source


def settings_source() -> SettingsSource | None:
    source: SettingsSource | None = current_app.extensions.get(SETTINGS_SOURCE)
    return source


def _defaults() -> Mapping[str, str]:
    source = settings_source()
    return source.defaults() if source is not None else {}


def read_key(value: str) -> str:
    """A key given as PEM text (or bare base64), or as the path of a PEM file."""
    text = value.strip()
    if "-----BEGIN" not in text and len(text) < 1024 and Path(text).is_file():
        return Path(text).read_text()
    return text


def _setting(name: str, defaults: Mapping[str, str]) -> str:
    value = current_app.config.get(name)
    if value:
        return read_key(str(value)) if "KEY" in name else str(value)
    if name in defaults:
        return defaults[name]
    raise ConfigurationError(
        f"{name} is not set (PAYMENTS_MODE={current_app.config['PAYMENTS_MODE']})."
    )


def wechat_settings() -> WechatSettings:
    config = current_app.config
    defaults = _defaults()
    base_url = config["BASE_URL"]
    certificate_mode = bool(config.get("WECHATPAY_CERT_DIR")) and not config.get(
        "WECHATPAY_PUBLIC_KEY"
    )
    public_key = public_key_id = None
    if not certificate_mode:
        public_key = _setting("WECHATPAY_PUBLIC_KEY", defaults)
        public_key_id = _setting("WECHATPAY_PUBLIC_KEY_ID", defaults)
    return WechatSettings(
        mchid=_setting("WECHATPAY_MCHID", defaults),
        appid=_setting("WECHATPAY_APPID", defaults),
        apiv3_key=_setting("WECHATPAY_APIV3_KEY", defaults),
        private_key=_setting("WECHATPAY_PRIVATE_KEY", defaults),
        cert_serial_no=_setting("WECHATPAY_CERT_SERIAL_NO", defaults),
        public_key=public_key,
        public_key_id=public_key_id,
        cert_dir=config.get("WECHATPAY_CERT_DIR") if certificate_mode else None,
        gateway=config.get("WECHATPAY_GATEWAY") or defaults.get("WECHATPAY_GATEWAY"),
        notify_url=base_url + "/api/v1/payments/wechat/notify",
    )


def alipay_settings() -> AlipaySettings:
    config = current_app.config
    defaults = _defaults()
    base_url = config["BASE_URL"]
    gateway = config.get("ALIPAY_GATEWAY") or defaults.get("ALIPAY_GATEWAY", ALIPAY_LIVE_GATEWAY)
    return AlipaySettings(
        appid=_setting("ALIPAY_APPID", defaults),
        app_private_key=_setting("ALIPAY_APP_PRIVATE_KEY", defaults),
        alipay_public_key=_setting("ALIPAY_PUBLIC_KEY", defaults),
        sign_type=config["ALIPAY_SIGN_TYPE"],
        gateway=gateway,
        page_gateway=config.get("ALIPAY_GATEWAY") or defaults.get("ALIPAY_PAGE_GATEWAY", gateway),
        notify_url=base_url + "/api/v1/payments/alipay/notify",
        seller_id=config.get("ALIPAY_SELLER_ID") or defaults.get("ALIPAY_SELLER_ID"),
    )
