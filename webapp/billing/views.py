"""Portal pages for billing: plans (public), the organization's billing page, checkout, orders.

Buttons that cost or change money (checkout, cancel, resume) are shown to owners
and admins only; a member who crafts the request gets 403, a stranger 404. The
forms carry the organization they were rendered for, so a switch in another tab
cannot redirect an action to a different organization.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from webapp.billing import services
from webapp.billing.forms import CheckoutForm, OrganizationActionForm
from webapp.billing.models import ORDER_STATUS_LABELS, Order, OrderKind, Plan
from webapp.db import utcnow
from webapp.errors import AppError, NotFound
from webapp.extensions import db
from webapp.orgs import services as orgs_services
from webapp.orgs.models import OrganizationMember
from webapp.portal import CURRENT_ORG_KEY, current_membership, no_organization, page_of

bp = Blueprint("billing", __name__)

ORDERS_PER_PAGE = 20

# Feature codes are data on the plans (`Plan.features`); these are their UI labels.
FEATURE_LABELS = {
    "basic_service": _l("Basic customer service"),
    "community_support": _l("Community support"),
    "image": _l("Image recognition"),
    "voice": _l("Voice interaction"),
    "priority_support": _l("Priority support"),
    "branding": _l("Custom branding"),
    "analytics": _l("Data analytics"),
    "dedicated_support": _l("Dedicated support"),
    "sla": _l("SLA guarantee"),
    "private_deployment": _l("Private deployment option"),
}
KIND_LABELS = {
    OrderKind.NEW: _l("New subscription"),
    OrderKind.RENEWAL: _l("Renewal"),
    OrderKind.UPGRADE: _l("Upgrade"),
    OrderKind.DOWNGRADE: _l("Change at period end"),
    OrderKind.GRANT: _l("Granted"),
}


@bp.app_template_filter("fen")
def format_fen(fen: int) -> str:
    """Integer fen as yuan: 19900 → ¥199.00, 1234567 → ¥12,345.67."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"


def message_limit(plan: Plan) -> str:
    quota = plan.monthly_message_quota
    if quota is None:
        return _("Unlimited messages")
    return _("%(count)s messages/month", count=f"{quota:,}")


def bot_limit(plan: Plan) -> str:
    if plan.bot_limit is None:
        return _("Unlimited bots")
    return ngettext("%(num)d bot", "%(num)d bots", plan.bot_limit)


def feature_label(code: str) -> str:
    return str(FEATURE_LABELS.get(code, code))


def plan_highlights(plans: list[Plan]) -> dict[str, list[str]]:
    """What each plan's card lists: its limits, then what it adds to the plan below it.

    The top plan, when it has everything the plan below has, says "All features" first.
    """
    highlights: dict[str, list[str]] = {}
    below: Plan | None = None
    for index, plan in enumerate(plans):
        lines = [message_limit(plan), bot_limit(plan)]
        previous = set(below.features) if below else set()
        if below is not None and index == len(plans) - 1 and previous <= set(plan.features):
            lines.append(_("All features"))
        lines += [feature_label(code) for code in plan.features if code not in previous]
        highlights[plan.code] = lines
        below = plan
    return highlights


def feature_rows(plans: list[Plan]) -> list[tuple[str, str]]:
    """(code, label) for every feature any plan has, in the catalogue's order."""
    offered = {code for plan in plans for code in plan.features}
    known = [code for code in FEATURE_LABELS if code in offered]
    return [(code, feature_label(code)) for code in known + sorted(offered - set(known))]


def _membership_or_none() -> OrganizationMember | None:
    return current_membership() if current_user.is_authenticated else None


def _form_membership(form: OrganizationActionForm) -> OrganizationMember:
    """The membership for the organization the form was rendered for (404 if not the user's)."""
    if form.organization_id.data is None:
        raise NotFound(_("Organization not found."))
    return orgs_services.membership_for(current_user, form.organization_id.data)


def _back_to_billing() -> Response:
    return redirect(url_for("billing.index"))


@bp.get("/plans")
def plans() -> str:
    offered = services.public_plans()
    membership = _membership_or_none()
    current = services.plan_of(membership.organization_id) if membership else None
    return render_template(
        "billing/plans.html",
        plans=offered,
        highlights=plan_highlights(offered),
        feature_rows=feature_rows(offered),
        membership=membership,
        current_plan=current,
        message_limit=message_limit,
        bot_limit=bot_limit,
    )


@bp.get("/billing")
@login_required
def index() -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    page = page_of(services.orders_of(membership.organization_id), ORDERS_PER_PAGE)
    subscription = services.subscription_of(membership.organization_id)
    return render_template(
        "billing/index.html",
        membership=membership,
        organization=membership.organization,
        subscription=subscription,
        paid_period=services.has_active_paid_period(subscription, utcnow()),
        orders=page,
        action_form=OrganizationActionForm(organization_id=membership.organization_id),
        kind_labels=KIND_LABELS,
        status_labels=ORDER_STATUS_LABELS,
    )


@bp.route("/billing/checkout", methods=["GET", "POST"])
@login_required
def checkout() -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    form = CheckoutForm()
    if request.method == "GET":
        form.organization_id.data = membership.organization_id
        form.plan.data = request.args.get("plan")
    else:
        membership = _form_membership(form)
    membership.require_manager()
    on_sale = [plan for plan in services.public_plans() if plan.price_fen > 0]
    form.plan.choices = [
        (plan.code, f"{plan.display_name} · {format_fen(plan.price_fen)} / {_('month')}")
        for plan in on_sale
    ]
    if form.validate_on_submit():
        try:
            order = services.create_order(membership, form.plan.data or "", form.months.data)
        except AppError as exc:
            flash(exc.message, "danger")
        else:
            db.session.commit()
            return redirect(url_for("billing.order", order_id=order.id))
    subscription = services.subscription_of(membership.organization_id)
    return render_template(
        "billing/checkout.html",
        form=form,
        organization=membership.organization,
        subscription=subscription,
        paid_period=services.has_active_paid_period(subscription, utcnow()),
    )


@bp.get("/billing/orders/<int:order_id>")
@login_required
def order(order_id: int) -> str:
    organization_id = db.session.scalar(
        sa.select(Order.organization_id).where(Order.id == order_id)
    )
    if organization_id is None:
        raise NotFound(_("Order not found."), error="order_not_found")
    membership = orgs_services.membership_for(current_user, organization_id)  # 404 for strangers
    session[CURRENT_ORG_KEY] = organization_id
    found = services.order_of(organization_id, order_id)
    return render_template(
        "billing/order.html",
        order=found,
        organization=membership.organization,
        period=services.period_if_paid(found),
        can_manage=membership.role.can_manage_members,
        kind_labels=KIND_LABELS,
        status_labels=ORDER_STATUS_LABELS,
    )


@bp.post("/billing/cancel")
@login_required
def cancel() -> Response:
    return _change_subscription(services.cancel, _("Your plan will end with the paid period."))


@bp.post("/billing/resume")
@login_required
def resume() -> Response:
    return _change_subscription(services.resume, _("Your plan continues."))


def _change_subscription(change: Callable[[OrganizationMember], Any], success: str) -> Response:
    form = OrganizationActionForm()
    if not form.validate_on_submit():
        flash(_("The form was incomplete; please try again."), "danger")
        return _back_to_billing()
    membership = _form_membership(form)
    membership.require_manager()
    try:
        change(membership)
    except AppError as exc:
        flash(exc.message, "danger")
    else:
        db.session.commit()
        flash(success, "success")
    session[CURRENT_ORG_KEY] = membership.organization_id
    return _back_to_billing()
