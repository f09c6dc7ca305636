"""/api/v1/payments: who may start a payment or read an order, and the refusals.

The refusals need no provider (each test runs in its rolled-back transaction); the
rest runs against the sandbox on the live server.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask

from tests.billing.test_subscriptions_api import api_key_for
from tests.conftest import ApiClient
from tests.payments.support import Shop, shop_fixture  # noqa: F401
from webapp.billing import services as billing_services
from webapp.billing.models import Order, OrderStatus
from webapp.db import utcnow
from webapp.extensions import db
from webapp.orgs.models import OrganizationMember, Role
from webapp.payments import wechat
from webapp.payments.sandbox import control

CHANNELS = ["wechat", "alipay"]


def assert_error(response: Any, status: int, error: str) -> None:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["error"] == error, body
    assert body["code"] == status and body["message"]


@pytest.fixture
def order(api_client: ApiClient, org: dict[str, Any]) -> dict[str, Any]:
    response = api_client.post("/api/v1/subscriptions/upgrade", json={"plan": "pro", "months": 1})
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _member_client(app: Flask, make_user: Any, org_id: int, role: Role) -> ApiClient:
    user = make_user()
    with app.app_context():
        db.session.add(OrganizationMember(organization_id=org_id, user_id=user.id, role=role))
        db.session.commit()
    return ApiClient(app.test_client()).login(user.email)


def _set_order(app: Flask, order_id: int, **values: Any) -> None:
    with app.app_context():
        row = db.session.get(Order, order_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        db.session.commit()


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_strangers_order_is_not_found(
    app: Flask, make_api_client: Any, order: dict[str, Any], channel: str
) -> None:
    stranger = make_api_client()
    created = stranger.post("/api/v1/organizations", json={"name": "别人的公司"})
    assert created.status_code == 201
    response = stranger.post(f"/api/v1/payments/{channel}/create", json={"order_id": order["id"]})
    assert_error(response, 404, "order_not_found")
    assert_error(stranger.get(f"/api/v1/payments/orders/{order['id']}"), 404, "order_not_found")
    missing = stranger.post(f"/api/v1/payments/{channel}/create", json={"order_id": 10**9})
    assert_error(missing, 404, "order_not_found")


@pytest.mark.parametrize("channel", CHANNELS)
def test_members_may_read_but_not_pay(
    app: Flask, make_user: Any, org: dict[str, Any], order: dict[str, Any], channel: str
) -> None:
    member = _member_client(app, make_user, org["id"], Role.MEMBER)
    response = member.post(f"/api/v1/payments/{channel}/create", json={"order_id": order["id"]})
    assert_error(response, 403, "forbidden")
    read = member.get(f"/api/v1/payments/orders/{order['id']}")
    assert read.status_code == 200
    assert (read.get_json()["status"], read.get_json()["out_trade_no"]) == (
        "pending",
        order["out_trade_no"],
    )
    # A refresh of an order never started at a provider asks nobody.
    refreshed = member.get(f"/api/v1/payments/orders/{order['id']}?refresh=1")
    assert refreshed.status_code == 200 and refreshed.get_json()["status"] == "pending"


@pytest.mark.parametrize("how", ["bearer", "x-api-key"])
def test_api_keys_are_refused(
    app: Flask, client: Any, user: Any, org: dict[str, Any], order: dict[str, Any], how: str
) -> None:
    secret = api_key_for(app, org["id"], user.id)
    headers = {"Authorization": f"Bearer {secret}"} if how == "bearer" else {"X-API-Key": secret}
    for method, path, kwargs in (
        ("POST", "/api/v1/payments/wechat/create", {"json": {"order_id": order["id"]}}),
        ("POST", "/api/v1/payments/alipay/create", {"json": {}}),  # before the body is read
        ("GET", f"/api/v1/payments/orders/{order['id']}", {}),
        ("GET", f"/api/v1/payments/orders/{order['id']}?refresh=1", {}),
    ):
        response = client.open(path, method=method, headers=headers, **kwargs)
        assert_error(response, 401, "api_key_not_allowed")


def test_anonymous_callers_are_refused(client: Any, order: dict[str, Any]) -> None:
    response = client.post("/api/v1/payments/wechat/create", json={"order_id": order["id"]})
    assert response.status_code == 401
    assert client.get(f"/api/v1/payments/orders/{order['id']}").status_code == 401


@pytest.mark.parametrize(
    "body", [{}, {"order_id": "1"}, {"order_id": 0}, {"order_id": None}, {"order_id": 1.5}]
)
def test_the_order_id_is_validated(api_client: ApiClient, org: dict[str, Any], body: Any) -> None:
    response = api_client.post("/api/v1/payments/wechat/create", json=body)
    assert_error(response, 422, "validation_error")
    assert "order_id" in response.get_json()["errors"]["json"]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("paid", "order_not_payable"),
        ("closed", "order_not_payable"),
        ("expired", "order_expired"),
    ],
)
def test_orders_that_cannot_be_paid(
    app: Flask,
    api_client: ApiClient,
    order: dict[str, Any],
    channel: str,
    change: str,
    error: str,
) -> None:
    if change == "paid":
        with app.app_context():
            billing_services.fulfil_order(order["id"], channel="wechat")
            db.session.commit()
    elif change == "closed":
        _set_order(app, order["id"], status=OrderStatus.CLOSED, closed_at=utcnow())
    else:
        _set_order(app, order["id"], expires_at=utcnow() - timedelta(seconds=1))
    response = api_client.post(f"/api/v1/payments/{channel}/create", json={"order_id": order["id"]})
    assert_error(response, 409, error)


# --- against the sandbox -----------------------------------------------------------------


def test_admins_may_pay(shop: Shop) -> None:
    buyer = shop.buyer()
    order = buyer.order("enterprise", 1)
    admin = shop.member(buyer, Role.ADMIN)
    response = admin.post("/api/v1/payments/wechat/create", json={"order_id": order["id"]})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["amount_fen"] == 99900


def test_provider_down_is_502_and_recorded(shop: Shop, app: Flask) -> None:
    buyer = shop.buyer()
    order = buyer.order("pro", 1)
    app.config["WECHATPAY_GATEWAY"] = "http://127.0.0.1:9/v3-unreachable"  # discard port
    with app.app_context():
        wechat.reset_client()
    response = buyer.api.post("/api/v1/payments/wechat/create", json={"order_id": order["id"]})
    assert_error(response, 502, "provider_unavailable")
    assert shop.provider_orders(order["id"]) == {}
    assert [(e["source"], e["outcome"]) for e in shop.events(order["out_trade_no"])] == [
        ("create", "error")
    ]
    assert shop.order(order["id"])["status"] == "pending"

    # Back up: the same order can be paid.
    app.config["WECHATPAY_GATEWAY"] = None
    with app.app_context():
        wechat.reset_client()
    assert buyer.start("wechat", order["id"])["code_url"].startswith(shop.url)


def test_a_member_refresh_learns_of_the_payment(shop: Shop) -> None:
    buyer = shop.buyer()
    created = buyer.checkout("wechat")
    member = shop.member(buyer, Role.MEMBER)
    shop.pay(created["out_trade_no"], notify=False)
    plain = member.get(f"/api/v1/payments/orders/{created['order_id']}")
    assert plain.get_json()["status"] == "pending"  # no refresh: the database only
    refreshed = member.get(f"/api/v1/payments/orders/{created['order_id']}?refresh=1")
    assert refreshed.status_code == 200
    body = refreshed.get_json()
    assert (body["status"], body["channel"]) == ("paid", "wechat")
    assert body["paid_at"] is not None and body["period"] is None


def test_the_notify_endpoints_answer_only_post(shop: Shop) -> None:
    for channel in CHANNELS:
        response = requests.get(f"{shop.url}/api/v1/payments/{channel}/notify", timeout=10)
        assert response.status_code == 405


def test_unknown_trade_at_the_provider_is_recorded_as_such(shop: Shop) -> None:
    """An Alipay page never opened: Alipay does not know the trade; the order stays pending."""
    buyer = shop.buyer()
    created = buyer.checkout("alipay")
    assert shop.run(control.trade, created["out_trade_no"]) is None
    refreshed = buyer.api.get(f"/api/v1/payments/orders/{created['order_id']}?refresh=1")
    assert refreshed.get_json()["status"] == "pending"
    assert shop.events(created["out_trade_no"], "query")[-1]["outcome"] == "unknown_at_provider"
