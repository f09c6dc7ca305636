"""Taking back what an order bought (`end_order_period`, an operator's refund with
--end-plan), with time under control: the period arithmetic undoes the purchase exactly,
and where nothing of the order's plan is left the organization goes back to what the
order replaced, or to free."""

from __future__ import annotations

import pytest

from tests.billing.conftest import new_member, put_on_plan, sh, subscription_state
from webapp.billing import services
from webapp.errors import Conflict


def _paid(owner, plan: str, months: int, now):
    order = services.create_order(owner, plan, months, now)
    assert services.fulfil_order(order.id, now=now) is services.Fulfilment.FULFILLED
    return order


def test_a_renewal_is_taken_back_to_the_day(app):
    """Anchor day 31: Feb 28 + 2 months is Apr 30, and back it is Feb 28 again."""
    with app.app_context():
        owner = new_member()
        org = owner.organization_id
        put_on_plan(org, "pro", sh(2026, 1, 31, 9), sh(2026, 2, 28, 9))
        renewal = _paid(owner, "pro", 2, sh(2026, 2, 10))
        assert subscription_state(org)["end"] == sh(2026, 4, 30, 9)

        services.end_order_period(renewal.id, now=sh(2026, 2, 15))

        assert subscription_state(org) == {
            "plan": "pro",
            "start": sh(2026, 1, 31, 9),
            "end": sh(2026, 2, 28, 9),
            "cancel": False,
            "scheduled": None,
        }


def test_a_new_subscription_taken_back_returns_to_free(app):
    with app.app_context():
        owner = new_member()
        org = owner.organization_id
        order = _paid(owner, "pro", 1, sh(2026, 3, 1, 12))
        services.end_order_period(order.id, now=sh(2026, 3, 5, 12))
        state = subscription_state(org)
        assert (state["plan"], state["start"], state["end"]) == ("free", sh(2026, 3, 5, 12), None)


def test_an_upgrade_taken_back_returns_to_the_lower_plan_it_replaced(app):
    with app.app_context():
        owner = new_member()
        org = owner.organization_id
        put_on_plan(org, "pro", sh(2026, 3, 1), sh(2026, 9, 1))
        upgrade = _paid(owner, "enterprise", 1, sh(2026, 4, 1))
        assert subscription_state(org)["plan"] == "enterprise"

        services.end_order_period(upgrade.id, now=sh(2026, 4, 10))

        state = subscription_state(org)
        assert (state["plan"], state["start"], state["end"]) == (
            "pro",
            sh(2026, 4, 10),
            sh(2026, 9, 1),
        )


def test_an_upgrade_followed_by_renewals_only_loses_its_months(app):
    with app.app_context():
        owner = new_member()
        org = owner.organization_id
        put_on_plan(org, "pro", sh(2026, 3, 1), sh(2026, 9, 1))
        upgrade = _paid(owner, "enterprise", 1, sh(2026, 4, 1))
        _paid(owner, "enterprise", 2, sh(2026, 4, 5))
        assert subscription_state(org)["end"] == sh(2026, 7, 1)

        services.end_order_period(upgrade.id, now=sh(2026, 4, 10))

        state = subscription_state(org)
        assert (state["plan"], state["start"], state["end"]) == (
            "enterprise",
            sh(2026, 4, 1),
            sh(2026, 6, 1),
        )


def test_an_upgrade_whose_replaced_period_is_over_falls_back_to_free(app):
    with app.app_context():
        owner = new_member()
        org = owner.organization_id
        put_on_plan(org, "pro", sh(2026, 3, 1), sh(2026, 4, 1))
        upgrade = _paid(owner, "enterprise", 3, sh(2026, 3, 20))
        services.end_order_period(upgrade.id, now=sh(2026, 5, 1))
        state = subscription_state(org)
        assert (state["plan"], state["end"]) == ("free", None)


def test_a_prepaid_lower_plan_loses_its_scheduled_months(app):
    with app.app_context():
        owner = new_member()
        org = owner.organization_id
        put_on_plan(org, "enterprise", sh(2026, 3, 1), sh(2026, 9, 1), scheduled=("pro", 2))
        downgrade = _paid(owner, "pro", 3, sh(2026, 4, 1))
        assert subscription_state(org)["scheduled"] == ("pro", 5)

        services.end_order_period(downgrade.id, now=sh(2026, 4, 2))
        assert subscription_state(org)["scheduled"] == ("pro", 2)
        assert subscription_state(org)["plan"] == "enterprise"


def test_what_cannot_be_taken_back(app):
    with app.app_context():
        owner = new_member()
        org = owner.organization_id
        pending = services.create_order(owner, "pro", 1, sh(2026, 3, 1))
        with pytest.raises(Conflict) as never_applied:
            services.end_order_period(pending.id, now=sh(2026, 3, 2))
        assert never_applied.value.error == "order_not_applied"

        renewal_target = _paid(owner, "pro", 1, sh(2026, 3, 1))
        _paid(owner, "enterprise", 1, sh(2026, 3, 10))  # the pro months became credit
        before = subscription_state(org)
        with pytest.raises(Conflict) as gone:
            services.end_order_period(renewal_target.id, now=sh(2026, 3, 11))
        assert gone.value.error == "order_period_over"
        assert subscription_state(org) == before
