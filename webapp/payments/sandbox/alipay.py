"""Alipay (RSA2) stand-in at /sandbox/alipay/gateway.do, byte-exact for `python-alipay-sdk`.

Requests are the gateway's query string (GET; a form POST is read the same way):
the signature is RSA2 over `k=v&...` of every non-empty parameter except `sign`,
sorted by key, with the raw (unquoted) values — `sign_type` included, as Alipay and
the SDK's `sign_data` do. Server APIs answer
`{"<method_with_underscores>_response":{...},"sign":"..."}` where `sign` is RSA2 with
the Alipay key over the exact text of the response object, which the SDK cuts out
of the raw answer by matching braces: strings therefore never carry a literal brace
(they are written as \\u007b and \\u007d). Gateway-level refusals (bad signature,
app_id...) come unsigned, like Alipay's, and the SDK raises on them.

Notifies and the browser's return are signed over every parameter except `sign`
and `sign_type`, which is what `AliPay.verify` checks.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from flask import Blueprint, Response, abort, current_app, redirect, render_template, request
from werkzeug.exceptions import HTTPException

from webapp.errors import render_error_page
from webapp.payments.alipay import parse_alipay_time, yuan
from webapp.payments.sandbox import bills
from webapp.payments.sandbox import notify as delivery
from webapp.payments.sandbox.common import (
    SANDBOX_PREFIX,
    SANDBOX_SELLER_ID,
    SHANGHAI,
    SandboxError,
    alipay_time,
    current_keys,
    current_store,
    fen_of,
    now,
    rfc3339,
)
from webapp.payments.sandbox.crypto import random_digits, rsa_sign, rsa_verify
from webapp.payments.sandbox.keys import SandboxKeys
from webapp.payments.sandbox.refunds import RefundMode, new_refund_id, refund_mode, settle
from webapp.payments.sandbox.store import AlipayTradeRecord, RefundRecord, Store
from webapp.payments.wechat import parse_rfc3339

bp = Blueprint("alipay", __name__, url_prefix="/alipay")

PAGE_PAY = "alipay.trade.page.pay"
OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")
AMOUNT = re.compile(r"^\d{1,9}(\.\d{1,2})?$")
SUBJECT_FORBIDDEN = ("/", "=", "&")
MAX_AMOUNT = Decimal("100000000")


@dataclass(frozen=True)
class Refusal:
    """An Alipay error answer: code/msg (gateway level) and sub_code/sub_msg (the reason)."""

    code: str
    msg: str
    sub_code: str
    sub_msg: str

    def fields(self) -> dict[str, str]:
        return {
            "code": self.code,
            "msg": self.msg,
            "sub_code": self.sub_code,
            "sub_msg": self.sub_msg,
        }


def _missing(name: str) -> Refusal:
    return Refusal("40001", "Missing Required Arguments", f"isv.missing-{name}", f"缺少{name}参数")


def _invalid(sub_code: str, sub_msg: str) -> Refusal:
    return Refusal("40002", "Invalid Arguments", sub_code, sub_msg)


def _business(sub_code: str, sub_msg: str) -> Refusal:
    return Refusal("40004", "Business Failed", sub_code, sub_msg)


# --- signatures -------------------------------------------------------------------------


def signed_content(params: dict[str, str], *, exclude_sign_type: bool) -> str:
    excluded = {"sign", "sign_type"} if exclude_sign_type else {"sign"}
    return "&".join(
        f"{key}={value}"
        for key, value in sorted(params.items())
        if key not in excluded and value != ""
    )


def sign_params(params: dict[str, str], private_key: str) -> dict[str, str]:
    """Add `sign` as Alipay signs notifies and returns (without sign and sign_type)."""
    signed = dict(params)
    signed["sign"] = rsa_sign(private_key, signed_content(params, exclude_sign_type=True))
    return signed


def _json_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    return encoded.replace("{", "\\u007b").replace("}", "\\u007d")


def response_json(value: Any) -> str:
    """Compact JSON, UTF-8 as is, with no brace inside a string (see the module doc)."""
    if isinstance(value, dict):
        items = (f"{_json_string(str(k))}:{response_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(response_json(v) for v in value) + "]"
    if isinstance(value, str):
        return _json_string(value)
    return json.dumps(value)


def _response_name(method: str) -> str:
    return method.replace(".", "_") + "_response"


def signed_answer(keys: SandboxKeys, method: str, content: dict[str, Any]) -> Response:
    text = response_json(content)
    signature = rsa_sign(keys.alipay_private_key, text)
    body = f'{{"{_response_name(method)}":{text},"sign":"{signature}"}}'
    return Response(body, 200, content_type="application/json;charset=utf-8")


def unsigned_refusal(method: str | None, refusal: Refusal) -> Response:
    name = _response_name(method) if method else "error_response"
    body = f'{{"{name}":{response_json(refusal.fields())}}}'
    return Response(body, 200, content_type="application/json;charset=utf-8")


# --- the merchant's requests ------------------------------------------------------------------


def verify_request(params: dict[str, str], keys: SandboxKeys) -> Refusal | None:
    for name in ("app_id", "method", "sign_type", "sign", "timestamp", "version"):
        if not params.get(name):
            return _missing(name.replace("_", "-").replace("sign-type", "signature-type"))
    if params["app_id"] != keys.alipay_appid:
        return _invalid("isv.invalid-app-id", "无效的AppID参数")
    if params["sign_type"] != "RSA2":
        return _invalid("isv.invalid-signature-type", "无效的签名类型参数")
    if params.get("charset", "utf-8").lower() != "utf-8":
        return _invalid("isv.invalid-charset", "字符集错误")
    if parse_alipay_time(params["timestamp"]) is None:
        return _invalid("isv.invalid-timestamp", "非法的时间戳参数")
    if params["version"] != "1.0":
        return _invalid("isv.invalid-version", "版本号错误")
    content = signed_content(params, exclude_sign_type=False)
    if not rsa_verify(keys.alipay_app_public_key, content, params["sign"]):
        return _invalid(
            "isv.invalid-signature",
            "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为："
            + content,
        )
    return None


def _biz_content(params: dict[str, str]) -> dict[str, Any] | Refusal:
    try:
        biz = json.loads(params.get("biz_content") or "{}")
    except ValueError:
        return _invalid("isv.invalid-biz-content", "biz_content 不是合法的 JSON")
    if not isinstance(biz, dict):
        return _invalid("isv.invalid-biz-content", "biz_content 须为 JSON 对象")
    return biz


def _amount(text: Any) -> Decimal | None:
    if not isinstance(text, str) or not AMOUNT.match(text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if Decimal("0.01") <= value <= MAX_AMOUNT else None


def _order_problem(biz: dict[str, Any], product_code: str | None) -> Refusal | None:
    """Why a page.pay or precreate order is malformed, or None."""
    for name in ("out_trade_no", "total_amount", "subject"):
        if not biz.get(name):
            return _missing(name.replace("_", "-"))
    if not isinstance(biz["out_trade_no"], str) or not OUT_TRADE_NO.match(biz["out_trade_no"]):
        return _business("ACQ.INVALID_PARAMETER", "参数无效：out_trade_no")
    if _amount(biz["total_amount"]) is None:
        return _business("ACQ.INVALID_PARAMETER", "参数无效：total_amount")
    subject = biz["subject"]
    if not isinstance(subject, str) or len(subject) > 256:
        return _business("ACQ.INVALID_PARAMETER", "参数无效：subject")
    if any(character in subject for character in SUBJECT_FORBIDDEN):
        return _business("ACQ.INVALID_PARAMETER", "参数无效：subject 不可包含 / = & 等特殊字符")
    if product_code is not None and biz.get("product_code") != product_code:
        return _business("ACQ.INVALID_PARAMETER", f"参数无效：product_code 须为 {product_code}")
    time_expire = biz.get("time_expire")
    if time_expire is not None and (
        not isinstance(time_expire, str) or parse_alipay_time(time_expire) is None
    ):
        return _business("ACQ.INVALID_PARAMETER", "参数无效：time_expire")
    return None


def is_expired(record: AlipayTradeRecord) -> bool:
    expires = parse_alipay_time(record.time_expire) if record.time_expire else None
    return expires is not None and expires <= now()


def _settled(store: Store, record: AlipayTradeRecord) -> AlipayTradeRecord:
    """Alipay closes an unpaid trade when it times out."""
    if record.trade_status == "WAIT_BUYER_PAY" and is_expired(record):
        store.close_alipay_trade(record.out_trade_no, alipay_time(now()))
        closed = store.alipay_trade(record.out_trade_no)
        assert closed is not None
        return closed
    return record


def _lookup(store: Store, biz: dict[str, Any]) -> AlipayTradeRecord | None:
    record = None
    if biz.get("out_trade_no"):
        record = store.alipay_trade(str(biz["out_trade_no"]))
    elif biz.get("trade_no"):
        record = store.alipay_trade_by_trade_no(str(biz["trade_no"]))
    if record is None or not record.opened:  # Alipay knows a trade once the buyer saw it
        return None
    return _settled(store, record)


def _new_trade(
    keys: SandboxKeys,
    biz: dict[str, Any],
    params: dict[str, str],
    *,
    method: str,
    opened: bool,
) -> AlipayTradeRecord:
    moment = now()
    return AlipayTradeRecord(
        out_trade_no=biz["out_trade_no"],
        token=secrets.token_urlsafe(16),
        app_id=keys.alipay_appid,
        method=method,
        subject=biz["subject"],
        total_amount=biz["total_amount"],
        time_expire=biz.get("time_expire"),
        notify_url=params.get("notify_url") or None,
        return_url=params.get("return_url") or None,
        opened=opened,
        trade_status="WAIT_BUYER_PAY",
        trade_no=f"{moment:%Y%m%d}2200{random_digits(16)}",
        buyer_id="2088" + random_digits(12),
        buyer_logon_id="sbx***@sandbox.com",
        gmt_create=alipay_time(moment),
        gmt_payment=None,
        gmt_close=None,
        created_at=moment.isoformat(),
    )


def _conflict(existing: AlipayTradeRecord, biz: dict[str, Any]) -> Refusal | None:
    """A repeated order number: fine with the same amount while unpaid."""
    if existing.trade_status == "TRADE_SUCCESS":
        return _business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
    if existing.trade_status == "TRADE_CLOSED":
        return _business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
    if _amount(existing.total_amount) != _amount(biz["total_amount"]):
        return _business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
    return None


def _money(record: AlipayTradeRecord) -> dict[str, str]:
    paid = record.trade_status == "TRADE_SUCCESS"
    amount = record.total_amount if paid else "0.00"
    return {
        "buyer_pay_amount": amount,
        "invoice_amount": amount,
        "point_amount": "0.00",
        "receipt_amount": amount,
    }


def trade_query(keys: SandboxKeys, store: Store, biz: dict[str, Any]) -> dict[str, Any]:
    if not biz.get("out_trade_no") and not biz.get("trade_no"):
        return _missing("out-trade-no").fields()
    record = _lookup(store, biz)
    if record is None:
        refusal = _business("ACQ.TRADE_NOT_EXIST", "交易不存在")
        return {**refusal.fields(), **_zero_money(), "out_trade_no": biz.get("out_trade_no", "")}
    answer: dict[str, Any] = {
        "code": "10000",
        "msg": "Success",
        "buyer_logon_id": record.buyer_logon_id,
        "buyer_user_id": record.buyer_id,
        "out_trade_no": record.out_trade_no,
        "total_amount": record.total_amount,
        "trade_no": record.trade_no,
        "trade_status": record.trade_status,
        **_money(record),
    }
    if record.gmt_payment:
        answer["send_pay_date"] = record.gmt_payment
    return answer


def _zero_money() -> dict[str, str]:
    return {
        "buyer_pay_amount": "0.00",
        "invoice_amount": "0.00",
        "point_amount": "0.00",
        "receipt_amount": "0.00",
    }


def trade_close(keys: SandboxKeys, store: Store, biz: dict[str, Any]) -> dict[str, Any]:
    if not biz.get("out_trade_no") and not biz.get("trade_no"):
        return _missing("out-trade-no").fields()
    record = _lookup(store, biz)
    if record is None:
        return _business("ACQ.TRADE_NOT_EXIST", "交易不存在").fields()
    if record.trade_status != "WAIT_BUYER_PAY":
        return _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法").fields()
    store.close_alipay_trade(record.out_trade_no, alipay_time(now()))
    return {
        "code": "10000",
        "msg": "Success",
        "out_trade_no": record.out_trade_no,
        "trade_no": record.trade_no,
    }


def trade_precreate(
    keys: SandboxKeys, store: Store, biz: dict[str, Any], params: dict[str, str]
) -> dict[str, Any]:
    problem = _order_problem(biz, None)
    if problem is not None:
        return problem.fields()
    existing = store.alipay_trade(biz["out_trade_no"])
    if existing is not None:
        existing = _settled(store, existing)
        conflict = _conflict(existing, biz)
        if conflict is not None:
            return conflict.fields()
        record = existing
    else:
        record = _new_trade(keys, biz, params, method="alipay.trade.precreate", opened=False)
        if not store.insert_alipay_trade(record):
            return _business("ACQ.SYSTEM_ERROR", "系统错误，请重试").fields()
    return {
        "code": "10000",
        "msg": "Success",
        "out_trade_no": record.out_trade_no,
        "qr_code": cashier_url(record.token),
    }


def _refund_answer(
    store: Store, record: AlipayTradeRecord, fund_change: bool, amount: int
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "code": "10000",
        "msg": "Success",
        "buyer_logon_id": record.buyer_logon_id,
        "buyer_user_id": record.buyer_id,
        "fund_change": "Y" if fund_change else "N",
        "out_trade_no": record.out_trade_no,
        "refund_fee": yuan(store.refunded("alipay", record.out_trade_no, ("SUCCESS",))),
        "trade_no": record.trade_no,
    }
    if fund_change:
        answer["gmt_refund_pay"] = alipay_time(now())
        answer["send_back_fee"] = yuan(amount)
    return answer


def trade_refund(
    keys: SandboxKeys, store: Store, biz: dict[str, Any], params: dict[str, str]
) -> dict[str, Any]:
    """alipay.trade.refund: idempotent per out_request_no (which defaults to the trade's
    number); refunds of a trade never more than it; the refund mode decides the rest."""
    if not biz.get("out_trade_no") and not biz.get("trade_no"):
        return _missing("out-trade-no").fields()
    if not biz.get("refund_amount"):
        return _missing("refund-amount").fields()
    requested = _amount(biz["refund_amount"])
    if requested is None:
        return _business("ACQ.INVALID_PARAMETER", "参数无效：refund_amount").fields()
    record = _lookup(store, biz)
    if record is None:
        return _business("ACQ.TRADE_NOT_EXIST", "交易不存在").fields()
    amount = fen_of(str(requested))
    number = str(biz.get("out_request_no") or record.out_trade_no)
    existing = store.refund("alipay", number)
    if existing is not None:
        if existing.out_trade_no != record.out_trade_no or existing.amount != amount:
            return _business("ACQ.DISCORDANT_REPEAT_REQUEST", "请求信息不一致").fields()
        return _refund_answer(store, record, False, amount)
    if record.trade_status != "TRADE_SUCCESS":
        return _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法").fields()
    if refund_mode(store, "alipay") is RefundMode.INSUFFICIENT_BALANCE:
        return _business("ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足").fields()
    refund = RefundRecord(
        channel="alipay",
        out_refund_no=number,
        out_trade_no=record.out_trade_no,
        refund_id=new_refund_id(),
        amount=amount,
        total=fen_of(record.total_amount),
        reason=str(biz.get("refund_reason") or ""),
        notify_url=None,
        public_key_mode=False,
        status="PROCESSING",
        created_at=rfc3339(now()),
        success_time=None,
    )
    outcome = store.insert_refund_within(refund)
    if outcome == "exceeds":
        return _business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限").fields()
    if outcome == "exists":
        return _refund_answer(store, record, False, amount)
    done = refund_mode(store, "alipay") is RefundMode.SUCCEED
    if done:
        settle(store, "alipay", number, "SUCCESS")
    return _refund_answer(store, record, done, amount)


def refund_query(keys: SandboxKeys, store: Store, biz: dict[str, Any]) -> dict[str, Any]:
    """alipay.trade.fastpay.refund.query: the refund's amount and REFUND_SUCCESS once done;
    only the numbers while Alipay has not (or not yet) refunded it."""
    if not biz.get("out_request_no"):
        return _missing("out-request-no").fields()
    if not biz.get("out_trade_no") and not biz.get("trade_no"):
        return _missing("out-trade-no").fields()
    record = _lookup(store, biz)
    if record is None:
        return _business("ACQ.TRADE_NOT_EXIST", "交易不存在").fields()
    answer: dict[str, Any] = {
        "code": "10000",
        "msg": "Success",
        "out_request_no": str(biz["out_request_no"]),
        "out_trade_no": record.out_trade_no,
        "trade_no": record.trade_no,
    }
    refund = store.refund("alipay", str(biz["out_request_no"]))
    if (
        refund is not None
        and refund.out_trade_no == record.out_trade_no
        and refund.status == "SUCCESS"
    ):
        answer.update(
            refund_amount=yuan(refund.amount),
            refund_status="REFUND_SUCCESS",
            total_amount=record.total_amount,
            gmt_refund_pay=alipay_time(parse_rfc3339(refund.success_time or "") or now()),
        )
    return answer


def bill_download_url(keys: SandboxKeys, store: Store, biz: dict[str, Any]) -> dict[str, Any]:
    """alipay.data.dataservice.bill.downloadurl.query (trade bills of a day, up to today)."""
    if biz.get("bill_type") != "trade":
        return _invalid("isv.invalid-parameter", "沙箱仅支持 bill_type=trade").fields()
    try:
        day = date.fromisoformat(str(biz.get("bill_date") or ""))
    except ValueError:
        return _invalid("isv.invalid-parameter", "bill_date 须为 yyyy-MM-dd").fields()
    if day > now().astimezone(SHANGHAI).date():
        return _business("isp.bill_not_exist", "账单不存在").fields()
    prefix = day.isoformat()
    trades = [t for t in store.trades_paid_on("alipay", prefix) if t is not None]
    refunds = store.refunds_succeeded_on("alipay", prefix)
    if not trades and not refunds:
        return _business("isp.bill_not_exist", "账单不存在").fields()
    referenced = {
        trade.out_trade_no: trade
        for trade in (store.alipay_trade(r.out_trade_no) for r in refunds)
        if trade is not None
    }
    content = bills.alipay_bill(SANDBOX_SELLER_ID, day, trades, refunds, referenced)
    token = secrets.token_urlsafe(24)
    store.save_bill(token, "alipay", content)
    return {
        "code": "10000",
        "msg": "Success",
        # On the server the SDK called: the merchant's server downloads it, not a browser.
        "bill_download_url": request.url_root.rstrip("/")
        + SANDBOX_PREFIX
        + "/alipay/bill/"
        + token,
    }


@bp.get("/bill/<token>")
def bill_file(token: str) -> Any:
    """The bill's zip, for whoever holds the link (as Alipay's download links)."""
    content = current_store().bill(token, "alipay")
    if content is None:
        abort(404)
    return Response(
        content,
        200,
        content_type="application/zip",
        headers={"Content-Disposition": f"attachment; filename={token}.zip"},
    )


def cashier_url(token: str) -> str:
    return current_app.config["BASE_URL"] + SANDBOX_PREFIX + "/alipay/cashier/" + token


SERVER_APIS = {
    "alipay.trade.query": lambda keys, store, biz, params: trade_query(keys, store, biz),
    "alipay.trade.close": lambda keys, store, biz, params: trade_close(keys, store, biz),
    "alipay.trade.precreate": trade_precreate,
    "alipay.trade.refund": trade_refund,
    "alipay.trade.fastpay.refund.query": lambda keys, store, biz, params: refund_query(
        keys, store, biz
    ),
    "alipay.data.dataservice.bill.downloadurl.query": lambda keys, store, biz, params: (
        bill_download_url(keys, store, biz)
    ),
}


@bp.route("/gateway.do", methods=["GET", "POST"])
def gateway() -> Any:
    params = {**request.args.to_dict(), **request.form.to_dict()}
    keys, store = current_keys(), current_store()
    method = params.get("method") or None
    refusal = verify_request(params, keys)
    if method == PAGE_PAY:
        if refusal is not None:
            return _error_page(refusal)
        return page_pay(keys, store, params)
    if refusal is not None:
        return unsigned_refusal(method, refusal)
    assert method is not None
    api = SERVER_APIS.get(method)
    if api is None:
        return unsigned_refusal(None, _invalid("isv.invalid-method", "不存在的方法名"))
    biz = _biz_content(params)
    if isinstance(biz, Refusal):
        return unsigned_refusal(method, biz)
    return signed_answer(keys, method, api(keys, store, biz, params))


@bp.errorhandler(Exception)
def system_error(error: Exception) -> Any:
    if isinstance(error, HTTPException):  # the cashier's 404s: the app's error page
        return render_error_page(error.code or 500)
    current_app.logger.exception("payment sandbox (Alipay) failed")
    refusal = Refusal("20000", "Service Currently Unavailable", "isp.unknow-error", "系统繁忙")
    return unsigned_refusal(None, refusal)


# --- the cashier (what the buyer's browser sees) -------------------------------------------


def _error_page(refusal: Refusal) -> Any:
    return render_template("sandbox/alipay_error.html", refusal=refusal), 400


def _cashier_page(record: AlipayTradeRecord, outcome: str | None = None, status: int = 200) -> Any:
    keys = current_keys()
    state = record.trade_status
    if state == "TRADE_CLOSED" and is_expired(record) and record.gmt_payment is None:
        state = "EXPIRED"
    return (
        render_template(
            "sandbox/alipay_cashier.html",
            trade=record,
            state=state,
            outcome=outcome,
            merchant=keys.alipay_appid,
        ),
        status,
    )


def page_pay(keys: SandboxKeys, store: Store, params: dict[str, str]) -> Any:
    biz = _biz_content(params)
    if isinstance(biz, Refusal):
        return _error_page(biz)
    problem = _order_problem(biz, "FAST_INSTANT_TRADE_PAY")
    if problem is not None:
        return _error_page(problem)
    record = open_page_pay(keys, store, biz, params)
    if isinstance(record, Refusal):
        return _error_page(record)
    return _cashier_page(record)


def open_page_pay(
    keys: SandboxKeys, store: Store, biz: dict[str, Any], params: dict[str, str]
) -> AlipayTradeRecord | Refusal:
    """Record (or find again) the trade the buyer's browser arrived with."""
    existing = store.alipay_trade(biz["out_trade_no"])
    if existing is None:
        record = _new_trade(keys, biz, params, method=PAGE_PAY, opened=True)
        if store.insert_alipay_trade(record):
            return _settled(store, record)
        existing = store.alipay_trade(biz["out_trade_no"])
        assert existing is not None
    existing = _settled(store, existing)
    if existing.trade_status == "TRADE_CLOSED" and is_expired(existing):
        return existing  # the cashier says it expired
    conflict = _conflict(existing, biz)
    if conflict is not None:
        return conflict
    store.update_alipay_return(
        existing.out_trade_no, params.get("return_url") or None, params.get("notify_url") or None
    )
    store.open_alipay_trade(existing.out_trade_no, params.get("notify_url") or None)
    reopened = store.alipay_trade(existing.out_trade_no)
    assert reopened is not None
    return reopened


def _trade_for_token(token: str) -> AlipayTradeRecord:
    store = current_store()
    record = store.alipay_trade_by_token(token)
    if record is None:
        abort(404)
    return _settled(store, record)


@bp.get("/cashier/<token>")
def cashier(token: str) -> Any:
    """A precreate QR code's link: scanning it is when Alipay learns of the trade."""
    store = current_store()
    record = _trade_for_token(token)
    if not record.opened:
        store.open_alipay_trade(record.out_trade_no, None)
        record = _trade_for_token(token)
    return _cashier_page(record)


def return_params(keys: SandboxKeys, record: AlipayTradeRecord) -> dict[str, str]:
    """The signed parameters Alipay appends to return_url after a payment."""
    params = {
        "charset": "utf-8",
        "out_trade_no": record.out_trade_no,
        "method": "alipay.trade.page.pay.return",
        "total_amount": record.total_amount,
        "trade_no": record.trade_no,
        "auth_app_id": record.app_id,
        "version": "1.0",
        "app_id": record.app_id,
        "sign_type": "RSA2",
        "seller_id": SANDBOX_SELLER_ID,
        "timestamp": alipay_time(now()),
    }
    return sign_params(params, keys.alipay_private_key)


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


@bp.post("/cashier/<token>/pay")
def cashier_pay(token: str) -> Any:
    record = _trade_for_token(token)
    try:
        pay(record.out_trade_no)
    except SandboxError:
        return _cashier_page(_trade_for_token(token), outcome="refused", status=409)
    paid = _trade_for_token(token)
    if paid.return_url:
        return redirect(_with_query(paid.return_url, return_params(current_keys(), paid)))
    return _cashier_page(paid, outcome="paid")


@bp.post("/cashier/<token>/cancel")
def cashier_cancel(token: str) -> Any:
    return _cashier_page(_trade_for_token(token), outcome="cancelled")


# --- notifies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormNotify:
    """An async notify as Alipay would POST it (application/x-www-form-urlencoded)."""

    form: dict[str, str]
    url: str

    @property
    def body(self) -> str:
        return urlencode(self.form)

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}

    def post(self, url: str | None = None) -> tuple[int, str]:
        response = requests.post(
            url or self.url, data=self.body.encode(), headers=self.headers, timeout=10
        )
        return response.status_code, response.text


def notify_fields(record: AlipayTradeRecord) -> dict[str, str]:
    """The notify of a paid trade, unsigned."""
    total = record.total_amount
    moment = now()
    return {
        "gmt_create": record.gmt_create,
        "charset": "utf-8",
        "gmt_payment": record.gmt_payment or alipay_time(moment),
        "notify_time": alipay_time(moment),
        "subject": record.subject,
        "buyer_id": record.buyer_id,
        "buyer_logon_id": record.buyer_logon_id,
        "invoice_amount": total,
        "version": "1.0",
        "notify_id": f"{moment:%Y%m%d}00222{random_digits(13)}" + secrets.token_hex(6),
        "fund_bill_list": json.dumps(
            [{"amount": total, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")
        ),
        "notify_type": "trade_status_sync",
        "out_trade_no": record.out_trade_no,
        "total_amount": total,
        "trade_status": "TRADE_SUCCESS",
        "trade_no": record.trade_no,
        "auth_app_id": record.app_id,
        "receipt_amount": total,
        "point_amount": "0.00",
        "buyer_pay_amount": total,
        "app_id": record.app_id,
        "sign_type": "RSA2",
        "seller_id": SANDBOX_SELLER_ID,
    }


def outgoing_notify(
    keys: SandboxKeys, record: AlipayTradeRecord, url: str | None = None
) -> delivery.OutgoingNotify:
    form = sign_params(notify_fields(record), keys.alipay_private_key)
    body = urlencode(form).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    target = url or record.notify_url
    assert target
    return delivery.OutgoingNotify(
        channel="alipay",
        out_trade_no=record.out_trade_no,
        url=target,
        build=lambda: (dict(headers), body),
        accepted=lambda status, text: status == 200 and text == "success",
    )


def pay(out_trade_no: str, *, notify: bool = True) -> delivery.Delivery | None:
    """The buyer pays: WAIT_BUYER_PAY → TRADE_SUCCESS, then the notify goes out
    (in the background) when the trade has a notify_url."""
    keys, store = current_keys(), current_store()
    record = store.alipay_trade(out_trade_no)
    if record is None:
        raise SandboxError(f"unknown Alipay trade {out_trade_no}")
    record = _settled(store, record)
    if record.trade_status != "WAIT_BUYER_PAY":
        raise SandboxError(f"trade {out_trade_no} is {record.trade_status}")
    if not store.pay_alipay_trade(out_trade_no, alipay_time(now())):
        raise SandboxError(f"trade {out_trade_no} changed meanwhile")
    paid = store.alipay_trade(out_trade_no)
    assert paid is not None
    if not notify or not paid.notify_url:
        return None
    return delivery.deliver(outgoing_notify(keys, paid), store, delivery.retry_delays())


def open_trade(url: str) -> AlipayTradeRecord:
    """What the buyer's browser does with a page.pay URL, without HTTP (tests): verify the
    signed parameters and record the trade; raises SandboxError as the cashier would refuse."""
    params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    keys, store = current_keys(), current_store()
    refusal = verify_request(params, keys)
    biz = _biz_content(params) if refusal is None else refusal
    if isinstance(biz, Refusal):
        raise SandboxError(f"{biz.sub_code}: {biz.sub_msg}")
    problem = _order_problem(biz, "FAST_INSTANT_TRADE_PAY")
    if problem is not None:
        raise SandboxError(f"{problem.sub_code}: {problem.sub_msg}")
    record = open_page_pay(keys, store, biz, params)
    if isinstance(record, Refusal):
        raise SandboxError(f"{record.sub_code}: {record.sub_msg}")
    return record


def build_notify(
    out_trade_no: str,
    *,
    fields: dict[str, str] | None = None,
    signing_key: str | None = None,
    tamper: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> FormNotify:
    """A notify for a trade, optionally an evil twin (tests only, never over HTTP):

    fields: changed before signing (so the signature is valid), e.g. {"total_amount":
        "0.01"}, {"app_id": "2021..."}, {"trade_status": "TRADE_CLOSED"},
        {"out_trade_no": "X"}; an out_trade_no the sandbox does not know gets a made-up
        paid trade;
    signing_key: sign with another private key (PEM) — a forged signature;
    tamper: changed after signing (the signature no longer matches);
    drop: parameters removed after signing (e.g. ("sign",)).
    """
    keys, store = current_keys(), current_store()
    record = store.alipay_trade(out_trade_no)
    if record is None:
        record = _new_trade(
            keys,
            {"out_trade_no": out_trade_no, "subject": "sandbox", "total_amount": "0.01"},
            {},
            method=PAGE_PAY,
            opened=True,
        )
    form = notify_fields(record)
    form.update(fields or {})
    form = sign_params(form, signing_key or keys.alipay_private_key)
    form.update(tamper or {})
    for name in drop:
        form.pop(name, None)
    url = record.notify_url or current_app.config["BASE_URL"] + "/api/v1/payments/alipay/notify"
    return FormNotify(form, url)


def send_notify(out_trade_no: str, url: str | None = None) -> delivery.NotifyAttempt:
    """Deliver the paid trade's notify once more, now (a duplicate, as Alipay may send)."""
    keys, store = current_keys(), current_store()
    record = store.alipay_trade(out_trade_no)
    if record is None:
        raise SandboxError(f"unknown Alipay trade {out_trade_no}")
    if record.trade_status != "TRADE_SUCCESS":
        raise SandboxError(f"trade {out_trade_no} is not paid")
    if not (url or record.notify_url):
        raise SandboxError(f"trade {out_trade_no} has no notify_url")
    attempt = len(store.attempts(out_trade_no)) + 1
    return delivery.send_once(outgoing_notify(keys, record, url), store, attempt)
