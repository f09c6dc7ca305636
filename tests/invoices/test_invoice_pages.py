"""Portal pages for 发票 and refunds, with CSRF on: the order page offers the request (to
owners and admins) and shows refunds; the billing page lists refunded orders; the
invoices page lists requests and serves issued PDFs."""

from __future__ import annotations

from typing import Any

from tests.api import add_member
from tests.invoices.conftest import NORMAL, make_paid_order, pdf_bytes, refund_of
from tests.portal.conftest import Portal, zh
from webapp.extensions import db
from webapp.invoices import services


def test_an_owner_requests_an_invoice_from_the_order_page(
    app: Any, logged_in: Portal, user: Any
) -> None:
    org_id = logged_in.create_org("发票公司")
    order_id = make_paid_order(app, user, org_id)
    page = logged_in.page(f"/billing/orders/{order_id}")
    assert 'id="request-invoice"' in page

    form = f"/billing/orders/{order_id}/invoice"
    assert user.email in logged_in.page(form)
    bad = logged_in.submit(form, {**NORMAL, "tax_id": "91350100M000100Y44"})
    assert bad.status_code == 200
    assert zh(
        app,
        "Not a valid tax id: an 18-character unified social credit code (with its "
        "check character), or a 15- or 20-character tax registration number.",
    ) in bad.get_data(as_text=True)

    done = logged_in.submit(form, dict(NORMAL))
    assert done.status_code == 302 and done.headers["Location"] == "/billing/invoices"
    listing = logged_in.page("/billing/invoices")
    assert 'data-status="requested"' in listing and NORMAL["title"] in listing
    assert 'data-invoice-status="requested"' in logged_in.page(f"/billing/orders/{order_id}")

    with app.app_context():
        (invoice,) = services.invoices_with_status("requested")
        services.issue_invoice(invoice.id, pdf_bytes())
        db.session.commit()
        invoice_id = invoice.id
    assert 'id="order-invoice-download"' in logged_in.page(f"/billing/orders/{order_id}")
    download = logged_in.get(f"/billing/invoices/{invoice_id}/pdf")
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.headers["Content-Disposition"].startswith("attachment;")


def test_members_see_invoices_but_cannot_request_strangers_get_404(
    app: Any, logged_in: Portal, user: Any, make_user: Any, make_portal: Any
) -> None:
    org_id = logged_in.create_org("发票公司")
    order_id = make_paid_order(app, user, org_id)
    member = make_user()
    add_member(app, org_id, member)
    reader = make_portal()
    reader.login(member.email)
    assert 'id="request-invoice"' not in reader.page(f"/billing/orders/{order_id}")
    assert reader.get(f"/billing/orders/{order_id}/invoice").status_code == 403
    assert reader.get("/billing/invoices").status_code == 200

    stranger = make_portal()
    stranger.login(make_user().email)
    assert stranger.get(f"/billing/orders/{order_id}/invoice").status_code == 404
    assert stranger.get("/billing/invoices/999999/pdf").status_code == 404


def test_refunds_show_on_the_order_and_billing_pages(
    app: Any, logged_in: Portal, user: Any
) -> None:
    org_id = logged_in.create_org("退款公司")
    order_id = make_paid_order(app, user, org_id)
    assert 'id="order-refunds"' not in logged_in.page(f"/billing/orders/{order_id}")
    refund_of(app, order_id, 4900)
    page = logged_in.page(f"/billing/orders/{order_id}")
    assert 'class="order-refund" data-status="succeeded" data-amount-fen="4900"' in page
    assert 'data-refunded-fen="4900"' in page
    billing = logged_in.page("/billing")
    assert 'id="refunded-orders"' in billing
    assert f'data-order-id="{order_id}" data-status="succeeded"' in billing
