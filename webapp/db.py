"""Declarative base, naming convention, shared column types and mixins."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so values are
    stored as naive UTC and made aware again when read.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not accepted; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(orm.DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)
    updated_at: orm.Mapped[datetime] = orm.mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow
    )


def commit_keeping_objects(session: orm.Session) -> None:
    """Commit without expiring the session's objects: for a response built from what the
    transaction just wrote, which would otherwise be read back (a new transaction and a
    query per object). Only for objects whose every column was set or returned by the flush."""
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def render_migration_item(type_: str, obj: object, autogen_context: Any) -> str | bool:
    """Alembic autogenerate hook: migrations that use UTCDateTime import its module."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("import webapp.db")
    return False


# How long a SQLite writer waits for another one (requests, the job thread) to commit
# before failing with "database is locked". Python's default, 5 s, is less than an
# embedding job may hold its batch's write (webapp.kb.tasks.embed_bot).
SQLITE_BUSY_TIMEOUT_MS = 30_000


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_settings(dbapi_connection: Any, _record: Any) -> None:
    """Per SQLite connection: enforce foreign keys (and so ON DELETE CASCADE), which
    SQLite ignores unless asked, and wait for other writers."""
    if type(dbapi_connection).__module__ == "sqlite3":
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()


class PreparedStatement:
    """A PostgreSQL statement PREPAREd once per database connection, then EXECUTEd.

    For hot statements whose planning costs more than their execution. `sql` names its
    parameters `%(name)s`; `parameters` maps each name to its PostgreSQL type, in order.
    A prepared statement outlives rolled-back transactions; it lives as long as the
    connection, which is where we remember it (`connection.info`).
    """

    def __init__(self, name: str, sql: str, parameters: dict[str, str]) -> None:
        self.name = name
        positions = {parameter: n for n, parameter in enumerate(parameters, start=1)}
        self.prepare = f"PREPARE {name} ({', '.join(parameters.values())}) AS " + re.sub(
            r"%\((\w+)\)s", lambda match: f"${positions[match[1]]}", sql
        )
        # Cast each value: a list of NULLs would otherwise be a text[].
        self.execute = (
            f"EXECUTE {name} ("
            + ", ".join(f"%({parameter})s::{kind}" for parameter, kind in parameters.items())
            + ")"
        )

    def run(
        self, connection: sa.Connection, parameters: dict[str, Any]
    ) -> sa.CursorResult[*tuple[Any, ...]]:
        prepared = connection.connection.info
        if self.name not in prepared:
            connection.exec_driver_sql(self.prepare)
            prepared[self.name] = True
        return connection.exec_driver_sql(self.execute, parameters)
