"""Checkout, notifies, polling and reconciliation.

A payment is accepted only after the provider's signature is verified and the
app id, merchant id, order number, amount and currency all match the order.
Then it is recorded (`payments`, one row per channel) and
`billing.services.fulfil_order` runs, which does the rest exactly once, whether a
notify, a poll or a manual refresh gets there first; money the order cannot use
(a second channel, a closed or superseded order) is refunded (`refunds`).
Everything a provider says is kept in `payment_events`, accepted or not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from webapp.billing.models import Order, OrderStatus
from webapp.billing.services import Fulfilment, fulfil_order, lock_order, order_of
from webapp.config import ConfigurationError
from webapp.core.jobs import enqueue_after_commit, schedule
from webapp.core.mail import external_url
from webapp.db import utcnow
from webapp.errors import AppError, Conflict
from webapp.extensions import db
from webapp.orgs.models import OrganizationMember
from webapp.payments import alipay, refunds, wechat
from webapp.payments.audit import Verdict, record_event
from webapp.payments.models import Channel, Payment, PaymentDisposition, ProviderOrder, RefundReason
from webapp.payments.settings import alipay_settings, wechat_settings
from webapp.payments.wechat import NotifyRejected, ProviderError

log = logging.getLogger(__name__)

# After a provider order is created, ask the provider on this schedule until paid or expired.
POLL_DELAYS = (5, 15, 30, 60, 120, 300, 600)

Trade = wechat.WechatTrade | alipay.AlipayTrade


def _description(order: Order) -> str:
    return f"智能客服 {order.plan.name} {order.months}个月"


def _payable(order: Order, now: datetime) -> None:
    if order.status != OrderStatus.PENDING:
        raise Conflict(
            _("This order is %(status)s.", status=order.status), error="order_not_payable"
        )
    if order.expires_at <= now:
        raise Conflict(_("This order has expired; create a new one."), error="order_expired")


def start_payment(actor: OrganizationMember, order_id: int, channel: Channel) -> ProviderOrder:
    """Create (or return the existing) provider order for a pending order.

    Switching channel while unpaid is allowed: each channel keeps its own
    provider order, and whichever gets paid is fulfilled.
    """
    actor.require_manager()
    order = lock_order(order_of(actor.organization_id, order_id).id)
    now = utcnow()
    _payable(order, now)
    existing = db.session.scalar(
        sa.select(ProviderOrder).where(
            ProviderOrder.order_id == order.id,
            ProviderOrder.channel == channel,
            ProviderOrder.closed_at.is_(None),
        )
    )
    if existing is not None:
        return existing
    try:
        if channel is Channel.WECHAT:
            pay_url = wechat.create_native_order(
                order.out_trade_no, _description(order), order.amount_fen, order.expires_at
            )
        else:
            pay_url = alipay.page_pay_url(
                order.out_trade_no,
                _description(order),
                order.amount_fen,
                order.expires_at,
                return_url=external_url("payments.order_return", order_id=order.id),
            )
    except ProviderError as exc:
        record_event(channel, "create", "error", order=order, reason=str(exc))
        raise AppError(
            _("The payment provider is unavailable; try again shortly."),
            error="provider_unavailable",
            status=502,
        ) from exc
    except ConfigurationError as exc:  # live mode without this channel's keys
        log.error("payment channel %s is not configured: %s", channel, exc)
        raise AppError(
            _("This payment method is not available."), error="channel_unavailable", status=503
        ) from exc
    provider_order = ProviderOrder(order_id=order.id, channel=channel, pay_url=pay_url)
    db.session.add(provider_order)
    order.channel = channel
    record_event(channel, "create", "created", order=order, verified=True, raw=pay_url)
    db.session.flush()
    if current_app.config["REDIS_URL"]:
        # A worker polls on the backoff schedule. Without Redis there is no worker: the
        # order pages ask the provider on demand instead.
        enqueue_after_commit(poll_order, order.id, 0)
    return provider_order


# --- checking what a provider says --------------------------------------------


def _mismatch_wechat(order: Order, trade: wechat.WechatTrade) -> str | None:
    settings = wechat_settings()
    if trade.mchid != settings.mchid:
        return "mchid does not match"
    if trade.appid != settings.appid:
        return "appid does not match"
    if trade.out_trade_no != order.out_trade_no:
        return "out_trade_no does not match"
    if trade.is_paid and (trade.total_fen != order.amount_fen or trade.currency != order.currency):
        return f"amount {trade.total_fen} {trade.currency} != {order.amount_fen} {order.currency}"
    return None


def _mismatch_alipay(order: Order, trade: alipay.AlipayTrade) -> str | None:
    settings = alipay_settings()
    notify = trade.notified  # notifies always carry app_id and seller_id; queries may not
    if (notify or trade.app_id) and trade.app_id != settings.appid:
        return "app_id does not match"
    if settings.seller_id and trade.seller_id and trade.seller_id != settings.seller_id:
        return "seller_id does not match"
    if notify and settings.seller_id and not trade.seller_id:
        return "seller_id missing"
    if trade.out_trade_no != order.out_trade_no:
        return "out_trade_no does not match"
    if trade.is_paid and alipay.fen(trade.total_amount) != order.amount_fen:
        return f"total_amount {trade.total_amount!r} != {alipay.yuan(order.amount_fen)}"
    return None


def _settle(order: Order, channel: str, trade: Trade) -> Verdict:
    """Act on a verified, consistent trade; the order row is locked by the caller."""
    mismatch = (
        _mismatch_wechat(order, trade)
        if isinstance(trade, wechat.WechatTrade)
        else _mismatch_alipay(order, trade)
    )
    if mismatch is not None:
        return Verdict(False, "rejected", mismatch)
    if not trade.is_paid:
        return Verdict(True, "unpaid")
    return Verdict(True, _accept_payment(order, channel, trade))


def _accept_payment(order: Order, channel: str, trade: Trade) -> str:
    """Record the money (once per channel) and fulfil the order with it, exactly once.

    Money that cannot buy anything — a second channel's payment of an order already
    paid, or a payment of an order closed or superseded meanwhile — is recorded too
    and refunded in full through its channel by a job, and the managers are told.
    """
    known = db.session.scalar(
        sa.select(Payment).where(Payment.order_id == order.id, Payment.channel == channel)
    )
    if known is not None:  # a repeated notify, or a query after one
        return (
            "already_fulfilled"
            if known.disposition == PaymentDisposition.APPLIED
            else "already_recorded"
        )
    if order.fulfilled_at is not None:
        disposition = PaymentDisposition.DUPLICATE
    else:
        fulfilment = fulfil_order(
            order.id, channel=channel, provider_trade_no=trade.provider_trade_no
        )
        disposition = (
            PaymentDisposition.APPLIED
            if fulfilment is Fulfilment.FULFILLED
            else PaymentDisposition.SUPERSEDED
        )
    payment = Payment(
        order_id=order.id,
        channel=channel,
        provider_trade_no=trade.provider_trade_no,
        amount_fen=order.amount_fen,
        disposition=disposition,
        paid_at=trade.paid_at or utcnow(),
    )
    db.session.add(payment)
    db.session.flush()
    if disposition == PaymentDisposition.APPLIED:
        enqueue_after_commit(close_other_provider_orders, order.id, channel)
        return "fulfilled"
    refunds.refund_unwanted_payment(
        order,
        payment,
        RefundReason.DUPLICATE_PAYMENT
        if disposition == PaymentDisposition.DUPLICATE
        else RefundReason.SUPERSEDED,
    )
    return str(disposition)


def _order_by_trade_no(out_trade_no: str) -> Order | None:
    return db.session.scalar(
        sa.select(Order)
        .where(Order.out_trade_no == out_trade_no)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _handle_notify(channel: str, raw: str, verify: Callable[[], Trade]) -> Verdict:
    try:
        trade = verify()
    except NotifyRejected as exc:
        record_event(channel, "notify", "rejected", reason=exc.reason, raw=raw)
        return Verdict(False, "rejected", exc.reason)
    order = _order_by_trade_no(trade.out_trade_no)
    verdict = (
        Verdict(False, "rejected", "unknown out_trade_no")
        if order is None
        else _settle(order, channel, trade)
    )
    record_event(
        channel,
        "notify",
        verdict.outcome,
        order=order,
        out_trade_no=trade.out_trade_no,
        verified=True,
        reason=verdict.reason,
        raw=raw,
        details=trade.raw,
    )
    return verdict


def handle_wechat_notify(headers: dict[str, str], body: str) -> Verdict:
    return _handle_notify(Channel.WECHAT, body, lambda: wechat.verify_notify(headers, body))


def handle_alipay_notify(form: dict[str, str]) -> Verdict:
    raw = json.dumps(form, ensure_ascii=False, sort_keys=True)
    return _handle_notify(Channel.ALIPAY, raw, lambda: alipay.verify_notify(form))


# --- asking the provider ------------------------------------------------------------


def _provider_orders(order: Order) -> list[ProviderOrder]:
    return list(
        db.session.scalars(sa.select(ProviderOrder).where(ProviderOrder.order_id == order.id))
    )


def refresh_order(order_id: int) -> Order:
    """Ask every provider the order was created at; fulfil if one says it is paid."""
    order = lock_order(order_id)
    if order.fulfilled_at is not None:
        return order
    for provider_order in _provider_orders(order):
        try:
            verdict = _query_and_settle(order, provider_order.channel)
        except ProviderError as exc:
            record_event(provider_order.channel, "query", "error", order=order, reason=str(exc))
            continue
        if verdict.outcome in ("fulfilled", "already_fulfilled"):
            break
    return order


def _query_and_settle(order: Order, channel: str) -> Verdict:
    trade: Trade | None = (
        wechat.query(order.out_trade_no)
        if channel == Channel.WECHAT
        else alipay.query(order.out_trade_no)
    )
    verdict = (
        Verdict(True, "unknown_at_provider") if trade is None else _settle(order, channel, trade)
    )
    record_event(
        channel,
        "query",
        verdict.outcome,
        order=order,
        verified=True,
        reason=verdict.reason,
        details=trade.raw if trade else None,
    )
    return verdict


def close_if_expired(order_id: int, now: datetime | None = None) -> Order:
    """Close an unpaid order whose time is up, at every provider first.

    If a provider says it was paid meanwhile, the order is fulfilled instead.
    """
    now = now or utcnow()
    order = refresh_order(order_id)
    if order.status != OrderStatus.PENDING or order.expires_at > now:
        return order
    for provider_order in _provider_orders(order):
        if provider_order.closed_at is not None:
            continue
        try:
            if provider_order.channel == Channel.WECHAT:
                wechat.close(order.out_trade_no)
            else:
                alipay.close(order.out_trade_no)
        except ProviderError as exc:
            # Already closed there, paid in the last instant, or the provider is down.
            record_event(provider_order.channel, "close", "error", order=order, reason=str(exc))
            order = refresh_order(order.id)
            if order.status != OrderStatus.PENDING or not _closed_at_provider(
                order, provider_order.channel
            ):
                return order  # fulfilled, or try again later
        provider_order.closed_at = now
        record_event(provider_order.channel, "close", "closed", order=order, verified=True)
    order.status = OrderStatus.CLOSED
    order.closed_at = now
    return order


def _closed_at_provider(order: Order, channel: str) -> bool:
    """Whether the provider already considers the trade over (closed, or never created)."""
    try:
        if channel == Channel.WECHAT:
            trade = wechat.query(order.out_trade_no)
            return trade is None or trade.trade_state in ("CLOSED", "REVOKED")
        alipay_trade = alipay.query(order.out_trade_no)
        return alipay_trade is None or alipay_trade.trade_status == "TRADE_CLOSED"
    except ProviderError:
        return False


def pending_order_ids(expired_only: bool = False, now: datetime | None = None) -> list[int]:
    query = sa.select(Order.id).where(Order.status == OrderStatus.PENDING)
    if expired_only:
        query = query.where(Order.expires_at <= (now or utcnow()))
    return list(db.session.scalars(query.order_by(Order.id)))


# --- jobs (ids only; each commits) -----------------------------------------------


def poll_order(order_id: int, attempt: int) -> None:
    """The polling job: query, and ask again later on the backoff schedule."""
    order = refresh_order(order_id)
    if order.status == OrderStatus.PENDING and order.expires_at <= utcnow():
        order = close_if_expired(order_id)
    db.session.commit()
    if order.status == OrderStatus.PENDING and attempt < len(POLL_DELAYS):
        schedule(timedelta(seconds=POLL_DELAYS[attempt]), poll_order, order_id, attempt + 1)


def close_other_provider_orders(order_id: int, paid_channel: str) -> None:
    """After one channel is paid, close the order's other provider orders: nobody pays twice.

    A channel that refuses because it was paid there too (two tabs) is asked, so that
    payment is recorded, and refunded, even if its notify never comes.
    """
    order = lock_order(order_id)
    for provider_order in _provider_orders(order):
        if provider_order.channel == paid_channel or provider_order.closed_at is not None:
            continue
        try:
            if provider_order.channel == Channel.WECHAT:
                wechat.close(order.out_trade_no)
            else:
                alipay.close(order.out_trade_no)
        except ProviderError as exc:  # paid there too, or already closed: keep the record
            record_event(provider_order.channel, "close", "error", order=order, reason=str(exc))
            try:
                _query_and_settle(order, provider_order.channel)
            except ProviderError as query_error:
                record_event(
                    provider_order.channel, "query", "error", order=order, reason=str(query_error)
                )
            continue
        provider_order.closed_at = utcnow()
        record_event(provider_order.channel, "close", "closed", order=order, verified=True)
    db.session.commit()


def reconcile_pending_orders() -> dict[str, int]:
    """Daily (and `flask payments reconcile`): query every pending order; close the expired."""
    counts = {"checked": 0, "fulfilled": 0, "closed": 0}
    for order_id in pending_order_ids():
        order = close_if_expired(order_id)
        counts["checked"] += 1
        counts["fulfilled"] += order.status == OrderStatus.PAID
        counts["closed"] += order.status == OrderStatus.CLOSED
        db.session.commit()
    current_app.logger.info("payment reconciliation: %s", counts)
    return counts
