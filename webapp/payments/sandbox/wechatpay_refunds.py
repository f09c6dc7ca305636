"""WeChat Pay APIv3 refunds and trade bills, at /sandbox/wechatpay, for `wechatpayv3`.

- `POST /v3/refund/domestic/refunds`: by transaction_id or out_trade_no; the trade must
  be paid, `amount.total` its total, and the refunds of a trade (processing or done)
  never more than it. The same out_refund_no again answers that refund as it stands
  (with other amounts: INVALID_REQUEST). Outcomes follow the channel's refund mode
  (`sandbox.refunds`); a refund that ends sends its signed, AES-GCM encrypted notify
  (REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED) to the request's notify_url.
- `GET /v3/refund/domestic/refunds/{out_refund_no}`: the refund, or 404.
- `GET /v3/bill/tradebill?bill_date=`: the day's ALL bill (any day up to today; a day
  without trades is 400 NO_STATEMENT_EXIST), as `download_url` + SHA1 `hash_value` of
  the file; `GET /v3/billdownload/file?token=` (signed, like every call) serves it,
  gzip when `tar_type=GZIP`. The answer to a download is not signed, as WeChat's.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import secrets
from datetime import date
from typing import Any

from flask import Blueprint, Response, current_app, request

from webapp.payments.sandbox import bills
from webapp.payments.sandbox import notify as delivery
from webapp.payments.sandbox.common import (
    WECHAT_SANDBOX_PATH,
    SandboxError,
    current_keys,
    current_store,
    now,
    rfc3339,
)
from webapp.payments.sandbox.keys import SandboxKeys
from webapp.payments.sandbox.refunds import RefundMode, new_refund_id, refund_mode, settle
from webapp.payments.sandbox.store import RefundRecord, Store
from webapp.payments.sandbox.wechatpay import (
    PAID_STATES,
    Call,
    SignedNotify,
    deep_merge,
    gateway_api,
    json_object,
    notify_body,
    outgoing,
    signed_notify,
    system_error,
)

bp = Blueprint("wechatpay_refunds", __name__, url_prefix="/wechatpay")
bp.register_error_handler(Exception, system_error)

OUT_REFUND_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
REFUND_EVENTS = {
    "SUCCESS": "REFUND.SUCCESS",
    "ABNORMAL": "REFUND.ABNORMAL",
    "CLOSED": "REFUND.CLOSED",
}


# What a refund notify's resource keeps of the refund's JSON.
RESOURCE_KEYS = (
    "out_refund_no",
    "out_trade_no",
    "refund_id",
    "success_time",
    "transaction_id",
    "user_received_account",
)
RESOURCE_AMOUNTS = ("payer_refund", "payer_total", "refund", "total")


def refund_json(record: RefundRecord, transaction_id: str | None) -> dict[str, Any]:
    """The refund as the refund and query APIs answer it."""
    data: dict[str, Any] = {
        "amount": {
            "currency": "CNY",
            "discount_refund": 0,
            "from": [],
            "payer_refund": record.amount,
            "payer_total": record.total,
            "refund": record.amount,
            "settlement_refund": record.amount,
            "settlement_total": record.total,
            "total": record.total,
        },
        "channel": "ORIGINAL",
        "create_time": record.created_at,
        "funds_account": "AVAILABLE",
        "out_refund_no": record.out_refund_no,
        "out_trade_no": record.out_trade_no,
        "promotion_detail": [],
        "refund_id": record.refund_id,
        "status": record.status,
        "transaction_id": transaction_id or "",
        "user_received_account": "支付用户零钱",
    }
    if record.success_time:
        data["success_time"] = record.success_time
    return data


def _refund_problem(data: dict[str, Any]) -> str | None:
    """Why a refund request is malformed (400 PARAM_ERROR), or None."""
    if not isinstance(data.get("out_refund_no"), str) or not OUT_REFUND_NO.match(
        data["out_refund_no"]
    ):
        return "out_refund_no 须为 1-64 位数字、大小写字母、_-|*@ 组成"
    if not (
        isinstance(data.get("transaction_id"), str) or isinstance(data.get("out_trade_no"), str)
    ):
        return "transaction_id 和 out_trade_no 必须二选一"
    amount = data.get("amount")
    if not isinstance(amount, dict):
        return "输入源“/body/amount”映射到字段“amount”必填性规则校验失败，此字段为必填项"
    for name in ("refund", "total"):
        value = amount.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return f"amount.{name} 须为正整数（单位：分）"
    if amount.get("currency", "CNY") != "CNY":
        return "amount.currency 仅支持 CNY"
    reason = data.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 80):
        return "reason 长度不能超过 80"
    notify_url = data.get("notify_url")
    if notify_url is not None and (
        not isinstance(notify_url, str) or not re.match(r"^https?://[^\s/?#]+", notify_url)
    ):
        return "notify_url 格式错误"
    return None


@bp.post("/v3/refund/domestic/refunds")
@gateway_api
def create_refund(call: Call) -> Response:
    data = json_object(call, _refund_problem)
    if isinstance(data, Response):
        return data
    store = call.store
    trade = (
        store.wechat_trade_by_transaction_id(data["transaction_id"])
        if data.get("transaction_id")
        else store.wechat_trade(data["out_trade_no"])
    )
    if trade is None:
        return call.error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
    if trade.trade_state not in PAID_STATES:
        return call.error(400, "INVALID_REQUEST", "订单状态不支持退款")
    amount = data["amount"]
    if amount["total"] != trade.total:
        return call.error(400, "INVALID_REQUEST", "订单金额与原交易不一致")
    existing = store.refund("wechat", data["out_refund_no"])
    if existing is not None:
        return _repeat(call, existing, trade.out_trade_no, amount["refund"], trade.transaction_id)
    if refund_mode(store, "wechat") is RefundMode.INSUFFICIENT_BALANCE:
        return call.error(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起")
    record = RefundRecord(
        channel="wechat",
        out_refund_no=data["out_refund_no"],
        out_trade_no=trade.out_trade_no,
        refund_id=new_refund_id(),
        amount=amount["refund"],
        total=trade.total,
        reason=data.get("reason") or "",
        notify_url=data.get("notify_url"),
        public_key_mode=call.public_key_mode,
        status="PROCESSING",
        created_at=rfc3339(now()),
        success_time=None,
    )
    outcome = store.insert_refund_within(record)
    if outcome == "exceeds":
        return call.error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
    if outcome == "exists":  # the same number, concurrently
        existing = store.refund("wechat", record.out_refund_no)
        assert existing is not None
        return _repeat(call, existing, trade.out_trade_no, amount["refund"], trade.transaction_id)
    if refund_mode(store, "wechat") is RefundMode.SUCCEED:
        record = settle_and_notify(call.keys, store, record.out_refund_no, "SUCCESS")[0]
    return call.respond(200, refund_json(record, trade.transaction_id))


def _repeat(
    call: Call, existing: RefundRecord, out_trade_no: str, refund: int, transaction_id: str | None
) -> Response:
    if existing.out_trade_no != out_trade_no or existing.amount != refund:
        return call.error(400, "INVALID_REQUEST", "退款单号已存在，退款金额或订单与原退款不一致")
    return call.respond(200, refund_json(existing, transaction_id))


@bp.get("/v3/refund/domestic/refunds/<out_refund_no>")
@gateway_api
def query_refund(call: Call, out_refund_no: str) -> Response:
    record = call.store.refund("wechat", out_refund_no)
    if record is None:
        return call.error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    trade = call.store.wechat_trade(record.out_trade_no)
    return call.respond(200, refund_json(record, trade.transaction_id if trade else None))


# --- refund notifies -----------------------------------------------------------------------


def refund_resource(
    keys: SandboxKeys, record: RefundRecord, transaction_id: str | None
) -> dict[str, Any]:
    """The decrypted resource of a refund notify: the refund as the APIs answer it, with
    fewer amounts, the merchant, and `refund_status` for `status`."""
    data = refund_json(record, transaction_id)
    resource: dict[str, Any] = {key: data[key] for key in RESOURCE_KEYS if key in data}
    resource["amount"] = {key: data["amount"][key] for key in RESOURCE_AMOUNTS}
    resource["mchid"] = keys.wechat_mchid
    resource["refund_status"] = data["status"]
    return resource


def _refund_notify_body(
    keys: SandboxKeys,
    store: Store,
    record: RefundRecord,
    *,
    resource: dict[str, Any] | None = None,
    event_type: str | None = None,
    apiv3_key: str | None = None,
    tamper_ciphertext: bool = False,
) -> str:
    trade = store.wechat_trade(record.out_trade_no)
    plain = refund_resource(keys, record, trade.transaction_id if trade else None)
    return notify_body(
        keys,
        deep_merge(plain, resource or {}),
        event_type=event_type or REFUND_EVENTS.get(record.status, "REFUND.SUCCESS"),
        original_type="refund",
        apiv3_key=apiv3_key,
        tamper_ciphertext=tamper_ciphertext,
    )


def settle_and_notify(
    keys: SandboxKeys, store: Store, out_refund_no: str, status: str, *, notify: bool = True
) -> tuple[RefundRecord, delivery.Delivery | None]:
    """End a processing refund and send its notify (in the background) to its notify_url."""
    record = settle(store, "wechat", out_refund_no, status)
    if not notify or not record.notify_url:
        return record, None
    body = _refund_notify_body(keys, store, record)
    notice = outgoing(
        keys, store, record.out_refund_no, body, record.notify_url, record.public_key_mode
    )
    return record, delivery.deliver(notice, store, delivery.retry_delays())


def build_refund_notify(
    out_refund_no: str,
    *,
    resource: dict[str, Any] | None = None,
    event_type: str | None = None,
    timestamp: int | None = None,
    apiv3_key: str | None = None,
    tamper_ciphertext: bool = False,
    signing_key: str | None = None,
    serial: str | None = None,
    tamper_body: bool = False,
) -> SignedNotify:
    """A refund notify for a sandbox refund (processing ones as if SUCCESS), optionally an
    evil twin (tests only, never over HTTP): `resource` is merged (deeply) into the
    decrypted resource, e.g. {"amount": {"refund": 1}}, {"mchid": "1"}; the other
    options are build_notify's."""
    keys, store = current_keys(), current_store()
    record = store.refund("wechat", out_refund_no)
    if record is None:
        raise SandboxError(f"unknown WeChat Pay refund {out_refund_no}")
    if record.status == "PROCESSING":
        values = {**record.__dict__, "status": "SUCCESS", "success_time": rfc3339(now())}
        record = RefundRecord(**values)
    body = _refund_notify_body(
        keys,
        store,
        record,
        resource=resource,
        event_type=event_type,
        apiv3_key=apiv3_key,
        tamper_ciphertext=tamper_ciphertext,
    )
    url = (
        record.notify_url
        or current_app.config["BASE_URL"] + "/api/v1/payments/wechat/refund-notify"
    )
    return signed_notify(
        keys,
        store,
        body,
        url,
        public_key_mode=record.public_key_mode,
        timestamp=timestamp,
        signing_key=signing_key,
        serial=serial,
        tamper_body=tamper_body,
    )


# --- trade bills ---------------------------------------------------------------------------


def bill_text(keys: SandboxKeys, store: Store, day: date) -> str | None:
    """The day's ALL bill, or None when the day had no payment and no refund."""
    prefix = day.isoformat()
    trades = [t for t in store.trades_paid_on("wechat", prefix) if t is not None]
    refunds = store.refunds_succeeded_on("wechat", prefix)
    if not trades and not refunds:
        return None
    referenced = {
        trade.out_trade_no: trade
        for trade in (store.wechat_trade(r.out_trade_no) for r in refunds)
        if trade is not None
    }
    return bills.wechat_bill(keys.wechat_appid, keys.wechat_mchid, trades, refunds, referenced)


@bp.get("/v3/bill/tradebill")
@gateway_api
def trade_bill(call: Call) -> Response:
    try:
        day = date.fromisoformat(request.args.get("bill_date", ""))
    except ValueError:
        return call.error(400, "PARAM_ERROR", "bill_date 须为 YYYY-MM-DD")
    if request.args.get("bill_type", "ALL") != "ALL":
        return call.error(400, "PARAM_ERROR", "沙箱仅支持 bill_type=ALL")
    tar_type = request.args.get("tar_type")
    if tar_type not in (None, "GZIP"):
        return call.error(400, "PARAM_ERROR", "tar_type 仅支持 GZIP")
    if day > now().astimezone(bills.SHANGHAI).date():
        return call.error(400, "INVALID_REQUEST", "账单日期不能晚于今天")
    text = bill_text(call.keys, call.store, day)
    if text is None:
        return call.error(400, "NO_STATEMENT_EXIST", "账单文件不存在")
    raw = text.encode("utf-8")
    content = gzip.compress(raw) if tar_type == "GZIP" else raw
    token = secrets.token_urlsafe(24)
    call.store.save_bill(token, "wechat", content)
    return call.respond(
        200,
        {
            # On the server the SDK called (the gateway), as WeChat Pay's links are.
            "download_url": request.url_root.rstrip("/")
            + WECHAT_SANDBOX_PATH
            + "/v3/billdownload/file?token="
            + token,
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(raw).hexdigest(),
        },
    )


@bp.get("/v3/billdownload/file")
@gateway_api
def download_bill(call: Call) -> Response:
    content = call.store.bill(request.args.get("token", ""), "wechat")
    if content is None:
        return call.error(400, "INVALID_REQUEST", "账单下载链接已失效")
    return Response(content, 200, content_type="application/octet-stream")
