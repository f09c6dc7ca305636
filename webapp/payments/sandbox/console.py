"""The sandbox console at /sandbox/refunds: how each channel answers refund requests, and
the refunds it holds, with buttons to settle the processing ones (as a provider would,
later). Our own page: its forms carry CSRF tokens."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from webapp.payments.sandbox.common import SandboxError, current_keys, current_store
from webapp.payments.sandbox.refunds import (
    FINAL_STATES,
    RefundMode,
    refund_mode,
    set_refund_mode,
    settle,
)
from webapp.payments.sandbox.wechatpay_refunds import settle_and_notify

bp = Blueprint("console", __name__, url_prefix="/refunds")

SHOWN_REFUNDS = 100


@bp.get("")
def index() -> str:
    store = current_store()
    return render_template(
        "sandbox/refunds.html",
        modes={channel: refund_mode(store, channel) for channel in FINAL_STATES},
        all_modes=list(RefundMode),
        final_states=FINAL_STATES,
        refunds=list(reversed(store.refunds()))[:SHOWN_REFUNDS],
    )


@bp.post("/mode")
def change_mode() -> Response:
    channel, mode = request.form.get("channel", ""), request.form.get("mode", "")
    if channel not in FINAL_STATES or mode not in tuple(RefundMode):
        abort(400)
    set_refund_mode(current_store(), channel, RefundMode(mode))
    return redirect(url_for(".index"))


@bp.post("/<any(wechat, alipay):channel>/<out_refund_no>/settle")
def settle_refund(channel: str, out_refund_no: str) -> Response:
    status = request.form.get("status", "")
    try:
        if channel == "wechat":
            settle_and_notify(current_keys(), current_store(), out_refund_no, status)
        else:
            settle(current_store(), channel, out_refund_no, status)
    except SandboxError as exc:
        flash(str(exc), "danger")
    return redirect(url_for(".index"))
