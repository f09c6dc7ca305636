"""Operator commands for 发票, in the billing group: `flask billing invoices`,
`flask billing invoice-issued ID --pdf FILE`, `flask billing invoice-rejected ID --reason`."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from webapp.billing.models import Order
from webapp.billing.periods import SHANGHAI
from webapp.core.cli import echo_rows, status_option
from webapp.errors import AppError
from webapp.extensions import db
from webapp.invoices import services
from webapp.invoices.models import InvoiceRequest, InvoiceStatus, InvoiceType


@click.command("invoices")
@with_appcontext
@status_option(InvoiceStatus)
@click.option(
    "--attention",
    "needing_attention",
    is_flag=True,
    help="Only requests whose order was refunded since (see the attention column).",
)
def list_invoices(status: str | None, needing_attention: bool) -> None:
    """List invoice requests, oldest first (tab-separated; times in Asia/Shanghai).

    net_fen is what the order has kept now; attention says what a request needs when
    that differs: refund_pending (wait), refunded_in_full (reject), amount_changed (issue
    for net_fen or reject), red_letter_needed (issued, then refunded: issue a 红字发票).
    --attention: only those.
    """
    found = [
        (invoice, *services.attention(invoice)) for invoice in services.invoices_with_status(status)
    ]
    echo_rows(
        "id\trequested\torganization_id\tout_trade_no\ttype\ttitle\ttax_id\tamount_fen\temail\t"
        "status\tnet_fen\tattention\tbank_name\tbank_account\tregistered_address\tregistered_phone",
        (_invoice_row(*row) for row in found if row[2] or not needing_attention),
        nothing="invoice requests needing attention" if needing_attention else "invoice requests",
        status=status,
    )


def _invoice_row(invoice: InvoiceRequest, net: int, attention: str) -> str:
    order = db.session.get(Order, invoice.order_id)
    special = (
        f"\t{invoice.bank_name}\t{invoice.bank_account}\t{invoice.registered_address}\t"
        f"{invoice.registered_phone}"
        if invoice.type == InvoiceType.SPECIAL
        else "\t\t\t\t"
    )
    return (
        f"{invoice.id}\t{invoice.created_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}\t"
        f"{invoice.organization_id}\t{order.out_trade_no if order else ''}\t{invoice.type}\t"
        f"{invoice.title}\t{invoice.tax_id}\t{invoice.amount_fen}\t{invoice.email}\t"
        f"{invoice.status}\t{net}\t{attention}{special}"
    )


@click.command("invoice-issued")
@with_appcontext
@click.argument("invoice_id", type=int)
@click.option(
    "--pdf",
    "pdf_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help=f"The issued 发票 (a PDF of at most {services.MAX_PDF_BYTES // (1024 * 1024)} MiB).",
)
@click.option(
    "--amount-fen",
    type=click.IntRange(min=1),
    default=None,
    help="The 发票's amount, when the order was refunded after the request (see net_fen).",
)
def invoice_issued(invoice_id: int, pdf_path: Path, amount_fen: int | None) -> None:
    """Attach the issued PDF to a request: the customer can download it; they are mailed."""
    if pdf_path.stat().st_size > services.MAX_PDF_BYTES:
        raise click.ClickException(
            f"{pdf_path} is larger than {services.MAX_PDF_BYTES // (1024 * 1024)} MiB."
        )
    try:
        invoice = services.issue_invoice(invoice_id, pdf_path.read_bytes(), amount_fen=amount_fen)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        raise click.ClickException(f"{exc.message} ({exc.error})") from None
    click.echo(f"Invoice {invoice.id} issued; {invoice.email} and the managers are mailed.")


@click.command("invoice-rejected")
@with_appcontext
@click.argument("invoice_id", type=int)
@click.option("--reason", required=True, help="Why; the customer reads it.")
def invoice_rejected(invoice_id: int, reason: str) -> None:
    """Reject a request (the customer may request again); they are mailed the reason."""
    try:
        invoice = services.reject_invoice(invoice_id, reason)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    click.echo(f"Invoice {invoice.id} rejected; {invoice.email} and the managers are mailed.")


# Added to `flask billing` by the factory.
INVOICE_COMMANDS = (list_invoices, invoice_issued, invoice_rejected)
