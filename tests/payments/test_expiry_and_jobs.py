"""Unpaid orders expire: `close_expired_orders` closes them at the provider and here,
unless the provider says they were paid meanwhile (then they are fulfilled). The
daily reconciliation and `flask payments reconcile` do the same for every pending order.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from redis import Redis
from rq.job import Job
from rq.registry import ScheduledJobRegistry

import worker
from tests.payments.support import Shop, shop_fixture  # noqa: F401
from webapp.billing.models import Order
from webapp.db import utcnow
from webapp.extensions import db
from webapp.payments import services, tasks, wechat
from webapp.payments.sandbox import control


def expire(shop: Shop, order_id: int, minutes: int = 1) -> None:
    """The order's time is up (here; the provider's own expiry may be later)."""
    with shop.app.app_context():
        order = db.session.get(Order, order_id)
        assert order is not None
        order.expires_at = utcnow() - timedelta(minutes=minutes)
        db.session.commit()


def provider_state(shop: Shop, out_trade_no: str) -> str | None:
    with shop.app.app_context():
        trade: Any = control.trade(out_trade_no)
    if trade is None:
        return None
    return str(getattr(trade, "trade_state", None) or trade.trade_status)


def test_an_expired_wechat_order_is_closed_there_and_here(shop: Shop) -> None:
    buyer = shop.buyer()
    created = buyer.checkout("wechat")
    order_id = created["order_id"]
    untouched = buyer.order("enterprise", 1)  # another, still in time
    expire(shop, order_id)

    counts = shop.run(tasks.close_expired_orders)

    assert counts["closed"] >= 1 and counts["failed"] == 0
    state = shop.order(order_id)
    assert (state["status"], state["fulfilled"]) == ("closed", False)
    assert provider_state(shop, created["out_trade_no"]) == "CLOSED"
    assert shop.provider_orders(order_id)["wechat"] is not None
    closes = shop.events(created["out_trade_no"], "close")
    assert [(e["outcome"], e["verified"]) for e in closes] == [("closed", True)]
    assert shop.order(untouched["id"])["status"] == "pending"
    assert shop.subscription(buyer.organization_id)["plan"] == "free"

    # Nothing left to do on a second run; a closed order cannot be paid any more.
    again = shop.run(tasks.close_expired_orders)
    assert shop.order(order_id)["status"] == "closed"
    assert len(shop.events(created["out_trade_no"], "close")) == 1
    assert again["failed"] == 0
    response = buyer.api.post("/api/v1/payments/wechat/create", json={"order_id": order_id})
    assert response.status_code == 409
    assert response.get_json()["error"] == "order_not_payable"


def test_an_expired_alipay_order_is_closed_there_and_here(shop: Shop) -> None:
    buyer = shop.buyer()
    opened = buyer.checkout("alipay")
    shop.run(control.open_alipay_page, opened["pay_url"])
    never_opened = buyer.checkout("alipay", "enterprise")  # Alipay never heard of it
    expire(shop, opened["order_id"])
    expire(shop, never_opened["order_id"])

    shop.run(tasks.close_expired_orders)

    assert shop.order(opened["order_id"])["status"] == "closed"
    assert provider_state(shop, opened["out_trade_no"]) == "TRADE_CLOSED"
    assert shop.order(never_opened["order_id"])["status"] == "closed"
    assert provider_state(shop, never_opened["out_trade_no"]) is None
    for created in (opened, never_opened):
        assert shop.provider_orders(created["order_id"])["alipay"] is not None


def test_an_order_never_sent_to_a_provider_is_closed_here(shop: Shop) -> None:
    buyer = shop.buyer()
    order = buyer.order("pro", 1)
    expire(shop, order["id"])
    shop.run(tasks.close_expired_orders)
    assert shop.order(order["id"])["status"] == "closed"
    assert shop.events(order["out_trade_no"], "close") == []


def test_paid_meanwhile_is_fulfilled_not_closed(shop: Shop) -> None:
    """Paid in the last minute, the notify lost: the closing job asks first, and fulfils."""
    buyer = shop.buyer()
    created = buyer.checkout("wechat")
    shop.pay(created["out_trade_no"], notify=False)
    expire(shop, created["order_id"])

    counts = shop.run(tasks.close_expired_orders)

    assert counts["fulfilled"] >= 1
    state = shop.order(created["order_id"])
    assert (state["status"], state["fulfilled"]) == ("paid", True)
    assert provider_state(shop, created["out_trade_no"]) == "SUCCESS"
    assert shop.events(created["out_trade_no"], "close") == []
    assert shop.subscription(buyer.organization_id)["plan"] == "pro"
    assert buyer.usage_limit() == 50_000


def test_a_provider_that_is_down_leaves_the_order_for_the_next_run(shop: Shop, app: Flask) -> None:
    buyer = shop.buyer()
    created = buyer.checkout("wechat")
    expire(shop, created["order_id"])
    app.config["WECHATPAY_GATEWAY"] = "http://127.0.0.1:9/unreachable"
    with app.app_context():
        wechat.reset_client()

    shop.run(tasks.close_expired_orders)
    assert shop.order(created["order_id"])["status"] == "pending"
    outcomes = [(e["source"], e["outcome"]) for e in shop.events(created["out_trade_no"])]
    assert ("close", "error") in outcomes and ("close", "closed") not in outcomes

    app.config["WECHATPAY_GATEWAY"] = None
    with app.app_context():
        wechat.reset_client()
    shop.run(tasks.close_expired_orders)
    assert shop.order(created["order_id"])["status"] == "closed"
    assert provider_state(shop, created["out_trade_no"]) == "CLOSED"


def test_flask_payments_reconcile(shop: Shop, app: Flask) -> None:
    buyer = shop.buyer()
    paid = buyer.checkout("wechat")
    shop.pay(paid["out_trade_no"], notify=False)
    expired = buyer.checkout("alipay", "enterprise")
    expire(shop, expired["order_id"])
    waiting = buyer.checkout("wechat", "pro", 2)

    runner = app.test_cli_runner()
    result = runner.invoke(args=["payments", "reconcile"])

    assert result.exit_code == 0, result.output
    counts = dict(pair.split("=") for pair in result.output.split())
    assert set(counts) == {"checked", "fulfilled", "closed"}
    assert int(counts["checked"]) >= 3
    assert int(counts["fulfilled"]) >= 1 and int(counts["closed"]) >= 1
    assert shop.order(paid["order_id"])["status"] == "paid"
    assert shop.order(expired["order_id"])["status"] == "closed"
    assert shop.order(waiting["order_id"])["status"] == "pending"
    # Every pending order was asked about, the one in time too.
    assert shop.events(waiting["out_trade_no"], "query")[-1]["outcome"] == "unpaid"

    expire(shop, waiting["order_id"])
    result = runner.invoke(args=["payments", "reconcile", "--expired-only"])
    assert result.exit_code == 0, result.output
    assert "closed=" in result.output and "failed=0" in result.output
    assert shop.order(waiting["order_id"])["status"] == "closed"


def test_the_worker_schedules_the_payment_jobs() -> None:
    connection = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"))
    scheduler = worker.build_cron(connection, "default", os.getpid())
    jobs = {(job.func_name, job.interval) for job in scheduler.get_jobs()}
    assert ("webapp.payments.tasks.close_expired_orders", 300) in jobs
    assert ("webapp.payments.tasks.reconcile_pending_orders", 86400) in jobs
    assert ("webapp.payments.tasks.poll_pending_refunds", 600) in jobs
    assert ("webapp.payments.tasks.reconcile_bills", 86400) in jobs


def test_the_polling_job(shop: Shop, app: Flask) -> None:
    """`poll_order` (queued when a provider order is created): pending → ask again later
    on the backoff schedule; paid → fulfilled; expired → closed."""
    connection = Redis.from_url(app.config["REDIS_URL"])
    registry = ScheduledJobRegistry(app.config["RQ_QUEUES"][0], connection=connection)

    def scheduled_since(before: set[str]) -> list[Job]:
        return [Job.fetch(i, connection=connection) for i in set(registry.get_job_ids()) - before]

    def forget(jobs: list[Job]) -> None:
        for job in jobs:
            registry.remove(job, delete_job=True)

    buyer = shop.buyer()
    before = set(registry.get_job_ids())
    waiting = buyer.checkout("wechat")
    # Creating the provider order ran the first poll: not paid yet, so the next is scheduled.
    first = scheduled_since(before)
    try:
        assert [(job.func_name, job.args) for job in first] == [
            ("webapp.payments.services.poll_order", (waiting["order_id"], 1))
        ]
        assert registry.get_scheduled_time(first[0]) > datetime.now(UTC) + timedelta(
            seconds=services.POLL_DELAYS[0] - 2
        )
    finally:
        forget(first)

    shop.run(services.poll_order, waiting["order_id"], 1)
    assert shop.order(waiting["order_id"])["status"] == "pending"
    again = scheduled_since(before)
    forget(again)
    assert [(job.func_name, job.args) for job in again] == [
        ("webapp.payments.services.poll_order", (waiting["order_id"], 2))
    ]

    shop.pay(waiting["out_trade_no"], notify=False)
    shop.run(services.poll_order, waiting["order_id"], 2)
    assert shop.order(waiting["order_id"])["status"] == "paid"
    assert scheduled_since(before) == []  # paid: no more polling

    late = buyer.checkout("alipay", "enterprise")
    forget(scheduled_since(before))
    expire(shop, late["order_id"])
    shop.run(services.poll_order, late["order_id"], len(services.POLL_DELAYS))
    assert shop.order(late["order_id"])["status"] == "closed"
    assert scheduled_since(before) == []
