"""Fulfilment happens exactly once, however many notifies, polls and queries race for it.

This test commits for real (`committed_db`): ten threads, each with its own app
context, session and database connection, fulfil the same order at once.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from tests.billing.conftest import new_member, put_on_plan, subscription_state
from webapp.billing import services
from webapp.billing.models import Order
from webapp.billing.periods import SHANGHAI, add_months
from webapp.db import utcnow
from webapp.extensions import db

THREADS = 10


def test_concurrent_fulfilment_applies_the_order_once(app, committed_db):
    now = utcnow()
    start, end = now - timedelta(days=10), add_months(now - timedelta(days=10), 1)
    with app.app_context():
        owner = new_member()
        org_id = owner.organization_id
        put_on_plan(org_id, "pro", start, end)
        order_id = services.create_order(owner, "pro", 1).id
        db.session.commit()
        assert db.session.get(Order, order_id).kind == "renewal"

    barrier = threading.Barrier(THREADS)
    results: list[services.Fulfilment] = []
    errors: list[BaseException] = []

    def notify() -> None:
        try:
            with app.app_context():
                # Like a payment handler: read the order (to check the amount) first.
                order = db.session.get(Order, order_id)
                assert order is not None and order.fulfilled_at is None
                barrier.wait(timeout=30)
                results.append(services.fulfil_order(order_id, channel="wechat"))
                db.session.commit()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=notify) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(results) == [services.Fulfilment.ALREADY_FULFILLED] * (THREADS - 1) + [
        services.Fulfilment.FULFILLED
    ]
    with app.app_context():
        anchor = start.astimezone(SHANGHAI).day
        assert subscription_state(org_id) == {
            "plan": "pro",
            "start": start,
            "end": add_months(end, 1, anchor),  # extended once, not ten times
            "cancel": False,
            "scheduled": None,
        }
        order = db.session.get(Order, order_id)
        assert order is not None
        assert (order.status, order.channel) == ("paid", "wechat")
        assert order.fulfilled_at is not None
        paid = db.session.scalar(
            sa.select(sa.func.count()).select_from(Order).where(Order.organization_id == org_id)
        )
        assert paid == 1
