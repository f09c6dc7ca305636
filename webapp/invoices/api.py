"""/api/v1/billing/invoices: 发票 requests for paid orders.

People only (access JWT), never API keys. Every member reads the organization's
requests and downloads issued PDFs; owners and admins request them.
"""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.pagination import PaginationParameters

from webapp.api import PEOPLE_DECORATORS, PEOPLE_IN_ORGANIZATION, person_membership
from webapp.billing.models import Order
from webapp.core.headers import user_upload
from webapp.core.pagination import paginate
from webapp.errors import ErrorSchema
from webapp.extensions import db
from webapp.invoices import services
from webapp.invoices.models import InvoiceRequest, InvoiceStatus
from webapp.invoices.schemas import InvoiceRequestSchema, InvoiceSchema

blp = Blueprint(
    "invoices_api",
    __name__,
    url_prefix="/api/v1/billing/invoices",
    description="发票 (VAT invoice) requests for paid orders, and the issued PDFs",
)


def invoice_view(invoice: InvoiceRequest) -> dict[str, Any]:
    view = {
        name: getattr(invoice, name) for name in InvoiceSchema().fields if hasattr(invoice, name)
    }
    order = db.session.get(Order, invoice.order_id)
    view["out_trade_no"] = order.out_trade_no if order is not None else None
    view["pdf_url"] = (
        url_for("invoices_api.InvoicePdf", invoice_id=invoice.id)
        if invoice.status == InvoiceStatus.ISSUED
        else None
    )
    return view


@blp.route("")
class Invoices(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.response(200, InvoiceSchema(many=True))
    @blp.paginate()
    @blp.doc(**PEOPLE_IN_ORGANIZATION)
    def get(self, pagination_parameters: PaginationParameters) -> list[dict[str, Any]]:
        """The organization's invoice requests, newest first (any member)"""
        organization_id = person_membership().organization_id
        invoices = paginate(services.invoices_of(organization_id), pagination_parameters)
        return [invoice_view(invoice) for invoice in invoices]

    @blp.arguments(InvoiceRequestSchema)
    @blp.response(201, InvoiceSchema)
    @blp.alt_response(
        409,
        schema=ErrorSchema,
        description="`order_not_paid`, `nothing_to_invoice` (refunded in full), "
        "`refund_pending` (ask once the refund is done) or `invoice_already_requested`",
    )
    @blp.doc(**PEOPLE_IN_ORGANIZATION)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Request a 发票 for a paid order (owner or admin)

        One active (requested or issued) request per order; after a rejection, ask
        again. 422 with the field's problem for a tax id whose check character is
        wrong, or a `special` request without bank and registered address.
        """
        invoice = services.request_invoice(person_membership(), data.pop("order_id"), data)
        db.session.commit()
        return invoice_view(invoice)


@blp.route("/<int:invoice_id>")
class Invoice(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.response(200, InvoiceSchema)
    @blp.doc(**PEOPLE_IN_ORGANIZATION)
    def get(self, invoice_id: int) -> dict[str, Any]:
        """One invoice request and its status (any member)"""
        return invoice_view(services.invoice_of(person_membership().organization_id, invoice_id))


PDF_CONTENT = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}


@blp.route("/<int:invoice_id>/pdf")
class InvoicePdf(MethodView):
    decorators = [*PEOPLE_DECORATORS, user_upload]  # the last one applied: the view's own CSP

    @blp.response(200, description="The issued 发票 (PDF, as an attachment)")
    @blp.alt_response(
        404, schema=ErrorSchema, description="`invoice_not_found` or `invoice_not_issued`"
    )
    @blp.doc(
        responses={"200": {"description": "The issued 发票", "content": PDF_CONTENT}},
        **PEOPLE_IN_ORGANIZATION,
    )
    def get(self, invoice_id: int) -> Response:
        """Download the issued 发票 (any member)"""
        return services.invoice_pdf(person_membership().organization_id, invoice_id)
