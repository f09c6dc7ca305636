"""Operator commands: `flask payments reconcile | refund | refunds | retry-refund | bills`."""

from __future__ import annotations

import sys
from datetime import date, datetime

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from webapp.billing import services as billing_services
from webapp.billing.models import Order
from webapp.billing.periods import SHANGHAI
from webapp.core.cli import echo_rows, status_option
from webapp.errors import AppError
from webapp.extensions import db
from webapp.payments import bills, refunds, tasks
from webapp.payments.models import Channel, Refund, RefundStatus

payments_cli = AppGroup(
    "payments", help="Payment orders, refunds and bills at WeChat Pay and Alipay."
)


@payments_cli.command("reconcile")
@click.option(
    "--expired-only",
    is_flag=True,
    help="Only close pending orders past their expiry (the every-few-minutes job).",
)
def reconcile(expired_only: bool) -> None:
    """Ask the providers about pending orders: fulfil the paid ones, close the expired ones."""
    counts = tasks.close_expired_orders() if expired_only else tasks.reconcile_pending_orders()
    click.echo(" ".join(f"{name}={count}" for name, count in counts.items()))


def _local(moment: datetime | None) -> str:
    return f"{moment.astimezone(SHANGHAI):%Y-%m-%d %H:%M}" if moment else "-"


def _send_and_report(refund_id: int) -> None:
    """Send the refund now (the worker keeps asking while it is pending) and say how it went;
    exit status 1 if the channel refused it."""
    refunds.send_refund(refund_id)
    refund = refunds.get_refund(refund_id)
    order = db.session.get(Order, refund.order_id)
    assert order is not None
    click.echo(
        f"Refund {refund.id} ({refund.out_refund_no}) of {refund.amount_fen} fen for order "
        f"{order.out_trade_no} through {refund.channel}: {refund.status}"
        + (f" — {refund.failure_reason}" if refund.failure_reason else "")
    )
    if refund.status == RefundStatus.FAILED:
        click.echo(f"Retry it with: flask payments retry-refund {refund.id}", err=True)
        sys.exit(1)


@payments_cli.command("refund")
@click.argument("order_id", type=int)
@click.option(
    "--amount-fen",
    type=click.IntRange(min=1),
    default=None,
    help="How much, in fen. Default: all that is left of the order's payment.",
)
@click.option("--reason", required=True, help="Why; the customer sees it, the channel gets it.")
@click.option(
    "--end-plan",
    is_flag=True,
    help="Also take back the paid period this order bought (the organization goes back to "
    "what it had before, or free). Without it the subscription is left as it is.",
)
def refund(order_id: int, amount_fen: int | None, reason: str, end_plan: bool) -> None:
    """Refund an order through the channel that was paid, never more than was paid."""
    try:
        created = refunds.create_refund(order_id, reason, amount_fen)
        subscription = billing_services.end_order_period(order_id) if end_plan else None
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    if subscription is not None:
        end = subscription.current_period_end
        click.echo(
            f"Organization {subscription.organization_id} is now on {subscription.plan.code}"
            + (f" until {_local(end)} (Asia/Shanghai)." if end else ".")
        )
    _send_and_report(created.id)


@payments_cli.command("retry-refund")
@click.argument("refund_id", type=int)
@click.option(
    "--abnormal-handled",
    is_flag=True,
    help="A WeChat Pay ABNORMAL refund: it has been closed in the merchant platform.",
)
def retry_refund(refund_id: int, abnormal_handled: bool) -> None:
    """Send a failed refund again (Alipay: the same out_request_no; WeChat Pay: the same
    out_refund_no if it refused the request, a new one if it closed the refund)."""
    try:
        again = refunds.retry_refund(refund_id, abnormal_handled=abnormal_handled)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    _send_and_report(again.id)


@payments_cli.command("refunds")
@status_option(RefundStatus)
def list_refunds(status: str | None) -> None:
    """List refunds, oldest first (tab-separated, times in Asia/Shanghai)."""
    query = (
        sa.select(Refund, Order.out_trade_no)
        .join(Order, Order.id == Refund.order_id)
        .order_by(Refund.id)
    )
    if status:
        query = query.where(Refund.status == status)
    echo_rows(
        "id\tcreated\torder_id\tout_trade_no\tchannel\tout_refund_no\tamount_fen\tstatus\t"
        "reason\tfailure",
        (
            f"{item.id}\t{_local(item.created_at)}\t{item.order_id}\t{out_trade_no}\t"
            f"{item.channel}\t{item.out_refund_no}\t{item.amount_fen}\t{item.status}\t"
            f"{item.reason}\t{item.failure_reason}"
            for item, out_trade_no in db.session.execute(query)
        ),
        nothing="refunds",
        status=status,
    )


@payments_cli.command("bills")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    required=True,
    help="The day (Asia/Shanghai), YYYY-MM-DD.",
)
@click.option("--channel", type=click.Choice([channel.value for channel in Channel]), default=None)
def bills_command(day: datetime, channel: str | None) -> None:
    """Download the channels' trade bills for a day and print every difference with our
    payments and refunds; exit status 1 when there is any."""
    billed: date = day.date()
    differences = bills.reconcile(billed, [channel] if channel else list(Channel))
    db.session.commit()  # the bill downloads' payment events
    if not differences:
        click.echo(f"No differences on {billed.isoformat()}.")
        return
    click.echo("channel\tkind\tnumber\tamounts\twhat")
    for difference in differences:
        click.echo(difference.describe())
    click.echo(f"{len(differences)} difference(s) on {billed.isoformat()}.", err=True)
    sys.exit(1)
