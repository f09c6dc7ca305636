"""Operator commands: `flask billing grant ORG_ID PLAN --months N`, `flask billing ending-soon`."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup

from webapp.billing import services
from webapp.billing.periods import SHANGHAI
from webapp.errors import AppError
from webapp.extensions import db

billing_cli = AppGroup("billing", help="Plans and subscriptions.")


@billing_cli.command("grant")
@click.argument("organization_id", type=int)
@click.argument("plan")
@click.option(
    "--months", type=click.IntRange(1, 120), default=1, show_default=True, help="Months to give."
)
def grant(organization_id: int, plan: str, months: int) -> None:
    """Give an organization months of a paid plan, free of charge (recorded as an order)."""
    try:
        order = services.grant_plan(organization_id, plan, months)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    subscription = services.subscription_of(organization_id)
    end = subscription.current_period_end
    click.echo(
        f"Granted {months} month(s) of {order.plan.code} to organization {organization_id} "
        f"(order {order.out_trade_no}). Now on {subscription.plan.code}"
        + (f" until {end.astimezone(SHANGHAI):%Y-%m-%d %H:%M} (Asia/Shanghai)" if end else "")
        + (
            f"; {subscription.scheduled_plan.code} for {subscription.scheduled_months} month(s) "
            "follows."
            if subscription.scheduled_plan
            else "."
        )
    )


@billing_cli.command("ending-soon")
@click.option(
    "--days", type=click.IntRange(min=1), default=7, show_default=True, help="Look ahead this far."
)
def ending_soon(days: int) -> None:
    """List paid periods that end within the coming days (Asia/Shanghai times)."""
    ending = services.subscriptions_ending(timedelta(days=days))
    if not ending:
        click.echo(f"No paid period ends within {days} day(s).")
        return
    click.echo("organization_id\torganization\tplan\tperiod_end\tcancelled\tthen")
    for subscription in ending:
        end = subscription.current_period_end
        assert end is not None
        then = subscription.scheduled_plan.code if subscription.scheduled_plan else "free"
        click.echo(
            f"{subscription.organization_id}\t{subscription.organization.name}\t"
            f"{subscription.plan.code}\t{end.astimezone(SHANGHAI):%Y-%m-%d %H:%M}\t"
            f"{'yes' if subscription.cancel_at_period_end else 'no'}\t{then}"
        )
