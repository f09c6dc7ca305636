"""Operator commands (`flask --help`)."""

from __future__ import annotations

import click
from flask import Flask

from webapp.auth import services as auth_services
from webapp.errors import AppError
from webapp.extensions import db


def register_commands(app: Flask) -> None:
    from webapp.billing.cli import billing_cli
    from webapp.kb.cli import kb_cli
    from webapp.payments.cli import payments_cli

    app.cli.add_command(billing_cli)
    app.cli.add_command(kb_cli)
    app.cli.add_command(payments_cli)

    @app.cli.command("create-admin")
    @click.argument("email")
    @click.password_option()
    @click.option("--name", default="", help="Display name.")
    def create_admin(email: str, password: str, name: str) -> None:
        """Create a platform admin, or make an existing account one."""
        try:
            user = auth_services.find_user_by_email(email)
            if user is None:
                user = auth_services.register_user(email, password, name)
            user.is_platform_admin = True
            db.session.commit()
        except AppError as exc:
            db.session.rollback()
            raise click.ClickException(exc.message) from None
        click.echo(f"{user.email} is a platform admin.")
