"""Reconciliation edge cases, on bill lines as the parsers return them: refunds in a
channel's bill that we do not have, without a request number of ours, or listed twice."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.invoices.conftest import make_paid_order, refund_of
from webapp.billing.models import Order
from webapp.billing.periods import SHANGHAI
from webapp.db import utcnow
from webapp.extensions import db
from webapp.payments import bills
from webapp.payments.models import Payment, Refund


def test_refunds_in_the_bill_we_do_not_have_are_differences(
    app: Any, user: Any, org: dict[str, Any]
) -> None:
    order_id = make_paid_order(app, user, org["id"])
    refund_id = refund_of(app, order_id, 1000)
    with app.app_context():
        order = db.session.get(Order, order_id)
        payment = db.session.scalar(sa.select(Payment).where(Payment.order_id == order_id))
        ours = db.session.get(Refund, refund_id)
        assert order is not None and payment is not None and ours is not None
        number, trade = ours.out_refund_no, order.out_trade_no
        day = utcnow().astimezone(SHANGHAI).date()

        def refund_line(out_refund_no: str | None, amount: int) -> bills.BillLine:
            return bills.BillLine("wechat", "refund", trade, out_refund_no, amount)

        payment_line = bills.BillLine("wechat", "payment", trade, None, payment.amount_fen)
        clean = bills.compare("wechat", day, [payment_line, refund_line(number, 1000)])
        assert clean == []

        found = bills.compare(
            "wechat",
            day,
            [
                payment_line,
                refund_line(number, 1000),
                refund_line(number, 1000),  # the same refund, listed twice: paid out twice
                refund_line("RNOTOURS000000000000000001", 500),  # never heard of
                refund_line("", 700),  # made in the merchant console: no number of ours
            ],
        )
    assert {(d.kind, d.out_refund_no, d.ours_fen, d.theirs_fen) for d in found} == {
        ("refund_amount_differs", number, 1000, 2000),
        ("refund_there_not_here", "RNOTOURS000000000000000001", None, 500),
        ("refund_there_not_here", None, None, 700),
    }
