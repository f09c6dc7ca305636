"""Imports every feature's models so that SQLAlchemy and Alembic see the whole schema."""

from webapp.auth.models import AuthSession, User
from webapp.billing.models import Plan, Subscription
from webapp.orgs.models import Invitation, Organization, OrganizationMember

__all__ = [
    "AuthSession",
    "Invitation",
    "Organization",
    "OrganizationMember",
    "Plan",
    "Subscription",
    "User",
]
