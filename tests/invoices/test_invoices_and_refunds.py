"""A 发票 is for what the customer paid net of refunds, whenever the refund happens.

Refunded before the request: the request carries the net (or is refused when nothing
is left, or while a refund is pending). Refunded after the request: issuing needs the
operator to confirm the new net. Refunded after issuing: `flask billing invoices`
flags the 发票 for a 红字发票.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.api import assert_error
from tests.invoices.conftest import NORMAL, issue, make_paid_order, pdf_bytes, refund_of
from webapp.errors import AppError
from webapp.extensions import db
from webapp.invoices import services
from webapp.payments.models import Refund, RefundStatus

URL = "/api/v1/billing/invoices"


def _listed(billing_cli: Any, invoice_id: int) -> dict[str, str]:
    """The `flask billing invoices` row of one request, by column name."""
    output = billing_cli("invoices").output.splitlines()
    header = output[0].split("\t")
    for line in output[1:]:
        row = dict(zip(header, line.split("\t"), strict=True))
        if row["id"] == str(invoice_id):
            return row
    raise AssertionError(f"invoice {invoice_id} not listed")


def _issue_error(app: Any, invoice_id: int, amount_fen: int | None = None) -> str:
    with app.app_context():
        with pytest.raises(AppError) as raised:
            services.issue_invoice(invoice_id, pdf_bytes(), amount_fen=amount_fen)
        db.session.rollback()
    return str(raised.value.error)


def test_a_request_refunded_since_is_issued_only_for_the_confirmed_net(
    app: Any, api_client: Any, paid_order: int, billing_cli: Any, tmp_path: Any
) -> None:
    invoice = api_client.post(URL, json={"order_id": paid_order, **NORMAL}).get_json()
    assert invoice["amount_fen"] == 19900
    refund_of(app, paid_order, 4900)

    row = _listed(billing_cli, invoice["id"])
    assert (row["amount_fen"], row["net_fen"], row["attention"]) == (
        "19900",
        "15000",
        "amount_changed",
    )
    assert _issue_error(app, invoice["id"]) == "invoice_amount_changed"
    assert _issue_error(app, invoice["id"], amount_fen=19900) == "invoice_amount_changed"
    pdf = tmp_path / "fapiao.pdf"
    pdf.write_bytes(pdf_bytes())
    refused = billing_cli("invoice-issued", str(invoice["id"]), "--pdf", str(pdf))
    assert refused.exit_code != 0 and "invoice_amount_changed" in refused.output
    assert "--amount-fen 15000" in refused.output
    assert api_client.get(f"{URL}/{invoice['id']}").get_json()["status"] == "requested"

    issued = billing_cli(
        "invoice-issued", str(invoice["id"]), "--pdf", str(pdf), "--amount-fen", "15000"
    )
    assert issued.exit_code == 0, issued.output
    body = api_client.get(f"{URL}/{invoice['id']}").get_json()
    assert (body["status"], body["amount_fen"]) == ("issued", 15000)
    assert _listed(billing_cli, invoice["id"])["attention"] == ""


def test_an_order_refunded_in_full_after_the_request_cannot_be_issued(
    app: Any, api_client: Any, paid_order: int, billing_cli: Any
) -> None:
    invoice = api_client.post(URL, json={"order_id": paid_order, **NORMAL}).get_json()
    refund_of(app, paid_order, 19900)
    row = _listed(billing_cli, invoice["id"])
    assert (row["net_fen"], row["attention"]) == ("0", "refunded_in_full")
    assert _issue_error(app, invoice["id"]) == "nothing_to_invoice"
    assert _issue_error(app, invoice["id"], amount_fen=19900) == "nothing_to_invoice"
    assert api_client.get(f"{URL}/{invoice['id']}").get_json()["status"] == "requested"


def test_no_request_and_no_issuing_while_a_refund_is_pending(
    app: Any, api_client: Any, user: Any, org: dict[str, Any], billing_cli: Any
) -> None:
    order_id = make_paid_order(app, user, org["id"])
    refund_id = refund_of(app, order_id, 19900, RefundStatus.PENDING)
    assert_error(api_client.post(URL, json={"order_id": order_id, **NORMAL}), 409, "refund_pending")

    other = make_paid_order(app, user, org["id"])
    invoice = api_client.post(URL, json={"order_id": other, **NORMAL}).get_json()
    refund_of(app, other, 100, RefundStatus.PENDING)
    assert _listed(billing_cli, invoice["id"])["attention"] == "refund_pending"
    assert _issue_error(app, invoice["id"]) == "refund_pending"

    # The refund failed: the money stayed, the order is invoiced in full.
    with app.app_context():
        db.session.execute(
            sa.update(Refund).where(Refund.id == refund_id).values(status=RefundStatus.FAILED)
        )
        db.session.commit()
    created = api_client.post(URL, json={"order_id": order_id, **NORMAL})
    assert created.status_code == 201 and created.get_json()["amount_fen"] == 19900


def test_an_issued_invoice_refunded_later_is_flagged_for_a_red_letter_invoice(
    app: Any, api_client: Any, paid_order: int, billing_cli: Any
) -> None:
    invoice = api_client.post(URL, json={"order_id": paid_order, **NORMAL}).get_json()
    issue(app, invoice["id"])
    assert _listed(billing_cli, invoice["id"])["attention"] == ""
    refund_of(app, paid_order, 4900)
    row = _listed(billing_cli, invoice["id"])
    assert (row["status"], row["net_fen"], row["attention"]) == (
        "issued",
        "15000",
        "red_letter_needed",
    )
    needing = billing_cli("invoices", "--attention").output.splitlines()
    assert [line.split("\t")[0] for line in needing[1:]] == [str(invoice["id"])]
    assert (
        billing_cli("invoices", "--status", "requested", "--attention").output.strip()
        == "No invoice requests needing attention with status requested."
    )
