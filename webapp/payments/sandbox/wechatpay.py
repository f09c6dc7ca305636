"""WeChat Pay APIv3 (Native) stand-in at /sandbox/wechatpay, byte-exact for `wechatpayv3`.

Requests: `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,nonce_str=..,signature=..,
timestamp=..,serial_no=..`, an RSA-SHA256 signature of
`METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n` with the merchant key; the path is
the one below the gateway URL (what the SDK signs), not this app's /sandbox prefix.

Responses (and notifies) carry `Wechatpay-Timestamp/-Nonce/-Signature/-Serial` and
`Wechatpay-Signature-Type`, the signature being over `TIMESTAMP\\nNONCE\\nBODY\\n`
with the platform key. Which platform identity signs: the platform *public key*
(serial `PUB_KEY_ID_...`) when the request's `Wechatpay-Serial` header named that
id (the SDK's public-key mode sends it on every request), else the newest platform
*certificate* (serial in upper-case hex), as in certificate mode. A trade's notifies
use the choice of the request that created it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import quote

import requests
from cryptography import x509
from flask import Blueprint, Response, abort, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from webapp.errors import render_error_page
from webapp.payments.alipay import yuan
from webapp.payments.sandbox import notify as delivery
from webapp.payments.sandbox.common import (
    WECHAT_SANDBOX_PATH,
    SandboxError,
    current_keys,
    current_store,
    now,
    rfc3339,
)
from webapp.payments.sandbox.crypto import (
    aes_gcm_encrypt,
    random_digits,
    random_string,
    rsa_sign,
    rsa_verify,
)
from webapp.payments.sandbox.keys import SandboxKeys, new_platform_certificate
from webapp.payments.sandbox.store import CertificateRecord, Store, WechatTradeRecord
from webapp.payments.wechat import parse_rfc3339

bp = Blueprint("wechatpay", __name__, url_prefix="/wechatpay")

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
MAX_CLOCK_SKEW_SECONDS = 300
OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
TRADE_STATE_DESC = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "CLOSED": "订单已关闭",
}
PAID_STATES = ("SUCCESS", "REFUND")  # a refunded trade was paid all the same
ACCEPTED_NOTIFY_STATUSES = (200, 204)


# --- signing --------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningIdentity:
    serial: str  # what goes in Wechatpay-Serial
    private_key: str


def platform_certificates(keys: SandboxKeys, store: Store) -> list[CertificateRecord]:
    """Every platform certificate served, oldest first (the first one is in the keys file)."""
    original = CertificateRecord(
        keys.platform_certificate_serial, keys.platform_certificate, keys.platform_private_key, ""
    )
    return [original, *store.certificates()]


def signing_identity(keys: SandboxKeys, store: Store, public_key_mode: bool) -> SigningIdentity:
    if public_key_mode:
        return SigningIdentity(keys.platform_public_key_id, keys.platform_private_key)
    newest = platform_certificates(keys, store)[-1]
    return SigningIdentity(newest.serial_no, newest.private_key)


def signature_headers(
    identity: SigningIdentity,
    body: str,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers WeChat Pay puts on its answers and notifies."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or random_string(32).upper()
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa_sign(identity.private_key, f"{stamp}\n{nonce}\n{body}\n"),
        "Wechatpay-Serial": identity.serial,
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,
    }


def _dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def rotate_platform_certificate(
    keys: SandboxKeys, store: Store, *, new_key: bool = True
) -> CertificateRecord:
    """Issue a further platform certificate (for a new key pair, or the current key);
    /v3/certificates then lists it besides the older ones, and it signs from now on."""
    current = platform_certificates(keys, store)[-1]
    private_key, certificate, serial = new_platform_certificate(
        None if new_key else current.private_key
    )
    store.add_certificate(serial, certificate, private_key)
    return platform_certificates(keys, store)[-1]


# --- the merchant's requests ---------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """A verified merchant API request."""

    keys: SandboxKeys
    store: Store
    public_key_mode: bool

    def respond(self, status: int, payload: Any = None) -> Response:
        body = "" if payload is None else _dumps(payload)
        identity = signing_identity(self.keys, self.store, self.public_key_mode)
        response = Response(body, status=status, headers=signature_headers(identity, body))
        if payload is not None:
            response.headers["Content-Type"] = "application/json; charset=utf-8"
        else:
            response.headers.pop("Content-Type", None)
        return response

    def error(self, status: int, code: str, message: str) -> Response:
        return self.respond(status, {"code": code, "message": message})


def _signed_path() -> str:
    """The request target as the SDK signed it: the path below the gateway URL, plus query."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw:
        raw = quote(request.script_root + request.path)
        if request.query_string:
            raw += "?" + request.query_string.decode("latin-1")
    if "://" in raw:  # absolute-form request target
        raw = "/" + raw.split("://", 1)[1].partition("/")[2]
    index = raw.find(WECHAT_SANDBOX_PATH + "/")
    return raw[index + len(WECHAT_SANDBOX_PATH) :] if index >= 0 else raw


def _authorization(header: str) -> dict[str, str] | None:
    scheme, _space, rest = header.strip().partition(" ")
    if scheme != SIGNATURE_TYPE:
        return None
    return dict(re.findall(r'(\w+)="([^"]*)"', rest))


def verify_request(keys: SandboxKeys) -> str | None:
    """Why the merchant's request is not authentic, or None."""
    fields = _authorization(request.headers.get("Authorization", ""))
    if fields is None:
        return "Authorization 头缺失或认证类型不是 WECHATPAY2-SHA256-RSA2048"
    missing = [
        name
        for name in ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
        if not fields.get(name)
    ]
    if missing:
        return f"Authorization 头缺少 {', '.join(missing)}"
    if fields["mchid"] != keys.wechat_mchid:
        return "商户号与证书不匹配"
    if fields["serial_no"].upper() != keys.merchant_serial_no.upper():
        return "商户证书序列号有误"
    try:
        timestamp = int(fields["timestamp"])
    except ValueError:
        return "timestamp 格式错误"
    if abs(time.time() - timestamp) > MAX_CLOCK_SKEW_SECONDS:
        return "请求时间戳与系统时间相差超过5分钟"
    body = request.get_data(as_text=True) if request.method != "GET" else ""
    message = f"{request.method}\n{_signed_path()}\n{fields['timestamp']}\n"
    message += f"{fields['nonce_str']}\n{body}\n"
    if not rsa_verify(keys.merchant_public_key, message, fields["signature"]):
        return "签名错误，请检查后再试"
    return None


def gateway_api(view: Callable[..., Response]) -> Callable[..., Response]:
    """Verify the merchant's signature first; the view gets the `Call`."""

    @wraps(view)
    def wrapper(**kwargs: Any) -> Response:
        keys, store = current_keys(), current_store()
        serial = request.headers.get("Wechatpay-Serial")
        call = Call(keys, store, public_key_mode=serial == keys.platform_public_key_id)
        problem = verify_request(keys)
        if problem is not None:
            return call.error(401, "SIGN_ERROR", problem)
        return view(call, **kwargs)

    return wrapper


# --- trades -----------------------------------------------------------------------------


def transaction_json(record: WechatTradeRecord) -> dict[str, Any]:
    """The transaction as the query API returns it (and the notify encrypts it)."""
    paid = record.trade_state in PAID_STATES
    amount: dict[str, Any] = {
        "currency": record.currency,
        "payer_currency": record.currency,
        "total": record.total,
    }
    data: dict[str, Any] = {
        "amount": amount,
        "appid": record.appid,
        "attach": "",
        "mchid": record.mchid,
        "out_trade_no": record.out_trade_no,
        "promotion_detail": [],
        "trade_state": record.trade_state,
        "trade_state_desc": TRADE_STATE_DESC.get(record.trade_state, ""),
    }
    if paid:
        amount["payer_total"] = record.total
        data.update(
            bank_type="OTHERS",
            payer={"openid": record.payer_openid or ""},
            success_time=record.success_time,
            trade_type="NATIVE",
            transaction_id=record.transaction_id,
        )
    return data


def code_url(token: str) -> str:
    return current_app.config["BASE_URL"] + WECHAT_SANDBOX_PATH + "/scan/" + token


def is_expired(record: WechatTradeRecord) -> bool:
    expires = parse_rfc3339(record.time_expire) if record.time_expire else None
    return expires is not None and expires <= now()


def _native_problem(data: dict[str, Any]) -> str | None:
    """Why a Native order request is malformed (WeChat answers 400 PARAM_ERROR), or None."""
    for name, limit in (("appid", 32), ("mchid", 32), ("description", 127), ("notify_url", 256)):
        value = data.get(name)
        if not isinstance(value, str) or not value:
            return f"输入源“/body/{name}”映射到字段“{name}”必填性规则校验失败，此字段为必填项"
        if len(value) > limit:
            return f"输入源“/body/{name}”映射到字段“{name}”长度超过 {limit}"
    out_trade_no = data.get("out_trade_no")
    if not isinstance(out_trade_no, str) or not OUT_TRADE_NO.match(out_trade_no):
        return "out_trade_no 须为 6-32 位数字、大小写字母、_-|* 组成"
    if not re.match(r"^https?://[^\s/?#]+", data["notify_url"]):
        return "notify_url 格式错误"
    amount = data.get("amount")
    if not isinstance(amount, dict):
        return "输入源“/body/amount”映射到字段“amount”必填性规则校验失败，此字段为必填项"
    total = amount.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total < 1:
        return "amount.total 须为正整数（单位：分）"
    if amount.get("currency", "CNY") != "CNY":
        return "amount.currency 仅支持 CNY"
    time_expire = data.get("time_expire")
    if time_expire is not None and (
        not isinstance(time_expire, str) or parse_rfc3339(time_expire) is None
    ):
        return "time_expire 须为 RFC 3339 格式，如 2018-06-08T10:34:56+08:00"
    return None


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _repeat(call: Call, existing: WechatTradeRecord, params: str) -> Response:
    if existing.trade_state == "SUCCESS":
        return call.error(400, "ORDERPAID", "该订单已支付")
    if existing.trade_state == "CLOSED":
        return call.error(400, "ORDER_CLOSED", "该订单已关闭")
    if existing.params != params:
        return call.error(400, "INVALID_REQUEST", "201 商户订单号重复")
    return call.respond(200, {"code_url": code_url(existing.token)})


def json_object(
    call: Call, problem_of: Callable[[dict[str, Any]], str | None]
) -> dict[str, Any] | Response:
    """The request's JSON object, or WeChat Pay's PARAM_ERROR answer (not JSON, not an
    object, or what `problem_of` finds wrong with it)."""
    try:
        data = json.loads(request.get_data(as_text=True))
    except ValueError:
        return call.error(400, "PARAM_ERROR", "请求体不是合法的 JSON")
    if not isinstance(data, dict):
        return call.error(400, "PARAM_ERROR", "请求体须为 JSON 对象")
    problem = problem_of(data)
    if problem is not None:
        return call.error(400, "PARAM_ERROR", problem)
    return data


@bp.post("/v3/pay/transactions/native")
@gateway_api
def native(call: Call) -> Response:
    data = json_object(call, _native_problem)
    if isinstance(data, Response):
        return data
    if data["mchid"] != call.keys.wechat_mchid:
        return call.error(400, "MCH_NOT_EXISTS", "商户号不存在")
    if data["appid"] != call.keys.wechat_appid:
        return call.error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
    params = _canonical(data)
    existing = call.store.wechat_trade(data["out_trade_no"])
    if existing is not None:
        return _repeat(call, existing, params)
    record = WechatTradeRecord(
        out_trade_no=data["out_trade_no"],
        token=secrets.token_urlsafe(16),
        appid=data["appid"],
        mchid=data["mchid"],
        description=data["description"],
        total=data["amount"]["total"],
        currency=data["amount"].get("currency", "CNY"),
        time_expire=data.get("time_expire"),
        notify_url=data["notify_url"],
        params=params,
        public_key_mode=call.public_key_mode,
        trade_state="NOTPAY",
        transaction_id=None,
        success_time=None,
        payer_openid=None,
        created_at=rfc3339(now()),
    )
    if not call.store.insert_wechat_trade(record):  # created concurrently
        existing = call.store.wechat_trade(record.out_trade_no)
        assert existing is not None
        return _repeat(call, existing, params)
    return call.respond(200, {"code_url": code_url(record.token)})


def _query_mchid_problem(call: Call) -> Response | None:
    mchid = request.args.get("mchid")
    if not mchid:
        return call.error(400, "PARAM_ERROR", "输入源“/query/mchid”映射到字段“mchid”必填")
    if mchid != call.keys.wechat_mchid:
        return call.error(400, "PARAM_ERROR", "mchid 与请求头中的商户号不一致")
    return None


def _answer_query(call: Call, find: Callable[[], WechatTradeRecord | None]) -> Response:
    problem = _query_mchid_problem(call)
    if problem is not None:
        return problem
    record = find()
    if record is None:
        return call.error(404, "ORDER_NOT_EXIST", "订单不存在")
    return call.respond(200, transaction_json(record))


@bp.get("/v3/pay/transactions/out-trade-no/<out_trade_no>")
@gateway_api
def query_by_out_trade_no(call: Call, out_trade_no: str) -> Response:
    return _answer_query(call, lambda: call.store.wechat_trade(out_trade_no))


@bp.get("/v3/pay/transactions/id/<transaction_id>")
@gateway_api
def query_by_transaction_id(call: Call, transaction_id: str) -> Response:
    return _answer_query(call, lambda: call.store.wechat_trade_by_transaction_id(transaction_id))


@bp.post("/v3/pay/transactions/out-trade-no/<out_trade_no>/close")
@gateway_api
def close(call: Call, out_trade_no: str) -> Response:
    try:
        data = json.loads(request.get_data(as_text=True) or "{}")
    except ValueError:
        return call.error(400, "PARAM_ERROR", "请求体不是合法的 JSON")
    mchid = data.get("mchid") if isinstance(data, dict) else None
    if not mchid:
        return call.error(400, "PARAM_ERROR", "输入源“/body/mchid”映射到字段“mchid”必填")
    if mchid != call.keys.wechat_mchid:
        return call.error(400, "MCH_NOT_EXISTS", "商户号不存在")
    record = call.store.wechat_trade(out_trade_no)
    if record is None:
        return call.error(404, "ORDER_NOT_EXIST", "订单不存在")
    if record.trade_state == "SUCCESS":
        return call.error(400, "ORDERPAID", "订单已支付")
    call.store.close_wechat_trade(out_trade_no)  # closing a closed order is fine
    return call.respond(204)


CERTIFICATE_DOWNLOADS = "certificate_downloads"  # its settings row


def count_certificate_download(store: Store) -> None:
    """Count /v3/certificates calls, so tests see how often a merchant downloads them."""
    store.set_setting(CERTIFICATE_DOWNLOADS, str(certificate_downloads(store) + 1))


def certificate_downloads(store: Store) -> int:
    return int(store.setting(CERTIFICATE_DOWNLOADS, "0"))


@bp.get("/v3/certificates")
@gateway_api
def certificates(call: Call) -> Response:
    count_certificate_download(call.store)
    data = []
    for record in reversed(platform_certificates(call.keys, call.store)):
        certificate = x509.load_pem_x509_certificate(record.certificate.encode())
        nonce, ciphertext = aes_gcm_encrypt(
            call.keys.wechat_apiv3_key, record.certificate, "certificate"
        )
        data.append(
            {
                "serial_no": record.serial_no,
                "effective_time": rfc3339(certificate.not_valid_before_utc),
                "expire_time": rfc3339(certificate.not_valid_after_utc),
                "encrypt_certificate": {
                    "algorithm": "AEAD_AES_256_GCM",
                    "nonce": nonce,
                    "associated_data": "certificate",
                    "ciphertext": ciphertext,
                },
            }
        )
    return call.respond(200, {"data": data})


@bp.errorhandler(Exception)
def system_error(error: Exception) -> Any:
    if isinstance(error, HTTPException):  # the scan pages' 404s: the app's error page
        return render_error_page(error.code or 500)
    current_app.logger.exception("payment sandbox (WeChat Pay) failed")
    body = _dumps({"code": "SYSTEM_ERROR", "message": "系统错误"})
    return Response(body, status=500, content_type="application/json; charset=utf-8")


# --- notifies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedNotify:
    """A notify as WeChat Pay would POST it; `post` sends it, or hand `headers` and
    `body` to a test client."""

    headers: dict[str, str]
    body: str
    url: str

    def post(self, url: str | None = None) -> tuple[int, str]:
        response = requests.post(
            url or self.url, data=self.body.encode(), headers=self.headers, timeout=10
        )
        return response.status_code, response.text


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


NOTIFY_SUMMARIES = {
    "TRANSACTION.SUCCESS": "支付成功",
    "REFUND.SUCCESS": "退款成功",
    "REFUND.ABNORMAL": "退款异常",
    "REFUND.CLOSED": "退款关闭",
}


def notify_body(
    keys: SandboxKeys,
    resource: dict[str, Any],
    *,
    event_type: str = "TRANSACTION.SUCCESS",
    original_type: str = "transaction",
    apiv3_key: str | None = None,
    tamper_ciphertext: bool = False,
) -> str:
    """The notify's JSON: the resource (a transaction or a refund) AES-256-GCM encrypted
    with the APIv3 key, its original type as the associated data."""
    plaintext = _dumps(resource)
    nonce, ciphertext = aes_gcm_encrypt(
        apiv3_key or keys.wechat_apiv3_key, plaintext, original_type
    )
    if tamper_ciphertext:  # flip a character: the GCM tag no longer matches
        ciphertext = ("B" if ciphertext[0] == "A" else "A") + ciphertext[1:]
    return _dumps(
        {
            "id": str(uuid.uuid4()),
            "create_time": rfc3339(now()),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": NOTIFY_SUMMARIES.get(event_type, event_type),
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "associated_data": original_type,
                "nonce": nonce,
            },
        }
    )


def signed_notify(
    keys: SandboxKeys,
    store: Store,
    body: str,
    url: str,
    *,
    public_key_mode: bool,
    timestamp: int | None = None,
    signing_key: str | None = None,
    serial: str | None = None,
    tamper_body: bool = False,
) -> SignedNotify:
    """A notify body signed as WeChat Pay signs it, or as a forger would (see build_notify)."""
    identity = signing_identity(keys, store, public_key_mode)
    if signing_key is not None or serial is not None:
        identity = SigningIdentity(serial or identity.serial, signing_key or identity.private_key)
    headers = signature_headers(identity, body, timestamp=timestamp)
    headers["Content-Type"] = "application/json"
    if tamper_body:
        body = body.replace('"summary":"', '"summary":"!', 1)
    return SignedNotify(headers, body, url)


def outgoing(
    keys: SandboxKeys, store: Store, number: str, body: str, url: str, public_key_mode: bool
) -> delivery.OutgoingNotify:
    """A notify to deliver; every attempt is signed afresh (new timestamp)."""

    def build() -> tuple[dict[str, str], bytes]:
        notify = signed_notify(keys, store, body, url, public_key_mode=public_key_mode)
        return notify.headers, notify.body.encode()

    return delivery.OutgoingNotify(
        channel="wechat",
        out_trade_no=number,
        url=url,
        build=build,
        accepted=lambda status, _text: status in ACCEPTED_NOTIFY_STATUSES,
    )


def outgoing_notify(
    keys: SandboxKeys, store: Store, record: WechatTradeRecord, url: str | None = None
) -> delivery.OutgoingNotify:
    """The payment notify of a trade."""
    body = notify_body(keys, transaction_json(record))
    return outgoing(
        keys, store, record.out_trade_no, body, url or record.notify_url, record.public_key_mode
    )


def _new_transaction_id() -> str:
    return f"4200{now():%Y%m%d}{random_digits(16)}"


def pay(out_trade_no: str, *, notify: bool = True) -> delivery.Delivery | None:
    """The buyer pays: NOTPAY → SUCCESS, then the notify goes out (in the background)."""
    keys, store = current_keys(), current_store()
    record = store.wechat_trade(out_trade_no)
    if record is None:
        raise SandboxError(f"unknown WeChat Pay trade {out_trade_no}")
    if record.trade_state != "NOTPAY":
        raise SandboxError(f"trade {out_trade_no} is {record.trade_state}")
    if is_expired(record):
        raise SandboxError(f"trade {out_trade_no} has expired")
    openid = "o" + random_string(27)
    if not store.pay_wechat_trade(out_trade_no, _new_transaction_id(), rfc3339(now()), openid):
        raise SandboxError(f"trade {out_trade_no} changed meanwhile")
    paid = store.wechat_trade(out_trade_no)
    assert paid is not None
    if not notify:
        return None
    return delivery.deliver(outgoing_notify(keys, store, paid), store, delivery.retry_delays())


def build_notify(
    out_trade_no: str,
    *,
    transaction: dict[str, Any] | None = None,
    event_type: str = "TRANSACTION.SUCCESS",
    timestamp: int | None = None,
    apiv3_key: str | None = None,
    tamper_ciphertext: bool = False,
    signing_key: str | None = None,
    serial: str | None = None,
    tamper_body: bool = False,
    public_key_mode: bool | None = None,
) -> SignedNotify:
    """A payment notify for a trade, optionally an evil twin (tests only, never over HTTP):

    transaction: fields merged (deeply) into the decrypted transaction, e.g.
        {"amount": {"total": 1}}, {"appid": "wx..."}, {"out_trade_no": "X"}; for an
        out_trade_no the sandbox does not know, a paid transaction is made up;
    timestamp: the Wechatpay-Timestamp (a stale one, say time.time() - 3600);
    apiv3_key: encrypt with another key; tamper_ciphertext: break the GCM tag;
    signing_key: sign with another private key (PEM); serial: another Wechatpay-Serial;
    tamper_body: change the body after signing;
    public_key_mode: sign as in public-key (True) or certificate mode (default: the trade's).
    """
    keys, store = current_keys(), current_store()
    record = store.wechat_trade(out_trade_no)
    if record is not None:
        base = transaction_json(record)
        if record.trade_state not in PAID_STATES:  # a notify only ever reports a payment
            base = transaction_json(
                _as_paid(record, _new_transaction_id(), rfc3339(now()), "o" + random_string(27))
            )
        mode = record.public_key_mode if public_key_mode is None else public_key_mode
        url = record.notify_url
    else:
        made_up = _as_paid(
            WechatTradeRecord(
                out_trade_no=out_trade_no,
                token="",
                appid=keys.wechat_appid,
                mchid=keys.wechat_mchid,
                description="sandbox",
                total=1,
                currency="CNY",
                time_expire=None,
                notify_url="",
                params="{}",
                public_key_mode=True,
                trade_state="NOTPAY",
                transaction_id=None,
                success_time=None,
                payer_openid=None,
                created_at=rfc3339(now()),
            ),
            _new_transaction_id(),
            rfc3339(now()),
            "o" + random_string(27),
        )
        base = transaction_json(made_up)
        mode = True if public_key_mode is None else public_key_mode
        url = current_app.config["BASE_URL"] + "/api/v1/payments/wechat/notify"
    body = notify_body(
        keys,
        deep_merge(base, transaction or {}),
        event_type=event_type,
        apiv3_key=apiv3_key,
        tamper_ciphertext=tamper_ciphertext,
    )
    return signed_notify(
        keys,
        store,
        body,
        url,
        public_key_mode=mode,
        timestamp=timestamp,
        signing_key=signing_key,
        serial=serial,
        tamper_body=tamper_body,
    )


def _as_paid(
    record: WechatTradeRecord, transaction_id: str, success_time: str, openid: str
) -> WechatTradeRecord:
    values = {**record.__dict__}
    values.update(
        trade_state="SUCCESS",
        transaction_id=transaction_id,
        success_time=success_time,
        payer_openid=openid,
    )
    return WechatTradeRecord(**values)


def send_notify(out_trade_no: str, url: str | None = None) -> delivery.NotifyAttempt:
    """Deliver the trade's notify once more, now (a duplicate, as WeChat Pay may send)."""
    keys, store = current_keys(), current_store()
    record = store.wechat_trade(out_trade_no)
    if record is None:
        raise SandboxError(f"unknown WeChat Pay trade {out_trade_no}")
    if record.trade_state not in PAID_STATES:
        raise SandboxError(f"trade {out_trade_no} is not paid")
    # The notify reports the payment as it was, refunded since or not.
    record = WechatTradeRecord(**{**record.__dict__, "trade_state": "SUCCESS"})
    attempt = len(store.attempts(out_trade_no)) + 1
    return delivery.send_once(outgoing_notify(keys, store, record, url), store, attempt)


# --- the page a person "scans" ----------------------------------------------------------------


def _scan_page(record: WechatTradeRecord, outcome: str | None = None, status: int = 200) -> Any:
    keys = current_keys()
    state = record.trade_state
    if state == "NOTPAY" and is_expired(record):
        state = "EXPIRED"
    return (
        render_template(
            "sandbox/wechat_scan.html",
            trade=record,
            state=state,
            outcome=outcome,
            amount=yuan(record.total),
            merchant=keys.wechat_mchid,
        ),
        status,
    )


def _trade_for_token(token: str) -> WechatTradeRecord:
    record = current_store().wechat_trade_by_token(token)
    if record is None:
        abort(404)
    return record


@bp.get("/scan/<token>")
def scan(token: str) -> Any:
    return _scan_page(_trade_for_token(token))


@bp.post("/scan/<token>/pay")
def scan_pay(token: str) -> Any:
    record = _trade_for_token(token)
    try:
        pay(record.out_trade_no)
    except SandboxError:
        return _scan_page(_trade_for_token(token), outcome="refused", status=409)
    return _scan_page(_trade_for_token(token), outcome="paid")


@bp.post("/scan/<token>/cancel")
def scan_cancel(token: str) -> Any:
    return _scan_page(_trade_for_token(token), outcome="cancelled")
