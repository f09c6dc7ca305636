"""The payment sandbox blueprint: WeChat Pay and Alipay stand-ins under /sandbox.

Registered by `create_app` only when PAYMENTS_MODE is "sandbox" (production
refuses that mode), together with the settings source that gives the payment
clients the sandbox merchant's keys and gateways wherever the configuration has
none. The gateway APIs are called by the merchant's SDKs, not by forms of ours,
so they are exempt from CSRF; the scan and cashier pages are our own pages and
their forms carry CSRF tokens.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, current_app

from webapp.payments.sandbox import alipay, wechatpay
from webapp.payments.sandbox.common import (
    ALIPAY_SANDBOX_PATH,
    SANDBOX_PREFIX,
    SANDBOX_SELLER_ID,
    WECHAT_SANDBOX_PATH,
    current_keys,
)
from webapp.payments.sandbox.server import gateway_base_url
from webapp.payments.settings import is_sandbox, register_settings_source

bp = Blueprint("sandbox", __name__, url_prefix=SANDBOX_PREFIX)
bp.register_blueprint(wechatpay.bp)
bp.register_blueprint(alipay.bp)

CSRF_EXEMPT_VIEWS = (
    wechatpay.native,
    wechatpay.query_by_out_trade_no,
    wechatpay.query_by_transaction_id,
    wechatpay.close,
    wechatpay.certificates,
    alipay.gateway,
)


class SandboxSettings:
    """The sandbox merchant's identities (generated on first use, see `keys`) and the
    gateways (the SDKs' calls on the sandbox's own server, the browser's on BASE_URL),
    read when the payment clients are built; nothing while the app is not in sandbox
    mode."""

    def defaults(self) -> dict[str, str]:
        if not is_sandbox():
            return {}
        keys = current_keys()
        base_url = current_app.config["BASE_URL"]
        gateways = gateway_base_url()  # not the app's workers: see server.py
        return {
            "WECHATPAY_MCHID": keys.wechat_mchid,
            "WECHATPAY_APPID": keys.wechat_appid,
            "WECHATPAY_APIV3_KEY": keys.wechat_apiv3_key,
            "WECHATPAY_PRIVATE_KEY": keys.merchant_private_key,
            "WECHATPAY_CERT_SERIAL_NO": keys.merchant_serial_no,
            "WECHATPAY_PUBLIC_KEY": keys.platform_public_key,
            "WECHATPAY_PUBLIC_KEY_ID": keys.platform_public_key_id,
            "WECHATPAY_GATEWAY": gateways + WECHAT_SANDBOX_PATH,
            "ALIPAY_APPID": keys.alipay_appid,
            "ALIPAY_APP_PRIVATE_KEY": keys.alipay_app_private_key,
            "ALIPAY_PUBLIC_KEY": keys.alipay_public_key,
            "ALIPAY_GATEWAY": gateways + ALIPAY_SANDBOX_PATH,
            "ALIPAY_PAGE_GATEWAY": base_url + ALIPAY_SANDBOX_PATH,  # the browser goes there
            "ALIPAY_SELLER_ID": SANDBOX_SELLER_ID,
        }

    def install_platform_certificate(self, cert_dir: Path) -> None:
        """Later rotations are fetched by the SDK from the sandbox."""
        if not is_sandbox() or any(cert_dir.glob("*.pem")):
            return
        cert_dir.mkdir(parents=True, exist_ok=True)
        keys = current_keys()
        (cert_dir / f"{keys.platform_certificate_serial}.pem").write_text(keys.platform_certificate)


def register_sandbox(app: Flask) -> None:
    from webapp.extensions import csrf

    for view in CSRF_EXEMPT_VIEWS:
        csrf.exempt(view)
    app.register_blueprint(bp)
    register_settings_source(app, SandboxSettings())
