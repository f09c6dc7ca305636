"""/api/v1/subscriptions: plans, the current subscription, orders, cancel and resume."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.api import add_member, assert_error
from tests.billing.conftest import orders_of, put_on_plan, sh, subscription_state
from webapp.billing import api as billing_api
from webapp.billing import services
from webapp.bots.services import create_api_key
from webapp.db import utcnow
from webapp.extensions import db
from webapp.orgs.models import OrganizationMember

BASE = "/api/v1/subscriptions"
PLANS, CURRENT, UPGRADE = f"{BASE}/plans", f"{BASE}/current", f"{BASE}/upgrade"
CANCEL, RESUME, ORDERS = f"{BASE}/cancel", f"{BASE}/resume", f"{BASE}/orders"
NOW = sh(2026, 4, 16)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The API's clock, fixed at NOW (orders are priced at the request's `now`)."""
    monkeypatch.setattr(billing_api, "utcnow", lambda: NOW)
    return NOW


def on_plan(app: Any, org_id: int, plan: str, start: datetime, end: datetime, **kw: Any) -> None:
    with app.app_context():
        put_on_plan(org_id, plan, start, end, **kw)
        db.session.commit()


def state(app: Any, org_id: int) -> dict[str, Any]:
    with app.app_context():
        return subscription_state(org_id)


def order_rows(app: Any, org_id: int) -> list[dict[str, Any]]:
    with app.app_context():
        return [
            {
                "id": o.id,
                "kind": o.kind,
                "plan": o.plan.code,
                "months": o.months,
                "amount_fen": o.amount_fen,
                "credit_fen": o.credit_fen,
                "status": o.status,
            }
            for o in orders_of(org_id)
        ]


def api_key_for(app: Any, org_id: int, user_id: int) -> str:
    with app.app_context():
        owner = db.session.scalar(
            db.select(OrganizationMember).where(
                OrganizationMember.organization_id == org_id, OrganizationMember.user_id == user_id
            )
        )
        issued = create_api_key(owner, "官网挂件")
        db.session.commit()
        return issued.secret


# --- plans and the current subscription ------------------------------------------


def test_plans_are_public_with_prices_limits_and_features(client):
    response = client.get(PLANS)

    assert response.status_code == 200
    plans = {plan["code"]: plan for plan in response.get_json()}
    assert list(plans) == ["free", "pro", "enterprise"]
    assert plans["free"] == {
        "code": "free",
        "name": "免费版",
        "name_en": "Free",
        "price_fen": 0,
        "currency": "CNY",
        "limits": {"monthly_messages": 1000, "bots": 1},
        "features": ["basic_service", "community_support"],
    }
    assert (plans["pro"]["price_fen"], plans["pro"]["limits"]) == (
        19900,
        {"monthly_messages": 50000, "bots": 10},
    )
    assert {"image", "voice", "branding", "analytics"} <= set(plans["pro"]["features"])
    assert (plans["enterprise"]["price_fen"], plans["enterprise"]["limits"]) == (
        99900,
        {"monthly_messages": None, "bots": None},
    )
    assert {"dedicated_support", "sla", "private_deployment"} <= set(
        plans["enterprise"]["features"]
    )


def test_current_defaults_to_the_callers_only_organization(api_client, org):
    response = api_client.get(CURRENT)

    assert response.status_code == 200
    body = response.get_json()
    assert body["organization_id"] == org["id"]
    assert body["plan"]["code"] == "free"
    assert body["status"] == "active"
    assert body["current_period_end"] is None
    assert body["cancel_at_period_end"] is False
    assert body["scheduled_plan"] is None


def test_current_shows_the_paid_period(app, api_client, org):
    start, end = sh(2026, 1, 31, 10), sh(2026, 2, 28, 10)
    on_plan(app, org["id"], "enterprise", start, end, cancel=True, scheduled=("pro", 2))

    body = api_client.get(CURRENT).get_json()

    assert body["plan"]["code"] == "enterprise"
    assert body["plan"]["limits"] == {"monthly_messages": None, "bots": None}
    assert body["current_period_start"] == iso(start)
    assert body["current_period_end"] == iso(end)
    assert body["cancel_at_period_end"] is True
    assert body["scheduled_plan"]["code"] == "pro"
    assert body["scheduled_months"] == 2


def test_several_organizations_need_the_header(app, api_client, org):
    other = api_client.post("/api/v1/organizations", json={"name": "第二家公司"}).get_json()
    on_plan(app, other["id"], "pro", sh(2026, 4, 1), sh(2026, 5, 1))

    assert_error(api_client.get(CURRENT), 400, "organization_required")
    assert_error(api_client.post(CANCEL), 400, "organization_required")
    by_header = api_client.get(CURRENT, headers={"X-Organization-ID": str(other["id"])})
    by_query = api_client.get(f"{CURRENT}?organization_id={org['id']}")

    assert (by_header.status_code, by_query.status_code) == (200, 200)
    assert by_header.get_json()["organization_id"] == other["id"]
    assert by_header.get_json()["plan"]["code"] == "pro"
    assert by_query.get_json()["organization_id"] == org["id"]
    assert by_query.get_json()["plan"]["code"] == "free"
    assert_error(
        api_client.get(CURRENT, headers={"X-Organization-ID": "abc"}), 422, "validation_error"
    )


def test_anonymous_callers_get_401(client):
    for method, path in (("GET", CURRENT), ("POST", UPGRADE), ("POST", CANCEL), ("GET", ORDERS)):
        assert_error(client.open(path, method=method), 401, "authentication_required")


# --- upgrade: validation and amounts ----------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"plan": "pro", "months": 0},
        {"plan": "pro", "months": 13},
        {"plan": "pro", "months": "x"},
        {"plan": "pro", "months": 1.5},
        {"plan": "pro"},
        {"months": 1},
        {"plan": "", "months": 1},
        {"plan": "pro", "months": 1, "amount_fen": 1},
    ],
)
def test_upgrade_validation_is_422(app, api_client, org, payload):
    response = api_client.post(UPGRADE, json=payload)

    body = assert_error(response, 422, "validation_error")
    assert body["errors"]["json"]
    assert order_rows(app, org["id"]) == []


def test_the_free_plan_is_not_bought(app, api_client, org):
    assert_error(
        api_client.post(UPGRADE, json={"plan": "free", "months": 1}), 422, "plan_not_purchasable"
    )
    assert order_rows(app, org["id"]) == []


def test_an_unknown_plan_is_404(app, api_client, org):
    assert_error(
        api_client.post(UPGRADE, json={"plan": "platinum", "months": 1}), 404, "plan_not_found"
    )
    assert order_rows(app, org["id"]) == []


# (current plan and period or None for free, plan and months bought) →
# (kind, list price, credit, period bought)
AMOUNTS = {
    "new": (
        None,
        ("pro", 3),
        ("new", 59700, 0, (NOW, sh(2026, 7, 16))),
    ),
    "renewal": (
        ("pro", sh(2026, 3, 31, 9), sh(2026, 4, 30, 9)),
        ("pro", 2),
        ("renewal", 39800, 0, (sh(2026, 4, 30, 9), sh(2026, 6, 30, 9))),
    ),
    "upgrade": (
        ("pro", sh(2026, 4, 1), sh(2026, 5, 1)),
        ("enterprise", 1),
        ("upgrade", 99900, 9950, (NOW, sh(2026, 5, 16))),
    ),
    "downgrade": (
        ("enterprise", sh(2026, 4, 1), sh(2026, 5, 1)),
        ("pro", 1),
        ("downgrade", 19900, 0, (sh(2026, 5, 1), sh(2026, 6, 1))),
    ),
}


@pytest.mark.parametrize(("current", "buy", "expected"), AMOUNTS.values(), ids=AMOUNTS.keys())
def test_upgrade_creates_a_pending_order_priced_by_the_server(
    app, api_client, org, user, frozen_now, current, buy, expected
):
    if current is not None:
        on_plan(app, org["id"], *current)
    before = state(app, org["id"])
    kind, list_price, credit, (start, end) = expected

    response = api_client.post(UPGRADE, json={"plan": buy[0], "months": buy[1]})

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body == {
        "id": body["id"],
        "organization_id": org["id"],
        "kind": kind,
        "plan": {"code": buy[0], "name": body["plan"]["name"], "name_en": body["plan"]["name_en"]},
        "months": buy[1],
        "list_price_fen": list_price,
        "credit_fen": credit,
        "amount_fen": list_price - credit,
        "currency": "CNY",
        "status": "pending",
        "channel": None,
        "out_trade_no": body["out_trade_no"],
        "created_at": body["created_at"],
        "expires_at": iso(NOW + timedelta(minutes=30)),
        "paid_at": None,
        "closed_at": None,
        "period": {"start": iso(start), "end": iso(end)},
    }
    assert len(body["out_trade_no"]) == 26 and body["out_trade_no"].isdigit()
    assert order_rows(app, org["id"]) == [
        {
            "id": body["id"],
            "kind": kind,
            "plan": buy[0],
            "months": buy[1],
            "amount_fen": list_price - credit,
            "credit_fen": credit,
            "status": "pending",
        }
    ]
    with app.app_context():
        stored = services.order_of(org["id"], body["id"])
        assert stored.created_by_id == user.id
        assert stored.out_trade_no == body["out_trade_no"]
    assert state(app, org["id"]) == before  # nothing changes until it is paid


def test_order_history_is_paginated_newest_first(app, api_client, org):
    made = [
        api_client.post(UPGRADE, json={"plan": "pro", "months": months}).get_json()["id"]
        for months in (1, 2, 3)
    ]

    first = api_client.get(f"{ORDERS}?page=1&page_size=2")
    second = api_client.get(f"{ORDERS}?page=2&page_size=2")

    assert (first.status_code, second.status_code) == (200, 200)
    assert [o["id"] for o in first.get_json()] == made[::-1][:2]
    assert [o["id"] for o in second.get_json()] == made[:1]
    assert [o["months"] for o in first.get_json()] == [3, 2]
    pagination = json.loads(first.headers["X-Pagination"])
    assert (pagination["total"], pagination["total_pages"]) == (3, 2)
    detail = api_client.get(f"{ORDERS}/{made[0]}")
    assert detail.status_code == 200
    assert (detail.get_json()["id"], detail.get_json()["amount_fen"]) == (made[0], 19900)
    assert detail.get_json()["period"]["start"] is not None


def test_another_organizations_order_is_404(app, api_client, org, make_api_client):
    stranger = make_api_client()
    stranger.post("/api/v1/organizations", json={"name": "别人的公司"})
    theirs = stranger.post(UPGRADE, json={"plan": "pro", "months": 1}).get_json()["id"]

    assert_error(api_client.get(f"{ORDERS}/{theirs}"), 404, "order_not_found")
    assert api_client.get(ORDERS).get_json() == []


# --- who may do what ----------------------------------------------------------------


def test_members_read_but_cannot_spend_or_cancel(app, org, make_user, make_api_client):
    on_plan(app, org["id"], "pro", utcnow() - timedelta(days=3), utcnow() + timedelta(days=27))
    before = state(app, org["id"])
    member = make_user()
    add_member(app, org["id"], member, "member")
    client = make_api_client(member)

    assert client.get(CURRENT).status_code == 200
    assert client.get(ORDERS).status_code == 200
    assert_error(client.post(UPGRADE, json={"plan": "enterprise", "months": 1}), 403, "forbidden")
    assert_error(client.post(CANCEL), 403, "forbidden")
    assert_error(client.post(RESUME), 403, "forbidden")
    assert order_rows(app, org["id"]) == []
    assert state(app, org["id"]) == before


def test_admins_may_buy(app, org, make_user, make_api_client):
    admin = make_user()
    add_member(app, org["id"], admin, "admin")

    response = make_api_client(admin).post(UPGRADE, json={"plan": "pro", "months": 1})

    assert response.status_code == 201
    assert [row["plan"] for row in order_rows(app, org["id"])] == ["pro"]


def test_strangers_get_404(app, org, make_api_client):
    on_plan(app, org["id"], "pro", utcnow() - timedelta(days=3), utcnow() + timedelta(days=27))
    before = state(app, org["id"])
    stranger = make_api_client()
    stranger.post("/api/v1/organizations", json={"name": "别人的公司"})
    headers = {"X-Organization-ID": str(org["id"])}

    for method, path, kwargs in (
        ("GET", CURRENT, {}),
        ("POST", UPGRADE, {"json": {"plan": "pro", "months": 1}}),
        ("POST", CANCEL, {}),
        ("POST", RESUME, {}),
        ("GET", ORDERS, {}),
    ):
        assert_error(stranger.open(method, path, headers=headers, **kwargs), 404, "not_found")
    assert order_rows(app, org["id"]) == []
    assert state(app, org["id"]) == before


@pytest.mark.parametrize("how", ["bearer", "x-api-key"])
def test_api_keys_cannot_reach_billing(app, client, org, user, how):
    on_plan(app, org["id"], "pro", utcnow() - timedelta(days=3), utcnow() + timedelta(days=27))
    before = state(app, org["id"])
    secret = api_key_for(app, org["id"], user.id)
    headers = {"Authorization": f"Bearer {secret}"} if how == "bearer" else {"X-API-Key": secret}

    for method, path, kwargs in (
        ("GET", CURRENT, {}),
        ("POST", UPGRADE, {"json": {"plan": "enterprise", "months": 1}}),
        ("POST", UPGRADE, {"json": {}}),  # refused before the body is read
        ("POST", CANCEL, {}),
        ("POST", RESUME, {}),
        ("GET", ORDERS, {}),
        ("GET", f"{ORDERS}/1", {}),
    ):
        response = client.open(path, method=method, headers=headers, **kwargs)
        assert_error(response, 401, "api_key_not_allowed")
    assert order_rows(app, org["id"]) == []
    assert state(app, org["id"]) == before
    assert client.get(PLANS, headers=headers).status_code == 200  # the public list stays open


# --- cancel and resume ----------------------------------------------------------------


def test_nothing_to_cancel_on_free(app, api_client, org):
    assert_error(api_client.post(CANCEL), 409, "nothing_to_cancel")
    assert_error(api_client.post(RESUME), 409, "nothing_to_resume")
    assert state(app, org["id"])["cancel"] is False


def test_cancel_then_resume(app, api_client, org):
    start, end = utcnow() - timedelta(days=3), utcnow() + timedelta(days=27)
    on_plan(app, org["id"], "pro", start, end)

    assert_error(api_client.post(RESUME), 409, "nothing_to_resume")
    cancelled = api_client.post(CANCEL)

    assert cancelled.status_code == 200
    body = cancelled.get_json()
    assert body["cancel_at_period_end"] is True
    assert body["plan"]["code"] == "pro"
    assert body["current_period_end"] == iso(end)
    assert state(app, org["id"])["cancel"] is True
    assert api_client.post(CANCEL).status_code == 200  # asking again changes nothing
    assert state(app, org["id"]) == {
        "plan": "pro",
        "start": start,
        "end": end,
        "cancel": True,
        "scheduled": None,
    }

    resumed = api_client.post(RESUME)

    assert resumed.status_code == 200
    assert resumed.get_json()["cancel_at_period_end"] is False
    assert state(app, org["id"])["cancel"] is False
