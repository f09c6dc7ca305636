"""Operator commands: `flask payments reconcile [--expired-only]`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from webapp.payments import tasks

payments_cli = AppGroup("payments", help="Payment orders at WeChat Pay and Alipay.")


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
