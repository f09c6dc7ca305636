"""The rules of money, with time under control (`now=`): what an order costs, the
period it buys, what fulfilment does to the subscription, and what happens when
a period ends. Each case reads the stored rows back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.billing.conftest import new_member, orders_of, put_on_plan, sh, subscription_state
from webapp.billing import services
from webapp.billing.models import Order, OrderKind, OrderStatus
from webapp.billing.services import Fulfilment
from webapp.errors import AppError, Conflict, Forbidden, NotFound
from webapp.extensions import db
from webapp.orgs.models import Role


@dataclass(frozen=True)
class Case:
    current: tuple[str, datetime, datetime] | None  # plan, period start, end; None = free
    now: datetime
    buy: tuple[str, int]
    kind: OrderKind
    list_price: int
    credit: int
    period: tuple[datetime, datetime]
    after: tuple[str, datetime, datetime]  # plan, period start, end once paid
    scheduled: tuple[str, int] | None = None


CASES = {
    "new from free, Jan 31 + 1 month = Feb 28": Case(
        current=None,
        now=sh(2026, 1, 31, 10),
        buy=("pro", 1),
        kind=OrderKind.NEW,
        list_price=19900,
        credit=0,
        period=(sh(2026, 1, 31, 10), sh(2026, 2, 28, 10)),
        after=("pro", sh(2026, 1, 31, 10), sh(2026, 2, 28, 10)),
    ),
    "new from free in a leap year: Feb 29": Case(
        current=None,
        now=sh(2028, 1, 31, 10),
        buy=("pro", 1),
        kind=OrderKind.NEW,
        list_price=19900,
        credit=0,
        period=(sh(2028, 1, 31, 10), sh(2028, 2, 29, 10)),
        after=("pro", sh(2028, 1, 31, 10), sh(2028, 2, 29, 10)),
    ),
    "a year from a leap day ends on Feb 28": Case(
        current=None,
        now=sh(2024, 2, 29, 8),
        buy=("enterprise", 12),
        kind=OrderKind.NEW,
        list_price=12 * 99900,
        credit=0,
        period=(sh(2024, 2, 29, 8), sh(2025, 2, 28, 8)),
        after=("enterprise", sh(2024, 2, 29, 8), sh(2025, 2, 28, 8)),
    ),
    "renewal extends from the period end and keeps the anchor day": Case(
        current=("pro", sh(2026, 1, 31, 10), sh(2026, 2, 28, 10)),
        now=sh(2026, 2, 20),
        buy=("pro", 1),
        kind=OrderKind.RENEWAL,
        list_price=19900,
        credit=0,
        period=(sh(2026, 2, 28, 10), sh(2026, 3, 31, 10)),
        after=("pro", sh(2026, 1, 31, 10), sh(2026, 3, 31, 10)),
    ),
    "renewal in a leap year, clamped to April 30": Case(
        current=("pro", sh(2028, 1, 31, 10), sh(2028, 2, 29, 10)),
        now=sh(2028, 2, 25),
        buy=("pro", 2),
        kind=OrderKind.RENEWAL,
        list_price=2 * 19900,
        credit=0,
        period=(sh(2028, 2, 29, 10), sh(2028, 4, 30, 10)),
        after=("pro", sh(2028, 1, 31, 10), sh(2028, 4, 30, 10)),
    ),
    "renewal across the year end": Case(
        current=("enterprise", sh(2026, 11, 30), sh(2026, 12, 30)),
        now=sh(2026, 12, 1),
        buy=("enterprise", 3),
        kind=OrderKind.RENEWAL,
        list_price=3 * 99900,
        credit=0,
        period=(sh(2026, 12, 30), sh(2027, 3, 30)),
        after=("enterprise", sh(2026, 11, 30), sh(2027, 3, 30)),
    ),
    "upgrade mid-period credits the unused half": Case(
        current=("pro", sh(2026, 4, 1), sh(2026, 5, 1)),
        now=sh(2026, 4, 16),
        buy=("enterprise", 1),
        kind=OrderKind.UPGRADE,
        list_price=99900,
        credit=9950,
        period=(sh(2026, 4, 16), sh(2026, 5, 16)),
        after=("enterprise", sh(2026, 4, 16), sh(2026, 5, 16)),
    ),
    "upgrade credit is rounded up, in the customer's favour": Case(
        current=("pro", sh(2026, 4, 1), sh(2026, 5, 1)),
        now=sh(2026, 4, 21),
        buy=("enterprise", 1),
        kind=OrderKind.UPGRADE,
        list_price=99900,
        credit=6634,  # 19900 × 10/30 = 6633.33…
        period=(sh(2026, 4, 21), sh(2026, 5, 21)),
        after=("enterprise", sh(2026, 4, 21), sh(2026, 5, 21)),
    ),
    "upgrade credits every prepaid month left": Case(
        current=("pro", sh(2026, 1, 31), sh(2026, 4, 30)),  # 3 months, 89 days
        now=sh(2026, 3, 16, 12),
        buy=("enterprise", 2),
        kind=OrderKind.UPGRADE,
        list_price=2 * 99900,
        credit=29850,  # 59700 × 44.5/89
        period=(sh(2026, 3, 16, 12), sh(2026, 5, 16, 12)),
        after=("enterprise", sh(2026, 3, 16, 12), sh(2026, 5, 16, 12)),
    ),
    "downgrade is paid now and waits for the period end": Case(
        current=("enterprise", sh(2026, 4, 1), sh(2026, 5, 1)),
        now=sh(2026, 4, 10),
        buy=("pro", 2),
        kind=OrderKind.DOWNGRADE,
        list_price=2 * 19900,
        credit=0,
        period=(sh(2026, 5, 1), sh(2026, 7, 1)),
        after=("enterprise", sh(2026, 4, 1), sh(2026, 5, 1)),
        scheduled=("pro", 2),
    ),
    "a period that ended (not yet rolled over) is bought anew": Case(
        current=("pro", sh(2026, 3, 1), sh(2026, 4, 1)),
        now=sh(2026, 4, 5),
        buy=("enterprise", 1),
        kind=OrderKind.NEW,
        list_price=99900,
        credit=0,
        period=(sh(2026, 4, 5), sh(2026, 5, 5)),
        after=("enterprise", sh(2026, 4, 5), sh(2026, 5, 5)),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_order_price_period_and_fulfilment(app, case):
    with app.app_context():
        owner = new_member()
        org_id = owner.organization_id
        if case.current is not None:
            put_on_plan(org_id, *case.current)
        before = subscription_state(org_id)

        order = services.create_order(owner, case.buy[0], case.buy[1], now=case.now)

        db.session.commit()
        stored = db.session.get(Order, order.id)
        assert stored is not None
        assert (stored.kind, stored.plan.code, stored.months) == (case.kind, *case.buy)
        assert stored.list_price_fen == case.list_price
        assert stored.credit_fen == case.credit
        assert stored.amount_fen == case.list_price - case.credit
        assert (stored.currency, stored.status) == ("CNY", OrderStatus.PENDING)
        assert stored.expires_at == case.now + timedelta(minutes=30)
        assert stored.fulfilled_at is None
        assert services.period_if_paid(stored, case.now) == case.period
        assert subscription_state(org_id) == before  # nothing changes until it is paid

        assert services.fulfil_order(order.id, now=case.now) is Fulfilment.FULFILLED
        db.session.commit()

        plan, start, end = case.after
        assert subscription_state(org_id) == {
            "plan": plan,
            "start": start,
            "end": end,
            "cancel": False,
            "scheduled": case.scheduled,
        }
        paid = db.session.get(Order, order.id)
        assert paid is not None
        assert (paid.status, paid.paid_at, paid.fulfilled_at) == ("paid", case.now, case.now)
        assert services.period_if_paid(paid, case.now) is None


def test_fulfilling_twice_changes_nothing_the_second_time(app):
    now = sh(2026, 2, 20)
    with app.app_context():
        owner = new_member()
        put_on_plan(owner.organization_id, "pro", sh(2026, 1, 31, 10), sh(2026, 2, 28, 10))
        order = services.create_order(owner, "pro", 1, now=now)
        assert services.fulfil_order(order.id, now=now, channel="wechat") is Fulfilment.FULFILLED
        db.session.commit()
        once = subscription_state(owner.organization_id)

        later = now + timedelta(minutes=5)
        assert (
            services.fulfil_order(order.id, now=later, channel="alipay")
            is Fulfilment.ALREADY_FULFILLED
        )
        db.session.commit()

        assert subscription_state(owner.organization_id) == once
        assert once["end"] == sh(2026, 3, 31, 10)
        paid = db.session.get(Order, order.id)
        assert paid is not None
        assert (paid.status, paid.channel, paid.paid_at, paid.fulfilled_at) == (
            "paid",
            "wechat",
            now,
            now,
        )


def test_fulfil_rereads_an_order_the_session_already_holds(app):
    """A handler that loaded the order (to check the amount) must not fulfil it again
    from its stale copy after another transaction fulfilled it."""
    now = sh(2026, 2, 20)
    with app.app_context():
        owner = new_member()
        put_on_plan(owner.organization_id, "pro", sh(2026, 1, 31, 10), sh(2026, 2, 28, 10))
        order = services.create_order(owner, "pro", 1, now=now)
        db.session.commit()
        stale = db.session.get(Order, order.id)
        assert stale is not None and stale.fulfilled_at is None
        # Another transaction fulfils it; this session's copy is left as it was.
        db.session.execute(
            sa.update(Order)
            .where(Order.id == order.id)
            .values(fulfilled_at=now, status="paid")
            .execution_options(synchronize_session=False)
        )
        assert stale.fulfilled_at is None

        assert services.fulfil_order(order.id, now=now) is Fulfilment.ALREADY_FULFILLED
        assert subscription_state(owner.organization_id)["end"] == sh(2026, 2, 28, 10)


def test_downgrade_takes_effect_when_the_period_ends(app):
    with app.app_context():
        owner = new_member()
        org_id = owner.organization_id
        put_on_plan(org_id, "enterprise", sh(2026, 4, 1), sh(2026, 5, 1))
        order = services.create_order(owner, "pro", 2, now=sh(2026, 4, 10))
        services.fulfil_order(order.id, now=sh(2026, 4, 10))
        db.session.commit()

        assert services.end_finished_periods(now=sh(2026, 5, 1) - timedelta(seconds=1)) == 0
        assert subscription_state(org_id)["plan"] == "enterprise"

        assert services.end_finished_periods(now=sh(2026, 5, 1)) == 1
        db.session.commit()
        scheduled_start = subscription_state(org_id)
        assert scheduled_start == {
            "plan": "pro",
            "start": sh(2026, 5, 1),
            "end": sh(2026, 7, 1),
            "cancel": False,
            "scheduled": None,
        }
        assert services.end_finished_periods(now=sh(2026, 5, 1)) == 0
        assert subscription_state(org_id) == scheduled_start

        assert services.end_finished_periods(now=sh(2026, 7, 1)) == 1
        db.session.commit()
        assert subscription_state(org_id) == {
            "plan": "free",
            "start": sh(2026, 7, 1),
            "end": None,
            "cancel": False,
            "scheduled": None,
        }


def test_cancel_falls_back_to_free_at_period_end(app):
    with app.app_context():
        owner = new_member()
        org_id = owner.organization_id
        put_on_plan(org_id, "pro", sh(2026, 4, 1), sh(2026, 5, 1))

        services.cancel(owner, now=sh(2026, 4, 10))
        db.session.commit()
        assert subscription_state(org_id)["cancel"] is True
        assert subscription_state(org_id)["plan"] == "pro"  # still paid for

        assert services.end_finished_periods(now=sh(2026, 4, 30, 23, 59)) == 0
        assert services.end_finished_periods(now=sh(2026, 5, 1, 0, 1)) == 1
        db.session.commit()
        assert subscription_state(org_id) == {
            "plan": "free",
            "start": sh(2026, 5, 1),
            "end": None,
            "cancel": False,
            "scheduled": None,
        }


def test_expiry_without_renewal_falls_back_to_free(app):
    with app.app_context():
        owner = new_member()
        org_id = owner.organization_id
        put_on_plan(org_id, "enterprise", sh(2026, 1, 31), sh(2026, 2, 28))

        assert services.end_finished_periods(now=sh(2026, 3, 15)) == 1
        db.session.commit()

        state = subscription_state(org_id)
        assert (state["plan"], state["start"], state["end"]) == ("free", sh(2026, 2, 28), None)
        assert services.plan_of(org_id).code == "free"


def test_rollover_catches_up_when_the_worker_was_down(app):
    with app.app_context():
        owner = new_member()
        org_id = owner.organization_id
        put_on_plan(org_id, "enterprise", sh(2026, 3, 1), sh(2026, 4, 1), scheduled=("pro", 1))

        assert services.end_finished_periods(now=sh(2026, 6, 1)) == 1
        db.session.commit()

        state = subscription_state(org_id)
        assert (state["plan"], state["start"], state["end"]) == ("free", sh(2026, 5, 1), None)
        assert state["scheduled"] is None


def test_cancel_and_resume_rules(app):
    now = sh(2026, 4, 10)
    with app.app_context():
        owner = new_member()
        org_id = owner.organization_id
        with pytest.raises(Conflict) as free_cancel:
            services.cancel(owner, now=now)
        assert free_cancel.value.error == "nothing_to_cancel"

        put_on_plan(org_id, "pro", sh(2026, 4, 1), sh(2026, 5, 1))
        with pytest.raises(Conflict) as early_resume:
            services.resume(owner, now=now)
        assert early_resume.value.error == "nothing_to_resume"

        services.cancel(owner, now=now)
        services.resume(owner, now=now)
        assert subscription_state(org_id)["cancel"] is False

        services.cancel(owner, now=now)
        # Buying again (a renewal here) undoes the cancellation.
        order = services.create_order(owner, "pro", 1, now=now)
        services.fulfil_order(order.id, now=now)
        assert subscription_state(org_id) == {
            "plan": "pro",
            "start": sh(2026, 4, 1),
            "end": sh(2026, 6, 1),
            "cancel": False,
            "scheduled": None,
        }

        with pytest.raises(Conflict) as late_cancel:
            services.cancel(owner, now=sh(2026, 6, 1))  # the period is over
        assert late_cancel.value.error == "nothing_to_cancel"


def test_members_cannot_order_cancel_or_resume(app):
    now = sh(2026, 4, 10)
    with app.app_context():
        owner = new_member()
        org_id = owner.organization_id
        put_on_plan(org_id, "pro", sh(2026, 4, 1), sh(2026, 5, 1), cancel=True)
        member = new_member(org_id, Role.MEMBER)
        admin = new_member(org_id, Role.ADMIN)

        for action in (
            lambda: services.create_order(member, "enterprise", 1, now=now),
            lambda: services.cancel(member, now=now),
            lambda: services.resume(member, now=now),
        ):
            with pytest.raises(Forbidden):
                action()
        assert orders_of(org_id) == []
        assert subscription_state(org_id)["cancel"] is True

        services.resume(admin, now=now)  # admins may
        assert subscription_state(org_id)["cancel"] is False


@pytest.mark.parametrize(
    ("plan", "months", "status", "error"),
    [
        ("pro", 0, 422, "validation_error"),
        ("pro", 13, 422, "validation_error"),
        ("free", 1, 422, "plan_not_purchasable"),
        ("platinum", 1, 404, "plan_not_found"),
    ],
)
def test_orders_that_cannot_be_made(app, plan, months, status, error):
    with app.app_context():
        owner = new_member()
        with pytest.raises(AppError) as refused:
            services.create_order(owner, plan, months, now=sh(2026, 4, 1))
        assert (refused.value.status, refused.value.error) == (status, error)
        assert orders_of(owner.organization_id) == []


def test_grant_for_an_unknown_organization_is_404(app):
    with app.app_context():
        with pytest.raises(NotFound):
            services.grant_plan(10**9, "pro", 1)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


def test_an_upgrade_fully_covered_by_credit_is_applied_without_payment(app, make_user):
    """Enterprise for 1 month right after 12 months of Pro: the credit covers it all."""
    from webapp.billing import services as billing
    from webapp.extensions import db
    from webapp.orgs.services import create_organization

    with app.app_context():
        owner = db.session.merge(make_user())
        organization = create_organization(owner, "全额抵扣")
        membership = organization.members[0]
        paid = billing.create_order(membership, "pro", 12)
        billing.fulfil_order(paid.id)
        upgrade = billing.create_order(membership, "enterprise", 1)
        assert upgrade.list_price_fen == 99900
        assert upgrade.credit_fen == 99900
        assert upgrade.amount_fen == 0
        assert upgrade.status == "paid"
        assert upgrade.channel == "credit"
        assert billing.subscription_of(organization.id).plan.code == "enterprise"


def test_limits_follow_the_period_end_before_the_job_runs(app):
    """No worker yet (or none at all, as under `make run`): once a paid period is over, the
    plan in force is what follows it, though the row still says the old plan."""
    from webapp.usage.models import UsageKind
    from webapp.usage.services import record_usage

    with app.app_context():
        owner = new_member()
        organization_id = owner.organization_id
        put_on_plan(organization_id, "pro", sh(2026, 9, 1), sh(2026, 10, 1))
        assert services.subscription_of(organization_id).plan.code == "pro"
        assert services.plan_of(organization_id, sh(2026, 9, 15)).code == "pro"
        assert services.plan_of(organization_id, sh(2026, 10, 2)).code == "free"
        with pytest.raises(Forbidden) as refused:  # image messages are a Pro feature
            record_usage(organization_id, UsageKind.IMAGE, now=sh(2026, 10, 2))
        assert refused.value.error == "feature_not_in_plan"
        assert record_usage(organization_id, UsageKind.IMAGE, now=sh(2026, 9, 15)).limit == 50000
        assert record_usage(organization_id, UsageKind.MESSAGE, now=sh(2026, 10, 2)).limit == 1000


def test_a_credit_is_spent_once_even_when_two_credited_orders_are_paid(app, caplog):
    """Two upgrades priced against the same Pro period, both paid: the first is applied;
    the second is superseded: not applied, closed (payments refunds its money)."""
    with app.app_context():
        owner = new_member()
        organization_id = owner.organization_id
        put_on_plan(organization_id, "pro", sh(2026, 9, 1), sh(2027, 9, 1))
        now = sh(2026, 10, 1)
        first = services.create_order(owner, "enterprise", 12, now)
        second = services.create_order(owner, "enterprise", 12, now)
        assert first.credit_fen == second.credit_fen > 0
        assert services.fulfil_order(first.id, now=now) is Fulfilment.FULFILLED
        after_first = subscription_state(organization_id)
        assert services.fulfil_order(second.id, now=now) is Fulfilment.SUPERSEDED
        assert subscription_state(organization_id) == after_first
        superseded = db.session.get(Order, second.id)
        assert (superseded.status, superseded.fulfilled_at) == (OrderStatus.CLOSED, None)
        assert second.out_trade_no in caplog.text
        # Asked again (another channel's payment): still superseded, still nothing applied.
        assert services.fulfil_order(second.id, now=now) is Fulfilment.SUPERSEDED
        assert subscription_state(organization_id) == after_first


def test_parallel_zero_amount_upgrades_apply_the_credit_once(app):
    """Quotes are serialised by a lock: after a ¥0 upgrade the next quote is a renewal
    at full price, not a second free upgrade."""
    with app.app_context():
        owner = new_member()
        organization_id = owner.organization_id
        put_on_plan(organization_id, "pro", sh(2026, 9, 1), sh(2027, 9, 1))
        now = sh(2026, 9, 2)
        free = services.create_order(owner, "enterprise", 1, now)
        assert (free.amount_fen, free.status) == (0, OrderStatus.PAID)
        next_one = services.create_order(owner, "enterprise", 1, now)
        assert next_one.kind == OrderKind.RENEWAL
        assert (next_one.amount_fen, next_one.status) == (99900, OrderStatus.PENDING)
