"""Helpers for the checkout tests: buyers with organizations and orders, read-backs of
the database state, and a `shop` fixture (the live server with the sandbox, plus
cleanup of the payment events the test wrote).

Everything commits for real (the live server's threads do), so every account has a
unique email and the fixtures delete what the test created.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.conftest import ApiClient
from tests.factories import UserFactory
from webapp.billing import services as billing_services
from webapp.billing.models import Order
from webapp.extensions import db
from webapp.orgs.models import OrganizationMember
from webapp.payments import refunds, wechat
from webapp.payments.models import PaymentEvent, ProviderOrder
from webapp.payments.sandbox import control


def unique_email(prefix: str = "buyer") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


@dataclass
class Shop:
    """The live server's base URL and the app, with shortcuts for the tests."""

    app: Flask
    url: str

    def buyer(self, plan: str | None = None, months: int = 1) -> Buyer:
        """A new user who owns a new organization (on `plan` for `months` if given)."""
        email = unique_email()
        with self.app.app_context():
            UserFactory(email=email)
            db.session.commit()
        api = ApiClient(self.app.test_client()).login(email)
        created = api.post("/api/v1/organizations", json={"name": f"支付测试 {email[6:14]}"})
        assert created.status_code == 201, created.get_json()
        organization_id = created.get_json()["id"]
        if plan is not None:
            with self.app.app_context():
                billing_services.grant_plan(organization_id, plan, months)
                db.session.commit()
        return Buyer(self, email, api, organization_id)

    def add_member(self, buyer: Buyer, role: str = "member") -> str:
        """Another user, `role` in the buyer's organization; returns the email."""
        email = unique_email("member")
        with self.app.app_context():
            user = UserFactory(email=email)
            db.session.add(
                OrganizationMember(organization_id=buyer.organization_id, user=user, role=role)
            )
            db.session.commit()
        return email

    def member(self, buyer: Buyer, role: str = "member") -> ApiClient:
        """An API client for another user, `role` in the buyer's organization."""
        return ApiClient(self.app.test_client()).login(self.add_member(buyer, role))

    def run(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Run `func` in a fresh app context (sandbox controls, jobs), then commit."""
        with self.app.app_context():
            result = func(*args, **kwargs)
            db.session.commit()
            return result

    def pay(
        self,
        out_trade_no: str,
        *,
        notify: bool = True,
        wait: float = 15,
        channel: str | None = None,
    ) -> list[Any]:
        """A person pays at the sandbox (at `channel`, or whichever knows the trade);
        returns the notify attempts once acknowledged."""
        with self.app.app_context():
            delivery = control.pay_trade(out_trade_no, notify=notify, channel=channel)
        if delivery is None:
            return []
        attempts = delivery.wait(wait)
        assert attempts and attempts[-1].succeeded, attempts
        return attempts

    def order(self, order_id: int) -> dict[str, Any]:
        with self.app.app_context():
            order = db.session.get(Order, order_id)
            assert order is not None
            return {
                "status": order.status,
                "channel": order.channel,
                "paid": order.paid_at is not None,
                "fulfilled": order.fulfilled_at is not None,
                "provider_trade_no": order.provider_trade_no,
            }

    def subscription(self, organization_id: int) -> dict[str, Any]:
        with self.app.app_context():
            subscription = billing_services.subscription_of(organization_id)
            return {
                "plan": subscription.plan.code,
                "start": subscription.current_period_start,
                "end": subscription.current_period_end,
            }

    def events(self, out_trade_no: str, source: str | None = None) -> list[dict[str, Any]]:
        """The payment events of an order number, oldest first."""
        with self.app.app_context():
            query = sa.select(PaymentEvent).where(PaymentEvent.out_trade_no == out_trade_no)
            if source is not None:
                query = query.where(PaymentEvent.source == source)
            return [
                {
                    "channel": event.channel,
                    "source": event.source,
                    "outcome": event.outcome,
                    "verified": event.verified,
                    "reason": event.reason,
                    "order_id": event.order_id,
                }
                for event in db.session.scalars(query.order_by(PaymentEvent.id))
            ]

    def refunds(self, order_id: int) -> list[dict[str, Any]]:
        """The order's refunds, oldest first."""
        with self.app.app_context():
            return [
                {
                    "id": refund.id,
                    "channel": refund.channel,
                    "out_refund_no": refund.out_refund_no,
                    "amount_fen": refund.amount_fen,
                    "status": refund.status,
                    "reason": refund.reason,
                    "failure_reason": refund.failure_reason,
                    "payment_id": refund.payment_id,
                }
                for refund in refunds.refunds_of(order_id)
            ]

    def payments(self, order_id: int) -> list[dict[str, Any]]:
        """The order's payments: the one that paid for it first."""
        with self.app.app_context():
            return [
                {"channel": p.channel, "amount_fen": p.amount_fen, "disposition": p.disposition}
                for p in refunds.payments_of(order_id)
            ]

    def refund_events(self, out_refund_no: str) -> list[tuple[str, str, bool]]:
        """(source, outcome, verified) of a refund's payment events, oldest first."""
        with self.app.app_context():
            query = (
                sa.select(PaymentEvent)
                .where(PaymentEvent.out_refund_no == out_refund_no)
                .order_by(PaymentEvent.id)
            )
            return [(e.source, e.outcome, e.verified) for e in db.session.scalars(query)]

    def provider_orders(self, order_id: int) -> dict[str, datetime | None]:
        """channel → closed_at of the order's provider orders."""
        with self.app.app_context():
            rows = db.session.scalars(
                sa.select(ProviderOrder).where(ProviderOrder.order_id == order_id)
            )
            return {row.channel: row.closed_at for row in rows}


@dataclass
class Buyer:
    shop: Shop
    email: str
    api: ApiClient
    organization_id: int

    def order(self, plan: str = "pro", months: int = 1) -> dict[str, Any]:
        response = self.api.post(
            "/api/v1/subscriptions/upgrade", json={"plan": plan, "months": months}
        )
        assert response.status_code == 201, response.get_json()
        body: dict[str, Any] = response.get_json()
        return body

    def start(self, channel: str, order_id: int) -> dict[str, Any]:
        response = self.api.post(f"/api/v1/payments/{channel}/create", json={"order_id": order_id})
        assert response.status_code == 201, response.get_json()
        body: dict[str, Any] = response.get_json()
        return body

    def checkout(self, channel: str, plan: str = "pro", months: int = 1) -> dict[str, Any]:
        """An order for `plan`, started at `channel`: the create answer."""
        return self.start(channel, self.order(plan, months)["id"])

    def usage_limit(self) -> int | None:
        response = self.api.get("/api/v1/usage/stats")
        assert response.status_code == 200, response.get_json()
        limit: int | None = response.get_json()["limit"]
        return limit


def _last_event_id(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.max(PaymentEvent.id))) or 0


@pytest.fixture(name="shop")
def shop_fixture(app: Flask, payments_live_server: str) -> Iterator[Shop]:
    """The live server with the payment sandbox; deletes the payment events written
    meanwhile (the organizations and users go with `committed_db`)."""
    last_event = _last_event_id(app)
    try:
        yield Shop(app, payments_live_server)
    finally:
        control.stop_deliveries()
        with app.app_context():
            db.session.execute(sa.delete(PaymentEvent).where(PaymentEvent.id > last_event))
            db.session.commit()


@pytest.fixture(name="wechat_key_mode", params=["public_key", "certificate"])
def wechat_key_mode_fixture(
    request: pytest.FixtureRequest, app: Flask, shop: Shop, tmp_path: Path
) -> str:
    """WeChat Pay in public-key mode (the default) or platform-certificate mode.

    `payments_live_server` restores the configuration and drops the clients afterwards.
    """
    if request.param == "certificate":
        app.config["WECHATPAY_CERT_DIR"] = str(tmp_path / "wechatpay-certs")
        app.config["WECHATPAY_PUBLIC_KEY"] = None
        app.config["WECHATPAY_PUBLIC_KEY_ID"] = None
        with app.app_context():
            wechat.reset_client()
    mode: str = request.param
    return mode
