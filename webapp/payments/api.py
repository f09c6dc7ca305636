"""/api/v1/payments: pay an order with WeChat Pay or Alipay, and the providers' notifies.

Starting a payment is for owners and admins (people, never API keys); reading an
order is for every member. The notify endpoints are public: what makes a notify
count is the provider's signature, checked in `services`. They answer in each
provider's own format (WeChat Pay: 204, or 4xx `{"code": "FAIL"}`; Alipay: the
text `success` or `fail`) and never 5xx for whatever a caller sends.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint
from werkzeug.exceptions import RequestEntityTooLarge

from webapp.api import (
    ORGANIZATION_PARAMETER,
    PEOPLE_DECORATORS,
    PEOPLE_IN_ORGANIZATION,
    PEOPLE_ONLY,
    person_membership,
)
from webapp.billing import services as billing_services
from webapp.billing.models import Order
from webapp.billing.schemas import OrderSchema, order_view
from webapp.errors import AppError
from webapp.extensions import api, db
from webapp.payments import services
from webapp.payments.models import Channel, ProviderOrder
from webapp.payments.schemas import (
    AlipayNotifySchema,
    AlipayPaymentSchema,
    CreatePaymentSchema,
    OrderQuerySchema,
    WechatNotifyFailSchema,
    WechatNotifySchema,
    WechatPaymentSchema,
)

log = logging.getLogger(__name__)

blp = Blueprint(
    "payments_api",
    __name__,
    url_prefix="/api/v1/payments",
    description="Pay orders with WeChat Pay (QR code) or Alipay (cashier); provider notifies",
)

NOTIFY: dict[str, Any] = {"security": []}  # public: the provider's signature is what counts
WECHAT_HEADERS = (
    ("Wechatpay-Timestamp", "Unix time of the signature; older than 5 minutes is refused"),
    ("Wechatpay-Nonce", "Random string covered by the signature"),
    ("Wechatpay-Signature", "Base64 SHA256-RSA2048 signature of timestamp, nonce and body"),
    ("Wechatpay-Serial", "The platform public key id or certificate serial that signed"),
    ("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048"),
)
WECHAT_NOTIFY_DOC: dict[str, Any] = {
    **NOTIFY,
    "parameters": [
        {
            "in": "header",
            "name": name,
            "required": True,
            "schema": {"type": "string"},
            "description": text,
        }
        for name, text in WECHAT_HEADERS
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": WechatNotifySchema}},
    },
}
ALIPAY_NOTIFY_DOC: dict[str, Any] = {
    **NOTIFY,
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": AlipayNotifySchema}},
    },
}
TEXT = "text/plain"
TEXT_SUCCESS = {"type": "string", "enum": ["success"]}
TEXT_FAIL = {"type": "string", "enum": ["fail"]}


def _payment_view(provider_order: ProviderOrder) -> dict[str, Any]:
    order = db.session.get(Order, provider_order.order_id)
    assert order is not None
    link = "code_url" if provider_order.channel == Channel.WECHAT else "pay_url"
    return {
        "order_id": order.id,
        "out_trade_no": order.out_trade_no,
        "amount_fen": order.amount_fen,
        "currency": order.currency,
        "expires_at": order.expires_at,
        "channel": provider_order.channel,
        link: provider_order.pay_url,
    }


def _start(order_id: int, channel: Channel) -> dict[str, Any]:
    try:
        provider_order = services.start_payment(person_membership(), order_id, channel)
    except AppError:
        db.session.commit()  # keeps the record of a provider failure, if there was one
        raise
    view = _payment_view(provider_order)
    db.session.commit()
    return view


@blp.route("/wechat/create")
class WechatCreate(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.arguments(CreatePaymentSchema)
    @blp.response(201, WechatPaymentSchema)
    @blp.doc(**PEOPLE_IN_ORGANIZATION)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Pay a pending order with WeChat Pay (owner or admin): the QR `code_url`

        Asking again returns the same `code_url`. 409 `order_not_payable` once the order
        is paid or closed, `order_expired` after `expires_at`; 502
        `provider_unavailable` when WeChat Pay cannot be reached.
        """
        return _start(data["order_id"], Channel.WECHAT)


@blp.route("/alipay/create")
class AlipayCreate(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.arguments(CreatePaymentSchema)
    @blp.response(201, AlipayPaymentSchema)
    @blp.doc(**PEOPLE_IN_ORGANIZATION)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Pay a pending order with Alipay (owner or admin): the cashier `pay_url`

        Send the browser to `pay_url`; Alipay returns it to the order's page afterwards.
        Errors as for WeChat Pay.
        """
        return _start(data["order_id"], Channel.ALIPAY)


# Route-level, so that it adds to the query parameters instead of replacing them.
@blp.route("/orders/<int:order_id>", parameters=[ORGANIZATION_PARAMETER])
class PaymentOrder(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.arguments(OrderQuerySchema, location="query")
    @blp.response(200, OrderSchema)
    @blp.doc(**PEOPLE_ONLY)
    def get(self, query: dict[str, Any], order_id: int) -> dict[str, Any]:
        """An order and its payment status (any member)

        With `refresh=1`, the payment providers are asked first, so a payment whose
        notify has not arrived yet is taken into account.
        """
        order = billing_services.order_of(person_membership().organization_id, order_id)
        if query["refresh"]:
            order = services.refresh_order(order.id)
            db.session.commit()
        return order_view(order)


# --- provider notifies (public) ------------------------------------------------------


def _wechat_fail(status: int, message: str) -> Response:
    response = jsonify(code="FAIL", message=message)
    response.status_code = status
    return response


def _reject_notify(channel: Channel, reason: str, raw: str = "") -> None:
    services.record_event(channel, "notify", "rejected", reason=reason, raw=raw)
    db.session.commit()


@blp.route("/wechat/notify")
class WechatNotify(MethodView):
    @blp.alt_response(204, description="Accepted: WeChat Pay stops sending it", success=True)
    @blp.alt_response(
        400,
        schema=WechatNotifyFailSchema,
        description="Refused (bad signature, stale, inconsistent with the order): "
        '`{"code": "FAIL", "message": ...}`',
    )
    @blp.alt_response(413, schema=WechatNotifyFailSchema, description="Body too large")
    @blp.alt_response(415, schema=WechatNotifyFailSchema, description="Not application/json")
    @blp.alt_response(500, schema=WechatNotifyFailSchema, description="Not processed; resend")
    @blp.doc(**WECHAT_NOTIFY_DOC)
    def post(self) -> Response:
        """WeChat Pay's payment notify (public; verified by the platform signature)

        The body is the signed JSON event whose `resource` is AES-256-GCM encrypted
        with the APIv3 key. Answers 204 with no body when accepted (also for a repeat),
        else 4xx with `{"code": "FAIL", "message": ...}`, as WeChat Pay expects.
        """
        try:
            body = request.get_data(as_text=True)
        except RequestEntityTooLarge:
            _reject_notify(Channel.WECHAT, "body too large")
            return _wechat_fail(413, "body too large")
        if request.mimetype != "application/json":
            _reject_notify(Channel.WECHAT, f"content type {request.mimetype!r}", body)
            return _wechat_fail(415, "content type must be application/json")
        try:
            verdict = services.handle_wechat_notify(dict(request.headers), body)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("WeChat Pay notify not processed")
            return _wechat_fail(500, "not processed, please resend")
        if verdict.accepted:
            return Response(status=204)
        return _wechat_fail(400, verdict.reason)


def _alipay_answer(status: int, text: str) -> Response:
    return Response(text, status=status, mimetype=TEXT)


@blp.route("/alipay/notify")
class AlipayNotify(MethodView):
    @blp.alt_response(
        200,
        schema=TEXT_SUCCESS,
        content_type=TEXT,
        description="Accepted: Alipay stops sending it",
        success=True,
    )
    @blp.alt_response(
        400,
        schema=TEXT_FAIL,
        content_type=TEXT,
        description="Refused (bad signature, inconsistent with the order): Alipay resends",
    )
    @blp.alt_response(413, schema=TEXT_FAIL, content_type=TEXT, description="Body too large")
    @blp.alt_response(500, schema=TEXT_FAIL, content_type=TEXT, description="Not processed")
    @blp.doc(**ALIPAY_NOTIFY_DOC)
    def post(self) -> Response:
        """Alipay's asynchronous notify (public; verified by Alipay's RSA2 signature)

        A form post (`application/x-www-form-urlencoded`). Answers the text `success`
        when accepted (also for a repeat), else `fail`, as Alipay expects.
        """
        try:
            form = request.form.to_dict()
        except RequestEntityTooLarge:
            _reject_notify(Channel.ALIPAY, "body too large")
            return _alipay_answer(413, "fail")
        try:
            verdict = services.handle_alipay_notify(form)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("Alipay notify not processed")
            return _alipay_answer(500, "fail")
        return _alipay_answer(200, "success") if verdict.accepted else _alipay_answer(400, "fail")


@blp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> Any:
    """Over MAX_CONTENT_LENGTH (refused before any view runs: the app reads every form):
    the notify endpoints still answer in their provider's format."""
    if request.endpoint == f"{blp.name}.{WechatNotify.__name__}":
        _reject_notify(Channel.WECHAT, "body too large")
        return _wechat_fail(413, "body too large")
    if request.endpoint == f"{blp.name}.{AlipayNotify.__name__}":
        _reject_notify(Channel.ALIPAY, "body too large")
        return _alipay_answer(413, "fail")
    return api.handle_http_exception(error)
