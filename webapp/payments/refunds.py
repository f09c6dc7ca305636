"""Refunds, through the channel that holds the money, never more than was paid.

A refund is a row first (`pending`, created under the order's row lock and checked
against what its payment has left), then a request to the channel, then the
channel's answer: in the reply, in a notify (WeChat Pay) or from a query (pending
refunds are polled). Only a pending refund changes state, so answers may race and
repeat. A refund never changes the subscription: `billing.services.end_order_period`
does, when an operator asks for it.

Retrying a failed refund: Alipay's `out_request_no` makes a repeat idempotent, so
the same number is sent again. WeChat Pay wants the same `out_refund_no` again for a
request it refused (e.g. NOT_ENOUGH), but a refund it accepted and then closed or
found abnormal is final under its number: the retry is a new refund with a new one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from webapp.billing.models import Order
from webapp.billing.periods import SHANGHAI
from webapp.billing.services import lock_order
from webapp.core.jobs import enqueue_after_commit, schedule
from webapp.core.mail import external_url, send_mail
from webapp.db import utcnow
from webapp.errors import AppError, Conflict, NotFound
from webapp.extensions import db
from webapp.orgs.models import OrganizationMember
from webapp.payments import alipay, wechat
from webapp.payments.audit import Verdict, record_event
from webapp.payments.models import (
    Channel,
    Payment,
    PaymentDisposition,
    Refund,
    RefundReason,
    RefundStatus,
)
from webapp.payments.settings import wechat_settings
from webapp.payments.wechat import NotifyRejected, ProviderError, RefundRefused

# After a refund is sent and still pending, ask again after these many seconds; later
# the sweep (`tasks.poll_pending_refunds`, every 10 minutes) keeps asking.
REFUND_POLL_DELAYS = (30, 60, 300, 900)

CHANNEL_LABELS = {Channel.WECHAT: _l("WeChat Pay"), Channel.ALIPAY: _l("Alipay")}
WECHAT_FAILURES = {
    "CLOSED": "CLOSED: 退款关闭",
    "ABNORMAL": "ABNORMAL: 退款异常",
}
# What the payer's WeChat Pay or Alipay shows as the reason of an automatic refund.
CHANNEL_REASONS: dict[str, str] = {
    RefundReason.DUPLICATE_PAYMENT: "重复支付，退回多付的一笔",
    RefundReason.SUPERSEDED: "订单已关闭或被取代，付款原路退回",
}
WECHAT_STATUSES = {
    "SUCCESS": RefundStatus.SUCCEEDED,
    "CLOSED": RefundStatus.FAILED,
    "ABNORMAL": RefundStatus.FAILED,
}


@dataclass(frozen=True)
class RefundState:
    """A channel's word on one refund, in our terms."""

    status: RefundStatus
    accepted: bool  # the channel has the request on record
    provider_refund_no: str | None = None
    succeeded_at: datetime | None = None
    failure_reason: str = ""
    raw: dict[str, Any] | None = None


def new_out_refund_no(now: datetime) -> str:
    """27 characters, unique, valid as WeChat Pay's out_refund_no and Alipay's out_request_no."""
    return f"R{now.astimezone(SHANGHAI):%Y%m%d%H%M%S}{secrets.randbelow(10**12):012d}"


def payments_of(order_id: int) -> list[Payment]:
    """The order's payments, the one that paid for it first."""
    return list(
        db.session.scalars(
            sa.select(Payment)
            .where(Payment.order_id == order_id)
            .order_by(Payment.disposition != PaymentDisposition.APPLIED, Payment.id)
        )
    )


def refunds_of(order_id: int) -> list[Refund]:
    return list(
        db.session.scalars(sa.select(Refund).where(Refund.order_id == order_id).order_by(Refund.id))
    )


def refunded_fen(order_id: int) -> int:
    """Money that has gone back for the order (succeeded refunds)."""
    total = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_fen), 0)).where(
            Refund.order_id == order_id, Refund.status == RefundStatus.SUCCEEDED
        )
    )
    return int(total or 0)


def refundable_fen(payment: Payment) -> int:
    """What a payment has left once its pending and succeeded refunds are counted."""
    taken = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_fen), 0)).where(
            Refund.payment_id == payment.id, Refund.status != RefundStatus.FAILED
        )
    )
    return payment.amount_fen - int(taken or 0)


def get_refund(refund_id: int) -> Refund:
    refund = db.session.scalar(
        sa.select(Refund).where(Refund.id == refund_id).execution_options(populate_existing=True)
    )
    if refund is None:
        raise NotFound(_("Refund not found."), error="refund_not_found")
    return refund


def _over_limit(left: int) -> Conflict:
    return Conflict(
        _("At most %(fen)d fen of this order can still be refunded.", fen=max(left, 0)),
        error="refund_exceeds_payment",
    )


def create_refund(
    order_id: int,
    reason: str,
    amount_fen: int | None = None,
    *,
    payment: Payment | None = None,
    now: datetime | None = None,
) -> Refund:
    """A pending refund of `amount_fen` (default: all that is left) of the order's money.

    Taken from `payment`, or from the first payment (the one that paid for the order
    first) that has enough left. Refunds of one order are created one at a time (the
    order row is locked), so together they never exceed what was paid.
    """
    order = lock_order(order_id)
    reason = reason.strip()
    if not reason:
        raise AppError(_("Give a reason for the refund."), error="validation_error", status=422)
    if amount_fen is not None and amount_fen <= 0:
        raise AppError(_("Refund at least 1 fen."), error="validation_error", status=422)
    candidates = [payment] if payment is not None else payments_of(order.id)
    if not candidates:
        raise Conflict(
            _("Nothing was paid for this order through WeChat Pay or Alipay."),
            error="nothing_paid",
        )
    left = {candidate.id: refundable_fen(candidate) for candidate in candidates}
    wanted = amount_fen or 1
    chosen = next((c for c in candidates if left[c.id] >= wanted), None)
    if chosen is None:
        raise _over_limit(max(left.values()))
    refund = Refund(
        order_id=order.id,
        payment_id=chosen.id,
        channel=chosen.channel,
        out_refund_no=new_out_refund_no(now or utcnow()),
        amount_fen=amount_fen or left[chosen.id],
        status=RefundStatus.PENDING,
        reason=reason[:255],
    )
    db.session.add(refund)
    db.session.flush()
    return refund


def retry_refund(refund_id: int, *, abnormal_handled: bool = False) -> Refund:
    """Send a failed refund again (see the module doc for which number it goes under).

    A WeChat Pay refund found ABNORMAL is retried only when the operator says it has been
    dealt with in the merchant platform: until then its money may still be with WeChat
    Pay, and a new refund would pay the customer twice."""
    order = lock_order(get_refund(refund_id).order_id)
    refund = get_refund(refund_id)  # re-read under the order's lock
    if refund.status != RefundStatus.FAILED:
        raise Conflict(_("Only a failed refund can be retried."), error="refund_not_failed")
    left = refundable_fen(refund.payment)
    if left < refund.amount_fen:
        raise _over_limit(left)
    if refund.failure_reason == WECHAT_FAILURES["ABNORMAL"] and not abnormal_handled:
        raise Conflict(
            _(
                "WeChat Pay found this refund abnormal: its money may still be with WeChat Pay. "
                "Finish it in the merchant platform (交易中心 → 退款 → 异常退款) and retry only "
                "once it has been closed there, with --abnormal-handled."
            ),
            error="refund_abnormal",
        )
    if refund.channel == Channel.WECHAT and refund.accepted_at is not None:
        again = Refund(
            order_id=order.id,
            payment_id=refund.payment_id,
            channel=refund.channel,
            out_refund_no=new_out_refund_no(utcnow()),
            amount_fen=refund.amount_fen,
            status=RefundStatus.PENDING,
            reason=refund.reason,
        )
        db.session.add(again)
        db.session.flush()
        return again
    refund.status = RefundStatus.PENDING
    refund.failure_reason = ""
    refund.failed_at = None
    db.session.flush()
    return refund


def refund_unwanted_payment(order: Order, payment: Payment, reason: RefundReason) -> Refund:
    """Money the order could not use: refund all of it (by a job) and tell the managers."""
    refund = create_refund(order.id, str(reason), payment.amount_fen, payment=payment)
    enqueue_after_commit(send_refund, refund.id)
    channel = CHANNEL_LABELS.get(Channel(payment.channel), payment.channel)
    amount = f"¥{alipay.yuan(payment.amount_fen)}"
    if reason == RefundReason.DUPLICATE_PAYMENT:
        subject = _(
            "Order %(number)s was paid twice: we are refunding one payment",
            number=order.out_trade_no,
        )
        body = _(
            "Order %(number)s was paid twice. It was applied once; the second payment "
            "(%(amount)s through %(channel)s) is being refunded in full to where it came "
            "from. Nothing else changes.\n%(link)s",
            number=order.out_trade_no,
            amount=amount,
            channel=channel,
            link=external_url("billing.order", order_id=order.id),
        )
    else:
        subject = _("A payment for order %(number)s is being refunded", number=order.out_trade_no)
        body = _(
            "A payment of %(amount)s through %(channel)s arrived for order %(number)s after "
            "the order had been closed or replaced by another order, so it was not applied. "
            "It is being refunded in full to where it came from.\n%(link)s",
            number=order.out_trade_no,
            amount=amount,
            channel=channel,
            link=external_url("billing.order", order_id=order.id),
        )
    for email in db.session.scalars(OrganizationMember.manager_emails(order.organization_id)):
        send_mail(email, subject, body)
    return refund


# --- asking the channel ---------------------------------------------------------------


def _wechat_state(answer: wechat.WechatRefund) -> RefundState:
    return RefundState(
        status=WECHAT_STATUSES.get(answer.status, RefundStatus.PENDING),
        accepted=True,
        provider_refund_no=answer.refund_id,
        succeeded_at=answer.succeeded_at,
        failure_reason=WECHAT_FAILURES.get(answer.status, ""),
        raw=answer.raw,
    )


def _alipay_state(answer: alipay.AlipayRefund) -> RefundState:
    return RefundState(
        status=RefundStatus.SUCCEEDED if answer.succeeded else RefundStatus.PENDING,
        accepted=True,
        succeeded_at=answer.succeeded_at,
        raw=answer.raw,
    )


def _wechat_mismatch(
    refund: Refund, order: Order, answer: wechat.WechatRefund, *, notify: bool = False
) -> str | None:
    payment = refund.payment
    if notify and answer.mchid != wechat_settings().mchid:
        return "mchid does not match"
    if answer.out_refund_no != refund.out_refund_no:
        return "out_refund_no does not match"
    if answer.out_trade_no != order.out_trade_no:
        return "out_trade_no does not match"
    if answer.transaction_id and answer.transaction_id != payment.provider_trade_no:
        return "transaction_id does not match"
    if answer.refund_fen != refund.amount_fen:
        return f"refund amount {answer.refund_fen} != {refund.amount_fen}"
    if answer.total_fen != payment.amount_fen:
        return f"total amount {answer.total_fen} != {payment.amount_fen}"
    return None


def _alipay_mismatch(refund: Refund, answer: alipay.AlipayRefund) -> str | None:
    if (
        answer.refund_fen is not None
        and answer.succeeded
        and answer.refund_fen != refund.amount_fen
    ):
        return f"refund amount {answer.refund_fen} != {refund.amount_fen}"
    return None


def _ask(refund: Refund, order: Order) -> tuple[RefundState, str | None]:
    """Send the refund request: its state, and why the answer is not about it (if so)."""
    payment = refund.payment
    reason = CHANNEL_REASONS.get(refund.reason, refund.reason)
    try:
        if refund.channel == Channel.WECHAT:
            answer = wechat.request_refund(
                refund.out_refund_no,
                order.out_trade_no,
                payment.provider_trade_no,
                refund.amount_fen,
                payment.amount_fen,
                reason,
            )
            return _wechat_state(answer), _wechat_mismatch(refund, order, answer)
        reply = alipay.request_refund(
            order.out_trade_no, refund.out_refund_no, refund.amount_fen, reason
        )
        return _alipay_state(reply), _alipay_mismatch(refund, reply)
    except RefundRefused as exc:
        return RefundState(RefundStatus.FAILED, accepted=False, failure_reason=exc.reason), None


def apply_refund_state(refund_id: int, state: RefundState, source: str, raw: str = "") -> str:
    """Record what the channel said and move a pending refund on; returns the outcome.

    A refund that is no longer pending keeps its state ("already_settled"): answers,
    notifies and queries may arrive in any order and more than once.
    """
    order = lock_order(get_refund(refund_id).order_id)
    refund = get_refund(refund_id)
    now = utcnow()
    if state.accepted and refund.accepted_at is None:
        refund.accepted_at = now
    if state.provider_refund_no and not refund.provider_refund_no:
        refund.provider_refund_no = state.provider_refund_no
    if refund.status != RefundStatus.PENDING:
        outcome = "already_settled"
    elif state.status == RefundStatus.SUCCEEDED:
        refund.status = RefundStatus.SUCCEEDED
        refund.succeeded_at = state.succeeded_at or now
        outcome = "succeeded"
    elif state.status == RefundStatus.FAILED:
        refund.status = RefundStatus.FAILED
        refund.failed_at = now
        refund.failure_reason = state.failure_reason[:255]
        outcome = "failed"
    else:
        outcome = "pending"
    record_event(
        refund.channel,
        source,
        outcome,
        order=order,
        out_refund_no=refund.out_refund_no,
        verified=True,
        reason=state.failure_reason,
        raw=raw,
        details=state.raw,
    )
    db.session.flush()
    return outcome


def _reject_answer(refund: Refund, order: Order, source: str, reason: str, raw: str = "") -> None:
    record_event(
        refund.channel,
        source,
        "rejected",
        order=order,
        out_refund_no=refund.out_refund_no,
        verified=True,
        reason=reason,
        raw=raw,
    )


def _query(refund: Refund, order: Order) -> tuple[RefundState, str | None] | None:
    """The channel's word on a pending refund; None if the channel has not (or not yet)
    got it, so it is sent again under its number."""
    if refund.channel == Channel.WECHAT:
        answer = wechat.query_refund(refund.out_refund_no)
        if answer is None:
            return None
        return _wechat_state(answer), _wechat_mismatch(refund, order, answer)
    reply = alipay.query_refund(order.out_trade_no, refund.out_refund_no)
    return (_alipay_state(reply), _alipay_mismatch(refund, reply)) if reply.succeeded else None


def _settle(
    refund_id: int,
    source: str,
    call: Callable[[Refund, Order], tuple[RefundState, str | None] | None],
) -> Refund:
    """Ask the channel about a pending refund (no lock held while it answers) and apply a
    consistent answer; record a failure to ask, or an answer that is not about it."""
    refund = get_refund(refund_id)
    if refund.status != RefundStatus.PENDING:
        return refund
    order = db.session.get(Order, refund.order_id)
    assert order is not None
    try:
        answer = call(refund, order)
    except ProviderError as exc:
        record_event(
            refund.channel,
            source,
            "error",
            order=order,
            out_refund_no=refund.out_refund_no,
            reason=str(exc),
        )
        return refund
    if answer is None:
        return submit_refund(refund_id)
    state, mismatch = answer
    if mismatch is not None:
        _reject_answer(refund, order, source, mismatch)
        return refund
    apply_refund_state(refund_id, state, source)
    return get_refund(refund_id)


def submit_refund(refund_id: int) -> Refund:
    """Send a pending refund to its channel and apply the answer. A request sent twice (a
    job and the poller) is one refund at the channel, by its number."""
    return _settle(refund_id, "refund", _ask)


def check_refund(refund_id: int) -> Refund:
    """Ask the channel about a pending refund; send it (again) if the channel lacks it."""
    return _settle(refund_id, "refund_query", _query)


def handle_wechat_refund_notify(headers: dict[str, str], body: str) -> Verdict:
    """A refund notify, verified exactly as a payment notify, then checked against the
    refund it names; only a consistent one moves it on, and only once."""
    try:
        answer = wechat.verify_refund_notify(headers, body)
    except NotifyRejected as exc:
        record_event(Channel.WECHAT, "refund_notify", "rejected", reason=exc.reason, raw=body)
        return Verdict(False, "rejected", exc.reason)
    found = db.session.scalar(
        sa.select(Refund).where(
            Refund.out_refund_no == answer.out_refund_no, Refund.channel == Channel.WECHAT
        )
    )
    if found is None:
        record_event(
            Channel.WECHAT,
            "refund_notify",
            "rejected",
            out_trade_no=answer.out_trade_no,
            out_refund_no=answer.out_refund_no,
            verified=True,
            reason="unknown out_refund_no",
            raw=body,
        )
        return Verdict(False, "rejected", "unknown out_refund_no")
    order = lock_order(found.order_id)
    refund = get_refund(found.id)
    mismatch = _wechat_mismatch(refund, order, answer, notify=True)
    if mismatch is not None:
        _reject_answer(refund, order, "refund_notify", mismatch, body)
        return Verdict(False, "rejected", mismatch)
    return Verdict(
        True, apply_refund_state(refund.id, _wechat_state(answer), "refund_notify", body)
    )


def pending_refund_ids(before: datetime | None = None) -> list[int]:
    query = sa.select(Refund.id).where(Refund.status == RefundStatus.PENDING)
    if before is not None:
        query = query.where(Refund.created_at <= before)
    return list(db.session.scalars(query.order_by(Refund.id)))


# --- jobs (ids only; each commits) ---------------------------------------------------


def send_refund(refund_id: int) -> None:
    """The job that sends a new refund; a pending answer is polled on the backoff schedule."""
    try:
        status = submit_refund(refund_id).status
    except NotFound:  # deleted meanwhile
        return
    db.session.commit()
    if status == RefundStatus.PENDING:
        schedule(timedelta(seconds=REFUND_POLL_DELAYS[0]), poll_refund, refund_id, 1)


def poll_refund(refund_id: int, attempt: int) -> None:
    try:
        status = check_refund(refund_id).status
    except NotFound:
        return
    db.session.commit()
    if status == RefundStatus.PENDING and attempt < len(REFUND_POLL_DELAYS):
        delay = timedelta(seconds=REFUND_POLL_DELAYS[attempt])
        schedule(delay, poll_refund, refund_id, attempt + 1)
