"""Operator commands: `flask create-admin EMAIL`."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from webapp.auth import services
from webapp.errors import AppError
from webapp.extensions import db


@click.command("create-admin")
@click.argument("email")
@click.password_option()
@click.option("--name", default="", help="Display name.")
@with_appcontext
def create_admin(email: str, password: str, name: str) -> None:
    """Create a platform admin, or make an existing account one."""
    try:
        user = services.find_user_by_email(email)
        if user is None:
            user = services.register_user(email, password, name)
        user.is_platform_admin = True
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    click.echo(f"{user.email} is a platform admin.")
