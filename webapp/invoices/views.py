"""Portal pages for 发票: the organization's requests, the request form of a paid order,
and the issued PDF.

Every member sees the requests and downloads issued PDFs; the form is for owners and
admins (a member who crafts the request gets 403, a stranger 404).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from webapp.billing import services as billing_services
from webapp.billing.models import Order
from webapp.core.headers import user_upload
from webapp.errors import AppError, NotFound
from webapp.extensions import db
from webapp.invoices import services
from webapp.invoices.forms import TYPE_LABELS, InvoiceRequestForm
from webapp.invoices.models import InvoiceRequest, InvoiceStatus
from webapp.orgs import services as orgs_services
from webapp.portal import current_membership, no_organization, page_of

bp = Blueprint("invoices", __name__)

INVOICES_PER_PAGE = 20
STATUS_LABELS = {
    InvoiceStatus.REQUESTED: _l("Requested"),
    InvoiceStatus.ISSUED: _l("Issued"),
    InvoiceStatus.REJECTED: _l("Rejected"),
}


@bp.app_template_global()
def order_invoice(order: Order) -> InvoiceRequest | None:
    """For the order page: the order's latest invoice request, if any."""
    return db.session.scalar(
        sa.select(InvoiceRequest)
        .where(InvoiceRequest.order_id == order.id)
        .order_by(InvoiceRequest.id.desc())
        .limit(1)
    )


@bp.app_template_global()
def invoice_status_label(status: str) -> str:
    return str(STATUS_LABELS.get(InvoiceStatus(status), status))


@bp.get("/billing/invoices")
@login_required
def index() -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    page = page_of(services.invoices_of(membership.organization_id), INVOICES_PER_PAGE)
    rows = db.session.execute(
        sa.select(Order.id, Order.out_trade_no).where(
            Order.id.in_([invoice.order_id for invoice in page.items])
        )
    )
    numbers = {order_id: out_trade_no for order_id, out_trade_no in rows}
    return render_template(
        "invoices/index.html",
        membership=membership,
        organization=membership.organization,
        invoices=page,
        order_numbers=numbers,
        type_labels=TYPE_LABELS,
    )


@bp.route("/billing/orders/<int:order_id>/invoice", methods=["GET", "POST"])
@login_required
def request_invoice(order_id: int) -> Response | str:
    organization_id = db.session.scalar(
        sa.select(Order.organization_id).where(Order.id == order_id)
    )
    if organization_id is None:
        raise NotFound(_("Order not found."), error="order_not_found")
    membership = orgs_services.membership_for(current_user, organization_id)  # 404 for strangers
    membership.require_manager()
    order = billing_services.order_of(organization_id, order_id)
    form = InvoiceRequestForm()
    if request.method == "GET":
        form.email.data = current_user.email
    if form.validate_on_submit():
        try:
            services.request_invoice(membership, order.id, form.data)
        except AppError as exc:
            for name, errors in (exc.errors or {}).items():
                field = form._fields.get(name)
                if field is not None:
                    field.errors = [*field.errors, *errors]
            if not exc.errors:
                flash(exc.message, "danger")
        else:
            db.session.commit()
            flash(_("Invoice requested. We will mail you when it is issued."), "success")
            return redirect(url_for("invoices.index"))
    return render_template(
        "invoices/request.html",
        form=form,
        order=order,
        organization=membership.organization,
        amount_fen=services.invoiceable_fen(order),
    )


@bp.get("/billing/invoices/<int:invoice_id>/pdf")
@user_upload
@login_required
def pdf(invoice_id: int) -> Response:
    organization_id = db.session.scalar(
        sa.select(InvoiceRequest.organization_id).where(InvoiceRequest.id == invoice_id)
    )
    if organization_id is None:
        raise NotFound(_("Invoice not found."), error="invoice_not_found")
    orgs_services.membership_for(current_user, organization_id)  # 404 for strangers
    return services.invoice_pdf(organization_id, invoice_id)
