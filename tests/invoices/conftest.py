"""Invoice fixtures: a paid order (its payment recorded as the payments feature records
one), PDFs made with pypdf, and the operators' commands."""

from __future__ import annotations

import io
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from pypdf import PdfWriter

# The portal's CSRF-aware browser fixtures, for the invoice pages.
from tests.portal.conftest import logged_in, make_portal, portal  # noqa: F401
from webapp.billing import services as billing_services
from webapp.db import utcnow
from webapp.extensions import db
from webapp.invoices import services
from webapp.orgs import services as orgs_services
from webapp.payments.models import Payment, PaymentDisposition, Refund, RefundStatus
from webapp.payments.refunds import new_out_refund_no

VALID_USCC = "91350100M000100Y43"
NORMAL = {
    "type": "normal",
    "title": "示例科技有限公司",
    "tax_id": VALID_USCC,
    "email": "cw@example.com",
}
SPECIAL_EXTRA = {
    "bank_name": "招商银行深圳分行",
    "bank_account": "755912345610001",
    "registered_address": "深圳市南山区科技园 1 号",
    "registered_phone": "0755-12345678",
}


def pdf_bytes(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_paid_order(app: Flask, user: Any, organization_id: int, plan: str = "pro") -> int:
    """An order of the organization, paid through WeChat Pay and applied."""
    with app.app_context():
        member = orgs_services.membership_for(user, organization_id)
        order = billing_services.create_order(member, plan, 1)
        billing_services.fulfil_order(order.id, channel="wechat", provider_trade_no="4200test")
        db.session.add(
            Payment(
                order_id=order.id,
                channel="wechat",
                provider_trade_no="4200test",
                amount_fen=order.amount_fen,
                disposition=PaymentDisposition.APPLIED,
                paid_at=utcnow(),
            )
        )
        db.session.commit()
        return order.id


def refund_of(
    app: Flask, order_id: int, amount_fen: int, status: RefundStatus = RefundStatus.SUCCEEDED
) -> int:
    """A refund of the order's payment that went through (or is still `status`)."""
    with app.app_context():
        payment = db.session.scalar(sa.select(Payment).where(Payment.order_id == order_id))
        assert payment is not None
        refund = Refund(
            order_id=order_id,
            payment_id=payment.id,
            channel=payment.channel,
            out_refund_no=new_out_refund_no(utcnow()),
            amount_fen=amount_fen,
            status=status,
            reason="测试",
            succeeded_at=utcnow() if status == RefundStatus.SUCCEEDED else None,
        )
        db.session.add(refund)
        db.session.commit()
        return refund.id


def issue(app: Flask, invoice_id: int) -> None:
    """The operator issues the request with a blank one-page PDF."""
    with app.app_context():
        services.issue_invoice(invoice_id, pdf_bytes())
        db.session.commit()


@pytest.fixture
def paid_order(app: Flask, user: Any, org: dict[str, Any]) -> int:
    return make_paid_order(app, user, org["id"])


@pytest.fixture
def billing_cli(app: Flask) -> Any:
    def invoke(*args: str) -> Any:
        return app.test_cli_runner().invoke(args=["billing", *args])

    return invoke
