"""发票 requests: who may ask, for what, and how operators fulfil them.

- Owners and admins request a 发票 for a paid order: 普通 (`normal`) or 专用 (`special`),
  with the buyer's title, tax id and an email; a 专用发票 also needs the buyer's bank,
  account, registered address and phone. One active (requested or issued) request per
  order; after a rejection the order may be asked for again.
- The amount is what was paid for the order and kept: its applied payment less the
  refunds of that payment that went through (a 发票 is for the amount actually paid
  net of refunds). No request, and no issuing, while such a refund is pending: the net
  is not known yet. A request whose order was refunded since is issued only for the
  new net amount, which the operator confirms (`invoice_amount_changed` otherwise);
  an order refunded in full is not invoiced (`nothing_to_invoice`). An issued 发票 whose
  order is refunded later needs a 红字发票: `flask billing invoices` flags it.
- Tax ids: an 18-character 统一社会信用代码 must carry its check character (GB
  32100-2015); 15- and 20-character tax registration numbers from before it are
  accepted by their form (letters and digits) only.
- Operators issue (upload the PDF, checked to be one) or reject with a reason; the
  managers and the request's email are mailed either way.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Response, send_file
from flask_babel import gettext as _
from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

from webapp.billing.models import Order, OrderStatus
from webapp.billing.services import lock_order, order_of
from webapp.core.mail import external_url, send_mail
from webapp.db import utcnow
from webapp.errors import AppError, Conflict, NotFound
from webapp.extensions import db
from webapp.invoices.models import (
    ACTIVE_STATUSES,
    InvoiceRequest,
    InvoiceStatus,
    InvoiceType,
)
from webapp.orgs.models import OrganizationMember
from webapp.payments.models import Payment, PaymentDisposition, Refund, RefundStatus

MAX_PDF_BYTES = 5 * 1024 * 1024
# What may run or hide something in a PDF customers download: scripts, actions on open
# or on page and field events, embedded or attached files, XFA forms, rich media.
ACTIVE_KEYS = frozenset(
    ("/JS", "/JavaScript", "/AA", "/EmbeddedFiles", "/EmbeddedFile", "/EF", "/XFA", "/RichMedia")
)
ACTIVE_ACTIONS = frozenset(
    (
        "/JavaScript",
        "/Launch",
        "/SubmitForm",
        "/ImportData",
        "/GoToE",
        "/GoToR",
        "/Rendition",
        "/RichMediaExecute",
    )
)
ACTIVE_SUBTYPES = frozenset(("/FileAttachment", "/RichMedia", "/Screen", "/Movie", "/Sound"))

# 统一社会信用代码 (GB 32100-2015): 31 characters (no I, O, Z, S, V) and weights for the
# first 17; the 18th is the check character.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LEGACY_TAX_ID = re.compile(r"^(?:[0-9A-Z]{15}|[0-9A-Z]{20})$")
SPECIAL_FIELDS = ("bank_name", "bank_account", "registered_address", "registered_phone")


def normalize_tax_id(text: str) -> str:
    return re.sub(r"\s+", "", text).upper()


def uscc_check_character(first_17: str) -> str:
    total = sum(
        USCC_ALPHABET.index(char) * weight
        for char, weight in zip(first_17, USCC_WEIGHTS, strict=True)
    )
    return USCC_ALPHABET[(31 - total % 31) % 31]


def valid_tax_id(tax_id: str) -> bool:
    if len(tax_id) == 18:
        return all(char in USCC_ALPHABET for char in tax_id) and tax_id[17] == (
            uscc_check_character(tax_id[:17])
        )
    return bool(LEGACY_TAX_ID.match(tax_id))


def invoiceable_fen(order: Order) -> int:
    """What was paid for the order and kept: its applied payment less that payment's
    succeeded refunds (a duplicate payment and its refund are not the order's money)."""
    paid = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Payment.amount_fen), 0)).where(
            Payment.order_id == order.id, Payment.disposition == PaymentDisposition.APPLIED
        )
    )
    refunded = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_fen), 0))
        .join(Payment, Payment.id == Refund.payment_id)
        .where(
            Refund.order_id == order.id,
            Refund.status == RefundStatus.SUCCEEDED,
            Payment.disposition == PaymentDisposition.APPLIED,
        )
    )
    return int(paid or 0) - int(refunded or 0)


def refund_pending(order: Order) -> bool:
    """Whether a refund of the order's applied payment is still pending."""
    found = db.session.scalar(
        sa.select(Refund.id)
        .join(Payment, Payment.id == Refund.payment_id)
        .where(
            Refund.order_id == order.id,
            Refund.status == RefundStatus.PENDING,
            Payment.disposition == PaymentDisposition.APPLIED,
        )
        .limit(1)
    )
    return found is not None


def _refund_pending_error() -> Conflict:
    return Conflict(
        _("A refund of this order is in progress: it can be invoiced once the refund is done."),
        error="refund_pending",
    )


def _clean(details: dict[str, Any]) -> dict[str, str]:
    """The request's fields, trimmed and checked; 422 with every field's problem."""
    fields = {
        name: str(details.get(name) or "").strip()
        for name in ("type", "title", "tax_id", "email", *SPECIAL_FIELDS)
    }
    fields["tax_id"] = normalize_tax_id(fields["tax_id"])
    errors: dict[str, list[str]] = {}
    if fields["type"] not in tuple(InvoiceType):
        errors["type"] = [_("Choose normal or special.")]
    for name in ("title", "email"):
        if not fields[name]:
            errors[name] = [_("This field is required.")]
    if not valid_tax_id(fields["tax_id"]):
        errors["tax_id"] = [
            _(
                "Not a valid tax id: an 18-character unified social credit code (with its "
                "check character), or a 15- or 20-character tax registration number."
            )
        ]
    if fields["type"] == InvoiceType.SPECIAL:
        for name in SPECIAL_FIELDS:
            if not fields[name]:
                errors[name] = [_("Required for a special VAT invoice.")]
    else:
        for name in SPECIAL_FIELDS:
            fields[name] = ""
    if errors:
        raise AppError(
            _("The invoice request is incomplete."),
            error="validation_error",
            status=422,
            errors=errors,
        )
    return fields


def request_invoice(
    actor: OrganizationMember, order_id: int, details: dict[str, Any]
) -> InvoiceRequest:
    """A new 发票 request for one of the organization's paid orders (owners and admins)."""
    actor.require_manager()
    order = lock_order(order_of(actor.organization_id, order_id).id)
    if order.status != OrderStatus.PAID:
        raise Conflict(_("Only a paid order can be invoiced."), error="order_not_paid")
    if refund_pending(order):
        raise _refund_pending_error()
    amount = invoiceable_fen(order)
    if amount <= 0:
        raise Conflict(
            _("Nothing paid for this order is left to invoice."), error="nothing_to_invoice"
        )
    active = db.session.scalar(
        sa.select(InvoiceRequest.id).where(
            InvoiceRequest.order_id == order.id, InvoiceRequest.status.in_(ACTIVE_STATUSES)
        )
    )
    if active is not None:
        raise Conflict(
            _("This order already has an invoice request."), error="invoice_already_requested"
        )
    invoice = InvoiceRequest(
        organization_id=order.organization_id,
        order_id=order.id,
        requested_by_id=actor.user_id,
        amount_fen=amount,
        status=InvoiceStatus.REQUESTED,
        **_clean(details),
    )
    db.session.add(invoice)
    db.session.flush()
    return invoice


def invoices_of(organization_id: int) -> sa.Select[InvoiceRequest]:
    return (
        sa.select(InvoiceRequest)
        .where(InvoiceRequest.organization_id == organization_id)
        .order_by(InvoiceRequest.created_at.desc(), InvoiceRequest.id.desc())
    )


def invoice_of(organization_id: int, invoice_id: int) -> InvoiceRequest:
    invoice = db.session.scalar(
        sa.select(InvoiceRequest).where(
            InvoiceRequest.id == invoice_id, InvoiceRequest.organization_id == organization_id
        )
    )
    if invoice is None:
        raise NotFound(_("Invoice not found."), error="invoice_not_found")
    return invoice


def invoice_pdf(organization_id: int, invoice_id: int) -> Response:
    """The issued PDF as a download (404 until it is issued): an attachment, never shown
    inline. Its views add the uploads' sandboxing policy and keep it out of caches
    (`user_upload`)."""
    invoice = invoice_of(organization_id, invoice_id)
    if invoice.status != InvoiceStatus.ISSUED or invoice.pdf is None:
        raise NotFound(_("This invoice has not been issued yet."), error="invoice_not_issued")
    order = db.session.get(Order, invoice.order_id)
    assert order is not None
    return send_file(
        io.BytesIO(invoice.pdf),
        mimetype="application/pdf",
        as_attachment=True,
        download_name=f"fapiao-{order.out_trade_no}.pdf",
    )


# --- operators ---------------------------------------------------------------------


def invoices_with_status(status: str | None = None) -> list[InvoiceRequest]:
    query = sa.select(InvoiceRequest).order_by(InvoiceRequest.id)
    if status:
        query = query.where(InvoiceRequest.status == status)
    return list(db.session.scalars(query))


def attention(invoice: InvoiceRequest) -> tuple[int, str]:
    """For operators: what the order has kept now, and what the request needs if that
    no longer matches it (`refund_pending`, `refunded_in_full`, `amount_changed`,
    `red_letter_needed`)."""
    order = db.session.get(Order, invoice.order_id)
    if order is None:
        return 0, ""
    net = invoiceable_fen(order)
    if invoice.status == InvoiceStatus.REQUESTED:
        if refund_pending(order):
            return net, "refund_pending"
        if net <= 0:
            return net, "refunded_in_full"
        return net, "amount_changed" if net != invoice.amount_fen else ""
    if invoice.status == InvoiceStatus.ISSUED and net < invoice.amount_fen:
        return net, "red_letter_needed"
    return net, ""


def _open_request(invoice_id: int) -> InvoiceRequest:
    invoice = db.session.scalar(
        sa.select(InvoiceRequest).where(InvoiceRequest.id == invoice_id).with_for_update()
    )
    if invoice is None:
        raise NotFound(_("Invoice not found."), error="invoice_not_found")
    if invoice.status != InvoiceStatus.REQUESTED:
        raise Conflict(
            _("This invoice request is already %(status)s.", status=invoice.status),
            error="invoice_not_requested",
        )
    return invoice


def check_pdf(content: bytes) -> None:
    """A PDF of at most MAX_PDF_BYTES with at least one page and nothing active in it
    (`active_content`), or AppError."""
    if len(content) > MAX_PDF_BYTES:
        raise AppError(
            _("The PDF is larger than %(mib)d MiB.", mib=MAX_PDF_BYTES // (1024 * 1024)),
            error="file_too_large",
            status=413,
        )
    if not content.startswith(b"%PDF-"):
        raise AppError(_("This is not a PDF file."), error="not_a_pdf", status=422)
    try:
        reader = PdfReader(io.BytesIO(content), strict=True)
        pages = len(reader.pages)
        found = active_content(reader)
    except (PyPdfError, ValueError, OSError) as exc:
        raise AppError(
            _("This PDF cannot be read: %(problem)s", problem=str(exc)[:200]),
            error="not_a_pdf",
            status=422,
        ) from None
    if pages < 1:
        raise AppError(_("This PDF has no pages."), error="not_a_pdf", status=422)
    if found is not None:
        raise AppError(
            _(
                "This PDF contains active content (%(name)s): scripts, actions or embedded "
                "files are not accepted. Export the invoice again as a plain PDF.",
                name=found,
            ),
            error="pdf_active_content",
            status=422,
        )


def active_content(reader: PdfReader) -> str | None:
    """The first active entry in every object reachable from the trailer, if any.

    An /OpenAction is accepted only as a bare destination (open at a page): any action
    dictionary there is refused, whatever its type."""
    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [reader.trailer]
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            if (item.idnum, item.generation) in seen:
                continue
            seen.add((item.idnum, item.generation))
            item = item.get_object()
        if isinstance(item, DictionaryObject):
            for key, value in item.items():
                if key in ACTIVE_KEYS:
                    return str(key)
                if key == "/OpenAction" and not isinstance(value.get_object(), ArrayObject):
                    return "/OpenAction"
            for key, names in (("/S", ACTIVE_ACTIONS), ("/Subtype", ACTIVE_SUBTYPES)):
                kind = item.get(key)
                if kind in names:
                    return str(kind)
            stack.extend(item.values())
        elif isinstance(item, ArrayObject):
            stack.extend(item)
    return None


def issue_invoice(
    invoice_id: int, pdf: bytes, now: datetime | None = None, *, amount_fen: int | None = None
) -> InvoiceRequest:
    """Attach the issued PDF. The 发票 is for what the order has kept now: if it was
    refunded since the request, the operator confirms the new net as `amount_fen`."""
    check_pdf(pdf)
    order_id = db.session.scalar(
        sa.select(InvoiceRequest.order_id).where(InvoiceRequest.id == invoice_id)
    )
    if order_id is None:
        raise NotFound(_("Invoice not found."), error="invoice_not_found")
    order = lock_order(order_id)
    invoice = _open_request(invoice_id)
    if refund_pending(order):
        raise _refund_pending_error()
    net = invoiceable_fen(order)
    if net <= 0:
        raise Conflict(
            _(
                "Order %(number)s was refunded in full: reject this request.",
                number=order.out_trade_no,
            ),
            error="nothing_to_invoice",
        )
    if (amount_fen if amount_fen is not None else invoice.amount_fen) != net:
        raise Conflict(
            _(
                "Order %(number)s was refunded after the request: %(net)d fen (not "
                "%(requested)d) can be invoiced. Issue the invoice for %(net)d fen and confirm "
                "it with --amount-fen %(net)d, or reject the request.",
                number=order.out_trade_no,
                net=net,
                requested=invoice.amount_fen,
            ),
            error="invoice_amount_changed",
        )
    invoice.amount_fen = net
    invoice.pdf = pdf
    invoice.status = InvoiceStatus.ISSUED
    invoice.issued_at = now or utcnow()
    db.session.flush()
    _tell(
        invoice,
        _("Your invoice for order %(number)s is ready", number=_order_number(invoice)),
        _(
            "The %(kind)s for order %(number)s (%(title)s) has been issued. Download it "
            "from the billing pages:\n%(link)s",
            kind=_kind_label(invoice),
            number=_order_number(invoice),
            title=invoice.title,
            link=external_url("invoices.index"),
        ),
    )
    return invoice


def reject_invoice(invoice_id: int, reason: str, now: datetime | None = None) -> InvoiceRequest:
    reason = reason.strip()
    if not reason:
        raise AppError(_("Give a reason for the rejection."), error="validation_error", status=422)
    invoice = _open_request(invoice_id)
    invoice.status = InvoiceStatus.REJECTED
    invoice.reject_reason = reason[:255]
    invoice.rejected_at = now or utcnow()
    db.session.flush()
    _tell(
        invoice,
        _(
            "Your invoice request for order %(number)s was not accepted",
            number=_order_number(invoice),
        ),
        _(
            "The invoice request for order %(number)s (%(title)s) was not accepted: "
            "%(reason)s\nCorrect the details and request it again:\n%(link)s",
            number=_order_number(invoice),
            title=invoice.title,
            reason=invoice.reject_reason,
            link=external_url("invoices.index"),
        ),
    )
    return invoice


def _order_number(invoice: InvoiceRequest) -> str:
    order = db.session.get(Order, invoice.order_id)
    return order.out_trade_no if order is not None else str(invoice.order_id)


def _kind_label(invoice: InvoiceRequest) -> str:
    if invoice.type == InvoiceType.SPECIAL:
        return _("special VAT invoice")
    return _("VAT invoice")


def _tell(invoice: InvoiceRequest, subject: str, body: str) -> None:
    """Mail the organization's managers and the address the request gave."""
    recipients = set(db.session.scalars(OrganizationMember.manager_emails(invoice.organization_id)))
    recipients.add(invoice.email)
    for email in sorted(recipients):
        send_mail(email, subject, body)
