from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy import orm

from webapp.db import Base, TimestampMixin, UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.orgs.models import OrganizationMember

EMAIL_MAX_LENGTH = 254
MAX_USER_ID = 2**31 - 1  # users.id is a PostgreSQL integer: larger ids in tokens are malformed
NAME_MAX_LENGTH = 100


class User(UserMixin, TimestampMixin, Base):
    __tablename__ = "users"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    # Stored normalised (lower case); see auth.services.normalize_email.
    email: orm.Mapped[str] = orm.mapped_column(sa.String(EMAIL_MAX_LENGTH), unique=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(NAME_MAX_LENGTH), default="")
    password_hash: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    is_active_account: orm.Mapped[bool] = orm.mapped_column(default=True)
    is_platform_admin: orm.Mapped[bool] = orm.mapped_column(default=False)
    locale: orm.Mapped[str | None] = orm.mapped_column(sa.String(10))
    last_login_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    # Part of every portal session id (and remember-me cookie): bumping it ends them all.
    session_generation: orm.Mapped[int] = orm.mapped_column(default=0)

    memberships: orm.Mapped[list[OrganizationMember]] = orm.relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @property
    def is_active(self) -> bool:  # Flask-Login: inactive accounts cannot log in.
        return self.is_active_account

    @property
    def password_fingerprint(self) -> str:
        """Changes whenever the password changes; ties portal sessions and reset links to it."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]

    def get_id(self) -> str:
        """Flask-Login session id: `<id>.<session generation>` (see auth.views.load_user)."""
        return f"{self.id}.{self.session_generation}"

    @property
    def display_name(self) -> str:
        return self.name or self.email.split("@", 1)[0]

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class AuthSession(Base):
    """A login on the API: one refresh-token family.

    Refresh tokens rotate on every use; `current_jti` is the only one that is
    valid. Presenting an older one means it leaked, so the whole session is
    revoked (and with it every access token that carries its `sid`).
    """

    __tablename__ = "auth_sessions"

    id: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    user_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    current_jti: orm.Mapped[str] = orm.mapped_column(sa.String(36))
    created_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)
    last_refreshed_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    expires_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime())
    revoked_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    revoked_reason: orm.Mapped[str | None] = orm.mapped_column(sa.String(32))
    user_agent: orm.Mapped[str] = orm.mapped_column(sa.String(255), default="")

    user: orm.Mapped[User] = orm.relationship()
