from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import orm

from webapp.auth.models import User
from webapp.db import Base, TimestampMixin, UTCDateTime, utcnow
from webapp.errors import Forbidden

if TYPE_CHECKING:
    from webapp.billing.models import Subscription

ORG_NAME_MAX_LENGTH = 100


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"

    @property
    def can_manage_members(self) -> bool:
        return self in (Role.OWNER, Role.ADMIN)

    @property
    def label(self) -> str:
        return str(ROLE_LABELS[self])


ROLE_LABELS = {Role.OWNER: _l("Owner"), Role.ADMIN: _l("Admin"), Role.MEMBER: _l("Member")}


ROLE_COLUMN = sa.Enum(
    Role, native_enum=False, length=16, values_callable=lambda roles: [r.value for r in roles]
)


class Organization(TimestampMixin, Base):
    __tablename__ = "organizations"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(ORG_NAME_MAX_LENGTH))

    members: orm.Mapped[list[OrganizationMember]] = orm.relationship(
        back_populates="organization", cascade="all, delete-orphan"
    )
    subscription: orm.Mapped[Subscription] = orm.relationship(
        back_populates="organization", uselist=False, cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Organization {self.id} {self.name}>"


class OrganizationMember(Base):
    __tablename__ = "organization_members"
    __table_args__ = (sa.UniqueConstraint("organization_id", "user_id"),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE")
    )
    user_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: orm.Mapped[Role] = orm.mapped_column(ROLE_COLUMN)
    created_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)

    organization: orm.Mapped[Organization] = orm.relationship(back_populates="members")
    user: orm.Mapped[User] = orm.relationship(back_populates="memberships")

    def require_manager(self) -> None:
        """Owners and admins manage members, bots, keys and billing; others get 403."""
        if not self.role.can_manage_members:
            raise Forbidden(_("Only owners and admins can do this."))

    @staticmethod
    def manager_emails(organization_id: int) -> sa.Select[str]:
        """Where organization notices (billing, quota) go: its owners and admins."""
        return (
            sa.select(User.email)
            .join(OrganizationMember, OrganizationMember.user_id == User.id)
            .where(
                OrganizationMember.organization_id == organization_id,
                OrganizationMember.role.in_([Role.OWNER, Role.ADMIN]),
            )
            .order_by(User.email)
        )


class Invitation(Base):
    """An emailed invitation; only a hash of its token is stored."""

    __tablename__ = "invitations"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    organization_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    email: orm.Mapped[str] = orm.mapped_column(sa.String(254))
    role: orm.Mapped[Role] = orm.mapped_column(ROLE_COLUMN)
    token_hash: orm.Mapped[str] = orm.mapped_column(sa.String(64), unique=True)
    invited_by_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)
    expires_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime())
    accepted_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    revoked_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())

    organization: orm.Mapped[Organization] = orm.relationship()
    invited_by: orm.Mapped[User | None] = orm.relationship()

    def is_pending(self, now: datetime) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= utcnow() else "pending"
