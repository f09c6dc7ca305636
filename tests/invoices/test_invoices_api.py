"""发票 requests through /api/v1/billing/invoices and the operators' commands."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import add_member, assert_error
from tests.invoices.conftest import (
    NORMAL,
    SPECIAL_EXTRA,
    VALID_USCC,
    issue,
    make_paid_order,
    pdf_bytes,
    refund_of,
)
from webapp.billing import services as billing_services
from webapp.extensions import db, mail
from webapp.invoices import services
from webapp.orgs import services as orgs_services

URL = "/api/v1/billing/invoices"


@pytest.mark.parametrize(
    ("tax_id", "valid"),
    [
        (VALID_USCC, True),
        ("9144030071526726XG", True),
        ("91330100716105852F", True),
        ("91350100M000100Y44", False),  # wrong check character
        ("91350100M000I00Y43", False),  # I is not in the alphabet
        ("91350100M000100Y4", False),
        ("110108551385082", True),  # 15-character tax registration number
        ("11010819800101123X02", True),  # 20 characters
        ("1101085513850", False),
        ("11010855138508-", False),
    ],
)
def test_tax_ids(tax_id: str, valid: bool) -> None:
    assert services.valid_tax_id(tax_id) is valid


def test_an_owner_requests_a_normal_invoice(
    api_client: Any, org: dict[str, Any], paid_order: int
) -> None:
    created = api_client.post(
        URL, json={"order_id": paid_order, **NORMAL, "tax_id": " 91350100m000100y43 "}
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert {
        k: body[k] for k in ("order_id", "type", "title", "tax_id", "status", "amount_fen")
    } == {
        "order_id": paid_order,
        "type": "normal",
        "title": "示例科技有限公司",
        "tax_id": VALID_USCC,
        "status": "requested",
        "amount_fen": 19900,
    }
    assert body["pdf_url"] is None and body["bank_name"] == ""

    listed = api_client.get(URL)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.get_json()] == [body["id"]]
    assert api_client.get(f"{URL}/{body['id']}").get_json() == body
    assert_error(api_client.get(f"{URL}/{body['id']}/pdf"), 404, "invoice_not_issued")

    again = api_client.post(URL, json={"order_id": paid_order, **NORMAL})
    assert_error(again, 409, "invoice_already_requested")


def test_a_special_invoice_needs_the_buyers_bank_and_address(
    api_client: Any, paid_order: int
) -> None:
    missing = api_client.post(URL, json={"order_id": paid_order, **NORMAL, "type": "special"})
    body = assert_error(missing, 422, "validation_error")
    assert set(body["errors"]) == set(SPECIAL_EXTRA)
    created = api_client.post(
        URL, json={"order_id": paid_order, **NORMAL, "type": "special", **SPECIAL_EXTRA}
    )
    assert created.status_code == 201
    assert created.get_json()["bank_account"] == SPECIAL_EXTRA["bank_account"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tax_id": "91350100M000100Y44"}, "tax_id"),
        ({"type": "fancy"}, "type"),
        ({"email": "not-an-email"}, "email"),
        ({"title": ""}, "title"),
        ({"title": "x" * 101}, "title"),
    ],
)
def test_invalid_requests_are_422(
    api_client: Any, paid_order: int, change: dict[str, str], field: str
) -> None:
    body = assert_error(
        api_client.post(URL, json={"order_id": paid_order, **NORMAL, **change}),
        422,
        "validation_error",
    )
    assert field in str(body["errors"])


def test_only_money_kept_is_invoiced(
    app: Any, api_client: Any, user: Any, org: dict[str, Any]
) -> None:
    with app.app_context():
        member = orgs_services.membership_for(user, org["id"])
        pending = billing_services.create_order(member, "pro", 1).id
        db.session.commit()
    assert_error(api_client.post(URL, json={"order_id": pending, **NORMAL}), 409, "order_not_paid")

    refunded = make_paid_order(app, user, org["id"])
    refund_of(app, refunded, 19900)
    assert_error(
        api_client.post(URL, json={"order_id": refunded, **NORMAL}), 409, "nothing_to_invoice"
    )
    partly = make_paid_order(app, user, org["id"])
    refund_of(app, partly, 4900)
    created = api_client.post(URL, json={"order_id": partly, **NORMAL})
    assert created.get_json()["amount_fen"] == 15000
    assert_error(
        api_client.post(URL, json={"order_id": 999999999, **NORMAL}), 404, "order_not_found"
    )


def test_members_read_strangers_see_nothing_keys_are_refused(
    app: Any,
    client: Any,
    api_client: Any,
    org: dict[str, Any],
    paid_order: int,
    make_user: Any,
    make_api_client: Any,
) -> None:
    invoice = api_client.post(URL, json={"order_id": paid_order, **NORMAL}).get_json()
    member = make_user()
    add_member(app, org["id"], member)
    reader = make_api_client(member)
    assert reader.get(URL).status_code == 200
    assert_error(reader.post(URL, json={"order_id": paid_order, **NORMAL}), 403, "forbidden")

    stranger = make_api_client()
    stranger.post("/api/v1/organizations", json={"name": "别家公司"})
    assert_error(stranger.get(f"{URL}/{invoice['id']}"), 404, "invoice_not_found")
    assert_error(stranger.get(f"{URL}/{invoice['id']}/pdf"), 404, "invoice_not_found")
    assert stranger.get(URL).get_json() == []
    assert client.get(URL).status_code == 401


def test_operators_list_issue_and_reject(
    app: Any,
    api_client: Any,
    user: Any,
    org: dict[str, Any],
    paid_order: int,
    billing_cli: Any,
    tmp_path: Any,
) -> None:
    invoice = api_client.post(
        URL, json={"order_id": paid_order, **NORMAL, "type": "special", **SPECIAL_EXTRA}
    ).get_json()
    listed = billing_cli("invoices", "--status", "requested")
    assert listed.exit_code == 0
    assert VALID_USCC in listed.output and SPECIAL_EXTRA["bank_account"] in listed.output
    assert (
        "No invoice requests with status issued."
        in billing_cli("invoices", "--status", "issued").output
    )

    not_pdf = tmp_path / "fapiao.pdf"
    not_pdf.write_bytes(b"%PDF-1.7 but not really")
    refused = billing_cli("invoice-issued", str(invoice["id"]), "--pdf", str(not_pdf))
    assert refused.exit_code != 0
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF-" + b"0" * services.MAX_PDF_BYTES)
    assert billing_cli("invoice-issued", str(invoice["id"]), "--pdf", str(big)).exit_code != 0
    assert api_client.get(f"{URL}/{invoice['id']}").get_json()["status"] == "requested"

    good = tmp_path / "good.pdf"
    content = pdf_bytes()
    good.write_bytes(content)
    with mail.record_messages() as outbox:
        issued = billing_cli("invoice-issued", str(invoice["id"]), "--pdf", str(good))
    assert issued.exit_code == 0, issued.output
    assert sorted(r for m in outbox for r in m.recipients) == sorted([user.email, NORMAL["email"]])
    body = api_client.get(f"{URL}/{invoice['id']}").get_json()
    assert body["status"] == "issued" and body["issued_at"]
    assert body["pdf_url"] == f"{URL}/{invoice['id']}/pdf"
    download = api_client.get(body["pdf_url"])
    assert download.status_code == 200
    assert download.mimetype == "application/pdf"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.data == content
    assert billing_cli("invoice-rejected", str(invoice["id"]), "--reason", "太晚").exit_code != 0

    other = make_paid_order(app, user, org["id"])
    second = api_client.post(URL, json={"order_id": other, **NORMAL}).get_json()
    with mail.record_messages() as outbox:
        rejected = billing_cli("invoice-rejected", str(second["id"]), "--reason", "税号与抬头不符")
    assert rejected.exit_code == 0
    assert any("税号与抬头不符" in (m.body or "") for m in outbox)
    body = api_client.get(f"{URL}/{second['id']}").get_json()
    assert (body["status"], body["reject_reason"]) == ("rejected", "税号与抬头不符")
    # Rejected: the order may be asked for again.
    assert api_client.post(URL, json={"order_id": other, **NORMAL}).status_code == 201
    assert billing_cli("invoice-issued", "999999", "--pdf", str(good)).exit_code != 0


def test_another_organizations_invoices_orders_and_refunds_are_404(
    app: Any,
    api_client: Any,
    user: Any,
    org: dict[str, Any],
    paid_order: int,
    make_user: Any,
    make_api_client: Any,
) -> None:
    """Also for someone in both organizations who names the other one."""
    invoice = api_client.post(URL, json={"order_id": paid_order, **NORMAL}).get_json()
    issue(app, invoice["id"])
    refund_of(app, paid_order, 100)

    stranger_user = make_user()
    stranger = make_api_client(stranger_user)
    other = stranger.post("/api/v1/organizations", json={"name": "别家公司"}).get_json()
    add_member(app, other["id"], user, "owner")
    as_other = {"X-Organization-ID": str(other["id"])}
    for client, headers in ((stranger, {}), (api_client, as_other)):
        assert_error(
            client.get(f"{URL}/{invoice['id']}", headers=headers), 404, "invoice_not_found"
        )
        assert_error(
            client.get(f"{URL}/{invoice['id']}/pdf", headers=headers), 404, "invoice_not_found"
        )
        assert client.get(URL, headers=headers).get_json() == []
        assert_error(
            client.post(URL, json={"order_id": paid_order, **NORMAL}, headers=headers),
            404,
            "order_not_found",
        )
        assert_error(
            client.get(f"/api/v1/payments/orders/{paid_order}", headers=headers),
            404,
            "order_not_found",
        )
    # Their own organization still sees the refund on the order.
    mine = api_client.get(
        f"/api/v1/payments/orders/{paid_order}", headers={"X-Organization-ID": str(org["id"])}
    ).get_json()
    assert mine["refunded_fen"] == 100 and len(mine["refunds"]) == 1
