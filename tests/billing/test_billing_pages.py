"""Portal pages for billing, with CSRF on: plans, the billing page, checkout, orders."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from tests.api import add_member
from tests.billing.conftest import orders_of, put_on_plan, subscription_state
from tests.portal.conftest import Portal, org_id_by_name, zh
from webapp.billing import services
from webapp.billing.views import format_fen
from webapp.db import utcnow
from webapp.extensions import db


def feature_cells(html: str, feature: str) -> dict[str, bool]:
    """{plan code: included?} for one row of the features table."""
    row = re.search(rf'<tr data-feature="{feature}">(.*?)</tr>', html, re.S)
    assert row, f"no {feature} row"
    cells = re.findall(r'<td data-plan="(\w+)">\s*<span class="(text-\w+)"', row.group(1))
    return {plan: css == "text-success" for plan, css in cells}


def card(html: str, plan: str) -> str:
    match = re.search(rf'id="plan-{plan}".*?</ul>', html, re.S)
    assert match, f"no card for {plan}"
    return match.group(0)


def on_plan(app: Any, org_id: int, plan: str, **kwargs: Any) -> None:
    with app.app_context():
        now = utcnow()
        put_on_plan(org_id, plan, now - timedelta(days=5), now + timedelta(days=25), **kwargs)
        db.session.commit()


def state(app: Any, org_id: int) -> dict[str, Any]:
    with app.app_context():
        return subscription_state(org_id)


def orders(app: Any, org_id: int) -> list[tuple[str, str, int, int, str]]:
    with app.app_context():
        return [(o.kind, o.plan.code, o.months, o.amount_fen, o.status) for o in orders_of(org_id)]


@pytest.fixture
def owner(logged_in: Portal) -> Portal:
    logged_in.create_org("计费公司")
    return logged_in


@pytest.fixture
def org_id(app: Any, owner: Portal) -> int:
    return org_id_by_name(app, "计费公司")


def checkout(
    portal: Portal, org_id: int, plan: str, months: int, page: str = "/billing/checkout"
) -> Any:
    data = {"organization_id": str(org_id), "plan": plan, "months": str(months)}
    return portal.post("/billing/checkout", data, page=page)


@pytest.mark.parametrize(
    ("fen", "shown"),
    [(0, "¥0.00"), (1, "¥0.01"), (19900, "¥199.00"), (1234567, "¥12,345.67"), (-9950, "-¥99.50")],
)
def test_fen_are_shown_as_yuan(fen, shown):
    assert format_fen(fen) == shown


# --- plans ----------------------------------------------------------------------


def test_plans_page_is_public_with_the_features_table(app, portal):
    response = portal.get("/plans")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for name in ("免费版", "专业版", "企业版"):
        assert name in html
    free, pro, enterprise = card(html, "free"), card(html, "pro"), card(html, "enterprise")
    assert "¥0.00" in free and "¥199.00" in pro and "¥999.00" in enterprise
    assert zh(app, "%(count)s messages/month", count="1,000") in free
    assert zh(app, "Basic customer service") in free
    assert zh(app, "Community support") in free
    assert zh(app, "%(count)s messages/month", count="50,000") in pro
    for label in ("Image recognition", "Voice interaction", "Custom branding", "Data analytics"):
        assert zh(app, label) in pro
    assert zh(app, "Basic customer service") not in pro  # cards list what a plan adds
    for label in ("Unlimited messages", "Unlimited bots", "All features", "SLA guarantee"):
        assert zh(app, label) in enterprise
    assert zh(app, "Private deployment option") in enterprise
    assert feature_cells(html, "image") == {"free": False, "pro": True, "enterprise": True}
    assert feature_cells(html, "sla") == {"free": False, "pro": False, "enterprise": True}
    assert feature_cells(html, "community_support") == {
        "free": True,
        "pro": False,
        "enterprise": False,
    }
    assert 'href="/signup"' in html
    assert "/billing/checkout" not in html


def test_plans_page_in_english(portal):
    portal.switch_language("en")

    html = portal.page("/plans")

    assert "Pro" in card(html, "pro") and "Enterprise" in card(html, "enterprise")
    assert "50,000 messages/month" in card(html, "pro")
    assert "10 bots" in card(html, "pro")
    assert "1 bot<" in card(html, "free")
    assert "Private deployment option" in card(html, "enterprise")


def test_plans_page_offers_managers_the_checkout(app, owner, org_id):
    html = owner.page("/plans")

    assert 'href="/billing/checkout?plan=pro"' in html
    assert 'href="/billing/checkout?plan=enterprise"' in html
    assert "checkout?plan=free" not in html
    assert 'id="current-plan-badge"' in card(html, "free")


# --- the billing page -----------------------------------------------------------


def test_billing_needs_login_and_an_organization(portal, logged_in):
    anonymous = Portal(portal.client.application.test_client())
    assert anonymous.get("/billing").status_code == 302
    assert "/login" in anonymous.get("/billing").headers["Location"]

    response = logged_in.get("/billing")

    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"


def test_billing_page_on_free(app, owner, org_id):
    html = owner.page("/billing")

    assert re.search(r'id="current-plan" data-plan="free">\s*免费版\s*<', html)
    assert zh(app, "The free plan has no end date.") in html
    assert 'id="buy"' in html
    assert 'id="cancel-subscription"' not in html
    assert 'id="resume-subscription"' not in html
    assert 'id="no-orders"' in html


def test_buying_through_checkout_creates_the_order(app, owner, org_id):
    form = owner.page("/billing/checkout?plan=enterprise")
    assert re.search(
        r'<option selected value="enterprise">|<option value="enterprise" selected', form
    )
    assert f'name="organization_id" type="hidden" value="{org_id}"' in form

    response = checkout(owner, org_id, "pro", 3)

    assert response.status_code == 302
    [(kind, plan, months, amount, status)] = orders(app, org_id)
    assert (kind, plan, months, amount, status) == ("new", "pro", 3, 59700, "pending")
    with app.app_context():
        order_id = orders_of(org_id)[0].id
    assert response.headers["Location"] == f"/billing/orders/{order_id}"
    html = owner.page(f"/billing/orders/{order_id}")
    assert re.search(r'id="order-amount">¥597.00<', html)
    assert re.search(r'id="order-list-price">¥597.00<', html)
    assert 'id="order-credit"' not in html
    assert re.search(
        r'id="order-kind" data-kind="new">' + re.escape(zh(app, "New subscription")), html
    )
    assert re.search(
        r'id="order-status" data-status="pending">' + re.escape(zh(app, "Awaiting payment")), html
    )
    assert 'id="order-period"' in html
    assert 'id="order-expires"' in html
    billing = owner.page("/billing")
    assert f'data-order-id="{order_id}" data-status="pending"' in billing
    assert state(app, org_id)["plan"] == "free"  # nothing changes until it is paid


def test_upgrade_shows_the_credit(app, owner, org_id):
    on_plan(app, org_id, "pro")

    response = checkout(owner, org_id, "enterprise", 1)

    assert response.status_code == 302
    [(kind, plan, months, amount, status)] = orders(app, org_id)
    assert (kind, plan, months, status) == ("upgrade", "enterprise", 1, "pending")
    credit = 99900 - amount
    assert 0 < credit < 19900
    html = owner.page(response.headers["Location"])
    assert re.search(rf'id="order-credit">{re.escape(format_fen(-credit))}<', html)
    assert re.search(rf'id="order-amount">{re.escape(format_fen(amount))}<', html)
    assert zh(app, "Upgrade") in html


@pytest.mark.parametrize(
    ("plan", "months"), [("free", 1), ("platinum", 1), ("pro", 0), ("pro", 13)]
)
def test_checkout_refuses_what_is_not_on_sale(app, owner, org_id, plan, months):
    response = checkout(owner, org_id, plan, months)

    assert response.status_code == 200
    assert "is-invalid" in response.get_data(as_text=True)
    assert orders(app, org_id) == []


def test_cancel_and_resume_from_the_billing_page(app, owner, org_id):
    on_plan(app, org_id, "pro")
    html = owner.page("/billing")
    assert re.search(r'id="current-plan" data-plan="pro">\s*专业版\s*<', html)
    assert 'id="period-end"' in html
    assert 'id="cancel-subscription"' in html

    response = owner.post("/billing/cancel", {"organization_id": str(org_id)}, page="/billing")

    assert response.status_code == 302
    assert state(app, org_id)["cancel"] is True
    html = owner.page("/billing")
    assert zh(app, "Your plan will end with the paid period.") in html
    assert 'id="cancel-notice"' in html
    assert 'id="resume-subscription"' in html
    assert 'id="cancel-subscription"' not in html

    response = owner.post("/billing/resume", {"organization_id": str(org_id)}, page="/billing")

    assert response.status_code == 302
    assert state(app, org_id)["cancel"] is False
    html = owner.page("/billing")
    assert zh(app, "Your plan continues.") in html
    assert 'id="cancel-notice"' not in html


def test_cancelling_the_free_plan_says_why_not(app, owner, org_id):
    response = owner.post("/billing/cancel", {"organization_id": str(org_id)}, page="/billing")

    assert response.status_code == 302
    assert zh(app, "There is no paid period to cancel.") in owner.page("/billing")
    assert state(app, org_id)["cancel"] is False


def test_forms_need_the_csrf_token(app, owner, org_id):
    on_plan(app, org_id, "pro")

    response = owner.client.post("/billing/cancel", data={"organization_id": str(org_id)})
    refused_checkout = owner.client.post(
        "/billing/checkout", data={"organization_id": str(org_id), "plan": "pro", "months": "1"}
    )

    assert response.status_code == 400
    assert refused_checkout.status_code == 400
    assert state(app, org_id)["cancel"] is False
    assert orders(app, org_id) == []


# --- who may do what ----------------------------------------------------------


def test_members_see_billing_but_cannot_spend_or_cancel(app, owner, org_id, make_user, make_portal):
    on_plan(app, org_id, "pro", cancel=True)
    before = state(app, org_id)
    member = make_user()
    add_member(app, org_id, member, "member")
    browser = make_portal()
    browser.login(member.email)

    html = browser.page("/billing")
    assert 'id="ask-a-manager"' in html
    assert 'id="buy"' not in html and 'id="resume-subscription"' not in html
    assert "/billing/checkout" not in browser.page("/plans")
    assert browser.get("/billing/checkout").status_code == 403
    form = {"organization_id": str(org_id)}
    assert checkout(browser, org_id, "enterprise", 1, page="/billing").status_code == 403
    assert browser.post("/billing/cancel", form, page="/billing").status_code == 403
    assert browser.post("/billing/resume", form, page="/billing").status_code == 403
    assert orders(app, org_id) == []
    assert state(app, org_id) == before


def test_strangers_get_404(app, owner, org_id, make_user, make_portal):
    checkout(owner, org_id, "pro", 1)
    with app.app_context():
        order_id = orders_of(org_id)[0].id
    on_plan(app, org_id, "pro")
    before = state(app, org_id)
    stranger = make_user()
    browser = make_portal()
    browser.login(stranger.email)
    browser.create_org("别人的公司")
    form = {"organization_id": str(org_id)}

    assert browser.get(f"/billing/orders/{order_id}").status_code == 404
    assert browser.get("/billing/orders/999999").status_code == 404
    assert browser.post("/billing/cancel", form, page="/billing").status_code == 404
    assert checkout(browser, org_id, "enterprise", 1, page="/billing").status_code == 404
    assert orders(app, org_id) == [("new", "pro", 1, 19900, "pending")]
    assert state(app, org_id) == before


def test_a_paid_order_shows_when_it_was_paid(app, owner, org_id):
    checkout(owner, org_id, "pro", 1)
    with app.app_context():
        order_id = orders_of(org_id)[0].id
        assert services.fulfil_order(order_id) is services.Fulfilment.FULFILLED
        db.session.commit()

    html = owner.page(f"/billing/orders/{order_id}")

    assert re.search(r'id="order-status" data-status="paid">' + re.escape(zh(app, "Paid")), html)
    assert 'id="order-paid-at"' in html
    assert 'id="order-period"' not in html and 'id="order-expires"' not in html
    billing = owner.page("/billing")
    assert re.search(r'id="current-plan" data-plan="pro">\s*专业版\s*<', billing)
    assert f'data-order-id="{order_id}" data-status="paid"' in billing


def test_a_prepaid_lower_plan_is_announced(app, owner, org_id):
    on_plan(app, org_id, "enterprise", scheduled=("pro", 2))

    html = owner.page("/billing")

    assert re.search(r'id="current-plan" data-plan="enterprise">\s*企业版\s*<', html)
    assert re.search(r'id="scheduled-plan" data-plan="pro">\s*专业版', html)
