"""The payment sandbox blueprint: WeChat Pay and Alipay stand-ins under /sandbox.

Registered by `create_app` only when PAYMENTS_MODE is "sandbox" (production
refuses that mode). The gateway APIs are called by the merchant's SDKs, not by
forms of ours, so they are exempt from CSRF; the scan and cashier pages are our
own pages and their forms carry CSRF tokens.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from webapp.payments.sandbox import alipay, console, wechatpay, wechatpay_refunds
from webapp.payments.settings import SANDBOX_PREFIX

bp = Blueprint("sandbox", __name__, url_prefix=SANDBOX_PREFIX)
bp.register_blueprint(wechatpay.bp)
bp.register_blueprint(wechatpay_refunds.bp)
bp.register_blueprint(alipay.bp)
bp.register_blueprint(console.bp)

CSRF_EXEMPT_VIEWS = (
    wechatpay.native,
    wechatpay.query_by_out_trade_no,
    wechatpay.query_by_transaction_id,
    wechatpay.close,
    wechatpay.certificates,
    wechatpay_refunds.create_refund,
    wechatpay_refunds.query_refund,
    wechatpay_refunds.trade_bill,
    wechatpay_refunds.download_bill,
    alipay.gateway,
)


def register_sandbox(app: Flask) -> None:
    from webapp.extensions import csrf

    for view in CSRF_EXEMPT_VIEWS:
        csrf.exempt(view)
    app.register_blueprint(bp)
