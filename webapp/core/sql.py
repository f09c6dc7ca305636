"""SQL the ORM does not spell the same way on every database."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db


def upsert_insert(model: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports ON CONFLICT, for the database the session talks to."""
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)
