"""Plans, subscriptions and orders: the rules of money.

- Every amount is integer fen, computed here; clients only name a plan and months.
- Paid periods are whole calendar months (Asia/Shanghai), prepaid.
- Same plan: the period is extended. Higher plan: starts now, the unused part of
  the current period is credited (rounded up to the fen). Lower plan: paid now,
  starts when the current period ends. Free is never bought: cancelling means
  the organization falls back to free when the paid period ends.
- `fulfil_order` is how an order changes a subscription: exactly once, under row
  locks, in the caller's transaction. `end_order_period` takes an order's months
  back when an operator refunds it and says so; a refund alone changes nothing.
"""

from __future__ import annotations

import enum
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from webapp.billing.models import (
    Order,
    OrderKind,
    OrderStatus,
    Plan,
    SentNotice,
    Subscription,
)
from webapp.billing.periods import SHANGHAI, add_months, unused_credit_fen
from webapp.core.mail import external_url, send_mail
from webapp.core.sql import upsert_insert
from webapp.db import utcnow
from webapp.errors import AppError, Conflict, NotFound
from webapp.extensions import db
from webapp.orgs.models import Organization, OrganizationMember

log = logging.getLogger(__name__)

FREE_PLAN_CODE = "free"
MAX_MONTHS_PER_ORDER = 12


def public_plans() -> list[Plan]:
    return list(db.session.scalars(sa.select(Plan).where(Plan.is_public).order_by(Plan.sort_order)))


def plan_by_code(code: str) -> Plan:
    plan = db.session.scalar(sa.select(Plan).where(Plan.code == code))
    if plan is None:
        raise NotFound(_("No such plan: %(code)s.", code=code), error="plan_not_found")
    return plan


def start_free_subscription(organization: Organization) -> Subscription:
    subscription = Subscription(
        organization=organization,
        plan=plan_by_code(FREE_PLAN_CODE),
        current_period_start=utcnow(),
        current_period_end=None,
    )
    db.session.add(subscription)
    return subscription


def subscription_of(organization_id: int, *, lock: bool = False) -> Subscription:
    query = sa.select(Subscription).where(Subscription.organization_id == organization_id)
    if lock:  # re-read under the lock: the session may hold a stale copy of the row
        query = query.with_for_update().execution_options(populate_existing=True)
    subscription = db.session.scalar(query)
    if subscription is None:  # every organization gets one when it is created
        raise NotFound(_("Organization not found."))
    return subscription


def plan_of(organization_id: int, now: datetime | None = None) -> Plan:
    """The plan in force for an organization (what limits and features follow)."""
    return plan_in_force(subscription_of(organization_id), now or utcnow())


def plan_in_force(subscription: Subscription, now: datetime) -> Plan:
    """The subscription's plan, or what follows it once its paid period is over.

    `end_finished_periods` (a worker job) writes the change down; until it runs (or
    where no worker runs, as under `make run`) limits already follow the period end.
    """
    end = subscription.current_period_end
    if end is None or end > now:
        return subscription.plan
    scheduled, months = subscription.scheduled_plan, subscription.scheduled_months
    if scheduled is not None and months and add_months(end, months) > now:
        return scheduled
    return plan_by_code(FREE_PLAN_CODE)


def has_active_paid_period(subscription: Subscription, now: datetime) -> bool:
    end = subscription.current_period_end
    return end is not None and end > now and subscription.plan.price_fen > 0


def _anchor_day(subscription: Subscription) -> int:
    return subscription.current_period_start.astimezone(SHANGHAI).day


def _months_in_period(subscription: Subscription) -> int:
    start, end = subscription.current_period_start, subscription.current_period_end
    assert end is not None
    months = 0
    while add_months(start, months, _anchor_day(subscription)) < end:
        months += 1
    return max(months, 1)


# --- quotes and orders ------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """What buying `months` of `plan` costs now, and the period it buys."""

    kind: OrderKind
    plan: Plan
    months: int
    list_price_fen: int
    credit_fen: int
    amount_fen: int
    starts_at: datetime
    ends_at: datetime


def quote(subscription: Subscription, plan: Plan, months: int, now: datetime) -> Quote:
    if plan.price_fen <= 0:
        raise AppError(
            _("The free plan is not bought: cancel the paid plan to return to it."),
            error="plan_not_purchasable",
            status=422,
        )
    if not 1 <= months <= MAX_MONTHS_PER_ORDER:
        raise AppError(
            _("Buy from 1 to %(max)d months.", max=MAX_MONTHS_PER_ORDER),
            error="validation_error",
            status=422,
        )
    list_price = plan.price_fen * months
    current = subscription.plan
    end = subscription.current_period_end
    if not has_active_paid_period(subscription, now) or end is None:
        kind, credit, starts_at = OrderKind.NEW, 0, now
    elif plan.id == current.id:
        kind, credit, starts_at = OrderKind.RENEWAL, 0, end
    elif plan.sort_order > current.sort_order:
        paid_value = current.price_fen * _months_in_period(subscription)
        credit = unused_credit_fen(paid_value, subscription.current_period_start, end, now)
        kind, credit, starts_at = OrderKind.UPGRADE, min(credit, list_price), now
    else:
        kind, credit, starts_at = OrderKind.DOWNGRADE, 0, end
    anchor = _anchor_day(subscription) if kind is OrderKind.RENEWAL else None
    return Quote(
        kind=kind,
        plan=plan,
        months=months,
        list_price_fen=list_price,
        credit_fen=credit,
        amount_fen=list_price - credit,
        starts_at=starts_at,
        ends_at=add_months(starts_at, months, anchor),
    )


def new_out_trade_no(now: datetime) -> str:
    """26 characters, unique, valid for WeChat Pay and Alipay (letters and digits, <= 32)."""
    return f"{now.astimezone(SHANGHAI):%Y%m%d%H%M%S}{secrets.randbelow(10**12):012d}"


def create_order(
    actor: OrganizationMember, plan_code: str, months: int, now: datetime | None = None
) -> Order:
    """A pending order for a plan, priced by the server (owners and admins only)."""
    actor.require_manager()
    now = now or utcnow()
    plan = plan_by_code(plan_code)
    if not plan.is_public:
        raise NotFound(_("No such plan: %(code)s.", code=plan_code), error="plan_not_found")
    # Locked: quotes for one organization are made one at a time, so a credit is priced
    # against the subscription as it really is (and a ¥0 order is applied before the next).
    priced = quote(subscription_of(actor.organization_id, lock=True), plan, months, now)
    order = Order(
        organization_id=actor.organization_id,
        plan=plan,
        kind=priced.kind,
        months=months,
        list_price_fen=priced.list_price_fen,
        credit_fen=priced.credit_fen,
        amount_fen=priced.amount_fen,
        currency="CNY",
        status=OrderStatus.PENDING,
        out_trade_no=new_out_trade_no(now),
        created_by_id=actor.user_id,
        created_at=now,  # the moment the credit was priced at (see _credit_still_applies)
        expires_at=now + timedelta(minutes=current_app.config["ORDER_TTL_MINUTES"]),
    )
    db.session.add(order)
    db.session.flush()
    if order.amount_fen == 0:
        # Fully covered by the credit: nothing to charge (providers refuse ¥0), apply it now.
        fulfil_order(order.id, now=now, channel="credit")
    return order


def period_if_paid(order: Order, now: datetime | None = None) -> tuple[datetime, datetime] | None:
    """The period a pending order buys if it is paid `now`; None once it is paid or closed."""
    if order.status != OrderStatus.PENDING or order.kind == OrderKind.GRANT:
        return None
    subscription = subscription_of(order.organization_id)
    priced = quote(subscription, order.plan, order.months, now or utcnow())
    return priced.starts_at, priced.ends_at


def order_of(organization_id: int, order_id: int) -> Order:
    order = db.session.scalar(
        sa.select(Order).where(Order.id == order_id, Order.organization_id == organization_id)
    )
    if order is None:
        raise NotFound(_("Order not found."), error="order_not_found")
    return order


def orders_of(organization_id: int) -> sa.Select[Order]:
    return (
        sa.select(Order)
        .where(Order.organization_id == organization_id)
        .order_by(Order.created_at.desc(), Order.id.desc())
    )


def lock_order(order_id: int) -> Order:
    """The order, its row locked until the transaction ends (404 if there is none).

    Re-read under the lock: a copy loaded earlier in this session (to check the
    amount, say) may be stale.
    """
    order = db.session.scalar(
        sa.select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise NotFound(_("Order not found."), error="order_not_found")
    return order


class Fulfilment(enum.StrEnum):
    FULFILLED = "fulfilled"  # applied now
    ALREADY_FULFILLED = "already_fulfilled"  # applied before: nothing changed
    # Paid, but not applicable: the order was closed, or its credit was for a period that
    # has changed since. Nothing is applied; the order is (or stays) closed and the
    # payment is refunded (payments).
    SUPERSEDED = "superseded"


def fulfil_order(
    order_id: int,
    *,
    now: datetime | None = None,
    channel: str | None = None,
    provider_trade_no: str | None = None,
) -> Fulfilment:
    """Mark a paid order paid and change the subscription, exactly once.

    Safe to call from several processes at once and as often as notifies,
    polls and retries arrive: the order row is locked, and an order that is
    already fulfilled is left alone. The caller commits.
    """
    order = lock_order(order_id)
    if order.fulfilled_at is not None:
        return Fulfilment.ALREADY_FULFILLED
    if order.status == OrderStatus.CLOSED:
        return Fulfilment.SUPERSEDED
    now = now or utcnow()
    subscription = subscription_of(order.organization_id, lock=True)
    if not _credit_still_applies(subscription, order):
        # The credit it was priced with was for a period that has changed since (another
        # order came first): applying it would spend that credit twice.
        log.warning(
            "order %s paid but superseded: its credit of %s fen no longer matches the subscription",
            order.out_trade_no,
            order.credit_fen,
        )
        order.status = OrderStatus.CLOSED
        order.closed_at = now
        db.session.flush()
        return Fulfilment.SUPERSEDED
    _apply_order(subscription, order, now)
    order.status = OrderStatus.PAID
    order.paid_at = order.paid_at or now
    order.fulfilled_at = now
    order.closed_at = None
    order.channel = channel or order.channel
    order.provider_trade_no = provider_trade_no or order.provider_trade_no
    db.session.flush()
    return Fulfilment.FULFILLED


def _credit_still_applies(subscription: Subscription, order: Order) -> bool:
    """An order without credit is worth its list price in any state; one with credit only
    against the subscription it was priced on (re-pricing it then gives the same)."""
    if order.credit_fen == 0:
        return True
    priced = quote(subscription, order.plan, order.months, order.created_at)
    return priced.kind == order.kind and priced.credit_fen == order.credit_fen


def _apply_order(subscription: Subscription, order: Order, now: datetime) -> None:
    active = has_active_paid_period(subscription, now)
    end = subscription.current_period_end
    if active and end is not None and order.plan.sort_order < subscription.plan.sort_order:
        # A lower plan, prepaid, starts when the current period ends.
        months = order.months
        if subscription.scheduled_months:
            months += subscription.scheduled_months
        subscription.scheduled_plan_id = order.plan_id
        subscription.scheduled_months = months
    elif active and end is not None and order.plan_id == subscription.plan_id:
        subscription.current_period_end = add_months(end, order.months, _anchor_day(subscription))
    else:
        if active and end is not None:  # an upgrade: remember what it replaced
            order.replaced_plan_id = subscription.plan_id
            order.replaced_period_end = end
        subscription.plan_id = order.plan_id
        subscription.current_period_start = now
        subscription.current_period_end = add_months(now, order.months)
    subscription.cancel_at_period_end = False
    db.session.expire(subscription, ["plan", "scheduled_plan"])


def end_order_period(order_id: int, now: datetime | None = None) -> Subscription:
    """Take back the months an applied order bought (an operator's refund with --end-plan).

    The only other way than `fulfil_order` that an order changes a subscription. A
    prepaid lower plan loses the order's months from its scheduled months. Otherwise
    the current period of the order's plan is shortened by the order's months (with
    the period's anchor day, so the arithmetic undoes the purchase exactly); if nothing
    of it is left, the organization goes back to the plan the order replaced (an
    upgrade's lower plan, until the end that plan was paid for) or, if that is over
    too, to a prepaid scheduled plan or free, as at any period end.
    """
    now = now or utcnow()
    order = lock_order(order_id)
    if order.fulfilled_at is None:
        raise Conflict(_("This order was never applied."), error="order_not_applied")
    subscription = subscription_of(order.organization_id, lock=True)
    months = order.months
    end = subscription.current_period_end
    scheduled = subscription.scheduled_months or 0
    if (
        order.kind == OrderKind.DOWNGRADE
        and subscription.scheduled_plan_id == order.plan_id
        and scheduled >= months
    ):
        subscription.scheduled_months = (scheduled - months) or None
        if not subscription.scheduled_months:
            subscription.scheduled_plan_id = None
    elif subscription.plan_id == order.plan_id and end is not None and end > now:
        shortened = add_months(end, -months, _anchor_day(subscription))
        previous_end = order.replaced_period_end
        if shortened > now:
            subscription.current_period_end = shortened
        elif order.replaced_plan_id is not None and previous_end is not None and previous_end > now:
            subscription.plan_id = order.replaced_plan_id
            subscription.current_period_start = now
            subscription.current_period_end = previous_end
        else:
            subscription.current_period_end = now
            _roll_over(subscription, now)
    else:
        raise Conflict(
            _(
                "The organization is no longer in the period this order bought; "
                "change its plan by hand."
            ),
            error="order_period_over",
        )
    db.session.expire(subscription, ["plan", "scheduled_plan"])
    db.session.flush()
    return subscription


def grant_plan(organization_id: int, plan_code: str, months: int) -> Order:
    """An operator's gift: a zero-amount order, fulfilled at once (kept for the audit trail)."""
    now = utcnow()
    subscription_of(organization_id)  # 404 for an unknown organization
    plan = plan_by_code(plan_code)
    if plan.price_fen <= 0 or not 1 <= months <= 120:
        raise AppError(_("Grant a paid plan for 1 to 120 months."), error="validation_error")
    order = Order(
        organization_id=organization_id,
        plan=plan,
        kind=OrderKind.GRANT,
        months=months,
        list_price_fen=0,
        credit_fen=0,
        amount_fen=0,
        status=OrderStatus.PENDING,
        channel="manual",
        out_trade_no=new_out_trade_no(now),
        expires_at=now,
    )
    db.session.add(order)
    db.session.flush()
    fulfil_order(order.id, now=now)
    return order


# --- cancel, resume, period end --------------------------------------------


def cancel(actor: OrganizationMember, now: datetime | None = None) -> Subscription:
    """Stop at the end of the paid period; the organization then falls back to free."""
    actor.require_manager()
    subscription = subscription_of(actor.organization_id, lock=True)
    if not has_active_paid_period(subscription, now or utcnow()):
        raise Conflict(_("There is no paid period to cancel."), error="nothing_to_cancel")
    subscription.cancel_at_period_end = True
    return subscription


def resume(actor: OrganizationMember, now: datetime | None = None) -> Subscription:
    actor.require_manager()
    subscription = subscription_of(actor.organization_id, lock=True)
    if not subscription.cancel_at_period_end or not has_active_paid_period(
        subscription, now or utcnow()
    ):
        raise Conflict(_("There is no cancellation to undo."), error="nothing_to_resume")
    subscription.cancel_at_period_end = False
    return subscription


def end_finished_periods(now: datetime | None = None) -> int:
    """Start prepaid scheduled plans, or fall back to free, where a paid period has ended.

    Idempotent: a second run finds nothing left to do. Rows another worker holds
    are skipped and picked up next time.
    """
    now = now or utcnow()
    due = db.session.scalars(
        sa.select(Subscription)
        .where(Subscription.current_period_end <= now)
        .with_for_update(skip_locked=True)
    ).all()
    for subscription in due:
        _roll_over(subscription, now)
    db.session.flush()
    return len(due)


def _roll_over(subscription: Subscription, now: datetime) -> None:
    end = subscription.current_period_end
    # Loop: a scheduled period may itself be over already (worker down for a month).
    while end is not None and end <= now:
        if subscription.scheduled_plan_id is not None and subscription.scheduled_months:
            subscription.plan_id = subscription.scheduled_plan_id
            subscription.current_period_end = add_months(end, subscription.scheduled_months)
            subscription.scheduled_plan_id = None
            subscription.scheduled_months = None
        else:
            subscription.plan_id = plan_by_code(FREE_PLAN_CODE).id
            subscription.current_period_end = None
        subscription.current_period_start = end
        end = subscription.current_period_end
    subscription.cancel_at_period_end = False
    db.session.expire(subscription, ["plan", "scheduled_plan"])


def subscriptions_ending(within: timedelta, now: datetime | None = None) -> list[Subscription]:
    now = now or utcnow()
    return list(
        db.session.scalars(
            sa.select(Subscription)
            .where(
                Subscription.current_period_end > now,
                Subscription.current_period_end <= now + within,
            )
            .order_by(Subscription.current_period_end)
        )
    )


def claim_notice(organization_id: int, kind: str, period_key: str) -> bool:
    """Record that a notice goes out; False if it already went (at most once, even racing)."""
    inserted = db.session.scalar(
        upsert_insert(SentNotice)
        .values(organization_id=organization_id, kind=kind, period_key=period_key, sent_at=utcnow())
        .on_conflict_do_nothing(index_elements=["organization_id", "kind", "period_key"])
        .returning(SentNotice.id)
    )
    return inserted is not None


REMINDER_WINDOWS = (("renewal_1d", timedelta(days=1)), ("renewal_7d", timedelta(days=7)))


def send_renewal_reminders(now: datetime | None = None) -> int:
    """Mail owners and admins 7 days and 1 day before a paid period ends, once each.

    Cancelled subscriptions get no reminder: they chose to end.
    """
    now = now or utcnow()
    sent = 0
    for subscription in subscriptions_ending(REMINDER_WINDOWS[-1][1], now):
        end = subscription.current_period_end
        if end is None or subscription.cancel_at_period_end:
            continue
        kind = next(name for name, window in REMINDER_WINDOWS if end - now <= window)
        if not claim_notice(subscription.organization_id, kind, end.isoformat()):
            continue
        local_end = end.astimezone(SHANGHAI)
        for email in db.session.scalars(
            OrganizationMember.manager_emails(subscription.organization_id)
        ):
            send_mail(
                email,
                _(
                    "Your %(plan)s plan ends on %(date)s",
                    plan=subscription.plan.display_name,
                    date=f"{local_end:%Y-%m-%d %H:%M}",
                ),
                _(
                    "The paid period of %(org)s ends on %(date)s (Beijing time). "
                    "Renew in the portal to keep your limits; otherwise the organization "
                    "moves to the free plan.\n%(link)s",
                    org=subscription.organization.name,
                    date=f"{local_end:%Y-%m-%d %H:%M}",
                    link=external_url("billing.plans"),
                ),
            )
        sent += 1
    return sent
