"""Portal pages for paying an order: WeChat Pay QR code, Alipay cashier, the return page.

The order page (billing) includes `payments/_pay_buttons.html`: owners and admins of
a pending order see one button per channel. WeChat Pay shows the `code_url` as a
QR code (SVG, drawn here) and keeps asking `order_status`, which queries the
provider while the order is pending, so payments are seen even without a worker.
Alipay sends the browser to its cashier, which returns it to `order_return`; that
page shows the status from the database or a provider query, never from the
parameters Alipay adds to the return URL.
"""

from __future__ import annotations

import segno
import sqlalchemy as sa
from flask import Blueprint, flash, jsonify, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from werkzeug.wrappers import Response

from webapp.billing import services as billing_services
from webapp.billing.models import ORDER_STATUS_LABELS, Order, OrderStatus
from webapp.db import utcnow
from webapp.errors import AppError, NotFound
from webapp.extensions import db
from webapp.orgs import services as orgs_services
from webapp.orgs.models import OrganizationMember
from webapp.payments import services
from webapp.payments.models import Channel, ProviderOrder
from webapp.payments.settings import is_sandbox
from webapp.portal import CURRENT_ORG_KEY

bp = Blueprint("payments", __name__)

STATUS_POLL_MILLISECONDS = 2500


def _member_order(order_id: int) -> tuple[OrganizationMember, Order]:
    """The order and the current user's membership in its organization (404 for strangers)."""
    organization_id = db.session.scalar(
        sa.select(Order.organization_id).where(Order.id == order_id)
    )
    if organization_id is None:
        raise NotFound(_("Order not found."), error="order_not_found")
    membership = orgs_services.membership_for(current_user, organization_id)
    return membership, billing_services.order_of(organization_id, order_id)


def _is_payable(order: Order) -> bool:
    return order.status == OrderStatus.PENDING and order.expires_at > utcnow()


@bp.app_template_global()
def payment_state(order: Order) -> str | None:
    """For the order page: "payable" (show the buttons: owners and admins, pending, in
    time), "expired" (pending but too late), None otherwise."""
    if order.status != OrderStatus.PENDING or not current_user.is_authenticated:
        return None
    if not _is_payable(order):
        return "expired"
    membership = db.session.scalar(
        sa.select(OrganizationMember).where(
            OrganizationMember.organization_id == order.organization_id,
            OrganizationMember.user_id == current_user.id,
        )
    )
    return "payable" if membership is not None and membership.role.can_manage_members else None


@bp.app_template_global()
def payments_sandbox() -> bool:
    return is_sandbox()


def qr_svg(data: str) -> Markup:
    """`data` as an inline SVG QR code (drawn on the server: no script, no CDN)."""
    svg = segno.make(data, error="m").svg_inline(
        scale=6, border=2, light="#fff", svgclass="qr-code"
    )
    return Markup(svg)  # segno's markup: the data is drawn, never written out


def _open_provider_order(order: Order, channel: Channel) -> ProviderOrder | None:
    return db.session.scalar(
        sa.select(ProviderOrder).where(
            ProviderOrder.order_id == order.id,
            ProviderOrder.channel == channel,
            ProviderOrder.closed_at.is_(None),
        )
    )


def _to_order_page(order_id: int) -> Response:
    return redirect(url_for("billing.order", order_id=order_id))


@bp.post("/billing/orders/<int:order_id>/pay/<any(wechat, alipay):channel>")
@login_required
def pay(order_id: int, channel: str) -> Response:
    """Start (or resume) paying with a channel: WeChat Pay shows a QR code, Alipay redirects."""
    membership, order = _member_order(order_id)
    session[CURRENT_ORG_KEY] = membership.organization_id
    try:
        provider_order = services.start_payment(membership, order.id, Channel(channel))
    except AppError as exc:
        db.session.commit()  # keeps the record of a provider failure, if there was one
        if exc.status in (403, 404):
            raise
        flash(exc.message, "danger")
        return _to_order_page(order_id)
    pay_url = provider_order.pay_url
    db.session.commit()
    if channel == Channel.ALIPAY:
        return redirect(pay_url)
    return redirect(url_for("payments.wechat", order_id=order_id))


@bp.get("/billing/orders/<int:order_id>/wechat")
@login_required
def wechat(order_id: int) -> Response | str:
    """The WeChat Pay QR code; the page reloads itself once the order is paid."""
    membership, order = _member_order(order_id)
    session[CURRENT_ORG_KEY] = membership.organization_id
    if order.status == OrderStatus.PAID:
        flash(_("Payment received. Your plan has been updated."), "success")
        return _to_order_page(order_id)
    provider_order = _open_provider_order(order, Channel.WECHAT)
    if not _is_payable(order) or provider_order is None:
        return _to_order_page(order_id)
    return render_template(
        "payments/wechat.html",
        order=order,
        organization=membership.organization,
        code_url=provider_order.pay_url,
        qr=qr_svg(provider_order.pay_url),
        status_labels=ORDER_STATUS_LABELS,
        poll_ms=STATUS_POLL_MILLISECONDS,
    )


@bp.get("/billing/orders/<int:order_id>/status")
@login_required
def order_status(order_id: int) -> Response:
    """The order's status as JSON, asking the providers first while it is pending."""
    _membership, order = _member_order(order_id)
    if order.status == OrderStatus.PENDING:
        order = services.refresh_order(order.id)
        db.session.commit()
    return jsonify(
        id=order.id, status=order.status, label=str(ORDER_STATUS_LABELS[OrderStatus(order.status)])
    )


@bp.get("/billing/orders/<int:order_id>/return")
@login_required
def order_return(order_id: int) -> str:
    """Where Alipay's cashier sends the browser back: the real status, asked of the provider.

    The query parameters Alipay adds are ignored: anyone can type them.
    """
    membership, order = _member_order(order_id)
    session[CURRENT_ORG_KEY] = membership.organization_id
    if order.status == OrderStatus.PENDING:
        order = services.refresh_order(order.id)
        db.session.commit()
    return render_template(
        "payments/return.html",
        order=order,
        organization=membership.organization,
        status_labels=ORDER_STATUS_LABELS,
        poll_ms=STATUS_POLL_MILLISECONDS,
    )
